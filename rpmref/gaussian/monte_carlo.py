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
from rpmref.gaussian.closed_form import QuadraticCritic, _check_critic, _check_pair

_MAX_SCORES = 4_000_000  # score-matrix entries per chunk of batches (~32 MB)


def sample_pairs(joint, size, rng):
    """``size`` (tuple) i.i.d. draws of (z, z') from ``joint``: returns
    z (*size, k) and z' (*size, k')."""
    rng = _generator(rng)
    low = np.linalg.cholesky(_check_pair(joint).cov)
    eps = rng.standard_normal(tuple(size) + (joint.mean.size,))
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
        scores = np.asarray(critic(z, z_prime), dtype=float)
        n = z.shape[-2]
        if scores.shape != z.shape[:-2] + (n, n):
            raise ValueError(f"critic must return scores of shape {z.shape[:-2] + (n, n)}; "
                             f"got {scores.shape}")
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
    n, batches = _positive_int("n", n), _positive_int("batches", batches)
    if batches < 2:
        raise ValueError(f"batches must be at least 2 for a standard error; got {batches}")
    draws = _draws(joint, list(critics.values()), n, batches, rng)
    return {name: (float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(batches)))
            for name, d in zip(critics, draws)}


def infonce_draws(joint, critic, n, batches, rng):
    """The ``batches`` individual I_N draws (batches,) for one critic."""
    return _draws(joint, [critic], _positive_int("n", n), _positive_int("batches", batches), rng)[0]


def _draws(joint, critics, n, batches, rng):
    """I_N draws (len(critics), batches), computed in chunks of batches."""
    _check_pair(joint)
    for critic in critics:
        if isinstance(critic, QuadraticCritic):
            _check_critic(critic, joint)
    rng = _generator(rng)
    chunk = max(1, _MAX_SCORES // (n * n))
    out = []
    for start in range(0, batches, chunk):
        z, zp = sample_pairs(joint, (min(chunk, batches - start), n), rng)
        out.append([infonce_per_batch(critic_scores(critic, z, zp)) for critic in critics])
    return np.concatenate(out, axis=1)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be an int seed or a numpy.random.Generator; got {type(rng).__name__}")


__all__ = ["sample_pairs", "critic_scores", "infonce_per_batch",
           "infonce_bound", "infonce_bounds", "infonce_draws"]
