"""Data and latent spaces with a geometry: states on a line, a ring or a square grid.

A ``Geometry`` is a finite set of states with coordinates and a distance:

* ``line``: states 0..n−1 at positions 0..n−1, d(i, j) = |i − j|;
* ``ring``: states 0..n−1 around a cycle, d(i, j) = min(|i − j|, n − |i − j|)
  (the circular distance, in steps);
* ``grid``: side × side states, state s at (row, col) = divmod(s, side),
  d = the *Euclidean* distance between (row, col) pairs. Euclidean, not Manhattan,
  so that the local critic −d²/(2ℓ²) is the RBF critic of Eq. 27 on R².

Neighbours are the states at distance exactly 1 (two on a line or ring, up to
four on the grid).

The data pmf (``data_pmf``): P(x) uniform and P(x' | x) a lazy random walk on the
neighbour graph — each neighbour receives (1 − stay) / max_degree and the
rest of the mass stays at x (so ``stay`` = ½ by default, more at the ends of a line
and on the edges of the grid, where there are fewer neighbours). The kernel is
symmetric, so P(x, x') = P(x) P(x' | x) is symmetric and P(x') is uniform too:
the two "frames" x, x' are exchangeable, like adjacent frames of a video.
"""
import math
from dataclasses import dataclass

import numpy as np

from rpmref.exact.discrete import MAX_TENSOR_ELEMENTS
from rpmref.exact.validation import check_choice, check_int, check_real

GEOMETRIES = ("line", "ring", "grid")
#: Smallest size of each geometry (a ring needs 3 states for two distinct neighbours).
MIN_SIZE = {"line": 2, "ring": 3, "grid": 2}
#: Largest size of each geometry: its (n, n) distance table, like every (n, n) table the
#: exact functions build from it, stays within ``MAX_TENSOR_ELEMENTS`` entries.
MAX_SIZE = {"line": math.isqrt(MAX_TENSOR_ELEMENTS), "ring": math.isqrt(MAX_TENSOR_ELEMENTS),
            "grid": math.isqrt(math.isqrt(MAX_TENSOR_ELEMENTS))}


@dataclass(frozen=True)
class Geometry:
    """A finite geometry: states with coordinates and a distance (see the module docstring).

    Build one with ``geometry``; the fields are stored as given (frozen, not validated).

    Parameters
    ----------
    kind : {'line', 'ring', 'grid'}
    size : int
        States along a side: n = size for a line or ring, size² for a grid.
    coords : ndarray, shape (n, dim)
        Float positions (dim 1 for a line or ring, 2 for a grid: (row, col)).
    distance : ndarray, shape (n, n)
        The distance matrix: |i − j| (line), the circular distance (ring) or the
        Euclidean distance of (row, col) (grid).

    Examples
    --------
    >>> from rpmref.structure import geometry
    >>> ring = geometry("ring", 5)
    >>> ring.n, ring.distance[0].tolist()        # circular distances from state 0
    (5, [0.0, 1.0, 2.0, 2.0, 1.0])
    >>> ring.neighbours[0].nonzero()[0].tolist()
    [1, 4]
    """
    kind: str
    size: int
    coords: np.ndarray
    distance: np.ndarray

    @property
    def n(self):
        """Number of states."""
        return self.coords.shape[0]

    @property
    def neighbours(self):
        """(n, n) bool: the pairs at distance 1."""
        return np.abs(self.distance - 1.0) < 1e-12


def check_geometry(value, name):
    """``value`` if it is a ``Geometry``; TypeError naming ``name`` otherwise.

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name, for the message.

    Returns
    -------
    Geometry
        ``value``.

    Raises
    ------
    TypeError
        If ``value`` is not a ``Geometry`` (build one with :func:`geometry`).

    Examples
    --------
    >>> from rpmref.structure.geometry import check_geometry, geometry
    >>> check_geometry(geometry("line", 3), "data_geo").n
    3
    >>> check_geometry("line", "data_geo")
    Traceback (most recent call last):
    ...
    TypeError: data_geo must be a Geometry (from rpmref.structure.geometry(kind, size)), got str
    """
    if not isinstance(value, Geometry):
        raise TypeError(f"{name} must be a Geometry (from rpmref.structure.geometry(kind, size)), "
                        f"got {type(value).__name__}")
    return value


def geometry(kind, size):
    """The ``kind`` geometry with ``size`` states (line, ring) or size × size states (grid).

    Parameters
    ----------
    kind : {'line', 'ring', 'grid'}
    size : int
        At least ``MIN_SIZE[kind]`` (2 for a line or grid, 3 for a ring), at most
        ``MAX_SIZE[kind]`` (5792 states on a line or ring, a 76 × 76 grid).

    Returns
    -------
    Geometry

    Raises
    ------
    ValueError
        ``kind`` not one of ``GEOMETRIES``, or ``size`` outside
        [``MIN_SIZE[kind]``, ``MAX_SIZE[kind]``] (beyond it the (n, n) tables would not fit
        the ``MAX_TENSOR_ELEMENTS`` budget of ``rpmref.exact.discrete``).
    TypeError
        ``kind`` not a string, or ``size`` not an integer (bool and floats refused).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import geometry
    >>> grid = geometry("grid", 3)
    >>> grid.n, grid.coords[4].tolist()          # state 4 = (row, col) = divmod(4, 3)
    (9, [1.0, 1.0])
    >>> bool(np.isclose(grid.distance[0, 4], np.sqrt(2)))   # Euclidean, not Manhattan
    True
    >>> int(grid.neighbours[4].sum())            # the centre has four neighbours
    4
    """
    kind = check_choice(kind, "kind", GEOMETRIES)
    size = check_int(size, "size", minimum=MIN_SIZE[kind])
    if size > MAX_SIZE[kind]:
        states = f"{size}² = {size * size:.3g} states" if kind == "grid" else f"{size} states"
        raise ValueError(
            f"size must be <= {MAX_SIZE[kind]} for a {kind}, got {size}: {states} make (n, n) "
            f"tables beyond MAX_TENSOR_ELEMENTS = {MAX_TENSOR_ELEMENTS} (rpmref.exact.discrete)")
    if kind == "grid":
        rows, cols = np.divmod(np.arange(size * size), size)
        coords = np.stack([rows, cols], axis=1).astype(float)            # (side², 2)
        diff = coords[:, None, :] - coords[None, :, :]
        distance = np.sqrt(np.sum(diff ** 2, axis=2))
    else:
        coords = np.arange(size, dtype=float)[:, None]                   # (n, 1)
        gap = np.abs(coords - coords.T)
        distance = np.minimum(gap, size - gap) if kind == "ring" else gap
    return Geometry(kind, size, coords, distance)


def neighbour_kernel(geo, stay=0.5):
    """P(x' | x): the lazy random walk on the neighbour graph (module docstring).

    Each neighbour of x gets (1 − stay) / (the largest degree); the rest of the mass stays
    at x. Symmetric, rows summing to 1.

    Parameters
    ----------
    geo : Geometry
    stay : float, default 0.5
        The probability of staying put at a state of the largest degree, in [0, 1].

    Returns
    -------
    ndarray, shape (n, n)

    Raises
    ------
    ValueError
        ``stay`` outside [0, 1] or not finite.
    TypeError
        ``stay`` not a real number.

    Examples
    --------
    >>> from rpmref.structure import geometry, neighbour_kernel
    >>> neighbour_kernel(geometry("line", 3))    # step (1 − ½)/2 = ¼; the ends keep ¾
    array([[0.75, 0.25, 0.  ],
           [0.25, 0.5 , 0.25],
           [0.  , 0.25, 0.75]])
    """
    geo = check_geometry(geo, "geo")
    stay = check_real(stay, "stay", minimum=0.0, maximum=1.0)
    adjacent = geo.neighbours.astype(float)
    step = (1.0 - stay) / adjacent.sum(axis=1).max()
    kernel = step * adjacent
    kernel[np.diag_indices(geo.n)] = 1.0 - kernel.sum(axis=1)
    return kernel


def data_pmf(geo, stay=0.5):
    """The data pmf P(x, x') = P(x) P(x' | x): P(x) = 1/n and the lazy random walk.

    Symmetric (the two frames are exchangeable), both marginals uniform.

    Parameters
    ----------
    geo : Geometry
    stay : float, default 0.5
        As for ``neighbour_kernel``.

    Returns
    -------
    ndarray, shape (n, n)
        Sums to 1.

    Raises
    ------
    ValueError
        As for ``neighbour_kernel``.
    TypeError
        As for ``neighbour_kernel``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import data_pmf, geometry
    >>> p = data_pmf(geometry("ring", 4))
    >>> p[0].tolist()                  # ¼ × (½ stay, ¼ to each of the two neighbours)
    [0.125, 0.0625, 0.0, 0.0625]
    >>> bool(np.allclose(p, p.T)), bool(np.isclose(p.sum(), 1.0))
    (True, True)
    """
    geo = check_geometry(geo, "geo")
    return neighbour_kernel(geo, stay) / geo.n


def coarse_labels(data_geo, latent_geo):
    """The block z(x) of each data state x: contiguous blocks of the same geometry.

    line / ring: z = ⌊x k / n⌋ (k contiguous runs, sizes differing by at most one);
    grid: row and column each coarse-grained the same way, z = z_row · side_z + z_col.
    Requires the same kind and latent size ≤ data size.

    Parameters
    ----------
    data_geo : Geometry
        The data geometry (n states).
    latent_geo : Geometry
        The latent geometry (k states), of the same kind, with ``size`` ≤ ``data_geo.size``.

    Returns
    -------
    ndarray of int, shape (n,)

    Raises
    ------
    ValueError
        The two geometries of different kinds, or the latent one larger.

    Examples
    --------
    >>> from rpmref.structure import coarse_labels, geometry
    >>> coarse_labels(geometry("line", 5), geometry("line", 2)).tolist()   # ⌊2x/5⌋
    [0, 0, 0, 1, 1]
    >>> coarse_labels(geometry("grid", 4), geometry("grid", 2)).reshape(4, 4).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """
    data_geo, latent_geo = check_geometry(data_geo, "data_geo"), check_geometry(latent_geo, "latent_geo")
    if latent_geo.kind != data_geo.kind:
        raise ValueError(f"latent_geo must be a {data_geo.kind} like data_geo, got a "
                         f"{latent_geo.kind}")
    if latent_geo.size > data_geo.size:
        raise ValueError(f"latent_geo.size must be <= data_geo.size = {data_geo.size} "
                         f"(coarse-graining), got {latent_geo.size}")
    ticks = np.arange(data_geo.size) * latent_geo.size // data_geo.size
    if data_geo.kind != "grid":
        return ticks
    rows, cols = np.divmod(np.arange(data_geo.n), data_geo.size)
    return ticks[rows] * latent_geo.size + ticks[cols]


def symmetries(geo):
    """The distance-preserving relabellings of ``geo``, identity first.

    line: the identity and the reversal (2); ring: the rotations and reflections (2n);
    grid: the 8 rotations and reflections of the square. Each row σ maps state s to
    σ[s].

    Parameters
    ----------
    geo : Geometry

    Returns
    -------
    ndarray of int64, shape (m, n)
        Distinct permutations; row 0 is the identity.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import geometry, symmetries
    >>> symmetries(geometry("line", 4)).tolist()
    [[0, 1, 2, 3], [3, 2, 1, 0]]
    >>> ring = geometry("ring", 5)
    >>> sigma = symmetries(ring)
    >>> len(sigma), all(np.array_equal(ring.distance[np.ix_(s, s)], ring.distance) for s in sigma)
    (10, True)
    >>> len(symmetries(geometry("grid", 3)))
    8
    """
    geo = check_geometry(geo, "geo")
    n, s = geo.n, geo.size
    idx = np.arange(n)
    if geo.kind == "line":
        perms = [idx, idx[::-1]]
    elif geo.kind == "ring":
        perms = [(idx + r) % n for r in range(n)] + [(r - idx) % n for r in range(n)]
    else:
        rows, cols = np.divmod(idx, s)
        maps = [(rows, cols), (cols, s - 1 - rows), (s - 1 - rows, s - 1 - cols),
                (s - 1 - cols, rows)]
        maps += [(r, s - 1 - c) for r, c in maps]                        # each rotation, mirrored
        perms = [r * s + c for r, c in maps]
    out = np.unique(np.array(perms, dtype=np.int64), axis=0)
    first = np.flatnonzero((out == idx).all(axis=1))[0]
    return np.concatenate([out[first:first + 1], np.delete(out, first, axis=0)])


__all__ = ["GEOMETRIES", "Geometry", "geometry", "neighbour_kernel", "data_pmf",
           "coarse_labels", "symmetries"]
