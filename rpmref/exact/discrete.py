"""Exact quantities of the recognition parameterised model with discrete latents.

Shapes (docs/theory.md, 'Objects'): data pmf ``p_xx`` (n, n'); encoders ``enc`` = P(z | x) (n, k)
and ``enc_prime`` = P(z' | x') (n', k'); prior ``prior`` = P_θ(z, z') (k, k').
Everything is in nats and float64. Latent states that the recognition marginals
never reach (P(z) = 0 or P(z') = 0) never appear in the recognition joint, so
they are dropped from every sum (docs/theory.md, 'The model').

Every data-sized quantity is one or two matrix products through the (k, k')
"density ratio" table — never an (n, n', k, k') tensor — except where the caller
passes such a tensor (an explicit posterior) or asks for one (``rpm_posterior``).
"""
from collections import namedtuple

import numpy as np

from rpmref.exact.measures import kl_divergence_of, mutual_information_of
from rpmref.exact.numerics import xlogx, xlogy
from rpmref.exact.validation import (
    SUM_TOLERANCE, check_conditional, check_nonnegative, check_pmf, check_rpm_inputs,
    check_shape, as_float_array)

ElboDecomposition = namedtuple("ElboDecomposition", "elbo mutual_information kl constant")
ElboDecomposition.__doc__ = """L = I(Z; Z') − KL(P(z, z') ‖ P_θ(z, z')) + C  (Eq. 17–18, E3).

elbo: L of Eq. 16, computed directly (not as the sum of the other fields);
mutual_information: I(Z; Z') of the recognition joint; kl: KL(P(z, z') ‖ P_θ);
constant: C = −H(X) − H(X')."""


def _log(a):
    """Elementwise log with log 0 = −inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(a)


def data_marginals(p_xx):
    """P(x) (n,) and P(x') (n',) of a data pmf (Eq. 4)."""
    return p_xx.sum(axis=1), p_xx.sum(axis=0)


def latent_marginals(p_xx, enc, enc_prime):
    """P(z) = Σ_x P(x) P(z|x) (k,) and P(z') (k',) (Eq. 11)."""
    p_x, p_x_prime = data_marginals(p_xx)
    return p_x @ enc, p_x_prime @ enc_prime


def recognition_joint(p_xx, enc, enc_prime):
    """P(z, z') = Σ_{x,x'} P(x, x') P(z|x) P(z'|x') = encᵀ · p_xx · enc_prime (Eq. 3–4).

    Returns an array of shape (k, k').
    """
    p_xx, enc, enc_prime, _ = check_rpm_inputs(p_xx, enc, enc_prime)
    return enc.T @ p_xx @ enc_prime


def optimal_prior(p_xx, enc, enc_prime):
    """The prior that maximises L: the recognition joint P(z, z') itself (Eq. 19–20, E4).

    Returns an array of shape (k, k').
    """
    return recognition_joint(p_xx, enc, enc_prime)


def _density_ratio(prior, p_z, p_z_prime):
    """P_θ(z, z') / (P(z) P(z')) on reachable states, 0 on unreachable ones. (k, k')."""
    reachable = np.outer(p_z > 0, p_z_prime > 0)
    denominator = np.where(reachable, np.outer(p_z, p_z_prime), 1.0)
    return np.where(reachable, prior / denominator, 0.0)


def _likelihood_sum(enc, enc_prime, prior, p_z, p_z_prime):
    """Σ_{z,z'} P_θ(z,z') P(z|x) P(z'|x') / (P(z) P(z')) for every (x, x'). (n, n')."""
    return enc @ _density_ratio(prior, p_z, p_z_prime) @ enc_prime.T


def rpm_log_likelihood(p_xx, enc, enc_prime, prior):
    """log P_θ(x, x') of the recognition parameterised model (Eq. 9–10, docs/theory.md, 'The model').

    P_θ(x, x') = P(x) P(x') Σ_{z,z'} P_θ(z,z') P(z|x) P(z'|x') / (P(z) P(z')).
    Returns an array of shape (n, n'); −inf where P(x) P(x') = 0 or where the
    prior puts no mass on the latent states the pair can reach.
    """
    p_xx, enc, enc_prime, prior = check_rpm_inputs(p_xx, enc, enc_prime, prior)
    p_x, p_x_prime = data_marginals(p_xx)
    p_z, p_z_prime = p_x @ enc, p_x_prime @ enc_prime
    total = _likelihood_sum(enc, enc_prime, prior, p_z, p_z_prime)
    return _log(p_x)[:, None] + _log(p_x_prime)[None, :] + _log(total)


def _check_posterior(posterior, shape):
    q = check_nonnegative(as_float_array(posterior, "posterior", ndim=4), "posterior")
    check_shape(q, "posterior", shape, "(n, n', k, k') = Q(z, z' | x, x')")
    sums = q.sum(axis=(2, 3))
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        x, x_prime = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"posterior must be normalised for every (x, x') (tolerance {SUM_TOLERANCE:g}); "
            f"posterior[{x}, {x_prime}] sums to {float(sums[x, x_prime])!r}")
    return q


def _bayes_likelihood(enc, p_x, p_z):
    """P(x | z) = P(z|x) P(x) / P(z) (Eq. 10–11); 0 where P(z) = 0. Shape (n, k)."""
    return np.where(p_z > 0, enc * p_x[:, None] / np.where(p_z > 0, p_z, 1.0), 0.0)


def elbo(p_xx, enc, enc_prime, prior, posterior=None):
    """ELBO(x, x') for every data pair (Eq. 12). Returns an array of shape (n, n').

    posterior: Q(z, z' | x, x'), shape (n, n', k, k'), each (x, x') slice a pmf.
      With it, Eq. 12 is evaluated term by term:
      E_Q[log P_θ(z,z') + log P(x|z) + log P(x'|z') − log Q], with the Bayes
      likelihoods of Eq. 10. ``None`` (default) means the recognition posterior
      Q = P(z|x) P(z'|x') of Eq. 14, for which Eq. 15 is evaluated instead:
      Σ_{z,z'} P(z|x) P(z'|x') log[P_θ(z,z') / (P(z)P(z'))] + log P(x) + log P(x').
    Entries are −inf where P(x) P(x') = 0 or Q puts mass where the model has none.
    """
    p_xx, enc, enc_prime, prior = check_rpm_inputs(p_xx, enc, enc_prime, prior)
    p_x, p_x_prime = data_marginals(p_xx)
    p_z, p_z_prime = p_x @ enc, p_x_prime @ enc_prime
    log_p_x = _log(p_x)[:, None] + _log(p_x_prime)[None, :]
    if posterior is not None:
        q = _check_posterior(posterior, p_xx.shape + prior.shape)
        lik = _bayes_likelihood(enc, p_x, p_z)                    # (n, k)
        lik_prime = _bayes_likelihood(enc_prime, p_x_prime, p_z_prime)  # (n', k')
        return (np.sum(xlogy(q, prior[None, None]), axis=(2, 3))
                + np.sum(xlogy(q.sum(axis=3), lik[:, None, :]), axis=2)
                + np.sum(xlogy(q.sum(axis=2), lik_prime[None, :, :]), axis=2)
                - np.sum(xlogx(q), axis=(2, 3)))
    reachable = np.outer(p_z > 0, p_z_prime > 0)
    with np.errstate(invalid="ignore"):  # −inf − (−inf) on unreachable states, masked below
        log_ratio = _log(prior) - _log(p_z)[:, None] - _log(p_z_prime)[None, :]
    finite = reachable & (prior > 0)
    # Matrix products cannot carry 0 · (−inf) = 0, so −inf entries are tracked apart.
    expected = enc @ np.where(finite, log_ratio, 0.0) @ enc_prime.T
    blocked = enc @ (reachable & (prior == 0)).astype(float) @ enc_prime.T > 0
    out = np.where(blocked, -np.inf, expected) + log_p_x
    return np.where(np.isneginf(log_p_x), -np.inf, out)


def rpm_posterior(p_xx, enc, enc_prime, prior):
    """The model posterior P_θ(z, z' | x, x') ∝ P_θ(z, z') P(z|x) P(z'|x') (E8).

    (The Bayes likelihoods' factors P(x)/P(z) etc. are folded in; see Eq. 10.)
    Returns an array of shape (n, n', k, k'). Pairs with P_θ(x, x') = 0 have no
    posterior; their slices are all zero.
    """
    p_xx, enc, enc_prime, prior = check_rpm_inputs(p_xx, enc, enc_prime, prior)
    p_z, p_z_prime = latent_marginals(p_xx, enc, enc_prime)
    ratio = _density_ratio(prior, p_z, p_z_prime)
    unnormalised = enc[:, None, :, None] * enc_prime[None, :, None, :] * ratio[None, None]
    total = unnormalised.sum(axis=(2, 3), keepdims=True)
    return np.where(total > 0, unnormalised / np.where(total > 0, total, 1.0), 0.0)


def data_constant(p_xx):
    """C = −H(X) − H(X') (Eq. 16): constant in every parameter."""
    p_xx = check_pmf(p_xx, "p_xx", ndim=2)
    p_x, p_x_prime = data_marginals(p_xx)
    return -float(np.sum(-xlogx(p_x)) + np.sum(-xlogx(p_x_prime)))


def expected_elbo(p_xx, enc, enc_prime, prior):
    """L = E_{P(x,x')}[ELBO(x, x')] with the recognition posterior (Eq. 16).

    Computed from the latent tables alone:
    L = Σ P(z,z') log P_θ(z,z') + H(Z) + H(Z') − H(X) − H(X'),
    which is Σ P(z,z') log[P_θ / (P(z)P(z'))] + C rearranged. Returns a float
    (−inf when the prior misses part of the recognition joint's support).
    """
    p_xx, enc, enc_prime, prior = check_rpm_inputs(p_xx, enc, enc_prime, prior)
    return _expected_elbo(p_xx, enc.T @ p_xx @ enc_prime, prior)


def _expected_elbo(p_xx, p_zz, prior):
    cross = float(np.sum(xlogy(p_zz, prior)))
    h_z = -float(np.sum(xlogx(p_zz.sum(axis=1))))
    h_z_prime = -float(np.sum(xlogx(p_zz.sum(axis=0))))
    return cross + h_z + h_z_prime + data_constant(p_xx)


def elbo_decomposition(p_xx, enc, enc_prime, prior):
    """L split as I(Z; Z') − KL(P(z,z') ‖ P_θ(z,z')) + C (Eq. 17–18, E3).

    Returns an ``ElboDecomposition(elbo, mutual_information, kl, constant)``;
    ``elbo`` is computed as in ``expected_elbo``, not as the sum of the others.
    """
    p_xx, enc, enc_prime, prior = check_rpm_inputs(p_xx, enc, enc_prime, prior)
    p_zz = enc.T @ p_xx @ enc_prime
    return ElboDecomposition(
        elbo=_expected_elbo(p_xx, p_zz, prior),
        mutual_information=mutual_information_of(p_zz),
        kl=kl_divergence_of(p_zz, prior),
        constant=data_constant(p_xx))


def empirical_rpm_pmf(enc_rows, enc_prime_rows, prior):
    """The RPM over index pairs (n, m) with empirical data marginals (Eq. 28–34, A1).

    enc_rows: (N, k), row n = P(z | x_n); enc_prime_rows: (N, k'), row m = P(z' | x'_m);
    prior: (k, k'). With P(z) = (1/N) Σ_n P(z | x_n) (Eq. 29), returns the (N, N) pmf
    P_θ(n, m) = (1/N²) Σ_{z,z'} P_θ(z,z') P(z|x_n) P(z'|x'_m) / (P(z) P(z')).
    """
    enc_rows = check_conditional(enc_rows, "enc_rows")
    n = enc_rows.shape[0]
    enc_prime_rows = check_conditional(enc_prime_rows, "enc_prime_rows", n_rows=n)
    prior = check_pmf(prior, "prior", ndim=2)
    check_shape(prior, "prior", (enc_rows.shape[1], enc_prime_rows.shape[1]),
                "(k, k') = latent states of enc_rows and enc_prime_rows")
    p_z, p_z_prime = enc_rows.mean(axis=0), enc_prime_rows.mean(axis=0)
    return _likelihood_sum(enc_rows, enc_prime_rows, prior, p_z, p_z_prime) / n**2


__all__ = [
    "ElboDecomposition", "recognition_joint", "optimal_prior", "rpm_log_likelihood", "elbo",
    "rpm_posterior", "expected_elbo", "elbo_decomposition", "empirical_rpm_pmf",
    "data_constant", "latent_marginals", "data_marginals",
]
