"""The Gaussian closed forms at their edges: bad input gets a ValueError/TypeError that
names the argument, valid input at extreme scales gets the exact answer.

Exactness at extreme scales is checked by invariances the formulas do not use: the
mutual information, the KL divergence and I_∞ of a suitably rescaled critic are
unchanged when every covariance is multiplied by s (z → √s z), and the entropy moves by
exactly (d/2) log s. The reference values are the unscaled ones (computed at s = 1,
where nothing is extreme) or closed forms evaluated with mpmath at 50 digits.
"""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rpmref.gaussian as g
from rpmref.gaussian import monte_carlo as mc

mpmath.mp.dps = 50
EPS = float(np.finfo(np.float64).eps)

#: Relative tolerance of a closed form of a d ≤ 4 problem against the same closed form at
#: another scale: each side is a few Cholesky/solve/eigen steps on ≤ 4 × 4 matrices,
#: ≈ 10·d·eps·cond relative with cond ≤ 50 here (≈ 4e-13); 1e-11 leaves a 25× margin.
SCALED_RTOL = 1e-11


def unit_pair(rho, scale=1.0):
    return g.gaussian_pair(scale, scale, rho * scale)


def random_joint(seed, k=2, k_prime=2):
    rng = np.random.default_rng(seed)
    n = k + k_prime
    root = rng.normal(size=(n, n))
    cov = root @ root.T / n + 0.5 * np.eye(n)
    return g.GaussianPair(rng.normal(size=n), cov, k)


def scaled(joint, s):
    return g.GaussianPair(np.asarray(joint.mean) * math.sqrt(s), np.asarray(joint.cov) * s, joint.k)


# ------------------------------------------------------------------ the reported cases

def _pair(mean, cov, k=1):
    return g.GaussianPair(np.asarray(mean, dtype=float), np.asarray(cov, dtype=float), k)


@pytest.mark.parametrize("joint, argument", [
    (_pair([np.nan, 0.0], np.eye(2)), r"\.mean must be finite"),
    (_pair([np.inf, 0.0], np.eye(2)), r"\.mean must be finite"),
    (_pair([0.0, 0.0], [[1.0, np.nan], [0.5, 1.0]]), r"\.cov must be finite"),   # upper triangle
    (_pair([0.0, 0.0], [[1.0, 0.5], [np.nan, 1.0]]), r"\.cov must be finite"),   # lower triangle
    (_pair([0.0, 0.0], [[1.0, 0.5], [0.9, 1.0]]), r"\.cov must be symmetric"),
    (_pair([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]]), r"\.cov must be positive definite"),
    (_pair([0.0, 0.0], [[np.inf, 0.0], [0.0, 1.0]]), r"\.cov must be finite"),
])
def test_malformed_pairs_are_refused_by_every_function(joint, argument):
    """The message names the argument: joint.cov, p.cov, prior.mean, ... as the function calls it."""
    calls = [g.mutual_information, g.entropy, g.canonical_correlations, g.optimal_critic,
             lambda j: g.infonce_limit(j, g.bilinear_critic(1.0)),
             lambda j: g.rbf_infonce_limit(j, 1.0),
             lambda j: g.kl_divergence(j, unit_pair(0.1)),
             lambda j: g.kl_divergence(unit_pair(0.1), j),
             lambda j: g.cross_entropy(j, unit_pair(0.1)),
             lambda j: g.elbo_decomposition(unit_pair(0.1), j),
             lambda j: g.energy_prior(j, g.bilinear_critic(1.0)),
             lambda j: mc.infonce_bound(j, g.bilinear_critic(1.0), 4, 10)]
    for call in calls:
        with pytest.raises(ValueError, match=r"^(joint|p|q|prior)" + argument):
            call(joint)


def test_an_asymmetric_covariance_no_longer_gives_a_number():
    with pytest.raises(ValueError, match=r"joint\.cov must be symmetric.*joint\.cov\[0, 1\] = 0\.5"):
        g.mutual_information(_pair([0.0, 0.0], [[1.0, 0.5], [0.9, 1.0]]))


@pytest.mark.parametrize("call, error, argument", [
    (lambda: g.cross_entropy("p", unit_pair(0.5)), TypeError, "p must be"),
    (lambda: g.cross_entropy(unit_pair(0.5), (np.zeros(2), [[1.0, np.nan], [0.0, 1.0]])),
     ValueError, "q covariance"),
    (lambda: g.cross_entropy(unit_pair(0.5), (np.zeros(3), np.eye(3))), ValueError, "same dimension"),
    (lambda: g.gaussian_pair(1.0 + 1e-3j, 1.0, 0.5), TypeError, "cov_z must be real"),
    (lambda: g.gaussian_pair(1.0, 1.0, np.array([[0.5 + 0.1j]])), TypeError, "cross_cov must be real"),
    (lambda: g.recognition_joint(np.eye(2), np.eye(1) * (1 + 1j), np.eye(1)), TypeError, "enc must be real"),
    (lambda: g.bilinear_critic(np.array([[1j]])), TypeError, "W must be real"),
    (lambda: g.gaussian_pair("1", 1.0, 0.5), TypeError, "cov_z"),
    (lambda: g.gaussian_pair(None, 1.0, 0.5), TypeError, "cov_z"),
    (lambda: g.gaussian_pair(np.array([[True]]), 1.0, 0.5), TypeError, "cov_z"),
    (lambda: g.gaussian_pair(np.array([[1.0]], dtype=object), 1.0, 0.5), TypeError, "cov_z"),
    (lambda: g.rbf_critic(1e-200, 2), ValueError, "lengthscale must be at least"),
    (lambda: g.rbf_critic(float("nan"), 2), ValueError, "lengthscale"),
    (lambda: g.rbf_critic(-1.0, 2), ValueError, "lengthscale"),
    (lambda: g.rbf_critic(1.0, 2.0), TypeError, "k \\(the dimension"),
    (lambda: g.rbf_critic(1.0, True), TypeError, "k \\(the dimension"),
    (lambda: g.data_constant(np.eye(3), 1.5), TypeError, "dim_x must be an integer"),
    (lambda: g.data_constant(np.eye(3), 3), ValueError, "dim_x must be <= 2"),
    (lambda: g.data_constant(np.eye(1), 1), ValueError, "cov_xx must cover"),
    (lambda: g.optimal_rbf_lengthscale(unit_pair(0.5), grid=10.5), TypeError, "grid"),
    (lambda: g.rbf_infonce_limit(unit_pair(0.5), 0.0), ValueError, "lengthscale"),
    (lambda: g.rbf_infonce_limit(unit_pair(0.5), "1"), TypeError, "lengthscale"),
    (lambda: g.mutual_information(g.GaussianPair(np.zeros(2), np.eye(2), 1.0)), TypeError, "joint.k"),
    (lambda: g.infonce_limit(unit_pair(0.5), g.QuadraticCritic(np.eye(1), np.eye(1), [np.nan])),
     ValueError, "critic.b"),
    (lambda: g.infonce_limit(unit_pair(0.5), g.QuadraticCritic(np.eye(1) * np.inf, np.eye(1), [0.0])),
     ValueError, "critic.W"),
    (lambda: g.infonce_limit(g.gaussian_pair(np.eye(2), np.eye(2), 0.1 * np.eye(2)),
                             g.QuadraticCritic(np.eye(2), [[1.0, 0.3], [0.1, 1.0]], np.zeros(2))),
     ValueError, "critic.Q must be symmetric"),
    (lambda: g.infonce_limit(unit_pair(0.5), g.bilinear_critic(1e200)), ValueError, "critic is too large"),
    (lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 20000), ValueError,
     "n = 20000 needs an 20000 × 20000 score matrix"),
    (lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 4.0), TypeError, "n must be"),
    (lambda: mc.infonce_bound(unit_pair(0.5), g.bilinear_critic(1.0), 4, batches=10, rng=-1),
     ValueError, "rng"),
    (lambda: mc.infonce_bound(unit_pair(0.5), lambda z, zp: np.full(z.shape[:-1] + (z.shape[-2],), np.nan),
                              4, 10), ValueError, "nan"),
    (lambda: mc.infonce_bounds(unit_pair(0.5), [g.bilinear_critic(1.0)], 4, 10), TypeError, "critics"),
    (lambda: mc.sample_pairs(unit_pair(0.5), (2.5,), 0), TypeError, "size"),
])
def test_bad_arguments_get_a_clear_error(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


# ------------------------------------------------------------------ extreme but valid

@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-20, 1e20, 1e200, 1e300])
def test_scaled_one_dimensional_pair_is_exact(scale):
    """gaussian_pair([[s]], [[s]], [[ρ s]]) is a valid, well-conditioned problem at any s:
    I = −½ log(1 − ρ²) (mpmath), h = log(2πe s)/2 + ½ log(1 − ρ²) ... per coordinate."""
    rho = 0.5
    joint = unit_pair(rho, scale)
    true_mi = float(-mpmath.log(1 - mpmath.mpf(rho) ** 2) / 2)
    assert abs(g.mutual_information(joint) - true_mi) <= 4 * EPS * true_mi
    # h(Z, Z') = log(2πe) + ½ log det(s² [[1, ρ], [ρ, 1]]) = log(2πe) + log s + ½ log(1 − ρ²)
    s = mpmath.mpf(scale)
    true_h = float(mpmath.log(2 * mpmath.pi * mpmath.e) + mpmath.log(s) + mpmath.log(1 - rho**2) / 2)
    # Cholesky diagonals are ≈ √s to a few ulps, so log det is off by a few eps absolute
    assert abs(g.entropy(joint) - true_h) <= 1e-14 * max(1.0, abs(true_h))


@pytest.mark.parametrize("scale", [1e-250, 1e-20, 1e-3, 1e3, 1e20, 1e250])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_forms_are_invariant_under_rescaling(scale, seed):
    """z → √s z multiplies every covariance by s. MI and KL are invariant; I_∞ of the
    critic zᵀ(W/s)z' − ½ z'ᵀ(Q/s)z' + (b/√s)ᵀz' equals I_∞ of (W, Q, b) on the unscaled
    joint; the entropy moves by (d/2) log s."""
    joint, other = random_joint(seed), random_joint(seed + 10)
    big, big_other = scaled(joint, scale), scaled(other, scale)
    rng = np.random.default_rng(seed)
    W, b = rng.normal(scale=0.3, size=(2, 2)), rng.normal(scale=0.3, size=2)
    Q = 0.2 * np.eye(2)
    pairs = [
        (g.mutual_information(big), g.mutual_information(joint)),
        (g.kl_divergence(big, big_other), g.kl_divergence(joint, other)),
        (g.infonce_limit(big, g.QuadraticCritic(W / scale, Q / scale, b / math.sqrt(scale))),
         g.infonce_limit(joint, g.QuadraticCritic(W, Q, b))),
        (g.infonce_limit(big, g.optimal_critic(big)), g.mutual_information(joint)),
        (g.rbf_infonce_limit(big, 0.7 * math.sqrt(scale)), g.rbf_infonce_limit(joint, 0.7)),
        (g.entropy(big) - 2 * math.log(scale), g.entropy(joint)),
    ]
    for got, want in pairs:
        assert np.isfinite(got)
        assert abs(got - want) <= SCALED_RTOL * max(1.0, abs(want)), (got, want)


@pytest.mark.parametrize("ell", [1e-150, 1e-100, 1e-3, 0.7, 1e3, 1e100, 1e200, 1e300])
def test_rbf_limit_at_extreme_lengthscales_matches_mpmath(ell):
    """The 1-D unit-variance formula −(1−ρ)/ℓ² − log ℓ + ½ log(1+ℓ²) + 1/(2(1+ℓ²)) at 50
    digits; the float64 result is correctly rounded to within a few ulps (the terms do not
    cancel below the result at either end), including underflow to 0 at ℓ = 1e200."""
    rho = 0.5
    L = mpmath.mpf(ell)
    true = -(1 - mpmath.mpf(rho)) / L**2 - mpmath.log(L) + mpmath.log1p(L**2) / 2 + 1 / (2 * (1 + L**2))
    got = g.rbf_infonce_limit(unit_pair(rho), ell)
    assert abs(got - float(true)) <= 8 * EPS * abs(float(true)) + 1e-300


def test_rbf_limit_overflows_to_minus_infinity_only_when_the_true_value_does():
    """At ℓ = 1e-160, −(1−ρ)/ℓ² = −5e319 is below −1.8e308: −inf is the rounded answer."""
    assert g.rbf_infonce_limit(unit_pair(0.5), 1e-160) == -np.inf
    assert np.isfinite(g.rbf_infonce_limit(unit_pair(0.5), 1e-150))


def test_rbf_critic_at_its_smallest_lengthscale_is_finite():
    critic = g.rbf_critic(g.MIN_LENGTHSCALE, 2)
    assert all(np.all(np.isfinite(a)) for a in critic)


def test_tiny_covariance_scale_is_accepted_with_a_relative_definiteness_threshold():
    joint = g.gaussian_pair([[1e-20]], [[1e-20]], [[0.5e-20]])
    assert abs(g.mutual_information(joint) - (-0.5 * math.log1p(-0.25))) <= 4 * EPS
    # singular at any scale is still refused
    with pytest.raises(ValueError, match="positive definite"):
        g.gaussian_pair([[1e-20]], [[1e-20]], [[1e-20]])


def test_float32_and_integer_inputs_are_computed_in_float64():
    a = g.mutual_information(g.gaussian_pair(np.float32(2.0), np.array([[2]]), np.float32(1.0)))
    assert abs(a - (-0.5 * math.log1p(-0.25))) <= 4 * EPS


def test_transposed_and_non_contiguous_arrays_work():
    rng = np.random.default_rng(3)
    root = rng.normal(size=(8, 8))
    cov = root @ root.T + np.eye(8)
    strided = np.asfortranarray(cov)[::2, ::2]
    joint = g.GaussianPair(np.zeros(4), strided, 2)
    same = g.GaussianPair(np.zeros(4), np.ascontiguousarray(strided), 2)
    assert g.mutual_information(joint) == g.mutual_information(same)


# ------------------------------------------------------------------ fuzz

HOSTILE = [
    np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, 0.0, -1.0, 1j, "x", None, True, [],
    [[1.0, 2.0, 3.0]], np.array([[1.0]], dtype=object), np.ones((2, 2, 2)), np.float32(1e38),
    [[1.0, 0.0], [0.0, np.nan]], [[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.5], [0.0, 1.0]],
]


def _public_calls(bad):
    """Each public Gaussian function with one argument replaced by ``bad``."""
    good = unit_pair(0.5)
    two = g.gaussian_pair(np.eye(2), np.eye(2), 0.3 * np.eye(2))
    critic = g.bilinear_critic(0.5)
    return [
        lambda: g.gaussian_pair(bad, 1.0, 0.5),
        lambda: g.gaussian_pair(1.0, 1.0, bad),
        lambda: g.gaussian_pair(1.0, 1.0, 0.5, mean_z=bad),
        lambda: g.recognition_joint(bad, np.eye(1), np.eye(1), noise_cov=np.eye(1)),
        lambda: g.recognition_joint(np.eye(2), bad, np.eye(1), noise_cov=np.eye(1)),
        lambda: g.recognition_joint(np.eye(2), np.eye(1), np.eye(1), noise_cov=bad),
        lambda: g.recognition_joint(np.eye(2), np.eye(1), np.eye(1), mean_xx=bad),
        lambda: g.mutual_information(g.GaussianPair(bad, good.cov, 1)),
        lambda: g.mutual_information(g.GaussianPair(np.zeros(4), bad, 2)),
        lambda: g.mutual_information(g.GaussianPair(good.mean, good.cov, bad)),
        lambda: g.entropy(bad),
        lambda: g.bilinear_critic(bad),
        lambda: g.rbf_critic(bad, 1),
        lambda: g.rbf_critic(1.0, bad),
        lambda: g.infonce_limit(good, g.QuadraticCritic(bad, critic.Q, critic.b)),
        lambda: g.infonce_limit(good, g.QuadraticCritic(critic.W, bad, critic.b)),
        lambda: g.infonce_limit(good, g.QuadraticCritic(critic.W, critic.Q, bad)),
        lambda: g.infonce_limit(good, bad),
        lambda: g.rbf_infonce_limit(good, bad),
        lambda: g.kl_divergence(good, (bad, good.cov)),
        lambda: g.kl_divergence(good, (good.mean, bad)),
        lambda: g.kl_divergence(good, bad),
        lambda: g.cross_entropy(good, (good.mean, bad)),
        lambda: g.cross_entropy(bad, good),
        lambda: g.energy_prior(two, bad),
        lambda: g.elbo_decomposition(good, bad),
        lambda: g.data_constant(bad, 1),
        lambda: g.data_constant(np.eye(2), bad),
        lambda: g.optimal_rbf_lengthscale(good, grid=bad),
        lambda: mc.infonce_bound(good, critic, bad, 10),
        lambda: mc.infonce_bound(good, critic, 4, bad),
        lambda: mc.infonce_bound(good, critic, 4, 10, rng=bad),
    ]


def _outcome(call):
    try:
        value = call()
    except (ValueError, TypeError) as err:
        assert str(err).strip(), "an error needs a message"
        return "error"
    leaves = value if isinstance(value, tuple) else (value,)
    for leaf in leaves:
        if isinstance(leaf, (tuple, list)):
            continue
        arr = np.asarray(leaf, dtype=float)
        assert not np.isnan(arr).any(), f"NaN result {value!r}"
    return "value"


N_CALLS = len(_public_calls(None))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=st.sampled_from(HOSTILE), which=st.integers(0, N_CALLS - 1))
def test_fuzz_hostile_arguments_get_a_value_or_a_clear_error(bad, which):
    """Never NaN, never another exception type (a LinAlgError, an IndexError, ...)."""
    _outcome(_public_calls(bad)[which])


def test_fuzz_every_hostile_argument_in_every_slot():
    """The exhaustive grid behind the hypothesis test above: every hostile value in every
    argument slot (len(HOSTILE) × N_CALLS cases), counted."""
    outcomes = {"error": 0, "value": 0}
    for bad in HOSTILE:
        for call in _public_calls(bad):
            outcomes[_outcome(call)] += 1
    assert sum(outcomes.values()) == len(HOSTILE) * N_CALLS
    assert outcomes["error"] > outcomes["value"]   # nearly every hostile value is refused


@pytest.mark.parametrize("rho", [1e-9, 1e-4, 0.3, 0.4999999, 0.5, 0.6, -0.9, 1 - 7e-9,
                                 -(1 - 1e-13)])
def test_mutual_information_keeps_its_relative_precision_from_tiny_to_near_1(rho):
    """−½ log(1 − ρ²) against mpmath at 60 digits, to a few ulps of the value: forming ρ²
    lost ~1e-16/(1 − ρ²) of 1 − ρ² near |ρ| = 1 (2e-9 nats at 1 − ρ = 7e-9), and
    log1p(−ρ) + log1p(ρ), which avoids that, cancels to nothing as ρ → 0 (the value ρ²/2
    came out with relative error 1.5e-7 at ρ = 1e-9): each is used where it is exact."""
    with mpmath.workdps(60):
        exact = float(-mpmath.log(1 - mpmath.mpf(rho) ** 2) / 2)
    assert g.mutual_information(unit_pair(rho)) == pytest.approx(exact, rel=8 * EPS, abs=0)


@pytest.mark.parametrize("mi", [8.0, 12.0, 15.0, 17.0])
def test_infonce_limit_near_perfect_correlation_stays_at_or_below_the_mi(mi):
    """1 − ρ² = e^{−2I} down to 1.7e-15: E[f] and E log Z, evaluated apart, hold terms of
    size e^{2I} whose cancellation lost eps·e^{2I} nats (0.013 at I = 17). I_∞ of the
    optimal critic must equal I (E4), to a few ulps of the O(I) terms, given the one
    rounding every matrix route shares: the conditional variance C' − S²/C = 1 − fl(ρ·ρ)
    (relative error up to eps·e^{2I}), so the reference is −½ log1p(−fl(ρ·ρ)). I itself,
    from the canonical correlation σ = ρ (exact here) as log1p(−σ) + log1p(σ), matches
    mpmath's −½ log(1 − ρ²) at 60 digits to a few ulps (forming σ² cost it 2e-9 nats at
    1 − ρ = 7e-9). I_∞ of the RBF critic must equal its own closed form (a separate
    route, in log lengthscale)."""
    rho = math.sqrt(-math.expm1(-2 * mi))
    joint = unit_pair(rho)
    info = g.mutual_information(joint)
    tol = 64 * EPS * mi   # log det P ≈ 2I and ~10 roundings of size I
    with mpmath.workdps(60):
        exact = float(-mpmath.log(1 - mpmath.mpf(rho) ** 2) / 2)
    assert abs(info - exact) <= 4 * EPS * mi
    optimal = g.infonce_limit(joint, g.optimal_critic(joint))
    shared = -0.5 * math.log1p(-rho * rho)
    assert abs(optimal - shared) <= tol and optimal <= shared + tol
    # the RBF critic's P = 1 + 1/ℓ² meets Σ = C' − S²/C, whose subtraction is exact only
    # to eps·C': its rounding, times P, is the difference from the other route
    ell = g.optimal_rbf_lengthscale(joint)
    rbf_tol = tol + 8 * EPS * (1 + 1 / ell**2)
    assert g.infonce_limit(joint, g.rbf_critic(ell, 1)) == pytest.approx(
        g.rbf_infonce_limit(joint, ell), abs=rbf_tol)


@pytest.mark.parametrize("scale", [1e-300, 1e-165, 1e-100, 1e100, 1e155, 1e300])
def test_optimal_rbf_lengthscale_scales_with_the_covariances(scale):
    """ℓ* of the pair with every covariance times s is √s ℓ* (z → √s z): no NaN and no
    warning where (λ + ℓ²)² would overflow (s = 1e155) or underflow (s = 1e-165)."""
    reference = g.optimal_rbf_lengthscale(unit_pair(0.6))
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow is harmless
        ell = g.optimal_rbf_lengthscale(unit_pair(0.6, scale))
    assert ell == pytest.approx(reference * math.sqrt(scale), rel=SCALED_RTOL)


# ------------------------------------------------------------------ KL and cross-entropy at any ratio

def _kl_1d_mpmath(var_p, var_q, mean_p=0.0, mean_q=0.0):
    """½(λ − 1 − log λ) + ½ δ²/σq² at 50 digits, λ = σp²/σq², from the float64 inputs."""
    vp, vq = mpmath.mpf(var_p), mpmath.mpf(var_q)
    lam, delta = vp / vq, mpmath.mpf(mean_q) - mpmath.mpf(mean_p)
    return (lam - 1 - mpmath.log(lam)) / 2 + delta**2 / (2 * vq)


#: Relative tolerance of one term ½(λ − 1 − log λ) of the KL. For |λ − 1| ≤ ¼ the series
#: t²(½ − t(⅓ − …)) rounds in each bracket, damped by |t| ≤ ¼: ≲ 3 eps. For λ in [½, 2],
#: t − log1p(t) with t exact carries eps/2·|log1p t| / (t − log1p t) ≤ 4.2 eps (at |t| = ¼).
#: Elsewhere λ/2 − ½ − ½ log λ carries eps/2·(λ + 1 + |log λ|)/(λ − 1 − log λ) ≤ 6 eps (at
#: λ = 2 and ½). The 1-D whitening is exact (Cholesky of 1, or of a power of two). 8 eps.
KL_TERM_RTOL = 8 * EPS


@pytest.mark.parametrize("lam", [
    1e-300, 1e-200, 1e-17, 1e-16, 1e-15, 1e-3, 0.3, 0.5, 0.6, 0.74, 0.75, 0.76, 0.9,
    1 - 1e-6, 1 - 1e-10, 1 - 2 * EPS, 1 + 2 * EPS, 1 + 1e-10, 1 + 1e-6, 1.1, 1.24, 1.25, 1.26,
    1.5, 1.99, 2.0, 2.01, 3.0, 1e3, 1e17, 1e200, 1e300])
def test_kl_divergence_of_a_variance_ratio_matches_mpmath(lam):
    """KL(N(0, λ) ‖ N(0, 1)) = ½(λ − 1 − log λ) to a few ulps relative for every λ: λ − 1
    formed first and then log1p(λ − 1) lost all digits at λ = 1e-17 (inf instead of 19.07),
    and t − log1p(t) lost ~t relative digits next to 1 (1e-6 relative at t = 1e-10)."""
    true = _kl_1d_mpmath(lam, 1.0)
    got = g.kl_divergence((np.zeros(1), lam * np.eye(1)), (np.zeros(1), np.eye(1)))
    assert abs(got - float(true)) <= KL_TERM_RTOL * float(true)


@pytest.mark.parametrize("var_p, var_q", [
    (1e-200, 1e200), (1e-300, 1e300), (1e-300, 1e-100), (5e-324, 1.0), (5e-324, 1e308),
    (1e150, 1e-150), (1e300, 1e150), (1.5e-323, 5e-324), (1e308, 1.7e308)])
def test_kl_divergence_beyond_the_float64_range_of_the_ratio_matches_mpmath(var_p, var_q):
    """λ = 1e-400 or 1e-632 underflows, 1e300 fits but 1/λ does not: the KL itself is
    ½(λ − 1 − log λ), finite; it needs log λ, not λ. The formula's terms do not cancel
    (λ far from 1) and log λ = log μ + n·log 4 adds ~|log λ|·eps: 8 eps relative."""
    true = float(_kl_1d_mpmath(var_p, var_q))
    got = g.kl_divergence((np.zeros(1), [[var_p]]), (np.zeros(1), [[var_q]]))
    assert np.isfinite(got)
    assert abs(got - true) <= KL_TERM_RTOL * true


@pytest.mark.parametrize("p, q", [
    ((np.zeros(1), [[1e200]]), (np.zeros(1), [[1e-200]])),            # λ = 1e400
    ((np.zeros(1), [[1e308]]), (np.zeros(1), [[5e-324]])),            # λ = 2e631
    ((np.zeros(2), np.diag([1.0, 1e300])), (np.zeros(2), np.diag([1.0, 1e-300]))),
    ((np.zeros(1), [[1.0]]), (np.full(1, 1e200), [[1e-200]])),        # δ²/σq² = 1e600
    ((np.full(1, -1e308), [[1e-10]]), (np.full(1, 1e308), [[1e-10]])),  # δ = 2e308 overflows
])
def test_kl_divergence_that_overflows_is_inf_without_a_warning(p, q):
    """The exact KL exceeds 1.8e308: +inf, never NaN (λ = inf met −log λ = −inf, and
    λ − 1 − log1p(λ − 1) was inf − inf), and no RuntimeWarning."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g.kl_divergence(p, q) == np.inf
        assert g.cross_entropy(p, q) == np.inf


def test_kl_divergence_near_the_top_of_the_range_is_finite_when_the_true_value_is():
    """½λ with λ in (1.8e308, 3.6e308), and ½δ²/σq² with δ = 2e308 (μq − μp overflows, the
    KL is 1.18e308): finite. Both are single products of exact powers of two and two
    roundings: 4 eps relative."""
    true = float(_kl_1d_mpmath(1e308, 0.4))                         # ½·2.5e308 − …
    got = g.kl_divergence((np.zeros(1), [[1e308]]), (np.zeros(1), [[0.4]]))
    assert abs(got - true) <= 4 * EPS * true
    true = float(_kl_1d_mpmath(1.0, 1.7e308, -1e308, 1e308))
    got = g.kl_divergence((np.full(1, -1e308), [[1.0]]), (np.full(1, 1e308), [[1.7e308]]))
    assert abs(got - true) <= 4 * EPS * true
    # equal huge means over a tiny variance: μ·F would overflow, μq − μp = 0 does not
    same = (np.full(1, 1e300), [[1e-300]])
    assert g.kl_divergence(same, same) == 0.0


def test_kl_divergence_of_a_rotated_pair_matches_the_eigenvalue_formula_in_mpmath():
    """2-D, Σq correlated and Σp rotated: whitening is a genuine Cholesky/solve/eigh, and
    one λ sits at 1 + 1e-6 (where λ − 1 − log λ ≈ ½t² = 5e-13 cancels ~12 digits in the log
    form). Reference: Σq⁻¹Σp's eigenvalues and δᵀΣq⁻¹δ in mpmath at 50 digits.
    An eigen-decomposition resolves eigenvalues to ~d·eps·λmax absolute (λmax ≈ 2 with
    cond Σq ≈ 3), so log λmin (λmin ≈ 0.005) is off by ≲ 10·2·eps·2/0.005 ≈ 1.8e-12; the
    near-1 term is off by t·δt ≈ 1e-6·1e-15, nothing. Tolerance 1e-11 absolute (5×)."""
    angle = 0.3
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    cov_q = np.array([[2.0, 0.5], [0.5, 1.0]])
    low = np.linalg.cholesky(cov_q)
    cov_p = low @ rot @ np.diag([0.01, 1 + 1e-6]) @ rot.T @ low.T
    cov_p = 0.5 * (cov_p + cov_p.T)
    mean_p, mean_q = np.array([0.1, -0.2]), np.array([0.3, 0.4])
    P, Q = mpmath.matrix(cov_p.tolist()), mpmath.matrix(cov_q.tolist())
    inv_low = mpmath.cholesky(Q) ** -1
    eig = mpmath.eigsy(inv_low * P * inv_low.T)[0]
    assert abs(eig[1] - 1) < 2e-6                      # the near-1 eigenvalue is exercised
    delta = mpmath.matrix((mean_q - mean_p).tolist())
    true = (sum(e - 1 - mpmath.log(e) for e in eig) + (delta.T * Q ** -1 * delta)[0]) / 2
    got = g.kl_divergence((mean_p, cov_p), (mean_q, cov_q))
    assert abs(got - float(true)) <= 1e-11


def test_cross_entropy_at_extreme_scales_matches_mpmath():
    """½[log 2π + log σq² + σp²/σq² + δ²/σq²]: no overflow of tr(Σq⁻¹Σp) at 1e-200/1e200,
    subnormal σ² accepted. Terms of size ≤ 370 with a few roundings each: 8 eps × 370."""
    for var_p, var_q, mean_q in [(1e-200, 1e200, 1e100), (1.5e-323, 5e-324, 5e-324),
                                 (1e300, 1e200, 0.0)]:
        vp, vq, mq = mpmath.mpf(var_p), mpmath.mpf(var_q), mpmath.mpf(mean_q)
        true = float((mpmath.log(2 * mpmath.pi) + mpmath.log(vq) + vp / vq + mq**2 / vq) / 2)
        got = g.cross_entropy((np.zeros(1), [[var_p]]), (np.full(1, mean_q), [[var_q]]))
        assert abs(got - true) <= 8 * EPS * max(abs(true), 370.0)


# ------------------------------------------------------------------ subnormal and huge covariances

@pytest.mark.parametrize("var", [5e-324, 1.5e-323, 1e-320, 2.2250738585072014e-308, 1e308,
                                 1.7976931348623157e308])
def test_entropy_of_a_subnormal_or_huge_variance_is_exact(var):
    """h = ½ log(2πe σ²) for σ² = 5e-324 (refused as 'smallest eigenvalue 0.0': ½·5e-324
    rounds to 0 when symmetrising) and 1.5e-323 (computed for 2e-323). The power-of-two
    equilibration is exact; ½(log 2πe + 2 log l + 2h log 2) rounds ~4 times on terms ≤ 745:
    4 eps × 745 absolute."""
    true = float(mpmath.log(2 * mpmath.pi * mpmath.e * mpmath.mpf(var)) / 2)
    assert abs(g.entropy(np.array([[var]])) - true) <= 4 * EPS * 745
    assert abs(g.entropy(var) - true) <= 4 * EPS * 745


def test_a_subnormal_pair_is_accepted_and_kept_exact():
    """gaussian_pair(5e-324, 5e-324, 0) was refused; the pair's entries are returned
    unchanged, and a correlated subnormal pair (integer multiples of 2^-1074, so every
    power-of-two rescaling is exact) has the correlation and MI of the unit pair."""
    tiny = 5e-324
    joint = g.gaussian_pair(tiny, tiny, 0.0)
    assert np.array_equal(joint.cov, [[tiny, 0.0], [0.0, tiny]])
    assert g.mutual_information(joint) == 0.0
    true_h = float(mpmath.log(2 * mpmath.pi * mpmath.e * mpmath.mpf(tiny)))   # two coordinates
    assert abs(g.entropy(joint) - true_h) <= 8 * EPS * 745
    # C = C' = 8·2^-1074, S = 4·2^-1074: ρ = ½, I = −½ log ¾ (mpmath); one Cholesky, svd,
    # log1p: a few ulps of 0.14
    pair = g.gaussian_pair(8 * tiny, 8 * tiny, 4 * tiny)
    true_mi = float(-mpmath.log(mpmath.mpf(3) / 4) / 2)
    assert abs(g.mutual_information(pair) - true_mi) <= 8 * EPS * true_mi
    assert abs(g.canonical_correlations(pair)[0] - 0.5) <= 4 * EPS    # a Cholesky and an svd


def test_check_positive_definite_keeps_subnormal_and_huge_symmetric_entries():
    from rpmref.exact.validation import check_positive_definite
    tiny = np.array([[5e-324]])
    assert np.array_equal(check_positive_definite(tiny, "cov"), tiny)
    huge = np.array([[1.7e308, 1.6e308], [1.6e308, 1.7e308]])     # no overflow in (A + Aᵀ)/2
    assert np.array_equal(check_positive_definite(huge, "cov"), huge)
    with pytest.raises(ValueError, match="cov must be positive definite"):
        check_positive_definite(np.array([[1.7e308, 1.7e308], [1.7e308, 1.7e308]]), "cov")


def test_entropy_of_a_huge_correlated_covariance_matches_mpmath():
    """[[1e308, ½e308], [½e308, 1e308]]: log det = log(0.75e616), beyond float64 as a
    determinant, fine as a log. Terms ≤ 1420 with a few roundings: 8 eps × 1420."""
    cov = np.array([[1e308, 0.5e308], [0.5e308, 1e308]])
    M = mpmath.matrix(cov.tolist())
    true = float(mpmath.log(2 * mpmath.pi * mpmath.e) + mpmath.log(mpmath.det(M)) / 2)
    assert abs(g.entropy(cov) - true) <= 8 * EPS * 1420


def test_kl_and_mi_at_subnormal_scale_equal_the_unit_scale_values():
    """Covariances of small integers times 2^-1070 (exact subnormals), means times 2^-535:
    KL and MI are invariant under z → 2^-535 z, and the power-of-two equilibration makes the
    computation the same one as at scale 1, to rounding: SCALED_RTOL."""
    joint = g.GaussianPair(np.array([1.0, -2.0, 0.0]),
                           np.array([[4.0, 1.0, 2.0], [1.0, 3.0, 1.0], [2.0, 1.0, 5.0]]), 1)
    other = g.GaussianPair(np.array([0.0, 1.0, 1.0]),
                           np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]), 1)
    s, r = 2.0 ** -1070, 2.0 ** -535

    def shrink(j):
        return g.GaussianPair(j.mean * r, j.cov * s, j.k)
    assert np.all(shrink(joint).cov[shrink(joint).cov != 0] < 2.2e-308)      # subnormal
    pairs = [(g.kl_divergence(shrink(joint), shrink(other)), g.kl_divergence(joint, other)),
             (g.mutual_information(shrink(joint)), g.mutual_information(joint))]
    for got, want in pairs:
        assert abs(got - want) <= SCALED_RTOL * abs(want)


def test_rbf_limit_of_a_pair_near_the_largest_double_is_finite():
    """C = C' = 1e308, S = ½e308: tr C + tr C' overflowed to inf, giving −inf. At ℓ = 0.7·√s
    the value is the unit-variance formula at ℓ = 0.7 (z → √s z), evaluated in mpmath; the
    two routes differ by the rounding of ℓ/√s and a few operations: SCALED_RTOL."""
    s, rho, ell = 1e308, 0.5, 0.7
    L = mpmath.mpf(ell)
    true = float(-(1 - mpmath.mpf(rho)) / L**2 - mpmath.log(L) + mpmath.log1p(L**2) / 2
                 + 1 / (2 * (1 + L**2)))
    got = g.rbf_infonce_limit(unit_pair(rho, s), ell * math.sqrt(s))
    assert abs(got - true) <= SCALED_RTOL * abs(true)


@pytest.mark.parametrize("magnitude", [1e16, 1e200, 1e308])
def test_infonce_per_batch_keeps_log_n_at_scores_near_the_float64_maximum(magnitude):
    """Bug: f_ii − logsumexp(f_i·) rounded log Σ e^{f − max} (≤ log N) away at |f| ≥ 1e16: a
    constant critic of 1e308 gave I_N = log N instead of 0. mpmath: log-softmax from the
    differences f_ij − f_ii at 50 digits; tolerance 4 ε (N + 2)(|true| + log N + 1)."""
    from rpmref.gaussian.monte_carlo import infonce_per_batch
    rng = np.random.default_rng(0)
    scores = magnitude * rng.uniform(-0.5, 1.0, size=(2, 5, 5))
    scores[1] = magnitude                                       # constant critic: I_N = 0
    with mpmath.workdps(50):
        expected = []
        for batch in scores:
            terms = [-mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - mpmath.mpf(row[i]))
                                             for v in row)) for i, row in enumerate(batch)]
            expected.append(float(mpmath.fsum(terms) / 5 + mpmath.log(5)))
    got = infonce_per_batch(scores)
    assert got[1] == 0.0 or abs(got[1]) <= 4 * np.finfo(float).eps * 7 * (np.log(5) + 1)
    for g, e in zip(got, expected):
        assert abs(g - e) <= 4 * np.finfo(float).eps * 7 * (abs(e) + np.log(5) + 1)
