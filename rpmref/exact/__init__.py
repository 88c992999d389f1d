"""The exact theory with discrete latents: nothing here imports the rest of rpmref.

``numerics`` (log-sum-exp, x·log y) → ``validation`` (argument checks) →
``measures`` (entropy, KL, mutual information) → ``discrete`` (the recognition
parameterised model: Eq. 3–20, 28–34) and ``infonce`` (energy prior, I_∞ and
I_N: Eq. 6–7, 21–25).
"""
from rpmref.exact.discrete import (
    ElboDecomposition, data_constant, data_marginals, elbo, elbo_decomposition,
    empirical_rpm_pmf, expected_elbo, latent_marginals, optimal_prior, recognition_joint,
    rpm_log_likelihood, rpm_posterior)
from rpmref.exact.infonce import (
    InfoNCEBound, energy_prior, infonce_bound, infonce_limit, log_partition)
from rpmref.exact.measures import entropy, kl_divergence, mutual_information

__all__ = [
    "entropy", "kl_divergence", "mutual_information",
    "recognition_joint", "optimal_prior", "rpm_log_likelihood", "elbo", "rpm_posterior",
    "expected_elbo", "elbo_decomposition", "ElboDecomposition", "data_constant",
    "data_marginals", "latent_marginals", "empirical_rpm_pmf",
    "energy_prior", "log_partition", "infonce_limit", "infonce_bound", "InfoNCEBound",
]
