"""Tests of rpmref.gaussian (closed_form, monte_carlo): Gaussian closed forms (docs/theory.md, 'Gaussian latents')
against hand derivations, the exact discrete core on fine grids, quadrature and
Monte Carlo (within 4 standard errors, fixed seeds)."""
import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st
from numpy.polynomial.hermite_e import hermegauss

import rpmref
from rpmref import gaussian as g
from rpmref.gaussian import monte_carlo as mc
from rpmref.gaussian.checks import random_critic, random_joint, verify_checks
from tests.tolerances import EPS, IDENTITY, MC_SIGMAS

# Closed forms on random_joint's pairs (dim ≤ 6, covariances ≥ 0.05 I): log-dets, solves
# and traces of ≤ 6×6 matrices with condition numbers ≲ 1e3, on values ≲ 10 in size:
# rounding ≲ 6·1e3·u·10 ≈ 7e-12 per closed form. IDENTITY (1e-9) leaves > 50×.


def log_density(points, mean, cov):
    """Gaussian log density written out independently of rpmref.gaussian."""
    diff = points - mean
    sign, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("...i,ij,...j->...", diff, np.linalg.inv(cov), diff)
    return -0.5 * (maha + logdet + mean.size * np.log(2 * np.pi))


def unit_pair(rho):
    return g.gaussian_pair(1.0, 1.0, rho)


# ------------------------------------------------------------ hand derivations (1-D)

@pytest.mark.parametrize("rho", [-0.7, 0.1, 0.5, 0.95])
@pytest.mark.parametrize("ell", [0.2, 1.0, 3.7])
def test_rbf_limit_matches_spec_formula(rho, ell):
    """docs/theory.md, 'Gaussian latents': I_∞(ℓ) = −(1−ρ)/ℓ² − log ℓ + ½ log(1+ℓ²) + 1/(2(1+ℓ²)) (unit variances)."""
    spec = -(1 - rho) / ell**2 - np.log(ell) + 0.5 * np.log1p(ell**2) + 0.5 / (1 + ell**2)
    joint = unit_pair(rho)
    # values ≤ 45 in size (ℓ = 0.2): a few ulp of 45 ≈ 3e-14 each way; 1e-12 leaves 30×
    assert g.rbf_infonce_limit(joint, ell) == pytest.approx(spec, abs=1e-12)
    assert g.infonce_limit(joint, g.rbf_critic(ell, 1)) == pytest.approx(spec, abs=1e-12)
    assert spec < -0.5 * np.log1p(-rho**2)     # strictly below I at every ℓ (E6)


@pytest.mark.parametrize("rho", [-0.6, 0.3, 0.9])
def test_bilinear_optimum_1d(rho):
    """Unit variances: I_∞(w) = wρ − w²/2, so w* = ρ, I_∞ = ρ²/2 and the E6 gap is
    ½(−ρ² − log(1−ρ²)) (the KL between N(ρz, 1−ρ²) and N(ρz, 1))."""
    joint = unit_pair(rho)
    best = g.optimal_bilinear_critic(joint)
    # 1-D closed forms of values ≤ 2 in size through ~10 operations: ≲ 2e-15; 1e-14
    assert best.W[0, 0] == pytest.approx(rho, abs=1e-14)
    for w in (best.W[0, 0], 0.3, -1.2):
        assert g.infonce_limit(joint, g.bilinear_critic(w)) == pytest.approx(w * rho - w**2 / 2,
                                                                              abs=1e-14)
    gap = g.mutual_information(joint) - g.infonce_limit(joint, best)
    assert gap == pytest.approx(0.5 * (-rho**2 - np.log1p(-rho**2)), abs=1e-14)


@pytest.mark.parametrize("rho", [0.05, 0.4, 0.8, 0.99])
def test_rbf_lengthscale_is_root_of_stationarity_quadratic(rho):
    """d/dℓ of the 1-D I_∞(ℓ) (docs/theory.md, 'Gaussian latents') = 0  ⇔  2ρu² − (3 − 4ρ)u − 2(1 − ρ) = 0, u = ℓ²."""
    u = ((3 - 4 * rho) + np.sqrt((3 - 4 * rho) ** 2 + 16 * rho * (1 - rho))) / (4 * rho)
    # an iterative root (regula falsi on the slope, stopped when its bracket in log ℓ² is
    # below 1e-14): the slope's rounding over its derivative at the root sets the
    # accuracy, not ulps of ℓ; 1e-10 relative is ample for these ρ and far below what a
    # wrong root is off by
    assert g.optimal_rbf_lengthscale(unit_pair(rho)) == pytest.approx(np.sqrt(u), rel=1e-10)


@pytest.mark.parametrize("grid", [3, 4, 5])
@pytest.mark.parametrize("rho", [1e-8, 0.01, 0.6, 0.95])
def test_rbf_lengthscale_on_the_smallest_grids_is_the_same_root(rho, grid):
    """grid=3 gave ℓ* = 8944 for ρ = 0.6 (true 1.0507) and grid=4 6.6e6 for ρ = 1e-8 (true
    12247): the root search stopped when two steps from one flat end of a wide bracket
    were 1e-14 apart, or a step landed on an end. The reference is the closed-form root
    of the stationarity quadratic above."""
    u = ((3 - 4 * rho) + np.sqrt((3 - 4 * rho) ** 2 + 16 * rho * (1 - rho))) / (4 * rho)
    assert g.optimal_rbf_lengthscale(unit_pair(rho), grid=grid) == pytest.approx(
        np.sqrt(u), rel=1e-10)


@pytest.mark.parametrize("rho", [-0.5, 0.0])
def test_rbf_lengthscale_infinite_without_positive_correlation(rho):
    """With ρ ≤ 0 every finite ℓ gives I_∞ < 0, the ℓ → ∞ limit: ℓ* = inf."""
    joint = unit_pair(rho)
    assert g.optimal_rbf_lengthscale(joint) == np.inf
    assert g.rbf_infonce_limit(joint, np.inf) == 0.0


def test_recognition_joint_1d_correlation():
    """z = a x + ε, z' = a' x' + ε': corr(z, z') = a a' r / √((a² + s)(a'² + s'))."""
    r, a, ap, s, sp = 0.8, 1.5, -0.7, 0.3, 0.2
    joint = g.recognition_joint([[2.0, r * np.sqrt(2.0)], [r * np.sqrt(2.0), 1.0]], [[a]], [[ap]],
                                [[s]], [[sp]], mean_xx=[1.0, -2.0])
    corr = a * ap * r * np.sqrt(2.0) / np.sqrt((2 * a**2 + s) * (ap**2 + sp))
    # MI ≈ 0.2 from a 2×2 log-det: ~10 roundings of values ≤ 4, ≲ 4e-15
    assert g.mutual_information(joint) == pytest.approx(-0.5 * np.log1p(-corr**2), abs=1e-14)
    np.testing.assert_allclose(joint.mean, [a, -2 * ap], atol=1e-15)  # one product each


# ------------------------------------------------------------ discrete core on a fine grid

def _gaussian_rows(centres, axis, sd):
    """Rows P(axis | centre) ∝ N(axis; centre, sd²), normalised on the grid."""
    log_w = -0.5 * ((axis[None, :] - centres[:, None]) / sd) ** 2
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def test_recognition_joint_and_measures_match_discrete_core_on_grid():
    """Discretise (x, x') and the encoders' conditionals P(z|x), P(z'|x') on fine
    grids, build P(z, z') with the discrete core (Eq. 3–4), and compare the core's
    I(Z;Z'), I_∞ and KL(P ‖ energy prior) with the Gaussian closed forms."""
    r, a, ap, s, sp = 0.7, 1.3, 0.8, 0.25, 0.4
    joint = g.recognition_joint([[1.0, r], [r, 1.0]], [[a]], [[ap]], [[s**2]], [[sp**2]])
    x = np.linspace(-10, 10, 201)
    log_p = -0.5 * (x[:, None] ** 2 - 2 * r * x[:, None] * x[None, :] + x[None, :] ** 2) / (1 - r**2)
    p_xx = np.exp(log_p) / np.exp(log_p).sum()
    z = np.linspace(-16, 16, 321)
    p_zz = rpmref.recognition_joint(p_xx, _gaussian_rows(a * x, z, s), _gaussian_rows(ap * x, z, sp))
    # drop cells below 1e-200 (far tails), where the energy prior would underflow to 0
    # and make the discrete KL infinite; their total mass is < 1e-195
    p_zz = np.where(p_zz < 1e-200, 0.0, p_zz)
    p_zz /= p_zz.sum()
    # The grid sums are not an approximation here: a Gaussian sampled with spacing h sums
    # like its integral up to e^{−2π²σ²/h²} (Poisson summation), ≤ e^{−123} for σ ≥ 0.25,
    # h = 0.1, and the ±10, ±16 truncations drop < e^{−40}. What is left is rounding of
    # sums over 321² ≈ 1e5 cells with |log| ≲ 30: ≤ 1e5·u·30 ≈ 3e-10, so IDENTITY (1e-9).
    assert rpmref.mutual_information(p_zz) == pytest.approx(g.mutual_information(joint),
                                                            abs=IDENTITY)
    for critic in (g.bilinear_critic(0.6), g.rbf_critic(0.9, 1), g.optimal_critic(joint)):
        W, Q, b = (float(np.ravel(t)[0]) for t in critic)
        f = W * z[:, None] * z[None, :] - 0.5 * Q * z[None, :] ** 2 + b * z[None, :]
        assert rpmref.infonce_limit(p_zz, f) == pytest.approx(g.infonce_limit(joint, critic),
                                                              abs=IDENTITY)
        kl_core = rpmref.kl_divergence(p_zz, rpmref.energy_prior(p_zz, f))
        kl_gauss = g.kl_divergence(joint, g.energy_prior(joint, critic))
        assert kl_core == pytest.approx(kl_gauss, abs=IDENTITY)


# ------------------------------------------------------------ identities on random Gaussians

@given(st.integers(0, 2**32 - 1))
def test_e6_gap_is_kl_and_nonnegative(seed):
    """E6: I(Z;Z') − I_∞(f) = KL(P(z,z') ‖ P_θ^f) ≥ 0 for any quadratic critic."""
    rng = np.random.default_rng(seed)
    joint, _ = random_joint(rng)
    critic, _ = random_critic(rng, joint)
    gap = g.mutual_information(joint) - g.infonce_limit(joint, critic)
    kl = g.kl_divergence(joint, g.energy_prior(joint, critic))
    # IDENTITY, plus 1e-11 relative for gaps of hundreds of nats (a far-off critic), where
    # the closed forms' ≲ 1e3·u conditioning acts on the large values themselves
    assert gap == pytest.approx(kl, rel=1e-11, abs=IDENTITY)
    assert gap >= -1e-12  # KL ≥ 0: the eigenvalue form Σ(λ−1) − log1p(λ−1) has no cancellation


@given(st.integers(0, 2**32 - 1))
def test_e6_gap_zero_at_optimal_critic(seed):
    """E4/E6: f = log p(z'|z)/p(z') makes the energy prior the recognition joint."""
    joint, _ = random_joint(np.random.default_rng(seed))
    critic = g.optimal_critic(joint)
    prior = g.energy_prior(joint, critic)
    assert g.infonce_limit(joint, critic) == pytest.approx(g.mutual_information(joint),
                                                           abs=IDENTITY)
    # covariances and means ≲ 10 in size rebuilt through two inverses (κ ≲ 1e3): ≲ 1e-11
    np.testing.assert_allclose(prior.cov, joint.cov, atol=IDENTITY)
    np.testing.assert_allclose(prior.mean, joint.mean, atol=IDENTITY)


@given(st.integers(0, 2**32 - 1))
def test_e5_energy_prior_elbo_is_infonce_limit(seed):
    """E5: with the energy prior, L − C = E_P[log P_θ^f/(p(z)p(z'))] (cross-entropy
    route) equals I_∞(f), and E3: it equals I − KL."""
    rng = np.random.default_rng(seed)
    joint, _ = random_joint(rng)
    critic, _ = random_critic(rng, joint)
    parts = g.elbo_decomposition(joint, g.energy_prior(joint, critic))
    assert parts["elbo_minus_constant"] == pytest.approx(g.infonce_limit(joint, critic),
                                                         abs=IDENTITY)
    assert parts["elbo_minus_constant"] == pytest.approx(
        parts["mutual_information"] - parts["kl"], abs=IDENTITY)


def test_e4_recognition_joint_is_best_prior():
    """E4: the prior P_θ = P(z, z') scores L − C = I; perturbed priors score less."""
    rng = np.random.default_rng(3)
    joint, _ = random_joint(rng)
    best = g.elbo_decomposition(joint, joint)
    # KL(p ‖ p): whitened eigenvalues 1 ± ~κu ≈ 1e-13, entering squared: ≪ 1e-12
    assert best["kl"] == pytest.approx(0.0, abs=1e-12)
    assert best["elbo_minus_constant"] == pytest.approx(best["mutual_information"], abs=IDENTITY)
    for _ in range(20):
        n = joint.mean.size
        tweak = rng.normal(scale=0.1, size=(n, n))
        prior = g.GaussianPair(joint.mean + rng.normal(scale=0.1, size=n),
                               joint.cov + tweak @ tweak.T, joint.k)
        assert g.elbo_decomposition(joint, prior)["elbo_minus_constant"] < best["elbo_minus_constant"]


@given(st.integers(0, 2**32 - 1))
def test_optimal_bilinear_and_rbf_parameters_are_maxima(seed):
    """I_∞(W*) ≥ I_∞(W* + Δ) and I_∞(ℓ*) ≥ I_∞(ℓ* e^{±0.01})."""
    rng = np.random.default_rng(seed)
    joint, _ = random_joint(rng, square=True)
    best = g.optimal_bilinear_critic(joint)
    top = g.infonce_limit(joint, best)
    # a maximum: perturbed values ≤ top, with 1e-12 for the rounding of values ≲ 10 (≲ 1e-14)
    for _ in range(5):
        delta = rng.normal(scale=0.05, size=best.W.shape)
        assert g.infonce_limit(joint, g.bilinear_critic(best.W + delta)) <= top + 1e-12
    ell = g.optimal_rbf_lengthscale(joint)
    if np.isfinite(ell):
        top = g.rbf_infonce_limit(joint, ell)
        assert g.rbf_infonce_limit(joint, ell * np.exp(0.01)) <= top + 1e-12
        assert g.rbf_infonce_limit(joint, ell * np.exp(-0.01)) <= top + 1e-12
    else:
        assert all(g.rbf_infonce_limit(joint, e) <= 0 for e in np.geomspace(1e-2, 1e3, 50))


def test_e3_with_identity_encoders_is_prior_log_likelihood():
    """E3 with z = x, z' = x' (deterministic identity encoders, Appendix C): the RPM
    likelihood is the prior density itself, so L = E_P[log P_θ(x, x')] = −CE(P, P_θ)
    must equal I − KL + C with C = −h(X) − h(X') (Eq. 16–18)."""
    rng = np.random.default_rng(8)
    root = rng.normal(size=(3, 3))
    cov_xx = root @ root.T + 0.2 * np.eye(3)
    joint = g.recognition_joint(cov_xx, np.eye(2), np.eye(1), mean_xx=[0.3, -1.0, 2.0])
    prior = g.GaussianPair(rng.normal(size=3), np.diag([1.5, 0.7, 2.0]), 2)
    points = np.concatenate(mc.sample_pairs(joint, (400_000,), np.random.default_rng(9)), axis=1)
    log_lik = log_density(points, prior.mean, prior.cov)
    parts = g.elbo_decomposition(joint, prior)
    total = parts["elbo_minus_constant"] + g.data_constant(cov_xx, 2)
    # the same closed forms rearranged, values ≲ 10 on a fixed 3-D pair: ≲ 1e-14
    assert total == pytest.approx(parts["mutual_information"] - parts["kl"]
                                  + g.data_constant(cov_xx, 2), abs=1e-12)
    assert abs(log_lik.mean() - total) < MC_SIGMAS * log_lik.std(ddof=1) / np.sqrt(log_lik.size)


def test_kl_divergence_precise_near_equality():
    """KL(N(0, 1) ‖ N(0, 1 + ε)) = ½(1/(1+ε) − 1 + log(1+ε)) = ε²/4 − ε³/3 + 3ε⁴/8 − …
    to a relative error that does not grow like 1/ε² (cross-entropy minus entropy would).

    rpmref forms λ − 1 = 1/(1+ε) − 1 from λ, which carries ~2 roundings of 1: λ − 1 is
    off by ~2u/ε relative and KL ≈ (λ−1)²/4 by ~4u/ε; 8ε_mach/ε leaves 4×. Reference:
    the exact formula at 50 digits, at the float 1 + ε the covariance holds (the same
    formula in floats loses 1/(1+ε) − 1 to cancellation: 1e-4 relative at ε = 1e-6).
    The series, in the decimal ε, also differs by the representation of 1 + ε (2u/ε)
    and by its truncation (≈ 2ε⁵/5 ÷ ε²/4 = 1.6ε³)."""
    mpmath.mp.dps = 50
    for eps in (1e-3, 1e-6):
        p = (np.zeros(1), np.eye(1))
        q = (np.zeros(1), np.eye(1) * (1 + eps))
        stored = mpmath.mpf(1 + eps)
        exact = float(0.5 * (1 / stored - 1 + mpmath.log(stored)))
        series = eps**2 / 4 - eps**3 / 3 + 3 * eps**4 / 8
        assert g.kl_divergence(p, q) == pytest.approx(exact, rel=8 * EPS / eps)
        assert g.kl_divergence(p, q) == pytest.approx(series, rel=2 * eps**3 + 16 * EPS / eps)


# ------------------------------------------------------------ Monte Carlo

def test_mutual_information_matches_monte_carlo():
    """I(Z;Z') = E_P[log p(z,z') − log p(z) − log p(z')], sampled, within 4 s.e."""
    joint, _ = random_joint(np.random.default_rng(11))
    z, zp = mc.sample_pairs(joint, (200_000,), np.random.default_rng(0))
    m, mp, c, cp, _ = g.blocks(joint)
    ratio = (log_density(np.concatenate([z, zp], axis=1), joint.mean, joint.cov)
             - log_density(z, m, c) - log_density(zp, mp, cp))
    stderr = ratio.std(ddof=1) / np.sqrt(ratio.size)
    assert abs(ratio.mean() - g.mutual_information(joint)) < MC_SIGMAS * stderr


def test_kl_to_energy_prior_matches_monte_carlo():
    """KL(P ‖ P_θ^f) = E_P[log p(z,z') − log p_θ(z,z')], sampled, within 4 s.e."""
    rng = np.random.default_rng(12)
    joint, _ = random_joint(rng, square=True)
    prior = g.energy_prior(joint, g.rbf_critic(0.8, joint.k))
    z, zp = mc.sample_pairs(joint, (200_000,), np.random.default_rng(1))
    pts = np.concatenate([z, zp], axis=1)
    ratio = log_density(pts, joint.mean, joint.cov) - log_density(pts, prior.mean, prior.cov)
    stderr = ratio.std(ddof=1) / np.sqrt(ratio.size)
    assert abs(ratio.mean() - g.kl_divergence(joint, prior)) < MC_SIGMAS * stderr


@pytest.mark.parametrize("kind", ["bilinear", "rbf"])
def test_infonce_limit_matches_monte_carlo_and_quadrature(kind):
    """1-D: I_∞ = E_P[f] − E_z[log ∫ p(z') e^{f(z,z')} dz']; E_P[f] by Monte Carlo
    (within 4 s.e.), the inner integral by 80-node Gauss–Hermite quadrature."""
    rho, sd, sdp, m, mp = 0.6, 1.3, 0.7, 0.4, -0.3
    joint = g.gaussian_pair(sd**2, sdp**2, rho * sd * sdp, m, mp)
    if kind == "bilinear":
        def f(z, zp):
            return 0.8 * z * zp
        critic = g.bilinear_critic(0.8)
    else:
        def f(z, zp):
            return -(z - zp) ** 2 / (2 * 0.5**2)
        critic = g.rbf_critic(0.5, 1)
    nodes, weights = hermegauss(80)          # ∫ N(t; 0, 1) h(t) dt ≈ Σ w h(t) / √(2π)
    weights = weights / np.sqrt(2 * np.pi)
    z, zp = mc.sample_pairs(joint, (200_000,), np.random.default_rng(2))
    z, zp = z[:, 0], zp[:, 0]
    log_z = np.log(np.exp(f(z[:, None], mp + sdp * nodes[None, :])) @ weights)
    terms = f(z, zp) - log_z
    stderr = terms.std(ddof=1) / np.sqrt(terms.size)
    assert abs(terms.mean() - g.infonce_limit(joint, critic)) < MC_SIGMAS * stderr


def test_infonce_n2_matches_quadrature():
    """E7 at N = 2 (one negative z'' ~ p(z')): I_2 = log 2 + E[f(z,z') −
    log(e^{f(z,z')} + e^{f(z,z'')})], a 3-D Gauss–Hermite integral in 1-D; the
    Monte Carlo estimator must agree within 4 s.e."""
    rho = 0.7
    joint = unit_pair(rho)
    critic = g.rbf_critic(0.9, 1)

    def f(z, zp):
        return -(z - zp) ** 2 / (2 * 0.9**2)
    t, w = hermegauss(60)
    w = w / np.sqrt(2 * np.pi)
    a, b, c = np.meshgrid(t, t, t, indexing="ij")
    weight = w[:, None, None] * w[None, :, None] * w[None, None, :]
    z, zp, zpp = a, rho * a + np.sqrt(1 - rho**2) * b, c     # (z, z') ~ P, z'' ~ p(z')
    exact = np.log(2) + np.sum(weight * (f(z, zp) - np.logaddexp(f(z, zp), f(z, zpp))))
    estimate, stderr = mc.infonce_bound(joint, critic, 2, 200_000, rng=3)
    assert abs(estimate - exact) < MC_SIGMAS * stderr


def test_infonce_draws_never_exceed_log_n_and_bound_mi():
    """E7: every batch's I_N ≤ log N exactly; the mean is ≤ I(Z;Z') (within 4 s.e.)."""
    joint, _ = staircase_like(6.0)
    draws = mc.infonce_draws(joint, g.optimal_critic(joint), 16, 3000, np.random.default_rng(4))
    # each draw is log 16 − (a log-sum-exp ≥ its largest term): ≤ log 16 up to ulps of
    # values ≲ 20 (≲ 1e-14)
    assert np.all(draws <= np.log(16) + 1e-12)
    assert draws.mean() - MC_SIGMAS * draws.std(ddof=1) / np.sqrt(draws.size) <= \
        g.mutual_information(joint)


def staircase_like(true_mi, dim=4):
    rho = np.sqrt(-np.expm1(-2 * true_mi / dim))
    eye = np.eye(dim)
    return g.gaussian_pair(eye, eye, rho * eye), rho


def test_infonce_large_n_approaches_limit():
    """E7: I_N → I_∞ as N grows. Low MI (0.2 nats), N = 1024: the remaining O(1/N)
    bias is below 0.01 nats (written tolerance), on top of 4 standard errors."""
    joint = unit_pair(0.55)
    critic = g.rbf_critic(1.2, 1)
    estimate, stderr = mc.infonce_bound(joint, critic, 1024, 60, rng=5)
    assert abs(estimate - g.infonce_limit(joint, critic)) < MC_SIGMAS * stderr + 0.01


def test_callable_critic_gives_same_draws_as_quadratic_form():
    """A function of z alone does not change I_N: the full RBF critic −‖z−z'‖²/(2ℓ²)
    as a callable and its quadratic form (without −‖z‖²/(2ℓ²)) agree draw by draw."""
    joint, _ = staircase_like(3.0, dim=3)

    def rbf(z, zp):
        return -np.sum((z[..., :, None, :] - zp[..., None, :, :]) ** 2, axis=-1) / (2 * 0.7**2)
    a = mc.infonce_draws(joint, rbf, 8, 50, np.random.default_rng(6))
    b = mc.infonce_draws(joint, g.rbf_critic(0.7, 3), 8, 50, np.random.default_rng(6))
    # scores differ by −‖z‖²/(2ℓ²) ≲ 50, which cancels in each row's log-softmax: the
    # draws agree to ulps of 50 (≈ 1e-14) times ≤ 8 terms, ≪ 1e-9
    np.testing.assert_allclose(a, b, atol=1e-9)


# ------------------------------------------------------------ errors

@pytest.mark.parametrize("call, message", [
    (lambda: g.gaussian_pair([[1.0, 2.0], [2.0, 1.0]], 1.0, [[0.1], [0.1]]), "positive definite"),
    (lambda: g.gaussian_pair([[1.0, 0.5], [0.4, 1.0]], 1.0, [[0.1], [0.1]]), "symmetric"),
    (lambda: g.gaussian_pair(1.0, 1.0, [[0.5, 0.1]]), "cross_cov must have shape"),
    (lambda: g.gaussian_pair(1.0, 1.0, 1.0), "positive definite"),
    (lambda: g.gaussian_pair(1.0, np.nan, 0.0), "finite"),
    (lambda: g.gaussian_pair(1.0, 1.0, 0.1, mean_z=[0.0, 1.0]), "mean_z"),
    (lambda: g.recognition_joint(np.eye(3), np.eye(2), np.eye(2)), "cov_xx must be"),
    (lambda: g.recognition_joint(np.eye(2), np.ones((2, 1)), np.eye(1)), "I\\(Z;Z'\\) would be infinite"),
    (lambda: g.recognition_joint(-np.eye(2), np.eye(1), np.eye(1)), "semi-definite"),
    (lambda: g.recognition_joint(np.eye(2), np.eye(1), np.eye(1), noise_cov=np.eye(2)), "noise_cov"),
    (lambda: g.rbf_infonce_limit(g.gaussian_pair(np.eye(2), 1.0, [[0.1], [0.1]]), 1.0), "dim z == dim z'"),
    (lambda: g.optimal_rbf_lengthscale(g.gaussian_pair(np.eye(2), 1.0, [[0.1], [0.1]])), "dim z == dim z'"),
    (lambda: g.rbf_critic(0.0, 1), "lengthscale"),
    (lambda: g.rbf_critic(1.0, 0), "k \\(the dimension"),
    (lambda: g.infonce_limit(unit_pair(0.5), g.QuadraticCritic(np.eye(1), -2 * np.eye(1), np.zeros(1))),
     "too negative"),
    (lambda: g.infonce_limit(unit_pair(0.5), g.bilinear_critic(np.eye(2))), "critic.W must have shape"),
    (lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 0), "n must be"),
    (lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 4, batches=1), "batches"),
    (lambda: mc.infonce_bound(unit_pair(0.5), lambda z, zp: z, 4, 10), "critic must return"),
    (lambda: g.kl_divergence(unit_pair(0.5), (np.zeros(2), -np.eye(2))), "q covariance"),
    (lambda: g.kl_divergence(unit_pair(0.5), (np.zeros(3), np.eye(3))), "same dimension"),
    (lambda: g.data_constant(np.eye(2), 2), "dim_x"),
])
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda: g.mutual_information(np.eye(2)),
    lambda: g.infonce_limit(unit_pair(0.5), np.eye(1)),
    lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 4, 10, rng="x"),
    lambda: mc.infonce_bound(unit_pair(0.5), "critic", 4, 10),
    lambda: g.kl_divergence(unit_pair(0.5), 3.0),
])
def test_bad_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


# ------------------------------------------------------------ verify rows

def test_verify_checks_rows_pass_and_are_deterministic():
    rows = verify_checks(np.random.default_rng(0), 30)
    assert {r["id"] for r in rows} >= {"G-MI", "G-E3", "G-E4", "G-E5-GRID", "G-E6"}
    for r in rows:
        assert set(r) == {"id", "equation", "statement", "max_error", "worst_case", "tolerance"}
        assert 0 <= r["max_error"] <= r["tolerance"], r
    again = verify_checks(np.random.default_rng(0), 30)
    assert [r["max_error"] for r in rows] == [r["max_error"] for r in again]


@pytest.mark.parametrize("pair, message", [
    (g.GaussianPair(np.zeros(2), -np.eye(2), 1), "positive definite"),
    (g.GaussianPair(np.zeros(2), np.eye(3), 1), "mean must be"),
    (g.GaussianPair(np.zeros(2), np.eye(2), 2), "0 < k < n"),
])
def test_malformed_gaussian_pair_raises_value_error(pair, message):
    with pytest.raises(ValueError, match=message):
        g.mutual_information(pair)
    with pytest.raises(ValueError, match=message):
        mc.infonce_bound(pair, g.bilinear_critic(1.0), 4, 10)


def test_recognition_joint_matches_monte_carlo_of_encoders():
    """Eq. 3: sample (x, x'), then z = A x + ε, z' = A' x' + ε'; the sample mean and
    covariance of (z, z') match recognition_joint entrywise within 4 s.e."""
    rng = np.random.default_rng(21)
    root = rng.normal(size=(5, 5))
    cov_xx, mean_xx = root @ root.T / 5 + 0.1 * np.eye(5), rng.normal(size=5)
    enc, enc_p = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    noise, noise_p = np.diag([0.3, 0.1]), np.array([[0.2, 0.05], [0.05, 0.1]])
    joint = g.recognition_joint(cov_xx, enc, enc_p, noise, noise_p, mean_xx)
    n = 200_000
    x = rng.multivariate_normal(mean_xx, cov_xx, size=n)
    z = x[:, :3] @ enc.T + rng.multivariate_normal(np.zeros(2), noise, size=n)
    zp = x[:, 3:] @ enc_p.T + rng.multivariate_normal(np.zeros(2), noise_p, size=n)
    s = np.concatenate([z, zp], axis=1)
    assert np.all(np.abs(s.mean(0) - joint.mean) < MC_SIGMAS * s.std(0, ddof=1) / np.sqrt(n))
    centred = s - s.mean(0)
    products = centred[:, :, None] * centred[:, None, :]             # (n, 4, 4)
    se = products.std(0, ddof=1) / np.sqrt(n)
    # +1e-12 only matters where se = 0 (it is not); a pairwise mean of 2e5 products ≲ 10
    # rounds by ≲ 18·u·10 ≈ 2e-14
    assert np.all(np.abs(products.mean(0) - joint.cov) < MC_SIGMAS * se + 1e-12)


def test_energy_prior_is_tilted_marginal_with_monte_carlo_normaliser():
    """Eq. 21–22: log P_θ(z'|z) − log p(z') − f(z, z') is the same (−log Z(z)) for
    every z' (exact, on a grid of z'), and Z(z) = E_{p(z')}[e^{f(z, z')}] by
    Monte Carlo within 4 s.e."""
    joint = g.gaussian_pair(np.array([[1.0, 0.3], [0.3, 0.8]]), np.array([[0.9, -0.2], [-0.2, 1.2]]),
                            np.array([[0.5, 0.1], [-0.2, 0.4]]), [0.2, -0.1], [0.5, 0.3])
    ell = 1.3
    prior = g.energy_prior(joint, g.rbf_critic(ell, 2))
    m, mp, c, cp, _ = g.blocks(joint)
    pm, pmp, pc, pcp, ps = g.blocks(prior)
    z = np.array([0.7, -0.4])
    cond_mean = pmp + ps.T @ np.linalg.solve(pc, z - pm)             # P_θ(z'|z), Gaussian
    cond_cov = pcp - ps.T @ np.linalg.solve(pc, ps)
    zp = np.random.default_rng(0).normal(size=(50, 2)) * 2

    def f(a, b):
        return -np.sum((a - b) ** 2, axis=-1) / (2 * ell**2)
    offset = log_density(zp, cond_mean, cond_cov) - log_density(zp, mp, cp) - f(z, zp)
    # log densities of z' up to ~4σ: Mahalanobis terms ≲ 40 through 2×2 inverses (κ ≲ 10):
    # ≲ 10·u·40·(a few) ≈ 3e-13 spread
    assert np.ptp(offset) < 1e-12
    draws = np.exp(f(z, np.random.default_rng(1).multivariate_normal(mp, cp, size=400_000)))
    assert abs(draws.mean() - np.exp(-offset[0])) < \
        MC_SIGMAS * draws.std(ddof=1) / np.sqrt(draws.size)
    np.testing.assert_allclose(pm, m, atol=1e-15)                    # P_θ(z) = p(z): copied
    np.testing.assert_allclose(pc, c, atol=1e-15)
