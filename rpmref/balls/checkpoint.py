"""Atomic training checkpoints: one ``.npz`` file with arrays and a JSON header.

Layout: arrays under ``params/<name>``, ``bn/<name>``, ``opt/<name>``, the
current epoch's pair order ``perm``, and ``meta`` (a JSON string: format tag,
training config, epoch / step counters, the numpy Generator state, the history
and a fingerprint of the training video). Writing goes to a temporary file
(TEMP_PREFIX…``.tmp``) in the same directory, fsync, then ``os.replace``, so a
crash never leaves a half-written checkpoint behind, and a checkpoint never
holds a NaN or an infinity (``save_checkpoint`` refuses). In a run directory
opened with ``overwrite`` the old run's other files are removed just before the
rename (``rundir.discard_replaced_run``), not earlier.

Reading back checks the file's structure (``load_checkpoint``); the checks of
what the values must be for one run (``check_arrays``, ``check_permutation``,
``generator_from_state``) are used by ``trainer`` with the expected shapes.
"""
import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping

import numpy as np

from rpmref.balls.rundir import CHECKPOINT_TEMP_PREFIX as TEMP_PREFIX
from rpmref.balls.rundir import (DAMAGED_NPZ_ERRORS, TOO_DEEP, create_temp_file,
                                 discard_replaced_run, special_file_kind)
from rpmref.exact.validation import check_path

FORMAT = "rpmref-checkpoint-v2"
#: formats ``load_checkpoint`` reads. v1 kept the finished epoch's sums in the epoch
#: accumulator (``trainer`` resets them); a v1 checkpoint written by Ctrl-C during an epoch's
#: first step had already drawn that epoch's pair order, so it continues with another one.
READABLE_FORMATS = ("rpmref-checkpoint-v1", FORMAT)
GROUPS = ("params", "bn", "opt")


def _real_array(value, name):
    """``value`` as an array of integers or floats, unconverted (TypeError otherwise)."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers (integer or floating "
                        f"point); got dtype {a.dtype}")
    return a


class CorruptCheckpointError(ValueError):
    """A checkpoint file is unreadable or holds values no training run can produce (a ValueError).

    Parameters
    ----------
    path : str
        The checkpoint file (kept as ``.path``).
    detail : str
        What is wrong (kept as ``.detail``).

    Examples
    --------
    >>> from rpmref.balls.checkpoint import CorruptCheckpointError
    >>> error = CorruptCheckpointError("run/checkpoint.npz", "no perm array")
    >>> str(error), isinstance(error, ValueError)
    ('checkpoint run/checkpoint.npz is corrupt: no perm array', True)
    """

    def __init__(self, path, detail):
        self.path, self.detail = path, detail
        super().__init__(f"checkpoint {path} is corrupt: {detail}")


class NewerCheckpointError(ValueError):
    """A checkpoint written by a newer rpmref, in a format this one cannot read (a ValueError).

    Not corrupt: the newer version resumes it.

    Parameters
    ----------
    path : str
        The checkpoint file (kept as ``.path``).
    found : str
        Its format tag (kept as ``.found``).

    Examples
    --------
    >>> from rpmref.balls.checkpoint import NewerCheckpointError
    >>> print(NewerCheckpointError("run/checkpoint.npz", "rpmref-checkpoint-v9"))
    checkpoint run/checkpoint.npz was written by a newer rpmref (format 'rpmref-checkpoint-v9'; this version reads rpmref-checkpoint-v1 and rpmref-checkpoint-v2): resume it with that version
    """

    def __init__(self, path, found):
        self.path, self.found = path, found
        super().__init__(f"checkpoint {path} was written by a newer rpmref (format {found!r}; "
                         f"this version reads {' and '.join(READABLE_FORMATS)}): resume it "
                         f"with that version")


def _is_newer_format(tag):
    """Is ``tag`` 'rpmref-checkpoint-vN' with N above this version's FORMAT?"""
    match = re.fullmatch(r"rpmref-checkpoint-v([0-9]{1,9})", tag) if isinstance(tag, str) else None
    return match is not None and int(match[1]) > int(FORMAT.rsplit("-v", 1)[1])


def fingerprint(frames):
    """SHA-1 of a video's frames (shape, dtype and bytes): ties a checkpoint to its data.

    Parameters
    ----------
    frames : array_like
        The frames.

    Returns
    -------
    str
        40 hexadecimal digits.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.checkpoint import fingerprint
    >>> fingerprint(np.zeros((2, 2), np.float32))
    'f4103fba1bf7e13a7c974ec03c7e8a8ee06f40b4'
    >>> fingerprint(np.zeros((2, 2), np.float32)) == fingerprint(np.zeros((2, 2), np.float64))
    False
    """
    a = np.ascontiguousarray(frames)
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, params, bn_state, opt_state, perm, meta):
    """Write a checkpoint atomically to ``path`` (temp file, fsync, rename).

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.
    params : dict of ndarray
        Stored under ``params/<name>``.
    bn_state : dict of ndarray
        Stored under ``bn/<name>``.
    opt_state : dict of ndarray
        Stored under ``opt/<name>``.
    perm : array_like of int
        The current epoch's pair order.
    meta : dict
        JSON-serialisable header (the format tag is added).

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``path`` is not a path, a group or ``meta`` is not a dict, an array is not
        real (bool, strings, objects), ``perm`` is not integers, or ``meta`` is not
        JSON-serialisable.
    ValueError
        If any floating-point array holds a NaN or an infinity, ``perm`` is not 1-D,
        or ``meta`` holds a NaN or an infinity (nothing is written).
    OSError
        If writing fails (e.g. a full disk); the previous file at ``path`` is left
        untouched and no temporary file behind.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from rpmref.balls.checkpoint import load_checkpoint, save_checkpoint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "checkpoint.npz")
    ...     save_checkpoint(path, {"w": np.ones(2)}, {}, {"t": np.array(3)}, [1, 0], {"step": 3})
    ...     loaded = load_checkpoint(path)
    >>> loaded["params"]["w"], loaded["perm"].tolist(), loaded["meta"]["step"]
    (array([1., 1.]), [1, 0], 3)
    """
    path = check_path(path, "path")
    perm = np.asarray(perm)
    if perm.dtype.kind not in "iu":  # not cast: 0.5 would become 0
        raise TypeError(f"perm must be integers (the pair order); got dtype {perm.dtype}")
    if perm.ndim != 1:
        raise ValueError(f"perm must be 1-D (the pair order); got shape {perm.shape}")
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict; got {type(meta).__name__}")
    try:
        header = json.dumps(dict(meta, format=FORMAT), allow_nan=False)
    except TypeError as e:
        raise TypeError(f"meta must be JSON-serialisable: {e}") from None
    except ValueError as e:
        raise ValueError(f"meta must be JSON-serialisable (no NaN or infinity): {e}") from None
    arrays = {"perm": perm.astype(np.int64), "meta": np.asarray(header)}
    for group, name, d in zip(GROUPS, ("params", "bn_state", "opt_state"),
                              (params, bn_state, opt_state)):
        if not isinstance(d, Mapping):
            raise TypeError(f"{name} must be a dict of arrays; got {type(d).__name__}")
        for k, v in d.items():
            a = _real_array(v, f"{name}[{k!r}]")
            if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
                raise ValueError(f"refusing to write checkpoint {path}: {group}/{k} holds "
                                 f"non-finite values")
            arrays[f"{group}/{k}"] = a
    buffer = io.BytesIO()  # one write: zipfile on a real file seeks back after every array
    np.savez(buffer, **arrays)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = create_temp_file(directory, TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        # an overwritten run's metrics and summary go only now that this file is on disk
        discard_replaced_run(directory, keep=(os.path.basename(path),))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.

    Returns
    -------
    dict
        ``params``, ``bn_state``, ``opt_state`` (dicts of arrays), ``perm`` (array)
        and ``meta`` (dict).

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    FileNotFoundError
        If there is no file.
    CorruptCheckpointError
        For anything that is not an intact rpmref checkpoint (not a regular file,
        unreadable, foreign format, meta not a JSON object, arrays outside the three groups).
    NewerCheckpointError
        For a checkpoint of a newer rpmref's format.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.checkpoint import load_checkpoint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "checkpoint.npz")
    ...     with open(path, "w") as f:
    ...         _ = f.write("not a checkpoint")
    ...     try:
    ...         load_checkpoint(path)
    ...     except ValueError as error:
    ...         print(type(error).__name__)
    CorruptCheckpointError
    """
    path = check_path(path, "path")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    kind = special_file_kind(path)
    if kind:  # np.load would wait on a FIFO forever
        raise CorruptCheckpointError(path, f"it is {kind}, not a regular file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        raw = sorted(k for k, v in data.items() if not isinstance(v, np.ndarray))
        if raw:  # NumPy returns a member that is not an .npy file as its bytes
            raise CorruptCheckpointError(path, f"members {raw} are not .npy arrays")
        if "meta" not in data:
            raise CorruptCheckpointError(path, "no 'meta' entry: not an rpmref checkpoint")
        meta = json.loads(str(data.pop("meta")))
    except CorruptCheckpointError:
        raise
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise CorruptCheckpointError(path, f"its meta is {TOO_DEEP}") from None
    except (OSError, ValueError) + DAMAGED_NPZ_ERRORS as e:
        raise CorruptCheckpointError(path, f"not a readable rpmref checkpoint ({e})") from None
    except MemoryError as e:  # an array header may declare any shape; a run's are small
        raise CorruptCheckpointError(path, f"it declares arrays too large to load ({e})") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(path, "meta is not a JSON object")
    if _is_newer_format(meta.get("format")):
        raise NewerCheckpointError(path, meta["format"])
    if meta.get("format") not in READABLE_FORMATS:
        raise CorruptCheckpointError(path, f"format {meta.get('format')!r}, expected {FORMAT!r}")
    if "perm" not in data:
        raise CorruptCheckpointError(path, "no perm array")
    out = {"perm": data.pop("perm"), "meta": meta}
    for group, key in zip(GROUPS, ("params", "bn_state", "opt_state")):
        out[key] = {k[len(group) + 1:]: data.pop(k) for k in list(data) if k.startswith(group + "/")}
    if data:
        raise CorruptCheckpointError(path, f"unexpected arrays {sorted(data)}")
    return out


def check_arrays(path, group, got, expected, finite=True):
    """``got`` must have exactly the names, shapes and dtypes of ``expected`` (and finite values).

    Parameters
    ----------
    path : str
        The checkpoint, for messages.
    group : str
        The group's name, for messages.
    got : dict of ndarray
        The arrays read.
    expected : dict of ndarray
        Arrays of the expected shapes and dtypes.
    finite : bool, default True
        Also refuse NaN and ±inf.

    Returns
    -------
    None

    Raises
    ------
    CorruptCheckpointError
        For missing or unexpected names, another shape or dtype, or non-finite values.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.checkpoint import check_arrays
    >>> check_arrays("ck.npz", "params", {"w": np.zeros(2)}, {"w": np.zeros(3)})
    Traceback (most recent call last):
    ...
    rpmref.balls.checkpoint.CorruptCheckpointError: checkpoint ck.npz is corrupt: params/w has shape (2,) and dtype float64; this config needs shape (3,) and dtype float64
    """
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise CorruptCheckpointError(path, f"{group} arrays do not match this config "
                                     f"(missing {missing}, unexpected {extra})")
    for name, ref in expected.items():
        a = got[name]
        if a.shape != np.shape(ref) or a.dtype != np.asarray(ref).dtype:
            raise CorruptCheckpointError(
                path, f"{group}/{name} has shape {a.shape} and dtype {a.dtype}; this config "
                      f"needs shape {np.shape(ref)} and dtype {np.asarray(ref).dtype}")
        if finite and np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            raise CorruptCheckpointError(path, f"{group}/{name} holds non-finite values")


def check_permutation(path, perm, n):
    """``perm`` must be a 1-D integer array holding each of 0 … n−1 exactly once.

    Parameters
    ----------
    path : str
        The checkpoint, for messages.
    perm : ndarray
        The stored pair order.
    n : int
        The number of pairs.

    Returns
    -------
    None

    Raises
    ------
    CorruptCheckpointError
        Otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.checkpoint import check_permutation
    >>> check_permutation("ck.npz", np.array([0, 0, 1]), 3)
    Traceback (most recent call last):
    ...
    rpmref.balls.checkpoint.CorruptCheckpointError: checkpoint ck.npz is corrupt: perm is not a permutation of the 3 pairs
    """
    if perm.ndim != 1 or perm.shape[0] != n or not np.issubdtype(perm.dtype, np.integer):
        raise CorruptCheckpointError(path, f"perm must be {n} integers (one per pair); got "
                                     f"shape {perm.shape}, dtype {perm.dtype}")
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise CorruptCheckpointError(path, f"perm is not a permutation of the {n} pairs")


def generator_from_state(path, state):
    """A numpy Generator (PCG64) set to the checkpointed ``bit_generator.state``.

    Parameters
    ----------
    path : str
        The checkpoint, for messages.
    state : dict
        A PCG64 ``bit_generator.state``.

    Returns
    -------
    numpy.random.Generator
        The generator, in that state.

    Raises
    ------
    CorruptCheckpointError
        If ``state`` is not a valid PCG64 state or does not survive a round trip.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.checkpoint import generator_from_state
    >>> rng = generator_from_state("ck.npz", np.random.default_rng(0).bit_generator.state)
    >>> int(rng.integers(10)) == int(np.random.default_rng(0).integers(10))
    True
    """
    ok = (isinstance(state, dict) and state.get("bit_generator") == "PCG64"
          and isinstance(state.get("state"), dict)
          and all(type(state["state"].get(k)) is int and 0 <= state["state"][k] < 2 ** 128
                  for k in ("state", "inc"))
          and state["state"]["inc"] % 2 == 1  # PCG64's increment is always odd
          and state.get("has_uint32") in (0, 1) and type(state.get("uinteger")) is int)
    if not ok:
        raise CorruptCheckpointError(path, f"rng_state is not a PCG64 Generator state: {state!r}")
    rng = np.random.Generator(np.random.PCG64())
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, OverflowError) as e:
        raise CorruptCheckpointError(path, f"rng_state is not a PCG64 Generator state ({e})") from None
    if rng.bit_generator.state != state:
        raise CorruptCheckpointError(path, "rng_state does not survive a round trip")
    return rng
