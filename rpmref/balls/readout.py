"""Linear readout from the latents z to the true ball centres (Appendix D, evaluation).

The decoder is ŷ = z A + c, fit by least squares on the training video; it is
scored on a held-out video by R² and RMSE in pixels. Because it is linear and
unrestricted, it is indifferent to which map tracks which ball.
"""
import numpy as np


def _as_2d(name, a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3:  # positions (T, n_balls, 2) -> (T, 2·n_balls) = (x1, y1, x2, y2, ...)
        a = a.reshape(a.shape[0], -1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be (T, D) or (T, n_balls, 2); got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a


def fit_linear_readout(z, targets):
    """Least squares with intercept: argmin_{A, c} ‖z A + c − targets‖².

    Solved by ``lstsq`` on [z, 1], so a rank-deficient z (e.g. a collapsed map)
    gives the minimum-norm solution.

    Parameters
    ----------
    z : array_like, shape (T, D)
        Latents, one row per frame.
    targets : array_like, shape (T, K) or (T, n_balls, 2)
        Targets, or ball positions (flattened to K = 2·n_balls).

    Returns
    -------
    dict
        ``coef`` (D, K) and ``intercept`` (K,).

    Raises
    ------
    ValueError
        If the arrays are not finite or their numbers of rows differ.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import fit_linear_readout
    >>> z = np.arange(8.0).reshape(4, 2) ** [1, 2]
    >>> readout = fit_linear_readout(z, 3 * z[:, :1] - 1)
    >>> readout["coef"].round(10).ravel().tolist(), readout["intercept"].round(10).tolist()
    ([3.0, 0.0], [-1.0])
    """
    z, y = _as_2d("z", z), _as_2d("targets", targets)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but targets has {y.shape[0]}")
    if z.shape[0] < 2:
        raise ValueError("fit_linear_readout needs at least 2 frames")
    design = np.hstack([z, np.ones((z.shape[0], 1))])  # (T, D + 1)
    sol, *_ = np.linalg.lstsq(design, y, rcond=None)
    return {"coef": sol[:-1], "intercept": sol[-1]}


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
    ValueError
        If ``z`` is not a finite (T, D) array (or (T, n_balls, 2), flattened).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.readout import predict
    >>> predict({"coef": np.array([[2.0]]), "intercept": np.array([1.0])}, np.array([[1.0], [2.0]]))
    array([[3.],
           [5.]])
    """
    return _as_2d("z", z) @ readout["coef"] + readout["intercept"]


def _coordinate_name(k, targets_ndim):
    return f"{k} (ball {k // 2} {'xy'[k % 2]})" if targets_ndim == 3 else str(k)


def score_readout(readout, z, targets):
    """R² and RMSE of the readout on (z, targets): the paper's evaluation of the encoder
    (Sec. 5, Appendix D: a linear decoder from z to the ball coordinates).

    r2_per_coordinate[k] = 1 − Σ_t (y − ŷ)²_tk / Σ_t (y_tk − ȳ_k)²;
    r2_overall pools the sums over all coordinates (1 − SS_res / SS_tot);
    rmse_px = √(mean over frames and coordinates of (y − ŷ)²), in pixels.

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
    ValueError
        If a target coordinate never changes: its R² is undefined, not −∞ or NaN
        (SS_tot = 0); the message names the coordinate (score on a video where
        every coordinate varies, or use rmse_px of ``predict``). Also for shapes
        that do not fit the readout.

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
    y = _as_2d("targets", targets)
    pred = predict(readout, z)
    if pred.shape != y.shape:
        raise ValueError(f"readout predicts shape {pred.shape} but targets have shape {y.shape}")
    constant = np.flatnonzero(y.max(axis=0) == y.min(axis=0))
    if constant.size:
        names = ", ".join(_coordinate_name(int(k), np.ndim(targets)) for k in constant)
        raise ValueError(f"targets coordinate {names} is constant over all {y.shape[0]} frames, "
                         f"so its R² (1 − SS_res / SS_tot with SS_tot = 0) is undefined")
    res = np.sum((y - pred) ** 2, axis=0)
    tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    return {"r2_overall": float(1 - res.sum() / tot.sum()),
            "r2_per_coordinate": [float(v) for v in 1 - res / tot],
            "rmse_px": float(np.sqrt(res.sum() / y.size))}
