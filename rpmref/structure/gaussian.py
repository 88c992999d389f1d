"""The continuous analogue in closed form: invertible linear maps of Gaussian latents.

z, z' ∈ R² jointly Gaussian, zero mean, unit variances, Cov(z_i, z'_i) = ρ_i (independent
coordinates). An invertible A applied to both codes (z ↦ Az, z' ↦ Az') is the
continuous relabelling: I(Z; Z') is unchanged (``rpmref.gaussian.mutual_information``),
while I_∞ of the RBF critic −‖z − z'‖²/(2ℓ²) (Eq. 27) at its best ℓ
(``rpmref.gaussian.rbf_infonce_limit`` at ``optimal_rbf_lengthscale``) changes unless A is
a scaled orthogonal map — the RBF prior's own symmetries, as reflections and rotations
are for the discrete geometries.
"""
import numpy as np

from rpmref.exact.validation import as_real_array
from rpmref.gaussian import (
    gaussian_pair, mutual_information, optimal_rbf_lengthscale, rbf_infonce_limit)

#: The correlations of the two coordinates.
RHO = (0.9, 0.5)


def default_maps():
    """{name: A (2, 2)}: the identity, a rotation, a uniform scaling, an anisotropic
    scaling, a shear and a fixed random matrix (seed 0)."""
    c, s = np.cos(np.pi / 5), np.sin(np.pi / 5)
    return {"identity": np.eye(2), "rotation 36°": np.array([[c, -s], [s, c]]),
            "scaling ×3": 3.0 * np.eye(2), "scaling (1, 5)": np.diag([1.0, 5.0]),
            "shear 2": np.array([[1.0, 2.0], [0.0, 1.0]]),
            "random": np.random.default_rng(0).standard_normal((2, 2))}


def mapped_pair(A, rho=RHO):
    """The Gaussian pair of (Az, Az') for the base pair of the module docstring."""
    A = as_real_array(A, "A", dims=(2, 2))
    rho = as_real_array(rho, "rho", dims=(2,))
    if np.any(np.abs(rho) >= 1):
        raise ValueError(f"rho entries must be in (-1, 1), got {rho}")
    if abs(np.linalg.det(A)) <= 1e-12 * max(1.0, float(np.max(np.abs(A)))) ** 2:
        raise ValueError(f"A must be invertible, got det(A) = {np.linalg.det(A):.3g}")
    return gaussian_pair(A @ A.T, A @ A.T, A @ np.diag(rho) @ A.T)


def linear_map_table(maps=None, rho=RHO):
    """[{map, mi, lengthscale, i_inf}] for each A of ``maps`` (default ``default_maps()``)."""
    maps = default_maps() if maps is None else maps
    rows = []
    for name, A in maps.items():
        joint = mapped_pair(A, rho)
        ell = optimal_rbf_lengthscale(joint)
        rows.append({"map": name, "mi": mutual_information(joint),
                     "lengthscale": float(ell),
                     "i_inf": rbf_infonce_limit(joint, ell)})
    return rows


__all__ = ["RHO", "default_maps", "mapped_pair", "linear_map_table"]
