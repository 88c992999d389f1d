"""The continuous analogue in closed form: invertible linear maps of Gaussian latents.

z, z' ∈ R² jointly Gaussian, zero mean, unit variances, Cov(z_i, z'_i) = ρ_i (independent
coordinates). An invertible A applied to both codes (z ↦ Az, z' ↦ Az') is the
continuous relabelling: I(Z; Z') is unchanged (``rpmref.gaussian.mutual_information``),
while I_∞ of the RBF critic −‖z − z'‖²/(2ℓ²) (Eq. 27) at its best ℓ
(``rpmref.gaussian.rbf_infonce_limit`` at ``optimal_rbf_lengthscale``) changes unless A is
a scaled orthogonal map — the RBF prior's own symmetries, as reflections and rotations
are for the discrete geometries.
"""
from collections.abc import Mapping

import numpy as np

from rpmref.exact.validation import as_real_array
from rpmref.gaussian import (
    gaussian_pair, mutual_information, optimal_rbf_lengthscale, rbf_infonce_limit)

#: The correlations of the two coordinates.
RHO = (0.9, 0.5)


def default_maps():
    """The linear maps of ``rpmref structure``: the identity, a rotation by 36°, a uniform
    scaling ×3, an anisotropic scaling diag(1, 5), a shear and a fixed random matrix
    (seed 0).

    Returns
    -------
    dict
        Name → A, an invertible (2, 2) ndarray.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import default_maps
    >>> maps = default_maps()
    >>> list(maps)
    ['identity', 'rotation 36°', 'scaling ×3', 'scaling (1, 5)', 'shear 2', 'random']
    >>> A = maps["rotation 36°"]
    >>> bool(np.allclose(A @ A.T, np.eye(2)))
    True
    """
    c, s = np.cos(np.pi / 5), np.sin(np.pi / 5)
    return {"identity": np.eye(2), "rotation 36°": np.array([[c, -s], [s, c]]),
            "scaling ×3": 3.0 * np.eye(2), "scaling (1, 5)": np.diag([1.0, 5.0]),
            "shear 2": np.array([[1.0, 2.0], [0.0, 1.0]]),
            "random": np.random.default_rng(0).standard_normal((2, 2))}


def mapped_pair(A, rho=RHO):
    """The Gaussian pair of (Az, Az') for the base pair of the module docstring.

    z, z' ∈ R² zero mean, unit variances, Cov(z_i, z'_i) = ρ_i: the mapped pair has
    Cov(Az) = Cov(Az') = AAᵀ and Cov(Az, Az') = A diag(ρ) Aᵀ.

    Parameters
    ----------
    A : array_like, shape (2, 2)
        An invertible map: its singular values s_min/s_max > 1e-12 (a condition that does
        not depend on the scale of A), with AAᵀ within the normal float64 range.
    rho : array_like, shape (2,), default RHO (0.9, 0.5)
        The correlations, each in (−1, 1).

    Returns
    -------
    GaussianPair
        k = 2.

    Raises
    ------
    ValueError
        ``A`` not (2, 2), finite and invertible, AAᵀ overflowing or underflowing
        float64, or ``rho`` not two entries in (−1, 1).
    TypeError
        Arguments of a non-real dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import mutual_information
    >>> from rpmref.structure import mapped_pair
    >>> mi = -0.5 * (np.log(1 - 0.9 ** 2) + np.log(1 - 0.5 ** 2))   # independent coordinates
    >>> bool(np.isclose(mutual_information(mapped_pair(np.eye(2))), mi))
    True
    >>> bool(np.isclose(mutual_information(mapped_pair([[1.0, 2.0], [0.0, 1.0]])), mi))   # invariant
    True
    """
    A = as_real_array(A, "A", dims=(2, 2))
    rho = as_real_array(rho, "rho", dims=(2,))
    if np.any(np.abs(rho) >= 1):
        raise ValueError(f"rho entries must be in (-1, 1), got {rho}")
    singular = np.linalg.svd(A, compute_uv=False)                     # descending
    if not singular[1] > 1e-12 * singular[0]:
        raise ValueError(f"A must be invertible, got singular values {singular[0]:.3g} and "
                         f"{singular[1]:.3g} (ratio at most 1e-12)")
    with np.errstate(over="ignore", under="ignore"):
        big, small = singular[0] ** 2, singular[1] ** 2
    if not (np.isfinite(big) and small >= np.finfo(float).tiny):
        raise ValueError(f"A must have A Aᵀ within the float64 range, got singular values "
                         f"{singular[0]:.3g} and {singular[1]:.3g}")
    return gaussian_pair(A @ A.T, A @ A.T, A @ np.diag(rho) @ A.T)


def linear_map_table(maps=None, rho=RHO):
    """One row per map: I(Z; Z') (unchanged by every invertible A) and I_∞ of the RBF
    critic (Eq. 27) at its best lengthscale ℓ* (changed unless A is a scaled rotation or
    reflection).

    Parameters
    ----------
    maps : dict, optional
        Name → A (2, 2); default ``default_maps()``.
    rho : array_like, shape (2,), default RHO
        As for ``mapped_pair``.

    Returns
    -------
    list of dict
        Keys ``map`` (the name), ``mi`` (``rpmref.gaussian.mutual_information``, nats),
        ``lengthscale`` (ℓ*, ``optimal_rbf_lengthscale``) and ``i_inf``
        (``rbf_infonce_limit`` at ℓ*, nats).

    Raises
    ------
    ValueError
        As for ``mapped_pair``.
    TypeError
        ``maps`` not a dict (name → A).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import linear_map_table
    >>> rows = {row["map"]: row for row in linear_map_table()}
    >>> mi = -0.5 * (np.log(1 - 0.9 ** 2) + np.log(1 - 0.5 ** 2))
    >>> all(np.isclose(row["mi"], mi) and row["i_inf"] <= row["mi"] for row in rows.values())
    True
    >>> # a rotation and a uniform scaling (ℓ* scales with it) leave the RBF I_∞ unchanged
    >>> same = [rows[name]["i_inf"] for name in ("identity", "rotation 36°", "scaling ×3")]
    >>> bool(np.allclose(same, same[0])), bool(np.isclose(rows["scaling ×3"]["lengthscale"],
    ...                                                   3 * rows["identity"]["lengthscale"]))
    (True, True)
    >>> bool(rows["shear 2"]["i_inf"] < rows["identity"]["i_inf"] - 0.1)
    True
    """
    maps = default_maps() if maps is None else maps
    if not isinstance(maps, Mapping):
        raise TypeError(f"maps must be a dict of name -> (2, 2) matrix, got {type(maps).__name__}")
    rows = []
    for name, A in maps.items():
        joint = mapped_pair(A, rho)
        ell = optimal_rbf_lengthscale(joint)
        rows.append({"map": name, "mi": mutual_information(joint),
                     "lengthscale": float(ell),
                     "i_inf": rbf_infonce_limit(joint, ell)})
    return rows


__all__ = ["RHO", "default_maps", "mapped_pair", "linear_map_table"]
