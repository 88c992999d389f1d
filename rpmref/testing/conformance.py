"""``check_infonce``: is a user's InfoNCE loss the exact in-batch loss, and if not, which mistake?

The function is called on ``trials`` seeded cases (``cases``) and its values are
compared with the exact loss (``reference.infonce_loss``) and with the value of each
known mistake (``diagnoses``). It conforms when it matches the exact loss on every
case and, where the framework differentiates it, its gradient matches
(softmax(L) − I) / B chained through the temperature (and the critic).

Tolerance, per case: |yours − exact| ≤ 8 ε (B + D + 1) max(1, max |L|), with ε the
machine epsilon of the dtype the function returned (float32 results get float32's;
a longdouble result float64's, the precision of the reference it is compared with).
A float16, bfloat16 or float8 result is not checked: with their ε (9.8e-4, 7.8e-3,
0.125 or 0.25) that bound
reaches nats at B = 16, more than several mistakes differ from the exact loss, so it
is diagnosed "half-precision" instead of passed.
Why: each log-sum-exp of B terms is accurate to about (B + 1) ε relative, rounding
the inputs and logits costs ε max|L| (the loss is 2-Lipschitz in max-norm of L), a
D-term dot product D ε, and 8 is headroom. For float64 at B = 16, |L| = 1000 that is
3e-11 nats; on the default cases every two mistakes differ by more than 0.1 nats on
some ordinary case (tests/test_testing.py checks this).
Gradients are compared relative to their natural scale (1/(Bτ) times the critic's
Jacobian size) with the same tolerance.
"""
import functools
import numbers
from dataclasses import dataclass, field

import numpy as np

from rpmref.exact.validation import check_bool, check_positive_int
from rpmref.testing import adapters
from rpmref.testing.cases import make_cases
from rpmref.testing.diagnoses import DIAGNOSES, TRANSFORMATIONS, applicable, transformation_value
from rpmref.testing.reference import CRITICS, critic_vjp, infonce_loss, infonce_loss_gradient

KINDS = ("scores", "embeddings")
TOLERANCE_FACTOR = 8.0
#: Parameter names (compared without surrounding underscores, case-insensitively) that
#: receive the temperature by name.
TEMPERATURE_NAMES = ("temperature", "tau", "temp", "t", "τ")
#: Largest ``trials``: each case is a batch of 2-16 rows (a few ms with a NumPy loss,
#: more with torch), and its row of the report is kept; 10000 cases are minutes.
MAX_TRIALS = 10_000
#: The temperatures accepted, far beyond those in use (1e-3 to 1e3): within them every
#: case's scores L·τ (|L| up to ~1e4) and logits, and the logits L·τ² of the
#: temperature-inverted mistake, are finite normal float64 numbers (at τ = 1e160 they
#: overflowed, and every wrong loss was a ValueError from the check itself).
TEMPERATURE_RANGE = (1e-100, 1e100)


@dataclass(frozen=True)
class CaseResult:
    """One case of :func:`check_infonce`.

    Parameters
    ----------
    index : int
        The case's position.
    label : str
        What the case tests.
    batch_size : int
        B of the case.
    reference : float
        The exact loss, in nats.
    value : float
        Yours, in nats.
    error : float
        |value − reference|.
    tolerance : float
        The derived tolerance the error is held to.
    diagnosed : float, optional
        The value a diagnosed mistake predicts.
    gradient_error : float, optional
        The gradient's relative error (when the values conform and a gradient was checked).

    Examples
    --------
    >>> from rpmref.testing import check_infonce, infonce_loss
    >>> case = check_infonce(infonce_loss).results[0]
    >>> case.label, case.error <= case.tolerance
    ('ordinary', True)
    """
    index: int
    label: str
    batch_size: int
    reference: float
    value: float
    error: float
    tolerance: float
    diagnosed: float | None = None
    gradient_error: float | None = None


@dataclass(frozen=True)
class ConformanceReport:
    """The outcome of :func:`check_infonce`; ``str(report)`` is a readable table.

    Parameters
    ----------
    passed : bool
        Whether the loss is the exact in-batch InfoNCE loss (values and, when
        checked, gradients).
    diagnosis : str or None
        None when passed, else a code of ``DIAGNOSES``.
    max_error : float
        The largest |yours − exact| over the cases, in nats (nan if a value was nan).
    cases : int
        How many cases were run.
    kind : {"scores", "embeddings"}, default "scores"
        What the checked function takes.
    framework : {"numpy", "torch", "jax"}, default "numpy"
        The framework the function was called with.
    framework_reason : str, default ""
        Why that framework was chosen.
    temperature : float, optional
        The temperature τ of an embedding loss.
    critic : str, optional
        The critic of an embedding loss.
    gradient : str, default "not checked"
        The outcome of the gradient check.
    max_gradient_error : float, optional
        The largest relative gradient error.
    eps : float, default float64 eps
        Machine epsilon of the dtype the values were compared in.
    notes : tuple of str, default ()
        Remarks printed under the table.
    results : tuple of CaseResult, default ()
        One result per case.

    Examples
    --------
    >>> from rpmref.testing import check_infonce, infonce_loss
    >>> report = check_infonce(infonce_loss)
    >>> report.passed, report.diagnosis, report.max_error
    (True, None, 0.0)
    """
    passed: bool
    diagnosis: str | None
    max_error: float
    cases: int
    kind: str = "scores"
    framework: str = "numpy"
    framework_reason: str = ""
    temperature: float | None = None
    critic: str | None = None
    gradient: str = "not checked"
    max_gradient_error: float | None = None
    eps: float = float(np.finfo(np.float64).eps)
    notes: tuple = ()
    results: tuple = field(default=(), repr=False)

    @property
    def explanation(self):
        """What ``diagnosis`` means (None when passed)."""
        return None if self.diagnosis is None else DIAGNOSES[self.diagnosis]

    def to_dict(self):
        """A JSON-ready dict (the cases as a list of dicts)."""
        out = {name: getattr(self, name) for name in (
            "passed", "diagnosis", "explanation", "max_error", "cases", "kind", "framework",
            "framework_reason", "temperature", "critic", "gradient", "max_gradient_error",
            "eps")}
        out["notes"] = list(self.notes)
        out["results"] = [vars(r).copy() for r in self.results]
        return out

    def table(self, max_rows=None):
        """The per-case table (``max_rows`` rows at most, failing cases first)."""
        rows = sorted(self.results, key=lambda r: (r.error <= r.tolerance, r.index))
        shown = rows if max_rows is None else rows[:max_rows]
        extra = self.diagnosis if self.diagnosis in TRANSFORMATIONS else None
        head = f"{'case':>4} {'input':>8} {'B':>3} {'exact loss':>12} {'yours':>12} {'|error|':>9}"
        head += f" {extra:>14}" if extra else ""
        head += f" {'grad err':>9}" if any(r.gradient_error is not None for r in shown) else ""
        lines = [head]
        for r in shown:
            line = (f"{r.index:>4} {r.label:>8} {r.batch_size:>3} {r.reference:>12.6g} "
                    f"{r.value:>12.6g} {r.error:>9.2g}")
            if extra:
                line += f" {r.diagnosed:>14.6g}"
            if r.gradient_error is not None:
                line += f" {r.gradient_error:>9.2g}"
            lines.append(line)
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more cases (all of them: report.table(), "
                         "or --json on the command line)")
        return "\n".join(lines)

    def __str__(self):
        verdict = "PASSED" if self.passed else f"FAILED: {self.diagnosis}"
        lines = [f"InfoNCE conformance {verdict}"]
        if self.diagnosis:
            lines.append(f"  {self.diagnosis}: {self.explanation}")
        setting = f"kind={self.kind}"
        if self.critic is not None:
            setting += f", critic={self.critic}"
        setting += f", temperature={self.temperature}" if self.temperature is not None else ""
        lines.append(f"  {setting}; framework {self.framework} ({self.framework_reason}); "
                     f"{self.cases} cases")
        lines.append(f"  max |error| {self.max_error:.3g} nats; gradient: {self.gradient}")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(self.table(max_rows=10))
        return "\n".join(lines)


def _tolerance(case, eps, logits=None):
    logits = case.logits if logits is None else logits
    finite = np.abs(logits[np.isfinite(logits)])
    return TOLERANCE_FACTOR * eps * (case.batch_size + case.dim + 1) * max(1.0, finite.max())


def _machine_eps(dtype):
    """The ε a value of ``dtype`` is held to: its own below single precision and for
    float32, but never less than float64's: the value is compared as a float64 number
    with a float64 reference, so a longdouble result (ε = 1.1e-19 on x86) cannot be
    closer to it than float64's rounding."""
    name = adapters.dtype_name(dtype)
    half = adapters.half_precision_eps(name)
    if half is not None:
        return half
    return max(float(np.finfo(dtype).eps), float(np.finfo(np.float64).eps))


def temperature_parameter(fn, kind="scores"):
    """The name of ``fn``'s temperature parameter, or None (then it goes last, positionally).

    A parameter after the inputs (scores, or z and z_prime) named temperature, tau, temp,
    t, T or τ (surrounding underscores ignored) receives the temperature by name, so
    ``fn(z, z_prime, normalize=True, temperature=0.1)`` gets it in ``temperature``, not
    in ``normalize``.
    A ``torch.nn.Module`` (whose ``__call__`` takes ``*args, **kwargs``) is described by
    its ``forward`` (``adapters.call_signature``).

    Parameters
    ----------
    fn : callable
        The loss.
    kind : {"scores", "embeddings"}, default "scores"
        How many inputs come first: one (scores) or two (z, z_prime).

    Returns
    -------
    str or None
        The parameter's name; None when fn has none of these names (or no signature).

    Examples
    --------
    >>> from rpmref.testing.conformance import temperature_parameter
    >>> def loss(z, z_prime, normalize=True, temperature=0.1):
    ...     pass
    >>> temperature_parameter(loss, "embeddings")
    'temperature'
    >>> temperature_parameter(lambda scores, scale: scores, "scores") is None
    True
    """
    try:
        parameters = list(adapters.call_signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    inputs = {p.name for p in positional[:1 if kind == "scores" else 2]}
    for p in parameters:
        if (p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in inputs
                and p.name.strip("_").lower() in TEMPERATURE_NAMES):
            return p.name
    return None


def _by_name(fn, name):
    """fn called with its last positional argument (the temperature) passed as ``name=``."""
    @functools.wraps(fn, updated=())         # keeps fn's signature for framework detection
    def with_named_temperature(*arguments):
        *inputs, temperature = arguments
        return fn(*inputs, **{name: temperature})
    return with_named_temperature


def _close(value, expected, tolerance):
    if np.isinf(expected) or np.isinf(value):
        return value == expected
    return abs(value - expected) <= tolerance   # False for nan


def _check_arguments(fn, kind, critic, temperature, framework, trials, seed, gradients, eps):
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind must be 'scores' or 'embeddings'; got {kind!r}")
    if kind == "embeddings" and not (callable(critic) or critic in CRITICS):
        raise ValueError("kind='embeddings' needs critic='cosine', 'dot' or a callable "
                         f"critic(z, z_prime) -> (B, B) scores; got {critic!r}")
    if kind == "scores" and critic is not None:
        raise ValueError("critic is only used with kind='embeddings'; the scores of "
                         "kind='scores' are already the critic's values")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
                0 < float(temperature) < np.inf):
            raise ValueError(f"temperature must be a positive number or None; got {temperature!r}")
        temperature = float(temperature)
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise ValueError(f"temperature must be in [{low:g}, {high:g}] (the cases' scores "
                             f"and logits overflow or underflow beyond); got {temperature!r}")
    if framework != "auto" and framework not in adapters.FRAMEWORKS:
        raise ValueError(f"framework must be 'auto', 'numpy', 'torch' or 'jax'; got {framework!r}")
    if framework != "auto":
        adapters.require(framework)
    if check_positive_int(trials, "trials") > MAX_TRIALS:
        raise ValueError(f"trials must be at most {MAX_TRIALS}, got {trials}")
    check_positive_int(seed, "seed", minimum=0)
    check_bool(gradients, "gradients")
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, numbers.Real)
                            or not 0 < eps < 1):
        raise ValueError(f"eps must be a machine epsilon in (0, 1) or None; got {eps!r}")
    return temperature


def _reference_gradients(case, critic):
    tau = 1.0 if case.temperature is None else case.temperature
    grad_scores = infonce_loss_gradient(case.logits) / tau
    if len(case.inputs) == 1:
        return (grad_scores,), 1.0 / (case.batch_size * tau)
    grads = critic_vjp(critic, *case.inputs, grad_scores)
    if grads is None:
        return None, None
    z, z_prime = case.inputs
    norms = np.linalg.norm(np.vstack([z, z_prime]), axis=1)
    jacobian = norms.max() if critic == "dot" else 1.0 / norms.min()
    return grads, jacobian / (case.batch_size * tau)


def _call(fn, framework, case, gradients):
    try:
        with np.errstate(all="ignore"):     # the checked function's overflow is reported, not warned
            return adapters.evaluate(fn, framework, case.inputs, _extra(case), gradients)
    except adapters.NotScalarError as err:
        err.case = case
        raise
    except Exception as err:
        shapes = " and ".join(str(a.shape) for a in case.inputs)
        verb = "returned" if isinstance(err, adapters.NotANumberError) else "raised"
        if hasattr(err, "add_note"):
            err.add_note(f"{verb} by the checked function on case {case.index} "
                         f"(inputs of shape {shapes})")
        raise


@adapters.under_numpy_defaults
def check_infonce(fn, *, kind="scores", critic=None, temperature=None, framework="auto",
                  trials=50, seed=0, gradients=True, eps=None):
    """Check a user's InfoNCE loss against the exact in-batch loss; name the mistake if any.

    The exact loss (Eq. 6 with N = B, as a loss; A1) of logits L (B, B), positives on
    the diagonal, is −(1/B) Σ_i [L_ii − log Σ_j e^{L_ij}] (``infonce_loss``): a loss
    (not the estimate log B − loss), in nats, the mean over the B anchors, in one
    direction z → z' (row i is anchor z_i against the candidates z'_j).

    Parameters
    ----------
    fn : callable
        kind="scores": ``fn(scores)`` or, with a temperature, ``fn(scores, temperature)``,
        scores (B, B) with scores[i, j] = f(z_i, z'_j); the logits are scores / τ.
        kind="embeddings": ``fn(z, z_prime)`` or ``fn(z, z_prime, temperature)``, z and
        z_prime (B, D) with (z_i, z'_i) the positive pairs; the logits are
        critic(z, z') / τ. Returns the loss as a scalar (a float, 0-d array or tensor)
        in float32 or float64 (a float16, bfloat16 or float8 value is diagnosed
        "half-precision"). A loss with a fixed temperature inside can be checked as
        ``lambda s, t: my_loss(s)`` with ``temperature=`` that value.
    kind : "scores" or "embeddings"
    critic : "cosine", "dot" or callable, for kind="embeddings" only
        "dot" f = zᵀz' (Eq. 8 with W = I); "cosine" f = zᵀz'/(‖z‖‖z'‖) (SimCLR); a
        callable ``critic(z, z_prime) -> (B, B')`` (its gradients are not checked).
    temperature : positive float or None
        None: fn takes no temperature. Otherwise passed to fn by name when fn has a
        parameter after its inputs named temperature, tau, temp, t, T or τ
        (:func:`temperature_parameter`), else as its last positional argument.
        τ ≠ 1 is needed to see the temperature mistakes. At most 1e100 and at least
        1e-100 (``TEMPERATURE_RANGE``), where the cases stay finite.
    framework : "auto", "numpy", "torch" or "jax"
        How inputs are handed over: NumPy float64 arrays, torch.float64 tensors
        (requires_grad) or jax float64 arrays. "auto" decides from fn's annotations,
        from what it returns for NumPy input, or by trying torch then jax when NumPy
        input fails (``adapters.detect``).
    trials : int
        Number of cases (batch sizes 2–16, ordinary and, every fifth case, extreme), at
        most ``MAX_TRIALS`` (10000).
    seed : int
        Seed of the cases (``numpy.random.default_rng([seed, case])``).
    gradients : bool
        Check gradients where the framework gives them (torch autograd, jax.grad,
        autograd for functions written with ``autograd.numpy``).
    eps : float or None
        Machine epsilon for the tolerance; default: that of the dtype fn returns (a
        float16, bfloat16 or float8 result is diagnosed "half-precision" whatever eps is).

    Returns
    -------
    ConformanceReport
        ``passed``, ``diagnosis`` (None, or a code of ``DIAGNOSES``), ``max_error``,
        ``cases``; ``print(report)`` shows the table.

    Raises
    ------
    TypeError, ValueError
        Bad arguments; with framework="auto", ``adapters.FunctionFailed`` (a TypeError)
        when fn fails on every installed framework.
    ImportError
        framework="torch" or "jax" when that package is not installed.
    adapters.NotANumberError
        fn returned something that is not a number.
    Exception
        Whatever fn raises on a case (with a note naming the case).

    Examples
    --------
    >>> import numpy as np
    >>> def my_loss(scores):
    ...     shifted = scores - scores.max(axis=1, keepdims=True)
    ...     log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ...     return -np.mean(np.diag(log_softmax))
    >>> check_infonce(my_loss).passed
    True
    >>> check_infonce(lambda s: my_loss(s.T)).diagnosis
    'transposed'
    """
    temperature = _check_arguments(fn, kind, critic, temperature, framework, trials, seed,
                                   gradients, eps)
    adapters.forget_traces()        # fn as it is now, not as an earlier check traced it
    cases = make_cases(kind, trials, seed, temperature, critic)
    named = None if temperature is None else temperature_parameter(fn, kind)
    if named is not None:
        fn = _by_name(fn, named)
    elif temperature is not None:
        _refuse_a_temperature_it_cannot_take(fn, kind, temperature)
    if framework == "auto":
        with np.errstate(all="ignore"):
            framework, reason = adapters.detect(fn, cases[0].inputs, _extra(cases[0]),
                                                gradients=gradients)
    else:
        reason = "as asked"
    common = dict(cases=len(cases), kind=kind, framework=framework, framework_reason=reason,
                  temperature=temperature, critic=_critic_name(critic))
    # torch and jax give the gradient with the value; autograd is tried only on a NumPy
    # loss whose values conform (tracing a plain NumPy function fails noisily)
    together = gradients and framework != "numpy"
    try:
        outcomes = [_call(fn, framework, case, gradients=together) for case in cases]
    except adapters.NotScalarError as err:
        return ConformanceReport(False, "not-scalar", float("nan"), notes=(
            f"on case {err.case.index} (B = {err.case.batch_size}) fn {err}; the InfoNCE "
            "loss is the mean over the anchors, one number",), **common)
    half = next((adapters.dtype_name(o.dtype) for o in outcomes
                 if adapters.half_precision_eps(o.dtype) is not None), None)
    if half is not None:
        eps = adapters.half_precision_eps(half)
    elif eps is None:
        eps = max(_machine_eps(o.dtype) for o in outcomes)
    values = np.array([o.value for o in outcomes])
    judged = _judge(values, cases, eps, kind, temperature, half)
    if judged["diagnosis"] is not None and half is None:
        _check_repeatable(fn, framework, cases, values, judged)
    if named is not None:
        judged["notes"].insert(0, f"the temperature is passed by name: {named}=T")
    diagnosis = judged["diagnosis"]
    gradient_text, gradient_errors, max_gradient_error = "not checked", [None] * len(cases), None
    if diagnosis is None and gradients:
        differentiated = outcomes if together else [_call(fn, framework, case, gradients=True)
                                                    for case in cases]
        gradient_text, gradient_errors, broken = _check_gradients(
            differentiated, cases, critic, judged["tolerances"])
        if any(e is not None for e in gradient_errors):
            max_gradient_error = float(np.max([e for e in gradient_errors if e is not None]))
        diagnosis = "gradient" if broken else None
    diagnosed = judged["diagnosed"]
    results = tuple(
        CaseResult(c.index, c.label, c.batch_size, float(judged["references"][i]),
                   float(values[i]), float(judged["errors"][i]), float(judged["tolerances"][i]),
                   None if diagnosed is None else float(diagnosed[i]), gradient_errors[i])
        for i, c in enumerate(cases))
    return ConformanceReport(diagnosis is None, diagnosis, judged["max_error"],
                             gradient=gradient_text, max_gradient_error=max_gradient_error,
                             eps=eps, notes=tuple(judged["notes"]), results=results, **common)


def _refuse_a_temperature_it_cannot_take(fn, kind, temperature):
    """TypeError, before any call, when fn takes its inputs but no further argument (a
    temperature fixed inside, as self.temperature): temperature= would pass it one."""
    inputs = ("scores",) if kind == "scores" else ("z", "z_prime")
    try:    # fn's own parameters: a functools.wraps decorator may take more than it wraps
        signature = adapters.call_signature(fn, follow_wrapped=False)
        signature.bind(*inputs)
    except (TypeError, ValueError):
        return                        # no signature, or not even its inputs: the call says
    try:
        signature.bind(*inputs, temperature)
    except TypeError:
        shown = ", ".join(inputs)
        keywords = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        hint = (f"; a **kwargs parameter is not given one: name a parameter "
                f"{' or '.join(TEMPERATURE_NAMES)} to take T by name" if keywords else "")
        raise TypeError(f"fn takes no temperature (its parameters: {signature}), and "
                        f"temperature={temperature:g} passes one as fn({shown}, T); for a "
                        f"temperature fixed inside fn, check lambda {shown}, t: fn({shown}) "
                        f"with temperature={temperature:g}{hint}") from None


def _extra(case):
    return () if case.temperature is None else (case.temperature,)


def _critic_name(critic):
    if critic is None or isinstance(critic, str):
        return critic
    return getattr(critic, "__name__", "callable")


def _judge(values, cases, eps, kind, temperature, half=None):
    """Compare the values with the exact loss and, if they differ, with each mistake.

    Returns a dict: diagnosis (None, a transformation's code, "half-precision",
    "unstable", "masked-nan", "not-finite" or "unknown"), references, tolerances, errors,
    max_error, diagnosed (the diagnosed mistake's values or None) and notes."""
    references = np.array([infonce_loss(c.logits) for c in cases])
    tolerances = np.array([_tolerance(c, eps) for c in cases])
    errors = np.abs(values - references)
    errors = np.where(values == references, 0.0, errors)        # equal infinities
    max_error = float(np.max(errors)) if not np.isnan(errors).any() else float("nan")
    ordinary = np.array([not c.extreme for c in cases])

    def close_to(expected, tolerances=tolerances):
        return np.array([_close(v, e, t) for v, e, t in zip(values, expected, tolerances)])

    def matches(expected):
        close = close_to(expected)
        return bool(close[ordinary].all()), bool(close.all())

    notes = []
    if temperature in (None, 1.0):
        notes.append("temperature mistakes cannot be seen without a temperature != 1")
    if ordinary.all():
        notes.append("no extreme cases were run (trials < 5, or embeddings under a critic "
                     "other than 'dot': only its logits can be made extreme), so 'unstable' "
                     "cannot be diagnosed")
    result = dict(references=references, tolerances=tolerances, errors=errors,
                  max_error=max_error, diagnosed=None, notes=notes)
    if half is not None:
        notes.append(_half_precision_note(half, eps, cases, references, tolerances, kind,
                                          temperature))
        return dict(result, diagnosis="half-precision")
    close = close_to(references)
    if close.all():
        return dict(result, diagnosis=None)
    if close[ordinary].all():
        return dict(result, diagnosis="masked-nan" if _nan_where_masked(values, cases, close)
                    else "unstable")
    not_finite = [i for i in np.flatnonzero(ordinary) if not np.isfinite(values[i])]
    if not_finite:
        first = cases[not_finite[0]]
        others = len(not_finite) - 1
        notes.append(f"it returned {values[not_finite[0]]} on case {first.index} (ordinary, "
                     f"B = {first.batch_size})"
                     + (f" and NaN or ±inf on {others} other ordinary case"
                        f"{'s' if others > 1 else ''}" if others else ""))
        return dict(result, diagnosis="not-finite")
    diagnosis, diagnosed = _diagnose(values, cases, kind, temperature, close_to, notes)
    if diagnosis == "unknown":
        _note_near_miss(notes, values, references, tolerances, close_to, eps)
        _note_implied_temperature(notes, values, cases, eps, temperature)
    return dict(result, diagnosis=diagnosis, diagnosed=diagnosed)


#: How many failing cases are called a second time to see whether the values repeat.
REPEATED_CASES = 5


def _check_repeatable(fn, framework, cases, values, judged):
    """Call fn again on the first few cases it failed (``REPEATED_CASES``; dropout on a
    small batch can repeat its mask): a different value makes the diagnosis
    "non-deterministic", since no mistake can be named from values that change."""
    failing = np.flatnonzero(~(judged["errors"] <= judged["tolerances"]))
    for i in failing[:REPEATED_CASES]:
        try:
            again = _call(fn, framework, cases[i], gradients=False).value
        except Exception:           # raising only the second time: left to the first report
            return
        first = values[i]
        if (np.isnan(first) and np.isnan(again)) or _close(again, first,
                                                           judged["tolerances"][i]):
            continue
        judged["notes"].append(
            f"on case {cases[i].index} (B = {cases[i].batch_size}) it returned "
            f"{float(first)!r}, then {float(again)!r} on the same input: values that change "
            "from call to call cannot be compared with the exact loss or a mistake")
        judged.update(diagnosis="non-deterministic", diagnosed=None)
        return


def _nan_where_masked(values, cases, close):
    """Whether every case that fails is a masked one on which the value is NaN."""
    failing = np.flatnonzero(~close)
    return all(cases[i].label == "masked" and np.isnan(values[i]) for i in failing)


def _diagnose(values, cases, kind, temperature, close_to, notes):
    """The first transformation matching every case; else one matching the ordinary
    cases (also noted as unstable); else "unknown"."""
    ordinary = np.array([not c.extreme for c in cases])
    ordinary_only = None
    for code in TRANSFORMATIONS:
        if not applicable(code, kind, temperature):
            continue
        expected = np.array([transformation_value(code, c) for c in cases])
        close = close_to(expected)
        if close.all():
            return code, expected
        if close[ordinary].all() and ordinary_only is None:
            ordinary_only = code, expected, close
    if ordinary_only is not None:
        code, expected, close = ordinary_only
        if _nan_where_masked(values, cases, close):
            notes.append(f"it matches {code!r} on the ordinary cases and gives NaN where "
                         "negatives are −inf (masked): 0 · (−inf) = NaN, e.g. a mask "
                         "multiplied into log-probabilities")
        else:
            notes.append(f"it matches {code!r} on the ordinary cases and is also "
                         "unstable on the extreme ones")
        return code, expected
    return "unknown", None


def _half_precision_note(name, eps, cases, references, tolerances, kind, temperature):
    """Numbers behind "half-precision": the rounding bound on these cases and the mistake
    closest to the exact loss."""
    ordinary = [i for i, c in enumerate(cases) if not c.extreme] or list(range(len(cases)))
    worst = max(ordinary, key=lambda i: tolerances[i])
    text = (f"{name} (ε = {eps:.2g}): the rounding bound 8 ε (B + D + 1) max|L| reaches "
            f"{tolerances[worst]:.2g} nats (case {cases[worst].index}, {cases[worst].label}, "
            f"B = {cases[worst].batch_size})")
    closest = None                    # (separation in tolerances, code, largest difference)
    for code in TRANSFORMATIONS:
        if not applicable(code, kind, temperature):
            continue
        differences = np.array([abs(transformation_value(code, cases[i]) - references[i])
                                for i in ordinary])
        separation = float(np.max(differences / tolerances[ordinary]))
        if closest is None or separation < closest[0]:
            closest = separation, code, float(np.max(differences))
    if closest is not None and closest[0] < 2.0:
        text += (f", while {closest[1]!r} differs from the exact loss by at most "
                 f"{closest[2]:.2g} nats on these cases")
    return text + "; compute the loss in float32 or float64"


def _note_near_miss(notes, values, references, tolerances, close_to, eps):
    """Values that agree to float32's precision but not to float64's."""
    eps32 = float(np.finfo(np.float32).eps)
    if eps >= eps32 or not close_to(references, tolerances * (eps32 / eps)).all():
        return
    errors = np.abs(values - references)
    relative = float(np.nanmax(errors / np.maximum(1.0, np.abs(references))))
    notes.append(f"the values agree with the exact loss to float32's precision (errors ≤ "
                 f"{relative:.1g} relative) but not to float64's: float32 arithmetic returned "
                 "as float64 (return the float32 value itself, not .item(), float() or "
                 ".double(): it is then held to float32's tolerance), or an additive ε "
                 "(‖z‖ + 1e-8, log(x + 1e-8)), which changes the loss by about ε relative "
                 "and is not the exact loss (max(‖z‖, ε), as F.normalize does, leaves these "
                 "inputs' norms unchanged)")


def _implied_scale(values, cases, eps):
    """c > 0 with loss(c L) = value within the tolerance on every ordinary case (at least
    three), or None. loss(c L) is convex in c: the best point of a log grid (on ten
    cases) is refined by Gauss–Newton on the squared residuals of all of them."""
    use = [i for i, c in enumerate(cases) if not c.extreme]
    if len(use) < 3 or not np.all(np.isfinite(values[use])):
        return None
    logits, target = [cases[i].logits for i in use], values[use]

    def residuals(c, count=None):
        return (np.array([infonce_loss(c * L) for L in logits[:count]]) - target[:count])
    grid = np.geomspace(1e-3, 1e3, 61)
    c = float(grid[np.argmin([np.sum(residuals(g, 10) ** 2) for g in grid])])
    for _ in range(50):
        slopes = np.array([np.sum(infonce_loss_gradient(c * L) * L) for L in logits])
        if not slopes @ slopes > 0:
            return None
        step = float(slopes @ residuals(c) / (slopes @ slopes))
        updated = c - step if c - step > 0 else c / 2
        converged = abs(updated - c) <= 1e-15 * c
        c = updated
        if converged:
            break
    tolerances = np.array([_tolerance(cases[i], eps, c * cases[i].logits) for i in use])
    return c if np.all(np.abs(residuals(c)) <= tolerances) else None


def _note_implied_temperature(notes, values, cases, eps, temperature):
    """A temperature fixed inside the loss: the values are loss(S / τ') for another τ'.
    Values of log B on every ordinary case (at least three) are the limit τ' → ∞ (equal
    logits), not a temperature: the loss does not see its input."""
    use = [i for i, case in enumerate(cases) if not case.extreme]
    log_b = np.log([cases[i].batch_size for i in use])
    if len(use) >= 3 and np.all(np.abs(values[use] - log_b)
                                <= [_tolerance(cases[i], eps) for i in use]):
        notes.append("every value is log B, the loss of equal logits: the loss does not "
                     "depend on its input (zeroed, detached or replaced scores?)")
        return
    c = _implied_scale(values, cases, eps)
    if c is None or abs(c - 1.0) <= 1e-6:
        return
    implied = (1.0 if temperature is None else temperature) / c
    checked = "no temperature" if temperature is None else f"temperature {temperature:g}"
    notes.append(f"the values match the loss at temperature τ ≈ {implied:.4g} (checked with "
                 f"{checked}): a temperature fixed inside? check it at that temperature "
                 f"(temperature={implied:.4g}; on the command line --temperature "
                 f"{implied:.4g}, or --fixed-temperature {implied:.4g} if the loss takes none)")


def _check_gradients(outcomes, cases, critic, tolerances):
    """(summary text, per-case relative errors, broken?) of the gradient comparison."""
    statuses = {o.gradient_status for o in outcomes}
    if "broken" in statuses:
        reason = next(o.reason for o in outcomes if o.gradient_status == "broken")
        return f"FAILED: {reason}", [None] * len(cases), True
    if statuses != {"ok"}:
        reason = next(o.reason for o in outcomes if o.gradient_status != "ok")
        return f"not checked ({reason})", [None] * len(cases), False
    errors, failed = [], False
    for outcome, case, tolerance in zip(outcomes, cases, tolerances):
        expected, scale = _reference_gradients(case, critic)
        if expected is None:
            return "not checked (a callable critic's Jacobian is unknown)", [None] * len(cases), \
                False
        error = float(np.max([np.max(np.abs(np.asarray(g) - e)) for g, e in
                              zip(outcome.gradients, expected)])) / scale   # nan stays nan
        errors.append(error)
        failed |= not error <= tolerance
    not_finite = [i for i, error in enumerate(errors) if not np.isfinite(error)]
    if not_finite:
        first = cases[not_finite[0]]
        return (f"FAILED: NaN or ±inf in the gradient on {len(not_finite)} of {len(cases)} "
                f"cases, the first case {first.index} ({first.label}, B = {first.batch_size}), "
                "where the value is right: a sqrt, log or division at 0 inside the loss?",
                errors, True)
    if failed:
        return (f"FAILED: relative error up to {max(errors):.3g} against (softmax − I)/B",
                errors, True)
    return f"matches (softmax − I)/B (relative error ≤ {max(errors):.2g})", errors, False


__all__ = ["check_infonce", "ConformanceReport", "CaseResult", "KINDS",
           "TEMPERATURE_RANGE", "temperature_parameter"]
