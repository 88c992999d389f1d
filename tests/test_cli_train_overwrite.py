"""``rpmref balls train``: inputs are checked before the run directory is touched,
``--overwrite`` replaces the old run only with a new checkpoint, and the options a
reviewer found unbounded or misreported (--threads, --channels, --no-orient-maps,
make --frames, the summary's thread counts, singular counts) are one-line errors
naming the option.

Tiny videos (17 frames of 12 × 12 px: 16 pairs) keep every case well under a second.
"""
import dataclasses
import json
import tracemalloc

import numpy as np
import pytest

from rpmref.balls import rundir
from rpmref.balls import trainer as T
from rpmref.balls.video import BallsConfig, make_video, save_video
from rpmref.cli import main
from rpmref.cli import train as cli_train
from rpmref.cli.common import MEMORY_BUDGET

TINY = BallsConfig(n_frames=17, size=12, diameter=3.0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    other = BallsConfig(n_frames=17, size=16, diameter=3.0)
    (folder / "garbage.npz").write_bytes(b"not a video")
    frames, positions = make_video(TINY, seed=2)
    return {"train": save_video(folder / "train.npz", *make_video(TINY, seed=0), TINY),
            "held": save_video(folder / "held.npz", *make_video(TINY, seed=1), TINY),
            "size16": save_video(folder / "s16.npz", *make_video(other, seed=1), other),
            "two": save_video(folder / "two.npz", frames[:2], positions[:2],
                              dataclasses.replace(TINY, n_frames=2)),
            "garbage": str(folder / "garbage.npz")}


def args(videos, out, *extra, video="train", held="held"):
    return ["balls", "train", "--out", str(out), "--video", videos[video],
            "--heldout-video", videos[held], "--batch", "6", "--channels", "2", "--kernel", "3",
            "--epochs", "1", "--no-progress", *extra]


def _files(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _one_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def _forbid_training(monkeypatch):
    """A refusal must come before any work: drawing the weights fails the test (and keeps a
    regression from allocating what --channels 100000000 would need)."""
    def refuse(*a, **k):
        raise AssertionError("training started before the inputs were checked")
    monkeypatch.setattr(T, "init_params", refuse)


@pytest.fixture
def old_run(videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args(videos, out)) == 0
    capsys.readouterr()
    before = _files(out)
    assert set(rundir.RUN_FILES) <= set(before)
    return out, before


@pytest.mark.parametrize("change,flag", [
    ({"extra": ["--kernel", "13"]}, "--kernel"),             # larger than the 12×12 frames
    ({"extra": ["--channels", "100000000"]}, "--channels"),  # far beyond the memory limit
    ({"video": "garbage"}, "--video"),
    ({"video": "two"}, "--video"),                            # 2 frames: 1 pair
    ({"held": "size16"}, "--heldout-video"),
    ({"held": "garbage"}, "--heldout-video"),
])
def test_a_refused_overwrite_leaves_the_old_run_byte_identical(videos, old_run, capsys,
                                                               monkeypatch, change, flag):
    out, before = old_run
    _forbid_training(monkeypatch)
    argv = args(videos, out, "--overwrite", *change.get("extra", ()),
                video=change.get("video", "train"), held=change.get("held", "held"))
    if flag == "--kernel":
        argv[argv.index("--kernel") + 1] = "13"
    assert main(argv) == 2
    assert flag in _one_line(capsys)
    assert _files(out) == before


def test_overwrite_interrupted_before_its_first_update_keeps_the_old_run(videos, old_run,
                                                                        capsys, monkeypatch):
    out, before = old_run

    def step(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(T, "train_step", step)
    assert main(args(videos, out, "--overwrite", "--seed", "5")) == 130
    err = capsys.readouterr().err
    assert "nothing was written" in err and "is kept" in err
    assert _files(out) == before


def test_overwrite_diverging_at_its_first_step_keeps_the_old_run(videos, old_run, capsys,
                                                                  monkeypatch):
    out, before = old_run

    def step(*a):
        raise T.NonFiniteLossError("non-finite loss (nan) or gradient")
    monkeypatch.setattr(T, "train_step", step)
    assert main(args(videos, out, "--overwrite")) == 1
    assert "the run it was to replace is kept" in _one_line(capsys)
    assert _files(out) == before


def test_overwrite_replaces_the_old_files_when_its_first_checkpoint_is_written(
        videos, old_run, monkeypatch):
    """At the rename of the new checkpoint the old metrics and summary are gone (they
    never sit beside it); until then all three old files are there."""
    out, before = old_run
    seen = []
    real = rundir.discard_replaced_run

    def discard(directory, keep=()):
        seen.append(sorted(rundir.existing_run_files(directory)))
        return real(directory, keep)
    monkeypatch.setattr("rpmref.balls.checkpoint.discard_replaced_run", discard)
    assert main(args(videos, out, "--overwrite", "--seed", "5", "--epochs", "2")) == 0
    assert seen[0] == sorted(rundir.RUN_FILES)
    assert all(s == [T.CHECKPOINT, T.METRICS] for s in seen[1:]) and len(seen) == 2
    after = _files(out)
    assert all(after[name] != before[name] for name in rundir.RUN_FILES)
    assert json.loads(after[T.SUMMARY])["config"]["seed"] == 5


def test_threads_above_four_per_core_are_a_usage_error(videos, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(args(videos, tmp_path / "run", "--threads", str(cli_train.MAX_THREADS + 1)))
    assert info.value.code == 2
    err = _one_line(capsys)
    assert "--threads" in err and f"from 0 to {cli_train.MAX_THREADS}" in err
    assert not (tmp_path / "run").exists()
    assert main(args(videos, tmp_path / "ok", "--threads", str(cli_train.MAX_THREADS))) == 0


def test_channels_beyond_the_memory_limit_are_refused_before_any_work(videos, tmp_path,
                                                                      capsys, monkeypatch):
    with monkeypatch.context() as m:
        _forbid_training(m)
        assert main(args(videos, tmp_path / "run", "--channels", "100000000")) == 2
    err = _one_line(capsys)
    assert "--channels 100000000" in err and "--channels must be at most" in err
    limit = int(err.split("--channels must be at most ")[1].split()[0])
    assert limit >= 16
    threads = T.step_threads(T.TrainConfig())  # --threads 0: every available core
    assert cli_train.peak_bytes(17, 3, 12, 12, limit, 3, 6, "float32", threads) <= MEMORY_BUDGET
    assert cli_train.peak_bytes(17, 3, 12, 12, limit + 1, 3, 6, "float32", threads) > MEMORY_BUDGET
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("channels,kernel,dtype", [(2, 3, "float32"), (64, 3, "float32"),
                                                   (16, 9, "float64"), (8, 11, "float32")])
def test_peak_bytes_bounds_what_training_allocates(channels, kernel, dtype):
    config = BallsConfig(n_frames=40, size=20, diameter=3.0)
    frames, positions = make_video(config, seed=0)
    cfg = T.TrainConfig(steps=2, batch_size=64, hidden_channels=channels, kernel_size=kernel,
                        dtype=dtype, blas_threads=1)
    tracemalloc.start()
    try:
        result = T.train(cfg, frames, progress=False)
        T.run_summary(cfg, result, frames, positions, frames, positions)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    model = cli_train.peak_bytes(40, 3, 20, 20, channels, kernel, 64, dtype, 1)
    assert peak <= model <= 3 * peak


def test_resume_mismatch_of_no_orient_maps_is_worded_as_the_flag(videos, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args(videos, out, "--steps", "1")) == 0
    capsys.readouterr()
    assert main(args(videos, out, "--resume", "--no-orient-maps")) == 2
    err = _one_line(capsys)
    assert "--no-orient-maps: not given for the checkpoint's run, given now" in err
    assert "True" not in err and "False" not in err


def test_make_refuses_fewer_than_three_frames_naming_frames(tmp_path, capsys):
    for n in ("1", "2"):
        with pytest.raises(SystemExit) as info:
            main(["balls", "make", "--out", str(tmp_path / "v.npz"), "--frames", n])
        assert info.value.code == 2
        err = _one_line(capsys)
        assert "--frames" in err and "at least 3" in err and "pairs" in err
    assert not (tmp_path / "v.npz").exists()
    assert main(["balls", "make", "--out", str(tmp_path / "v.npz"), "--frames", "3",
                 "--size", "12", "--diameter", "3", "--balls", "1"]) == 0
    printed = capsys.readouterr().out
    assert "3 frames, 1 ball," in printed and "1 balls" not in printed


def test_a_two_frame_video_is_refused_naming_video(videos, tmp_path, capsys):
    assert main(args(videos, tmp_path / "run", video="two")) == 2
    err = _one_line(capsys)
    assert f"--video {videos['two']} holds 2 frames" in err and "at least 3" in err


def test_summary_records_the_threads_training_used(videos, tmp_path):
    out = tmp_path / "run"
    assert main(args(videos, out, "--threads", "1")) == 0
    summary = json.loads((out / T.SUMMARY).read_text())
    assert summary["session"]["step_threads"] == 1
    assert summary["session"]["blas_threads_per_step_thread"] == 1
    assert all(lib["threads"] == 1 for lib in summary["environment"]["blas"])
    assert main(args(videos, out, "--threads", "2", "--overwrite")) == 0
    summary = json.loads((out / T.SUMMARY).read_text())
    assert summary["session"]["step_threads"] == 2
    assert all(lib["threads"] == 1 for lib in summary["environment"]["blas"])


def test_counts_are_singular_for_one(videos, tmp_path, capsys, monkeypatch):
    def summarise(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_train, "run_summary", summarise)
    assert main(args(videos, tmp_path / "run", "--steps", "1")) == 130
    err = capsys.readouterr().err
    assert "the checkpoint holds the 1 step;" in err and "1 steps" not in err


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_diverging_run_reports_it_without_numpy_warnings(videos, tmp_path, capsys, threads):
    """A learning rate of 1e30 makes the second step's loss NaN: the trainer says so in one
    line (exit 1); the overflow on the way, in this thread or the step's worker threads,
    printed a page of RuntimeWarnings before it."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(args(videos, str(tmp_path / "run"), "--lr", "1e30", "--threads", threads))
    err = capsys.readouterr().err
    assert code == 1 and "Warning" not in err and "Traceback" not in err
    assert "non-finite loss" in err.strip().splitlines()[-1]
