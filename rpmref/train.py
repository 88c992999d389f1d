"""Train the balls encoder with in-batch InfoNCE (SPEC §7; paper Sec. 5, Appendix D).

``train(config, frames)`` runs the loop: every epoch visits each consecutive
pair (t, t+1) of the video once, in shuffled batches; for pair i the positive is
its own frame t+1 and the negatives are the other pairs' t+1 frames (Eq. 6 with
N = B). Both frames of every pair go through the encoder as one batch of 2B
frames (so batch norm sees 2B frames). The critic sees normalised coordinates
u = z / S − ½ (S the frame width for x, height for y). Training starts from
``initial_params``: a He-uniform random draw with every map turned bright on
bright input (``layers.orient_maps``; ``TrainConfig.orient_maps``).

Checkpoints (``checkpoint.npz``) and ``metrics.jsonl`` are written after every
epoch; ``resume=True`` continues from the checkpoint and ends with parameters
identical to an uninterrupted run (the Generator state and the current epoch's
pair order are checkpointed). Ctrl-C writes a checkpoint and re-raises.

``rpmref balls train`` (``add_parser``) adds the video generation, a linear
readout scored on a held-out video, and ``summary.json``.
"""
import contextlib
import ctypes
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval

from rpmref import checkpoint as ckpt
from rpmref import layers, optim
from rpmref.critics import CRITICS, get_critic, infonce_loss, init_critic_params

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
DTYPES = ("float32", "float64")
# fields that must agree between a checkpoint and the config that resumes it
MODEL_FIELDS = ("critic", "batch_size", "optimizer", "lr", "momentum", "seed", "dtype",
                "hidden_channels", "kernel_size", "bn_momentum", "orient_maps")
PROBE_FRAMES = 128  # frames (the video's first) that orient_maps compares with brightness


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the paper gives none of these numbers (SPEC §7)."""
    critic: str = "rbf"            # rbf (Eq. 27) | bilinear (Eq. 8) | cosine (SimCLR)
    epochs: int = 34               # 34 epochs × 15 batches of ≈60 pairs ≈ 510 steps on 900 frames
    steps: Optional[int] = None    # if set: stop after exactly this many updates (overrides epochs)
    batch_size: int = 64           # pairs per batch B (2B frames through the encoder)
    optimizer: str = "adam"        # adam | sgd (with momentum)
    lr: float = 3e-3               # Adam 3e-3: RBF tracks every ball on 10/10 seeds (README)
    momentum: float = 0.9          # sgd only
    seed: int = 0                  # initial weights and batch order
    dtype: str = "float32"         # float32 (fast) | float64 (exact gradient checks)
    hidden_channels: int = 16      # channels of the first conv layer
    kernel_size: int = 5           # odd; both conv layers
    bn_momentum: float = 0.1       # running-statistics momentum (PyTorch's default)
    orient_maps: bool = True       # start every map bright on bright input (layers.orient_maps)
    blas_threads: Optional[int] = 1  # OpenBLAS threads while training (None: leave as is);
    #                                  1 is fastest on a shared machine, see set_blas_threads

    def __post_init__(self):
        if self.critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}; got {self.critic!r}")
        if self.optimizer not in optim.OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(optim.OPTIMIZERS)}; "
                             f"got {self.optimizer!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        for name in ("epochs", "batch_size", "hidden_channels", "kernel_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be a positive integer or None; got {self.steps!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (InfoNCE needs negatives); "
                             f"got {self.batch_size}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding); got {self.kernel_size}")
        if not isinstance(self.orient_maps, bool):
            raise TypeError(f"orient_maps must be True or False; got {self.orient_maps!r}")
        if self.blas_threads is not None and (not isinstance(self.blas_threads, int)
                                              or self.blas_threads < 1):
            raise ValueError(f"blas_threads must be a positive integer or None; "
                             f"got {self.blas_threads!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number; got {self.lr!r}")


@dataclass
class TrainResult:
    """What ``train`` returns; ``history`` has one dict per (possibly partial) epoch."""
    params: dict
    bn_state: dict
    history: list
    wall_time: float       # seconds spent in this call
    steps_per_s: float     # updates per second in this call
    steps: int             # total updates so far (including before a resume)


class NonFiniteLossError(RuntimeError):
    """The loss or a gradient became NaN/inf; the last good checkpoint is kept."""


# --------------------------------------------------------------------------
# model


def init_params(config, rng, in_channels=3):
    """Encoder and critic parameters (dict name → array) in ``config.dtype``."""
    rng = np.random.default_rng(rng)
    dtype = np.dtype(config.dtype)
    params = layers.init_encoder_params(rng, in_channels, config.hidden_channels, 3,
                                        config.kernel_size, dtype)
    params.update(init_critic_params(config.critic, 6, rng, dtype))
    return params


def initial_params(config, frames, rng=None):
    """The parameters ``train(config, frames)`` starts from.

    The random draw of ``init_params`` (from ``default_rng(config.seed)`` unless
    ``rng`` is given), then, if ``config.orient_maps``, ``layers.orient_maps``
    on the first PROBE_FRAMES frames. frames: (T, C, H, W).
    """
    _check_frames(frames)
    rng = np.random.default_rng(config.seed) if rng is None else rng
    params = init_params(config, rng, frames.shape[1])
    if config.orient_maps:
        probe = layers.to_channel_first(np.asarray(frames[:PROBE_FRAMES], dtype=np.float64))
        params, _ = layers.orient_maps(params, probe)
    return params


def init_bn_state(config):
    """Running batch-norm statistics before training (means 0, variances 1)."""
    return layers.init_bn_state(config.hidden_channels, 3, np.dtype(config.dtype))


def _check_frames(frames):
    if not isinstance(frames, np.ndarray) or frames.ndim != 4:
        raise ValueError(f"frames must be a (T, C, H, W) array; got "
                         f"{getattr(frames, 'shape', type(frames).__name__)}")
    if not np.issubdtype(frames.dtype, np.floating):
        raise TypeError(f"frames must be floating point in [0, 1]; got dtype {frames.dtype}")


def encode(params, bn_state, frames, config, batch=256):
    """Latents z (T, 6) float64 = (x1, y1, x2, y2, x3, y3): the centres of mass of the
    3 maps in pixel coordinates, evaluation-mode batch norm (running statistics).

    Computed in float64 whatever ``config.dtype``, with ``config.blas_threads``
    BLAS threads; works on untrained parameters.
    """
    _check_frames(frames)
    p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    s64 = {k: np.asarray(v, dtype=np.float64) for k, v in bn_state.items()}
    out = np.empty((frames.shape[0], 6))
    with blas_threads(config.blas_threads):
        for start in range(0, frames.shape[0], batch):
            x = layers.to_channel_first(np.asarray(frames[start:start + batch], dtype=np.float64))
            out[start:start + batch] = layers.encoder_eval(p64, s64, x)
    return out


def coordinate_scale(height, width, dtype=np.float64):
    """S = (W, H, W, H, W, H): u = z / S − ½ maps every centre into [−½, ½]."""
    return np.array([width, height] * 3, dtype=dtype)


def objective(params, x, critic, scale, reference=False):
    """In-batch InfoNCE loss of one batch and auxiliary values.

    x: (C, 2B, H, W), the B frames t followed by their B frames t+1.
    Returns (loss, (loss value, estimate, batch-norm statistics)).
    """
    z, stats = layers.encoder_train(params, x, reference=reference)  # (2B, 6)
    u = z / scale - 0.5
    b = x.shape[1] // 2
    loss, estimate = infonce_loss(critic(params, u[:b], u[b:]))
    return loss, (getval(loss), getval(estimate), stats)


_GRAD = grad_and_aux(objective)  # params -> (gradient dict, aux)


def train_step(params, bn_state, opt_state, x, config, critic, scale):
    """One update on batch x (C, 2B, H, W); returns (params, bn_state, opt_state, loss, estimate).

    Raises NonFiniteLossError (and changes nothing) if the loss or a gradient is not finite.
    """
    g, (loss, estimate, stats) = _GRAD(params, x, critic, scale)
    if not np.isfinite(loss) or not all(np.all(np.isfinite(v)) for v in g.values()):
        raise NonFiniteLossError(f"non-finite loss ({float(loss)}) or gradient")
    new_params, new_opt = optim.step(params, g, opt_state, config.optimizer, config.lr,
                                     momentum=config.momentum)
    n_per_channel = x.shape[1] * x.shape[2] * x.shape[3]
    new_bn = layers.update_bn_state(bn_state, stats, n_per_channel, config.bn_momentum)
    return new_params, new_bn, new_opt, float(loss), float(estimate)



# --------------------------------------------------------------------------
# process-level tuning


_MALLOC_TUNED = False


def tune_malloc():
    """Keep freed large arrays in the heap instead of returning them to the OS.

    Each step allocates and frees the same tens of megabytes; glibc by default
    serves such blocks by mmap and unmaps them on free, so every step pays the
    page faults again. mallopt(M_MMAP_MAX = 0) and a 1 GiB M_TRIM_THRESHOLD
    (the in-process equivalents of MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_)
    avoid that. Process-wide, applied once; a no-op where glibc is absent.
    Returns True if applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        return False
    _MALLOC_TUNED = ok
    return ok


def set_blas_threads(n):
    """Set the thread count of every OpenBLAS loaded (at run time, via ctypes).

    Measured here (2 shared cores): one thread per process is faster than two
    whenever anything else runs, and with two threads on a busy machine a step
    can take 10× longer (OpenBLAS threads spin-wait for a core). Once SciPy is
    imported its own OpenBLAS is loaded beside NumPy's; both are set (setting
    only the first one found could leave NumPy's unchanged). Returns the
    previous thread count (NumPy's where it can tell), or None (and does
    nothing) if no OpenBLAS is found.
    """
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return False
    previous = None
    for path in sorted(paths, key=lambda p: ("numpy" not in p, p)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in itertools.product(("scipy_openblas", "openblas"), ("64_", "")):
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                count = int(getter())
                setter(ctypes.c_int(int(n)))
                previous = count if previous is None else previous
                break
    return previous


@contextlib.contextmanager
def blas_threads(n):
    """Run the body with n OpenBLAS threads (None: unchanged), then restore the count."""
    previous = None if n is None else set_blas_threads(n)
    try:
        yield
    finally:
        if previous is not None:
            set_blas_threads(previous)


# --------------------------------------------------------------------------
# the loop


def _n_batches(n_pairs, batch_size):
    return math.ceil(n_pairs / batch_size)


def _write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)


def _config_dict(config):
    return dataclasses.asdict(config)


def _restore(out_dir, config, frames):
    path = os.path.join(out_dir, CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
    data = ckpt.load_checkpoint(path)
    meta = data["meta"]
    saved = meta["config"]
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(config, k)!r}"
            for k in MODEL_FIELDS if saved.get(k) != getattr(config, k)]
    if diff:
        raise ValueError(f"checkpoint {path} was written with another config ({'; '.join(diff)})")
    if meta["data_fingerprint"] != ckpt.fingerprint(frames):
        raise ValueError(f"checkpoint {path} was trained on a different video")
    expected = init_params(config, 0, frames.shape[1])
    for name, ref in expected.items():
        got = data["params"].get(name)
        if got is None or got.shape != ref.shape or got.dtype != ref.dtype:
            raise ValueError(f"checkpoint {path}: parameter {name} missing or of the wrong "
                             f"shape/dtype for this config")
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng_state"]
    return {"params": data["params"], "bn_state": data["bn_state"],
            "opt_state": data["opt_state"], "perm": data["perm"], "rng": rng,
            "epoch": meta["epoch"], "step": meta["step"], "batch_in_epoch": meta["batch_in_epoch"],
            "acc": meta["epoch_acc"],
            # a partial last epoch (a --steps limit) is continued, so its row is dropped
            "history": [row for row in meta["history"] if row["complete"]]}


def _save(out_dir, st, config, fp):
    meta = {"config": _config_dict(config), "epoch": st["epoch"], "step": st["step"],
            "batch_in_epoch": st["batch_in_epoch"], "epoch_acc": st["acc"],
            "rng_state": st["rng"].bit_generator.state, "history": st["history"],
            "data_fingerprint": fp}
    ckpt.save_checkpoint(os.path.join(out_dir, CHECKPOINT), st["params"], st["bn_state"],
                         st["opt_state"], st["perm"], meta)


def train(config, frames, out_dir=None, resume=False, progress=True, on_epoch=None):
    """Train the encoder and critic on one video; returns a TrainResult.

    config: TrainConfig. frames: (T, C, H, W) floats in [0, 1], T ≥ 3.
    out_dir: where checkpoint.npz and metrics.jsonl go (None: nothing written).
    resume: continue from out_dir's checkpoint (same config apart from epochs/steps).
    on_epoch(epoch, params, bn_state): called after every epoch.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    _check_frames(frames)
    if frames.shape[0] < 3:
        raise ValueError(f"frames must hold at least 3 frames (2 pairs); got {frames.shape[0]}")
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir (where the checkpoint is)")
    tune_malloc()
    with blas_threads(config.blas_threads):
        return _train(config, frames, out_dir, resume, progress, on_epoch)


def _train(config, frames, out_dir, resume, progress, on_epoch):
    dtype = np.dtype(config.dtype)
    x_all = layers.to_channel_first(np.asarray(frames, dtype=dtype))  # (C, T, H, W)
    _, t_frames, height, width = x_all.shape
    n_pairs = t_frames - 1
    n_batches = _n_batches(n_pairs, config.batch_size)
    total = config.steps if config.steps is not None else config.epochs * n_batches
    critic = get_critic(config.critic)
    scale = coordinate_scale(height, width, dtype)
    fp = ckpt.fingerprint(frames)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    if resume:
        st = _restore(out_dir, config, frames)
    else:
        rng = np.random.default_rng(config.seed)
        params = initial_params(config, frames, rng)
        st = {"params": params, "bn_state": init_bn_state(config),
              "opt_state": optim.init_state(params, config.optimizer),
              "perm": np.arange(n_pairs), "rng": rng, "epoch": 0, "step": 0,
              "batch_in_epoch": 0, "acc": [0.0, 0.0, 0], "history": []}
    if out_dir is not None:
        _write_jsonl(os.path.join(out_dir, METRICS), st["history"])

    from tqdm import tqdm
    bar = tqdm(total=total, initial=min(st["step"], total), disable=not progress,
               desc=f"train {config.critic}", unit="step", leave=False)
    start_step, t0 = st["step"], time.perf_counter()
    try:
        while st["step"] < total:
            if st["batch_in_epoch"] == 0:
                st = dict(st, perm=st["rng"].permutation(n_pairs), acc=[0.0, 0.0, 0])
            idx = np.array_split(st["perm"], n_batches)[st["batch_in_epoch"]]
            x = np.concatenate([x_all[:, idx], x_all[:, idx + 1]], axis=1)  # (C, 2B, H, W)
            try:
                p, bn, opt, loss, est = train_step(st["params"], st["bn_state"], st["opt_state"],
                                                   x, config, critic, scale)
            except NonFiniteLossError as e:
                where = (f"; the last good checkpoint (epoch {st['history'][-1]['epoch']}) is kept "
                         f"in {out_dir}" if out_dir is not None and st["history"] else "")
                raise NonFiniteLossError(f"training stopped at step {st['step'] + 1} "
                                         f"(epoch {st['epoch'] + 1}): {e}{where}") from None
            acc = [st["acc"][0] + loss, st["acc"][1] + est, st["acc"][2] + 1]
            b_next = st["batch_in_epoch"] + 1
            end_of_epoch = b_next == n_batches
            end_of_run = st["step"] + 1 == total
            st = dict(st, params=p, bn_state=bn, opt_state=opt, step=st["step"] + 1, acc=acc,
                      batch_in_epoch=0 if end_of_epoch else b_next,
                      epoch=st["epoch"] + (1 if end_of_epoch else 0))
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", estimate=f"{est:.4f}")
            if end_of_epoch or end_of_run:
                row = {"epoch": st["epoch"] + (0 if end_of_epoch else 1), "step": st["step"],
                       "loss": acc[0] / acc[2], "estimate": acc[1] / acc[2],
                       "batches": acc[2], "complete": end_of_epoch}
                st = dict(st, history=st["history"] + [row])
                if out_dir is not None:
                    with open(os.path.join(out_dir, METRICS), "a") as f:
                        f.write(json.dumps(row) + "\n")
                    _save(out_dir, st, config, fp)
                if on_epoch is not None:
                    on_epoch(row["epoch"], st["params"], st["bn_state"])
    except KeyboardInterrupt:
        if out_dir is not None:
            _save(out_dir, st, config, fp)
            print(f"\ninterrupted: checkpoint written to {os.path.join(out_dir, CHECKPOINT)} "
                  f"(step {st['step']}); continue with --resume", file=sys.stderr)
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    done = st["step"] - start_step
    return TrainResult(params=st["params"], bn_state=st["bn_state"], history=st["history"],
                       wall_time=wall, steps_per_s=done / wall if wall > 0 else float("nan"),
                       steps=st["step"])


# --------------------------------------------------------------------------
# command line: rpmref balls train


def add_parser(subparsers):
    """Register ``rpmref balls train``."""
    import argparse
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
    from rpmref.balls import BallsConfig, load_video, make_video
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
    from rpmref.readout import fit_linear_readout, score_readout
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
