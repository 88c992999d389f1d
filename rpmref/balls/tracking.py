"""Per-map tracking: does each of the encoder's 3 maps follow one ball?

The paper (Sec. 5, Appendix D) reads the 3 feature maps' centres of mass as
"the locations of the 3 different balls" and scores them with one linear
decoder from all 6 numbers z to all 6 ball coordinates. That overall R² cannot
tell one-map-per-ball from mixed maps (each map following a blend of balls):
a 6×6 linear readout un-mixes a linear blend. This module scores the claim map
by map:

1. for every map k and ball b, an affine calibration (2×2 matrix plus offset)
   from the map's centre of mass (x, y) to the ball's centre, fitted by least
   squares on *training* frames (the sigmoid background pulls raw centres of
   mass toward the image centre, so raw positions are shrunk, not wrong);
2. maps are matched to balls by the permutation with the largest summed
   training-frame R² (map order is arbitrary; the matching never sees
   held-out frames);
3. each matched pair is scored on *held-out* frames: R² and the fraction of
   frames where the calibrated map lies within one ball radius of its ball.

R² of a 2-D prediction here is pooled over both coordinates,
R² = 1 − Σ_t ‖ŷ_t − y_t‖² / Σ_t ‖y_t − ȳ‖², with ȳ the mean over the scored
frames. A dead map (constant centre of mass) gets R² ≈ 0; a map that follows
another ball gets R² < 0 against its matched ball.
"""
import itertools

import numpy as np

from rpmref.exact.validation import as_real_array, check_real


def split_maps(z, name="z"):
    """(T, 2K) centres of mass (x1, y1, x2, y2, ...) → (T, K, 2).

    Parameters
    ----------
    z : array_like, shape (T, 2K)
        Latents.
    name : str, default "z"
        The argument's name, for messages.

    Returns
    -------
    ndarray, shape (T, K, 2)
        One (x, y) per map.

    Raises
    ------
    TypeError
        If ``z`` is not an array of real numbers (bool, complex, strings, ragged).
    ValueError
        If it is not finite or not (T, 2K).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.tracking import split_maps
    >>> split_maps(np.arange(6.0).reshape(1, 6))
    array([[[0., 1.],
            [2., 3.],
            [4., 5.]]])
    """
    z = _as_float_array(z, name)
    if z.ndim != 2 or z.shape[1] % 2:
        raise ValueError(f"{name} must have shape (T, 2K) as (x1, y1, x2, y2, ...); "
                         f"got {z.shape}")
    return z.reshape(z.shape[0], z.shape[1] // 2, 2)  # (T, 2K) -> (T, K, 2)


def fit_affine(source, target):
    """Least-squares affine map ``target ≈ source @ A + c``.

    Rank-deficient sources (a dead map) are handled by ``lstsq``'s minimum-norm
    solution, so the prediction is then the training mean.

    Parameters
    ----------
    source : array_like, shape (T, d_in)
        Inputs; T ≥ d_in + 1.
    target : array_like, shape (T, d_out)
        Targets.

    Returns
    -------
    ndarray, shape (d_in + 1, d_out)
        ``coef``, the last row being the offset c.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For non-finite values, mismatched shapes or too few frames.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.tracking import fit_affine
    >>> fit_affine(np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [3.0], [5.0]])).round(12)
    array([[2.],
           [1.]])
    """
    source = _as_float_array(source, "source")
    target = _as_float_array(target, "target")
    if source.ndim != 2 or target.ndim != 2 or source.shape[0] != target.shape[0]:
        raise ValueError(f"source and target must be (T, d) arrays with the same T; "
                         f"got {source.shape} and {target.shape}")
    if source.shape[0] < source.shape[1] + 1:
        raise ValueError(f"need at least {source.shape[1] + 1} frames to fit an affine map "
                         f"from {source.shape[1]} inputs; got {source.shape[0]}")
    design = np.hstack([source, np.ones((source.shape[0], 1))])  # (T, d_in + 1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coef


def apply_affine(coef, source):
    """Apply :func:`fit_affine`'s ``coef`` to ``source``.

    Parameters
    ----------
    coef : ndarray, shape (d_in + 1, d_out)
        The map, offset last.
    source : array_like, shape (T, d_in)
        Inputs.

    Returns
    -------
    ndarray, shape (T, d_out)
        source @ A + c.

    Raises
    ------
    TypeError
        If ``coef`` or ``source`` is not an array of real numbers.
    ValueError
        If ``source`` is not (T, d_in) and finite, or ``coef`` not (d_in + 1, d_out).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.tracking import apply_affine
    >>> apply_affine(np.array([[2.0], [1.0]]), np.array([[3.0]]))
    array([[7.]])
    """
    source = _as_float_array(source, "source")
    coef = _as_float_array(coef, "coef")
    if source.ndim != 2:
        raise ValueError(f"source must be (T, d_in); got shape {source.shape}")
    if coef.ndim != 2 or coef.shape[0] != source.shape[1] + 1:
        raise ValueError(f"coef must be (d_in + 1, d_out) = ({source.shape[1] + 1}, d_out) for "
                         f"source (T, {source.shape[1]}); got {coef.shape}")
    return source @ coef[:-1] + coef[-1]


def r2_pooled(pred, target):
    """R² = 1 − Σ‖pred − target‖² / Σ‖target − mean(target)‖², pooled over columns.

    Parameters
    ----------
    pred : array_like, shape (T, d)
        Predictions.
    target : array_like, shape (T, d)
        Targets.

    Returns
    -------
    float
        R² (≤ 1; negative for predictions worse than the mean).

    Both sums are formed in units of a power of two (an exact rescaling that leaves
    R² as it is), so targets of any magnitude (1e200 or 1e-200 as well as pixels)
    neither overflow to NaN nor underflow into "constant". A target is constant
    when every column holds one value; its rounded mean need not be that value
    (three 0.1s), so this is decided on the values, not on Σ (y − ȳ)².

    Raises
    ------
    ValueError
        If the shapes differ, a value is not finite, there is no frame, or the target
        is constant (R² undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.tracking import r2_pooled
    >>> r2_pooled(np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]]))
    0.5
    """
    pred = _as_float_array(pred, "pred")
    target = _as_float_array(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape; got {pred.shape} "
                         f"and {target.shape}")
    if target.ndim == 0 or target.size == 0:
        raise ValueError(f"pred and target must be (T, d) with at least one frame and one "
                         f"column; got shape {target.shape}")
    if np.all(target.max(axis=0) == target.min(axis=0)):
        raise ValueError("target is constant over the scored frames; R² is undefined")
    e_tot = _exponent_above(target)
    scaled = np.ldexp(target, -e_tot)                       # |scaled| < 1 (exact)
    ss_tot = np.sum((scaled - scaled.mean(axis=0)) ** 2)    # Σ (y − ȳ)² / 4^e_tot
    if ss_tot == 0:  # spread below 2^-537 of the largest |target|: underflows even so
        raise ValueError("target is constant over the scored frames to float64's "
                         "precision; R² is undefined")
    e_res = _exponent_above(np.maximum(np.abs(pred), np.abs(target)))
    ss_res = np.sum((np.ldexp(pred, -e_res) - np.ldexp(target, -e_res)) ** 2)
    with np.errstate(over="ignore"):  # SS_res / SS_tot beyond float64: R² is −inf
        return float(1.0 - np.ldexp(ss_res / ss_tot, 2 * (e_res - e_tot)))


def _exponent_above(a):
    """The e with max |a| < 2^e (frexp's exponent; 0 for an all-zero a): a / 2^e is exact."""
    return int(np.frexp(np.max(np.abs(a)))[1])


def map_ball_r2(z_fit, pos_fit, z_score=None, pos_score=None):
    """R² of every (map, ball) pair after an affine calibration fitted on ``z_fit``.

    Parameters
    ----------
    z_fit : array_like, shape (T, 2K)
        Centres of mass of the fitting frames.
    pos_fit : array_like, shape (T, n_balls, 2)
        Ball centres (x, y) of the fitting frames.
    z_score : array_like, shape (T', 2K), optional
        Centres of mass of the scored frames (default: the fitting frames).
    pos_score : array_like, shape (T', n_balls, 2), optional
        Ball centres of the scored frames.

    Returns
    -------
    r2 : ndarray, shape (K, n_balls)
        Pooled R² of every pair on the scored frames.
    coefs : list of list of ndarray
        coefs[k][b] of shape (3, 2), the calibration of map k to ball b.

    Raises
    ------
    TypeError, ValueError
        For non-numeric or non-finite input, wrong shapes, mismatched frame counts,
        or a constant ball position.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, make_video
    >>> _, positions = make_video(BallsConfig(n_frames=40, size=16, diameter=3.0), seed=0)
    >>> z = positions[:, [2, 0, 1]].reshape(40, 6) * 0.5 + 3.0   # map k follows ball (2, 0, 1)[k]
    >>> from rpmref.balls.tracking import map_ball_r2
    >>> r2, coefs = map_ball_r2(z, positions)
    >>> r2.argmax(axis=1).tolist(), r2.max(axis=1).round(12).tolist()
    ([2, 0, 1], [1.0, 1.0, 1.0])
    """
    if (z_score is None) != (pos_score is None):
        raise ValueError("z_score and pos_score go together: give both (scored frames) or "
                         "neither (score on the fitting frames)")
    maps_fit, pos_fit = split_maps(z_fit, "z_fit"), _positions(pos_fit, "pos_fit")
    if z_score is None:
        maps_score, pos_score = maps_fit, pos_fit
    else:
        maps_score, pos_score = (split_maps(z_score, "z_score"),
                                 _positions(pos_score, "pos_score"))
    for name, maps, pos in (("fit", maps_fit, pos_fit), ("score", maps_score, pos_score)):
        if maps.shape[0] != pos.shape[0]:
            raise ValueError(f"z_{name} has {maps.shape[0]} frames but pos_{name} has "
                             f"{pos.shape[0]}")
    n_maps, n_balls = maps_fit.shape[1], pos_fit.shape[1]
    r2 = np.empty((n_maps, n_balls))
    coefs = [[None] * n_balls for _ in range(n_maps)]
    for k in range(n_maps):
        for b in range(n_balls):
            coef = fit_affine(maps_fit[:, k], pos_fit[:, b])
            coefs[k][b] = coef
            r2[k, b] = r2_pooled(apply_affine(coef, maps_score[:, k]), pos_score[:, b])
    return r2, coefs


def best_matching(score):
    """The assignment ball b → map ``perm[b]`` maximising Σ_b score[perm[b], b].

    Brute force over all ordered choices of n_balls distinct maps (3! = 6 for the
    paper's setting). Ties go to the lexicographically first assignment.

    Parameters
    ----------
    score : array_like, shape (K, n_balls)
        K ≥ n_balls, finite.

    Returns
    -------
    tuple of int
        The map of each ball.

    Raises
    ------
    ValueError
        If K < n_balls or a score is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.tracking import best_matching
    >>> best_matching(np.array([[0.1, 0.9], [0.8, 0.2]]))
    (1, 0)
    """
    score = _as_float_array(score, "score")
    if score.ndim != 2 or score.shape[0] < score.shape[1]:
        raise ValueError(f"score must be (K, n_balls) with K >= n_balls; got {score.shape}")
    if not np.all(np.isfinite(score)):
        raise ValueError("score must be finite")
    n_maps, n_balls = score.shape
    best, best_total = None, -np.inf
    for perm in itertools.permutations(range(n_maps), n_balls):
        total = sum(score[perm[b], b] for b in range(n_balls))
        if total > best_total:
            best, best_total = perm, total
    return tuple(int(k) for k in best)


def tracking_metrics(z_train, pos_train, z_test, pos_test, radius):
    """Per-map tracking scores (see the module docstring).

    Calibration and matching on the training frames, scores on the held-out frames.

    Parameters
    ----------
    z_train : array_like, shape (T, 2K)
        Training latents.
    pos_train : array_like, shape (T, n_balls, 2)
        Training ball centres.
    z_test : array_like, shape (T', 2K)
        Held-out latents.
    pos_test : array_like, shape (T', n_balls, 2)
        Held-out ball centres.
    radius : float
        Ball radius in pixels (> 0).

    Returns
    -------
    dict
        Plain Python values: ``map_for_ball`` ([n_balls] index of the map matched to
        each ball); ``matched_r2`` ([n_balls] held-out R² of each ball's matched map);
        ``within_radius`` ([n_balls] held-out fraction of frames with
        ‖calibrated map − ball‖ ≤ radius); ``matched_rmse_px`` ([n_balls] held-out
        RMSE, pixels per coordinate); ``min_matched_r2``, ``mean_matched_r2``,
        ``mean_within_radius``; ``r2_train``, ``r2_test`` ((K × n_balls) nested
        lists, every map against every ball).

    Raises
    ------
    TypeError, ValueError
        As for :func:`map_ball_r2`; ValueError for a radius that is not a positive finite
        number, TypeError for one that is not a real number; ValueError if there is no
        ball, fewer maps than balls, or the held-out arrays have other counts of maps or
        balls.

    Examples
    --------
    Maps that are affine images of the balls (in another order) track perfectly:

    >>> from rpmref.balls import BallsConfig, make_video
    >>> _, positions = make_video(BallsConfig(n_frames=40, size=16, diameter=3.0), seed=0)
    >>> z = positions[:, [2, 0, 1]].reshape(40, 6) * 0.5 + 3.0   # map k follows ball (2, 0, 1)[k]
    >>> from rpmref.balls.tracking import tracking_metrics
    >>> scores = tracking_metrics(z[:30], positions[:30], z[30:], positions[30:], radius=1.5)
    >>> scores["map_for_ball"], round(scores["min_matched_r2"], 12), scores["mean_within_radius"]
    ([1, 2, 0], 1.0, 1.0)
    """
    radius = check_real(radius, "radius (pixels)", minimum=0, inclusive=(False, True))
    # checked here under the caller's names (map_ball_r2 would say z_fit, z_score)
    maps_train, maps_test = split_maps(z_train, "z_train"), split_maps(z_test, "z_test")
    pos_train, pos_test = _positions(pos_train, "pos_train"), _positions(pos_test, "pos_test")
    if pos_train.shape[1] == 0:  # no ball: no matched score to take min or mean of
        raise ValueError(f"pos_train must hold at least one ball; got shape {pos_train.shape}")
    if maps_train.shape[1] < pos_train.shape[1]:
        raise ValueError(f"z_train has {maps_train.shape[1]} maps but pos_train has "
                         f"{pos_train.shape[1]} balls; every ball needs a map of its own")
    if maps_test.shape[1:] != maps_train.shape[1:] or pos_test.shape[1:] != pos_train.shape[1:]:
        raise ValueError(f"z_test has {maps_test.shape[1]} maps and pos_test {pos_test.shape[1]} "
                         f"balls; z_train and pos_train have {maps_train.shape[1]} and "
                         f"{pos_train.shape[1]}")
    r2_train, coefs = map_ball_r2(z_train, pos_train)
    r2_test, _ = map_ball_r2(z_train, pos_train, z_test, pos_test)
    perm = best_matching(r2_train)
    within, rmse = [], []
    for b, k in enumerate(perm):
        pred = apply_affine(coefs[k][b], maps_test[:, k])  # (T', 2)
        dist = np.linalg.norm(pred - pos_test[:, b], axis=1)
        within.append(float(np.mean(dist <= radius)))
        rmse.append(float(np.sqrt(np.mean((pred - pos_test[:, b]) ** 2))))
    matched = [float(r2_test[k, b]) for b, k in enumerate(perm)]
    return {
        "map_for_ball": list(perm),
        "matched_r2": matched,
        "within_radius": within,
        "matched_rmse_px": rmse,
        "min_matched_r2": min(matched),
        "mean_matched_r2": float(np.mean(matched)),
        "mean_within_radius": float(np.mean(within)),
        "r2_train": r2_train.tolist(),
        "r2_test": r2_test.tolist(),
    }


def _positions(pos, name):
    pos = _as_float_array(pos, name)
    if pos.ndim != 3 or pos.shape[2] != 2:
        raise ValueError(f"{name} must have shape (T, n_balls, 2); got {pos.shape}")
    return pos


def _as_float_array(a, name):
    # TypeError for bool, complex, strings ("1.5" is not parsed) and ragged lists
    a = as_real_array(a, name, finite=False, allow_empty=True)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a
