"""SGD with momentum and Adam on flat dicts of parameter arrays.

Written out (rather than autograd.misc.optimizers) because the optimiser state
must be checkpointed and restored exactly for ``--resume``. ``init_state`` and
``step`` are pure: they return new dicts and never modify their arguments.
"""
import numpy as np

OPTIMIZERS = ("adam", "sgd")


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

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.optim import init_state
    >>> sorted(init_state({"w": np.ones(2)}, "adam"))
    ['m/w', 't', 'v/w']
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
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
        η.
    momentum : float, default 0.9
        μ (sgd).
    beta1 : float, default 0.9
        β₁ (adam).
    beta2 : float, default 0.999
        β₂ (adam).
    eps : float, default 1e-8
        ε (adam).

    Returns
    -------
    new_params : dict of ndarray
        The updated parameters (each in its own dtype).
    new_state : dict of ndarray
        The updated state.

    Raises
    ------
    ValueError
        For an unknown optimiser.

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
        else:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return new_params, new_state
