"""The Gaussian closed forms and Monte Carlo under hostile but valid input: means far from
each other compared with the spread of z and z', covariances below the normal float64
range, critics whose scores leave it.

References are independent of the code's formulas: one-dimensional closed forms in mpmath
(at enough digits that their own cancellations cost nothing), exact identities (a zero
critic has I_∞ = 0 and the product of the marginals as its energy prior) and invariance
under z → 2^e z with exactly representable (dyadic) entries.
"""
import math

import autograd
import autograd.numpy as anp
import mpmath
import numpy as np
import pytest

import rpmref.gaussian as g
from rpmref.gaussian import monte_carlo as mc

EPS = float(np.finfo(np.float64).eps)


def unit_pair(rho, mean_z=0.0, mean_z_prime=0.0, scale=1.0):
    return g.gaussian_pair(scale, scale, rho * scale, mean_z=mean_z, mean_z_prime=mean_z_prime)


# ------------------------------------------------------------------ RBF critic, offset means

def _rbf_1d(rho, d, ell):
    """I_∞ of the RBF critic for unit variances, correlation ρ and E z − E z' = d (the
    formula of rbf_infonce_limit's docstring with B = 1 + d²), and the size of its terms
    once the d² parts are combined: (spread + 1)/(2u) + ½ log1p(1/u) + ½ d²/(u(1 + u))."""
    with mpmath.workdps(60 + 2 * int(mpmath.log10(1 + abs(mpmath.mpf(d))))):
        rho, d, ell = mpmath.mpf(rho), mpmath.mpf(d), mpmath.mpf(ell)
        u = ell**2
        value = -(2 * (1 - rho) + d**2) / (2 * u) + mpmath.log1p(1 / u) / 2 + (1 + d**2) / (2 * (1 + u))
        size = (2 * (1 - rho) + 1) / (2 * u) + mpmath.log1p(1 / u) / 2 + d**2 / (2 * u * (1 + u))
        return value, size


@pytest.mark.parametrize("d, ell", [
    (1e3, 10.0), (1e6, 1e3), (1e6, 1e6), (1e10, 1e5), (1e10, 1e10), (1e10, 1e12),
    (1e100, 1e99), (1e200, 1e150), (1e200, 1e200), (1e300, 1e200), (1e300, 1e300),
    (-1e10, 1e8), (1e-100, 1e-100), (1.0, 1e-10)])
def test_rbf_limit_with_far_apart_means_matches_mpmath(d, ell):
    """Bug: −E‖z − z'‖²/(2ℓ²) and ½ tr((C' + ℓ²)⁻¹ dd ᵀ) each hold d²/(2ℓ²) and cancel
    to −½ d² C'/(ℓ²(C' + ℓ²)): at d = 1e6, ℓ = 1e3 the result lost 10 digits, at d = 1e10,
    ℓ = 1e10 all of them (0 for 1e-21), and d² = 1e400 overflowed to −inf. With the mean
    part formed as that one quadratic form, each of the four terms is a few roundings
    (≲ 10 eps relative) of a number no larger than the term sizes of _rbf_1d: 16 eps; where
    the value lies below the normal range (ℓ = 1e200: ~1e-402) each rounding may add up to
    2^-1074 absolute: 16 of them."""
    want, size = _rbf_1d(0.6, d, ell)
    got = g.rbf_infonce_limit(unit_pair(0.6, mean_z=d), ell)
    assert np.isfinite(got)
    assert abs(got - want) <= 16 * EPS * size + 16 * 2.0**-1074, (got, float(want))


def test_rbf_limit_of_means_too_far_apart_is_minus_infinity():
    """d = 1e300, ℓ = 1e10: the mean part −½ d²/(ℓ²(1 + ℓ²)) ≈ −5e559 is below −1.8e308
    and nothing else is larger than log terms: −inf, without a warning."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow is harmless
        got = g.rbf_infonce_limit(unit_pair(0.6, mean_z=1e300), 1e10)
    assert got == -np.inf


def _rbf_1d_argmax(rho, d):
    """ℓ* for unit variances, correlation ρ, mean offset d: the root in u = ℓ² of
    dI/du = (2(1−ρ) + d²)/(2u²) − 1/(2u(1+u)) − (1 + d²)/(2(1+u)²), times u²/(1 + d²) > 0
    (so that the root finder's absolute tolerance is relative to the terms), bracketed on a
    grid of log u and polished by mpmath at 80 digits more than d² needs."""
    with mpmath.workdps(80 + 2 * int(mpmath.log10(1 + abs(mpmath.mpf(d))))):
        rho, d = mpmath.mpf(rho), mpmath.mpf(d)

        def slope(t):
            u = mpmath.exp(t)
            return ((2 * (1 - rho) + d**2) / 2 - u / (2 * (1 + u))
                    - (1 + d**2) * u**2 / (2 * (1 + u)**2)) / (1 + d**2)
        centre = 2 * mpmath.log(1 + abs(d))
        grid = [centre + mpmath.mpf(i) / 8 for i in range(-200, 800)]
        for a, b in zip(grid, grid[1:]):
            if slope(a) > 0 >= slope(b):
                return mpmath.sqrt(mpmath.exp(mpmath.findroot(slope, (a, b), solver="anderson")))
        raise AssertionError("no maximum bracketed")


@pytest.mark.parametrize("d", [100.0, 1e4, 1e6, 1e10, 1e100, 1e200, -1e10])
def test_optimal_rbf_lengthscale_with_far_apart_means_matches_mpmath(d):
    """Bug: the objective maximised carried the same cancellation as rbf_infonce_limit:
    ℓ* was off by 1e-8 relative at d = 1e4, 5e-5 at d = 1e6, and inf (no maximum found) at
    d = 1e10 (truth 1.29e10). The slope is now a sum of terms without cancellation of size
    ~ its own; the root in log u is found to ~1e-14 (the stopping rule), and ℓ = e^{(log u)/2}
    adds a few ulps: 1e-12 relative."""
    want = _rbf_1d_argmax(0.6, d)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = g.optimal_rbf_lengthscale(unit_pair(0.6, mean_z=d))
    assert abs(got - want) <= 1e-12 * want, (got, float(want))


def test_rbf_routes_take_means_at_opposite_ends_of_the_float64_range():
    """m = 0.6e308, m' = −0.4e308: m − m' = 1e308 is formed as ½m − ½m' (exact) times 2.
    I_∞ at ℓ = 1e160 against _rbf_1d (tolerance as above); ℓ* = 1.29e308 against mpmath
    (as above); with m − m' = 2e308, ℓ* ≈ 2.6e308 is beyond float64: a ValueError."""
    joint = unit_pair(0.6, mean_z=0.6e308, mean_z_prime=-0.4e308)
    want, size = _rbf_1d(0.6, mpmath.mpf(0.6e308) + mpmath.mpf(0.4e308), 1e160)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow is harmless
        got = g.rbf_infonce_limit(joint, 1e160)
        ell = g.optimal_rbf_lengthscale(joint)
    assert abs(got - want) <= 16 * EPS * size + 16 * 2.0**-1074, (got, float(want))
    want_ell = _rbf_1d_argmax(0.6, mpmath.mpf(0.6e308) + mpmath.mpf(0.4e308))
    assert abs(ell - want_ell) <= 1e-12 * want_ell
    with pytest.raises(ValueError, match="beyond the float64 range"):
        g.optimal_rbf_lengthscale(unit_pair(0.6, mean_z=1e308, mean_z_prime=-1e308))


@pytest.mark.parametrize("d, ell", [(1e6, 1e3), (1e3, 10.0), (3.0, 0.5), (1e-3, 1e-2), (1e100, 1e99)])
def test_rbf_limit_gradient_with_far_apart_means_matches_mpmath(d, ell):
    """autograd through the power-of-two splitting of d and ℓ: ∂I_∞/∂m and ∂I_∞/∂ℓ of the
    1-D formula, differentiated by mpmath at enough digits. Each derivative is again a few
    terms without cancellation of size ≤ |d|/ℓ² + 1/ℓ: 64 eps of the larger of the two."""
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])

    def at_mean(m):
        return g.rbf_infonce_limit(g.GaussianPair(anp.stack([m, 0.0]), cov, 1), ell)

    def at_ell(length):
        return g.rbf_infonce_limit(g.GaussianPair(np.array([d, 0.0]), cov, 1), length)
    with mpmath.workdps(60 + 4 * int(mpmath.log10(1 + abs(mpmath.mpf(d))))):
        rho, D, L = mpmath.mpf(0.6), mpmath.mpf(d), mpmath.mpf(ell)
        want_d = -D / L**2 + D / (1 + L**2)
        want_l = ((2 * (1 - rho) + D**2) / L**3 - 1 / (L * (1 + L**2))
                  - (1 + D**2) * L / (1 + L**2)**2)
        size = abs(D) / L**2 + 1 / L + (1 + D**2) / L**3
    assert abs(autograd.grad(at_mean)(d) - want_d) <= 64 * EPS * (abs(D) / L**2)
    assert abs(autograd.grad(at_ell)(ell) - want_l) <= 64 * EPS * size


# ------------------------------------------------------------------ quadratic critics: means, scales

@pytest.mark.parametrize("scale, mean", [(1.0, 1e10), (1e-20, 1e10), (1e-20, 1e-5), (1e20, 1e25),
                                         (1e-300, 1e-140), (1e300, 1e160), (1.0, -1e15)])
def test_a_zero_critic_has_infonce_limit_zero_and_the_product_of_marginals_as_energy_prior(
        scale, mean):
    """f ≡ 0: I_∞ = E[0] − E log E e^0 = 0 and P_θ = p(z) p(z') exactly, whatever the means.
    Bug: δ₀ = m' − P⁻¹(C'⁻¹m' + b + Wᵀm) subtracted m' from its own rounding, and δ₀ᵀPδ₀
    made that eps·|m'| an error of eps²m'²/C': I_∞ = −4.5e7 at C' = 1e-20, |m'| = 7e9.
    With δ₀ = P⁻¹(Qm' − b − Wᵀm) the mean part is exactly 0 here; what is left are log
    determinants and traces of O(|log s| + 1) with a few roundings each: 32 eps·(1 + |log s|)
    per dimension (k' = 2). The energy prior's means are m and m' exactly, its cross
    covariance exactly 0, and its C' block C' to a few roundings of inv(inv(C'))."""
    rng = np.random.default_rng(3)
    root = rng.normal(size=(4, 4))
    cov = (root @ root.T / 4 + 0.5 * np.eye(4)) * scale
    m = rng.normal(size=4) * mean
    joint = g.GaussianPair(m, cov, 2)
    zero = g.QuadraticCritic(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2))
    value = g.infonce_limit(joint, zero)
    assert abs(value) <= 2 * 32 * EPS * (1 + abs(math.log(scale)))
    prior = g.energy_prior(joint, zero)
    assert np.array_equal(prior.mean, m)
    assert np.array_equal(prior.cov[:2, 2:], np.zeros((2, 2)))
    assert np.array_equal(prior.cov[:2, :2], cov[:2, :2])
    cond = np.linalg.cond(cov[2:, 2:])
    assert np.allclose(prior.cov[2:, 2:], cov[2:, 2:], rtol=0, atol=16 * EPS * cond * scale * 4)


#: A joint and a critic of small dyadic numbers: multiplying covariances by 2^-1030, means by
#: 2^-515 and the critic's W, Q by 2^1030 and b by 2^515 (z → 2^-515 z) is exact, and leaves
#: I_∞, the energy prior (rescaled back) and the optimal critic's I_∞ unchanged.
_DYADIC_COV = np.array([[4.0, 1.0, 2.0, 0.5], [1.0, 3.0, 1.0, 0.25],
                        [2.0, 1.0, 5.0, 1.0], [0.5, 0.25, 1.0, 2.0]])
_DYADIC_MEAN = np.array([1.0, -2.0, 0.5, 0.75])
_DYADIC_CRITIC = g.QuadraticCritic(np.array([[0.5, 0.25], [-0.125, 0.375]]) / 64,
                                   np.array([[0.25, 0.0625], [0.0625, 0.5]]) / 64,
                                   np.array([0.125, -0.25]) / 64)


def _shrunk(e):
    """The dyadic joint and critic under z → 2^e z."""
    joint = g.GaussianPair(np.ldexp(_DYADIC_MEAN, e), np.ldexp(_DYADIC_COV, 2 * e), 2)
    W, Q, b = _DYADIC_CRITIC
    return joint, g.QuadraticCritic(np.ldexp(W, -2 * e), np.ldexp(Q, -2 * e), np.ldexp(b, -e))


@pytest.mark.parametrize("e", [-515, -514, -512, 500, 505])
def test_quadratic_critics_on_a_subnormal_or_huge_joint_equal_the_unit_scale_values(e):
    """Covariances of 2^-1030 (subnormal: C'⁻¹ overflows) were refused with 'critic.Q is too
    negative' by infonce_limit and energy_prior, even for Q = 0. The closed forms are
    invariant under z → 2^e z; both sides are the same few 2 × 2 Cholesky/solve steps on
    well-conditioned (cond < 20) matrices: 64·eps·cond relative to the O(1) terms. The
    energy prior, mapped back by 2^-e, equals the unit-scale one (entries of O(1) to
    64·eps·cond; the subnormal ones to within their spacing, 2^-1074, as well)."""
    joint, critic = _shrunk(e)
    unit_joint, unit_critic = _shrunk(0)
    want = g.infonce_limit(unit_joint, unit_critic)
    tol = 64 * EPS * 20
    assert abs(g.infonce_limit(joint, critic) - want) <= tol * max(1.0, abs(want))
    prior, unit_prior = g.energy_prior(joint, critic), g.energy_prior(unit_joint, unit_critic)
    assert np.all(np.abs(np.ldexp(prior.mean, -e) - unit_prior.mean)
                  <= tol + np.ldexp(2.0**-1074, -e))
    assert np.all(np.abs(np.ldexp(prior.cov, -2 * e) - unit_prior.cov)
                  <= tol + np.ldexp(2.0**-1074, -2 * e))
    # the Gaussian pair's own invariants: MI of the energy prior, and KL to the joint
    assert abs(g.kl_divergence(joint, prior) - g.kl_divergence(unit_joint, unit_prior)) <= tol


def test_optimal_critic_of_a_subnormal_joint_is_refused_by_name_when_it_overflows():
    """At covariances ~2^-1030 the optimal critic's W and Q are ~2^1030: beyond float64.
    Bug: optimal_critic returned W = inf, Q = nan, b = nan (and optimal_bilinear_critic
    complained that 'W must be finite', an argument the caller never passed). At 2^-1000
    both are finite and the optimal critic's I_∞ is the MI (E4, to 64·eps·cond)."""
    joint, _ = _shrunk(-515)
    with pytest.raises(ValueError, match="optimal critic.*float64"):
        g.optimal_critic(joint)
    with pytest.raises(ValueError, match="optimal bilinear critic.*float64"):
        g.optimal_bilinear_critic(joint)
    joint, _ = _shrunk(-500)
    info = g.mutual_information(_shrunk(0)[0])
    assert abs(g.infonce_limit(joint, g.optimal_critic(joint)) - info) <= 64 * EPS * 20
    W = g.optimal_bilinear_critic(joint)
    want = g.infonce_limit(_shrunk(0)[0], g.optimal_bilinear_critic(_shrunk(0)[0]))
    assert abs(g.infonce_limit(joint, W) - want) <= 64 * EPS * 20


# ------------------------------------------------------------------ Monte Carlo I_N

def _scores_shape(z):
    return z.shape[:-1] + (z.shape[-2],)


def test_monte_carlo_refuses_quadratic_scores_beyond_float64_instead_of_returning_nan():
    """W = 1e308 passes the critic's own checks, but zᵢᵀWz'ⱼ overflows for |zᵢ z'ⱼ| > 1.8:
    the estimate was (nan, nan). The scores are not float64 numbers, so the estimate is
    refused by name."""
    joint = unit_pair(0.6)
    with pytest.raises(ValueError, match="scores.*float64"):
        mc.infonce_bound(joint, g.bilinear_critic(1e308), 4, 10, 0)
    with pytest.raises(ValueError, match="scores.*float64"):
        mc.critic_scores(g.bilinear_critic(1e308), np.array([[2.0]]), np.array([[1.0]]))


def test_monte_carlo_refuses_a_callable_critic_that_masks_a_whole_row():
    """The message promised it: −inf (a masked pair) is allowed, but not on every candidate
    of a row (the softmax is 0/0). Such a critic gave (nan, nan)."""
    def all_masked(z, z_prime):
        return np.full(_scores_shape(z), -np.inf)
    with pytest.raises(ValueError, match="every candidate of a row"):
        mc.infonce_bound(unit_pair(0.6), all_masked, 4, 10, 0)


@pytest.mark.parametrize("scores, error, words", [
    ([[0.0, 1.0], [1.0, 0.0]], None, None),                  # a list is an array
    (np.array([[0, 1], [1, 0]]), None, None),                # integers are numbers
    (np.zeros((2, 3)), ValueError, "square"),                # was 0.0, silently
    (np.zeros(3), ValueError, "scores"),
    (np.zeros((0, 0)), ValueError, "scores"),
    (np.array([[np.nan, 0.0], [0.0, 0.0]]), ValueError, "nan"),
    (np.array([[np.inf, 0.0], [0.0, 0.0]]), ValueError, r"\+inf"),
    (np.array([[-np.inf, -np.inf], [0.0, 0.0]]), ValueError, "every candidate of a row"),
    (np.array([[1 + 0j]]), TypeError, "scores"),
    (np.array([[True]]), TypeError, "scores"),
    (np.ma.array([[0.0]]), TypeError, "scores"),
    ("ab", TypeError, "scores"),
])
def test_infonce_per_batch_checks_its_scores(scores, error, words):
    """infonce_per_batch took anything: a list was an AttributeError, integers a
    UFuncTypeError from inside exp, a (2, 3) table gave 0.0, NaN gave NaN. The value of
    the accepted ones: two pairs with positives 0 and negatives 1, log 2 − log(1 + e) (mpmath)."""
    if error is None:
        want = float(mpmath.log(2) - mpmath.log(1 + mpmath.e))
        assert abs(mc.infonce_per_batch(scores) - want) <= 4 * EPS
        return
    with pytest.raises(error, match=words):
        mc.infonce_per_batch(scores)


@pytest.mark.parametrize("e", [-530, -515, -512, 500, 510])
@pytest.mark.parametrize("ell, d", [(1.5, 0.0), (0.01, 0.0), (100.0, 0.0), (0.7, 3.0), (100.0, 1e6)])
def test_rbf_limit_on_a_subnormal_or_huge_pair_matches_mpmath(e, ell, d):
    """z, z' → 2^e (z, z') with ℓ → 2^e ℓ leaves ‖z − z'‖²/ℓ² and so I_∞ unchanged. Bug: at
    covariances ~2^-1030 (subnormal) and ℓ < 1 the result was NaN (solve of C' + ℓ²I with
    subnormal entries), and at 2^1020 with ℓ = 100·2^510 it lost 3 digits (1/ℓ² subnormal).
    Unit variances, ρ = 0.625 and d dyadic or small: every entry scales exactly; the value
    is _rbf_1d at ℓ, d (tolerance as there)."""
    joint = g.GaussianPair(np.ldexp([d, 0.0], e), np.ldexp([[1.0, 0.625], [0.625, 1.0]], 2 * e), 1)
    want, size = _rbf_1d(0.625, d, ell)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow is harmless
        got = g.rbf_infonce_limit(joint, np.ldexp(ell, e))
    assert abs(got - want) <= 16 * EPS * size + 16 * 2.0**-1074, (got, float(want))


@pytest.mark.parametrize("e", [-515, -512, 505, 510])
@pytest.mark.parametrize("ell", [1.5, 0.01, 100.0])
def test_rbf_limit_of_the_dyadic_pair_is_scale_invariant(e, ell):
    """The 2 + 2-dimensional dyadic pair at 2^2e (e = −515: I_∞ was NaN for ℓ = 1.5·2^e)
    against itself at scale 1 (checked against mpmath above in one dimension): the same
    steps on the same unit-scale matrices once the scale is taken out, 64 eps·cond (< 20)
    of the O(1) terms."""
    joint, _ = _shrunk(e)
    want = g.rbf_infonce_limit(_shrunk(0)[0], ell)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = g.rbf_infonce_limit(joint, np.ldexp(ell, e))
    assert abs(got - want) <= 64 * EPS * 20 * max(1.0, abs(want))


def test_sample_pairs_refuses_a_size_beyond_its_budget_by_name(monkeypatch):
    """size = 1e12 was a MemoryError from inside numpy's standard_normal (14.6 TiB). The
    draws (size…, k + k') are refused beyond MAX_SAMPLE_ELEMENTS, naming size; the budget
    itself is accepted (shown with a budget of 8, and a size-0 batch axis costs nothing)."""
    joint = unit_pair(0.6)
    with pytest.raises(ValueError, match=r"size.*MAX_SAMPLE_ELEMENTS"):
        mc.sample_pairs(joint, (10**12,), 0)
    with pytest.raises(ValueError, match=r"size.*MAX_SAMPLE_ELEMENTS"):
        mc.sample_pairs(joint, (2**40, 2**40), 0)     # no int64 overflow in the count
    z, z_prime = mc.sample_pairs(joint, (0, 10**12), 0)
    assert z.shape == (0, 10**12, 1) and z_prime.shape == (0, 10**12, 1)
    monkeypatch.setattr(mc, "MAX_SAMPLE_ELEMENTS", 8)
    assert mc.sample_pairs(joint, (4,), 0)[0].shape == (4, 1)      # 4 × 2 coordinates = 8
    with pytest.raises(ValueError, match=r"size.*MAX_SAMPLE_ELEMENTS"):
        mc.sample_pairs(joint, (5,), 0)


@pytest.mark.parametrize("a", [1e-170, 1e-200])
def test_recognition_joint_that_underflows_says_so(a):
    """Encoders of 1e-170 make A Σ Aᵀ ~ 1e-340: below float64, so it rounds to 0 and fails
    the definiteness check. The message blamed the encoders' rank ('I(Z;Z') would be
    infinite; add encoder noise or use full-rank encoders'), which is not the problem:
    a rescaled A (1e-150) gives the joint of MI −½ log(1 − ½²) (mpmath)."""
    cov_xx = np.array([[1.0, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError, match="underflow") as info:
        g.recognition_joint(cov_xx, [[a]], [[a]])
    assert "full-rank" not in str(info.value)
    want = float(-mpmath.log(1 - mpmath.mpf(0.5)**2) / 2)
    assert abs(g.mutual_information(g.recognition_joint(cov_xx, [[1e-150]], [[1e-150]])) - want) \
        <= 8 * EPS * want


# ------------------------------------------------------------------ the staircase's arguments

@pytest.mark.parametrize("call, error, words", [
    (lambda st: st.staircase_joint(2.0, 2.5), TypeError, "dim"),        # was truncated to 2
    (lambda st: st.staircase_joint(2.0, True), TypeError, "dim"),       # was dim 1
    (lambda st: st.staircase_joint(True, 2), TypeError, "true_mi"),     # was 1 nat
    (lambda st: st.staircase_joint("2", 2), TypeError, "true_mi"),
    (lambda st: st.staircase_joint(2 + 0j, 2), TypeError, "true_mi"),   # float()'s own message
    (lambda st: st.staircase_joint([2.0], 2), TypeError, "true_mi"),
    (lambda st: st.staircase_joint(2.0, 10**6), ValueError, "dim"),     # a 7 TiB MemoryError
    (lambda st: st.largest_true_mi(0), ValueError, "dim"),              # was 0.0
    (lambda st: st.largest_true_mi(-1), ValueError, "dim"),             # was -1.0
    (lambda st: st.largest_true_mi(2.5), TypeError, "dim"),
    (lambda st: st.benchmark_rows(levels=(1.0,), dim=2, batch_size=0, batches=2), ValueError,
     "batch_size"),                                                     # after a log(0) warning
    (lambda st: st.benchmark_rows(levels=(1.0,), dim=2, batches=2, seed=-1), ValueError, "seed"),
    (lambda st: st.benchmark_rows(levels=(1.0,), dim=2, batches=2, seed=1.5), TypeError, "seed"),
    (lambda st: st.benchmark_rows(levels="2", dim=2, batches=2), TypeError, "levels"),
    (lambda st: st.benchmark_rows(levels=2.0, dim=2, batches=2), TypeError, "levels"),
    (lambda st: st.benchmark_rows(levels=(1.0, "x"), dim=2, batches=2), TypeError, r"levels\[1\]"),
])
def test_the_staircase_checks_its_arguments_by_name(call, error, words):
    """The staircase converted with float()/int(): True, "2" and 2.5 dimensions were taken
    (as 1, 2 and 2), complex and lists failed with Python's own messages, 1e6 dimensions
    tried to allocate 7 TiB, largest_true_mi(0) was 0.0, and benchmark_rows named neither
    batch_size nor seed. Every call fails before any work, naming the argument."""
    from rpmref.gaussian import staircase
    with np.errstate(all="raise"):
        with pytest.raises(error, match=words):
            call(staircase)


@pytest.mark.parametrize("critic, z, z_prime, error, words", [
    (g.bilinear_critic(1.0), np.ones((2, 3)), np.ones((2, 1)), ValueError, "critic.W"),
    (g.bilinear_critic(1.0), np.ones(2), np.ones(2), ValueError, "z"),
    (g.bilinear_critic(1.0), np.ones((2, 2, 1)), np.ones((3, 2, 1)), ValueError, "z_prime"),
    (g.bilinear_critic(1.0), np.ones((2, 1)) + 0j, np.ones((2, 1)), TypeError, "z"),
    (g.bilinear_critic(1.0), np.array([[np.nan], [0.0]]), np.ones((2, 1)), ValueError, "z"),
    (g.QuadraticCritic("a", [[0.0]], [0.0]), np.ones((2, 1)), np.ones((2, 1)), TypeError,
     "critic.W"),
    (g.QuadraticCritic(np.ones((1, 1)), np.ones((2, 2)), [0.0]), np.ones((2, 1)),
     np.ones((2, 1)), ValueError, "critic.Q"),
    (g.QuadraticCritic(np.ones((1, 1)), [[0.0]], [0.0, 1.0]), np.ones((2, 1)), np.ones((2, 1)),
     ValueError, "critic.b"),
    (lambda a, b: a @ np.swapaxes(a, -1, -2), np.ones((2, 1)), np.ones((3, 1)), ValueError,
     r"shape \(2, 3\)"),
])
def test_critic_scores_checks_the_batch_and_the_critic_by_name(critic, z, z_prime, error, words):
    """critic_scores took its batch unchecked: mismatched dimensions were numpy's matmul
    errors, z and z' of different batch shapes met numpy's broadcasting, complex z gave
    complex scores, a
    NaN in z was reported as scores 'beyond the float64 range', a string W as numpy's
    'could not convert string to float'."""
    with pytest.raises(error, match=words):
        mc.critic_scores(critic, z, z_prime)


def test_critic_scores_still_takes_lists_batches_and_other_candidates():
    """Lists are arrays; a (batches, N, k) batch gives (batches, N, N) scores: 0.5 z_i z'_j;
    N anchors against N' ≠ N candidates give (N, N') (rpmref.testing relies on it)."""
    got = mc.critic_scores(g.bilinear_critic(0.5), [[[1.0], [2.0]]], [[[3.0], [-1.0]]])
    assert np.array_equal(got, [[[1.5, -0.5], [3.0, -1.0]]])
    got = mc.critic_scores(g.bilinear_critic(0.5), [[1.0], [2.0]], [[3.0], [-1.0], [4.0]])
    assert np.array_equal(got, [[1.5, -0.5, 2.0], [3.0, -1.0, 4.0]])
    got = mc.critic_scores(lambda a, b: a @ np.swapaxes(b, -1, -2), [[1.0], [2.0]], [[3.0]])
    assert np.array_equal(got, [[3.0], [6.0]])


@pytest.mark.parametrize("e", [-515, -500, -300, 300, 500, 505])
def test_gaussian_elbo_decomposition_holds_at_subnormal_and_huge_scales(e):
    """E3: −CE(P, P_θ) + h(Z) + h(Z') = I(Z; Z') − KL(P ‖ P_θ). The left side was formed from
    entropies of size (d/2)|log s| (≈ 1400 at s = 2^-1000) that cancel to the ELBO, 0.0156
    here: it was off by 4e-14 to 2.7e-13. Once the scale is out, each side is ~10 roundings
    of terms of size ≤ d = 4 (traces, log determinants, the MI and KL, all < 4 here):
    10·d·eps, doubled; the right side also at unit scale, the same identity."""
    joint, critic = _shrunk(e)
    d = g.elbo_decomposition(joint, g.energy_prior(joint, critic))
    unit_joint, unit_critic = _shrunk(0)
    unit = g.elbo_decomposition(unit_joint, g.energy_prior(unit_joint, unit_critic))
    tol = 20 * 4 * EPS
    assert abs(d["elbo_minus_constant"] - (d["mutual_information"] - d["kl"])) <= tol
    assert abs(d["elbo_minus_constant"] - (unit["mutual_information"] - unit["kl"])) <= tol


# ------------------------------------------------------------------ the Gaussian verify rows

@pytest.mark.parametrize("call, error, words", [
    (lambda ch: ch.verify_checks(0, trials=2.5), TypeError, "trials"),     # ran 2 trials
    (lambda ch: ch.verify_checks(0, trials=True), TypeError, "trials"),    # ran 1 trial
    (lambda ch: ch.verify_checks(0, trials="3"), TypeError, "trials"),     # ran 3 trials
    (lambda ch: ch.random_joint(np.random.default_rng(0), 10**6), ValueError, "max_dim"),
])
def test_the_gaussian_verify_rows_check_their_arguments_by_name(call, error, words):
    """verify_checks converted trials with int() (its docstring promised a TypeError for a
    float); random_joint(max_dim=1e6) tried to allocate 16 TiB."""
    from rpmref.gaussian import checks
    with pytest.raises(error, match=words):
        call(checks)


def test_a_too_negative_q_is_reported_in_the_coordinates_its_eigenvalues_come_from():
    """Since the energy prior and I_∞ work with z' rescaled to unit variance, the smallest
    eigenvalue quoted for C'⁻¹ + Q at C' = 1e-300 is that of the rescaled matrix (−1.49,
    not −1e300): the message says so; at unit variances nothing is rescaled."""
    for f in (g.energy_prior, g.infonce_limit):
        with pytest.raises(ValueError, match="critic.Q is too negative.*rescaled"):
            f(unit_pair(0.5, scale=1e-300),
              g.QuadraticCritic(np.zeros((1, 1)), np.array([[-2e300]]), np.zeros(1)))
        with pytest.raises(ValueError, match="critic.Q is too negative") as info:
            f(unit_pair(0.5), g.QuadraticCritic(np.zeros((1, 1)), np.array([[-2.0]]), np.zeros(1)))
        assert "rescaled" not in str(info.value)


@pytest.mark.parametrize("rho, d", [(1e-9, 0.0), (1e-8, 1e10), (1e-12, 3.0), (1e-16, 3.0)])
def test_optimal_rbf_lengthscale_of_a_weak_correlation_is_finite(rho, d):
    """ρ > 0 gives I_∞(ℓ) ≈ tr S/ℓ² > 0 at large ℓ, so the supremum is a finite maximum,
    at u* ≈ (1.5 + d²)/ρ. The grid stopped 8 decades above E‖z − z'‖², so ρ = 1e-9 (u* ≈
    1.5e9) and ρ = 1e-8 at d = 1e10 returned inf ('the ℓ → ∞ limit'). The objective's 1/ℓ²
    terms are collected into tr S/ℓ² before rounding, so no term cancels against another;
    the root in log u is found to ~1e-14 (the stopping rule): 1e-12 relative on ℓ."""
    want = _rbf_1d_argmax(rho, d)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = g.optimal_rbf_lengthscale(unit_pair(rho, mean_z=d))
    assert np.isfinite(got)
    assert abs(got - want) <= 1e-12 * want, (got, float(want))


@pytest.mark.parametrize("rho", [1e-13, 1e-16, 1e-20, 1e-50, 1e-100, 1e-130])
def test_optimal_rbf_lengthscale_of_a_tiny_correlation_is_the_quadratic_root(rho):
    """Bug: below ρ ≈ 1e-13 the objective's −tr(C + C' − 2S)/(2ℓ²), ½ Σ log1p(λ/ℓ²) and
    ½ Σ c/(λ + ℓ²) cancelled to their 1/ℓ² sum 2ρ/(2ℓ²) ~ ρ times their size, so ρ = 1e-16
    gave ℓ* = 9.2e7 for 1.22e8, and the staircase at 1e-300 nats 1.3e8 for ~1e75. For unit
    variances the stationarity condition is the quadratic 2ρu² − (3 − 4ρ)u − 2(1 − ρ) = 0
    in u = ℓ² (its positive root, at 60 digits: no cancellation either); the root in log u
    is found to ~1e-14: 1e-12 relative on ℓ."""
    with mpmath.workdps(60):
        r = mpmath.mpf(rho)
        u = ((3 - 4 * r) + mpmath.sqrt((3 - 4 * r) ** 2 + 16 * r * (1 - r))) / (4 * r)
        want = mpmath.sqrt(u)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = g.optimal_rbf_lengthscale(unit_pair(rho))
    assert abs(got - want) <= 1e-12 * want, (got, float(want))


@pytest.mark.parametrize("rho", [1e-140, 1e-300, 5e-324])
def test_optimal_rbf_lengthscale_beyond_the_search_is_a_value_error(rho):
    """ℓ*² ≈ 1.5/ρ lies above the search's e^312 (ρ < 1e-135), or tr S/λs underflows: a
    ValueError naming the weak correlation, not inf (the supremum is a finite maximum)."""
    with pytest.raises(ValueError, match="correlation is too weak"):
        g.optimal_rbf_lengthscale(unit_pair(rho))


# ------------------------------------------------------------------ energy prior beyond float64

def _bilinear_limit_1d(rho, w):
    """I_∞ of f(z, z') = w z z' for unit variances and correlation ρ, in mpmath: E f = ρw and
    log E_{z'} e^{w z z'} = w² z²/2, so I_∞ = ρw − w²/2 exactly."""
    with mpmath.workdps(60):
        return mpmath.mpf(rho) * w - mpmath.mpf(w) ** 2 / 2


@pytest.mark.parametrize("w", [1e7, 2e7])
def test_energy_prior_of_a_strong_bilinear_critic_keeps_e6(w):
    """Cov(z') = 1 + w² is exact in float64 while w² + 1 < 2^53, so the prior is the exact
    energy prior and KL(P ‖ P_θ) = I − I_∞ (E6) holds to the rounding of the KL formula's
    O(1) operations on terms of size w²/2 (1e-12 relative is ~4500 ulps of slack)."""
    joint = unit_pair(0.5)
    critic = g.bilinear_critic([[w]])
    kl = g.kl_divergence(joint, g.energy_prior(joint, critic))
    with mpmath.workdps(60):
        expected = mpmath.mpf(g.mutual_information(joint)) - _bilinear_limit_1d(0.5, w)
    assert abs(kl - float(expected)) <= 1e-12 * float(expected)


@pytest.mark.parametrize("critic", [g.bilinear_critic([[1e8]]), g.bilinear_critic([[-1e150]]),
                                    g.rbf_critic(1e-9, 1)])
def test_energy_prior_too_narrow_for_float64_is_refused_where_it_is_formed(critic):
    """Bug: energy_prior returned a GaussianPair whose covariance had rounded to a singular
    matrix (w = 1e8: Cov(z') = 1 + 1e16 is 1e16), which every other function then refused as
    "prior.cov must be positive definite" — blaming an argument the caller never built.
    Now energy_prior itself says what happened, and points to infonce_limit."""
    joint = unit_pair(0.5)
    with pytest.raises(ValueError, match=r"energy prior is too narrow to hold in float64.*"
                                         r"infonce_limit\(joint, critic\)"):
        g.energy_prior(joint, critic)
    assert math.isfinite(g.infonce_limit(joint, critic))   # the quantity itself is still there


@pytest.mark.parametrize("w", [1e150, 1e305, 1e306])
def test_monte_carlo_infonce_of_a_huge_critic_has_a_finite_standard_error(w):
    """Bug: infonce_bound's standard error was np.std of the draws, which squares them: for a
    bilinear critic w = 1e305 every draw is ~ −7e304 and the error came out inf (1e306: the
    mean too) with RuntimeWarnings. From w ≳ 1e20 on, each row's log-sum-exp is its top
    term alone and log N is below an ulp, so every draw is w · (mean of z_i z'_i − max_j
    z_i z'_j) on the same batches: the estimate and the standard error at w are those at
    w₀ = 1e150 (where np.std still works) times w / w₀, up to roundings."""
    joint = unit_pair(0.5)
    estimate, stderr = mc.infonce_bound(joint, g.bilinear_critic([[w]]), 8, batches=200, rng=0)
    ref_estimate, ref_stderr = mc.infonce_bound(joint, g.bilinear_critic([[1e150]]), 8,
                                                batches=200, rng=0)
    assert math.isfinite(estimate) and math.isfinite(stderr) and stderr > 0
    # 200 draws: the mean and the spread each carry ~200 roundings of relative ε at most
    assert estimate == pytest.approx(ref_estimate * (w / 1e150), rel=400 * EPS)
    assert stderr == pytest.approx(ref_stderr * (w / 1e150), rel=400 * EPS)


# ------------------------------------------------------------------ results own their arrays

def test_results_do_not_share_memory_with_the_callers_arrays():
    """Bug: bilinear_critic(W).W was W itself and the means returned by blocks(joint) were
    views of joint.mean, so writing to the caller's array afterwards (W += lr * grad in a
    training loop) changed a critic or the blocks already handed out. Now each result owns
    its arrays; the values are unchanged bit for bit (a copy does no arithmetic)."""
    W = np.array([[0.5, 0.25]])
    critic = g.bilinear_critic(W)
    W += 1.0
    np.testing.assert_array_equal(critic.W, [[0.5, 0.25]])

    mean = np.array([1.0, 2.0, 3.0])
    joint = g.GaussianPair(mean, np.eye(3), 1)
    m, m_prime, _, _, _ = g.blocks(joint)
    mean[:] = -7.0
    np.testing.assert_array_equal(m, [1.0])
    np.testing.assert_array_equal(m_prime, [2.0, 3.0])

    mean_z, cross = np.array([0.5]), np.array([[0.25, 0.0]])
    pair = g.gaussian_pair(1.0, np.eye(2), cross, mean_z=mean_z)
    for array in (mean_z, cross):
        assert not any(np.shares_memory(array, out) for out in pair[:2])


@pytest.mark.parametrize("scale", [np.longdouble, np.float32, np.float16, np.int64])
def test_an_rbf_lengthscale_of_any_real_dtype_is_computed_in_float64(scale):
    """Bug: rbf_infonce_limit(joint, np.longdouble(0.5)) raised 'array type float128 is
    unsupported in linalg' from inside numpy.linalg, rbf_critic(np.longdouble(0.5), 1) had
    float128 matrices, and a float32 lengthscale computed I_∞ in float32 arithmetic. The
    lengthscale is now the float64 value check_real makes of it (0.5 and 2 are exact in
    every dtype here), so the results equal those of the Python float bit for bit."""
    joint = unit_pair(0.6)
    for ell in ((2,) if scale is np.int64 else (0.5, 2)):
        typed = scale(ell)
        assert g.rbf_infonce_limit(joint, typed) == g.rbf_infonce_limit(joint, float(ell))
        critic = g.rbf_critic(typed, 2)
        assert critic.W.dtype == critic.Q.dtype == np.float64
        np.testing.assert_array_equal(critic.W, g.rbf_critic(float(ell), 2).W)
