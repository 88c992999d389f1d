"""Monte Carlo estimate of the N-sample InfoNCE bound I_N (Eq. 6, E7) for a
Gaussian recognition joint, with any critic.

    I_N(f) = E[ (1/N) Σ_i log( e^{f(z_i, z'_i)} / ((1/N) Σ_j e^{f(z_i, z'_j)}) ) ]

with the N pairs (z_i, z'_i) of a batch i.i.d. from P(z, z'). Each batch gives
one unbiased draw of I_N; the estimate is the mean over ``batches`` draws and
its standard error is their standard deviation / sqrt(batches). Every draw is
≤ log N exactly (each term is a log-softmax entry, ≤ 0, plus log N).
"""
import numpy as np

from rpmref.exact.numerics import logsumexp
from rpmref.exact.validation import as_real_array, check_int, check_positive_int, check_seed
from rpmref.gaussian.closed_form import QuadraticCritic, _check_critic, _check_pair

_MAX_SCORES = 4_000_000  # score-matrix entries per chunk of batches (~32 MB)
#: The largest score matrix one batch may need: n × n float64 entries ≤ this (512 MiB), so
#: n ≤ 8192. A batch's n × n scores are intrinsic to the estimator (every z_i against every z'_j).
MAX_SCORE_ELEMENTS = 2**26


def sample_pairs(joint, size, rng):
    """``size`` (tuple) i.i.d. draws of (z, z') from ``joint``: returns
    z (*size, k) and z' (*size, k')."""
    rng = _generator(rng)
    joint = _check_pair(joint)
    size = _size(size)
    low = np.linalg.cholesky(joint.cov)
    eps = rng.standard_normal(size + (joint.mean.size,))
    draws = joint.mean + eps @ low.T
    return draws[..., :joint.k], draws[..., joint.k:]


def critic_scores(critic, z, z_prime):
    """The score matrix f(z_i, z'_j) (..., N, N) of a batch z (..., N, k), z' (..., N, k').

    ``critic`` is a QuadraticCritic or a callable with the same contract.
    """
    if isinstance(critic, QuadraticCritic):
        W, Q, b = (np.asarray(a, dtype=float) for a in critic)
        pairwise = (z @ W) @ np.swapaxes(z_prime, -1, -2)         # (..., N, N)
        own = -0.5 * np.sum((z_prime @ Q) * z_prime, axis=-1) + z_prime @ b     # (..., N)
        return pairwise + own[..., None, :]
    if callable(critic):
        scores = as_real_array(critic(z, z_prime), "the critic's scores", finite=False)
        n = z.shape[-2]
        if scores.shape != z.shape[:-2] + (n, n):
            raise ValueError(f"critic must return scores of shape {z.shape[:-2] + (n, n)}; "
                             f"got {scores.shape}")
        if np.isnan(scores).any() or (scores == np.inf).any():
            raise ValueError("critic returned nan or +inf scores (−inf, a masked pair, is "
                             "allowed, but not on every candidate of a row)")
        return scores
    raise TypeError(f"critic must be a QuadraticCritic or a callable; got {type(critic).__name__}")


def infonce_per_batch(scores):
    """One I_N draw per batch from scores (..., N, N) with positives on the diagonal."""
    n = scores.shape[-1]
    diag = np.diagonal(scores, axis1=-2, axis2=-1)
    return np.mean(diag - logsumexp(scores, axis=-1), axis=-1) + np.log(n)


def infonce_bound(joint, critic, n, batches=1000, rng=0):
    """Monte Carlo I_N (Eq. 6) for the Gaussian ``joint`` and ``critic``.

    Returns (estimate, standard error), both floats, from ``batches`` independent
    batches of ``n`` pairs. ``rng`` is a seed or a numpy Generator.
    """
    return infonce_bounds(joint, {"f": critic}, n, batches, rng)["f"]


def infonce_bounds(joint, critics, n, batches=1000, rng=0):
    """Monte Carlo I_N for several critics scored on the *same* batches (common
    random numbers): ``critics`` maps names to critics; returns a dict mapping
    each name to (estimate, standard error)."""
    if not isinstance(critics, dict) or not critics:
        raise TypeError("critics must be a non-empty dict mapping names to critics; got "
                        f"{type(critics).__name__}")
    n = check_positive_int(n, "n")
    batches = check_positive_int(batches, "batches", minimum=2)   # 2 for a standard error
    draws = _draws(joint, list(critics.values()), n, batches, rng)
    return {name: (float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(batches)))
            for name, d in zip(critics, draws)}


def infonce_draws(joint, critic, n, batches, rng):
    """The ``batches`` individual I_N draws (batches,) for one critic."""
    return _draws(joint, [critic], check_positive_int(n, "n"),
                  check_positive_int(batches, "batches"), rng)[0]


def _draws(joint, critics, n, batches, rng):
    """I_N draws (len(critics), batches), computed in chunks of batches."""
    joint = _check_pair(joint)
    if n * n > MAX_SCORE_ELEMENTS:
        raise ValueError(
            f"n = {n} needs an {n} × {n} score matrix per batch ({n * n * 8 / 2**30:.3g} GiB of "
            f"float64), more than the budget of {MAX_SCORE_ELEMENTS * 8 / 2**20:.0f} MiB "
            f"(rpmref.gaussian.monte_carlo.MAX_SCORE_ELEMENTS): use n ≤ "
            f"{int(np.sqrt(MAX_SCORE_ELEMENTS))}")
    for critic in critics:
        if isinstance(critic, QuadraticCritic):
            _check_critic(critic, joint)
        elif not callable(critic):
            raise TypeError("critic must be a QuadraticCritic or a callable; got "
                            f"{type(critic).__name__}")
    rng = _generator(rng)
    chunk = max(1, _MAX_SCORES // (n * n))
    out = []
    for start in range(0, batches, chunk):
        z, zp = sample_pairs(joint, (min(chunk, batches - start), n), rng)
        out.append([infonce_per_batch(critic_scores(critic, z, zp)) for critic in critics])
    return np.concatenate(out, axis=1)


def _size(size):
    """``size`` as a tuple of non-negative ints (an int is a 1-tuple)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, tuple):
        raise TypeError(f"size must be a tuple of non-negative integers; got {type(size).__name__}")
    return tuple(check_int(s, f"size[{i}]", minimum=0) for i, s in enumerate(size))


def _generator(rng):
    """``rng`` if it is a Generator, else ``numpy.random.default_rng(rng)`` for a valid seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(check_seed(rng, "rng"))


__all__ = ["sample_pairs", "critic_scores", "infonce_per_batch",
           "infonce_bound", "infonce_bounds", "infonce_draws"]
