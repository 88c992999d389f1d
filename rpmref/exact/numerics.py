"""Numerically safe building blocks, differentiable by autograd.

Everything here works on ``autograd.numpy`` arrays (plain NumPy arrays too), so
the same functions serve the exact discrete core and the trainer's losses.

Three rules run through the module:

* Log space where a ratio or product of small numbers appears: ``prod_exp``
  forms Π fᵢ · e^c without overflow or underflow of its intermediate
  factors, and ``log_matmul`` / ``log_scaled_product`` give log(A B) and
  log(A diag(e^α) M diag(e^β) Bᵀ) for non-negative matrices exactly even
  where the product underflows float64.
* 0 · log 0 = 0 and log 0 = −inf, with no NaN in values or gradients. The
  ``where`` trap: ``anp.where(x > 0, x * anp.log(x), 0)`` has the right value but a
  NaN gradient at x = 0 (autograd differentiates both branches, and 0 · ∞ is NaN),
  so the masked branch is fed a safe argument (``anp.log(anp.where(x > 0, x, 1))``).
* Gradients are exact, also at the boundary of the simplex: every quantity
  that is linear in a probability stays linear in it (``prod_exp`` is an
  autograd primitive whose derivative in a factor is the product of the other
  factors, so a zero factor still has the right slope).

Fast paths use ordinary float64 products and switch to the exact routes only
for the entries whose rounding analysis fails (see ``_PRODUCT_FLOOR``).
"""
import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, defvjp_argnum, primitive
from autograd.tracer import getval, isbox

#: Smallest positive normal float64 (2^-1022); products below it lose relative precision.
TINY = np.finfo(np.float64).tiny
#: Work arrays of the exact fallbacks are processed in chunks of about this many elements.
CHUNK_ELEMENTS = 1 << 22

# Rounding analysis of a float64 sum of products of non-negative factors that are all ≤ 1
# (after scaling): a factor or product that falls below 2^-1022 may be flushed to zero or
# rounded on the subnormal grid, an absolute error below 2^-1022 per operation; every other
# operation has relative error ≤ 2^-53. With T terms and at most 5 such operations per term
# the absolute error is ≤ 5·T·2^-1022, which is ≤ 2^-53 of the sum once the sum is
# ≥ 8·T·2^-1022·2^53 = T·2^-966. Entries below that floor are recomputed exactly.
_PRODUCT_FLOOR = 2.0 ** -966


def value(x):
    """The concrete NumPy value of ``x``: autograd's traced values unwrapped, others as given.

    Parameters
    ----------
    x : object
        Any value, possibly traced by autograd.

    Returns
    -------
    object
        ``x`` without autograd's box.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import value
    >>> value(np.array([1.0, 2.0]))
    array([1., 2.])
    """
    return getval(x)


def stop_gradient(x):
    """``x`` detached from autograd's tape (its concrete value).

    Parameters
    ----------
    x : object
        Any value, possibly traced by autograd.

    Returns
    -------
    object
        The concrete value; autograd treats it as a constant.

    Examples
    --------
    The gradient of Σ stop_gradient(x) · x is x (the detached factor is a constant):

    >>> import numpy as np
    >>> from autograd import grad
    >>> from rpmref.exact.numerics import stop_gradient
    >>> grad(lambda x: np.sum(stop_gradient(x) * x))(np.array([2.0, 3.0]))
    array([2., 3.])
    """
    return getval(x)


def array_module(*arrays):
    """``numpy`` when no argument is traced by autograd, else ``autograd.numpy`` (same API).

    Hot paths call ``xp = array_module(a, b)`` and then ``xp.matmul`` etc.: the same code
    serves both, without autograd's per-call dispatch when nothing is traced.

    Parameters
    ----------
    *arrays : array_like or autograd box
        The arguments of the computation.

    Returns
    -------
    module
        ``numpy`` or ``autograd.numpy``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import array_module
    >>> array_module(np.ones(2), 3.0).__name__
    'numpy'
    """
    return anp if any(isbox(a) for a in arrays) else np


def _as_array(a):
    """A float array from ``a``, leaving autograd's traced values untouched."""
    return a if isbox(a) else np.asarray(a, dtype=float)


# --------------------------------------------------------------------------- logs
def safe_log(x):
    """log x with log 0 = −inf and no warning; the gradient at x = 0 is 0, never NaN.

    For x ≥ 0 (probabilities). The slope of log at 0 is infinite; callers only use
    this where the value −inf is the answer (or is multiplied by an exact 0).

    Parameters
    ----------
    x : array_like
        Non-negative values (not checked).

    Returns
    -------
    ndarray
        log x, −inf where x = 0.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import safe_log
    >>> safe_log(np.array([1.0, 0.0]))
    array([  0., -inf])
    """
    x = _as_array(x)
    xv = np.asarray(getval(x))
    if xv.size and xv.min() > 0:
        return array_module(x).log(x)
    positive = xv > 0
    return anp.where(positive, anp.log(anp.where(positive, x, 1.0)), -np.inf)


def xlogy(x, y):
    """x · log y with the conventions 0 · log y = 0 (also for y = 0) and x · log 0 = −inf, x > 0.

    For y ≥ 0. Differentiable without NaN: ∂/∂x = log y (finite wherever y > 0, also at
    x = 0, the boundary of the simplex) and ∂/∂y = x / y; at y = 0 both are 0.

    Parameters
    ----------
    x : array_like
        Weights (broadcast against ``y``).
    y : array_like
        Non-negative values (not checked).

    Returns
    -------
    ndarray
        x · log y entrywise.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import xlogy
    >>> xlogy(np.array([0.0, 2.0, 1.0]), np.array([0.0, np.e, 0.0]))
    array([  0.,   2., -inf])
    """
    x, y = _as_array(x), _as_array(y)
    y_positive = np.asarray(getval(y)) > 0
    if y_positive.all():
        return x * anp.log(y)
    out = x * anp.log(anp.where(y_positive, y, 1.0))
    x_value = np.asarray(getval(x))
    blocked = ~y_positive & (x_value != 0)
    if blocked.any():
        out = anp.where(blocked, np.where(x_value > 0, -np.inf, np.inf), out)
    return out


@primitive
def _sum_x_log_positive_y(x, y):
    log_y = np.log(y)
    log_y *= x
    return np.sum(log_y)


def _nonnegative_ratio(x, y):
    """x / y for x ≥ 0, y ≥ 0 without RuntimeWarnings: IEEE division is correctly rounded
    for subnormal y too, and gives inf only where the true ratio is beyond float64 (or
    y = 0 < x), as is then a slope such as that of Σ x log y in y."""
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        return x / y


defvjp(_sum_x_log_positive_y,
       lambda ans, x, y: lambda g: g * np.log(y),
       lambda ans, x, y: lambda g: g * _nonnegative_ratio(x, y))


def sum_xlogy(x, y):
    """Σ x · log y with the conventions of :func:`xlogy` (a scalar).

    Where every y > 0 it is one log and one product, in place (no (k, k') temporaries
    beyond one); otherwise ``anp.sum(xlogy(x, y))``. Differentiable in x and y.

    Parameters
    ----------
    x : array_like
        Weights.
    y : array_like
        Non-negative values.

    Returns
    -------
    float or autograd box
        The sum.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import sum_xlogy
    >>> p = np.array([0.5, 0.5])
    >>> abs(float(sum_xlogy(p, p)) + float(np.log(2))) < 1e-15   # a few ulps of log 2
    True
    """
    if not (isbox(x) or isbox(y)):
        # Concrete arrays: the same arithmetic as the primitive, without autograd's dispatch.
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if y.size and x.shape == y.shape and y.min() > 0:
            log_y = np.log(y)
            log_y *= x
            return log_y.sum()
        return xlogy(x, y).sum()
    yv = np.asarray(getval(y))
    if yv.size and yv.min() > 0 and np.shape(getval(x)) == yv.shape:
        return _sum_x_log_positive_y(x, y)
    return anp.sum(xlogy(x, y))


def xlogx(x):
    """x · log x with 0 · log 0 = 0 (its slope at 0, −inf, is returned as 0).

    Parameters
    ----------
    x : array_like
        Non-negative values.

    Returns
    -------
    ndarray
        x · log x entrywise.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import xlogx
    >>> xlogx(np.array([0.0, 1.0]))
    array([0., 0.])
    """
    return xlogy(x, x)


def x_log(x, log_y):
    """x · log_y where ``log_y`` is already a logarithm: 0 · (−inf) = 0, x · (−inf) = −inf for x > 0.

    ∂/∂x = log_y where it is finite (0 where it is −inf), ∂/∂log_y = x.

    Parameters
    ----------
    x : array_like
        Non-negative weights.
    log_y : array_like
        Logarithms (−inf allowed).

    Returns
    -------
    ndarray
        x · log_y entrywise.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import x_log
    >>> x_log(np.array([0.0, 1.0, 2.0]), np.array([-np.inf, 2.0, -np.inf]))
    array([  0.,   2., -inf])
    """
    x, log_y = _as_array(x), _as_array(log_y)
    finite = np.asarray(getval(log_y)) > -np.inf
    if finite.all():
        return x * log_y
    out = x * anp.where(finite, log_y, 0.0)
    blocked = ~finite & (np.asarray(getval(x)) > 0)
    return anp.where(blocked, -np.inf, out) if blocked.any() else out


# --------------------------------------------------------------------------- log-sum-exp
def _keepdims_shape(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def mean_and_standard_error(values):
    """Mean and standard error of Monte Carlo draws, without overflow.

    The standard error is the sample standard deviation (ddof = 1) over √n. Both are
    formed from ``values / max|values|``, in [−1, 1], so draws anywhere in the float64
    range give finite results (the mean and the spread are at most max |values|), where
    ``np.std`` squares them and overflows beyond ±1.3e154.

    Parameters
    ----------
    values : array_like, shape (n,)
        Finite draws, n ≥ 2 (not checked).

    Returns
    -------
    mean : float
    standard_error : float

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import mean_and_standard_error
    >>> mean_and_standard_error(np.array([1.0, 3.0]))
    (2.0, 1.0)
    >>> mean_and_standard_error(np.array([-1e300, -3e300]))
    (-2e+300, 1e+300)
    """
    v = np.asarray(getval(values), dtype=float).ravel()
    scale = float(np.max(np.abs(v))) if v.size else 0.0
    scale = scale if 0 < scale < np.inf else 1.0
    unit = v / scale
    return (float(np.mean(unit)) * scale,
            float(np.std(unit, ddof=1)) / float(np.sqrt(v.size)) * scale)


@primitive
def logsumexp(a, axis=None, keepdims=False):
    """log Σ exp(a) along ``axis``, stable for any finite or ±inf entries.

    Shifts by the maximum only where that maximum is finite, so an all −inf
    slice gives −inf (the log of an empty sum) rather than NaN, and +inf gives
    +inf. Differentiable by autograd: the gradient is the softmax, and 0 (not
    NaN) on entries that are −inf and on slices that are all −inf.

    Parameters
    ----------
    a : array_like
        Values.
    axis : int or tuple of int, optional
        Axes to reduce (None: all).
    keepdims : bool, default False
        Keep the reduced axes with size 1.

    Returns
    -------
    ndarray
        The log-sum-exp (0-d for ``axis=None`` without ``keepdims``).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import logsumexp
    >>> abs(float(logsumexp(np.array([1000.0, 1000.0]))) - (1000 + float(np.log(2)))) < 1e-12   # ulp(1000) ≈ 1.1e-13
    True
    >>> logsumexp(np.array([[0.0, 0.0], [1.0, -np.inf], [-np.inf, -np.inf]]), axis=1)
    array([0.69314718, 1.        ,       -inf])
    """
    a = np.asarray(a, dtype=float)
    amax = np.max(a, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(amax), amax, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(np.sum(np.exp(a - shift), axis=axis, keepdims=True)) + shift
    if keepdims:
        return out
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def _logsumexp_vjp(ans, a, axis=None, keepdims=False):
    shape = anp.shape(a)
    kept = _keepdims_shape(shape, axis)

    def vjp(g):
        ans_k, g_k = anp.reshape(ans, kept), anp.reshape(g, kept)
        usable = np.isfinite(getval(ans_k)) & (np.asarray(getval(a)) > -np.inf)
        weights = anp.exp(anp.where(usable, a - ans_k, -np.inf))
        return g_k * weights
    return vjp


defvjp(logsumexp, _logsumexp_vjp)


def log_softmax(a, axis=-1):
    """``a − logsumexp(a)`` along ``axis``: never ``log(softmax(a))``.

    Computed as s − logsumexp(s) with s = a − max(a) ≤ 0, so the log of the sum
    (at most log of the axis length) is not added to and taken back from the
    maximum: at |a| = 1e308 that would round it away ([1e308, 1e308] would give
    [0, 0] instead of [−log 2, −log 2]). The shift is a constant for autograd; the
    result does not depend on it.

    Parameters
    ----------
    a : array_like
        Logits.
    axis : int, default -1
        The softmax axis.

    Returns
    -------
    ndarray
        Log-probabilities, the shape of ``a``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import log_softmax
    >>> np.exp(log_softmax(np.array([0.0, np.log(3.0)])))
    array([0.25, 0.75])
    >>> log_softmax(np.array([1e308, 1e308]))
    array([-0.69314718, -0.69314718])
    """
    top = np.max(getval(a), axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(over="ignore"):   # a − top below −1.8e308 is −inf: e^{−inf} = 0 exactly
        shifted = a - top
    return shifted - logsumexp(shifted, axis=axis, keepdims=True)


def softplus(v):
    """log(1 + e^v), stable for every v (``logaddexp(0, v)``).

    Parameters
    ----------
    v : array_like
        Any reals.

    Returns
    -------
    ndarray
        softplus(v) entrywise.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import softplus
    >>> out = softplus(np.array([-1000.0, 0.0, 1000.0]))
    >>> bool(np.allclose(out, [0.0, np.log(2), 1000.0], rtol=1e-15, atol=0))   # no overflow, a few ulps
    True
    """
    return anp.logaddexp(0.0, v)


# --------------------------------------------------------------------------- Π f · e^c
def _unbroadcast(x, shape):
    """Sum ``x`` over the axes that broadcasting added to an array of ``shape``."""
    while anp.ndim(x) > len(shape):
        x = anp.sum(x, axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and anp.shape(x)[axis] != 1:
            x = anp.sum(x, axis=axis, keepdims=True)
    return x


def _prod_exp_value(c, factors):
    """Π factors · e^c: linear products where every partial product stays in the normal
    range (error ≤ (len(factors) + 1) ulps), exp(c + Σ log f) for the other entries."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = np.exp(c)
        fine = (out >= TINY) & (out < np.inf)
        for f in factors:
            out = out * f
            fine = fine & (out >= TINY) & (out < np.inf)
        zero = np.zeros(out.shape, dtype=bool)
        for f in factors:
            zero = zero | (f == 0)
        redo = ~fine & ~zero
        if redo.any():
            log_total = c + sum(np.log(np.where(f > 0, f, 1.0)) for f in factors)
            out = np.where(redo, np.exp(np.broadcast_to(log_total, out.shape)), out)
        if zero.any():
            out = np.where(zero, 0.0, out)
    return out


@primitive
def prod_exp(c, *factors):
    """Π factors · e^c (broadcast), exact over the whole float64 range.

    The product is 0 wherever a factor is 0, whatever c is. No intermediate
    overflows or underflows: where the plain product would leave the normal range
    the entry is exp(c + Σ log f). Differentiable: ∂/∂fᵢ = Π_{j≠i} f_j · e^c (finite
    at fᵢ = 0), ∂/∂c = the product.

    Parameters
    ----------
    c : array_like
        Log-scale (any shape, finite or −inf; +inf only beside a zero factor).
    *factors : array_like
        Non-negative arrays, broadcast against ``c``.

    Returns
    -------
    ndarray
        The product, of the broadcast shape.

    Examples
    --------
    e^800 overflows float64 and 1e-300 · e^800 does not:

    >>> import numpy as np
    >>> from rpmref.exact.numerics import prod_exp
    >>> value = prod_exp(np.array([800.0]), np.array([1e-300]))
    >>> bool(np.isclose(value[0], np.exp(800 - 300 * np.log(10)), rtol=1e-12))
    True
    >>> prod_exp(np.array([np.inf]), np.array([0.0]))
    array([0.])
    """
    return _prod_exp_value(np.asarray(c, dtype=float),
                           [np.asarray(f, dtype=float) for f in factors])


def _prod_exp_vjp(argnum, ans, args, kwargs):
    c, factors = args[0], args[1:]
    if argnum == 0:
        return lambda g: _unbroadcast(g * ans, anp.shape(c))
    i = argnum - 1
    others = factors[:i] + factors[i + 1:]

    def vjp(g):
        slope = prod_exp(c, *others)
        if np.isinf(getval(slope)).any():   # astronomically steep; keep 0 · inf = 0
            slope = anp.where(np.asarray(getval(g)) == 0, 0.0, slope)
        return _unbroadcast(g * slope, anp.shape(factors[i]))
    return vjp


defvjp_argnum(prod_exp, _prod_exp_vjp)


# --------------------------------------------------------------------------- exact log-products
def _scatter(base, mask, values):
    """``base`` with the entries where ``mask`` is True replaced by ``values`` (differentiable)."""
    flat = anp.reshape(base, (-1,))
    positions = np.flatnonzero(mask)
    index = np.arange(flat.shape[0])
    index[positions] = flat.shape[0] + np.arange(positions.size)
    return anp.reshape(anp.concatenate([flat, values])[index], anp.shape(base))


def _log_sum_terms(offset, factors):
    """log Σ_t e^{offset[r, t]} Π_i factors_i[r, t] along the last axis, exactly.

    Arguments broadcast to (R, T). Each row is shifted by its largest log-term s
    (a constant for autograd: the result does not depend on it), so every term
    handed to ``prod_exp`` is ≤ 1 and the largest is 1: the sum lies in [1, T].
    Rows without a positive term give −inf.
    """
    log_terms = np.asarray(getval(offset), dtype=float)
    for f in factors:
        fv = np.asarray(getval(f))
        with np.errstate(divide="ignore"):
            log_terms = log_terms + np.log(np.where(fv > 0, fv, 0.0))
    shift = np.max(log_terms, axis=-1, keepdims=True)
    empty = ~np.isfinite(shift[..., 0])
    shift = np.where(np.isfinite(shift), shift, 0.0)
    total = anp.sum(prod_exp(offset - shift, *factors), axis=-1)
    out = anp.log(anp.where(empty, 1.0, total)) + shift[..., 0]
    return anp.where(empty, -np.inf, out) if empty.any() else out


def _chunks(n_items, per_item):
    step = max(1, CHUNK_ELEMENTS // max(1, per_item))
    return [slice(start, min(start + step, n_items)) for start in range(0, n_items, step)]


def _in_safe_range(values, floor):
    """True if every entry lies in [floor, inf): two reductions, no temporaries."""
    return values.size == 0 or (values.min() >= floor and values.max() < np.inf)


def log_matmul(a, b, a_log_offset=None, a_scaled=None, product=None):
    """log(A' @ B) for non-negative finite A (n, k), B (k, m), exact where A' @ B underflows.

    A' = A ⊙ e^{a_log_offset}. The fast path is one matrix product; entries below
    the rounding floor (see ``_PRODUCT_FLOOR``) are recomputed by an exact
    log-sum-exp over the contracted axis, and structural zeros give −inf.

    Parameters
    ----------
    a : array_like, shape (n, k)
        Non-negative, finite.
    b : array_like, shape (k, m)
        Non-negative, finite.
    a_log_offset : array_like, shape (n, k) or scalar, optional
        Log-scale of A's entries (−inf drops an entry; default 0).
    a_scaled : array_like, shape (n, k), optional
        A' itself, when the caller already has it.
    product : array_like, shape (n, m), optional
        A' @ B, when the caller already has it.

    Returns
    -------
    ndarray, shape (n, m)
        log(A' @ B), −inf where every term is zero.

    Examples
    --------
    A product of 1e-400 (below the float64 range) in log space:

    >>> import numpy as np
    >>> from rpmref.exact.numerics import log_matmul
    >>> out = log_matmul(np.array([[1e-200, 1e-200]]), np.array([[1e-200], [1e-200]]))
    >>> bool(np.isclose(out[0, 0], np.log(2) - 400 * np.log(10), rtol=1e-15))
    True
    """
    offset = 0.0 if a_log_offset is None else a_log_offset
    floor = np.shape(getval(a))[1] * _PRODUCT_FLOOR
    if product is None:
        if a_scaled is None:
            a_scaled = a if a_log_offset is None else prod_exp(offset, a)
        product = anp.matmul(a_scaled, b)
    pv = np.asarray(getval(product))
    if _in_safe_range(pv, floor):
        return anp.log(product)
    suspect = ~((pv >= floor) & (pv < np.inf))
    av, bv = np.asarray(getval(a)), np.asarray(getval(b))
    a_support = (av > 0) & (np.asarray(getval(offset)) > -np.inf)
    support = np.matmul(a_support.astype(float), (bv > 0).astype(float)) > 0
    redo = suspect & support
    out = anp.log(anp.where(suspect, 1.0, product))
    if (suspect & ~support).any():
        out = anp.where(suspect & ~support, -np.inf, out)
    if redo.any():
        rows, cols = np.nonzero(redo)
        per_row = np.ndim(getval(offset)) == 2
        b_t = anp.transpose(b)
        parts = []
        for part in _chunks(rows.size, av.shape[1]):
            r, c = rows[part], cols[part]
            parts.append(_log_sum_terms(offset[r] if per_row else offset, [a[r], b_t[c]]))
        out = _scatter(out, redo, anp.concatenate(parts))
    return out


def _row_scaled(a, log_scale):
    """ã = a ⊙ e^{log_scale − σ} with σ (n,) the largest log-entry of each row, so ã ≤ 1 and
    each non-zero row of ã has maximum 1. a (n, k) ≥ 0, log_scale (k,) (−inf drops a column).
    Returns (ã, σ); σ = 0 for empty rows.

    Fast path: w = e^{log_scale − max log_scale} ≤ 1, then ã = (a ⊙ w) / rowmax — valid
    (2 roundings per entry) when every non-zero product a·w is a normal float, which
    min_{a>0} a · min_{w>0} w ≥ 2^-1022 guarantees. Otherwise each entry is formed as
    exp(log a + log_scale − σ) by ``prod_exp``.
    """
    av, lv = np.asarray(getval(a)), np.asarray(getval(log_scale))
    top = lv.max() if lv.size else -np.inf
    if top > -np.inf:
        xp = array_module(a, log_scale)
        w = xp.exp(log_scale - top)                                    # (k,), ≤ 1
        wv = np.asarray(getval(w))
        w_min = wv.min() if lv.min() > -np.inf else wv[lv > -np.inf].min()
        a_min = av.min() if av.size else 1.0
        if a_min == 0:
            a_min = np.min(av, where=av > 0, initial=np.inf)
        if a_min * w_min >= TINY:
            aw = a * w[None, :]
            row_max = np.max(np.asarray(getval(aw)), axis=1)
            if row_max.size and row_max.min() > 0:
                sigma = np.log(row_max) + top
            else:
                empty = row_max == 0
                row_max = np.where(empty, 1.0, row_max)
                sigma = np.where(empty, 0.0, np.log(row_max) + top)
            if isbox(aw):
                return aw / row_max[:, None], sigma
            aw /= row_max[:, None]          # a temporary of ours: scaled in place
            return aw, sigma
    with np.errstate(divide="ignore"):
        log_entries = np.log(np.where(av > 0, av, 0.0)) + lv[None, :]
    sigma = np.max(log_entries, axis=1) if av.shape[1] else np.zeros(av.shape[0])
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)
    return prod_exp(log_scale[None, :] - sigma[:, None], a), sigma


def _log_scaled_product_unit(a, alpha, m, beta, b, row_offset, col_offset):
    """The fast path of :func:`log_scaled_product` for concrete A, M, B with entries ≤ 1
    (pmfs and conditionals), or None where it does not apply.

    The scales go into the small middle factor instead of the rows of A and B:
    M̃ = diag(w) M diag(w′) with w = e^{α − max α} ≤ 1, w′ = e^{β − max β} ≤ 1, so every
    factor of every term of A M̃ Bᵀ is ≤ 1 and the rounding analysis of ``_PRODUCT_FLOOR``
    holds: a term has at most 6 roundings that can land below 2^-1022 (two exps, four
    products), within the floor's allowance of 8. Entries below the floor send the whole
    product to the general route. Two products and one pass over the (n, n') result,
    with no (n, k) temporaries.
    """
    a, alpha, m, beta, b = (np.asarray(t, dtype=float) for t in (a, alpha, m, beta, b))
    if not (a.size and b.size and m.size):
        return None
    top_alpha, top_beta = alpha.max(), beta.max()
    if not (-np.inf < top_alpha < np.inf and -np.inf < top_beta < np.inf):
        return None
    if a.max() > 1.0 or m.max() > 1.0 or b.max() > 1.0:
        return None
    with np.errstate(under="ignore"):
        middle = np.exp(alpha - top_alpha)[:, None] * m
        middle *= np.exp(beta - top_beta)[None, :]
        s = np.matmul(np.matmul(a, middle), b.T)
    if not _in_safe_range(s, m.shape[0] * m.shape[1] * _PRODUCT_FLOOR):
        return None
    out = np.log(s, out=s)
    rows = top_alpha if row_offset is None else np.asarray(row_offset, dtype=float) + top_alpha
    cols = top_beta if col_offset is None else np.asarray(col_offset, dtype=float) + top_beta
    out += np.reshape(rows, (-1, 1)) if np.ndim(rows) else rows
    out += cols
    return out


def log_scaled_product(a, alpha, m, beta, b, row_offset=None, col_offset=None):
    """log( A · diag(e^α) · M · diag(e^β) · Bᵀ ) (+ row_offset[x] + col_offset[x']), exact.

    Exact over the whole float64 range; this is the likelihood sum of Eq. 10.
    Fast paths: for concrete A, M, B with entries ≤ 1 the scales fold into M; otherwise
    the rows of A e^α and B e^β are scaled to maximum 1 (exact scales kept aside);
    either way two matrix products. Entries below the rounding floor (``_PRODUCT_FLOOR`` × k·k')
    are recomputed in two exact stages: log(A e^α M) for their rows by
    :func:`log_matmul`, then a log-sum-exp over z'. In that fallback the gradient does
    not flow through intermediate entries (A e^α M)(x, z') that are exactly 0.

    Parameters
    ----------
    a : array_like, shape (n, k)
        Non-negative and finite.
    alpha : array_like, shape (k,)
        Log-scales; −inf drops a state.
    m : array_like, shape (k, k')
        Non-negative and finite.
    beta : array_like, shape (k',)
        Log-scales; −inf drops a state.
    b : array_like, shape (n', k')
        Non-negative and finite.
    row_offset : array_like, shape (n,), optional
        Logs added to every row of the result (−inf allowed).
    col_offset : array_like, shape (n',), optional
        Logs added to every column of the result (−inf allowed).

    Returns
    -------
    ndarray, shape (n, n')
        The log of the product, −inf where every path is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.numerics import log_scaled_product
    >>> out = log_scaled_product(np.eye(2), np.zeros(2), np.full((2, 2), 0.25), np.zeros(2), np.eye(2))
    >>> bool(np.allclose(out, np.log(0.25), rtol=1e-15))
    True
    >>> tiny = log_scaled_product(np.array([[1.0]]), np.array([-800.0]), np.array([[1.0]]),
    ...                           np.array([-800.0]), np.array([[1.0]]))
    >>> float(tiny[0, 0])
    -1600.0
    """
    if not any(isbox(t) for t in (a, alpha, m, beta, b, row_offset, col_offset)):
        out = _log_scaled_product_unit(a, alpha, m, beta, b, row_offset, col_offset)
        if out is not None:
            return out
    left, sigma = _row_scaled(a, alpha)
    right, tau = _row_scaled(b, beta)
    xp = array_module(left, m, right)
    s = xp.matmul(xp.matmul(left, m), xp.transpose(right))
    rows = sigma if row_offset is None else row_offset + sigma
    cols = tau if col_offset is None else col_offset + tau
    sv = np.asarray(getval(s))
    k, k_prime = np.shape(getval(m))
    floor = k * k_prime * _PRODUCT_FLOOR
    if _in_safe_range(sv, floor):
        if isbox(s) or isbox(rows) or isbox(cols):
            return anp.log(s) + rows[:, None] + cols[None, :]
        out = np.log(s, out=s)              # s is a temporary of ours: finished in place
        out += rows[:, None]
        out += cols[None, :]
        return out
    suspect = ~((sv >= floor) & (sv < np.inf))
    av, mv, bv = (np.asarray(getval(t)) for t in (a, m, b))
    a_support = ((av > 0) & (np.asarray(getval(alpha)) > -np.inf)[None, :]).astype(float)
    b_support = ((bv > 0) & (np.asarray(getval(beta)) > -np.inf)[None, :]).astype(float)
    support = np.matmul(np.matmul(a_support, (mv > 0).astype(float)), b_support.T) > 0
    redo = suspect & support
    out = anp.log(anp.where(suspect, 1.0, s)) + sigma[:, None] + tau[None, :]
    if (suspect & ~support).any():
        out = anp.where(suspect & ~support, -np.inf, out)
    if redo.any():
        redo_rows, redo_cols = np.nonzero(redo)
        unique_rows, row_of = np.unique(redo_rows, return_inverse=True)
        # Stage 1: log M̃(x, z') = log Σ_z A(x,z) e^{α_z − σ_x} M(z, z') for the rows involved.
        left_offset = alpha[None, :] - sigma[unique_rows][:, None]
        log_mid = log_matmul(a[unique_rows], m, a_log_offset=left_offset,
                             a_scaled=left[unique_rows]) + sigma[unique_rows][:, None]
        # Stage 2: log Σ_{z'} e^{log M̃(x,z') + β_z'} B(x', z') for each entry.
        parts = []
        for part in _chunks(redo_rows.size, k_prime):
            offset = log_mid[row_of[part]] + beta[None, :]
            parts.append(_log_sum_terms(offset, [b[redo_cols[part]]]))
        out = _scatter(out, redo, anp.concatenate(parts))
    if row_offset is not None:
        out = out + row_offset[:, None]
    if col_offset is not None:
        out = out + col_offset[None, :]
    return out


__all__ = ["TINY", "array_module", "value", "stop_gradient", "safe_log", "xlogy", "xlogx", "x_log", "sum_xlogy",
           "logsumexp", "log_softmax", "softplus", "prod_exp", "log_matmul",
           "log_scaled_product", "mean_and_standard_error"]
