"""Gradients of the Gaussian closed forms (autograd), against finite differences.

Every closed form of ``rpmref.gaussian`` is differentiated with respect to the
encoder matrices, the encoder noise, a covariance, a critic's parameters (W, Q, b,
the RBF lengthscale) and a prior's covariance, on random problems. Two checks each:
``autograd.test_util.check_grads`` (reverse mode, first order, a random direction)
and our own central difference along a random direction, which must agree with
autograd's directional derivative to 1e-6 relative (+1e-9 absolute).

Covariance arguments are parametrised symmetrically (``sym(X) = (X + Xᵀ)/2``) so a
perturbation stays a valid (symmetric) covariance; the random problems are well
inside the positive definite cone, so steps of 1e-5 never leave it.

Tolerance: with step h = 1e-5 the central difference has truncation error
≈ h²/6·|F'''| ≈ 1e-10 for the O(1)–O(10) third derivatives here and rounding error
≈ eps·|F|/h ≈ 2e-11 for |F| ≲ 1; 1e-6 relative + 1e-9 absolute is far above both
and far below any real gradient error, which is O(|F'|).
"""
import warnings

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads

import rpmref.gaussian as g

STEP = 1e-5
RTOL, ATOL = 1e-6, 1e-9


@pytest.fixture(autouse=True)
def _seed_check_grads():
    np.random.seed(0)  # check_grads draws its direction from the global NumPy generator


def sym(x):
    return 0.5 * (x + anp.transpose(x))


def problem(seed, k=2, k_prime=2):
    """A random recognition problem: data covariance, encoders, noise, critic parts."""
    rng = np.random.default_rng(seed)
    d, dp = k + 1, k_prime
    root = rng.normal(size=(d + dp, d + dp))
    return dict(
        cov_xx=root @ root.T / (d + dp) + 0.3 * np.eye(d + dp),
        enc=rng.normal(size=(k, d)), enc_prime=rng.normal(size=(k_prime, dp)),
        noise=np.diag(rng.uniform(0.2, 0.5, k)), noise_prime=np.diag(rng.uniform(0.2, 0.5, k_prime)),
        mean_xx=rng.normal(scale=0.5, size=d + dp),
        W=rng.normal(scale=0.3, size=(k, k_prime)), Q=0.1 * np.eye(k_prime),
        b=rng.normal(scale=0.3, size=k_prime))


def joint_of(p, enc=None, enc_prime=None, noise=None):
    return g.recognition_joint(p["cov_xx"], p["enc"] if enc is None else enc,
                               p["enc_prime"] if enc_prime is None else enc_prime,
                               noise_cov=p["noise"] if noise is None else noise,
                               noise_cov_prime=p["noise_prime"], mean_xx=p["mean_xx"])


def _prior_cov(joint):
    return np.asarray(joint.cov) + 0.2 * np.eye(np.asarray(joint.cov).shape[0])


#: name -> (F(x, p) -> scalar, x0(p)): the variable x is what autograd differentiates
OBJECTIVES = {
    "mutual_information wrt enc": (
        lambda x, p: g.mutual_information(joint_of(p, enc=x)), lambda p: p["enc"]),
    "mutual_information wrt noise_cov": (
        lambda x, p: g.mutual_information(joint_of(p, noise=sym(x))), lambda p: p["noise"]),
    "entropy wrt enc_prime": (
        lambda x, p: g.entropy(joint_of(p, enc_prime=x)), lambda p: p["enc_prime"]),
    "canonical_correlations wrt enc": (
        lambda x, p: anp.sum(g.canonical_correlations(joint_of(p, enc=x)) ** 2),
        lambda p: p["enc"]),
    "infonce_limit wrt critic W": (
        lambda x, p: g.infonce_limit(joint_of(p), g.QuadraticCritic(x, p["Q"], p["b"])),
        lambda p: p["W"]),
    "infonce_limit wrt critic Q": (
        lambda x, p: g.infonce_limit(joint_of(p), g.QuadraticCritic(p["W"], sym(x), p["b"])),
        lambda p: p["Q"]),
    "infonce_limit wrt critic b": (
        lambda x, p: g.infonce_limit(joint_of(p), g.QuadraticCritic(p["W"], p["Q"], x)),
        lambda p: p["b"]),
    "infonce_limit wrt enc": (
        lambda x, p: g.infonce_limit(joint_of(p, enc=x), g.QuadraticCritic(p["W"], p["Q"], p["b"])),
        lambda p: p["enc"]),
    "infonce_limit of rbf_critic wrt lengthscale": (
        lambda x, p: g.infonce_limit(joint_of(p), g.rbf_critic(x, 2)), lambda p: 0.9),
    "rbf_infonce_limit wrt lengthscale": (
        lambda x, p: g.rbf_infonce_limit(joint_of(p), x), lambda p: 1.3),
    "rbf_infonce_limit wrt enc": (
        lambda x, p: g.rbf_infonce_limit(joint_of(p, enc=x), 0.8), lambda p: p["enc"]),
    "rbf_infonce_limit wrt enc_prime": (
        lambda x, p: g.rbf_infonce_limit(joint_of(p, enc_prime=x), 0.8), lambda p: p["enc_prime"]),
    "rbf_infonce_limit wrt enc_prime at a large lengthscale": (
        lambda x, p: 1e4 * g.rbf_infonce_limit(joint_of(p, enc_prime=x), 30.0),
        lambda p: p["enc_prime"]),
    "infonce_limit of optimal_critic wrt enc": (
        lambda x, p: g.infonce_limit(joint_of(p), g.optimal_critic(joint_of(p, enc=x))),
        lambda p: p["enc"]),
    "infonce_limit of optimal_bilinear_critic wrt enc": (
        lambda x, p: g.infonce_limit(joint_of(p, enc=x), g.optimal_bilinear_critic(joint_of(p, enc=x))),
        lambda p: p["enc"]),
    "kl_divergence to the energy prior wrt W": (
        lambda x, p: g.kl_divergence(joint_of(p), g.energy_prior(joint_of(p), g.bilinear_critic(x))),
        lambda p: p["W"]),
    "kl_divergence wrt prior covariance": (
        lambda x, p: g.kl_divergence(joint_of(p), g.GaussianPair(np.zeros(4), sym(x), 2)),
        lambda p: _prior_cov(joint_of(p))),
    "cross_entropy wrt p covariance": (
        lambda x, p: g.cross_entropy((np.zeros(4), sym(x)), joint_of(p)),
        lambda p: _prior_cov(joint_of(p))),
    "elbo_decomposition wrt prior covariance": (
        lambda x, p: g.elbo_decomposition(
            joint_of(p), g.GaussianPair(np.zeros(4), sym(x), 2))["elbo_minus_constant"],
        lambda p: _prior_cov(joint_of(p))),
    "elbo_decomposition with the energy prior wrt enc": (
        lambda x, p: g.elbo_decomposition(
            joint_of(p, enc=x),
            g.energy_prior(joint_of(p, enc=x), g.QuadraticCritic(p["W"], p["Q"], p["b"])))["kl"],
        lambda p: p["enc"]),
    "data_constant wrt cov_xx": (
        lambda x, p: g.data_constant(sym(x), 3), lambda p: p["cov_xx"]),
    "gaussian_pair then mutual_information wrt cross_cov": (
        lambda x, p: g.mutual_information(g.gaussian_pair(np.eye(2), np.eye(2), x)),
        lambda p: 0.4 * p["W"]),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_central_difference(name, seed):
    fun, start = OBJECTIVES[name]
    p = problem(seed)
    x0 = np.asarray(start(p), dtype=float)
    f = lambda x: fun(x, p)  # noqa: E731
    check_grads(f, modes=["rev"], order=1)(x0)
    direction = np.random.default_rng(100 + seed).normal(size=x0.shape)
    if name.endswith("lengthscale"):
        direction = np.float64(1.0)
    auto = float(np.sum(grad(f)(x0) * direction))
    numeric = (f(x0 + STEP * direction) - f(x0 - STEP * direction)) / (2 * STEP)
    assert abs(auto - numeric) <= RTOL * abs(numeric) + ATOL, (auto, numeric)


def test_rbf_gradient_at_repeated_eigenvalues_is_finite_and_right():
    """C' = I has a repeated eigenvalue: an eigen-decomposition with eigenvector
    derivatives would divide by λᵢ − λⱼ = 0 here. The derivative of I_∞ with respect to
    the covariance is compared with central differences along symmetric directions."""
    base = g.gaussian_pair(np.eye(3), np.eye(3), 0.4 * np.eye(3))
    f = lambda x: g.rbf_infonce_limit(g.GaussianPair(np.zeros(6), sym(x), 3), 0.7)  # noqa: E731
    x0 = np.asarray(base.cov)
    gradient = grad(f)(x0)
    assert np.all(np.isfinite(gradient))
    rng = np.random.default_rng(5)
    for _ in range(3):
        d = sym(rng.normal(size=x0.shape))
        numeric = (f(x0 + STEP * d) - f(x0 - STEP * d)) / (2 * STEP)
        assert abs(np.sum(gradient * d) - numeric) <= RTOL * abs(numeric) + ATOL


def test_gradient_of_mutual_information_matches_the_one_dimensional_formula():
    """I = −½ log(1 − ρ²) for unit variances: dI/dρ = ρ / (1 − ρ²), exactly."""
    for rho in (-0.9, -0.3, 0.0, 0.2, 0.95):
        slope = grad(lambda r: g.mutual_information(g.gaussian_pair(1.0, 1.0, r)))(rho)
        assert abs(slope - rho / (1 - rho**2)) <= 1e-12 * max(1.0, abs(slope))


@pytest.mark.parametrize("as_type", [float, np.float64])
def test_gradient_of_rbf_limit_at_huge_lengthscales_underflows_quietly(as_type):
    """At ℓ ≳ 1.3e154 autograd's rule for ℓ in a quotient squared it: an OverflowError for
    a Python float ℓ, inf and RuntimeWarnings for a NumPy one. The 1-D formula's slope is
    ρ/ℓ² + O(ℓ⁻⁴) differentiated: −2ρ/ℓ³ (1 + O(ℓ⁻²)), formed as −2ρ (1/ℓ)³, which
    underflows to 0 beyond ℓ ≈ 1e103; the terms that cancel to it are O(1/ℓ³) each, so a
    few ulps of it (1e-13 relative) plus the subnormal spacing bound the rounding."""
    rho = 0.6
    joint = g.gaussian_pair(1.0, 1.0, rho)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ell in (1e50, 1e100, 1e103, 1e155, 1e200, 1e300):
            slope = grad(lambda e: g.rbf_infonce_limit(joint, e))(as_type(ell))
            expected = -2 * rho * (1 / ell) ** 3
            assert abs(slope - expected) <= 1e-13 * abs(expected) + 5e-324 * 4, (ell, slope)


def test_gradient_of_rbf_limit_matches_the_one_dimensional_formula():
    """d/dℓ of −(1−ρ)/ℓ² − log ℓ + ½ log(1+ℓ²) + 1/(2(1+ℓ²)) (docs/theory.md), by hand:
    2(1−ρ)/ℓ³ − 1/ℓ + ℓ/(1+ℓ²) − ℓ/(1+ℓ²)²."""
    rho = 0.6
    joint = g.gaussian_pair(1.0, 1.0, rho)
    for ell in (0.3, 1.0, 2.5, 40.0):
        expected = 2 * (1 - rho) / ell**3 - 1 / ell + ell / (1 + ell**2) - ell / (1 + ell**2) ** 2
        slope = grad(lambda e: g.rbf_infonce_limit(joint, e))(ell)
        # the four terms are O(1/ℓ) and cancel to O(1/ℓ³) at large ℓ: rounding ~ 4·eps/ℓ
        assert abs(slope - expected) <= 1e-13 * max(1.0, 1 / ell) + 1e-12 * abs(expected)
