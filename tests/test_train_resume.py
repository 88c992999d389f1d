"""Long training jobs lose no work: interrupts and kills at every point, divergence, locks,
full disks, stale temporary files and corrupt checkpoints (``rpmref balls train``).

"The same run" is defined precisely (``assert_same_run``): the checkpoints hold equal
arrays (names, dtypes, every bit) and equal meta; ``metrics.jsonl`` is byte-identical;
``summary.json`` is identical — same keys in the same order, same values — except the
fields ``trainer.SUMMARY_VOLATILE`` (``session``: this call's wall time, steps/s and
update count; ``environment``), which describe the call, not the run.

Everything runs on a tiny video (17 frames of 12 × 12 px, so 16 pairs; ``--batch 6``
gives 3 batches of 6, 5, 5 pairs per epoch; 2 hidden channels, 3 × 3 kernels):
a 6-epoch run is 18 steps and takes about 0.3 s.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import filelock
import numpy as np
import pytest

from rpmref.balls import checkpoint as ckpt
from rpmref.balls import optim, rundir
from rpmref.balls import trainer as T
from rpmref.balls.video import BallsConfig, make_video, save_video
from rpmref.cli import main
from rpmref.cli import train as cli_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = BallsConfig(n_frames=17, size=12, diameter=3.0)
EPOCHS, BATCHES = 6, 3  # 16 pairs in batches of 6, 5, 5
TOTAL = EPOCHS * BATCHES


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return (save_video(folder / "train.npz", *make_video(TINY, seed=0), TINY),
            save_video(folder / "held.npz", *make_video(TINY, seed=1), TINY))


def train_args(videos, out, *extra):
    return ["balls", "train", "--out", str(out), "--video", videos[0], "--heldout-video",
            videos[1], "--batch", "6", "--channels", "2", "--kernel", "3",
            "--epochs", str(EPOCHS), "--no-progress", *extra]


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory):
    """The uninterrupted 6-epoch run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_args(videos, out)) == 0
    return out


def _summary_without_volatile(out):
    summary = json.loads((out / T.SUMMARY).read_text())
    assert set(T.SUMMARY_VOLATILE) <= set(summary)
    return {k: v for k, v in summary.items() if k not in T.SUMMARY_VOLATILE}


def assert_same_run(out, ref):
    a, b = ckpt.load_checkpoint(out / T.CHECKPOINT), ckpt.load_checkpoint(ref / T.CHECKPOINT)
    for group in ("params", "bn_state", "opt_state"):
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            assert a[group][name].dtype == b[group][name].dtype, (group, name)
            np.testing.assert_array_equal(a[group][name], b[group][name], err_msg=f"{group}/{name}")
    np.testing.assert_array_equal(a["perm"], b["perm"])
    assert a["meta"] == b["meta"]
    assert (out / T.METRICS).read_bytes() == (ref / T.METRICS).read_bytes()
    sa, sb = _summary_without_volatile(out), _summary_without_volatile(ref)
    assert list(sa) == list(sb) and sa == sb


def _temp_files(out):
    return sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------- Ctrl-C at every step


def _interrupt_in_step(monkeypatch, s):
    """Ctrl-C while step s computes: its work is done but never committed."""
    real, calls = T.train_step, []

    def step(*args):
        calls.append(1)
        result = real(*args)
        if len(calls) == s:
            raise KeyboardInterrupt
        return result
    monkeypatch.setattr(T, "train_step", step)


def _interrupt_after_commit(monkeypatch, s):
    """Ctrl-C right after step s is committed, before its checkpoint or metrics row is
    written (at an epoch's last step: the window between the epoch ending and its row)."""
    def hook(step, params, bn_state):
        if step == s:
            raise KeyboardInterrupt
    real = T.train
    monkeypatch.setattr(cli_train, "train", lambda *a, **k: real(*a, on_step=hook, **k))


@pytest.mark.parametrize("where", ["in-step", "after-commit"])
def test_ctrl_c_at_every_step_then_resume_is_the_uninterrupted_run(
        videos, reference, tmp_path, monkeypatch, capsys, where):
    inject = _interrupt_in_step if where == "in-step" else _interrupt_after_commit
    for s in range(1, TOTAL + 1):
        out = tmp_path / f"cut{s}"
        with monkeypatch.context() as m:
            inject(m, s)
            assert main(train_args(videos, out)) == 130, s
        err = capsys.readouterr().err
        committed = s - 1 if where == "in-step" else s
        assert f"holds step {committed}; continue with --resume" in err, (s, err)
        assert ckpt.load_checkpoint(out / T.CHECKPOINT)["meta"]["step"] == committed
        assert main(train_args(videos, out, "--resume")) == 0, s
        assert_same_run(out, reference)
        assert _temp_files(out) == []


def _fail_checkpoint_fsync(monkeypatch, n, error):
    """Raise ``error`` at the n-th fsync of a temporary checkpoint file: the bytes are
    written, the rename has not happened (where a full disk or a Ctrl-C surfaces)."""
    real, calls = os.fsync, []

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".ckpt-"):
            calls.append(1)
            if len(calls) == n:
                raise error
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_ctrl_c_during_a_checkpoint_write_then_resume(videos, reference, tmp_path, monkeypatch):
    """Ctrl-C inside the end-of-epoch checkpoint write: the temporary file goes away, the
    handler writes the checkpoint again, nothing of the epoch is lost."""
    for epoch in (1, 4):
        out = tmp_path / f"cut{epoch}"
        with monkeypatch.context() as m:
            _fail_checkpoint_fsync(m, epoch, KeyboardInterrupt())
            assert main(train_args(videos, out)) == 130
        saved = ckpt.load_checkpoint(out / T.CHECKPOINT)["meta"]
        assert saved["step"] == epoch * BATCHES and len(saved["history"]) == epoch
        assert len((out / T.METRICS).read_text().splitlines()) == epoch
        assert _temp_files(out) == []
        assert main(train_args(videos, out, "--resume")) == 0
        assert_same_run(out, reference)


def test_interrupted_three_times(videos, reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    for s in (2, 7, 15):  # cut after steps 2, 7 and 15 (mid-epoch, mid-epoch, epoch end)
        with monkeypatch.context() as m:
            _interrupt_after_commit(m, s)
            code = main(train_args(videos, out, *(["--resume"] if s != 2 else [])))
        assert code == 130
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)


def test_library_resume_from_interrupt_in_first_step_of_an_epoch(videos, tmp_path, monkeypatch):
    """The case that used to diverge: Ctrl-C in an epoch's first step must not draw the
    epoch's permutation twice (``train`` directly, float64)."""
    from rpmref.balls.video import load_video
    frames = load_video(videos[0])[0]
    config = T.TrainConfig(epochs=3, batch_size=6, hidden_channels=2, kernel_size=3,
                           dtype="float64", seed=4)
    full = T.train(config, frames, progress=False)
    _interrupt_in_step(monkeypatch, BATCHES + 1)  # first step of epoch 2
    with pytest.raises(T.TrainingInterrupted) as info:
        T.train(config, frames, out_dir=str(tmp_path), progress=False)
    assert info.value.step == BATCHES
    monkeypatch.undo()
    resumed = T.train(config, frames, out_dir=str(tmp_path), resume=True, progress=False)
    for k in full.params:
        np.testing.assert_array_equal(full.params[k], resumed.params[k])
    assert resumed.history == full.history and resumed.steps_run == 2 * BATCHES


def test_ctrl_c_while_summarising_then_resume_writes_the_summary(videos, reference, tmp_path,
                                                                  monkeypatch, capsys):
    out = tmp_path / "run"

    def summarise(*args, **kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(cli_train, "run_summary", summarise)
        assert main(train_args(videos, out)) == 130
    assert f"the checkpoint holds all {TOTAL} steps; --resume writes" in capsys.readouterr().err
    assert not (out / T.SUMMARY).exists()
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)



def test_a_resumed_run_that_goes_further_does_not_keep_the_old_summary(
        videos, reference, tmp_path, monkeypatch, capsys):
    """A finished run resumed with more epochs: once a checkpoint of a later step is
    written, the summary.json of the earlier end is gone (it would describe a checkpoint
    that no longer exists); interrupted before any new update, it stays."""
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    old_summary = (out / T.SUMMARY).read_bytes()
    more = ["--resume", "--epochs", str(EPOCHS + 2)]
    with monkeypatch.context() as m:
        _interrupt_in_step(m, 1)  # Ctrl-C in the first new update: nothing new is written
        assert main(train_args(videos, out, *more)) == 130
    assert f"holds step {TOTAL};" in capsys.readouterr().err
    assert (out / T.SUMMARY).read_bytes() == old_summary
    with monkeypatch.context() as m:
        _interrupt_after_commit(m, TOTAL + 1)
        assert main(train_args(videos, out, *more)) == 130
    assert f"holds step {TOTAL + 1};" in capsys.readouterr().err
    assert ckpt.load_checkpoint(out / T.CHECKPOINT)["meta"]["step"] == TOTAL + 1
    assert not (out / T.SUMMARY).exists()
    assert main(train_args(videos, out, *more)) == 0
    assert json.loads((out / T.SUMMARY).read_text())["steps"] == TOTAL + 2 * BATCHES


# ---------------------------------------------------------------- SIGKILL

CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from rpmref.balls import trainer
    from rpmref.cli import main

    point, n = sys.argv[1], int(sys.argv[2])
    count = [0]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "step":                 # in the middle of step n
        real_step = trainer.train_step
        def train_step(*args):
            count[0] += 1
            if count[0] == n:
                die()
            return real_step(*args)
        trainer.train_step = train_step
    else:                               # around the n-th rename onto checkpoint / metrics
        target, when = point.split("-")
        real_replace = os.replace
        def replace(src, dst):
            if os.path.basename(dst) == target:
                count[0] += 1
                if count[0] == n and when == "before":
                    die()
            real_replace(src, dst)
            if os.path.basename(dst) == target and count[0] == n and when == "after":
                die()
        os.replace = replace
    sys.exit(main(sys.argv[3:]))
""")


@pytest.mark.parametrize("point,n", [
    ("step", 5),                       # mid-epoch, mid-step
    ("checkpoint.npz-before", 2),      # temp checkpoint written, not yet renamed
    ("checkpoint.npz-after", 4),       # checkpoint renamed, metrics not yet written
    ("metrics.jsonl-before", 3),       # temp metrics written, not yet renamed
])
def test_sigkill_then_resume_is_the_uninterrupted_run(videos, reference, tmp_path, point, n):
    child = tmp_path / "child.py"
    child.write_text(CHILD.format(root=ROOT))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(child), point, str(n)]
                          + train_args(videos, out), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if point.endswith("before"):
        assert _temp_files(out), "a kill during a write leaves its temporary file"
    assert main(train_args(videos, out, "--resume")) == 0
    assert _temp_files(out) == []
    assert_same_run(out, reference)


# ---------------------------------------------------------------- divergence


def _assert_checkpoint_finite(path):
    data = ckpt.load_checkpoint(path)
    for group in ("params", "bn_state", "opt_state"):
        for name, a in data[group].items():
            assert np.all(np.isfinite(a)), f"{group}/{name}"


def test_divergent_sgd_writes_no_checkpoint(videos, tmp_path, capsys):
    """lr 1e300 with one batch per epoch: the first update (an epoch's last step) overflows;
    exit 1, one line, and no checkpoint with inf in it."""
    out = tmp_path / "run"
    argv = train_args(videos, out, "--optimizer", "sgd", "--lr", "1e300")
    argv[argv.index("--batch") + 1] = "16"
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "non-finite" in err
    assert "no checkpoint has been written yet" in err
    assert not out.exists()  # the run created it and wrote nothing: no debris is left


@pytest.mark.parametrize("what", ["parameter", "optimiser state", "batch-norm statistic"])
def test_non_finite_update_at_an_epochs_last_step_is_not_saved(videos, tmp_path, monkeypatch,
                                                                 what):
    """An update that makes anything non-finite on the last step of epoch 2 stops the run;
    the checkpoint on disk stays the finite one of epoch 1."""
    from rpmref.balls.video import load_video
    frames = load_video(videos[0])[0]
    config = T.TrainConfig(epochs=4, batch_size=6, hidden_channels=2, kernel_size=3)
    bad_step, calls = 2 * BATCHES, []
    real_opt, real_bn = optim.step, T.layers.update_bn_state

    def opt_step(*args, **kwargs):
        calls.append(1)
        params, state = real_opt(*args, **kwargs)
        if len(calls) == bad_step and what == "parameter":
            params = dict(params, conv2_w=params["conv2_w"] * np.inf)
        if len(calls) == bad_step and what == "optimiser state":
            state = dict(state, **{"m/bn1_beta": state["m/bn1_beta"] + np.nan})
        return params, state

    def bn_update(*args, **kwargs):
        new = real_bn(*args, **kwargs)
        if len(calls) == bad_step and what == "batch-norm statistic":
            new = dict(new, bn2_var=new["bn2_var"] * np.inf)
        return new
    monkeypatch.setattr(T.optim, "step", opt_step)
    monkeypatch.setattr(T.layers, "update_bn_state", bn_update)
    with pytest.raises(T.NonFiniteLossError, match=rf"step {bad_step} .*{what}.*"
                       rf"checkpoint \(step {BATCHES}, after epoch 1\) is kept"):
        T.train(config, frames, out_dir=str(tmp_path), progress=False)
    assert ckpt.load_checkpoint(str(tmp_path / T.CHECKPOINT))["meta"]["step"] == BATCHES
    _assert_checkpoint_finite(str(tmp_path / T.CHECKPOINT))


def test_save_checkpoint_refuses_non_finite_values(tmp_path):
    path = str(tmp_path / "c.npz")
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="params/w holds non-finite"):
            ckpt.save_checkpoint(path, {"w": np.array([1.0, bad])}, {}, {}, np.arange(2), {})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- one writer, no overwrite


def test_a_locked_run_directory_is_refused_at_once(videos, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with filelock.FileLock(str(out / rundir.LOCK_NAME)):
        assert main(train_args(videos, out)) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "another training run is writing" in err
    assert sorted(p.name for p in out.iterdir()) == [rundir.LOCK_NAME]
    assert main(train_args(videos, out)) == 0  # released: now it runs


def test_second_trainer_process_exits_at_once(videos, tmp_path):
    """End to end: a process holds the run directory; ``rpmref balls train`` on it exits 1
    with one line and writes nothing; the holder is unaffected."""
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
         "from rpmref.balls.rundir import open_run_dir\n"
         "with open_run_dir(sys.argv[2]):\n print('locked', flush=True); sys.stdin.read()",
         ROOT, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run([sys.executable, "-m", "rpmref"] + train_args(videos, out),
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        holder.communicate("", timeout=60)
    assert second.returncode == 1, second.stderr
    assert "another training run is writing" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    assert rundir.existing_run_files(str(out)) == []
    assert holder.returncode == 0


def test_an_existing_run_is_never_replaced_unless_told(videos, reference, tmp_path, capsys,
                                                         monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after_commit(m, 4)
        assert main(train_args(videos, out)) == 130
    before = (out / T.CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert main(train_args(videos, out)) == 2  # rerun without --resume after a Ctrl-C
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (out / T.CHECKPOINT).read_bytes() == before
    assert main(train_args(videos, out, "--overwrite")) == 0
    assert_same_run(out, reference)
    with pytest.raises(SystemExit) as info:
        main(train_args(videos, out, "--overwrite", "--resume"))
    assert info.value.code == 2
    # the library refuses too
    with pytest.raises(rundir.RunExistsError):
        T.train(T.TrainConfig(epochs=1, batch_size=6, hidden_channels=2, kernel_size=3),
                make_video(TINY, seed=0)[0], out_dir=str(out), progress=False)


def test_resume_without_checkpoint_is_refused(videos, tmp_path, capsys):
    assert main(train_args(videos, tmp_path / "none", "--resume")) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- full disk, stale files


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(videos, tmp_path, capsys,
                                                                  monkeypatch):
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--epochs", "2")) == 0
    before = (out / T.CHECKPOINT).read_bytes()
    metrics = (out / T.METRICS).read_bytes()
    capsys.readouterr()
    _fail_checkpoint_fsync(monkeypatch, 1, OSError(28, "No space left on device"))
    assert main(train_args(videos, out, "--epochs", "4", "--resume")) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "No space left on device" in err and str(out / T.CHECKPOINT) in err
    assert f"last good checkpoint (step {2 * BATCHES}, after epoch 2) is kept" in err
    assert (out / T.CHECKPOINT).read_bytes() == before
    assert (out / T.METRICS).read_bytes() == metrics
    assert _temp_files(out) == []


def test_disk_full_when_a_resume_rewrites_the_metrics_names_the_file(videos, tmp_path, capsys,
                                                                     monkeypatch):
    """--resume first rewrites metrics.jsonl from the checkpoint; a full disk there is one
    line that names the file, and the checkpoint stays."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--epochs", "2")) == 0
    before = (out / T.CHECKPOINT).read_bytes()
    capsys.readouterr()
    real = rundir.atomic_write_text

    def write(path, text):
        if path.endswith(T.METRICS):
            raise OSError(28, "No space left on device")   # no file name, as a write gives
        return real(path, text)
    monkeypatch.setattr(rundir, "atomic_write_text", write)
    assert main(train_args(videos, out, "--epochs", "4", "--resume")) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(out / T.METRICS) in err and "No space left on device" in err
    assert f"step {2 * BATCHES}) is kept" in err
    assert (out / T.CHECKPOINT).read_bytes() == before


def test_unwritable_summary_is_one_line(videos, tmp_path, capsys, monkeypatch):
    real = rundir.atomic_write_text

    def write(path, text):
        if path.endswith(T.SUMMARY):
            raise OSError(28, "No space left on device")
        return real(path, text)
    monkeypatch.setattr(rundir, "atomic_write_text", write)
    assert main(train_args(videos, tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "summary.json" in err and "--resume" in err


def test_stale_temporary_files_are_removed_under_the_lock(videos, reference, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in (".ckpt-1a2b.tmp", ".metrics.jsonl-9f.tmp", ".summary.json-00.tmp"):
        (out / name).write_bytes(b"left by a killed run")
    (out / "notes.tmp").write_text("not ours")
    assert main(train_args(videos, out)) == 0
    assert _temp_files(out) == ["notes.tmp"]
    assert_same_run(out, reference)


# ---------------------------------------------------------------- nothing left to do


def test_resume_with_nothing_left_rewrites_the_same_summary(videos, reference, tmp_path,
                                                           capsys):
    import shutil
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    capsys.readouterr()
    assert main(train_args(videos, out, "--resume")) == 0
    printed = capsys.readouterr().out
    assert "nothing left to train" in printed and "final loss nan" not in printed
    last_row = json.loads((reference / T.METRICS).read_text().splitlines()[-1])
    assert f"final loss {last_row['loss']:.4f}" in printed
    assert_same_run(out, reference)
    session = json.loads((out / T.SUMMARY).read_text())["session"]
    assert session["steps_run"] == 0 and session["steps_per_s"] is None


def test_resume_of_a_partial_epoch_with_nothing_left_keeps_its_row(videos, tmp_path, capsys):
    """--steps 5 ends in epoch 2 (3 + 2 batches): resuming with --steps 5 reports that
    partial epoch's loss, not epoch 1's; asking for fewer steps than done is refused."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "5")) == 0
    first = json.loads((out / T.SUMMARY).read_text())
    rows = [json.loads(line) for line in (out / T.METRICS).read_text().splitlines()]
    assert [r["complete"] for r in rows] == [True, False] and rows[1]["batches"] == 2
    assert main(train_args(videos, out, "--steps", "5", "--resume")) == 0
    again = json.loads((out / T.SUMMARY).read_text())
    assert again["final_loss"] == rows[1]["loss"] == first["final_loss"]
    capsys.readouterr()
    assert main(train_args(videos, out, "--steps", "2", "--resume")) == 2
    assert "beyond the 2 steps" in capsys.readouterr().err


def test_steps_limit_then_resume_to_the_end_is_the_uninterrupted_run(videos, reference,
                                                                     tmp_path):
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "5")) == 0
    assert main(train_args(videos, out, "--steps", "11", "--resume")) == 0
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)


# ---------------------------------------------------------------- corrupt checkpoints


def _read_raw(path):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def _write_raw(path, arrays, meta):
    with open(path, "wb") as f:
        np.savez(f, meta=np.asarray(json.dumps(meta)), **arrays)


@pytest.fixture(scope="module")
def partial_run(videos, tmp_path_factory):
    """A run stopped by --steps 5: epoch 1 complete, epoch 2 at batch 2 with a partial row."""
    out = tmp_path_factory.mktemp("partial") / "run"
    assert main(train_args(videos, out, "--steps", "5")) == 0
    return out


def _set(key, value):
    return lambda a, m: m.__setitem__(key, value)


def _meta(fn):
    return lambda a, m: fn(m)


def _array(name, fn):
    return lambda a, m: a.__setitem__(name, fn(a[name]))


def _dup(perm):
    perm = perm.copy()
    perm[1] = perm[0]
    return perm


CORRUPTIONS = {
    **{f"meta lacks {key}": (lambda key: (_meta(lambda m: m.pop(key)), f"meta lacks {key}"))(key)
       for key in ("config", "epoch", "step", "batch_in_epoch", "epoch_acc", "rng_state",
                   "history", "data_fingerprint")},
    "step -5": (_set("step", -5), "step is -5"),
    "step a string": (_set("step", "5"), "step is '5'"),
    "epoch a bool": (_set("epoch", True), "epoch is True"),
    "step a float": (_set("step", 5.0), "step is 5.0"),
    "step inconsistent": (_set("step", 6), "step 6 is not epoch 1"),
    "batch beyond epoch": (lambda a, m: m.update(batch_in_epoch=3, step=6), "batch_in_epoch 3"),
    "acc short": (_set("epoch_acc", [1.0, 2.0]), "epoch_acc is"),
    "acc count": (_meta(lambda m: m["epoch_acc"].__setitem__(2, 1)), "counts 1 batches"),
    "acc nan": (_meta(lambda m: m["epoch_acc"].__setitem__(0, float("nan"))), "epoch_acc is"),
    "rng not a dict": (_set("rng_state", "seed 3"), "rng_state"),
    "rng other generator": (_meta(lambda m: m["rng_state"].update(bit_generator="MT19937")),
                            "rng_state"),
    "rng even increment": (_meta(lambda m: m["rng_state"]["state"].update(inc=2)), "rng_state"),
    "rng huge state": (_meta(lambda m: m["rng_state"]["state"].update(state=2 ** 130)),
                       "rng_state"),
    "rng bad has_uint32": (_meta(lambda m: m["rng_state"].update(has_uint32=2)), "rng_state"),
    "history not a list": (_set("history", {"epoch": 1}), "history is not a list"),
    "history row lacks loss": (_meta(lambda m: m["history"][0].pop("loss")), "history row 0"),
    "history row extra key": (_meta(lambda m: m["history"][0].update(lr=1)), "history row 0"),
    "history row wrong epoch": (_meta(lambda m: m["history"][0].update(epoch=2)),
                                "history row 0"),
    "history loss nan": (_meta(lambda m: m["history"][1].update(loss=float("nan"))),
                         "history row 1"),
    "history partial row wrong": (_meta(lambda m: m["history"][1].update(loss=1.0)),
                                  "history row 1"),
    "history missing rows": (_set("history", []), "history has 0 rows"),
    "history extra row": (_meta(lambda m: m["history"].append(dict(m["history"][1]))),
                          "history row 2"),
    "config not an object": (_set("config", [1, 2]), "config is not an object"),
    "format": (_set("format", "rpmref-checkpoint-v0"), "format"),
    "perm short": (_array("perm", lambda p: p[:-1]), "perm must be 16"),
    "perm duplicate": (_array("perm", _dup), "not a permutation"),
    "perm out of range": (_array("perm", lambda p: np.where(p == 15, 16, p)), "not a permutation"),
    "perm negative": (_array("perm", lambda p: np.where(p == 0, -1, p)), "not a permutation"),
    "perm float": (_array("perm", lambda p: p.astype(float)), "perm must be 16"),
    "perm 2-D": (_array("perm", lambda p: p.reshape(4, 4)), "perm must be 16"),
    "param missing": (lambda a, m: a.pop("params/conv1_w"), "params arrays"),
    "param extra": (lambda a, m: a.__setitem__("params/extra", np.zeros(2)), "params arrays"),
    "param shape": (_array("params/conv1_w", lambda w: w[:1]), "params/conv1_w has shape"),
    "param dtype": (_array("params/conv2_b", lambda w: w.astype(np.float64)),
                    "params/conv2_b has shape"),
    "param nan": (_array("params/bn1_gamma", lambda w: w * np.nan), "params/bn1_gamma holds"),
    "bn shape": (_array("bn/bn1_mean", lambda v: v[:1]), "bn/bn1_mean has shape"),
    "bn inf": (_array("bn/bn2_mean", lambda v: v + np.inf), "bn/bn2_mean holds"),
    "bn negative variance": (_array("bn/bn1_var", lambda v: -v), "bn/bn1_var must be"),
    "opt shape": (_array("opt/m/conv1_w", lambda v: v[0]), "opt/m/conv1_w has shape"),
    "opt missing moment": (lambda a, m: a.pop("opt/v/conv1_b"), "opt arrays"),
    "opt negative second moment": (_array("opt/v/conv1_w", lambda v: v - 1), "opt/v/conv1_w"),
    "opt step count": (_array("opt/t", lambda t: t + 1), "optimiser step count 6"),
    "unknown group": (lambda a, m: a.__setitem__("misc/x", np.zeros(1)), "unexpected arrays"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_checkpoint_is_a_one_line_error(videos, partial_run, tmp_path, capsys, case):
    mutate, expected = CORRUPTIONS[case]
    out = tmp_path / "run"
    out.mkdir()
    arrays, meta = _read_raw(partial_run / T.CHECKPOINT)
    mutate(arrays, meta)
    _write_raw(out / T.CHECKPOINT, arrays, meta)
    before = (out / T.CHECKPOINT).read_bytes()
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "corrupt" in err and expected in err, err
    assert (out / T.CHECKPOINT).read_bytes() == before


def test_partial_row_on_an_epoch_boundary_is_corrupt(videos, reference, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    arrays, meta = _read_raw(reference / T.CHECKPOINT)
    meta["history"].append({"epoch": 7, "step": TOTAL, "loss": 1.0, "estimate": 0.1,
                            "batches": 0, "complete": False})
    _write_raw(out / T.CHECKPOINT, arrays, meta)
    assert main(train_args(videos, out, "--resume")) == 2
    assert "history row 6" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "meta a list"])
def test_unreadable_checkpoint_is_a_one_line_error(videos, partial_run, tmp_path, capsys,
                                                   damage):
    out = tmp_path / "run"
    out.mkdir()
    data = (partial_run / T.CHECKPOINT).read_bytes()
    if damage == "truncated":
        (out / T.CHECKPOINT).write_bytes(data[: len(data) // 2])
    elif damage == "not a zip":
        (out / T.CHECKPOINT).write_bytes(b"hello")
    else:
        arrays, _ = _read_raw(partial_run / T.CHECKPOINT)
        with open(out / T.CHECKPOINT, "wb") as f:
            np.savez(f, meta=np.asarray("[1, 2]"), **arrays)
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "corrupt" in err


def test_intact_copy_of_the_base_checkpoint_resumes(videos, partial_run, reference, tmp_path):
    """Control for the corruption cases: the unmodified checkpoint, rewritten the same way,
    is accepted and continues to the uninterrupted result."""
    out = tmp_path / "run"
    out.mkdir()
    _write_raw(out / T.CHECKPOINT, *_read_raw(partial_run / T.CHECKPOINT))
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)


def test_version_1_checkpoint_at_an_epoch_end_still_resumes(videos, reference, tmp_path):
    """Format v1 kept the finished epoch's sums in epoch_acc at batch 0; they are reset."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--epochs", "2")) == 0
    arrays, meta = _read_raw(out / T.CHECKPOINT)
    rows = meta["history"]
    meta.update(format="rpmref-checkpoint-v1",
                epoch_acc=[rows[-1]["loss"] * BATCHES, rows[-1]["estimate"] * BATCHES, BATCHES])
    _write_raw(out / T.CHECKPOINT, arrays, meta)
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)


def test_checkpoint_of_another_config_or_video_names_the_flag(videos, partial_run, tmp_path,
                                                             capsys):
    import shutil
    out = tmp_path / "run"
    shutil.copytree(partial_run, out)
    assert main(train_args(videos, out, "--resume", "--critic", "cosine",
                           "--channels", "3")) == 2
    err = capsys.readouterr().err
    assert "--critic: checkpoint 'rbf' vs now 'cosine'" in err
    assert "--channels: checkpoint 2 vs now 3" in err
    other = save_video(tmp_path / "other.npz", *make_video(TINY, seed=2), TINY)
    argv = train_args(videos, out, "--resume")
    argv[argv.index("--video") + 1] = other
    assert main(argv) == 2
    assert "different video" in capsys.readouterr().err


def test_a_run_directory_it_created_and_left_empty_is_removed(tmp_path):
    """A run refused or failed before its first file leaves no directory behind (nor the
    parents it created); a directory that existed before, or that holds a file, stays."""
    fresh = tmp_path / "a" / "b" / "run"
    with pytest.raises(RuntimeError):
        with rundir.open_run_dir(fresh):
            raise RuntimeError("failed before the first file")
    assert os.listdir(tmp_path) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    with rundir.open_run_dir(existing):
        pass
    assert existing.is_dir()
    with rundir.open_run_dir(fresh) as path:
        (fresh / T.SUMMARY).write_text("{}")
    assert sorted(os.listdir(path)) == sorted([rundir.LOCK_NAME, T.SUMMARY])
