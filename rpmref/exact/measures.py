"""Information measures on plain probability arrays (nats, 0 · log 0 = 0).

The public functions validate that their inputs are probability tables and
never renormalise them; the ``*_of`` variants skip validation for tables the
library has just built itself.
"""
import numpy as np

from rpmref.exact.numerics import xlogx
from rpmref.exact.validation import check_pmf, check_positive_int


def entropy(p):
    """Shannon entropy H(p) = −Σ p log p of a pmf of any shape, in nats.

    p: array of any shape whose entries sum to 1 (a joint table gives the joint entropy).
    """
    return entropy_of(check_pmf(p, "p"))


def kl_divergence(p, q):
    """KL(p ‖ q) = Σ p log(p / q), in nats; +inf when q = 0 < p.

    p, q: pmfs of the same (any) shape. Each term is p · log(p / q) (the ratio
    first, as ``scipy.special.rel_entr`` does), never cross-entropy minus
    entropy, which loses precision as q → p.
    """
    p = check_pmf(p, "p")
    q = check_pmf(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    return kl_divergence_of(p, q)


def mutual_information(p_joint, split=1):
    """I(A; B) of a joint pmf, in nats: KL(P(a, b) ‖ P(a) P(b)).

    p_joint: array of any shape with ndim ≥ 2; A is the first ``split`` axes and
    B the remaining ones (default: rows vs columns of a (k, k') table).
    """
    p = check_pmf(p_joint, "p_joint")
    split = check_positive_int(split, "split")
    if p.ndim < 2 or split >= p.ndim:
        raise ValueError(
            f"p_joint needs more than split={split} axes to split into (A, B), got shape {p.shape}")
    return mutual_information_of(p.reshape(int(np.prod(p.shape[:split])), -1))


def entropy_of(p):
    """H(p) without validation."""
    return float(-np.sum(xlogx(p)))


def kl_divergence_of(p, q):
    """KL(p ‖ q) without validation (same shapes assumed).

    Where p is close to q the term is p · log1p((p − q)/q): p − q is exact there
    (Sterbenz), so KL ≈ 1e-20 is resolved instead of drowning in the rounding
    of log(p/q) ≈ ±1e-10 terms.
    """
    if np.any((q == 0) & (p > 0)):
        return float("inf")
    used = p > 0
    p, q = p[used], q[used]
    relative = (p - q) / q
    near = np.abs(relative) < 0.5
    log_ratio = np.where(near, np.log1p(np.where(near, relative, 0.0)),
                         np.log(p / q))
    return float(np.sum(p * log_ratio))


def mutual_information_of(p_joint):
    """I(A; B) of a 2-D joint table (a, b) without validation."""
    product = np.outer(p_joint.sum(axis=1), p_joint.sum(axis=0))
    # p > 0 implies both marginals > 0, so the product is never 0 where p > 0.
    return kl_divergence_of(p_joint, product)
