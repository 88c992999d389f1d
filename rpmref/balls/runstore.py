"""Finished training runs of a comparison that has not finished yet, on disk.

A long comparison (``rpmref balls compare``) writes every run as it finishes to
``STEM.partial.json`` (records) and ``STEM.partial.npz`` (arrays, e.g. the
latents the figure is drawn from), so that a rerun after an interruption trains
only the runs still missing. Every run is stored under its full *settings*
(critic, seed, training config, videos, evaluation names, ...): a run is reused
only by a task with exactly the same settings, and runs of other settings in
the same files are kept, never dropped.

Both files are replaced atomically (written beside, then ``os.replace``:
:func:`replacing`), the arrays first: an interruption at any moment leaves the previous state whole,
and a record whose arrays are missing is simply trained again. One process at a
time writes a directory (``locked``).
"""
import contextlib
import errno
import glob
import hashlib
import io
import json
import os
import stat
import sys

import filelock
import numpy as np

from rpmref.balls.rundir import (DAMAGED_NPZ_ERRORS, TOO_DEEP, create_temp_file, link_loop,
                                 special_file_kind)

FORMAT = "rpmref.balls runs, format 1"
LOCK_NAME = ".rpmref-compare.lock"


class StoreLockedError(OSError):
    """Another process is writing partial or final results to this directory (an OSError, errno EBUSY).

    Examples
    --------
    >>> import errno
    >>> from rpmref.balls.runstore import StoreLockedError
    >>> StoreLockedError(errno.EBUSY, "busy", "out/.rpmref-compare.lock").errno == errno.EBUSY
    True
    """


@contextlib.contextmanager
def locked(out_dir):
    """Context manager: hold ``out_dir``'s lock while the block runs.

    ``filelock``; the operating system drops it when the process ends, however it ends.

    Parameters
    ----------
    out_dir : str or None
        The directory (created if needed); None takes no lock.

    Yields
    ------
    None

    Raises
    ------
    StoreLockedError
        At once if another process holds the lock.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.runstore import locked
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with locked(tmp):
    ...         print(os.listdir(tmp))
    ['.rpmref-compare.lock']
    """
    if out_dir is None:
        yield
        return
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, LOCK_NAME)
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise StoreLockedError(errno.EBUSY, "another comparison is writing to this directory "
                               "(it holds the lock file); wait for it to finish or use "
                               "another directory", path) from None
    try:
        yield
    finally:
        lock.release()


def settings_key(settings):
    """The canonical text of a run's settings (dict keys sorted, tuples as lists).

    Parameters
    ----------
    settings : dict
        The run's settings.

    Returns
    -------
    str
        Compact JSON; equal settings give equal keys.

    Examples
    --------
    >>> from rpmref.balls.runstore import settings_key
    >>> settings_key({"seed": 0, "critic": "rbf", "seeds": (0, 1)})
    '{"critic":"rbf","seed":0,"seeds":[0,1]}'
    """
    return json.dumps(jsonable(settings), sort_keys=True, separators=(",", ":"))


def partial_paths(out_dir, stem):
    """(json path, npz path) of the partial files of ``stem`` in ``out_dir``.

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        The files' stem ("results", "sweep").

    Returns
    -------
    tuple of str
        ``out_dir/stem.partial.json`` and ``out_dir/stem.partial.npz``.

    Examples
    --------
    >>> from rpmref.balls.runstore import partial_paths
    >>> partial_paths("out", "results")
    ('out/results.partial.json', 'out/results.partial.npz')
    """
    return (os.path.join(out_dir, f"{stem}.partial.json"),
            os.path.join(out_dir, f"{stem}.partial.npz"))


def load(out_dir, stem):
    """The stored runs: {settings key: {"settings", "record", "arrays"}}; {} if none.

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        The files' stem.

    Returns
    -------
    dict
        Entries by :func:`settings_key`; "arrays" is a dict name → ndarray (empty if
        the run stored none).

    Raises
    ------
    ValueError
        Naming the file if it is not a partial file of this format or is corrupt
        (truncated, not JSON or not an .npz archive, runs missing their settings,
        arrays of object dtype, ...): "... is corrupt ...; move it away to start afresh".

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from rpmref.balls.runstore import entry, load, save, settings_key
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(load(tmp, "results"))
    ...     run = entry({"seed": 0}, {"r2": 0.9}, {"z": np.zeros(2)})
    ...     save(tmp, "results", {settings_key(run["settings"]): run})
    ...     stored = load(tmp, "results")
    {}
    >>> [(e["record"], e["arrays"]["z"]) for e in stored.values()]
    [({'r2': 0.9}, array([0., 0.]))]
    """
    json_path, npz_path = partial_paths(out_dir, stem)
    if not os.path.exists(json_path):
        return {}
    for path in (json_path, npz_path):
        kind = special_file_kind(path)
        if kind:  # reading a FIFO would wait for a writer forever
            raise _corrupt(path, f"it is {kind}, not a regular file")
    try:
        with open(json_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _corrupt(json_path, error) from None
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise _corrupt(json_path, TOO_DEEP) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{json_path} was not written by this version of rpmref (its runs are "
                         f"not stored by their settings, so they cannot be resumed); move it "
                         f"away to start afresh")
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise _corrupt(json_path, "its 'runs' is not a list" if "runs" in data
                       else "it has no 'runs'")
    for number, run in enumerate(runs, start=1):
        if not (isinstance(run, dict) and isinstance(run.get("settings"), dict)
                and isinstance(run.get("record"), dict)):
            raise _corrupt(json_path, f"run {number} is not a {{settings, record}} pair")
    arrays = _load_arrays(npz_path) if os.path.exists(npz_path) else {}
    entries = {}
    for run in runs:
        key = settings_key(run["settings"])
        entries[key] = {"settings": run["settings"], "record": run["record"],
                        "arrays": arrays.get(_run_id(key), {})}
    return entries


def _load_arrays(npz_path):
    """{run id: {name: array}} of a partial .npz; ValueError naming it if it is corrupt."""
    arrays = {}
    try:
        npz = np.load(npz_path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy
            raise ValueError("it is an .npy array, not an .npz archive")
        with npz:
            for name in npz.files:
                run_id, _, array_name = name.partition(":")
                value = npz[name]
                if not isinstance(value, np.ndarray):  # NumPy returns a non-.npy member's bytes
                    raise ValueError(f"its member {name!r} is not an array")
                arrays.setdefault(run_id, {})[array_name] = value
    except (ValueError,) + DAMAGED_NPZ_ERRORS as error:
        raise _corrupt(npz_path, error) from None
    except MemoryError as error:  # an array header may declare any shape
        raise _corrupt(npz_path, f"it declares arrays too large to load: {error}") from None
    except OSError as error:
        # unreadable (permissions, I/O): the OSError says so; EINVAL is a seek to a
        # negative offset that a damaged zip directory asked for
        if error.errno is not None and error.errno != errno.EINVAL:
            raise
        raise _corrupt(npz_path, error) from None  # NumPy's "cannot load file ..."
    return arrays


def _corrupt(path, reason):
    """The ValueError for a partial file that cannot be read."""
    reason = " ".join(str(reason).split())
    if "file contains pickled" in reason:  # NumPy's advice to load it unsafely is not ours
        reason = "not an .npz archive"
    elif "allow_pickle" in reason:
        reason = "it holds object arrays, which are never loaded"
    arrays = (" (then only the runs whose arrays it held are trained again)"
              if path.endswith(".npz") else "")
    return ValueError(f"cannot read {path}: it is corrupt ({reason}); move it away to start "
                      f"afresh{arrays}")


def save(out_dir, stem, entries):
    """Write ``entries`` (as returned by :func:`load`); removes the files if it is empty.

    Both files are replaced atomically, the arrays first.

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        The files' stem.
    entries : dict
        Entries by settings key, each from :func:`entry`.

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.runstore import entry, save, settings_key
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run = entry({"seed": 0}, {"r2": 0.9})
    ...     save(tmp, "results", {settings_key(run["settings"]): run})
    ...     print(sorted(os.listdir(tmp)))
    ...     save(tmp, "results", {})
    ...     print(os.listdir(tmp))
    ['results.partial.json']
    []
    """
    json_path, npz_path = partial_paths(out_dir, stem)
    if not entries:
        for path in (npz_path, json_path):
            if os.path.exists(path):
                os.remove(path)
        return
    arrays = {f"{_run_id(key)}:{name}": np.asarray(value)
              for key, entry in entries.items() for name, value in entry["arrays"].items()}
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _write_atomic(npz_path, buffer.getvalue(), binary=True)
    elif os.path.exists(npz_path):
        os.remove(npz_path)
    write_json(json_path, {"format": FORMAT, "runs": [
        {"settings": entry["settings"], "record": entry["record"]} for entry in entries.values()]})


def entry(settings, record, arrays=None):
    """A store entry.

    Parameters
    ----------
    settings : dict
        The run's settings (made JSON-ready).
    record : dict
        Its results (made JSON-ready).
    arrays : dict of ndarray, optional
        Named arrays (names without ':').

    Returns
    -------
    dict
        ``{"settings", "record", "arrays"}``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.runstore import entry
    >>> entry({"seeds": (0, 1)}, {"r2": np.float64(0.5)})
    {'settings': {'seeds': [0, 1]}, 'record': {'r2': 0.5}, 'arrays': {}}
    """
    return {"settings": jsonable(settings), "record": jsonable(record), "arrays": dict(arrays or {})}


def _run_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------
# JSON


def write_json(path, obj):
    """JSON with NaN written as null (strict JSON) and numpy values converted.

    Written to a temporary file first, so a Ctrl-C or a full disk during the write
    leaves the previous file whole (:func:`replacing`: a symbolic link is written
    through, a device or a pipe such as /dev/stdout directly).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    obj : object
        Anything :func:`jsonable` converts.

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from rpmref.balls.runstore import write_json
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "results.json")
    ...     write_json(path, {"r2": np.nan, "n": np.int64(3)})
    ...     print(open(path).read().split())
    ['{', '"r2":', 'null,', '"n":', '3', '}']
    """
    _write_atomic(path, json.dumps(jsonable(obj), indent=1, allow_nan=False))


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`replacing`).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    text : str
        Its contents.

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.runstore import write_text
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_text(os.path.join(tmp, "results.md"), "± 0.1")
    ...     print(os.listdir(tmp), open(os.path.join(tmp, "results.md"), encoding="utf-8").read())
    ['results.md'] ± 0.1
    """
    _write_atomic(path, text)


def jsonable(obj):
    """``obj`` made JSON-ready.

    numpy arrays and scalars become Python lists and numbers, tuples lists, dict keys
    strings and non-finite floats None.

    Parameters
    ----------
    obj : object
        Nested dicts, lists, tuples, numpy values and Python scalars.

    Returns
    -------
    object
        The converted copy.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.runstore import jsonable
    >>> jsonable({1: (np.float32(0.5), np.inf), "a": np.arange(2)})
    {'1': [0.5, None], 'a': [0, 1]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def _write_atomic(path, content, binary=False):
    """Write ``content`` to ``path`` with :func:`replacing`: all of it or nothing."""
    data = content if binary else content.encode("utf-8")
    with replacing(path) as target:
        direct = target == os.fspath(path)  # a pipe, a device, this process's stdout
        if direct:  # what this process printed before comes first
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        with open(target, "ab" if direct else "wb") as fh:
            fh.write(data)


@contextlib.contextmanager
def replacing(path, suffix=".tmp"):
    """Context manager: yields the path to write instead of ``path``, which then replaces it.

    The yielded path is a new temporary file beside the file ``path`` points to
    (symbolic links resolved, so a link is written through and stays a link);
    when the block ends it is flushed to disk and renamed over that file: a
    reader, a crash or a full disk sees the old file or the new one, never a
    part. On any error the temporary file is removed and an OSError names
    ``path``. A ``path`` that is not a regular file (a character device, a FIFO,
    a pipe such as /dev/stdout's target), or that is reached through /proc
    (/dev/stdout, /dev/fd/N: this process's own open file), is not replaced:
    ``path`` itself is yielded, to be written directly.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    suffix : str, default ".tmp"
        End of the temporary file's name (".tmp.png" for a writer that picks its
        format by the name).

    Yields
    ------
    str
        Where to write.

    Raises
    ------
    OSError
        Naming ``path`` (not the temporary file) if it cannot be written, or if its
        symbolic links form a loop (nothing is replaced).

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.runstore import replacing
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "notes.txt")
    ...     with replacing(path) as target:
    ...         with open(target, "w") as fh:
    ...             _ = fh.write("done")
    ...     print(os.listdir(tmp), open(path).read())
    ['notes.txt'] done
    """
    path = os.fspath(path)
    if _is_stream(path):
        try:
            yield path
        except OSError as error:
            raise _named(error, path) from None
        return
    if link_loop(path):  # realpath would stop inside the loop, and the rename replace a link
        raise _named(OSError(errno.ELOOP, os.strerror(errno.ELOOP)), path)
    final = os.path.realpath(path)
    try:
        fd, tmp = create_temp_file(os.path.dirname(final), f".{os.path.basename(final)}-",
                                   suffix)
        os.close(fd)
    except OSError as error:
        raise _named(error, path) from None
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)  # the writer may have closed it: flush it to disk
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise _named(error, path) from None
        raise


def remove_stale_temp_files(out_dir, names):
    """Delete temporary files a killed writer of ``names`` (in ``out_dir``) left behind.

    Those of :func:`replacing` (``.NAME-*.tmp*``) and of earlier versions
    (``NAME.tmp``, if a regular file). Call only while holding the directory's
    lock (:func:`locked`). Returns the names removed.

    Parameters
    ----------
    out_dir : str
        The directory.
    names : sequence of str
        The output files' names.

    Returns
    -------
    list of str
        The names removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.runstore import remove_stale_temp_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in (".results.json-0a1b2c.tmp", "results.md.tmp", "notes.tmp"):
    ...         open(os.path.join(tmp, name), "w").close()
    ...     print(remove_stale_temp_files(tmp, ["results.json", "results.md"]), os.listdir(tmp))
    ['.results.json-0a1b2c.tmp', 'results.md.tmp'] ['notes.tmp']
    """
    removed = []
    folder = glob.escape(out_dir)
    for name in names:
        paths = sorted(glob.glob(os.path.join(folder, f".{glob.escape(name)}-*.tmp*")))
        legacy = os.path.join(out_dir, f"{name}.tmp")
        if os.path.isfile(legacy) and not os.path.islink(legacy):
            paths.append(legacy)
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(os.path.basename(path))
    return removed


def _is_stream(path):
    """Is ``path`` something to write directly, not to replace by a rename?

    True if it exists and is not a regular file or a directory (a device, a FIFO),
    if it is reached through a link in /proc (/dev/stdout, /dev/fd/N,
    /proc/self/fd/N: this process's own open files, which may be a pipe), or if
    its resolved path is not the file itself (a deleted file)."""
    try:
        st = os.stat(path)
    except OSError:
        return False  # missing (or a dangling link): created at the link's target
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return True
    link = os.path.abspath(path)
    for _ in range(40):  # the links followed to the file, as the kernel does
        folder = os.path.realpath(os.path.dirname(link))
        if folder == "/proc" or folder.startswith("/proc/"):
            return True
        link = os.path.join(folder, os.path.basename(link))
        if not os.path.islink(link):
            break
        link = os.path.join(folder, os.readlink(link))
    try:
        real = os.stat(os.path.realpath(path))
    except OSError:
        return True
    return (real.st_dev, real.st_ino) != (st.st_dev, st.st_ino)


def _named(error, path):
    """``error`` as an OSError naming ``path`` (not a temporary file, or nothing)."""
    reason = error.strerror or str(error) or type(error).__name__
    return OSError(error.errno, reason, path)
