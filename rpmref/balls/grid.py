"""The training-mode encoder as one autograd primitive on a zero-padded pixel grid.

``encoder_z`` computes the same function as the layer-by-layer composition in
``layers`` (conv → batch norm → ReLU → conv → batch norm → sigmoid → centre of
mass; paper Sec. 5 / Appendix D), but keeps every activation in one layout from
the first convolution to the last and writes its backward pass by hand, so that
a training step makes few passes over memory and allocates nothing large:

- The grid. Image pixel (n, i, j) of an N × H × W batch sits at position
  q = (n·Hq + i)·Wq + j of a grid of m = N·Hq·Wq positions, Hq = H + p, Wq = W + p,
  p = k // 2. Positions with i ≥ H or j ≥ W are *junk*: they are computed and
  then ignored (``valid`` is 1 on pixels, 0 on junk). A *framed* array is a grid
  array with the junk set to zero and ``base`` = p·Wq + p zeros before and after
  it; in it the input of kernel offset (di, dj) for output q sits at
  q + di·Wq + dj, so every offset is one contiguous slice (the zero junk right
  of row r and below image n is the padding left of row r + 1 and above image
  n + 1).
- Convolutions are im2col (a copy of the k² slices) followed by BLAS calls of
  at most GEMM_MACS multiply-adds each: OpenBLAS runs such calls with its
  small-matrix kernels, which skip packing and were measured twice as fast as
  larger calls on these skinny shapes. Layer 2 has fewer output than input
  channels, so its forward pass is one matmul (C₂·k², C₁) @ (C₁, ·) followed by
  k² shifted adds, and its backward pass builds one im2col of the output
  gradient for both its weight and input gradients.
- Work is cut into blocks of positions sized to stay in cache; batch-norm
  statistics are merged from per-block moments (Chan et al.'s pairwise update),
  and weight gradients are summed from per-block partial sums in block order.
  Blocks run on ``Workspace.threads`` threads (NumPy and BLAS release the GIL);
  since the blocks and their order do not depend on the thread count, neither
  does any result: 1 and 2 threads give bitwise identical numbers.
- A conv bias followed by batch norm changes only the batch mean, never the
  output: the grid holds the convolution without it, and it is added to the
  reported mean.

All large arrays live in a ``Workspace`` and are reused by the next step.
"""
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import getval

from rpmref.exact.validation import check_finite, check_real

BN_EPS = 1e-5
GEMM_MACS = 10 ** 6      # multiply-adds per BLAS call (OpenBLAS's small-matrix kernels take ≤ 10⁶)
BLOCK_BYTES = 1 << 21    # bytes of a block's largest scratch array (measured best of 512 KiB … 4 MiB)
PARAMS = ("conv1_w", "conv1_b", "bn1_gamma", "bn1_beta",
          "conv2_w", "conv2_b", "bn2_gamma", "bn2_beta")
ARGS = ("x",) + PARAMS  # the arrays encoder_z takes, in order
RUNNING = ("bn1_mean", "bn1_var", "bn2_mean", "bn2_var")  # running statistics, as encoder_z_eval takes them


def available_cores():
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> import os
    >>> from rpmref.balls.grid import available_cores
    >>> 1 <= available_cores() <= (os.cpu_count() or 1)
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return os.cpu_count() or 1


class Workspace:
    """Buffers that one training step leaves for the next, and the threads that share its work.

    Buffers are allocated once per batch shape and dtype. One forward pass may be
    in flight per workspace: its backward pass raises RuntimeError if another
    forward pass used the workspace in between. A workspace belongs to one thread
    of the caller at a time; :meth:`close` stops its threads.

    Parameters
    ----------
    threads : int or None, default 1
        How many threads run the blocks of each pass (≥ 1; None: every available
        core). Results do not depend on it.

    Raises
    ------
    ValueError
        If ``threads`` is not a positive integer or None.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.grid import Workspace
    >>> ws = Workspace(threads=1)
    >>> buffer = ws.array("h1", (2, 3), np.float64, zeros=True)
    >>> buffer is ws.array("h1", (2, 3), np.float64), ws.nbytes()
    (True, 48)
    >>> ws.map_blocks(lambda block, slot: block[1] - block[0], [(0, 1), (1, 3)])
    [1, 2]
    """

    def __init__(self, threads=1):
        if threads is None:
            threads = available_cores()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive integer or None; got {threads!r}")
        self.threads = threads
        self.generation = 0  # number of forward passes so far
        self.stats = {}      # batch statistics of the last forward pass
        self.constants = {}  # per grid: the valid mask and the centre-of-mass weights
        self.views = {}      # strided views of the buffers, made once (see ``view``)
        self._arrays = {}
        self._pool = None

    def array(self, name, shape, dtype, zeros=False):
        """The buffer called ``name`` of this shape and dtype, allocated on first use.

        Buffers are kept per shape (an epoch's last batch is often smaller, and
        both sizes then keep theirs). zeros: a new buffer is zero-filled; callers
        rely on zeros only where they never write.
        """
        key = (name, tuple(shape), np.dtype(dtype).str)
        a = self._arrays.get(key)
        if a is None:
            a = np.zeros(key[1], dtype) if zeros else np.empty(key[1], dtype)
            self._arrays[key] = a
        return a

    def view(self, key, make):
        """The view cached under ``key``, made by ``make()`` on first use.

        Views of the buffers (im2col windows and their sub-block slices) are the same
        at every step, and building a strided view costs more than copying a small
        block through it; ``key`` must name the buffers it views (their ``id``: a
        buffer lives as long as the workspace).
        """
        v = self.views.get(key)
        if v is None:
            v = self.views[key] = make()
        return v

    def scratch(self, name, shape, dtype):
        """One buffer ``name.slot`` of this shape and dtype per thread slot (see ``array``)."""
        return [self.array(f"{name}.{slot}", shape, dtype) for slot in range(self.threads)]

    def nbytes(self):
        """Bytes held in buffers."""
        return sum(a.nbytes for a in self._arrays.values())

    def runs(self, blocks):
        """The blocks cut into one run of consecutive blocks per thread (fewer if short)."""
        t = max(1, min(self.threads, len(blocks)))
        bounds = np.linspace(0, len(blocks), t + 1).round().astype(int)
        return [blocks[bounds[i]:bounds[i + 1]] for i in range(t)]

    def map_runs(self, fn, runs):
        """fn(run, slot) for each run, run ``slot`` on thread ``slot`` (its own scratch
        buffers carry the slot in their name); the returned lists, concatenated."""
        if len(runs) == 1:
            return fn(runs[0], 0)
        if self._pool is None or self._pool._max_workers != self.threads:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rpmref-grid")
        # each thread runs in a copy of the caller's context, so np.errstate (a context
        # variable) holds there too: a caller that checks results itself sees no warnings
        futures = [self._pool.submit(contextvars.copy_context().run, fn, run, slot)
                   for slot, run in enumerate(runs)]
        return [r for f in futures for r in f.result()]

    def map_blocks(self, fn, blocks):
        """[fn(block, slot) for block in blocks], the runs of ``runs(blocks)`` on the threads."""
        return self.map_runs(lambda run, slot: [fn(b, slot) for b in run], self.runs(blocks))

    def close(self):
        """Stop the threads (a later call starts them again)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


# --------------------------------------------------------------------------
# geometry


class Grid:
    """Positions of the padded grid of an (N, H, W) batch for k × k kernels (see the module docstring).

    Attributes: ``hq``, ``wq`` (padded sizes), ``m`` (grid positions), ``base``
    (p·Wq + p), ``length`` (framed array length), ``offsets`` (the k² kernel
    offsets), ``pixels`` (N·H·W).

    Parameters
    ----------
    n : int
        Batch size N.
    h : int
        Image height H.
    w : int
        Image width W.
    k : int
        Odd kernel size.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.grid import Grid
    >>> grid = Grid(2, 8, 8, 3)
    >>> grid.m, grid.base, grid.length
    (162, 10, 182)
    >>> grid.image(np.zeros((1, grid.m))).shape
    (1, 2, 8, 8)
    """

    def __init__(self, n, h, w, k):
        self.n, self.h, self.w, self.k = n, h, w, k
        p = k // 2
        self.hq, self.wq = h + p, w + p
        self.m = n * self.hq * self.wq
        self.base = p * self.wq + p
        self.length = self.m + 2 * self.base            # framed array length
        self.offsets = [di * self.wq + dj for di in range(k) for dj in range(k)]
        self.reach = self.offsets[-1]                    # = 2·base
        self.pixels = n * h * w

    def image(self, a):
        """View (C, N, H, W) of the pixels of a grid array a (C, m)."""
        return a.reshape(a.shape[0], self.n, self.hq, self.wq)[:, :, :self.h, :self.w]

    def blocks(self, rows, itemsize, macs_per_position):
        """((start, stop) blocks, sub-block length): a partition of [0, m) that depends on
        the shapes only; a block's (rows, length) scratch is near BLOCK_BYTES, a
        sub-block's BLAS call at most GEMM_MACS multiply-adds."""
        sub = max(64, GEMM_MACS // max(macs_per_position, 1) // 64 * 64)
        length = max(sub, BLOCK_BYTES // (rows * itemsize) // sub * sub)
        length = min(length, self.m)
        return [(s, min(s + length, self.m)) for s in range(0, self.m, length)], min(sub, length)


def _subs(start, stop, sub):
    return [(a, min(a + sub, stop)) for a in range(start, stop, sub)]


def _constants(ws, grid, dtype):
    """valid (m,); per image, (Hq·Wq, 3) columns [valid, x = j + ½, y = i + ½] (zero on junk);
    counts (m + 1,): counts[q] = pixels before position q; floor (m,): 0 on pixels, +inf on
    junk (a > floor is the ReLU mask with the junk masked too)."""
    key = ("constants", grid.n, grid.h, grid.w, grid.k, np.dtype(dtype).str)
    if key not in ws.constants:
        i, j = np.meshgrid(np.arange(grid.hq), np.arange(grid.wq), indexing="ij")
        ok = ((i < grid.h) & (j < grid.w)).ravel().astype(dtype)
        basis = np.stack([ok, (j.ravel() + 0.5) * ok, (i.ravel() + 0.5) * ok], axis=1).astype(dtype)
        valid = np.tile(ok, grid.n)
        counts = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
        floor = np.where(valid > 0, 0, np.inf).astype(dtype)
        ws.constants[key] = (valid, basis, counts, floor)
    return ws.constants[key]


# --------------------------------------------------------------------------
# block kernels


def _windows(src, start, n, grid):
    """Read-only view (C, k, k, n) of src (C, length): [c, di, dj, t] = src[c, start + di·Wq + dj + t]."""
    c, k, wq = src.shape[0], grid.k, grid.wq
    if start < 0 or start + grid.reach + n > src.shape[1]:
        raise IndexError(f"window {start}…{start + grid.reach + n} outside 0…{src.shape[1]}")
    row, item = src.strides[0], src.strides[1]
    return np.lib.stride_tricks.as_strided(src[:, start:], (c, k, k, n),
                                           (row, wq * item, item, item), writeable=False)


def _sub_cols(ws, src, start, stop, sub, grid, buf):
    """For each sub-block (a, b) of [start, stop): (a, b, im2col of positions a … b − 1 in buf)
    with row (c, di, dj) = src[c, a + di·Wq + dj + t]; one strided copy each, into a
    buffer small enough to stay in cache for the BLAS calls that read it. The views
    are made once per workspace (``src`` and ``buf`` are its buffers)."""
    def plan():
        win = _windows(src, start, stop - start, grid)
        c, k = src.shape[0], grid.k
        return [(a, b, buf[:, :b - a], buf[:, :b - a].reshape(c, k, k, b - a),
                 win[..., a - start:b - start]) for a, b in _subs(start, stop, sub)]
    for a, b, col, target, window in ws.view(("cols", id(src), id(buf), start, stop, sub), plan):
        np.copyto(target, window)
        yield a, b, col


def _im2col(src, start, n, grid, buf):
    """buf[:, :n] ← im2col: row (c, di, dj), column t holds src[c, start + di·Wq + dj + t]
    (one strided copy); returns the (C·k², n) view."""
    col = buf[:, :n]
    col.reshape(src.shape[0], grid.k, grid.k, n)[...] = _windows(src, start, n, grid)
    return col


def _shifted_view(y, n, grid, c):
    """Read-only view (c, k, k, n) of y (c·k², ≥ n + reach): [o, di, dj, t] =
    y[(o, di, dj), di·Wq + dj + t]."""
    k, wq = grid.k, grid.wq
    row, item = y.strides
    return np.lib.stride_tricks.as_strided(
        y, (c, k, k, n), (k * k * row, k * row + wq * item, row + item, item), writeable=False)


def _shifted_sum(view, out):
    """out (c, n) ← Σ_{di, dj} y[(o, di, dj), di·Wq + dj + t]: the k² shifted adds of the
    matmul form of a correlation, as one reduction over ``view = _shifted_view(y, n, grid, c)``."""
    return np.sum(view, axis=(1, 2), out=out)


def _moments(a, valid, count, tmp):
    """(count, mean, M2) per row of a (C, n) over the positions where valid (n,) is 1;
    count = Σ valid."""
    if count == 0:
        return 0.0, None, None
    mean = (a @ valid) / count
    d = np.subtract(a, mean[:, None], out=tmp)
    np.square(d, out=d)
    return count, mean.astype(np.float64), (d @ valid).astype(np.float64)


def _merge_moments(parts):
    """Mean and biased variance from per-block (count, mean, M2), merged in block order
    with Chan, Golub & LeVeque's pairwise update (float64)."""
    n, mean, m2 = 0.0, None, None
    for nb, mb, m2b in parts:
        if nb == 0:
            continue
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta * delta * (n * nb / total)
        n = total
    return mean, m2 / n


def _bn_coefficients(gamma, inv_std, mean, dbeta, sum_dy_h, count):
    """dL/dh = a·dy + b·h + c per channel for y = γ·(h − μ)·inv_std + β with batch statistics.

    dβ = Σ dy, dγ = Σ dy·x̂ = (Σ dy·h − μ·dβ)·inv_std, dh = γ·inv_std·(dy − dβ/m − x̂·dγ/m).
    Returns (a, b, c, dγ), each (C,), float64.
    """
    dgamma = (sum_dy_h - mean * dbeta) * inv_std
    a = gamma * inv_std
    b = -a * inv_std * dgamma / count
    c = -a * dbeta / count - b * mean
    return a, b, c, dgamma


# --------------------------------------------------------------------------
# the primitive


def _check(x, w1, b1, g1, be1, w2, b2, g2, be2, allow_empty=False):
    if x.ndim != 4:
        raise ValueError(f"x must be (C, N, H, W); got shape {x.shape}")
    if x.shape[2] < 1 or x.shape[3] < 1 or (x.shape[1] < 1 and not allow_empty):
        raise ValueError(f"x must hold {'' if allow_empty else 'at least one frame of '}"
                         f"at least one pixel; got shape {x.shape}")
    c0 = x.shape[0]
    if w1.ndim != 4 or w2.ndim != 4 or w1.shape[1] != c0 or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"conv weights must be (C1, {c0}, k, k) and (C2, C1, k, k); "
                         f"got {w1.shape} and {w2.shape}")
    k = w1.shape[2]
    if w1.shape[3] != k or w2.shape[2:] != (k, k) or k % 2 == 0:
        raise ValueError(f"both kernels must be square, odd and of one size; got {w1.shape[2:]} "
                         f"and {w2.shape[2:]}")
    for name, v, c in (("conv1_b", b1, w1.shape[0]), ("bn1_gamma", g1, w1.shape[0]),
                       ("bn1_beta", be1, w1.shape[0]), ("conv2_b", b2, w2.shape[0]),
                       ("bn2_gamma", g2, w2.shape[0]), ("bn2_beta", be2, w2.shape[0])):
        if v.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},); got {v.shape}")


def encoder_z(x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta,
              workspace=None, eps=BN_EPS):
    """Training-mode encoder x (C₀, N, H, W) → z (N, 2·C₂), one autograd primitive.

    z holds the centres of mass (x, y) of the C₂ maps
    sigmoid(BN(conv(ReLU(BN(conv(x)))))), with batch statistics and 'same'
    padding (Sec. 5, Appendix D): the function of ``layers.encoder_train(...,
    reference=True)``, with a hand-written backward pass.

    Parameters
    ----------
    x : ndarray, shape (C₀, N, H, W)
        The batch, channel first; its dtype is the dtype of the computation
        (every argument must have it).
    conv1_w : ndarray, shape (C₁, C₀, k, k)
        First convolution (k odd).
    conv1_b : ndarray, shape (C₁,)
        Its bias.
    bn1_gamma : ndarray, shape (C₁,)
        First batch norm's scale.
    bn1_beta : ndarray, shape (C₁,)
        Its shift.
    conv2_w : ndarray, shape (C₂, C₁, k, k)
        Second convolution.
    conv2_b : ndarray, shape (C₂,)
        Its bias.
    bn2_gamma : ndarray, shape (C₂,)
        Second batch norm's scale.
    bn2_beta : ndarray, shape (C₂,)
        Its shift.
    workspace : Workspace, optional
        Buffers and threads to reuse (None: a fresh one); its ``stats`` then hold
        the batch means and biased variances of both pre-normalisation layers
        ("bn1_mean", "bn1_var", "bn2_mean", "bn2_var", (C,) each).
    eps : float, default ``BN_EPS``
        Batch norm's ε.

    Returns
    -------
    ndarray, shape (N, 2·C₂)
        The latents, in pixels.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, holds no frame or no pixel or holds NaN or ±inf, a
        weight's shape does not fit (kernels square, odd and of one size), or ``eps``
        is not a finite number > 0 (0 would make a blank batch NaN).
    TypeError
        If an array argument is not a NumPy array of the floating dtype of ``x``, or
        ``workspace`` is not a :class:`Workspace`.

    Examples
    --------
    The same numbers as the layer-by-layer reference:

    >>> import numpy as np
    >>> from rpmref.balls import layers
    >>> from rpmref.balls.grid import PARAMS, encoder_z
    >>> rng = np.random.default_rng(0)
    >>> params = layers.init_encoder_params(rng, in_channels=1, hidden_channels=4, kernel_size=3)
    >>> x = rng.random((1, 4, 8, 8))
    >>> z = encoder_z(x, *(params[name] for name in PARAMS))
    >>> reference, _ = layers.encoder_train(params, x, reference=True)
    >>> z.shape   # below: z ≲ 8 px, each route ~10² float64 roundings of ≤ 1 ulp
    (4, 6)
    >>> float(np.abs(z - reference).max()) < 1e-12
    True
    """
    ws, eps = _check_options(workspace, eps)
    if eps == 0:  # batch statistics: a constant channel (a blank batch) has variance 0
        raise ValueError("eps must be > 0 with batch statistics: a channel of variance 0 "
                         "(a blank batch) would be 0/0 = NaN")
    if isinstance(getval(x), np.ndarray) and np.issubdtype(getval(x).dtype, np.floating):
        check_finite(getval(x), "encoder_z: x")  # (other types: _check_arrays's TypeError)
    return _encoder_z(x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma,
                      bn2_beta, ws, eps)


def encoder_z_eval(x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma,
                   bn2_beta, bn1_mean, bn1_var, bn2_mean, bn2_var, workspace=None, eps=BN_EPS):
    """Evaluation-mode encoder x (C₀, N, H, W) → z (N, 2·C₂) on the padded grid.

    The function of ``layers.encoder_eval`` (batch norm with running statistics,
    Sec. 5 / Appendix D), computed by the forward pass of :func:`encoder_z`
    (its blocks and threads) without the batch statistics; no gradient.

    Parameters
    ----------
    x : ndarray, shape (C₀, N, H, W)
        The frames, channel first; its dtype is the dtype of the computation
        (every array argument must have it).
    conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta : ndarray
        The encoder's parameters, as for :func:`encoder_z`.
    bn1_mean, bn1_var : ndarray, shape (C₁,)
        Running mean and variance of the first convolution's output (bias included).
    bn2_mean, bn2_var : ndarray, shape (C₂,)
        Those of the second.
    workspace : Workspace, optional
        Buffers and threads to reuse (None: a fresh one). A backward pass of
        :func:`encoder_z` still pending on it then raises RuntimeError.
    eps : float, default ``BN_EPS``
        Batch norm's ε.

    Returns
    -------
    ndarray, shape (N, 2·C₂)
        The latents, in pixels (empty for N = 0). A map whose sigmoid underflows to
        0 on every pixel of a frame (pre-activations below about −710) has no
        centre there: NaN.

    Raises
    ------
    ValueError
        If a shape does not fit (as :func:`encoder_z`, but N = 0 is allowed; a
        running statistic of another length than its layer's channels), an array
        holds NaN or ±inf, a running variance plus ``eps`` is not positive, or
        ``eps`` is not a finite number ≥ 0.
    TypeError
        As :func:`encoder_z`, for the running statistics too.

    Examples
    --------
    The same numbers as the plain evaluation-mode composition:

    >>> import numpy as np
    >>> from rpmref.balls import layers
    >>> from rpmref.balls.grid import PARAMS, RUNNING, encoder_z_eval
    >>> rng = np.random.default_rng(0)
    >>> params = layers.init_encoder_params(rng, in_channels=1, hidden_channels=4, kernel_size=3)
    >>> x = rng.random((1, 4, 8, 8))
    >>> state = {"bn1_mean": rng.normal(size=4), "bn1_var": rng.uniform(1, 2, size=4),
    ...          "bn2_mean": rng.normal(size=3), "bn2_var": rng.uniform(1, 2, size=3)}
    >>> z = encoder_z_eval(x, *(params[name] for name in PARAMS),
    ...                    *(state[name] for name in RUNNING))
    >>> float(np.abs(z - layers.encoder_eval(params, state, x)).max()) < 1e-12
    True
    """
    args = (x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta)
    running = (bn1_mean, bn1_var, bn2_mean, bn2_var)
    _check_arrays(args + running, "encoder_z_eval", allow_empty=True)
    ws, eps = _check_options(workspace, eps)
    c1, c2 = conv1_w.shape[0], conv2_w.shape[0]
    for name, v, c in zip(RUNNING, running, (c1, c1, c2, c2)):
        if v.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},); got {v.shape}")
    for name, v in zip(ARGS + RUNNING, args + running):
        check_finite(v, f"encoder_z_eval: {name}")
    for name, v in (("bn1_var", bn1_var), ("bn2_var", bn2_var)):
        if not np.all(v + eps > 0):
            raise ValueError(f"encoder_z_eval: {name} + eps must be positive (a variance); "
                             f"{name} holds {v.min()}, eps is {eps}")
    if x.shape[1] == 0:
        return np.empty((0, 2 * c2), dtype=x.dtype)
    ws.generation += 1  # its buffers are overwritten: a pending backward pass must not read them
    fixed = (np.asarray(bn1_mean, np.float64) - conv1_b, np.asarray(bn1_var, np.float64),
             np.asarray(bn2_mean, np.float64) - conv2_b, np.asarray(bn2_var, np.float64))
    return _forward(ws, *args, eps, running=fixed)["z"].copy()


def _check_arrays(args, caller, allow_empty=False):
    """NumPy arrays of one floating dtype, that of x (TypeError naming the first that is
    not), then the shapes of the nine arrays of the encoder (``_check``)."""
    names = ARGS + RUNNING
    for name, a in zip(names, args):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{caller}: {name} must be a NumPy array; got {type(a).__name__}")
    dtype = args[0].dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{caller}: x must be floating point; got dtype {dtype}")
    for name, a in zip(names, args):
        if a.dtype != dtype:
            raise TypeError(f"{caller}: {name} must have the dtype of x ({dtype}); "
                            f"got {a.dtype}")
    _check(*args[:9], allow_empty=allow_empty)


def _check_options(workspace, eps):
    """(the workspace to use, eps as a float): a Workspace or None, a finite eps ≥ 0."""
    if workspace is not None and not isinstance(workspace, Workspace):
        raise TypeError(f"workspace must be a grid.Workspace or None; "
                        f"got {type(workspace).__name__}")
    eps = check_real(eps, "eps", 0, None)
    return (workspace if workspace is not None else Workspace()), eps


@primitive
def _encoder_z(x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta,
               ws, eps):
    args = (x, conv1_w, conv1_b, bn1_gamma, bn1_beta, conv2_w, conv2_b, bn2_gamma, bn2_beta)
    _check_arrays(args, "encoder_z")
    ws.generation += 1
    ws.saved = _forward(ws, *args, eps)
    ws.saved["generation"] = ws.generation
    return ws.saved["z"].copy()


def _forward(ws, x, w1, b1, g1, be1, w2, b2, g2, be2, eps, running=None):
    """The forward pass; ``running`` = (mean₁, var₁, mean₂, var₂) of the bias-free convolutions
    (float64) normalises with those instead of the batch statistics (evaluation mode)."""
    c0, n, h, w = x.shape
    c1, c2, k = w1.shape[0], w2.shape[0], w1.shape[2]
    kk = k * k
    grid = Grid(n, h, w, k)
    dt = x.dtype
    valid, basis, counts, floor = _constants(ws, grid, dt)
    # framed input; its junk and frame are zero from allocation and never written
    f1 = ws.array("f1", (c0, grid.length), dt, zeros=True)
    grid.image(f1[:, grid.base:grid.base + grid.m])[...] = x

    # layer 1: h1 = conv(x) without bias, moments per block
    h1 = ws.array("h1", (c1, grid.m), dt)
    w1m = np.ascontiguousarray(w1.reshape(c1, c0 * kk))
    blocks1, sub1 = grid.blocks(max(c0 * kk, c1), dt.itemsize, c0 * kk * c1)
    nb1 = blocks1[0][1]

    outs1 = ws.scratch("out1", (c1, nb1), dt)  # in cache; h1 gets it masked
    cols1 = ws.scratch("col1", (c0 * kk, sub1), dt)
    tmps1 = ws.scratch("t1", (c1, nb1), dt)

    def conv1(block, slot):
        s, e = block
        out = outs1[slot]
        for a, b, col in _sub_cols(ws, f1, s, e, sub1, grid, cols1[slot]):
            np.matmul(w1m, col, out=out[:, a - s:b - s])
        np.multiply(out[:, :e - s], valid[s:e], out=h1[:, s:e])  # junk → 0 (backward relies on it)
        if running is None:
            return _moments(h1[:, s:e], valid[s:e], counts[e] - counts[s], tmps1[slot][:, :e - s])
        return None

    moments1 = ws.map_blocks(conv1, blocks1)
    mean1, var1 = _merge_moments(moments1) if running is None else running[:2]
    inv1 = 1.0 / np.sqrt(var1 + eps)
    scale1 = (g1 * inv1).astype(dt)[:, None]
    shift1 = (be1 - mean1 * g1 * inv1).astype(dt)[:, None]

    # batch norm + ReLU, written straight into the framed input of layer 2 (junk → 0),
    # just before the block of layer 2 that reads it (so that block finds it in cache)
    f2 = ws.array("f2", (c1, grid.length), dt, zeros=True)
    base, m = grid.base, grid.m

    def bn_relu(s, e, slot):  # grid positions [s, e)
        if s < e:
            a = f2[:, base + s:base + e]
            np.multiply(h1[:, s:e], scale1, out=a)
            a += shift1
            # ReLU and junk → 0 as a product with the mask a > floor (np.maximum is ~3× slower)
            a *= np.greater(a, floor[s:e], out=masks[slot][:, :e - s])

    # layer 2: y = (C₂·k², C₁) @ f2 over each block plus its reach, then k² shifted adds.
    # Block [s, e) reads the activations of positions s − base … e + base; a thread's run
    # writes those of its own positions + base, up to the next run's start − base: the
    # 2·base positions around each run boundary are written first, here.
    h2 = ws.array("h2", (c2, grid.m), dt)
    w2r = np.ascontiguousarray(np.transpose(w2, (0, 2, 3, 1)).reshape(c2 * kk, c1))
    blocks2, sub2 = grid.blocks(c2 * kk, dt.itemsize, c1 * c2 * kk)
    nb2 = blocks2[0][1]
    reach = grid.reach
    runs2 = ws.runs(blocks2)
    masks = ws.scratch("relu", (c1, nb2 + reach), dt)
    ybufs = ws.scratch("y2", (c2 * kk, nb2 + reach), dt)
    tmps2 = ws.scratch("t2", (c2, nb2), dt)
    starts = [run[0][0] for run in runs2] + [m + 2 * base]
    for start in starts[1:-1]:
        bn_relu(max(start - base, 0), min(start + base, m), 0)  # before the threads start

    def conv2_run(run, slot):
        done = 0 if run[0][0] == 0 else run[0][0] + base
        limit = min(starts[starts.index(run[0][0]) + 1] - base, m)
        out = []
        for block in run:
            bn_relu(done, min(block[1] + base, limit), slot)
            done = max(done, min(block[1] + base, limit))
            out.append(conv2(block, slot))
        return out

    def conv2(block, slot):
        s, e = block
        nn = e - s + reach
        ybuf = ybufs[slot]
        y = ybuf[:, :nn]
        for a, b in _subs(s, e + reach, sub2):
            np.matmul(w2r, f2[:, a:b], out=y[:, a - s:b - s])
        view = ws.view(("shifted", id(ybuf), e - s), lambda: _shifted_view(ybuf, e - s, grid, c2))
        out = _shifted_sum(view, h2[:, s:e])
        if running is None:
            return _moments(out, valid[s:e], counts[e] - counts[s], tmps2[slot][:, :e - s])
        return None

    moments2 = ws.map_runs(conv2_run, runs2)
    mean2, var2 = _merge_moments(moments2) if running is None else running[2:]
    inv2 = 1.0 / np.sqrt(var2 + eps)

    # batch norm + sigmoid: s = 1/(1 + e^{−y}) (e^{−y} = inf gives 0), then centres of mass
    sig = ws.array("sig", (c2, grid.m), dt)
    np.multiply(h2, (-g2 * inv2).astype(dt)[:, None], out=sig)
    sig -= (be2 - mean2 * g2 * inv2).astype(dt)[:, None]
    with np.errstate(over="ignore"):
        np.exp(sig, out=sig)
    sig += 1
    np.reciprocal(sig, out=sig)
    sums = sig.reshape(c2 * n, grid.hq * grid.wq) @ basis  # (C₂·N, 3): mass, Σ s·x, Σ s·y
    mass = sums[:, 0].reshape(c2, n)
    cx, cy = sums[:, 1].reshape(c2, n) / mass, sums[:, 2].reshape(c2, n) / mass
    z = np.stack([cx, cy], axis=2).transpose(1, 0, 2).reshape(n, 2 * c2)

    if running is None:
        ws.stats = {"bn1_mean": (mean1 + b1).astype(dt), "bn1_var": var1.astype(dt),
                    "bn2_mean": (mean2 + b2).astype(dt), "bn2_var": var2.astype(dt)}
    return {"z": z, "grid": grid, "mass": mass, "cx": cx, "cy": cy,
            "mean1": mean1, "inv1": inv1, "mean2": mean2, "inv2": inv2,
            "blocks1": blocks1, "sub1": sub1, "blocks2": blocks2, "sub2": sub2}


def _encoder_z_vjp(argnums, ans, args, kwargs):
    ws = args[9]
    saved, generation = ws.saved, ws.generation

    def vjp(gz):
        if ws.generation != generation:
            raise RuntimeError("encoder_z: the workspace was used by another forward pass "
                               "before this backward pass")
        return _backward(ws, saved, argnums, gz, *args[:9])
    return vjp


def _backward(ws, saved, argnums, gz, x, w1, b1, g1, be1, w2, b2, g2, be2):
    grid = saved["grid"]
    c0, n = x.shape[:2]
    c1, c2, k = w1.shape[0], w2.shape[0], w1.shape[2]
    kk = k * k
    dt = x.dtype
    valid, basis, _, _ = _constants(ws, grid, dt)
    f1, h1, f2, h2, sig = (ws.array(name, shape, dt) for name, shape in (
        ("f1", (c0, grid.length)), ("h1", (c1, grid.m)), ("f2", (c1, grid.length)),
        ("h2", (c2, grid.m)), ("sig", (c2, grid.m))))
    count = grid.pixels

    # centre of mass: ∂cx/∂s = (x − cx)/mass, ∂cy/∂s = (y − cy)/mass on pixels, 0 on junk
    g = np.transpose(np.asarray(gz, dtype=dt).reshape(n, c2, 2), (1, 0, 2))  # (C₂, N, 2)
    mass, cx, cy = saved["mass"], saved["cx"], saved["cy"]
    gx, gy = g[..., 0] / mass, g[..., 1] / mass
    coef = np.stack([-(gx * cx + gy * cy), gx, gy], axis=2).reshape(c2 * n, 3)
    dpre = ws.array("dpre", (c2, grid.m), dt)
    np.matmul(coef, basis.T, out=dpre.reshape(c2 * n, grid.hq * grid.wq))
    # sigmoid: ds · s · (1 − s)
    one_minus = ws.array("one_minus", (c2, grid.m), dt)
    np.subtract(1, sig, out=one_minus)
    dpre *= sig
    dpre *= one_minus
    # batch norm 2, written into g_ext[:, reach + q] (zeros before and after, never written)
    inv2, mean2 = saved["inv2"], saved["mean2"]
    dbeta2 = dpre.sum(axis=1, dtype=np.float64)
    a2, bb2, cc2, dgamma2 = _bn_coefficients(g2, inv2, mean2, dbeta2,
                                             np.einsum("ij,ij->i", dpre, h2, dtype=np.float64),
                                             count)
    reach = grid.reach
    g_ext = ws.array("g_ext", (c2, reach + grid.length), dt, zeros=True)
    dh2 = g_ext[:, reach:reach + grid.m]
    np.multiply(h2, bb2.astype(dt)[:, None], out=dh2)
    dh2 += cc2.astype(dt)[:, None]
    dh2 *= valid
    dpre *= a2.astype(dt)[:, None]
    dh2 += dpre
    grads = {6: dh2.sum(axis=1, dtype=np.float64).astype(dt),
             7: dgamma2.astype(dt), 8: dbeta2.astype(dt)}

    # layer 2 backward: one im2col of dh2 per block gives dw2 and da1; the ReLU mask and
    # batch-norm-1 sums follow on the block while it is in cache
    blocks2, sub2 = grid.blocks(max(c2 * kk, c1), dt.itemsize, c1 * c2 * kk)
    nb2 = blocks2[0][1]
    # gcol[(o, di, dj), t] = dh2[o, q + base − (k−1−di)·Wq − (k−1−dj)] for the positions
    # q = s + t of a block: the offsets run backwards, so its weights are the flipped kernel
    w2t = np.ascontiguousarray(np.transpose(w2[:, :, ::-1, ::-1], (1, 0, 2, 3)).reshape(c1, c2 * kk))
    dy = ws.array("dy", (c1, grid.m), dt)
    base = grid.base

    tmps = ws.scratch("dw2", (c2 * kk, c1), dt)
    da1s = ws.scratch("da1", (c1, nb2), dt)  # in cache; dy gets it masked
    gbufs = ws.scratch("gcol", (c2 * kk, sub2), dt)
    masks = ws.scratch("mask", (c1, nb2), dt)

    def conv2_back(block, slot):
        s, e = block
        dw = np.zeros((c2 * kk, c1), dtype=dt)
        tmp, da1 = tmps[slot], da1s[slot]
        for a, b, gcol in _sub_cols(ws, g_ext, base + s, base + e, sub2, grid, gbufs[slot]):
            a, b = a - base, b - base
            np.matmul(gcol, f2[:, base + a:base + b].T, out=tmp)
            dw += tmp
            np.matmul(w2t, gcol, out=da1[:, a - s:b - s])
        mask = np.greater(f2[:, base + s:base + e], 0, out=masks[slot][:, :e - s])
        d = np.multiply(da1[:, :e - s], mask, out=dy[:, s:e])  # ReLU' (junk of f2 is 0: junk → 0)
        return dw, d @ valid[s:e], np.einsum("ij,ij->i", d, h1[:, s:e])

    parts = ws.map_blocks(conv2_back, blocks2)
    dw2 = parts[0][0].astype(np.float64)
    for p in parts[1:]:
        dw2 += p[0]
    grads[5] = np.transpose(dw2.reshape(c2, k, k, c1)[:, ::-1, ::-1], (0, 3, 1, 2)).astype(dt)
    # block sums in the working dtype, their sum in float64
    dbeta1 = np.sum([p[1] for p in parts], axis=0, dtype=np.float64)
    a1c, bb1, cc1, dgamma1 = _bn_coefficients(g1, saved["inv1"], saved["mean1"], dbeta1,
                                              np.sum([p[2] for p in parts], axis=0,
                                                     dtype=np.float64), count)
    grads[3], grads[4] = dgamma1.astype(dt), dbeta1.astype(dt)
    a1c, bb1, cc1 = (v.astype(dt)[:, None] for v in (a1c, bb1, cc1))

    # layer 1 backward: dh1 = a·dy + b·h1 + c·valid (dy and h1 are 0 on junk), so
    # dw1 = Σ_q (a·dy + b·h1)[:, q] col[:, q]ᵀ + c ⊗ Σ_q valid[q]·col[:, q]: per block only
    # the first term, from an im2col of x; the second is c ⊗ (window sums of x)
    blocks1, sub1 = saved["blocks1"], saved["sub1"]
    nb1 = blocks1[0][1]
    want_dx = 0 in argnums
    dh1_all = ws.array("dh1", (c1, grid.m), dt) if want_dx else None

    ts1 = ws.scratch("t1", (c1, nb1), dt)
    tmps1 = ws.scratch("dw1", (c1, c0 * kk), dt)
    cols1 = ws.scratch("col1", (c0 * kk, sub1), dt)

    def conv1_back(block, slot):
        s, e = block
        t = dh1_all[:, s:e] if want_dx else ts1[slot][:, :e - s]
        np.multiply(h1[:, s:e], bb1, out=t)
        d = dy[:, s:e]
        d *= a1c
        t += d
        dw = np.zeros((c1, c0 * kk), dtype=dt)
        tmp = tmps1[slot]
        for a, b, col in _sub_cols(ws, f1, s, e, sub1, grid, cols1[slot]):
            np.matmul(t[:, a - s:b - s], col.T, out=tmp)
            dw += tmp
        return dw, t @ valid[s:e]  # t is 0 on junk: a row sum

    parts = ws.map_blocks(conv1_back, blocks1)
    dw1 = parts[0][0].astype(np.float64)
    for p in parts[1:]:
        dw1 += p[0]
    c_term = cc1[:, 0].astype(np.float64)
    dw1 += np.outer(c_term, _window_sums(x, k))
    grads[1] = dw1.reshape(w1.shape).astype(dt)
    grads[2] = (np.sum([p[1] for p in parts], axis=0, dtype=np.float64)
                + c_term * count).astype(dt)
    if want_dx:
        dh1_all += cc1 * valid
        grads[0] = _input_grad(dh1_all, w1, grid)
    return tuple(grads[i] for i in argnums)


def _window_sums(x, k):
    """Σ_q valid[q]·col[(c, di, dj), q] = Σ_{n, i, j} x_padded[c, n, i + di, j + dj]
    (zero padding p = k // 2): (C·k²,) float64, from the frame sum of x."""
    c, _, h, w = x.shape
    p = k // 2
    total = np.zeros((c, h + 2 * p, w + 2 * p))
    total[:, p:p + h, p:p + w] = x.sum(axis=1, dtype=np.float64)
    return np.array([total[:, di:di + h, dj:dj + w].sum(axis=(1, 2))
                     for di in range(k) for dj in range(k)]).T.ravel()


def _input_grad(dh1, w1, grid):
    """dL/dx (C₀, N, H, W) from dL/dh1 (C₁, m) on the grid, by the adjoint of layer 1:
    dx[c, q] = Σ_{o, off} w1[o, c, off] · dh1[o, q − off] (the same im2col of the output
    gradient as layer 2's backward; only for tests: training never needs it)."""
    c1, c0, k, _ = w1.shape
    ext = np.zeros((c1, grid.reach + grid.length), dtype=dh1.dtype)
    ext[:, grid.reach:grid.reach + grid.m] = dh1
    gcol = _im2col(ext, grid.base, grid.m, grid, np.empty((c1 * k * k, grid.m), dh1.dtype))
    w1t = np.transpose(w1[:, :, ::-1, ::-1], (1, 0, 2, 3)).reshape(c0, c1 * k * k)
    return np.ascontiguousarray(grid.image(w1t @ gcol))


defvjp_argnums(_encoder_z, _encoder_z_vjp)
