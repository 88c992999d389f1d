"""SGD with momentum and Adam on flat dicts of parameter arrays.

Written out (rather than autograd.misc.optimizers) because the optimiser state
must be checkpointed and restored exactly for ``--resume``. ``init_state`` and
``step`` are pure: they return new dicts and never modify their arguments.
"""
from collections.abc import Mapping

import numpy as np

from rpmref.exact.validation import check_real

OPTIMIZERS = ("adam", "sgd")


def _check_name(name):
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


def _check_dict(value, name):
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of arrays by name; got {type(value).__name__}")


def _check_step_dicts(params, grads, state, name):
    """Every parameter has a gradient of its shape and the state ``name`` keeps for it."""
    for arg, value in (("params", params), ("grads", grads), ("state", state)):
        _check_dict(value, arg)
    if "t" not in state:
        raise ValueError("state lacks 't' (the step count); make it with init_state")
    for k, p in params.items():
        if k not in grads:
            raise ValueError(f"grads lacks {k!r}: every parameter needs a gradient")
        if np.shape(grads[k]) != np.shape(p):
            raise ValueError(f"grads[{k!r}] has shape {np.shape(grads[k])}; params[{k!r}] "
                             f"has {np.shape(p)}")
        for moment in ("m/", "v/") if name == "adam" else ("m/",):
            if moment + k not in state:
                raise ValueError(f"state lacks {moment + k!r}; make it with "
                                 f"init_state(params, {name!r})")


def init_state(params, name):
    """Optimiser state for ``params``: zero moments, step count 0.

    Parameters
    ----------
    params : dict of ndarray
        Parameter arrays by name.
    name : {"adam", "sgd"}
        The optimiser.

    Returns
    -------
    dict of ndarray
        ``t`` (int64 step count), ``m/<name>`` (and for Adam ``v/<name>``) moments
        shaped and typed like each parameter.

    Raises
    ------
    ValueError
        For an unknown optimiser.
    TypeError
        If ``params`` is not a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.optim import init_state
    >>> sorted(init_state({"w": np.ones(2)}, "adam"))
    ['m/w', 't', 'v/w']
    """
    _check_name(name)
    _check_dict(params, "params")
    state = {"t": np.zeros((), dtype=np.int64)}
    for k, v in params.items():
        state["m/" + k] = np.zeros_like(v)
        if name == "adam":
            state["v/" + k] = np.zeros_like(v)
    return state


def step(params, grads, state, name, lr, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
    """One update; returns (new_params, new_state), never modifying its arguments.

    sgd (heavy ball, as torch.optim.SGD): m ← μ m + g; θ ← θ − η m.
    adam (Kingma & Ba 2015, Alg. 1): m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    θ ← θ − η m̂ / (√v̂ + ε) with the bias corrections m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).

    Parameters
    ----------
    params : dict of ndarray
        Parameters θ by name.
    grads : dict of ndarray
        Gradients g, the same keys.
    state : dict of ndarray
        From :func:`init_state` or a previous step.
    name : {"adam", "sgd"}
        The optimiser.
    lr : float
        η > 0.
    momentum : float, default 0.9
        μ ∈ [0, 1) (sgd).
    beta1 : float, default 0.9
        β₁ ∈ [0, 1) (adam; 1 would divide by 1 − β₁ᵗ = 0).
    beta2 : float, default 0.999
        β₂ ∈ [0, 1) (adam).
    eps : float, default 1e-8
        ε > 0 (adam; 0 makes the step of a zero gradient 0/0).

    Returns
    -------
    new_params : dict of ndarray
        The updated parameters (each in its own dtype).
    new_state : dict of ndarray
        The updated state.

    Raises
    ------
    ValueError
        For an unknown optimiser, a number outside its interval or not finite, a
        parameter without a gradient of its shape, or ``state`` without its moments.
    TypeError
        If a number is not real (bool and strings included) or a dict is not a dict.

    Examples
    --------
    The first Adam step moves every parameter by η (m̂ / √v̂ = sign g):

    >>> import numpy as np
    >>> from rpmref.balls.optim import init_state, step
    >>> params = {"w": np.array([1.0])}
    >>> new, state = step(params, {"w": np.array([0.5])}, init_state(params, "adam"), "adam", lr=0.1)
    >>> new["w"], int(state["t"])
    (array([0.9]), 1)
    """
    _check_name(name)
    lr = check_real(lr, "lr", minimum=0, inclusive=(False, True))
    momentum = check_real(momentum, "momentum", minimum=0, maximum=1, inclusive=(True, False))
    beta1 = check_real(beta1, "beta1", minimum=0, maximum=1, inclusive=(True, False))
    beta2 = check_real(beta2, "beta2", minimum=0, maximum=1, inclusive=(True, False))
    eps = check_real(eps, "eps", minimum=0, inclusive=(False, True))
    _check_step_dicts(params, grads, state, name)
    t = int(state["t"]) + 1
    new_params, new_state = {}, {"t": np.asarray(t, dtype=np.int64)}
    for k, p in params.items():
        g = grads[k]
        if name == "sgd":
            m = momentum * state["m/" + k] + g
            new_params[k] = (p - lr * m).astype(p.dtype)
            new_state["m/" + k] = m.astype(p.dtype)
        elif name == "adam":
            m = beta1 * state["m/" + k] + (1 - beta1) * g
            v = beta2 * state["v/" + k] + (1 - beta2) * g * g
            m_hat = m / (1 - beta1 ** t)
            v_hat = v / (1 - beta2 ** t)
            new_params[k] = (p - lr * m_hat / (np.sqrt(v_hat) + eps)).astype(p.dtype)
            new_state["m/" + k] = m.astype(p.dtype)
            new_state["v/" + k] = v.astype(p.dtype)
    return new_params, new_state
