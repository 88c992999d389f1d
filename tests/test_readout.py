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
    with pytest.raises(ValueError, match=r"z must be finite; entry \(0, 0\) is nan"):
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


# ---------------------------------------------------------------- argument checks

def _fit():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(20, 3))
    y = rng.uniform(0, 32, size=(20, 2))
    return fit_linear_readout(z, y), z, y


@pytest.mark.parametrize("bad, error, message", [
    (np.ones((5, 2)) * (1 + 1j), TypeError, r"z must be real, got complex dtype complex128"),
    (np.full((5, 2), "1.5"), TypeError, r"z must be an array of real numbers, got dtype <U3"),
    ([[1.0, 2.0], [3.0]] + [[1.0, 2.0]] * 3, TypeError, r"z must be an array of real numbers"),
    (np.ones((5, 2), dtype=bool), TypeError, r"z must be an array of real numbers, got dtype bool"),
    (None, TypeError, r"z must be an array of real numbers, got NoneType"),
    (np.ones(5), ValueError, r"z must be \(T, D\) or \(T, n_balls, 2\); got shape \(5,\)"),
    (np.ones((5, 2, 3)), ValueError, r"z must have shape \(5, 2, 2\)"),
    (np.full((5, 2), np.inf), ValueError, r"z must be finite; entry \(0, 0\) is inf"),
])
def test_fit_and_predict_refuse_bad_z_by_name(bad, error, message):
    """Complex z used to be cut to its real part with only a ComplexWarning, strings and
    ragged lists gave NumPy's messages without the argument, bool was taken as 0/1."""
    with pytest.raises(error, match=message):
        fit_linear_readout(bad, np.arange(10.0).reshape(5, 2))
    fit, _, _ = _fit()
    with pytest.raises(error, match=message):
        predict(fit, bad)


@pytest.mark.parametrize("bad, error, message", [
    (np.arange(10.0).reshape(5, 2) * 1j, TypeError, r"targets must be real, got complex"),
    (np.full((5, 2), "x"), TypeError, r"targets must be an array of real numbers, got dtype <U1"),
    (np.ones((5, 2), dtype=bool), TypeError, r"targets must be an array of real numbers, got dtype bool"),
    (np.ones((5, 0)), ValueError, r"targets must have at least 1 column; got shape \(5, 0\)"),
])
def test_fit_refuses_bad_targets_by_name(bad, error, message):
    with pytest.raises(error, match=message):
        fit_linear_readout(np.arange(10.0).reshape(5, 2), bad)


def test_fit_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames; z and targets have 1 rows"):
        fit_linear_readout(np.ones((1, 2)), np.ones((1, 2)))


@pytest.mark.parametrize("readout, error, message", [
    (None, TypeError, r"readout must be a dict .* got NoneType"),
    ([[1.0]], TypeError, r"readout must be a dict .* got list"),
    ({"coef": np.zeros((3, 2))}, ValueError, r"readout is missing 'intercept'"),
    ({"intercept": np.zeros(2)}, ValueError, r"readout is missing 'coef'"),
    ({"coef": np.zeros((4, 2)), "intercept": np.zeros(2)}, ValueError,
     r"z has 3 columns but readout\['coef'\] has 4 rows"),
    ({"coef": np.zeros((3, 2)), "intercept": np.zeros(3)}, ValueError,
     r"readout\['coef'\] has shape \(3, 2\) but readout\['intercept'\] has shape \(3,\)"),
    ({"coef": np.full((3, 2), "a"), "intercept": np.zeros(2)}, TypeError,
     r"readout\['coef'\] must be an array of real numbers, got dtype <U1"),
    ({"coef": np.zeros((3, 2)), "intercept": [True, False]}, TypeError,
     r"readout\['intercept'\] must be an array of real numbers, got dtype bool"),
    ({"coef": np.full((3, 2), np.nan), "intercept": np.zeros(2)}, ValueError,
     r"readout\['coef'\] must be finite; entry \(0, 0\) is nan"),
    ({"coef": np.zeros((3, 2)), "intercept": [0.0, np.inf]}, ValueError,
     r"readout\['intercept'\] must be finite; entry 1 is inf"),
    ({"coef": np.full((3, 2), 1e308), "intercept": np.zeros(2)}, ValueError,
     r"predictions z @ coef \+ intercept overflow float64"),
])
def test_predict_and_score_refuse_a_bad_readout_by_name(readout, error, message):
    """A readout without 'intercept' raised KeyError, None "'NoneType' object is not
    subscriptable", a coef of the wrong shape NumPy's matmul message, a string coef
    UFuncTypeError and a NaN coef NaN scores."""
    _, z, y = _fit()
    z = z * 1e10 if "overflow" in message else z
    with pytest.raises(error, match=message):
        predict(readout, z)
    with pytest.raises(error, match=message):
        score_readout(readout, z, y)


def test_score_refuses_bad_shapes_and_too_few_frames_by_name():
    fit, z, y = _fit()
    with pytest.raises(ValueError, match="z has 20 rows but targets has 19"):
        score_readout(fit, z, y[:19])
    with pytest.raises(ValueError, match=r"readout predicts 2 coordinates but targets have 3"):
        score_readout(fit, z, np.ones((20, 3)))
    with pytest.raises(ValueError, match="at least 2 frames.*have 0 rows"):  # was NumPy's
        score_readout(fit, z[:0], y[:0])          # "zero-size array to reduction operation"
    with pytest.raises(ValueError, match="at least 2 frames.*have 1 rows"):
        score_readout(fit, z[:1], y[:1])
    with pytest.raises(TypeError, match="targets must be real, got complex"):
        score_readout(fit, z, y + 0j)
    with pytest.raises(ValueError, match=r"targets must be finite; entry \(3, 1\) is nan"):
        bad = y.copy()
        bad[3, 1] = np.nan
        score_readout(fit, z, bad)


def _naive_scores(readout, z, y):
    pred = predict(readout, z)
    res = np.sum((y - pred) ** 2, axis=0)
    tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    return 1 - res.sum() / tot.sum(), 1 - res / tot, np.sqrt(res.sum() / y.size)


def test_scores_equal_the_textbook_formulas_bit_for_bit():
    """The sums are taken in units of powers of two (exact); in the usual range the
    results are the very floats of the direct formulas."""
    fit, z, y = _fit()
    s = score_readout(fit, z, y)
    r2, per, rmse = _naive_scores(fit, z, y)
    assert s["r2_overall"] == r2 and s["r2_per_coordinate"] == per.tolist()
    assert s["rmse_px"] == rmse


@pytest.mark.parametrize("scale", [2.0 ** 600, 2.0 ** -600, 2.0 ** 1000, 2.0 ** -1000])
def test_scores_of_exactly_rescaled_targets_are_exact(scale):
    """R² does not depend on the units: scaling targets and readout by a power of two
    (an exact operation) gives the same R² to the last bit and RMSE times the scale.
    Directly, (y − ŷ)² overflows (2^600 and up) or underflows (2^-600) and R² is NaN or 1."""
    fit, z, y = _fit()
    s = score_readout(fit, z, y)
    scaled = {"coef": fit["coef"] * scale, "intercept": fit["intercept"] * scale}
    t = score_readout(scaled, z, y * scale)
    assert t["r2_overall"] == s["r2_overall"]
    assert t["r2_per_coordinate"] == s["r2_per_coordinate"]
    assert t["rmse_px"] == s["rmse_px"] * scale


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e306])
def test_r2_is_right_for_targets_of_any_magnitude(scale):
    """Targets around 1e200 used to give R² = NaN ((y − ŷ)² overflowed). Multiplying by
    a non-power of two rounds each entry (≤ u relative), which moves R² ≲ 1e-15 here."""
    fit, z, y = _fit()
    s = score_readout(fit, z, y)
    scaled = {"coef": fit["coef"] * scale, "intercept": fit["intercept"] * scale}
    with np.errstate(all="raise"):
        t = score_readout(scaled, z, y * scale)
    np.testing.assert_allclose(t["r2_overall"], s["r2_overall"], rtol=1e-12)
    np.testing.assert_allclose(t["r2_per_coordinate"], s["r2_per_coordinate"], rtol=1e-12)
    np.testing.assert_allclose(t["rmse_px"], s["rmse_px"] * scale, rtol=1e-12)


def test_rmse_overflows_only_when_its_true_value_does():
    """y = ±1.5e308 against ŷ = −1.5e308: residuals 0 and 3e308, RMSE = 3e308/√2 ≈ 2.1e308
    > the largest float (inf is the nearest float); R² = 1 − 9e616/4.5e616 = −1 exactly.
    Against ŷ = 0 the RMSE is 1.5e308, representable, and R² = 0."""
    y = np.array([[1.5e308], [-1.5e308]])
    z = np.zeros((2, 1))
    far = score_readout({"coef": np.zeros((1, 1)), "intercept": np.array([-1.5e308])}, z, y)
    assert far == {"r2_overall": -1.0, "r2_per_coordinate": [-1.0], "rmse_px": np.inf}
    near = score_readout({"coef": np.zeros((1, 1)), "intercept": np.array([0.0])}, z, y)
    assert near == {"r2_overall": 0.0, "r2_per_coordinate": [0.0], "rmse_px": 1.5e308}


def test_a_perfect_readout_of_tiny_targets_scores_one():
    """Targets of 1e-300 px: the residuals are 0, SS_tot is not (it underflowed to 0
    directly, giving 0/0)."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(10, 2))
    readout = {"coef": np.array([[1e-300], [0.0]]), "intercept": np.array([0.0])}
    s = score_readout(readout, z, z[:, :1] * 1e-300)
    assert s == {"r2_overall": 1.0, "r2_per_coordinate": [1.0], "rmse_px": 0.0}
