"""``rpmref verify``: check every identity (E1–E9, N1, A1, Gaussian closed forms) on random problems."""
import json
import sys
import time

from rpmref.cli.common import nonnegative_int, positive_float, positive_int
from rpmref.verify import DEFAULT_TOLERANCE, format_table, run_checks


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "verify", help="check every identity (E1-E9, N1, A1) on random problems",
        description="Draw random discrete problems (data pmfs with zeros, dense, one-hot and "
        "near-deterministic encoders, random priors and critics), compute both sides of every "
        "identity of the paper by independent routes, and print the largest error. Exits 1 if "
        "any identity exceeds the tolerance.")
    parser.add_argument("--trials", type=positive_int, default=200,
                        help="random problems per identity (default: 200)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-states", type=positive_int, default=8,
                        help="largest number of data and latent states per variable (default: 8)")
    parser.add_argument("--tolerance", type=positive_float, default=DEFAULT_TOLERANCE,
                        help=f"largest allowed absolute error (default: {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.set_defaults(func=run)
    return parser


def run(args):
    start = time.perf_counter()
    rows = run_checks(args.trials, args.seed, args.max_states, args.tolerance)
    elapsed = time.perf_counter() - start
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print(format_table(rows))
        failed = [r["id"] for r in rows if not r["passed"]]
        summary = f"FAILED: {', '.join(failed)}" if failed else "all identities PASS"
        print(f"\n{summary} ({args.trials} trials each, seed {args.seed}, "
              f"max {args.max_states} states, tolerance {args.tolerance:g}; {elapsed:.1f} s)")
    return 0 if all(r["passed"] for r in rows) else 1
