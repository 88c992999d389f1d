"""``rpmref balls train``: train the CNN encoder with an InfoNCE critic (Sec. 5).

Everything is checked before any work, in this order: the settings (exit 2),
the videos and what the settings need of them — frames, kernel size, memory
(exit 2) — and then the output directory: created, locked against a second
writer (exit 1 at once) and refused if it already holds a run, unless
``--resume`` or ``--overwrite`` (exit 2). ``--overwrite`` keeps the old run's
files until the new run writes its first checkpoint, so a refused or
interrupted overwrite leaves the old run as it was. A failure while training (a
divergent step, a full disk) is one line with exit 1; Ctrl-C writes a
checkpoint and exits 130 (SIGTERM: the same, exit 143).
"""
import argparse
import math
import os
import sys

import re

import numpy as np

from rpmref.balls import grid, optim
from rpmref.balls.checkpoint import CorruptCheckpointError
from rpmref.balls.critics import CRITICS
from rpmref.balls.rundir import RunExistsError, RunLockedError, open_run_dir
from rpmref.balls.trainer import (
    CHECKPOINT, DTYPES, METRICS, PROBE_FRAMES, SUMMARY, NonFiniteLossError, RunWriteError,
    TrainConfig, TrainingInterrupted, check_frames_for_config, check_readout_videos,
    effective_batch_sizes, run_summary, step_threads, train, write_summary)
from rpmref.balls.video import BallsConfig, load_video, make_video
from rpmref.cli.common import (
    MEMORY_BUDGET, DefaultsHelpFormatter, UsageError, bounded_int, check_input_file,
    flag_names, gib, nonnegative_int, os_error_text, positive_float, positive_int,
    refuse_link_loop)

PROG = "rpmref balls train"
#: TrainConfig field → the flag that sets it, for error messages
FLAGS = {"critic": "--critic", "epochs": "--epochs", "steps": "--steps", "batch_size": "--batch",
         "optimizer": "--optimizer", "lr": "--lr", "momentum": "--momentum", "seed": "--seed",
         "dtype": "--dtype", "hidden_channels": "--channels", "kernel_size": "--kernel",
         "orient_maps": "--no-orient-maps", "blas_threads": "--threads", "out_dir": "--out"}
#: the most --threads: 4 per available core, as ``balls compare --jobs`` (more threads than
#: cores only wait for each other, and each holds its own scratch buffers)
MAX_THREADS = 4 * grid.available_cores()
#: frames a video needs: training uses pairs of consecutive frames and InfoNCE needs at
#: least 2 pairs (a positive and a negative)
MIN_FRAMES = 3
ENCODE_BATCH = 64  # frames ``trainer.encode`` takes at a time (the readout)
OVERHEAD = 16 * 2**20  # bytes of everything else: first imports and caches, autograd's tape


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
    p.add_argument("--out", required=True, help="output directory, created with its parents if missing (locked while "
                   "training)")
    p.add_argument("--video", help="training video (.npz from 'rpmref balls make'); "
                   "default: generated with --video-seed")
    p.add_argument("--video-seed", type=nonnegative_int, default=None,
                   help="seed of the generated training video (default 0; not with --video)")
    p.add_argument("--heldout-video", help="held-out video for the readout; default: "
                   "generated with the training video's config and --heldout-seed")
    p.add_argument("--heldout-seed", type=nonnegative_int, default=None,
                   help="seed of the generated held-out video (default 1; not with "
                   "--heldout-video)")
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
                   help="hidden channels of the first conv layer (refused if training would "
                        f"need more than {gib(MEMORY_BUDGET)} of memory)")
    p.add_argument("--kernel", type=positive_int, default=d.kernel_size,
                   help="odd conv kernel size, at most the frame side")
    p.add_argument("--no-orient-maps", action="store_true",
                   help="keep the raw random second-layer filters instead of flipping maps "
                        "that start dark on the balls (see docs/tutorials/balls.md, 'Why the maps are oriented')")
    p.add_argument("--threads", type=bounded_int(0, MAX_THREADS, "4 per available core"),
                   default=0,
                   help="threads of each training step and of the readout's encoding "
                        f"(default 0 = every available core; at most 4 per core = "
                        f"{MAX_THREADS}; the result is the same for any count)")
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
    text = re.sub(r"\borient_maps: checkpoint (True|False) vs now (True|False)",
                  lambda m: f"--no-orient-maps: {_given(m[1])} for the checkpoint's run, "
                            f"{_given(m[2])} now", str(error))
    return flag_names(text, FLAGS)


def _given(orient_maps):
    """How --no-orient-maps stood for a run with this orient_maps value ('True'/'False')."""
    return "not given" if orient_maps == "True" else "given"


def _config(args):
    return TrainConfig(critic=args.critic, epochs=args.epochs, steps=args.steps,
                       batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                       momentum=args.momentum, seed=args.seed, dtype=args.dtype,
                       hidden_channels=args.channels, kernel_size=args.kernel,
                       orient_maps=not args.no_orient_maps, blas_threads=args.threads or None)


def _load(flag, path):
    try:
        return load_video(path)
    except FileNotFoundError:
        raise UsageError(f"{flag} {path!r}: no such file") from None
    except (ValueError, TypeError) as e:
        raise UsageError(f"{flag}: {e}") from None


def _resolve_video_seeds(args):
    """Fill in the default seeds of generated videos; a seed for a video that is loaded
    from a file would be ignored, so it is a UsageError."""
    for seed_flag, seed, video_flag, video, default in (
            ("--video-seed", "video_seed", "--video", args.video, 0),
            ("--heldout-seed", "heldout_seed", "--heldout-video", args.heldout_video, 1)):
        if video is not None and getattr(args, seed) is not None:
            raise UsageError(f"{seed_flag} seeds a generated video; it has no effect with "
                             f"{video_flag} {video}")
        if getattr(args, seed) is None:
            setattr(args, seed, default)


def _load_videos(args):
    if args.video:
        frames, positions, vconfig = _load("--video", args.video)
    else:
        vconfig = BallsConfig()
        frames, positions = make_video(vconfig, seed=args.video_seed)
    if args.heldout_video:
        h_frames, h_positions, _ = _load("--heldout-video", args.heldout_video)
    else:
        h_frames, h_positions = make_video(vconfig, seed=args.heldout_seed)
    return frames, positions, h_frames, h_positions


def _check_videos(args, config, frames, positions, h_frames, h_positions):
    """UsageError naming the option unless the videos fit the settings and each other."""
    video = f"--video {args.video}" if args.video else "the generated training video"
    if getattr(frames, "ndim", 0) == 4 and frames.shape[0] < MIN_FRAMES:
        raise UsageError(f"{video} holds {_count(frames.shape[0], 'frame')}; training needs "
                         f"at least {MIN_FRAMES} (2 pairs of consecutive frames: a positive "
                         f"and a negative)")
    try:
        check_frames_for_config(config, frames)
    except (ValueError, TypeError) as e:
        raise UsageError(_message(e)) from None
    try:
        check_readout_videos(frames, positions, h_frames, h_positions)
    except (ValueError, TypeError) as e:
        which = "--heldout-video" if "held-out" in str(e) else "--video"
        path = args.heldout_video if which == "--heldout-video" else args.video
        raise UsageError(f"{which} {path}: {e}" if path else str(e)) from None
    if np.shape(frames) == np.shape(h_frames) and np.array_equal(frames, h_frames):
        held = (f"--heldout-video {args.heldout_video}" if args.heldout_video
                else f"the held-out video (--heldout-seed {args.heldout_seed})")
        raise UsageError(f"{held} is the training video frame for frame ({video}"
                         f"{'' if args.video else f', --video-seed {args.video_seed}'}): its "
                         "readout would score the frames the encoder is trained on; give "
                         "another --heldout-seed or --heldout-video")
    check_memory(config, frames.shape)


# --------------------------------------------------------------------------
# memory: refused before any work, like ``balls make`` and ``mi-bench``


def peak_bytes(n_frames, in_channels, height, width, channels, kernel, batch, dtype, threads):
    """Upper bound (bytes) on what ``balls train`` allocates for these sizes.

    The video and its training copy, the larger of the first two phases and the
    third (whose buffers stay while the readout encodes): a training step (``grid.encoder_z`` on 2B' frames, B' the largest effective
    batch: its full-grid activations and gradients, each thread's scratch blocks,
    the per-block weight-gradient partial sums, ~14 copies of the weights in
    parameters, gradients and optimiser state); the map orientation at the start
    (float64 activations of the first PROBE_FRAMES frames); the readout's encoding
    (float64, ENCODE_BATCH frames at a time); taken 10% larger, plus OVERHEAD.
    tests/test_cli_train_overwrite.py checks that it bounds tracemalloc's peak
    and is at most 3× it (measured 1.0–1.7× from 2 to 256 channels and kernels
    from 3 to 31 before the margin).
    """
    c0, c1, c2, k = int(in_channels), int(channels), 3, int(kernel)
    kk, p = k * k, k // 2
    s = np.dtype(dtype).itemsize
    n = 2 * max(effective_batch_sizes(n_frames - 1, batch))

    def encoder(n, s, train):
        g = grid.Grid(n, height, width, k)
        m, length, reach = g.m, g.length, g.reach
        full = c0 * length + c1 * (m + length) + c2 * 2 * m
        b1, sub1 = g.blocks(max(c0 * kk, c1), s, c0 * kk * c1)
        b2, _ = g.blocks(c2 * kk, s, c1 * c2 * kk)
        nb1, nb2 = b1[0][1], b2[0][1]
        scratch = 2 * c1 * nb1 + c0 * kk * sub1 + (c1 + c2 * kk) * (nb2 + reach) + c2 * nb2
        parts = 0
        if train:
            full += c1 * m + c2 * (2 * m + reach + length)
            bb, subb = g.blocks(max(c2 * kk, c1), s, c1 * c2 * kk)
            scratch += 2 * c2 * kk * c1 + 2 * c1 * bb[0][1] + c2 * kk * subb + c1 * c0 * kk
            parts = len(bb) * c2 * kk * c1 + len(b1) * c1 * c0 * kk
        return s * (full + threads * scratch + parts) + m * (2 * s + 8)

    weights = c1 * (c0 + c2) * kk + 4 * c1
    step = encoder(n, s, True) + 14 * s * weights
    probe = 8 * min(n_frames, PROBE_FRAMES) * (height + 2 * p) * (width + 2 * p) \
        * (2 * c0 + 2.5 * c1)
    encode = encoder(min(n_frames, ENCODE_BATCH), 8, False) + 16 * weights
    video = s * c0 * width * height * (2 * n_frames + n)
    # the step's buffers stay (its thread's workspace) while the readout encodes
    return int(1.1 * (video + max(step, probe) + encode) + OVERHEAD)


def check_memory(config, shape):
    """UsageError naming the option to change if training ``config`` on frames of ``shape``
    (T, C, H, W) would need more than MEMORY_BUDGET."""
    t, c, h, w = shape
    threads = step_threads(config)

    def need(channels=config.hidden_channels, batch=config.batch_size):
        return peak_bytes(t, c, h, w, channels, config.kernel_size, batch, config.dtype, threads)

    needed = need()
    if needed <= MEMORY_BUDGET:
        return
    sizes = (f"--channels {config.hidden_channels}, --kernel {config.kernel_size} and "
             f"--batch {config.batch_size} on {t} frames of {h}×{w} px")
    channels = _largest(lambda n: need(channels=n) <= MEMORY_BUDGET, config.hidden_channels)
    batch = _largest(lambda b: need(batch=b) <= MEMORY_BUDGET, config.batch_size)
    if channels >= 1:
        limit = f"--channels must be at most {channels} at this --kernel and --batch"
    elif batch >= 2:
        limit = f"--batch must be at most {batch} at this --channels and --kernel"
    else:
        limit = "use a smaller --kernel, --channels or --batch"
    raise UsageError(f"{sizes} need about {gib(needed)} of memory, more than the "
                     f"{gib(MEMORY_BUDGET)} limit: {limit}")


def _largest(fits, high):
    """The largest n in 0..high with fits(n) (fits is monotone: true up to some n)."""
    low = 0
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


# --------------------------------------------------------------------------
# the command


def _train_command(args):
    try:
        config = _config(args)
    except (ValueError, TypeError) as e:
        raise UsageError(_message(e)) from None
    for flag, path in (("--video", args.video), ("--heldout-video", args.heldout_video)):
        if path is not None:
            check_input_file(path, flag)
    _resolve_video_seeds(args)
    videos = _load_videos(args)
    _check_videos(args, config, *videos)
    # only now the output directory: nothing in it is touched before the inputs are known good
    try:
        with open_run_dir(args.out, resume=args.resume, overwrite=args.overwrite) as out:
            outcome = _train_in(out, args, config, *videos)
    except RunLockedError as e:
        return _fail(str(e), 1)
    except RunExistsError as e:
        raise UsageError(f"--out {e.out_dir} already holds a run ({', '.join(e.files)}); add "
                         f"--resume to continue it or --overwrite to replace it") from None
    except (ValueError, TypeError) as e:
        raise UsageError(_message(e)) from None
    except OSError as e:  # the directory or its lock file cannot be created
        refuse_link_loop(args.out, "--out")
        if os.path.islink(args.out) and not os.path.exists(args.out):
            raise UsageError(f"--out {args.out} is a symbolic link to {os.readlink(args.out)!r}, "
                             f"which does not exist") from None
        raise UsageError(f"--out {args.out}: cannot write there ({os_error_text(e)})") from None
    if isinstance(outcome, int):
        return outcome
    # printed outside the run directory's handlers: a full or closed stdout is not --out's
    _print_result(*outcome)
    return 0


def _train_in(out, args, config, frames, positions, h_frames, h_positions):
    """The work, with ``out`` created and locked: an exit code, or on success the
    arguments of ``_print_result``."""
    try:
        result = train(config, frames, out_dir=out, resume=args.resume,
                       progress=not args.no_progress)
    except TrainingInterrupted as e:
        if e.checkpoint:
            where = f"checkpoint {e.checkpoint} holds step {e.step}; continue with --resume"
        elif args.overwrite:
            where = f"nothing was written; the run already in {out} is kept"
        else:
            where = "nothing was written"
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
        print(f"{PROG}: interrupted before {SUMMARY} was written; the checkpoint holds "
              f"{'the' if result.steps == 1 else 'all'} {_count(result.steps, 'step')}; "
              f"--resume writes the summary", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as e:  # e.g. a held-out coordinate that never changes
        return _fail(_message(e), 2)
    except (RunWriteError, MemoryError) as e:
        return _fail(str(e) or type(e).__name__, 1)
    except OSError as e:
        return _fail(os_error_text(e), 1)
    return out, config, result, summary


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

