"""``check_infonce``: is a user's InfoNCE loss the exact in-batch loss, and if not, which mistake?

The function is called on ``trials`` seeded cases (``cases``) and its values are
compared with the exact loss (``reference.infonce_loss``) and with the value of each
known mistake (``diagnoses``). It conforms when it matches the exact loss on every
case and, where the framework differentiates it, its gradient matches
(softmax(L) − I) / B chained through the temperature (and the critic).

Tolerance, per case: |yours − exact| ≤ 8 ε (B + D + 1) max(1, max |L|), with ε the
machine epsilon of the dtype the function returned (float32 results get float32's).
Why: each log-sum-exp of B terms is accurate to about (B + 1) ε relative, rounding
the inputs and logits costs ε max|L| (the loss is 2-Lipschitz in max-norm of L), a
D-term dot product D ε, and 8 is headroom. For float64 at B = 16, |L| = 1000 that is
3e-11 nats; on the default cases every two mistakes differ by more than 0.1 nats on
some ordinary case (tests/test_testing.py checks this).
Gradients are compared relative to their natural scale (1/(Bτ) times the critic's
Jacobian size) with the same tolerance.
"""
import numbers
from dataclasses import dataclass, field

import numpy as np

from rpmref.exact.validation import check_positive_int
from rpmref.testing import adapters
from rpmref.testing.cases import make_cases
from rpmref.testing.diagnoses import DIAGNOSES, TRANSFORMATIONS, applicable, transformation_value
from rpmref.testing.reference import CRITICS, critic_vjp, infonce_loss, infonce_loss_gradient

KINDS = ("scores", "embeddings")
TOLERANCE_FACTOR = 8.0


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
            lines.append(f"... {len(rows) - len(shown)} more cases (report.table() shows all)")
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


def _tolerance(case, eps):
    finite = np.abs(case.logits[np.isfinite(case.logits)])
    return TOLERANCE_FACTOR * eps * (case.batch_size + case.dim + 1) * max(1.0, finite.max())


def _close(value, expected, tolerance):
    if np.isinf(expected) or np.isinf(value):
        return value == expected
    return abs(value - expected) <= tolerance   # False for nan


def _check_arguments(fn, kind, critic, temperature, framework, trials, seed, eps):
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
    if framework != "auto" and framework not in adapters.FRAMEWORKS:
        raise ValueError(f"framework must be 'auto', 'numpy', 'torch' or 'jax'; got {framework!r}")
    if framework != "auto":
        adapters.require(framework)
    check_positive_int(trials, "trials")
    check_positive_int(seed, "seed", minimum=0)
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
    except adapters.NotANumberError:
        raise
    except Exception as err:
        shapes = " and ".join(str(a.shape) for a in case.inputs)
        if hasattr(err, "add_note"):
            err.add_note(f"raised by the checked function on case {case.index} "
                         f"(inputs of shape {shapes})")
        raise


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
        critic(z, z') / τ. Returns the loss as a scalar (a float, 0-d array or tensor).
        A loss with a fixed temperature inside can be checked as
        ``lambda s, t: my_loss(s)`` with ``temperature=`` that value.
    kind : "scores" or "embeddings"
    critic : "cosine", "dot" or callable, for kind="embeddings" only
        "dot" f = zᵀz' (Eq. 8 with W = I); "cosine" f = zᵀz'/(‖z‖‖z'‖) (SimCLR); a
        callable ``critic(z, z_prime) -> (B, B')`` (its gradients are not checked).
    temperature : positive float or None
        None: fn takes no temperature. Otherwise passed to fn as its last argument.
        τ ≠ 1 is needed to see the temperature mistakes.
    framework : "auto", "numpy", "torch" or "jax"
        How inputs are handed over: NumPy float64 arrays, torch.float64 tensors
        (requires_grad) or jax float64 arrays. "auto" decides from fn's annotations,
        from what it returns for NumPy input, or by trying torch then jax when NumPy
        input fails (``adapters.detect``).
    trials : int
        Number of cases (batch sizes 2–16, ordinary and, every fifth case, extreme).
    seed : int
        Seed of the cases (``numpy.random.default_rng([seed, case])``).
    gradients : bool
        Check gradients where the framework gives them (torch autograd, jax.grad,
        autograd for functions written with ``autograd.numpy``).
    eps : float or None
        Machine epsilon for the tolerance; default: that of the dtype fn returns.

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
    temperature = _check_arguments(fn, kind, critic, temperature, framework, trials, seed, eps)
    cases = make_cases(kind, trials, seed, temperature, critic)
    if framework == "auto":
        with np.errstate(all="ignore"):
            framework, reason = adapters.detect(fn, cases[0].inputs, _extra(cases[0]))
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
    if eps is None:
        eps = max(float(np.finfo(o.dtype).eps) for o in outcomes)
    values = np.array([o.value for o in outcomes])
    judged = _judge(values, cases, eps, kind, temperature)
    diagnosis = judged["diagnosis"]
    gradient_text, gradient_errors, max_gradient_error = "not checked", [None] * len(cases), None
    if diagnosis is None and gradients:
        differentiated = outcomes if together else [_call(fn, framework, case, gradients=True)
                                                    for case in cases]
        gradient_text, gradient_errors, broken = _check_gradients(
            differentiated, cases, critic, judged["tolerances"])
        if any(e is not None for e in gradient_errors):
            max_gradient_error = float(max(e for e in gradient_errors if e is not None))
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


def _extra(case):
    return () if case.temperature is None else (case.temperature,)


def _critic_name(critic):
    if critic is None or isinstance(critic, str):
        return critic
    return getattr(critic, "__name__", "callable")


def _judge(values, cases, eps, kind, temperature):
    """Compare the values with the exact loss and, if they differ, with each mistake.

    Returns a dict: diagnosis (None, a transformation's code, "unstable" or "unknown"),
    references, tolerances, errors, max_error, diagnosed (the diagnosed mistake's values
    or None) and notes."""
    references = np.array([infonce_loss(c.logits) for c in cases])
    tolerances = np.array([_tolerance(c, eps) for c in cases])
    errors = np.abs(values - references)
    errors = np.where(values == references, 0.0, errors)        # equal infinities
    max_error = float(np.max(errors)) if not np.isnan(errors).any() else float("nan")
    ordinary = np.array([not c.extreme for c in cases])

    def matches(expected):
        close = np.array([_close(v, e, t) for v, e, t in zip(values, expected, tolerances)])
        return bool(close[ordinary].all()), bool(close.all())

    notes = []
    if temperature in (None, 1.0):
        notes.append("temperature mistakes cannot be seen without a temperature != 1")
    if ordinary.all():
        notes.append("no extreme cases were run (trials < 5, or a critic that bounds the "
                     "logits), so 'unstable' cannot be diagnosed")
    on_ordinary, on_all = matches(references)
    diagnosed = None
    if on_all:
        diagnosis = None
    elif on_ordinary:
        diagnosis = "unstable"
    else:
        diagnosis, diagnosed = _diagnose(values, cases, kind, temperature, matches, notes)
        if diagnosis == "unknown":
            _note_near_miss(notes, errors, references)
    return dict(diagnosis=diagnosis, references=references, tolerances=tolerances,
                errors=errors, max_error=max_error, diagnosed=diagnosed, notes=notes)


def _diagnose(values, cases, kind, temperature, matches, notes):
    """The first transformation matching every case; else one matching the ordinary
    cases (also noted as unstable); else "unknown"."""
    ordinary_only = None
    for code in TRANSFORMATIONS:
        if not applicable(code, kind, temperature):
            continue
        expected = np.array([transformation_value(code, c) for c in cases])
        on_ordinary, on_all = matches(expected)
        if on_all:
            return code, expected
        if on_ordinary and ordinary_only is None:
            ordinary_only = code, expected
    if ordinary_only is not None:
        notes.append(f"it matches {ordinary_only[0]!r} on the ordinary cases and is also "
                     "unstable on the extreme ones")
        return ordinary_only
    return "unknown", None


def _note_near_miss(notes, errors, references):
    scale = np.maximum(1.0, np.abs(references))
    relative = np.nanmax(errors / scale) if not np.isnan(errors).all() else np.nan
    if relative < 1e-5:
        notes.append(f"the errors are small (≤ {relative:.1g} relative): float32 arithmetic "
                     "behind a float64 result, or an epsilon in a log or a norm? "
                     "eps=np.finfo(np.float32).eps loosens the tolerance")


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
        error = max(float(np.max(np.abs(np.asarray(g) - e))) for g, e in
                    zip(outcome.gradients, expected)) / scale
        errors.append(error)
        failed |= not error <= tolerance
    if failed:
        return (f"FAILED: relative error up to {max(errors):.3g} against (softmax − I)/B",
                errors, True)
    return f"matches (softmax − I)/B (relative error ≤ {max(errors):.2g})", errors, False


__all__ = ["check_infonce", "ConformanceReport", "CaseResult", "KINDS"]
