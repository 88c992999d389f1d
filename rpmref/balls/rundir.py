"""The directory of one training run: one writer at a time, nothing replaced unless asked.

A run directory holds ``checkpoint.npz``, ``metrics.jsonl`` and ``summary.json``
(the RUN_FILES). ``open_run_dir`` is the only way in:

- it takes an exclusive lock (``filelock`` on LOCK_NAME inside the directory),
  so a second writer fails at once with ``RunLockedError`` instead of mixing
  metrics rows and overwriting the first one's checkpoint; the operating
  system drops the lock when the process ends, however it ends;
- it refuses (``RunExistsError``) a directory that already holds a run unless
  the caller resumes it or asks for it to be overwritten; an overwritten run's
  files stay until the new run has a checkpoint to put in their place
  (``save_checkpoint`` calls ``discard_replaced_run`` just before its rename),
  so a new run refused or interrupted before that leaves the old one intact;
  likewise a resumed run that goes further drops the old summary at its first
  new checkpoint (``retire_at_next_checkpoint``);
- it removes temporary files a killed writer left behind (TEMP_PATTERNS) —
  safe because nobody else holds the lock.

Nested ``open_run_dir`` calls on the same directory in one thread share the
lock (the command line holds it across training and the summary; ``train``
opens the directory again inside), and only the outermost call applies the
existing-run rule. All text files are written by ``atomic_write_text``
(temporary file in the same directory, fsync, rename).
"""
import contextlib
import errno
import glob
import os
import secrets
import stat
import threading
import tokenize
import zipfile
import zlib

import filelock

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
RUN_FILES = (CHECKPOINT, METRICS, SUMMARY)
LOCK_NAME = ".rpmref-run.lock"
#: what np.load and zipfile raise for a damaged .npz besides ValueError and OSError: a
#: broken zip structure, damaged compressed data, a member encrypted or of an unknown
#: method (RuntimeError, NotImplementedError), an .npy header that does not tokenize
DAMAGED_NPZ_ERRORS = (zipfile.BadZipFile, EOFError, KeyError, zlib.error, RuntimeError,
                      tokenize.TokenError)
#: why a JSON text that makes json's decoder exceed the recursion limit is refused
TOO_DEEP = "JSON nested too deeply to read (it exceeds Python's recursion limit)"
CHECKPOINT_TEMP_PREFIX = ".ckpt-"  # checkpoint.save_checkpoint's temporary files
#: temporary files of this module and of ``checkpoint.save_checkpoint``
TEMP_PATTERNS = ((CHECKPOINT_TEMP_PREFIX + "*.tmp",)
                 + tuple(f".{name}-*.tmp" for name in (METRICS, SUMMARY)))


class RunLockedError(RuntimeError):
    """Another process (or thread) is writing to this run directory (a RuntimeError).

    Parameters
    ----------
    out_dir : str
        The directory (kept as ``.out_dir``).

    Examples
    --------
    >>> from rpmref.balls.rundir import RunLockedError
    >>> str(RunLockedError("runs/a")).startswith("another training run is writing to runs/a")
    True
    """

    def __init__(self, out_dir):
        self.out_dir = out_dir
        super().__init__(f"another training run is writing to {out_dir} (it holds "
                         f"{os.path.join(out_dir, LOCK_NAME)}); wait for it to finish or "
                         f"use another directory")


class RunExistsError(ValueError):
    """The directory already holds a run and the caller neither resumes nor overwrites it (a ValueError).

    Parameters
    ----------
    out_dir : str
        The directory (kept as ``.out_dir``).
    files : sequence of str
        The RUN_FILES found (kept as ``.files``).

    Examples
    --------
    >>> from rpmref.balls.rundir import RunExistsError
    >>> error = RunExistsError("runs/a", ["checkpoint.npz"])
    >>> error.files, isinstance(error, ValueError)
    (('checkpoint.npz',), True)
    """

    def __init__(self, out_dir, files):
        self.out_dir, self.files = out_dir, tuple(files)
        super().__init__(f"{out_dir} already holds a run ({', '.join(files)}); pass resume=True "
                         f"to continue it or overwrite=True to replace it")


_held = threading.local()  # .locks: realpath -> FileLock held by this thread;
#   .replacing: realpath -> the old run's files an overwrite has yet to replace;
#   .retiring: realpath -> files the next checkpoint makes stale (retire_at_next_checkpoint)


def remove_stale_temp_files(out_dir):
    """Delete the temporary files (TEMP_PATTERNS) in ``out_dir``; returns their names.

    Call only while holding the directory's lock: then no live writer owns them.

    Parameters
    ----------
    out_dir : str
        The run directory.

    Returns
    -------
    list of str
        The names removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import remove_stale_temp_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, ".ckpt-0123.tmp"), "w").close()
    ...     open(os.path.join(tmp, "notes.txt"), "w").close()
    ...     print(remove_stale_temp_files(tmp), os.listdir(tmp))
    ['.ckpt-0123.tmp'] ['notes.txt']
    """
    removed = []
    for pattern in TEMP_PATTERNS:
        for path in sorted(glob.glob(os.path.join(glob.escape(out_dir), pattern))):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed


def existing_run_files(out_dir):
    """The RUN_FILES present in ``out_dir``.

    Parameters
    ----------
    out_dir : str
        The run directory.

    Returns
    -------
    list of str
        Names among ``checkpoint.npz``, ``metrics.jsonl`` and ``summary.json``.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import existing_run_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, "metrics.jsonl"), "w").close()
    ...     print(existing_run_files(tmp))
    ['metrics.jsonl']
    """
    return [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]


@contextlib.contextmanager
def open_run_dir(out_dir, resume=False, overwrite=False):
    """Context manager: create ``out_dir`` if needed, lock it for this process and yield its path.

    With neither ``resume`` nor ``overwrite``, a directory holding any RUN_FILE is
    refused. With ``overwrite`` the old run's files are kept until
    :func:`discard_replaced_run` (called by ``checkpoint.save_checkpoint`` once the
    new checkpoint is on disk, just before it takes the old one's place), so a new
    run that fails or is interrupted before its first checkpoint leaves the old run
    as it was. Nested calls on the same directory in one thread share the lock, and
    only the outermost applies the existing-run rule. Stale temporary files are
    removed on entry. A directory the call created is removed again on exit if
    nothing but the lock was written in it (a run refused or failed before its
    first file leaves no debris).

    Parameters
    ----------
    out_dir : str or os.PathLike
        The run directory.
    resume : bool, default False
        The caller continues the run in it.
    overwrite : bool, default False
        A fresh run replaces the RUN_FILES (when it writes its first checkpoint).

    Yields
    ------
    str
        The directory's path.

    Raises
    ------
    ValueError
        If ``out_dir`` is '' or an existing non-directory, or both flags are given, or
        one of RUN_FILES in it is a directory.
    RunExistsError
        If it holds a run and neither flag is given.
    RunLockedError
        At once (no waiting) if someone else holds the lock.
    OSError
        If the directory cannot be created or written.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import RunExistsError, discard_replaced_run, open_run_dir
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run = os.path.join(tmp, "run")
    ...     with open_run_dir(run) as path:
    ...         open(os.path.join(path, "summary.json"), "w").close()
    ...     try:
    ...         with open_run_dir(run):
    ...             pass
    ...     except RunExistsError as error:
    ...         print(error.files)
    ...     with open_run_dir(run, overwrite=True) as path:
    ...         print(sorted(os.listdir(path)))   # kept until a new checkpoint replaces it
    ...         print(discard_replaced_run(path), sorted(os.listdir(path)))
    ('summary.json',)
    ['.rpmref-run.lock', 'summary.json']
    ['summary.json'] ['.rpmref-run.lock']
    """
    path = os.fspath(out_dir)
    if not path:
        raise ValueError("out_dir must be a directory path; got ''")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"out_dir {path} exists and is not a directory")
    created = _missing_directories(path)
    empty = False
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # e.g. a name too long deep down: the parents made so far go again
        remove_directories(created)
        raise
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
    replacing = getattr(_held, "replacing", None)
    if replacing is None:
        replacing = _held.replacing = {}
    try:
        if outermost:
            for name in RUN_FILES:          # found now, not when the run writes them
                if os.path.isdir(os.path.join(path, name)):
                    raise ValueError(f"{os.path.join(path, name)} is a directory, not a file "
                                     "the run can write; move it away or choose another "
                                     "directory")
            remove_stale_temp_files(path)
            existing = existing_run_files(path)
            if existing and not (resume or overwrite):
                raise RunExistsError(path, existing)
            if overwrite and existing:
                replacing[key] = tuple(existing)  # removed by discard_replaced_run
        yield path
    finally:
        if outermost:
            del locks[key]
            replacing.pop(key, None)
            getattr(_held, "retiring", {}).pop(key, None)
            # a directory this call created and nothing was written to (the run failed
            # before its first file): remove it and the lock, leaving no debris behind
            empty = bool(created) and drop_lone_lock(path, LOCK_NAME)  # still ours
        lock.release()
        if empty:
            remove_directories(created)


def drop_lone_lock(path, lock_name):
    """Delete ``path``/``lock_name`` if nothing else is in ``path``; True if ``path`` is
    then empty (a lock file that is missing counts as deleted).

    Parameters
    ----------
    path : str
        The directory.
    lock_name : str
        The lock file's name in it.

    Returns
    -------
    bool
        Whether ``path`` is now empty (False too if it cannot be listed).

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import drop_lone_lock
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, ".lock"), "w").close()
    ...     print(drop_lone_lock(tmp, ".lock"), os.listdir(tmp))
    True []
    """
    try:
        if not set(os.listdir(path)) <= {lock_name}:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, lock_name))
    except OSError:
        return False
    return True


def remove_directories(created):
    """``os.rmdir`` each of ``created`` (deepest first), stopping at the first that is not
    empty: someone wrote there meanwhile, so it and its parents are kept. One that does
    not exist (``os.makedirs`` failed before it) is skipped.

    Parameters
    ----------
    created : sequence of str
        Directories, each inside the next.

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import remove_directories
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.makedirs(os.path.join(tmp, "a", "b"))
    ...     remove_directories([os.path.join(tmp, "a", "b"), os.path.join(tmp, "a")])
    ...     print(os.listdir(tmp))
    []
    """
    for directory in created:
        try:
            os.rmdir(directory)
        except OSError:
            if os.path.lexists(directory):
                break


def replacing_run(out_dir):
    """Whether ``out_dir`` is held by this thread with ``overwrite`` and still holds the old run.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The run directory.

    Returns
    -------
    bool
        True until :func:`discard_replaced_run` has removed the old run's files.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import open_run_dir, replacing_run
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, "metrics.jsonl"), "w").close()
    ...     with open_run_dir(tmp, overwrite=True):
    ...         print(replacing_run(tmp))
    ...     print(replacing_run(tmp))
    True
    False
    """
    key = os.path.realpath(os.fspath(out_dir))
    return bool(getattr(_held, "replacing", {}).get(key))


def discard_replaced_run(out_dir, keep=()):
    """Delete the old run's files that an ``overwrite`` of ``out_dir`` is replacing.

    A no-op (returning []) unless this thread holds ``out_dir`` through
    ``open_run_dir(..., overwrite=True)`` and has not discarded them yet, or
    :func:`retire_at_next_checkpoint` named files (deleted too, once).
    ``checkpoint.save_checkpoint`` calls it with ``keep=("checkpoint.npz",)`` once the
    new checkpoint is written and synced, just before renaming it over the old
    one: the old metrics and summary never sit beside the new checkpoint, and
    until then the old run is complete.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The run directory.
    keep : sequence of str, default ()
        Names not to delete (a file the caller replaces atomically itself).

    Returns
    -------
    list of str
        The names removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import discard_replaced_run, open_run_dir
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     run = os.path.join(tmp, "run")
    ...     with open_run_dir(run) as path:
    ...         for name in ("checkpoint.npz", "summary.json"):
    ...             open(os.path.join(path, name), "w").close()
    ...     with open_run_dir(run, overwrite=True) as path:
    ...         print(discard_replaced_run(path, keep=("checkpoint.npz",)))
    ...         print(discard_replaced_run(path))   # once only
    ['summary.json']
    []
    """
    key = os.path.realpath(os.fspath(out_dir))
    replacing = getattr(_held, "replacing", {})
    retiring = getattr(_held, "retiring", {})
    old = tuple(replacing.get(key) or ()) + tuple(retiring.pop(key, ()))
    if not old:
        return []
    removed = []
    for name in dict.fromkeys(old):
        if name not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(out_dir, name))
            removed.append(name)
    if key in replacing:
        replacing[key] = ()
    return removed


def retire_at_next_checkpoint(out_dir, names):
    """Have the next ``discard_replaced_run`` of ``out_dir`` (the next checkpoint's rename)
    delete ``names`` too: files the new checkpoint makes stale, such as the summary of a
    finished run that is resumed to go further.

    Only while this thread holds ``out_dir`` (``open_run_dir``); the mark ends with it.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The run directory.
    names : sequence of str
        File names in it.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If this thread does not hold ``out_dir``.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import (discard_replaced_run, open_run_dir,
    ...                                  retire_at_next_checkpoint)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, "summary.json"), "w").close()
    ...     with open_run_dir(tmp, resume=True) as path:
    ...         retire_at_next_checkpoint(path, ["summary.json"])
    ...         print(discard_replaced_run(path, keep=("checkpoint.npz",)))
    ...         print(discard_replaced_run(path))   # once only
    ['summary.json']
    []
    """
    key = os.path.realpath(os.fspath(out_dir))
    if key not in getattr(_held, "locks", {}):
        raise ValueError(f"{out_dir} is not held by this thread (open_run_dir)")
    if not hasattr(_held, "retiring"):
        _held.retiring = {}
    _held.retiring[key] = tuple(names)


def _missing_directories(path):
    """The directories ``os.makedirs(path)`` would create, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing




def special_file_kind(path):
    """What ``path`` is (links followed) if it exists but is not a regular file or a
    directory: "a named pipe (FIFO)", "a character device", ...; None otherwise.

    Readers refuse such a file before opening it: reading a FIFO waits for a writer
    forever, and a device yields whatever it yields.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str or None
        The kind, with its article.

    Examples
    --------
    >>> from rpmref.balls.rundir import special_file_kind
    >>> special_file_kind("/dev/null"), special_file_kind("/no/such/file")
    ('a character device', None)
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None


def link_loop(path):
    """Do the symbolic links on the way to ``path`` form a loop (the system says ELOOP)?

    Parameters
    ----------
    path : str or os.PathLike
        The path.

    Returns
    -------
    bool
        True for a loop; False for anything else, missing or not.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import link_loop
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.symlink(os.path.join(tmp, "b"), os.path.join(tmp, "a"))
    ...     os.symlink(os.path.join(tmp, "a"), os.path.join(tmp, "b"))
    ...     print(link_loop(os.path.join(tmp, "a")), link_loop(os.path.join(tmp, "c")))
    True False
    """
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    except ValueError:
        return False
    return False


def name_max(directory):
    """The longest file name (in bytes) the file system of ``directory`` takes (255 if unknown).

    Parameters
    ----------
    directory : str
        An existing directory.

    Returns
    -------
    int
        The limit.

    Examples
    --------
    >>> import tempfile
    >>> from rpmref.balls.rundir import name_max
    >>> name_max(tempfile.gettempdir()) >= 14
    True
    """
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def create_temp_file(directory, prefix, suffix=".tmp"):
    """Create a new file ``directory/prefix<random>suffix``; returns (fd, path).

    Like ``tempfile.mkstemp`` but with the permissions of any new file (0o666
    less the umask) rather than 0o600, since the file is renamed into place.
    ``prefix`` is cut short where the name would exceed the file system's limit
    (``name_max``), so that an output of the longest legal name has a temporary file.

    Parameters
    ----------
    directory : str
        Where to create it.
    prefix : str
        Start of the name.
    suffix : str, default ".tmp"
        End of the name.

    Returns
    -------
    fd : int
        An open write-only descriptor.
    path : str
        The new file.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import create_temp_file
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fd, path = create_temp_file(tmp, ".ckpt-")
    ...     os.close(fd)
    ...     name = os.path.basename(path)
    >>> name.startswith(".ckpt-"), name.endswith(".tmp")
    (True, True)
    """
    # the prefix (from the output's own name, say) is shortened to keep the name legal
    room = name_max(directory) - len(os.fsencode(suffix)) - 12
    prefix = os.fsdecode(os.fsencode(prefix)[:max(room, 0)])
    while True:
        path = os.path.join(directory, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically: a temporary file beside it, fsync, rename.

    A crash or a full disk leaves the previous file (if any) untouched; the
    temporary file is removed on any error (:func:`remove_stale_temp_files`
    handles a kill).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    text : str
        Its contents (UTF-8).

    Returns
    -------
    None

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.rundir import atomic_write_text
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "summary.json")
    ...     atomic_write_text(path, "{}")
    ...     print(open(path).read(), os.listdir(tmp))
    {} ['summary.json']
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
