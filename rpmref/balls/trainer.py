"""Train the balls encoder with in-batch InfoNCE (paper Sec. 5, Appendix D).

``train(config, frames)`` runs the loop: every epoch visits each consecutive
pair (t, t+1) of the video once, in shuffled batches; for pair i the positive is
its own frame t+1 and the negatives are the other pairs' t+1 frames (Eq. 6 with
N = B). Both frames of every pair go through the encoder as one batch of 2B
frames (so batch norm sees 2B frames). The critic sees normalised coordinates
u = z / S − ½ (S the frame width for x, height for y). Training starts from
``initial_params``: a He-uniform random draw with every map turned bright on
bright input (``layers.orient_maps``; ``TrainConfig.orient_maps``). The P pairs
are split into ⌈P / B⌉ batches of as equal size as possible
(``effective_batch_sizes``), so a batch may hold fewer than B pairs.

Long runs never lose finished work. The loop state (parameters, batch-norm
and optimiser state, the epoch's pair order, the Generator state, counters and
history) changes in one assignment after a step has fully succeeded — its
updated parameters and statistics checked finite — so whenever it is
interrupted the state is consistent. ``checkpoint.npz`` and ``metrics.jsonl``
are written (atomically) after every epoch into a locked run directory
(``rundir``); Ctrl-C writes a checkpoint of the last completed step and raises
``TrainingInterrupted``. ``resume=True`` continues from the checkpoint — after
validating everything in it — and ends with parameters, history and metrics
identical to an uninterrupted run.

``run_summary`` builds what ``rpmref balls train`` writes to ``summary.json``:
the linear readout scored on a held-out video, the effective batch sizes and
the environment.
"""
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval
from threadpoolctl import threadpool_limits

from rpmref.balls import checkpoint as ckpt
from rpmref.balls import grid, layers, optim, rundir
from rpmref.balls.critics import CRITICS, get_critic, infonce_loss, init_critic_params
from rpmref.balls.readout import fit_linear_readout, score_readout
from rpmref.balls.rundir import CHECKPOINT, METRICS, SUMMARY
from rpmref.environment import environment
from rpmref.exact.validation import (as_real_array, check_bool, check_choice, check_finite,
                                     check_generator, check_path, check_positive_int, check_real)

DTYPES = ("float32", "float64")
# fields that must agree between a checkpoint and the config that resumes it
MODEL_FIELDS = ("critic", "batch_size", "optimizer", "lr", "momentum", "seed", "dtype",
                "hidden_channels", "kernel_size", "bn_momentum", "orient_maps")
PROBE_FRAMES = 128  # frames (the video's first) that orient_maps compares with brightness
#: summary.json fields that describe this call rather than the run: they alone may differ
#: between a run interrupted and resumed (any number of times) and the uninterrupted run
SUMMARY_VOLATILE = ("session", "environment")
HISTORY_KEYS = ("epoch", "step", "loss", "estimate", "batches", "complete")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the paper gives none of these numbers.

    Integers may be Python or NumPy integers (stored as int), never bools.

    Parameters
    ----------
    critic : {"rbf", "bilinear", "cosine"}, default "rbf"
        The critic: RBF (Eq. 27), bilinear (Eq. 8) or cosine (SimCLR).
    epochs : int, default 34
        34 epochs × 15 batches of ≈60 pairs ≈ 510 steps on 900 frames.
    steps : int, optional
        If set: stop after exactly this many updates (overrides ``epochs``).
    batch_size : int, default 64
        Pairs per batch B (2B frames through the encoder); at least 2.
    optimizer : {"adam", "sgd"}, default "adam"
        Adam, or SGD with momentum.
    lr : float, default 3e-3
        Learning rate, in (0, ∞). Adam 3e-3: RBF tracks every ball on 10/10 seeds (README).
    momentum : float, default 0.9
        SGD momentum, in [0, 1) (sgd only).
    seed : int, default 0
        Seed of the initial weights and the batch order (≥ 0).
    dtype : {"float32", "float64"}, default "float32"
        float32 (fast) or float64 (exact gradient checks).
    hidden_channels : int, default 16
        Channels of the first conv layer.
    kernel_size : int, default 5
        Odd kernel size of both conv layers ('same' padding).
    bn_momentum : float, default 0.1
        Running-statistics momentum, in [0, 1] (PyTorch's default).
    orient_maps : bool, default True
        Start every map bright on bright input (``layers.orient_maps``).
    blas_threads : int, optional, default None
        Threads of a training step and of ``encode``; None (the default) uses every
        available core. The step threads split the batch and keep BLAS at one thread
        inside, and the result is bitwise the same for any count (the default 510-step
        RBF run: 26.9 s on 1 thread, 23.8 s on 2, the same checkpoint to the bit).
        ``balls compare`` runs each job on 1 thread whatever this says.

    Raises
    ------
    TypeError
        If an integer field is a bool or float, ``orient_maps`` is not a bool, or a
        choice is not a string.
    ValueError
        If a choice is unknown, a count is below its minimum, ``batch_size`` < 2,
        ``kernel_size`` is even, or a rate is outside its interval.

    Examples
    --------
    >>> from rpmref import TrainConfig
    >>> TrainConfig(critic="bilinear", steps=10).critic
    'bilinear'
    >>> TrainConfig(kernel_size=4)
    Traceback (most recent call last):
    ...
    ValueError: kernel_size must be odd ('same' padding); got 4
    """
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
    blas_threads: Optional[int] = None  # threads of a training step and of encode (None:
    #   every available core; bitwise the same result for any count)

    def __post_init__(self):
        check_choice(self.critic, "critic", CRITICS)
        check_choice(self.optimizer, "optimizer", optim.OPTIMIZERS)
        check_choice(self.dtype, "dtype", DTYPES)
        ints = {"epochs": 1, "batch_size": 1, "hidden_channels": 1, "kernel_size": 1, "seed": 0}
        for name, minimum in ints.items():
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name, minimum))
        for name in ("steps", "blas_threads"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_positive_int(getattr(self, name), name))
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (InfoNCE needs negatives); "
                             f"got {self.batch_size}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding); got {self.kernel_size}")
        check_bool(self.orient_maps, "orient_maps")
        object.__setattr__(self, "lr", check_real(self.lr, "lr", minimum=0,
                                                  inclusive=(False, True)))
        object.__setattr__(self, "momentum", check_real(self.momentum, "momentum", minimum=0,
                                                        maximum=1, inclusive=(True, False)))
        object.__setattr__(self, "bn_momentum", check_real(self.bn_momentum, "bn_momentum",
                                                           minimum=0, maximum=1))


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Parameters
    ----------
    params : dict of ndarray
        The trained encoder and critic parameters.
    bn_state : dict of ndarray
        The running batch-norm statistics.
    history : list of dict
        One dict per (possibly partial) epoch, keys ``HISTORY_KEYS``.
    wall_time : float
        Seconds spent in this call.
    steps_per_s : float
        Updates per second in this call (NaN if it made none).
    steps : int
        Total updates so far (including before a resume).
    steps_run : int, default 0
        Updates made by this call.
    batch_sizes : tuple of int, default ()
        The effective batch sizes, one per batch of an epoch.

    Examples
    --------
    >>> from rpmref.balls import train
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> result = train(config, frames, progress=False)
    >>> result.steps, result.history[-1]["complete"]
    (2, False)
    """
    params: dict
    bn_state: dict
    history: list
    wall_time: float       # seconds spent in this call
    steps_per_s: float     # updates per second in this call (NaN if it made none)
    steps: int             # total updates so far (including before a resume)
    steps_run: int = 0     # updates made by this call
    batch_sizes: tuple = ()  # the effective batch sizes, one per batch of an epoch


class NonFiniteLossError(RuntimeError):
    """The loss, a gradient or an updated parameter / statistic became NaN or infinite (a RuntimeError).

    Nothing of that step is kept and the last good checkpoint stays in place.

    Examples
    --------
    >>> from rpmref.balls.trainer import NonFiniteLossError
    >>> issubclass(NonFiniteLossError, RuntimeError)
    True
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train`` (a KeyboardInterrupt), after the last completed update was saved.

    Parameters
    ----------
    step : int
        Updates done (kept as ``.step``).
    checkpoint : str or None
        The file holding them (kept as ``.checkpoint``; None if nothing could be written).

    Examples
    --------
    >>> from rpmref.balls.trainer import TrainingInterrupted
    >>> str(TrainingInterrupted(3, "run/checkpoint.npz"))
    'interrupted: checkpoint run/checkpoint.npz holds step 3'
    """

    def __init__(self, step, checkpoint):
        self.step, self.checkpoint = step, checkpoint
        where = f"checkpoint {checkpoint} holds step {step}" if checkpoint else \
            f"nothing written (step {step})"
        super().__init__(f"interrupted: {where}")


class RunWriteError(OSError):
    """Writing the checkpoint or the metrics failed (e.g. a full disk); an OSError.

    The message names the file and what is still on disk.

    Examples
    --------
    >>> from rpmref.balls.trainer import RunWriteError
    >>> issubclass(RunWriteError, OSError)
    True
    """


# --------------------------------------------------------------------------
# model


def init_params(config, rng, in_channels=3):
    """Encoder and critic parameters (dict name → array) in ``config.dtype``.

    The draw of :func:`rpmref.balls.layers.init_encoder_params`, then the critic's
    initial parameters; no map orientation (that is :func:`initial_params`).

    Parameters
    ----------
    config : TrainConfig
        ``hidden_channels``, ``kernel_size``, ``critic`` and ``dtype``.
    rng : int, numpy.random.Generator or None
        Seed or generator (passed to ``numpy.random.default_rng``).
    in_channels : int, default 3
        Channels of the frames.

    Returns
    -------
    dict of ndarray
        conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta
        and the critic's parameters.

    Examples
    --------
    >>> from rpmref.balls import TrainConfig
    >>> from rpmref.balls.trainer import init_params
    >>> params = init_params(TrainConfig(hidden_channels=4, kernel_size=3), 0)
    >>> params["conv1_w"].shape, params["conv1_w"].dtype, "critic_log_lengthscale" in params
    ((4, 3, 3, 3), dtype('float32'), True)
    """
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
    on the first PROBE_FRAMES frames.

    Parameters
    ----------
    config : TrainConfig
        The training settings.
    frames : ndarray, shape (T, C, H, W)
        Floating-point frames in [0, 1] that ``train`` accepts: T ≥ 3, the kernel
        fits in a frame.
    rng : numpy.random.Generator, optional
        The generator of the draw (default ``default_rng(config.seed)``).

    Returns
    -------
    dict of ndarray
        Encoder (conv, batch-norm) and critic parameters by name.

    Raises
    ------
    ValueError
        If ``frames`` is not a 4-D array, is not finite or outside [0, 1], has fewer
        than 3 frames or is smaller than the kernel (as :func:`train`).
    TypeError
        If ``config`` is not a TrainConfig, ``frames`` is not floating point or
        ``rng`` is not a Generator.

    Examples
    --------
    >>> from rpmref.balls import initial_params
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> params = initial_params(config, frames)
    >>> params["conv1_w"].shape[0], "critic_log_lengthscale" in params
    (4, True)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    check_frames_for_config(config, frames)  # the frames train would take, no others
    check_generator(rng, "rng", optional=True)
    rng = np.random.default_rng(config.seed) if rng is None else rng
    params = init_params(config, rng, frames.shape[1])
    if config.orient_maps:
        probe = layers.to_channel_first(np.asarray(frames[:PROBE_FRAMES], dtype=np.float64))
        params, _ = layers.orient_maps(params, probe)
    return params


def init_bn_state(config):
    """Running batch-norm statistics before training (means 0, variances 1), in ``config.dtype``.

    Parameters
    ----------
    config : TrainConfig
        ``hidden_channels`` and ``dtype``.

    Returns
    -------
    dict of ndarray
        bn1_mean, bn1_var (hidden_channels,), bn2_mean, bn2_var (3,).

    Examples
    --------
    >>> from rpmref.balls import TrainConfig
    >>> from rpmref.balls.trainer import init_bn_state
    >>> state = init_bn_state(TrainConfig(hidden_channels=4))
    >>> state["bn1_var"], state["bn2_mean"]
    (array([1., 1., 1., 1.], dtype=float32), array([0., 0., 0.], dtype=float32))
    """
    return layers.init_bn_state(config.hidden_channels, 3, np.dtype(config.dtype))


def _check_frames(frames):
    if not isinstance(frames, np.ndarray) or frames.ndim != 4:
        raise ValueError(f"frames must be a (T, C, H, W) array; got "
                         f"{getattr(frames, 'shape', type(frames).__name__)}")
    if not np.issubdtype(frames.dtype, np.floating):
        raise TypeError(f"frames must be floating point in [0, 1]; got dtype {frames.dtype}")
    if frames.shape[1] > 4 and frames.shape[3] in (1, 3):
        raise ValueError(f"frames must be (T, C, H, W), channels second; got shape "
                         f"{frames.shape}, which looks like (T, H, W, C): pass "
                         f"frames.transpose(0, 3, 1, 2)")
    if frames.size:
        check_finite(frames, "frames")
        low, high = float(frames.min()), float(frames.max())
        if low < 0.0 or high > 1.0:
            hint = " (8-bit frames? divide them by 255)" if high > 1.5 else ""
            raise ValueError(f"frames must be in [0, 1]; got values from {low:g} to {high:g}{hint}")


def check_frames_for_config(config, frames):
    """Refuse a video ``train(config, frames)`` cannot use, before any work.

    The kernel must fit in the frame (a larger 'same' kernel sees only padding,
    and costs k² per pixel).

    Parameters
    ----------
    config : TrainConfig
        The settings (``kernel_size``).
    frames : ndarray, shape (T, C, H, W)
        Floating-point frames, T ≥ 3 (two pairs).

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``frames`` is not floating point.
    ValueError
        If it is not a 4-D array, has fewer than 3 frames, or is smaller than the kernel.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> from rpmref.balls.trainer import check_frames_for_config
    >>> check_frames_for_config(config, frames[:2])
    Traceback (most recent call last):
    ...
    ValueError: frames must hold at least 3 frames (2 pairs); got 2
    """
    _check_frames(frames)
    if frames.shape[0] < 3:
        raise ValueError(f"frames must hold at least 3 frames (2 pairs); got {frames.shape[0]}")
    height, width = frames.shape[2:]
    if config.kernel_size > min(height, width):
        raise ValueError(f"kernel_size {config.kernel_size} is larger than the "
                         f"{height}×{width} frames")


def effective_batch_sizes(n_pairs, batch_size):
    """Pairs in each of the ⌈P / B⌉ batches of an epoch (``np.array_split``).

    P pairs are split as evenly as possible, so sizes differ by at most one and
    may be below B.

    Parameters
    ----------
    n_pairs : int
        P, the pairs of consecutive frames.
    batch_size : int
        B.

    Returns
    -------
    tuple of int
        The batch sizes, in order.

    Examples
    --------
    >>> from rpmref.balls.trainer import effective_batch_sizes
    >>> effective_batch_sizes(23, 8)
    (8, 8, 7)
    """
    n_batches = _n_batches(n_pairs, batch_size)
    return tuple(len(a) for a in np.array_split(np.arange(n_pairs), n_batches))


def encode(params, bn_state, frames, config, batch=64):
    """Latents z = (x1, y1, x2, y2, x3, y3): the centres of mass of the 3 maps (Sec. 5,
    Appendix D: the encoder whose output the paper's readout decodes).

    Centres in pixel coordinates, with evaluation-mode batch norm (running
    statistics). Computed in float64 whatever ``config.dtype``, by the fused
    encoder's forward pass (``grid.encoder_z_eval``) on ``step_threads(config)``
    threads; works on untrained parameters.

    Parameters
    ----------
    params : dict of ndarray
        Encoder parameters (``rpmref.balls.trainer.TrainResult.params`` of :func:`train`,
        or ``rpmref.balls.trainer.initial_params``).
    bn_state : dict of ndarray
        Running batch-norm statistics.
    frames : ndarray, shape (T, C, H, W)
        Floating-point frames in [0, 1].
    config : TrainConfig
        The settings the parameters were made with.
    batch : int, default 64
        Frames encoded at a time (≥ 1).

    Returns
    -------
    ndarray of float64, shape (T, 2·C₂)
        The latents (C₂ = 3 maps: (T, 6)). A map whose sigmoid underflows to 0 on
        every pixel of a frame has no centre there: NaN.

    Raises
    ------
    ValueError
        If ``frames`` is not 4-D, has no pixel, has another channel count than the
        parameters, or holds a value that is not finite or outside [0, 1]; if ``params`` or
        ``bn_state`` lacks an array, or one is empty, not finite, of the wrong shape
        or (a variance) negative; or if ``batch`` < 1.
    TypeError
        If ``frames`` is not floating point, ``params`` or ``bn_state`` is not a
        dict of real arrays, ``config`` is not a :class:`TrainConfig`, or ``batch``
        is not an integer.

    Examples
    --------
    >>> from rpmref import encode, train
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> result = train(config, frames, progress=False)
    >>> z = encode(result.params, result.bn_state, frames, config)
    >>> z.shape, z.dtype
    ((24, 6), dtype('float64'))
    """
    _check_frames(frames)
    if frames.shape[2] < 1 or frames.shape[3] < 1:
        raise ValueError(f"frames must have at least one pixel; got shape {frames.shape}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    batch = check_positive_int(batch, "batch")
    args = _encoder_arrays(params, bn_state)
    if args[0].ndim == 4 and frames.shape[1] != args[0].shape[1]:
        raise ValueError(f"frames have {frames.shape[1]} channel(s); the encoder's conv1_w "
                         f"{args[0].shape} expects {args[0].shape[1]}")
    check_finite(frames, "frames")
    ws = grid.Workspace(step_threads(config))
    try:
        with blas_threads(1):  # the workspace's threads each call single-threaded BLAS
            chunks = [grid.encoder_z_eval(layers.to_channel_first(np.asarray(
                frames[start:start + batch], dtype=np.float64)), *args, workspace=ws)
                for start in range(0, max(frames.shape[0], 1), batch)]  # T = 0: one empty
    finally:
        ws.close()
    return np.concatenate(chunks)


def _encoder_arrays(params, bn_state):
    """The encoder's parameters (``grid.PARAMS``) and running statistics (``grid.RUNNING``)
    as float64 arrays: real, finite, non-empty, variances ≥ 0 (the shapes are
    ``grid.encoder_z_eval``'s to check)."""
    arrays = []
    for group, d, names in (("params", params, grid.PARAMS), ("bn_state", bn_state, grid.RUNNING)):
        if not isinstance(d, Mapping):
            raise TypeError(f"{group} must be a dict of arrays; got {type(d).__name__}")
        missing = [name for name in names if name not in d]
        if missing:
            raise ValueError(f"{group} lacks {', '.join(missing)} (the encoder needs "
                             f"{', '.join(names)})")
        arrays += [as_real_array(d[name], f"{group}['{name}']") for name in names]
    for name, v in (("bn1_var", arrays[9]), ("bn2_var", arrays[11])):
        if np.any(v < 0):
            raise ValueError(f"bn_state['{name}'] must be ≥ 0 (a variance); it holds {v.min()}")
    return arrays


def coordinate_scale(height, width, dtype=np.float64):
    """S = (W, H, W, H, W, H): u = z / S − ½ maps every centre into [−½, ½].

    Parameters
    ----------
    height : int
        H.
    width : int
        W.
    dtype : dtype, default float64
        The dtype of S.

    Returns
    -------
    ndarray, shape (6,)
        S.

    Examples
    --------
    >>> from rpmref.balls.trainer import coordinate_scale
    >>> coordinate_scale(16, 32)
    array([32., 16., 32., 16., 32., 16.])
    """
    return np.array([width, height] * 3, dtype=dtype)


def objective(params, x, critic, scale, reference=False, workspace=None):
    """In-batch InfoNCE loss (Eq. 6) of one batch, and auxiliary values.

    The encoder's latents are normalised to u = z / S − ½ before the critic.

    Parameters
    ----------
    params : dict of ndarray
        Encoder and critic parameters.
    x : ndarray, shape (C, 2B, H, W)
        The B frames t followed by their B frames t+1, channel first.
    critic : callable
        ``critic(params, u, u_prime)`` (:mod:`rpmref.balls.critics`).
    scale : ndarray, shape (6,)
        S of :func:`coordinate_scale`.
    reference : bool, default False
        Use the plain autograd compositions of the encoder.
    workspace : grid.Workspace, optional
        Buffers and threads the encoder reuses (None: inside ``train_step`` the one
        it keeps for this thread, elsewhere a fresh one).

    Returns
    -------
    loss : float or autograd box
        The loss, in nats (differentiable by autograd in ``params``).
    aux : tuple
        (loss value, estimate log B − loss, batch-norm statistics).

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> import numpy as np
    >>> from rpmref.balls import layers
    >>> from rpmref.balls.critics import get_critic
    >>> from rpmref.balls.trainer import coordinate_scale, init_params, objective
    >>> params = {k: v.astype(np.float64) for k, v in init_params(config, 0).items()}
    >>> x = layers.to_channel_first(frames[np.r_[0:4, 1:5]].astype(np.float64))   # B = 4 pairs
    >>> loss, (value, estimate, stats) = objective(params, x, get_critic("rbf"), coordinate_scale(16, 16))
    >>> bool(estimate == np.log(4) - value), bool(estimate <= np.log(4))   # loss ≥ 0
    (True, True)
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


def _first_non_finite(groups):
    for group, d in groups:
        for k, v in d.items():
            if not np.all(np.isfinite(v)):
                return f"{group} {k}"
    return None


def train_step(params, bn_state, opt_state, x, config, critic, scale):
    """One update on batch x: gradient of :func:`objective`, optimiser step, running statistics.

    The encoder runs on this thread's ``grid.Workspace`` with ``step_threads(config)``
    threads; its buffers are kept for the next step.

    Parameters
    ----------
    params : dict of ndarray
        Encoder and critic parameters.
    bn_state : dict of ndarray
        Running batch-norm statistics.
    opt_state : dict of ndarray
        Optimiser state (:func:`rpmref.balls.optim.init_state`).
    x : ndarray, shape (C, 2B, H, W)
        The batch (frames t, then frames t+1), in ``config.dtype``.
    config : TrainConfig
        ``optimizer``, ``lr``, ``momentum``, ``bn_momentum``, ``blas_threads``.
    critic : callable
        The critic function.
    scale : ndarray, shape (6,)
        S of :func:`coordinate_scale`.

    Returns
    -------
    tuple
        (params, bn_state, opt_state, loss, estimate), the last two floats in nats.

    Raises
    ------
    NonFiniteLossError
        (changing nothing) if the loss, a gradient, an updated parameter, optimiser
        moment or running statistic is not finite.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> import numpy as np
    >>> from rpmref.balls import layers, optim
    >>> from rpmref.balls.critics import get_critic
    >>> from rpmref.balls.trainer import coordinate_scale, init_bn_state, init_params, train_step
    >>> params = init_params(config, 0)
    >>> x = layers.to_channel_first(frames[np.r_[0:4, 1:5]])
    >>> new_params, bn, opt, loss, estimate = train_step(
    ...     params, init_bn_state(config), optim.init_state(params, "adam"), x, config,
    ...     get_critic("rbf"), coordinate_scale(16, 16, np.float32))
    >>> int(opt["t"]), loss >= 0, abs(estimate - (float(np.log(4)) - loss)) < 1e-6   # float32 eps·log 4 ≈ 1.7e-7
    (1, True, True)
    """
    threads = step_threads(config)
    _LOCAL.active = _thread_workspace(threads)  # objective's workspace during this step only
    try:
        # a diverging step overflows on its way to a non-finite loss or gradient: that is
        # reported just below (NonFiniteLossError), not by NumPy warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if threads > 1:  # the step's threads each call single-threaded BLAS (train() sets
                with blas_threads(1):  # that for a whole run; here for callers of train_step)
                    g, (loss, estimate, stats) = _GRAD(params, x, critic, scale)
            else:
                g, (loss, estimate, stats) = _GRAD(params, x, critic, scale)
    finally:
        _LOCAL.active = None
    if not np.isfinite(loss) or _first_non_finite([("gradient", g)]):
        raise NonFiniteLossError(f"non-finite loss ({float(loss)}) or gradient")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        new_params, new_opt = optim.step(params, g, opt_state, config.optimizer, config.lr,
                                         momentum=config.momentum)
        n_per_channel = x.shape[1] * x.shape[2] * x.shape[3]
        new_bn = layers.update_bn_state(bn_state, stats, n_per_channel, config.bn_momentum)
    bad = _first_non_finite([("parameter", new_params), ("optimiser state", new_opt),
                             ("batch-norm statistic", new_bn)])
    if bad:
        raise NonFiniteLossError(f"the update made {bad} non-finite (loss {float(loss):.4g}; "
                                 f"lr {config.lr:g} too large?)")
    return new_params, new_bn, new_opt, float(loss), float(estimate)


# --------------------------------------------------------------------------
# threads: a training step runs its blocks on its own threads (grid.Workspace) with
# one BLAS thread each; so does encoding (encode)


def step_threads(config):
    """Threads of a training step: ``config.blas_threads``, or every available core if None.

    Parameters
    ----------
    config : TrainConfig
        The settings.

    Returns
    -------
    int
        The thread count.

    Examples
    --------
    >>> from rpmref.balls import TrainConfig
    >>> from rpmref.balls.grid import available_cores
    >>> from rpmref.balls.trainer import step_threads
    >>> step_threads(TrainConfig(blas_threads=1)), step_threads(TrainConfig()) == available_cores()
    (1, True)
    """
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

    Parameters
    ----------
    n : int or None
        Threads.

    Returns
    -------
    threadpoolctl.threadpool_limits
        The context manager.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> from rpmref.balls.trainer import blas_threads
    >>> with blas_threads(1):
    ...     print(all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas"))
    True
    """
    return threadpool_limits(limits=grid.available_cores() if n is None else n, user_api="blas")


def limit_blas_threads(n):
    """Set this process's BLAS thread count to ``n`` for good (None: every available core).

    For worker processes that only ever train.

    Parameters
    ----------
    n : int or None
        Threads.

    Returns
    -------
    None

    Examples
    --------
    >>> from threadpoolctl import threadpool_info, threadpool_limits
    >>> from rpmref.balls.trainer import limit_blas_threads
    >>> with threadpool_limits(limits=None):   # puts this process's limits back afterwards
    ...     limit_blas_threads(1)
    ...     print(all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas"))
    True
    """
    threadpool_limits(limits=grid.available_cores() if n is None else n, user_api="blas")


# --------------------------------------------------------------------------
# checkpoints: what is saved, and everything checked when it is read back


def _n_batches(n_pairs, batch_size):
    return math.ceil(n_pairs / batch_size)


def _config_dict(config):
    return dataclasses.asdict(config)


def _write_metrics(out_dir, rows):
    rundir.atomic_write_text(os.path.join(out_dir, METRICS),
                             "".join(json.dumps(row) + "\n" for row in rows))


def _is_int(v):
    return type(v) is int


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_counters(path, meta, n_batches):
    bad = lambda detail: ckpt.CorruptCheckpointError(path, detail)  # noqa: E731
    for k in ("epoch", "step", "batch_in_epoch"):
        if not _is_int(meta[k]) or meta[k] < 0:
            raise bad(f"{k} is {meta[k]!r}; expected a non-negative integer")
    epoch, step, b = meta["epoch"], meta["step"], meta["batch_in_epoch"]
    if b >= n_batches:
        raise bad(f"batch_in_epoch {b} but an epoch has {n_batches} batches")
    if step != epoch * n_batches + b:
        raise bad(f"step {step} is not epoch {epoch} × {n_batches} batches + batch {b}")
    acc = meta["epoch_acc"]
    if not (isinstance(acc, list) and len(acc) == 3 and _is_number(acc[0])
            and _is_number(acc[1]) and _is_int(acc[2])):
        raise bad(f"epoch_acc is {acc!r}; expected [loss sum, estimate sum, batches]")
    if acc[2] != b or (b == 0 and (acc[0], acc[1]) != (0, 0)):
        raise bad(f"epoch_acc counts {acc[2]} batches but batch_in_epoch is {b}")


def _check_history(path, history, meta, n_batches):
    bad = lambda detail: ckpt.CorruptCheckpointError(path, detail)  # noqa: E731
    if not isinstance(history, list):
        raise bad("history is not a list")
    epoch, step, b, acc = meta["epoch"], meta["step"], meta["batch_in_epoch"], meta["epoch_acc"]
    for i, row in enumerate(history):
        if not (isinstance(row, dict) and set(row) == set(HISTORY_KEYS)
                and _is_number(row["loss"]) and _is_number(row["estimate"])
                and isinstance(row["complete"], bool)
                and all(_is_int(row[k]) for k in ("epoch", "step", "batches"))):
            raise bad(f"history row {i} is not a row of {', '.join(HISTORY_KEYS)}: {row!r}")
        complete = i < epoch
        expected = ({"epoch": i + 1, "step": (i + 1) * n_batches, "batches": n_batches,
                     "complete": True} if complete else
                    {"epoch": epoch + 1, "step": step, "batches": b, "complete": False,
                     "loss": acc[0] / acc[2] if b else None,
                     "estimate": acc[1] / acc[2] if b else None})
        wrong = {k: row[k] for k, v in expected.items() if row[k] != v}
        if wrong or i > epoch:
            raise bad(f"history row {i} ({row!r}) does not fit epoch {epoch}, step {step}")
    if len(history) < epoch:
        raise bad(f"history has {len(history)} rows for {epoch} completed epochs")


def _restore(out_dir, config, frames, n_pairs, n_batches):
    """The loop state saved in out_dir's checkpoint, every part of it validated."""
    path = os.path.join(out_dir, CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
    data = ckpt.load_checkpoint(path)
    meta = data["meta"]
    required = ("config", "epoch", "step", "batch_in_epoch", "epoch_acc", "rng_state", "history",
                "data_fingerprint")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ckpt.CorruptCheckpointError(path, f"meta lacks {', '.join(missing)}")
    saved = meta["config"]
    if not isinstance(saved, dict):
        raise ckpt.CorruptCheckpointError(path, "meta config is not an object")
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(config, k)!r}"
            for k in MODEL_FIELDS if saved.get(k) != getattr(config, k)]
    if diff:
        raise ValueError(f"checkpoint {path} was written with another config ({'; '.join(diff)})")
    if meta["data_fingerprint"] != ckpt.fingerprint(frames):
        raise ValueError(f"checkpoint {path} was trained on a different video")
    if meta["format"] == "rpmref-checkpoint-v1" and meta["batch_in_epoch"] == 0:
        meta["epoch_acc"] = [0.0, 0.0, 0]  # v1 kept the finished epoch's sums here
    _check_counters(path, meta, n_batches)
    _check_history(path, meta["history"], meta, n_batches)
    rng = ckpt.generator_from_state(path, meta["rng_state"])
    ckpt.check_permutation(path, data["perm"], n_pairs)
    expected = init_params(config, 0, frames.shape[1])
    ckpt.check_arrays(path, "params", data["params"], expected)
    ckpt.check_arrays(path, "bn", data["bn_state"], init_bn_state(config))
    ckpt.check_arrays(path, "opt", data["opt_state"], optim.init_state(expected, config.optimizer))
    if int(data["opt_state"]["t"]) != meta["step"]:
        raise ckpt.CorruptCheckpointError(path, f"optimiser step count {int(data['opt_state']['t'])} "
                                                f"differs from step {meta['step']}")
    negative = [f"bn/{k}" for k in ("bn1_var", "bn2_var") if np.any(data["bn_state"][k] < 0)]
    negative += [f"opt/{k}" for k in data["opt_state"] if k.startswith("v/")
                 and np.any(data["opt_state"][k] < 0)]
    if negative:
        raise ckpt.CorruptCheckpointError(path, f"{', '.join(negative)} must be non-negative")
    return {"params": data["params"], "bn_state": data["bn_state"],
            "opt_state": data["opt_state"], "perm": data["perm"].astype(np.int64),
            "rng_state": rng.bit_generator.state, "epoch": meta["epoch"], "step": meta["step"],
            "batch_in_epoch": meta["batch_in_epoch"], "acc": meta["epoch_acc"],
            "history": meta["history"]}


def _save(out_dir, st, config, fp):
    meta = {"config": _config_dict(config), "epoch": st["epoch"], "step": st["step"],
            "batch_in_epoch": st["batch_in_epoch"], "epoch_acc": st["acc"],
            "rng_state": st["rng_state"], "history": st["history"], "data_fingerprint": fp}
    ckpt.save_checkpoint(os.path.join(out_dir, CHECKPOINT), st["params"], st["bn_state"],
                         st["opt_state"], st["perm"], meta)


# --------------------------------------------------------------------------
# the loop


def train(config, frames, out_dir=None, resume=False, progress=True, on_epoch=None, *,
          overwrite=False, on_step=None):
    """Train the encoder and critic on one video with the in-batch InfoNCE loss (Eq. 6).

    Parameters
    ----------
    config : TrainConfig
        The training settings.
    frames : ndarray, shape (T, C, H, W)
        Floats in [0, 1], T ≥ 3; the kernel must fit in the frame.
    out_dir : str, bytes or os.PathLike, optional
        The run directory for checkpoint.npz and metrics.jsonl (None: nothing
        written). It is locked while training and must not hold a run already,
        unless ``resume`` or ``overwrite``.
    resume : bool, default False
        Continue from ``out_dir``'s checkpoint (same config apart from epochs /
        steps; every array, counter and history row is checked). A summary.json
        there is deleted when the first checkpoint of a later step replaces it.
    progress : bool, default True
        Show a progress bar when stderr is a terminal (a log file gets none).
    on_epoch : callable, optional
        ``on_epoch(epoch, params, bn_state)``: called after every epoch (and after
        a final partial one), once its checkpoint is written.
    overwrite : bool, default False
        Start afresh in ``out_dir``; the old run's files are replaced when the first
        new checkpoint is written (a run that fails or is interrupted before its first
        update leaves them as they were).
    on_step : callable, optional
        ``on_step(step, params, bn_state)``: called after every update, before that
        update's checkpoint or metrics are written.

    Returns
    -------
    TrainResult
        ``rpmref.balls.trainer.TrainResult``: ``params``, ``bn_state``, per-epoch
        ``history``, ``steps`` and timings.

    Raises
    ------
    TypeError
        If ``config`` is not a TrainConfig, ``frames`` is not floating point,
        ``resume`` / ``overwrite`` / ``progress`` is not a bool, ``on_epoch`` /
        ``on_step`` is not callable, or ``out_dir`` is not a path.
    ValueError
        If ``frames`` cannot be used (not (T, C, H, W), not finite, outside [0, 1],
        T < 3, kernel larger than a frame), ``resume`` or ``overwrite`` is given
        without ``out_dir``, or a
        checkpoint does not fit (CorruptCheckpointError for a damaged one).
    FileNotFoundError
        If ``resume`` finds no checkpoint.
    rpmref.balls.rundir.RunLockedError
        If another run holds ``out_dir``.
    rpmref.balls.trainer.NonFiniteLossError
        A divergent step (nothing of it is kept).
    rpmref.balls.trainer.TrainingInterrupted
        On Ctrl-C, after writing a checkpoint of the last completed step (none if an
        ``overwrite`` had made no update yet: the old run stays).
    rpmref.balls.trainer.RunWriteError
        If a file cannot be written.

    Examples
    --------
    >>> from rpmref import train
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> result = train(config, frames, progress=False)
    >>> result.steps, sorted(result.history[0])
    (2, ['batches', 'complete', 'epoch', 'estimate', 'loss', 'step'])
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    check_frames_for_config(config, frames)
    check_bool(resume, "resume")
    check_bool(overwrite, "overwrite")
    check_bool(progress, "progress")
    for name, hook in (("on_epoch", on_epoch), ("on_step", on_step)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be callable or None; got {type(hook).__name__}")
    if (resume or overwrite) and out_dir is None:
        given = " and ".join(f"{name}=True" for name, flag in (("resume", resume),
                                                               ("overwrite", overwrite)) if flag)
        raise ValueError(f"{given} need{'' if resume and overwrite else 's'} out_dir "
                         "(the run directory)")
    out_dir = check_path(out_dir, "out_dir", allow_none=True)  # bytes decoded: the run's own
    # file names are str
    if resume and not os.path.exists(os.path.join(out_dir, CHECKPOINT)):
        raise FileNotFoundError(f"cannot resume: no checkpoint at {os.path.join(out_dir, CHECKPOINT)}")
    # the step's own threads share its work; BLAS inside them runs single-threaded
    with blas_threads(1):
        if out_dir is None:
            return _train(config, frames, None, False, progress, on_epoch, on_step)
        with rundir.open_run_dir(out_dir, resume=resume, overwrite=overwrite) as path:
            return _train(config, frames, path, resume, progress, on_epoch, on_step)


def _advance(st, x_all, n_pairs, n_batches, total, config, critic, scale):
    """(the loop state after one more update, its loss, its estimate); ``st`` is not modified."""
    b = st["batch_in_epoch"]
    perm, rng_state = st["perm"], st["rng_state"]
    if b == 0:  # a new epoch: its pair order, from a copy of the Generator
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = rng_state
        perm, rng_state = rng.permutation(n_pairs), rng.bit_generator.state
    idx = np.array_split(perm, n_batches)[b]
    x = np.concatenate([x_all[:, idx], x_all[:, idx + 1]], axis=1)  # (C, 2B, H, W)
    params, bn_state, opt_state, loss, est = train_step(
        st["params"], st["bn_state"], st["opt_state"], x, config, critic, scale)
    acc = [st["acc"][0] + loss, st["acc"][1] + est, st["acc"][2] + 1]
    step = st["step"] + 1
    end_of_epoch = b + 1 == n_batches
    # a partial row (a run that ended mid-epoch) only ever describes the current step
    history = [row for row in st["history"] if row["complete"]]
    if end_of_epoch or step == total:
        history.append({"epoch": st["epoch"] + 1, "step": step, "loss": acc[0] / acc[2],
                        "estimate": acc[1] / acc[2], "batches": acc[2],
                        "complete": end_of_epoch})
    return {"params": params, "bn_state": bn_state, "opt_state": opt_state, "perm": perm,
            "rng_state": rng_state, "step": step, "epoch": st["epoch"] + end_of_epoch,
            "batch_in_epoch": 0 if end_of_epoch else b + 1,
            "acc": [0.0, 0.0, 0] if end_of_epoch else acc, "history": history}, loss, est


def _kept(out_dir, saved):
    """What is on disk; saved = the checkpointed state (None: no checkpoint yet)."""
    if saved is None:
        if rundir.replacing_run(out_dir):
            return f"nothing of it was written; the run it was to replace is kept in {out_dir}"
        return "no checkpoint has been written yet"
    where = (f"after epoch {saved['epoch']}" if saved["batch_in_epoch"] == 0 else
             f"epoch {saved['epoch'] + 1}, batch {saved['batch_in_epoch']}")
    return f"the last good checkpoint (step {saved['step']}, {where}) is kept in {out_dir}"


def _train(config, frames, out_dir, resume, progress, on_epoch, on_step):
    dtype = np.dtype(config.dtype)
    x_all = layers.to_channel_first(np.asarray(frames, dtype=dtype))  # (C, T, H, W)
    _, t_frames, height, width = x_all.shape
    n_pairs = t_frames - 1
    n_batches = _n_batches(n_pairs, config.batch_size)
    total = config.steps if config.steps is not None else config.epochs * n_batches
    critic = get_critic(config.critic)
    scale = coordinate_scale(height, width, dtype)
    fp = ckpt.fingerprint(frames)
    if resume:
        st = _restore(out_dir, config, frames, n_pairs, n_batches)
        if st["step"] > total:
            raise ValueError(f"checkpoint {os.path.join(out_dir, CHECKPOINT)} is at step "
                             f"{st['step']}, beyond the {total} steps asked for")
        saved = st
        _rewrite_metrics(out_dir, st)  # drop rows a killed run wrote after it
        # a finished run resumed to go further: its summary describes this checkpoint only,
        # so it goes when the first checkpoint of a later step takes this one's place
        stale_summary = st["step"] < total and os.path.exists(os.path.join(out_dir, SUMMARY))
    else:
        rng = np.random.default_rng(config.seed)
        params = initial_params(config, frames, rng)
        st = {"params": params, "bn_state": init_bn_state(config),
              "opt_state": optim.init_state(params, config.optimizer),
              "perm": np.arange(n_pairs), "rng_state": rng.bit_generator.state, "epoch": 0,
              "step": 0, "batch_in_epoch": 0, "acc": [0.0, 0.0, 0], "history": []}
        saved, stale_summary = None, False

    from tqdm import tqdm
    bar = tqdm(total=total, initial=st["step"], disable=None if progress else True,
               desc=f"train {config.critic}", unit="step", leave=False)
    start_step, t0 = st["step"], time.perf_counter()
    try:
        while st["step"] < total:
            try:
                new, loss, est = _advance(st, x_all, n_pairs, n_batches, total, config, critic,
                                          scale)
            except NonFiniteLossError as e:
                kept = f"; {_kept(out_dir, saved)}" if out_dir is not None else ""
                raise NonFiniteLossError(f"training stopped at step {st['step'] + 1} "
                                         f"(epoch {st['epoch'] + 1}): {e}{kept}") from None
            if stale_summary:  # every checkpoint from now on is of a later step
                rundir.retire_at_next_checkpoint(out_dir, (SUMMARY,))
                stale_summary = False
            st = new  # the one place the state changes
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", estimate=f"{est:.4f}", refresh=False)
            if on_step is not None:
                on_step(st["step"], st["params"], st["bn_state"])
            if st["history"] and st["history"][-1]["step"] == st["step"]:  # an epoch (row) ended
                if out_dir is not None:
                    _write_run(out_dir, st, config, fp, saved)
                    saved = st
                if on_epoch is not None:
                    row = st["history"][-1]
                    on_epoch(row["epoch"], st["params"], st["bn_state"])
    except KeyboardInterrupt:
        written, step = None, st["step"]
        # an overwrite that has not made one update yet keeps the old run instead
        if out_dir is not None and not (step == 0 and rundir.replacing_run(out_dir)):
            try:
                _write_run(out_dir, st, config, fp, saved)
                written = os.path.join(out_dir, CHECKPOINT)
            except (OSError, ValueError):  # e.g. the disk is full: the older checkpoint stays
                if saved is not None:
                    written, step = os.path.join(out_dir, CHECKPOINT), saved["step"]
        raise TrainingInterrupted(step, written) from None
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    done = st["step"] - start_step
    return TrainResult(params=st["params"], bn_state=st["bn_state"], history=st["history"],
                       wall_time=wall, steps_per_s=done / wall if done and wall > 0 else math.nan,
                       steps=st["step"], steps_run=done,
                       batch_sizes=effective_batch_sizes(n_pairs, config.batch_size))


def _rewrite_metrics(out_dir, st):
    """A resumed run's metrics.jsonl, as its checkpoint ``st`` has them; an OSError becomes
    a RunWriteError naming the file and saying the checkpoint is kept."""
    path = os.path.join(out_dir, METRICS)
    try:
        _write_metrics(out_dir, st["history"])
    except OSError as e:
        raise RunWriteError(f"cannot write {path} ({e.strerror or e}); the checkpoint "
                            f"{os.path.join(out_dir, CHECKPOINT)} (step {st['step']}) is "
                            f"kept") from e


def _write_run(out_dir, st, config, fp, saved):
    """Checkpoint, then metrics; an OSError becomes a RunWriteError saying what is kept."""
    path = os.path.join(out_dir, CHECKPOINT)
    try:
        _save(out_dir, st, config, fp)
    except OSError as e:
        raise RunWriteError(f"cannot write {path} ({e.strerror or e}); "
                            f"{_kept(out_dir, saved)}") from e
    try:
        _write_metrics(out_dir, st["history"])
    except OSError as e:
        raise RunWriteError(f"cannot write {os.path.join(out_dir, METRICS)} ({e.strerror or e}); "
                            f"the checkpoint {path} (step {st['step']}) is written") from e


# --------------------------------------------------------------------------
# what ``rpmref balls train`` reports


def check_readout_videos(frames, positions, heldout_frames, heldout_positions):
    """The held-out video must look like the training video.

    Same (C, H, W) frames and the same number of balls; positions
    (T, n_balls, 2) with one row per frame.

    Parameters
    ----------
    frames : ndarray, shape (T, C, H, W)
        Training frames.
    positions : array_like, shape (T, n_balls, 2)
        Training ball centres.
    heldout_frames : ndarray, shape (T', C, H, W)
        Held-out frames.
    heldout_positions : array_like, shape (T', n_balls, 2)
        Held-out ball centres.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If frames are not floating point.
    ValueError
        For any mismatch, naming which video.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> from rpmref.balls.trainer import check_readout_videos
    >>> check_readout_videos(frames, positions, frames, positions[:3])
    Traceback (most recent call last):
    ...
    ValueError: the held-out positions must be (T, n_balls, 2) with T = 24 frames; got shape (3, 3, 2)
    """
    for name, f, p in (("training", frames, positions),
                       ("held-out", heldout_frames, heldout_positions)):
        _check_frames(f)
        if np.ndim(p) != 3 or np.shape(p)[0] != f.shape[0] or np.shape(p)[2] != 2:
            raise ValueError(f"the {name} positions must be (T, n_balls, 2) with T = "
                             f"{f.shape[0]} frames; got shape {np.shape(p)}")
    if heldout_frames.shape[1:] != frames.shape[1:]:
        raise ValueError(f"the held-out video's frames are {heldout_frames.shape[1:]} (C, H, W) "
                         f"but the training video's are {frames.shape[1:]}")
    if np.shape(heldout_positions)[1] != np.shape(positions)[1]:
        raise ValueError(f"the held-out video has {np.shape(heldout_positions)[1]} balls, the "
                         f"training video {np.shape(positions)[1]}")


def run_summary(config, result, frames, positions, heldout_frames, heldout_positions,
                video="", heldout_video=""):
    """What ``summary.json`` records about a finished (or resumed) run.

    The linear readout z → ball centres (``readout``) fit on the training video
    and scored there and on the held-out video; the last history row's loss and
    estimate (nats); the effective batch sizes and ``log_batch`` = the mean over
    an epoch's batches of log B_b, the bound on the epoch-mean estimate (Eq. 6:
    each batch's estimate is at most log B_b); ``environment()``. The fields in
    SUMMARY_VOLATILE (``session``: this call's wall time, steps/s, updates and threads
    — ``step_threads`` of :func:`step_threads`, each calling BLAS with
    ``blas_threads_per_step_thread`` = 1; ``environment``, whose ``blas`` threads are
    that one thread) are the only ones that differ between a run interrupted and
    resumed and the uninterrupted run.

    Parameters
    ----------
    config : TrainConfig
        The run's settings.
    result : TrainResult
        What :func:`train` returned.
    frames : ndarray, shape (T, C, H, W)
        Training frames.
    positions : array_like, shape (T, n_balls, 2)
        Training ball centres.
    heldout_frames : ndarray, shape (T', C, H, W)
        Held-out frames.
    heldout_positions : array_like, shape (T', n_balls, 2)
        Held-out ball centres.
    video : str, default ""
        Where the training video came from.
    heldout_video : str, default ""
        Where the held-out video came from.

    Returns
    -------
    dict
        JSON-ready: config, steps, epochs_completed, final_loss, final_estimate,
        pairs, batches_per_epoch, effective_batch_sizes, log_batch, readout_heldout,
        readout_train, video, heldout_video, session, environment.

    Raises
    ------
    TypeError, ValueError
        As for :func:`check_readout_videos`.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> config = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> from rpmref.balls import train
    >>> from rpmref.balls.trainer import run_summary
    >>> heldout_frames, heldout_positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=1)
    >>> summary = run_summary(config, train(config, frames, progress=False), frames, positions,
    ...                       heldout_frames, heldout_positions)
    >>> summary["steps"], summary["pairs"], summary["effective_batch_sizes"]
    (2, 23, [7, 8])
    """
    check_readout_videos(frames, positions, heldout_frames, heldout_positions)
    z_train = encode(result.params, result.bn_state, frames, config)
    readout = fit_linear_readout(z_train, positions)
    heldout = score_readout(readout, encode(result.params, result.bn_state, heldout_frames,
                                            config), heldout_positions)
    sizes = result.batch_sizes or effective_batch_sizes(frames.shape[0] - 1, config.batch_size)
    last = result.history[-1] if result.history else {}
    return {"config": _config_dict(config), "steps": result.steps,
            "epochs_completed": sum(1 for r in result.history if r["complete"]),
            "final_loss": last.get("loss"), "final_estimate": last.get("estimate"),
            "pairs": frames.shape[0] - 1, "batches_per_epoch": len(sizes),
            "effective_batch_sizes": sorted(set(sizes)),
            "log_batch": float(np.mean(np.log(sizes))),
            "readout_heldout": heldout, "readout_train": score_readout(readout, z_train, positions),
            "video": video, "heldout_video": heldout_video,
            "session": {"wall_time_s": result.wall_time,
                        "steps_per_s": None if math.isnan(result.steps_per_s)
                        else result.steps_per_s, "steps_run": result.steps_run,
                        "step_threads": step_threads(config), "blas_threads_per_step_thread": 1},
            "environment": _training_environment()}


def _training_environment():
    """``environment()`` with BLAS as training and encoding run it: one thread inside each
    step thread (``train``), not the process default."""
    with blas_threads(1):
        return environment()


def write_summary(out_dir, summary):
    """Write ``summary`` to out_dir/summary.json atomically; returns the path.

    Parameters
    ----------
    out_dir : str
        The run directory.
    summary : dict
        JSON-serialisable, as from :func:`run_summary`.

    Returns
    -------
    str
        The file written.

    Raises
    ------
    RunWriteError
        If it cannot be written (the checkpoint and metrics are; ``--resume``
        rewrites the summary).

    Examples
    --------
    >>> import json, tempfile
    >>> from rpmref.balls.trainer import write_summary
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_summary(tmp, {"steps": 2})
    ...     print(path.endswith("summary.json"), json.load(open(path)))
    True {'steps': 2}
    """
    path = os.path.join(out_dir, SUMMARY)
    try:
        rundir.atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
    except OSError as e:
        raise RunWriteError(f"cannot write {path} ({e.strerror or e}); the checkpoint and "
                            f"metrics are written, and --resume rewrites the summary") from e
    return path
