"""`rpmref balls compare` and its files: damaged partial or finished files are refused in
one line naming them, every output is checked before the first run, a failed write
names its file and says what is kept, and the atomic writer writes through links,
devices and pipes instead of replacing them."""
import contextlib
import errno
import io
import json
import os
import threading
import zipfile

import numpy as np
import pytest

from rpmref import cli
from rpmref.balls import compare, parallel, runstore
from rpmref.cli import compare as compare_command

PROG = "rpmref balls compare"
QUICK = ["balls", "compare", "--quick", "--seeds", "1", "--critics", "rbf", "--jobs", "1",
         "--no-progress"]


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def no_work(monkeypatch):
    """Training fails the test: the checks must come first."""
    def forbidden(*args, **kwargs):
        pytest.fail("the command started training before checking its files")
    monkeypatch.setattr(compare_command, "run_compare", forbidden)
    monkeypatch.setattr(compare_command, "run_sweep", forbidden)


def tiny(**changes):
    train_config, balls_config = compare.quick_configs()
    return dict(dict(seeds=(0,), critics=("rbf",), train_config=train_config,
                     balls_config=balls_config, curve_every=1, progress=False, jobs=1,
                     log=lambda line: None), **changes)


# --------------------------------------------------------------------------
# 1. corrupt partial files


def stored_partial(out, stem="results"):
    """Partial files of one run with a (figure) array, as a comparison writes them."""
    run = runstore.entry({"seed": 0}, {"critic": "rbf"}, {"z/train": np.zeros((300, 6))})
    runstore.save(str(out), stem, {runstore.settings_key(run["settings"]): run})
    return runstore.partial_paths(str(out), stem)


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npy_member(array, keep=None):
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    return data if keep is None else data[:keep]


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def partial_json(runs=None, drop_runs=False):
    data = {"format": runstore.FORMAT, "runs": runs}
    if drop_runs:
        del data["runs"]
    return json.dumps(data).encode()


CORRUPTIONS = {  # name -> (file, how to damage it: bytes, or a function of the old bytes)
    "truncated npz": ("npz", lambda old: old[:2000]),
    "garbage npz": ("npz", b"\x93NUMPY garbage " * 200),
    "text npz": ("npz", b"not an archive at all"),
    "empty npz": ("npz", b""),
    "object array npz": ("npz", npz_bytes(a=np.array([{}, 1], dtype=object))),
    "bare npy": ("npz", npy_member(np.zeros(3))),
    "truncated member": ("npz", zip_of({"x:z/train.npy": npy_member(np.zeros(1000), 500)})),
    "non-array member": ("npz", zip_of({"x:z/train.npy": b"garbage"})),
    "run without settings": ("json", partial_json(runs=[{}])),
    "settings not an object": ("json", partial_json(runs=[{"settings": 1, "record": {}}])),
    "no runs": ("json", partial_json(drop_runs=True)),
    "runs a number": ("json", partial_json(runs=5)),
    "not UTF-8": ("json", b"\xff\xfe"),
    "truncated json": ("json", lambda old: old[:50]),
}


def damage(out, stem, kind):
    json_path, npz_path = stored_partial(out, stem)
    which, change = CORRUPTIONS[kind]
    path = npz_path if which == "npz" else json_path
    with open(path, "rb") as fh:
        old = fh.read()
    with open(path, "wb") as fh:
        fh.write(change(old) if callable(change) else change)
    return path


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_partial_file_is_named_in_one_line(kind, tmp_path, capsys, no_work):
    """Each used to be a traceback (BadZipFile, KeyError 'settings' / 'runs') or a
    message naming no file (''int' object is not iterable', 'utf-8' codec..., NumPy's
    advice to load it unsafely)."""
    path = damage(tmp_path, "results", kind)
    content = open(path, "rb").read()
    assert cli.main(QUICK + ["--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert f"cannot read {path}: it is corrupt (" in err, err
    assert "move it away to start afresh" in err and "unsafely" not in err
    assert open(path, "rb").read() == content  # never discarded
    with pytest.raises(ValueError, match="it is corrupt"):  # the library: the same error
        runstore.load(str(tmp_path), "results")


@pytest.mark.parametrize("flag", ["--sweep", "--sweep-only"])
@pytest.mark.parametrize("kind", ["truncated npz", "runs a number", "not UTF-8"])
def test_a_corrupt_sweep_partial_file_is_refused_before_any_training(flag, kind, tmp_path,
                                                                     capsys, no_work):
    """With --sweep, the comparison used to train first and the sweep then fail."""
    path = damage(tmp_path, "sweep", kind)
    assert cli.main(QUICK + [flag, "--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert f"cannot read {path}: it is corrupt" in err and "move it away" in err


def test_a_stored_run_without_its_scores_is_corrupt(tmp_path):
    """A partial record of the right settings but without what the summaries read."""
    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        compare.run_compare(out_dir=out, **tiny(seeds=(0, 1), log=interrupt_at_first_run))
    store = runstore.load(out, "results")
    for entry in store.values():
        del entry["record"]["scores"]
    runstore.save(out, "results", store)
    with pytest.raises(ValueError, match=f"cannot read {tmp_path / 'results.partial.json'}: "
                                         f"it is corrupt .*lacks its scores"):
        compare.run_compare(out_dir=out, **tiny(seeds=(0, 1)))


def interrupt_at_first_run(line):
    if line.startswith("["):
        raise KeyboardInterrupt


# --------------------------------------------------------------------------
# 2. every output file checked before the first run


@pytest.mark.parametrize("name, extra", [
    ("fig1.png", []), ("results.md", []), ("results.json", []), ("results.partial.json", []),
    ("results.partial.npz", []), ("sweep.json", ["--sweep"]), ("sweep.md", ["--sweep"]),
    ("sweep.partial.npz", ["--sweep-only"]),
])
def test_an_output_file_that_is_a_directory_is_refused_at_once(name, extra, tmp_path, capsys,
                                                               no_work):
    """fig1.png as a directory used to fail after every run had trained; results.md as
    one named results.md.tmp and left it behind."""
    (tmp_path / name).mkdir()
    assert cli.main(QUICK + extra + ["--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert f"--out {tmp_path}: {tmp_path / name} is a directory" in err, err
    assert sorted(os.listdir(tmp_path)) == [name]


def test_the_library_checks_its_outputs_before_training(tmp_path, monkeypatch):
    (tmp_path / "fig1.png").mkdir()
    monkeypatch.setattr(compare, "_run_all", lambda *a, **k: pytest.fail("trained first"))
    with pytest.raises(ValueError, match=f"{tmp_path / 'fig1.png'} is a directory"):
        compare.run_compare(out_dir=str(tmp_path), **tiny())


def test_temporary_files_a_killed_writer_left_are_removed(tmp_path):
    """With the lock held no live writer owns them; the final files are written."""
    for name in (".results.partial.npz-0a1b2c.tmp", ".fig1.png-0a1b2c.tmp.png",
                 "results.md.tmp"):
        (tmp_path / name).write_text("left by a killed writer")
    lines = []
    compare.run_compare(out_dir=str(tmp_path), **tiny(log=lines.append))
    assert lines[0] == "comparison: 1 run, 1 to train in this process"  # not "1 runs ... on"
    assert sorted(os.listdir(tmp_path)) == sorted(
        [runstore.LOCK_NAME, "results.json", "results.md"]
        + (["fig1.png"] if compare._have_matplotlib() else []))


# --------------------------------------------------------------------------
# 3. write errors


@pytest.fixture
def full_disk_at(monkeypatch):
    """full_disk_at(n): the n-th flush to disk of results.partial.npz fails with ENOSPC
    (as a full disk does), earlier ones succeed."""
    real_fsync = os.fsync

    def arm(failing_call):
        calls = []

        def fsync(fd):
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            if name.startswith(".results.partial.npz-"):
                calls.append(name)
                if len(calls) == failing_call:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    return arm


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fds through /proc")
def test_a_full_disk_names_the_file_and_says_what_is_kept(tmp_path, capsys, full_disk_at):
    """It used to say only 'No space left on device' and leave results.partial.npz.tmp."""
    full_disk_at(2)  # the first run is saved, the second is not
    out = tmp_path / "c"
    assert cli.main(QUICK[:3] + ["--seeds", "2"] + QUICK[5:] + ["--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert err == (f"{PROG}: error: {out / 'results.partial.npz'}: No space left on device; "
                   f"1 finished run is kept in {out / 'results.partial.json'}: run the same "
                   f"command again once this is fixed to train only the rest\n")
    assert sorted(os.listdir(out)) == [runstore.LOCK_NAME, "results.partial.json",
                                       "results.partial.npz"]  # no temporary file left


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fds through /proc")
def test_a_full_disk_before_any_run_is_kept_says_nothing_is_kept(tmp_path, capsys,
                                                                 full_disk_at):
    full_disk_at(1)
    out = tmp_path / "new" / "c"
    assert cli.main(QUICK + ["--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert err == f"{PROG}: error: {out / 'results.partial.npz'}: No space left on device\n"
    assert os.listdir(tmp_path) == []  # the directories it created, left empty, removed


def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    runstore.write_json(path, {"old": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        runstore.write_json(path, {"new": 2})
    assert info.value.filename == str(path) and info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ["results.json"]
    assert json.loads(path.read_text()) == {"old": 1}


# --------------------------------------------------------------------------
# 4. links, devices and pipes are written through, never replaced


def test_a_link_to_a_file_is_written_through(tmp_path):
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "record.json"
    target.write_text("old")
    link = tmp_path / "record.json"
    link.symlink_to(target)
    runstore.write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(target.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path / "data")) == ["record.json"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="/proc/self/fd links")
def test_a_link_to_this_processes_pipe_is_written_to(tmp_path):
    """`--json d/stdout` with d/stdout -> /proc/self/fd/1 (a pipe) used to print nothing
    and turn d/stdout into a regular file (and `--json /dev/stdout`, as root, would have
    replaced /dev/stdout)."""
    read_end, write_end = os.pipe()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write_end}")
    try:
        runstore.write_json(link, {"a": 1})
        os.close(write_end)
        with os.fdopen(read_end) as reader:
            assert json.loads(reader.read()) == {"a": 1}
    finally:
        with contextlib.suppress(OSError):
            os.close(write_end)
    assert link.is_symlink() and os.readlink(link) == f"/proc/self/fd/{write_end}"
    assert os.listdir(tmp_path) == ["stdout"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_written_to_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()), daemon=True)
    reader.start()
    runstore.write_json(fifo, {"a": 1})
    reader.join(10)
    assert json.loads(received[0]) == {"a": 1}
    assert fifo.is_fifo() and os.listdir(tmp_path) == ["fifo"]


def test_a_link_to_a_character_device_stays_a_link(tmp_path):
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    runstore.write_json(link, {"a": 1})
    assert link.is_symlink() and os.listdir(tmp_path) == ["null"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="/proc/self/fd links")
def test_structure_json_through_a_link_to_a_pipe(tmp_path, monkeypatch):
    read_end, write_end = os.pipe()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write_end}")
    received = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_end).read()),
                              daemon=True)
    reader.start()
    try:
        assert cli.main(["structure", "--quick", "--seeds", "1", "--steps", "2", "--geometry",
                         "line", "--json", str(link)]) == 0
    finally:
        os.close(write_end)
    reader.join(10)
    assert "invariance" in json.loads(received[0])
    assert link.is_symlink()


# --------------------------------------------------------------------------
# 5.–8. arguments, finished results, interruptions, debris


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, no_work):
    """It used to write to compare_quick_out/."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(QUICK + ["--out", ""]) == 2
    assert "--out must be a directory path; got ''" in one_line_error(capsys)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, flags", [
    (["--lrs", "0.5"], ["--lrs", "--sweep"]),
    (["--optimizers", "sgd"], ["--optimizers", "--sweep"]),
    (["--sweep-only", "--lr", "0.1"], ["--lr", "--sweep-only", "--lrs"]),
    (["--sweep-only", "--optimizer", "sgd"], ["--optimizer", "--sweep-only", "--optimizers"]),
    (["--sweep-only", "--figure-seed", "0"], ["--figure-seed", "--sweep-only"]),
])
def test_options_that_cannot_apply_are_refused(argv, flags, tmp_path, capsys, no_work):
    """They used to be ignored silently."""
    assert cli.main(QUICK + argv + ["--out", str(tmp_path / "c")]) == 2
    err = one_line_error(capsys)
    assert all(flag in err for flag in flags), err
    assert not (tmp_path / "c").exists()


def test_sweep_options_with_a_sweep_are_accepted(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(compare_command, "run_compare", lambda *a, **k: pytest.fail("--sweep-only"))
    monkeypatch.setattr(compare_command, "run_sweep",
                        lambda *a, **k: calls.append(k) or pytest.skip("seen"))
    with pytest.raises(pytest.skip.Exception):
        cli.main(QUICK + ["--sweep-only", "--lrs", "0.5", "--optimizers", "sgd", "--out",
                          str(tmp_path)])
    assert calls[0]["optimisers"] == ("sgd",) and calls[0]["learning_rates"] == (0.5,)


@pytest.mark.parametrize("content", [b'{"settings": {"seeds": [0], "crit', b"[1, 2]",
                                     b'{"summary": {}}', b"\xff\xfe"])
def test_an_unreadable_finished_result_is_called_corrupt(content, tmp_path, capsys, no_work):
    """A truncated results.json used to be 'a finished comparison of other settings'."""
    path = tmp_path / "results.json"
    path.write_bytes(content)
    assert cli.main(QUICK + ["--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert f"{path} is unreadable or corrupt" in err and "--overwrite" in err, err
    assert "other settings" not in err and path.read_bytes() == content
    with pytest.raises(ValueError, match="unreadable or corrupt"):
        compare.run_compare(out_dir=str(tmp_path), **tiny())


def test_an_interruption_before_any_run_finished_keeps_nothing(tmp_path, capsys, monkeypatch):
    """It used to say that finished runs were kept; the empty directory it made is removed."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_command, "run_compare", interrupted)
    out = tmp_path / "c"
    assert cli.main(QUICK + ["--out", str(out)]) == 130
    assert capsys.readouterr().err == (f"{PROG}: interrupted; no run had finished, so none "
                                       f"is kept\n")
    assert os.listdir(tmp_path) == []


def test_an_unreachable_scheduler_leaves_no_directory(tmp_path, capsys, monkeypatch):
    """`--dask tcp://127.0.0.1:1` (nothing listening) used to leave an empty --out."""
    pytest.importorskip("distributed")

    @contextlib.contextmanager
    def unreachable(spec):
        raise OSError(f"Timed out trying to connect to {spec} after 10 s")
        yield

    monkeypatch.setattr(parallel, "dask_client", unreachable)
    argv = ["balls", "compare", "--quick", "--no-progress", "--dask", "tcp://127.0.0.1:1"]
    assert cli.main(argv + ["--out", str(tmp_path / "new" / "c")]) == 1
    err = one_line_error(capsys)
    assert "--dask tcp://127.0.0.1:1: Timed out trying to connect" in err
    assert os.listdir(tmp_path) == []
    (tmp_path / "mine").mkdir()  # a directory the command did not create stays
    assert cli.main(argv + ["--out", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine").is_dir()


def test_workers_are_counted_in_the_singular_too():
    class Client:
        class scheduler:
            address = "tcp://127.0.0.1:8786"

        def scheduler_info(self):
            return {"workers": {"tcp://127.0.0.1:4000": {"nthreads": 1}}}

    assert parallel.describe(client=Client()) == "Dask cluster tcp://127.0.0.1:8786 (1 worker)"


def test_a_diverging_run_is_one_line_naming_it_without_warnings(tmp_path, capsys):
    """Bug: a run whose loss became NaN ended the comparison in a NonFiniteLossError
    traceback after a page of NumPy overflow warnings; now one line, exit 1, naming the
    critic, seed, optimiser and learning rate."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = cli.main([*QUICK, "--lr", "1e30", "--out", str(tmp_path / "out")])
    err = one_line_error(capsys)
    assert code == 1 and "Warning" not in err
    assert "the rbf run of seed 0 (adam, lr 1e+30) diverged" in err and "--lr" in err
