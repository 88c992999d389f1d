"""``rpmref balls train``: train the CNN encoder with an InfoNCE critic (Sec. 5)."""
import argparse
import json
import math
import os
import sys

from rpmref.balls import optim
from rpmref.balls.critics import CRITICS
from rpmref.balls.readout import fit_linear_readout, score_readout
from rpmref.balls.trainer import (
    CHECKPOINT, DTYPES, METRICS, SUMMARY, NonFiniteLossError, TrainConfig, _config_dict, encode,
    train)
from rpmref.balls.video import BallsConfig, load_video, make_video


def add_parser(subparsers):
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
                   help="threads of each training step and of the readout's encoding "
                        "(0 = every available core)")
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
