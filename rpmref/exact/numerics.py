"""Numerically safe building blocks, differentiable by autograd.

Everything here works on ``autograd.numpy`` arrays (plain NumPy arrays too), so
the same function serves the exact discrete core and the trainer's losses.
"""
import autograd.numpy as anp
import numpy as np
from autograd.tracer import isbox


def logsumexp(a, axis=None, keepdims=False):
    """log Σ exp(a) along ``axis``, stable for any finite or −inf entries.

    Shifts by the maximum only where that maximum is finite, so an all −inf
    slice gives −inf (the log of an empty sum) rather than NaN, and +inf gives
    +inf. Differentiable by autograd (the shift is treated as a constant, which
    is exact because the result does not depend on it).
    """
    a = _as_array(a)
    amax = anp.max(a, axis=axis, keepdims=True)
    shift = anp.where(anp.isfinite(amax), amax, 0.0)
    shift = _stop_gradient(shift)
    with np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf slice
        out = anp.log(anp.sum(anp.exp(a - shift), axis=axis, keepdims=True)) + shift
    if not keepdims:
        out = anp.squeeze(out, axis=axis) if axis is not None else anp.reshape(out, ())
    return out


def log_softmax(a, axis=-1):
    """``a − logsumexp(a)`` along ``axis``: never ``log(softmax(a))``."""
    return a - logsumexp(a, axis=axis, keepdims=True)


def xlogy(x, y):
    """x · log y with the convention 0 · log y = 0 (also for y = 0).

    Differentiable in both arguments without NaN gradients at x = 0: the log is
    taken of ``where(x != 0, y, 1)`` (STYLE.md's gradient trap).
    """
    x, y = _as_array(x), _as_array(y)
    safe_y = anp.where(x != 0, y, 1.0)
    with np.errstate(divide="ignore"):  # x log 0 = -inf for x > 0
        return anp.where(x != 0, x * anp.log(safe_y), 0.0)


def xlogx(x):
    """x · log x with 0 · log 0 = 0."""
    return xlogy(x, x)


def _as_array(a):
    """A float array from ``a``, leaving autograd's traced values untouched."""
    return a if isbox(a) else np.asarray(a, dtype=float)


def _stop_gradient(x):
    """Return the value of ``x`` detached from autograd's tape."""
    return getattr(x, "_value", x)
