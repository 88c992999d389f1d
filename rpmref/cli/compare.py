"""``rpmref balls compare``: train every critic for every seed and compare (Fig. 1B–C)."""
import argparse
import math
import sys

from rpmref.balls.compare import (
    SWEEP_LEARNING_RATES, SWEEP_OPTIMISERS, _config_for, _default_train_config, _have_matplotlib,
    default_jobs, quick_configs, results_markdown, run_compare, run_sweep, sweep_markdown)
from rpmref.balls.critics import CRITICS
from rpmref.balls.video import BallsConfig
from rpmref.cli.common import nonnegative_int, positive_float, positive_int


def add_parser(subparsers):
    """Register ``rpmref balls compare``."""
    p = subparsers.add_parser(
        "compare", help="train every critic for every seed and compare (Fig. 1B–C)",
        description="Reproduce the paper's experiment: train the encoder with each critic "
        "for each seed, score the linear readout and per-map tracking on a held-out "
        "video, against the untrained encoder; write results.json, results.md, fig1.png.")
    p.add_argument("--seeds", type=positive_int, default=3,
                   help="number of training seeds (0, 1, ...; default 3)")
    p.add_argument("--critics", type=_critic_list, default=list(CRITICS),
                   help="comma-separated critics (default rbf,bilinear,cosine)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help="override the trainer's default optimiser (adam) for the comparison")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="override the trainer's default learning rate (3e-3) for the comparison")
    p.add_argument("--no-orient-maps", action="store_true",
                   help="start from the raw random second-layer filters (the ablation: maps "
                   "may start dark on the balls; see README, 'Why the maps are oriented')")
    p.add_argument("--figure-seed", type=nonnegative_int, default=0,
                   help="the seed drawn in fig1.png, with per-epoch R² (default 0)")
    p.add_argument("--out", default="compare_out", help="output directory (default compare_out)")
    p.add_argument("--quick", action="store_true",
                   help="tiny video and few steps (a smoke test, not a result)")
    p.add_argument("--sweep", action="store_true",
                   help="also sweep optimiser × learning rate, chosen on a validation video")
    p.add_argument("--sweep-only", action="store_true",
                   help="run only the sweep (skip the default comparison)")
    p.add_argument("--optimizers", type=_name_list(("sgd", "adam")), default=None,
                   help="sweep optimisers, comma-separated (default sgd,adam)")
    p.add_argument("--lrs", type=_lr_list, default=None,
                   help="sweep learning rates, comma-separated (default 1e-3,3e-3,1e-2,3e-2)")
    p.add_argument("--jobs", type=positive_int, default=default_jobs(),
                   help="training runs at once, in worker processes of 1 BLAS thread each; "
                   "the results do not depend on it (default: min(2, cores) = "
                   f"{default_jobs()})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_compare_command)


def _compare_command(args):
    seeds = tuple(range(args.seeds))
    train_config, balls_config, curve_every = _default_train_config(), BallsConfig(), 2
    optimisers, lrs = SWEEP_OPTIMISERS, SWEEP_LEARNING_RATES
    if args.quick:
        train_config, balls_config = quick_configs()
        curve_every = 1
        optimisers, lrs = SWEEP_OPTIMISERS, SWEEP_LEARNING_RATES[2:3]
    overrides = {k: v for k, v in (("optimizer", args.optimizer), ("lr", args.lr)) if v is not None}
    if args.no_orient_maps:
        overrides["orient_maps"] = False
    train_config = _config_for(train_config, **overrides)
    optimisers = tuple(args.optimizers or optimisers)
    lrs = tuple(args.lrs or lrs)
    if args.figure_seed not in seeds:
        print(f"rpmref balls compare: error: --figure-seed must be one of the seeds "
              f"0..{len(seeds) - 1}; got {args.figure_seed}", file=sys.stderr)
        return 2
    if not args.sweep_only:
        results = run_compare(seeds, tuple(args.critics), train_config, balls_config, args.out,
                              curve_every=curve_every, figure_seed=args.figure_seed,
                              progress=not args.no_progress, jobs=args.jobs)
        print(results_markdown(results["summary"], "Default settings", results["settings"]))
        print(f"total {results['total_wall_time']:.1f} s; wrote {args.out}/results.json, "
              f"results.md" + (", fig1.png" if _have_matplotlib() else ""))
    if args.sweep or args.sweep_only:
        sweep = run_sweep(seeds, tuple(args.critics), train_config, balls_config,
                          optimisers=optimisers, learning_rates=lrs, out_dir=args.out,
                          progress=False, jobs=args.jobs)
        print(sweep_markdown(sweep))
        print(f"wrote {args.out}/sweep.json, sweep.md")
    return 0




def _name_list(allowed):
    def parse(text):
        names = [c.strip() for c in text.split(",") if c.strip()]
        if not names or any(n not in allowed for n in names):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(allowed)}; got {text!r}")
        return names
    return parse


def _lr_list(text):
    try:
        lrs = [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        lrs = []
    if not lrs or not all(0 < lr < math.inf for lr in lrs):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive learning rates; got {text!r}")
    return lrs


def _critic_list(text):
    critics = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in critics if c not in CRITICS]
    if unknown or not critics:
        raise argparse.ArgumentTypeError(
            f"critics must be a comma-separated subset of {','.join(CRITICS)}; got {text!r}")
    return critics
