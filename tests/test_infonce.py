"""Tests of the energy prior and the InfoNCE objectives at extreme critic values."""
import itertools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st

import rpmref
from rpmref.exact.infonce import _compositions, batch_values, sample_batch_counts
from tests import reference as ref
from tests.strategies import critics, joint_and_critic, pmfs


def mp_infonce_limit(p_zz, f, dps=60):
    """I_∞ (Eq. 25) in 60-digit arithmetic: E[f] − E_{P(z)} log Σ_{z'} P(z') e^f, no shifts needed."""
    mpmath.mp.dps = dps
    k, k_prime = p_zz.shape
    p_z, p_zp = p_zz.sum(axis=1), p_zz.sum(axis=0)
    total = mpmath.mpf(0)
    for z in range(k):
        if p_z[z] == 0:
            continue
        log_z = mpmath.log(mpmath.fsum(mpmath.mpf(p_zp[j]) * mpmath.exp(mpmath.mpf(f[z, j]))
                                       for j in range(k_prime)))
        for j in range(k_prime):
            total += mpmath.mpf(p_zz[z, j]) * (mpmath.mpf(f[z, j]) - log_z)
    return float(total)


@given(joint_and_critic(bound=1e3))
def test_infonce_limit_with_huge_critic_values_matches_mpmath(pair):
    """I_∞ stays finite and exact for |f| ≤ 1e3 (e^1000 overflows float64)."""
    p_zz, f = pair
    value = rpmref.infonce_limit(p_zz, f)
    assert math.isfinite(value)
    assert abs(value - mp_infonce_limit(p_zz, f)) <= 1e-9


@given(joint_and_critic(bound=1e3), st.data())
def test_infonce_limit_is_invariant_to_per_z_shifts(pair, data):
    """I_∞(f + c(z)) = I_∞(f): a factor depending on z alone cancels in the softmax."""
    p_zz, f = pair
    shift = data.draw(critics((p_zz.shape[0], 1), 1e3))
    assert abs(rpmref.infonce_limit(p_zz, f + shift) - rpmref.infonce_limit(p_zz, f)) <= 1e-9


@given(joint_and_critic(bound=1e3, max_latent=4), st.integers(1, 6), st.data())
def test_infonce_bound_with_huge_critics_is_finite_and_shift_invariant(pair, n, data):
    """I_N (exact) is finite for |f| ≤ 1e3, invariant to f → f + c(z), and ≤ log N."""
    p_zz, f = pair
    shift = data.draw(critics((p_zz.shape[0], 1), 1e3))
    value = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    assert math.isfinite(value)
    assert abs(rpmref.infonce_bound(p_zz, f + shift, n, method="exact").estimate - value) <= 1e-9
    assert value <= math.log(n) + 1e-9


def test_infonce_bound_monte_carlo_with_huge_critic_agrees_with_exact():
    p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    f = np.array([[800.0, -900.0], [-700.0, 1000.0]])
    exact = rpmref.infonce_bound(p_zz, f, 8, method="exact").estimate
    mc = rpmref.infonce_bound(p_zz, f, 8, method="mc", n_batches=4000, seed=3)
    assert math.isfinite(mc.estimate) and abs(mc.estimate - exact) <= 4 * mc.stderr


def test_infonce_bound_monte_carlo_is_reproducible_for_a_seed_or_generator():
    p_zz = np.array([[0.3, 0.2], [0.1, 0.4]])
    f = np.array([[1.0, 0.0], [0.0, 1.0]])
    a = rpmref.infonce_bound(p_zz, f, 4, method="mc", n_batches=50, seed=11)
    b = rpmref.infonce_bound(p_zz, f, 4, method="mc", n_batches=50, rng=np.random.default_rng(11))
    c = rpmref.infonce_bound(p_zz, f, 4, method="mc", n_batches=50, seed=12)
    assert a == b and a.estimate != c.estimate


def test_infonce_bound_exact_refuses_enumerations_that_are_too_large():
    p_zz = np.full((6, 6), 1 / 36)
    with pytest.raises(ValueError, match=r"method='exact'.*max_terms.*use method='mc'"):
        rpmref.infonce_bound(p_zz, np.zeros((6, 6)), 200, method="exact")
    auto = rpmref.infonce_bound(p_zz, np.zeros((6, 6)), 200, n_batches=20, seed=0)
    assert auto.method == "mc"
    assert abs(auto.estimate) <= 1e-12  # a constant critic gives exactly 0 in every batch


def test_infonce_bound_argument_errors():
    p_zz, f = np.array([[0.5, 0.5]]), np.zeros((1, 2))
    with pytest.raises(ValueError, match="method must be"):
        rpmref.infonce_bound(p_zz, f, 2, method="bogus")
    with pytest.raises(ValueError, match="n must be >= 1"):
        rpmref.infonce_bound(p_zz, f, 0)
    with pytest.raises(TypeError, match="n must be an integer"):
        rpmref.infonce_bound(p_zz, f, 2.5)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        rpmref.infonce_bound(p_zz, f, 2, method="mc", rng=42)
    with pytest.raises(ValueError, match="n_batches must be >= 2"):
        rpmref.infonce_bound(p_zz, f, 2, method="mc", n_batches=1)


@given(joint_and_critic(bound=50.0))
def test_energy_prior_is_a_pmf_with_the_data_marginal_over_z(pair):
    """Σ_{z'} P_θ(z,z') = P(z) (Eq. 21–22), and the prior is zero off the marginals' support."""
    p_zz, f = pair
    prior = rpmref.energy_prior(p_zz, f)
    assert abs(prior.sum() - 1) <= 1e-12
    np.testing.assert_allclose(prior.sum(axis=1), p_zz.sum(axis=1), rtol=0, atol=1e-12)
    assert np.all(prior[p_zz.sum(axis=1) == 0] == 0)
    assert np.all(prior[:, p_zz.sum(axis=0) == 0] == 0)


def test_energy_prior_of_zero_critic_is_the_product_of_marginals():
    p_zz = np.array([[0.1, 0.2], [0.3, 0.4]])
    expected = np.outer(p_zz.sum(axis=1), p_zz.sum(axis=0))
    np.testing.assert_allclose(rpmref.energy_prior(p_zz, np.zeros((2, 2))), expected, rtol=1e-15)


# --------------------------------------------------------------------------- resources


def pairs_of(counts):
    """The (z, z') pairs of one batch from its (k, k') count table (any order: I_N of a batch
    does not depend on the order of its pairs)."""
    return [(z, zp) for (z, zp), c in np.ndenumerate(counts) for _ in range(int(c))]


@given(joint_and_critic(bound=30.0, max_latent=4), st.integers(1, 25), st.integers(0, 2**32 - 1))
def test_mc_batch_values_equal_the_quadratic_in_batch_formula_on_the_same_batches(pair, n, seed):
    """The O(k·k') count formula against the old O(N²) one (every pair scored against every
    negative, tests/reference.py), batch by batch on the very same draws.

    Tolerance: each of the N terms f − log Σ_j e^f is a few roundings of magnitude
    ≤ 2|f|max + log N, so the batch value has error ≤ ~10 eps (2|f|max + log N) ≈ 1e-13 ·
    (1 + |f|max + log N); 1e-12 of that is 10× the budget."""
    p_zz, f = pair
    counts = sample_batch_counts(p_zz, n, 5, np.random.default_rng(seed))
    values = batch_values(counts, f, n)
    tol = 1e-12 * (1 + np.abs(f).max() + math.log(n))
    for b in range(counts.shape[0]):
        assert abs(values[b] - ref.infonce_batch_value(pairs_of(counts[b]), f.tolist())) <= tol


def test_mc_estimate_is_the_mean_of_the_quadratic_formula_over_its_own_batches():
    """infonce_bound(method='mc', seed=s) draws its batches with default_rng(s) through
    sample_batch_counts; the O(N²) formula on those batches gives the same mean and stderr."""
    p_zz = np.array([[0.3, 0.05, 0.05], [0.1, 0.3, 0.2]])
    f = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, 0.0]])
    n, n_batches, seed = 12, 40, 5
    result = rpmref.infonce_bound(p_zz, f, n, method="mc", n_batches=n_batches, seed=seed)
    counts = sample_batch_counts(p_zz, n, n_batches, np.random.default_rng(seed))
    old = np.array([ref.infonce_batch_value(pairs_of(c), f.tolist()) for c in counts])
    assert abs(result.estimate - old.mean()) <= 1e-13 * 10        # values O(1), 40-term mean
    assert abs(result.stderr - old.std(ddof=1) / math.sqrt(n_batches)) <= 1e-13


# Monte Carlo against the exact enumeration. Seeds are fixed, so the test is deterministic;
# the 4-stderr band would fail a correct estimator with probability 6e-5 per case for a
# fresh seed (two-sided normal tail), so a failure here means a biased estimate or stderr.
MC_CASES = [
    (np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([[1.0, -1.0], [-1.0, 1.0]]), 2),
    (np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([[1.0, -1.0], [-1.0, 1.0]]), 64),
    (np.array([[0.2, 0.1, 0.0], [0.05, 0.3, 0.35]]), np.array([[3.0, 0.0, 1.0], [-2.0, 2.0, 0.5]]), 9),
    (np.array([[0.25, 0.25], [0.0, 0.5]]), np.array([[40.0, -40.0], [0.0, 30.0]]), 500),
]


@pytest.mark.parametrize("case", range(len(MC_CASES)))
def test_mc_agrees_with_exact_within_four_standard_errors(case):
    p_zz, f, n = MC_CASES[case]
    exact = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    mc = rpmref.infonce_bound(p_zz, f, n, method="mc", n_batches=3000, seed=case)
    assert mc.stderr > 0
    assert abs(mc.estimate - exact) <= 4 * mc.stderr, (mc, exact)


def test_mc_at_n_1e5_costs_memory_independent_of_n_squared_and_matches_exact():
    """N = 10⁵, 100 batches: the old (n_batches, N, N) array would be 7.5e12 elements. With
    two reachable z' states the exact enumeration is only 10⁵ count vectors, so the
    estimate is checked against it (4 stderr, fixed seed as above). Peak traced memory is
    bounded by a size argument, not a timer: the draws are 100 × k·k' counts."""
    import tracemalloc
    p_zz = np.array([[0.35, 0.15], [0.1, 0.4]])
    f = np.array([[1.0, -0.5], [0.25, 2.0]])
    n = 10 ** 5
    tracemalloc.start()
    try:
        mc = rpmref.infonce_bound(p_zz, f, n, method="mc", n_batches=100, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20, peak            # under 1 MiB (one N-length array alone is 0.8 MB)
    exact = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    assert abs(mc.estimate - exact) <= 4 * mc.stderr, (mc, exact)


def test_compositions_are_all_count_vectors_once_each():
    """Against itertools: every vector of `parts` non-negative integers summing to `total`."""
    for total, parts in [(0, 1), (0, 3), (4, 1), (3, 2), (5, 3), (4, 4)]:
        got = _compositions(total, parts)
        expected = sorted(c for c in itertools.product(range(total + 1), repeat=parts)
                          if sum(c) == total)
        assert sorted(map(tuple, got.tolist())) == expected


def test_exact_bound_with_1000_reachable_negative_states_has_no_recursion_error():
    """Bug: the recursive _compositions hit RecursionError at 1,000 reachable z' states.
    N = 2 there: I_2 = log 2 + Σ P(z,z') Σ_j P(j) [f(z,z') − logaddexp(f(z,z'), f(z,j))]
    (one negative), evaluated here by a direct (k, k', k') NumPy sum."""
    rng = np.random.default_rng(1)
    p_zz = rng.random((2, 1000))
    p_zz /= p_zz.sum()
    f = rng.normal(size=(2, 1000))
    counts = _compositions(1, 1000)
    assert counts.shape == (1000, 1000) and np.all(counts.sum(axis=1) == 1)
    p_zp = p_zz.sum(axis=0)
    direct = math.log(2) + np.sum(
        p_zz[:, :, None] * p_zp[None, None, :]
        * (f[:, :, None] - np.logaddexp(f[:, :, None], f[:, None, :])))
    # 10⁶ terms of magnitude ≤ 5 weighted by ≤ 1: summation error ≤ ~1e6 · eps · 5 · (weights
    # sum to 1, pairwise summation far smaller); 1e-12 is the stated bound.
    assert abs(rpmref.infonce_bound(p_zz, f, 2, method="exact").estimate - direct) <= 1e-12
    with pytest.raises(ValueError, match=r"n=3 and 1000 reachable z' states needs 1e\+09 terms"):
        rpmref.infonce_bound(p_zz, f, 3, method="exact")
