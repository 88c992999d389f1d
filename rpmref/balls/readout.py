"""Linear readout from the latents z to the true ball centres (Appendix D, evaluation).

The decoder is ŷ = z A + c, fit by least squares on the training video; it is
scored on a held-out video by R² and RMSE in pixels. Because it is linear and
unrestricted, it is indifferent to which map tracks which ball.
"""
from collections.abc import Mapping

import numpy as np

from rpmref.exact.validation import as_real_array, check_shape


def _as_2d(name, a, *, min_columns=0):
    """``a`` as a finite float64 (T, D) array; (T, n_balls, 2) positions are flattened to
    (T, 2·n_balls) = (x1, y1, x2, y2, ...). Returns (array, number of axes given)."""
    a = as_real_array(a, name, allow_empty=True)   # TypeError for bool, complex, strings, ragged
    ndim = a.ndim
    if ndim == 3:
        check_shape(a, name, (a.shape[0], a.shape[1], 2), "T, n_balls, (x, y)")
        a = a.reshape(a.shape[0], 2 * a.shape[1])    # not -1: T may be 0
    if a.ndim != 2:
        raise ValueError(f"{name} must be (T, D) or (T, n_balls, 2); got shape {a.shape}")
    if a.shape[1] < min_columns:
        raise ValueError(f"{name} must have at least {min_columns} column; got shape {a.shape}")
    return a, ndim


def _check_readout(readout):
    """``coef`` (D, K) and ``intercept`` (K,) of a readout dict, as finite float64 arrays."""
    if not isinstance(readout, Mapping):
        raise TypeError(f"readout must be a dict with 'coef' (D, K) and 'intercept' (K,) as "
                        f"from fit_linear_readout; got {type(readout).__name__}")
    missing = [key for key in ("coef", "intercept") if key not in readout]
    if missing:
        raise ValueError(f"readout is missing {', '.join(repr(k) for k in missing)}; expected "
                         f"'coef' (D, K) and 'intercept' (K,) as from fit_linear_readout")
    coef = as_real_array(readout["coef"], "readout['coef']", ndim=2, allow_empty=True)
    intercept = as_real_array(readout["intercept"], "readout['intercept']", ndim=1)
    if coef.shape[1] != intercept.shape[0]:
        raise ValueError(f"readout['coef'] has shape {coef.shape} but readout['intercept'] has "
                         f"shape {intercept.shape}; they must be (D, K) and (K,)")
    return coef, intercept


def fit_linear_readout(z, targets):
    """Least squares with intercept: argmin_{A, c} ‖z A + c − targets‖².

    Solved by ``lstsq`` on [z, 1], so a rank-deficient z (e.g. a collapsed map)
    gives the minimum-norm solution.

    Parameters
    ----------
    z : array_like, shape (T, D)
        Latents, one row per frame (real numbers; bool is refused).
    targets : array_like, shape (T, K) or (T, n_balls, 2)
        Targets, or ball positions (flattened to K = 2·n_balls).

    Returns
    -------
    dict
        ``coef`` (D, K) and ``intercept`` (K,).

    Raises
    ------
    TypeError
        If ``z`` or ``targets`` is not an array of real numbers (bool, complex,
        strings, ragged lists, None).
    ValueError
        If the arrays are not finite, have the wrong number of axes, fewer than 2
        rows, no target column, or different numbers of rows; or if the solution
        overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import fit_linear_readout
    >>> z = np.arange(8.0).reshape(4, 2) ** [1, 2]
    >>> readout = fit_linear_readout(z, 3 * z[:, :1] - 1)
    >>> readout["coef"].round(10).ravel().tolist(), readout["intercept"].round(10).tolist()
    ([3.0, 0.0], [-1.0])
    """
    z, _ = _as_2d("z", z)
    y, _ = _as_2d("targets", targets, min_columns=1)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but targets has {y.shape[0]}")
    if z.shape[0] < 2:
        raise ValueError(f"fit_linear_readout needs at least 2 frames; z and targets have "
                         f"{z.shape[0]} rows")
    design = np.hstack([z, np.ones((z.shape[0], 1))])  # (T, D + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        sol, *_ = np.linalg.lstsq(design, y, rcond=None)
    if not np.all(np.isfinite(sol)):
        raise ValueError("the least-squares readout of targets on z overflows float64; "
                         "rescale z or targets")
    return {"coef": sol[:-1], "intercept": sol[-1]}


def _predict(coef, intercept, z):
    with np.errstate(over="ignore", invalid="ignore"):
        pred = z @ coef + intercept
    if not np.all(np.isfinite(pred)):
        raise ValueError("the readout's predictions z @ coef + intercept overflow float64 "
                         "(z or readout['coef'] too large)")
    return pred


def predict(readout, z):
    """ŷ = z A + c of a linear readout.

    Parameters
    ----------
    readout : dict
        ``coef`` (D, K) and ``intercept`` (K,), as from :func:`fit_linear_readout`.
    z : array_like, shape (T, D)
        Latents.

    Returns
    -------
    ndarray, shape (T, K)
        The predictions.

    Raises
    ------
    TypeError
        If ``readout`` is not a dict, or ``z``, ``readout['coef']`` or
        ``readout['intercept']`` is not an array of real numbers.
    ValueError
        If ``readout`` lacks ``coef`` or ``intercept``, an array is not finite or has
        the wrong shape (``z`` must be (T, D) with D the rows of ``coef``, or
        (T, n_balls, 2), flattened), or the predictions overflow float64.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.readout import predict
    >>> predict({"coef": np.array([[2.0]]), "intercept": np.array([1.0])}, np.array([[1.0], [2.0]]))
    array([[3.],
           [5.]])
    """
    coef, intercept = _check_readout(readout)
    z, _ = _as_2d("z", z)
    if z.shape[1] != coef.shape[0]:
        raise ValueError(f"z has {z.shape[1]} columns but readout['coef'] has {coef.shape[0]} "
                         f"rows (shape {coef.shape}); z must be (T, D) for coef (D, K)")
    return _predict(coef, intercept, z)


def _coordinate_name(k, targets_ndim):
    return f"{k} (ball {k // 2} {'xy'[k % 2]})" if targets_ndim == 3 else str(k)


def _scaled_sum_of_squares(d, exponent):
    """Σ_t d_tk² per column as (mantissa m_k, even exponent E_k) with the sum = m_k · 2^E_k.

    ``d`` is divided by 2^e_k, the power of two just above max_t |d_tk| (exact), so
    nothing overflows or underflows; m_k ∈ [1/4, T] (0 for a zero column). ``exponent``
    is the power of two ``d`` was already divided by."""
    peak = np.max(np.abs(d), axis=0)
    e = np.frexp(peak)[1]
    mantissa = np.sum(np.ldexp(d, -e) ** 2, axis=0)
    return mantissa, 2 * (exponent + e)


def _ldexp(m, e):
    with np.errstate(over="ignore"):  # beyond float64: ±inf is the nearest float
        return np.ldexp(m, e)


def score_readout(readout, z, targets):
    """R² and RMSE of the readout on (z, targets): the paper's evaluation of the encoder
    (Sec. 5, Appendix D: a linear decoder from z to the ball coordinates).

    r2_per_coordinate[k] = 1 − Σ_t (y − ŷ)²_tk / Σ_t (y_tk − ȳ_k)²;
    r2_overall pools the sums over all coordinates (1 − SS_res / SS_tot);
    rmse_px = √(mean over frames and coordinates of (y − ŷ)²), in pixels.

    The sums are computed in units of powers of two chosen per coordinate (an exact
    rescaling), so R², which does not depend on the units, is right for targets of
    any magnitude (1e200 or 1e-200 as well as pixels), and RMSE is ±inf only if its
    true value exceeds float64.

    Parameters
    ----------
    readout : dict
        ``coef`` (D, K) and ``intercept`` (K,), as from :func:`fit_linear_readout`.
    z : array_like, shape (T, D)
        Latents.
    targets : array_like, shape (T, K) or (T, n_balls, 2)
        Targets, or ball positions.

    Returns
    -------
    dict
        ``r2_overall`` (float), ``r2_per_coordinate`` (list of K floats) and
        ``rmse_px`` (float).

    Raises
    ------
    TypeError
        If ``readout`` is not a dict, or ``z``, ``targets`` or its arrays are not
        arrays of real numbers (bool, complex, strings, ragged lists, None).
    ValueError
        If a target coordinate never changes: its R² is undefined, not −∞ or NaN
        (SS_tot = 0); the message names the coordinate (score on a video where
        every coordinate varies, or use rmse_px of ``predict``). Also for fewer
        than 2 frames, non-finite arrays, a ``readout`` without ``coef`` or
        ``intercept``, and shapes that do not fit the readout.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import fit_linear_readout, score_readout
    >>> z = np.arange(8.0).reshape(4, 2) ** [1, 2]
    >>> y = 3 * z[:, :1] - 1
    >>> scores = score_readout(fit_linear_readout(z, y), z, y)
    >>> round(scores["r2_overall"], 10), round(scores["rmse_px"], 10)
    (1.0, 0.0)
    """
    coef, intercept = _check_readout(readout)
    y, targets_ndim = _as_2d("targets", targets, min_columns=1)
    z, _ = _as_2d("z", z)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but targets has {y.shape[0]}")
    if z.shape[1] != coef.shape[0]:
        raise ValueError(f"z has {z.shape[1]} columns but readout['coef'] has {coef.shape[0]} "
                         f"rows (shape {coef.shape}); z must be (T, D) for coef (D, K)")
    if y.shape[1] != coef.shape[1]:
        raise ValueError(f"readout predicts {coef.shape[1]} coordinates but targets have "
                         f"{y.shape[1]} (shape {y.shape})")
    if y.shape[0] < 2:
        raise ValueError(f"score_readout needs at least 2 frames (R² compares each coordinate "
                         f"with its mean); z and targets have {y.shape[0]} rows")
    pred = _predict(coef, intercept, z)
    peak = np.max(np.abs(y), axis=0)
    ey = np.frexp(peak)[1]
    ys = np.ldexp(y, -ey)                       # |ys| < 1 (exact)
    dev = ys - ys.mean(axis=0)                  # (y − ȳ) / 2^ey, |dev| < 2
    constant = np.flatnonzero((y.max(axis=0) == y.min(axis=0)) | ~np.any(dev, axis=0))
    if constant.size:
        names = ", ".join(_coordinate_name(int(k), targets_ndim) for k in constant)
        raise ValueError(f"targets coordinate {names} is constant over all {y.shape[0]} frames, "
                         f"so its R² (1 − SS_res / SS_tot with SS_tot = 0) is undefined")
    tot, tot_exp = _scaled_sum_of_squares(dev, ey)          # SS_tot = tot · 2^tot_exp
    eq = np.frexp(np.maximum(peak, np.max(np.abs(pred), axis=0)))[1]
    res, res_exp = _scaled_sum_of_squares(np.ldexp(y, -eq) - np.ldexp(pred, -eq), eq)
    fitted = res > 0                                         # SS_res = res · 2^res_exp
    per_coordinate = 1 - _ldexp(res / tot, np.where(fitted, res_exp, tot_exp) - tot_exp)
    top = int(tot_exp.max())
    overall = 1 - _ldexp(res, res_exp - top).sum() / _ldexp(tot, tot_exp - top).sum()
    rmse = 0.0
    if fitted.any():
        top = int(res_exp[fitted].max())                     # even: √(2^top) = 2^(top/2)
        rmse = _ldexp(np.sqrt(_ldexp(res, res_exp - top).sum() / y.size), top // 2)
    return {"r2_overall": float(overall),
            "r2_per_coordinate": [float(v) for v in per_coordinate],
            "rmse_px": float(rmse)}
