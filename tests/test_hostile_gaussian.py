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
        grid = [centre + mpmath.mpf(i) / 8 for i in range(-200, 200)]
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
