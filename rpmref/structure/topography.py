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

from rpmref.exact.validation import as_real_array, check_conditional, check_int, make_generator
from rpmref.structure.geometry import check_geometry

#: Random relabellings averaged by ``relabelling_baseline`` for the correlations.
BASELINE_SAMPLES = 500
#: Most relabellings ``relabelling_baseline`` averages.
MAX_BASELINE_SAMPLES = 100_000
#: Most samples × n² (n data states): each sample scores the n(n − 1)/2 pairs of data states.
MAX_BASELINE_WORK = 2 ** 31


def _check(data_geo, latent_geo, enc):
    data_geo, latent_geo = check_geometry(data_geo, "data_geo"), check_geometry(latent_geo, "latent_geo")
    enc = np.asarray(check_conditional(enc, "enc", n_rows=data_geo.n))
    if enc.shape[1] != latent_geo.n:
        raise ValueError(f"enc has {enc.shape[1]} columns but latent_geo has {latent_geo.n} "
                         "states")
    return enc


def check_kinds(data_geo, latent_geo):
    """ValueError unless ``topography_scores`` can score codes from ``data_geo`` to
    ``latent_geo``: a line of data needs a line of latents (``position_correlation``).

    Parameters
    ----------
    data_geo, latent_geo : Geometry

    Returns
    -------
    None

    Raises
    ------
    ValueError
        ``data_geo`` a line and ``latent_geo`` not.
    TypeError
        Either not a ``Geometry``.

    Examples
    --------
    >>> from rpmref.structure import geometry
    >>> from rpmref.structure.topography import check_kinds
    >>> check_kinds(geometry("line", 4), geometry("ring", 3))
    Traceback (most recent call last):
    ...
    ValueError: latent_geo must be a line like data_geo (for position_correlation), got a ring
    """
    data_geo, latent_geo = check_geometry(data_geo, "data_geo"), check_geometry(latent_geo, "latent_geo")
    if data_geo.kind == "line" and latent_geo.kind != "line":
        raise ValueError(f"latent_geo must be a line like data_geo (for position_correlation), "
                         f"got a {latent_geo.kind}")


def rank(values):
    """Ranks 1..m of ``values``, tied values sharing their average rank.

    Parameters
    ----------
    values : array_like, shape (m,)

    Returns
    -------
    ndarray of float, shape (m,)

    Raises
    ------
    TypeError
        ``values`` not an array of real numbers.
    ValueError
        ``values`` not 1-D, empty, or not finite (a NaN has no rank).

    Examples
    --------
    >>> from rpmref.structure.topography import rank
    >>> rank([10, 20, 20, 5])          # 5 → 1, 10 → 2, the two 20s share (3 + 4)/2
    array([2. , 3.5, 3.5, 1. ])
    """
    values = as_real_array(values, "values", ndim=1)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    _, inverse = np.unique(values, return_inverse=True)
    totals = np.bincount(inverse, weights=ranks)
    return totals[inverse] / np.bincount(inverse)[inverse]


def spearman(a, b):
    """Spearman's rank correlation: Pearson's correlation of the ranks (``rank``).

    Parameters
    ----------
    a, b : array_like, shape (m,)
        Equal-length 1-D arrays.

    Returns
    -------
    float
        In [−1, 1]; 0 if either array is constant (no ranks to correlate).

    Raises
    ------
    TypeError
        ``a`` or ``b`` not an array of real numbers.
    ValueError
        ``a`` or ``b`` not 1-D, empty, of different lengths, or not finite (a NaN
        has no rank).

    Examples
    --------
    >>> from rpmref.structure import spearman
    >>> spearman([1, 2, 3], [10, 20, 30]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    >>> spearman([1, 2, 3], [3, 1, 2])   # centred ranks (−1, 0, 1)·(1, −1, 0) / 2
    -0.5
    >>> spearman([1, 2, 3], [7, 7, 7])
    0.0
    """
    a = as_real_array(a, "a", ndim=1)
    b = as_real_array(b, "b", ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length; got {a.size} and {b.size}")
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt(np.sum(ra ** 2) * np.sum(rb ** 2))
    return float(np.sum(ra * rb) / norm) if norm > 0 else 0.0


def neighbour_fraction(data_geo, latent_geo, enc):
    """E[1(d(z, z') ≤ 1)] over the unordered data-neighbour pairs {x, x'} (module docstring).

    x and x' are encoded independently by ``enc``; a pair counts as kept together when z
    and z' are latent neighbours or the same state.

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states.
    enc : array_like, shape (n, k)
        P(z | x).

    Returns
    -------
    float
        In [0, 1]; 1 for the identity and every topographic code.

    Raises
    ------
    ValueError
        ``enc`` not a conditional table of shape (n, k).
    TypeError
        ``enc`` of a non-real dtype.

    Examples
    --------
    >>> from rpmref.structure import geometry, neighbour_fraction, one_hot
    >>> line = geometry("line", 4)
    >>> neighbour_fraction(line, line, one_hot([0, 1, 2, 3], 4))
    1.0
    >>> # pairs (0,1), (1,2), (2,3) land on (0,2), (2,1), (1,3): only the middle one adjacent
    >>> round(neighbour_fraction(line, line, one_hot([0, 2, 1, 3], 4)), 12)
    0.333333333333
    """
    enc = _check(data_geo, latent_geo, enc)
    close = (latent_geo.distance <= 1.0 + 1e-12).astype(float)            # (k, k), diagonal 1
    together = enc @ close @ enc.T                                        # (n, n)
    i, j = np.nonzero(np.triu(data_geo.neighbours, 1))
    return float(np.mean(together[i, j]))


def distance_correlation(data_geo, latent_geo, enc):
    """Spearman's ρ of the data distance d(x, x') and the expected latent distance
    E[d(z, z')] over all pairs x < x'.

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states.
    enc : array_like, shape (n, k)
        P(z | x).

    Returns
    -------
    float
        In [−1, 1]; the same for every symmetry of the latent geometry.

    Raises
    ------
    ValueError
        As for ``neighbour_fraction``.
    TypeError
        As for ``neighbour_fraction``.

    Examples
    --------
    >>> from rpmref.structure import distance_correlation, geometry, one_hot
    >>> ring = geometry("ring", 6)
    >>> distance_correlation(ring, ring, one_hot(range(6), 6))
    1.0
    >>> distance_correlation(ring, ring, one_hot([5, 4, 3, 2, 1, 0], 6))   # a reflection
    1.0
    """
    enc = _check(data_geo, latent_geo, enc)
    expected = enc @ latent_geo.distance @ enc.T                          # (n, n)
    i, j = np.triu_indices(data_geo.n, 1)
    return spearman(data_geo.distance[i, j], expected[i, j])


def position_correlation(data_geo, latent_geo, enc):
    """Spearman's ρ of the data position x and the expected latent position E[z | x]
    (line geometries only).

    Parameters
    ----------
    data_geo : Geometry
        A line of n states.
    latent_geo : Geometry
        A line of k states.
    enc : array_like, shape (n, k)
        P(z | x).

    Returns
    -------
    float
        +1 for the identity, −1 for the reversed code.

    Raises
    ------
    ValueError
        Either geometry not a line, or as for ``neighbour_fraction``.
    TypeError
        Either geometry not a ``Geometry``, or as for ``neighbour_fraction``.

    Examples
    --------
    >>> from rpmref.structure import geometry, one_hot, position_correlation
    >>> line = geometry("line", 4)
    >>> position_correlation(line, line, one_hot([0, 1, 2, 3], 4))
    1.0
    >>> position_correlation(line, line, one_hot([3, 2, 1, 0], 4))
    -1.0
    """
    data_geo, latent_geo = check_geometry(data_geo, "data_geo"), check_geometry(latent_geo, "latent_geo")
    if data_geo.kind != "line" or latent_geo.kind != "line":
        raise ValueError(f"position_correlation needs line geometries, got {data_geo.kind} "
                         f"and {latent_geo.kind} (use distance_correlation)")
    enc = _check(data_geo, latent_geo, enc)
    return spearman(data_geo.coords[:, 0], enc @ latent_geo.coords[:, 0])


def topography_scores(data_geo, latent_geo, enc):
    """The three topography scores of ``enc``: ``neighbour_fraction``,
    ``distance_correlation`` and |ρ| of ``position_correlation`` (None off a line).

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states (a line if ``data_geo`` is).
    enc : array_like, shape (n, k)
        P(z | x).

    Returns
    -------
    dict
        ``neighbour_fraction``, ``distance_correlation`` (floats) and
        ``position_correlation`` (float, or None for a ring or grid).

    Raises
    ------
    ValueError
        As for ``neighbour_fraction`` and ``position_correlation``.

    Examples
    --------
    >>> from rpmref.structure import geometry, one_hot, topography_scores
    >>> line = geometry("line", 4)
    >>> topography_scores(line, line, one_hot([3, 2, 1, 0], 4))   # reversed: still topographic
    {'neighbour_fraction': 1.0, 'distance_correlation': 1.0, 'position_correlation': 1.0}
    """
    line = check_geometry(data_geo, "data_geo").kind == "line"
    return {"neighbour_fraction": neighbour_fraction(data_geo, latent_geo, enc),
            "distance_correlation": distance_correlation(data_geo, latent_geo, enc),
            "position_correlation":
                abs(position_correlation(data_geo, latent_geo, enc)) if line else None}


def _check_samples(samples, name, n):
    """``samples`` as an int in [1, MAX_BASELINE_SAMPLES] with samples × n² ≤ MAX_BASELINE_WORK."""
    samples = check_int(samples, name, minimum=1, maximum=MAX_BASELINE_SAMPLES)
    if samples * n * n > MAX_BASELINE_WORK:
        raise ValueError(f"{name} must be <= {MAX_BASELINE_WORK // (n * n)} for {n} data states "
                         f"(samples × n² <= MAX_BASELINE_WORK = {MAX_BASELINE_WORK}), got {samples}")
    return samples


def relabelling_baseline(data_geo, latent_geo, enc, samples=BASELINE_SAMPLES, rng=None, seed=None):
    """The scores of ``topography_scores`` after a uniformly random relabelling of z.

    neighbour_fraction exactly: a pair's mass on z = z' stays together, and its mass on
    z ≠ z' lands on a uniformly random ordered pair of distinct states, which are
    neighbours with probability q = #{(z, z'): d = 1} / (k(k − 1)). The correlations:
    the mean over ``samples`` random relabellings drawn from ``rng`` (or ``seed``; neither:
    seed 0, so the default is reproducible).

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states.
    enc : array_like, shape (n, k)
        P(z | x).
    samples : int, default BASELINE_SAMPLES (500)
        Random relabellings averaged for the correlations, in [1, ``MAX_BASELINE_SAMPLES``]
        (100,000), with samples × n² ≤ ``MAX_BASELINE_WORK`` (2³¹).
    rng : numpy.random.Generator, optional
        Their source; not together with ``seed``.
    seed : int, optional
        Their seed, when ``rng`` is not given.

    Returns
    -------
    dict
        The keys of ``topography_scores``.

    Raises
    ------
    ValueError
        ``samples`` out of its range (refused before any work), both ``rng`` and ``seed`` given, or as for ``neighbour_fraction``.
    TypeError
        ``samples`` not an integer, ``rng`` not a Generator, or an invalid ``seed``.

    Examples
    --------
    >>> from rpmref.structure import geometry, one_hot, relabelling_baseline
    >>> line = geometry("line", 4)
    >>> base = relabelling_baseline(line, line, one_hot(range(4), 4), samples=50)
    >>> # no pair shares a state; 6 of the 12 ordered pairs of distinct states are adjacent
    >>> base["neighbour_fraction"]
    0.5
    >>> -1 <= base["distance_correlation"] <= 1 and -1 <= base["position_correlation"] <= 1
    True
    """
    enc = _check(data_geo, latent_geo, enc)
    samples = _check_samples(samples, "samples", data_geo.n)
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


__all__ = ["BASELINE_SAMPLES", "MAX_BASELINE_SAMPLES", "MAX_BASELINE_WORK", "check_kinds", "rank", "spearman", "neighbour_fraction", "distance_correlation",
           "position_correlation", "topography_scores", "relabelling_baseline"]
