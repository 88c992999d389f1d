"""Hypothesis strategies for RPM and InfoNCE problems, for your own test suites.

Every strategy draws NumPy float64 arrays that hit the cases implementations get
wrong: pmfs with exact zeros and 1e-12 entries, one-hot and near-one-hot encoders,
critic tables and score matrices with huge magnitudes (e^1000 overflows float64)
and −inf (masked) entries, embedding batches, and Gaussian problems whose mutual
information is known by construction (docs/theory.md, 'Objects' and 'Gaussian
latents').

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_
(``pip install hypothesis``; the ``strategies`` and ``test`` extras have it); nothing else in
rpmref does.

Raw non-negative arrays are drawn entry by entry from a mix of exact zeros, tiny
values (1e-12, which make near-deterministic rows) and ordinary values; all-zero
rows are replaced by a one-hot row (never rejected, so no filtering), then rows
or whole tables are normalised (after dit's ``utils/testing.py``). Shapes go up to
``MAX_STATES`` × ``MAX_STATES``.

Examples
--------
A property test of your own InfoNCE loss against rpmref's exact reference
(``rpmref.testing.infonce_loss``), on score matrices with huge and masked entries::

    import numpy as np
    from hypothesis import given
    from rpmref.strategies import score_matrices
    from rpmref.testing import infonce_loss

    @given(score_matrices(max_magnitude=1e3, masked=True))
    def test_my_loss_is_the_infonce_loss(scores):
        scale = max(1.0, np.abs(scores[np.isfinite(scores)]).max())
        assert abs(my_loss(scores) - infonce_loss(scores)) <= 1e-12 * len(scores) * scale

An MI estimator on Gaussian problems of known mutual information::

    from rpmref.strategies import gaussian_problems

    @given(gaussian_problems(max_dim=3))
    def test_my_estimator_on_gaussians(problem):
        rng = np.random.default_rng(0)
        pairs = rng.multivariate_normal(problem.mean, problem.cov, size=20_000)
        z, z_prime = pairs[:, :problem.k], pairs[:, problem.k:]
        assert abs(my_gaussian_mi(z, z_prime) - problem.mutual_information) < 0.05
"""
from typing import NamedTuple

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError as err:  # pragma: no cover - exercised only without hypothesis
    raise ImportError("rpmref.strategies needs hypothesis: pip install hypothesis") from err

from rpmref.exact.validation import check_bool, check_int, check_real

MAX_STATES = 8
#: Largest ``max_correlation`` of :func:`gaussian_problems`: closer to 1 the covariance is so
#: ill-conditioned that its rounding moves the joint's mutual information away from the
#: −½ Σ log(1 − ρ²) the problem claims (by 2e-4 nats at ρ = 1 − 1e-12).
MAX_CORRELATION = 0.999999
#: Bounds on the row norms of :func:`embedding_batches`: squares of norms outside them
#: underflow or overflow float64, so ``np.linalg.norm`` of a drawn row would be 0 or inf.
MIN_NORM, MAX_NORM = 1e-150, 1e150
_entries = st.one_of(st.just(0.0), st.just(1e-12), st.floats(0.01, 1.0))

#: Encoder kinds: the public names, and the older names ``conditionals`` also accepts.
ENCODER_KINDS = ("soft", "one-hot", "near-one-hot", "mixed")
_KIND_ALIASES = {"soft": "dense", "one-hot": "deterministic", "near-one-hot": "near",
                 "dense": "dense", "deterministic": "deterministic", "near": "near",
                 "mixed": "mixed"}


class GaussianProblem(NamedTuple):
    """Jointly Gaussian (z, z') with known mutual information, as drawn by :func:`gaussian_problems`.

    ``rpmref.gaussian.GaussianPair(mean, cov, k)`` turns it into rpmref's Gaussian joint.

    Parameters
    ----------
    mean : ndarray, shape (k + k',)
        The mean of (z, z').
    cov : ndarray, shape (k + k', k + k')
        The covariance of (z, z'); z is the first ``k`` coordinates.
    k : int
        The dimension of z.
    mutual_information : float
        I(Z; Z') in nats.
    correlations : ndarray, shape (min(k, k'),)
        The canonical correlations the problem was built from.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.strategies import GaussianProblem
    >>> rho = np.array([0.6])
    >>> problem = GaussianProblem(np.zeros(2), np.array([[1.0, 0.6], [0.6, 1.0]]), 1,
    ...                           float(-0.5 * np.log1p(-rho[0] ** 2)), rho)
    >>> round(problem.mutual_information, 6)
    0.223144
    """
    mean: np.ndarray
    cov: np.ndarray
    k: int
    mutual_information: float
    correlations: np.ndarray


def _check_shape(shape, name):
    """``shape`` as a tuple of ints >= 1 (an int is a 1-D shape); TypeError/ValueError naming it."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(shape).__name__}")
    return tuple(check_int(d, f"{name}[{i}]", minimum=1) for i, d in enumerate(shape))


def _check_range(low, high, low_name, high_name):
    """(low, high) as ints with 1 <= low <= high; TypeError/ValueError naming the bad one."""
    low = check_int(low, low_name, minimum=1)
    high = check_int(high, high_name)
    if high < low:
        raise ValueError(f"{high_name} must be >= {low_name} = {low}, got {high}")
    return low, high


def _check_kind(kind):
    """``kind`` if it is None or an encoder kind (``ENCODER_KINDS`` or an older name)."""
    if kind is not None and (not isinstance(kind, str) or kind not in _KIND_ALIASES):
        raise ValueError(f"kind must be one of {', '.join(ENCODER_KINDS)} or None; got {kind!r}")
    return kind


def _nonzero_rows(raw, hot):
    rows = raw.copy()
    empty = rows.sum(axis=1) == 0
    rows[empty] = np.eye(rows.shape[1])[hot[empty]]
    return rows


def pmfs(shape):
    """Strategy: a pmf of the given shape with possible exact zeros and 1e-12 entries.

    Parameters
    ----------
    shape : tuple of int
        The shape of the table (any number of axes, at least one entry).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws float64 arrays of ``shape``, non-negative, summing to 1.

    Raises
    ------
    ValueError
        A dimension of ``shape`` < 1 (at construction).
    TypeError
        ``shape`` not a tuple of ints.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import pmfs
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(pmfs((2, 3)))
    ... def check(p):
    ...     assert p.shape == (2, 3) and p.min() >= 0 and abs(p.sum() - 1) <= 1e-15
    >>> check()
    """
    shape = _check_shape(shape, "shape")
    return _pmfs(shape)


@st.composite
def _pmfs(draw, shape):
    """Draws for :func:`pmfs`, its arguments already checked."""
    raw = draw(arrays(np.float64, shape, elements=_entries))
    if raw.sum() == 0:
        raw.flat[draw(st.integers(0, raw.size - 1))] = 1.0
    return raw / raw.sum()


def joint_tables(min_states=1, max_states=MAX_STATES):
    """Strategy: a joint pmf P(z, z') of shape (k, k'), k and k' in [min_states, max_states].

    Possible exact zeros (so some states may be unreachable) and 1e-12 entries.

    Parameters
    ----------
    min_states : int, default 1
        Smallest k and k'.
    max_states : int, default ``MAX_STATES``
        Largest k and k'.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws (k, k') float64 pmfs.

    Raises
    ------
    ValueError
        Unless 1 ≤ min_states ≤ max_states (at construction).
    TypeError
        ``min_states`` or ``max_states`` not an integer.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import joint_tables
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(joint_tables(min_states=2, max_states=3))
    ... def check(p_zz):
    ...     assert 2 <= min(p_zz.shape) and max(p_zz.shape) <= 3
    >>> check()
    """
    min_states, max_states = _check_range(min_states, max_states, "min_states", "max_states")
    return _joint_tables(min_states, max_states)


@st.composite
def _joint_tables(draw, min_states=1, max_states=MAX_STATES):
    """Draws for :func:`joint_tables`, its arguments already checked."""
    k = draw(st.integers(min_states, max_states))
    k_prime = draw(st.integers(min_states, max_states))
    return draw(pmfs((k, k_prime)))


def encoders(n, k, kind=None):
    """Strategy: an encoder table P(z | x) of shape (n, k), every row a pmf.

    Parameters
    ----------
    n : int
        Rows (data states).
    k : int
        Columns (latent states).
    kind : {"soft", "one-hot", "near-one-hot", "mixed"}, optional
        "soft" (dense rows with zeros and 1e-12 entries), "one-hot" (deterministic
        encoders, Appendix C), "near-one-hot" (one entry ≈ 1, the rest 1e-12 or 0),
        "mixed" (rows of every type), or None (any of these). The older names "dense",
        "deterministic" and "near" are accepted too.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws (n, k) float64 conditional tables.

    Raises
    ------
    ValueError
        ``n`` or ``k`` < 1, or ``kind`` not one of the names above (at construction).
    TypeError
        ``n`` or ``k`` not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import encoders
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(encoders(3, 4, kind="one-hot"))
    ... def check(enc):
    ...     assert enc.shape == (3, 4) and set(np.unique(enc)) <= {0.0, 1.0}
    >>> check()
    """
    n, k = check_int(n, "n", minimum=1), check_int(k, "k", minimum=1)
    return _encoders(n, k, _check_kind(kind))


@st.composite
def _encoders(draw, n, k, kind=None):
    """Draws for :func:`encoders`, its arguments already checked."""
    kind = _KIND_ALIASES[kind] if kind else draw(
        st.sampled_from(["deterministic", "near", "dense", "mixed"]))
    hot = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    one_hot = np.eye(k)[hot]
    if kind == "deterministic":
        return one_hot
    if kind == "near":
        tiny = draw(arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1e-12])))
        rows = np.where(one_hot > 0, 0.0, tiny)
        return rows + one_hot * (1.0 - rows.sum(axis=1, keepdims=True))
    raw = _nonzero_rows(draw(arrays(np.float64, (n, k), elements=_entries)), hot)
    return raw / raw.sum(axis=1, keepdims=True)


#: The name the rpmref test suite has always used for ``encoders``.
conditionals = encoders


def rpm_problems(max_data=MAX_STATES, max_latent=MAX_STATES, kind=None):
    """Strategy: (p_xx, enc, enc_prime, prior), a complete RPM problem.

    Parameters
    ----------
    max_data : int, default ``MAX_STATES``
        Largest n and n'.
    max_latent : int, default ``MAX_STATES``
        Largest k and k'.
    kind : str, optional
        As in :func:`encoders` (both encoders get the same kind).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws p_xx (n, n'), enc (n, k), enc_prime (n', k') and prior (k, k').

    Raises
    ------
    ValueError
        ``max_data`` or ``max_latent`` < 1, or an unknown ``kind`` (at construction).
    TypeError
        ``max_data`` or ``max_latent`` not an integer.

    Examples
    --------
    >>> from rpmref import elbo_decomposition
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import rpm_problems
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(rpm_problems(max_data=3, max_latent=3))
    ... def check(problem):
    ...     d = elbo_decomposition(*problem)
    ...     assert d.kl == float("inf") or abs(d.elbo - (d.mutual_information - d.kl + d.constant)) < 1e-9
    >>> check()
    """
    max_data = check_int(max_data, "max_data", minimum=1)
    max_latent = check_int(max_latent, "max_latent", minimum=1)
    return _rpm_problems(max_data, max_latent, _check_kind(kind))


@st.composite
def _rpm_problems(draw, max_data=MAX_STATES, max_latent=MAX_STATES, kind=None):
    """Draws for :func:`rpm_problems`, its arguments already checked."""
    n, n_prime = draw(st.integers(1, max_data)), draw(st.integers(1, max_data))
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    p_xx = draw(pmfs((n, n_prime)))
    enc = draw(encoders(n, k, kind))
    enc_prime = draw(encoders(n_prime, k_prime, kind))
    prior = draw(pmfs((k, k_prime)))
    return p_xx, enc, enc_prime, prior


def critics(shape, bound):
    """Strategy: a critic table f(z, z') of the given shape with entries in [−bound, bound].

    Parameters
    ----------
    shape : tuple of int
        The shape (k, k').
    bound : float
        The largest |f|.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws float64 arrays of ``shape``.

    Raises
    ------
    ValueError
        A dimension of ``shape`` < 1, or ``bound`` negative, infinite or NaN.
    TypeError
        ``shape`` not a tuple of ints, or ``bound`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import critics
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(critics((2, 2), bound=1e3))
    ... def check(f):
    ...     assert f.shape == (2, 2) and np.abs(f).max() <= 1e3
    >>> check()
    """
    shape = _check_shape(shape, "shape")
    bound = check_real(bound, "bound", minimum=0.0)
    return arrays(np.float64, shape, elements=st.floats(-bound, bound))


#: The descriptive name of ``critics``.
critic_tables = critics


def joint_and_critic(bound, max_latent=MAX_STATES):
    """Strategy: (p_zz, f), a (k, k') pmf and a critic table of the same shape, |f| ≤ bound.

    Parameters
    ----------
    bound : float
        The largest |f|.
    max_latent : int, default ``MAX_STATES``
        Largest k and k'.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws (p_zz, f) pairs.

    Raises
    ------
    ValueError
        ``bound`` negative, infinite or NaN, or ``max_latent`` < 1 (at construction).
    TypeError
        ``bound`` not a real number, or ``max_latent`` not an integer.

    Examples
    --------
    >>> from rpmref import infonce_limit, mutual_information
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import joint_and_critic
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(joint_and_critic(bound=10.0, max_latent=3))
    ... def check(pair):
    ...     p_zz, f = pair
    ...     assert infonce_limit(p_zz, f) <= mutual_information(p_zz) + 1e-9
    >>> check()
    """
    bound = check_real(bound, "bound", minimum=0.0)
    max_latent = check_int(max_latent, "max_latent", minimum=1)
    return _joint_and_critic(bound, max_latent)


@st.composite
def _joint_and_critic(draw, bound, max_latent=MAX_STATES):
    """Draws for :func:`joint_and_critic`, its arguments already checked."""
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    return draw(pmfs((k, k_prime))), draw(critics((k, k_prime), bound))


def score_matrices(min_size=1, max_size=16, max_magnitude=1e3, masked=False):
    """Strategy: a (B, B) score matrix, scores[i, j] = f(z_i, z'_j), positives on the diagonal.

    A magnitude m is drawn from 1, 10, 100 and 1e3 (those ≤ ``max_magnitude``; 1e3
    makes e^s overflow float64) and the entries from [−m, m].

    Parameters
    ----------
    min_size : int, default 1
        Smallest B.
    max_size : int, default 16
        Largest B.
    max_magnitude : float, default 1e3
        Largest magnitude m.
    masked : bool, default False
        Off-diagonal entries may be −inf (negatives left out of the softmax); the
        diagonal is always finite, so the InfoNCE loss is finite.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws (B, B) float64 arrays.

    Raises
    ------
    ValueError
        Unless 1 ≤ min_size ≤ max_size and 0 ≤ max_magnitude < inf (at construction).
    TypeError
        ``min_size`` or ``max_size`` not an integer, ``max_magnitude`` not a real number,
        or ``masked`` not a bool.

    Examples
    --------
    >>> import math
    >>> from rpmref.testing import infonce_loss
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import score_matrices
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(score_matrices(max_size=4, masked=True))
    ... def check(scores):
    ...     assert math.isfinite(infonce_loss(scores))
    >>> check()
    """
    min_size, max_size = _check_range(min_size, max_size, "min_size", "max_size")
    max_magnitude = check_real(max_magnitude, "max_magnitude", minimum=0.0)
    return _score_matrices(min_size, max_size, max_magnitude, check_bool(masked, "masked"))


@st.composite
def _score_matrices(draw, min_size=1, max_size=16, max_magnitude=1e3, masked=False):
    """Draws for :func:`score_matrices`, its arguments already checked."""
    b = draw(st.integers(min_size, max_size))
    magnitudes = [m for m in (1.0, 10.0, 100.0, 1e3) if m <= max_magnitude] or [max_magnitude]
    m = draw(st.sampled_from(magnitudes))
    scores = draw(arrays(np.float64, (b, b), elements=st.floats(-m, m)))
    if masked and b > 1:
        mask = draw(arrays(np.bool_, (b, b)))
        np.fill_diagonal(mask, False)
        scores = np.where(mask, -np.inf, scores)
    return scores


def embedding_batches(min_size=1, max_size=16, max_dim=8, min_norm=0.5, max_norm=50.0):
    """Strategy: (z, z_prime), two (B, D) batches of embeddings, row i of each a positive pair.

    Each row has a norm drawn from [min_norm, max_norm] (> 0, so the cosine critic
    is defined); z'_i is z_i's direction plus a drawn perturbation, so positives are
    typically (not always) the most similar pair.

    Parameters
    ----------
    min_size : int, default 1
        Smallest B.
    max_size : int, default 16
        Largest B.
    max_dim : int, default 8
        Largest D.
    min_norm : float, default 0.5
        Smallest row norm, at least ``MIN_NORM``.
    max_norm : float, default 50.0
        Largest row norm, at most ``MAX_NORM``.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws (z, z_prime) pairs of float64 arrays.

    Raises
    ------
    ValueError
        Unless 1 ≤ min_size ≤ max_size, max_dim ≥ 1 and
        ``MIN_NORM`` (1e-150) ≤ min_norm ≤ max_norm ≤ ``MAX_NORM`` (1e150) (at construction).
    TypeError
        A size not an integer, or a norm not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import embedding_batches
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(embedding_batches(max_size=4, max_dim=3))
    ... def check(batch):
    ...     z, z_prime = batch
    ...     norms = np.linalg.norm(z, axis=1)
    ...     assert z.shape == z_prime.shape and norms.min() >= 0.5 * (1 - 1e-12)
    >>> check()
    """
    min_size, max_size = _check_range(min_size, max_size, "min_size", "max_size")
    max_dim = check_int(max_dim, "max_dim", minimum=1)
    min_norm = check_real(min_norm, "min_norm", minimum=MIN_NORM, maximum=MAX_NORM)
    max_norm = check_real(max_norm, "max_norm", minimum=min_norm, maximum=MAX_NORM)
    return _embedding_batches(min_size, max_size, max_dim, min_norm, max_norm)


@st.composite
def _embedding_batches(draw, min_size=1, max_size=16, max_dim=8, min_norm=0.5, max_norm=50.0):
    """Draws for :func:`embedding_batches`, its arguments already checked."""
    b = draw(st.integers(min_size, max_size))
    d = draw(st.integers(1, max_dim))
    unit = st.floats(-1.0, 1.0)
    z = draw(arrays(np.float64, (b, d), elements=unit))
    noise = draw(arrays(np.float64, (b, d), elements=unit))
    closeness = draw(st.floats(0.0, 1.0))
    z_prime = closeness * z + (1.0 - closeness) * noise

    def rescale(a):
        a = a.copy()
        a[np.linalg.norm(a, axis=1) < 1e-3] = np.eye(d)[0]     # no (near-)zero rows
        norms = np.array(draw(st.lists(st.floats(min_norm, max_norm), min_size=b,
                                       max_size=b)))
        return a / np.linalg.norm(a, axis=1, keepdims=True) * norms[:, None]
    return rescale(z), rescale(z_prime)


def gaussian_problems(max_dim=4, max_correlation=0.99):
    """Strategy: a ``GaussianProblem``, (z, z') jointly Gaussian with known I(Z; Z').

    Built from canonical correlations ρ_1..ρ_r (r = min(k, k'), drawn from
    [0, max_correlation]): whitened coordinates u ~ N(0, I_k), u' ~ N(0, I_k') with
    E[u u'ᵀ] = diag(ρ), then z = A u + m and z' = A' u' + m' with diagonally dominant
    (so invertible) A, A'. Invertible maps of z and of z' leave the mutual information
    unchanged, so I(Z; Z') = −½ Σ_i log(1 − ρ_i²) (docs/theory.md, 'Gaussian latents').

    Parameters
    ----------
    max_dim : int, default 4
        Largest k and k'.
    max_correlation : float, default 0.99
        Largest canonical correlation, in [0, ``MAX_CORRELATION``] (0.999999).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws ``GaussianProblem`` tuples.

    Raises
    ------
    ValueError
        ``max_dim`` < 1, or ``max_correlation`` outside [0, ``MAX_CORRELATION``]: at 1 the
        mutual information is infinite (at construction).
    TypeError
        ``max_dim`` not an integer, or ``max_correlation`` not a real number.

    Examples
    --------
    The mutual information from the covariance, −½ log(det Σ / (det Σ_zz det Σ_z'z')):

    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from rpmref.strategies import gaussian_problems
    >>> @settings(max_examples=20, derandomize=True, database=None, deadline=None)
    ... @given(gaussian_problems(max_dim=2))
    ... def check(problem):
    ...     c, k = problem.cov, problem.k
    ...     logdet = lambda m: np.linalg.slogdet(m)[1]
    ...     mi = -0.5 * (logdet(c) - logdet(c[:k, :k]) - logdet(c[k:, k:]))
    ...     assert abs(mi - problem.mutual_information) < 1e-8
    >>> check()
    """
    max_dim = check_int(max_dim, "max_dim", minimum=1)
    max_correlation = check_real(max_correlation, "max_correlation", minimum=0.0,
                                 maximum=MAX_CORRELATION)
    return _gaussian_problems(max_dim, max_correlation)


@st.composite
def _gaussian_problems(draw, max_dim=4, max_correlation=0.99):
    """Draws for :func:`gaussian_problems`, its arguments already checked."""
    k, k_prime = draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    r = min(k, k_prime)
    rho = np.array(draw(st.lists(st.floats(0.0, max_correlation), min_size=r, max_size=r)))

    def mixing(dim):
        diagonal = np.array(draw(st.lists(st.floats(1.0, 3.0), min_size=dim, max_size=dim)))
        off = draw(arrays(np.float64, (dim, dim), elements=st.floats(-0.9, 0.9))) / dim
        np.fill_diagonal(off, 0.0)
        return np.diag(diagonal) + off        # |off-diagonal row sum| < 0.9 < 1 ≤ diagonal
    a, a_prime = mixing(k), mixing(k_prime)
    cross = np.zeros((k, k_prime))
    cross[np.arange(r), np.arange(r)] = rho
    cov = np.block([[a @ a.T, a @ cross @ a_prime.T],
                    [a_prime @ cross.T @ a.T, a_prime @ a_prime.T]])
    cov = 0.5 * (cov + cov.T)
    mean = draw(arrays(np.float64, (k + k_prime,), elements=st.floats(-3.0, 3.0)))
    mi = float(-0.5 * np.sum(np.log1p(-rho ** 2)))
    return GaussianProblem(mean, cov, k, mi, rho)


__all__ = [
    "MAX_STATES", "MAX_CORRELATION", "MIN_NORM", "MAX_NORM", "ENCODER_KINDS", "GaussianProblem", "pmfs", "joint_tables", "encoders",
    "conditionals", "rpm_problems", "critics", "critic_tables", "joint_and_critic",
    "score_matrices", "embedding_batches", "gaussian_problems",
]
