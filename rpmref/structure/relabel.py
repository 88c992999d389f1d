"""Relabellings of the latent states: what the mutual information cannot see and I_∞ can.

A relabelling σ (a permutation of the k latent states) turns the encoder P(z | x)
into P(σ(z) | x); the recognition joint becomes P_σ(σz, σz') = P(z, z'). Any
function of the joint that ignores the labels — the mutual information I(Z; Z') —
is unchanged: this is the invariance of Tschannen et al. (2019) in its discrete
form. The infinite-sample InfoNCE objective I_∞ (Eq. 7) with the *local* critic

    f(z, z') = −d(z, z')² / (2ℓ²)        (Eq. 27, d the latent geometry's distance)

is not: it is the ELBO of the RPM with the energy prior of that critic (E5,
Eq. 21–25), a prior that puts adjacent latent states together. ``relabelling_table``
evaluates both for many labellings of one encoder; ``invariance_summary`` reads off
the spreads, the rank of the identity labelling and whether the labellings tied with
it are exactly the geometry's symmetries.

Lengthscale: for each labelling ℓ maximises I_∞ over [0.1, 10], the range of
``LENGTHSCALES`` (a log grid at 21 points, refined 8× around the best point, then Newton
on s = −1/(2ℓ²), in which I_∞ is concave: the maximum to float64 precision; the best
I_∞ of any labelling lies inside the range), so a scrambled labelling gets its own best
ℓ and is not penalised for a ℓ tuned to the identity, and labellings tie exactly when
their maxima do. The reported I_∞ is ``rpmref.infonce_limit`` at that ℓ.
"""
import itertools
import math

import numpy as np

from rpmref.exact import (
    data_constant, energy_prior, expected_elbo, infonce_limit, mutual_information,
    recognition_joint)
from rpmref.exact.validation import (
    as_real_array, check_conditional, check_index_array, check_int, check_permutation, check_pmf,
    check_real, check_seed)
from rpmref.exact.discrete import MAX_TENSOR_ELEMENTS
from rpmref.structure.geometry import check_geometry, coarse_labels, symmetries

#: ℓ values over which each labelling's I_∞ is maximised.
LENGTHSCALES = np.geomspace(0.1, 10.0, 21)
#: Largest k for which every one of the k! labellings is enumerated (8! = 40,320).
MAX_EXHAUSTIVE = 8
#: Labellings drawn when k > MAX_EXHAUSTIVE.
DEFAULT_SAMPLE = 10_000
#: Most labellings ``labellings`` draws when k > MAX_EXHAUSTIVE: at most 100,000 / 9! ≈ 28 %
#: of all k! labellings, so drawing distinct ones by rejection stays cheap.
MAX_SAMPLE = 100_000
#: Floats per array of one chunk of the vectorised ℓ search (chunk × len(lengthscales) × k²):
#: 2²² (32 MB), so memory does not grow with k (2000 labellings at k = 8 and 21 ℓ values).
_CHUNK_FLOATS = 2 ** 22


def one_hot(labels, k):
    """The deterministic encoder P(z | x) = 1[z = labels[x]] as a table.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        The latent state of each data state, in 0..k−1.
    k : int
        The number of latent states (≥ 1).

    Returns
    -------
    ndarray, shape (n, k)
        Rows are one-hot pmfs.

    Raises
    ------
    ValueError
        ``k`` < 1, ``labels`` not 1-D or with an entry outside 0..k−1, or an (n, k) table
        beyond ``MAX_TENSOR_ELEMENTS`` entries (refused before allocating it).
    TypeError
        ``k`` not an integer, or ``labels`` not integers.

    Examples
    --------
    >>> from rpmref.structure import one_hot
    >>> one_hot([0, 2, 1], 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    k = check_int(k, "k", minimum=1)
    labels = check_index_array(labels, "labels", k)
    if labels.size * k > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"k = {k} with {labels.size} labels makes a ({labels.size}, {k}) table, "
                         f"beyond MAX_TENSOR_ELEMENTS = {MAX_TENSOR_ELEMENTS} (rpmref.exact.discrete)")
    enc = np.zeros((labels.size, k))
    enc[np.arange(labels.size), labels] = 1.0
    return enc


def coarse_encoder(data_geo, latent_geo):
    """The topographic encoder: each data state to its contiguous block (``coarse_labels``).

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states, of the same kind and no larger.

    Returns
    -------
    ndarray, shape (n, k)
        One-hot rows.

    Raises
    ------
    ValueError
        As for ``coarse_labels``.

    Examples
    --------
    >>> from rpmref.structure import coarse_encoder, geometry
    >>> coarse_encoder(geometry("line", 4), geometry("line", 2))
    array([[1., 0.],
           [1., 0.],
           [0., 1.],
           [0., 1.]])
    """
    return one_hot(coarse_labels(data_geo, latent_geo), check_geometry(latent_geo, "latent_geo").n)


def local_critic(latent_geo, lengthscale):
    """The local critic f(z, z') = −d(z, z')² / (2ℓ²) on the latent geometry (Eq. 27).

    Parameters
    ----------
    latent_geo : Geometry
        Supplies d.
    lengthscale : float
        ℓ > 0.

    Returns
    -------
    ndarray, shape (k, k)
        f(z, z') in nats; 0 on the diagonal, < 0 off it.

    Raises
    ------
    ValueError
        ``lengthscale`` not positive or not finite.
    TypeError
        ``lengthscale`` not a real number.

    Notes
    -----
    Computed as −(d/ℓ)²/2, so every ℓ > 0 gives the correctly rounded value: 0 on the
    diagonal, −inf where d²/(2ℓ²) exceeds the float64 range (tiny ℓ), −0 where it
    underflows (huge ℓ).

    Examples
    --------
    >>> from rpmref.structure import geometry, local_critic
    >>> local_critic(geometry("line", 3), 1.0)       # −d²/2
    array([[-0. , -0.5, -2. ],
           [-0.5, -0. , -0.5],
           [-2. , -0.5, -0. ]])
    """
    latent_geo = check_geometry(latent_geo, "latent_geo")
    ell = check_real(lengthscale, "lengthscale", minimum=0.0, inclusive=(False, True))
    with np.errstate(over="ignore"):            # d/ℓ beyond the float range: f = −inf, exactly
        return -0.5 * (latent_geo.distance / ell) ** 2


def relabel_encoder(enc, perm):
    """P(σ(z) | x): the encoder with latent state z renamed perm[z] (its columns permuted).

    Parameters
    ----------
    enc : array_like, shape (n, k)
        P(z | x).
    perm : array_like of int, shape (k,)
        A permutation σ of 0..k−1.

    Returns
    -------
    ndarray, shape (n, k)
        Column perm[z] of the result is column z of ``enc``.

    Raises
    ------
    ValueError
        ``enc`` not a conditional table (2-D, finite, non-negative rows summing to 1), or
        ``perm`` not a permutation of 0..k−1.
    TypeError
        ``enc`` not real numbers, or ``perm`` not integers.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import one_hot, relabel_encoder
    >>> labels, perm = np.array([0, 1, 1, 2]), np.array([2, 0, 1])
    >>> # relabelling a deterministic code renames its labels: z ↦ perm[z]
    >>> np.array_equal(relabel_encoder(one_hot(labels, 3), perm), one_hot(perm[labels], 3))
    True
    """
    enc = np.asarray(check_conditional(enc, "enc"))
    perm = check_permutation(perm, "perm", enc.shape[1])
    return enc[:, np.argsort(perm)]


def labellings(k, max_count=DEFAULT_SAMPLE, seed=0, include=None):
    """Permutations of 0..k−1 (relabellings of the latent states), the identity first.

    k ≤ ``MAX_EXHAUSTIVE``: all k!, in lexicographic order (``max_count``, ``seed`` and
    ``include`` unused). Otherwise ``max_count`` distinct ones (at most k!): the identity,
    the rows of ``include`` (e.g. the geometry's symmetries) and uniformly random
    permutations from ``seed``.

    Parameters
    ----------
    k : int
        The number of latent states (≥ 1).
    max_count : int, default DEFAULT_SAMPLE (10,000)
        How many to return when k > ``MAX_EXHAUSTIVE`` (≥ 1); with k, the labellings
        actually drawn, min(max_count, k!), must be at most ``MAX_SAMPLE`` and their
        table (min(max_count, k!), k) within ``MAX_TENSOR_ELEMENTS`` entries.
    seed : int, default 0
        Seed of the random permutations.
    include : sequence of permutations, optional
        Rows to include after the identity (when sampling).

    Returns
    -------
    ndarray of int64, shape (m, k)

    Raises
    ------
    ValueError
        ``k`` or ``max_count`` < 1, more than ``MAX_SAMPLE`` labellings or a table beyond
        ``MAX_TENSOR_ELEMENTS`` to draw (refused before drawing), ``max_count`` below the
        number of distinct rows of the identity and ``include``, ``include`` not 2-D (m, k), or a row of it not a
        permutation of 0..k−1.
    TypeError
        ``k`` or ``max_count`` not an integer, or ``include`` not a sequence of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import labellings
    >>> labellings(3).tolist()
    [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
    >>> sample = labellings(9, max_count=5, seed=0, include=[np.arange(9)[::-1]])
    >>> sample.shape, sample[0].tolist() == list(range(9)), sample[1].tolist() == list(range(9))[::-1]
    ((5, 9), True, True)
    >>> len({tuple(row) for row in sample})       # distinct
    5
    """
    k = check_int(k, "k", minimum=1)
    max_count = check_int(max_count, "max_count", minimum=1)   # checked even where unused
    seed = check_seed(seed, "seed")
    if k <= MAX_EXHAUSTIVE:
        return np.array(list(itertools.permutations(range(k))), dtype=np.int64).reshape(-1, k)
    target = _sample_size(k, max_count)
    fixed = [np.arange(k)]
    if include is not None:
        if not np.iterable(include) or isinstance(include, (str, bytes)):
            raise TypeError(f"include must be a sequence of permutations (rows of length {k}), "
                            f"got {type(include).__name__}")
        rows = np.asarray(include)
        if rows.ndim != 2 or rows.shape[1] != k:
            raise ValueError(f"include must be (m, {k}) permutations, one per row, got shape "
                             f"{rows.shape}")
        fixed += [check_permutation(p, "include row", k) for p in rows]
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for perm in fixed:
        if tuple(perm) not in seen:
            seen.add(tuple(perm))
            out.append(perm)
    if len(out) > target:     # keeping the first max_count would drop rows of include unsaid
        raise ValueError(f"max_count = {max_count} cannot hold the identity and the "
                         f"{len(out) - 1} other distinct rows of include; give max_count >= "
                         f"{len(out)}")
    while len(out) < target:
        perm = rng.permutation(k)
        if tuple(perm) not in seen:
            seen.add(tuple(perm))
            out.append(perm)
    return np.array(out[:target], dtype=np.int64)


def _sample_size(k, max_count):
    """min(max_count, k!) for k > MAX_EXHAUSTIVE, refused beyond the sampling budget."""
    target = max_count if k > 20 else min(max_count, math.factorial(k))   # 21! > 2**64
    if target > MAX_SAMPLE:
        raise ValueError(f"max_count must be <= MAX_SAMPLE = {MAX_SAMPLE} labellings to draw "
                         f"for k = {k}, got {max_count}")
    if target * k > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"k = {k} with max_count = {max_count} makes a ({target}, {k}) table of "
                         f"labellings, beyond MAX_TENSOR_ELEMENTS = {MAX_TENSOR_ELEMENTS} "
                         "(rpmref.exact.discrete)")
    return target


def _log_partition(f, log_p_col):
    """log Z(z) = log Σ_{z'} P(z') e^{f(z, z')} over the last axis, shifted by its maximum
    (so no e^f underflows to a zero partition), and the weights P(z') e^{f} / Z(z)."""
    w = f + log_p_col
    top = np.max(w, axis=-1, keepdims=True)
    e = np.exp(w - top)
    total = e.sum(axis=-1, keepdims=True)
    return (top + np.log(total))[..., 0], e / total


def _marginals(p_zz):
    """P(z) (rows, the outer weights of Eq. 7) and log P(z') (columns, inside Z(z))."""
    with np.errstate(divide="ignore"):
        return p_zz.sum(axis=1), np.log(p_zz.sum(axis=0))


def _limit_grid(p_zz, sq_dist, perms, lengthscales):
    """I_∞ of every labelling at every ℓ (m, L), vectorised: with p_zz fixed, relabelling
    the states is the same as permuting the critic, f_σ(z, z') = f(σz, σz').

    I_∞ = Σ P(z, z') f − Σ_z P(z) log Σ_{z'} P(z') e^{f(z,z')}, with the row marginal
    outside and the column marginal inside (they differ when P(x, x') is not symmetric)."""
    p_row, log_p_col = _marginals(p_zz)
    scale = -1.0 / (2.0 * np.asarray(lengthscales) ** 2)                  # (L,)
    out = []
    k = p_zz.shape[0]
    chunk = max(1, _CHUNK_FLOATS // (scale.size * k * k))
    for start in range(0, perms.shape[0], chunk):
        p = perms[start:start + chunk]
        d2 = sq_dist[p[:, :, None], p[:, None, :]]                        # (B, k, k)
        f = scale[None, :, None, None] * d2[:, None]                      # (B, L, k, k)
        e_f = np.einsum("ij,blij->bl", p_zz, f)
        log_z, _ = _log_partition(f, log_p_col)                           # (B, L, k)
        out.append(e_f - np.matmul(log_z, p_row))
    return np.concatenate(out)


def _newton_scales(p_zz, sq_dist, perms, low, high, iterations=60):
    """The s = −1/(2ℓ²) in [low, high] (per labelling, s < 0) maximising I_∞(s) = s Σ P D²
    − Σ_z P(z) log Σ_{z'} P(z') e^{s D²}: concave in s (its second derivative is −Σ_z P(z)
    Var_q[D²], q(z'|z) ∝ P(z') e^{s D²}), so safeguarded Newton in the bracket converges to
    the maximum over it (an end point when the maximum is outside). Returns s and I_∞(s)."""
    p_row, log_p_col = _marginals(p_zz)
    d2 = sq_dist[perms[:, :, None], perms[:, None, :]]                    # (m, k, k)
    target = np.einsum("ij,bij->b", p_zz, d2)                             # Σ P(z, z') D²
    a, b = low.copy(), high.copy()
    s = 0.5 * (a + b)
    for _ in range(iterations):
        _, q = _log_partition(s[:, None, None] * d2, log_p_col)
        mean = np.sum(q * d2, axis=2)                                     # E_q[D²] (m, k)
        var = np.sum(q * d2 ** 2, axis=2) - mean ** 2
        grad = target - mean @ p_row
        curv = -(np.maximum(var, 0.0) @ p_row)
        a = np.where(grad > 0, s, a)                                      # the maximum is right of s
        b = np.where(grad > 0, b, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = s - grad / curv
        step = np.where((curv < 0) & (step > a) & (step < b), step, 0.5 * (a + b))
        done = np.all((step == s) | (b - a <= 4 * np.finfo(float).eps * np.abs(a)))
        s = step
        if done:
            break
    log_z, _ = _log_partition(s[:, None, None] * d2, log_p_col)
    return s, s * target - log_z @ p_row


def _best_lengthscales(p_zz, sq_dist, perms, lengthscales):
    """Each labelling's ℓ maximising the vectorised I_∞ over [min, max] of ``lengthscales``:
    the best of the grid, then the best of 17 points spanning its two neighbours
    (log-spaced), then Newton on s = −1/(2ℓ²) within that bracket (I_∞ is concave in s,
    so unimodal in ℓ: the maximum lies between the neighbours of the best grid point)."""
    coarse = _limit_grid(p_zz, sq_dist, perms, lengthscales)
    top = np.argmax(coarse, axis=1)
    log_l = np.log(lengthscales)
    low = log_l[np.maximum(top - 1, 0)]
    high = log_l[np.minimum(top + 1, log_l.size - 1)]
    steps = np.linspace(0.0, 1.0, 17)
    best, value = np.empty(len(perms)), np.empty(len(perms))
    bracket = np.empty((len(perms), 2))
    # Group labellings by bracket (few distinct brackets): one vectorised call per group.
    for t in np.unique(top):
        rows = np.flatnonzero(top == t)
        fine = np.exp(low[rows[0]] + steps * (high[rows[0]] - low[rows[0]]))
        grid = _limit_grid(p_zz, sq_dist, perms[rows], fine)
        j = np.argmax(grid, axis=1)
        best[rows] = fine[j]
        value[rows] = grid.max(axis=1)
        bracket[rows, 0] = fine[np.maximum(j - 1, 0)]
        bracket[rows, 1] = fine[np.minimum(j + 1, fine.size - 1)]
    k = p_zz.shape[0]
    chunk = max(1, _CHUNK_FLOATS // (k * k))
    for start in range(0, len(perms), chunk):
        rows = slice(start, start + chunk)
        s, polished = _newton_scales(p_zz, sq_dist, perms[rows], -0.5 / bracket[rows, 0] ** 2,
                                     -0.5 / bracket[rows, 1] ** 2)
        ell = np.sqrt(-0.5 / s)
        better = polished >= value[rows]
        best[rows] = np.where(better, ell, best[rows])
        value[rows] = np.where(better, polished, value[rows])
    return best, value


def _check_perms(perms, k):
    """``perms`` as an (m, k) int64 array of permutations, m ≥ 1."""
    rows = np.asarray(perms)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != k:
        raise ValueError(f"perms must be (m, {k}) permutations with m >= 1, got shape {rows.shape}")
    return np.array([check_permutation(p, "perms row", k) for p in rows])


def relabelling_table(p_xx, enc, latent_geo, perms, lengthscales=LENGTHSCALES):
    """I(Z; Z') and I_∞ with the local critic for every labelling of the shared encoder ``enc``.

    For each permutation σ the recognition joint of the relabelled encoder (the same
    encoder for x and x') gives ``mi`` (``rpmref.mutual_information``: the same for every
    σ) and ``i_inf`` (``rpmref.infonce_limit`` with the local critic, Eq. 7, 27, at that
    labelling's best ℓ in [min, max] of ``lengthscales``: the grid's best, refined, then
    Newton on s = −1/(2ℓ²), in which I_∞ is concave).

    Parameters
    ----------
    p_xx : array_like, shape (n, n)
        The data pmf P(x, x').
    enc : array_like, shape (n, k)
        P(z | x), used for x and x'.
    latent_geo : Geometry
        k states; supplies the distance of the local critic.
    perms : array_like of int, shape (m, k)
        Permutations, e.g. from ``labellings``.
    lengthscales : array_like, shape (L,), default LENGTHSCALES
        The ℓ grid of the search (sorted here), each ℓ > 0 and not so small that
        −d²/(2ℓ²) overflows.

    Returns
    -------
    dict
        ``mi`` (m,) and ``i_inf`` (m,) in nats, ``lengthscale`` (m,) in units of the
        latent distance; ``grid_gap`` (float): max |I_∞ of the vectorised ℓ search − I_∞ of
        ``infonce_limit``| (two independent routes).

    Raises
    ------
    ValueError
        ``p_xx`` not a pmf, ``enc`` not a conditional table with n rows, ``latent_geo``
        without k states, ``perms`` not (m, k) permutations (m ≥ 1), or ``lengthscales``
        not 1-D, not positive or small enough for the critic to overflow.
    TypeError
        Arguments of a non-real dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import (coarse_encoder, data_pmf, geometry, labellings,
    ...                               relabelling_table)
    >>> data, latent = geometry("line", 6), geometry("line", 3)
    >>> p_xx, enc = data_pmf(data), coarse_encoder(data, latent)
    >>> table = relabelling_table(p_xx, enc, latent, labellings(3))
    >>> p_zz = enc.T @ p_xx @ enc                           # the joint of the codes, by hand
    >>> p_z = p_zz.sum(axis=1)
    >>> nz = p_zz > 0                                       # blocks 0 and 2 never meet
    >>> mi = np.sum(p_zz[nz] * np.log(p_zz[nz] / np.outer(p_z, p_z)[nz]))
    >>> # every labelling has the same MI; 1e-12 is ~1000 ulps of a sum of nine terms
    >>> bool(np.allclose(table["mi"], mi, rtol=0, atol=1e-12))
    True
    >>> # rows 0 and 5 are the identity and the reversal, a symmetry of the line: tied
    >>> bool(np.isclose(table["i_inf"][0], table["i_inf"][5], rtol=0, atol=1e-12))
    True
    >>> bool(np.all(table["i_inf"] <= table["mi"] + 1e-12))   # E6: I_∞ ≤ I
    True
    """
    p_xx = check_pmf(p_xx, "p_xx", ndim=2)
    enc = check_conditional(enc, "enc", n_rows=np.shape(p_xx)[0])
    latent_geo = check_geometry(latent_geo, "latent_geo")
    k = enc.shape[1]
    if latent_geo.n != k:
        raise ValueError(f"latent_geo has {latent_geo.n} states but enc has k = {k} columns")
    perms = _check_perms(perms, k)
    lengthscales = np.sort(as_real_array(lengthscales, "lengthscales", ndim=1))
    if lengthscales[0] <= 0:
        raise ValueError(f"lengthscales must be positive, got {lengthscales[0]:g}")
    with np.errstate(over="ignore"):
        max_f = 0.5 * (np.max(latent_geo.distance) / lengthscales[0]) ** 2
    if not np.isfinite(max_f):
        raise ValueError(f"lengthscales: ℓ = {lengthscales[0]:g} makes the critic "
                         "−d²/(2ℓ²) overflow float64")
    p_zz = np.asarray(recognition_joint(p_xx, enc, enc))
    sq_dist = latent_geo.distance ** 2
    best, searched = _best_lengthscales(p_zz, sq_dist, perms, lengthscales)
    mi, limit = np.empty(len(perms)), np.empty(len(perms))
    for i, perm in enumerate(perms):
        inv = np.argsort(perm)
        p_sigma = p_zz[np.ix_(inv, inv)]                                  # P_σ(σz, σz') = P(z, z')
        mi[i] = mutual_information(p_sigma)
        limit[i] = infonce_limit(p_sigma, -sq_dist / (2.0 * best[i] ** 2))
    return {"mi": mi, "i_inf": limit, "lengthscale": best,
            "grid_gap": float(np.max(np.abs(searched - limit)))}


def tie_tolerance(k, max_abs_f):
    """The tolerance (nats) within which two labellings' I_∞ count as tied.

    I_∞ is a P-weighted sum of k² terms f − log Z(z), each of size ≤ M = max|f| + 50
    (the logs of probabilities ≥ e^-50 of these problems), so float64 gets each side
    to within k²·u·M (u = 1.1e-16); 1e-14·k²·M is ~45× both sides together. Distinct
    labellings differ by far more (``invariance_summary`` reports the smallest gap,
    ``separation``).

    Parameters
    ----------
    k : int
        The number of latent states, at most √``MAX_TENSOR_ELEMENTS`` (5792: the critic
        tables are (k, k)).
    max_abs_f : float
        max |f(z, z')| of the critics compared (nats).

    Returns
    -------
    float
        1e-14 · k² · (max_abs_f + 50).

    Raises
    ------
    ValueError
        ``k`` outside [1, 5792], or ``max_abs_f`` negative or not finite.
    TypeError
        ``k`` not an integer, or ``max_abs_f`` not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import tie_tolerance
    >>> bool(np.isclose(tie_tolerance(3, 2.0), 1e-14 * 9 * 52))
    True
    """
    k = check_int(k, "k", minimum=1, maximum=math.isqrt(MAX_TENSOR_ELEMENTS))
    max_abs_f = check_real(max_abs_f, "max_abs_f", minimum=0.0)
    return 1e-14 * k ** 2 * (max_abs_f + 50.0)


def invariance_summary(p_xx, enc, latent_geo, perms, table=None, elbo_labellings=100):
    """Spreads and ranks of ``relabelling_table`` (computed here unless ``table`` is given).

    Reads off what the MI cannot see and I_∞ with the local critic can: the MI spread
    over labellings (0 up to rounding), the I_∞ spread, the rank of the identity, the
    labellings tied with it (within ``tie_tolerance``) and whether they are exactly the
    geometry's symmetries; and checks E5 (ELBO − C = I_∞ with the critic's energy
    prior, Eq. 21–25) on a subset of the labellings.

    Parameters
    ----------
    p_xx : array_like, shape (n, n)
        The data pmf P(x, x').
    enc : array_like, shape (n, k)
        P(z | x), shared by x and x'.
    latent_geo : Geometry
        k latent states.
    perms : array_like of int, shape (m, k)
        Permutations including the identity (e.g. ``labellings``).
    table : dict, optional
        ``relabelling_table(p_xx, enc, latent_geo, perms)``, if already computed.
    elbo_labellings : int, default 100
        The E5 check covers the identity, the best, the worst and the first this many
        labellings.

    Returns
    -------
    dict
        ``labellings`` (m), ``exhaustive`` (all k! enumerated), ``mi`` (of the identity),
        ``mi_spread`` and ``i_inf_spread`` (max − min), ``i_inf_identity``,
        ``i_inf_max``, ``i_inf_min``, ``lengthscale_identity``, ``identity_rank`` (1 +
        labellings with I_∞ above the identity's by more than ``tie_tolerance``),
        ``tied`` (labellings within it of the identity, the identity included),
        ``symmetries`` (geometry symmetries among the labellings), ``symmetries_at_max``
        (all of them within tolerance of the max), ``tied_are_symmetries`` (the tied set
        is exactly those symmetries), ``tie_tolerance``, ``separation`` (the smallest
        |I_∞ − I_∞(identity)| of the others), ``grid_gap`` (of the table) and
        ``elbo_gap``: max |ELBO − C − I_∞| (E5), the ELBO from ``rpmref.expected_elbo``
        with ``rpmref.energy_prior`` at each labelling's ℓ.

    Raises
    ------
    ValueError
        As for ``relabelling_table``; ``perms`` without the identity, ``elbo_labellings``
        < 0, or ``table`` not of m labellings.
    TypeError
        ``elbo_labellings`` not an integer, or ``table`` not a dict.

    Examples
    --------
    >>> from rpmref.structure import (coarse_encoder, data_pmf, geometry, invariance_summary,
    ...                               labellings)
    >>> data, latent = geometry("line", 6), geometry("line", 3)
    >>> s = invariance_summary(data_pmf(data), coarse_encoder(data, latent), latent, labellings(3))
    >>> s["labellings"], s["exhaustive"], s["symmetries"], s["tied"], s["tied_are_symmetries"]
    (6, True, 2, 2, True)
    >>> # MI is label-blind; E5 holds to float64 rounding (1e-12: well above k²·u·M)
    >>> s["mi_spread"] < 1e-12, s["elbo_gap"] < 1e-12, s["i_inf_spread"] > 0.1
    (True, True, True)
    """
    latent_geo = check_geometry(latent_geo, "latent_geo")
    elbo_labellings = check_int(elbo_labellings, "elbo_labellings", minimum=0)
    perms = _check_perms(perms, latent_geo.n)
    is_identity = (perms == np.arange(perms.shape[1])).all(axis=1)
    if not is_identity.any():
        raise ValueError("perms must include the identity labelling (e.g. from labellings)")
    if table is None:
        table = relabelling_table(p_xx, enc, latent_geo, perms)
    elif not isinstance(table, dict):
        raise TypeError(f"table must be the dict of relabelling_table, got {type(table).__name__}")
    else:
        missing = [key for key in ("mi", "i_inf", "lengthscale", "grid_gap") if key not in table]
        if missing:
            raise ValueError(f"table must be the dict of relabelling_table; it lacks {missing}")
        if any(np.shape(table[key]) != (len(perms),) for key in ("mi", "i_inf", "lengthscale")):
            raise ValueError(f"table must be of the {len(perms)} labellings of perms, got "
                             f"{np.shape(table['i_inf'])[0] if np.ndim(table['i_inf']) else 0}")
    mi, limit = np.asarray(table["mi"]), np.asarray(table["i_inf"])
    identity = int(np.flatnonzero(is_identity)[0])
    max_f = float(np.max(latent_geo.distance) ** 2 / (2.0 * np.min(table["lengthscale"]) ** 2))
    tol = tie_tolerance(perms.shape[1], max_f)
    sym = {tuple(s) for s in symmetries(latent_geo)}
    present = [i for i, p in enumerate(perms) if tuple(p) in sym]
    tied = np.flatnonzero(np.abs(limit - limit[identity]) <= tol)
    others = np.abs(np.delete(limit, tied) - limit[identity])
    constant = data_constant(p_xx)
    gaps = []
    check = sorted({identity, int(np.argmax(limit)), int(np.argmin(limit))}
                   | set(range(min(elbo_labellings, len(perms)))))
    for i in check:
        enc_sigma = relabel_encoder(enc, perms[i])
        p_zz = recognition_joint(p_xx, enc_sigma, enc_sigma)
        f = local_critic(latent_geo, table["lengthscale"][i])
        elbo = expected_elbo(p_xx, enc_sigma, enc_sigma, energy_prior(p_zz, f))
        gaps.append(abs(elbo - constant - limit[i]))
    return {
        "labellings": int(len(perms)),
        "exhaustive": bool(len(perms) == math.factorial(perms.shape[1])),
        "mi": float(mi[identity]),
        "mi_spread": float(mi.max() - mi.min()),
        "i_inf_identity": float(limit[identity]),
        "i_inf_max": float(limit.max()),
        "i_inf_min": float(limit.min()),
        "i_inf_spread": float(limit.max() - limit.min()),
        "lengthscale_identity": float(table["lengthscale"][identity]),
        "identity_rank": int(1 + np.sum(limit > limit[identity] + tol)),
        "tied": int(tied.size),
        "symmetries": len(present),
        "symmetries_at_max": bool(all(limit[i] >= limit.max() - tol for i in present)),
        "tied_are_symmetries": bool(set(tied.tolist()) == set(present)),
        "tie_tolerance": tol,
        "separation": float(others.min()) if others.size else float("inf"),
        "grid_gap": table["grid_gap"],
        "elbo_gap": float(max(gaps)),
    }


__all__ = ["LENGTHSCALES", "MAX_EXHAUSTIVE", "DEFAULT_SAMPLE", "MAX_SAMPLE", "one_hot", "coarse_encoder",
           "local_critic", "relabel_encoder", "labellings", "relabelling_table", "tie_tolerance",
           "invariance_summary"]
