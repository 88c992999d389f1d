"""Learning an encoder from scratch: which objective finds the topographic code?

The encoder is a softmax table, P(z | x) = softmax(logits[x]) (logits (n, k), formed
as exp(log_softmax) so no probability is a ratio of overflowing exponentials), the
*same* encoder for x and x' (shared weights, as in the balls experiment; P(x, x') is
symmetric, so the two frames are exchangeable). It is trained by gradient ascent
(autograd + Adam) from random logits N(0, ``init_scale``²) drawn from the seed, on one of:

* ``mi``      — I(Z; Z') of the recognition joint: the ELBO with the optimal prior
                (Eq. 17–20), blind to labels (``rpmref.structure.relabel``);
* ``local``   — I_∞ (Eq. 7) with the local critic f = −d(z, z')²/(2ℓ²) (Eq. 27) and a
                learned log ℓ: the ELBO with that critic's energy prior (E5);
* ``table``   — I_∞ with an unrestricted learned critic table f (k, k), initialised at 0;
                its optimum is the optimal critic, where I_∞ = I (E6), so it is MI again;
* ``sampled`` — the finite-batch InfoNCE of Eq. 6 as one would train it: each step a
                fresh batch of N data pairs (x_i, x'_i) ~ P(x, x') (seeded), the critic
                between codes taken in expectation under the encoder,
                f̄(x, x') = Σ_{z,z'} P(z|x) P(z'|x') f(z, z'), with the local f and a learned ℓ;
                objective log N + (1/N) Σ_i [f̄(x_i, x'_i) − log Σ_j e^{f̄(x_i, x'_j)}].

After training every run is scored the same way: the MI reached, I_∞ with the local
critic at its best ℓ (``relabel.LENGTHSCALES``, refined), and the topography scores
with their random-relabelling baselines (``rpmref.structure.topography``).
"""
from dataclasses import asdict, dataclass

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad
from autograd.misc.flatten import flatten

from rpmref.exact import infonce_limit, mutual_information, recognition_joint
from rpmref.exact.discrete import MAX_TENSOR_ELEMENTS
from rpmref.exact.numerics import log_softmax, logsumexp
from rpmref.exact.validation import check_choice, check_int, check_pmf, check_real, check_seed
from rpmref.structure.geometry import check_geometry
from rpmref.structure.relabel import LENGTHSCALES, _best_lengthscales
from rpmref.structure.topography import (
    MAX_BASELINE_SAMPLES, _check as check_scored, _check_samples, check_kinds, relabelling_baseline, topography_scores)

OBJECTIVES = ("mi", "local", "table", "sampled")


@dataclass(frozen=True)
class LearnConfig:
    """Settings of one training run (the defaults are those of ``rpmref structure``).

    Checked when built (frozen dataclass).

    Parameters
    ----------
    steps : int, default 300
        Adam steps (≥ 1).
    learning_rate : float, default 0.1
        Adam step size (> 0; Kingma & Ba 2015).
    init_scale : float, default 1.0
        The sd of the initial logits (≥ 0).
    batch_size : int, default 64
        N of the ``sampled`` objective (≥ 2); ``train_encoder`` with that objective
        needs steps × batch_size ≤ ``MAX_TENSOR_ELEMENTS`` (the pairs drawn for the run).
    baseline_samples : int, default 200
        Random relabellings averaged for the correlation baselines, in
        [1, ``MAX_BASELINE_SAMPLES``] (100,000).

    Raises
    ------
    ValueError
        A field out of its range.
    TypeError
        A field of the wrong type (bool and floats refused for the integers).

    Examples
    --------
    >>> from rpmref.structure import LearnConfig
    >>> LearnConfig().steps, LearnConfig(steps=20).steps
    (300, 20)
    >>> LearnConfig(batch_size=1)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be ... got 1
    """
    steps: int = 300            # Adam steps
    learning_rate: float = 0.1  # Adam step size (Kingma & Ba 2015)
    init_scale: float = 1.0     # sd of the initial logits
    batch_size: int = 64        # N of the "sampled" objective
    baseline_samples: int = 200  # random relabellings averaged for the correlation baselines

    def __post_init__(self):
        check_int(self.steps, "steps", minimum=1)
        check_real(self.learning_rate, "learning_rate", minimum=0.0, inclusive=(False, True))
        check_real(self.init_scale, "init_scale", minimum=0.0)
        check_int(self.batch_size, "batch_size", minimum=2)
        check_int(self.baseline_samples, "baseline_samples", minimum=1,
                  maximum=MAX_BASELINE_SAMPLES)


def encoder(logits):
    """The softmax encoder P(z | x) = exp(log_softmax(logits[x])), row by row.

    Differentiable by autograd (used inside the training objectives).

    Parameters
    ----------
    logits : array_like, shape (n, k)

    Returns
    -------
    ndarray, shape (n, k)
        Rows are pmfs.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure.learning import encoder
    >>> encoder(np.zeros((2, 4)))                    # equal logits: uniform rows
    array([[0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25]])
    >>> bool(np.allclose(encoder(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]]))
    True
    """
    return anp.exp(log_softmax(logits, axis=1))


def _local(sq_dist, log_l):
    return -sq_dist * anp.exp(-2.0 * log_l) / 2.0        # −d²/(2ℓ²), ℓ = e^{log ℓ}


def _objective(kind, p_xx, sq_dist, batches):
    """objective(params, step) for autograd; params = {"logits", "log_l", "table"}."""
    def value(params, step):
        enc = encoder(params["logits"])
        if kind == "sampled":
            x, x_prime = batches(step)
            f_bar = anp.matmul(anp.matmul(enc[x], _local(sq_dist, params["log_l"])),
                               anp.transpose(enc[x_prime]))                  # (N, N)
            return np.log(x.size) + anp.mean(anp.diag(f_bar) - logsumexp(f_bar, axis=1))
        p_zz = recognition_joint(p_xx, enc, enc)
        if kind == "mi":
            return mutual_information(p_zz)
        critic = _local(sq_dist, params["log_l"]) if kind == "local" else params["table"]
        return infonce_limit(p_zz, critic)
    return value


def _adam(value_and_gradient, params, steps, rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba 2015) *ascent* on a flat vector; returns it and the objective trace."""
    m, v = np.zeros_like(params), np.zeros_like(params)
    trace = []
    for t in range(steps):
        # Overflow on the way is judged by its result (a non-finite value, gradient or
        # parameter is an error below), not announced by NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            value, g = value_and_gradient(params, t)
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            raise FloatingPointError(f"non-finite objective or gradient at step {t}: {value}")
        trace.append(float(value))
        with np.errstate(over="ignore", invalid="ignore"):
            m = b1 * m + (1 - b1) * g                       # first moment
            v = b2 * v + (1 - b2) * g ** 2                  # second moment
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))  # bias corrections
            params = params + rate * m_hat / (np.sqrt(v_hat) + eps)
        if not np.all(np.isfinite(params)):
            raise FloatingPointError(f"the parameters overflowed at step {t} (rate {rate:g})")
    return params, trace


def train_encoder(data_geo, latent_geo, p_xx, objective, seed, config=LearnConfig()):
    """Train the shared softmax encoder on ``objective`` from the random start of ``seed``.

    Gradient ascent (autograd + Adam) on one of ``OBJECTIVES`` (the module docstring):
    ``mi`` (I(Z; Z'), Eq. 17–20), ``local`` (I_∞ with the local critic, Eq. 7, 27, and a
    learned ℓ), ``table`` (I_∞ with a learned critic table) or ``sampled`` (the
    finite-batch InfoNCE of Eq. 6 with the local critic). Then scored by ``evaluate``.
    The same seed gives the same run (start, batches and baseline relabellings).

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states.
    p_xx : array_like, shape (n, n)
        The data pmf P(x, x').
    objective : {'mi', 'local', 'table', 'sampled'}
    seed : int
        Seed of the initial logits, the batches and the baseline relabellings.
    config : LearnConfig, default LearnConfig()

    Returns
    -------
    dict
        ``objective``, ``seed``, ``enc`` (n, k) the trained P(z | x), ``trace`` (the
        objective at each step, before its update, nats) and the keys of ``evaluate``:
        ``mi``, ``i_inf``, ``lengthscale``, ``scores`` and ``baseline``.

    Raises
    ------
    ValueError
        ``objective`` unknown, ``p_xx`` not a pmf of shape (n, n), an invalid seed,
        ``data_geo`` a line and ``latent_geo`` not, or for ``sampled``
        config.steps × config.batch_size beyond ``MAX_TENSOR_ELEMENTS`` (checked before
        training).
    TypeError
        ``objective`` not a string or ``seed`` of the wrong type.
    FloatingPointError
        A non-finite objective or gradient during training.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import LearnConfig, data_pmf, geometry, train_encoder
    >>> data, latent = geometry("line", 4), geometry("line", 2)
    >>> config = LearnConfig(steps=30, baseline_samples=10)
    >>> run = train_encoder(data, latent, data_pmf(data), "mi", seed=0, config=config)
    >>> run["enc"].shape, len(run["trace"])
    ((4, 2), 30)
    >>> bool(0 <= run["mi"] <= np.log(2))            # I(Z; Z') ≤ H(Z) ≤ log k
    True
    >>> again = train_encoder(data, latent, data_pmf(data), "mi", seed=0, config=config)
    >>> np.array_equal(run["enc"], again["enc"])     # reproducible from the seed
    True
    """
    data_geo, latent_geo = check_geometry(data_geo, "data_geo"), check_geometry(latent_geo, "latent_geo")
    check_kinds(data_geo, latent_geo)
    objective = check_choice(objective, "objective", OBJECTIVES)
    seed = check_seed(seed, "seed")
    if not isinstance(config, LearnConfig):
        raise TypeError(f"config must be a LearnConfig, got {type(config).__name__}")
    p_xx = np.asarray(check_pmf(p_xx, "p_xx", ndim=2))
    if p_xx.shape != (data_geo.n, data_geo.n):
        raise ValueError(f"p_xx must be ({data_geo.n}, {data_geo.n}) for data_geo, got {p_xx.shape}")
    if objective == "sampled" and config.steps * config.batch_size > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"config.steps × config.batch_size must be <= MAX_TENSOR_ELEMENTS = "
                         f"{MAX_TENSOR_ELEMENTS} for the sampled objective (the pairs drawn for "
                         f"the run), got {config.steps} × {config.batch_size}")
    n, k = data_geo.n, latent_geo.n
    # the three children that SeedSequence(seed).spawn(3) gives, formed without spawn:
    # it would fail on a SeedSequence seed, and advance one the caller passes again
    base = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    start_rng, batch_rng, baseline_rng = [
        np.random.default_rng(np.random.SeedSequence(base.entropy, pool_size=base.pool_size,
                                                     spawn_key=base.spawn_key + (i,)))
        for i in range(3)]
    start = {"logits": config.init_scale * start_rng.standard_normal((n, k)),
             "log_l": np.array(0.0), "table": np.zeros((k, k))}
    flat, unflatten = flatten(start)
    # Batches only for the sampled objective: the others would hold steps × N unused draws.
    pairs = (batch_rng.choice(n * n, size=(config.steps, config.batch_size), p=p_xx.ravel())
             if objective == "sampled" else None)

    def batches(step):
        return np.divmod(pairs[step], n)             # (x_i), (x'_i), N each
    value = _objective(objective, p_xx, latent_geo.distance ** 2, batches)
    grad_fn = value_and_grad(lambda w, step: value(unflatten(w), step))
    flat, trace = _adam(grad_fn, flat, config.steps, config.learning_rate)
    enc = np.asarray(encoder(unflatten(flat)["logits"]))
    return {"objective": objective, "seed": seed, "enc": enc, "trace": trace,
            **evaluate(data_geo, latent_geo, p_xx, enc, config.baseline_samples, baseline_rng)}


def evaluate(data_geo, latent_geo, p_xx, enc, baseline_samples=200, rng=None):
    """Score an encoder: MI, I_∞ of the local critic at its best ℓ, the topography scores
    and their random-relabelling baselines.

    Parameters
    ----------
    data_geo : Geometry
        n data states.
    latent_geo : Geometry
        k latent states.
    p_xx : array_like, shape (n, n)
        The data pmf P(x, x').
    enc : array_like, shape (n, k)
        P(z | x), shared by x and x'.
    baseline_samples : int, default 200
        Random relabellings for the correlation baselines (as ``samples`` of
        ``relabelling_baseline``: at most ``MAX_BASELINE_SAMPLES``, and samples × n² ≤
        ``MAX_BASELINE_WORK``).
    rng : numpy.random.Generator, optional
        Their source (default ``numpy.random.default_rng(0)``).

    Returns
    -------
    dict
        ``mi`` (``rpmref.mutual_information``, nats), ``i_inf`` (``rpmref.infonce_limit``
        with the local critic, Eq. 7, 27, nats), ``lengthscale`` (the best ℓ over
        ``LENGTHSCALES``, refined), ``scores`` (``topography_scores``) and ``baseline``
        (``relabelling_baseline``).

    Raises
    ------
    ValueError
        ``p_xx`` or ``enc`` not valid tables of matching shapes (``enc`` (n, k) for the
        two geometries), ``data_geo`` a line and ``latent_geo`` not, or
        ``baseline_samples`` out of its range (refused before any work).
    TypeError
        ``baseline_samples`` not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import coarse_encoder, data_pmf, evaluate, geometry
    >>> data, latent = geometry("line", 4), geometry("line", 2)
    >>> result = evaluate(data, latent, data_pmf(data), coarse_encoder(data, latent), 10)
    >>> # P(z, z') = [[7/16, 1/16], [1/16, 7/16]], marginals ½: I = Σ p log(p / ¼)
    >>> by_hand = 2 * (7 / 16) * np.log(7 / 4) + 2 * (1 / 16) * np.log(1 / 4)
    >>> bool(np.isclose(result["mi"], by_hand))
    True
    >>> # two states: −1/(2ℓ²) can equal the PMI difference, so at the best ℓ I_∞ = I (E6)
    >>> bool(np.isclose(result["i_inf"], result["mi"], rtol=0, atol=1e-14))
    True
    >>> result["scores"]["neighbour_fraction"]
    1.0
    """
    check_kinds(data_geo, latent_geo)
    enc = check_scored(data_geo, latent_geo, enc)
    _check_samples(baseline_samples, "baseline_samples", data_geo.n)
    p_zz = np.asarray(recognition_joint(p_xx, enc, enc))
    sq_dist = latent_geo.distance ** 2
    best, _ = _best_lengthscales(p_zz, sq_dist, np.arange(latent_geo.n)[None, :], LENGTHSCALES)
    return {"mi": float(mutual_information(p_zz)),
            "i_inf": float(infonce_limit(p_zz, _local(sq_dist, np.log(best[0])))),
            "lengthscale": float(best[0]),
            "scores": topography_scores(data_geo, latent_geo, enc),
            "baseline": relabelling_baseline(data_geo, latent_geo, enc, baseline_samples,
                                             rng=rng if rng is not None else np.random.default_rng(0))}


SUMMARY_KEYS = ("mi", "i_inf", "neighbour_fraction", "distance_correlation",
                "position_correlation")


def _flat(run):
    out = {"mi": run["mi"], "i_inf": run["i_inf"], **run["scores"]}
    out.update({f"baseline_{k}": v for k, v in run["baseline"].items()})
    return out


def summarise(runs):
    """Mean and sd over runs, per objective, of ``SUMMARY_KEYS`` and their baselines.

    Parameters
    ----------
    runs : list of dict
        Runs as returned by ``train_encoder`` (the keys ``objective``, ``mi``, ``i_inf``,
        ``scores`` and ``baseline`` are used).

    Returns
    -------
    dict
        {objective: {key: {"mean", "sd"} or None, "runs": count}} for each objective of
        ``OBJECTIVES`` with runs; sd with ddof = 1 (0 for a single run); None where a
        score does not apply (``position_correlation`` off a line). The baseline keys are
        prefixed ``baseline_``.

    Raises
    ------
    KeyError
        A run without the keys above.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import summarise
    >>> def run(mi):
    ...     scores = {"neighbour_fraction": 1.0, "distance_correlation": 0.5,
    ...               "position_correlation": None}
    ...     return {"objective": "mi", "mi": mi, "i_inf": 0.1, "scores": scores,
    ...             "baseline": scores}
    >>> out = summarise([run(0.5), run(0.7)])["mi"]
    >>> out["runs"], out["position_correlation"]
    (2, None)
    >>> bool(np.isclose(out["mi"]["mean"], 0.6) and np.isclose(out["mi"]["sd"], np.sqrt(0.02)))
    True
    """
    out = {}
    for objective in OBJECTIVES:
        rows = [_flat(r) for r in runs if r["objective"] == objective]
        if not rows:
            continue
        out[objective] = {}
        for key in rows[0]:
            values = [r[key] for r in rows]
            if any(v is None for v in values):
                out[objective][key] = None
                continue
            values = np.asarray(values, dtype=float)
            sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
            out[objective][key] = {"mean": float(values.mean()), "sd": sd}
        out[objective]["runs"] = len(rows)
    return out


__all__ = ["OBJECTIVES", "LearnConfig", "encoder", "train_encoder", "evaluate", "summarise",
           "SUMMARY_KEYS"]
