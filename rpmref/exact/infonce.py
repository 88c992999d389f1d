"""The energy prior and the InfoNCE objectives for a critic table f(z, z').

Shapes: ``p_zz`` = P(z, z') (k, k'), ``f`` (k, k') any finite reals (Sec. 3.2),
up to ±1.8e308.

Large critics: every log-sum-exp over z' is shifted, per row z, at its largest
term j*(z) = argmax_{z'} log P(z') + f(z, z'), and the shift enters as the
difference f(z, z') − f(z, j*) — formed before anything is added to it, so
f = 1e16 loses nothing to the rounding of 1e16 + log P(z'). Differences of
critic values are carried as halves, f/2 − f*/2, which never overflow, so
f = ±1e308 gives the finite answer (e.g. I_∞ = −5e307) wherever it exists; a value
beyond the float64 range (I_∞ = −2e308) is returned as −inf, without a warning.
"""
import math
from collections import namedtuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval, isbox

from rpmref.exact.measures import scalar
from rpmref.exact.numerics import CHUNK_ELEMENTS, mean_and_standard_error, prod_exp, softplus
from rpmref.exact.validation import (
    Array, GeneratorSpec, Integer, Optional, Options, Pmf, Seed, make_generator, validate_params)

InfoNCEBound = namedtuple("InfoNCEBound", "estimate stderr method n_batches")
InfoNCEBound.__doc__ = """The N-sample InfoNCE objective I_N (Eq. 6), as returned by :func:`rpmref.infonce_bound`.

Parameters
----------
estimate : float
    I_N in nats.
stderr : float
    Its Monte Carlo standard error (0.0 when exact).
method : {"exact", "mc"}
    How it was computed.
n_batches : int or None
    Monte Carlo batches drawn (None when exact).

Examples
--------
>>> from rpmref import InfoNCEBound
>>> InfoNCEBound(0.25, 0.0, "exact", None).method
'exact'
"""

#: Default work budget of ``infonce_bound`` (``max_terms``): array elements of the exact
#: enumeration (count vectors × k × k') or of the Monte Carlo draws (n_batches × k × k').
EXACT_MAX_TERMS = 10_000_000

_INT64_MAX = int(np.iinfo(np.int64).max)
_JOINT = dict(p_zz=Pmf(dims=("k", "k'")), f=Array(dims=("k", "k'")))


def _value(x):
    return np.asarray(getval(x))


def _shifted_rows(p_zz, f):
    """The pieces of Z(z) = Σ_{z'} P(z') e^{f(z,z')} (Eq. 22), shifted at each row's top term.

    Returns p_z (k,), p_z' (k',), f* = f(z, j*) (k,), log P(j*) (k,), the shifted
    log-weights c(z, z') = f(z,z') − f* − log P(j*) (k, k'), the mask of the entries
    z' ≠ j*(z) (k, k') and log Z̃ (k,) with
    Z̃(z) = Σ_{z'} P(z') e^{c(z,z')} ∈ [1, k'], so that log Z(z) = f* + log P(j*) + log Z̃.
    Z̃ = 1 + (the terms z' ≠ j*): the top term is exactly 1, so log Z̃ is log1p of the
    others, which keeps a contribution of 1e-20 that fl(1 + 1e-20) = 1 would drop.
    """
    p_z, p_z_prime = anp.sum(p_zz, axis=1), anp.sum(p_zz, axis=0)
    reach = _value(p_z_prime) > 0
    fv = _value(f)
    # j* maximises f + log P(z') over the reachable z'. Formed as (f − max f) + log P: at
    # |f| = 1e300, f + log P rounds log P (≥ −745) away and ties the columns, and a wrong
    # j* makes the other terms overflow. f − max f is exact near the maximum (Sterbenz).
    f_max = np.max(np.where(reach[None, :], fv, -np.inf), axis=1, keepdims=True)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        score = np.where(reach[None, :], (fv - f_max)
                         + np.log(np.where(reach, _value(p_z_prime), 1.0))[None, :], -np.inf)
    top = np.argmax(score, axis=1)                                # j*(z), (k,)
    f_top = f[np.arange(top.size), top]
    log_p_top = anp.log(p_z_prime[top])
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = f - f_top[:, None] - log_p_top[:, None]         # ≤ −log P(z') where reachable
    others = np.arange(shifted.shape[1])[None, :] != top[:, None]
    rest = anp.sum(anp.where(others, prod_exp(shifted, p_z_prime[None, :]), 0.0), axis=1)
    return p_z, p_z_prime, f_top, log_p_top, shifted, others, anp.log1p(rest)


@validate_params(**_JOINT)
def log_partition(p_zz, f):
    """log Z(z) = log Σ_{z'} P(z') e^{f(z, z')} (Eq. 22), P(z') the marginal of ``p_zz``.

    Parameters
    ----------
    p_zz : array_like, shape (k, k')
        The joint pmf P(z, z'); P(z), P(z') are its marginals.
    f : array_like, shape (k, k')
        The critic f(z, z'): any finite reals (up to ±1.8e308).

    Returns
    -------
    ndarray, shape (k,)
        log Z(z) for every z.

    Raises
    ------
    TypeError
        If ``p_zz`` or ``f`` is not an array of real numbers.
    ValueError
        If ``p_zz`` is not a finite, non-negative 2-D table summing to 1, or ``f``
        is not finite or not of the shape of ``p_zz``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import log_partition
    >>> p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> f = 2 * np.eye(2)
    >>> log_partition(p_zz, f).round(6)
    array([1.433781, 1.433781])
    >>> round(float(np.log(0.5 * np.exp(2) + 0.5)), 6)
    1.433781
    """
    _, _, f_top, log_p_top, _, _, log_z_rest = _shifted_rows(p_zz, f)
    return f_top + log_p_top + log_z_rest


@validate_params(**_JOINT)
def energy_prior(p_zz, f):
    """The energy prior P_θ(z, z') = P(z) P(z') e^{f(z,z')} / Z(z) (Eq. 21–22).

    Each entry is P(z) P(z') e^{c(z,z')} / Z̃(z) with the shifted critic c of the
    module docstring, so f = 1e16 · I gives the exact prior (not one that sums to 0.27);
    on each row's top term, where P(z') e^{c} = 1, it is P(z) / Z̃(z). Its gradient in
    ``p_zz`` is exact where every partial derivative is a float64 number; at a column
    with P(z') = 0 and a critic of ~1e3 on it, the partial derivative e^{f} overflows and
    reverse mode returns NaN, even for a combination (such as a row sum) whose
    derivative is finite.

    Parameters
    ----------
    p_zz : array_like, shape (k, k')
        The joint pmf P(z, z'); P(z), P(z') are its marginals.
    f : array_like, shape (k, k')
        The critic f(z, z'): any finite reals (up to ±1.8e308).

    Returns
    -------
    ndarray, shape (k, k')
        A pmf whose rows sum to P(z); zero on rows/columns the marginals do not reach.
        Each entry is its exact value correctly rounded, so one below 4.9e-324 (a
        critic gap beyond ~745 under a row's top term) is 0. A function given this
        table sees that 0: ``kl_divergence(p_zz, energy_prior(p_zz, f))`` is then +inf
        and ``expected_elbo`` −inf, the right answers for the table but not for the
        prior it rounds. At such critics use the log-space routes: KL(P ‖ P_θ) =
        I(Z; Z') − I_∞(f) (``mutual_information`` and ``infonce_limit``) and
        L = I_∞(f) + C at the energy prior (Eq. 21–25, with ``data_constant``).

    Raises
    ------
    TypeError
        If ``p_zz`` or ``f`` is not an array of real numbers.
    ValueError
        If ``p_zz`` is not a finite, non-negative 2-D table summing to 1, or ``f``
        is not finite or not of the shape of ``p_zz``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import energy_prior
    >>> p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> f = 2 * np.eye(2)
    >>> energy_prior(p_zz, f).round(6)
    array([[0.440399, 0.059601],
           [0.059601, 0.440399]])
    """
    p_z, p_z_prime, _, _, shifted, others, log_z_rest = _shifted_rows(p_zz, f)
    return anp.where(others, prod_exp(shifted - log_z_rest[:, None], p_z[:, None], p_z_prime[None, :]),
                     prod_exp(-log_z_rest[:, None], p_z[:, None]))


def _half_gap(f, f_top, log_p_top, log_z_rest):
    """(f(z,z') − log Z(z)) / 2, without overflow for |f| up to the float64 maximum."""
    return f / 2 - f_top[:, None] / 2 - (log_p_top + log_z_rest)[:, None] / 2


@validate_params(**_JOINT)
def infonce_limit(p_zz, f):
    """The infinite-sample InfoNCE objective I_∞(f) (Eq. 7, 25), in nats.

    I_∞ = E_{P(z,z')}[f(z,z')] − E_{P(z)}[log Σ_{z'} P(z') e^{f(z,z')}],
    evaluated as 2 Σ P(z,z') (f(z,z') − log Z(z))/2 so that large |f| cancels
    before summing and ±1e308 critics do not overflow; only a result below the float64
    range (e.g. −2e308) is returned as −inf.

    Parameters
    ----------
    p_zz : array_like, shape (k, k')
        The joint pmf P(z, z'); P(z), P(z') are its marginals.
    f : array_like, shape (k, k')
        The critic f(z, z'): any finite reals (up to ±1.8e308).

    Returns
    -------
    float
        I_∞(f) in nats; at most I(Z; Z'), with equality for f = log P(z'|z)/P(z') + c(z).

    Raises
    ------
    TypeError
        If ``p_zz`` or ``f`` is not an array of real numbers.
    ValueError
        If ``p_zz`` is not a finite, non-negative 2-D table summing to 1, or ``f``
        is not finite or not of the shape of ``p_zz``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import infonce_limit
    >>> p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> f = 2 * np.eye(2)
    >>> round(infonce_limit(p_zz, f), 6)
    0.166219
    >>> from rpmref import mutual_information
    >>> p_z = p_zz.sum(axis=1)
    >>> best = np.log(p_zz / np.outer(p_z, p_z))
    >>> abs(infonce_limit(p_zz, best) - mutual_information(p_zz)) < 1e-15
    True
    """
    _, _, f_top, log_p_top, _, _, log_z_rest = _shifted_rows(p_zz, f)
    with np.errstate(over="ignore"):   # only a true value beyond −1.8e308 overflows: −inf
        return scalar(2 * anp.sum(p_zz * _half_gap(f, f_top, log_p_top, log_z_rest)))


@validate_params(**_JOINT, n=Integer(1, _INT64_MAX), method=Options("auto", "exact", "mc"),
                 n_batches=Integer(2, _INT64_MAX), rng=Optional(GeneratorSpec()), seed=Seed(),
                 max_terms=Integer(1))
def infonce_bound(p_zz, f, n, method="auto", n_batches=2000, rng=None, seed=None,
                  max_terms=EXACT_MAX_TERMS):
    """The N-sample InfoNCE objective I_N(f) (Eq. 6), exactly or by Monte Carlo.

    I_N = E[(1/N) Σ_i log( e^{f(z_i,z'_i)} / ((1/N) Σ_j e^{f(z_i,z'_j)}) )],
    pairs (z_i, z'_i) i.i.d. from ``p_zz``. The pairs are drawn from p_zz / Σ p_zz
    (Σ p_zz = 1 to within the validation tolerance; the division keeps
    (Σ P(z'))^{N−1} from drifting for large N), in both methods.

    Parameters
    ----------
    p_zz : array_like, shape (k, k')
        The joint pmf P(z, z'); P(z), P(z') are its marginals.
    f : array_like, shape (k, k')
        The critic f(z, z'): any finite reals (up to ±1.8e308).
    n : int
        N, the batch size (≥ 1).
    method : {"auto", "exact", "mc"}, default "auto"
        How I_N is computed:

        - "exact": enumeration. By exchangeability every term i has the law of
          term 1, whose negatives z'_2..z'_N are i.i.d. P(z'); the sum over them
          depends only on their counts, so I_N = log N + Σ_{z,z'} P(z,z') Σ_c Mult(c)
          [f(z,z') − log(e^{f(z,z')} + Σ_{z''} c_{z''} e^{f(z,z'')})] over the count
          vectors c of N−1 draws. Refused when that needs more than ``max_terms``
          elements. Differentiable by autograd in ``p_zz`` and ``f``; with ``p_zz``
          traced, columns with P(z') = 0 are enumerated too (the gradient has a term
          for each), so they count towards ``max_terms``.
        - "mc": ``n_batches`` independent batches of N pairs; the estimate is their
          mean and ``stderr`` the standard error of that mean. A batch enters only
          through its (k, k') table of pair counts (one multinomial draw), so it
          costs O(k·k') whatever N is; refused when n_batches·k·k' > ``max_terms``.
          Differentiable in ``f`` only: with ``p_zz`` traced it is refused (the
          batches are draws from p_zz, and a gradient of 0 would pass for one).
        - "auto": "exact" when within ``max_terms``, otherwise "mc".
    n_batches : int, default 2000
        Monte Carlo batches (≥ 2).
    rng : numpy.random.Generator, optional
        The generator for Monte Carlo; or give ``seed`` (not both).
    seed : int, sequence of int or numpy.random.SeedSequence, optional
        Seed for ``numpy.random.default_rng`` when ``rng`` is not given.
    max_terms : int, default ``rpmref.exact.infonce.EXACT_MAX_TERMS``
        Work budget in array elements (count vectors × k × k', or n_batches × k × k').

    Returns
    -------
    InfoNCEBound
        ``(estimate, stderr, method, n_batches)``; estimate and stderr in nats.

    Raises
    ------
    TypeError
        If an array is not real, an integer argument is a bool or float, ``rng`` is
        not a Generator, ``method`` is not a string, or ``seed`` is not a seed.
    ValueError
        As for :func:`infonce_limit` on ``p_zz`` and ``f``; if ``n`` < 1,
        ``n_batches`` < 2, ``max_terms`` < 1 or ``method`` is not one of the three;
        if both ``rng`` and ``seed`` are given; or if the chosen method needs more
        than ``max_terms`` elements.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import infonce_bound
    >>> p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> f = 2 * np.eye(2)
    >>> bound = infonce_bound(p_zz, f, n=8)
    >>> round(bound.estimate, 10), bound.stderr, bound.method
    (0.1452481599, 0.0, 'exact')
    >>> mc = infonce_bound(p_zz, f, n=8, method="mc", n_batches=500, seed=0)
    >>> round(mc.estimate, 4), round(mc.stderr, 4)
    (0.1357, 0.0114)
    """
    p_zz_v = _value(p_zz)
    # traced, every column is enumerated (see _infonce_exact), so every column counts
    reachable = p_zz_v.shape[1] if isbox(p_zz) else int(np.count_nonzero(p_zz_v.sum(axis=0)))
    exact_terms = _exact_size(reachable, p_zz_v.size, n)
    counted = (f"{reachable} z' states (traced, every column counts: the gradient has a "
               "term for each unreached one)" if isbox(p_zz) else f"{reachable} reachable z' states")
    if method == "exact" and exact_terms > max_terms:
        raise ValueError(
            f"infonce_bound(method='exact') with n={n} and {counted} needs "
            f"{exact_terms:.3g} terms, more than max_terms={max_terms:g}; "
            + ("raise max_terms" if isbox(p_zz) else "use method='mc' or raise max_terms"))
    if method == "exact" or (method == "auto" and exact_terms <= max_terms):
        return InfoNCEBound(scalar(_infonce_exact(p_zz, f, n)), 0.0, "exact", None)
    if isbox(p_zz):
        # the batches are draws from p_zz: their estimate has no gradient in it, and a
        # silent zero (autograd's answer) would pass for one
        raise ValueError(
            f"infonce_bound(method='{method}') "
            f"{'estimates' if method == 'mc' else 'would estimate'} by Monte Carlo, which is not "
            "differentiable in p_zz (its batches are draws from it); differentiate "
            f"method='exact' (n={n} and {counted} need {exact_terms:.3g} terms: raise "
            f"max_terms to at least that)")
    mc_terms = n_batches * p_zz_v.size
    if mc_terms > max_terms:
        raise ValueError(
            f"infonce_bound(method='mc') with n_batches={n_batches} and k·k'={p_zz_v.size} "
            f"needs {mc_terms:.3g} terms, more than max_terms={max_terms:g}"
            + ("" if method == "mc" else f" (and method='exact' needs {exact_terms:.3g})")
            + "; lower n_batches or raise max_terms")
    generator = make_generator(rng, seed)
    counts = sample_batch_counts(p_zz_v, n, n_batches, generator)
    estimate, stderr = _mean_and_stderr_of_doubled(_batch_half_values(counts, f, n))
    return InfoNCEBound(scalar(estimate), stderr, "mc", n_batches)


# --------------------------------------------------------------------------- exact
def _n_compositions(total, parts):
    """How many count vectors of ``parts`` non-negative integers sum to ``total``."""
    return math.comb(total + parts - 1, parts - 1)


def _exact_size(reachable, cells, n):
    """Array elements of the exact enumeration: count vectors of n−1 draws × k·k'.

    A float; huge values are estimated from log C(n+m−2, m−1) = Σ_{i<m} log((n−1+i)/i)
    (m = reachable states), never by building big integers.
    """
    if n == 1:
        return float(cells)
    log_count = math.fsum(math.log((n - 1 + i) / i) for i in range(1, reachable))
    if log_count + math.log(cells) > math.log(1e18):
        return math.exp(min(log_count + math.log(cells), 709.0))
    return float(_n_compositions(n - 1, reachable) * cells)


def _compositions(total, parts):
    """All count vectors (M, parts) of non-negative integers summing to ``total``.

    Built column by column without recursion: each partial vector with r left to
    place branches into r + 1 children; the columns are then read back through the
    parent links, O(M · parts) work.
    """
    remaining = np.array([total], dtype=np.int64)
    columns, parents = [], []
    for _ in range(parts - 1):
        children = remaining + 1
        parent = np.repeat(np.arange(remaining.size), children)
        first_child = np.repeat(np.cumsum(children) - children, children)
        values = np.arange(parent.size, dtype=np.int64) - first_child
        columns.append(values)
        parents.append(parent)
        remaining = remaining[parent] - values
    out = np.empty((remaining.size, parts), dtype=np.int64)
    out[:, parts - 1] = remaining
    index = np.arange(remaining.size)
    for j in range(parts - 2, -1, -1):
        out[:, j] = columns[j][index]
        index = parents[j][index]
    return out


def _log_factorials(largest):
    """log m! for m = 0..largest (lgamma, exact to rounding; no cumulative sums)."""
    return np.fromiter(map(math.lgamma, range(1, largest + 2)), dtype=float, count=largest + 1)


def _top_and_log_sum(counts, f_cols):
    """For count vectors c (B, m) over the columns f_cols (k, m):
    top(b, z) = max_{j: c_j > 0} f(z, j) and log S(b, z) = log Σ_j c_j e^{f(z,j) − top} ≥ 0."""
    present = counts > 0                                            # (B, m)
    fv = _value(f_cols)
    masked = np.where(present[:, None, :], fv[None, :, :], -np.inf)  # (B, k, m)
    arg = np.argmax(masked, axis=2)                                  # (B, k)
    top = f_cols[np.arange(fv.shape[0])[None, :], arg]               # (B, k)
    with np.errstate(over="ignore", invalid="ignore"):
        gaps = anp.where(present[:, None, :], f_cols[None, :, :] - top[:, :, None], -np.inf)
    return top, anp.log(anp.sum(counts[:, None, :] * anp.exp(gaps), axis=2))


#: log m! − (m log m − m + ½ log 2πm) for m = 1..15 (mpmath, 20 digits); above 15 its
#: asymptotic series (``_stirling_error``).
_STIRLING_ERRORS = np.array([
    0.08106146679532725822, 0.041340695955409294094, 0.027677925684998339149,
    0.020790672103765093112, 0.016644691189821192163, 0.013876128823070747999,
    0.011896709945891770095, 0.010411265261972096497, 0.0092554621827127329177,
    0.0083305634333628712565, 0.007573675487951840795, 0.0069428401072095298657,
    0.0064089941880042070684, 0.0059513701127588477356, 0.005554733551962801371])


def _stirling_error(m):
    """log m! − (m log m − m + ½ log 2πm) for integers m ≥ 1 (float array): the table up to
    15, then 1/(12m) − 1/(360m³) + 1/(1260m⁵) − 1/(1680m⁷) + 1/(1188m⁹), whose next term,
    691/(360360 m¹¹), is below 2e-16 of the sum from m = 16 on (Loader 2000)."""
    m = np.asarray(m, dtype=float)
    big = np.maximum(m, 16.0)
    r = 1.0 / (big * big)
    series = (1.0 / 12 - r * (1.0 / 360 - r * (1.0 / 1260 - r * (1.0 / 1680 - r / 1188)))) / big
    table = _STIRLING_ERRORS[np.clip(m.astype(np.int64), 1, 15) - 1]
    return np.where(m > 15, series, table)


def _bd0(x, mean):
    """x log(x/mean) + mean − x ≥ 0 for x ≥ 0, mean > 0 (Loader 2000): where x is near the
    mean, by the series 2x Σ_j v^(2j+1)/(2j+1) − (x − mean) v in v = (x − mean)/(x + mean)
    (no cancellation of x log(x/mean) against mean − x); mean at x = 0."""
    x, mean = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(mean, dtype=float))
    near = np.abs(x - mean) < 0.1 * (x + mean)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        ratio = x / mean
        usable = (ratio >= np.finfo(np.float64).tiny) & (ratio < np.inf)   # else log x − log mean
        log_ratio = np.where(usable, np.log(np.where(usable, ratio, 1.0)),
                             np.log(np.where(x > 0, x, 1.0)) - np.log(mean))
        direct = np.where(x > 0, x * log_ratio, 0.0) + mean - x
        v = np.where(near, (x - mean) / (x + mean), 0.0)
    total, term, v2 = (x - mean) * v, 2.0 * x * v, v * v
    for j in range(1, 20):          # |v| < 0.1: v^40 is below 1e-40 of the first term
        term = term * v2
        total = total + term / (2 * j + 1)
    return np.where(near, total, direct)


def _log_multinomial(counts, pmf, n):
    """log of the multinomial pmf of count vectors (M, m) summing to n ≥ 1 under ``pmf`` (m,) > 0,
    in Loader's saddle-point form: ½ log 2πn + δ(n) + n (Σ p − 1) + Σ_j t_j(c_j) with
    t_j(c) = −bd0(c, n p_j) − [c > 0] (½ log 2πc + δ(c)), δ the Stirling error. log n! and
    Σ c log p, each ~n log n, cancel in the algebra: lgamma's route kept their rounding,
    eps·n log n relative in every weight (2.5e-12 at n = 2000, 3.7e-10 at 2·10⁵). Each t_j
    is tabulated once for c = 0..n, (n + 1, m), so the M rows cost one gather and a sum."""
    c = np.arange(n + 1)
    table = -_bd0(c[:, None].astype(float), n * pmf[None, :])
    table[1:] -= (0.5 * np.log(2 * np.pi * c[1:]) + _stirling_error(c[1:]))[:, None]
    excess = n * (math.fsum(map(float, pmf)) - 1.0)
    return (table[counts, np.arange(counts.shape[1])].sum(axis=1) + excess
            + 0.5 * math.log(2 * np.pi * n) + float(_stirling_error(n)))


@primitive
def _gradient_scaled(x, factor):
    """``x`` itself; its incoming gradient is multiplied by ``factor`` (a power of 2, exact)."""
    return x


defvjp(_gradient_scaled, lambda ans, x, factor: lambda g: g * factor, None)

#: Traced critic values beyond 2^900 are differentiated with every intermediate gradient
#: scaled to below 2^900 (see ``_infonce_exact``).
_GRADIENT_HEADROOM_BITS = 900


def _infonce_exact(p_zz, f, n):
    """I_N by enumeration of the negatives' counts; for traced arguments with |f| near
    1e308, the backward pass runs on gradients scaled down by a power of 2 and scaled back
    at the inputs: the slope of one count vector's weight, ~ max|f| times a multinomial
    coefficient, overflows float64 although the gradient it adds up to does not."""
    shift = 0
    if isbox(p_zz) or isbox(f):
        biggest = float(np.max(np.abs(_value(f))))
        if biggest > 2.0 ** _GRADIENT_HEADROOM_BITS:
            shift = math.frexp(biggest)[1] - _GRADIENT_HEADROOM_BITS
    if not shift:
        return _expected_infonce(p_zz, f, n)
    p_zz, f = _gradient_scaled(p_zz, 2.0 ** shift), _gradient_scaled(f, 2.0 ** shift)
    return _gradient_scaled(_expected_infonce(p_zz, f, n), 2.0 ** -shift)


def _expected_infonce(p_zz, f, n):
    if n == 1:
        return anp.sum(0.0 * p_zz * f)  # every term is log(e^f / e^f) = 0 (0·f first: |f| ≤ 1e308)
    p_z_prime = anp.sum(p_zz, axis=0)
    traced = isbox(p_zz)
    # Traced, every column takes part: a column with P(z') = 0 adds nothing to the value,
    # but its first-order weight (one negative there) is in the gradient.
    reach = np.arange(p_z_prime.shape[0]) if traced else np.flatnonzero(_value(p_z_prime) > 0)
    if reach.size == 1:
        # every negative has the positive's z': each term is f − log(N e^f) = −log N, I_N = 0
        # (log N − softplus(log(N − 1)) would leave an ulp of log N)
        return anp.sum(0.0 * p_zz * f)
    counts = _compositions(n - 1, reach.size)                       # (M, m)
    negatives_pmf = p_z_prime[reach] / anp.sum(p_z_prime[reach])
    pmf_v = _value(negatives_pmf)
    positive = pmf_v > 0
    # the multinomial weights, from Loader's form where every state has P(z') > 0
    # (traced, the columns with P(z') = 0 are enumerated too: weight 0 wherever they are drawn)
    full = counts[:, ~positive].sum(axis=1) == 0
    exact_log = np.full(counts.shape[0], -np.inf)
    exact_log[full] = _log_multinomial(counts[full][:, positive], pmf_v[positive], n - 1)
    if traced:   # Π pmf^c, pmf^0 = 1 even at pmf = 0, as products (prod's slope divides by 0)
        log_fact = _log_factorials(n - 1)
        weight = np.exp(log_fact[n - 1] - log_fact[counts].sum(axis=1))
        for j in range(reach.size):
            c = counts[:, j]
            weight = weight * (1.0 + (c > 0) * (negatives_pmf[j] - 1.0)) ** c
        # the same weights, their values corrected to Loader's (a constant factor for autograd)
        weight_v = _value(weight)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(weight_v > 0, np.exp(exact_log) / weight_v, 1.0)
        weight = weight * np.where(np.isfinite(factor), factor, 1.0)
    else:
        weight = np.exp(exact_log)
    f_cols = f[:, reach]
    k, k_prime = np.shape(_value(f))
    expected_half = 0.0
    step = max(1, CHUNK_ELEMENTS // (k * max(k_prime, reach.size)))
    for start in range(0, counts.shape[0], step):
        c = counts[start:start + step]
        top, log_sum = _top_and_log_sum(c, f_cols)                 # (B, k)
        # term = f(z,z') − log(e^{f(z,z')} + Σ c e^f) = −softplus(v), v = top − f + log S.
        half = top[:, :, None] / 2 - f[None, :, :] / 2             # (B, k, k'), never overflows
        with np.errstate(over="ignore"):
            v = 2 * half + log_sum[:, :, None]
        huge = _value(v) == np.inf                                  # softplus(v) = v there
        term_half = -softplus(anp.where(huge, 0.0, v)) / 2
        if huge.any():
            term_half = anp.where(huge, -(half + log_sum[:, :, None] / 2), term_half)
        expected_half = expected_half + anp.tensordot(weight[start:start + step], term_half, axes=1)
    with np.errstate(over="ignore"):   # only a true value beyond −1.8e308 overflows: −inf
        return np.log(n) + 2 * anp.sum(p_zz * expected_half) / anp.sum(p_zz)


# --------------------------------------------------------------------------- Monte Carlo
def sample_batch_counts(p_zz, n, n_batches, rng):
    """(n_batches, k, k') int64 counts of N = n i.i.d. pairs from p_zz / Σ p_zz per batch.

    One multinomial draw per batch from ``rng``, so the batches are reproducible:
    the same generator state gives the same batches. No validation.

    Parameters
    ----------
    p_zz : array_like, shape (k, k')
        The joint pmf P(z, z') (not checked).
    n : int
        Pairs per batch (N).
    n_batches : int
        Number of batches.
    rng : numpy.random.Generator
        The generator to draw from.

    Returns
    -------
    ndarray of int64, shape (n_batches, k, k')
        Each batch's table of pair counts, summing to ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.infonce import sample_batch_counts
    >>> counts = sample_batch_counts(np.full((2, 2), 0.25), 4, 3, np.random.default_rng(0))
    >>> counts.shape, counts.sum(axis=(1, 2)).tolist()
    ((3, 2, 2), [4, 4, 4])
    """
    p = np.asarray(p_zz, dtype=float)
    probabilities = p.ravel() / p.sum()
    return rng.multinomial(n, probabilities, size=n_batches).reshape((n_batches,) + p.shape)


def batch_values(counts, f, n):
    """I_N of each batch from its pair counts: log N + (1/N) Σ_i [f(z_i, z'_i) − log Σ_j e^{f(z_i, z'_j)}].

    The value is the same for any ordering of the batch's pairs. With
    c(z') = Σ_z counts(z, z') the z' counts of the batch,
    Σ_j e^{f(z, z'_j)} = e^{top(z)} Σ_{z''} c(z'') e^{f(z,z'') − top(z)}, so a batch costs
    O(k·k') whatever N is. No validation.

    Parameters
    ----------
    counts : array_like of int, shape (B, k, k')
        Pair counts of B batches, each summing to ``n``.
    f : ndarray, shape (k, k')
        The critic.
    n : int
        Pairs per batch (N).

    Returns
    -------
    ndarray, shape (B,)
        The value of each batch in nats; ±inf for a batch whose value is beyond
        float64 (|f| ≈ 1e308).

    Examples
    --------
    Two pairs (0, 0) and (1, 1) under f = 2 I: each term is log(e² / (e² + 1)).

    >>> import numpy as np
    >>> from rpmref.exact.infonce import batch_values
    >>> value = batch_values(np.array([[[1, 0], [0, 1]]]), 2 * np.eye(2), 2)
    >>> bool(np.isclose(value[0], np.log(2) + np.log(np.exp(2) / (np.exp(2) + 1)), rtol=1e-15))
    True
    """
    with np.errstate(over="ignore"):
        return 2 * _batch_half_values(counts, f, n)


def _batch_half_values(counts, f, n):
    """Half of each batch's value: a weighted mean of half-gaps, so it never overflows."""
    counts = np.asarray(counts)
    b, k, k_prime = counts.shape
    values = []
    step = max(1, CHUNK_ELEMENTS // (k * k_prime))
    for start in range(0, b, step):
        c = counts[start:start + step]
        top, log_sum = _top_and_log_sum(c.sum(axis=1), f)           # (B, k)
        half = top[:, :, None] / 2 - f[None, :, :] / 2 + log_sum[:, :, None] / 2
        values.append(np.log(n) / 2 - anp.sum((c / n) * half, axis=(1, 2)))
    return anp.concatenate(values)


def _mean_and_stderr_of_doubled(half_values):
    """Mean and standard error of 2·h without overflow (scaled by max |h| for the spread)."""
    hv = _value(half_values)
    scale = float(np.max(np.abs(hv)))
    scale = scale if 0 < scale < np.inf else 1.0
    _, stderr = mean_and_standard_error(hv)
    with np.errstate(over="ignore"):
        return 2 * (anp.mean(half_values / scale) * scale), 2 * stderr


__all__ = ["InfoNCEBound", "EXACT_MAX_TERMS", "energy_prior", "log_partition", "infonce_limit",
           "infonce_bound", "sample_batch_counts", "batch_values"]
