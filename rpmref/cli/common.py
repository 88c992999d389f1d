"""Pieces every ``rpmref`` command shares: the argument parser class and number types."""
import argparse
import os
import re
import tempfile


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    """ValueError unless ``path`` is an existing regular file."""
    if not path or not os.path.isfile(path):
        raise ValueError(f"{flag} {path!r}: no such file")
    return path


def check_output_file(path, flag, suffixes):
    """Refuse an output path before any work is done; returns it.

    The name must end in one of ``suffixes`` (case-insensitive) after a
    non-empty stem, must not be a directory, and its folder must exist and
    accept a new file (checked by creating and removing a temporary file, which
    also catches read-only and special file systems such as /proc).
    ValueError naming the flag otherwise.
    """
    name = os.path.basename(path or "")
    wanted = suffixes[0] if len(suffixes) == 1 else "one of " + ", ".join(suffixes)
    if not any(name.lower().endswith(s) and len(name) > len(s) for s in suffixes):
        raise ValueError(f"{flag} must be a file name ending in {wanted}; got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{flag} {path}: directory {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rpmref-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot write in {folder} ({e.strerror or e})") from None
    return path
