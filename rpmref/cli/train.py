"""``rpmref balls train``: train the CNN encoder with an InfoNCE critic (Sec. 5).

Everything is checked before any work: the settings (exit 2), the videos
(exit 2), the output directory — created, locked against a second writer
(exit 1 at once) and refused if it already holds a run, unless ``--resume`` or
``--overwrite`` (exit 2). A failure while training (a divergent step, a full
disk) is one line with exit 1; Ctrl-C writes a checkpoint and exits 130.
"""
import argparse
import math
import os
import sys

from rpmref.balls import optim
from rpmref.balls.checkpoint import CorruptCheckpointError
from rpmref.balls.critics import CRITICS
from rpmref.balls.rundir import RunExistsError, RunLockedError, open_run_dir
from rpmref.balls.trainer import (
    CHECKPOINT, DTYPES, METRICS, SUMMARY, NonFiniteLossError, RunWriteError, TrainConfig,
    TrainingInterrupted, check_frames_for_config, check_readout_videos, run_summary, train,
    write_summary)
from rpmref.balls.video import BallsConfig, load_video, make_video
from rpmref.cli.common import (
    DefaultsHelpFormatter, check_input_file, flag_names, nonnegative_int, os_error_text,
    positive_float, positive_int)

PROG = "rpmref balls train"
#: TrainConfig field → the flag that sets it, for error messages
FLAGS = {"critic": "--critic", "epochs": "--epochs", "steps": "--steps", "batch_size": "--batch",
         "optimizer": "--optimizer", "lr": "--lr", "momentum": "--momentum", "seed": "--seed",
         "dtype": "--dtype", "hidden_channels": "--channels", "kernel_size": "--kernel",
         "orient_maps": "--no-orient-maps", "blas_threads": "--threads", "out_dir": "--out"}


def add_parser(subparsers):
    """Register ``rpmref balls train``."""
    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train the CNN encoder with an InfoNCE critic (Sec. 5)",
        description="Train the two-layer CNN encoder on a bouncing-balls video with in-batch "
        "InfoNCE and the chosen critic; write checkpoint.npz, metrics.jsonl and summary.json "
        "(including a linear readout's R² and RMSE on a held-out video) to --out.",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("--critic", choices=CRITICS, default=d.critic, help="critic f(z, z')")
    p.add_argument("--out", required=True, help="output directory (locked while training)")
    p.add_argument("--video", help="training video (.npz from 'rpmref balls make'); "
                   "default: generated with --video-seed")
    p.add_argument("--video-seed", type=nonnegative_int, default=0,
                   help="seed of the generated training video (without --video)")
    p.add_argument("--heldout-video", help="held-out video for the readout; default: "
                   "generated with the training video's config and --heldout-seed")
    p.add_argument("--heldout-seed", type=nonnegative_int, default=1,
                   help="seed of the held-out video")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over all pairs")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="stop after exactly this many updates (overrides --epochs)")
    p.add_argument("--batch", type=positive_int, default=d.batch_size,
                   help="at most this many pairs per batch (at least 2); each epoch splits "
                        "the P pairs of the video into ⌈P/B⌉ batches of near-equal size, "
                        "all of them if B ≥ P")
    p.add_argument("--seed", type=nonnegative_int, default=d.seed,
                   help="seed of weights and batch order")
    p.add_argument("--optimizer", choices=optim.OPTIMIZERS, default=d.optimizer,
                   help="the update rule")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum, in [0, 1)")
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype,
                   help="floating-point type of training (the readout always uses float64)")
    p.add_argument("--channels", type=positive_int, default=d.hidden_channels,
                   help="hidden channels of the first conv layer")
    p.add_argument("--kernel", type=positive_int, default=d.kernel_size,
                   help="odd conv kernel size, at most the frame side")
    p.add_argument("--no-orient-maps", action="store_true",
                   help="keep the raw random second-layer filters instead of flipping maps "
                        "that start dark on the balls (see docs/tutorials/balls.md, 'Why the maps are oriented')")
    p.add_argument("--threads", type=nonnegative_int, default=0,
                   help="threads of each training step and of the readout's encoding "
                        "(default 0 = every available core; the result is the same for any "
                        "count)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint (same settings)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run already in --out (its checkpoint, metrics and summary)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train_command)


def _fail(message, code):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _message(error):
    """An exception's text with TrainConfig's field names replaced by the flags."""
    return flag_names(str(error), FLAGS)


def _config(args):
    return TrainConfig(critic=args.critic, epochs=args.epochs, steps=args.steps,
                       batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                       momentum=args.momentum, seed=args.seed, dtype=args.dtype,
                       hidden_channels=args.channels, kernel_size=args.kernel,
                       orient_maps=not args.no_orient_maps, blas_threads=args.threads or None)


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
        config = _config(args)
        for flag, path in (("--video", args.video), ("--heldout-video", args.heldout_video)):
            if path is not None:
                check_input_file(path, flag)
    except (ValueError, TypeError) as e:
        return _fail(_message(e), 2)
    try:
        with open_run_dir(args.out, resume=args.resume, overwrite=args.overwrite) as out:
            return _train_in(out, args, config)
    except RunLockedError as e:
        return _fail(str(e), 1)
    except RunExistsError as e:
        return _fail(f"--out {e.out_dir} already holds a run ({', '.join(e.files)}); add "
                     f"--resume to continue it or --overwrite to replace it", 2)
    except (ValueError, TypeError) as e:
        return _fail(_message(e), 2)
    except OSError as e:  # the directory or its lock file cannot be created
        return _fail(f"--out {args.out}: cannot write there ({os_error_text(e)})", 2)


def _train_in(out, args, config):
    """The work, with ``out`` created and locked."""
    try:
        frames, positions, h_frames, h_positions = _load_videos(args)
        check_frames_for_config(config, frames)
        check_readout_videos(frames, positions, h_frames, h_positions)
    except (ValueError, TypeError, FileNotFoundError) as e:
        return _fail(_message(e), 2)
    try:
        result = train(config, frames, out_dir=out, resume=args.resume,
                       progress=not args.no_progress)
    except TrainingInterrupted as e:
        where = (f"checkpoint {e.checkpoint} holds step {e.step}; continue with --resume"
                 if e.checkpoint else "nothing was written")
        print(f"{PROG}: interrupted: {where}", file=sys.stderr)
        return 130
    except CorruptCheckpointError as e:
        return _fail(f"{e}; start again with --overwrite", 2)
    except (ValueError, TypeError, FileNotFoundError) as e:
        return _fail(_message(e), 2)
    except (NonFiniteLossError, RunWriteError, MemoryError) as e:
        return _fail(str(e) or type(e).__name__, 1)
    except OSError as e:
        return _fail(os_error_text(e), 1)
    try:
        summary = run_summary(config, result, frames, positions, h_frames, h_positions,
                              video=args.video or f"generated, seed {args.video_seed}",
                              heldout_video=args.heldout_video
                              or f"generated, seed {args.heldout_seed}")
        write_summary(out, summary)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted before {SUMMARY} was written; the checkpoint holds all "
              f"{result.steps} steps; --resume writes the summary", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as e:  # e.g. a held-out coordinate that never changes
        return _fail(_message(e), 2)
    except (RunWriteError, MemoryError) as e:
        return _fail(str(e) or type(e).__name__, 1)
    except OSError as e:
        return _fail(os_error_text(e), 1)
    _print_result(out, config, result, summary)
    return 0


def _print_result(out, config, result, summary):
    heldout = summary["readout_heldout"]
    sizes = summary["effective_batch_sizes"]
    batches = (_count(summary['batches_per_epoch'], "batch", "batches") + " of "
               + (f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}") + " pairs")
    if result.steps_run == 0:
        speed = "nothing left to train (the checkpoint already holds every step)"
    else:
        speed = (f"{_count(result.steps_run, 'step')} in {result.wall_time:.1f} s "
                 f"({result.steps_per_s:.1f} steps/s)")
    loss = summary["final_loss"]
    estimate = summary["final_estimate"]
    print(f"critic {config.critic}: {_count(result.steps, 'step')}, "
          f"{_count(summary['epochs_completed'], 'full epoch')}; final loss {_num(loss)}, estimate "
          f"{_num(estimate)} nats (log B = {summary['log_batch']:.4f}, {batches}); held-out "
          f"readout R² {heldout['r2_overall']:.4f}, RMSE {heldout['rmse_px']:.3f} px; {speed}; "
          f"wrote {os.path.join(out, '')}{{{CHECKPOINT},{METRICS},{SUMMARY}}}")


def _count(n, noun, plural=None):
    """'1 step', '2 steps'; ``plural`` where adding an s is wrong ('batches')."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _num(value):
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}"

