"""Exact quantities of the recognition parameterised model with discrete latents.

Shapes (docs/theory.md, 'Objects'): data pmf ``p_xx`` (n, n'); encoders ``enc`` = P(z | x) (n, k)
and ``enc_prime`` = P(z' | x') (n', k'); prior ``prior`` = P_θ(z, z') (k, k').
Everything is in nats and float64. Latent states that the recognition marginals
never reach (P(z) = 0 or P(z') = 0) never appear in the recognition joint, so
they are dropped from every sum (docs/theory.md, 'The model').

Every data-sized quantity is one or two matrix products through the (k, k')
tables — never an (n, n', k, k') tensor — except where the caller passes such
a tensor (an explicit posterior) or asks for one (``rpm_posterior``); those are
refused beyond ``MAX_TENSOR_ELEMENTS``.

Ratios of small numbers are formed from logarithms: the density ratio
P_θ(z, z') / (P(z) P(z')) enters as log P_θ − log P(z) − log P(z'), with
log P(z) computed exactly even where P(z) underflows, and the likelihood sum is
``log_scaled_product``. So an encoder row [1e-200, 1] or a prior entry 1e-320
gives the exact answer. Every function is differentiable by autograd in all
its array arguments, with exact gradients at one-hot encoder rows.
"""
from collections import namedtuple

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from rpmref.exact.measures import kl_divergence_of, mutual_information_of, scalar
from rpmref.exact.numerics import (
    array_module, log_matmul, log_scaled_product, prod_exp, safe_log, sum_xlogy, x_log, xlogx, xlogy)
from rpmref.exact.validation import Conditional, Optional, Pmf, validate_params

#: Largest (n, n', k, k') tensor (elements) that ``rpm_posterior`` builds or ``elbo`` accepts
#: as ``posterior``: 2^25 float64 = 256 MiB, a few times that with temporaries.
MAX_TENSOR_ELEMENTS = 2 ** 25

ElboDecomposition = namedtuple("ElboDecomposition", "elbo mutual_information kl constant")
ElboDecomposition.__doc__ = """L = I(Z; Z') − KL(P(z, z') ‖ P_θ(z, z')) + C  (Eq. 17–18, E3).

elbo: L of Eq. 16, computed directly (not as the sum of the other fields);
mutual_information: I(Z; Z') of the recognition joint; kl: KL(P(z, z') ‖ P_θ);
constant: C = −H(X) − H(X')."""

_P_XX = dict(p_xx=Pmf(dims=("n", "n'")))
_DATA = dict(_P_XX, enc=Conditional(dims=("n", "k")), enc_prime=Conditional(dims=("n'", "k'")))
_MODEL = dict(_DATA, prior=Pmf(dims=("k", "k'")))


def _value(x):
    return np.asarray(getval(x))


def _marginals(p_xx):
    xp = array_module(p_xx)
    return xp.sum(p_xx, axis=1), xp.sum(p_xx, axis=0)


def _latent(p_x, enc):
    """P(z) = Σ_x P(x) P(z|x) (k,), exact log P(z) (−inf where unreachable) and the
    log-scale α = −log P(z) of the density ratio (−inf drops an unreachable state)."""
    p_z = array_module(p_x, enc).matmul(p_x, enc)
    log_p_z = log_matmul(p_x[None, :], enc, product=p_z[None, :])[0]
    reach = _value(log_p_z) > -np.inf
    if reach.all():
        return p_z, log_p_z, -log_p_z, reach
    alpha = anp.where(reach, -anp.where(reach, log_p_z, 0.0), -np.inf)
    return p_z, log_p_z, alpha, reach


def _joint(p_xx, enc, enc_prime):
    """encᵀ · p_xx · enc_prime, (k, k')."""
    xp = array_module(p_xx, enc, enc_prime)
    return xp.matmul(xp.matmul(xp.transpose(enc), p_xx), enc_prime)


@validate_params(**_P_XX)
def data_marginals(p_xx):
    """P(x) (n,) and P(x') (n',) of a data pmf (Eq. 4)."""
    return _marginals(p_xx)


@validate_params(**_DATA)
def latent_marginals(p_xx, enc, enc_prime):
    """P(z) = Σ_x P(x) P(z|x) (k,) and P(z') (k',) (Eq. 11)."""
    p_x, p_x_prime = _marginals(p_xx)
    return anp.matmul(p_x, enc), anp.matmul(p_x_prime, enc_prime)


@validate_params(**_DATA)
def recognition_joint(p_xx, enc, enc_prime):
    """P(z, z') = Σ_{x,x'} P(x, x') P(z|x) P(z'|x') = encᵀ · p_xx · enc_prime (Eq. 3–4).

    Returns an array of shape (k, k').
    """
    return _joint(p_xx, enc, enc_prime)


@validate_params(**_DATA)
def optimal_prior(p_xx, enc, enc_prime):
    """The prior that maximises L: the recognition joint P(z, z') itself (Eq. 19–20, E4).

    Returns an array of shape (k, k').
    """
    return _joint(p_xx, enc, enc_prime)


def _log_likelihood_sum(enc, alpha, prior, beta, enc_prime):
    """log Σ_{z,z'} P(z|x) P(z'|x') P_θ(z,z') / (P(z) P(z')) for every (x, x'), (n, n')."""
    return log_scaled_product(enc, alpha, prior, beta, enc_prime)


@validate_params(**_MODEL)
def rpm_log_likelihood(p_xx, enc, enc_prime, prior):
    """log P_θ(x, x') of the recognition parameterised model (Eq. 9–10, docs/theory.md, 'The model').

    P_θ(x, x') = P(x) P(x') Σ_{z,z'} P_θ(z,z') P(z|x) P(z'|x') / (P(z) P(z')).
    Returns an array of shape (n, n'); −inf where P(x) P(x') = 0 or where the
    prior puts no mass on the latent states the pair can reach. Exact also where
    the products underflow float64 (a log-space fallback, see ``log_scaled_product``).
    """
    p_x, p_x_prime = _marginals(p_xx)
    _, _, alpha, _ = _latent(p_x, enc)
    _, _, beta, _ = _latent(p_x_prime, enc_prime)
    return log_scaled_product(enc, alpha, prior, beta, enc_prime,
                              row_offset=safe_log(p_x), col_offset=safe_log(p_x_prime))


def _tensor_budget():
    return MAX_TENSOR_ELEMENTS


@validate_params(**_MODEL, posterior=Optional(Conditional(
    dims=("n", "n'", "k", "k'"), ndim=4, event_axes=2, max_elements=_tensor_budget)))
def elbo(p_xx, enc, enc_prime, prior, posterior=None):
    """ELBO(x, x') for every data pair (Eq. 12). Returns an array of shape (n, n').

    posterior: Q(z, z' | x, x'), shape (n, n', k, k'), each (x, x') slice a pmf
      (at most ``MAX_TENSOR_ELEMENTS`` entries). With it, Eq. 12 is evaluated term by term:
      E_Q[log P_θ(z,z') + log P(x|z) + log P(x'|z') − log Q], with the Bayes
      likelihoods of Eq. 10 taken as log P(z|x) + log P(x) − log P(z). ``None``
      (default) means the recognition posterior Q = P(z|x) P(z'|x') of Eq. 14, for
      which Eq. 15 is evaluated instead:
      Σ_{z,z'} P(z|x) P(z'|x') log[P_θ(z,z') / (P(z)P(z'))] + log P(x) + log P(x').
    Entries are −inf where P(x) P(x') = 0 or Q puts mass where the model has none.
    """
    p_x, p_x_prime = _marginals(p_xx)
    _, log_p_z, alpha, reach = _latent(p_x, enc)
    _, log_p_z_prime, beta, reach_prime = _latent(p_x_prime, enc_prime)
    log_p_x, log_p_x_prime = safe_log(p_x), safe_log(p_x_prime)
    if posterior is not None:
        return _elbo_with_posterior(posterior, enc, enc_prime, prior, log_p_x, log_p_x_prime,
                                    alpha, beta)
    prior_v = _value(prior)
    reachable = reach[:, None] & reach_prime[None, :]
    finite = reachable & (prior_v > 0)
    alpha_0 = anp.where(reach, alpha, 0.0)
    beta_0 = anp.where(reach_prime, beta, 0.0)
    log_ratio = anp.where(finite, safe_log(prior) + alpha_0[:, None] + beta_0[None, :], 0.0)
    # Matrix products cannot carry 0 · (−inf) = 0, so −inf entries are tracked apart.
    expected = anp.matmul(anp.matmul(enc, log_ratio), anp.transpose(enc_prime))
    blocked_states = reachable & (prior_v == 0)
    if blocked_states.any():
        hits = np.matmul(np.matmul((_value(enc) > 0).astype(float), blocked_states.astype(float)),
                         (_value(enc_prime) > 0).astype(float).T) > 0
        expected = anp.where(hits, -np.inf, expected)
    return expected + log_p_x[:, None] + log_p_x_prime[None, :]


def _elbo_with_posterior(q, enc, enc_prime, prior, log_p_x, log_p_x_prime, alpha, beta):
    """Eq. 12 term by term; log P(x|z) = log P(z|x) + log P(x) − log P(z) (Eq. 10–11)."""
    log_lik = safe_log(enc) + log_p_x[:, None] + alpha[None, :]                  # (n, k)
    log_lik_prime = safe_log(enc_prime) + log_p_x_prime[:, None] + beta[None, :]  # (n', k')
    return (anp.sum(xlogy(q, prior[None, None]), axis=(2, 3))
            + anp.sum(x_log(anp.sum(q, axis=3), log_lik[:, None, :]), axis=2)
            + anp.sum(x_log(anp.sum(q, axis=2), log_lik_prime[None, :, :]), axis=2)
            - anp.sum(xlogx(q), axis=(2, 3)))


@validate_params(**_MODEL)
def rpm_posterior(p_xx, enc, enc_prime, prior):
    """The model posterior P_θ(z, z' | x, x') ∝ P_θ(z, z') P(z|x) P(z'|x') / (P(z) P(z')) (E8).

    (The Bayes likelihoods' factors P(x)/P(z) etc. are folded in; see Eq. 10.)
    Returns an array of shape (n, n', k, k'), refused (ValueError) beyond
    ``MAX_TENSOR_ELEMENTS`` entries. Each entry is formed in log space, so
    entries down to the smallest float64 are exact. Pairs with P_θ(x, x') = 0
    have no posterior; their slices are all zero.
    """
    n, n_prime = np.shape(getval(p_xx))
    k, k_prime = np.shape(getval(prior))
    size = n * n_prime * k * k_prime
    if size > MAX_TENSOR_ELEMENTS:
        raise ValueError(
            f"rpm_posterior: p_xx {(n, n_prime)}, enc (n, k={k}) and enc_prime (n', k'={k_prime}) "
            f"make an (n, n', k, k') posterior of {size:.3g} elements, more than "
            f"MAX_TENSOR_ELEMENTS = {MAX_TENSOR_ELEMENTS} (rpmref.exact.discrete)")
    p_x, p_x_prime = _marginals(p_xx)
    _, _, alpha, _ = _latent(p_x, enc)
    _, _, beta, _ = _latent(p_x_prime, enc_prime)
    log_sum = _log_likelihood_sum(enc, alpha, prior, beta, enc_prime)            # (n, n')
    has_posterior = np.isfinite(_value(log_sum))[:, :, None, None]
    with np.errstate(invalid="ignore"):
        log_scale = (alpha[None, None, :, None] + beta[None, None, None, :]
                     - anp.where(has_posterior[:, :, 0, 0], log_sum, 0.0)[:, :, None, None])
    log_scale = anp.where(has_posterior, log_scale, -np.inf)
    return prod_exp(log_scale, enc[:, None, :, None], enc_prime[None, :, None, :],
                    prior[None, None, :, :])


def _data_constant(p_xx):
    p_x, p_x_prime = _marginals(p_xx)
    return sum_xlogy(p_x, p_x) + sum_xlogy(p_x_prime, p_x_prime)


@validate_params(**_P_XX)
def data_constant(p_xx):
    """C = −H(X) − H(X') (Eq. 16): constant in every parameter."""
    return scalar(_data_constant(p_xx))


def _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior):
    """True if the recognition joint is positive (in exact arithmetic) where the prior is 0
    although its float64 value rounded to 0 there (products below 2^-1074)."""
    prior_v = _value(prior)
    if prior_v.min() > 0:
        return False
    candidates = (prior_v == 0) & (_value(p_zz) == 0)
    if not candidates.any():
        return False
    support = np.matmul(np.matmul((_value(enc) > 0).astype(float).T,
                                  (_value(p_xx) > 0).astype(float)),
                        (_value(enc_prime) > 0).astype(float)) > 0
    return bool((support & candidates).any())


def _expected_elbo(p_zz, prior, hidden, constant, marginals):
    """Σ P(z,z') log P_θ + H(Z) + H(Z') + C (Eq. 16 rearranged); marginals = (P(z), P(z'))."""
    cross = -np.inf if hidden else sum_xlogy(p_zz, prior)
    p_z, p_z_prime = marginals
    return cross - sum_xlogy(p_z, p_z) - sum_xlogy(p_z_prime, p_z_prime) + constant


def _joint_marginals(p_zz):
    xp = array_module(p_zz)
    return xp.sum(p_zz, axis=1), xp.sum(p_zz, axis=0)


@validate_params(**_MODEL)
def expected_elbo(p_xx, enc, enc_prime, prior):
    """L = E_{P(x,x')}[ELBO(x, x')] with the recognition posterior (Eq. 16).

    Computed from the latent tables alone:
    L = Σ P(z,z') log P_θ(z,z') + H(Z) + H(Z') − H(X) − H(X'),
    which is Σ P(z,z') log[P_θ / (P(z)P(z'))] + C rearranged. Returns a float
    (−inf when the prior misses part of the recognition joint's support).
    """
    p_zz = _joint(p_xx, enc, enc_prime)
    hidden = _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior)
    return scalar(_expected_elbo(p_zz, prior, hidden, _data_constant(p_xx), _joint_marginals(p_zz)))


@validate_params(**_MODEL)
def elbo_decomposition(p_xx, enc, enc_prime, prior):
    """L split as I(Z; Z') − KL(P(z,z') ‖ P_θ(z,z')) + C (Eq. 17–18, E3).

    Returns an ``ElboDecomposition(elbo, mutual_information, kl, constant)``;
    ``elbo`` is computed as in ``expected_elbo``, not as the sum of the others.
    """
    p_zz = _joint(p_xx, enc, enc_prime)
    hidden = _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior)
    constant = _data_constant(p_xx)
    marginals = _joint_marginals(p_zz)
    return ElboDecomposition(
        elbo=scalar(_expected_elbo(p_zz, prior, hidden, constant, marginals)),
        mutual_information=scalar(mutual_information_of(p_zz, marginals)),
        kl=float("inf") if hidden else scalar(kl_divergence_of(p_zz, prior)),
        constant=scalar(constant))


@validate_params(enc_rows=Conditional(dims=("N", "k")),
                 enc_prime_rows=Conditional(dims=("N", "k'")), prior=Pmf(dims=("k", "k'")))
def empirical_rpm_pmf(enc_rows, enc_prime_rows, prior):
    """The RPM over index pairs (n, m) with empirical data marginals (Eq. 28–34, A1).

    enc_rows: (N, k), row n = P(z | x_n); enc_prime_rows: (N, k'), row m = P(z' | x'_m);
    prior: (k, k'). With P(z) = (1/N) Σ_n P(z | x_n) (Eq. 29), returns the (N, N) pmf
    P_θ(n, m) = (1/N²) Σ_{z,z'} P_θ(z,z') P(z|x_n) P(z'|x'_m) / (P(z) P(z')),
    as L · P_θ · L'ᵀ with the Bayes likelihoods L(n, z) = P(z|x_n) / (N P(z)) ≤ 1
    formed in log space (so P(z) = 1e-200 is no obstacle).
    """
    n = np.shape(getval(enc_rows))[0]
    uniform = np.full(n, 1.0 / n)
    _, _, alpha, _ = _latent(uniform, enc_rows)
    _, _, beta, _ = _latent(uniform, enc_prime_rows)
    left = prod_exp(alpha[None, :] - np.log(n), enc_rows)                # (N, k), P(n | z)
    right = prod_exp(beta[None, :] - np.log(n), enc_prime_rows)          # (N, k'), P(m | z')
    return anp.matmul(anp.matmul(left, prior), anp.transpose(right))


__all__ = [
    "ElboDecomposition", "recognition_joint", "optimal_prior", "rpm_log_likelihood", "elbo",
    "rpm_posterior", "expected_elbo", "elbo_decomposition", "empirical_rpm_pmf",
    "data_constant", "latent_marginals", "data_marginals", "MAX_TENSOR_ELEMENTS",
]
