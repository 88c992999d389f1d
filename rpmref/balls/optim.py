"""SGD with momentum and Adam on flat dicts of parameter arrays.

Written out (rather than autograd.misc.optimizers) because the optimiser state
must be checkpointed and restored exactly for ``--resume``. ``init_state`` and
``step`` are pure: they return new dicts and never modify their arguments.
"""
import numpy as np

OPTIMIZERS = ("adam", "sgd")


def init_state(params, name):
    """Optimiser state for ``params`` (dict name → array): zero moments, step count 0."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    state = {"t": np.zeros((), dtype=np.int64)}
    for k, v in params.items():
        state["m/" + k] = np.zeros_like(v)
        if name == "adam":
            state["v/" + k] = np.zeros_like(v)
    return state


def step(params, grads, state, name, lr, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
    """One update; returns (new_params, new_state).

    sgd (heavy ball, as torch.optim.SGD): m ← μ m + g; θ ← θ − η m.
    adam (Kingma & Ba 2015, Alg. 1): m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    θ ← θ − η m̂ / (√v̂ + ε) with the bias corrections m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
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
