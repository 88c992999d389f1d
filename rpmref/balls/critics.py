"""Critics f(z, z') on a batch and the in-batch InfoNCE loss (paper Eq. 6, 8, 27).

Every critic is a pure function ``critic(params, z, z_prime) -> scores`` with
z, z_prime (B, D) and scores (B, B), scores[i, j] = f(z_i, z'_j). Its learned
parameters live in ``params`` under the names listed in ``CRITIC_PARAMS``;
``init_critic_params`` creates them.

The trainer feeds the critics normalised coordinates u = z / S − ½ (S the frame
side in pixels), so that one set of initial values suits every frame size; see
README.md, "Training the encoder".
"""
from collections.abc import Mapping

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval, isbox

from rpmref.exact.numerics import logsumexp
from rpmref.exact.validation import check_float_dtype, check_generator, check_int

CRITICS = ("rbf", "bilinear", "cosine")
CRITIC_PARAMS = {"rbf": ("critic_log_lengthscale",), "bilinear": ("critic_W",),
                 "cosine": ("critic_log_temperature",)}
COSINE_EPS = 1e-12  # keeps ‖z‖ > 0 in the cosine critic's denominator


def _check_batches(params, key, z, z_prime):
    """``params[key]`` exists and z, z' are (B, D), (B', D) arrays (or autograd boxes of
    them): one line naming what is wrong, not an error from inside autograd."""
    if not isinstance(getval(params), Mapping):  # (a DictBox under autograd)
        raise TypeError(f"params must be a dict of arrays; got {type(params).__name__}")
    if key not in getval(params):
        raise ValueError(f"params lacks {key} (init_critic_params makes it)")
    for name, a in (("z", z), ("z_prime", z_prime)):
        if not isinstance(getval(a), np.ndarray):
            raise TypeError(f"{name} must be an array (B, D); got {type(getval(a)).__name__}")
    shape, shape_prime = getval(z).shape, getval(z_prime).shape
    if len(shape) != 2 or len(shape_prime) != 2 or shape[1] != shape_prime[1]:
        raise ValueError(f"z and z_prime must be (B, D) batches of one D; got shapes {shape} "
                         f"and {shape_prime}")
    return shape[1]


def _check_log_scale(params, key, factor, what):
    """``params[key]`` finite and ``factor(params[key])`` (the critic's scale, e^{−2 log ℓ}
    or e^{−log τ}) finite: an infinite scale times a score of 0 (z = z', where the RBF
    distance is exactly 0) is 0·∞ = NaN, and the loss NaN. Not while autograd traces the
    parameters (training): there a step that drove the scale past float64 is a divergence,
    which the trainer reports from the non-finite loss (NonFiniteLossError, naming the step)."""
    if isbox(params[key]):
        return
    value = np.asarray(params[key])
    with np.errstate(over="ignore"):
        scale = factor(value)
    if not np.all(np.isfinite(value)) or not np.all(np.isfinite(scale)):
        raise ValueError(f"params['{key}'] must be finite and large enough for {what} to be "
                         f"finite in float64 (a score of 0, as for z = z' with rbf, would be "
                         f"0·∞ = NaN); got {value.tolist()}")


def bilinear(params, z, z_prime):
    """f(z, z') = zᵀ W z' (Eq. 8); W (D, D) = params["critic_W"].

    Parameters
    ----------
    params : dict of ndarray
        The critic's parameters (``critic_W``).
    z : array_like, shape (B, D)
        Anchors.
    z_prime : array_like, shape (B, D)
        Candidates.

    Returns
    -------
    ndarray, shape (B, B)
        scores[i, j] = f(z_i, z'_j).

    Raises
    ------
    ValueError
        If z and z_prime are not (B, D) batches of one D, or ``params`` lacks the
        critic's parameter or its W is not (D, D).
    TypeError
        If z or z_prime is not an array, or ``params`` not a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.critics import bilinear
    >>> z = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> bilinear({"critic_W": np.eye(2)}, z, z)
    array([[0., 0.],
           [0., 1.]])
    """
    d = _check_batches(params, "critic_W", z, z_prime)
    if np.shape(getval(params["critic_W"])) != (d, d):
        raise ValueError(f"params['critic_W'] must be (D, D) = ({d}, {d}); got "
                         f"{np.shape(getval(params['critic_W']))}")
    return anp.matmul(anp.matmul(z, params["critic_W"]), anp.transpose(z_prime))


def rbf(params, z, z_prime):
    """f(z, z') = −‖z − z'‖² / (2ℓ²) (Eq. 27), ℓ = exp(params["critic_log_lengthscale"]).

    ‖z − z'‖² is expanded as ‖z‖² + ‖z'‖² − 2 zᵀz' (one matmul, (B, B)).

    Parameters
    ----------
    params : dict of ndarray
        The critic's parameters (``critic_log_lengthscale``).
    z : array_like, shape (B, D)
        Anchors.
    z_prime : array_like, shape (B, D)
        Candidates.

    Returns
    -------
    ndarray, shape (B, B)
        scores[i, j] = f(z_i, z'_j).

    Raises
    ------
    ValueError
        If z and z_prime are not (B, D) batches of one D, or ``params`` lacks the
        critic's parameter, or its log scale is not finite or so negative that the
        scale factor (1/ℓ² or 1/τ) overflows float64 (an identical pair would score
        0·∞ = NaN).
    TypeError
        If z or z_prime is not an array, or ``params`` not a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.critics import rbf
    >>> z = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> rbf({"critic_log_lengthscale": np.array(0.0)}, z, z) + 0.0
    array([[ 0. , -0.5],
           [-0.5,  0. ]])
    """
    _check_batches(params, "critic_log_lengthscale", z, z_prime)
    _check_log_scale(params, "critic_log_lengthscale", lambda v: np.exp(-2 * v), "1/ℓ²")
    sq = (anp.sum(z ** 2, axis=1)[:, None] + anp.sum(z_prime ** 2, axis=1)[None, :]
          - 2 * anp.matmul(z, anp.transpose(z_prime)))
    return -sq * (0.5 * anp.exp(-2 * params["critic_log_lengthscale"]))


def cosine(params, z, z_prime):
    """f(z, z') = cos(z, z') / τ, the SimCLR critic; τ = exp(params["critic_log_temperature"]).

    The norms are regularised as √(‖z‖² + ``COSINE_EPS``), so zero rows give 0.

    Parameters
    ----------
    params : dict of ndarray
        The critic's parameters (``critic_log_temperature``).
    z : array_like, shape (B, D)
        Anchors.
    z_prime : array_like, shape (B, D)
        Candidates.

    Returns
    -------
    ndarray, shape (B, B)
        scores[i, j] = f(z_i, z'_j).

    Raises
    ------
    ValueError
        If z and z_prime are not (B, D) batches of one D, or ``params`` lacks the
        critic's parameter, or its log scale is not finite or so negative that the
        scale factor (1/ℓ² or 1/τ) overflows float64 (an identical pair would score
        0·∞ = NaN).
    TypeError
        If z or z_prime is not an array, or ``params`` not a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.critics import cosine
    >>> cosine({"critic_log_temperature": np.array(0.0)}, np.eye(2), 3 * np.eye(2)).round(12)
    array([[1., 0.],
           [0., 1.]])
    """
    _check_batches(params, "critic_log_temperature", z, z_prime)
    _check_log_scale(params, "critic_log_temperature", lambda v: np.exp(-v), "1/τ")

    def unit(a):
        return a / anp.sqrt(anp.sum(a ** 2, axis=1, keepdims=True) + COSINE_EPS)
    return (anp.matmul(unit(z), anp.transpose(unit(z_prime)))
            * anp.exp(-params["critic_log_temperature"]))


def get_critic(name):
    """The critic function called ``name``.

    Parameters
    ----------
    name : {"rbf", "bilinear", "cosine"}
        One of ``CRITICS``.

    Returns
    -------
    callable
        ``critic(params, z, z_prime) -> scores``.

    Raises
    ------
    ValueError
        For an unknown name.

    Examples
    --------
    >>> from rpmref.balls.critics import get_critic
    >>> get_critic("rbf").__name__
    'rbf'
    """
    if name not in CRITICS:
        raise ValueError(f"critic must be one of {', '.join(CRITICS)}; got {name!r}")
    return {"rbf": rbf, "bilinear": bilinear, "cosine": cosine}[name]


def init_critic_params(name, dim=6, rng=None, dtype=np.float64):
    """Initial critic parameters for normalised coordinates u ∈ [−½, ½]^D.

    rbf: ℓ = 0.1 (a tenth of the frame side); bilinear: W = 4·I (scores of order 1);
    cosine: τ = 0.1 (SimCLR's usual temperature).

    Parameters
    ----------
    name : {"rbf", "bilinear", "cosine"}
        The critic.
    dim : int, default 6
        D ≥ 1, the latent dimension (bilinear's W is D × D).
    rng : numpy.random.Generator, optional
        Accepted for symmetry and unused: these initial values are deterministic.
    dtype : numpy dtype, default float64
        The parameters' dtype, a floating-point one.

    Returns
    -------
    dict of ndarray
        The parameters under the names of ``CRITIC_PARAMS[name]``.

    Raises
    ------
    ValueError
        For an unknown critic, ``dim`` < 1 or a ``dtype`` that is not floating point.
    TypeError
        If ``dim`` is not an integer (bool and 6.0 included), ``rng`` is neither None
        nor a Generator, or ``dtype`` is not a dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.critics import init_critic_params
    >>> params = init_critic_params("rbf")
    >>> round(float(np.exp(params["critic_log_lengthscale"])), 15)
    0.1
    """
    get_critic(name)
    dim = check_int(dim, "dim", minimum=1)
    check_generator(rng, "rng", optional=True)
    dtype = check_float_dtype(dtype, why="log 0.1 and 4·I are not integers")
    if name == "rbf":
        return {"critic_log_lengthscale": np.asarray(np.log(0.1), dtype=dtype)}
    if name == "bilinear":
        return {"critic_W": (4.0 * np.eye(dim)).astype(dtype)}
    return {"critic_log_temperature": np.asarray(np.log(0.1), dtype=dtype)}


def infonce_loss(scores):
    """In-batch InfoNCE loss and estimate from a (B, B) score matrix (Eq. 6, N = B).

    loss = −(1/B) Σ_i [ scores[i, i] − logsumexp_j scores[i, j] ]  (row-wise log-softmax,
    positives on the diagonal), estimate = log B − loss ≤ log B. A constant critic
    gives loss = log B, estimate = 0 exactly. Differentiable by autograd.

    Parameters
    ----------
    scores : ndarray or autograd box, shape (B, B)
        Real scores[i, j] = f(z_i, z'_j), B ≥ 1. A positive scored −∞ makes the
        loss +∞; NaN scores give a NaN loss (the trainer stops on it).

    Returns
    -------
    loss : float or autograd box
        The loss, in nats.
    estimate : float or autograd box
        log B − loss, in nats.

    Raises
    ------
    ValueError
        If ``scores`` is not a square matrix with B ≥ 1.
    TypeError
        If ``scores`` is not real (bool, complex, strings).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.critics import infonce_loss
    >>> loss, estimate = infonce_loss(np.zeros((4, 4)))
    >>> float(loss) == float(np.log(4)), float(estimate)
    (True, 0.0)
    """
    shape = getattr(scores, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1] or shape[0] < 1:
        raise ValueError(f"scores must be a square (B, B) matrix with B ≥ 1; got shape {shape}")
    kind = np.asarray(getval(scores)).dtype.kind
    if kind not in "iuf":
        raise TypeError(f"scores must be real numbers; got dtype {np.asarray(getval(scores)).dtype}")
    b = shape[0]
    # shift each row by its (finite) maximum first, so that s_ii − logsumexp_j s_ij is formed
    # from O(1) numbers without cancellation; a constant row gives exactly −log B
    row_max = getval(anp.max(scores, axis=1, keepdims=True))
    with np.errstate(over="ignore"):  # s − max below −1.8e308 (−1e308 − 1e308): −inf, weight 0
        shifted = scores - np.where(np.isfinite(row_max), row_max, 0.0)
    d = anp.diagonal(shifted, 0, -1, -2) - logsumexp(shifted, axis=1)  # (B,) log-softmax of positives
    # averaging d − d₀ rather than d: for a constant critic every d_i is exactly −log B,
    # so the loss is then exactly log B (a plain mean of B copies can be off by an ulp)
    # (only when d₀ is finite: a positive scored −∞ has d₀ = −∞, and d − d₀ would be NaN)
    ref = d[0] if np.isfinite(getval(d[0])) else 0.0
    loss = -(anp.mean(d - ref) + ref)
    return loss, np.log(b) - loss
