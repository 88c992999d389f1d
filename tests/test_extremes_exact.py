"""Exactness from subnormal probabilities to |f| = 1e308, against mpmath (60 digits).

First one regression test per bug found on valid input, named after it, with
the mpmath snippet that gives the true value kept beside it. Then hypothesis
property tests driving every public function with extreme tables (entries 0,
5e-324, 1e-310, 1e-200, ...; critics up to ±1.8e308) against the 60-digit
references of ``tests/reference.py``.

Tolerances (float64 against the correctly rounded 60-digit value):
* log-scale results (log-likelihoods, ELBOs, KL, MI, I_∞, I_N):
  |error| ≤ 1e-13 · (1 + |true| + L), L = the largest |log| of an input entry
  (≤ 745 for float64). Each log of an input carries an absolute error ≤ eps·L
  (1.7e-13 at L = 745) and at most a handful enter each result, plus a few
  relative roundings of |true|; 1e-13 per unit of scale is ~100× that budget.
  Where |f| enters a result its magnitude is part of |true| (the cancellation
  f − log Z is done before rounding), so 1e-13·|f| would also be allowed for
  results that contain f unreduced (log Z, I_∞, I_N) — we use |true| + |f|max there.
* probabilities (pmfs, posteriors, P(z, z')): |error| ≤ 1e-12 · |true| + 1e-300
  (log-space entries are exp(a sum of ≤ 5 logs): relative error ≤ 5·745·eps).
"""
import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import rpmref
from tests import reference as ref

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

U = np.full((2, 2), 0.25)
EYE = np.eye(2)
TINY_ROWS = np.array([[1e-200, 1.0], [1e-200, 1.0]])   # rows sum to 1 in float64 (1 + 1e-200 = 1)


def log_scale(*arrays_):
    """L: the largest |log v| over the positive entries of the inputs."""
    values = [np.abs(np.log(a[a > 0])).max(initial=0.0) for a in map(np.asarray, arrays_)]
    return float(max(values))


def assert_log_close(actual, expected, scale=0.0):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected))
    np.testing.assert_array_equal(np.sign(actual[np.isinf(actual)]), np.sign(expected[np.isinf(expected)]))
    finite = np.isfinite(expected)
    tol = 1e-13 * (1 + np.abs(expected[finite]) + scale)
    assert np.all(np.abs(actual[finite] - expected[finite]) <= tol), (actual, expected)


def assert_prob_close(actual, expected):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    assert np.all(np.abs(actual - expected) <= 1e-12 * np.abs(expected) + 1e-300), (actual, expected)


# --------------------------------------------------------------------------- regressions
def test_rpm_log_likelihood_with_1e200_encoder_entries_is_not_inf():
    """Bug: rpm_log_likelihood(U, [[1e-200, 1]]*2, [[1e-200, 1]]*2, U) was inf (P(z)P(z') = 1e-400
    underflowed in the density ratio); the true value is log 0.25 = −1.386 everywhere."""
    with mpmath.workdps(50):
        # P(x) = 1/2, P(z=0) = 1e-200 (exact binary value); the z = 0 terms give
        # P(x)P(x') P_θ P(z|x)P(z'|x') / (P(z)P(z')) = 1/4 · 1/4 · 1 exactly, as do the others.
        t, p = mpmath.mpf(1e-200), mpmath.mpf(0.5)
        p_z = [p * t * 2, p * 2 * mpmath.mpf(1.0)]
        lik = sum(p * p * mpmath.mpf(0.25) * a * b / (p_z[i] * p_z[j])
                  for i, a in enumerate([t, 1]) for j, b in enumerate([t, 1]))
        expected = float(mpmath.log(lik))
    assert expected == pytest.approx(-1.3862943611198906, abs=1e-15)
    actual = rpmref.rpm_log_likelihood(U, TINY_ROWS, TINY_ROWS, U)
    assert_log_close(actual, np.full((2, 2), expected), scale=log_scale(TINY_ROWS))
    assert_log_close(actual, ref.mp_rpm_log_likelihood(U, TINY_ROWS, TINY_ROWS, U))


def test_empirical_rpm_pmf_with_1e200_encoder_entries_is_not_inf():
    """Bug: empirical_rpm_pmf on the same rows was inf; the true pmf is 0.25 everywhere
    (mpmath: ref.mp_empirical_rpm_pmf, Eq. 34 at 60 digits)."""
    actual = rpmref.empirical_rpm_pmf(TINY_ROWS, TINY_ROWS, U)
    expected = ref.mp_empirical_rpm_pmf(TINY_ROWS, TINY_ROWS, U)
    assert np.asarray(expected) == pytest.approx(np.full((2, 2), 0.25), abs=1e-16)
    assert_prob_close(actual, expected)


def test_rpm_posterior_with_1e200_encoder_entries_has_no_zero_slices():
    """Bug: rpm_posterior gave all-zero slices there. Each slice is [[1/4, 1/4], [1/4, 1/4]]:
    P_θ(z,z') P(z|x) P(z'|x') / (P(z)P(z')) = 1/4 · (1e-200 · 1e-200) / (1e-200 · 1e-200) · ...
    is the same for every (z, z') (mpmath: ref.mp_rpm_posterior)."""
    actual = rpmref.rpm_posterior(U, TINY_ROWS, TINY_ROWS, U)
    assert_prob_close(actual, ref.mp_rpm_posterior(U, TINY_ROWS, TINY_ROWS, U))
    assert_prob_close(actual, np.full((2, 2, 2, 2), 0.25))


def test_kl_divergence_with_subnormal_q_is_not_inf():
    """Bug: kl_divergence([.5, .5], [1e-320, 1]) was inf (p/q overflowed); true 367.72."""
    with mpmath.workdps(50):
        q0 = mpmath.mpf(1e-320)   # the subnormal's exact value, 9.99988671826831e-321
        expected = float(0.5 * mpmath.log(0.5 / q0) + 0.5 * mpmath.log(0.5))
    assert expected == pytest.approx(367.72047326, abs=1e-8)
    assert_log_close(rpmref.kl_divergence([0.5, 0.5], [1e-320, 1.0]), expected, scale=737)


def test_elbo_decomposition_with_subnormal_prior_entries_satisfies_e3():
    """Bug: elbo_decomposition(U, eye, eye, [[.5, 1e-320], [1e-320, .5]]) had kl = inf beside a
    finite elbo, so L = I − KL + C (E3) failed on a valid input."""
    prior = np.array([[0.5, 1e-320], [1e-320, 0.5]])
    with mpmath.workdps(50):
        q = [mpmath.mpf(0.5), mpmath.mpf(1e-320)]
        kl = float(sum(mpmath.mpf(0.25) * mpmath.log(mpmath.mpf(0.25) / v) for v in q) * 2)
        elbo = float(sum(mpmath.mpf(0.25) * mpmath.log(v) for v in q) * 2
                     + 4 * mpmath.log(2))  # + H(Z) + H(Z') − H(X) − H(X'): 2 log 2 + 2 log 2 − 4 log 2 ... see below
    d = rpmref.elbo_decomposition(U, EYE, EYE, prior)
    # H(Z) = H(Z') = log 2 and H(X) = H(X') = log 2, so L = Σ P log P_θ + 2 log 2 − 2 log 2.
    elbo -= 4 * math.log(2)
    assert_log_close(d.kl, kl, scale=737)
    assert_log_close(d.elbo, elbo, scale=737)
    assert d.mutual_information == pytest.approx(0.0, abs=1e-15)
    assert abs(d.elbo - (d.mutual_information - d.kl + d.constant)) <= 1e-13 * abs(d.elbo)
    assert_log_close(rpmref.expected_elbo(U, EYE, EYE, prior), ref.mp_expected_elbo(U, EYE, EYE, prior),
                     scale=737)


@pytest.mark.parametrize("p_xx, enc", [
    ([[1.0]], [[1e-200, 1.0]]),                                   # joint (0, 0) is 1e-400
    ([[0.5, 0.0], [0.0, 0.5]], [[1e-170, 0.25, 0.75], [1e-170, 0.5, 0.5]]),
], ids=["1x1 data", "2x2 data"])
def test_optimal_prior_keeps_joint_mass_below_the_float64_range(p_xx, enc):
    """Bug: optimal_prior returned the joint with its 1e-400 entry rounded to 0, and
    elbo_decomposition (which reasons in exact arithmetic: the joint has mass there, the
    prior none) gave kl = inf, elbo = −inf for the optimal prior, against E4 (KL = 0,
    L = I + C). Such entries are now the smallest subnormal; every other entry is the
    recognition joint's, bit for bit. mpmath: L at 50 digits with that prior
    (ref.mp_expected_elbo), where the 1e-400 entry contributes 1e-400 · log 5e-324."""
    p_xx, enc = np.array(p_xx), np.array(enc)
    joint = rpmref.recognition_joint(p_xx, enc, enc)
    prior = rpmref.optimal_prior(p_xx, enc, enc)
    below = (joint == 0) & (np.outer((enc > 0).any(axis=0), (enc > 0).any(axis=0)))
    assert below.any()
    assert np.all(prior[below] == 5e-324)
    np.testing.assert_array_equal(prior[~below], joint[~below])
    d = rpmref.elbo_decomposition(p_xx, enc, enc, prior)
    assert d.kl == 0.0
    assert_log_close(d.elbo, ref.mp_expected_elbo(p_xx, enc, enc, prior), scale=745)
    assert abs(d.elbo - (d.mutual_information + d.constant)) <= 1e-13 * (1 + abs(d.elbo))


def test_energy_prior_with_critic_1e10_is_exact():
    """Bug: log P(z) + log P(z') + f was formed before subtracting log Z, losing ulp(1e10)
    ≈ 2e-6 of the small terms (error 3e-7). Now the shift f − f* is taken first."""
    p_zz = np.array([[0.2, 0.3], [0.4, 0.1]])
    f = np.array([[1e10, 1e10 + 1.5], [-1e10, -1e10 + 0.25]])
    with mpmath.workdps(50):
        # row z: P(z) P(z') e^{f(z,z')} / Σ_j P(j) e^{f(z,j)}; e^{1e10} is fine in mpmath.
        expected = ref.mp_energy_prior(p_zz, f)
    assert_prob_close(rpmref.energy_prior(p_zz, f), expected)
    assert_log_close(rpmref.log_partition(p_zz, f), ref.mp_log_partition(p_zz, f))


def test_energy_prior_with_critic_1e16_sums_to_one():
    """Bug: energy_prior([[.2, .3], [.4, .1]], 1e16 · eye(2)) summed to 0.27 (1e16 + log P
    rounded away log P). True: [[0.5, 0], [0, 0.5]] (e^{−1e16} = 0 at 60 digits, too)."""
    p_zz = np.array([[0.2, 0.3], [0.4, 0.1]])
    prior = rpmref.energy_prior(p_zz, 1e16 * EYE)
    assert_prob_close(prior, ref.mp_energy_prior(p_zz, 1e16 * EYE))
    np.testing.assert_array_equal(prior, [[0.5, 0.0], [0.0, 0.5]])


def test_energy_prior_below_the_float64_range_rounds_to_0_and_the_log_routes_stay_exact():
    """A critic gap of 800 puts (1/2) e^{−800} ≈ 2e-348 in the energy prior: the
    correctly rounded float64 value is 0 (as documented), so a KL against the table is
    +inf; the documented log-space route KL(P ‖ P_θ) = I(Z; Z') − I_∞(f) gives the KL to
    the unrounded prior, and I_∞ + C the ELBO at it (E5, E6), against mpmath at 60 digits
    with the exact (unrounded) prior."""
    p_xx = np.full((2, 2), 0.25)
    p_zz = rpmref.recognition_joint(p_xx, EYE, EYE)
    f = np.array([[0.0, -800.0], [0.0, 0.0]])
    prior = rpmref.energy_prior(p_zz, f)
    with mpmath.workdps(60):
        # P(z) = P(z') = 1/2; row 0: (1/2) [1, e^{−800}] / (1 + e^{−800}); row 1: 1/4 each
        half, tail = mpmath.mpf(0.5), mpmath.exp(-800)
        exact_prior = [[half / (1 + tail), half * tail / (1 + tail)], [half / 2, half / 2]]
        assert 0 < exact_prior[0][1] < mpmath.mpf(2) ** -1075            # below half of 5e-324
        exact_kl = mpmath.fsum(mpmath.mpf(0.25) * mpmath.log(mpmath.mpf(0.25) / q)
                               for row in exact_prior for q in row)
        # L = Σ P(z,z') log P_θ(z,z') + H(Z) + H(Z') + C, with H(Z) = H(Z') = log 2 and
        # C = −H(X) − H(X') = −2 log 2
        exact_elbo = float(mpmath.fsum(mpmath.mpf(0.25) * mpmath.log(q)
                                       for row in exact_prior for q in row))
        exact_kl = float(exact_kl)
    assert prior[0, 1] == 0.0 and prior[0, 0] == 0.5
    assert rpmref.kl_divergence(p_zz, prior) == math.inf
    gap = rpmref.mutual_information(p_zz) - rpmref.infonce_limit(p_zz, f)
    assert_log_close(gap, exact_kl)
    assert_log_close(rpmref.infonce_limit(p_zz, f) + rpmref.data_constant(p_xx), exact_elbo)
    assert rpmref.expected_elbo(p_xx, EYE, EYE, prior) == -math.inf     # the table's answer


F_1E308 = np.array([[1e308, -1e308], [-1e308, 1e308]])


def test_infonce_limit_with_1e308_critic_is_finite():
    """Bug: infonce_limit(U, ±1e308 table) was −inf (f − f* = −2e308 overflowed); the true
    value −1e308 + log 2 / 2·... is finite: each row has log-softmax [log 2, −2e308 + log 2]
    (up to e^{−2e308}), so I_∞ = 4 · 1/4 · (log 2) /2 + 2 · 1/4 · (−2e308) ≈ −1e308."""
    with mpmath.workdps(60):
        big = mpmath.mpf(1e308)
        row = [mpmath.mpf(0.25) * (big - mpmath.log(0.5 * mpmath.exp(big) + 0.5 * mpmath.exp(-big))),
               mpmath.mpf(0.25) * (-big - mpmath.log(0.5 * mpmath.exp(big) + 0.5 * mpmath.exp(-big)))]
        expected = float(2 * sum(row))
    assert math.isfinite(expected) and expected == pytest.approx(-1e308, rel=1e-15)
    assert expected == ref.mp_infonce_limit(U, F_1E308)
    assert_log_close(rpmref.infonce_limit(U, F_1E308), expected)


@pytest.mark.parametrize("p_zz, f", [
    ([[1.0, 5e-324], [0.0, 0.0]], [[0.0, 700.0], [0.0, 0.0]]),          # 5e-324 · e^700 = 5.0e-20
    ([[0.5, 1e-300], [0.0, 0.5]], [[10.0, 640.0], [-3.0, 2.0]]),         # 2e-300 · e^630 ≈ 5e-27
    ([[0.7, 0.1, 0.0], [1e-30, 0.0, 0.2]], [[50.0, 5.0, 1.0], [1.0, -9.0, 60.0]]),
], ids=["subnormal", "1e-300", "3x3"])
def test_log_partition_keeps_terms_below_one_ulp_of_the_top_term(p_zz, f):
    """Bug: log Z(z) summed the terms shifted by the top one as 1 + rest and took the log,
    so rest < 1.1e-16 was lost: log_partition([[1, 5e-324], [0, 0]], [[0, 700], [0, 0]])
    gave [0, 0] (true [5.01e-20, 4.94e-324]) and infonce_limit +3.5e-321 > I(Z; Z') = 0
    (true −5.01e-20). mpmath: log Σ_z' P(z') e^{f(z,z')} (ref.mp_log_partition).

    Relative tolerance: the small terms are e^{f − f* − log P(j*) + log P(z')}, whose
    exponent carries an absolute rounding ≤ 2 eps (|f|max + L) (L ≤ 745 the largest
    |log P|); we allow 4 eps (|f|max + L)."""
    p_zz, f = np.array(p_zz), np.array(f)
    L = max(abs(math.log(x)) for x in p_zz.sum(axis=0) if x > 0)
    rtol = 4 * np.finfo(float).eps * (np.abs(f).max() + L)
    expected = np.array(ref.mp_log_partition(p_zz, f), dtype=float)
    np.testing.assert_allclose(rpmref.log_partition(p_zz, f), expected, rtol=rtol, atol=0)
    limit = ref.mp_infonce_limit(p_zz, f)
    assert rpmref.infonce_limit(p_zz, f) == pytest.approx(limit, rel=rtol, abs=0)
    assert rpmref.infonce_limit(p_zz, f) <= rpmref.mutual_information(p_zz) + 1e-300


@pytest.mark.parametrize("p_zz, f", [
    ([[5e-324, 1.0]], [[1e300, 1e300]]),
    ([[0.5, 1e-300], [0.25, 0.25]], [[1e300, 1e300 + 1e284], [-1e300, -1e300]]),
], ids=["subnormal column", "1e-300 column"])
def test_critic_functions_pick_the_top_term_exactly_at_huge_critics(p_zz, f):
    """Bug (found by the fuzz test with another seed): the top term j* maximised
    f + log P(z'), which rounds log P (≥ −745) away at |f| = 1e300 and tied the columns;
    with the subnormal column chosen, the other term overflowed: energy_prior gave
    [[0, 0]] (true [[5e-324, 1]]) and log Z inf. j* now maximises (f − max f) + log P."""
    p_zz, f = np.array(p_zz), np.array(f)
    assert_prob_close(rpmref.energy_prior(p_zz, f), ref.mp_energy_prior(p_zz, f))
    scale = float(np.abs(f).max())
    assert_log_close(rpmref.log_partition(p_zz, f), ref.mp_log_partition(p_zz, f), scale)
    assert_log_close(rpmref.infonce_limit(p_zz, f), ref.mp_infonce_limit(p_zz, f), scale)


def test_infonce_bound_exact_with_1e308_critic_is_finite():
    """Bug: the exact I_N was −inf there too. mpmath: the sum over all 4^3 batches of 3 pairs
    (ref.mp_infonce_enumerated), about −7.5e307."""
    expected = ref.mp_infonce_enumerated(U, F_1E308, 3)
    assert math.isfinite(expected)
    assert_log_close(rpmref.infonce_bound(U, F_1E308, 3, method="exact").estimate, expected)
    mc = rpmref.infonce_bound(U, F_1E308, 3, method="mc", n_batches=200, seed=0)
    assert math.isfinite(mc.estimate) and math.isfinite(mc.stderr)


def test_rpm_log_likelihood_below_float64_range_is_finite():
    """P_θ(x, x') = 1e-400 (below the smallest float64) still has a finite log, −921.03:
    one latent state, so P_θ(x, x') = P(x) P(x'), and P(x) = P(x') = 1e-200 for x = x' = 0."""
    p_xx = np.array([[0.0, 1e-200], [1e-200, 1.0 - 2e-200]])
    enc = np.ones((2, 1))
    actual = rpmref.rpm_log_likelihood(p_xx, enc, enc, np.ones((1, 1)))
    expected = ref.mp_rpm_log_likelihood(p_xx, enc, enc, np.ones((1, 1)))
    assert math.isfinite(expected[0][0]) and expected[0][0] < -900
    assert_log_close(actual, expected, scale=log_scale(p_xx))


def test_elbo_is_exact_where_the_density_ratio_is_1e300():
    """Eq. 15 with P(z) = 1e-300: log P_θ − log P(z) − log P(z') = +690 enters exactly."""
    p_xx = np.array([[1e-300, 0.0], [0.0, 1.0 - 1e-300]])
    prior = np.array([[0.5, 0.0], [0.0, 0.5]])
    assert_log_close(rpmref.elbo(p_xx, EYE, EYE, prior), ref.mp_elbo(p_xx, EYE, EYE, prior), scale=691)
    q = EYE[:, None, :, None] * EYE[None, :, None, :]
    assert_log_close(rpmref.elbo(p_xx, EYE, EYE, prior, posterior=q), ref.mp_elbo(p_xx, EYE, EYE, prior),
                     scale=691)


# --------------------------------------------------------------------------- extreme strategies
EXTREME_PROBABILITIES = [0.0, 5e-324, 1e-320, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-200,
                         1e-100, 1e-30, 1e-16, 1e-12]
EXTREME_CRITICS = [0.0, 1e-300, 1.0, 50.0, 1e3, 1e10, 1e16, 1e300, 1e308, 1.7976931348623157e308]

_prob_entries = st.one_of(st.sampled_from(EXTREME_PROBABILITIES), st.floats(0.01, 1.0))
_critic_entries = st.one_of(st.sampled_from(EXTREME_CRITICS + [-v for v in EXTREME_CRITICS]),
                            st.floats(-50, 50))


@st.composite
def extreme_pmfs(draw, shape):
    """A pmf with entries from the extreme list (normalised in float64, never below 0)."""
    raw = draw(arrays(np.float64, shape, elements=_prob_entries))
    if raw.sum() == 0:
        raw.flat[draw(st.integers(0, raw.size - 1))] = 1.0
    return raw / raw.sum()


@st.composite
def extreme_conditionals(draw, n, k):
    """(n, k) rows: extreme entries, each row normalised (an all-zero row becomes one-hot)."""
    raw = draw(arrays(np.float64, (n, k), elements=_prob_entries))
    hot = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    empty = raw.sum(axis=1) == 0
    raw[empty, :] = 0.0
    raw[np.flatnonzero(empty), np.array(hot)[empty]] = 1.0
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def extreme_problems(draw, max_data=3, max_latent=3):
    n, n_prime = draw(st.integers(1, max_data)), draw(st.integers(1, max_data))
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    return (draw(extreme_pmfs((n, n_prime))), draw(extreme_conditionals(n, k)),
            draw(extreme_conditionals(n_prime, k_prime)), draw(extreme_pmfs((k, k_prime))))


def extreme_critics(shape):
    return arrays(np.float64, shape, elements=_critic_entries)


@st.composite
def extreme_joint_and_critic(draw, max_latent=3):
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    return draw(extreme_pmfs((k, k_prime))), draw(extreme_critics((k, k_prime)))


# --------------------------------------------------------------------------- properties
@settings(max_examples=60)
@given(extreme_problems())
def test_model_quantities_match_mpmath_on_extreme_tables(problem):
    """rpm_log_likelihood, elbo (Eq. 15 and Eq. 12 with Q = P(z|x)P(z'|x')), rpm_posterior,
    recognition_joint, expected_elbo and elbo_decomposition against 60-digit references."""
    p_xx, enc, enc_prime, prior = problem
    scale = log_scale(*problem)
    assert_log_close(rpmref.rpm_log_likelihood(*problem), ref.mp_rpm_log_likelihood(*problem), scale)
    eq15 = ref.mp_elbo(*problem)
    assert_log_close(rpmref.elbo(*problem), eq15, scale)
    q = enc[:, None, :, None] * enc_prime[None, :, None, :]
    # Eq. 12 with this q equals Eq. 15 only if q is P(z|x)P(z'|x') itself: not when a
    # product of two positive entries underflowed to 0 (0.5 · 5e-324 rounds to 0, and a
    # zero of the prior under that entry makes the true value −inf), nor when q is not
    # normalised to float64 accuracy.
    same_support = np.array_equal(q > 0, (enc[:, None, :, None] > 0) & (enc_prime[None, :, None, :] > 0))
    if same_support and np.all(np.isclose(q.sum(axis=(2, 3)), 1, rtol=0, atol=1e-12)):
        assert_log_close(rpmref.elbo(*problem, posterior=q), eq15, 2 * scale)
    assert_prob_close(rpmref.rpm_posterior(*problem), ref.mp_rpm_posterior(*problem))
    assert_prob_close(rpmref.recognition_joint(p_xx, enc, enc_prime),
                      [[float(v) for v in r] for r in ref.mp_joint(p_xx, enc, enc_prime)])
    expected_l = ref.mp_expected_elbo(*problem)
    assert_log_close(rpmref.expected_elbo(*problem), expected_l, scale)
    d = rpmref.elbo_decomposition(*problem)
    assert_log_close(d.elbo, expected_l, scale)
    with mpmath.workdps(ref.DPS):
        joint = ref.mp_joint(p_xx, enc, enc_prime)
        kl = ref.mp_kl_of_tables(joint, ref._mp_table(prior))
        mi = ref.mp_mutual_information(joint)
    assert_log_close(d.kl, kl, scale)
    assert_log_close(d.mutual_information, mi, scale)


@settings(max_examples=60)
@given(st.integers(1, 4), st.data())
def test_empirical_rpm_pmf_matches_mpmath_on_extreme_rows(n, data):
    k, k_prime = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    enc, enc_prime = data.draw(extreme_conditionals(n, k)), data.draw(extreme_conditionals(n, k_prime))
    prior = data.draw(extreme_pmfs((k, k_prime)))
    assert_prob_close(rpmref.empirical_rpm_pmf(enc, enc_prime, prior),
                      ref.mp_empirical_rpm_pmf(enc, enc_prime, prior))


@settings(max_examples=80)
@given(st.integers(1, 6).flatmap(lambda m: st.tuples(extreme_pmfs((m,)), extreme_pmfs((m,)))))
def test_measures_match_mpmath_on_extreme_pmfs(pq):
    p, q = pq
    scale = log_scale(p, q)
    assert_log_close(rpmref.kl_divergence(p, q), ref.mp_kl(p, q), scale)
    assert_log_close(rpmref.entropy(p), ref.mp_entropy(p), scale)


@settings(max_examples=60)
@given(extreme_pmfs((3, 2)))
def test_mutual_information_matches_mpmath_on_extreme_joints(p):
    assert_log_close(rpmref.mutual_information(p), ref.mp_mutual_information(p), log_scale(p))


@settings(max_examples=80)
@given(extreme_joint_and_critic())
def test_critic_quantities_match_mpmath_up_to_1e308(pair):
    """energy_prior, log_partition and I_∞ for critics anywhere in (−1.8e308, 1.8e308)."""
    p_zz, f = pair
    scale = log_scale(p_zz)
    assert_prob_close(rpmref.energy_prior(p_zz, f), ref.mp_energy_prior(p_zz, f))
    assert_log_close(rpmref.log_partition(p_zz, f), ref.mp_log_partition(p_zz, f), scale)
    assert_log_close(rpmref.infonce_limit(p_zz, f), ref.mp_infonce_limit(p_zz, f), scale)


@settings(max_examples=40)
@given(extreme_joint_and_critic(max_latent=2), st.integers(1, 3))
def test_exact_infonce_bound_matches_mpmath_enumeration_up_to_1e308(pair, n):
    p_zz, f = pair
    expected = ref.mp_infonce_enumerated(p_zz, f, n)
    assert_log_close(rpmref.infonce_bound(p_zz, f, n, method="exact").estimate, expected,
                     log_scale(p_zz))


def test_kl_keeps_the_log1p_precision_as_q_approaches_p_near_the_subnormal_range():
    """The Sterbenz/log1p route also for tiny tables: p = q (1 + 1e-10) at 1e-300 scale."""
    p = np.array([0.5, 0.5 - 3e-301, 3e-301])
    q = np.array([0.5, 0.5 - 3e-301 * (1 + 1e-10), 3e-301 * (1 + 1e-10)])
    q[0] = 1 - q[1:].sum()
    expected = ref.mp_kl(p, q)
    assert_log_close(rpmref.kl_divergence(p, q), expected)
    # mpmath: at these values KL is dominated by the 0.5-entries' rounding difference.
    assert abs(rpmref.kl_divergence(p, q) - expected) <= 1e-25


def test_rpm_log_likelihood_where_every_path_underflows_is_finite():
    """Every (z, z') path of the pair (0, 0) is below 1e-308 after scaling (1e-200 · 1e-300 · ...):
    the plain matrix product gives 0 (−inf), the exact fallback of log_scaled_product the true
    log ≈ −921 (mpmath: ref.mp_rpm_log_likelihood). Slices of rpm_posterior stay exact too."""
    enc = np.array([[1.0, 1e-200], [0.0, 1.0]])
    p_xx = np.array([[0.5, 0.0], [0.0, 0.5]])
    prior = np.array([[0.0, 1e-300], [1e-300, 1.0]])
    expected = ref.mp_rpm_log_likelihood(p_xx, enc, enc, prior)
    assert math.isfinite(expected[0][0]) and expected[0][0] < -900
    assert_log_close(rpmref.rpm_log_likelihood(p_xx, enc, enc, prior), expected, log_scale(enc, prior))
    assert_prob_close(rpmref.rpm_posterior(p_xx, enc, enc, prior),
                      ref.mp_rpm_posterior(p_xx, enc, enc, prior))


def test_log_matmul_fallback_is_exact_with_exact_gradients():
    """log(a @ b) where a @ b underflows: values against mpmath, and ∂/∂a(x, z) = b(z, y) / (a @ b)
    also at the zero entry a(0, 0) (the prod_exp form keeps it linear)."""
    from autograd import grad
    from rpmref.exact.numerics import log_matmul
    a = np.array([[0.0, 1e-200, 1e-250], [1.0, 0.5, 0.0]])
    b = np.array([[1e-180], [1e-200], [1e-150]])
    with mpmath.workdps(60):
        total = [mpmath.fsum(mpmath.mpf(a[i, z]) * mpmath.mpf(b[z, 0]) for z in range(3))
                 for i in range(2)]
        expected = [float(mpmath.log(t)) for t in total]
        slope = [float(mpmath.mpf(b[z, 0]) / total[0]) for z in range(3)]
    assert_log_close(log_matmul(a, b)[:, 0], expected, scale=700)
    g = grad(lambda t: log_matmul(t, b)[0, 0])(a)
    np.testing.assert_allclose(g[0], slope, rtol=1e-12)
    np.testing.assert_array_equal(g[1], 0.0)


def _mp_log_scaled_product(a, alpha, m, beta, b):
    """log Σ_{z,z'} a(x,z) e^{α_z} m(z,z') e^{β_z'} b(x',z') by mpmath (60 digits)."""
    with mpmath.workdps(60):
        out = np.empty((a.shape[0], b.shape[0]))
        for x in range(a.shape[0]):
            for y in range(b.shape[0]):
                total = mpmath.fsum(
                    mpmath.mpf(a[x, z]) * mpmath.exp(alpha[z]) * mpmath.mpf(m[z, w])
                    * mpmath.exp(beta[w]) * mpmath.mpf(b[y, w])
                    for z in range(m.shape[0]) for w in range(m.shape[1]))
                out[x, y] = float(mpmath.log(total)) if total > 0 else -math.inf
    return out


@pytest.mark.parametrize("case", ["unit", "above_one", "below_floor", "dropped_state"])
def test_log_scaled_product_fast_path_and_its_fallbacks_match_mpmath(case):
    """The concrete fast path (scales folded into M) applies to tables with entries ≤ 1 and
    hands over to the row-scaled route for entries > 1 and for products below the rounding
    floor (a state 700 nats below the others carries a row alone). All routes agree with
    mpmath to 1e-13 (1 + |log| + L), the tolerance of ``assert_log_close``."""
    from rpmref.exact.numerics import _log_scaled_product_unit, log_scaled_product
    rng = np.random.default_rng(7)
    a, m, b = rng.random((4, 3)), rng.random((3, 5)), rng.random((6, 5))
    alpha, beta = rng.normal(size=3), rng.normal(size=5)
    if case == "above_one":
        a = a * 40.0
    elif case == "below_floor":
        alpha[0] = -700.0
        a[0] = [1.0, 0.0, 0.0]
    elif case == "dropped_state":
        alpha[1] = -np.inf
    fast = _log_scaled_product_unit(a, alpha, m, beta, b, None, None)
    assert (fast is not None) == (case in ("unit", "dropped_state"))
    expected = _mp_log_scaled_product(a, alpha, m, beta, b)
    scale = log_scale(a, m, b) + float(np.abs(alpha[np.isfinite(alpha)]).max()) + float(np.abs(beta).max())
    assert_log_close(log_scaled_product(a, alpha, m, beta, b), expected, scale)
    if fast is not None:
        assert_log_close(fast, expected, scale)


def test_infonce_beyond_the_float64_range_is_minus_inf_without_a_warning():
    """p = diag(½), f = ∓1e308 on/off the diagonal: I_∞ = E f − E log E_{z'} e^f =
    −1e308 − (1e308 − log 2) = −2e308, below the float64 range: −inf, and no warning
    (the intermediate halves stay finite; only the final doubling overflows)."""
    p_zz = np.diag([0.5, 0.5])
    f = np.array([[-1e308, 1e308], [1e308, -1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rpmref.infonce_limit(p_zz, f) == -np.inf
        # independent z and z': E f = 0 and log Σ_{z'} ½ e^{f(z,z')} = 1e308 − log 2 for
        # each z, so I_∞ = −1e308 + log 2, which rounds to −1e308
        assert rpmref.infonce_limit(np.full((2, 2), 0.25), f) == -1e308


@pytest.mark.parametrize("p_zz, f, n, expected", [
    ([[0.375, 0.125], [0.125, 0.375]], [[2.0, 0.0], [0.0, 2.0]], 2000, 0.06617378526547041),
    ([[0.5, 0.25], [0.0, 0.25]], [[1.0, -1.0], [0.5, 3.0]], 3000, 0.07819707073292693),
])
def test_exact_infonce_bound_keeps_its_precision_at_large_n(p_zz, f, n, expected):
    """Bug: the multinomial weights of the exact I_N were exp(log (N−1)! − Σ log c! + Σ c log p)
    with lgamma: log (N−1)! ≈ 13000 at N = 2000 carried its rounding (eps · N log N) into
    every weight, 2.5e-12 relative at N = 2000 and 3.7e-10 at 2·10⁵, and I_N came out
    6.7e-12 and 9.4e-12 off. The weights now come from Loader's saddle-point form, in which
    the N log N terms cancel in the algebra. The marginals P(z') are dyadic, so nothing but
    the computation rounds. Expected: Eq. 6 by the same count-vector sum, every term in
    mpmath at 50 digits (binomial weights C(N−1, c) P(z'₀)^c P(z'₁)^(N−1−c), the terms
    f − log(e^f + c e^{f(z, 0)} + (N−1−c) e^{f(z, 1)})), rounded to float64. Tolerance: the
    file's log-scale budget 1e-13 · (1 + |I_N| + max |f|) (~4e-13; the error is now 2e-15)."""
    got = rpmref.infonce_bound(np.array(p_zz), np.array(f), n).estimate
    assert abs(got - expected) <= 1e-13 * (1 + abs(expected) + np.max(np.abs(f))), got - expected
