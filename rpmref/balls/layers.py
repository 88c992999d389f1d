"""Layers of the bouncing-balls encoder (paper Sec. 5 / Appendix D).

Encoder: conv → batch norm → ReLU → conv (3 maps) → batch norm → sigmoid →
centre of mass of each map → z ∈ R⁶ = (x1, y1, x2, y2, x3, y3).

Activations are channel-first, ``(C, N, H, W)``: every per-channel reduction
(batch norm) and every convolution is then one contiguous matmul. Pixel
coordinates: x = column, y = row, pixel (i, j) has centre (j + ½, i + ½).

Each layer exists twice:
- a *fast* autograd primitive (``conv2d``, ``batchnorm_relu``,
  ``batchnorm_sigmoid_com``) with a hand-written backward pass that computes all
  requested gradients in one go (autograd's generic backward of slicing goes
  through ``np.add.at`` and is 13–100× slower);
- a *plain* composition of ``autograd.numpy`` operations (``*_reference``),
  differentiated by autograd itself. The tests check the primitives' gradients
  against these compositions and against finite differences.
Training (``encoder_train``) goes one step further: the whole encoder is one
primitive, ``grid.encoder_z``, which keeps every activation in one padded layout,
reuses its buffers from step to step and can share a step among threads; it is
tested against the same plain compositions.

Convolutions run on a zero-padded, row-flattened copy of the input in which
every kernel offset is one contiguous slice (``_padded_flat``): im2col is k²
slice copies into a cache-sized scratch block and one matmul per block; with
fewer output than input channels the cheaper form is one matmul followed by k²
shifted adds. The backward pass of such a layer builds one im2col of the output
gradient and gets both dW and dx from it. Forward passes may leave their padded
input and batch statistics in a ``workspace`` dict for their backward pass.

Batch norm in training mode normalises with the batch statistics (biased
variance); the running averages for evaluation use the unbiased variance and
momentum 0.1, as PyTorch does.
"""
import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp_argnums, primitive

from rpmref.balls import grid
from rpmref.exact.validation import check_float_dtype, check_generator, check_int, check_real

BN_EPS = 1e-5
_COL_BYTES = 1 << 21  # target bytes of one im2col chunk (2 MiB: measured best of 128 KiB … 4 MiB)


# --------------------------------------------------------------------------
# convolution: cross-correlation, 'same' zero padding, odd kernel, bias


def _require_real_ndarrays(caller, **arrays):
    """TypeError naming ``caller`` and the argument unless each value is a real ndarray."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{caller}: {name} must be an ndarray; got {type(a).__name__}")
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{caller}: {name} must be real (integer or floating point); "
                            f"got dtype {a.dtype}")


def _check_conv_args(x, w, b):
    _require_real_ndarrays("conv2d", x=x, w=w, b=b)
    if x.ndim != 4 or w.ndim != 4 or b.ndim != 1:
        raise ValueError(f"conv2d expects x (C_in, N, H, W), w (C_out, C_in, k, k), b (C_out,); "
                         f"got shapes {x.shape}, {w.shape}, {b.shape}")
    c_out, c_in, k, k2 = w.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"conv2d kernel must be square with odd size; got {k}×{k2}")
    if x.shape[0] != c_in or b.shape[0] != c_out:
        raise ValueError(f"conv2d channel mismatch: x has {x.shape[0]} channels, w expects "
                         f"{c_in}; w has {c_out} outputs, b has {b.shape[0]}")
    if 0 in x.shape[1:]:
        raise ValueError(f"conv2d: x must hold at least one image of at least one pixel; "
                         f"got shape {x.shape}")


def _padded_flat(x, k):
    """Zero-pad x (C, N, H, W) and flatten it so every kernel offset is one contiguous slice.

    Each image gets p = k//2 zero rows below it and each row p zero columns to its
    right, i.e. a (Hq, Wq) = (H + p, W + p) grid: the zeros right of row r also
    serve as the zeros left of row r + 1, and the rows below image n as those
    above image n + 1 (p more zero rows and columns lead the buffer for n = 0).
    Returns (flat, Wq, M): flat (C, M + (k−1)(Wq+1)) with M = N·Hq·Wq, image
    pixel (n, i, j) at flat[:, base + (n·Hq + i)·Wq + j], base = p·Wq + p, so
    output position q = (n·Hq + i)·Wq + j reads kernel offset (di, dj) at
    q + di·Wq + dj.
    """
    c, n, h, w = x.shape
    p = k // 2
    hq, wq = h + p, w + p
    m = n * hq * wq
    base = p * wq + p
    flat = np.zeros((c, m + (k - 1) * (wq + 1)), dtype=x.dtype)
    flat[:, base:base + m].reshape(c, n, hq, wq)[:, :, :h, :w] = x
    return flat, wq, m


def _offsets(k, wp):
    """Flat offsets di·Wq + dj of the k×k kernel positions, row-major (wp = Wq)."""
    return [di * wp + dj for di in range(k) for dj in range(k)]


def _chunk_len(rows, itemsize, m):
    """Columns per chunk so one (rows, chunk) scratch block stays near _COL_BYTES."""
    return int(min(m, max(512, _COL_BYTES // (rows * itemsize))))


def _im2col_matmul(left, flat, k, wp, m, out):
    """out (R, M) = left (R, C·k·k) @ im2col(flat), built chunk by chunk.

    Output position q (flattened over the padded (N, Hq, Wq) grid; positions in
    the padding are junk and dropped later) reads input q + di·Wq + dj for
    kernel offset (di, dj): each offset is one contiguous copy per channel, into
    a scratch buffer reused across chunks so the working set stays in cache.
    """
    c = flat.shape[0]
    kk = k * k
    chunk = _chunk_len(c * kk, flat.itemsize, m)
    scratch = np.empty(c * kk * chunk, dtype=flat.dtype)
    tmp = np.empty(left.shape[0] * chunk, dtype=out.dtype)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        n = stop - start
        col = scratch[:c * kk * n].reshape(c, kk, n)
        for o, off in enumerate(_offsets(k, wp)):
            col[:, o, :] = flat[:, start + off:stop + off]
        res = tmp[:left.shape[0] * n].reshape(left.shape[0], n)
        np.matmul(left, col.reshape(c * kk, n), out=res)  # (R, C·k·k) @ (C·k·k, n)
        out[:, start:stop] = res


def _matmul_shift_sum(w_rows, flat, k, wp, m, out):
    """out[o, q] = Σ_{(di,dj)} (w_rows @ flat)[(o, di, dj), q + di·Wq + dj], chunk by chunk.

    The form of the same correlation that suits few output channels: one matmul
    (C_out·k·k, C_in) @ (C_in, chunk + reach), then k·k shifted adds.
    """
    kk = k * k
    c_out = w_rows.shape[0] // kk
    offs = _offsets(k, wp)
    reach = offs[-1]
    chunk = _chunk_len(w_rows.shape[0], flat.itemsize, m)
    ybuf = np.empty(w_rows.shape[0] * (chunk + reach), dtype=out.dtype)
    acc = np.empty(c_out * chunk, dtype=out.dtype)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        n = stop - start
        y = ybuf[:w_rows.shape[0] * (n + reach)].reshape(w_rows.shape[0], n + reach)
        np.matmul(w_rows, flat[:, start:stop + reach], out=y)
        y = y.reshape(c_out, kk, n + reach)
        a = acc[:c_out * n].reshape(c_out, n)
        a[...] = y[:, 0, :n]
        for o in range(1, kk):
            a += y[:, o, offs[o]:offs[o] + n]
        out[:, start:stop] = a


def _conv_same(x, w, b, padded=None):
    """Forward pass of conv2d on plain arrays; x (C_in, N, H, W) → (C_out, N, H, W).

    ``padded``: _padded_flat(x, k) if already computed.
    """
    c_out, c_in, k, _ = w.shape
    _, n, h, wd = x.shape
    flat, wp, m = padded if padded is not None else _padded_flat(x, k)
    out = np.empty((c_out, m), dtype=np.result_type(x, w))
    if c_in <= c_out:  # im2col of the thinner side
        left = np.ascontiguousarray(w.reshape(c_out, c_in * k * k))
        _im2col_matmul(left, flat, k, wp, m, out)
    else:
        w_rows = np.ascontiguousarray(np.transpose(w, (0, 2, 3, 1)).reshape(c_out * k * k, c_in))
        _matmul_shift_sum(w_rows, flat, k, wp, m, out)
    out = out.reshape(c_out, n, h + k // 2, wp)[:, :, :h, :wd]  # drop the junk positions
    return out + b.reshape(c_out, 1, 1, 1)


@primitive
def conv2d(x, w, b, workspace=None):
    """2-D cross-correlation with 'same' zero padding and a bias (a fast autograd primitive).

    out[o, n, i, j] = b[o] + Σ_{c, di, dj} w[o, c, di, dj] · x[c, n, i + di − p, j + dj − p],
    p = k // 2, x outside the image = 0.

    Parameters
    ----------
    x : ndarray, shape (C_in, N, H, W)
        Input.
    w : ndarray, shape (C_out, C_in, k, k)
        Kernel, k odd.
    b : ndarray, shape (C_out,)
        Bias.
    workspace : dict, optional
        A fresh dict in which the forward pass leaves its zero-padded copy of x
        for the backward pass.

    Returns
    -------
    ndarray, shape (C_out, N, H, W)
        The output.

    Raises
    ------
    TypeError
        If ``x``, ``w`` or ``b`` is not a real ndarray (lists, bool, complex).
    ValueError
        For other shapes, an even or non-square kernel, mismatched channels, or no
        image (N, H or W = 0).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import conv2d, conv2d_reference
    >>> w, b = rng.standard_normal((2, 1, 3, 3)), np.zeros(2)
    >>> out = conv2d(x, w, b)
    >>> out.shape, float(np.abs(out - conv2d_reference(x, w, b)).max()) < 1e-13  # float64 sums of ~10² O(1) terms: ≤ ~10² ulps apart
    ((2, 4, 6, 6), True)
    """
    _check_conv_args(x, w, b)
    padded = _padded_flat(x, w.shape[2])
    if workspace is not None:
        workspace["padded"] = padded
    return _conv_same(x, w, b, padded)


def _conv2d_vjp(argnums, ans, args, kwargs):
    x, w, b = args[:3]
    workspace = args[3] if len(args) > 3 else kwargs.get("workspace")

    def vjp(g):
        padded = (workspace or {}).get("padded") or _padded_flat(x, w.shape[2])
        grads = {}
        if 1 in argnums:
            grads[1], grads[0] = _conv_weight_grad(x, g, w, padded, want_dx=0 in argnums)
        if 0 in argnums and grads.get(0) is None:
            # the adjoint of a 'same' correlation is the 'same' correlation of g
            # with the kernel flipped in space and transposed in channels
            w_adj = np.ascontiguousarray(np.transpose(w[:, :, ::-1, ::-1], (1, 0, 2, 3)))
            grads[0] = _conv_same(g, w_adj, np.zeros(w.shape[1], dtype=w.dtype))
        if 2 in argnums:
            grads[2] = np.sum(g, axis=(1, 2, 3))
        return tuple(grads[i] for i in argnums)
    return vjp


def _conv_weight_grad(x, g, w, padded, want_dx=False):
    """dL/dw[o, c, di, dj] = Σ_{n,i,j} g[o, n, i, j] · x_padded[c, n, i + di, j + dj].

    Returns (dw, dx): when there are fewer output than input channels and
    ``want_dx``, dx (the input gradient) comes out of the same im2col of g;
    otherwise dx is None.
    """
    c_out, c_in, k, _ = w.shape
    kk = k * k
    _, n, h, wd = x.shape
    flat, wp, m = padded
    dtype = np.result_type(x, g)
    offs = _offsets(k, wp)
    reach = offs[-1]
    if c_in <= c_out:
        # im2col of x: dw (C_out, C_in·k·k) = Σ_chunks g_wide[:, chunk] @ col(x)ᵀ
        g_wide = np.zeros((c_out, n, h + k // 2, wp), dtype=g.dtype)  # zero at junk positions
        g_wide[:, :, :h, :wd] = g
        g_wide = g_wide.reshape(c_out, m)
        chunk = _chunk_len(c_in * kk, flat.itemsize, m)
        scratch = np.empty(c_in * kk * chunk, dtype=flat.dtype)
        dw = np.zeros((c_out, c_in * kk), dtype=dtype)
        for start in range(0, m, chunk):
            stop = min(start + chunk, m)
            col = scratch[:c_in * kk * (stop - start)].reshape(c_in, kk, stop - start)
            for o, off in enumerate(offs):
                col[:, o, :] = flat[:, start + off:stop + off]
            dw += np.matmul(g_wide[:, start:stop], col.reshape(c_in * kk, stop - start).T)
        return dw.reshape(w.shape), None
    # im2col of g (fewer channels): gcol[(o, off), p] = g_wide[o, p − off] over every
    # position p of the padded input, so  dw[o, off, c] = Σ_p gcol[(o, off), p] · flat[c, p];
    # and since the flipped offset is reach − off and the image starts at base = reach/2,
    # dx_wide[c, q] = Σ_{o, off} w[o, c, off] · gcol[(o, off), q + base]  (one more matmul).
    length = flat.shape[1]
    base = reach // 2
    g_ext = np.zeros((c_out, reach + length), dtype=g.dtype)  # g_ext[o, reach + q] = g_wide[o, q]
    g_ext[:, reach:reach + m].reshape(c_out, n, h + k // 2, wp)[:, :, :h, :wd] = g
    chunk = _chunk_len(c_out * kk, flat.itemsize, length)
    scratch = np.empty(c_out * kk * chunk, dtype=g.dtype)
    dw = np.zeros((c_out * kk, c_in), dtype=dtype)
    if want_dx:
        w_t = np.ascontiguousarray(np.transpose(w, (1, 0, 2, 3)).reshape(c_in, c_out * kk))
        dx_wide = np.empty((c_in, m), dtype=dtype)
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        gcol = scratch[:c_out * kk * (stop - start)].reshape(c_out, kk, stop - start)
        for o, off in enumerate(offs):
            gcol[:, o, :] = g_ext[:, reach + start - off:reach + stop - off]
        gcol = gcol.reshape(c_out * kk, stop - start)  # (C_out·k·k, chunk)
        dw += np.matmul(gcol, flat[:, start:stop].T)
        lo, hi = max(start, base), min(stop, base + m)  # the part that lands inside the image grid
        if want_dx and lo < hi:
            dx_wide[:, lo - base:hi - base] = np.matmul(w_t, gcol[:, lo - start:hi - start])
    dw = np.transpose(dw.reshape(c_out, k, k, c_in), (0, 3, 1, 2))
    if not want_dx:
        return dw, None
    return dw, np.ascontiguousarray(dx_wide.reshape(c_in, n, h + k // 2, wp)[:, :, :h, :wd])




defvjp_argnums(conv2d, _conv2d_vjp)


def conv2d_reference(x, w, b):
    """:func:`conv2d` as a plain autograd composition: a sum of shifted slices (slow, for tests).

    Parameters
    ----------
    x : ndarray, shape (C_in, N, H, W)
        Input.
    w : ndarray, shape (C_out, C_in, k, k)
        Kernel, k odd.
    b : ndarray, shape (C_out,)
        Bias.

    Returns
    -------
    ndarray, shape (C_out, N, H, W)
        The output.

    Examples
    --------
    A 1 × 1 kernel scales the input:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import conv2d_reference
    >>> out = conv2d_reference(x, 2.0 * np.ones((1, 1, 1, 1)), np.array([1.0]))
    >>> bool(np.array_equal(out, 2.0 * x + 1.0))
    True
    """
    c_out, c_in, k, _ = w.shape
    _, n, h, wd = x.shape
    p = k // 2
    zr = anp.zeros((c_in, n, p, wd), dtype=x.dtype)
    xp = anp.concatenate([zr, x, zr], axis=2)
    zc = anp.zeros((c_in, n, h + 2 * p, p), dtype=x.dtype)
    xp = anp.concatenate([zc, xp, zc], axis=3)  # (C_in, N, H + 2p, W + 2p)
    out = anp.reshape(b, (c_out, 1, 1, 1))
    for di in range(k):
        for dj in range(k):
            patch = xp[:, :, di:di + h, dj:dj + wd]  # (C_in, N, H, W)
            out = out + anp.einsum("oc,cnhw->onhw", w[:, :, di, dj], patch)
    return out


# --------------------------------------------------------------------------
# batch normalisation (training mode: batch statistics over N, H, W)


def batch_stats(h):
    """Per-channel mean and biased variance of h over (N, H, W).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Activations.

    Returns
    -------
    mean : ndarray, shape (C,)
    var : ndarray, shape (C,)
        Biased (divided by N·H·W).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import batch_stats
    >>> mean, var = batch_stats(x)
    >>> bool(np.allclose(mean, x.mean(axis=(1, 2, 3)), rtol=1e-14))  # 144 terms, ≤ ~10² ulps
    True
    >>> bool(np.allclose(var, x.var(axis=(1, 2, 3)), rtol=1e-13))
    True
    """
    c = h.shape[0]
    flat = h.reshape(c, -1)
    mean = flat.mean(axis=1)
    dev = flat - mean[:, None]
    return mean, np.einsum("ij,ij->i", dev, dev) / flat.shape[1]


def _per_channel(v):
    return v.reshape(-1, 1, 1, 1)


def _check_bn_args(h, gamma, beta, caller):
    """h a real (C, N, H, W) ndarray with N·H·W ≥ 1, γ and β of shape (C,): per-channel
    statistics need all four axes and a (C,) scale and shift; NumPy broadcasting would
    otherwise turn a (C, H, W) h or a (1,) γ into an output of another shape, or an empty
    batch into NaN statistics."""
    _require_real_ndarrays(caller, h=h, gamma=gamma, beta=beta)
    if h.ndim != 4 or 0 in h.shape:
        raise ValueError(f"{caller}: h must be (C, N, H, W) with at least one channel, image "
                         f"and pixel; got shape {h.shape}")
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a.shape != (h.shape[0],):
            raise ValueError(f"{caller}: {name} must have shape (C,) = ({h.shape[0]},) for h "
                             f"{h.shape}; got {a.shape}")


def _check_eps(eps):
    """ε > 0 and finite: ε = 0 divides a constant channel by 0 (NaN); True is not 1."""
    return check_real(eps, "eps", minimum=0, inclusive=(False, True))


def _bn_affine(h, gamma, beta, eps, workspace=None):
    """γ·x̂ + β = scale·h + shift per channel; returns (scale, shift, μ, 1/√(σ² + ε)), each (C,).

    ``workspace``: optional dict; the batch statistics are stored in it under
    "mean" and "var" (or read from it when already there).
    """
    _check_eps(eps)
    if workspace is not None and "mean" in workspace:
        mean, var = workspace["mean"], workspace["var"]
    else:
        mean, var = batch_stats(h)
        if workspace is not None:
            workspace["mean"], workspace["var"] = mean, var
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = gamma * inv_std
    return scale, beta - mean * scale, mean, inv_std


def _bn_backward(dy, h, gamma, mean, inv_std):
    """Gradients of y = γ·x̂ + β (batch statistics) w.r.t. (h, γ, β) given dL/dy; dy is overwritten.

    dβ = Σ dy, dγ = Σ dy·x̂ and dh = γ/σ · (dy − dβ/m − x̂·dγ/m) (sums and m over N, H, W),
    evaluated as a·dy + b·h + c per channel so that x̂ is never stored.
    """
    c = dy.shape[0]
    m = dy[0].size
    dyf = dy.reshape(c, -1)
    dbeta = dyf.sum(axis=1)
    dgamma = (np.einsum("ij,ij->i", dyf, h.reshape(c, -1)) - mean * dbeta) * inv_std
    a = gamma * inv_std
    b = -a * inv_std * dgamma / m
    shift = -a * dbeta / m - b * mean
    dh = np.multiply(dy, _per_channel(a), out=dy)
    dh += _per_channel(b) * h
    dh += _per_channel(shift)
    return dh, dgamma.astype(gamma.dtype), dbeta.astype(gamma.dtype)


def _pick(argnums, grads):
    return tuple(grads[i] for i in argnums)


@primitive
def batchnorm_relu(h, gamma, beta, eps=BN_EPS, workspace=None):
    """relu(γ · (h − μ)/√(σ² + ε) + β) with the batch mean μ and biased variance σ² (a fast autograd primitive).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Activations.
    gamma : ndarray, shape (C,)
        Scale γ.
    beta : ndarray, shape (C,)
        Shift β.
    eps : float, default ``BN_EPS``
        ε.
    workspace : dict, optional
        A fresh dict that receives the batch statistics ("mean", "var"), which the
        backward pass then reuses.

    Returns
    -------
    ndarray, shape (C, N, H, W)
        The normalised, rectified activations.

    Raises
    ------
    ValueError
        If ``eps`` is not positive and finite (0 makes a constant channel NaN), ``h``
        is not (C, N, H, W) with N, H, W ≥ 1, or ``gamma`` or ``beta`` is not (C,).
    TypeError
        If ``eps`` is not a real number (bool included), or ``h``, ``gamma`` or
        ``beta`` is not a real ndarray.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import batchnorm_relu, batchnorm_relu_reference
    >>> out = batchnorm_relu(x, np.ones(1), np.zeros(1))
    >>> float(np.abs(out - batchnorm_relu_reference(x, np.ones(1), np.zeros(1))).max()) < 1e-13  # float64 sums of ~10² O(1) terms: ≤ ~10² ulps apart
    True
    """
    _check_bn_args(h, gamma, beta, "batchnorm_relu")
    scale, shift, _, _ = _bn_affine(h, gamma, beta, eps, workspace)
    y = np.multiply(h, _per_channel(scale))
    y += _per_channel(shift)
    return np.maximum(y, 0, out=y)


def _bn_options(args, kwargs):
    eps = args[3] if len(args) > 3 else kwargs.get("eps", BN_EPS)
    return eps, (args[4] if len(args) > 4 else kwargs.get("workspace"))


def _batchnorm_relu_vjp(argnums, ans, args, kwargs):
    h, gamma, beta = args[:3]
    eps, workspace = _bn_options(args, kwargs)

    def vjp(g):
        _, _, mean, inv_std = _bn_affine(h, gamma, beta, eps, workspace)
        dy = np.multiply(g, ans > 0)  # (np.where is ~6× slower here)
        return _pick(argnums, _bn_backward(dy, h, gamma, mean, inv_std))
    return vjp


defvjp_argnums(batchnorm_relu, _batchnorm_relu_vjp)


def batchnorm_reference(h, gamma, beta, eps=BN_EPS):
    """γ · (h − μ)/√(σ² + ε) + β as a plain autograd composition (for tests).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Activations.
    gamma : ndarray, shape (C,)
        Scale γ.
    beta : ndarray, shape (C,)
        Shift β.
    eps : float, default ``BN_EPS``
        ε.

    Returns
    -------
    ndarray, shape (C, N, H, W)
        Per channel: mean β, variance γ² σ²/(σ² + ε).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import BN_EPS, batchnorm_reference
    >>> out = batchnorm_reference(x, np.ones(1), np.zeros(1))
    >>> abs(float(out.mean())) < 1e-14, bool(np.isclose(out.var(), x.var() / (x.var() + BN_EPS), rtol=1e-12))
    (True, True)
    """
    c = h.shape[0]
    mean = anp.mean(h, axis=(1, 2, 3), keepdims=True)
    var = anp.mean((h - mean) ** 2, axis=(1, 2, 3), keepdims=True)
    return (anp.reshape(gamma, (c, 1, 1, 1)) * (h - mean) / anp.sqrt(var + eps)
            + anp.reshape(beta, (c, 1, 1, 1)))


def batchnorm_relu_reference(h, gamma, beta, eps=BN_EPS):
    """:func:`batchnorm_relu` as a plain autograd composition (for tests).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Activations.
    gamma : ndarray, shape (C,)
        Scale γ.
    beta : ndarray, shape (C,)
        Shift β.
    eps : float, default ``BN_EPS``
        ε.

    Returns
    -------
    ndarray, shape (C, N, H, W)
        relu of the batch-normalised activations.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import batchnorm_reference, batchnorm_relu_reference
    >>> out = batchnorm_relu_reference(x, np.ones(1), np.zeros(1))
    >>> bool(np.array_equal(out, np.maximum(batchnorm_reference(x, np.ones(1), np.zeros(1)), 0)))
    True
    """
    return anp.maximum(batchnorm_reference(h, gamma, beta, eps), 0.0)


# --------------------------------------------------------------------------
# sigmoid and centre of mass


def pixel_centres(h, w, dtype=float):
    """x (column) and y (row) pixel-centre coordinates: j + ½ and i + ½.

    Parameters
    ----------
    h : int
        Height H.
    w : int
        Width W.
    dtype : dtype, default float
        Their dtype.

    Returns
    -------
    x : ndarray, shape (W,)
    y : ndarray, shape (H,)

    Raises
    ------
    TypeError
        If ``h`` or ``w`` is not an integer (bool and 2.5 included).
    ValueError
        If one is below 1.

    Examples
    --------
    >>> from rpmref.balls.layers import pixel_centres
    >>> pixel_centres(2, 3)
    (array([0.5, 1.5, 2.5]), array([0.5, 1.5]))
    """
    h, w = check_int(h, "h", minimum=1), check_int(w, "w", minimum=1)
    return np.arange(w, dtype=dtype) + 0.5, np.arange(h, dtype=dtype) + 0.5


def centre_of_mass(s):
    """Centre of mass of each non-negative map s (C, N, H, W) → z (N, 2C) = (x_c, y_c, …).

    x_c = Σ_ij s[c,n,i,j] (j + ½) / Σ_ij s[c,n,i,j], y_c likewise with (i + ½).
    Plain autograd composition; the fast path is ``batchnorm_sigmoid_com``.

    Parameters
    ----------
    s : ndarray, shape (C, N, H, W)
        Non-negative maps, none all zero.

    Returns
    -------
    ndarray, shape (N, 2C)
        (x, y) of each map, in pixels.

    Examples
    --------
    All mass on pixel (row 2, column 1):

    >>> import numpy as np
    >>> from rpmref.balls.layers import centre_of_mass
    >>> s = np.zeros((1, 1, 3, 3))
    >>> s[0, 0, 2, 1] = 1.0
    >>> centre_of_mass(s)
    array([[1.5, 2.5]])
    """
    c, n, h, w = s.shape
    xs, ys = pixel_centres(h, w, s.dtype)
    mass = anp.sum(s, axis=(2, 3))  # (C, N)
    cx = anp.sum(anp.sum(s, axis=2) * xs, axis=2) / mass  # (C, N)
    cy = anp.sum(anp.sum(s, axis=3) * ys, axis=2) / mass
    z = anp.stack([cx, cy], axis=2)  # (C, N, 2)
    return anp.reshape(anp.transpose(z, (1, 0, 2)), (n, 2 * c))


def sigmoid(a):
    """Logistic function 1/(1 + e^{−a}) with full relative precision and no overflow.

    With e = e^{−|a|} ∈ (0, 1]: σ(a) = 1/(1 + e) for a ≥ 0 and e/(1 + e) for a < 0;
    both branches stay finite, so the gradient has no NaN either.

    Parameters
    ----------
    a : array_like
        Any reals.

    Returns
    -------
    ndarray
        σ(a) in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.layers import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    >>> bool(np.isclose(sigmoid(np.array(-50.0)), np.exp(-50.0), rtol=1e-15))   # σ(−50) = e^−50 (1 − e^−50 + ...), to full precision
    True
    """
    e = anp.exp(-anp.where(a >= 0, a, -a))  # not anp.abs: its gradient at 0 is 0
    return anp.where(a >= 0, 1.0, e) / (1.0 + e)


@primitive
def batchnorm_sigmoid_com(h, gamma, beta, eps=BN_EPS, workspace=None):
    """centre_of_mass(sigmoid(batchnorm(h))) in one pass (a fast autograd primitive).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Pre-normalisation activations.
    gamma : ndarray, shape (C,)
        Scale γ.
    beta : ndarray, shape (C,)
        Shift β.
    eps : float, default ``BN_EPS``
        ε.
    workspace : dict, optional
        As in :func:`batchnorm_relu`.

    Returns
    -------
    ndarray, shape (N, 2C)
        The centres of mass, in pixels.

    Raises
    ------
    ValueError
        If ``eps`` is not positive and finite (0 makes a constant channel NaN), ``h``
        is not (C, N, H, W) with N, H, W ≥ 1, or ``gamma`` or ``beta`` is not (C,).
    TypeError
        If ``eps`` is not a real number (bool included), or ``h``, ``gamma`` or
        ``beta`` is not a real ndarray.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import batchnorm_sigmoid_com, batchnorm_sigmoid_com_reference
    >>> z = batchnorm_sigmoid_com(x, np.ones(1), np.zeros(1))
    >>> float(np.abs(z - batchnorm_sigmoid_com_reference(x, np.ones(1), np.zeros(1))).max()) < 1e-13  # float64 sums of ~10² O(1) terms: ≤ ~10² ulps apart
    True
    """
    _check_bn_args(h, gamma, beta, "batchnorm_sigmoid_com")
    return _com_plain(_bn_sigmoid_plain(h, gamma, beta, eps, workspace))[0]


def _bn_sigmoid_plain(h, gamma, beta, eps, workspace=None):
    """s = σ(γ·x̂ + β) on plain arrays, in place on one buffer: 1/(1 + e^{−y}) (e^{−y} = inf → 0)."""
    scale, shift, _, _ = _bn_affine(h, gamma, beta, eps, workspace)
    y = np.multiply(h, _per_channel(-scale))
    y -= _per_channel(shift)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


def _com_plain(s):
    """Centre of mass on plain arrays; returns (z (N, 2C), cx, cy, mass), the last three (C, N)."""
    c, n, h, w = s.shape
    xs, ys = pixel_centres(h, w, s.dtype)
    rows, cols = s.sum(axis=3), s.sum(axis=2)  # (C, N, H), (C, N, W)
    mass = rows.sum(axis=2)
    cx, cy = cols @ xs / mass, rows @ ys / mass
    z = np.stack([cx, cy], axis=2).transpose(1, 0, 2).reshape(n, 2 * c)
    return z, cx, cy, mass


def _batchnorm_sigmoid_com_vjp(argnums, ans, args, kwargs):
    h, gamma, beta = args[:3]
    eps, workspace = _bn_options(args, kwargs)

    def vjp(g):
        c, n, hh, ww = h.shape
        s = _bn_sigmoid_plain(h, gamma, beta, eps, workspace)
        _, cx, cy, mass = _com_plain(s)
        g = np.transpose(g.reshape(n, c, 2), (1, 0, 2))  # (N, 2C) -> (C, N, 2)
        gx, gy = g[..., 0] / mass, g[..., 1] / mass  # (C, N)
        xs, ys = pixel_centres(hh, ww, s.dtype)
        # ∂cx/∂s[i,j] = (x_j − cx)/mass, ∂cy/∂s[i,j] = (y_i − cy)/mass
        ds = np.add((gx[:, :, None] * xs)[:, :, None, :], (gy[:, :, None] * ys)[:, :, :, None])
        ds -= (gx * cx + gy * cy)[:, :, None, None]
        ds *= s
        s -= 1
        ds *= s
        np.negative(ds, out=ds)  # ds · s · (1 − s)
        return _pick(argnums, _bn_backward(ds, h, gamma, *_bn_affine(h, gamma, beta, eps, workspace)[2:]))
    return vjp


defvjp_argnums(batchnorm_sigmoid_com, _batchnorm_sigmoid_com_vjp)


def batchnorm_sigmoid_com_reference(h, gamma, beta, eps=BN_EPS):
    """:func:`batchnorm_sigmoid_com` as a plain autograd composition (for tests).

    Parameters
    ----------
    h : ndarray, shape (C, N, H, W)
        Pre-normalisation activations.
    gamma : ndarray, shape (C,)
        Scale γ.
    beta : ndarray, shape (C,)
        Shift β.
    eps : float, default ``BN_EPS``
        ε.

    Returns
    -------
    ndarray, shape (N, 2C)
        The centres of mass, in pixels.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import batchnorm_reference, batchnorm_sigmoid_com_reference, centre_of_mass, sigmoid
    >>> z = batchnorm_sigmoid_com_reference(x, np.ones(1), np.zeros(1))
    >>> bool(np.array_equal(z, centre_of_mass(sigmoid(batchnorm_reference(x, np.ones(1), np.zeros(1))))))
    True
    """
    return centre_of_mass(sigmoid(batchnorm_reference(h, gamma, beta, eps)))


# --------------------------------------------------------------------------
# the encoder


def init_encoder_params(rng, in_channels=3, hidden_channels=16, n_maps=3, kernel_size=5,
                        dtype=np.float64):
    """He-uniform conv weights (PyTorch's default bound 1/√fan_in), zero biases, γ = 1, β = 0.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator of the weights.
    in_channels : int, default 3
        C_in.
    hidden_channels : int, default 16
        C_h.
    n_maps : int, default 3
        Output maps.
    kernel_size : int, default 5
        k (odd).
    dtype : dtype, default float64
        The parameters' dtype.

    Returns
    -------
    dict of ndarray
        conv1_w (C_h, C_in, k, k), conv1_b (C_h,), bn1_gamma, bn1_beta (C_h,),
        conv2_w (n_maps, C_h, k, k), conv2_b, bn2_gamma, bn2_beta (n_maps,).

    Raises
    ------
    TypeError
        If ``rng`` is not a Generator, a count is not an integer (bool included) or
        ``dtype`` is not a dtype.
    ValueError
        If a count is below 1, ``kernel_size`` is even or ``dtype`` is not floating point.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.layers import init_encoder_params
    >>> params = init_encoder_params(np.random.default_rng(0), in_channels=1, hidden_channels=4,
    ...                              kernel_size=3)
    >>> params["conv1_w"].shape, params["conv2_w"].shape
    ((4, 1, 3, 3), (3, 4, 3, 3))
    >>> bool(np.abs(params["conv1_w"]).max() <= 1 / 3)   # bound 1/√(1·3·3)
    True
    """
    check_generator(rng, "rng")
    in_channels, hidden_channels, n_maps, k = (
        check_int(v, name, minimum=1) for v, name in
        ((in_channels, "in_channels"), (hidden_channels, "hidden_channels"), (n_maps, "n_maps"),
         (kernel_size, "kernel_size")))
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd ('same' padding); got {k}")
    dtype = check_float_dtype(dtype)   # an integer one would round weights and statistics

    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(dtype)
    return {
        "conv1_w": uniform((hidden_channels, in_channels, k, k), in_channels * k * k),
        "conv1_b": np.zeros(hidden_channels, dtype),
        "bn1_gamma": np.ones(hidden_channels, dtype),
        "bn1_beta": np.zeros(hidden_channels, dtype),
        "conv2_w": uniform((n_maps, hidden_channels, k, k), hidden_channels * k * k),
        "conv2_b": np.zeros(n_maps, dtype),
        "bn2_gamma": np.ones(n_maps, dtype),
        "bn2_beta": np.zeros(n_maps, dtype),
    }


def orient_maps(params, x, eps=BN_EPS):
    """Flip every output map that starts out dark where the input is bright.

    A map's centre of mass is a position estimate only if the map is bright
    where the object is. A random second-layer filter is as likely to make a
    "hole" map (dark on the balls, bright on the background), and training
    does not reliably undo that: such a map ends up following −(sum of all
    balls), a mix (docs/tutorials/balls.md, "Why the maps are oriented"). So after the random
    draw, each map's pre-normalisation activation h2[k] is compared with the
    input brightness (the sum over input channels) on the probe frames x, with
    training-mode batch norm in the first layer; where their covariance is
    negative, conv2_w[k] and conv2_b[k] change sign. Batch norm and the sigmoid
    then turn the map over (at γ = 1, β = 0: sigmoid(−a) = 1 − sigmoid(a)). The
    weight distribution is symmetric, so the result is the same random
    initialisation conditioned on every map being bright on bright input. It
    uses no labels.

    Parameters
    ----------
    params : dict of ndarray
        Encoder parameters (:func:`init_encoder_params`).
    x : ndarray, shape (C, N, H, W)
        Probe frames.
    eps : float, default ``BN_EPS``
        Batch norm's ε.

    Returns
    -------
    params : dict of ndarray
        The new parameters (a new dict).
    flipped : ndarray of bool, shape (n_maps,)
        Which maps changed sign.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import init_encoder_params, orient_maps
    >>> params = init_encoder_params(rng, in_channels=1, hidden_channels=4, kernel_size=3)
    >>> oriented, flipped = orient_maps(params, x)
    >>> bool(np.array_equal(oriented["conv2_w"][flipped], -params["conv2_w"][flipped]))
    True
    """
    x64 = np.asarray(x, dtype=np.float64)
    p64 = {k: np.asarray(params[k], dtype=np.float64)
           for k in ("conv1_w", "conv1_b", "bn1_gamma", "bn1_beta", "conv2_w", "conv2_b")}
    a1 = batchnorm_relu(_conv_same(x64, p64["conv1_w"], p64["conv1_b"]),
                        p64["bn1_gamma"], p64["bn1_beta"], eps)
    h2 = _conv_same(a1, p64["conv2_w"], p64["conv2_b"])  # (n_maps, N, H, W)
    brightness = x64.sum(axis=0)  # (N, H, W)
    centred = brightness - brightness.mean()
    covariance = np.einsum("knhw,nhw->k", h2 - h2.mean(axis=(1, 2, 3), keepdims=True),
                           centred) / centred.size
    flipped = covariance < 0
    sign = np.where(flipped, -1.0, 1.0)
    new = dict(params)
    new["conv2_w"] = (params["conv2_w"] * sign.reshape(-1, 1, 1, 1)).astype(params["conv2_w"].dtype)
    new["conv2_b"] = (params["conv2_b"] * sign).astype(params["conv2_b"].dtype)
    return new, flipped


def init_bn_state(hidden_channels=16, n_maps=3, dtype=np.float64):
    """Running statistics for evaluation: means 0, variances 1 (as PyTorch initialises them).

    Parameters
    ----------
    hidden_channels : int, default 16
        Channels of the first layer.
    n_maps : int, default 3
        Channels of the second layer.
    dtype : dtype, default float64
        Their dtype.

    Returns
    -------
    dict of ndarray
        bn1_mean, bn1_var (hidden_channels,), bn2_mean, bn2_var (n_maps,).

    Raises
    ------
    TypeError
        If a count is not an integer (bool and 2.0 included) or ``dtype`` is not a dtype.
    ValueError
        If a count is below 1 or ``dtype`` is not floating point.

    Examples
    --------
    >>> from rpmref.balls.layers import init_bn_state
    >>> {name: a.tolist() for name, a in init_bn_state(2, 1).items()}
    {'bn1_mean': [0.0, 0.0], 'bn1_var': [1.0, 1.0], 'bn2_mean': [0.0], 'bn2_var': [1.0]}
    """
    hidden_channels = check_int(hidden_channels, "hidden_channels", minimum=1)
    n_maps = check_int(n_maps, "n_maps", minimum=1)
    dtype = check_float_dtype(dtype)   # an integer one would round weights and statistics
    return {"bn1_mean": np.zeros(hidden_channels, dtype), "bn1_var": np.ones(hidden_channels, dtype),
            "bn2_mean": np.zeros(n_maps, dtype), "bn2_var": np.ones(n_maps, dtype)}


def to_channel_first(frames):
    """(N, C, H, W) frames → (C, N, H, W) contiguous, the layout of every layer here.

    Parameters
    ----------
    frames : array_like, shape (N, C, H, W)
        Frames as ``make_video`` returns them.

    Returns
    -------
    ndarray, shape (C, N, H, W)
        A C-contiguous copy.

    Raises
    ------
    ValueError
        If ``frames`` is not 4-D.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.layers import to_channel_first
    >>> out = to_channel_first(np.zeros((5, 3, 2, 2)))
    >>> out.shape, out.flags["C_CONTIGUOUS"]
    ((3, 5, 2, 2), True)
    """
    if np.ndim(frames) != 4:
        raise ValueError(f"frames must be (N, C, H, W); got shape {np.shape(frames)}")
    return np.ascontiguousarray(np.transpose(frames, (1, 0, 2, 3)))


def encoder_train(params, x, reference=False, workspace=None):
    """Training-mode encoder: x (C, N, H, W) → z (N, 6), using batch statistics.

    The fast path is one primitive, ``grid.encoder_z``, that reuses the buffers and
    threads of ``workspace``; ``reference=True`` uses the plain autograd
    compositions of this module instead.

    Parameters
    ----------
    params : dict of ndarray
        Encoder parameters.
    x : ndarray, shape (C, N, H, W)
        The batch, channel first.
    reference : bool, default False
        Use the plain compositions.
    workspace : grid.Workspace, optional
        Buffers and threads to reuse (None: a fresh one).

    Returns
    -------
    z : ndarray, shape (N, 6)
        Centres of mass of the 3 maps, in pixels.
    stats : dict of ndarray
        Batch means and biased variances of the two pre-normalisation activations
        (bn1_mean, bn1_var, bn2_mean, bn2_var; plain (C,) arrays, for the running
        averages).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import encoder_train, init_encoder_params
    >>> params = init_encoder_params(rng, in_channels=1, hidden_channels=4, kernel_size=3)
    >>> z, stats = encoder_train(params, x)
    >>> z_reference, _ = encoder_train(params, x, reference=True)
    >>> z.shape, sorted(stats), float(np.abs(z - z_reference).max()) < 1e-12  # float64 sums of ~10² O(1) terms: ≤ ~10² ulps apart
    ((4, 6), ['bn1_mean', 'bn1_var', 'bn2_mean', 'bn2_var'], True)
    """
    if reference:
        h1 = conv2d_reference(x, params["conv1_w"], params["conv1_b"])
        a1 = batchnorm_relu_reference(h1, params["bn1_gamma"], params["bn1_beta"])
        h2 = conv2d_reference(a1, params["conv2_w"], params["conv2_b"])
        z = batchnorm_sigmoid_com_reference(h2, params["bn2_gamma"], params["bn2_beta"])
        (m1, v1), (m2, v2) = batch_stats(_value(h1)), batch_stats(_value(h2))
        return z, {"bn1_mean": m1, "bn1_var": v1, "bn2_mean": m2, "bn2_var": v2}
    ws = workspace if workspace is not None else grid.Workspace()
    z = grid.encoder_z(x, *(params[name] for name in grid.PARAMS), workspace=ws)
    return z, dict(ws.stats)


def update_bn_state(bn_state, stats, n_per_channel, momentum=0.1):
    """Running averages: r ← (1 − m)·r + m·batch, the variance made unbiased by n/(n − 1).

    Parameters
    ----------
    bn_state : dict of ndarray
        Running statistics (:func:`init_bn_state`).
    stats : dict of ndarray
        Batch statistics (from :func:`encoder_train`).
    n_per_channel : int
        n, the values each statistic was computed from (N·H·W).
    momentum : float, default 0.1
        m.

    Returns
    -------
    dict of ndarray
        The new running statistics, in the dtypes of ``bn_state``.

    Raises
    ------
    TypeError
        If ``n_per_channel`` is not an integer or ``momentum`` not a real number.
    ValueError
        If ``n_per_channel`` < 1 or ``momentum`` is outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.layers import init_bn_state, update_bn_state
    >>> stats = {"bn1_mean": np.array([1.0]), "bn1_var": np.array([1.0]),
    ...          "bn2_mean": np.array([2.0]), "bn2_var": np.array([0.5])}
    >>> new = update_bn_state(init_bn_state(1, 1), stats, n_per_channel=2)
    >>> new["bn1_mean"], new["bn2_var"]
    (array([0.1]), array([1.]))
    """
    n_per_channel = check_int(n_per_channel, "n_per_channel", minimum=1)
    momentum = check_real(momentum, "momentum", minimum=0, maximum=1)
    new = {}
    for name in ("bn1", "bn2"):
        unbiased = stats[name + "_var"] * n_per_channel / max(n_per_channel - 1, 1)
        new[name + "_mean"] = (1 - momentum) * bn_state[name + "_mean"] + momentum * stats[name + "_mean"]
        new[name + "_var"] = (1 - momentum) * bn_state[name + "_var"] + momentum * unbiased
    return {k: v.astype(bn_state[k].dtype) for k, v in new.items()}


def encoder_eval(params, bn_state, x, eps=BN_EPS):
    """Evaluation-mode encoder (running statistics), plain NumPy: x (C, N, H, W) → z (N, 6).

    Parameters
    ----------
    params : dict of ndarray
        Encoder parameters.
    bn_state : dict of ndarray
        Running statistics.
    x : ndarray, shape (C, N, H, W)
        The frames, channel first.
    eps : float, default ``BN_EPS``
        Batch norm's ε.

    Returns
    -------
    ndarray, shape (N, 6)
        Centres of mass of the 3 maps, in pixels.

    Examples
    --------
    With the batch's own statistics as the running ones, evaluation mode gives the
    training-mode latents:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((1, 4, 6, 6))       # (C, N, H, W)
    >>> from rpmref.balls.layers import encoder_eval, encoder_train, init_encoder_params
    >>> params = init_encoder_params(rng, in_channels=1, hidden_channels=4, kernel_size=3)
    >>> z, stats = encoder_train(params, x)
    >>> z_eval = encoder_eval(params, stats, x)
    >>> z_eval.shape, float(np.abs(z_eval - z).max()) < 1e-12  # float64 sums of ~10² O(1) terms: ≤ ~10² ulps apart
    ((4, 6), True)
    """
    def affine(h, name):
        c = h.shape[0]
        scale = params[name + "_gamma"] / np.sqrt(bn_state[name + "_var"] + eps)
        shift = params[name + "_beta"] - bn_state[name + "_mean"] * scale
        return h * scale.reshape(c, 1, 1, 1) + shift.reshape(c, 1, 1, 1)
    a1 = np.maximum(affine(_conv_same(x, params["conv1_w"], params["conv1_b"]), "bn1"), 0)
    h2 = _conv_same(a1, params["conv2_w"], params["conv2_b"])
    return _com_plain(sigmoid(affine(h2, "bn2")))[0]


def _value(x):
    return getattr(x, "_value", x)
