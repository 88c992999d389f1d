"""Atomic training checkpoints: one ``.npz`` file with arrays and a JSON header.

Layout: arrays under ``params/<name>``, ``bn/<name>``, ``opt/<name>``, the
current epoch's pair order ``perm``, and ``meta`` (a JSON string: format tag,
training config, epoch / step counters, the numpy Generator state, the history
and a fingerprint of the training video). Writing goes to a temporary file in
the same directory followed by ``os.replace``, so a crash never leaves a
half-written checkpoint behind.
"""
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "rpmref-checkpoint-v1"
GROUPS = ("params", "bn", "opt")


def fingerprint(frames):
    """SHA-1 of a video's frames (shape, dtype and bytes): ties a checkpoint to its data."""
    a = np.ascontiguousarray(frames)
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, params, bn_state, opt_state, perm, meta):
    """Write a checkpoint atomically to ``path`` (temp file + rename)."""
    arrays = {"perm": np.asarray(perm, dtype=np.int64),
              "meta": np.asarray(json.dumps(dict(meta, format=FORMAT)))}
    for group, d in zip(GROUPS, (params, bn_state, opt_state)):
        for k, v in d.items():
            arrays[f"{group}/{k}"] = np.asarray(v)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path):
    """Read a checkpoint; returns dict(params, bn_state, opt_state, perm, meta).

    A missing file raises FileNotFoundError; anything that is not an intact
    rpmref checkpoint raises ValueError naming the file.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"checkpoint {path} is corrupt or not an rpmref checkpoint ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    out = {"perm": data.pop("perm"), "meta": meta}
    for group, key in zip(GROUPS, ("params", "bn_state", "opt_state")):
        out[key] = {k[len(group) + 1:]: v for k, v in data.items() if k.startswith(group + "/")}
    return out
