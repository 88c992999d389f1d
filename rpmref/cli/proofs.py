"""``rpmref proofs`` / ``python -m proofs``: run the symbolic proofs, print one line each.

Exit codes: 0 every selected identity proved, 1 any FAILED (``--check-wrong``
adds deliberately wrong identities, so it exits 1 by design), 2 bad arguments.
sympy is imported only when the command runs, so ``rpmref --help`` stays fast.
"""
import time

from rpmref.cli.common import (
    OneLineErrorParser, RunFailed, UsageError, bounded_int, check_output_file, run_command)


def configure(parser):
    parser.add_argument("--only", nargs="+", action="extend", metavar="ID",
                        help="run only these identities (e.g. --only E2 N1, or E2,N1; "
                             "repeated, the lists add up); see --list for the IDs")
    parser.add_argument("--report", metavar="FILE.md",
                        help="also write a Markdown report: statements in LaTeX, assumptions, every step")
    parser.add_argument("--max-size", type=bounded_int(1, 4), default=3, metavar="N",
                        help="bound of the finite-size checks, 1 to 4: all sizes in {1..N-1}^d "
                             "and (N,..,N) (default 3; 4 is much slower)")
    parser.add_argument("--check-wrong", action="store_true",
                        help="also run deliberately wrong identities, which must be reported FAILED "
                             "(demonstrates a failing proof; the exit code is then 1)")
    parser.add_argument("--list", action="store_true", help="list the proof IDs and exit")
    parser.set_defaults(func=main_from_args)
    return parser


def add_parser(subparsers):
    """Register ``rpmref proofs``."""
    parser = subparsers.add_parser(
        "proofs",
        help="symbolic (sympy) proofs of the identities E1-E9, N1, A1, G1 and lemma L1",
        description="Prove every identity (E1-E9, N1, A1, G1 and the lemma L1) symbolically "
        "with sympy: pointwise log identities, "
        "finite sums with symbolic entries at every size up to a bound, and symbolic sizes where sympy can.")
    configure(parser)


def print_line(result):
    flag = "  (deliberately wrong)" if result.wrong else ""
    print(f"{result.id:<9} {result.status:<7} {result.seconds:6.2f} s  {result.title}{flag}", flush=True)
    if result.status != "proved":
        for step in result.steps:
            if step.ok is False:
                print(f"{'':<9} FAILED step: {step.text[:300]}", flush=True)


def main_from_args(args):
    try:
        from rpmref.proofs.run import run_proofs, select
    except ModuleNotFoundError as error:
        if error.name not in ("rpmref.proofs", "rpmref.proofs.run"):
            raise
        import rpmref
        raise RunFailed(
            f"rpmref.proofs is missing from the rpmref in {rpmref.__path__[0]}: the "
            "repository's proofs/ becomes rpmref.proofs only when pip installs it (a source "
            "tree in the current directory shadows an install); run 'pip install -e .' "
            "there, or run rpmref from another directory") from None
    if args.only is not None and not [i for item in args.only for i in item.split(",")
                                      if i.strip()]:
        raise UsageError("--only names no proof ID (see --list for the IDs)")
    if args.report is not None:  # before the proofs run, not after ('' is refused)
        check_output_file(args.report, "--report", suffixes=(".md",))
    try:
        entries = select(args.only, include_wrong=args.check_wrong)
    except ValueError as error:  # an unknown ID (the message says it is one)
        raise UsageError(str(error)) from None
    if args.list:
        for entry in entries if args.only else select(None, include_wrong=True):
            print(f"{entry.id:<9} {entry.title}{'  (deliberately wrong)' if entry.wrong else ''}")
        return 0
    start = time.perf_counter()
    results = run_proofs(entries, max_size=args.max_size, on_result=print_line)
    failed = [r for r in results if r.status != "proved"]
    print(f"{len(results) - len(failed)} proved, {len(failed)} FAILED in "
          f"{time.perf_counter() - start:.1f} s (finite sizes up to {args.max_size})")
    if args.report is not None:
        from rpmref.balls.runstore import replacing
        from rpmref.proofs.report import write_report
        with replacing(args.report) as target:   # all of it or nothing; a link written through
            write_report(target, results, args.max_size)
        print(f"report written to {args.report}")
    return 1 if failed else 0


def main(argv=None):
    """Entry point of ``python -m rpmref.proofs`` (``python -m proofs`` in a checkout)."""
    parser = configure(OneLineErrorParser(prog="python -m rpmref.proofs", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    return run_command(main_from_args, args, parser.prog)
