"""``rpmref balls train``: bad arguments are one line and exit 2, checked before any work;
the summary reports effective batch sizes and the environment; progress is visible.

Tiny videos (17 frames of 12 × 12 px: 16 pairs) keep every case well under a second.
"""
import json
import math
import re
import subprocess
import sys

import pytest

from rpmref.balls import trainer as T
from rpmref.balls.video import BallsConfig, make_video, save_video
from rpmref.cli import main
from rpmref.cli.common import check_output_file, flag_names
from rpmref.cli.train import FLAGS
from rpmref.environment import environment

TINY = BallsConfig(n_frames=17, size=12, diameter=3.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    other_size = BallsConfig(n_frames=17, size=16, diameter=3.0)
    two_balls = BallsConfig(n_frames=17, size=12, diameter=3.0, n_balls=2)
    return {"train": save_video(folder / "train.npz", *make_video(TINY, seed=0), TINY),
            "held": save_video(folder / "held.npz", *make_video(TINY, seed=1), TINY),
            "size16": save_video(folder / "s16.npz", *make_video(other_size, seed=1), other_size),
            "two": save_video(folder / "two.npz", *make_video(two_balls, seed=1), two_balls)}


def args(videos, out, *extra, held="held"):
    return ["balls", "train", "--out", str(out), "--video", videos["train"],
            "--heldout-video", videos[held], "--batch", "6", "--channels", "2", "--kernel", "3",
            "--epochs", "2", "--no-progress", *extra]


def _one_line_error(capsys, code, call):
    assert call() == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("extra,message", [
    (["--momentum", "2"], "--momentum must be in [0, 1), got 2.0"),
    (["--momentum", "-5"], "--momentum must be in [0, 1), got -5.0"),
    (["--momentum", "nan"], "--momentum must be a finite real number, got nan"),
    (["--kernel", "99"], "--kernel 99 is larger than the 12×12 frames"),
    (["--kernel", "4"], "--kernel must be odd"),
    (["--batch", "1"], "--batch must be at least 2"),
])
def test_bad_settings_exit_2_with_the_flag_name_before_any_work(videos, tmp_path, capsys,
                                                                extra, message):
    out = tmp_path / "run"
    err = _one_line_error(capsys, 2, lambda: main(args(videos, out, *extra)))
    assert message in err
    assert not (out / T.CHECKPOINT).exists()


@pytest.mark.parametrize("extra", [["--threads", "-1"], ["--seed", "-3"], ["--epochs", "0"],
                                   ["--lr", "0"], ["--lr", "inf"], ["--steps", "x"]])
def test_bad_numbers_are_argparse_errors_naming_the_flag(videos, tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as info:
        main(args(videos, tmp_path / "run", *extra))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert extra[0] in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra,message", [
    (["--video-seed", "3"], "--video-seed seeds a generated video; it has no effect with --video"),
    (["--heldout-seed", "0"],
     "--heldout-seed seeds a generated video; it has no effect with --heldout-video"),
])
def test_a_seed_for_a_video_read_from_a_file_is_refused_not_ignored(videos, tmp_path, capsys,
                                                                     extra, message):
    out = tmp_path / "run"
    err = _one_line_error(capsys, 2, lambda: main(args(videos, out, *extra)))
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize("held,message", [
    ("size16", "held-out video's frames are (3, 16, 16)"),
    ("two", "held-out video has 2 balls, the training video 3"),
])
def test_heldout_video_must_match_the_training_video(videos, tmp_path, capsys, held, message):
    out = tmp_path / "run"
    err = _one_line_error(capsys, 2, lambda: main(args(videos, out, held=held)))
    assert message in err
    assert not (out / T.CHECKPOINT).exists()


def test_a_heldout_video_that_is_the_training_video_is_refused(videos, tmp_path, capsys):
    """The same file for both, or a copy of it: the held-out readout would score the
    training frames (it was accepted silently)."""
    out = tmp_path / "run"
    err = _one_line_error(capsys, 2, lambda: main(args(videos, out, held="train")))
    assert f"--heldout-video {videos['train']} is the training video frame for frame" in err
    copy = tmp_path / "copy.npz"
    copy.write_bytes(open(videos["train"], "rb").read())
    argv = args(videos, out)
    argv[argv.index("--heldout-video") + 1] = str(copy)
    err = _one_line_error(capsys, 2, lambda: main(argv))
    assert "is the training video frame for frame" in err and not out.exists()


def test_missing_input_video_is_refused_before_the_run_directory(videos, tmp_path, capsys):
    argv = args(videos, tmp_path / "run")
    argv[argv.index("--video") + 1] = str(tmp_path / "absent.npz")
    err = _one_line_error(capsys, 2, lambda: main(argv))
    assert "--video" in err and "no such file" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["under a file", "proc", "empty"])
def test_unwritable_output_directory_exits_2_before_work(videos, tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    out = {"under a file": str(tmp_path / "file" / "run"), "proc": "/proc/rpmref-run",
           "empty": ""}[where]
    err = _one_line_error(capsys, 2, lambda: main(args(videos, out)))
    assert "--out" in err


def test_summary_reports_effective_batches_environment_and_session(videos, tmp_path, capsys):
    """16 pairs in batches of at most 6: ⌈16/6⌉ = 3 batches of 6, 5, 5 pairs, so the bound
    on an epoch's mean estimate is (log 6 + 2 log 5) / 3, not log 6."""
    out = tmp_path / "run"
    assert main(args(videos, out)) == 0
    summary = json.loads((out / T.SUMMARY).read_text())
    assert summary["pairs"] == 16 and summary["batches_per_epoch"] == 3
    assert summary["effective_batch_sizes"] == [5, 6]
    assert summary["log_batch"] == pytest.approx((math.log(6) + 2 * math.log(5)) / 3, rel=1e-15)
    assert set(summary["environment"]) == set(environment())
    assert set(summary["session"]) == {"wall_time_s", "steps_per_s", "steps_run",
                                       "step_threads", "blas_threads_per_step_thread"}
    assert summary["session"]["steps_run"] == 6 and summary["steps"] == 6
    rows = [json.loads(line) for line in (out / T.METRICS).read_text().splitlines()]
    assert summary["final_loss"] == rows[-1]["loss"]
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert printed[0].startswith("critic rbf: 6 steps, 2 full epochs; final loss")
    assert "3 batches of 5–6 pairs" in printed[0] and "log B = 1.6702" in printed[0]  # (1.7918 + 2·1.6094)/3


def test_batch_larger_than_the_video_is_reported(videos, tmp_path):
    argv = args(videos, tmp_path / "run")
    argv[argv.index("--batch") + 1] = "64"
    assert main(argv) == 0
    summary = json.loads((tmp_path / "run" / T.SUMMARY).read_text())
    assert summary["effective_batch_sizes"] == [16] and summary["config"]["batch_size"] == 64
    assert summary["log_batch"] == pytest.approx(math.log(16), rel=1e-15)


def test_progress_bar_and_final_line(videos, tmp_path, capsys, monkeypatch):
    """A bar on a terminal's stderr, none in a log file (it got every carriage-return frame)."""
    argv = [a for a in args(videos, tmp_path / "run") if a != "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "train rbf" not in captured.err and captured.out.count("\n") == 1
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main([*argv, "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"train rbf: .*\| \d/6 \[", captured.err)  # tqdm's bar
    assert captured.out.count("\n") == 1


def test_end_to_end_bad_argument_in_a_fresh_interpreter(videos, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rpmref"]
                          + args(videos, tmp_path / "run", "--momentum", "2"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rpmref balls train: error: --momentum must be in [0, 1), got 2.0"]


def test_flag_names_replace_fields_not_prose():
    assert flag_names("blas_threads must be >= 1, got 0", FLAGS) == "--threads must be >= 1, got 0"
    assert flag_names("steps must be positive", FLAGS) == "--steps must be positive"
    assert (flag_names("another config (critic: checkpoint 'rbf' vs now 'cosine'; batch_size: "
                       "checkpoint 6 vs now 8)", FLAGS)
            == "another config (--critic: checkpoint 'rbf' vs now 'cosine'; --batch: "
               "checkpoint 6 vs now 8)")
    prose = "checkpoint is at step 9, beyond the 5 steps asked for"
    assert flag_names(prose, FLAGS) == prose


def test_check_output_file(tmp_path):
    assert check_output_file(str(tmp_path / "v.npz"), "--out", (".npz",))
    for bad, message in [("", "ending in .npz"), (str(tmp_path / ".npz"), "ending in .npz"),
                         (str(tmp_path / "v.npy"), "ending in .npz"),
                         (str(tmp_path / "no" / "v.npz"), "does not exist"),
                         ("/proc/v.npz", "cannot write in /proc")]:
        with pytest.raises(ValueError, match=message):
            check_output_file(bad, "--out", (".npz",))
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        check_output_file(str(tmp_path / "d.npz"), "--out", (".npz",))
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no probe file left
