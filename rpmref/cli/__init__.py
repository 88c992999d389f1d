"""The ``rpmref`` command line: the only place that parses arguments and chooses exit codes.

One module per command (``verify``, ``proofs``, ``mi_bench``, ``balls``,
``check_infonce``, ``structure``), each
with ``add_parser(subparsers)`` that registers it and sets ``func``;
``func(args)`` returns the process exit code. The library functions they call
return data and raise exceptions.

Exit codes: 0 success, 1 a check failed or the run failed (an OSError, say),
2 bad arguments or input, 130 interrupted, 143 terminated (SIGTERM, handled as
Ctrl-C), 141 a closed output pipe;
``common.run_command`` turns the
library's exceptions into one-line errors with these codes.
"""
import argparse
import sys

import rpmref
from rpmref.cli.common import OneLineErrorParser, run_command


def build_parser():
    """The ``rpmref`` argument parser with every subcommand."""
    from rpmref.cli import balls, check_infonce, mi_bench, proofs, structure, verify
    parser = OneLineErrorParser(
        prog="rpmref",
        description="InfoNCE as variational inference in a recognition parameterised "
        "model: exact identity checks, symbolic proofs and the bouncing-balls experiment.",
    )
    parser.add_argument("--version", action="version", version=f"rpmref {rpmref.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=OneLineErrorParser)
    commands.required = False   # main() says what is missing, after unknown options
    for module in (verify, proofs, mi_bench, balls, check_infonce, structure):
        module.add_parser(commands)
    return parser


def main(argv=None):
    """Run ``rpmref`` with ``argv`` (default: the process arguments); returns the exit code."""
    try:  # building the parser imports every command's modules: Ctrl-C may come now
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        print("rpmref: interrupted", file=sys.stderr)
        return 130
    _check_command_words(parser, sys.argv[1:] if argv is None else list(argv), args, unknown)
    words = [w for w in (getattr(args, name, None) for name in ("command", "balls_command")) if w]
    if unknown:  # reported by the command's own parser, so that it names its own --help
        _command_parser(parser, words).error(f"unrecognized arguments: {' '.join(unknown)}")
    return run_command(args.func, args, " ".join(["rpmref"] + words))


def _check_command_words(parser, argv, args, unknown):
    """Exit 2 if a level of commands (``rpmref``, ``rpmref balls``) lacks its command word,
    or an unknown option stands before it: options there are that level's own (none takes
    a value), so ``rpmref --bogus verify`` is rpmref's mistake, not verify's, and
    ``rpmref --versio`` an unknown option, not a missing command."""
    while True:
        action = _subcommands(parser)
        if action is None:
            return
        cut = next((i for i, w in enumerate(argv) if not w.startswith("-")), len(argv))
        stray = [w for w in unknown if w in argv[:cut]]
        if stray:
            parser.error(f"unrecognized arguments: {' '.join(stray)}")
        word = getattr(args, action.dest, None)
        if word is None:
            parser.error(f"the following arguments are required: {action.metavar}")
        parser, argv = action.choices[word], argv[cut + 1:]


def _subcommands(parser):
    """The subcommands action of ``parser`` (its ``choices``: word → parser), or None."""
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                None)


def _command_parser(parser, words):
    """The parser of the (sub)command that ``words`` name, e.g. ["balls", "train"]."""
    for word in words:
        action = _subcommands(parser)
        if action is None or word not in action.choices:
            break
        parser = action.choices[word]
    return parser


__all__ = ["build_parser", "main", "OneLineErrorParser"]
