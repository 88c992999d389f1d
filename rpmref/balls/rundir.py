"""The directory of one training run: one writer at a time, nothing replaced unless asked.

A run directory holds ``checkpoint.npz``, ``metrics.jsonl`` and ``summary.json``
(the RUN_FILES). ``open_run_dir`` is the only way in:

- it takes an exclusive lock (``filelock`` on LOCK_NAME inside the directory),
  so a second writer fails at once with ``RunLockedError`` instead of mixing
  metrics rows and overwriting the first one's checkpoint; the operating
  system drops the lock when the process ends, however it ends;
- it refuses (``RunExistsError``) a directory that already holds a run unless
  the caller resumes it or asks for it to be overwritten (then the RUN_FILES
  are deleted first);
- it removes temporary files a killed writer left behind (TEMP_PATTERNS) —
  safe because nobody else holds the lock.

Nested ``open_run_dir`` calls on the same directory in one thread share the
lock (the command line holds it across training and the summary; ``train``
opens the directory again inside), and only the outermost call applies the
existing-run rule. All text files are written by ``atomic_write_text``
(temporary file in the same directory, fsync, rename).
"""
import contextlib
import glob
import os
import secrets
import threading

import filelock

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
RUN_FILES = (CHECKPOINT, METRICS, SUMMARY)
LOCK_NAME = ".rpmref-run.lock"
CHECKPOINT_TEMP_PREFIX = ".ckpt-"  # checkpoint.save_checkpoint's temporary files
#: temporary files of this module and of ``checkpoint.save_checkpoint``
TEMP_PATTERNS = ((CHECKPOINT_TEMP_PREFIX + "*.tmp",)
                 + tuple(f".{name}-*.tmp" for name in (METRICS, SUMMARY)))


class RunLockedError(RuntimeError):
    """Another process (or thread) is writing to this run directory."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        super().__init__(f"another training run is writing to {out_dir} (it holds "
                         f"{os.path.join(out_dir, LOCK_NAME)}); wait for it to finish or "
                         f"use another directory")


class RunExistsError(ValueError):
    """The directory already holds a run and the caller neither resumes nor overwrites it."""

    def __init__(self, out_dir, files):
        self.out_dir, self.files = out_dir, tuple(files)
        super().__init__(f"{out_dir} already holds a run ({', '.join(files)}); pass resume=True "
                         f"to continue it or overwrite=True to replace it")


_held = threading.local()  # .locks: realpath -> FileLock held by this thread


def remove_stale_temp_files(out_dir):
    """Delete the temporary files (TEMP_PATTERNS) in ``out_dir``; returns their names.

    Call only while holding the directory's lock: then no live writer owns them.
    """
    removed = []
    for pattern in TEMP_PATTERNS:
        for path in sorted(glob.glob(os.path.join(glob.escape(out_dir), pattern))):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed


def existing_run_files(out_dir):
    """The RUN_FILES present in ``out_dir``."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]


@contextlib.contextmanager
def open_run_dir(out_dir, resume=False, overwrite=False):
    """Create ``out_dir`` if needed, lock it for this process and yield its path.

    resume: the caller continues the run in it; overwrite: the RUN_FILES are
    deleted (a fresh run). With neither, a directory holding any RUN_FILE raises
    RunExistsError. A directory locked by someone else raises RunLockedError at
    once (no waiting). OSError if the directory cannot be created or written.
    """
    path = os.fspath(out_dir)
    if not path:
        raise ValueError("out_dir must be a directory path; got ''")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"out_dir {path} exists and is not a directory")
    os.makedirs(path, exist_ok=True)
    locks = getattr(_held, "locks", None)
    if locks is None:
        locks = _held.locks = {}
    key = os.path.realpath(path)
    outermost = key not in locks
    lock = filelock.FileLock(os.path.join(path, LOCK_NAME)) if outermost else locks[key]
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RunLockedError(path) from None
    if outermost:
        locks[key] = lock
    try:
        if outermost:
            remove_stale_temp_files(path)
            existing = existing_run_files(path)
            if existing and not (resume or overwrite):
                raise RunExistsError(path, existing)
            if overwrite:
                for name in existing:
                    os.unlink(os.path.join(path, name))
        yield path
    finally:
        if outermost:
            del locks[key]
        lock.release()


def create_temp_file(directory, prefix, suffix=".tmp"):
    """Create a new file ``directory/prefix<random>suffix``; returns (fd, path).

    Like ``tempfile.mkstemp`` but with the permissions of any new file (0o666
    less the umask) rather than 0o600, since the file is renamed into place.
    """
    while True:
        path = os.path.join(directory, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically: a temporary file beside it, fsync, rename.

    A crash or a full disk leaves the previous file (if any) untouched; the
    temporary file is removed on any error (``remove_stale_temp_files`` handles
    a kill).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = create_temp_file(directory, f".{os.path.basename(path)}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
