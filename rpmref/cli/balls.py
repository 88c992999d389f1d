"""``rpmref balls make | train | compare``: the bouncing-balls experiment (Sec. 5, Appendix D)."""
import argparse
import json
import math
import os
import sys
import time

from rpmref.balls.compare import (
    SWEEP_LEARNING_RATES, SWEEP_OPTIMISERS, _config_for,
    _default_train_config, _have_matplotlib, default_jobs, quick_configs, results_markdown,
    run_compare, run_sweep, sweep_markdown)
from rpmref.balls.critics import CRITICS
from rpmref.balls.readout import fit_linear_readout, score_readout
from rpmref.balls.render import save_gif, save_preview
from rpmref.balls.trainer import (
    CHECKPOINT, DTYPES, METRICS, SUMMARY, NonFiniteLossError, TrainConfig, _config_dict, encode,
    train)
from rpmref.balls import optim
from rpmref.balls.video import BallsConfig, ball_colours, load_video, make_video, save_video, simulate
from rpmref.balls.render import render_frames
from rpmref.cli.common import OneLineErrorParser, nonnegative_int, positive_float, positive_int


def add_parser(subparsers):
    """Register ``rpmref balls`` and its three subcommands."""
    balls_parser = subparsers.add_parser(
        "balls", help="the bouncing-balls experiment (Sec. 5, Appendix D)",
        description="Generate bouncing-balls videos, train the CNN encoder with an "
        "InfoNCE critic, and compare critics.")
    commands = balls_parser.add_subparsers(dest="balls_command", metavar="BALLS_COMMAND",
                                           parser_class=OneLineErrorParser)
    commands.required = True
    add_make_parser(commands)
    add_train_parser(commands)
    add_compare_parser(commands)


# --------------------------------------------------------------------------
# rpmref balls make


def add_make_parser(subparsers):
    """Register ``rpmref balls make``."""
    defaults = BallsConfig()
    p = subparsers.add_parser(
        "make", help="generate a bouncing-balls video (Appendix D)",
        description="Generate a bouncing-balls video (Sec. 5, Appendix D) and save frames, "
        "ball centres and the config to an .npz file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--preview", help="also write a PNG grid of frames with trajectories")
    p.add_argument("--gif", help="also write an animated GIF")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--frames", type=int, default=defaults.n_frames, help="number of frames")
    p.add_argument("--balls", type=int, default=defaults.n_balls, help="number of balls")
    p.add_argument("--size", type=int, default=defaults.size, help="frame side in pixels")
    p.add_argument("--diameter", type=float, default=defaults.diameter,
                   help="ball diameter (= step per frame) in pixels")
    p.add_argument("--noise", type=float, default=defaults.noise,
                   help="direction noise half-range a in radians")
    p.add_argument("--gray", action="store_true",
                   help="one grayscale channel (balls differ by intensity) instead of RGB")
    p.set_defaults(func=_make_command)


def _make_command(args):
    try:
        config = BallsConfig(n_frames=args.frames, n_balls=args.balls, size=args.size,
                             diameter=args.diameter, noise=args.noise,
                             channels="gray" if args.gray else "rgb")
    except ValueError as e:
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    for target in (args.out, args.preview, args.gif):
        folder = os.path.dirname(os.path.abspath(target)) if target else None
        if folder and not os.path.isdir(folder):
            print(f"rpmref balls make: error: directory {folder} does not exist", file=sys.stderr)
            return 2
    start = time.perf_counter()
    try:
        trajectory = simulate(config, args.seed)
    except (ValueError, RuntimeError) as e:
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    frames = render_frames(trajectory.positions, 0.5 * config.diameter, config.size,
                           config.size, ball_colours(config))
    elapsed = time.perf_counter() - start
    written = save_video(args.out, frames, trajectory.positions, config)
    kind = "RGB" if config.channels == "rgb" else "gray"
    print(f"wrote {written}: {config.n_frames} frames, {config.n_balls} balls, "
          f"{config.size}x{config.size} {kind}, diameter {config.diameter:g} px, "
          f"noise ±{config.noise:.4f} rad, seed {args.seed}")
    print(f"generated in {elapsed:.3f} s; {trajectory.n_redrawn} of {trajectory.n_moves} moves "
          f"redrawn ({100.0 * trajectory.n_redrawn / max(trajectory.n_moves, 1):.1f}%); "
          f"{trajectory.n_dead_ends} dead ends (backtracked)")
    try:
        if args.preview:
            colours = ball_colours(config) if config.channels == "rgb" else None
            save_preview(args.preview, frames, trajectory.positions, colours=colours)
            print(f"wrote {args.preview}")
        if args.gif:
            save_gif(args.gif, frames)
            print(f"wrote {args.gif}")
    except RuntimeError as e:  # matplotlib / Pillow missing
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------
# rpmref balls train


def add_train_parser(subparsers):
    """Register ``rpmref balls train``."""
    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train the CNN encoder with an InfoNCE critic (Sec. 5)",
        description="Train the two-layer CNN encoder on a bouncing-balls video with in-batch "
        "InfoNCE and the chosen critic; write checkpoint.npz, metrics.jsonl and summary.json "
        "(including a linear readout's R² and RMSE on a held-out video) to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--critic", choices=CRITICS, default=d.critic, help="critic f(z, z')")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--video", help="training video (.npz from 'rpmref balls make'); "
                   "default: generated with --video-seed")
    p.add_argument("--video-seed", type=int, default=0,
                   help="seed of the generated training video (without --video)")
    p.add_argument("--heldout-video", help="held-out video for the readout; default: "
                   "generated with the training video's config and --heldout-seed")
    p.add_argument("--heldout-seed", type=int, default=1, help="seed of the held-out video")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over all pairs")
    p.add_argument("--steps", type=int, default=None,
                   help="stop after exactly this many updates (overrides --epochs)")
    p.add_argument("--batch", type=int, default=d.batch_size, help="pairs per batch B")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of weights and batch order")
    p.add_argument("--optimizer", choices=optim.OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype)
    p.add_argument("--channels", type=int, default=d.hidden_channels,
                   help="hidden channels of the first conv layer")
    p.add_argument("--kernel", type=int, default=d.kernel_size, help="odd conv kernel size")
    p.add_argument("--no-orient-maps", action="store_true",
                   help="keep the raw random second-layer filters instead of flipping maps "
                        "that start dark on the balls (see README, 'Why the maps are oriented')")
    p.add_argument("--threads", type=int, default=d.blas_threads,
                   help="BLAS threads while training (1 is fastest on a shared machine; "
                        "0 = leave as is)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (same settings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train_command)


def _error(message):
    print(f"rpmref balls train: error: {message}", file=sys.stderr)
    return 2


def _load_videos(args):
    if args.video:
        frames, positions, vconfig = load_video(args.video)
    else:
        vconfig = BallsConfig()
        frames, positions = make_video(vconfig, seed=args.video_seed)
    if args.heldout_video:
        h_frames, h_positions, _ = load_video(args.heldout_video)
    else:
        h_frames, h_positions = make_video(vconfig, seed=args.heldout_seed)
    return frames, positions, h_frames, h_positions


def _train_command(args):
    try:
        config = TrainConfig(critic=args.critic, epochs=args.epochs, steps=args.steps,
                             batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                             momentum=args.momentum, seed=args.seed, dtype=args.dtype,
                             hidden_channels=args.channels, kernel_size=args.kernel,
                             orient_maps=not args.no_orient_maps,
                             blas_threads=args.threads or None)
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise ValueError(f"--out {args.out} exists and is not a directory")
        frames, positions, h_frames, h_positions = _load_videos(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        return _error(e)
    try:
        result = train(config, frames, out_dir=args.out, resume=args.resume,
                       progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError) as e:
        return _error(e)
    except NonFiniteLossError as e:
        print(f"rpmref balls train: {e}", file=sys.stderr)
        return 1
    readout = fit_linear_readout(encode(result.params, result.bn_state, frames, config), positions)
    heldout = score_readout(readout, encode(result.params, result.bn_state, h_frames, config),
                            h_positions)
    train_fit = score_readout(readout, encode(result.params, result.bn_state, frames, config),
                              positions)
    last = result.history[-1] if result.history else {}
    summary = {"config": _config_dict(config), "steps": result.steps,
               "epochs_completed": sum(1 for r in result.history if r["complete"]),
               "final_loss": last.get("loss"), "final_estimate": last.get("estimate"),
               "log_batch": math.log(config.batch_size),
               "readout_heldout": heldout, "readout_train": train_fit,
               "wall_time_s": result.wall_time, "steps_per_s": result.steps_per_s,
               "video": args.video or f"generated, seed {args.video_seed}",
               "heldout_video": args.heldout_video or f"generated, seed {args.heldout_seed}"}
    with open(os.path.join(args.out, SUMMARY) + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(os.path.join(args.out, SUMMARY) + ".tmp", os.path.join(args.out, SUMMARY))
    print(f"critic {config.critic}: {result.steps} steps, final loss {last.get('loss', float('nan')):.4f}, "
          f"estimate {last.get('estimate', float('nan')):.4f} nats (log B = {math.log(config.batch_size):.4f}); "
          f"held-out readout R² {heldout['r2_overall']:.4f}, RMSE {heldout['rmse_px']:.3f} px; "
          f"{result.steps_per_s:.1f} steps/s; wrote {args.out}/{{{CHECKPOINT},{METRICS},{SUMMARY}}}")
    return 0


# --------------------------------------------------------------------------
# rpmref balls compare


def add_compare_parser(subparsers):
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
