"""The ``rpmref`` command line.

Each subcommand lives in the module that owns the work and registers itself
through an ``add_parser(subparsers)`` function that sets ``func`` on the parser;
this file only assembles them. ``func(args)`` returns the process exit code.

Exit codes: 0 success, 1 a check failed, 2 bad arguments or input, 130 interrupted.
"""
import argparse
import sys


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


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = OneLineErrorParser(
        prog="rpmref",
        description="InfoNCE as variational inference in a recognition parameterised "
        "model: exact identity checks, symbolic proofs and the bouncing-balls experiment.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=OneLineErrorParser)
    commands.required = True

    from proofs import cli as proofs_cli
    from rpmref import balls, compare, mi_bench, train, verify
    for module in (verify, proofs_cli, mi_bench):
        module.add_parser(commands)

    balls_parser = commands.add_parser(
        "balls", help="the bouncing-balls experiment (Sec. 5, Appendix D)",
        description="Generate bouncing-balls videos, train the CNN encoder with an "
        "InfoNCE critic, and compare critics.")
    balls_commands = balls_parser.add_subparsers(dest="balls_command", metavar="BALLS_COMMAND",
                                          parser_class=OneLineErrorParser)
    balls_commands.required = True
    for module in (balls, train, compare):  # rpmref balls make | train | compare
        module.add_parser(balls_commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
