"""Atomic training checkpoints: one ``.npz`` file with arrays and a JSON header.

Layout: arrays under ``params/<name>``, ``bn/<name>``, ``opt/<name>``, the
current epoch's pair order ``perm``, and ``meta`` (a JSON string: format tag,
training config, epoch / step counters, the numpy Generator state, the history
and a fingerprint of the training video). Writing goes to a temporary file
(TEMP_PREFIX…``.tmp``) in the same directory, fsync, then ``os.replace``, so a
crash never leaves a half-written checkpoint behind, and a checkpoint never
holds a NaN or an infinity (``save_checkpoint`` refuses).

Reading back checks the file's structure (``load_checkpoint``); the checks of
what the values must be for one run (``check_arrays``, ``check_permutation``,
``generator_from_state``) are used by ``trainer`` with the expected shapes.
"""
import contextlib
import hashlib
import io
import json
import os
import zipfile

import numpy as np

from rpmref.balls.rundir import CHECKPOINT_TEMP_PREFIX as TEMP_PREFIX
from rpmref.balls.rundir import create_temp_file

FORMAT = "rpmref-checkpoint-v2"
#: formats ``load_checkpoint`` reads. v1 kept the finished epoch's sums in the epoch
#: accumulator (``trainer`` resets them); a v1 checkpoint written by Ctrl-C during an epoch's
#: first step had already drawn that epoch's pair order, so it continues with another one.
READABLE_FORMATS = ("rpmref-checkpoint-v1", FORMAT)
GROUPS = ("params", "bn", "opt")


class CorruptCheckpointError(ValueError):
    """A checkpoint file is unreadable or holds values no training run can produce."""

    def __init__(self, path, detail):
        self.path, self.detail = path, detail
        super().__init__(f"checkpoint {path} is corrupt: {detail}")


def fingerprint(frames):
    """SHA-1 of a video's frames (shape, dtype and bytes): ties a checkpoint to its data."""
    a = np.ascontiguousarray(frames)
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, params, bn_state, opt_state, perm, meta):
    """Write a checkpoint atomically to ``path`` (temp file, fsync, rename).

    Raises ValueError (and writes nothing) if any floating-point array holds a
    NaN or an infinity. An OSError (e.g. a full disk) leaves the previous file
    at ``path`` untouched and no temporary file behind.
    """
    arrays = {"perm": np.asarray(perm, dtype=np.int64),
              "meta": np.asarray(json.dumps(dict(meta, format=FORMAT)))}
    for group, d in zip(GROUPS, (params, bn_state, opt_state)):
        for k, v in d.items():
            a = np.asarray(v)
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
    """Read a checkpoint; returns dict(params, bn_state, opt_state, perm, meta).

    A missing file raises FileNotFoundError; anything that is not an intact
    rpmref checkpoint (unreadable, foreign format, meta not a JSON object,
    arrays outside the three groups) raises CorruptCheckpointError (a
    ValueError) naming the file.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise CorruptCheckpointError(path, f"not a readable rpmref checkpoint ({e})") from None
    if not isinstance(meta, dict):
        raise CorruptCheckpointError(path, "meta is not a JSON object")
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
    """``got`` (dict name → array) must have exactly the names, shapes and dtypes of
    ``expected``, and (``finite``) only finite values; CorruptCheckpointError otherwise."""
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
    """``perm`` must be a 1-D integer array holding each of 0 … n−1 exactly once."""
    if perm.ndim != 1 or perm.shape[0] != n or not np.issubdtype(perm.dtype, np.integer):
        raise CorruptCheckpointError(path, f"perm must be {n} integers (one per pair); got "
                                     f"shape {perm.shape}, dtype {perm.dtype}")
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise CorruptCheckpointError(path, f"perm is not a permutation of the {n} pairs")


def generator_from_state(path, state):
    """A numpy Generator (PCG64) set to the checkpointed ``bit_generator.state``."""
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
