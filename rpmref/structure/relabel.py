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

Lengthscale: for each labelling ℓ is optimised over ``LENGTHSCALES`` (a log grid,
ℓ = 0.1 … 10 at 21 points, refined 8× around the best point; the best I_∞ of any
labelling lies inside it), so a
scrambled labelling gets its own best ℓ and is not penalised for a ℓ tuned to the
identity. The reported I_∞ is ``rpmref.infonce_limit`` at that ℓ.
"""
import itertools
import math

import numpy as np

from rpmref.exact import (
    data_constant, energy_prior, expected_elbo, infonce_limit, mutual_information,
    recognition_joint)
from rpmref.exact.validation import (
    as_real_array, check_conditional, check_index_array, check_int, check_permutation, check_pmf,
    check_real)
from rpmref.structure.geometry import coarse_labels, symmetries

#: ℓ values over which each labelling's I_∞ is maximised.
LENGTHSCALES = np.geomspace(0.1, 10.0, 21)
#: Largest k for which every one of the k! labellings is enumerated (8! = 40,320).
MAX_EXHAUSTIVE = 8
#: Labellings drawn when k > MAX_EXHAUSTIVE.
DEFAULT_SAMPLE = 10_000
#: Labellings per chunk of the vectorised ℓ search: chunk × len(LENGTHSCALES) × k² floats.
_CHUNK = 2000


def one_hot(labels, k):
    """The deterministic encoder P(z | x) = 1[z = labels[x]] as an (n, k) table."""
    k = check_int(k, "k", minimum=1)
    labels = check_index_array(labels, "labels", k)
    enc = np.zeros((labels.size, k))
    enc[np.arange(labels.size), labels] = 1.0
    return enc


def coarse_encoder(data_geo, latent_geo):
    """The topographic encoder: data state x to its contiguous block (``coarse_labels``), (n, k)."""
    return one_hot(coarse_labels(data_geo, latent_geo), latent_geo.n)


def local_critic(latent_geo, lengthscale):
    """f(z, z') = −d(z, z')² / (2ℓ²) on the latent geometry (Eq. 27), (k, k)."""
    ell = check_real(lengthscale, "lengthscale", minimum=0.0, inclusive=(False, True))
    return -latent_geo.distance ** 2 / (2.0 * ell ** 2)


def relabel_encoder(enc, perm):
    """P(σ(z) | x): the encoder with latent state z renamed perm[z] (columns permuted)."""
    perm = check_permutation(perm, "perm", np.shape(enc)[1])
    return np.asarray(enc)[:, np.argsort(perm)]


def labellings(k, max_count=DEFAULT_SAMPLE, seed=0, include=None):
    """Permutations of 0..k−1 as an (m, k) int array, the identity first.

    k ≤ ``MAX_EXHAUSTIVE``: all k! (``max_count`` and ``seed`` unused). Otherwise
    ``max_count`` distinct ones: the identity, the rows of ``include`` (e.g. the
    geometry's symmetries) and uniformly random permutations from ``seed``.
    """
    k = check_int(k, "k", minimum=1)
    if k <= MAX_EXHAUSTIVE:
        return np.array(list(itertools.permutations(range(k))), dtype=np.int64).reshape(-1, k)
    max_count = check_int(max_count, "max_count", minimum=1)
    fixed = [np.arange(k)] + ([] if include is None else [check_permutation(p, "include", k) for p in include])
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for perm in fixed:
        if tuple(perm) not in seen:
            seen.add(tuple(perm))
            out.append(perm)
    target = min(max_count, math.factorial(k))
    while len(out) < target:
        perm = rng.permutation(k)
        if tuple(perm) not in seen:
            seen.add(tuple(perm))
            out.append(perm)
    return np.array(out[:target], dtype=np.int64)


def _limit_grid(p_zz, sq_dist, perms, lengthscales):
    """I_∞ of every labelling at every ℓ (m, L), vectorised: with p_zz fixed, relabelling
    the states is the same as permuting the critic, f_σ(z, z') = f(σz, σz').

    f ≤ 0 with f(z, z) = 0, so Z(z) = Σ_{z'} P(z') e^{f(z,z')} ≥ P(z) > 0 needs no shift
    (terms that underflow to 0 are below 2^-1074 of the diagonal one)."""
    p_z = p_zz.sum(axis=1)
    scale = -1.0 / (2.0 * np.asarray(lengthscales) ** 2)                  # (L,)
    out = []
    for start in range(0, perms.shape[0], _CHUNK):
        p = perms[start:start + _CHUNK]
        d2 = sq_dist[p[:, :, None], p[:, None, :]]                        # (B, k, k)
        f = scale[None, :, None, None] * d2[:, None]                      # (B, L, k, k)
        e_f = np.einsum("ij,blij->bl", p_zz, f)
        log_z = np.log(np.matmul(np.exp(f), p_z))                         # (B, L, k)
        out.append(e_f - np.matmul(log_z, p_z))
    return np.concatenate(out)


def _best_lengthscales(p_zz, sq_dist, perms, lengthscales):
    """Each labelling's ℓ maximising the vectorised I_∞: the best of ``lengthscales``,
    then the best of 17 points spanning its two neighbours (log-spaced), so the grid's
    resolution is refined 8× without evaluating the whole fine grid."""
    coarse = _limit_grid(p_zz, sq_dist, perms, lengthscales)
    top = np.argmax(coarse, axis=1)
    log_l = np.log(lengthscales)
    low = log_l[np.maximum(top - 1, 0)]
    high = log_l[np.minimum(top + 1, log_l.size - 1)]
    steps = np.linspace(0.0, 1.0, 17)
    best, value = np.empty(len(perms)), np.empty(len(perms))
    # Group labellings by bracket (few distinct brackets): one vectorised call per group.
    for t in np.unique(top):
        rows = np.flatnonzero(top == t)
        fine = np.exp(low[rows[0]] + steps * (high[rows[0]] - low[rows[0]]))
        grid = _limit_grid(p_zz, sq_dist, perms[rows], fine)
        best[rows] = fine[np.argmax(grid, axis=1)]
        value[rows] = grid.max(axis=1)
    return best, value


def relabelling_table(p_xx, enc, latent_geo, perms, lengthscales=LENGTHSCALES):
    """I(Z; Z') and I_∞ with the local critic for every labelling of the shared encoder ``enc``.

    p_xx (n, n); enc (n, k) = P(z | x), used for x and x'; perms (m, k) from
    ``labellings``. Returns a dict of arrays over the m labellings: ``mi``
    (``rpmref.mutual_information`` of each relabelled joint), ``i_inf`` (``rpmref.infonce_limit``
    at the labelling's best ℓ), ``lengthscale`` (that ℓ), and ``grid_gap``: max |I_∞ of the
    vectorised ℓ search − I_∞ of ``infonce_limit``| (two independent routes).
    """
    p_xx = check_pmf(p_xx, "p_xx", ndim=2)
    enc = check_conditional(enc, "enc", n_rows=np.shape(p_xx)[0])
    k = enc.shape[1]
    if latent_geo.n != k:
        raise ValueError(f"latent_geo has {latent_geo.n} states but enc has k = {k} columns")
    perms = np.asarray(perms)
    if perms.ndim != 2:
        raise ValueError(f"perms must be (m, {k}) permutations, got shape {perms.shape}")
    perms = np.array([check_permutation(p, "perms row", k) for p in perms])
    lengthscales = as_real_array(lengthscales, "lengthscales", ndim=1)
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
    """Two labellings' I_∞ count as tied within this (nats).

    I_∞ is a P-weighted sum of k² terms f − log Z(z), each of size ≤ M = max|f| + 50
    (the logs of probabilities ≥ e^-50 of these problems), so float64 gets each side
    to within k²·u·M (u = 1.1e-16); 1e-14·k²·M is ~45× both sides together. Distinct
    labellings differ by far more (``invariance_summary`` reports the smallest gap,
    ``separation``).
    """
    return 1e-14 * k ** 2 * (float(max_abs_f) + 50.0)


def invariance_summary(p_xx, enc, latent_geo, perms, table=None, elbo_labellings=100):
    """Spreads and ranks of ``relabelling_table`` (computed here unless ``table`` is given).

    Returns a dict: ``labellings`` (m), ``exhaustive`` (all k! enumerated), ``mi_spread``
    and ``i_inf_spread`` (max − min), ``mi`` (of the identity), ``i_inf_identity``,
    ``i_inf_max``, ``i_inf_min``, ``identity_rank`` (1 + labellings with I_∞ above the
    identity's by more than ``tie_tolerance``), ``tied`` (labellings within it of the
    identity, the identity included), ``separation`` (the smallest |I_∞ − I_∞(identity)|
    of the others), ``symmetries`` (geometry symmetries among the
    labellings), ``symmetries_at_max`` (all of them within tolerance of the max),
    ``tied_are_symmetries`` (the tied set is exactly those symmetries), and
    ``elbo_gap``: max |ELBO − C − I_∞| (E5) over the identity, the best, the worst and
    the first ``elbo_labellings`` labellings, the ELBO from ``rpmref.expected_elbo`` with
    ``rpmref.energy_prior`` at each labelling's ℓ.
    """
    perms = np.asarray(perms)
    table = relabelling_table(p_xx, enc, latent_geo, perms) if table is None else table
    mi, limit = table["mi"], table["i_inf"]
    identity = int(np.flatnonzero((perms == np.arange(perms.shape[1])).all(axis=1))[0])
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


__all__ = ["LENGTHSCALES", "MAX_EXHAUSTIVE", "DEFAULT_SAMPLE", "one_hot", "coarse_encoder",
           "local_critic", "relabel_encoder", "labellings", "relabelling_table", "tie_tolerance",
           "invariance_summary"]
