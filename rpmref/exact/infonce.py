"""The energy prior and the InfoNCE objectives for a critic table f(z, z').

Shapes: ``p_zz`` = P(z, z') (k, k'), ``f`` (k, k') any finite reals (Sec. 3.2).
"""
from collections import namedtuple

import numpy as np

from rpmref.exact.numerics import logsumexp
from rpmref.exact.validation import check_critic, check_pmf, check_positive_int

InfoNCEBound = namedtuple("InfoNCEBound", "estimate stderr method n_batches")
InfoNCEBound.__doc__ = """The N-sample InfoNCE objective I_N (Eq. 6).

estimate: I_N in nats; stderr: its Monte Carlo standard error (0.0 when exact);
method: "exact" or "mc"; n_batches: Monte Carlo batches drawn (None when exact)."""

#: Default budget for ``infonce_bound(method="exact")``: array elements in the enumeration.
EXACT_MAX_TERMS = 10_000_000


def _check_p_zz_f(p_zz, f):
    p_zz = check_pmf(p_zz, "p_zz", ndim=2)
    return p_zz, check_critic(f, "f", p_zz.shape)


def _log(a):
    with np.errstate(divide="ignore"):
        return np.log(a)


def log_partition(p_zz, f):
    """log Z(z) = log Σ_{z'} P(z') e^{f(z, z')} (Eq. 22), shape (k,)."""
    p_zz, f = _check_p_zz_f(p_zz, f)
    return logsumexp(_log(p_zz.sum(axis=0))[None, :] + f, axis=1)


def energy_prior(p_zz, f):
    """The energy prior P_θ(z, z') = P(z) P(z') e^{f(z,z')} / Z(z) (Eq. 21–22).

    P(z), P(z') are the marginals of ``p_zz`` (k, k'); returns a (k, k') pmf,
    computed in log space, zero on rows/columns the marginals do not reach.
    """
    p_zz, f = _check_p_zz_f(p_zz, f)
    log_p_z, log_p_z_prime = _log(p_zz.sum(axis=1)), _log(p_zz.sum(axis=0))
    log_z = logsumexp(log_p_z_prime[None, :] + f, axis=1)
    return np.exp(log_p_z[:, None] + log_p_z_prime[None, :] + f - log_z[:, None])


def infonce_limit(p_zz, f):
    """The infinite-sample InfoNCE objective I_∞(f) (Eq. 7, 25), in nats.

    I_∞ = E_{P(z,z')}[f(z,z')] − E_{P(z)}[log Σ_{z'} P(z') e^{f(z,z')}],
    evaluated as Σ P(z,z') (f(z,z') − log Z(z)) so large |f| cancels before summing.
    """
    p_zz, f = _check_p_zz_f(p_zz, f)
    log_z = logsumexp(_log(p_zz.sum(axis=0))[None, :] + f, axis=1)
    support = p_zz > 0
    return float(np.sum(p_zz[support] * (f - log_z[:, None])[support]))


def infonce_bound(p_zz, f, n, method="auto", n_batches=2000, rng=None, seed=None,
                  max_terms=EXACT_MAX_TERMS):
    """The N-sample InfoNCE objective I_N(f) (Eq. 6), exactly or by Monte Carlo.

    I_N = E[(1/N) Σ_i log( e^{f(z_i,z'_i)} / ((1/N) Σ_j e^{f(z_i,z'_j)}) )],
    pairs (z_i, z'_i) i.i.d. from ``p_zz`` (k, k'); ``n`` is N (the batch size).

    method:
      "exact" — enumeration. By exchangeability every term i has the law of term 1,
        whose negatives z'_2..z'_N are i.i.d. P(z'); the sum over them depends only on
        their counts, so I_N = log N + Σ_{z,z'} P(z,z') Σ_c Mult(c) [f(z,z') −
        log(e^{f(z,z')} + Σ_{z''} c_{z''} e^{f(z,z'')})] over the count vectors c of N−1
        draws. Refused (ValueError) when that needs more than ``max_terms`` elements.
      "mc" — ``n_batches`` independent batches of N pairs; the estimate is their
        mean and ``stderr`` the standard error of that mean.
      "auto" (default) — "exact" when within ``max_terms``, otherwise "mc".
    rng: a ``numpy.random.Generator``; or ``seed`` to make one (Monte Carlo only).
    Returns an ``InfoNCEBound(estimate, stderr, method, n_batches)``.
    """
    p_zz, f = _check_p_zz_f(p_zz, f)
    n = check_positive_int(n, "n")
    if method not in ("auto", "exact", "mc"):
        raise ValueError(f"method must be 'auto', 'exact' or 'mc', got {method!r}")
    n_terms = _exact_size(p_zz, n)
    if method == "exact" and n_terms > max_terms:
        raise ValueError(
            f"infonce_bound(method='exact') with n={n} and {np.count_nonzero(p_zz.sum(0))} "
            f"reachable z' states needs {n_terms:.3g} terms, more than max_terms={max_terms:g}; "
            "use method='mc' or raise max_terms")
    if method == "exact" or (method == "auto" and n_terms <= max_terms):
        return InfoNCEBound(_infonce_exact(p_zz, f, n), 0.0, "exact", None)
    n_batches = check_positive_int(n_batches, "n_batches", minimum=2)
    if rng is None:
        rng = np.random.default_rng(seed)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    values = _infonce_batches(p_zz, f, n, n_batches, rng)
    return InfoNCEBound(float(values.mean()), float(values.std(ddof=1) / np.sqrt(n_batches)),
                        "mc", n_batches)


def _n_compositions(total, parts):
    """How many count vectors of ``parts`` non-negative integers sum to ``total``."""
    from math import comb
    return comb(total + parts - 1, parts - 1)


def _exact_size(p_zz, n):
    parts = int(np.count_nonzero(p_zz.sum(axis=0)))
    return _n_compositions(n - 1, parts) * p_zz.size


def _compositions(total, parts):
    """All count vectors (M, parts) of non-negative integers summing to ``total``."""
    if parts == 1:
        return np.array([[total]], dtype=np.int64)
    blocks = []
    for first in range(total, -1, -1):
        rest = _compositions(total - first, parts - 1)
        blocks.append(np.hstack([np.full((rest.shape[0], 1), first, dtype=np.int64), rest]))
    return np.vstack(blocks)


def _infonce_exact(p_zz, f, n):
    p_z_prime = p_zz.sum(axis=0)
    reach = np.flatnonzero(p_z_prime > 0)
    counts = _compositions(n - 1, reach.size)                      # (M, m)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n)))])
    log_weight = (log_factorial[n - 1] - log_factorial[counts].sum(axis=1)
                  + counts @ np.log(p_z_prime[reach]))             # (M,) multinomial
    weight = np.exp(log_weight)
    # log Σ_{z''} c_{z''} e^{f(z, z'')} for every count vector and z: (M, k); −inf if N = 1.
    negatives = logsumexp(_log(counts)[:, None, :] + f[None, :, reach], axis=2)
    term = f[None] - np.logaddexp(f[None], negatives[:, :, None])  # (M, k, k')
    expected = np.tensordot(weight, term, axes=1)                  # (k, k')
    support = p_zz > 0
    return float(np.log(n) + np.sum(p_zz[support] * expected[support]))


def _infonce_batches(p_zz, f, n, n_batches, rng, chunk_elements=4_000_000):
    """One I_N sample per batch of n pairs: log n + mean_i [f_ii − logsumexp_j f_ij]."""
    cdf = np.cumsum(p_zz.ravel())
    k_prime = p_zz.shape[1]
    per_chunk = max(1, chunk_elements // (n * n))
    values = []
    for start in range(0, n_batches, per_chunk):
        b = min(per_chunk, n_batches - start)
        flat = np.searchsorted(cdf, rng.random((b, n)) * cdf[-1], side="right")
        flat = np.minimum(flat, p_zz.size - 1)
        z, z_prime = flat // k_prime, flat % k_prime
        scores = f[z[:, :, None], z_prime[:, None, :]]             # (b, n, n)
        positives = np.diagonal(scores, axis1=1, axis2=2)          # (b, n)
        values.append(np.log(n) + np.mean(positives - logsumexp(scores, axis=2), axis=1))
    return np.concatenate(values)
