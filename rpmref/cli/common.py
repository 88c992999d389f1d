"""Pieces every ``rpmref`` command shares: the argument parser, number types,
output checks made before any work, and the one place errors become exit codes.

Exit codes: 0 success, 1 a check failed or the run failed (e.g. an OSError
while writing), 2 bad arguments or input, 130 interrupted, 143 terminated (SIGTERM,
handled as Ctrl-C), 141 the reader of the output went away (``rpmref verify |
head``: a closed pipe, as for shell tools).
"""
import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading

from rpmref.balls.rundir import link_loop, name_max

#: The most working memory a command may plan for. Size limits of the options
#: (``--max-states``, ``--batch-size``, ``--dim``) are derived from it, so that
#: they are the same on every machine and a too-large size is refused at once
#: instead of failing with a MemoryError after minutes of work.
MEMORY_BUDGET = 2 * 1024**3  # bytes


#: why a path whose symbolic links loop cannot be written
LINK_LOOP = "its symbolic links form a loop (too many levels of symbolic links)"


class UsageError(ValueError):
    """A bad argument found after parsing: reported as one line, exit code 2."""


class RunFailed(RuntimeError):
    """The work itself failed (e.g. a training run diverged): one line, exit code 1."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line and exit code 2, and
    which takes no abbreviations (``--seed`` is not ``--seeds``)."""

    def __init__(self, *args, allow_abbrev=False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _print_message(self, message, file=None):
        """argparse's, except that --help and --version on a stdout that cannot take them
        (``> /dev/full``) fail as every command does, instead of exiting 0 with the text
        lost: one line and exit 1, or a quiet 141 for a reader that went away."""
        if not message:
            return
        file = file or sys.stderr
        if file is not sys.stdout:
            super()._print_message(message, file)   # usage errors: stderr, exit code 2
            return
        try:
            file.write(message)
            file.flush()
        except BrokenPipeError:
            silence_stdout()
            sys.exit(141)
        except OSError as error:
            silence_stdout()
            sys.exit(fail(self.prog, f"cannot write to stdout: {error.strerror or error}", 1))


def silence_stdout():
    """Point file descriptor 1 at /dev/null, so that Python's flush of stdout at exit is
    quiet after a write failed there (a closed pipe, a full disk)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, unless the help already states its
    default, the option is required, or the default is None or a flag's False."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.required or action.default is None
                or action.default is False or action.default is argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def run_command(func, args, prog):
    """``func(args)`` as an exit code; every error the user can cause becomes one line
    ``PROG: error: ...`` on stderr: UsageError, ValueError and TypeError (bad
    arguments or input) exit 2, RunFailed, OSError and MemoryError (the run failed)
    exit 1, Ctrl-C exits 130, a closed output pipe 141 (quietly). SIGTERM (``kill``,
    ``timeout``, a batch scheduler) is handled as Ctrl-C — a training run writes its
    checkpoint — and exits 143."""
    terminated = []
    try:
        with sigterm_as_interrupt() as terminated:
            code = _run(func, args, prog)
    except KeyboardInterrupt:  # SIGTERM just after the command ended
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    return 128 + signal.SIGTERM if terminated and code == 130 else code


def _run(func, args, prog):
    """``func(args)`` as an exit code, the errors as in ``run_command``."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError) as error:
        return fail(prog, error, 2)
    except RunFailed as error:
        return fail(prog, error, 1)
    except BrokenPipeError:  # e.g. `rpmref verify --json | head`: the reader left
        silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader left
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return fail(prog, f"{where}{error.strerror or error}", 1)
    except MemoryError:
        return fail(prog, "out of memory (try smaller sizes)", 1)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, the first SIGTERM raises KeyboardInterrupt, so that a command
    stops as on Ctrl-C (a training run writes a checkpoint, a comparison keeps its finished
    runs); later ones are ignored, so that they cannot cut that clean-up short (``timeout``
    signals the process and then its group, which includes it). Yields a list that holds
    the signal once it came. Outside the main thread nothing changes."""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def interrupt(signum, frame):
        if not received:
            received.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(prog, message, code):
    """Print ``PROG: error: MESSAGE`` (one line) and return ``code``."""
    text = " ".join(str(message).split())  # one line, whatever the message
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------
# output locations, checked before any work


def check_output_file(path, flag, suffixes=None, needs_matplotlib=False):
    """Refuse an output file that could not be written, before any work; returns ``path``.

    If ``suffixes`` is given (e.g. (".md",)) the name must end in one of them
    (case-insensitive) after a non-empty stem; with ``needs_matplotlib``
    matplotlib must be importable and, when ``suffixes`` is None, the suffix
    one that matplotlib's savefig writes. ``path`` must not be a directory, and
    its folder must exist and accept a new file (checked by creating and
    removing a temporary file, which also catches read-only and special file
    systems such as /proc). UsageError (a ValueError) naming ``flag`` otherwise.
    """
    if needs_matplotlib:
        require_matplotlib(flag)
        if suffixes is None:
            suffixes = matplotlib_suffixes()
    name = os.path.basename(path or "")
    if suffixes and not any(name.lower().endswith(s) and len(name) > len(s)
                            for s in suffixes):
        raise UsageError(f"{flag} must be a file name ending in {_one_of(suffixes)}; "
                         f"got {path!r}")
    if not path:
        raise UsageError(f"{flag} must be a file name; got ''")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory")
    refuse_link_loop(path, flag)
    # a symbolic link is written through: what must exist and accept a file is its target's
    # folder (a dangling link, or one into /proc, fails here rather than after the work)
    if os.path.exists(path) and not os.path.isfile(path):   # a device or a pipe (through
        if not os.access(path, os.W_OK):                     # a link too): written directly
            raise UsageError(f"{flag} {path}: cannot write to it (permission denied)")
        return path
    real = os.path.realpath(path)      # os.path.abspath(path) unless links are on the way
    folder = os.path.dirname(real)
    through = ("" if real == os.path.abspath(path) else f" (it is a symbolic link to {real})"
               if os.path.islink(path) else f" (through symbolic links: {real})")
    if not os.path.isdir(folder):
        what = (f"{folder} is a file, not a directory" if os.path.exists(folder)
                else f"directory {folder} does not exist")
        raise UsageError(f"{flag} {path}: {what}{through}")
    _check_name_length(folder, os.path.basename(real), flag, path)
    _try_writing_in(folder, flag, path)
    return path


def check_distinct_outputs(*outputs):
    """UsageError if two of the ``(flag, path)`` outputs name the same file (through
    symbolic links too): one would overwrite the other. None, "-" (stdout) and devices or
    pipes (/dev/null, written to, not replaced) are skipped.

    Examples
    --------
    >>> from rpmref.cli.common import check_distinct_outputs
    >>> check_distinct_outputs(("--json", "a.json"), ("--figure", "a.png"), ("--gif", None))
    >>> check_distinct_outputs(("--json", "a.png"), ("--figure", "./a.png"))
    Traceback (most recent call last):
    ...
    rpmref.cli.common.UsageError: --json and --figure name the same file ./a.png: one would overwrite the other
    """
    seen = {}
    for flag, path in outputs:
        if path is None or path == "-" or (os.path.exists(path) and not os.path.isfile(path)):
            continue
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            raise UsageError(f"{seen[key]} and {flag} name the same file {path}: one would "
                             "overwrite the other")
        seen[key] = flag


def refuse_link_loop(path, flag):
    """UsageError naming ``flag`` if the symbolic links on the way to ``path`` loop."""
    if link_loop(path):
        raise UsageError(f"{flag} {path}: {LINK_LOOP}")


def check_output_dir(path, flag):
    """Create the output directory ``path`` (and its parents) if needed and check a file
    can be written in it; UsageError naming ``flag`` if not. Returns ``path``."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} exists and is not a directory")
    refuse_link_loop(path, flag)
    if os.path.islink(path) and not os.path.exists(path):
        raise UsageError(f"{flag} {path} is a symbolic link to {os.readlink(path)!r}, which does "
                         f"not exist")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot create it ({_reason(error)})") from None
    _try_writing_in(path, flag, path)
    return path


def require_matplotlib(flag):
    """UsageError naming ``flag`` if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"{flag} needs matplotlib: pip install matplotlib") from None


def matplotlib_suffixes():
    """The file suffixes matplotlib's savefig writes here ('.png', '.pdf', '.svg', ...):
    '.pgf' only when the TeX program its pgf backend runs is installed (without it the
    figure would fail after the work)."""
    import matplotlib
    from matplotlib.backend_bases import FigureCanvasBase
    common = (".png", ".pdf", ".svg")  # named first in messages
    others = sorted(f".{s}" for s in FigureCanvasBase.get_supported_filetypes())
    if ".pgf" in others and shutil.which(matplotlib.rcParams["pgf.texsystem"]) is None:
        others.remove(".pgf")
    return tuple(s for s in common if s in others) + tuple(s for s in others if s not in common)


def _check_name_length(folder, name, flag, path):
    """UsageError naming ``flag`` if ``name`` is longer than the file system of ``folder``
    allows (found before the work, not when the result is written)."""
    size, limit = len(os.fsencode(name)), name_max(folder)
    if size > limit:
        raise UsageError(f"{flag} {path}: the file name is {size} bytes long; the file "
                         f"system allows at most {limit}")


def _try_writing_in(folder, flag, path):
    try:
        fd, probe = tempfile.mkstemp(prefix=".rpmref-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot write in {folder} ({_reason(error)})") from None


def _reason(error):
    if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename:
        return f"{error.filename} is not a directory"
    return error.strerror or str(error)


def _one_of(suffixes):
    suffixes = list(suffixes)
    if len(suffixes) == 1:
        return suffixes[0]
    shown = ", ".join(suffixes[:6]) + (", ..." if len(suffixes) > 6 else "")
    return f"one of {shown}"


# --------------------------------------------------------------------------
# number types


def _number(text, kind, ok, requirement):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {text}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def nonnegative_int(text):
    """argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def positive_float(text):
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


def bounded_float(low, high, why=""):
    """argparse type: a number in [low, high]; ``why`` explains the bounds."""
    reason = f" ({why})" if why else ""
    return lambda text: _number(text, float, lambda v: low <= v <= high,
                                f"a number from {low:g} to {high:g}{reason}")


def bounded_int(low, high=None, why=""):
    """argparse type: an integer in [low, high] (no upper bound if None); ``why`` explains
    the bound."""
    reason = f" ({why})" if why else ""
    if high is None:
        return lambda text: _number(text, int, lambda v: v >= low,
                                    f"an integer of at least {low}{reason}")
    return lambda text: _number(text, int, lambda v: low <= v <= high,
                                f"an integer from {low} to {high}{reason}")


def gib(n_bytes):
    """``n_bytes`` as a short 'x.y GiB' string."""
    return f"{n_bytes / 1024**3:.1f} GiB"


# --------------------------------------------------------------------------
# messages and file locations (checked before a command starts its work)


def flag_names(message, flags):
    """``message`` with library argument names replaced by the flags that set them.

    flags: {name: "--flag"}. Names with an underscore (``blas_threads``) are
    replaced wherever they stand; plain words (``steps``) only at the start of
    the message or before ": " (as in "steps: checkpoint 5 vs now 6"), so
    ordinary prose is left alone.
    """
    for name, flag in flags.items():
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}\b", flag, message)
        else:
            message = re.sub(rf"^{re.escape(name)}\b|(?<![\w-]){re.escape(name)}(?=: )",
                             flag, message)
    return message


def os_error_text(error):
    """An OSError as "path: reason" (or just the reason when it names no file)."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


def check_input_file(path, flag):
    """ValueError unless ``path`` is an existing regular file (the message says what it is)."""
    if not path or not os.path.isfile(path):
        raise ValueError(f"{flag} {path!r}: {_not_a_file(path)}")
    return path


def _not_a_file(path):
    if path and os.path.isdir(path):
        return "is a directory, not a file"
    if path and os.path.exists(path):             # a device, a pipe, or a link to one
        return "not a regular file"
    if path and os.path.islink(path):
        return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
    return "no such file"

