"""``rpmref mi-bench``: the MI staircase of Poole et al. (2019) (``rpmref.gaussian.staircase``)."""
import json
import math
import os
import sys

from rpmref.balls.runstore import replacing
from rpmref.cli.common import (
    MEMORY_BUDGET, UsageError, bounded_int, check_output_file, gib, nonnegative_int, positive_int)
from rpmref.environment import environment
from rpmref.gaussian import optimal_rbf_lengthscale
from rpmref.gaussian.monte_carlo import MAX_SAMPLE_ELEMENTS, MAX_SCORE_ELEMENTS
from rpmref.gaussian.staircase import (
    BATCH_SIZE, BATCHES, DIM, LEVELS, benchmark_rows, format_table, plot, staircase_joint)

#: score-matrix entries per chunk of batches in rpmref.gaussian.monte_carlo
SCORES_PER_CHUNK = 4_000_000


def peak_bytes(dim, batch_size, batches):
    """Upper bound on the benchmark's working memory (bytes) for one MI level.

    Measured with tracemalloc (tests/test_mi_bench.py checks it): the Monte
    Carlo works on chunks of c = min(batches, max(1, 4e6 // K²)) batches; per
    chunk it holds ~3.5 float64 arrays of c·K² scores (score matrix, its
    logsumexp temporaries) and ~3 of c·K·2d draws (noise, pairs, products);
    the closed forms hold ~11 (2d × 2d) matrices (covariance, Cholesky factor,
    critic matrices and the copies the results own, the temporaries of the symmetry
    and definiteness checks and the power-of-two rescaled copies: 10.6 measured at
    d = 400, 10.4 at d = 600).
    """
    k, two_d = int(batch_size), 2 * int(dim)
    chunk = min(int(batches), max(1, SCORES_PER_CHUNK // (k * k)))
    return 8 * (3.5 * chunk * k * k + 3.0 * chunk * k * two_d + 11.0 * two_d * two_d)


#: the largest K: a batch's K × K score matrix may hold MAX_SCORE_ELEMENTS entries
MAX_BATCH_SIZE = math.isqrt(MAX_SCORE_ELEMENTS)


def draws_per_chunk(dim, batch_size, batches):
    """Gaussian draws of one chunk of batches, c·K·2d (``sample_pairs`` refuses more than
    MAX_SAMPLE_ELEMENTS)."""
    k = int(batch_size)
    chunk = min(int(batches), max(1, SCORES_PER_CHUNK // (k * k)))
    return chunk * k * 2 * int(dim)


def fits(dim, batch_size, batches):
    """Whether the benchmark runs at these sizes: its memory within MEMORY_BUDGET and each
    chunk's draws within MAX_SAMPLE_ELEMENTS."""
    return (peak_bytes(dim, batch_size, batches) <= MEMORY_BUDGET
            and draws_per_chunk(dim, batch_size, batches) <= MAX_SAMPLE_ELEMENTS)


def largest_batch_size(dim, batches):
    """The largest K ≤ MAX_BATCH_SIZE at which the benchmark ``fits`` (0 if none does)."""
    return min(MAX_BATCH_SIZE, _largest(lambda k: fits(dim, k, batches)))


def largest_dim(batch_size, batches):
    """The largest d at which the benchmark ``fits`` (0 if none does)."""
    return _largest(lambda d: fits(d, batch_size, batches))


def _largest(fits, high=1 << 24):
    """The largest n in 0..high with fits(n) (fits is monotone: true up to some n)."""
    low = 0
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


DEFAULT_MAX_BATCH = largest_batch_size(DIM, BATCHES)
DEFAULT_MAX_DIM = largest_dim(BATCH_SIZE, BATCHES)


def run(args):
    levels = _levels(args.levels)
    if not fits(args.dim, args.batch_size, args.batches):
        sizes = f"--dim {args.dim}, --batch-size {args.batch_size} and --batches {args.batches}"
        # the need grows with --dim at any --batch-size, but not always with --batch-size
        # (a larger K takes fewer batches per chunk): name --dim unless no --dim fits
        d_max = largest_dim(args.batch_size, args.batches)
        limit = (f"--dim must be at most {d_max} at this --batch-size and --batches" if d_max
                 else f"--batch-size must be at most "
                      f"{largest_batch_size(args.dim, args.batches)} at this --dim")
        needed = peak_bytes(args.dim, args.batch_size, args.batches)
        draws = draws_per_chunk(args.dim, args.batch_size, args.batches)
        raise UsageError(f"{sizes} need about {gib(needed)} of memory (K × K score matrices, "
                         f"K × 2d draws, 2d × 2d covariances; the limit is "
                         f"{gib(MEMORY_BUDGET)}) and {draws:.3g} Gaussian draws per chunk of "
                         f"batches (the limit is {MAX_SAMPLE_ELEMENTS:.3g}): {limit}")
    if args.batch_size > MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be at most {MAX_BATCH_SIZE} (a batch's K × K score "
                         f"matrix is limited to {MAX_SCORE_ELEMENTS} entries); got {args.batch_size}")
    if args.batches < 2:
        raise UsageError(f"--batches must be at least 2 (for a standard error); got {args.batches}")
    for level in levels:
        try:
            joint, _ = staircase_joint(level, args.dim)
        except ValueError as err:
            raise UsageError(f"--levels {level:g}: {err}".replace("dim = ", "--dim ")) from None
        try:
            optimal_rbf_lengthscale(joint)
        except ValueError:
            raise UsageError(f"--levels {level:g}: so small an MI makes the best RBF lengthscale "
                             f"too large to place (it grows as 1/correlation); use a larger "
                             f"level") from None
    if args.figure is not None:  # before the computation, not after ('' is refused)
        check_output_file(args.figure, "--figure", needs_matplotlib=True)
    rows = benchmark_rows(levels, args.dim, args.batch_size, args.batches, args.seed)
    if args.json:
        print(json.dumps({"environment": environment(),
                          "settings": {"levels": list(levels), "dim": args.dim,
                                       "batch_size": args.batch_size, "batches": args.batches,
                                       "seed": args.seed},
                          "rows": rows}, indent=1))
    else:
        print(f"Poole et al. (2019) staircase: d = {args.dim}, K = {args.batch_size}, "
              f"{args.batches} batches per cell, seed {args.seed}; nats, I_K ± 1 s.e.")
        print(format_table(rows))
    if args.figure is not None:
        suffix = ".tmp" + os.path.splitext(args.figure)[1]   # matplotlib picks the format by it
        with replacing(args.figure, suffix=suffix) as target:  # a failed write leaves no part
            plot(rows, target)  # an OSError here: one line and exit 1 (cli.common)
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


def _levels(text):
    try:
        levels = tuple(float(v) for v in text.split(","))
    except ValueError:
        levels = ()
    if not levels or not all(0 < v < float("inf") for v in levels):
        raise UsageError(f"--levels must be comma-separated positive numbers of nats; "
                         f"got {text!r}")
    return levels


def add_parser(subparsers):
    p = subparsers.add_parser(
        "mi-bench", help="the Poole et al. MI staircase: I_∞ and I_K for three critics",
        description="Gaussian MI benchmark of Poole et al. (2019): true MI, log K, and "
        "the InfoNCE objectives I_∞ (closed form) and I_K (Monte Carlo ± standard error) "
        "for the optimal, best bilinear and best RBF critics.")
    p.add_argument("--levels", default=",".join(f"{v:g}" for v in LEVELS),
                   help="comma-separated true MI values in nats (default: %(default)s)")
    p.add_argument("--dim", type=positive_int, default=DIM,
                   help=f"dimension d (default: %(default)s; at most {DEFAULT_MAX_DIM} at the "
                   f"default --batch-size and --batches: memory and the draws of one chunk of "
                   "batches, see --batch-size)")
    p.add_argument("--batch-size", type=bounded_int(2, why="a batch needs a negative"),
                   default=BATCH_SIZE,
                   help="K ≥ 2, pairs per batch (default: %(default)s; at most "
                   f"{DEFAULT_MAX_BATCH} at the default --dim and --batches: the benchmark's "
                   f"arrays must fit in {gib(MEMORY_BUDGET)}; larger sizes are refused)")
    p.add_argument("--batches", type=positive_int, default=BATCHES,
                   help="Monte Carlo batches per cell, at least 2 (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="random seed, a non-negative integer (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object {environment, settings, rows}, rows one object "
                   "per level")
    p.add_argument("--figure", metavar="PATH",
                   help="also write the figure to PATH (.png, .pdf, .svg, ...; needs matplotlib)")
    p.set_defaults(func=run)
