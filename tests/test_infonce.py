"""Tests of the energy prior and the InfoNCE objectives at extreme critic values."""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st

import rpmref
from tests.strategies import critics, joint_and_critic, pmfs
from tests.tolerances import EPS, MC_SIGMAS, per_nat


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
    assert abs(value - mp_infonce_limit(p_zz, f)) <= per_nat(f)   # 1e-12 per nat of |f|


@given(joint_and_critic(bound=1e3), st.data())
def test_infonce_limit_is_invariant_to_per_z_shifts(pair, data):
    """I_∞(f + c(z)) = I_∞(f): a factor depending on z alone cancels in the softmax."""
    p_zz, f = pair
    shift = data.draw(critics((p_zz.shape[0], 1), 1e3))
    scale = np.max(np.abs(f)) + np.max(np.abs(shift))
    assert abs(rpmref.infonce_limit(p_zz, f + shift) - rpmref.infonce_limit(p_zz, f)) <= per_nat(scale)


@given(joint_and_critic(bound=1e3, max_latent=4), st.integers(1, 6), st.data())
def test_infonce_bound_with_huge_critics_is_finite_and_shift_invariant(pair, n, data):
    """I_N (exact) is finite for |f| ≤ 1e3, invariant to f → f + c(z), and ≤ log N."""
    p_zz, f = pair
    shift = data.draw(critics((p_zz.shape[0], 1), 1e3))
    value = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    assert math.isfinite(value)
    scale = np.max(np.abs(f)) + np.max(np.abs(shift))
    shifted = rpmref.infonce_bound(p_zz, f + shift, n, method="exact").estimate
    assert abs(shifted - value) <= per_nat(scale)
    assert value <= math.log(n) + per_nat(np.max(np.abs(f)))  # slack: rounding only


def test_infonce_bound_monte_carlo_with_huge_critic_agrees_with_exact():
    p_zz = np.array([[0.4, 0.1], [0.1, 0.4]])
    f = np.array([[800.0, -900.0], [-700.0, 1000.0]])
    exact = rpmref.infonce_bound(p_zz, f, 8, method="exact").estimate
    mc = rpmref.infonce_bound(p_zz, f, 8, method="mc", n_batches=4000, seed=3)
    assert math.isfinite(mc.estimate) and abs(mc.estimate - exact) <= MC_SIGMAS * mc.stderr


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
    # a constant critic gives log N − log N = 0 in every batch, up to a few ulp of
    # log 200 ≈ 5.3 per term; a mean of such terms is no larger
    assert abs(auto.estimate) <= 8 * EPS * math.log(200)


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
    # entries are e^x with |x| ≤ 2·50 + 3·32 (f and log marginals), so ≤ 200·ε relative
    # each; a row or table sum adds ≤ 64·u: |error| ≤ 5e-14, inside 1e-12
    assert abs(prior.sum() - 1) <= 1e-12
    np.testing.assert_allclose(prior.sum(axis=1), p_zz.sum(axis=1), rtol=0, atol=1e-12)
    assert np.all(prior[p_zz.sum(axis=1) == 0] == 0)
    assert np.all(prior[:, p_zz.sum(axis=0) == 0] == 0)


def test_energy_prior_of_zero_critic_is_the_product_of_marginals():
    p_zz = np.array([[0.1, 0.2], [0.3, 0.4]])
    expected = np.outer(p_zz.sum(axis=1), p_zz.sum(axis=0))
    # exp(log P(z) + log P(z') − log Z) vs P(z)·P(z'): the exponent (size ≤ 3.5) carries
    # ≤ 4 roundings, ≤ 8e-16, so entries agree to ~1e-15 relative: 1e-15 had no margin
    np.testing.assert_allclose(rpmref.energy_prior(p_zz, np.zeros((2, 2))), expected, rtol=1e-14)


def test_infonce_bound_n1_with_critic_near_the_float_maximum_is_zero_without_overflow():
    """I_1 = log(e^f / e^f) = 0 for every critic; the traced-zero Σ p·f used to overflow
    (Σ of 1.8e308 entries) and give 0·inf = NaN."""
    import warnings
    p_zz = np.array([[8e-12, 8e-12], [8e-12, 1 - 2.4e-11]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bound = rpmref.infonce_bound(p_zz, np.full((2, 2), 1.79769313e308), 1)
    assert bound.estimate == 0.0 and bound.method == "exact"


@pytest.mark.parametrize("p_zz", [[[0.1], [0.2], [0.7]], [[1.0]], [[0.5, 0.0], [0.25, 0.0], [0.25, 0.0]]],
                         ids=["3x1", "1x1", "3x2, one column reached"])
@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_infonce_bound_with_one_reachable_z_prime_is_exactly_zero(p_zz, n):
    """Bug: with one reachable z' every negative has the positive's z', so each term is
    f − log(N e^f) = −log N and I_N = log N − log N = 0 for any critic; the exact route
    returned log N − softplus(log(N − 1)), an ulp of log N off (2.2e-16 for N = 3), above
    I(Z; Z') = 0, which I_N may not exceed."""
    p_zz = np.array(p_zz)
    f = np.arange(p_zz.size, dtype=float).reshape(p_zz.shape) * 1.7 - 2.0
    bound = rpmref.infonce_bound(p_zz, f, n, method="exact")
    assert bound.estimate == 0.0
    assert bound.estimate <= rpmref.mutual_information(p_zz)
