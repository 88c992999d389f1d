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

import numpy as np


class GaussianPair(NamedTuple):
    """A jointly Gaussian (z, z'): z = first ``k`` coordinates of ``mean``/``cov``."""
    mean: np.ndarray  # (k + k',)
    cov: np.ndarray   # (k + k', k + k')
    k: int


class QuadraticCritic(NamedTuple):
    """f(z, z') = zᵀ W z' − ½ z'ᵀ Q z' + bᵀ z', up to a function of z alone."""
    W: np.ndarray  # (k, k')
    Q: np.ndarray  # (k', k'), symmetric
    b: np.ndarray  # (k',)


# ---------------------------------------------------------------- validation

def _matrix(name, a, shape=None):
    """``a`` as a finite float64 2-D array (of ``shape`` if given), else a clear error."""
    try:
        a = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real array; got {type(a).__name__}") from err
    if a.ndim == 0 and shape is not None and shape == (1, 1):
        a = a.reshape(1, 1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {a.shape}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite; it contains nan or inf")
    return a


def _vector(name, v, length):
    """``v`` as a finite float64 vector of ``length`` (zeros if None)."""
    if v is None:
        return np.zeros(length)
    v = np.asarray(v, dtype=float)
    if v.ndim > 1 or v.size != length:
        raise ValueError(f"{name} must be a vector of length {length}; got shape {v.shape}")
    v = v.reshape(length)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite; it contains nan or inf")
    return v


def _covariance(name, a, dim=None, definite=True):
    """Check ``a`` is a symmetric (dim, dim) matrix, positive definite if
    ``definite`` is True, semi-definite if False, any sign if None."""
    a = _matrix(name, a)
    if a.shape[0] != a.shape[1] or (dim is not None and a.shape[0] != dim):
        want = f"({dim}, {dim})" if dim is not None else "square"
        raise ValueError(f"{name} must be {want}; got shape {a.shape}")
    scale = max(1.0, float(np.max(np.abs(a)))) if a.size else 1.0
    asym = float(np.max(np.abs(a - a.T))) if a.size else 0.0
    if asym > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric; max |a - a.T| = {asym:.3g}")
    a = 0.5 * (a + a.T)
    if a.size and definite is not None:
        low = float(np.linalg.eigvalsh(a)[0])
        if definite and low <= 1e-13 * scale:
            raise ValueError(f"{name} must be positive definite; its smallest "
                             f"eigenvalue is {low:.3g}")
        if not definite and low < -1e-12 * scale:
            raise ValueError(f"{name} must be positive semi-definite; its smallest "
                             f"eigenvalue is {low:.3g}")
    return a


def _check_pair(joint, name="joint"):
    """A GaussianPair with consistent shapes and a positive definite covariance."""
    if not isinstance(joint, GaussianPair):
        raise TypeError(f"{name} must be a GaussianPair; got {type(joint).__name__}")
    mean, cov = np.asarray(joint.mean), np.asarray(joint.cov)
    n = mean.size
    if mean.shape != (n,) or cov.shape != (n, n) or not 0 < joint.k < n:
        raise ValueError(f"{name}: mean must be (n,), cov (n, n) and 0 < k < n; got mean "
                         f"{mean.shape}, cov {cov.shape}, k={joint.k}")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}.cov must be positive definite") from None
    return joint


# ---------------------------------------------------------------- linear algebra

def _logdet(a):
    """log det of a symmetric positive definite matrix (via Cholesky)."""
    return 2.0 * float(np.sum(np.log(np.diag(np.linalg.cholesky(a)))))


def _solve(a, b):
    """a⁻¹ b for symmetric positive definite ``a``."""
    return np.linalg.solve(a, b)


def blocks(joint):
    """(m, m', C, C', S) of a pair: means (k,), (k',); covariances (k, k), (k', k');
    cross-covariance S = Cov(z, z') (k, k')."""
    k = _check_pair(joint).k
    m, c = joint.mean, joint.cov
    return m[:k], m[k:], c[:k, :k], c[k:, k:], c[:k, k:]


# ---------------------------------------------------------------- constructors

def gaussian_pair(cov_z, cov_z_prime, cross_cov, mean_z=None, mean_z_prime=None):
    """The joint of z ~ N(mean_z, cov_z) (k,), z' ~ N(mean_z', cov_z') (k',) with
    Cov(z, z') = ``cross_cov`` (k, k'). Raises ValueError unless the joint
    covariance is positive definite (otherwise I(Z;Z') would be infinite)."""
    cov_z = _covariance("cov_z", np.atleast_2d(cov_z))
    cov_zp = _covariance("cov_z_prime", np.atleast_2d(cov_z_prime))
    k, kp = cov_z.shape[0], cov_zp.shape[0]
    cross = _matrix("cross_cov", np.atleast_2d(cross_cov), (k, kp))
    cov = np.block([[cov_z, cross], [cross.T, cov_zp]])
    cov = _covariance("joint covariance of (z, z')", cov)
    mean = np.concatenate([_vector("mean_z", mean_z, k), _vector("mean_z_prime", mean_z_prime, kp)])
    return GaussianPair(mean, cov, k)


def recognition_joint(cov_xx, enc, enc_prime, noise_cov=None, noise_cov_prime=None,
                      mean_xx=None):
    """The Gaussian recognition joint P(z, z') (Eq. 3, 11; docs/theory.md, 'Gaussian latents').

    (x, x') ~ N(mean_xx, cov_xx) with x of dimension d = enc.shape[1] and x' of
    d' = enc_prime.shape[1], so ``cov_xx`` is (d + d', d + d'). The encoders are
    z = A x + ε, ε ~ N(0, noise_cov) with A = ``enc`` (k, d), and
    z' = A' x' + ε', ε' ~ N(0, noise_cov_prime) with A' = ``enc_prime`` (k', d').
    Noise covariances default to 0 (deterministic encoders, Appendix C); they
    may be positive semi-definite as long as the joint covariance of (z, z') is
    positive definite.
    """
    enc = _matrix("enc", enc)
    enc_prime = _matrix("enc_prime", enc_prime)
    (k, d), (kp, dp) = enc.shape, enc_prime.shape
    cov_xx = _covariance("cov_xx", cov_xx, definite=False)
    if cov_xx.shape[0] != d + dp:
        raise ValueError(f"cov_xx must be ({d + dp}, {d + dp}) = dims of x ({d}, from "
                         f"enc.shape[1]) plus x' ({dp}, from enc_prime.shape[1]); got "
                         f"{cov_xx.shape}")
    mean_xx = _vector("mean_xx", mean_xx, d + dp)
    noise = _covariance("noise_cov", np.zeros((k, k)) if noise_cov is None else noise_cov,
                        k, definite=False)
    noise_p = _covariance("noise_cov_prime",
                          np.zeros((kp, kp)) if noise_cov_prime is None else noise_cov_prime,
                          kp, definite=False)
    big = np.block([[enc, np.zeros((k, dp))], [np.zeros((kp, d)), enc_prime]])  # (k+k', d+d')
    cov = big @ cov_xx @ big.T
    cov[:k, :k] += noise
    cov[k:, k:] += noise_p
    cov = 0.5 * (cov + cov.T)
    try:
        _covariance("recognition joint covariance of (z, z')", cov)
    except ValueError as err:
        raise ValueError(f"{err}: I(Z;Z') would be infinite; add encoder noise or "
                         "use full-rank encoders") from None
    return GaussianPair(big @ mean_xx, cov, k)


def bilinear_critic(W):
    """f(z, z') = zᵀ W z' (Eq. 8), W (k, k') (a scalar for 1-D z, z')."""
    W = _matrix("W", np.reshape(W, (1, 1)) if np.ndim(W) == 0 else W)
    return QuadraticCritic(W, np.zeros((W.shape[1], W.shape[1])), np.zeros(W.shape[1]))


def rbf_critic(lengthscale, k):
    """f(z, z') = −‖z − z'‖² / (2ℓ²) (Eq. 27) for z, z' in R^k, as a quadratic
    critic (the −‖z‖²/(2ℓ²) term depends on z alone and is dropped)."""
    ell = float(lengthscale)
    if not (np.isfinite(ell) and ell > 0):
        raise ValueError(f"lengthscale must be a positive finite number; got {lengthscale}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the dimension of z and z') must be a positive integer; got {k!r}")
    eye = np.eye(int(k)) / ell**2
    return QuadraticCritic(eye, eye.copy(), np.zeros(int(k)))


def optimal_critic(joint):
    """The critic log p(z'|z) − log p(z') (up to a function of z), which makes
    the energy prior equal the recognition joint (E4, E6). With
    z'|z ~ N(m' + K(z − m), Σ), K = Sᵀ C⁻¹, Σ = C' − K S, it is
    W = Kᵀ Σ⁻¹, Q = Σ⁻¹ − C'⁻¹, b = Σ⁻¹(m' − K m) − C'⁻¹ m'.

    (log p(z'|z) alone is *not* optimal: the −log p(z') it lacks depends on z',
    so the softmax over negatives z'_j in Eq. 6–7 does not cancel it.)
    """
    m, mp, c, cp, s = blocks(joint)
    gain = _solve(c, s).T                      # K (k', k)
    prec = np.linalg.inv(_conditional_cov(joint))
    prec = 0.5 * (prec + prec.T)
    cp_inv = np.linalg.inv(cp)
    cp_inv = 0.5 * (cp_inv + cp_inv.T)
    return QuadraticCritic(gain.T @ prec, prec - cp_inv, prec @ (mp - gain @ m) - cp_inv @ mp)


def _conditional_cov(joint):
    _, _, c, cp, s = blocks(joint)
    cond = cp - s.T @ _solve(c, s)
    return 0.5 * (cond + cond.T)


def _check_critic(critic, joint):
    if not isinstance(critic, QuadraticCritic):
        raise TypeError("critic must be a QuadraticCritic (use bilinear_critic, rbf_critic "
                        f"or optimal_critic); got {type(critic).__name__}")
    k, kp = joint.k, joint.mean.size - joint.k
    W = _matrix("critic.W", critic.W, (k, kp))
    Q = _covariance("critic.Q", critic.Q, kp, definite=None)
    b = _vector("critic.b", critic.b, kp)
    return W, Q, b


# ---------------------------------------------------------------- measures

def entropy(joint_or_cov):
    """Differential entropy ½ log det(2πe Σ) of a Gaussian (nats)."""
    cov = _check_pair(joint_or_cov).cov if isinstance(joint_or_cov, GaussianPair) else \
        _covariance("cov", np.atleast_2d(joint_or_cov))
    return 0.5 * (cov.shape[0] * np.log(2 * np.pi * np.e) + _logdet(cov))


def canonical_correlations(joint):
    """The singular values of C^{-1/2} S C'^{-1/2}: the canonical correlations of (z, z')."""
    _, _, c, cp, s = blocks(joint)
    lc, lcp = np.linalg.cholesky(c), np.linalg.cholesky(cp)
    whitened = np.linalg.solve(lc, np.linalg.solve(lcp, s.T).T)  # Lc⁻¹ S Lc'⁻ᵀ (k, k')
    return np.linalg.svd(whitened, compute_uv=False)


def mutual_information(joint):
    """I(Z; Z') = ½ log(det C det C' / det Σ) (docs/theory.md, 'Gaussian latents'), computed as
    −½ Σ log(1 − σᵢ²) over the canonical correlations σᵢ (no cancellation)."""
    sigma = np.clip(canonical_correlations(joint), 0.0, 1.0)
    return float(-0.5 * np.sum(np.log1p(-sigma**2)))


def kl_divergence(p, q):
    """KL(p ‖ q) between Gaussians of the same dimension (nats); p, q are
    GaussianPairs or (mean (d,), cov (d, d)) pairs.

    ½[tr(Σq⁻¹Σp) − d − log det(Σq⁻¹Σp) + δᵀΣq⁻¹δ], evaluated on the eigenvalues
    λ of the whitened Σp as Σ (λ−1) − log1p(λ−1), accurate as p → q.
    """
    mp, cp = _mean_cov("p", p)
    mq, cq = _mean_cov("q", q)
    if cp.shape != cq.shape:
        raise ValueError(f"p and q must have the same dimension; got {mp.size} and {mq.size}")
    low = np.linalg.cholesky(cq)
    white = np.linalg.solve(low, np.linalg.solve(low, cp).T)   # Lq⁻¹ Σp Lq⁻ᵀ
    lam_minus_one = np.linalg.eigvalsh(0.5 * (white + white.T)) - 1.0
    delta = np.linalg.solve(low, np.asarray(mq) - np.asarray(mp))
    return float(0.5 * (np.sum(lam_minus_one - np.log1p(lam_minus_one)) + delta @ delta))


def _mean_cov(name, p):
    """(mean, cov) of a GaussianPair or a (mean, cov) pair, checked."""
    if isinstance(p, GaussianPair):
        _check_pair(p, name)
        return np.asarray(p.mean, dtype=float), np.asarray(p.cov, dtype=float)
    try:
        mean, cov = p
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a GaussianPair or a (mean, cov) pair") from None
    cov = _covariance(f"{name} covariance", np.atleast_2d(cov))
    return _vector(f"{name} mean", mean, cov.shape[0]), cov


def cross_entropy(p, q):
    """−E_p[log q] for Gaussians p, q (nats)."""
    d = p.mean.size
    maha = (q.mean - p.mean) @ _solve(q.cov, q.mean - p.mean)
    return 0.5 * (d * np.log(2 * np.pi) + _logdet(q.cov)
                  + np.trace(_solve(q.cov, p.cov)) + maha)


# ---------------------------------------------------------------- energy prior, InfoNCE

def energy_prior(joint, critic):
    """The energy prior P_θ(z, z') = p(z) p(z') e^{f(z,z')} / Z(z) (Eq. 21–22).

    For a quadratic critic it is Gaussian: z ~ N(m, C) and
    z' | z ~ N(P⁻¹(C'⁻¹m' + b + Wᵀz), P⁻¹) with P = C'⁻¹ + Q, which must be
    positive definite (else Z(z) = ∞). Returns a GaussianPair.
    """
    W, Q, b = _check_critic(critic, _check_pair(joint))
    m, mp, c, cp, _ = blocks(joint)
    prec = _energy_precision(cp, Q)
    post = np.linalg.inv(prec)
    post = 0.5 * (post + post.T)
    gain = post @ W.T                                # (k', k): d mean(z'|z) / dz
    offset = post @ (_solve(cp, mp) + b)
    mean = np.concatenate([m, gain @ m + offset])
    cov_zp = gain @ c @ gain.T + post
    cov = np.block([[c, c @ gain.T], [gain @ c, 0.5 * (cov_zp + cov_zp.T)]])
    return GaussianPair(mean, cov, joint.k)


def _energy_precision(cp, Q):
    prec = np.linalg.inv(cp) + Q
    prec = 0.5 * (prec + prec.T)
    if np.linalg.eigvalsh(prec)[0] <= 0:
        raise ValueError("critic.Q is too negative: C'^-1 + Q must be positive definite, "
                         "otherwise the energy prior's normaliser Z(z) is infinite")
    return prec


def infonce_limit(joint, critic):
    """I_∞(f) = E_{P(z,z')}[f] − E_{P(z)}[log E_{P(z')} e^{f(z,z')}] (Eq. 7, 25).

    With v(z) = C'⁻¹m' + b + Wᵀz and P = C'⁻¹ + Q,
      E[f]        = tr(W Sᵀ) + mᵀWm' − ½(tr(QC') + m'ᵀQm') + bᵀm'
      E log Z(z)  = −½ log det(C'P) + ½ E[vᵀP⁻¹v] − ½ m'ᵀC'⁻¹m'.
    """
    W, Q, b = _check_critic(critic, _check_pair(joint))
    m, mp, c, cp, s = blocks(joint)
    prec = _energy_precision(cp, Q)
    e_f = np.sum(W * s) + m @ W @ mp - 0.5 * (np.sum(Q * cp) + mp @ Q @ mp) + b @ mp
    cp_inv_mp = _solve(cp, mp)
    v_mean = cp_inv_mp + b + W.T @ m
    e_vpv = np.trace(_solve(prec, W.T @ c @ W)) + v_mean @ _solve(prec, v_mean)
    e_log_z = -0.5 * (_logdet(cp) + _logdet(prec)) + 0.5 * e_vpv - 0.5 * mp @ cp_inv_mp
    return float(e_f - e_log_z)


def rbf_infonce_limit(joint, lengthscale):
    """I_∞ for the RBF critic f = −‖z − z'‖²/(2ℓ²) (Eq. 27) by its own route:
    log Z(z) = k log ℓ − ½ log det(C' + ℓ²I) − ½ (z − m')ᵀ(C' + ℓ²I)⁻¹(z − m'), so

      I_∞(ℓ) = −E‖z − z'‖²/(2ℓ²) − k log ℓ + ½ log det(C' + ℓ²I)
               + ½ [tr((C' + ℓ²I)⁻¹ C) + (m − m')ᵀ(C' + ℓ²I)⁻¹(m − m')].

    For 1-D unit variances and correlation ρ this is the example of docs/theory.md
    ('Gaussian latents'):
    −(1−ρ)/ℓ² − log ℓ + ½ log(1+ℓ²) + 1/(2(1+ℓ²)). ℓ = inf gives the limit 0.
    """
    m, mp, c, cp, s = blocks(joint)
    if m.size != mp.size:
        raise ValueError(f"the RBF critic needs dim z == dim z'; got {m.size} and {mp.size}")
    ell = float(lengthscale)
    if not ell > 0:
        raise ValueError(f"lengthscale must be positive; got {lengthscale}")
    if np.isinf(ell):
        return 0.0
    lam, vec = np.linalg.eigh(cp)
    u = ell**2
    diff = m - mp
    sq_dist = np.trace(c) + np.trace(cp) - 2 * np.trace(s) + diff @ diff
    second = np.diag(vec.T @ (c + np.outer(diff, diff)) @ vec)   # b_i in eigenbasis of C'
    return float(_rbf_objective(np.log(u), sq_dist, lam, second))


def _rbf_objective(log_u, sq_dist, lam, second):
    """I_∞ as a function of log ℓ² (see rbf_infonce_limit), vectorised over log_u."""
    log_u = np.asarray(log_u, dtype=float)[..., None]
    u = np.exp(log_u)
    # −(k/2) log u + ½ Σ log(λ + u) = ½ Σ log1p(λ/u): no cancellation at large ℓ
    return (-sq_dist / (2 * u[..., 0]) + 0.5 * np.sum(np.log1p(lam / u), axis=-1)
            + 0.5 * np.sum(second / (lam + u), axis=-1))


def _rbf_slope(log_u, sq_dist, lam, second):
    """d I_∞ / d log ℓ² (the derivative of _rbf_objective)."""
    u = np.exp(log_u)
    return (sq_dist / (2 * u) - 0.5 * lam.size + 0.5 * np.sum(u / (lam + u))
            - 0.5 * np.sum(second * u / (lam + u) ** 2))


def elbo_decomposition(joint, prior):
    """E3 for a Gaussian prior P_θ(z, z'): returns a dict with

    ``elbo_minus_constant`` = E_P[log P_θ(z,z') / (p(z) p(z'))] (Eq. 16 without C),
    computed as −CE(P, P_θ) + h(Z) + h(Z'); ``mutual_information`` I(Z;Z');
    ``kl`` = KL(P ‖ P_θ). E3 says the first equals the second minus the third.
    """
    _check_pair(joint)
    _check_pair(prior, "prior")
    if prior.cov.shape != joint.cov.shape or prior.k != joint.k:
        raise ValueError(f"prior must have the joint's shape {joint.cov.shape} and k={joint.k}")
    _, _, c, cp, _ = blocks(joint)
    return {
        "elbo_minus_constant": float(-cross_entropy(joint, prior) + entropy(c) + entropy(cp)),
        "mutual_information": mutual_information(joint),
        "kl": kl_divergence(joint, prior),
    }


def data_constant(cov_xx, dim_x):
    """C = −h(X) − h(X') (Eq. 16), differential entropies of the data marginals;
    ``cov_xx`` (d + d', d + d') as in ``recognition_joint``, x = the first ``dim_x``."""
    cov_xx = _covariance("cov_xx", cov_xx)
    d = int(dim_x)
    if not 0 < d < cov_xx.shape[0]:
        raise ValueError(f"dim_x must be between 1 and {cov_xx.shape[0] - 1}; got {dim_x}")
    return -entropy(cov_xx[:d, :d]) - entropy(cov_xx[d:, d:])


# ---------------------------------------------------------------- optimal critic parameters

def optimal_bilinear_critic(joint):
    """W* = argmax_W I_∞(zᵀWz') = (C + mmᵀ)⁻¹ S C'⁻¹.

    I_∞ is the concave quadratic tr(WSᵀ) − ½ tr(W C' Wᵀ (C + mmᵀ)) in W (see
    infonce_limit with Q = 0, b = 0), whose gradient S − (C + mmᵀ) W C'
    vanishes at W*.
    """
    m, _, c, cp, s = blocks(joint)
    second_moment = c + np.outer(m, m)
    return bilinear_critic(_solve(second_moment, _solve(cp, s.T).T))


def optimal_rbf_lengthscale(joint, grid=400):
    """ℓ* = argmax_ℓ I_∞ for the RBF critic (Eq. 27); needs dim z == dim z'.

    I_∞(ℓ) → −∞ as ℓ → 0 and → 0 as ℓ → ∞. A log-spaced grid of ``grid`` values
    of ℓ² over 16 decades around the covariance scale brackets the maximum, then
    regula falsi on the analytic derivative refines it. Returns ``np.inf`` when
    the supremum is the ℓ → ∞ limit (e.g. non-positive correlation).
    """
    m, mp, c, cp, s = blocks(joint)
    if m.size != mp.size:
        raise ValueError(f"the RBF critic needs dim z == dim z'; got {m.size} and {mp.size}")
    if int(grid) < 3:
        raise ValueError(f"grid must be at least 3; got {grid}")
    lam, vec = np.linalg.eigh(cp)
    diff = m - mp
    sq_dist = np.trace(c) + np.trace(cp) - 2 * np.trace(s) + diff @ diff
    second = np.diag(vec.T @ (c + np.outer(diff, diff)) @ vec)
    scale = np.log(max(sq_dist, 1e-300))
    log_u = np.linspace(scale - 8 * np.log(10), scale + 8 * np.log(10), int(grid))
    values = _rbf_objective(log_u, sq_dist, lam, second)
    best = int(np.argmax(values))
    if best == log_u.size - 1 or values[best] <= 0:
        return np.inf
    lo, hi = log_u[max(best - 1, 0)], log_u[best + 1]
    args = (sq_dist, lam, second)
    f_lo, f_hi = _rbf_slope(lo, *args), _rbf_slope(hi, *args)
    side, previous = 0, np.inf
    for _ in range(200):   # Illinois (modified regula falsi) on the slope: stays bracketed
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_mid = _rbf_slope(mid, *args)
        if f_mid > 0:
            lo, f_lo = mid, f_mid
            f_hi = f_hi / 2 if side == -1 else f_hi
            side = -1
        else:
            hi, f_hi = mid, f_mid
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
        if abs(mid - previous) < 1e-14 * max(1.0, abs(mid)) or f_mid == 0:
            break
        previous = mid
    return float(np.exp(0.5 * mid))     # ℓ = sqrt(u) = exp(log_u / 2)

