"""Train the balls encoder with in-batch InfoNCE (paper Sec. 5, Appendix D).

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
import dataclasses
import json
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval
from threadpoolctl import threadpool_limits

from rpmref.balls import checkpoint as ckpt
from rpmref.balls import grid, layers, optim
from rpmref.balls.critics import CRITICS, get_critic, infonce_loss, init_critic_params

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
    """Training settings; the paper gives none of these numbers."""
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
    blas_threads: Optional[int] = 1  # threads of a training step and of encode (None: every
    #   available core). 1: on a 2-core machine two threads made a step no faster (README)

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
            raise ValueError(f"blas_threads must be a positive integer or None (all cores); "
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


def objective(params, x, critic, scale, reference=False, workspace=None):
    """In-batch InfoNCE loss of one batch and auxiliary values.

    x: (C, 2B, H, W), the B frames t followed by their B frames t+1.
    workspace: a ``grid.Workspace`` whose buffers and threads the encoder reuses
    (None: inside train_step the one it keeps for this thread, elsewhere a fresh one).
    Returns (loss, (loss value, estimate, batch-norm statistics)).
    """
    if workspace is None:
        workspace = getattr(_LOCAL, "active", None)
    z, stats = layers.encoder_train(params, x, reference=reference, workspace=workspace)  # (2B, 6)
    u = z / scale - 0.5
    b = x.shape[1] // 2
    loss, estimate = infonce_loss(critic(params, u[:b], u[b:]))
    return loss, (getval(loss), getval(estimate), stats)


_GRAD = grad_and_aux(objective)  # params -> (gradient dict, aux)
_LOCAL = threading.local()  # .workspace: this thread's grid.Workspace; .active: in a step


def train_step(params, bn_state, opt_state, x, config, critic, scale):
    """One update on batch x (C, 2B, H, W); returns (params, bn_state, opt_state, loss, estimate).

    The encoder runs on this thread's ``grid.Workspace`` with ``step_threads(config)``
    threads; its buffers are kept for the next step.
    Raises NonFiniteLossError (and changes nothing) if the loss or a gradient is not finite.
    """
    threads = step_threads(config)
    _LOCAL.active = _thread_workspace(threads)  # objective's workspace during this step only
    try:
        if threads > 1:  # the step's threads each call single-threaded BLAS (train() sets
            with blas_threads(1):  # that for a whole run; here for callers of train_step)
                g, (loss, estimate, stats) = _GRAD(params, x, critic, scale)
        else:
            g, (loss, estimate, stats) = _GRAD(params, x, critic, scale)
    finally:
        _LOCAL.active = None
    if not np.isfinite(loss) or not all(np.all(np.isfinite(v)) for v in g.values()):
        raise NonFiniteLossError(f"non-finite loss ({float(loss)}) or gradient")
    new_params, new_opt = optim.step(params, g, opt_state, config.optimizer, config.lr,
                                     momentum=config.momentum)
    n_per_channel = x.shape[1] * x.shape[2] * x.shape[3]
    new_bn = layers.update_bn_state(bn_state, stats, n_per_channel, config.bn_momentum)
    return new_params, new_bn, new_opt, float(loss), float(estimate)



# --------------------------------------------------------------------------
# threads: a training step runs its blocks on its own threads (grid.Workspace) with
# one BLAS thread each; encoding (encode) uses BLAS threads


def step_threads(config):
    """Threads of a training step: ``config.blas_threads``, or every available core if None."""
    return grid.available_cores() if config.blas_threads is None else config.blas_threads


def _thread_workspace(threads):
    """This thread's workspace for train_step (buffers survive from step to step)."""
    ws = getattr(_LOCAL, "workspace", None)
    if ws is None or ws.threads != threads:
        if ws is not None:
            ws.close()
        ws = _LOCAL.workspace = grid.Workspace(threads)
    return ws


def blas_threads(n):
    """Context manager: run the body with ``n`` BLAS threads (None: every available core).

    threadpoolctl, so OpenBLAS, MKL and BLIS alike; the previous limits come back after.
    """
    return threadpool_limits(limits=grid.available_cores() if n is None else n, user_api="blas")


def limit_blas_threads(n):
    """Set this process's BLAS thread count to ``n`` for good (None: every available core);
    for worker processes that only ever train."""
    threadpool_limits(limits=grid.available_cores() if n is None else n, user_api="blas")


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
    # the step's own threads share its work; BLAS inside them runs single-threaded
    with blas_threads(1):
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
