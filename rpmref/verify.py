"""``rpmref verify``: check every identity (E1–E9, N1, A1) on random problems.

Each check computes the two sides of an identity by different routes (e.g.
Eq. 12 term by term against Eq. 15 through matrix products, or the count-vector
formula for I_N against the literal sum over all batches) and reports the
largest absolute difference over all trials; inequalities report their largest
violation. Random problems include zeros in P(x, x'), one-hot and
near-deterministic (1e-12) encoder rows and unreachable latent states.
"""
import itertools
import math

import numpy as np

from rpmref import exact
from rpmref.exact.numerics import log_softmax
from rpmref.exact.validation import (
    GeneratorSpec, Integer, Optional, Options, Real, validate_params)
from rpmref.gaussian.checks import verify_checks as gaussian_checks

DEFAULT_TOLERANCE = 1e-10
#: Largest ``max_states``: E8 builds (n, n', k, k') posteriors, max_states^4 entries per trial.
MAX_STATES_LIMIT = 32
#: Largest ``trials`` (per identity; each trial takes up to a few milliseconds).
MAX_TRIALS = 100_000


#: The checks' arguments: a Generator and an integer 1..MAX_STATES_LIMIT (TypeError /
#: ValueError naming the argument otherwise).
_CHECK_PARAMS = validate_params(rng=GeneratorSpec(), max_states=Integer(1, MAX_STATES_LIMIT))


# --------------------------------------------------------------------------- problems
def _random_rows(rng, n, k, kind):
    """(n, k) conditional table with rows of the given kind."""
    hot = np.eye(k)[rng.integers(0, k, size=n)]
    if kind == "deterministic":
        return hot
    if kind == "near":
        tiny = np.where(rng.random((n, k)) < 0.5, 1e-12, 0.0) * (1 - hot)
        return tiny + hot * (1 - tiny.sum(axis=1, keepdims=True))
    raw = rng.random((n, k)) * (rng.random((n, k)) > 0.3)
    raw[raw.sum(axis=1) == 0] = hot[raw.sum(axis=1) == 0]
    return raw / raw.sum(axis=1, keepdims=True)


def _random_pmf(rng, shape, zeros=0.3):
    raw = rng.random(shape) * (rng.random(shape) > zeros)
    if raw.sum() == 0:
        raw.flat[rng.integers(raw.size)] = 1.0
    return raw / raw.sum()


@validate_params(rng=GeneratorSpec(), max_states=Integer(1, MAX_STATES_LIMIT),
                 kind=Optional(Options("deterministic", "near", "dense")))
def random_problem(rng, max_states, kind=None):
    """A random RPM problem (p_xx, enc, enc_prime, prior) with all sizes in 1..max_states.

    P(x, x') and the prior have exact zeros; the encoders' rows are all of one
    kind: one-hot, near-deterministic (1e-12 entries) or dense with zeros.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator of the draw.
    max_states : int
        Largest n, n', k and k'.
    kind : {"deterministic", "near", "dense"}, optional
        The rows' kind (default: drawn).

    Returns
    -------
    tuple of ndarray
        p_xx (n, n'), enc (n, k), enc_prime (n', k'), prior (k, k').

    Raises
    ------
    TypeError
        ``rng`` not a Generator, or ``max_states`` not an integer (bools, floats refused).
    ValueError
        ``max_states`` outside 1..MAX_STATES_LIMIT, or ``kind`` not one of the three.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import random_problem
    >>> [a.shape for a in random_problem(np.random.default_rng(0), 3)]
    [(3, 2), (3, 2), (2, 1), (2, 1)]
    """
    n, n_prime, k, k_prime = rng.integers(1, max_states + 1, size=4)
    kind = kind or rng.choice(["deterministic", "near", "dense"])
    return (_random_pmf(rng, (n, n_prime)), _random_rows(rng, n, k, kind),
            _random_rows(rng, n_prime, k_prime, kind), _random_pmf(rng, (k, k_prime)))


def _describe(p_xx, enc, enc_prime):
    return f"n={p_xx.shape[0]} n'={p_xx.shape[1]} k={enc.shape[1]} k'={enc_prime.shape[1]}"


def _difference(a, b):
    """max |a − b| where both are finite; inf if they disagree on which entries are −inf."""
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    if not np.array_equal(np.isneginf(a), np.isneginf(b)) or np.isnan(a).any() or np.isnan(b).any():
        return math.inf
    finite = np.isfinite(a)
    return float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))


# --------------------------------------------------------------------------- checks
@_CHECK_PARAMS
def check_e1(rng, max_states):
    """Check E1 (Eq. 12 → 15) on one random problem.

    The ELBO of Eq. 12 with Q = P(z|x) P(z'|x') (term by term) equals Eq. 15 (matrix
    products) for every (x, x').

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        Max |Eq. 12 − Eq. 15| over the pairs (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e1
    >>> error, case = check_e1(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "n=4 n'=3 k=3 k'=2"
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    q = enc[:, None, :, None] * enc_prime[None, :, None, :]
    return (_difference(exact.elbo(p_xx, enc, enc_prime, prior, posterior=q),
                        exact.elbo(p_xx, enc, enc_prime, prior)), _describe(p_xx, enc, enc_prime))


@_CHECK_PARAMS
def check_e2(rng, max_states):
    """Check E2 (Eq. 16) on one random problem.

    The P(x, x')-average of Eq. 15 equals L of Eq. 16 computed from the latent tables.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        |average − L| (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e2
    >>> error, case = check_e2(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    elbos = exact.elbo(p_xx, enc, enc_prime, prior)
    average = float(np.sum(p_xx[p_xx > 0] * elbos[p_xx > 0]))
    return (_difference(average, exact.expected_elbo(p_xx, enc, enc_prime, prior)),
            _describe(p_xx, enc, enc_prime))


@_CHECK_PARAMS
def check_e3(rng, max_states):
    """Check E3 (Eq. 17–18) on one random problem.

    L = I(Z; Z') − KL(P(z,z') ‖ P_θ) + C.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        |L − (I − KL + C)| (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e3
    >>> error, case = check_e3(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    d = exact.elbo_decomposition(p_xx, enc, enc_prime, prior)
    return (_difference(d.elbo, d.mutual_information - d.kl + d.constant),
            _describe(p_xx, enc, enc_prime))


@_CHECK_PARAMS
def check_e4(rng, max_states):
    """Check E4 (Eq. 19–20) on one random problem.

    The prior P_θ = P(z, z') maximises L: KL = 0, L = I + C, and the random prior of the
    problem does not beat it.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        The largest of |KL|, |L − (I + C)| and the amount by which the random prior beats it (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e4
    >>> error, case = check_e4(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "n=4 n'=3 k=3 k'=2"
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    d = exact.elbo_decomposition(p_xx, enc, enc_prime, exact.optimal_prior(p_xx, enc, enc_prime))
    beaten_by = exact.expected_elbo(p_xx, enc, enc_prime, prior) - d.elbo
    error = max(abs(d.kl), _difference(d.elbo, d.mutual_information + d.constant),
                max(beaten_by, 0.0))
    return error, _describe(p_xx, enc, enc_prime)


def _random_critic(rng, shape, scale):
    return rng.uniform(-scale, scale, size=shape)


@_CHECK_PARAMS
def check_e5(rng, max_states):
    """Check E5 (Eq. 21–25) on one random problem.

    With the energy prior of a random critic (|f| ≤ 50), L = I_∞(f) + C.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        |L − (I_∞(f) + C)| (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e5
    >>> error, case = check_e5(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "n=4 n'=3 k=3 k'=2 |f|<=50"
    """
    p_xx, enc, enc_prime, _ = random_problem(rng, max_states)
    p_zz = exact.recognition_joint(p_xx, enc, enc_prime)
    f = _random_critic(rng, p_zz.shape, 50.0)
    lhs = exact.expected_elbo(p_xx, enc, enc_prime, exact.energy_prior(p_zz, f))
    rhs = exact.infonce_limit(p_zz, f) + exact.data_constant(p_xx)
    return _difference(lhs, rhs), _describe(p_xx, enc, enc_prime) + " |f|<=50"


@_CHECK_PARAMS
def check_e6(rng, max_states):
    """Check E6 (the gap) on one random problem.

    I(Z; Z') − I_∞(f) = KL(P(z,z') ‖ P_θ^f) ≥ 0 for a random critic (|f| ≤ 50).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        The larger of |gap − KL| and the violation of gap ≥ 0 (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e6
    >>> error, case = check_e6(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "k=4 k'=3 |f|<=50"
    """
    k, k_prime = rng.integers(1, max_states + 1, size=2)
    p_zz = _random_pmf(rng, (k, k_prime))
    f = _random_critic(rng, p_zz.shape, 50.0)
    gap = exact.mutual_information(p_zz) - exact.infonce_limit(p_zz, f)
    kl = exact.kl_divergence(p_zz, exact.energy_prior(p_zz, f))
    return max(_difference(gap, kl), max(-gap, 0.0)), f"k={k} k'={k_prime} |f|<=50"


def _infonce_by_enumeration(p_zz, f, n):
    """Literal Eq. 6: the sum over every batch of n pairs, vectorised over batches."""
    cells = np.argwhere(p_zz > 0)
    batches = np.array(list(itertools.product(range(len(cells)), repeat=n)))   # (B, n)
    z, z_prime = cells[batches, 0], cells[batches, 1]                           # (B, n)
    weights = np.prod(p_zz[z, z_prime], axis=1)
    scores = f[z[:, :, None], z_prime[:, None, :]]                               # (B, n, n)
    values = np.mean(np.diagonal(log_softmax(scores, axis=2), axis1=1, axis2=2), axis=1)
    return float(np.log(n) + np.sum(weights * values))


@_CHECK_PARAMS
def check_e7(rng, max_states):
    """Check E7 (Eq. 6) on one random problem.

    The exact I_N (count vectors) equals the literal sum over every batch, and I_N ≤
    min(I, log N) (k, k' ≤ 3, N ≤ 3, |f| ≤ 20).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        The larger of the difference and the violation of the bound (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e7
    >>> error, case = check_e7(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "k=3 k'=2 N=2 |f|<=20"
    """
    k, k_prime = rng.integers(1, min(max_states, 3) + 1, size=2)
    n = int(rng.integers(1, 4))
    p_zz = _random_pmf(rng, (k, k_prime))
    f = _random_critic(rng, p_zz.shape, 20.0)
    value = exact.infonce_bound(p_zz, f, n, method="exact").estimate
    ceiling = min(exact.mutual_information(p_zz), math.log(n))
    error = max(_difference(value, _infonce_by_enumeration(p_zz, f, n)), max(value - ceiling, 0.0))
    return error, f"k={k} k'={k_prime} N={n} |f|<=20"


@_CHECK_PARAMS
def check_e8(rng, max_states):
    """Check E8 (the bound) on one random problem.

    Log P_θ(x,x') − ELBO_Q(x,x') = KL(Q ‖ P_θ(z,z'|x,x')) ≥ 0 for a random posterior Q.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        The largest |gap − KL| (or violation of gap ≥ 0) over the pairs (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e8
    >>> error, case = check_e8(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    n, n_prime = p_xx.shape
    q = _random_pmf(rng, (n * n_prime,) + prior.shape, zeros=0.0).reshape(n, n_prime, -1)
    q = (q / q.sum(axis=2, keepdims=True)).reshape(p_xx.shape + prior.shape)
    log_lik = exact.rpm_log_likelihood(p_xx, enc, enc_prime, prior)
    bound = exact.elbo(p_xx, enc, enc_prime, prior, posterior=q)
    post = exact.rpm_posterior(p_xx, enc, enc_prime, prior)
    error = 0.0
    for x, x_prime in zip(*np.nonzero(np.isfinite(log_lik))):
        qx, px = q[x, x_prime].ravel(), post[x, x_prime].ravel()
        gap = exact.kl_divergence(qx, px)
        actual = log_lik[x, x_prime] - bound[x, x_prime]
        error = max(error, math.inf if math.isinf(gap) != math.isinf(actual)
                    else (0.0 if math.isinf(gap) else abs(actual - gap)), max(-actual, 0.0))
    return error, _describe(p_xx, enc, enc_prime)


@_CHECK_PARAMS
def check_e9(rng, max_states):
    """Check E9 (Appendix C) on one random problem.

    With one-hot encoders ELBO(x, x') = log P_θ(x, x').

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        Max |ELBO − log P_θ| over the pairs (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_e9
    >>> error, case = check_e9(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "n=4 n'=3 k=3 k'=2 one-hot"
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states, kind="deterministic")
    return (_difference(exact.elbo(p_xx, enc, enc_prime, prior),
                        exact.rpm_log_likelihood(p_xx, enc, enc_prime, prior)),
            _describe(p_xx, enc, enc_prime) + " one-hot")


@_CHECK_PARAMS
def check_n1(rng, max_states):
    """Check N1 (Eq. 9–10) on one random problem.

    Σ_{x,x'} P_θ(x, x') equals the prior mass on the reachable (z, z').

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        |Σ P_θ(x, x') − reachable mass| (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_n1
    >>> error, case = check_n1(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    """
    p_xx, enc, enc_prime, prior = random_problem(rng, max_states)
    p_z, p_z_prime = exact.latent_marginals(p_xx, enc, enc_prime)
    reachable = prior[np.ix_(p_z > 0, p_z_prime > 0)].sum()
    total = np.exp(exact.rpm_log_likelihood(p_xx, enc, enc_prime, prior)).sum()
    return _difference(total, reachable), _describe(p_xx, enc, enc_prime)


@_CHECK_PARAMS
def check_a1(rng, max_states):
    """Check A1 (Eq. 28–34) on one random problem.

    The empirical RPM with one-hot encoders and an energy prior (|f| ≤ 50) is the in-
    batch softmax divided by N.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the problem (see :func:`random_problem`).
    max_states : int
        Largest number of states of every axis, 1..MAX_STATES_LIMIT (an integer; else
        TypeError or ValueError naming it, as for a ``rng`` that is not a Generator).

    Returns
    -------
    error : float
        Max |P_θ(n, m) − softmax/N| (inf where the two sides disagree on
        which entries are −inf).
    case : str
        The problem's sizes, for the report.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.verify import check_a1
    >>> error, case = check_a1(np.random.default_rng(0), max_states=4)
    >>> error <= 1e-10  # rpmref verify's DEFAULT_TOLERANCE
    True
    >>> case
    "N=4 k=3 k'=3 |f|<=50"
    """
    n = int(rng.integers(1, max_states + 1))
    k, k_prime = rng.integers(1, max_states + 1, size=2)
    enc, enc_prime = _random_rows(rng, n, k, "deterministic"), _random_rows(rng, n, k_prime, "deterministic")
    f = _random_critic(rng, (k, k_prime), 50.0)
    p_zz = exact.recognition_joint(np.eye(n) / n, enc, enc_prime)
    pmf = exact.empirical_rpm_pmf(enc, enc_prime, exact.energy_prior(p_zz, f))
    scores = f[enc.argmax(axis=1)][:, enc_prime.argmax(axis=1)]     # f(z_n, z'_m), (N, N)
    softmax = np.exp(log_softmax(scores, axis=1))
    return _difference(pmf, softmax / n), f"N={n} k={k} k'={k_prime} |f|<=50"


#: (ID, equation, statement, check)
CHECKS = [
    ("E1", "Eq. 12 -> 15", "ELBO with Q = P(z|x)P(z'|x') equals Eq. 15 for every (x, x')", check_e1),
    ("E2", "Eq. 16", "data average of Eq. 15 = sum P(z,z') log[P_th/(P(z)P(z'))] - H(X) - H(X')", check_e2),
    ("E3", "Eq. 17-18", "L = I(Z;Z') - KL(P(z,z') || P_th) + C", check_e3),
    ("E4", "Eq. 19-20", "P_th = P(z,z') maximises L: KL = 0, L = I + C, no random prior beats it", check_e4),
    ("E5", "Eq. 21-25", "energy prior: L = I_inf(f) + C", check_e5),
    ("E6", "gap", "I(Z;Z') - I_inf(f) = KL(P(z,z') || P_th^f) >= 0", check_e6),
    ("E7", "Eq. 6", "exact I_N = sum over all batches; I_N <= min(I, log N)", check_e7),
    ("E8", "bound", "log P_th(x,x') - ELBO_Q = KL(Q || P_th(z,z'|x,x')) >= 0", check_e8),
    ("E9", "App. C", "one-hot encoders: ELBO(x,x') = log P_th(x,x')", check_e9),
    ("N1", "Eq. 9-10", "sum_{x,x'} P_th(x,x') = prior mass on reachable (z,z')", check_n1),
    ("A1", "Eq. 28-34", "empirical RPM with one-hot encoders + energy prior = softmax/N", check_a1),
]


@validate_params(trials=Integer(1, MAX_TRIALS), seed=Integer(0), max_states=Integer(1, MAX_STATES_LIMIT),
                 tolerance=Real(0))
def run_checks(trials=200, seed=0, max_states=8, tolerance=DEFAULT_TOLERANCE):
    """Run every check ``trials`` times; one row per identity (E1–E9, N1, A1, then the Gaussian ones).

    Each identity draws its problems from ``default_rng([seed, index])``, so a row
    does not depend on the others.

    Parameters
    ----------
    trials : int, default 200
        Random problems per identity, 1..MAX_TRIALS.
    seed : int, default 0
        Integer ≥ 0.
    max_states : int, default 8
        Largest number of states, 1..MAX_STATES_LIMIT.
    tolerance : float, default ``DEFAULT_TOLERANCE`` (1e-10)
        A finite real ≥ 0 (nan or inf would make every check pass or fail silently).

    Returns
    -------
    list of dict
        Keys ``id``, ``equation``, ``statement``, ``max_error`` (the largest error
        over the trials), ``worst_case``, ``tolerance`` and ``passed``.

    Raises
    ------
    TypeError
        If ``trials``, ``seed`` or ``max_states`` is not an integer (bools and floats
        included), or ``tolerance`` is not a real number.
    ValueError
        If a value is outside its range, or ``tolerance`` is not finite.

    Examples
    --------
    >>> from rpmref.verify import run_checks
    >>> rows = run_checks(trials=2, max_states=3)
    >>> [row["id"] for row in rows[:11]]
    ['E1', 'E2', 'E3', 'E4', 'E5', 'E6', 'E7', 'E8', 'E9', 'N1', 'A1']
    >>> all(row["passed"] for row in rows)
    True
    """
    rows = []
    for identity, equation, statement, check in CHECKS:
        rng = np.random.default_rng([seed, len(rows)])
        worst, worst_case = -1.0, ""
        for trial in range(trials):
            error, case = check(rng, max_states)
            if not error <= worst:
                worst, worst_case = error, f"trial {trial}: {case}"
        rows.append(dict(id=identity, equation=equation, statement=statement,
                         max_error=worst, worst_case=worst_case, tolerance=tolerance))
    rows.extend(_gaussian_rows(np.random.default_rng([seed, len(rows)]), trials, tolerance))
    for row in rows:
        row["passed"] = bool(row["max_error"] <= row["tolerance"])
    return rows


def _gaussian_rows(rng, trials, tolerance):
    """The closed-form Gaussian checks (``rpmref.gaussian.checks``), judged at ``tolerance``."""
    return [dict(row, tolerance=tolerance) for row in gaussian_checks(rng, trials)]


# --------------------------------------------------------------------------- report
def format_table(rows):
    """The rows of :func:`run_checks` as the plain-text table ``rpmref verify`` prints.

    Parameters
    ----------
    rows : list of dict
        Rows with the keys ``id``, ``equation``, ``statement``, ``max_error``,
        ``worst_case`` and ``passed``.

    Returns
    -------
    str
        A header, a rule and one line per row, columns padded to their widest entry.

    Examples
    --------
    >>> from rpmref.verify import format_table
    >>> row = dict(id="E3", equation="Eq. 17-18", statement="L = I - KL + C", max_error=4e-16,
    ...            worst_case="trial 0", passed=True)
    >>> print(format_table([row]))  # doctest: +NORMALIZE_WHITESPACE
    ID  equation   statement       max abs error  worst case  result
    --  ---------  --------------  -------------  ----------  ------
    E3  Eq. 17-18  L = I - KL + C  4.00e-16       trial 0     PASS
    """
    header = ("ID", "equation", "statement", "max abs error", "worst case", "result")
    lines = [[r["id"], r["equation"], r["statement"], f"{r['max_error']:.2e}", r["worst_case"],
              "PASS" if r["passed"] else "FAIL"] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)
