"""The recognition parameterised model with Gaussian latents, in closed form.

Jointly Gaussian data (x, x') and linear-Gaussian recognition models
z = A x + ε, z' = A' x' + ε' give a Gaussian recognition joint P(z, z') (Eq. 3,
11). Every critic used here is *quadratic*,

    f(z, z') = zᵀ W z' − ½ z'ᵀ Q z' + bᵀ z'   (+ any function g(z)),

which covers the bilinear critic (Eq. 8: Q = 0, b = 0), the Gaussian RBF critic
(Eq. 27: W = Q = I/ℓ², g(z) = −‖z‖²/(2ℓ²)) and the optimal critic
log p(z'|z) − log p(z').
A function of z alone changes neither the energy prior (Eq. 21–22), nor
I_∞ (Eq. 7, 25), nor I_N (Eq. 6): the normaliser over z' cancels it. So the
energy prior is Gaussian, and E3–E6 are all Gaussian integrals.

A joint over (z, z') is a ``GaussianPair(mean, cov, k)``: ``mean`` (k + k',),
``cov`` (k + k', k + k'), z the first k coordinates. All results are in nats.
"""
from typing import NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval, isbox

from rpmref.exact.validation import (
    as_real_array, check_int, check_positive_definite, check_positive_int, check_real,
    check_shape, check_symmetric)


class GaussianPair(NamedTuple):
    """A jointly Gaussian pair (z, z'): z is the first ``k`` coordinates.

    Every function of ``rpmref.gaussian`` checks a GaussianPair it is given: ``mean``
    finite, ``cov`` finite, symmetric (relative tolerance 1e-10) and positive definite
    (relative to its largest eigenvalue), ``k`` an integer with 0 < k < len(mean).

    Attributes
    ----------
    mean : ndarray, shape (k + k',)
        E[(z, z')].
    cov : ndarray, shape (k + k', k + k')
        Cov[(z, z')]; the blocks are C = Cov(z), S = Cov(z, z'), C' = Cov(z').
    k : int
        The dimension of z.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import GaussianPair, mutual_information
    >>> joint = GaussianPair(np.zeros(2), np.array([[1.0, 0.6], [0.6, 1.0]]), 1)
    >>> round(float(mutual_information(joint)), 6)      # −½ log(1 − 0.36)
    0.223144
    """
    mean: np.ndarray  # (k + k',)
    cov: np.ndarray   # (k + k', k + k')
    k: int


class QuadraticCritic(NamedTuple):
    """A quadratic critic f(z, z') = zᵀ W z' − ½ z'ᵀ Q z' + bᵀ z', up to a function of z alone.

    A function of z alone changes neither the energy prior (Eq. 21–22) nor I_∞ (Eq. 7)
    nor I_N (Eq. 6), so this family covers the bilinear critic (Eq. 8), the Gaussian
    RBF critic (Eq. 27) and the optimal critic. Build one with ``bilinear_critic``,
    ``rbf_critic`` or ``optimal_critic``, or directly.

    Attributes
    ----------
    W : ndarray, shape (k, k')
    Q : ndarray, shape (k', k'), symmetric (any sign, as long as C'⁻¹ + Q is positive definite)
    b : ndarray, shape (k',)

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import QuadraticCritic, gaussian_pair, infonce_limit
    >>> critic = QuadraticCritic(np.array([[0.5]]), np.array([[0.1]]), np.array([0.0]))
    >>> # unit variances, correlation 0.6: E f = 0.5·0.6 − 0.1/2, E log Z = −½ log 1.1 + 0.5²/(2·1.1)
    >>> by_hand = (0.3 - 0.05) - (-0.5 * np.log(1.1) + 0.25 / 2.2)
    >>> bool(np.isclose(infonce_limit(gaussian_pair(1.0, 1.0, 0.6), critic), by_hand))
    True
    """
    W: np.ndarray  # (k, k')
    Q: np.ndarray  # (k', k'), symmetric
    b: np.ndarray  # (k',)


# ---------------------------------------------------------------- validation
# Every argument goes through rpmref.exact.validation: real dtypes only (complex, object,
# bool and strings are TypeErrors), finite, the right shape, symmetric and definite with
# *relative* tolerances. Checks run on concrete values; autograd's traced arrays pass on
# untouched, so every closed form can be differentiated.

def _own(a):
    """A concrete array as a copy of its own: validation hands back the caller's float64
    array itself, and a result holding it (``bilinear_critic``'s W, the means of ``blocks``)
    would change when the caller later writes to that array. Traced values pass as they are."""
    return a if isbox(a) else np.array(a, dtype=float)


def _matrix(name, a, shape=None):
    """``a`` as a finite real 2-D array (of ``shape`` if given; a copy, see ``_own``); a
    scalar is a 1 × 1 matrix."""
    a = _own(as_real_array(a, name))
    if anp.ndim(a) == 0:
        a = anp.reshape(a, (1, 1))
    if anp.ndim(a) != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {anp.shape(a)}")
    if shape is not None:
        check_shape(a, name, tuple(shape), "see the docstring")
    return a


def _vector(name, v, length):
    """``v`` as a finite real vector of ``length`` (zeros if None; a scalar if length is 1;
    a copy, see ``_own``)."""
    if v is None:
        return np.zeros(length)
    v = _own(as_real_array(v, name))
    if anp.ndim(v) > 1 or anp.size(v) != length:
        raise ValueError(f"{name} must be a vector of length {length}; got shape {anp.shape(v)}")
    return anp.reshape(v, (length,))


def _covariance(name, a, dim=None, definite=True):
    """A symmetric (dim, dim) matrix (relative tolerance), positive definite if ``definite``
    is True, semi-definite if False, of any sign if None; returned symmetrised."""
    a = _matrix(name, a)
    shape = anp.shape(a)
    if shape[0] != shape[1] or (dim is not None and shape[0] != dim):
        want = f"({dim}, {dim})" if dim is not None else "square"
        raise ValueError(f"{name} must be {want}; got shape {shape}")
    a = check_symmetric(a, name)
    if definite is not None:
        a = check_positive_definite(a, name, semi=not definite, _symmetry_checked=True)
    return _sym(a)


def _check_pair(joint, name="joint"):
    """``joint`` as a GaussianPair of arrays: a finite mean (n,), a symmetric positive definite
    covariance (n, n) and an integer 0 < k < n."""
    if not isinstance(joint, GaussianPair):
        raise TypeError(f"{name} must be a GaussianPair; got {type(joint).__name__}")
    k = check_int(joint.k, f"{name}.k")
    mean = _own(as_real_array(joint.mean, f"{name}.mean"))
    cov = as_real_array(joint.cov, f"{name}.cov")
    n = anp.size(mean)
    if anp.shape(mean) != (n,) or anp.shape(cov) != (n, n) or not 0 < k < n:
        raise ValueError(f"{name}: mean must be (n,), cov (n, n) and 0 < k < n; got mean "
                         f"{anp.shape(mean)}, cov {anp.shape(cov)}, k={k}")
    return GaussianPair(mean, _covariance(f"{name}.cov", cov, n), k)


# ---------------------------------------------------------------- linear algebra

def _logdet(a):
    """log det of a symmetric positive definite matrix (via Cholesky of its power-of-two
    equilibration, so that subnormal and huge scales lose nothing)."""
    scaled, half = _equilibrate(a)
    return (2.0 * anp.sum(anp.log(anp.diag(anp.linalg.cholesky(scaled))))
            + (2.0 * np.log(2.0)) * float(np.sum(half)))


def _solve(a, b):
    """a⁻¹ b for symmetric positive definite ``a``."""
    return anp.linalg.solve(a, b)


def _sym(a):
    """(a + aᵀ)/2 without overflow at |a| near the largest double, leaving entries that are
    already symmetric untouched: ½x + ½x rounds a subnormal x (½·5e-324 is 0). The
    gradient is that of ½a + ½aᵀ; only the value of such entries is corrected."""
    raw = np.asarray(getval(a))
    half = 0.5 * a + 0.5 * anp.transpose(a)
    raw_half = 0.5 * raw + 0.5 * raw.T
    with np.errstate(invalid="ignore"):                  # inf − inf where a overflowed
        fix = np.where(raw == raw.T, raw - raw_half, 0.0)   # exact: both are subnormal
    fix = np.where(np.isfinite(fix), fix, 0.0)
    return half + fix if np.any(fix) else half


def _half_exponents(a):
    """Integers h with 2^(−2hᵢ) aᵢᵢ in [0.5, 2) for a positive diagonal (concrete values)."""
    _, exponent = np.frexp(np.diag(np.asarray(getval(a))))   # aᵢᵢ = m·2^e, m in [0.5, 1)
    return exponent // 2


def _scale_pow2(x, exponent):
    """x · 2^exponent (integer array ``exponent`` broadcast against x), exact wherever the
    result is a normal double: four factors of the same sign, each a representable power of
    two, so every intermediate lies between x and the result (|exponent| up to ~4000)."""
    exponent = np.asarray(exponent, dtype=np.int64)
    if not np.any(exponent):
        return x
    quarter = np.sign(exponent) * (np.abs(exponent) // 4)
    for part in (quarter, quarter, quarter, exponent - 3 * quarter):
        x = x * np.ldexp(1.0, part)
    return x


def _equilibrate(a):
    """(F a F, h) with F = diag(2^(−h)): the power-of-two scaling of a symmetric positive
    definite ``a`` whose diagonal lies in [0.5, 2). Exact (no rounding) wherever F a F is
    normal, so Cholesky factors, solves and eigenvalues of subnormal or huge covariances are
    those of a well-scaled matrix; log det a = log det(F a F) + 2 log 2 Σ hᵢ."""
    half = _half_exponents(a)
    return _scale_pow2(a, -(half[:, None] + half[None, :])), half


def _block(a, b, c, d):
    """[[a, b], [c, d]] (``numpy.block``, which autograd does not trace)."""
    return anp.concatenate([anp.concatenate([a, b], axis=1), anp.concatenate([c, d], axis=1)],
                           axis=0)


def _eigenvalues(a):
    """Eigenvalues of the symmetric ``a`` (ascending); differentiable, also when repeated
    (autograd's eigh adds the eigenvector term only when the eigenvectors are used)."""
    return anp.linalg.eigh(a)[0]


@primitive
def _log1p_det_rbf(a, ell):
    """log det(I + a/ℓ²) = Σ log1p(λᵢ/ℓ²) for symmetric positive definite ``a`` (eigenvalues
    λᵢ): accurate when a/ℓ² is tiny (no log of a determinant near 1); where λᵢ/ℓ² would
    overflow, log1p(λᵢ/ℓ²) = log λᵢ − 2 log ℓ to within the rounding of the result."""
    lam = np.linalg.eigvalsh(a)
    with np.errstate(over="ignore"):
        ratio = lam / ell / ell
    huge = ~np.isfinite(ratio)
    terms = np.where(huge, np.log(lam) - 2 * np.log(ell), np.log1p(np.where(huge, 0.0, ratio)))
    return float(np.sum(terms))


def _log1p_det_rbf_vjp(argnum):
    # A spectral function: d/da = V diag(1/(λ + ℓ²)) Vᵀ (well defined for repeated
    # eigenvalues); d/dℓ = −(2/ℓ) Σ λ/(λ + ℓ²). First order only (plain NumPy inside).
    def vjp_maker(ans, a, ell):
        lam, vec = np.linalg.eigh(a)
        with np.errstate(over="ignore"):                  # ℓ²/λ → inf: a share of 0
            share = 1.0 / (1.0 + ell / lam * ell)        # λ/(λ + ℓ²), no overflow
        if argnum == 0:
            return lambda g: g * (vec * (share / lam)) @ vec.T
        return lambda g: g * (-2.0 / ell) * np.sum(share)
    return vjp_maker


defvjp(_log1p_det_rbf, _log1p_det_rbf_vjp(0), _log1p_det_rbf_vjp(1))


def blocks(joint):
    """The blocks (m, m', C, C', S) of a checked GaussianPair.

    Parameters
    ----------
    joint : GaussianPair

    Returns
    -------
    tuple of ndarray
        m (k,), m' (k',), C = Cov(z) (k, k), C' = Cov(z') (k', k'), S = Cov(z, z') (k, k').

    Raises
    ------
    TypeError, ValueError
        As for every function taking a GaussianPair (see ``GaussianPair``).

    Examples
    --------
    >>> from rpmref.gaussian import blocks, gaussian_pair
    >>> m, mp, c, cp, s = blocks(gaussian_pair(1.0, 2.0, 0.5))
    >>> c, cp, s
    (array([[1.]]), array([[2.]]), array([[0.5]]))
    """
    joint = _check_pair(joint)
    k, m, c = joint.k, joint.mean, joint.cov
    return m[:k], m[k:], c[:k, :k], c[k:, k:], c[:k, k:]


# ---------------------------------------------------------------- constructors

def gaussian_pair(cov_z, cov_z_prime, cross_cov, mean_z=None, mean_z_prime=None):
    """The joint of z ~ N(m, C) and z' ~ N(m', C') with cross-covariance Cov(z, z') = S.

    Parameters
    ----------
    cov_z : array_like, shape (k, k), or a scalar for k = 1
        C, symmetric positive definite.
    cov_z_prime : array_like, shape (k', k'), or a scalar
        C', symmetric positive definite.
    cross_cov : array_like, shape (k, k'), or a scalar
        S.
    mean_z, mean_z_prime : array_like, shape (k,) and (k',), optional
        m and m' (default zeros).

    Returns
    -------
    GaussianPair
        mean (k + k',), cov [[C, S], [Sᵀ, C']], k.

    Raises
    ------
    TypeError
        A non-real argument (complex, string, object, bool).
    ValueError
        Non-finite entries, wrong shapes, an asymmetric C or C', or a joint covariance
        that is not positive definite (I(Z; Z') would be infinite).

    Examples
    --------
    >>> from rpmref.gaussian import gaussian_pair
    >>> joint = gaussian_pair(1.0, 2.0, 0.5)
    >>> joint.cov
    array([[1. , 0.5],
           [0.5, 2. ]])
    >>> gaussian_pair(1.0, 1.0, 1.0)
    Traceback (most recent call last):
        ...
    ValueError: joint covariance of (z, z') must be positive definite; its smallest eigenvalue (scaled to unit diagonal) is 0.0 (largest |eigenvalue| 2.0, tolerance d·eps·that = 8.88e-16)
    """
    cov_z = _covariance("cov_z", cov_z)
    cov_zp = _covariance("cov_z_prime", cov_z_prime)
    k, kp = anp.shape(cov_z)[0], anp.shape(cov_zp)[0]
    cross = _matrix("cross_cov", cross_cov, (k, kp))
    cov = _covariance("joint covariance of (z, z')",
                      _block(cov_z, cross, anp.transpose(cross), cov_zp))
    mean = anp.concatenate([_vector("mean_z", mean_z, k),
                            _vector("mean_z_prime", mean_z_prime, kp)])
    return GaussianPair(mean, cov, k)


def recognition_joint(cov_xx, enc, enc_prime, noise_cov=None, noise_cov_prime=None,
                      mean_xx=None):
    """The Gaussian recognition joint P(z, z') (Eq. 3, 11) of linear-Gaussian encoders.

    (x, x') ~ N(mean_xx, cov_xx), z = A x + ε with ε ~ N(0, noise_cov), and
    z' = A' x' + ε' with ε' ~ N(0, noise_cov_prime). Noise covariances default to 0
    (deterministic encoders, Appendix C); they may be positive semi-definite as long as
    the joint covariance of (z, z') is positive definite. Differentiable by autograd
    with respect to every argument.

    Parameters
    ----------
    cov_xx : array_like, shape (d + d', d + d')
        The data covariance, symmetric positive semi-definite; x is the first d
        coordinates, d = enc.shape[1].
    enc : array_like, shape (k, d)
        A.
    enc_prime : array_like, shape (k', d')
        A'.
    noise_cov : array_like, shape (k, k), optional
    noise_cov_prime : array_like, shape (k', k'), optional
    mean_xx : array_like, shape (d + d',), optional
        Default zeros.

    Returns
    -------
    GaussianPair
        mean = (A, A') mean_xx, cov = blockdiag(A, A') cov_xx blockdiag(A, A')ᵀ + noise.

    Raises
    ------
    TypeError
        A non-real argument.
    ValueError
        Non-finite entries, inconsistent shapes, a covariance that is not symmetric or
        not (semi-)definite, a singular joint covariance of (z, z'), or one that
        overflows or underflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import recognition_joint, mutual_information
    >>> cov_xx = np.array([[1.0, 0.8], [0.8, 1.0]])          # x, x' with correlation 0.8
    >>> joint = recognition_joint(cov_xx, [[1.0]], [[1.0]], noise_cov=[[0.25]], noise_cov_prime=[[0.25]])
    >>> joint.cov
    array([[1.25, 0.8 ],
           [0.8 , 1.25]])
    >>> rho = 0.8 / 1.25                                       # the correlation of z and z'
    >>> bool(np.isclose(mutual_information(joint), -0.5 * np.log(1 - rho**2)))
    True
    """
    enc = _matrix("enc", enc)
    enc_prime = _matrix("enc_prime", enc_prime)
    (k, d), (kp, dp) = anp.shape(enc), anp.shape(enc_prime)
    cov_xx = _covariance("cov_xx", cov_xx, definite=False)
    if anp.shape(cov_xx)[0] != d + dp:
        raise ValueError(f"cov_xx must be ({d + dp}, {d + dp}) = dims of x ({d}, from "
                         f"enc.shape[1]) plus x' ({dp}, from enc_prime.shape[1]); got "
                         f"{anp.shape(cov_xx)}")
    mean_xx = _vector("mean_xx", mean_xx, d + dp)
    noise = np.zeros((k, k)) if noise_cov is None else noise_cov
    noise = _covariance("noise_cov", noise, k, definite=False)
    noise_p = np.zeros((kp, kp)) if noise_cov_prime is None else noise_cov_prime
    noise_p = _covariance("noise_cov_prime", noise_p, kp, definite=False)
    big = _block(enc, np.zeros((k, dp)), np.zeros((kp, d)), enc_prime)  # (k+k', d+d')
    with np.errstate(over="ignore", invalid="ignore"):
        cov = _sym(big @ cov_xx @ anp.transpose(big)
                   + _block(noise, np.zeros((k, kp)), np.zeros((kp, k)), noise_p))
    if not np.all(np.isfinite(getval(cov))):
        raise ValueError("the covariance of (z, z') = A Σ Aᵀ + noise overflows float64 (enc, "
                         "enc_prime and cov_xx entries up to "
                         f"{max(float(np.max(np.abs(getval(a)))) for a in (enc, enc_prime, cov_xx)):.3g}"
                         "); rescale the encoders or the data")
    try:
        cov = _covariance("recognition joint covariance of (z, z')", cov)
    except ValueError as err:
        diag = np.diag(np.asarray(getval(cov)))
        if np.any(diag < np.finfo(np.float64).tiny):   # rounded into or below the subnormals
            raise ValueError(
                f"{err}: the covariance of (z, z') = A Σ Aᵀ + noise underflows float64 "
                f"(diagonal entries down to {float(np.min(diag)):.3g}); rescale the encoders "
                "or the data") from None
        raise ValueError(f"{err}: I(Z;Z') would be infinite; add encoder noise or "
                         "use full-rank encoders") from None
    return GaussianPair(big @ mean_xx, cov, k)


def bilinear_critic(W):
    """The bilinear critic f(z, z') = zᵀ W z' (Eq. 8) as a QuadraticCritic.

    Parameters
    ----------
    W : array_like, shape (k, k'), or a scalar for k = k' = 1

    Returns
    -------
    QuadraticCritic
        (W, Q = 0, b = 0).

    Raises
    ------
    TypeError, ValueError
        W not real, not finite or not 2-D.

    Examples
    --------
    >>> from rpmref.gaussian import bilinear_critic
    >>> bilinear_critic(0.5)
    QuadraticCritic(W=array([[0.5]]), Q=array([[0.]]), b=array([0.]))
    """
    W = _matrix("W", W)
    kp = anp.shape(W)[1]
    return QuadraticCritic(W, np.zeros((kp, kp)), np.zeros(kp))


def _checked_scalar(value, number):
    """``value`` for computing with: the float64 ``number`` that ``check_real`` made of it (a
    longdouble, float32 or NumPy integer ℓ would otherwise carry its dtype into the results,
    and a longdouble one into ``numpy.linalg``, which refuses it), or ``value`` itself when
    autograd traces it."""
    return value if isbox(value) else number


def _min_lengthscale():
    with np.errstate(over="ignore", under="ignore"):    # 1 / max is subnormal
        ell = np.sqrt(1.0 / np.finfo(np.float64).max)
        while not np.isfinite(1.0 / ell / ell):
            ell = np.nextafter(ell, np.inf)
    return float(ell)


#: The smallest RBF lengthscale whose 1/ℓ² is a finite float64 (≈ 7.46e-155).
MIN_LENGTHSCALE = _min_lengthscale()


def rbf_critic(lengthscale, k):
    """The Gaussian RBF critic f(z, z') = −‖z − z'‖² / (2ℓ²) (Eq. 27) as a QuadraticCritic.

    The −‖z‖²/(2ℓ²) term depends on z alone and is dropped, so W = Q = I/ℓ², b = 0.
    Differentiable by autograd with respect to ℓ.

    Parameters
    ----------
    lengthscale : float
        ℓ, at least ``MIN_LENGTHSCALE`` (≈ 7.46e-155) so that 1/ℓ² is finite
        (``rbf_infonce_limit`` works in log ℓ and takes any ℓ > 0).
    k : int
        The dimension of z and z'.

    Returns
    -------
    QuadraticCritic

    Raises
    ------
    TypeError
        ``k`` not an integer (bools and floats are refused), ``lengthscale`` not a number.
    ValueError
        ``lengthscale`` not in [MIN_LENGTHSCALE, inf), or ``k`` < 1.

    Examples
    --------
    >>> from rpmref.gaussian import rbf_critic
    >>> rbf_critic(0.5, 2).W
    array([[4., 0.],
           [0., 4.]])
    """
    ell = check_real(getval(lengthscale), "lengthscale", minimum=0, inclusive=(False, True))
    if ell < MIN_LENGTHSCALE:
        raise ValueError(f"lengthscale must be at least {MIN_LENGTHSCALE:.3g} for the critic "
                         f"matrices I/lengthscale² to be finite; got {ell!r} (use "
                         "rbf_infonce_limit, which works in log lengthscale, for smaller ones)")
    k = check_positive_int(k, "k (the dimension of z and z')")
    lengthscale = _checked_scalar(lengthscale, ell)
    inv_sq = 1.0 / lengthscale / lengthscale
    eye = np.eye(k)
    return QuadraticCritic(eye * inv_sq, eye * inv_sq, np.zeros(k))


def optimal_critic(joint):
    """The optimal critic log p(z'|z) − log p(z') (up to a function of z), which makes the
    energy prior equal the recognition joint (E4, E6) and I_∞ equal the MI.

    With z'|z ~ N(m' + K(z − m), Σ), K = Sᵀ C⁻¹ and Σ = C' − K S, it is
    W = Kᵀ Σ⁻¹, Q = Σ⁻¹ − C'⁻¹, b = Σ⁻¹(m' − K m) − C'⁻¹ m'. (log p(z'|z) alone is
    *not* optimal: the −log p(z') it lacks depends on z', so the softmax over negatives
    in Eq. 6–7 does not cancel it.)

    Parameters
    ----------
    joint : GaussianPair

    Returns
    -------
    QuadraticCritic

    Raises
    ------
    TypeError, ValueError
        As for every function taking a GaussianPair; ValueError also when W or Q, which
        scale as 1/covariance, lie beyond the float64 range (covariances below ~1e-308).

    Examples
    --------
    >>> from rpmref.gaussian import gaussian_pair, infonce_limit, mutual_information, optimal_critic
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> bool(abs(infonce_limit(joint, optimal_critic(joint)) - mutual_information(joint)) < 1e-15)
    True
    """
    joint = _check_pair(joint)
    k = joint.k
    cov, h = _equilibrate(joint.cov)     # in z̃ = F z, z̃' = F'z' (see _scaled_problem)
    gain, cond_cov = _conditional(cov[:k, :k], cov[k:, k:], cov[:k, k:])
    prec = _sym(anp.linalg.inv(cond_cov))
    hz, hp = h[:k], h[k:]
    with np.errstate(over="ignore", invalid="ignore"):
        W = _scale_pow2(anp.transpose(gain) @ prec, -(hz[:, None] + hp[None, :]))
        Q = _scale_pow2(prec - _sym(anp.linalg.inv(cov[k:, k:])), -(hp[:, None] + hp[None, :]))
        b = Q @ joint.mean[k:] - anp.transpose(W) @ joint.mean[:k]   # Σ⁻¹(m' − Km) − C'⁻¹m'
    if not all(np.all(np.isfinite(getval(x))) for x in (W, Q, b)):
        raise ValueError("the optimal critic is beyond the float64 range: W and Q scale as "
                         "1/covariance (covariances down to "
                         f"{float(np.min(np.diag(getval(joint.cov)))):.3g} here); rescale z and z'")
    return QuadraticCritic(W, Q, b)


def _conditional(c, cp, s):
    """(K, Σ) of z'|z ~ N(m' + K(z − m), Σ): K = Sᵀ C⁻¹ (k', k), Σ = C' − Sᵀ C⁻¹ S (k', k')."""
    c_inv_s = _solve(c, s)
    return anp.transpose(c_inv_s), _sym(cp - anp.transpose(s) @ c_inv_s)


def _check_critic(critic, joint):
    """(W, Q, b) of a QuadraticCritic for ``joint`` (a checked GaussianPair), checked."""
    if not isinstance(critic, QuadraticCritic):
        raise TypeError("critic must be a QuadraticCritic (use bilinear_critic, rbf_critic "
                        f"or optimal_critic); got {type(critic).__name__}")
    k, kp = joint.k, anp.size(joint.mean) - joint.k
    W = _matrix("critic.W", critic.W, (k, kp))
    Q = _covariance("critic.Q", critic.Q, kp, definite=None)
    b = _vector("critic.b", critic.b, kp)
    return W, Q, b


# ---------------------------------------------------------------- measures

def entropy(joint_or_cov):
    """The differential entropy ½ log det(2πe Σ) of a Gaussian, in nats.

    Parameters
    ----------
    joint_or_cov : GaussianPair or array_like, shape (d, d), or a scalar variance

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        A covariance that is not real, finite, symmetric and positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import entropy
    >>> bool(np.isclose(entropy(1.0), 0.5 * np.log(2 * np.pi * np.e)))
    True
    """
    if isinstance(joint_or_cov, GaussianPair):
        cov = _check_pair(joint_or_cov).cov
    else:
        cov = _covariance("cov", joint_or_cov)
    return 0.5 * (anp.shape(cov)[0] * np.log(2 * np.pi * np.e) + _logdet(cov))


def canonical_correlations(joint):
    """The canonical correlations of (z, z'): the singular values of C^{-1/2} S C'^{-1/2}.

    Parameters
    ----------
    joint : GaussianPair

    Returns
    -------
    ndarray, shape (min(k, k'),)
        In descending order, each in [0, 1).

    Raises
    ------
    TypeError, ValueError
        As for every function taking a GaussianPair.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import canonical_correlations, gaussian_pair
    >>> canonical_correlations(gaussian_pair(np.eye(2), np.eye(2), np.diag([0.3, -0.6])))
    array([0.6, 0.3])
    """
    joint = _check_pair(joint)
    # invariant under z → Fz, z' → F'z': equilibrate by powers of two (exact), so that
    # subnormal or huge variances meet Cholesky at unit scale
    cov, k = _equilibrate(joint.cov)[0], joint.k
    c, cp, s = cov[:k, :k], cov[k:, k:], cov[:k, k:]
    lc, lcp = anp.linalg.cholesky(c), anp.linalg.cholesky(cp)
    whitened = anp.linalg.solve(lc, anp.transpose(anp.linalg.solve(lcp, anp.transpose(s))))
    return anp.linalg.svd(whitened, full_matrices=False, compute_uv=False)


def mutual_information(joint):
    """The mutual information I(Z; Z') of a Gaussian pair, in nats.

    I = ½ log(det C det C' / det Σ) (docs/theory.md, "Gaussian latents"), computed as
    −½ Σᵢ log(1 − σᵢ²) over the canonical correlations σᵢ: no cancellation of log
    determinants, so tiny and large MI are both accurate. Invariant under invertible
    linear maps of z and of z'. Differentiable by autograd.

    Parameters
    ----------
    joint : GaussianPair

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        As for every function taking a GaussianPair.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import gaussian_pair, mutual_information
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> bool(np.isclose(mutual_information(joint), -0.5 * np.log(1 - 0.6**2)))
    True
    """
    sigma = anp.clip(canonical_correlations(joint), 0.0, 1.0)
    # log(1 − σ²): log1p(−σ²) for σ < ½ (relative precision as σ → 0), log1p(−σ) +
    # log1p(σ) above, where forming σ² would round away ~1e-16 / (1 − σ²) of 1 − σ² (an
    # error of 2e-9 nats at 1 − σ = 7e-9) and the two terms no longer cancel
    small = sigma < 0.5
    log_one_minus = anp.where(small, anp.log1p(-sigma**2),
                              anp.log1p(-anp.where(small, 0.5, sigma)) + anp.log1p(sigma))
    return 0.0 - 0.5 * anp.sum(log_one_minus)     # 0.0 − …: +0.0, not −0.0, at σ = 0


def kl_divergence(p, q):
    """KL(p ‖ q) between two Gaussians of the same dimension, in nats.

    ½ [tr(Σq⁻¹Σp) − d − log det(Σq⁻¹Σp) + δᵀΣq⁻¹δ] = ½ Σᵢ (λᵢ − 1 − log λᵢ) + ½ δᵀΣq⁻¹δ
    over the eigenvalues λᵢ of the whitened Σp. Each term is evaluated without
    cancellation: by its Taylor series Σₙ₌₂ (−t)ⁿ/n (t = λ − 1) for |t| ≤ ¼, as
    t − log1p(t) (t exact) for λ in [½, 2], and as λ − 1 − log λ elsewhere; the covariances
    and δ are scaled by powers of two (exactly), so λ and δᵀΣq⁻¹δ far outside the float64
    range give a finite KL where it is representable (λ = 1e-400: ½(920.3 − 1) nats) and
    +inf, without a warning, where it overflows.

    Parameters
    ----------
    p, q : GaussianPair or (mean (d,), cov (d, d)) pairs

    Returns
    -------
    float
        ≥ 0, and 0 only for p = q.

    Raises
    ------
    TypeError
        p or q neither a GaussianPair nor a (mean, cov) pair, or not real.
    ValueError
        Different dimensions, non-finite entries, a covariance that is not symmetric
        positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import kl_divergence
    >>> p, q = (np.zeros(1), np.eye(1)), (np.ones(1), np.eye(1))
    >>> float(kl_divergence(p, q))          # ½ δ² for unit variances
    0.5
    """
    (mp, cp), (mq, cq) = _same_dimension(p, q)
    low, white, power, half_maha = _whitened(mp, cp, mq, cq)
    mu = _eigenvalues(_sym(white))                      # λ = 4^power · μ
    resolved = np.asarray(getval(mu)) > 0    # else underflowed or lost to rounding (below)
    mu = anp.where(resolved, mu, 1.0)
    with np.errstate(over="ignore", under="ignore"):
        lam = _scale_pow2(mu, 2 * power)
        half_lam = _scale_pow2(0.5 * mu, 2 * power)
    raw = np.asarray(getval(lam))
    t = lam - 1.0
    near = np.abs(raw - 1.0) <= 0.25
    middle = ~near & (raw >= 0.5) & (raw <= 2.0)
    normal = np.isfinite(raw) & (raw >= np.finfo(np.float64).tiny)
    # log λ: directly where λ is a normal double, else log μ + power·log 4 (no over/underflow)
    log_lam = anp.where(normal, anp.log(anp.where(normal, lam, 1.0)),
                        anp.log(mu) + (2.0 * power) * np.log(2.0))
    terms = anp.where(near, 0.5 * _t_minus_log1p_series(anp.where(near, t, 0.0)),
                      anp.where(middle, 0.5 * (t - anp.log1p(anp.where(middle, t, 0.0))),
                                half_lam - 0.5 - 0.5 * log_lam))
    total = anp.sum(anp.where(resolved, terms, 0.0)) + half_maha
    # An eigenvalue μ ≤ 0 is one below eps·μmax: its term ½(λ − 1 − log λ) is unknown but
    # at most ½ log(1/λ) ≤ 728 (λ ≥ 5e-324/1.8e308). Left out, it is below half an ulp of a
    # total above 2^63; below that the KL is not resolved in float64.
    if not np.all(resolved) and not getval(total) > 2.0 ** 63:
        raise ValueError("p covariance is singular relative to q covariance at float64 "
                         "precision (an eigenvalue of Σq⁻¹Σp is below eps times the largest), "
                         "so KL(p ‖ q) is not resolved")
    return total


#: The last n of the series t − log1p(t) = Σₙ₌₂ (−t)ⁿ/n, used for |t| ≤ ¼: the first term
#: left out, |t|³¹/31, is below 3e-19 (< eps/700) of the sum, which is ≥ t²/3 there.
_SERIES_TERMS = 30


def _t_minus_log1p_series(t):
    """t − log1p(t) = t²(½ − t(⅓ − t(¼ − …))) for |t| ≤ ¼, by Horner (no cancellation:
    each bracket stays within [0.42, 0.59] of its first term)."""
    inner = 1.0 / _SERIES_TERMS
    for n in range(_SERIES_TERMS - 1, 1, -1):
        inner = 1.0 / n - t * inner
    return t * t * inner


def _whitened(mp, cp, mq, cq):
    """The pieces of KL(p ‖ q) and the cross-entropy at any scale of the covariances.

    Returns (L, W, power, half_maha): Σq = F⁻¹ L Lᵀ F⁻¹ with F = diag(2^−h) a power-of-two
    equilibration (L the Cholesky factor of F Σq F), W = 4^−power · L⁻¹ F Σp F L⁻ᵀ (the
    whitened Σp, rescaled by a power of four so that its largest diagonal entry is O(1):
    λ = 4^power · eig(W)), and half_maha = ½ δᵀΣq⁻¹δ (δ = μq − μp), +inf where it overflows.
    Every scaling is by a power of two, exact for normal doubles.
    """
    aq, h = _equilibrate(cq)
    low = anp.linalg.cholesky(aq)
    power = int(np.max(_half_exponents(cp) - h))        # 4^power ≈ the largest Σp,ii/Σq,ii
    shift = h + power
    rescaled = _scale_pow2(cp, -(shift[:, None] + shift[None, :]))   # 4^−power · F Σp F
    white = anp.linalg.solve(low, anp.transpose(anp.linalg.solve(low, rescaled)))
    # δ, scaled by F and by 2^−top so that its largest entry is O(1): no overflow of μq − μp
    # (1e308 − (−1e308)) nor of F δ (δ ≫ √Σq), and no halving of subnormal means
    with np.errstate(over="ignore"):
        finite = np.all(np.isfinite(np.asarray(getval(mq)) - np.asarray(getval(mp))))
    delta, extra = (mq - mp, 0) if finite else (0.5 * mq - 0.5 * mp, 1)
    raw = np.asarray(getval(delta))
    exponent = np.frexp(raw)[1] + extra - h
    top = int(np.max(exponent[raw != 0])) if np.any(raw != 0) else 0
    solved = anp.linalg.solve(low, _scale_pow2(delta, extra - h - top))
    with np.errstate(over="ignore"):
        half_maha = _scale_pow2(0.5 * anp.sum(solved * solved), 2 * top)
    return low, white, power, half_maha


def _mean_cov(name, p):
    """(mean, cov) of a GaussianPair or a (mean, cov) pair, checked."""
    if isinstance(p, GaussianPair):
        p = _check_pair(p, name)
        return p.mean, p.cov
    if not isinstance(p, (tuple, list)) or len(p) != 2:
        raise TypeError(f"{name} must be a GaussianPair or a (mean, cov) pair; got "
                        f"{type(p).__name__}")
    mean, cov = p
    cov = _covariance(f"{name} covariance", cov)
    return _vector(f"{name} mean", mean, anp.shape(cov)[0]), cov


def _same_dimension(p, q):
    """((mean, cov) of p, (mean, cov) of q), checked, of the same dimension."""
    (mp, cp), (mq, cq) = _mean_cov("p", p), _mean_cov("q", q)
    if anp.shape(cp) != anp.shape(cq):
        raise ValueError(f"p and q must have the same dimension; got {anp.size(mp)} and "
                         f"{anp.size(mq)}")
    return (mp, cp), (mq, cq)


def cross_entropy(p, q):
    """The cross-entropy −E_p[log q] of two Gaussians of the same dimension, in nats.

    ½ [d log 2π + log det Σq + tr(Σq⁻¹ Σp) + (μq − μp)ᵀ Σq⁻¹ (μq − μp)].

    Parameters
    ----------
    p, q : GaussianPair or (mean (d,), cov (d, d)) pairs

    Returns
    -------
    float

    Raises
    ------
    TypeError
        p or q neither a GaussianPair nor a (mean, cov) pair, or not real.
    ValueError
        Different dimensions, non-finite entries, a covariance that is not symmetric
        positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import cross_entropy, entropy
    >>> p = (np.zeros(2), np.eye(2))
    >>> bool(np.isclose(cross_entropy(p, p), entropy(np.eye(2))))
    True
    """
    (mp, cp), (mq, cq) = _same_dimension(p, q)
    d = anp.size(mp)
    low, white, power, half_maha = _whitened(mp, cp, mq, cq)
    with np.errstate(over="ignore"):                    # ½ tr(Σq⁻¹Σp) = ½ 4^power tr W
        half_trace = _scale_pow2(0.5 * anp.trace(white), 2 * power)
    return 0.5 * (d * np.log(2 * np.pi) + _logdet(cq)) + half_trace + half_maha


# ---------------------------------------------------------------- energy prior, InfoNCE

def energy_prior(joint, critic):
    """The energy prior P_θ(z, z') = p(z) p(z') e^{f(z, z')} / Z(z) (Eq. 21–22).

    For a quadratic critic it is Gaussian: z ~ N(m, C) and
    z' | z ~ N(P⁻¹(C'⁻¹m' + b + Wᵀz), P⁻¹) with P = C'⁻¹ + Q.

    Parameters
    ----------
    joint : GaussianPair
        The recognition joint P(z, z').
    critic : QuadraticCritic
        Of shapes W (k, k'), Q (k', k'), b (k',).

    Returns
    -------
    GaussianPair

    Raises
    ------
    TypeError
        ``critic`` not a QuadraticCritic.
    ValueError
        Wrong shapes, non-finite entries, an asymmetric Q, C'⁻¹ + Q not positive
        definite (then Z(z) is infinite), or a critic so large against the joint's scale
        that the prior's moments overflow float64 or its covariance, rounded to float64, is
        singular (z' | z narrower than float64 resolves against the spread of z').

    Notes
    -----
    The covariance is formed in float64, so its entries carry a relative rounding of a
    few ε. A strong critic (a large W or Q against the joint's scale, such as an RBF
    lengthscale far below the spread of z) makes the prior nearly singular, and what is
    computed from it, such as KL(P ‖ P_θ), inherits that rounding amplified by the
    condition number: for unit variances and correlation 0.5 the KL to the RBF energy
    prior is off by 4e-9 relative at lengthscale 1e-4 and by 8e-4 at 1e-7 (the
    Cov(z') = 1 + O(ℓ²) entry keeps only the leading digits of its ℓ² part).
    :func:`infonce_limit` gives I_∞ = I − KL (E6) without forming the prior.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import energy_prior, gaussian_pair, kl_divergence, optimal_critic
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> prior = energy_prior(joint, optimal_critic(joint))      # E4: the prior is P itself
    >>> bool(kl_divergence(joint, prior) < 1e-15)
    True
    """
    joint = _check_pair(joint)
    (c, cp, _), W, Q, r, h = _scaled_problem(joint, _check_critic(critic, joint))
    k = joint.k
    post = _sym(anp.linalg.inv(_energy_precision(cp, Q, h[k:])))
    gain = post @ anp.transpose(W)                   # (k', k): d mean(z'|z) / dz
    cross = c @ anp.transpose(gain)
    with np.errstate(over="ignore", invalid="ignore"):
        cov = _scale_pow2(_block(c, cross, anp.transpose(cross), _sym(gain @ cross + post)),
                          h[:, None] + h[None, :])
        # E z' = P⁻¹v(m) = m' − δ₀, δ₀ = P⁻¹(Qm' − b − Wᵀm): exactly m' for a zero critic
        mean = anp.concatenate([joint.mean[:k],
                                joint.mean[k:] - _scale_pow2(post @ r, h[k:])])
    if not (np.all(np.isfinite(getval(cov))) and np.all(np.isfinite(getval(mean)))):
        raise ValueError("the energy prior's covariance or mean overflows float64 (the critic's "
                         f"W up to {float(np.max(np.abs(getval(critic.W)))):.3g} against the "
                         "joint's scale); rescale the critic")
    _require_representable(cov, critic)
    return GaussianPair(mean, cov, k)


def _require_representable(cov, critic):
    """ValueError if the energy prior's covariance (n, n), positive definite in exact
    arithmetic, is singular once rounded to float64 — the judgement every function of this
    module applies to a GaussianPair. It happens when the critic makes z' | z so much
    narrower than z' that Cov(z') = gain·C·gainᵀ + P⁻¹ loses P⁻¹ to rounding: a bilinear
    W ≳ 3e7 or an RBF lengthscale ≲ 1e-8 against unit variances."""
    try:
        check_positive_definite(getval(cov), "cov")
    except ValueError as error:
        strength = max(float(np.max(np.abs(getval(critic.W)), initial=0.0)),
                       float(np.max(np.abs(getval(critic.Q)), initial=0.0)))
        raise ValueError(
            "the energy prior is too narrow to hold in float64: the critic (entries of W or Q "
            f"up to {strength:.3g}) makes z' | z so concentrated against the spread of z' that "
            f"its covariance rounds to a singular matrix ({str(error).split('; ', 1)[1]}); "
            "infonce_limit(joint, critic) gives I_inf without it, or rescale the critic") from None


def _scaled_problem(joint, critic):
    """A checked joint and critic (W, Q, b) in the coordinates z̃ = F z, z̃' = F' z' with
    diag(F, F') = 2^−h the power-of-two equilibration of the joint covariance (``_equilibrate``).

    Returns ((C̃, C̃', S̃), W̃, Q̃, r̃, h): the covariance blocks (unit diagonal scale), the
    critic W̃ = F⁻¹WF'⁻¹, Q̃ = F'⁻¹QF'⁻¹ and r̃ = F'⁻¹r with r = Qm' − b − Wᵀm (= P δ₀, the
    only place the means enter the energy prior and I_∞), formed before the scaling so that
    a zero critic gives exactly r = 0 however far the means lie from 0. The energy prior, I_∞
    and the optimal critic are covariant under this change of coordinates, and in it C'⁻¹
    is finite even for subnormal or huge covariances. ValueError if the rescaled critic
    leaves the float64 range (its quadratic terms overflow)."""
    W, Q, b = critic
    k = joint.k
    m, mp = joint.mean[:k], joint.mean[k:]
    cov, h = _equilibrate(joint.cov)
    hz, hp = h[:k], h[k:]
    with np.errstate(over="ignore", invalid="ignore"):
        r, extra = Q @ mp - b - anp.transpose(W) @ m, 0
        if not np.all(np.isfinite(getval(r))):     # each term finite, their sum not: halve
            r, extra = (0.5 * Q) @ mp - 0.5 * b - (0.5 * anp.transpose(W)) @ m, 1
        scaled = (_scale_pow2(W, hz[:, None] + hp[None, :]),
                  _scale_pow2(Q, hp[:, None] + hp[None, :]), _scale_pow2(r, hp + extra))
    if not all(np.all(np.isfinite(getval(x))) for x in scaled):
        raise ValueError(
            "critic is too large for the closed form in float64: its quadratic terms overflow "
            f"(largest |W| entry {float(np.max(np.abs(getval(W)))):.3g}, |Q| "
            f"{float(np.max(np.abs(getval(Q)))):.3g}, against covariances up to "
            f"{float(np.max(np.diag(getval(joint.cov)))):.3g}); rescale the critic"
            " (for the RBF critic use rbf_infonce_limit, which works in log lengthscale)")
    return (cov[:k, :k], cov[k:, k:], cov[:k, k:]), *scaled, h


def _energy_precision(cp, Q, h=None):
    """P = C'⁻¹ + Q, checked positive definite (relative to its largest eigenvalue); ``h``
    the exponents of ``_scaled_problem`` when cp and Q are its rescaled C' and Q."""
    prec = _sym(anp.linalg.inv(cp) + Q)
    try:
        return check_positive_definite(prec, "C'^-1 + Q", _symmetry_checked=True)
    except ValueError as err:
        where = ("" if h is None or not np.any(h) else
                 "; the eigenvalues are those with z' rescaled by powers of two to unit variance")
        raise ValueError("critic.Q is too negative: C'^-1 + Q must be positive definite, "
                         f"otherwise the energy prior's normaliser Z(z) is infinite ({err}{where})"
                         ) from None


def infonce_limit(joint, critic):
    """The infinite-sample InfoNCE objective I_∞(f) (Eq. 7, 25) of a quadratic critic.

    I_∞(f) = E_{P(z,z')}[f] − E_{P(z)}[log E_{P(z')} e^{f(z,z')}]. The energy prior's
    conditional is p_f(z'|z) = N(P⁻¹v(z), P⁻¹) with P = C'⁻¹ + Q and
    v(z) = C'⁻¹m' + b + Wᵀz, so I_∞ = H(Z') − E_z CE(p(z'|z), p_f(z'|z)), evaluated as

        ½[log det C' + log det P + k' − tr(PΣ) − δ₀ᵀPδ₀ − tr(DᵀPDC)],

    with p(z'|z) = N(m' + K(z − m), Σ), D = K − P⁻¹Wᵀ and δ₀ = m' − P⁻¹v(m). E[f] and
    E log Z, evaluated apart, each carry a term of size ~e^{2I} near the optimal critic,
    whose cancellation lost ~eps·e^{2I} nats (0.013 at I = 17 in one dimension); here
    that cancellation is done in the algebra, and the result is as accurate as
    ``mutual_information``.

    E6: I(Z; Z') − I_∞(f) = KL(P ‖ energy prior) ≥ 0. Differentiable by autograd with
    respect to the joint and the critic.

    Parameters
    ----------
    joint : GaussianPair
    critic : QuadraticCritic

    Returns
    -------
    float
        In nats.

    Raises
    ------
    TypeError
        ``critic`` not a QuadraticCritic.
    ValueError
        As for ``energy_prior``, or a critic so large that its quadratic terms overflow
        float64 (rescale it; ``rbf_infonce_limit`` takes any lengthscale).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import bilinear_critic, gaussian_pair, infonce_limit
    >>> joint = gaussian_pair(1.0, 1.0, 0.6)
    >>> float(infonce_limit(joint, bilinear_critic(0.5)))   # wρ − w²/2 for unit variances
    0.175
    """
    joint = _check_pair(joint)
    (c, cp, s), W, Q, r, h = _scaled_problem(joint, _check_critic(critic, joint))
    prec = _energy_precision(cp, Q, h[joint.k:])
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported below
        value = _infonce_limit_terms(W, r, c, cp, s, prec)
    if not np.isfinite(getval(value)):
        raise ValueError(
            "critic is too large for the closed form in float64: its quadratic terms overflow "
            f"(largest |W| entry {float(np.max(np.abs(getval(W)))):.3g}); rescale the critic"
            " (for the RBF critic use rbf_infonce_limit, which works in log lengthscale)")
    return value


def _infonce_limit_terms(W, r, c, cp, s, prec):
    # E[f] − E log Z(z) rearranged as H(Z') − E_z CE(p(z'|z), p_f(z'|z)): with
    # p(z'|z) = N(m' + K(z − m), Σ) and p_f(z'|z) = N(P⁻¹v(z), P⁻¹),
    #   I_∞ = ½[log det C' + log det P + k' − tr(PΣ) − δ₀ᵀPδ₀ − tr(DᵀPDC)],
    # D = K − P⁻¹Wᵀ, δ₀ = m' − P⁻¹v(m) = P⁻¹r with r = Qm' − b − Wᵀm (P m' − v(m), in which
    # C'⁻¹m' cancels in the algebra: m' − P⁻¹(C'⁻¹m' + …) lost eps·|m'| to rounding, which
    # δ₀ᵀPδ₀ magnified by |m'|²/C'). E[f] and E log Z each hold a term of size ~e^{2I} near
    # the optimal critic (W, Q ~ 1/(1 − ρ²)); here they cancel in algebra, not in floating
    # point, and every term left is O(I) or a KL-sized quadratic form.
    gain, cond_cov = _conditional(c, cp, s)
    d = gain - _solve(prec, anp.transpose(W))
    quad = r @ _solve(prec, r) + anp.sum(d * (prec @ d @ c))
    return 0.5 * (_logdet(cp) + _logdet(prec) + anp.shape(cp)[0] - anp.sum(prec * cond_cov)
                  - quad)


def rbf_infonce_limit(joint, lengthscale):
    """I_∞ of the RBF critic f = −‖z − z'‖²/(2ℓ²) (Eq. 27) by its own route, for any ℓ > 0.

    log Z(z) = k log ℓ − ½ log det(C' + ℓ²I) − ½ (z − m')ᵀ(C' + ℓ²I)⁻¹(z − m'), so

        I_∞(ℓ) = −E‖z − z'‖²/(2ℓ²) + ½ log det(I + C'/ℓ²) + ½ tr((C' + ℓ²I)⁻¹ B)

    with B = C + (m − m')(m − m')ᵀ, evaluated without cancellation at large ℓ and
    without overflow of ℓ² or 1/ℓ²; the parts in m − m' = d are combined into
    −½ dᵀ(C' + ℓ²I)⁻¹C'd/ℓ² (they cancel when |d| ≫ √C'), so means far apart (up to
    ±1.8e308) lose nothing. For 1-D unit variances and correlation ρ it is
    −(1−ρ)/ℓ² − log ℓ + ½ log(1+ℓ²) + 1/(2(1+ℓ²)) (docs/theory.md, "Gaussian latents").
    Differentiable by autograd with respect to ℓ and the joint (also at repeated
    eigenvalues of C').

    Parameters
    ----------
    joint : GaussianPair
        With dim z = dim z'.
    lengthscale : float
        ℓ > 0; ``inf`` gives the limit 0.

    Returns
    -------
    float
        In nats; −inf only when the true value is below −1.8e308 (ℓ ≲ 1e-154).

    Raises
    ------
    TypeError
        ``lengthscale`` not a real number.
    ValueError
        dim z ≠ dim z', ℓ ≤ 0 or NaN, or a malformed joint.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import gaussian_pair, rbf_infonce_limit
    >>> rho, ell = 0.6, 1.0
    >>> closed = -(1 - rho) / ell**2 - np.log(ell) + 0.5 * np.log1p(ell**2) + 1 / (2 * (1 + ell**2))
    >>> bool(np.isclose(rbf_infonce_limit(gaussian_pair(1.0, 1.0, rho), ell), closed))
    True
    """
    c, cp, (unit, a), spread, _ = _rbf_moments(joint)
    ell = check_real(getval(lengthscale), "lengthscale", minimum=0, inclusive=(False, True),
                     finite=False)
    lengthscale = _checked_scalar(lengthscale, ell)
    if np.isinf(ell):
        return 0.0
    # (z, z', ℓ) → 2^−t (z, z', ℓ) leaves ‖z − z'‖²/ℓ² and so I_∞ unchanged: take the
    # covariances to unit scale (exact powers of two), so that subnormal or huge ones meet
    # the solves below at scale 1 (C' + ℓ²I with subnormal entries gave NaN)
    t = int(max(np.max(_half_exponents(c)), np.max(_half_exponents(cp))))
    c, cp, spread = _scale_pow2(c, -2 * t), _scale_pow2(cp, -2 * t), _scale_pow2(spread, -2 * t)
    a = None if a is None else a - t
    with np.errstate(over="ignore", under="ignore"):
        lengthscale = _scale_pow2(lengthscale, -t)
    ell = float(getval(lengthscale))
    if np.isinf(ell):
        return 0.0          # ℓ/σ > 1.8e308: I_∞ ~ tr S/ℓ² is below the float64 range
    if ell == 0:
        return -np.inf      # ℓ/σ < 5e-324: −tr(C + C' − 2S)/(2ℓ²) is below −1.8e308
    with np.errstate(over="ignore"):
        first = -0.5 * _divided_twice(spread, lengthscale)
    if np.isinf(getval(first)):
        return -np.inf      # −tr(C + C' − 2S)/(2ℓ²) is below −1.8e308: so is the true value
    eye = np.eye(anp.size(unit))
    if ell >= 1:        # (C' + ℓ²I)⁻¹ = ℓ⁻² (C'/ℓ² + I)⁻¹: ℓ² may overflow, 1/ℓ² only underflows
        inv_u = _divided_twice(1.0, lengthscale)
        trace_term = inv_u * anp.trace(_solve(cp * inv_u + eye, c))
    else:
        trace_term = anp.trace(_solve(cp + (lengthscale * lengthscale) * eye, c))
    return (first + 0.5 * _log1p_det_rbf(cp, lengthscale) + 0.5 * trace_term
            + _rbf_mean_term(cp, unit, a, lengthscale))


@primitive
def _divided_twice(x, ell):
    """(x/ℓ)/ℓ, which never forms ℓ². Its slopes are formed likewise: autograd's rule for
    a quotient squares the divisor (−g·x/ℓ²), which overflowed (an OverflowError for a
    Python float ℓ ≳ 1.3e154) where the slope itself, −2x/ℓ³, only underflows."""
    return x / ell / ell


defvjp(_divided_twice,
       lambda ans, x, ell: lambda g: g / ell / ell,
       lambda ans, x, ell: lambda g: g * (-2.0 * ans / ell))


def _rbf_mean_term(cp, unit, a, lengthscale):
    """−½ dᵀ (C' + ℓ²I)⁻¹C' d / ℓ², d = m − m' = 2^a·``unit`` (its largest entry in [½, 1)):
    what the mean difference adds to I_∞ of the RBF critic. It is −|d|²/(2ℓ²) +
    ½ dᵀ(C' + ℓ²I)⁻¹d combined into one quadratic form: the two cancel when |d| is large
    against √C' (at |d| = 1e6, ℓ = 1e3 they lost 10 digits). With ℓ = 2^b·ℓ₀ (ℓ₀ in [½, 1))
    and C' = 4^h·Ĉ' (Ĉ' of unit scale), M = (C' + ℓ²I)⁻¹C' is 4^e·M̃ with e = min(0, h − b)
    and M̃ formed from Ĉ' and ℓ₀ alone (M ≈ C'/ℓ² can lie below the float64 range while
    dᵀMd/ℓ² does not); everything is exact powers of two until the final scaling by
    4^(a − b + e). A value below −1.8e308 is −inf (I_∞ is then below it too: the other
    terms add at most I(Z; Z'))."""
    if a is None:
        return 0.0
    b = int(np.frexp(float(getval(lengthscale)))[1])
    ell0 = _scale_pow2(lengthscale, -b)
    h = int(np.max(_half_exponents(cp)))
    unit_cp = _scale_pow2(cp, -2 * h)
    eye = np.eye(anp.size(unit))
    e = h - b
    with np.errstate(over="ignore", under="ignore"):
        if e >= 0:     # C' ≳ ℓ²: M = (Ĉ' + 4^−e ℓ₀² I)⁻¹ Ĉ' ≤ I
            shrink = _solve(unit_cp + _scale_pow2(ell0 * ell0, -2 * e) * eye, unit_cp)
            e = 0
        else:          # C' ≪ ℓ²: M = 4^e (4^e Ĉ'/ℓ₀² + I)⁻¹ Ĉ'/ℓ₀²
            scaled = unit_cp / ell0 / ell0
            shrink = _solve(_scale_pow2(scaled, 2 * e) + eye, scaled)
        return _scale_pow2(-0.5 * (unit @ shrink @ unit) / ell0 / ell0, 2 * (a - b + e))


def _rbf_moments(joint):
    """(C, C', (u, a), tr(C + C' − 2S), diag S) of a pair with dim z = dim z' (the RBF critic's
    inputs): m − m' = 2^a·u with u's largest entry in [½, 1) (a None when m = m'), so that
    means up to ±1.8e308 apart are no obstacle. E‖z − z'‖² = tr(C + C' − 2S) + |m − m'|²;
    the two are kept apart."""
    m, mp, c, cp, s = blocks(joint)
    if anp.size(m) != anp.size(mp):
        raise ValueError(f"the RBF critic needs dim z == dim z'; got {anp.size(m)} and "
                         f"{anp.size(mp)}")
    with np.errstate(over="ignore"):
        finite = np.all(np.isfinite(np.asarray(getval(m)) - np.asarray(getval(mp))))
    diff, extra = (m - mp, 0) if finite else (0.5 * m - 0.5 * mp, 1)
    raw = np.asarray(getval(diff))
    if np.any(raw):
        a = int(np.max(np.frexp(raw[raw != 0])[1]))
        unit, a = _scale_pow2(diff, -a), a + extra
    else:
        unit, a = diff, None
    # Σᵢ (Cᵢᵢ − Sᵢᵢ) + (C'ᵢᵢ − Sᵢᵢ): no overflow of tr C + tr C' when both are near 1e308
    s_diag = anp.diag(s)
    spread = anp.sum((anp.diag(c) - s_diag) + (anp.diag(cp) - s_diag))
    return c, cp, (unit, a), spread, s_diag


def _log1p_minus_x_over_x(x):
    """(log1p(x) − x)/x for x ≥ 0 (0 at x = 0), to a few ulps: for x ≤ 1 with
    s = x/(2 + x), log1p(x) = 2 atanh(s), so log1p(x) − x = −x²/(2 + x) + 2(s³/3 + s⁵/5 + …)
    (s ≤ ⅓: 18 terms reach 2^-60), without the cancellation of log1p(x) − x near 0;
    above 1 the two differ by more than a third of x and are subtracted directly."""
    x = np.asarray(x, dtype=float)
    small = x <= 1.0
    xs = np.where(small, x, 0.0)
    s = xs / (2.0 + xs)
    s2 = s * s
    tail = np.zeros_like(s)
    for k in range(37, 1, -2):          # Horner in s² for Σ_{k odd ≥ 3} s^k / k, highest first
        tail = (tail + 1.0 / k) * s2
    series = (-xs * xs / (2.0 + xs) + 2.0 * s * tail) / np.where(xs > 0, xs, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (np.log1p(x) - x) / x
    return np.where(small, series, direct)


def _rbf_objective(log_v, kappa, sigma, lam, second, mean_sq):
    """I_∞ of the RBF critic over κ as a function of log v, v = ℓ²/N, vectorised over log_v.

    In the units of ``optimal_rbf_lengthscale`` (u = ℓ² = N v, covariances λs·(λ̂, ĉ),
    e = Vᵀ(m − m') = √N ê, κ = λs/N, σ = tr S/λs), I_∞/κ =
    σ/v + ½ Σ (λ̂/v)·(log1p(x) − x)/x − ½ Σ ĉκλ̂/(v(κλ̂ + v)) − ½ Σ ê² λ̂/(v(κλ̂ + v)),
    x = κλ̂/v: rbf_infonce_limit's terms −tr(C + C' − 2S)/(2ℓ²) + ½ Σ log1p(λ/ℓ²) +
    ½ Σ c/(λ + ℓ²) with their 1/ℓ² parts collected exactly into tr S/ℓ² (for a weak
    correlation the parts are ~1/ρ times their sum, which was lost to rounding below
    ρ ≈ 1e-13), and the mean part as one quadratic form (no cancellation of |d|²/(2ℓ²)
    against itself); κ may underflow to 0 (means far apart against the spread)."""
    v = np.exp(np.asarray(log_v, dtype=float)[..., None])
    w = kappa * lam + v
    q = _log1p_minus_x_over_x(kappa * lam / v)
    return (sigma / v[..., 0] + 0.5 * np.sum(lam / v * q, axis=-1)
            - 0.5 * np.sum(second * kappa * lam / (v * w), axis=-1)
            - 0.5 * np.sum(mean_sq * lam / (v * w), axis=-1))


def _rbf_slope(log_v, kappa, sigma, lam, second, mean_sq):
    """d/d log v of _rbf_objective: −σ/v + ½ Σ κλ̂²/(v w) + ½ Σ ĉκλ̂ (w + v)/(v w²)
    + ½ Σ ê² λ̂ (w + v)/(v w²), w = κλ̂ + v (every term but the first ≥ 0)."""
    v = np.exp(log_v)
    w = kappa * lam + v
    return (-sigma / v + 0.5 * np.sum(kappa * lam * lam / (v * w))
            + 0.5 * np.sum((second * kappa * lam + mean_sq * lam) * ((w + v) / w) / (v * w)))


def elbo_decomposition(joint, prior):
    """E3 for a Gaussian prior: the ELBO (Eq. 16, without its constant) = I(Z; Z') − KL.

    Parameters
    ----------
    joint : GaussianPair
        The recognition joint P(z, z').
    prior : GaussianPair
        A prior P_θ(z, z') of the same shape and k (e.g. ``energy_prior(joint, critic)``).

    Returns
    -------
    dict
        ``elbo_minus_constant`` = E_P[log P_θ(z,z') / (p(z) p(z'))], computed as
        −CE(P, P_θ) + h(Z) + h(Z') (their log 2π and covariance scales cancelled before
        rounding, so the result does not depend on the scale of z and z');
        ``mutual_information`` I(Z; Z');
        ``kl`` = KL(P ‖ P_θ). All in nats.

    Raises
    ------
    TypeError, ValueError
        Malformed pairs, or a prior of another shape or k.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import elbo_decomposition, gaussian_pair
    >>> d = elbo_decomposition(gaussian_pair(1.0, 1.0, 0.6), gaussian_pair(1.0, 1.0, 0.3))
    >>> bool(np.isclose(d["elbo_minus_constant"], d["mutual_information"] - d["kl"]))
    True
    """
    joint = _check_pair(joint)
    prior = _check_pair(prior, "prior")
    if anp.shape(prior.cov) != anp.shape(joint.cov) or prior.k != joint.k:
        raise ValueError(f"prior must have the joint's shape {anp.shape(joint.cov)} and "
                         f"k={joint.k}; got {anp.shape(prior.cov)} and k={prior.k}")
    return {
        "elbo_minus_constant": _elbo_minus_constant(joint, prior),
        "mutual_information": mutual_information(joint),
        "kl": kl_divergence(joint, prior),
    }


def _elbo_minus_constant(joint, prior):
    """−CE(P, P_θ) + h(Z) + h(Z') = ½[d − tr(Σθ⁻¹Σ) − δᵀΣθ⁻¹δ + log det C + log det C'
    − log det Σθ] (δ = μθ − μ, d = k + k'): the d·log 2π terms cancelled in the algebra, and
    each log det split as that of a power-of-two equilibrated matrix plus 2 log 2 times an
    integer, the integers combined first. Formed from the entropies, the scale of the
    covariances (|log det| ≈ 1400 at 2^-1000) cancelled in floating point and left ~1e-13."""
    k = joint.k
    c, cp = joint.cov[:k, :k], joint.cov[k:, k:]
    _, white, power, half_maha = _whitened(joint.mean, joint.cov, prior.mean, prior.cov)
    with np.errstate(over="ignore"):                    # ½ tr(Σθ⁻¹Σ) = ½ 4^power tr W
        half_trace = _scale_pow2(0.5 * anp.trace(white), 2 * power)
    parts = [(_logdet(_equilibrate(a)[0]), int(np.sum(_half_exponents(a))))
             for a in (c, cp, prior.cov)]
    log_dets = parts[0][0] + parts[1][0] - parts[2][0]
    exponent = parts[0][1] + parts[1][1] - parts[2][1]
    return (0.5 * anp.size(joint.mean) - half_trace - half_maha
            + 0.5 * (log_dets + (2.0 * np.log(2.0)) * exponent))


def data_constant(cov_xx, dim_x):
    """The constant C = −h(X) − h(X') of the ELBO (Eq. 16): the data marginals' entropies.

    Parameters
    ----------
    cov_xx : array_like, shape (d + d', d + d')
        The data covariance, as in ``recognition_joint``; symmetric positive definite.
    dim_x : int
        d, the dimension of x (the first d coordinates), 1 ≤ d < d + d'.

    Returns
    -------
    float
        In nats.

    Raises
    ------
    TypeError
        ``dim_x`` not an integer (1.5 and True are refused), ``cov_xx`` not real.
    ValueError
        ``dim_x`` out of range, ``cov_xx`` not finite, symmetric and positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import data_constant
    >>> bool(np.isclose(data_constant(np.eye(2), 1), -np.log(2 * np.pi * np.e)))
    True
    """
    cov_xx = _covariance("cov_xx", cov_xx)
    size = anp.shape(cov_xx)[0]
    if size < 2:
        raise ValueError(f"cov_xx must cover x and x' (at least 2 × 2); got {anp.shape(cov_xx)}")
    d = check_int(dim_x, "dim_x", minimum=1, maximum=size - 1)
    return -entropy(cov_xx[:d, :d]) - entropy(cov_xx[d:, d:])


# ---------------------------------------------------------------- optimal critic parameters

def optimal_bilinear_critic(joint):
    """The best bilinear critic W* = argmax_W I_∞(zᵀWz') = (C + mmᵀ)⁻¹ S C'⁻¹.

    I_∞ is the concave quadratic tr(WSᵀ) − ½ tr(W C' Wᵀ (C + mmᵀ)) in W (see
    ``infonce_limit`` with Q = 0, b = 0), whose gradient S − (C + mmᵀ) W C' vanishes at W*.

    Parameters
    ----------
    joint : GaussianPair

    Returns
    -------
    QuadraticCritic
        A bilinear critic (Q = 0, b = 0).

    Raises
    ------
    TypeError, ValueError
        As for every function taking a GaussianPair; ValueError also when W*, which scales
        as 1/covariance, lies beyond the float64 range.

    Examples
    --------
    >>> from rpmref.gaussian import gaussian_pair, optimal_bilinear_critic
    >>> optimal_bilinear_critic(gaussian_pair(1.0, 1.0, 0.6)).W
    array([[0.6]])
    """
    m, _, c, cp, s = blocks(joint)
    second_moment = c + anp.outer(m, m)
    with np.errstate(over="ignore", invalid="ignore"):
        W = _solve(second_moment, anp.transpose(_solve(cp, anp.transpose(s))))
    if not np.all(np.isfinite(getval(W))):
        raise ValueError("the optimal bilinear critic is beyond the float64 range: W* scales "
                         "as 1/covariance (covariances down to "
                         f"{float(np.min(np.diag(getval(joint.cov)))):.3g} here); rescale z and z'")
    return bilinear_critic(W)


def optimal_rbf_lengthscale(joint, grid=400):
    """The best RBF lengthscale ℓ* = argmax_ℓ I_∞ for the critic of Eq. 27.

    I_∞(ℓ) → −∞ as ℓ → 0 and → 0 as ℓ → ∞. A log-spaced grid of ``grid`` values of ℓ²
    over 16 decades around the covariance scale (continued upwards, 16 decades at a time,
    while I_∞ still rises at its top) brackets the maximum, then the
    Illinois variant of regula falsi on the analytic derivative refines it. Not
    differentiable (an argmax): the joint's concrete values are used.

    Parameters
    ----------
    joint : GaussianPair
        With dim z = dim z'.
    grid : int, default 400
        Grid points, at least 3.

    Returns
    -------
    float
        ℓ*, or ``inf`` when the supremum is the ℓ → ∞ limit: tr S ≤ 0 (no positive
        correlation). Any tr S > 0 has a finite maximum, near ℓ*² ≈ 1.5/ρ for unit
        variances and a small correlation ρ. The slope is formed for weak correlation
        (its 1/ℓ² terms gathered into tr S/ℓ²); as ρ → 1 those cancel to (1 − ρ)/ℓ², so
        ℓ* (≈ √(2(1 − ρ)) there) is off by ~1e-16/(1 − ρ) relative: 1.5e-9 at
        1 − ρ = 1e-8, 5e-4 at 1e-13 (I_∞ at it then 2e-7 nats below its maximum).

    Raises
    ------
    TypeError
        ``grid`` not an integer.
    ValueError
        dim z ≠ dim z', ``grid`` < 3, a malformed joint, an ℓ* beyond the float64 range
        (means about 1.8e308 apart), or beyond the search (ℓ*² above about 1e135 times
        E‖z − z'‖²: a correlation below about 1e-135 of the variances).

    Examples
    --------
    >>> from rpmref.gaussian import gaussian_pair, optimal_rbf_lengthscale
    >>> ell = optimal_rbf_lengthscale(gaussian_pair(1.0, 1.0, 0.6))
    >>> u = ell**2     # d/du of −0.4/u − ½ log u + ½ log(1 + u) + 1/(2(1 + u)) vanishes there
    >>> bool(abs(0.4 / u**2 - 1 / (2 * u) + 1 / (2 * (1 + u)) - 1 / (2 * (1 + u) ** 2)) < 1e-12)
    True
    >>> optimal_rbf_lengthscale(gaussian_pair(1.0, 1.0, -0.6))
    inf
    """
    c, cp, (unit, a), spread, s_diag = _rbf_moments(joint)
    c, cp, unit, spread, s_diag = (np.asarray(getval(x), dtype=float)
                                   for x in (c, cp, unit, spread, s_diag))
    grid = check_int(grid, "grid", minimum=3)
    # ℓ* scales as the square root of the covariances and of |m − m'|: solve the problem in
    # v = ℓ²/N, N = E‖z − z'‖² = spread + |m − m'|² (> 0 for a non-degenerate pair), so that
    # (λ + ℓ²)² in the slope neither overflows at scale 1e155 nor underflows at 1e-165. N =
    # 4^t Ñ and the covariances λs·(σ, λ̂, ĉ) with λs = 4^h are split by powers of two (exact),
    # the objective is divided by κ = λs/N (see _rbf_objective): |m − m'| may be 1e300 times
    # the spread, or 1e308 (where N and ℓ*² overflow) without loss.
    def half(x):                                   # an integer with 4^half(x) > x > 0
        return int(np.frexp(x)[1]) // 2 + 1
    h = max(half(spread), max(half(x) for x in np.diag(cp)), max(half(x) for x in np.diag(c)))
    t = h if a is None else max(a, half(spread))
    mean = np.zeros_like(unit) if a is None else _scale_pow2(unit, a - t)
    n_tilde = _scale_pow2(spread, -2 * t) + float(np.sum(mean * mean))
    kappa = _scale_pow2(1.0 / n_tilde, 2 * (h - t))
    lam, vec = np.linalg.eigh(_scale_pow2(cp, -2 * h))
    lam = np.maximum(lam, 0.0)
    sigma = float(np.sum(_scale_pow2(s_diag, -2 * h)))   # tr S/λs, each term scaled exactly
    top = float(np.max(np.abs(s_diag)))
    # the sign of tr S, with its largest term scaled to [½, 1) (no overflow, no underflow)
    trace_sign = 0.0 if top == 0 else float(np.sum(np.ldexp(s_diag, -int(np.frexp(top)[1]))))
    if trace_sign <= 0:
        # every term of I_∞ but tr S/ℓ² is ≤ 0 (see _rbf_objective): with tr S ≤ 0 the
        # critic only loses at finite ℓ, and the supremum, 0, is the limit ℓ → ∞
        return np.inf
    too_weak = ValueError(
        f"the correlation is too weak to place the best RBF lengthscale (tr S = "
        f"{float(np.sum(s_diag)):.3g} against variances up to "
        f"{float(max(np.max(np.diag(c)), np.max(np.diag(cp)))):.3g}; ℓ*² grows as "
        "E‖z − z'‖²/tr S, and this search ends at e^312 E‖z − z'‖²)")
    if sigma == 0:                                 # tr S/λs below 2^-1074
        raise too_weak
    args = (kappa, sigma, lam,
            np.diag(vec.T @ _scale_pow2(c, -2 * h) @ vec), (vec.T @ mean) ** 2 / n_tilde)
    log_u = np.linspace(-8 * np.log(10), 8 * np.log(10), int(grid))
    values = _rbf_objective(log_u, *args)
    best = int(np.argmax(values))
    while best == log_u.size - 1 and log_u[-1] < 300:
        # highest at the top (a weak correlation puts ℓ*² near E‖z − z'‖²/ρ): the next 16
        # decades, from the point below the top, while v·w ≈ v² stays finite (v < e^354)
        log_u = log_u[-2] + (log_u - log_u[0])
        values = _rbf_objective(log_u, *args)
        best = int(np.argmax(values))
    if best == log_u.size - 1:
        raise too_weak
    lo, hi = log_u[max(best - 1, 0)], log_u[best + 1]
    f_lo, f_hi = _rbf_slope(lo, *args), _rbf_slope(hi, *args)
    side, before = 0, hi - lo      # before: the bracket's width before the last step
    for _ in range(400):   # Illinois (modified regula falsi) on the slope: stays bracketed
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        width = hi - lo
        if width >= before / 2 or not lo < mid < hi:
            # the last step took less than half of the bracket (and the first step), or
            # this one lands on an end (a slope of 0.1 at one end and 1e-25 at the other,
            # as the wide bracket of a small grid has): bisect
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:                  # the bracket is two adjacent floats
                break
        before = width
        f_mid = _rbf_slope(mid, *args)
        if f_mid > 0:
            lo, f_lo = mid, f_mid
            f_hi = f_hi / 2 if side == -1 else f_hi
            side = -1
        else:
            hi, f_hi = mid, f_mid
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
        # done when the bracket, not the step, is small: on a flat end of a wide bracket
        # two steps from one side can be 1e-14 apart with the root far away (grid = 3)
        if hi - lo < 1e-14 * max(1.0, abs(mid)) or f_mid == 0:
            break
    with np.errstate(over="ignore"):
        ell = float(_scale_pow2(np.exp(0.5 * mid) * np.sqrt(n_tilde), t))   # ℓ = √(v Ñ) 2^t
    if not np.isfinite(ell):
        raise ValueError("the best RBF lengthscale is beyond the float64 range (it scales with "
                         "|m − m'|, here near 1.8e308); rescale z and z'")
    return ell

