"""Information measures on plain probability arrays (nats, 0 · log 0 = 0).

The public functions validate that their inputs are probability tables and
never renormalise them; the ``*_of`` variants skip validation for tables the
library has just built itself. All are differentiable by autograd (a traced
input gives a traced output; otherwise a float is returned).
"""
import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval, isbox

from rpmref.exact.numerics import TINY, array_module, _nonnegative_ratio, safe_log, sum_xlogy
from rpmref.exact.validation import Integer, Pmf, validate_params



def scalar(x):
    """A Python float for a concrete result; traced (autograd) results are returned as they are.

    Parameters
    ----------
    x : float, 0-d array or autograd box
        A scalar result.

    Returns
    -------
    float or autograd box
        ``float(x)``, or ``x`` itself when it is traced.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.measures import scalar
    >>> scalar(np.float64(0.5))
    0.5
    """
    return x if isbox(x) else float(x)


def nonnegative_scalar(x):
    """:func:`scalar` for a quantity that is ≥ 0 in exact arithmetic (a KL divergence, a
    mutual information, an entropy): a concrete sum that rounding left below 0 is returned
    as 0.0. (An entropy goes below 0 only for a table that sums to slightly more than 1,
    within the tolerance of validation: [1 + 5e-10] gives −5e-10.)

    The sum of signed terms p · log(p/q) can come out a few ulps below 0 where p and q
    (or a joint and the product of its marginals) agree up to the rounding of tables
    normalised in float64; the exact value is then 0 to within that rounding, and a
    negative divergence would only mislead (scikit-learn's ``mutual_info_score`` clips
    the same way). Traced results are returned as they are, so a gradient is that of
    the sum; inf and nan pass through.

    Parameters
    ----------
    x : float, 0-d array or autograd box
        A scalar result.

    Returns
    -------
    float or autograd box
        ``max(float(x), 0.0)`` (+0.0 for −0.0), or ``x`` itself when it is traced.

    Examples
    --------
    >>> from rpmref.exact.measures import nonnegative_scalar
    >>> nonnegative_scalar(-4.4e-16), nonnegative_scalar(0.25)
    (0.0, 0.25)
    """
    if isbox(x):
        return x
    value = float(x)
    return 0.0 if value <= 0.0 else value


@validate_params(p=Pmf())
def entropy(p):
    """Shannon entropy H(p) = −Σ p log p of a pmf of any shape, in nats (0 · log 0 = 0).

    Parameters
    ----------
    p : array_like, any shape
        A pmf: finite, non-negative entries summing to 1 (a joint table gives the
        joint entropy). Never renormalised.

    Returns
    -------
    float
        H(p) ≥ 0 in nats (a traced value under autograd); a sum that rounding, or a
        table summing to a hair over 1, left below 0 is 0.0.

    Raises
    ------
    TypeError
        If ``p`` is not an array of real numbers (bool, complex, object, string, masked, None).
    ValueError
        If ``p`` is empty, not finite, has a negative entry or does not sum to 1
        (tolerance max(1e-9, m·eps) for m entries).

    Examples
    --------
    >>> import math
    >>> from rpmref import entropy
    >>> abs(entropy([0.5, 0.5]) - math.log(2)) < 1e-15   # 1e-15: a few ulps of log 2 ≈ 0.69
    True
    >>> round(entropy([[0.25, 0.25], [0.5, 0.0]]), 12)   # 1.5 log 2
    1.03972077084
    """
    return nonnegative_scalar(entropy_of(p))


@validate_params(p=Pmf(), q=Pmf(same_shape_as="p"))
def kl_divergence(p, q):
    """KL(p ‖ q) = Σ p log(p / q), in nats; +inf when q = 0 < p.

    Each term is p · log(p / q) (the ratio first, as ``scipy.special.rel_entr``
    does), never cross-entropy minus entropy, which loses precision as q → p; where
    p / q would overflow or underflow (q = 1e-320 beside p = 0.5) the term is
    p · (log p − log q).

    Parameters
    ----------
    p : array_like, any shape
        A pmf.
    q : array_like, same shape as ``p``
        A pmf.

    Returns
    -------
    float
        KL(p ‖ q) ≥ 0 in nats, or +inf. A sum that rounding leaves a few ulps below 0
        (p = q up to the rounding of their normalisation) is returned as 0.0.

    Raises
    ------
    TypeError
        If ``p`` or ``q`` is not an array of real numbers (bool, complex, object, string, masked, None).
    ValueError
        If ``p`` or ``q`` is empty, not finite, has a negative entry or does not sum to 1
        (tolerance max(1e-9, m·eps) for m entries). Also if the shapes differ.

    Examples
    --------
    >>> from rpmref import kl_divergence
    >>> round(kl_divergence([0.5, 0.5], [0.9, 0.1]), 12)
    0.510825623766
    >>> kl_divergence([0.5, 0.5], [1.0, 0.0])
    inf
    """
    return nonnegative_scalar(kl_divergence_of(p, q))


@validate_params(p_joint=Pmf(), split=Integer(minimum=1))
def mutual_information(p_joint, split=1):
    """I(A; B) of a joint pmf, in nats: KL(P(a, b) ‖ P(a) P(b)).

    Parameters
    ----------
    p_joint : array_like, ndim ≥ 2
        A joint pmf; A is the first ``split`` axes and B the remaining ones.
    split : int, default 1
        How many leading axes form A (default: rows vs columns of a (k, k') table).

    Returns
    -------
    float
        I(A; B) ≥ 0 in nats. A sum that rounding leaves a few ulps below 0 (A and B
        independent up to the rounding of the table) is returned as 0.0.

    Raises
    ------
    TypeError
        If ``p_joint`` is not an array of real numbers (bool, complex, object, string, masked, None).
    ValueError
        If ``p_joint`` is empty, not finite, has a negative entry or does not sum to 1
        (tolerance max(1e-9, m·eps) for m entries). Also if ``p_joint`` has no more than
        ``split`` axes, or ``split`` is below 1 (a bool or float ``split`` is a TypeError).

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from rpmref import mutual_information
    >>> abs(mutual_information(np.eye(2) / 2) - math.log(2)) < 1e-15   # a few ulps of 0.69
    True
    >>> abs(mutual_information(np.full((2, 3), 1 / 6))) < 1e-15   # independent: I = 0
    True
    """
    shape = np.shape(getval(p_joint))
    if len(shape) < 2 or split >= len(shape):
        raise ValueError(
            f"p_joint needs more than split={split} axes to split into (A, B), got shape {shape}")
    rows = int(np.prod(shape[:split]))
    return nonnegative_scalar(mutual_information_of(anp.reshape(p_joint, (rows, -1))))


def entropy_of(p):
    """H(p) without validation (traced or array result).

    Parameters
    ----------
    p : ndarray, any shape
        A pmf (not checked).

    Returns
    -------
    float or ndarray or autograd box
        −Σ p log p in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.measures import entropy_of
    >>> abs(float(entropy_of(np.array([0.5, 0.5]))) - float(np.log(2))) < 1e-15   # a few ulps
    True
    """
    return 0.0 - sum_xlogy(p, p)     # 0.0 − …: +0.0, not −0.0, for a point mass


def kl_divergence_of(p, q, log_q=None):
    """KL(p ‖ q) without validation (same shapes assumed).

    Terms: for p ≥ q/2, p · log1p((p − q)/q) — p − q is exact there (Sterbenz), so
    KL ≈ 1e-20 is resolved instead of drowning in the rounding of log(p/q) ≈ ±1e-10
    terms; for p < q/2, p · log(p/q); where either leaves the normal range,
    p · (log p − log q). Only the support of p is visited.

    Parameters
    ----------
    p : ndarray, any shape
        A pmf (not checked).
    q : ndarray, same shape as ``p``
        A pmf (not checked).
    log_q : callable, optional
        Returns log q, for tables whose linear q may have underflowed (q < 2^-1022
        while log q is known exactly); those entries use it.

    Returns
    -------
    float or autograd box
        KL(p ‖ q) in nats (+inf where q = 0 < p).

    Examples
    --------
    A KL of 1e-20 is resolved, not lost to rounding:

    >>> import numpy as np
    >>> from rpmref.exact.measures import kl_divergence_of
    >>> p = np.array([0.5 + 1e-10, 0.5 - 1e-10])
    >>> print(f"{float(kl_divergence_of(p, np.array([0.5, 0.5]))):.3g}")
    2e-20
    """
    pv = np.asarray(getval(p))
    xp = array_module(p, q)
    p_min = pv.min() if pv.size else 0.0
    if p_min > 0:
        if xp is np:
            p_s, q_s = pv.ravel(), np.asarray(q).ravel()
        else:
            p_s, q_s = xp.reshape(p, (-1,)), xp.reshape(q, (-1,))
        index = None
    else:
        index = np.flatnonzero(pv > 0)
        p_s, q_s = xp.reshape(p, (-1,))[index], xp.reshape(q, (-1,))[index]
        p_min = np.asarray(getval(p_s)).min() if index.size else 0.0
    qsv = np.asarray(getval(q_s))
    if qsv.size == 0:
        return anp.sum(p_s)  # p = 0 everywhere: KL = 0 (with the zero gradient in p)
    q_min = qsv.min()
    if q_min == 0 and log_q is None:
        return float("inf")
    if p_min >= TINY and q_min >= TINY:
        if isbox(p_s) or isbox(q_s):
            return _sum_p_log_ratio(p_s, q_s, _normal_log_ratio(np.asarray(getval(p_s)), qsv))
        return _sum_p_log_ratio_value(p_s, q_s)
    pv_s = np.asarray(getval(p_s))
    log_ratio = _general_log_ratio(pv_s, qsv, index, log_q)
    if log_ratio is None:
        return float("inf")
    if isbox(p_s) or isbox(q_s):
        # the gradients in closed form (log(p/q) + 1, −p/q), not autograd's chain through
        # the masked regimes: its (p − q)/q² underflows to inf below q = 1e-154
        return _sum_p_log_ratio_exact(p_s, q_s, log_ratio)
    return np.sum(pv_s * log_ratio)


#: The normal-range KL kernel works through its inputs in blocks of this many entries, so
#: its temporaries stay in the CPU cache (four float64 blocks of 128 KiB).
_KL_BLOCK = 1 << 14

#: Below this |rel|, np.log1p is glibc's fastest route; above it, ``_log1p`` (measured
#: 0.5-0.9x of np.log1p's time for |rel| up to 1/2, 0.5x beyond).
_SMALL_REL = 1.0 / 16


def _log1p(x, out, tmp):
    """log1p(x) for x > −1 into ``out`` (same size; ``tmp`` scratch): log(u) − ((u − 1) − x)/u
    with u = fl(1 + x). (u − 1) − x is exactly the rounding error of u, so the correction
    restores what forming u lost: within 1 ulp of log1p (checked against mpmath), one log
    and four cheap passes instead of glibc's slower log1p."""
    np.add(x, 1.0, out=out)
    np.subtract(out, 1.0, out=tmp)
    tmp -= x
    tmp /= out
    np.log(out, out=out)
    out -= tmp
    return out


def _log_ratio_block(p, q, out, rel, tmp):
    """log(p/q) for 1-D blocks with p, q in [2^-1022, 1]; ``out``, ``rel`` and ``tmp`` are
    scratch space of the same size (the result is ``out``). Call it with divide and
    invalid floating-point errors ignored (one entry may pass through log(0)).

    log1p((p − q)/q) where p ≥ q/2 (p − q is exact there, Sterbenz), so that terms near
    p = q keep their relative precision; log(p/q) where p < q/2 (there (p − q)/q is not
    exact, and |log(p/q)| > 0.69). p/q lies in [2^-1022, 2^1022], so nothing overflows
    or loses precision. log1p is np.log1p where every |rel| ≤ ``_SMALL_REL`` (glibc's
    fast range), ``_log1p`` elsewhere. With few entries below q/2 the log1p rule runs
    on the whole block and log(p/q) on those only; with many, the other way round.
    """
    np.subtract(p, q, out=rel)
    rel /= q
    low, high = rel.min(), rel.max()
    if low >= -_SMALL_REL and high <= _SMALL_REL:
        return np.log1p(rel, out=out)
    if low >= -0.5:                                 # every term near q: no log(p/q)
        return _log1p(rel, out, tmp)
    down = np.flatnonzero(rel < -0.5)
    if 2 * down.size > rel.size:                    # mostly far below q
        np.divide(p, q, out=out)
        np.log(out, out=out)
        up = np.flatnonzero(rel >= -0.5)
        x = rel[up]                                 # a copy: rel and tmp are free as scratch
        out[up] = _log1p(x, rel[:up.size], tmp[:up.size])
        return out
    _log1p(rel, out, tmp)  # u = 0 (−inf, nan) where p − q rounds to −q: overwritten below
    out[down] = np.log(p[down] / q[down])
    return out


def _normal_log_ratio(p, q):
    """log(p/q) for flat p, q with entries in [2^-1022, 1] (see ``_log_ratio_block``)."""
    out = np.empty(p.shape)
    size = min(p.size, _KL_BLOCK)
    rel, tmp = np.empty(size), np.empty(size)
    with np.errstate(under="ignore", divide="ignore", invalid="ignore"):
        for start in range(0, p.size, _KL_BLOCK):
            block = slice(start, start + _KL_BLOCK)
            m = out[block].size
            out[block] = _log_ratio_block(p[block], q[block], out[block], rel[:m], tmp[:m])
    return out


def _sum_p_log_ratio_value(p, q):
    """Σ p · log(p/q) for concrete flat p, q in [2^-1022, 1], block by block (no full-size
    temporaries; each block's products are summed pairwise)."""
    size = min(p.size, _KL_BLOCK)
    out, rel, tmp = np.empty(size), np.empty(size), np.empty(size)
    total = 0.0
    with np.errstate(under="ignore", divide="ignore", invalid="ignore"):
        for start in range(0, p.size, _KL_BLOCK):
            p_b, q_b = p[start:start + _KL_BLOCK], q[start:start + _KL_BLOCK]
            m = p_b.size
            terms = _log_ratio_block(p_b, q_b, out[:m], rel[:m], tmp[:m])
            terms *= p_b
            total += terms.sum()
    return total


@primitive
def _sum_p_log_ratio(p, q, log_ratio):
    """Σ p · log_ratio for log_ratio = log(p/q), a private array that is overwritten.
    Differentiable in p and q: ∂/∂p = log(p/q) + 1, ∂/∂q = −p/q."""
    log_ratio *= p
    return log_ratio.sum()


defvjp(_sum_p_log_ratio,
       lambda ans, p, q, log_ratio: lambda g: g * (_normal_log_ratio(p, q) + 1.0),
       lambda ans, p, q, log_ratio: lambda g: -g * (p / q))


def _general_log_ratio(p, q, index, log_q):
    """log(p/q) for concrete flat p > 0 and q (> 0 unless ``log_q`` is given), every regime;
    None if ``log_q`` shows a q of exactly 0 (KL = inf).

    log1p((p − q)/q) where p ≥ q/2, log(p/q) below, and log p − log q where either of
    those leaves the normal range (with ``log_q`` for q whose linear value underflowed)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        rel = (p - q) / q
    usable = q > 0
    up = usable & (rel >= -0.5)
    q_safe = np.where(usable, q, 1.0)
    log_ratio = np.log1p(np.where(up, rel, 0.0))
    down = usable & ~up
    redo = ~usable
    if down.any():
        with np.errstate(over="ignore", under="ignore"):
            ratio = p / q_safe
        log_ratio = np.where(up, log_ratio, np.log(np.where(up, 1.0, ratio)))
        redo = redo | (down & (ratio < TINY))
    redo = redo | ~np.isfinite(log_ratio)
    if log_q is not None:
        redo = redo | (q < TINY)
    if redo.any():
        if log_q is not None:
            lq = np.reshape(np.asarray(getval(log_q())), (-1,))
            lq = lq if index is None else lq[index]
            if np.any(lq == -np.inf):
                return None
        else:
            lq = np.log(q_safe)
        log_ratio = np.where(redo, np.log(p) - np.where(redo, lq, 0.0), log_ratio)
    return log_ratio


@primitive
def _sum_p_log_ratio_exact(p, q, log_ratio):
    """Σ p · log_ratio, log_ratio = log(p/q) computed exactly (``_general_log_ratio``);
    ∂/∂p = log(p/q) + 1, ∂/∂q = −p/q, each formed directly (no chain through a
    quotient that underflows on the way)."""
    return np.sum(p * log_ratio)


defvjp(_sum_p_log_ratio_exact,
       lambda ans, p, q, log_ratio: lambda g: g * (log_ratio + 1.0),
       lambda ans, p, q, log_ratio: lambda g: -g * _nonnegative_ratio(p, q))


def mutual_information_of(p_joint, marginals=None):
    """I(A; B) of a 2-D joint table (a, b) without validation.

    p > 0 implies both marginals > 0; where their product underflows,
    log P(a) + log P(b) is used instead of log(P(a) P(b)).

    Parameters
    ----------
    p_joint : ndarray, shape (a, b)
        A joint pmf (not checked).
    marginals : tuple of ndarray, optional
        (P(a), P(b)) if the caller has them already.

    Returns
    -------
    float or autograd box
        I(A; B) in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.measures import mutual_information_of
    >>> abs(float(mutual_information_of(np.eye(3) / 3)) - float(np.log(3))) < 1e-15   # a few ulps of 1.1
    True
    """
    if isbox(p_joint):
        return _traced_mutual_information(p_joint)
    p_a, p_b = marginals if marginals is not None else (anp.sum(p_joint, axis=1),
                                                         anp.sum(p_joint, axis=0))
    product = p_a[:, None] * p_b[None, :]
    return kl_divergence_of(p_joint, product,
                            log_q=lambda: safe_log(p_a)[:, None] + safe_log(p_b)[None, :])


@primitive
def _traced_mutual_information(p_joint):
    """I(A; B) of a concrete joint, for autograd: the gradient comes from ``_mi_vjp``."""
    return mutual_information_of(p_joint)


def _mi_vjp(ans, p_joint):
    """∂I/∂p(a, b) = log p(a, b) − log P(a) − log P(b) − 1 on the support, in log space (the
    chain through P(a) P(b) overflows where that product underflows); off the support the
    slope of p log p at 0 is taken as 0, leaving −[P(a) > 0] − [P(b) > 0]."""
    p = np.asarray(p_joint, dtype=float)
    p_a, p_b = p.sum(axis=1), p.sum(axis=0)
    support = p > 0
    with np.errstate(divide="ignore"):
        log_p = np.log(np.where(support, p, 1.0))
        log_a, log_b = np.log(np.where(p_a > 0, p_a, 1.0)), np.log(np.where(p_b > 0, p_b, 1.0))
    slope = np.where(support, log_p - log_a[:, None] - log_b[None, :] + 1.0, 0.0)
    slope = slope - (p_a > 0)[:, None] - (p_b > 0)[None, :]
    return lambda g: g * slope


defvjp(_traced_mutual_information, _mi_vjp)


__all__ = ["entropy", "kl_divergence", "mutual_information", "entropy_of", "kl_divergence_of",
           "mutual_information_of", "scalar", "nonnegative_scalar"]
