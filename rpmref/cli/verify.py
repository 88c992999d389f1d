"""``rpmref verify``: check every identity (E1–E9, N1, A1, Gaussian closed forms) on random problems."""
import json
import sys
import time

from rpmref.cli.common import (
    MEMORY_BUDGET, bounded_int, nonnegative_int, positive_float)
from rpmref.environment import environment
from rpmref.verify import (
    DEFAULT_TOLERANCE, MAX_STATES_LIMIT, MAX_TRIALS, format_table, run_checks)

#: Peak working memory of one trial with every size at m, in units of one (m, m, m, m)
#: float64 array (8 m⁴ bytes): the joint tables of Eq. 12 and E8's posteriors (formed in
#: log space). Measured with tracemalloc at m = 8..20: E8 peaks at 5.45 at m = 8, falling to
#: 4.40 at m = 20; tests/test_verify.py checks it.
PEAK_ARRAYS = 5.5
#: The largest --max-states: its trials fit in the memory budget of rpmref.cli.common,
#: and the library's own limit (rpmref.verify.MAX_STATES_LIMIT) holds.
MAX_STATES = min(int((MEMORY_BUDGET / (8 * PEAK_ARRAYS)) ** 0.25), MAX_STATES_LIMIT)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="check every identity (E1-E9, N1, A1, the Gaussian closed forms) on random problems",
        description="Draw random discrete problems (data pmfs with zeros, dense, one-hot and "
        "near-deterministic encoders, random priors and critics), compute both sides of every "
        "identity of the paper by independent routes, and print the largest error. Exits 1 if "
        "any identity exceeds the tolerance.")
    parser.add_argument("--trials", type=bounded_int(1, MAX_TRIALS), default=200,
                        help=f"random problems per identity, at most {MAX_TRIALS} (default: 200)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-states", type=bounded_int(1, MAX_STATES, "(n, n', k, k') tables per trial"), default=8,
                        help="largest number of data and latent states per variable (default: "
                        f"8; at most {MAX_STATES}: a trial holds (n, n', k, k') tables of "
                        f"8·m⁴ bytes)")
    parser.add_argument("--tolerance", type=positive_float, default=DEFAULT_TOLERANCE,
                        help="largest allowed error of every row, the Gaussian ones included "
                        "(absolute; relative for G-l*, the optimal lengthscale) "
                        f"(default: {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object {environment, settings, rows} instead of a "
                        "table")
    parser.set_defaults(func=run)
    return parser


def run(args):
    start = time.perf_counter()
    rows = run_checks(args.trials, args.seed, args.max_states, args.tolerance)
    elapsed = time.perf_counter() - start
    if args.json:
        json.dump({"environment": environment(),
                   "settings": {"trials": args.trials, "seed": args.seed,
                                "max_states": args.max_states, "tolerance": args.tolerance},
                   "rows": rows}, sys.stdout, indent=2)
        print()
    else:
        print(format_table(rows))
        failed = [r["id"] for r in rows if not r["passed"]]
        summary = f"FAILED: {', '.join(failed)}" if failed else "all identities PASS"
        print(f"\n{summary} ({args.trials} trials each, seed {args.seed}, "
              f"max {args.max_states} states, tolerance {args.tolerance:g}; {elapsed:.1f} s)")
    return 0 if all(r["passed"] for r in rows) else 1
