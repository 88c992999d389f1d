"""rpmref: InfoNCE as variational inference in a recognition parameterised model.

A NumPy reference for Aitchison & Ganev, "InfoNCE is variational inference in a
recognition parameterised model" (arXiv 2107.02495). The exact discrete core:

>>> import numpy as np, rpmref
>>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
>>> enc = np.eye(2)
>>> d = rpmref.elbo_decomposition(p_xx, enc, enc, rpmref.optimal_prior(p_xx, enc, enc))
>>> abs(d.elbo - (d.mutual_information - d.kl + d.constant)) < 1e-12   # O(1) terms, a few ulps
True
"""
from rpmref._lazy import lazy_exports

# The experiment (Sec. 5): video generator, trainer, readout (more in ``rpmref.balls``).
# The Gaussian closed forms live in ``rpmref.gaussian``.
#: the names this package exports, by the module that defines them; imported on first use
#: (PEP 562), so that the ``rpmref`` command's first import does not load NumPy and
#: autograd before it can handle a Ctrl-C
_EXPORTS = {
    "rpmref.exact": (
        "ElboDecomposition", "InfoNCEBound", "data_constant", "elbo", "elbo_decomposition",
        "empirical_rpm_pmf", "energy_prior", "entropy", "expected_elbo", "infonce_bound",
        "infonce_limit", "kl_divergence", "latent_marginals", "log_partition",
        "mutual_information", "optimal_prior", "recognition_joint", "rpm_log_likelihood",
        "rpm_posterior"),
    "rpmref.balls": (
        "BallsConfig", "TrainConfig", "encode", "fit_linear_readout", "load_video",
        "make_video", "save_video", "score_readout", "train"),
}

__version__ = "0.1.0"

__all__ = [
    "entropy", "kl_divergence", "mutual_information",
    "recognition_joint", "optimal_prior", "rpm_log_likelihood", "elbo", "rpm_posterior",
    "expected_elbo", "elbo_decomposition", "ElboDecomposition", "data_constant",
    "latent_marginals", "empirical_rpm_pmf",
    "energy_prior", "log_partition", "infonce_limit", "infonce_bound", "InfoNCEBound",
    "BallsConfig", "make_video", "save_video", "load_video",
    "TrainConfig", "train", "encode", "fit_linear_readout", "score_readout",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
