"""Unit and property tests of rpmref.measures and rpmref.numerics."""
import math

import mpmath
import numpy as np
import pytest
from autograd import grad
from hypothesis import given, strategies as st

import rpmref
from rpmref.exact.numerics import log_softmax, logsumexp, xlogx, xlogy
from tests import reference as ref
from tests.strategies import pmfs

shapes = st.tuples(st.integers(1, 8), st.integers(1, 8))

# Sums of ≤ 64 probability-weighted logs: |log| ≤ 32 for entropies (entries ≥ 1e-12/64),
# ≤ 64 for log(p/q); worst case n·u·M = 64 · 1.1e-16 · 64 ≈ 4.5e-13 per side.
SUM_ATOL = 1e-12
# KL and I are ≥ 0 exactly as returned: a sum that rounding leaves below 0 is reported as 0.0.
EPS = float(np.finfo(np.float64).eps)


@given(shapes.flatmap(lambda s: pmfs(s)))
def test_entropy_matches_loops_and_is_nonnegative(p):
    """H(p) = −Σ p log p ≥ 0 with 0 log 0 = 0, for a table of any shape."""
    h = rpmref.entropy(p)
    assert abs(h - ref.entropy(p.ravel().tolist())) <= SUM_ATOL
    assert h >= 0


@pytest.mark.parametrize("p", [[1 + 5e-10], [[1 + 9e-10, 0.0]]])
def test_entropy_of_a_point_mass_a_hair_over_1_is_0_not_negative(p):
    """Validation accepts sums within 1e-9 of 1, and −Σ p log p of [1 + 5e-10] is −5e-10:
    entropy returned that while KL and MI clipped their rounding to 0. Now +0.0."""
    assert -sum(x * math.log(x) for x in np.ravel(p) if x > 0) < 0     # the premise
    h = rpmref.entropy(p)
    assert h == 0.0 and math.copysign(1.0, h) == 1.0


def test_entropy_a_hair_over_1_but_positive_is_left_as_it_is():
    p = [0.5 + 4e-10, 0.5 + 4e-10]
    assert rpmref.entropy(p) == pytest.approx(-sum(x * math.log(x) for x in p), rel=1e-15)


@given(shapes.flatmap(lambda s: st.tuples(pmfs(s), pmfs(s))))
def test_kl_matches_loops_and_is_nonnegative(pq):
    """KL(p ‖ q) = Σ p log(p/q) ≥ 0 (Gibbs), +inf when q = 0 < p."""
    p, q = pq
    expected = ref.kl(p.ravel().tolist(), q.ravel().tolist())
    actual = rpmref.kl_divergence(p, q)
    if math.isinf(expected):
        assert actual == math.inf
    else:
        assert abs(actual - expected) <= SUM_ATOL and actual >= 0
    assert abs(rpmref.kl_divergence(p, p)) <= 1e-15  # every term is p·log 1 = 0


@given(shapes.flatmap(lambda s: pmfs(s)))
def test_mutual_information_matches_loops_and_is_nonnegative(p):
    """I(A;B) = KL(P(a,b) ‖ P(a)P(b)) ≥ 0, and ≤ min(H(A), H(B))."""
    mi = rpmref.mutual_information(p)
    assert abs(mi - ref.mutual_information(p.tolist())) <= SUM_ATOL
    assert mi >= 0  # I is a KL
    assert mi <= min(rpmref.entropy(p.sum(axis=1)), rpmref.entropy(p.sum(axis=0))) + SUM_ATOL


def _mass_off_one(*tables):
    """Σ of every entry of ``tables`` minus 1, exactly (one rounding, at the end)."""
    return math.fsum([x for t in tables for x in np.ravel(t)] + [-1.0])


@given(st.integers(1, 8).flatmap(lambda n: pmfs((n,))), st.integers(1, 8).flatmap(lambda n: pmfs((n,))))
def test_mutual_information_of_a_product_table_is_zero_not_negative(a, b):
    """P(a, b) = P(a) P(b) rounded: the signed terms log(p/(P(a)P(b))) are ±rounding, and
    their sum came out as −4.6e-16 on a third of such tables; I ≥ 0 is returned as such.

    How far above 0 it may be: with q̂ the product of the computed marginals, p = q̂(1 + r)
    and |r| = O(k·u), Σ p log(p/q̂) = Σp − Σq̂ + O(k u²). Σq̂ = S²(1 + θ) for S = Σp, where
    |θ| ≤ (k + m − 1)u collects the roundings of the two marginal sums and of the product
    (k, m states, u = eps/2), so |I| ≤ S|S − 1| + S²(k + m − 1)u ≤ 2|S − 1| + (k + m)·eps.
    """
    table = np.outer(a, b)
    bound = 2 * abs(_mass_off_one(table)) + (a.size + b.size) * EPS
    mi = rpmref.mutual_information(table)
    assert 0.0 <= mi <= bound
    assert math.copysign(1.0, mi) == 1.0          # +0.0, not −0.0
    d = rpmref.elbo_decomposition(np.outer(a, a), np.eye(a.size), np.eye(a.size),
                                  np.outer(a, a))
    assert 0.0 <= d.mutual_information <= 2 * abs(_mass_off_one(np.outer(a, a))) + 2 * a.size * EPS
    assert d.kl == 0.0                              # the prior is the recognition joint itself


@given(st.integers(1, 30).flatmap(lambda n: st.lists(
    st.floats(1e-3, 1.0), min_size=n, max_size=n)), st.floats(0.1, 10.0))
def test_kl_between_two_roundings_of_one_pmf_is_zero_not_negative(weights, scale):
    """p = w / Σw and q = (c·w) / Σ(c·w) are one pmf rounded two ways: KL(p ‖ q) is 0 up to
    rounding (the sum was −6.9e-16 on 46 % of such pairs) and is returned as ≥ 0.

    Its value: with p = q(1 + r), Σ p log(p/q) = Σ(p − q) + Σ p r²/2 + O(r³), and the
    roundings of the two normalisations bound |r| ≤ (2n + 3)u, so the second-order term is
    ≤ n((2n + 3)u)²/2 < 1e-27 for n ≤ 30: KL(p ‖ q) = max(0, Σp − Σq) within 1e-27.
    """
    w = np.array(weights)
    p, q = w / w.sum(), (scale * w) / (scale * w).sum()
    for first, second in ((p, q), (q, p)):
        difference = math.fsum(np.concatenate([first, -second]))   # Σ first − Σ second, exact
        kl = rpmref.kl_divergence(first, second)
        assert kl >= 0.0
        assert abs(kl - max(0.0, difference)) <= 1e-27


def test_mutual_information_of_independent_and_identical_variables():
    """I = 0 for a product table; I = H for a diagonal (copy) table. Fixed 6-entry
    tables: ≤ 6 terms of size ≤ 1.7 with a few roundings each, ≤ 1e-15 (measured 0)."""
    a, b = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.4])
    assert abs(rpmref.mutual_information(np.outer(a, b))) <= 1e-15
    assert abs(rpmref.mutual_information(np.diag(a)) - rpmref.entropy(a)) <= 1e-15


def test_mutual_information_splits_higher_dimensional_tables():
    """split=1 on a (2, 2, 2) table is I(A; (B, C)), computed on the (2, 4) reshape.
    8 terms of size ≤ 0.2: ≤ 8·u·0.2·(a few) < 1e-15 (measured 1.2e-17)."""
    p = np.arange(1, 9, dtype=float).reshape(2, 2, 2) / 36
    assert abs(rpmref.mutual_information(p) - ref.mutual_information(p.reshape(2, 4).tolist())) <= 1e-15
    assert abs(rpmref.mutual_information(p, split=2) - ref.mutual_information(p.reshape(4, 2).tolist())) <= 1e-15


def test_kl_is_infinite_where_q_misses_mass():
    assert rpmref.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    # 1·log(1/0.5) = log 2.0: one correctly rounded log, ≤ ulp(0.69) = 1.1e-16
    assert rpmref.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2), abs=1e-15)


def test_kl_keeps_precision_as_q_approaches_p():
    """The ratio form p log(p/q) resolves KL ≈ 5e-21, where cross-entropy − entropy gives noise.
    Reference: mpmath at 50 digits (same formula in exact-enough arithmetic). The two
    terms are ±1e-10 with p − q exact (Sterbenz) and ~2 roundings each in (p − q)/q and
    log1p: ≤ 4·u·1e-10 ≈ 4e-26 in the sum (measured 2e-28), so 1e-25 checks KL ≈ 2.4e-20
    to 4e-6 relative, where log(p/q) would be off by 1e-17."""
    p = np.array([0.3, 0.7])
    q = np.array([0.3 + 1e-10, 0.7 - 1e-10])
    mpmath.mp.dps = 50
    expected = sum(mpmath.mpf(pi) * mpmath.log(mpmath.mpf(pi) / mpmath.mpf(qi)) for pi, qi in zip(p, q))
    assert abs(rpmref.kl_divergence(p, q) - float(expected)) <= 1e-25


@given(shapes.flatmap(lambda s: st.tuples(pmfs(s), pmfs(s))))
def test_entropy_and_kl_agree_with_scipy(pq):
    stats = pytest.importorskip("scipy.stats")
    p, q = pq
    assert abs(rpmref.entropy(p) - stats.entropy(p.ravel())) <= SUM_ATOL
    expected = stats.entropy(p.ravel(), q.ravel())
    actual = rpmref.kl_divergence(p, q)
    assert actual == expected if math.isinf(expected) else abs(actual - expected) <= SUM_ATOL


def test_logsumexp_extremes():
    """Following scipy's tests: huge equal values, −inf entries, one-sided infinities, tiny values."""
    # ≤ 2 roundings at 1000 (ulp 1.1e-13) on either side
    assert logsumexp(np.array([1000.0, 1000.0])) == pytest.approx(1000 + math.log(2), abs=1e-12)
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert logsumexp(np.array([-np.inf, 0.0])) == 0.0
    assert logsumexp(np.array([np.inf, 0.0])) == np.inf
    assert logsumexp(np.array([1e10, -1e10])) == 1e10
    many = np.full(1_000_000, math.log(1e-40))
    # Σ of 1e6 ones is exact; log(1e-40) + log(1e6) vs log(1e-34): ≤ 4 roundings of values
    # ≤ 92 plus the representation of 1e-40 and 1e-34, ≲ 6e-14 of 78: rel 1e-14 (was 1e-12)
    assert logsumexp(many) == pytest.approx(math.log(1e-34), rel=1e-14)
    a = np.array([[1.0, 2.0], [3.0, -np.inf]])
    # 2 + log1p(e^-1)-style evaluation vs log(e + e²): ~2 roundings of 2.3 each side, ~2e-16
    np.testing.assert_allclose(logsumexp(a, axis=1), [math.log(math.e + math.e**2), 3.0], rtol=1e-15)
    assert logsumexp(a, axis=0, keepdims=True).shape == (1, 2)


def test_log_softmax_is_shift_free_and_normalised():
    a = np.array([1000.0, 1001.0, 999.0])
    out = log_softmax(a)
    assert np.all(np.isfinite(out))
    # Entries near 1000 carry one ulp of 1000 (1.1e-13) from the subtraction.
    assert abs(logsumexp(out)) <= 1e-12
    np.testing.assert_allclose(out, log_softmax(a - 1000.0), rtol=0, atol=1e-12)


def test_xlogy_conventions_and_finite_gradients():
    """0 log 0 = 0, x log 0 = −inf for x > 0; the gradient at x = 0 is finite (no NaN)."""
    assert xlogy(0.0, 0.0) == 0.0 and xlogy(0.0, 5.0) == 0.0
    assert xlogy(2.0, 0.0) == -np.inf
    g = grad(lambda p: np.sum(xlogx(p)))(np.array([0.0, 0.25, 0.75]))
    assert np.all(np.isfinite(g))
    # log p + 1: ≤ u·|log p| + u·|log p + 1| ≤ 2.8e-16 absolute on 0.39 (the smaller):
    # ≤ 7e-16 relative for the two sides
    np.testing.assert_allclose(g[1:], np.log([0.25, 0.75]) + 1, rtol=1e-15)


def test_logsumexp_gradient_is_softmax():
    a = np.array([0.5, -1.0, 2.0])
    # e^{a−m}/Σ vs e^a/Σ e^a: ≤ 4 relative roundings each side (≈ 9e-16); 1e-14 leaves 10×
    np.testing.assert_allclose(grad(lambda v: logsumexp(v))(a), np.exp(a) / np.exp(a).sum(), rtol=1e-14)


@pytest.mark.parametrize("shape", [(128, 128), (150, 150), (2, 16384)])
@pytest.mark.parametrize("closeness", [None, 1e-6])
def test_kl_over_several_cache_blocks_matches_mpmath(shape, closeness):
    """KL of tables larger than the kernel's block (2^14 entries): one block exactly, one
    and a fraction, two exactly; q random or q = p(1 + 1e-6 ε) (the log1p regime with
    cancelling terms). Reference: mpmath at 30 digits. Any summation order of m terms
    errs by ≤ (m + 3)·u·Σ|terms| (three roundings per term: ratio, log, product)."""
    from rpmref.exact.measures import _KL_BLOCK, kl_divergence_of
    rng = np.random.default_rng(sum(shape))
    p = rng.random(shape) + 0.01
    p /= p.sum()
    q = rng.random(shape) + 0.01 if closeness is None else p * (1 + closeness * rng.normal(size=shape))
    q /= q.sum()
    assert p.size >= _KL_BLOCK
    with mpmath.workdps(30):
        terms = [mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(b))
                 for a, b in zip(p.ravel().tolist(), q.ravel().tolist())]
        expected = float(mpmath.fsum(terms))
        magnitude = float(mpmath.fsum(abs(t) for t in terms))
    tol = (p.size + 3) * 2.0 ** -53 * magnitude
    assert abs(kl_divergence_of(p, q) - expected) <= tol
    assert abs(rpmref.kl_divergence(p, q) - expected) <= tol


def test_log1p_kernel_is_within_two_ulps_of_mpmath():
    """_log1p (log(u) − ((u − 1) − x)/u, u = fl(1 + x)) against mpmath at 40 digits, on
    x near 0, in [−1/2, 1/2], up to 1e300 and down to −1 + 2^-40. glibc's log errs by
    < 1 ulp and the correction by a fraction of one: 2 ulps of the result bound both."""
    from rpmref.exact.measures import _log1p
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-1e-9, 1e-9, 500), rng.uniform(-0.5, 0.5, 2000),
                        10.0 ** rng.uniform(-300, 300, 1000), -1 + 2.0 ** -rng.uniform(1, 40, 500),
                        [0.0, 5e-324, -5e-324, 1e300]])
    got = _log1p(x, np.empty_like(x), np.empty_like(x))
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.log1p(mpmath.mpf(v))) for v in x.tolist()])
    assert np.all(np.abs(got - ref) <= 2 * np.spacing(np.abs(ref)))


@pytest.mark.parametrize("regime", ["small", "near", "wide", "few_below", "most_below"])
def test_log_ratio_kernel_matches_mpmath_in_every_regime(regime):
    """_log_ratio_block picks np.log1p, _log1p, or log(p/q) by the spread of rel = (p − q)/q;
    each route against mpmath's log(p/q) at 40 digits. Bound: rel carries ≤ 2 roundings
    (p − q, /q) and log1p(rel)'s sensitivity |rel|/(1 + rel) is ≤ |log1p(rel)| for
    rel ≥ −1/2, so ≤ 2u·|r| + 2 ulps; below q/2, p/q rounds once and |log| > 0.69, so
    ≤ 1.5u/0.69·|r| + 1 ulp. 8u·|r| (u = 2^-53) covers both."""
    from rpmref.exact.measures import _log_ratio_block
    rng = np.random.default_rng(11)
    size = 4096
    q = rng.uniform(1e-6, 1e-3, size)
    rel = {"small": rng.uniform(-0.05, 0.05, size), "near": rng.uniform(-0.5, 0.5, size),
           "wide": 10.0 ** rng.uniform(-3, 3, size),
           "few_below": np.where(rng.random(size) < 0.1, -1 + 10.0 ** rng.uniform(-300, -1, size),
                                 rng.uniform(-0.5, 2, size)),
           "most_below": np.where(rng.random(size) < 0.9, -1 + 10.0 ** rng.uniform(-12, -0.4, size),
                                  rng.uniform(-0.5, 2, size))}[regime]
    p = np.maximum(q * (1 + rel), 2.0 ** -1022)
    if regime.endswith("below"):
        p[0], q[0] = 2.0 ** -1022, 0.5    # p − q rounds to −q: rel = −1 exactly
    with np.errstate(divide="ignore", invalid="ignore"):
        got = _log_ratio_block(p, q, np.empty(size), np.empty(size), np.empty(size)).copy()
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.log(mpmath.mpf(a) / mpmath.mpf(b)))
                        for a, b in zip(p.tolist(), q.tolist())])
    assert np.all(np.abs(got - ref) <= 8 * 2.0 ** -53 * np.abs(ref))
