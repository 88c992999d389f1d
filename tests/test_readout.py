"""Linear readout (least squares with intercept), R² and RMSE."""
import numpy as np
import pytest

from rpmref.balls.readout import fit_linear_readout, predict, score_readout


def test_recovers_an_exact_affine_map():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 6))
    A, c = rng.normal(size=(6, 4)), rng.normal(size=4)
    fit = fit_linear_readout(z, z @ A + c)
    # least squares on 50×7 normals (κ ≲ 10) with exact targets: coefficients to
    # ≲ κ·7·u ≈ 1e-14 relative, residuals ≲ 1e-14; the tolerances are loose but a wrong
    # fit is off by O(1)
    np.testing.assert_allclose(fit["coef"], A, rtol=1e-10)
    np.testing.assert_allclose(fit["intercept"], c, rtol=1e-10)
    s = score_readout(fit, z, z @ A + c)
    assert s["r2_overall"] == pytest.approx(1.0, abs=1e-12)
    assert s["rmse_px"] == pytest.approx(0.0, abs=1e-10)


def test_normal_equations_and_r2_formulas():
    """Coefficients equal the normal-equation solution; with one input the training R²
    equals the squared Pearson correlation (a different formula)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40, 1))
    y = 2 * z[:, 0] + rng.normal(size=40)
    fit = fit_linear_readout(z, y[:, None])
    X = np.hstack([z, np.ones((40, 1))])
    sol = np.linalg.solve(X.T @ X, X.T @ y)
    # normal equations square κ([z, 1]) ≲ 3: ≲ κ²·40·u ≈ 4e-14 relative either way
    np.testing.assert_allclose([fit["coef"][0, 0], fit["intercept"][0]], sol, rtol=1e-12)
    s = score_readout(fit, z, y[:, None])
    np.testing.assert_allclose(s["r2_overall"], np.corrcoef(z[:, 0], y)[0, 1] ** 2, rtol=1e-12)
    resid = y - (sol[0] * z[:, 0] + sol[1])
    np.testing.assert_allclose(s["rmse_px"], np.sqrt(np.mean(resid ** 2)), rtol=1e-12)  # 40 terms


def test_positions_shape_and_pooled_r2():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(30, 6))
    pos = rng.normal(size=(30, 3, 2)) * np.array([1.0, 5.0])
    fit = fit_linear_readout(z, pos)
    s = score_readout(fit, z, pos)
    y = pos.reshape(30, 6)
    res = ((y - predict(fit, z)) ** 2).sum(axis=0)
    tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    # sums of 30 squares (≲ 30·u ≈ 3e-15 relative); 1 − res/tot with R² ≥ 0.08 here
    # magnifies that ≤ 12×: ≲ 4e-14
    np.testing.assert_allclose(s["r2_per_coordinate"], 1 - res / tot, rtol=1e-12)
    np.testing.assert_allclose(s["r2_overall"], 1 - res.sum() / tot.sum(), rtol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rows"):
        fit_linear_readout(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        fit_linear_readout(np.full((5, 2), np.nan), np.zeros((5, 2)))


def test_constant_target_coordinate_is_refused_by_name():
    """R² = 1 − SS_res/SS_tot has SS_tot = 0 for a coordinate that never changes: undefined,
    so a ValueError names it instead of returning −inf or NaN."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(20, 6))
    pos = rng.uniform(0, 32, size=(20, 3, 2))
    fit = fit_linear_readout(z, pos)
    pos[:, 1, 1] = 7.25  # ball 1's y never moves
    with pytest.raises(ValueError, match=r"coordinate 3 \(ball 1 y\) is constant over all 20"):
        score_readout(fit, z, pos)
    y = pos.reshape(20, 6)
    y[:, 0] = 0.1  # 2-D targets: named by column; 0.1 is inexact, its mean need not be 0.1
    with pytest.raises(ValueError, match=r"coordinate 0, 3 is constant"):
        score_readout(fit, z, y)
    s = score_readout(fit, z, y + np.linspace(0, 1e-9, 20)[:, None])  # tiny variation: defined
    assert np.all(np.isfinite(s["r2_per_coordinate"]))
