"""Topography of an encoder P(z | x): does the code keep the data's neighbours together?

Three scores, each an expectation under the encoder (x and x' encoded independently):

* ``neighbour_fraction``: over the unordered data-neighbour pairs {x, x'} (distance 1
  on the data geometry), the probability that z and z' are latent neighbours *or the
  same state* (d(z, z') ≤ 1): a coarse-graining that puts both in one block keeps them
  together. 1 for the identity and every topographic code.
* ``distance_correlation``: the Spearman rank correlation, over all pairs x < x', of the
  data distance d(x, x') and the expected latent distance E[d(z, z')]. It is the
  analogue used for every geometry (on a ring or grid there is no "position" to
  rank): 1 when latent distances are ordered as data distances, the same for every
  symmetry of the latent geometry (reflections, rotations), ~0 for a scrambled code.
* ``position_correlation`` (line only): the Spearman correlation of x with its
  expected latent position E[z | x]: +1 for the identity, −1 for the reversed code.
  Summaries use its absolute value, since both directions are topographic.

Spearman's ρ is Pearson's correlation of the ranks (ties get their average rank); a
constant score (an encoder that ignores x) has no ranks to correlate and gets 0.

``relabelling_baseline`` gives each score's value after a uniformly random relabelling
of the latent states: exact for the neighbour fraction, a seeded Monte Carlo mean for
the correlations.
"""
import numpy as np

from rpmref.exact.validation import check_conditional, check_int, make_generator

#: Random relabellings averaged by ``relabelling_baseline`` for the correlations.
BASELINE_SAMPLES = 500


def _check(data_geo, latent_geo, enc):
    enc = np.asarray(check_conditional(enc, "enc", n_rows=data_geo.n))
    if enc.shape[1] != latent_geo.n:
        raise ValueError(f"enc has {enc.shape[1]} columns but latent_geo has {latent_geo.n} "
                         "states")
    return enc


def rank(values):
    """Ranks 1..m of ``values`` (1-D), tied values sharing their average rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    _, inverse = np.unique(values, return_inverse=True)
    totals = np.bincount(inverse, weights=ranks)
    return totals[inverse] / np.bincount(inverse)[inverse]


def spearman(a, b):
    """Spearman's rank correlation of two equal-length 1-D arrays (0 if either is constant)."""
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt(np.sum(ra ** 2) * np.sum(rb ** 2))
    return float(np.sum(ra * rb) / norm) if norm > 0 else 0.0


def neighbour_fraction(data_geo, latent_geo, enc):
    """E[1(d(z, z') ≤ 1)] averaged over the data-neighbour pairs (module docstring)."""
    enc = _check(data_geo, latent_geo, enc)
    close = (latent_geo.distance <= 1.0 + 1e-12).astype(float)            # (k, k), diagonal 1
    together = enc @ close @ enc.T                                        # (n, n)
    i, j = np.nonzero(np.triu(data_geo.neighbours, 1))
    return float(np.mean(together[i, j]))


def distance_correlation(data_geo, latent_geo, enc):
    """Spearman's ρ of d(x, x') and E[d(z, z')] over the pairs x < x'."""
    enc = _check(data_geo, latent_geo, enc)
    expected = enc @ latent_geo.distance @ enc.T                          # (n, n)
    i, j = np.triu_indices(data_geo.n, 1)
    return spearman(data_geo.distance[i, j], expected[i, j])


def position_correlation(data_geo, latent_geo, enc):
    """Spearman's ρ of x and E[z | x] (a line only; ValueError otherwise)."""
    if data_geo.kind != "line" or latent_geo.kind != "line":
        raise ValueError(f"position_correlation needs line geometries, got {data_geo.kind} "
                         f"and {latent_geo.kind} (use distance_correlation)")
    enc = _check(data_geo, latent_geo, enc)
    return spearman(data_geo.coords[:, 0], enc @ latent_geo.coords[:, 0])


def topography_scores(data_geo, latent_geo, enc):
    """{'neighbour_fraction', 'distance_correlation', 'position_correlation'} of ``enc``;
    the last is |ρ| of ``position_correlation`` on a line and None otherwise."""
    line = data_geo.kind == "line"
    return {"neighbour_fraction": neighbour_fraction(data_geo, latent_geo, enc),
            "distance_correlation": distance_correlation(data_geo, latent_geo, enc),
            "position_correlation":
                abs(position_correlation(data_geo, latent_geo, enc)) if line else None}


def relabelling_baseline(data_geo, latent_geo, enc, samples=BASELINE_SAMPLES, rng=None, seed=None):
    """The scores of ``topography_scores`` after a uniformly random relabelling of z.

    neighbour_fraction exactly: a pair's mass on z = z' stays together, and its mass on
    z ≠ z' lands on a uniformly random ordered pair of distinct states, which are
    neighbours with probability q = #{(z, z'): d = 1} / (k(k − 1)). The correlations:
    the mean over ``samples`` random relabellings drawn from ``rng`` (or ``seed``; neither:
    seed 0, so the default is reproducible).
    """
    enc = _check(data_geo, latent_geo, enc)
    samples = check_int(samples, "samples", minimum=1)
    generator = make_generator(rng, 0 if rng is None and seed is None else seed)
    k = latent_geo.n
    q = float(latent_geo.neighbours.sum()) / (k * (k - 1)) if k > 1 else 1.0
    same = enc @ enc.T                                                    # P(z = z') per pair
    i, j = np.nonzero(np.triu(data_geo.neighbours, 1))
    fraction = float(np.mean(same[i, j] + (1.0 - same[i, j]) * q))
    scores = [topography_scores(data_geo, latent_geo, enc[:, np.argsort(generator.permutation(k))])
              for _ in range(samples)]
    line = data_geo.kind == "line"
    return {"neighbour_fraction": fraction,
            "distance_correlation": float(np.mean([s["distance_correlation"] for s in scores])),
            "position_correlation":
                float(np.mean([s["position_correlation"] for s in scores])) if line else None}


__all__ = ["BASELINE_SAMPLES", "rank", "spearman", "neighbour_fraction", "distance_correlation",
           "position_correlation", "topography_scores", "relabelling_baseline"]
