"""Information measures on plain probability arrays (nats, 0 · log 0 = 0).

The public functions validate that their inputs are probability tables and
never renormalise them; the ``*_of`` variants skip validation for tables the
library has just built itself. All are differentiable by autograd (a traced
input gives a traced output; otherwise a float is returned).
"""
import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval, isbox

from rpmref.exact.numerics import TINY, safe_log, xlogx
from rpmref.exact.validation import Integer, Pmf, validate_params


def scalar(x):
    """A Python float for a concrete result; traced results are returned as they are."""
    return x if isbox(x) else float(x)


@validate_params(p=Pmf())
def entropy(p):
    """Shannon entropy H(p) = −Σ p log p of a pmf of any shape, in nats.

    p: array of any shape whose entries sum to 1 (a joint table gives the joint entropy).
    """
    return scalar(entropy_of(p))


@validate_params(p=Pmf(), q=Pmf(same_shape_as="p"))
def kl_divergence(p, q):
    """KL(p ‖ q) = Σ p log(p / q), in nats; +inf when q = 0 < p.

    p, q: pmfs of the same (any) shape. Each term is p · log(p / q) (the ratio
    first, as ``scipy.special.rel_entr`` does), never cross-entropy minus
    entropy, which loses precision as q → p; where p / q would overflow or
    underflow (q = 1e-320 beside p = 0.5) the term is p · (log p − log q).
    """
    return scalar(kl_divergence_of(p, q))


@validate_params(p_joint=Pmf(), split=Integer(minimum=1))
def mutual_information(p_joint, split=1):
    """I(A; B) of a joint pmf, in nats: KL(P(a, b) ‖ P(a) P(b)).

    p_joint: array of any shape with ndim ≥ 2; A is the first ``split`` axes and
    B the remaining ones (default: rows vs columns of a (k, k') table).
    """
    shape = np.shape(getval(p_joint))
    if len(shape) < 2 or split >= len(shape):
        raise ValueError(
            f"p_joint needs more than split={split} axes to split into (A, B), got shape {shape}")
    rows = int(np.prod(shape[:split]))
    return scalar(mutual_information_of(anp.reshape(p_joint, (rows, -1))))


def entropy_of(p):
    """H(p) without validation (traced or array result)."""
    return -anp.sum(xlogx(p))


def kl_divergence_of(p, q, log_q=None):
    """KL(p ‖ q) without validation (same shapes assumed).

    log_q: optional callable returning log q, for tables whose linear q may have
    underflowed (q < 2^-1022 while log q is known exactly); those entries use it.

    Terms: for p ≥ q/2, p · log1p((p − q)/q) — p − q is exact there (Sterbenz), so
    KL ≈ 1e-20 is resolved instead of drowning in the rounding of log(p/q) ≈ ±1e-10
    terms; for p < q/2, p · log(p/q); where either leaves the normal range,
    p · (log p − log q).
    """
    pv, qv = np.asarray(getval(p)), np.asarray(getval(q))
    used = pv > 0
    if log_q is None and np.any(used & (qv == 0)):
        return float("inf")
    usable = used & (qv > 0)
    p_s, q_s = anp.where(usable, p, 1.0), anp.where(usable, q, 1.0)
    with np.errstate(over="ignore"):
        rel = (p_s - q_s) / q_s
    up = np.asarray(getval(rel)) >= -0.5
    log_ratio = anp.log1p(anp.where(up, rel, 0.0))
    down = usable & ~up
    if down.any():
        with np.errstate(over="ignore", under="ignore"):
            ratio = p_s / q_s
        log_ratio = anp.where(up, log_ratio, anp.log(anp.where(up, 1.0, ratio)))
        tiny_ratio = down & (np.asarray(getval(ratio)) < TINY)
    else:
        tiny_ratio = False
    redo = used & (~np.isfinite(getval(log_ratio)) | tiny_ratio)
    if log_q is not None:
        redo = redo | (used & (qv < TINY))
    if redo.any():
        lq = log_q() if log_q is not None else safe_log(anp.where(redo, q, 1.0))
        if log_q is not None and np.any(used & (np.asarray(getval(lq)) == -np.inf)):
            return float("inf")
        exact = safe_log(anp.where(redo, p, 1.0)) - anp.where(redo, lq, 0.0)
        log_ratio = anp.where(redo, exact, log_ratio)
    return anp.sum(anp.where(used, p * log_ratio, 0.0))


def mutual_information_of(p_joint):
    """I(A; B) of a 2-D joint table (a, b) without validation.

    p > 0 implies both marginals > 0; where their product underflows, log P(a) + log P(b)
    is used instead of log(P(a) P(b)).
    """
    p_a, p_b = anp.sum(p_joint, axis=1), anp.sum(p_joint, axis=0)
    product = p_a[:, None] * p_b[None, :]
    return kl_divergence_of(p_joint, product,
                            log_q=lambda: safe_log(p_a)[:, None] + safe_log(p_b)[None, :])


__all__ = ["entropy", "kl_divergence", "mutual_information", "entropy_of", "kl_divergence_of",
           "mutual_information_of", "scalar"]
