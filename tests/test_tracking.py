"""Per-map tracking metrics (rpmref.tracking) against independent computations."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rpmref.balls import tracking


def random_walk_positions(rng, n_frames, n_balls=3, size=32.0):
    """Smooth, independent ball trajectories (T, n_balls, 2) inside [2, size-2]²."""
    steps = rng.normal(0.0, 1.5, size=(n_frames, n_balls, 2))
    walk = np.cumsum(steps, axis=0)
    walk -= walk.min(axis=0)
    walk /= walk.max(axis=0)
    return 2.0 + (size - 4.0) * walk


def affine_maps_of(positions, perm, rng):
    """z (T, 2K) whose map perm[b] is a known invertible affine image of ball b."""
    n_frames, n_balls, _ = positions.shape
    z = np.zeros((n_frames, 2 * n_balls))
    for b, k in enumerate(perm):
        a = rng.normal(size=(2, 2)) + 2.0 * np.eye(2)
        c = rng.normal(size=2) * 5.0
        z[:, 2 * k:2 * k + 2] = positions[:, b] @ a + c
    return z


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_exact_affine_maps_score_one_and_recover_the_permutation(perm):
    """A z that IS the ball positions up to known affine maps: matched R² = 1."""
    rng = np.random.default_rng(sum(p * 10 ** i for i, p in enumerate(perm)))
    pos_train = random_walk_positions(rng, 400)
    pos_test = random_walk_positions(rng, 300)
    z_train = affine_maps_of(pos_train, perm, np.random.default_rng(7))
    z_test = affine_maps_of(pos_test, perm, np.random.default_rng(7))  # same maps
    out = tracking.tracking_metrics(z_train, pos_train, z_test, pos_test, radius=2.5)
    assert out["map_for_ball"] == list(perm)
    # an exact affine map fit by least squares on 400 frames of values ≲ 60 px: residuals
    # ≲ κ·u·60 ≈ 1e-11 px (κ ≲ 1e3); R² = 1 − SS_res/SS_tot to ≲ 1e-20, RMSE ≲ 1e-11 px;
    # 1e-9 and 1e-7 px are generous but far below any mismatch (R² < 0.9)
    np.testing.assert_allclose(out["matched_r2"], 1.0, atol=1e-9)
    np.testing.assert_allclose(out["matched_rmse_px"], 0.0, atol=1e-7)
    assert out["within_radius"] == [1.0, 1.0, 1.0]


def test_mixed_maps_score_low_although_a_joint_linear_readout_is_perfect():
    """Each map a blend of all balls: per-map R² is low, the 6×6 readout is exact.

    With 3 independent balls, a map at (p1 + p2 + p3)/3 explains about a third
    of any one ball's variance (population value 1/3), far below 0.95.
    """
    rng = np.random.default_rng(3)
    pos = random_walk_positions(rng, 2000)
    pos_test = random_walk_positions(rng, 2000)
    mix = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5], [0.3, 1.0, -1.0]])

    def mixed(p):  # map k = Σ_b mix[k, b] p_b
        return np.einsum("kb,tbd->tkd", mix, p).reshape(len(p), 6)

    out = tracking.tracking_metrics(mixed(pos), pos, mixed(pos_test), pos_test, radius=2.5)
    assert out["min_matched_r2"] < 0.8
    assert out["mean_matched_r2"] < 0.8
    # the joint 6 -> 6 linear readout inverts the mixing exactly
    joint = tracking.fit_affine(mixed(pos), pos.reshape(len(pos), 6))
    pred = tracking.apply_affine(joint, mixed(pos_test))
    assert tracking.r2_pooled(pred, pos_test.reshape(len(pos_test), 6)) > 1 - 1e-9  # as above


def test_within_radius_matches_the_rayleigh_law_for_isotropic_noise():
    """Held-out map = ball + N(0, σ² I): P(‖error‖ ≤ r) = 1 − exp(−r² / 2σ²) (Rayleigh CDF).

    The training maps are the exact positions, so the calibration is the identity
    (noise in the calibration inputs would shrink the fit toward the mean).

    Statistical check: 20000 held-out frames, so the binomial standard error of
    the pooled fraction is < 0.002; tolerance 0.01.
    """
    rng = np.random.default_rng(11)
    sigma, radius = 1.7, 2.5
    pos_train, pos_test = random_walk_positions(rng, 20000), random_walk_positions(rng, 20000)
    z_train = pos_train.reshape(-1, 6)  # noise-free calibration frames: fit = identity
    z_test = pos_test.reshape(-1, 6) + rng.normal(0, sigma, (20000, 6))
    out = tracking.tracking_metrics(z_train, pos_train, z_test, pos_test, radius)
    expected = 1.0 - np.exp(-radius ** 2 / (2 * sigma ** 2))
    assert out["map_for_ball"] == [0, 1, 2]
    np.testing.assert_allclose(out["within_radius"], expected, atol=0.01)  # 5 s.e. (docstring)


def test_dead_map_has_zero_training_r2_and_is_not_matched():
    """A constant map predicts the training mean: training R² = 0 for every ball."""
    rng = np.random.default_rng(5)
    pos = random_walk_positions(rng, 300)
    z = np.hstack([pos[:, 0], np.full((300, 2), 16.0), pos[:, 1], pos[:, 2]])  # 4 maps
    r2, _ = tracking.map_ball_r2(z, pos)
    # a constant input fits the mean: SS_res = SS_tot up to ≲ 300·u relative, R² ≲ 3e-14
    np.testing.assert_allclose(r2[1], 0.0, atol=1e-9)
    assert tracking.best_matching(r2) == (0, 2, 3)


def test_fit_affine_agrees_with_centred_normal_equations():
    """lstsq with an intercept column = slope from centred normal equations + mean offset."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 2)) * [3.0, 0.5] + [10.0, -4.0]
    y = rng.normal(size=(50, 2))
    coef = tracking.fit_affine(x, y)
    xc, yc = x - x.mean(0), y - y.mean(0)
    slope = np.linalg.solve(xc.T @ xc, xc.T @ yc)
    offset = y.mean(0) - x.mean(0) @ slope
    # lstsq on [x, 1] (columns ~10 and 1, κ ≲ 1e2) vs centred normal equations (κ² ≲ 1e2
    # after centring): ≲ 1e2·50·u ≈ 5e-13 relative; 1e-10 leaves room for the uncentred κ
    np.testing.assert_allclose(coef[:-1], slope, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(coef[-1], offset, rtol=1e-10, atol=1e-12)


def test_r2_pooled_by_explicit_sums():
    pred = np.array([[1.0, 2.0], [2.0, 2.0], [4.0, 1.0]])
    target = np.array([[1.0, 3.0], [3.0, 1.0], [5.0, 2.0]])
    # residuals: 0,1,1,1,1,1 -> 5; means (3, 2): deviations 4,1,0,1,4,0 -> 10
    assert tracking.r2_pooled(pred, target) == pytest.approx(1 - 5 / 10, abs=1e-12)  # 6 exact squares


def _r2_exact(pred, target):
    """1 − SS_res / SS_tot in exact rational arithmetic, rounded once."""
    from fractions import Fraction
    p = [[Fraction(v) for v in row] for row in pred.tolist()]
    t = [[Fraction(v) for v in row] for row in target.tolist()]
    mean = [sum(col) / len(col) for col in zip(*t)]
    ss_tot = sum((v - m) ** 2 for row in t for v, m in zip(row, mean))
    ss_res = sum((a - b) ** 2 for rp, rt in zip(p, t) for a, b in zip(rp, rt))
    return float(1 - ss_res / ss_tot)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1.0, 1e200, 1e300])
def test_r2_pooled_is_right_at_any_magnitude(scale):
    """At 1e200 the squares overflowed (R² NaN); at 1e-200 they underflowed and a varying
    target was refused as constant."""
    rng = np.random.default_rng(3)
    target = rng.standard_normal((7, 3)) * scale
    pred = target + 0.3 * scale * rng.standard_normal((7, 3))
    assert tracking.r2_pooled(pred, target) == pytest.approx(_r2_exact(pred, target),
                                                           rel=1e-14)  # ~10² roundings
    tiny = np.array([[0.0], [scale]])
    assert tracking.r2_pooled(np.zeros((2, 1)), tiny) == -1.0   # 1 − 1/(1/2), exact


@pytest.mark.parametrize("value", [0.1, 0.7])
def test_r2_pooled_refuses_a_constant_target_whose_mean_rounds(value):
    """Three 0.1s have the rounded mean 0.10000000000000002, so Σ (y − ȳ)² was 1.2e-33, not 0:
    a perfect prediction scored 1.0 and a 0.01-off one R² ≈ −5e29."""
    target = np.full((3, 2), value)
    for pred in (target, target + 0.01):
        with pytest.raises(ValueError, match="constant"):
            tracking.r2_pooled(pred, target)


@pytest.mark.parametrize("shape", [(0, 2), ()])
def test_r2_pooled_refuses_no_frames(shape):
    """No frame gave RuntimeWarnings ("Mean of empty slice") and a 0-d array an AxisError."""
    with pytest.raises(ValueError, match="at least one frame"):
        tracking.r2_pooled(np.zeros(shape), np.zeros(shape))


@given(arrays(np.float64, (4, 3), elements=st.floats(-5, 5, allow_nan=False)))
def test_best_matching_agrees_with_scipy_assignment(score):
    """Brute-force matching attains the optimum of the linear assignment problem."""
    optimize = pytest.importorskip("scipy.optimize")
    rows, cols = optimize.linear_sum_assignment(score, maximize=True)
    perm = tracking.best_matching(score)
    assert len(set(perm)) == 3
    ours = sum(score[perm[b], b] for b in range(3))
    # the same 3 numbers ≤ 5 summed in another order: ≤ 2 ulp(15) ≈ 4e-15
    assert ours == pytest.approx(score[rows, cols].sum(), abs=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: tracking.split_maps(np.zeros((5, 5))), "z must have shape"),
    (lambda: tracking.r2_pooled(np.zeros((3, 2)), np.ones((3, 2))), "constant"),
    (lambda: tracking.best_matching(np.zeros((2, 3))), "K >= n_balls"),
    (lambda: tracking.tracking_metrics(np.zeros((9, 6)), np.zeros((9, 3, 2)),
                                       np.zeros((9, 6)), np.zeros((9, 3, 2)), 0.0), "radius"),
    (lambda: tracking.map_ball_r2(np.zeros((9, 6)), np.zeros((8, 3, 2))), "frames"),
    # no ball was "min() arg is an empty sequence"
    (lambda: tracking.tracking_metrics(np.arange(18.0).reshape(9, 2), np.zeros((9, 0, 2)),
                                       np.arange(18.0).reshape(9, 2), np.zeros((9, 0, 2)), 1.0),
     "at least one ball"),
    (lambda: tracking.fit_affine(np.full((4, 2), np.nan), np.zeros((4, 2))), "NaN"),
])
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("radius, error", [("2.5", TypeError), (True, TypeError),
                                           (float("nan"), ValueError), (-1.0, ValueError)])
def test_radius_is_checked_by_name(radius, error):
    """radius='2.5' was NumPy's "ufunc 'isfinite' not supported for the input types"."""
    z, pos = np.zeros((9, 6)), np.zeros((9, 3, 2))
    with pytest.raises(error, match="radius"):
        tracking.tracking_metrics(z, pos, z, pos, radius)
