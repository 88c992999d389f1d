"""``check_mi_estimator``: a user's MI estimator on problems whose answers are known.

Calling convention. The estimator gets one batch of N pairs and returns one estimate,
in nats::

    fn(z, z_prime)            -> float      # critic=False (default)
    fn(z, z_prime, critic)    -> float      # critic=True

z (N, k) and z_prime (N, k') are float64 arrays (torch tensors or jax arrays with
``framework=``), row i of each a pair (z_i, z'_i) drawn i.i.d. from the problem's
joint P(z, z'). Discrete latents arrive one-hot. ``critic`` is the problem's optimal
critic as a NumPy function ``critic(z, z_prime) -> (N, N')`` score matrix, for
estimators that take a critic (the InfoNCE estimate log N − loss of
``critic(z, z_prime)`` is one). On the discrete problems it is
f*(z, z') = log p(z' | z) − log p(z') (E6); on the Gaussian problems it is that only
up to an additive function of z (``critic_scores`` drops the terms that depend on z
alone), which leaves InfoNCE and I_N(f*) unchanged (a row's softmax over z' does not
see it) but not a direct estimate of log p(z' | z) − log p(z').

The problems (``problems``): three discrete joints with full support, where
I(Z; Z'), I_∞(f*) (Eq. 7, 25) and I_N(f*) (Eq. 6, by enumeration) are exact (I_N(f*)
up to N = 1490 for the 3 × 3 joint; beyond it a Monte Carlo value with its standard
error, as on the Gaussian problems); and the
Gaussian staircase of Poole et al. (2019) (``rpmref.gaussian.staircase``: d = 20,
I = 2, 4, ..., 10 nats) where I and I_∞(f*) are closed forms and I_N(f*) a Monte
Carlo value with its standard error.

What is reported per problem: the mean of ``batches`` estimates, its standard error
(sample sd / √batches), the bias against I and, with a critic, against I_N(f*).
What is *checked* is what the estimator claims: with ``infonce=True``, that no
estimate exceeds log N (E7: every batch's InfoNCE value is ≤ log N), that the mean
does not exceed I by more than k standard errors (E7: I_N ≤ I), and, when it is given
the critic, that its mean equals I_N(f*) within k combined standard errors (an
InfoNCE estimator with critic f is unbiased for I_N(f)).

k is the Student-t quantile with the standard error's degrees of freedom (batches − 1;
Welch–Satterthwaite with a Monte Carlo reference) whose upper tail is that of 4
standard deviations of a normal, Φ(−4) = 3.2e-5: since the standard error is itself
estimated from the batches, a fixed 4 would fail a correct estimator far more often
with few batches (measured for a right InfoNCE estimator on all problems: 47% of runs
with batches=2, 6% with 5). With k, each claim of a right estimator with normally
distributed estimates fails with probability 3.2e-5 (one-sided) or 6.3e-5 (two-sided)
per problem, whatever ``batches`` is; the price of few batches is a large k (10050 at 2 batches, 17.4 at 5,
7.0 at 10, 4.7 at 30), i.e. a weak check.

The ceiling log N is allowed a rounding of 8 ε (N + 1000) with ε that of float64, or of
float32 for float32 results. Results below single precision (float16, bfloat16, float8) are too coarse
for these claims (ε·N alone is of the order of the effects checked): with claims,
a problem whose estimates come back in half precision fails with the reason
"half-precision". A NaN or infinite estimate fails the check on its problem whether
or not anything is claimed (its batch is named). When the mean misses I_N(f*) but is,
within the same multiple of its standard error, what a classic mistake gives (−loss,
log N left out; the loss itself; the estimate in bits), the failure says so. Without claims and without such
estimates, ``passed`` is None and the table is for information.
"""
import functools
import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from rpmref.exact.infonce import infonce_bound, infonce_limit
from rpmref.exact.measures import mutual_information
from rpmref.exact.validation import (as_real_array, check_bool, check_int, check_pmf,
                                     check_positive_int)
from rpmref.gaussian import closed_form as gaussian_forms
from rpmref.gaussian.monte_carlo import critic_scores, infonce_bound as gaussian_infonce_bound
from rpmref.gaussian.monte_carlo import MAX_SCORE_ELEMENTS, sample_pairs
from rpmref.gaussian.staircase import DIM, LEVELS, largest_true_mi, staircase_joint
from rpmref.testing import adapters

#: The discrete problems: full support, so the optimal critic is finite.
DISCRETE_JOINTS = {
    "binary, weak": np.array([[0.40, 0.10],
                              [0.10, 0.40]]),
    "3x3, strong": np.array([[0.30, 0.02, 0.01],
                             [0.02, 0.30, 0.02],
                             [0.01, 0.02, 0.30]]),
    "4x2, uneven": np.array([[0.25, 0.05],
                             [0.05, 0.25],
                             [0.15, 0.05],
                             [0.05, 0.15]]),
}
#: Largest batch size N: the Monte Carlo reference forms (N, N) score matrices, which
#: ``rpmref.gaussian.monte_carlo.MAX_SCORE_ELEMENTS`` bounds (2^26 entries: N ≤ 8192).
MAX_BATCH_SIZE = math.isqrt(MAX_SCORE_ELEMENTS)
#: Largest ``batches`` (calls of fn per problem), as ``check_infonce``'s trials.
MAX_BATCHES = 10_000
#: Largest ``reference_batches``: 10⁵ batches of 64 pairs in 20 dimensions take ~20 s per problem.
MAX_REFERENCE_BATCHES = 100_000
SIGMAS = 4.0            # claims are tested at the tail of 4 normal standard deviations
#: The upper tail probability of each one-sided claim, Φ(−4) (two-sided claims: twice it).
TAIL = 0.5 * math.erfc(SIGMAS / math.sqrt(2))


@functools.lru_cache(maxsize=256)
def student_quantile(dof):
    """k with P(T > k) = ``TAIL`` for Student's t with ``dof`` degrees of freedom.

    Parameters
    ----------
    dof : float
        Degrees of freedom (> 0; above 10⁴ taken as 10⁴, which only makes k larger
        than the exact value, by less than 2e-3).

    Returns
    -------
    float
        The quantile, rounded up (bisection on the regularized incomplete beta
        function, P(T > k) = I_{ν/(ν+k²)}(ν/2, 1/2) / 2, in mpmath).

    Examples
    --------
    >>> from rpmref.testing.estimators import student_quantile
    >>> round(student_quantile(1), 1), round(student_quantile(29), 3)
    (10050.4, 4.67)
    """
    nu = min(float(dof), 1e4)
    low, high = SIGMAS, 1e7                      # P(T > 4) > TAIL; P(T > 1e7) < TAIL
    for _ in range(100):
        middle = math.sqrt(low * high)
        upper = float(mpmath.betainc(nu / 2, 0.5, 0, nu / (nu + middle * middle),
                                     regularized=True)) / 2
        low, high = (middle, high) if upper > TAIL else (low, middle)
        if high / low < 1 + 1e-12:
            break
    return high


@dataclass(frozen=True)
class Problem:
    """A joint P(z, z') with known answers, for :func:`check_mi_estimator`.

    Parameters
    ----------
    name : str
        The problem's name.
    mutual_information : float
        I(Z; Z'), in nats.
    infonce_limit : float
        I_∞(f*) of the optimal critic (Eq. 7), in nats.
    infonce_n : float or None
        I_N(f*) (Eq. 6), None when not computed.
    infonce_n_stderr : float or None
        Its standard error (0 when exact).
    sample : callable
        ``sample(n, rng)`` -> (z (n, k), z' (n, k')).
    critic : callable
        The optimal critic f*(z, z') -> (N, N') scores.

    Examples
    --------
    >>> from rpmref.testing.estimators import DISCRETE_JOINTS, discrete_problem
    >>> problem = discrete_problem("binary, weak", DISCRETE_JOINTS["binary, weak"], 4)
    >>> round(problem.mutual_information, 6), round(problem.infonce_n, 6)
    (0.192745, 0.145801)
    """
    name: str
    mutual_information: float
    infonce_limit: float
    infonce_n: float | None             # None when not computed
    infonce_n_stderr: float | None
    sample: object = field(repr=False)
    critic: object = field(repr=False)


@dataclass(frozen=True)
class ProblemResult:
    """One problem of :func:`check_mi_estimator`: known values and the estimates' statistics.

    Parameters
    ----------
    problem : str
        The problem's name.
    batch_size : int
        N, pairs per batch.
    mutual_information : float
        I(Z; Z'), in nats.
    infonce_limit : float
        I_∞(f*) of the optimal critic (Eq. 7), in nats.
    infonce_n : float or None
        I_N(f*) (Eq. 6), in nats.
    infonce_n_stderr : float or None
        Its standard error (0 when exact).
    log_n : float
        log N, the ceiling of InfoNCE (E7).
    mean : float
        Mean of the estimates.
    stderr : float
        Standard error of that mean.
    bias : float
        mean − I.
    bias_infonce_n : float or None
        mean − I_N(f*) (with ``critic``).
    max_estimate : float
        The largest estimate.
    above_ceiling : int
        How many estimates exceeded log N.
    failures : tuple of str, default ()
        The claims that failed on this problem.

    Examples
    --------
    >>> from rpmref.testing import check_mi_estimator
    >>> result = check_mi_estimator(lambda z, z_prime: 0.0, problems="discrete",
    ...                             batch_size=8, batches=2).results[0]
    >>> result.problem, round(result.mutual_information, 6), round(result.bias, 6)   # estimates 0
    ('binary, weak', 0.192745, -0.192745)
    """
    problem: str
    batch_size: int
    mutual_information: float
    infonce_limit: float
    infonce_n: float | None
    infonce_n_stderr: float | None
    log_n: float
    mean: float
    stderr: float
    bias: float
    bias_infonce_n: float | None
    max_estimate: float
    above_ceiling: int
    failures: tuple = ()


@dataclass(frozen=True)
class EstimatorReport:
    """The outcome of :func:`check_mi_estimator`; ``print(report)`` shows a table.

    Parameters
    ----------
    passed : bool or None
        Whether every claim held (None when nothing was claimed).
    claims : tuple of str
        What was checked.
    results : tuple of ProblemResult
        One result per problem.
    batch_size : int
        N, pairs per batch.
    batches : int
        Estimates per problem.

    Examples
    --------
    >>> from rpmref.testing import check_mi_estimator
    >>> report = check_mi_estimator(lambda z, z_prime: 0.0, infonce=True, problems="discrete",
    ...                             batch_size=8, batches=2)
    >>> report.passed, len(report.results)
    (True, 3)
    """
    passed: bool | None
    claims: tuple
    results: tuple
    batch_size: int
    batches: int

    def to_dict(self):
        return {"passed": self.passed, "claims": list(self.claims), "batch_size": self.batch_size,
                "batches": self.batches, "results": [vars(r).copy() for r in self.results]}

    def __str__(self):
        verdict = {None: "no claims checked (bias table only)", True: "PASSED",
                   False: "FAILED"}[self.passed]
        lines = [f"MI estimator: {verdict}; {self.batches} batches of N = {self.batch_size} "
                 "per problem; nats, mean ± 1 s.e."]
        if self.claims:
            lines.append("  claims: " + "; ".join(self.claims))
        head = (f"{'problem':>16} {'I':>7} {'I_N(f*)':>15} {'log N':>6} {'estimate':>17} "
                f"{'bias vs I':>9} {'vs I_N':>8} {'>log N':>6}")
        lines += [head, "-" * len(head)]
        for r in self.results:
            i_n = ("—" if r.infonce_n is None else f"{r.infonce_n:.4f} exact"
                   if r.infonce_n_stderr == 0 else
                   f"{r.infonce_n:.4f} ± {r.infonce_n_stderr:.4f}")
            vs_n = "—" if r.bias_infonce_n is None else f"{r.bias_infonce_n:+.4f}"
            lines.append(f"{r.problem:>16} {r.mutual_information:7.4f} {i_n:>15} {r.log_n:6.3f} "
                         f"{r.mean:9.4f} ± {r.stderr:.4f} {r.bias:+9.4f} {vs_n:>8} "
                         f"{r.above_ceiling:>6}")
        for r in self.results:
            lines += [f"  {r.problem}: {failure}" for failure in r.failures]
        return "\n".join(lines)


def _one_hot(states, k):
    return np.eye(k)[states]


def discrete_problem(name, p_zz, n, reference_batches=1000, rng=None):
    """A discrete ``Problem``: exact I, I_∞(f*) and I_N(f*) for the optimal critic.

    f*(z, z') = log P(z, z') − log P(z) − log P(z'); samples are one-hot rows. I_N(f*)
    is exact (enumeration) while that is within ``rpmref.infonce_bound``'s term budget
    (N up to 1490 for the 3 × 3 problem); beyond it, a Monte Carlo value
    over ``reference_batches`` batches with its standard error, or None when
    ``reference_batches`` is 0.

    Parameters
    ----------
    name : str
        The problem's name.
    p_zz : array_like, shape (k, k')
        A joint pmf with full support.
    n : int
        N, the batch size of I_N(f*).
    reference_batches : int, default 1000
        Monte Carlo batches for I_N(f*) where enumeration is too large (0: none).
    rng : numpy.random.Generator, optional
        The generator of that Monte Carlo value (default: seeded with 0).

    Returns
    -------
    Problem
        The problem.

    Raises
    ------
    TypeError, ValueError
        If ``p_zz`` is not a 2-D pmf; ValueError if it has a zero (the optimal critic
        would be −inf there).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.estimators import discrete_problem
    >>> problem = discrete_problem("binary", np.array([[0.4, 0.1], [0.1, 0.4]]), 4)
    >>> z, z_prime = problem.sample(3, np.random.default_rng(0))
    >>> z.shape, problem.critic(z, z_prime).shape
    ((3, 2), (3, 3))
    """
    p_zz = check_pmf(p_zz, "p_zz", ndim=2)
    if np.any(p_zz == 0):
        raise ValueError("p_zz must have full support (the optimal critic log p(z'|z)/p(z') "
                         "is -inf where p(z, z') = 0)")
    k, k_prime = p_zz.shape
    f = np.log(p_zz) - np.log(p_zz.sum(axis=1))[:, None] - np.log(p_zz.sum(axis=0))[None, :]
    cdf = np.cumsum(p_zz.ravel())

    def sample(size, rng):
        flat = np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"),
                          p_zz.size - 1)
        return _one_hot(flat // k_prime, k), _one_hot(flat % k_prime, k_prime)

    def critic(z, z_prime):
        """f*(z, z') for one-hot z (N, k), z' (N', k'): the (N, N') table lookups."""
        return np.asarray(z, dtype=float) @ f @ np.asarray(z_prime, dtype=float).T
    try:
        bound = infonce_bound(p_zz, f, n, method="auto" if reference_batches else "exact",
                              n_batches=max(reference_batches, 2),
                              rng=np.random.default_rng(0) if rng is None else rng)
    except ValueError:          # enumeration beyond its budget, and no Monte Carlo asked for
        if reference_batches:
            raise
        bound = None
    return Problem(name, mutual_information(p_zz), infonce_limit(p_zz, f),
                   None if bound is None else bound.estimate,
                   None if bound is None else bound.stderr, sample, critic)


def gaussian_problem(level, dim, n, reference_batches, rng):
    """A Gaussian-staircase ``Problem`` with I = ``level`` nats in dimension ``dim``.

    I_N(f*) by Monte Carlo over ``reference_batches`` batches (not computed when 0).

    Parameters
    ----------
    level : float
        The mutual information, in nats.
    dim : int
        The dimension of z and of z'.
    n : int
        N, the batch size of I_N(f*).
    reference_batches : int
        Monte Carlo batches for I_N(f*); 0 skips it.
    rng : numpy.random.Generator
        The generator of the Monte Carlo reference.

    Returns
    -------
    Problem
        The problem.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.estimators import gaussian_problem
    >>> problem = gaussian_problem(2.0, 4, 8, 0, np.random.default_rng(0))
    >>> problem.name, round(float(problem.mutual_information), 12), problem.infonce_n
    ('gaussian 2 nats', 2.0, None)
    """
    joint, _ = staircase_joint(level, dim)
    quadratic = gaussian_forms.optimal_critic(joint)
    estimate = stderr = None
    if reference_batches:
        estimate, stderr = gaussian_infonce_bound(joint, quadratic, n, reference_batches, rng)

    def sample(size, rng):
        return sample_pairs(joint, (size,), rng)

    def critic(z, z_prime):
        return critic_scores(quadratic, np.asarray(z, dtype=float), np.asarray(z_prime, dtype=float))
    return Problem(f"gaussian {level:g} nats", gaussian_forms.mutual_information(joint),
                   gaussian_forms.infonce_limit(joint, quadratic), estimate, stderr, sample,
                   critic)


def make_problems(problems, batch_size, levels=LEVELS, dim=DIM, reference_batches=1000, seed=0):
    """The ``Problem`` list for ``problems`` = "all", "discrete" or "gaussian".

    Parameters
    ----------
    problems : {"all", "discrete", "gaussian"}
        Which problems.
    batch_size : int
        N.
    levels : sequence of float, default ``LEVELS``
        The staircase's MI levels, in nats.
    dim : int, default ``DIM``
        The staircase's dimension.
    reference_batches : int, default 1000
        Monte Carlo batches of each Gaussian I_N(f*), and of a discrete one whose
        enumeration is too large (0: no Monte Carlo reference).
    seed : int, default 0
        Seed of the Monte Carlo references.

    Returns
    -------
    list of Problem
        The discrete problems (``DISCRETE_JOINTS``), then one per level.

    Examples
    --------
    >>> from rpmref.testing.estimators import make_problems
    >>> [problem.name for problem in make_problems("discrete", 8)]
    ['binary, weak', '3x3, strong', '4x2, uneven']
    """
    out = []
    if problems in ("all", "discrete"):
        out += [discrete_problem(name, p, batch_size, reference_batches,
                                 np.random.default_rng([seed, 0, i]))
                for i, (name, p) in enumerate(DISCRETE_JOINTS.items())]
    if problems in ("all", "gaussian"):
        out += [gaussian_problem(level, dim, batch_size, reference_batches,
                                 np.random.default_rng([seed, 1, i]))
                for i, level in enumerate(levels)]
    return out


@adapters.under_numpy_defaults
def check_mi_estimator(fn, *, critic=False, infonce=False, batch_size=64, batches=30,
                       problems="all", levels=LEVELS, dim=DIM, reference_batches=1000,
                       framework="numpy", seed=0):
    """Run an MI estimator on discrete and Gaussian problems of known MI (module docstring).

    Parameters
    ----------
    fn : callable
        ``fn(z, z_prime)`` or, with ``critic=True``, ``fn(z, z_prime, critic)``; z (N, k),
        z_prime (N, k') one batch of pairs (one-hot for discrete problems); returns an MI
        estimate in nats from that batch.
    critic : bool, default False
        Pass the problem's optimal critic (a NumPy function (z, z') -> (N, N') scores) as
        the third argument: log p(z'|z) − log p(z') on the discrete problems, that up to
        an additive function of z on the Gaussian ones (module docstring).
    infonce : bool, default False
        fn claims to be an InfoNCE estimator: check estimates ≤ log N, mean ≤ I, and
        (with ``critic``) mean = I_N(f*), within a Student-t multiple of the standard
        error (module docstring).
    batch_size : int, default 64
        N, pairs per batch (2 … ``MAX_BATCH_SIZE`` = 8192).
    batches : int, default 30
        Estimates per problem (2 … ``MAX_BATCHES`` = 10000; at least 2 for a standard error;
        with few batches the Student-t multiple is large and the check weak: 10050 s.e.
        at 2, 17.4 at 5, 4.7 at 30).
    problems : {"all", "discrete", "gaussian"}, default "all"
        Which problems.
    levels : sequence of float, default ``LEVELS``
        The staircase's MI levels, in nats, each in (0, ``largest_true_mi(dim)``];
        not empty with ``problems="gaussian"``.
    dim : int, default ``DIM``
        The staircase's dimension (≥ 1).
    reference_batches : int, default 1000
        Monte Carlo batches for the Gaussian I_N(f*) reference, and for a discrete one
        beyond exact enumeration (2 … ``MAX_REFERENCE_BATCHES`` = 100000).
    framework : {"numpy", "torch", "jax", "auto"}, default "numpy"
        The type of z and z_prime handed to fn; "auto" decides on the first batch as
        ``check_infonce`` does (``rpmref.testing.adapters.detect``).
    seed : int, default 0
        Seed of the batches and of the Monte Carlo references.

    Returns
    -------
    EstimatorReport
        ``passed`` (None without claims and without non-finite estimates), ``results``
        per problem; ``print(report)``.

    Raises
    ------
    TypeError
        If ``fn`` is not callable, ``critic`` or ``infonce`` is not a bool, a count or
        ``dim`` is not an integer, or ``levels`` is not a sequence of numbers.
    ValueError
        If ``problems`` or ``framework`` is not one of the names above, a count is outside
        its range, a level is outside (0, ``largest_true_mi(dim)``] or ``levels`` is
        empty with ``problems="gaussian"``.
    Exception
        What fn raises, or NotANumberError (a TypeError; also for a bool) /
        NotScalarError (a ValueError) for what it returns, with a note naming fn, the
        problem, the batch and N.

    Examples
    --------
    A constant estimate of 0 is a valid lower bound (it never exceeds log N):

    >>> from rpmref.testing import check_mi_estimator
    >>> report = check_mi_estimator(lambda z, z_prime: 0.0, infonce=True, problems="discrete",
    ...                             batch_size=8, batches=2)
    >>> report.passed, report.claims[0]
    (True, 'every estimate <= log N (E7)')
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    critic = check_bool(critic, "critic")
    infonce = check_bool(infonce, "infonce")
    batch_size = check_int(batch_size, "batch_size", minimum=2, maximum=MAX_BATCH_SIZE)
    batches = check_int(batches, "batches", minimum=2, maximum=MAX_BATCHES)
    check_positive_int(seed, "seed", minimum=0)
    if problems not in ("all", "discrete", "gaussian"):
        raise ValueError(f"problems must be 'all', 'discrete' or 'gaussian'; got {problems!r}")
    if framework != "auto" and framework not in adapters.FRAMEWORKS:
        raise ValueError("framework must be 'auto', 'numpy', 'torch' or 'jax'; "
                         f"got {framework!r}")
    if framework != "auto":
        adapters.require(framework)
    reference_batches = check_int(reference_batches, "reference_batches", minimum=2,
                                  maximum=MAX_REFERENCE_BATCHES)
    levels, dim = _check_staircase(problems, levels, dim)
    claims = []
    if infonce:
        k = student_quantile(batches - 1)
        claims += ["every estimate <= log N (E7)",
                   f"mean <= I + {k:.4g} s.e. (E7: I_N <= I; Student-t, {batches - 1} d.f.)"]
        if critic:
            claims.append("mean = I_N(f*) within the Student-t multiple of the combined "
                          "s.e. (unbiased for Eq. 6)")
    results = []
    log_n = float(np.log(batch_size))
    checked = _refusing_bools(fn)
    for index, problem in enumerate(make_problems(problems, batch_size, levels, dim,
                                                  reference_batches if critic else 0, seed)):
        rng = np.random.default_rng([seed, 2, index])
        values, dtypes = [], []
        for batch in range(batches):
            z, z_prime = problem.sample(batch_size, rng)
            extra = (problem.critic,) if critic else ()
            if framework == "auto":
                framework, _ = adapters.detect(checked, (z, z_prime), extra,
                                               gradients=False)
            outcome = _call(checked, framework, problem, batch, batches, batch_size,
                            (z, z_prime), extra)
            values.append(outcome.value)
            dtypes.append(adapters.dtype_name(outcome.dtype))
        results.append(_summarise(problem, np.array(values), dtypes, batch_size, log_n, critic,
                                  infonce, reference_batches))
    failed = any(r.failures for r in results)
    passed = False if failed else (None if not claims else True)
    return EstimatorReport(passed, tuple(claims), tuple(results), batch_size, batches)


def _check_staircase(problems, levels, dim):
    """(levels as a tuple of floats, dim) checked; a ValueError if no problem is left."""
    dim = check_int(dim, "dim", minimum=1)
    if isinstance(levels, (str, bytes)) or np.ndim(levels) != 1:
        raise TypeError(f"levels must be a sequence of MI levels in nats, got "
                        f"{type(levels).__name__} {levels!r:.40}")
    levels = as_real_array(levels, "levels", ndim=1, allow_empty=True)
    if problems == "gaussian" and levels.size == 0:
        raise ValueError("levels is empty and problems='gaussian': no problem would be run")
    top = largest_true_mi(dim)
    bad = np.flatnonzero(~((levels > 0) & (levels <= top)))
    if bad.size:
        raise ValueError(f"levels must be in (0, {top:.6g}] nats (the largest MI of the "
                         f"staircase at dim = {dim}); entry {bad[0]} is {levels[bad[0]]!r}")
    return tuple(float(level) for level in levels), dim


def _refusing_bools(fn):
    """``fn`` with a bool result (Python, NumPy or torch) refused as not a number."""
    @functools.wraps(fn)
    def checked(*arguments):
        out = fn(*arguments)
        dtype = getattr(out, "dtype", None)
        if isinstance(out, (bool, np.bool_)) or str(dtype) in ("bool", "torch.bool"):
            raise adapters.NotANumberError(out)
        return out
    return checked


def _call(fn, framework, problem, batch, batches, n, inputs, extra):
    """One estimate; what fn raises or returns wrong gets a note naming the problem."""
    try:
        with np.errstate(all="ignore"):
            return adapters.evaluate(fn, framework, inputs, extra, gradients=False)
    except Exception as err:
        verb = ("returned" if isinstance(err, (adapters.NotANumberError,
                                               adapters.NotScalarError)) else "raised")
        name = getattr(fn, "__name__", type(fn).__name__)
        err.add_note(f"{verb} by fn ({name}) on problem {problem.name!r}, batch {batch + 1} "
                     f"of {batches}, N = {n} ({framework} inputs of shapes "
                     f"{inputs[0].shape} and {inputs[1].shape})")
        raise


def _summarise(problem, values, dtypes, n, log_n, critic, infonce, reference_batches):
    with np.errstate(all="ignore"):             # a non-finite estimate is a failure below
        mean = float(np.mean(values))
        stderr = float(np.std(values, ddof=1) / np.sqrt(values.size))
    half = sorted({name for name in dtypes if adapters.half_precision_eps(name) is not None})
    # rounding allowance: a log-sum-exp over N candidates of logits up to ~1000 is
    # accurate to ~(N + 1000) ε; a real violation is far larger. ε of float32 for
    # float32 results, else float64's (half precision is refused below, not allowed for)
    eps = float(np.finfo(np.float32 if "float32" in dtypes else np.float64).eps)
    rounding = 8 * eps * (n + 1000)
    above = int(np.sum(values > log_n + rounding))
    failures = []
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        failures.append(f"fn returned {float(values[bad[0]])!r} on batch {bad[0] + 1} (of "
                        f"{values.size}; {bad.size} not finite): an estimate must be a "
                        "finite number")
    if infonce and half:
        coarsest = max(map(adapters.half_precision_eps, half))
        failures.append(f"half-precision: fn returned {' and '.join(half)} estimates "
                        f"(ε = {coarsest:.2g}; 8 ε (N + 1000) = {8 * coarsest * (n + 1000):.3g} "
                        "nats), too coarse to check the claims; return float32 or float64")
    k = student_quantile(values.size - 1)
    if infonce and not half:
        if above:
            failures.append(f"{above} of {values.size} estimates exceed log N = {log_n:.4f} "
                            f"(largest {values.max():.4f}): not an InfoNCE bound (E7)")
        excess = mean - problem.mutual_information
        if excess > k * stderr + rounding:
            spread = f"{excess / stderr:.1f} s.e." if stderr > 0 else "s.e. 0"
            failures.append(f"mean {mean:.4f} exceeds I = {problem.mutual_information:.4f} by "
                            f"{excess:.4f} nats ({spread} > {k:.4g}): InfoNCE is at most I (E7)")
    bias_n = None
    if critic:
        bias_n = mean - problem.infonce_n
        reference = problem.infonce_n_stderr
        spread = float(np.hypot(stderr, reference))
        # Welch–Satterthwaite degrees of freedom of the combined standard error
        terms = stderr ** 4 / (values.size - 1) + (
            reference ** 4 / (reference_batches - 1) if reference else 0.0)
        dof = spread ** 4 / terms if terms > 0 else values.size - 1
        k_n = student_quantile(dof)
        if infonce and not half and abs(bias_n) > k_n * spread + rounding:
            failures.append(f"mean {mean:.4f} differs from I_N(f*) = {problem.infonce_n:.4f} by "
                            f"{bias_n:+.4f} (> {k_n:.4g} s.e. = {k_n * spread:.4f}): "
                            "biased for the N-sample InfoNCE objective (Eq. 6)"
                            + _mistake_hint(mean, stderr, problem, log_n, k_n, rounding))
    return ProblemResult(problem.name, n, problem.mutual_information, problem.infonce_limit,
                         problem.infonce_n, problem.infonce_n_stderr, log_n, mean, stderr,
                         mean - problem.mutual_information, bias_n, float(values.max()), above,
                         tuple(failures))


#: Estimates an InfoNCE estimator with a classic mistake returns, as functions of
#: (I_N(f*), log N), and what the mistake is.
MISTAKES = (
    (lambda i_n, log_n: i_n - log_n, 1.0, "−loss (log N left out of the estimate log N − loss)"),
    (lambda i_n, log_n: log_n - i_n, 1.0, "the loss (log N − estimate) instead of the estimate"),
    (lambda i_n, log_n: i_n / math.log(2.0), 1.0 / math.log(2.0),
     "the estimate in bits (divided by log 2)"),
)


def _mistake_hint(mean, stderr, problem, log_n, k, rounding):
    """"; it matches the mean of <mistake>, <value>" when one of ``MISTAKES`` explains the
    mean within k combined standard errors, else ""."""
    for expected, scale, what in MISTAKES:
        target = expected(problem.infonce_n, log_n)
        spread = float(np.hypot(stderr, scale * problem.infonce_n_stderr))
        if abs(mean - target) <= k * spread + rounding:
            return f"; it matches the mean of {what}, {target:.4f}"
    return ""


__all__ = ["check_mi_estimator", "EstimatorReport", "ProblemResult", "Problem",
           "DISCRETE_JOINTS", "discrete_problem", "gaussian_problem", "make_problems",
           "student_quantile"]
