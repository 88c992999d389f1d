"""Exact quantities of the recognition parameterised model with discrete latents.

Shapes (docs/theory.md, 'Objects'): data pmf ``p_xx`` (n, n'); encoders ``enc`` = P(z | x) (n, k)
and ``enc_prime`` = P(z' | x') (n', k'); prior ``prior`` = P_θ(z, z') (k, k').
Everything is in nats and float64. Latent states that the recognition marginals
never reach (P(z) = 0 or P(z') = 0) never appear in the recognition joint, so
they are dropped from every sum (docs/theory.md, 'The model').

Every data-sized quantity is one or two matrix products through the (k, k')
tables — never an (n, n', k, k') tensor — except where the caller passes such
a tensor (an explicit posterior) or asks for one (``rpm_posterior``, or the (N, N) table of
``empirical_rpm_pmf``); those are refused beyond ``MAX_TENSOR_ELEMENTS``.

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
from autograd.extend import defvjp_argnum, primitive
from autograd.tracer import getval, isbox

from rpmref.exact.measures import (
    kl_divergence_of, mutual_information_of, nonnegative_scalar, scalar)
from rpmref.exact.numerics import (
    TINY, array_module, log_matmul, log_scaled_product, prod_exp, safe_log, sum_xlogy, x_log, xlogx, xlogy)
from rpmref.exact.validation import Conditional, Optional, Pmf, validate_params

#: Largest (n, n', k, k') tensor (elements) that ``rpm_posterior`` builds or ``elbo`` accepts
#: as ``posterior``, and largest (N, N) table of ``empirical_rpm_pmf``: 2^25 float64 = 256 MiB,
#: a few times that with temporaries.
MAX_TENSOR_ELEMENTS = 2 ** 25

#: 2^-1074 ≈ 4.9e-324, the smallest positive float64: ``optimal_prior``'s value for joint
#: entries that are positive but below the float64 range.
SMALLEST_SUBNORMAL = float.fromhex("0x1p-1074")     # np.nextafter(0, 1), no NumPy underflow

ElboDecomposition = namedtuple("ElboDecomposition", "elbo mutual_information kl constant")
ElboDecomposition.__doc__ = """L = I(Z; Z') − KL(P(z, z') ‖ P_θ(z, z')) + C  (Eq. 17–18, E3).

The named tuple returned by :func:`rpmref.elbo_decomposition`.

Parameters
----------
elbo : float
    L of Eq. 16 in nats, computed directly (not as the sum of the other fields).
mutual_information : float
    I(Z; Z') ≥ 0 of the recognition joint, in nats.
kl : float
    KL(P(z, z') ‖ P_θ(z, z')) ≥ 0, in nats (+inf when the prior misses part of the
    recognition joint's support). Like :func:`rpmref.kl_divergence` and
    :func:`rpmref.mutual_information`, a sum that rounding leaves a few ulps below 0
    is reported as 0.0.
constant : float
    C = −H(X) − H(X'), in nats.

Examples
--------
>>> from rpmref import ElboDecomposition
>>> d = ElboDecomposition(elbo=-1.5, mutual_information=0.25, kl=0.5, constant=-1.25)
>>> d.mutual_information - d.kl + d.constant
-1.5
"""

_P_XX = dict(p_xx=Pmf(dims=("n", "n'")))
_DATA = dict(_P_XX, enc=Conditional(dims=("n", "k")), enc_prime=Conditional(dims=("n'", "k'")))
_MODEL = dict(_DATA, prior=Pmf(dims=("k", "k'")))


def _value(x):
    return np.asarray(getval(x))


def _marginals(p_xx):
    """Row and column sums of a 2-D table (traced or concrete)."""
    if isbox(p_xx):
        return anp.sum(p_xx, axis=1), anp.sum(p_xx, axis=0)
    return p_xx.sum(axis=1), p_xx.sum(axis=0)


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


def _scaled_encoder(p_x, enc):
    """(A, α) with A ⊙ e^α the Bayes likelihood ratios L(x, z) = P(z|x) / P(z) (Eq. 10
    divided by P(x)), for callers in which the pair enters only through that product
    (``log_scaled_product``, the posterior, the empirical RPM); α = −inf drops a state no
    data reach.

    Concrete: (enc, −log P(z)), so that no ratio is formed (P(z) may underflow). Traced,
    where every L is a finite float64: (L, 0) with L from ``_bayes_ratio``, whose gradient
    in enc is formed in one piece; autograd's chain through enc and through −log P(z) added
    G/P(z) and −P(x|z) G/P(z), which cancel only to eps·G/P(z) where P(x|z) ≈ 1 (an
    encoder entry of 1e-100 that alone makes P(z) gave a slope of 1e84 where it is 0)."""
    alpha = _latent(getval(p_x), getval(enc))[2]
    if not (isbox(p_x) or isbox(enc)):
        return enc, alpha
    ratio = _bayes_ratio(p_x, enc)
    if not np.all(np.isfinite(getval(ratio))):
        return enc, _latent(p_x, enc)[2]
    return ratio, np.where(alpha > -np.inf, 0.0, -np.inf)


def _bayes_ratio_value(p_x, enc):
    """L(x, z) = enc(x, z) / P(z) (n, k), 0 where P(z) = 0 (inf, or NaN for enc = 0, where
    1/P(z) is beyond float64: the caller checks)."""
    with np.errstate(invalid="ignore"):
        return enc * _inverse_marginal(p_x, enc)[None, :]


def _inverse_marginal(p_x, enc):
    """1/P(z) (k,), 0 where P(z) = 0: a division where P(z) is a normal float64 (an ulp or
    two; e^{−log P(z)} would carry the rounding of log P(z), |log P(z)|·eps relative),
    e^{−log P(z)} from the exact log otherwise (inf where 1/P(z) is beyond float64)."""
    p_z = array_module(p_x, enc).matmul(p_x, enc)
    alpha = _latent(p_x, enc)[2]
    reach = np.asarray(getval(alpha)) > -np.inf
    normal = np.asarray(getval(p_z)) >= TINY
    with np.errstate(over="ignore"):
        scaled = anp.exp(anp.where(reach & ~normal, alpha, 0.0)) * reach
    return anp.where(normal, 1.0 / anp.where(normal, p_z, 1.0), scaled)


def _others_sum(a):
    """Σ_{x'' ≠ x} a(x'', z) for every (x, z) of an (n, k) array, from exclusive running
    sums down and up the rows: the own term is never added and taken back (no cancellation
    when it is most of the column)."""
    zero = anp.zeros((1, anp.shape(a)[1]))
    down = anp.concatenate([zero, anp.cumsum(a, axis=0)[:-1]], axis=0)
    up = anp.concatenate([anp.cumsum(a[::-1], axis=0)[::-1][1:], zero], axis=0)
    return down + up


@primitive
def _bayes_ratio(p_x, enc):
    """L(x, z) = enc(x, z) / P(z), P(z) = Σ_x P(x) enc(x, z) (Eq. 10–11), (n, k); 0 on
    states no data reach. Its slopes (``_bayes_ratio_vjp``) are formed without
    cancellation."""
    return _bayes_ratio_value(p_x, enc)


def _bayes_ratio_vjp(argnum, ans, args, kwargs):
    """Slopes of L = enc / P(z) for a cotangent g (n, k):
    in enc(x, z): [g(x, z) − P(x) Σ_x'' g L](x'', z) / P(z)
      = [g(x, z) Σ_{x''≠x} P(x'') L(x'', z) − P(x) Σ_{x''≠x} g L(x'', z)] / P(z),
    the x'' = x terms (1 − P(x|z) written as the other states' P(x''|z)) left out exactly;
    in P(x): −Σ_z L(x, z) Σ_x'' g L(x'', z). Written in autograd.numpy (from L and
    −log P(z) recomputed from the arguments), so it can be differentiated again."""
    p_x, enc = args
    if argnum == 0:
        return lambda g: -anp.sum(ans * anp.sum(g * ans, axis=0)[None, :], axis=1)

    def vjp(g):
        inner = g * _others_sum(p_x[:, None] * ans) - p_x[:, None] * _others_sum(g * ans)
        return inner * _inverse_marginal(p_x, enc)[None, :]
    return vjp


defvjp_argnum(_bayes_ratio, _bayes_ratio_vjp)


def _scaled_decoder(p_x, enc):
    """(A, α) with A ⊙ e^α the Bayes decoder P(x|z) = P(x) P(z|x) / P(z) (Eq. 10), for
    the likelihood sum of ``rpm_log_likelihood`` with P(x) folded in (α = −inf drops a state
    no data reach). Concrete: (enc, −log P(z)), the caller adding log P(x) itself. Traced,
    where every P(x|z) is a float64 number: (P(x|z), 0) from ``_bayes_decoder``, whose
    gradient in P(x) is formed in one piece; through log P(x) and through −log P(z)
    autograd added 1/P(x) and −P(z|x)/P(z), which cancel where x alone makes P(z) (0.0
    where the slope is 0.25 at P(x) = 1e-20). None for the traced fallback."""
    if not (isbox(p_x) or isbox(enc)):
        return None
    alpha = _latent(getval(p_x), getval(enc))[2]
    decoder = _bayes_decoder(p_x, enc)
    if not np.all(np.isfinite(getval(decoder))):
        return None
    return decoder, np.where(alpha > -np.inf, 0.0, -np.inf)


def _bayes_decoder_value(p_x, enc):
    """P(x|z) = P(x) enc(x, z) / P(z) (n, k), 0 where P(z) = 0 (inf or NaN where 1/P(z) is
    beyond float64: the caller checks)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return p_x[:, None] * _bayes_ratio_value(p_x, enc)


@primitive
def _bayes_decoder(p_x, enc):
    """P(x|z) = P(x) enc(x, z) / P(z) (n, k); slopes in ``_bayes_decoder_vjp``."""
    return _bayes_decoder_value(p_x, enc)


def _bayes_decoder_vjp(argnum, ans, args, kwargs):
    """Slopes of D = P(x|z) for a cotangent g, with h(x, z) = g(x, z) Σ_{x''≠x} D(x'', z)
    − Σ_{x''≠x} g D(x'', z) (= g − Σ_x'' g D, the own term left out exactly):
    in P(x): Σ_z L(x, z) h(x, z); in enc(x, z): P(x) h(x, z) / P(z) (L = enc / P(z)).
    Written in autograd.numpy, so it can be differentiated again."""
    p_x, enc = args
    inverse = _inverse_marginal(p_x, enc)[None, :]

    def centred(g):
        return g * _others_sum(ans) - _others_sum(g * ans)
    if argnum == 0:
        return lambda g: anp.sum(enc * inverse * centred(g), axis=1)
    return lambda g: p_x[:, None] * inverse * centred(g)


defvjp_argnum(_bayes_decoder, _bayes_decoder_vjp)


def _joint(p_xx, enc, enc_prime):
    """encᵀ · p_xx · enc_prime, (k, k')."""
    xp = array_module(p_xx, enc, enc_prime)
    return xp.matmul(xp.matmul(xp.transpose(enc), p_xx), enc_prime)


@validate_params(**_P_XX)
def data_marginals(p_xx):
    """P(x) and P(x'): the marginals of a data pmf (Eq. 4).

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.

    Returns
    -------
    p_x : ndarray, shape (n,)
        P(x) = Σ_x' P(x, x').
    p_x_prime : ndarray, shape (n',)
        P(x') = Σ_x P(x, x').

    Raises
    ------
    TypeError
        If ``p_xx`` is not an array of real numbers.
    ValueError
        If ``p_xx`` is not a finite, non-negative, non-empty 2-D table summing to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact import data_marginals
    >>> data_marginals(np.array([[0.4, 0.1], [0.2, 0.3]]))
    (array([0.5, 0.5]), array([0.6, 0.4]))
    """
    return _marginals(p_xx)


@validate_params(**_DATA)
def latent_marginals(p_xx, enc, enc_prime):
    """P(z) = Σ_x P(x) P(z | x) and P(z') = Σ_x' P(x') P(z' | x') (Eq. 11).

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.

    Returns
    -------
    p_z : ndarray, shape (k,)
        The recognition marginal P(z).
    p_z_prime : ndarray, shape (k',)
        The recognition marginal P(z').

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import latent_marginals
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> latent_marginals(p_xx, enc, enc)
    (array([0.55, 0.45]), array([0.55, 0.45]))
    """
    p_x, p_x_prime = _marginals(p_xx)
    return anp.matmul(p_x, enc), anp.matmul(p_x_prime, enc_prime)


@validate_params(**_DATA)
def recognition_joint(p_xx, enc, enc_prime):
    """The recognition joint P(z, z') = encᵀ · p_xx · enc_prime (Eq. 3–4).

    P(z, z') = Σ_{x,x'} P(x, x') P(z | x) P(z' | x'): the data pmf pushed through
    both encoders.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.

    Returns
    -------
    ndarray, shape (k, k')
        The pmf P(z, z').

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import recognition_joint
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> recognition_joint(p_xx, enc, enc)
    array([[0.376, 0.174],
           [0.174, 0.276]])
    """
    return _joint(p_xx, enc, enc_prime)


@validate_params(**_DATA)
def optimal_prior(p_xx, enc, enc_prime):
    """The prior that maximises L: the recognition joint P(z, z') itself (Eq. 19–20, E4).

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.

    Returns
    -------
    ndarray, shape (k, k')
        The optimal prior P_θ*(z, z') = P(z, z'): the values of
        :func:`recognition_joint`, except where an entry is positive but below the
        float64 range (under 2^-1074, so the joint rounds it to 0): there it is the
        smallest subnormal, 5e-324. A prior of 0 would deny the joint mass it has and
        make the KL of Eq. 17 infinite (:func:`elbo_decomposition` reasons in exact
        arithmetic); 5e-324 changes that KL by less than float64 can show.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows.

    Examples
    --------
    With the optimal prior the KL term of Eq. 17 vanishes:

    >>> import numpy as np
    >>> from rpmref import elbo_decomposition, optimal_prior
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> elbo_decomposition(p_xx, enc, enc, optimal_prior(p_xx, enc, enc)).kl
    0.0
    """
    p_zz = _joint(p_xx, enc, enc_prime)
    underflowed = _underflowed(p_xx, enc, enc_prime, p_zz)
    if underflowed is None:
        return p_zz
    return anp.where(underflowed, SMALLEST_SUBNORMAL, p_zz)


def _underflowed(p_xx, enc, enc_prime, p_zz):
    """Mask (k, k') of the joint's entries that are positive in exact arithmetic but rounded
    to 0 (products below 2^-1074), or None if there are none."""
    p_zz_v = _value(p_zz)
    if p_zz_v.min() > 0:
        return None
    support = np.matmul(np.matmul((_value(enc) > 0).astype(float).T,
                                  (_value(p_xx) > 0).astype(float)),
                        (_value(enc_prime) > 0).astype(float)) > 0
    mask = support & (p_zz_v == 0)
    return mask if mask.any() else None


def _log_likelihood_sum(enc, alpha, prior, beta, enc_prime):
    """log Σ_{z,z'} P(z|x) P(z'|x') P_θ(z,z') / (P(z) P(z')) for every (x, x'), (n, n')."""
    return log_scaled_product(enc, alpha, prior, beta, enc_prime)


@validate_params(**_MODEL)
def rpm_log_likelihood(p_xx, enc, enc_prime, prior):
    """log P_θ(x, x') of the recognition parameterised model (Eq. 9–10).

    P_θ(x, x') = P(x) P(x') Σ_{z,z'} P_θ(z,z') P(z|x) P(z'|x') / (P(z) P(z'))
    (docs/theory.md, 'The model'). Exact also where the products underflow float64
    (a log-space fallback, see :func:`rpmref.exact.numerics.log_scaled_product`).

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.

    Returns
    -------
    ndarray, shape (n, n')
        log P_θ(x, x') in nats; −inf where P(x) P(x') = 0 or where the prior puts
        no mass on the latent states the pair can reach.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows. Also if
        ``prior`` is not a pmf of shape (k, k').

    Examples
    --------
    The likelihood sums to the prior mass on reachable latent states (N1), here 1:

    >>> import numpy as np
    >>> from rpmref import optimal_prior, rpm_log_likelihood
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> log_lik = rpm_log_likelihood(p_xx, enc, enc, optimal_prior(p_xx, enc, enc))
    >>> log_lik.round(6)
    array([[-1.249158, -1.545273],
           [-1.545273, -1.249158]])
    >>> round(float(np.exp(log_lik).sum()), 12)
    1.0
    """
    p_x, p_x_prime = _marginals(p_xx)
    left, right = _scaled_decoder(p_x, enc), _scaled_decoder(p_x_prime, enc_prime)
    if left is not None and right is not None:
        return log_scaled_product(*left, prior, *right[::-1])
    enc, alpha = _scaled_encoder(p_x, enc)
    enc_prime, beta = _scaled_encoder(p_x_prime, enc_prime)
    return log_scaled_product(enc, alpha, prior, beta, enc_prime,
                              row_offset=safe_log(p_x), col_offset=safe_log(p_x_prime))


def _tensor_budget():
    return MAX_TENSOR_ELEMENTS


@validate_params(**_MODEL, posterior=Optional(Conditional(
    dims=("n", "n'", "k", "k'"), ndim=4, event_axes=2, max_elements=_tensor_budget,
    allow_zero_slices=True)))
def elbo(p_xx, enc, enc_prime, prior, posterior=None):
    """ELBO(x, x') for every data pair (Eq. 12), in nats.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.
    posterior : array_like, shape (n, n', k, k'), optional
        Q(z, z' | x, x'), each (x, x') slice a pmf (at most
        ``rpmref.exact.discrete.MAX_TENSOR_ELEMENTS`` entries), or all zero for a pair
        the model gives no mass (P_θ(x, x') = 0, where
        :func:`rpm_posterior` leaves its slice zero; the ELBO is −inf there). With it,
        Eq. 12 is evaluated term by term:
        E_Q[log P_θ(z,z') + log P(x|z) + log P(x'|z') − log Q], with the Bayes
        likelihoods of Eq. 10 taken as log P(z|x) + log P(x) − log P(z). ``None``
        (default) means the recognition posterior Q = P(z|x) P(z'|x') of Eq. 14, for
        which Eq. 15 is evaluated instead:
        Σ_{z,z'} P(z|x) P(z'|x') log[P_θ(z,z') / (P(z)P(z'))] + log P(x) + log P(x').

    Returns
    -------
    ndarray, shape (n, n')
        ELBO(x, x'); −inf where P(x) P(x') = 0 or Q puts mass where the model has none.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows. Also if
        ``prior`` is not a pmf of shape (k, k'). Also if ``posterior`` is not
        4-D of shape (n, n', k, k'), a slice is not normalised over its last two
        axes (or is all zero where P_θ(x, x') > 0), or it has more than
        ``rpmref.exact.discrete.MAX_TENSOR_ELEMENTS`` entries.

    Examples
    --------
    Eq. 12 with the recognition posterior equals Eq. 15 (E1):

    >>> import numpy as np
    >>> from rpmref import elbo, optimal_prior
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> prior = optimal_prior(p_xx, enc, enc)
    >>> eq15 = elbo(p_xx, enc, enc, prior)
    >>> eq15.round(6)
    array([[-1.27044 , -1.583113],
           [-1.583113, -1.292165]])
    >>> q = enc[:, None, :, None] * enc[None, :, None, :]
    >>> bool(np.allclose(elbo(p_xx, enc, enc, prior, posterior=q), eq15, rtol=0, atol=1e-14))
    True
    """
    p_x, p_x_prime = _marginals(p_xx)
    _, log_p_z, alpha, reach = _latent(p_x, enc)
    _, log_p_z_prime, beta, reach_prime = _latent(p_x_prime, enc_prime)
    log_p_x, log_p_x_prime = safe_log(p_x), safe_log(p_x_prime)
    if posterior is not None:
        value = _elbo_with_posterior(posterior, enc, enc_prime, prior, log_p_x, log_p_x_prime,
                                     alpha, beta)
        empty = _value(posterior).sum(axis=(2, 3)) == 0
        if empty.any():
            _check_empty_slices_have_no_model_mass(empty, enc, alpha, prior, beta, enc_prime,
                                                   log_p_x, log_p_x_prime)
            value = anp.where(empty, -np.inf, value)
        return value
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


def _check_empty_slices_have_no_model_mass(empty, enc, alpha, prior, beta, enc_prime,
                                           log_p_x, log_p_x_prime):
    """ValueError if an all-zero posterior slice (n, n') sits where P_θ(x, x') > 0."""
    no_mass = (~np.isfinite(_value(_log_likelihood_sum(enc, alpha, prior, beta, enc_prime)))
               | ~np.isfinite(_value(log_p_x))[:, None] | ~np.isfinite(_value(log_p_x_prime))[None, :])
    bad = np.argwhere(empty & ~no_mass)
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"posterior must be normalised over its last 2 axes; posterior[{i}, {j}] sums to "
            f"0.0, which only a pair the model gives no mass may have (P_θ(x, x') = 0, where "
            f"rpm_posterior leaves the slice zero); here P_θ(x, x') > 0")


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
    """The model posterior P_θ(z, z' | x, x') (E8).

    P_θ(z, z' | x, x') ∝ P_θ(z, z') P(z|x) P(z'|x') / (P(z) P(z')); the Bayes
    likelihoods' factors P(x)/P(z) etc. are folded in (see Eq. 10). Each entry is
    formed in log space, so entries down to the smallest float64 are exact.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.

    Returns
    -------
    ndarray, shape (n, n', k, k')
        Each (x, x') slice a pmf over (z, z'). Pairs with P_θ(x, x') = 0 have no
        posterior; their slices are all zero.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows. Also if
        ``prior`` is not a pmf of shape (k, k'). Also if n·n'·k·k' exceeds
        ``rpmref.exact.discrete.MAX_TENSOR_ELEMENTS``.

    Examples
    --------
    With one-hot encoders the posterior is the point mass at the encoded states:

    >>> import numpy as np
    >>> from rpmref import rpm_posterior
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> post = rpm_posterior(p_xx, np.eye(2), np.eye(2), p_xx)
    >>> post.shape
    (2, 2, 2, 2)
    >>> post[0, 1]
    array([[0., 1.],
           [0., 0.]])
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
    enc, alpha = _scaled_encoder(p_x, enc)
    enc_prime, beta = _scaled_encoder(p_x_prime, enc_prime)
    has_data = (_value(p_x) > 0)[:, None] & (_value(p_x_prime) > 0)[None, :]    # (n, n')
    return _normalised_posterior(alpha, beta, enc, enc_prime, prior, has_data)


def _posterior_log_scale(alpha, beta, enc, enc_prime, prior, has_data):
    """(log scale (n, n', k, k'), mask of the slices with a posterior): the posterior is
    enc · enc' · prior · e^{log scale}, the log scale being α(z) + β(z') − log Σ (the slice's
    normaliser). P_θ(x, x') = P(x) P(x') e^{log Σ}: no posterior where any of them is 0."""
    log_sum = _log_likelihood_sum(enc, alpha, prior, beta, enc_prime)            # (n, n')
    has_posterior = (np.isfinite(_value(log_sum)) & has_data)[:, :, None, None]
    with np.errstate(invalid="ignore"):
        log_scale = (alpha[None, None, :, None] + beta[None, None, None, :]
                     - anp.where(has_posterior[:, :, 0, 0], log_sum, 0.0)[:, :, None, None])
    return anp.where(has_posterior, log_scale, -np.inf), has_posterior


@primitive
def _normalised_posterior(alpha, beta, enc, enc_prime, prior, has_data):
    """Each (x, x') slice of enc(x, z) enc'(x', z') prior(z, z') e^{α(z) + β(z')}, divided
    by its sum (zero slices where ``has_data`` is False or the sum is 0), (n, n', k, k').

    Its backward pass is the normalisation's own: with h = g − Σ_{z,z'} g·post per slice,
    ∂/∂θ = Σ h · post · ∂log(numerator)/∂θ, post/enc formed as enc' prior e^{log scale}
    (no division). Autograd's chain through the normaliser instead added post/enc and
    −post/enc, which cancel only to eps/enc: at an encoder entry of 1e-100 carrying a slice
    the gradient came out 1e84 where it is 0.13. The backward pass is written in
    ``autograd.numpy``, so it can be differentiated again (Hessians)."""
    log_scale, _ = _posterior_log_scale(alpha, beta, enc, enc_prime, prior, has_data)
    return prod_exp(log_scale, enc[:, None, :, None], enc_prime[None, :, None, :],
                    prior[None, None, :, :])


def _normalised_posterior_vjp(argnum, ans, args, kwargs):
    alpha, beta, enc, enc_prime, prior, has_data = args
    log_scale, has_posterior = _posterior_log_scale(alpha, beta, enc, enc_prime, prior, has_data)
    enc4, enc_prime4, prior4 = (enc[:, None, :, None], enc_prime[None, :, None, :],
                                prior[None, None, :, :])

    def weighted(g, slope):
        """h · slope, h = g centred per slice on the posterior as computed (renormalised:
        a point mass that came out 1 + 1e-13 must still centre g to exactly 0), 0 off the
        posterior's slices; 0 · inf = 0 (a latent state no data reaches, as in prod_exp)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (anp.sum(g * ans, axis=(2, 3), keepdims=True)
                    / anp.sum(ans, axis=(2, 3), keepdims=True))
            h = anp.where(has_posterior, g - mean, 0.0)
            return anp.where(_value(h) == 0, 0.0, h * slope)
    axes, slope = {0: ((0, 1, 3), None), 1: ((0, 1, 2), None),
                   2: ((1, 3), (enc_prime4, prior4)), 3: ((0, 2), (enc4, prior4)),
                   4: ((0, 1), (enc4, enc_prime4))}[argnum]
    # ∂/∂α and ∂/∂β: Σ h · post; ∂/∂enc: Σ h · enc' prior e^{log scale} (= post/enc), ...
    return lambda g: anp.sum(weighted(g, ans if slope is None else prod_exp(log_scale, *slope)),
                             axis=axes)


defvjp_argnum(_normalised_posterior, _normalised_posterior_vjp)


def _data_constant(p_xx):
    p_x, p_x_prime = _marginals(p_xx)
    return sum_xlogy(p_x, p_x) + sum_xlogy(p_x_prime, p_x_prime)


@validate_params(**_P_XX)
def data_constant(p_xx):
    """C = −H(X) − H(X') (Eq. 16): the part of L constant in every parameter.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.

    Returns
    -------
    float
        C in nats.

    Raises
    ------
    TypeError
        If ``p_xx`` is not an array of real numbers.
    ValueError
        If ``p_xx`` is not a finite, non-negative, non-empty 2-D table summing to 1.

    Examples
    --------
    Uniform marginals over two states each: C = −2 log 2.

    >>> import numpy as np
    >>> from rpmref import data_constant
    >>> c = data_constant(np.array([[0.4, 0.1], [0.1, 0.4]]))
    >>> round(c, 12), round(-2 * float(np.log(2)), 12)
    (-1.38629436112, -1.38629436112)
    """
    return scalar(_data_constant(p_xx))


def _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior):
    """True if the recognition joint is positive (in exact arithmetic) where the prior is 0
    although its float64 value rounded to 0 there (products below 2^-1074)."""
    prior_v = _value(prior)
    if prior_v.min() > 0:
        return False
    underflowed = _underflowed(p_xx, enc, enc_prime, p_zz)
    return underflowed is not None and bool((underflowed & (prior_v == 0)).any())


def _expected_elbo(p_zz, prior, hidden, constant, marginals):
    """Σ P(z,z') log P_θ + H(Z) + H(Z') + C (Eq. 16 rearranged); marginals = (P(z), P(z'))."""
    cross = -np.inf if hidden else sum_xlogy(p_zz, prior)
    p_z, p_z_prime = marginals
    return cross - sum_xlogy(p_z, p_z) - sum_xlogy(p_z_prime, p_z_prime) + constant


@validate_params(**_MODEL)
def expected_elbo(p_xx, enc, enc_prime, prior):
    """L = E_{P(x,x')}[ELBO(x, x')] with the recognition posterior (Eq. 16).

    Computed from the latent tables alone:
    L = Σ P(z,z') log P_θ(z,z') + H(Z) + H(Z') − H(X) − H(X'),
    which is Σ P(z,z') log[P_θ / (P(z)P(z'))] + C rearranged.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.

    Returns
    -------
    float
        L in nats; −inf when the prior misses part of the recognition joint's support.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows. Also if
        ``prior`` is not a pmf of shape (k, k').

    Examples
    --------
    L is the P(x, x')-average of the per-pair ELBO of Eq. 15 (E2):

    >>> import numpy as np
    >>> from rpmref import elbo, expected_elbo, optimal_prior
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> prior = optimal_prior(p_xx, enc, enc)
    >>> round(expected_elbo(p_xx, enc, enc, prior), 10)
    -1.3416646117
    >>> round(float(np.sum(p_xx * elbo(p_xx, enc, enc, prior))), 10)
    -1.3416646117
    """
    p_zz = _joint(p_xx, enc, enc_prime)
    hidden = _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior)
    return scalar(_expected_elbo(p_zz, prior, hidden, _data_constant(p_xx), _marginals(p_zz)))


@validate_params(**_MODEL)
def elbo_decomposition(p_xx, enc, enc_prime, prior):
    """L split as I(Z; Z') − KL(P(z,z') ‖ P_θ(z,z')) + C (Eq. 17–18, E3).

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf P(x, x'): finite, non-negative, summing to 1.
    enc : array_like, shape (n, k)
        The encoder P(z | x); row x is a pmf over the k latent states.
    enc_prime : array_like, shape (n', k')
        The encoder P(z' | x'); row x' is a pmf over the k' latent states.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.

    Returns
    -------
    ElboDecomposition
        ``(elbo, mutual_information, kl, constant)``, all floats in nats; ``elbo``
        is computed as in :func:`expected_elbo`, not as the sum of the others.

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers (bool, complex, object or
        string dtypes, masked arrays, ``None``).
    ValueError
        If ``p_xx`` is not a finite, non-negative 2-D table summing to 1 (tolerance
        max(1e-9, m·eps) for m entries), or a row of ``enc`` / ``enc_prime`` is not a
        pmf, or ``enc`` does not have n rows / ``enc_prime`` n' rows. Also if
        ``prior`` is not a pmf of shape (k, k').

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref import elbo_decomposition
    >>> p_xx = np.array([[0.4, 0.1], [0.1, 0.4]])
    >>> enc = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> d = elbo_decomposition(p_xx, enc, enc, np.full((2, 2), 0.25))
    >>> round(d.mutual_information, 6), round(d.kl, 6), round(d.constant, 6)
    (0.04463, 0.054646, -1.386294)
    >>> round(d.elbo - (d.mutual_information - d.kl + d.constant), 12)
    0.0
    """
    p_zz = _joint(p_xx, enc, enc_prime)
    hidden = _hidden_mass_on_zeros(p_xx, enc, enc_prime, p_zz, prior)
    constant = _data_constant(p_xx)
    marginals = _marginals(p_zz)
    return ElboDecomposition(
        elbo=scalar(_expected_elbo(p_zz, prior, hidden, constant, marginals)),
        mutual_information=nonnegative_scalar(mutual_information_of(p_zz, marginals)),
        kl=float("inf") if hidden else nonnegative_scalar(kl_divergence_of(p_zz, prior)),
        constant=scalar(constant))


@validate_params(enc_rows=Conditional(dims=("N", "k")),
                 enc_prime_rows=Conditional(dims=("N", "k'")), prior=Pmf(dims=("k", "k'")))
def empirical_rpm_pmf(enc_rows, enc_prime_rows, prior):
    """The RPM over index pairs (n, m) with empirical data marginals (Eq. 28–34, A1).

    With P(z) = (1/N) Σ_n P(z | x_n) (Eq. 29), returns the (N, N) table
    P_θ(n, m) = (1/N²) Σ_{z,z'} P_θ(z,z') P(z|x_n) P(z'|x'_m) / (P(z) P(z')),
    as L · P_θ · L'ᵀ with the Bayes likelihoods L(n, z) = P(z|x_n) / (N P(z)) ≤ 1
    formed in log space (so P(z) = 1e-200 is no obstacle).

    Parameters
    ----------
    enc_rows : array_like, shape (N, k)
        Row n = P(z | x_n), a pmf.
    enc_prime_rows : array_like, shape (N, k')
        Row m = P(z' | x'_m), a pmf.
    prior : array_like, shape (k, k')
        The prior P_θ(z, z'), a pmf.

    Returns
    -------
    ndarray, shape (N, N)
        P_θ(n, m) ≥ 0. It sums to the prior mass on the latent pairs the encoders
        reach (P(z) P(z') > 0; N1): a pmf when the prior lives on those, less when
        it puts mass on a state no row reaches (that mass has no data to go to).

    Raises
    ------
    TypeError
        If an argument is not an array of real numbers.
    ValueError
        If a row of ``enc_rows`` / ``enc_prime_rows`` is not a pmf, their row counts
        differ, or ``prior`` is not a pmf of shape (k, k'). Also if N² exceeds
        ``rpmref.exact.discrete.MAX_TENSOR_ELEMENTS``.

    Examples
    --------
    One-hot encoders and a diagonal prior: all mass on the matching pairs.

    >>> import numpy as np
    >>> from rpmref import empirical_rpm_pmf
    >>> empirical_rpm_pmf(np.eye(3), np.eye(3), np.eye(3) / 3)
    array([[0.33333333, 0.        , 0.        ],
           [0.        , 0.33333333, 0.        ],
           [0.        , 0.        , 0.33333333]])
    """
    n = np.shape(getval(enc_rows))[0]
    if n * n > MAX_TENSOR_ELEMENTS:
        raise ValueError(
            f"empirical_rpm_pmf: enc_rows and enc_prime_rows have N = {n} rows, which make an "
            f"(N, N) table of {n * n:.3g} elements, more than MAX_TENSOR_ELEMENTS = "
            f"{MAX_TENSOR_ELEMENTS} (rpmref.exact.discrete)")
    uniform = np.full(n, 1.0 / n)
    enc_rows, alpha = _scaled_encoder(uniform, enc_rows)
    enc_prime_rows, beta = _scaled_encoder(uniform, enc_prime_rows)
    left = prod_exp(alpha[None, :] - np.log(n), enc_rows)                # (N, k), P(n | z)
    right = prod_exp(beta[None, :] - np.log(n), enc_prime_rows)          # (N, k'), P(m | z')
    return anp.matmul(anp.matmul(left, prior), anp.transpose(right))


__all__ = [
    "ElboDecomposition", "recognition_joint", "optimal_prior", "rpm_log_likelihood", "elbo",
    "rpm_posterior", "expected_elbo", "elbo_decomposition", "empirical_rpm_pmf",
    "data_constant", "latent_marginals", "data_marginals", "MAX_TENSOR_ELEMENTS",
]
