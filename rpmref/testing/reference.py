"""The exact in-batch InfoNCE loss and its gradient: what implementations are checked against.

Convention (Eq. 6 with N = B, written as a loss). For a (B, B) matrix of logits
L[i, j] = f(z_i, z'_j) / τ, positives on the diagonal,

    loss(L) = −(1/B) Σ_i log softmax_j(L[i, :])_i = −(1/B) Σ_i [L_ii − log Σ_j e^{L_ij}]

in nats: a *loss* (minimised; log B − loss is the estimate), a *mean* over the B
anchors z_i, and *one direction*, z → z' (each anchor's softmax runs over the B
candidates z'_j of its row, the positive included). By A1 (Eq. 28–34) that softmax
is P_θ(m = j | n = i), the RPM over index pairs with one-hot encoders and the energy
prior, so loss(L) = −(1/B) Σ_n log(B · P_θ(n, n)); and log B − loss(L) is I_∞ (Eq. 7,
25) of the batch's empirical joint diag(1/B, ..., 1/B) with critic table L (E5). The
tests check both routes against this function.

Critics for embedding batches z (B, D), z' (B, D) (docs/theory.md, 'Critics'):
"dot" is the bilinear critic zᵀ W z' of Eq. 8 with W = I (``rpmref.gaussian``'s
``bilinear_critic``), "cosine" the same critic on unit vectors z/‖z‖ (SimCLR's).
"""
import numpy as np

from rpmref.exact.numerics import log_softmax, logsumexp
from rpmref.exact.validation import as_float_array, check_finite, check_real
from rpmref.gaussian import bilinear_critic
from rpmref.gaussian.monte_carlo import critic_scores as _quadratic_scores

CRITICS = ("dot", "cosine")


def check_logits(logits, name="logits"):
    """A (B, B) float64 array with a finite diagonal and no NaN or +inf (−inf is a masked negative).

    Parameters
    ----------
    logits : array_like, shape (B, B)
        L[i, j], positives on the diagonal.
    name : str, default "logits"
        Its name, for messages.

    Returns
    -------
    ndarray, shape (B, B)
        The float64 logits.

    Raises
    ------
    TypeError
        For non-real input.
    ValueError
        If not 2-D or not square, or naming the first NaN/+inf entry or non-finite
        diagonal entry.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.reference import check_logits
    >>> check_logits([[0.0, -np.inf], [2.0, 0.0]])
    array([[  0., -inf],
           [  2.,   0.]])
    >>> check_logits([[0.0, np.inf], [2.0, 0.0]])
    Traceback (most recent call last):
    ...
    ValueError: logits must not contain NaN or +inf; entry (0, 1) is inf
    """
    logits = as_float_array(logits, name, ndim=2)
    if logits.shape[0] != logits.shape[1]:
        raise ValueError(f"{name} must be square (B, B) with the positives on the diagonal; "
                         f"got shape {logits.shape}")
    bad = np.isnan(logits) | np.isposinf(logits)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} must not contain NaN or +inf; entry ({i}, {j}) is "
                         f"{logits[i, j]}")
    diagonal = np.diagonal(logits)
    if not np.all(np.isfinite(diagonal)):
        i = int(np.flatnonzero(~np.isfinite(diagonal))[0])
        raise ValueError(f"{name} must have a finite diagonal (the positives); entry ({i}, {i}) "
                         f"is {diagonal[i]}")
    return logits


def infonce_loss(logits):
    """The in-batch InfoNCE loss −(1/B) Σ_i log softmax_j(L[i, :])_i (Eq. 6, A1), in nats.

    Parameters
    ----------
    logits : array (B, B)
        L[i, j] = f(z_i, z'_j) / τ; positives on the diagonal (finite); off-diagonal
        −inf entries are negatives left out of the softmax.

    Returns
    -------
    float
        The loss, ≥ 0; log B for a constant critic; log B − loss ≤ log B (E7).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing import infonce_loss
    >>> round(infonce_loss(np.zeros((4, 4))) - float(np.log(4)), 15)
    0.0
    """
    logits = check_logits(logits)
    b = logits.shape[0]
    top = logits.max(axis=1)                                  # finite: the diagonal is
    with np.errstate(over="ignore"):   # L − top below −1.8e308 is −inf: a term e^{−inf} = 0
        lse = logsumexp(logits - top[:, None], axis=1)        # in [0, log B]
    # each row's −log softmax = lse − (L_ii − top), halved so that it cannot overflow
    # (L_ii − top can be −3.6e308); the loss is inf only beyond float64 itself
    half_terms = lse / 2 - (np.diagonal(logits) / 2 - top / 2)
    with np.errstate(over="ignore"):
        return float(2 * np.sum(half_terms / b))


def infonce_loss_gradient(logits):
    """∂ loss / ∂ L = (softmax(L) − I) / B of :func:`infonce_loss` (rows: anchors).

    Parameters
    ----------
    logits : array_like, shape (B, B)
        As for :func:`infonce_loss`.

    Returns
    -------
    ndarray, shape (B, B)
        The gradient.

    Raises
    ------
    ValueError
        If ``logits`` is not square, has NaN or +inf entries, or a non-finite diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing import infonce_loss_gradient
    >>> infonce_loss_gradient(np.zeros((2, 2)))
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """
    logits = check_logits(logits)
    b = logits.shape[0]
    return (np.exp(log_softmax(logits, axis=1)) - np.eye(b)) / b


def _unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def check_embeddings(z, z_prime, critic=None):
    """z (B, D) and z_prime (B', D) as finite float64 arrays; rows of nonzero norm for the cosine critic.

    Parameters
    ----------
    z : array_like, shape (B, D)
        Anchors.
    z_prime : array_like, shape (B', D)
        Candidates.
    critic : str or callable, optional
        "cosine" also refuses zero rows.

    Returns
    -------
    tuple of ndarray
        (z, z_prime) as float64.

    Raises
    ------
    TypeError
        For non-real input.
    ValueError
        If not 2-D, not finite, the dimensions D differ, or a row is zero under "cosine".

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.reference import check_embeddings
    >>> check_embeddings(np.zeros((2, 2)), np.ones((2, 2)), critic="cosine")
    Traceback (most recent call last):
    ...
    ValueError: z row 0 is zero: the cosine critic needs nonzero embeddings
    """
    z = check_finite(as_float_array(z, "z", ndim=2), "z")
    z_prime = check_finite(as_float_array(z_prime, "z_prime", ndim=2), "z_prime")
    if z.shape[1] != z_prime.shape[1]:
        raise ValueError(f"z and z_prime must have the same dimension D; got shapes {z.shape} "
                         f"and {z_prime.shape}")
    if critic == "cosine":
        for name, a in (("z", z), ("z_prime", z_prime)):
            zero = np.flatnonzero(np.linalg.norm(a, axis=1) == 0)
            if zero.size:
                raise ValueError(f"{name} row {int(zero[0])} is zero: the cosine critic "
                                 "needs nonzero embeddings")
    return z, z_prime


def critic_scores(critic, z, z_prime):
    """Scores S[i, j] = f(z_i, z'_j) of a critic.

    Parameters
    ----------
    critic : {"dot", "cosine"} or callable
        "dot" (zᵀz', Eq. 8 with W = I), "cosine" (zᵀz' / (‖z‖ ‖z'‖)) or a callable
        ``critic(z, z_prime) -> (B, B')`` array.
    z : array_like, shape (B, D)
        Anchors.
    z_prime : array_like, shape (B', D)
        Candidates.

    Returns
    -------
    ndarray, shape (B, B')
        The scores.

    Raises
    ------
    ValueError
        If z and z_prime differ in D, a row is zero under "cosine", a callable
        returns the wrong shape, or ``critic`` is none of these.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing import critic_scores
    >>> critic_scores("dot", np.eye(2), 2 * np.eye(2))
    array([[2., 0.],
           [0., 2.]])
    >>> critic_scores("cosine", np.eye(2), 2 * np.eye(2))
    array([[1., 0.],
           [0., 1.]])
    """
    z, z_prime = check_embeddings(z, z_prime, critic)
    if callable(critic):
        try:
            returned = critic(z, z_prime)
        except Exception as err:
            if hasattr(err, "add_note"):
                err.add_note("raised by critic(z, z_prime), which is given NumPy float64 "
                             "arrays z (B, D) and z_prime (B', D) and returns the (B, B') "
                             "scores as an array")
            raise
        scores = as_float_array(returned, "critic(z, z_prime)", ndim=2)
        if scores.shape != (z.shape[0], z_prime.shape[0]):
            raise ValueError(f"critic(z, z_prime) must have shape {(z.shape[0], z_prime.shape[0])};"
                             f" got {scores.shape}")
        bad = np.argwhere(np.isnan(scores) | (scores == np.inf))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise ValueError(f"critic(z, z_prime) must return finite scores (or -inf for a "
                             f"masked pair); entry ({i}, {j}) is {scores[i, j]}")
        return scores
    if critic not in CRITICS:
        raise ValueError(f"critic must be 'dot', 'cosine' or a callable; got {critic!r}")
    if critic == "cosine":
        z, z_prime = _unit_rows(z), _unit_rows(z_prime)
    return _quadratic_scores(bilinear_critic(np.eye(z.shape[1])), z, z_prime)


def critic_vjp(critic, z, z_prime, grad_scores):
    """(∂/∂z, ∂/∂z') of Σ_ij G_ij S_ij for G = ``grad_scores``: the chain rule through the critic.

    Parameters
    ----------
    critic : {"dot", "cosine"} or callable
        The critic of :func:`critic_scores`.
    z : ndarray, shape (B, D)
        Anchors.
    z_prime : ndarray, shape (B', D)
        Candidates.
    grad_scores : ndarray, shape (B, B')
        G, the gradient with respect to the scores.

    Returns
    -------
    tuple of ndarray or None
        (∂/∂z (B, D), ∂/∂z' (B', D)); None for a callable critic (its Jacobian is unknown).

    Examples
    --------
    For "dot", S = z z'ᵀ, so ∂/∂z = G z' and ∂/∂z' = Gᵀ z:

    >>> import numpy as np
    >>> from rpmref.testing.reference import critic_vjp
    >>> grad_z, grad_z_prime = critic_vjp("dot", np.eye(2), 2 * np.eye(2), np.ones((2, 2)))
    >>> grad_z
    array([[2., 2.],
           [2., 2.]])
    """
    if callable(critic):
        return None
    if critic == "dot":
        return grad_scores @ z_prime, grad_scores.T @ z
    norm, norm_prime = (np.linalg.norm(a, axis=1, keepdims=True) for a in (z, z_prime))
    u, u_prime = z / norm, z_prime / norm_prime
    grad_u, grad_u_prime = grad_scores @ u_prime, grad_scores.T @ u

    def through_unit(g, v, r):      # d(z/‖z‖)/dz = (I − u uᵀ)/‖z‖
        return (g - np.sum(g * v, axis=1, keepdims=True) * v) / r
    return through_unit(grad_u, u, norm), through_unit(grad_u_prime, u_prime, norm_prime)


def embedding_loss(z, z_prime, critic, temperature=None):
    """The in-batch InfoNCE loss (Eq. 6) of the scores critic(z, z') / τ, in nats.

    Parameters
    ----------
    z : array_like, shape (B, D)
        Anchors; (z_i, z'_i) are the positive pairs.
    z_prime : array_like, shape (B, D)
        Positives.
    critic : {"dot", "cosine"} or callable
        As for :func:`critic_scores`.
    temperature : float, optional
        τ > 0 (None: τ = 1); a 0-d array or tensor is taken by its value.

    Returns
    -------
    float
        The loss in nats.

    Raises
    ------
    TypeError
        If ``temperature`` is not a real number (a bool, a string, an array).
    ValueError
        If z and z_prime differ in shape (B pairs of D), a cosine row is zero,
        ``critic`` is unknown or returns the wrong shape or NaN, or ``temperature``
        is not a positive finite number or so small that scores / temperature
        overflow float64.

    Examples
    --------
    Two orthonormal pairs under the dot critic: each term is −log(e / (e + 1)).

    >>> import numpy as np
    >>> from rpmref.testing import embedding_loss
    >>> loss = embedding_loss(np.eye(2), np.eye(2), "dot")
    >>> bool(abs(loss + np.log(np.e / (np.e + 1))) < 1e-15)
    True
    """
    if getattr(temperature, "shape", None) == () and hasattr(temperature, "item"):
        temperature = temperature.item()        # a 0-d torch tensor or jax array
    tau = 1.0 if temperature is None else check_real(temperature, "temperature", minimum=0.0,
                                                     inclusive=(False, True))
    scores = critic_scores(critic, z, z_prime)          # (B, B') with z and z' checked
    if scores.shape[0] != scores.shape[1]:
        raise ValueError(f"z and z_prime must hold the same number B of rows (the positive "
                         f"pairs (z_i, z'_i)); got shapes {np.shape(z)} and "
                         f"{np.shape(z_prime)}")
    with np.errstate(over="ignore"):
        logits = scores / tau
    overflowed = np.isinf(logits) & np.isfinite(scores)
    if overflowed.any():
        raise ValueError(
            f"temperature={tau!r} makes the logits scores / temperature overflow float64 "
            f"(|score| up to {float(np.max(np.abs(scores[np.isfinite(scores)]))):.3g}); "
            "use a larger temperature or smaller scores")
    return infonce_loss(logits)


__all__ = ["CRITICS", "check_logits", "check_embeddings", "infonce_loss", "infonce_loss_gradient", "critic_scores",
           "critic_vjp", "embedding_loss"]
