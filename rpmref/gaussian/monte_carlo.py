"""Monte Carlo estimate of the N-sample InfoNCE bound I_N (Eq. 6, E7) for a
Gaussian recognition joint, with any critic.

    I_N(f) = E[ (1/N) Σ_i log( e^{f(z_i, z'_i)} / ((1/N) Σ_j e^{f(z_i, z'_j)}) ) ]

with the N pairs (z_i, z'_i) of a batch i.i.d. from P(z, z'). Each batch gives
one unbiased draw of I_N; the estimate is the mean over ``batches`` draws and
its standard error is their standard deviation / sqrt(batches). Every draw is
≤ log N exactly (each term is a log-softmax entry, ≤ 0, plus log N).
"""
import math

import numpy as np

from rpmref.exact.numerics import mean_and_standard_error
from rpmref.exact.validation import as_generator, as_real_array, check_int, check_positive_int
from rpmref.gaussian.closed_form import QuadraticCritic, _check_critic, _check_pair

_MAX_SCORES = 4_000_000  # score-matrix entries per chunk of batches (~32 MB)
#: The largest score matrix one batch may need: n × n float64 entries ≤ this (512 MiB), so
#: n ≤ 8192. A batch's n × n scores are intrinsic to the estimator (every z_i against every z'_j).
MAX_SCORE_ELEMENTS = 2**26
#: The largest draw ``sample_pairs`` makes: (size…, k + k') float64 entries ≤ this (512 MiB).
MAX_SAMPLE_ELEMENTS = 2**26


def sample_pairs(joint, size, rng):
    """I.i.d. draws of (z, z') from a Gaussian joint: ``size`` of them, z and z' split apart.

    Each draw is mean + L ε with L the Cholesky factor of ``joint.cov`` and ε standard
    normal, so the draws have exactly the mean and covariance of ``joint`` in distribution.

    Parameters
    ----------
    joint : GaussianPair
        The joint P(z, z') (Eq. 3, 11), z of dimension k and z' of dimension k'.
    size : int or tuple of int
        The batch shape (an int is a 1-tuple); entries ≥ 0.
    rng : int, sequence of int, SeedSequence, None or numpy.random.Generator
        A Generator is used (and advanced) as it is; anything else seeds
        ``numpy.random.default_rng``.

    Returns
    -------
    z : ndarray, shape (*size, k)
    z_prime : ndarray, shape (*size, k')

    Raises
    ------
    TypeError
        ``joint`` not a GaussianPair, ``size`` not an int or a tuple of ints, or ``rng``
        not a Generator or a valid seed.
    ValueError
        ``joint`` malformed (see ``GaussianPair``), a negative entry of ``size``, more
        than ``MAX_SAMPLE_ELEMENTS`` draws in all, or a negative seed.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import gaussian_pair
    >>> from rpmref.gaussian.monte_carlo import sample_pairs
    >>> z, z_prime = sample_pairs(gaussian_pair(1.0, 1.0, 0.6), (20000,), rng=0)
    >>> z.shape, z_prime.shape
    ((20000, 1), (20000, 1))
    >>> # sample correlation vs ρ = 0.6: its sd is (1 − ρ²)/√20000 ≈ 0.0045, so 0.03 is ~7 sd
    >>> bool(abs(np.corrcoef(z[:, 0], z_prime[:, 0])[0, 1] - 0.6) < 0.03)
    True
    """
    rng = as_generator(rng)
    joint = _check_pair(joint)
    size = _size(size)
    elements = math.prod(size) * joint.mean.size           # Python ints: no overflow
    if elements > MAX_SAMPLE_ELEMENTS:
        raise ValueError(
            f"size = {size} asks for {elements:.3g} float64 draws (× {joint.mean.size} "
            f"coordinates), more than MAX_SAMPLE_ELEMENTS = {MAX_SAMPLE_ELEMENTS} "
            "(rpmref.gaussian.monte_carlo); draw in smaller batches")
    low = np.linalg.cholesky(joint.cov)
    eps = rng.standard_normal(size + (joint.mean.size,))
    draws = joint.mean + eps @ low.T
    return draws[..., :joint.k], draws[..., joint.k:]


def critic_scores(critic, z, z_prime):
    """The score matrix f(z_i, z'_j) of a batch: every z_i against every z'_j.

    A ``QuadraticCritic`` is evaluated in closed form, zᵢᵀ W z'ⱼ − ½ z'ⱼᵀ Q z'ⱼ + bᵀ z'ⱼ
    (the function of z alone that the critic may carry is dropped: it cancels in I_N,
    Eq. 6). A callable is called as ``critic(z, z_prime)`` and must return the scores
    itself; −inf entries (masked pairs) are allowed.

    Parameters
    ----------
    critic : QuadraticCritic or callable
        The critic f(z, z').
    z : array_like, shape (..., N, k)
    z_prime : array_like, shape (..., N', k')
        N' = N for a batch of pairs (I_N); other N' score N anchors against N' candidates.

    Returns
    -------
    ndarray, shape (..., N, N')
        Entry [..., i, j] is f(z_i, z'_j); for N' = N the positives are on the diagonal.

    Raises
    ------
    TypeError
        ``critic`` neither a QuadraticCritic nor callable, a callable's scores not real,
        or ``z``, ``z_prime`` or the critic's W, Q, b not arrays of real numbers.
    ValueError
        ``z`` or ``z_prime`` not finite or not (..., N, k) and (..., N', k') with the same
        batch shape; W, Q, b not of shapes (k, k'), (k', k'), (k',); a callable's scores
        of the wrong shape, or containing nan or +inf, or −inf on every candidate of a row;
        a QuadraticCritic's scores beyond the float64 range.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import bilinear_critic
    >>> from rpmref.gaussian.monte_carlo import critic_scores
    >>> z, z_prime = np.array([[1.0], [2.0]]), np.array([[3.0], [-1.0]])
    >>> critic_scores(bilinear_critic(0.5), z, z_prime)      # 0.5 z_i z'_j
    array([[ 1.5, -0.5],
           [ 3. , -1. ]])
    >>> critic_scores(lambda a, b: -(a - b[..., None, :, 0]) ** 2, z, z_prime)   # −(z_i − z'_j)²
    array([[-4., -4.],
           [-1., -9.]])
    """
    z = as_real_array(z, "z", allow_empty=True)
    z_prime = as_real_array(z_prime, "z_prime", allow_empty=True)
    if z.ndim < 2 or z_prime.ndim < 2 or z.shape[:-2] != z_prime.shape[:-2]:
        raise ValueError("z and z_prime must be (..., N, k) and (..., N', k') with the same "
                         f"batch shape (...); got z {z.shape} and z_prime {z_prime.shape}")
    if isinstance(critic, QuadraticCritic):
        k, k_prime = z.shape[-1], z_prime.shape[-1]
        critic = QuadraticCritic(*(as_real_array(a, f"critic.{name}", dims=dims)
                                   for a, name, dims in zip(critic, "WQb", [
                                       (k, k_prime), (k_prime, k_prime), (k_prime,)])))
    elif not callable(critic):
        raise TypeError("critic must be a QuadraticCritic or a callable; got "
                        f"{type(critic).__name__}")
    return _scores(critic, z, z_prime)


def _scores(critic, z, z_prime):
    """critic_scores for a checked batch and critic."""
    if isinstance(critic, QuadraticCritic):
        W, Q, b = (np.asarray(a, dtype=float) for a in critic)
        with np.errstate(over="ignore", invalid="ignore"):
            pairwise = (z @ W) @ np.swapaxes(z_prime, -1, -2)         # (..., N, N)
            own = -0.5 * np.sum((z_prime @ Q) * z_prime, axis=-1) + z_prime @ b     # (..., N)
            scores = pairwise + own[..., None, :]
        if not np.all(np.isfinite(scores)):
            raise ValueError(
                "the critic's scores zᵀWz' − ½z'ᵀQz' + bᵀz' leave the float64 range (largest "
                f"|W| entry {float(np.max(np.abs(W))):.3g}, |Q| {float(np.max(np.abs(Q))):.3g}, "
                f"|b| {float(np.max(np.abs(b), initial=0.0)):.3g}); rescale the critic")
        return scores
    if callable(critic):
        scores = as_real_array(critic(z, z_prime), "the critic's scores", finite=False)
        shape = z.shape[:-1] + z_prime.shape[-2:-1]
        if scores.shape != shape:
            raise ValueError(f"critic must return scores of shape {shape}; got {scores.shape}")
        _check_scores(scores, "critic returned")
        return scores
    raise TypeError(f"critic must be a QuadraticCritic or a callable; got {type(critic).__name__}")


def infonce_per_batch(scores):
    """One draw of I_N (Eq. 6) per batch from its score matrix, positives on the diagonal.

    (1/N) Σ_i [f(z_i, z'_i) − log Σ_j e^{f(z_i, z'_j)}] + log N, computed as log-softmax; each
    term is a log-softmax entry (≤ 0), so every draw is ≤ log N (E7).

    Parameters
    ----------
    scores : ndarray, shape (..., N, N)
        f(z_i, z'_j), e.g. from ``critic_scores``.

    Returns
    -------
    ndarray, shape (...)
        The I_N draw of each batch, in nats (a 0-d array for one batch).

    Raises
    ------
    TypeError
        ``scores`` not an array of real numbers (bool, complex, object, strings, masked).
    ValueError
        ``scores`` not (..., N, N) with N ≥ 1, or holding nan or +inf, or −inf (a masked
        pair) on every candidate of a row.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian.monte_carlo import infonce_per_batch
    >>> float(infonce_per_batch(np.zeros((4, 4))))       # a constant critic: log 4 − log 4
    0.0
    >>> # positives far above the negatives: log 4 − log(1 + 3e⁻⁵⁰) ≈ log 4
    >>> bool(np.isclose(infonce_per_batch(50.0 * np.eye(4)), np.log(4), rtol=0, atol=1e-15))
    True
    """
    scores = as_real_array(scores, "scores", finite=False)
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2] or scores.shape[-1] == 0:
        raise ValueError("scores must be square in its last two axes, (..., N, N) with N ≥ 1 "
                         f"(f(z_i, z'_j), positives on the diagonal); got shape {scores.shape}")
    _check_scores(scores, "scores hold")
    return _per_batch(scores)


def _check_scores(scores, what):
    """ValueError if ``scores`` hold nan or +inf, or a row that is −inf throughout."""
    if np.isnan(scores).any() or (scores == np.inf).any():
        raise ValueError(f"{what} nan or +inf scores (−inf, a masked pair, is allowed, but not "
                         "on every candidate of a row)")
    if (scores.max(axis=-1) == -np.inf).any():
        raise ValueError(f"{what} −inf on every candidate of a row: its softmax is 0/0 (−inf, "
                         "a masked pair, is allowed, but not on every candidate of a row)")


def _per_batch(scores):
    """infonce_per_batch for checked scores."""
    n = scores.shape[-1]
    top = scores.max(axis=-1)
    # log_softmax at the positives as (f_ii − top) − log Σ_j e^{f_ij − top}, not
    # f_ii − logsumexp: that adds the log (≤ log n) to top and takes it back, rounding it
    # away at |f| ≥ 1e16. One (…, n, n) temporary, exponentiated in place (entries ≤ 0).
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = scores - top[..., None]
        np.exp(shifted, out=shifted)
        positives = (np.diagonal(scores, axis1=-2, axis2=-1) - top) - np.log(shifted.sum(axis=-1))
    return np.mean(positives, axis=-1) + np.log(n)


def infonce_bound(joint, critic, n, batches=1000, rng=0):
    """Monte Carlo estimate of I_N (Eq. 6) for a Gaussian ``joint`` and a ``critic``.

    The mean of ``batches`` independent draws of I_N, each from ``n`` fresh pairs
    (``sample_pairs``), and its standard error (the draws' sd, ddof = 1, over
    √batches). Every draw is ≤ log n (E7).

    Parameters
    ----------
    joint : GaussianPair
        P(z, z').
    critic : QuadraticCritic or callable
        As for ``critic_scores``; a QuadraticCritic must fit the joint's dimensions.
    n : int
        Pairs per batch (N ≥ 1); n² ≤ ``MAX_SCORE_ELEMENTS``.
    batches : int, default 1000
        Independent batches (≥ 2, for a standard error).
    rng : seed or numpy.random.Generator, default 0
        As for ``sample_pairs``; the same seed gives the same estimate.

    Returns
    -------
    estimate : float
        In nats.
    stderr : float
        Its standard error, in nats.

    Raises
    ------
    TypeError
        ``joint`` not a GaussianPair, ``critic`` neither a QuadraticCritic nor callable,
        ``n`` or ``batches`` not an integer, or ``rng`` not a Generator or a valid seed.
    ValueError
        ``n`` < 1, ``batches`` < 2, n² > ``MAX_SCORE_ELEMENTS``, a critic that does not
        fit the joint, or scores as for ``critic_scores``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import bilinear_critic, gaussian_pair
    >>> from rpmref.gaussian.monte_carlo import infonce_bound, infonce_draws
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> estimate, stderr = infonce_bound(joint, bilinear_critic(0.0), 8, batches=50)
    >>> round(estimate, 12), round(stderr, 12)     # f = 0 gives I_N = 0 on every batch
    (0.0, 0.0)
    >>> estimate, stderr = infonce_bound(joint, bilinear_critic(0.5), 16, batches=200, rng=3)
    >>> draws = infonce_draws(joint, bilinear_critic(0.5), 16, 200, rng=3)   # the same batches
    >>> bool(np.isclose(estimate, draws.mean()) and np.isclose(stderr, draws.std(ddof=1) / np.sqrt(200)))
    True
    >>> bool(estimate <= np.log(16))
    True
    """
    return infonce_bounds(joint, {"f": critic}, n, batches, rng)["f"]


def infonce_bounds(joint, critics, n, batches=1000, rng=0):
    """Monte Carlo I_N (Eq. 6) of several critics scored on the *same* batches.

    Common random numbers: one stream of batches, every critic scored on each, so the
    differences between critics are estimated more sharply than their standard errors
    suggest. Each critic's result equals what ``infonce_bound`` gives for it alone with
    the same ``rng``.

    Parameters
    ----------
    joint : GaussianPair
        P(z, z').
    critics : dict
        Non-empty, mapping names to critics (as for ``critic_scores``).
    n : int
        Pairs per batch (≥ 1, n² ≤ ``MAX_SCORE_ELEMENTS``).
    batches : int, default 1000
        Independent batches (≥ 2).
    rng : seed or numpy.random.Generator, default 0
        As for ``sample_pairs``.

    Returns
    -------
    dict
        Name → (estimate, standard error), floats in nats.

    Raises
    ------
    TypeError
        ``critics`` not a non-empty dict, or as for ``infonce_bound``.
    ValueError
        As for ``infonce_bound``.

    Examples
    --------
    >>> from rpmref.gaussian import bilinear_critic, gaussian_pair, optimal_critic
    >>> from rpmref.gaussian.monte_carlo import infonce_bound, infonce_bounds
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> both = infonce_bounds(joint, {"bilinear": bilinear_critic(0.5),
    ...                               "optimal": optimal_critic(joint)}, 16, batches=100, rng=1)
    >>> sorted(both)
    ['bilinear', 'optimal']
    >>> both["bilinear"] == infonce_bound(joint, bilinear_critic(0.5), 16, batches=100, rng=1)
    True
    """
    if not isinstance(critics, dict) or not critics:
        raise TypeError("critics must be a non-empty dict mapping names to critics; got "
                        f"{type(critics).__name__}")
    n = check_positive_int(n, "n")
    batches = check_positive_int(batches, "batches", minimum=2)   # 2 for a standard error
    draws = _draws(joint, list(critics.values()), n, batches, rng)
    return {name: mean_and_standard_error(d) for name, d in zip(critics, draws)}


def infonce_draws(joint, critic, n, batches, rng):
    """The individual I_N draws (Eq. 6) of ``batches`` independent batches, for one critic.

    The draws behind ``infonce_bound`` (with the same ``rng``, the same batches).

    Parameters
    ----------
    joint : GaussianPair
        P(z, z').
    critic : QuadraticCritic or callable
        As for ``critic_scores``.
    n : int
        Pairs per batch (≥ 1, n² ≤ ``MAX_SCORE_ELEMENTS``).
    batches : int
        Number of draws (≥ 1).
    rng : seed or numpy.random.Generator
        As for ``sample_pairs``.

    Returns
    -------
    ndarray, shape (batches,)
        One I_N draw per batch, in nats; each ≤ log n.

    Raises
    ------
    TypeError
        As for ``infonce_bound``.
    ValueError
        ``batches`` < 1, or as for ``infonce_bound``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import gaussian_pair, optimal_critic
    >>> from rpmref.gaussian.monte_carlo import infonce_draws
    >>> joint = gaussian_pair(1.0, 1.0, 0.9)
    >>> draws = infonce_draws(joint, optimal_critic(joint), 8, 300, rng=0)
    >>> draws.shape
    (300,)
    >>> bool(np.all(draws <= np.log(8) + 1e-12))     # E7, up to the rounding of log N
    True
    """
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
    rng = as_generator(rng)
    chunk = max(1, _MAX_SCORES // (n * n))
    out = []
    for start in range(0, batches, chunk):
        z, zp = sample_pairs(joint, (min(chunk, batches - start), n), rng)
        out.append([_per_batch(_scores(critic, z, zp)) for critic in critics])
    return np.concatenate(out, axis=1)


def _size(size):
    """``size`` as a tuple of non-negative ints (an int is a 1-tuple)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, tuple):
        raise TypeError(f"size must be a tuple of non-negative integers; got {type(size).__name__}")
    return tuple(check_int(s, f"size[{i}]", minimum=0) for i, s in enumerate(size))


__all__ = ["sample_pairs", "critic_scores", "infonce_per_batch",
           "infonce_bound", "infonce_bounds", "infonce_draws"]
