"""The recognition parameterised model with jointly Gaussian latents, in closed form.

``closed_form`` (Gaussian recognition joint, quadratic critics, MI, KL, the energy
prior, I_∞, the ELBO decomposition) → ``monte_carlo`` (I_N by sampling) and
``checks`` (the Gaussian rows of ``rpmref verify``) → ``staircase`` (the MI
benchmark of Poole et al. 2019). The closed forms are re-exported here, so
``rpmref.gaussian.mutual_information(joint)`` works.
"""
from rpmref.gaussian.closed_form import (
    MIN_LENGTHSCALE, GaussianPair, QuadraticCritic, bilinear_critic, blocks, canonical_correlations,
    cross_entropy, data_constant, elbo_decomposition, energy_prior, entropy, gaussian_pair,
    infonce_limit, kl_divergence, mutual_information, optimal_bilinear_critic, optimal_critic,
    optimal_rbf_lengthscale, rbf_critic, rbf_infonce_limit, recognition_joint)

__all__ = [
    "MIN_LENGTHSCALE", "GaussianPair", "QuadraticCritic", "gaussian_pair", "recognition_joint", "blocks",
    "bilinear_critic", "rbf_critic", "optimal_critic", "optimal_bilinear_critic",
    "optimal_rbf_lengthscale", "entropy", "cross_entropy", "canonical_correlations",
    "mutual_information", "kl_divergence", "energy_prior", "infonce_limit",
    "rbf_infonce_limit", "elbo_decomposition", "data_constant",
]
