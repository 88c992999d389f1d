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

    z: (T, D); targets: (T, K) or positions (T, n_balls, 2). Returns dict
    ``coef`` (D, K) and ``intercept`` (K,). Solved by ``lstsq`` on [z, 1], so a
    rank-deficient z (e.g. a collapsed map) gives the minimum-norm solution.
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
    """ŷ = z A + c; z (T, D) → (T, K)."""
    return _as_2d("z", z) @ readout["coef"] + readout["intercept"]


def _coordinate_name(k, targets_ndim):
    return f"{k} (ball {k // 2} {'xy'[k % 2]})" if targets_ndim == 3 else str(k)


def score_readout(readout, z, targets):
    """R² and RMSE of the readout on (z, targets).

    r2_per_coordinate[k] = 1 − Σ_t (y − ŷ)²_tk / Σ_t (y_tk − ȳ_k)²;
    r2_overall pools the sums over all coordinates (1 − SS_res / SS_tot);
    rmse_px = √(mean over frames and coordinates of (y − ŷ)²), in pixels.

    R² of a coordinate that never changes (all its values equal, so
    SS_tot = 0) is undefined, not −∞ or NaN: such targets raise ValueError
    naming the coordinate (score on a video where every coordinate varies, or
    use rmse_px of ``predict``).
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
