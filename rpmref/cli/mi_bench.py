"""``rpmref mi-bench``: the MI staircase of Poole et al. (2019) (``rpmref.gaussian.staircase``)."""
import json
import sys

from rpmref.cli.common import positive_int
from rpmref.gaussian.staircase import BATCH_SIZE, BATCHES, DIM, LEVELS, benchmark_rows, format_table, plot


def run(args):
    try:
        levels = tuple(float(v) for v in args.levels.split(","))
        rows = benchmark_rows(levels, args.dim, args.batch_size, args.batches, args.seed)
    except ValueError as err:
        print(f"rpmref mi-bench: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"Poole et al. (2019) staircase: d = {args.dim}, K = {args.batch_size}, "
              f"{args.batches} batches per cell, seed {args.seed}; nats, I_K ± 1 s.e.")
        print(format_table(rows))
    if args.figure:
        try:
            plot(rows, args.figure)
        except OSError as err:
            print(f"rpmref mi-bench: error: cannot write --figure {args.figure}: "
                  f"{err.strerror or err}", file=sys.stderr)
            return 2
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "mi-bench", help="the Poole et al. MI staircase: I_∞ and I_K for three critics",
        description="Gaussian MI benchmark of Poole et al. (2019): true MI, log K, and "
        "the InfoNCE objectives I_∞ (closed form) and I_K (Monte Carlo ± standard error) "
        "for the optimal, best bilinear and best RBF critics.")
    p.add_argument("--levels", default=",".join(f"{v:g}" for v in LEVELS),
                   help="comma-separated true MI values in nats (default: %(default)s)")
    p.add_argument("--dim", type=positive_int, default=DIM, help="dimension d (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help="K, pairs per batch (default: %(default)s)")
    p.add_argument("--batches", type=positive_int, default=BATCHES,
                   help="Monte Carlo batches per cell, at least 2 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.add_argument("--figure", metavar="PATH", help="also write the figure (PNG) to PATH")
    p.set_defaults(func=run)
