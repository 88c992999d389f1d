"""Finished training runs of a comparison that has not finished yet, on disk.

A long comparison (``rpmref balls compare``) writes every run as it finishes to
``STEM.partial.json`` (records) and ``STEM.partial.npz`` (arrays, e.g. the
latents the figure is drawn from), so that a rerun after an interruption trains
only the runs still missing. Every run is stored under its full *settings*
(critic, seed, training config, videos, evaluation names, ...): a run is reused
only by a task with exactly the same settings, and runs of other settings in
the same files are kept, never dropped.

Both files are replaced atomically (written beside, then ``os.replace``), the
arrays first: an interruption at any moment leaves the previous state whole,
and a record whose arrays are missing is simply trained again. One process at a
time writes a directory (``locked``).
"""
import contextlib
import errno
import hashlib
import io
import json
import os

import filelock
import numpy as np

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
        Naming the file if it is not a partial file of this format.

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
    try:
        with open(json_path) as fh:
            data = json.load(fh)
    except json.JSONDecodeError as error:
        raise ValueError(f"cannot read {json_path} ({error}); move it away to start afresh") \
            from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{json_path} was not written by this version of rpmref (its runs are "
                         f"not stored by their settings, so they cannot be resumed); move it "
                         f"away to start afresh")
    arrays = {}
    if os.path.exists(npz_path):
        with np.load(npz_path, allow_pickle=False) as npz:
            for name in npz.files:
                run_id, _, array_name = name.partition(":")
                arrays.setdefault(run_id, {})[array_name] = npz[name]
    entries = {}
    for run in data["runs"]:
        key = settings_key(run["settings"])
        entries[key] = {"settings": run["settings"], "record": run["record"],
                        "arrays": arrays.get(_run_id(key), {})}
    return entries


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

    Written to a temporary file first, so a Ctrl-C during the write leaves the
    previous file whole.

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
    """Write beside ``path``, flush to disk, rename over it: a reader (or a crash)
    sees the old file or the new one, never a part."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb" if binary else "w") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
