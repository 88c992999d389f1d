"""Long jobs and their outputs under hostile conditions not covered elsewhere: SIGTERM
(what ``kill``, ``timeout`` and batch schedulers send) during training and a
comparison, output names at the file system's length limit, videos written through
symbolic links and into full devices, checkpoints of a newer format, absurd
``--seeds``, and FIFOs in place of checkpoints, results and videos.

The training runs use the tiny video and the reference run of test_train_resume.
"""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rpmref.balls import checkpoint as ckpt
from rpmref.balls import runstore
from rpmref.balls import trainer as T
from rpmref.balls.rundir import name_max
from rpmref.cli import main
from rpmref.cli import compare as cli_compare
from rpmref.cli import make as cli_make
from test_train_resume import (  # noqa: F401 (fixtures)
    ROOT, _temp_files, assert_same_run, reference, train_args, videos)

SIGTERM_EXIT = 128 + signal.SIGTERM

# A child that runs ``rpmref ARGS`` and sends itself SIGTERM at a chosen point; started
# in its own session, so that it may signal its whole process group as ``timeout`` does.
CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from rpmref.balls import runstore, trainer
    from rpmref.cli import main

    point, n = (sys.argv[1], int(sys.argv[2])) if __name__ == "__main__" else ("", 0)
    count = [0]

    def term():
        os.killpg(os.getpgid(0), signal.SIGTERM)   # this process and its workers

    if point.startswith("step"):        # in the middle of step n
        real_step = trainer.train_step
        def train_step(*args):
            count[0] += 1
            result = real_step(*args)
            if count[0] == n:
                term()
            return result
        trainer.train_step = train_step
    if point == "step-then-write":      # and again while the checkpoint is written
        real_replace = os.replace
        def replace(src, dst):
            if count[0] >= n and os.path.basename(dst) == "checkpoint.npz":
                term()
            real_replace(src, dst)
        os.replace = replace
    if point == "checkpoint":           # the n-th checkpoint written, not yet renamed
        real_replace = os.replace
        def replace(src, dst):
            if os.path.basename(dst) == "checkpoint.npz":
                count[0] += 1
                if count[0] == n:
                    term()
            real_replace(src, dst)
        os.replace = replace
    if point == "saved":                # after the n-th finished run is stored
        real_save = runstore.save
        def save(*args):
            real_save(*args)
            count[0] += 1
            if count[0] == n:
                term()
        runstore.save = save
    if __name__ == "__main__":          # not in the comparison's spawned workers
        sys.exit(main(sys.argv[3:]))
""")


def run_child(tmp_path, point, n, argv):
    child = tmp_path / "child.py"
    child.write_text(CHILD.format(root=ROOT))
    return subprocess.run([sys.executable, str(child), point, str(n)] + argv,
                          capture_output=True, text=True, timeout=300, start_new_session=True)


# ---------------------------------------------------------------- SIGTERM


@pytest.mark.parametrize("point, n, step", [
    ("step", 5, 4),              # mid-epoch: the completed steps are checkpointed
    ("checkpoint", 2, 6),        # during the end-of-epoch checkpoint write
    ("step-then-write", 8, 7),   # a second SIGTERM while the checkpoint is written
])
def test_sigterm_checkpoints_like_ctrl_c_and_resumes_to_the_same_run(
        videos, reference, tmp_path, point, n, step):
    """SIGTERM used to end training at once, silently (killed by the signal): the steps
    since the last epoch were lost and no line said what was kept. Now it is handled as
    Ctrl-C: the last completed step is checkpointed, one line, exit 143, and --resume
    gives the uninterrupted run to the bit."""
    out = tmp_path / "run"
    proc = run_child(tmp_path, point, n, train_args(videos, out))
    assert proc.returncode == SIGTERM_EXIT, proc.stderr
    assert proc.stderr == (f"rpmref balls train: interrupted: checkpoint {out / T.CHECKPOINT} "
                           f"holds step {step}; continue with --resume\n")
    assert ckpt.load_checkpoint(out / T.CHECKPOINT)["meta"]["step"] == step
    assert _temp_files(out) == []
    assert main(train_args(videos, out, "--resume")) == 0
    assert_same_run(out, reference)


def test_sigterm_to_a_comparison_and_its_workers_keeps_the_finished_runs(tmp_path, capsys):
    """``timeout`` signals the comparison and its worker processes: the finished runs are
    kept, one line says so (no traceback, no leaked-semaphore warnings), exit 143; the
    rerun trains only the rest."""
    out = tmp_path / "out"
    argv = ["balls", "compare", "--quick", "--seeds", "1", "--critics", "rbf,cosine",
            "--no-progress", "--out", str(out)]
    proc = run_child(tmp_path, "saved", 1, argv + ["--jobs", "2"])
    assert proc.returncode == SIGTERM_EXIT, proc.stderr
    kept = len(runstore.load(str(out), "results"))
    assert kept >= 1
    assert proc.stderr == (
        f"rpmref balls compare: interrupted; {kept} finished run{'s are' if kept > 1 else ' is'} "
        f"kept in {out / 'results.partial.json'}: run the same command again to train only "
        f"the rest\n")
    assert main(argv + ["--jobs", "1"]) == 0
    assert f"{kept} finished earlier" in capsys.readouterr().out


def test_sigterm_handler_is_restored_after_a_command(tmp_path):
    """The command line's SIGTERM handling lasts only while a command runs."""
    before = signal.getsignal(signal.SIGTERM)
    assert main(["proofs", "--list"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------- output names


def _forbid_simulation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the video was simulated before its output was checked")
    monkeypatch.setattr(cli_make, "simulate", refuse)


@pytest.mark.parametrize("flag", ["--out", "--preview", "--gif"])
def test_a_name_longer_than_the_file_system_allows_is_refused_before_any_work(
        tmp_path, capsys, monkeypatch, flag):
    """It used to pass the checks, and the write failed (exit 1) after the work."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    _forbid_simulation(monkeypatch)
    suffix = {"--out": ".npz", "--preview": ".png", "--gif": ".gif"}[flag]
    name = "ü" * (name_max(str(tmp_path)) // 2) + suffix  # over the limit in bytes
    paths = {"--out": str(tmp_path / "v.npz"), flag: str(tmp_path / name)}
    argv = ["balls", "make", "--frames", "4", "--size", "12", "--diameter", "3"]
    assert main(argv + [x for item in paths.items() for x in item]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rpmref balls make: error: {flag} ") and err.count("\n") == 1
    assert f"the file name is {len(os.fsencode(name))} bytes long" in err
    assert os.listdir(tmp_path) == []


def test_a_name_of_the_longest_legal_length_is_written(tmp_path, capsys):
    """Its temporary file's name (".NAME-<random>.tmp") used to be too long: exit 1 after
    the work. The temporary name is shortened instead."""
    name = "x" * (name_max(str(tmp_path)) - 4) + ".npz"
    path = tmp_path / name
    assert main(["balls", "make", "--frames", "4", "--size", "12", "--diameter", "3",
                 "--out", str(path)]) == 0, capsys.readouterr().err
    assert os.listdir(tmp_path) == [name]
    assert ckpt.fingerprint(np.load(path)["frames"])  # a complete video


def test_a_video_is_written_through_a_symbolic_link(tmp_path, capsys):
    """save_video replaced the link with a file; now it writes the file the link names,
    as every other output does."""
    (tmp_path / "data").mkdir()
    link = tmp_path / "video.npz"
    link.symlink_to(tmp_path / "data" / "real.npz")
    assert main(["balls", "make", "--frames", "4", "--size", "12", "--diameter", "3",
                 "--out", str(link)]) == 0
    assert link.is_symlink() and (tmp_path / "data" / "real.npz").is_file()
    assert sorted(os.listdir(tmp_path)) == ["data", "video.npz"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_video_into_a_full_device_is_one_line_and_keeps_the_link(tmp_path, capsys):
    """A link to /dev/full was replaced by a regular file and the run 'succeeded'."""
    link = tmp_path / "video.npz"
    link.symlink_to("/dev/full")
    assert main(["balls", "make", "--frames", "4", "--size", "12", "--diameter", "3",
                 "--out", str(link)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert link.is_symlink() and os.listdir(tmp_path) == ["video.npz"]


# ---------------------------------------------------------------- checkpoints and arguments


def test_a_checkpoint_of_a_newer_format_is_not_called_corrupt(videos, tmp_path, capsys):
    """It was 'corrupt ... start again with --overwrite', advice that throws away a newer
    version's run; now the message says which version to resume it with."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "2")) == 0
    path = out / T.CHECKPOINT
    with np.load(path) as z:
        data = dict(z)
    meta = str(data["meta"]).replace(ckpt.FORMAT, "rpmref-checkpoint-v99")
    np.savez(path, **dict(data, meta=np.array(meta)))
    before = path.read_bytes()
    capsys.readouterr()
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err == (f"rpmref balls train: error: checkpoint {path} was written by a newer "
                   f"rpmref (format 'rpmref-checkpoint-v99'; this version reads "
                   f"rpmref-checkpoint-v1 and rpmref-checkpoint-v2): resume it with that "
                   f"version\n")
    assert path.read_bytes() == before
    with pytest.raises(ckpt.NewerCheckpointError):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize("seeds", ["1001", str(2 ** 70)])
def test_compare_refuses_more_seeds_than_it_can_mean(seeds, tmp_path, capsys, monkeypatch):
    """2**70 seeds raised OverflowError with a traceback; 10**8 planned runs in memory for
    minutes (8 GB) before the first one trained."""
    def refuse(*args, **kwargs):
        raise AssertionError("the comparison started")
    monkeypatch.setattr(cli_compare, "_run_planned", refuse)
    with pytest.raises(SystemExit) as exit_info:
        main(["balls", "compare", "--seeds", seeds, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seeds: expected a positive integer of at most 1000" in err
    assert err.count("\n") == 1


# ---------------------------------------------------------------- files that are not files


@pytest.fixture
def alarm():
    """Fail, instead of hanging, if the test blocks for 20 s (reading a FIFO waits for a
    writer forever)."""
    def expired(signum, frame):
        raise AssertionError("blocked: the reader opened the FIFO")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_checkpoint_that_is_a_fifo_is_refused_at_once(videos, tmp_path, capsys, alarm):
    """--resume opened a FIFO named checkpoint.npz and waited for a writer forever."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "2")) == 0
    path = out / T.CHECKPOINT
    path.unlink()
    os.mkfifo(path)
    capsys.readouterr()
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"checkpoint {path} is corrupt: it is a named pipe (FIFO), not a regular file" in err
    with pytest.raises(ckpt.CorruptCheckpointError, match="named pipe"):
        ckpt.load_checkpoint(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("name", ["results.json", "results.partial.json",
                                  "results.partial.npz"])
def test_comparison_files_that_are_fifos_are_refused_at_once(tmp_path, alarm, name):
    """A FIFO in place of a finished or partial result blocked the comparison forever."""
    from rpmref.balls import compare
    if name == "results.partial.npz":
        runstore.save(str(tmp_path), "results", {"k": runstore.entry({"seed": 0}, {})})
    os.mkfifo(tmp_path / name)
    if name == "results.json":
        assert compare.read_finished(str(tmp_path), "results") == (
            None, "it is a named pipe (FIFO), not a regular file")
    else:
        with pytest.raises(ValueError, match=f"{name}: it is corrupt \\(it is a named pipe"):
            runstore.load(str(tmp_path), "results")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_load_video_refuses_a_fifo_at_once(tmp_path, alarm):
    from rpmref import load_video
    path = tmp_path / "video.npz"
    os.mkfifo(path)
    with pytest.raises(ValueError, match="is a named pipe \\(FIFO\\), not a regular file"):
        load_video(path)


# ---------------------------------------------------------------- symbolic links in a loop


def _loop(tmp_path):
    """a -> b -> a, in tmp_path; returns a."""
    (tmp_path / "a.npz").symlink_to(tmp_path / "b.npz")
    (tmp_path / "b.npz").symlink_to(tmp_path / "a.npz")
    return tmp_path / "a.npz"


@pytest.mark.parametrize("inside", [False, True])
def test_a_video_onto_a_loop_of_links_is_refused_before_any_work(tmp_path, capsys,
                                                                  monkeypatch, inside):
    """balls make replaced the looping link with the video and exited 0."""
    _forbid_simulation(monkeypatch)
    out = _loop(tmp_path) / "v.npz" if inside else _loop(tmp_path)
    assert main(["balls", "make", "--frames", "4", "--size", "12", "--diameter", "3",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"rpmref balls make: error: --out {out}: its symbolic links form a loop "
                   "(too many levels of symbolic links)\n")
    assert os.path.islink(tmp_path / "a.npz") and os.path.islink(tmp_path / "b.npz")


def test_save_video_onto_a_loop_of_links_raises_and_keeps_them(tmp_path):
    from rpmref import BallsConfig, make_video, save_video
    config = BallsConfig(n_frames=4, size=12, diameter=3.0)
    link = _loop(tmp_path)
    with pytest.raises(OSError, match="Too many levels of symbolic links") as info:
        save_video(link, *make_video(config), config)
    assert info.value.filename == str(link)
    assert os.path.islink(link) and sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_an_output_directory_on_a_loop_of_links_is_named_a_loop(videos, tmp_path, capsys,
                                                                command):
    """The message said the link pointed at something that does not exist."""
    out = _loop(tmp_path)
    argv = (train_args(videos, out, "--steps", "2") if command == "train" else
            ["balls", "compare", "--quick", "--seeds", "1", "--out", str(out)])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"rpmref balls {command}: error: --out {out}: its symbolic links form a "
                   "loop (too many levels of symbolic links)\n")


# ---------------------------------------------------------------- parents of a failed --out


@pytest.mark.parametrize("command", ["train", "compare"])
def test_parents_made_for_an_out_that_cannot_be_made_are_removed(videos, tmp_path, capsys,
                                                                 command):
    """--out a/x/<name too long>/c created a/x, failed on the long name, and left a/x."""
    (tmp_path / "keep").mkdir()
    out = tmp_path / "a" / "x" / ("b" * (name_max(str(tmp_path)) + 1)) / "c"
    argv = (train_args(videos, out, "--steps", "2") if command == "train" else
            ["balls", "compare", "--quick", "--seeds", "1", "--out", str(out)])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "File name too long" in err
    assert os.listdir(tmp_path) == ["keep"]


def test_remove_directories_skips_those_never_made_and_keeps_a_used_one(tmp_path):
    from rpmref.balls.rundir import remove_directories
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "note").write_text("someone's")
    remove_directories([str(tmp_path / "a" / "x" / "never"), str(tmp_path / "a" / "x"),
                        str(tmp_path / "a")])
    assert sorted(os.listdir(tmp_path / "a")) == ["note"]


# ---------------------------------------------------------------- JSON nested too deeply

DEEP = "[" * 100_000 + "]" * 100_000   # json's decoder recurses once per level


def test_a_checkpoint_whose_meta_is_nested_too_deeply_is_corrupt(videos, tmp_path, capsys):
    """json raised RecursionError: a traceback instead of one line."""
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "2")) == 0
    path = out / T.CHECKPOINT
    with np.load(path) as z:
        data = dict(z)
    np.savez(path, **dict(data, meta=np.array(DEEP)))
    capsys.readouterr()
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"checkpoint {path} is corrupt: its meta is JSON nested too deeply" in err


def test_a_video_whose_config_is_nested_too_deeply_is_refused(videos, tmp_path):
    from rpmref import load_video
    with np.load(videos[0]) as z:
        data = dict(z)
    path = tmp_path / "deep.npz"
    np.savez(path, **dict(data, config=np.array(DEEP)))
    with pytest.raises(ValueError, match="has an invalid config: JSON nested too deeply"):
        load_video(path)


@pytest.mark.parametrize("name", ["results.json", "results.partial.json"])
def test_comparison_files_nested_too_deeply_are_corrupt(tmp_path, name):
    from rpmref.balls import compare
    (tmp_path / name).write_text(DEEP)
    if name == "results.json":
        saved, reason = compare.read_finished(str(tmp_path), "results")
        assert saved is None and reason.startswith("JSON nested too deeply")
    else:
        with pytest.raises(ValueError, match=f"{name}: it is corrupt \\(JSON nested too deeply"):
            runstore.load(str(tmp_path), "results")


# ---------------------------------------------------------------- damaged archives


def _npy_header_that_does_not_tokenize():
    """An .npy (version 1.0) whose header leaves a bracket open: NumPy's fallback parser
    raised tokenize.TokenError."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _npy_of_ten_tebibytes():
    """An .npy whose header declares 2.75e12 float32 values (10 TiB) and holds 64 bytes."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2750000000000,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return (b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
            + bytes(64))


def _damage(path, how, member):
    """Rewrite the .npz at ``path`` with ``member`` damaged as ``how`` says."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = {info.filename: z.read(info) for info in z.infolist()}
    name = member + ".npy"
    with zipfile.ZipFile(path, "w") as z:
        for other, data in members.items():
            if other != name:
                z.writestr(other, data)
            elif how == "not .npy":           # NumPy returns such a member as bytes
                z.writestr(member, b"not an array")
            elif how == "header":
                z.writestr(name, _npy_header_that_does_not_tokenize())
            elif how == "huge":               # NumPy allocates the declared shape first
                z.writestr(name, _npy_of_ten_tebibytes())
            elif how == "deflate":            # zlib.error, invalid block type
                z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
            else:
                z.writestr(name, data)
    if how == "deflate":
        raw = bytearray(open(path, "rb").read())
        start = raw.index(name.encode()) + len(name)   # the data follows the local header
        raw[start] = 0xFF
        open(path, "wb").write(bytes(raw))
    if how == "encrypted":  # flagged so in the directory: zipfile wants a password
        raw = bytearray(open(path, "rb").read())
        entry = raw.rindex(b"PK\x01\x02", 0, raw.rindex(name.encode()))
        raw[entry + 8] |= 0x1
        open(path, "wb").write(bytes(raw))
    if how == "offset":  # the directory claims to start later: a seek to a negative offset
        raw = bytearray(open(path, "rb").read())
        end = raw.rindex(b"PK\x05\x06")
        offset = int.from_bytes(raw[end + 16:end + 20], "little") + 1000
        raw[end + 16:end + 20] = offset.to_bytes(4, "little")
        open(path, "wb").write(bytes(raw))


DAMAGES = ["not .npy", "header", "encrypted", "deflate", "offset", "huge"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_video_is_one_line_naming_it(videos, tmp_path, capsys, how):
    """zlib.error, RuntimeError, TokenError and a member's bytes (AttributeError) escaped
    load_video: a traceback from balls train --video."""
    import shutil
    from rpmref import load_video
    path = tmp_path / "video.npz"
    shutil.copy(videos[0], path)
    _damage(path, how, "frames")
    with pytest.raises(ValueError, match=str(path)):
        load_video(path)
    out = tmp_path / "run"
    argv = ["balls", "train", "--out", str(out), "--video", str(path), "--heldout-video",
            videos[1], "--steps", "2", "--batch", "6", "--channels", "2", "--kernel", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpmref balls train: error: --video: ") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_checkpoint_is_corrupt(videos, tmp_path, capsys, how):
    out = tmp_path / "run"
    assert main(train_args(videos, out, "--steps", "2")) == 0
    path = out / T.CHECKPOINT
    _damage(path, how, "params/conv1_w")
    capsys.readouterr()
    assert main(train_args(videos, out, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint {path} is corrupt" in err


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_partial_npz_is_corrupt(tmp_path, how):
    runstore.save(str(tmp_path), "results",
                  {"k": runstore.entry({"seed": 0}, {}, {"z": np.arange(100.0)})})
    path = tmp_path / "results.partial.npz"
    with np.load(path) as z:
        member = z.files[0]
    _damage(path, how, member)
    with pytest.raises(ValueError, match=f"cannot read {path}: it is corrupt"):
        runstore.load(str(tmp_path), "results")


# ---------------------------------------------------------------- Ctrl-C while starting up

# Ctrl-C while NumPy is being imported, as on a slow start (1-3 s on a busy machine)
INTERRUPTED_IMPORT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})

    class Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == "numpy":
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, Interrupt())
    from rpmref.cli import main
    sys.exit(main(["balls", "train", "--out", "run", "--steps", "2"]))
""")


def test_ctrl_c_while_the_command_imports_numpy_is_one_line_and_exit_130(tmp_path):
    """``import rpmref`` loaded NumPy, autograd and every command before main() ran, so a
    Ctrl-C in the first seconds was a 30-line traceback (exit -SIGINT); the package's
    names are now imported on first use, inside main()'s handler."""
    child = tmp_path / "child.py"
    child.write_text(INTERRUPTED_IMPORT.format(root=ROOT))
    done = subprocess.run([sys.executable, str(child)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (130, "rpmref: interrupted\n")
    assert os.listdir(tmp_path) == ["child.py"]


def test_importing_the_command_line_loads_neither_numpy_nor_autograd():
    code = ("import sys; sys.path.insert(0, %r); import rpmref.cli; "
            "print(sorted(m for m in ('numpy', 'autograd') if m in sys.modules))" % ROOT)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout == "[]\n", done.stderr
