"""``rpmref.testing.check_infonce``: the exact reference, the cases, and the diagnoses.

The implementations below are written once against a small array namespace
(``ops``) so that the same right and wrong losses run in NumPy (autograd.numpy, so
their gradients are checked too), PyTorch and JAX; the torch and jax variants are
skipped when those packages are not installed. ``IMPLEMENTATIONS`` maps each to the
diagnosis it must get: None for the right ones, and every code of ``DIAGNOSES``
exactly once (``test_every_code_has_exactly_one_implementation``).
"""
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import autograd.numpy as anp
import mpmath
import numpy as np
import pytest
from autograd.tracer import getval
from hypothesis import given, settings

import rpmref
from rpmref.testing import (DIAGNOSES, check_infonce, check_mi_estimator, infonce_loss,
                            infonce_loss_gradient)
from rpmref.testing import adapters
from rpmref.testing.cases import make_cases
from rpmref.testing.diagnoses import TRANSFORMATIONS, applicable, transformation_value
from rpmref.testing.reference import critic_scores, critic_vjp
from tests.strategies import score_matrices

EPS = float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------ array namespaces

def numpy_ops():
    return types.SimpleNamespace(
        amax=lambda a, axis: anp.max(a, axis=axis, keepdims=True),
        sum=lambda a, axis=None: anp.sum(a, axis=axis), squeeze=anp.squeeze,
        diag=lambda a: anp.diagonal(a, 0, -1, -2),     # the form autograd differentiates
        eye=lambda n: np.eye(n, dtype=bool), where=anp.where,
        mean=anp.mean, log=anp.log, exp=anp.exp, sqrt=anp.sqrt,
        cat=lambda a, b: anp.concatenate([a, b], axis=0), stop=getval,
        float32=lambda a: np.asarray(getval(a), dtype=np.float32),
        float16=lambda a: np.asarray(getval(a), dtype=np.float16),
        to_float64=lambda v: np.float64(v), const=np.asarray)


def torch_ops():
    torch = pytest.importorskip("torch")
    return types.SimpleNamespace(
        amax=lambda a, axis: torch.amax(a, dim=axis, keepdim=True),
        sum=lambda a, axis=None: torch.sum(a) if axis is None else torch.sum(a, dim=axis),
        squeeze=lambda a, axis: a.squeeze(axis), diag=torch.diagonal,
        eye=lambda n: torch.eye(n, dtype=torch.bool), where=torch.where, mean=torch.mean,
        log=torch.log, exp=torch.exp, sqrt=torch.sqrt, cat=lambda a, b: torch.cat([a, b], 0),
        stop=lambda a: a.detach(), float32=lambda a: a.float(), float16=lambda a: a.half(),
        to_float64=lambda v: v.double(), const=torch.as_tensor)


def jax_ops():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    return types.SimpleNamespace(
        amax=lambda a, axis: jnp.max(a, axis=axis, keepdims=True),
        sum=lambda a, axis=None: jnp.sum(a, axis=axis), squeeze=jnp.squeeze,
        diag=jnp.diagonal, eye=lambda n: jnp.eye(n, dtype=bool), where=jnp.where,
        mean=jnp.mean, log=jnp.log, exp=jnp.exp, sqrt=jnp.sqrt,
        cat=lambda a, b: jnp.concatenate([a, b], axis=0), stop=jax.lax.stop_gradient,
        float32=lambda a: a.astype(jnp.float32), float16=lambda a: a.astype(jnp.float16),
        to_float64=lambda v: v.astype(jnp.float64), const=jnp.asarray)


OPS = {"numpy": numpy_ops, "torch": torch_ops, "jax": jax_ops}


def implementations(o):
    """name -> (expected diagnosis, check_infonce keyword arguments, loss function)."""
    inf = float("inf")

    def lse(a, axis):
        m = o.stop(o.amax(a, axis))           # a row's maximum: finite in every case here
        return o.squeeze(m, axis) + o.log(o.sum(o.exp(a - m), axis))

    def rows(logits):                          # the right loss, written independently
        return -o.mean(o.diag(logits) - lse(logits, 1))

    def unit(a):
        return a / o.sqrt(o.sum(a * a, 1))[:, None]

    def cosine(z, z_prime):
        return unit(z) @ unit(z_prime).T

    def nt_xent(z, z_prime, t):
        u = unit(o.cat(z, z_prime))
        two_b = u.shape[0]
        g = o.where(o.eye(two_b), -inf, u @ u.T / t)
        partner = o.const(np.roll(np.eye(two_b, dtype=bool), two_b // 2, axis=1))   # i <-> i ± B
        positives = o.sum(o.where(partner, g, 0.0), 1)
        return -o.mean(positives - lse(g, 1))

    def negatives_only(s):
        off = o.where(o.eye(s.shape[0]), -inf, s)
        return -o.mean(o.diag(s) - lse(off, 1))

    def positive_twice(s):                     # the positive's logit prepended to its row
        return -o.mean(o.diag(s) - lse(o.cat(o.diag(s)[None, :], s.T).T, 1))

    def shifted_labels(s):                     # cross-entropy with labels (arange(B) + 1) % B
        b = s.shape[0]
        at_labels = o.const(np.roll(np.eye(b, dtype=bool), 1, axis=1))
        return -o.mean(o.sum(o.where(at_labels, s, 0.0), 1) - lse(s, 1))

    def mask_multiplied(s):                    # SupCon style: a 0/1 mask times log-probabilities
        log_prob = s - lse(s, 1)[:, None]
        return -o.mean(o.sum(o.const(np.eye(s.shape[0])) * log_prob, 1))

    def temperature_positives(z, z_prime, t):
        positives = o.sum(unit(z) * unit(z_prime), 1)
        return -o.mean(positives - lse(cosine(z, z_prime) / t, 1))

    scores = {}
    embeddings_cos = {"kind": "embeddings", "critic": "cosine"}
    return {
        "right": (None, scores, rows),
        "right with temperature": (None, {"temperature": 0.5}, lambda s, t: rows(s / t)),
        "right cosine embeddings": (None, dict(embeddings_cos, temperature=0.1),
                                    lambda z, zp, t: rows(cosine(z, zp) / t)),
        "right dot embeddings": (None, {"kind": "embeddings", "critic": "dot"},
                                 lambda z, zp: rows(z @ zp.T)),
        "columns": ("transposed", scores, lambda s: -o.mean(o.diag(s) - lse(s, 0))),
        "summed": ("sum-reduction", scores, lambda s: -o.sum(o.diag(s) - lse(s, 1))),
        "estimate": ("estimate-not-loss", scores,
                     lambda s: math.log(s.shape[0]) + o.mean(o.diag(s) - lse(s, 1))),
        "bits": ("log2", scores, lambda s: rows(s) / math.log(2.0)),
        "negated": ("sign", scores, lambda s: o.mean(o.diag(s) - lse(s, 1))),
        "mean in the denominator": ("log-mean-exp", scores,
                                    lambda s: -o.mean(o.diag(s) - (lse(s, 1) - math.log(s.shape[0])))),
        "positive left out": ("negatives-only", scores, negatives_only),
        "positive counted twice": ("positive-twice", scores, positive_twice),
        "labels shifted by one": ("shifted-labels", scores, shifted_labels),
        "both directions": ("symmetric", dict(embeddings_cos, temperature=0.2),
                            lambda z, zp, t: 0.5 * (rows(cosine(z, zp) / t)
                                                    + rows(cosine(z, zp).T / t))),
        "untempered positives": ("temperature-positives", dict(embeddings_cos, temperature=0.1),
                                 temperature_positives),
        "times temperature": ("temperature-inverted", {"temperature": 0.5},
                              lambda s, t: rows(s * t)),
        "temperature unused": ("temperature-ignored", {"temperature": 2.0},
                               lambda s, t: rows(s)),
        "simclr": ("nt-xent", dict(embeddings_cos, temperature=0.5), nt_xent),
        "no max shift": ("unstable", scores,
                         lambda s: -o.mean(o.diag(s) - o.log(o.sum(o.exp(s), 1)))),
        "mask multiplied": ("masked-nan", scores, mask_multiplied),
        "square root of a negative": ("not-finite", scores, lambda s: o.sqrt(-rows(s))),
        "half precision": ("half-precision", scores, lambda s: rows(o.float16(s))),
        "detached normaliser": ("gradient", scores, lambda s: -o.mean(o.diag(s) - o.stop(lse(s, 1)))),
        "per anchor": ("not-scalar", scores, lambda s: -(o.diag(s) - lse(s, 1))),
        "float32 inside": ("unknown", scores, lambda s: o.to_float64(rows(o.float32(s)))),
        # an unseeded generator, as dropout in training mode: a new value on every call
        "noisy": ("non-deterministic", scores,
                  lambda s, noise=np.random.default_rng(): rows(s) + noise.uniform(0.01, 0.1)),
    }


def test_every_code_has_exactly_one_implementation():
    """The mapping below is exhaustive: each code of DIAGNOSES is expected of exactly one
    implementation (so no code can be produced by a different one in the next test)."""
    expected = [code for code, _, _ in implementations(numpy_ops()).values() if code]
    assert sorted(expected) == sorted(DIAGNOSES)
    assert len(expected) == len(set(expected))


#: The jax run covers what its adapter does (float64 conversion, jit and its eager fallback,
#: value_and_grad, shapes) on a subset: every jit compile costs 0.25–1 s per input shape on
#: this 2-core machine, and the full mapping took 97 s at trials=5 (0.2 s in numpy).
JAX_SUBSET = ("right", "right cosine embeddings", "columns", "detached normaliser", "per anchor")


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax"])
def test_each_implementation_gets_its_diagnosis_and_no_other(framework):
    """Every right implementation passes; every wrong one is diagnosed with its own code."""
    got, want = {}, {}
    trials = 5 if framework == "jax" else 15
    for name, (code, options, fn) in implementations(OPS[framework]()).items():
        if framework == "jax" and name not in JAX_SUBSET:
            continue
        report = check_infonce(fn, framework=framework, trials=trials, **options)
        got[name], want[name] = report.diagnosis, code
        assert report.passed == (code is None), (name, str(report))
    assert got == want


def test_default_trials_diagnose_the_numpy_implementations():
    """The same mapping with the default 50 cases and automatic framework choice."""
    got, want = {}, {}
    for name, (code, options, fn) in implementations(numpy_ops()).items():
        got[name], want[name] = check_infonce(fn, **options).diagnosis, code
    assert got == want


# ------------------------------------------------------------------ the exact reference

def mp_infonce_loss(logits, dps=50):
    """−(1/B) Σ_i [L_ii − log Σ_j e^{L_ij}] in 50-digit arithmetic (no shifts needed)."""
    mpmath.mp.dps = dps
    b = logits.shape[0]
    total = mpmath.mpf(0)
    for i in range(b):
        row = [mpmath.exp(mpmath.mpf(v)) for v in logits[i] if np.isfinite(v)]
        total += mpmath.mpf(logits[i, i]) - mpmath.log(mpmath.fsum(row))
    return float(-total / b)


def reference_tolerance(logits):
    """float64 log-sum-exp of B terms: ≲ (B + 2) ε relative on numbers of size max |L|."""
    finite = np.abs(logits[np.isfinite(logits)])
    return 4 * EPS * (logits.shape[0] + 2) * max(1.0, finite.max())


@given(score_matrices(max_magnitude=1e3, masked=True))
def test_reference_loss_matches_mpmath_on_huge_and_masked_scores(scores):
    assert abs(infonce_loss(scores) - mp_infonce_loss(scores)) <= reference_tolerance(scores)


@given(score_matrices(max_magnitude=1e3))
def test_reference_loss_is_log_b_minus_the_batch_infonce_limit(scores):
    """E5 on the batch: log B − loss(L) = I_∞ of the empirical joint diag(1/B) with f = L."""
    b = scores.shape[0]
    limit = rpmref.infonce_limit(np.eye(b) / b, scores)
    assert abs((math.log(b) - limit) - infonce_loss(scores)) <= reference_tolerance(scores)


@given(score_matrices(max_magnitude=10.0))
def test_reference_loss_is_the_rpm_over_index_pairs(scores):
    """A1 (Eq. 28–34): with one-hot encoders and the energy prior, loss = −mean log(B P_θ(n, n)).

    |L| ≤ 10 keeps P_θ(n, n) ≥ e^-22 / B: the exp-then-log route loses nothing there."""
    b = scores.shape[0]
    prior = rpmref.energy_prior(np.eye(b) / b, scores)
    pmf = rpmref.empirical_rpm_pmf(np.eye(b), np.eye(b), prior)
    via_a1 = -float(np.mean(np.log(b * np.diagonal(pmf))))
    assert abs(via_a1 - infonce_loss(scores)) <= 1e-12 * b


@given(score_matrices(max_size=6, max_magnitude=10.0, masked=True))
@settings(max_examples=30)
def test_reference_gradient_matches_central_differences(scores):
    """(softmax − I)/B against (loss(L + hE) − loss(L − hE)) / 2h, h = 1e-5: truncation
    h²/6 · |∂³ loss| ≤ 1e-10, rounding ε |loss| / h ≤ 1e-9 (|loss| ≤ 40)."""
    gradient = infonce_loss_gradient(scores)
    h = 1e-5
    for i, j in zip(*np.nonzero(np.isfinite(scores))):
        step = np.zeros_like(scores)
        step[i, j] = h
        numeric = (infonce_loss(scores + step) - infonce_loss(scores - step)) / (2 * h)
        assert abs(numeric - gradient[i, j]) <= 1e-8
    assert np.all(gradient[~np.isfinite(scores)] == 0)


@pytest.mark.parametrize("critic", ["dot", "cosine"])
def test_critic_vjp_matches_central_differences(critic):
    """The chain rule through the dot and cosine critics, entry by entry (h = 1e-6)."""
    rng = np.random.default_rng(3)
    z, z_prime = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    weights = rng.standard_normal((4, 4))
    grad_z, grad_z_prime = critic_vjp(critic, z, z_prime, weights)
    h = 1e-6
    for target, grad, which in ((z, grad_z, 0), (z_prime, grad_z_prime, 1)):
        for index in np.ndindex(target.shape):
            plus, minus = [z.copy(), z_prime.copy()], [z.copy(), z_prime.copy()]
            plus[which][index] += h
            minus[which][index] -= h
            numeric = (np.sum(weights * critic_scores(critic, *plus))
                       - np.sum(weights * critic_scores(critic, *minus))) / (2 * h)
            assert abs(numeric - grad[index]) <= 1e-7


def test_cosine_critic_is_the_normalised_dot_product():
    rng = np.random.default_rng(4)
    z, z_prime = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    expected = [[a @ b / math.sqrt((a @ a) * (b @ b)) for b in z_prime] for a in z]
    np.testing.assert_allclose(critic_scores("cosine", z, z_prime), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(critic_scores("dot", z, z_prime), z @ z_prime.T)


def test_reference_rejects_bad_logits():
    with pytest.raises(ValueError, match=r"square \(B, B\)"):
        infonce_loss(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"finite diagonal.*\(1, 1\) is -inf"):
        infonce_loss(np.array([[0.0, 1.0], [0.0, -np.inf]]))
    with pytest.raises(ValueError, match=r"NaN or \+inf; entry \(0, 1\)"):
        infonce_loss(np.array([[0.0, np.nan], [0.0, 1.0]]))


# ------------------------------------------------------------------ the cases

SETTINGS = [("scores", None, None), ("scores", 0.5, None), ("embeddings", 0.1, "cosine"),
            ("embeddings", None, "dot"), ("embeddings", 2.0, "dot")]


@pytest.mark.parametrize("trials", [15, 50])
@pytest.mark.parametrize("kind,temperature,critic", SETTINGS)
def test_cases_tell_every_pair_of_mistakes_apart(kind, temperature, critic, trials):
    """On the cases of seeds 0–2, the exact loss and each applicable transformation differ
    pairwise by more than 0.05 nats and 1e4 tolerances on some ordinary case, so at most
    one of them matches a loss's values."""
    codes = [None] + [c for c in TRANSFORMATIONS if applicable(c, kind, temperature)]
    for seed in range(3):
        cases = [c for c in make_cases(kind, trials, seed, temperature, critic) if not c.extreme]
        values = {code: np.array([infonce_loss(c.logits) if code is None else
                                  transformation_value(code, c) for c in cases])
                  for code in codes}
        scale = np.array([8 * EPS * (c.batch_size + c.dim + 1)
                          * max(1.0, np.abs(c.logits[np.isfinite(c.logits)]).max())
                          for c in cases])
        for a in codes:
            for b in codes[codes.index(a) + 1:]:
                assert np.max(np.abs(values[a] - values[b]) / scale) > 1e4, (seed, a, b)
                assert np.max(np.abs(values[a] - values[b])) > 0.05, (seed, a, b)


def test_cases_are_seeded_and_vary():
    first, again = make_cases("scores", 10, 7, 0.5), make_cases("scores", 10, 7, 0.5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.scores, b.scores)
    assert len({c.batch_size for c in first}) >= 5
    assert {c.label for c in first} == {"ordinary", "large", "masked"}
    assert all(not np.allclose(c.logits, c.logits.T) for c in first)
    np.testing.assert_allclose(first[0].logits, first[0].scores / 0.5, rtol=0, atol=0)
    other = make_cases("scores", 10, 8, 0.5)
    assert not np.array_equal(first[0].scores, other[0].scores)


# ------------------------------------------------------------------ the report and arguments

def right_numpy(scores):
    """A plain-NumPy right loss (autograd cannot trace np.exp on its boxes)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return -np.mean(np.diag(shifted) - np.log(np.exp(shifted).sum(axis=1)))


def test_a_plain_numpy_loss_passes_with_gradients_not_checked():
    report = check_infonce(right_numpy)
    assert report.passed and report.diagnosis is None and report.cases == 50
    assert report.framework == "numpy" and report.gradient.startswith("not checked")
    assert report.max_gradient_error is None
    expected = max(abs(right_numpy(c.scores) - infonce_loss(c.logits))
                   for c in make_cases("scores", 50, 0))
    assert report.max_error == expected


def test_an_autograd_loss_has_its_gradient_checked():
    fn = implementations(numpy_ops())["right"][2]
    report = check_infonce(fn, trials=10)
    assert report.passed and report.gradient.startswith("matches")
    assert 0 <= report.max_gradient_error <= 1e-12


def test_report_table_json_and_text():
    fn = implementations(numpy_ops())["columns"][2]
    report = check_infonce(fn, trials=12)
    text = str(report)
    assert "FAILED: transposed" in text and DIAGNOSES["transposed"] in text
    head = next(line for line in text.splitlines() if line.startswith("case"))
    assert head.split()[-1] == "transposed"             # the table's extra column
    assert "... 2 more cases" in text
    assert len(report.table().splitlines()) == 1 + 12
    data = json.loads(json.dumps(report.to_dict()))
    assert data["diagnosis"] == "transposed" and len(data["results"]) == 12
    for row in data["results"]:
        assert row["value"] == pytest.approx(row["diagnosed"], abs=row["tolerance"])


def test_small_errors_get_a_precision_note_and_eps_accepts_them():
    fn = implementations(numpy_ops())["float32 inside"][2]
    report = check_infonce(fn, trials=10)
    assert report.diagnosis == "unknown"
    assert any("float32" in note for note in report.notes)
    assert check_infonce(fn, trials=10, eps=float(np.finfo(np.float32).eps)).passed


def test_a_float32_result_gets_float32_tolerance():
    report = check_infonce(lambda s: np.float32(right_numpy(s.astype(np.float32))), trials=10)
    assert report.passed and report.eps == float(np.finfo(np.float32).eps)


def test_notes_say_what_could_not_be_seen():
    report = check_infonce(right_numpy, trials=4)
    assert any("temperature" in n for n in report.notes)
    assert any("no extreme cases" in n for n in report.notes)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(kind="pairs"), ValueError, "kind must be"),
    (dict(kind="embeddings"), ValueError, "needs critic="),
    (dict(critic="dot"), ValueError, "only used with kind='embeddings'"),
    (dict(temperature=0.0), ValueError, "temperature must be a positive number"),
    (dict(temperature="hot"), ValueError, "temperature must be a positive number"),
    (dict(framework="tensorflow"), ValueError, "framework must be"),
    (dict(trials=0), ValueError, "trials must be >= 1"),
    (dict(trials=10_001), ValueError, "trials must be at most 10000, got 10001"),
    (dict(seed=1.5), TypeError, "seed must be an integer"),
    (dict(eps=2.0), ValueError, "eps must be a machine epsilon"),
    (dict(gradients="no"), TypeError, "gradients must be True or False, got 'no'"),
    (dict(gradients=None), TypeError, "gradients must be True or False"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_infonce(right_numpy, **kwargs)


def test_not_callable_and_failing_functions():
    with pytest.raises(TypeError, match="fn must be callable"):
        check_infonce(3.0)

    def broken(scores):
        raise RuntimeError("boom")
    if adapters.installed("torch") or adapters.installed("jax"):   # each was tried, and failed
        with pytest.raises(adapters.FunctionFailed, match="could not be called with NumPy, "
                                                          "torch or jax") as failed:
            check_infonce(broken)
        assert isinstance(failed.value.__cause__, RuntimeError)
    with pytest.MonkeyPatch.context() as patch:       # NumPy alone: the function's own error
        patch.setattr(adapters, "installed", lambda framework: False)
        with pytest.raises(RuntimeError, match="boom"):
            check_infonce(broken)
    with pytest.raises(RuntimeError, match="boom") as info:
        check_infonce(broken, framework="numpy")
    assert "case 0" in " ".join(getattr(info.value, "__notes__", ["case 0"]))


def test_the_checked_function_cannot_change_the_reference():
    """Inputs are copies: a loss that overwrites its scores in place is still judged fairly."""
    def in_place(scores):
        value = right_numpy(scores)
        scores[:] = 0.0
        return value
    assert check_infonce(in_place, trials=10).passed


def test_importing_rpmref_needs_no_torch_jax_or_hypothesis():
    import subprocess
    import sys
    code = ("import sys, rpmref, rpmref.testing, rpmref.cli;"
            "print(sorted(m for m in ('torch', 'jax', 'hypothesis') if m in sys.modules))")
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_torch_and_jax_are_imported_only_inside_the_adapters():
    """No torch or jax in rpmref's computations: only adapters.py names them, in functions."""
    import ast
    root = __import__("pathlib").Path(rpmref.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("torch", "jax") for n in names):
                assert path.name == "adapters.py", path
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not any(a.name.split(".")[0] in ("torch", "jax") for n in top_level
                       if isinstance(n, ast.Import) for a in n.names), path


# ------------------------------------------------------------------ frameworks

def test_auto_finds_torch_for_cross_entropy_and_checks_its_gradient():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def cross_entropy(scores):
        return F.cross_entropy(scores, torch.arange(scores.shape[0]))
    report = check_infonce(cross_entropy)
    assert report.passed and report.framework == "torch"
    assert "fails on NumPy arrays" in report.framework_reason
    assert report.gradient.startswith("matches") and report.max_gradient_error <= 1e-12


def test_auto_reads_annotations_and_return_types():
    torch = pytest.importorskip("torch")

    def annotated(scores: torch.Tensor):
        return -torch.mean(torch.diagonal(torch.log_softmax(scores, dim=1)))

    def converts(scores):
        s = torch.as_tensor(scores)
        return -torch.mean(torch.diagonal(torch.log_softmax(s, dim=1)))
    first = check_infonce(annotated, trials=5)
    second = check_infonce(converts, trials=5)
    assert first.framework_reason == "its parameter annotations" and first.passed
    assert second.framework == "torch" and "returns a torch array" in second.framework_reason
    assert second.passed and second.gradient.startswith("matches")


def test_a_float32_torch_loss_conforms_at_float32_precision():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    report = check_infonce(lambda s: F.cross_entropy(s.float(), torch.arange(s.shape[0])),
                           trials=10)
    assert report.passed and report.eps == float(np.finfo(np.float32).eps)
    assert report.max_error > 1e-9            # float32 rounding, accepted by its tolerance


def test_a_detached_torch_loss_has_a_broken_gradient():
    torch = pytest.importorskip("torch")
    case = make_cases("scores", 1, 0)[0]
    outcome = adapters.evaluate(lambda s: torch.logsumexp(s, 1).mean().detach(), "torch",
                                case.inputs)
    assert outcome.gradient_status == "broken" and "detached" in outcome.reason


def test_jax_falls_back_to_eager_when_jit_cannot_trace():
    """Python control flow on values defeats jax.jit; the eager call still gives the value,
    and jax.grad, which cannot take float() of a traced value either, reports a broken
    gradient (a loss jax cannot train)."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def branchy(scores):
        loss = -jnp.mean(jnp.diagonal(jax.nn.log_softmax(scores, axis=1)))
        return loss if float(scores[0, 0]) > -1e9 else loss * 0.0
    case = make_cases("scores", 1, 0)[0]
    values = adapters.evaluate(branchy, "jax", case.inputs, gradients=False)
    assert values.value == pytest.approx(infonce_loss(case.logits), abs=1e-14)
    assert values.dtype == np.float64
    differentiated = adapters.evaluate(branchy, "jax", case.inputs)
    assert differentiated.gradient_status == "broken"           # float() of a tracer
    assert "jax.grad cannot differentiate" in differentiated.reason


def test_asking_for_a_missing_framework_says_how_to_install(monkeypatch):
    real = adapters.importlib.import_module

    def no_torch(name, *args):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real(name, *args)
    monkeypatch.setattr(adapters.importlib, "import_module", no_torch)
    with pytest.raises(ImportError, match=r"needs torch, which is not installed \(pip install"):
        check_infonce(right_numpy, framework="torch")


def test_embedding_loss_is_the_loss_of_the_critic_scores_and_checks_its_inputs():
    from rpmref.testing import embedding_loss
    rng = np.random.default_rng(5)
    z, z_prime = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert embedding_loss(z, z_prime, "dot", 0.5) == infonce_loss(z @ z_prime.T / 0.5)
    with pytest.raises(ValueError, match="same dimension D"):
        embedding_loss(z, z_prime[:, :2], "dot")
    with pytest.raises(ValueError, match="z_prime row 1 is zero"):
        embedding_loss(z, np.vstack([z_prime[:1], np.zeros((1, 3)), z_prime[2:]]), "cosine")
    with pytest.raises(ValueError, match="critic must be 'dot', 'cosine' or a callable"):
        embedding_loss(z, z_prime, "rbf")
    with pytest.raises(ValueError, match=r"temperature must be in \(0, inf\), got -1.0"):
        embedding_loss(z, z_prime, "dot", -1.0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(temperature="abc"), TypeError, "temperature must be a real number, got 'abc'"),
    (dict(temperature=[1, 2]), TypeError, "temperature must be a real number"),
    (dict(temperature=1j), TypeError, "temperature must be a real number"),
    (dict(temperature=True), TypeError, "temperature must be a real number, got True"),
    (dict(temperature=np.nan), ValueError, "temperature must be"),
    (dict(temperature=np.inf), ValueError, "temperature must be a finite"),
    (dict(z_prime=np.eye(3)[:1]), ValueError, "z and z_prime must hold the same number B "
                                              "of rows"),
    (dict(critic=lambda z, z_prime: np.full((3, 3), np.nan)), ValueError,
     r"critic\(z, z_prime\) must return finite scores .*entry \(0, 0\) is nan"),
])
def test_embedding_loss_names_each_bad_argument(kwargs, error, match):
    from rpmref.testing import embedding_loss
    arguments = dict(z=np.eye(3), z_prime=np.eye(3), critic="dot") | kwargs
    with pytest.raises(error, match=match):
        embedding_loss(**arguments)


def test_embedding_loss_takes_a_zero_dimensional_tensor_as_temperature():
    torch = pytest.importorskip("torch")
    from rpmref.testing import embedding_loss
    z, z_prime = np.eye(3), np.eye(3)[::-1]
    expected = embedding_loss(z, z_prime, "dot", 0.5)
    assert embedding_loss(z, z_prime, "dot", torch.tensor(0.5, dtype=torch.float64)) == expected
    assert embedding_loss(z, z_prime, "dot", torch.nn.Parameter(
        torch.tensor(0.5, dtype=torch.float64))) == expected
    with pytest.raises(TypeError, match="temperature must be a real number"):
        embedding_loss(z, z_prime, "dot", torch.tensor([0.5]))


def test_a_decorator_that_takes_the_temperature_is_called_with_it():
    """functools.wraps copies the wrapped loss's signature (scores): the decorator's own,
    (scores, t), is what takes the temperature, so the check goes ahead."""
    import functools

    def tempered(loss):
        @functools.wraps(loss)
        def with_temperature(scores, t):
            return loss(scores / t)
        return with_temperature
    assert check_infonce(tempered(right_numpy), temperature=0.5, trials=5).passed


def test_a_callable_critic_that_raises_says_what_it_is_given():
    def torch_style_critic(z, z_prime):
        return z.mm(z_prime.T)          # a torch method: NumPy arrays have no .mm
    with pytest.raises(AttributeError) as failure:
        check_infonce(lambda z, z_prime: 0.0, kind="embeddings", critic=torch_style_critic)
    assert "which is given NumPy float64 arrays z (B, D)" in " ".join(failure.value.__notes__)


def test_a_callable_critic_returning_nan_is_named_before_the_loss_is_called():
    calls = []

    def loss(z, z_prime):
        calls.append(1)
        return 0.0
    with pytest.raises(ValueError, match=r"critic\(z, z_prime\) must return finite scores"):
        check_infonce(loss, kind="embeddings",
                      critic=lambda z, z_prime: np.full((len(z), len(z_prime)), np.nan))
    assert calls == []


def test_a_callable_critic_masking_a_positive_is_named_before_the_loss_is_called():
    """Bug: a critic giving a positive pair −inf was found only after the loss had been
    called on every case, as 'logits must have a finite diagonal', naming no critic."""
    calls = []

    def loss(z, z_prime):
        calls.append(1)
        return 0.0

    def masks_positives(z, z_prime):
        scores = z @ z_prime.T
        np.fill_diagonal(scores, -np.inf)
        return scores
    with pytest.raises(ValueError, match=r"critic\(z, z_prime\) must give every positive "
                                         r"pair .* entry \(0, 0\) is -inf"):
        check_infonce(loss, kind="embeddings", critic=masks_positives)
    assert calls == []


def test_temperature_given_to_a_loss_that_takes_none_says_how_to_check_it():
    class Cosine:
        temperature = 0.1

        def __call__(self, z, z_prime):
            u = z / np.linalg.norm(z, axis=1, keepdims=True)
            v = z_prime / np.linalg.norm(z_prime, axis=1, keepdims=True)
            return right_numpy(u @ v.T / self.temperature)
    loss = Cosine()
    with pytest.raises(TypeError, match=r"fn takes no temperature .*check lambda z, z_prime, "
                                        r"t: fn\(z, z_prime\) with temperature=0.1"):
        check_infonce(loss, kind="embeddings", critic="cosine", temperature=0.1)
    report = check_infonce(lambda z, z_prime, t: loss(z, z_prime), kind="embeddings",
                           critic="cosine", temperature=0.1, trials=10)
    assert report.passed


def test_temperature_for_a_loss_with_only_kwargs_says_to_name_the_parameter():
    """def loss(scores, **kwargs) was told only "fn takes no temperature": the temperature is
    given by name to a parameter called temperature, tau, ..., never into **kwargs, and the
    message now says so; one named tau takes it."""
    def loss(scores, **kwargs):
        return right_numpy(scores)
    with pytest.raises(TypeError, match=r"a \*\*kwargs parameter is not given one: name a "
                                        r"parameter temperature or tau"):
        check_infonce(loss, temperature=0.5)
    report = check_infonce(lambda scores, tau: right_numpy(scores / tau), temperature=0.5,
                           trials=10)
    assert report.passed


def test_embedding_loss_with_a_temperature_that_overflows_the_logits_names_it():
    """embedding_loss(..., temperature=1e-320) said "logits must not contain NaN or +inf"
    after a RuntimeWarning: the logits are scores / τ, and τ is what the caller chose. At
    τ = 1e-300 the logits (|score| ≤ 1) still fit: with z = z' under the cosine critic each
    positive (1e300) beats the other logits (0 or −1e300) by 1e300, so every log-sum-exp is
    its positive exactly and the loss is exactly 0."""
    import warnings
    from rpmref.testing import embedding_loss
    z = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"temperature=1e-320 makes the logits scores / "
                                             r"temperature overflow float64 \(\|score\| up to 1\)"):
            embedding_loss(z, z, "cosine", temperature=1e-320)
        assert embedding_loss(z, z, "cosine", temperature=1e-300) == 0.0


def test_a_loss_that_ignores_its_input_gets_no_temperature_note():
    """log B on every case is the loss of equal logits (the limit τ → ∞), not a fixed
    temperature: the note says the loss does not see its input."""
    report = check_infonce(lambda scores: np.log(len(scores)), trials=10)
    assert not report.passed and not any("temperature τ" in note for note in report.notes)
    assert any(note.startswith("every value is log B") for note in report.notes)
    report = check_infonce(lambda scores: right_numpy(scores * 0.0), trials=10)
    assert any(note.startswith("every value is log B") for note in report.notes)


def mp_infonce_loss_shifted(logits, dps=50):
    """(1/B) Σ_i log Σ_j e^{L_ij − L_ii}: only differences of scores, so 50 digits suffice at
    any magnitude (L_ii − log Σ e^{L_ij} at |L| = 1e308 would need 330)."""
    with mpmath.workdps(dps):
        b = logits.shape[0]
        total = mpmath.mpf(0)
        for i in range(b):
            diag = mpmath.mpf(logits[i, i])
            total += mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - diag)
                                            for v in logits[i] if np.isfinite(v)))
        return float(total / b)


@pytest.mark.parametrize("magnitude", [1e16, 1e200, 1e308])
@pytest.mark.parametrize("b", [2, 3, 7])
def test_reference_loss_keeps_log_b_at_scores_near_the_float64_maximum(magnitude, b):
    """Bug: log_softmax was a − logsumexp(a), which adds log Σ e^{a − max} ≤ log B to the
    maximum and takes it back: at |a| ≥ 1e16 the log is rounded away, so
    infonce_loss([[1e308, 1e308], [1e308, 1e308]]) was 0 instead of log 2.

    Tolerance: each row term log Σ_j e^{s_j} − s_ii (s = L − max L ≤ 0) carries the
    rounding of s_ii (≤ ε |s_ii| ≤ ε · term) and of a log-sum-exp of B terms in [0, log B]
    ((B + 2) ε (1 + log B)); so 4 ε (B + 2) (loss + log B + 1) in all."""
    rng = np.random.default_rng(b)
    logits = magnitude * rng.uniform(-0.5, 1.0, size=(b, b))
    logits[np.arange(b), (np.arange(b) + 1) % b] = logits[np.arange(b), np.arange(b)]  # ties
    logits[0] = magnitude                                                            # a flat row
    expected = mp_infonce_loss_shifted(logits)
    tol = 4 * EPS * (b + 2) * (abs(expected) + math.log(b) + 1)
    assert abs(infonce_loss(logits) - expected) <= tol
    assert infonce_loss(np.full((2, 2), 1.7976931348623157e308)) == pytest.approx(math.log(2),
                                                                                    rel=4 * EPS)


def test_reference_loss_is_finite_when_one_row_term_is_beyond_float64():
    """A row whose positive is −1e308 beside a negative at +1e308 has −log softmax = 2e308,
    beyond float64, but the mean over B = 4 rows, 5e307, is not: the loss is summed from
    halved row terms, each divided by B (a plain mean overflowed to inf)."""
    logits = np.zeros((4, 4))
    logits[0, 0], logits[0, 1] = -1e308, 1e308
    expected = mp_infonce_loss_shifted(logits)
    assert expected == pytest.approx(5e307, rel=1e-15)
    assert abs(infonce_loss(logits) - expected) <= 4 * EPS * 6 * (expected + math.log(4) + 1)


# ------------------------------------------------------------------ review fixes

def right_torch_loss():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return torch, F, lambda s: F.cross_entropy(s, torch.arange(s.shape[0]))


def test_a_float16_loss_is_not_passed_even_with_an_epsilon_inside():
    """Bug: the tolerance took float16's ε, 2.97 nats at B = 16, and this loss, 0.02 off
    inside the log, PASSED. A float16 value cannot tell the mistakes apart: no pass, no
    'unstable' or 'gradient', but 'half-precision' with the numbers behind it."""
    torch, F, _ = right_torch_loss()

    def half_eps(scores):
        s = scores.half()
        m = s.max(1, keepdim=True).values
        return (torch.log(torch.exp(s - m).sum(1) + 0.02) + m[:, 0] - s.diag()).mean()
    report = check_infonce(half_eps)
    assert not report.passed and report.diagnosis == "half-precision"
    assert report.eps == 2.0 ** -10 and report.gradient == "not checked"
    note = next(n for n in report.notes if n.startswith("float16"))
    assert "differs from the exact loss by at most" in note and "float32 or float64" in note
    lab = lambda s: torch.arange(len(s))                                     # noqa: E731
    symmetric = check_infonce(lambda s: (F.cross_entropy(s.half(), lab(s))
                                         + F.cross_entropy(s.half().T, lab(s))) / 2, trials=20)
    assert symmetric.diagnosis == "half-precision"


def test_a_bfloat16_result_is_half_precision(monkeypatch):
    """A result whose dtype is reported as 'bfloat16' (NumPy has none) gets its ε, 2^-7."""
    real = adapters.evaluate

    def as_bfloat16(*args, **kwargs):
        return real(*args, **kwargs)._replace(dtype="bfloat16")
    monkeypatch.setattr(adapters, "evaluate", as_bfloat16)
    report = check_infonce(right_numpy, trials=10)
    assert report.diagnosis == "half-precision" and report.eps == 2.0 ** -7
    assert any(n.startswith("bfloat16 (ε = 0.0078)") for n in report.notes)


def test_an_additive_epsilon_in_the_norm_is_not_the_exact_loss_and_the_note_says_so():
    """z / (‖z‖ + 1e-8) moves the loss by ~1e-9 relative: not rounding, so not accepted;
    the note names it (the old note advised an eps= the command line does not have)."""
    def additive(z, z_prime, t):
        u = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-8)
        v = z_prime / (np.linalg.norm(z_prime, axis=1, keepdims=True) + 1e-8)
        return right_numpy(u @ v.T / t)

    def clamped(z, z_prime, t):                      # F.normalize's max(‖z‖, ε): exact here
        u = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-8)
        v = z_prime / np.maximum(np.linalg.norm(z_prime, axis=1, keepdims=True), 1e-8)
        return right_numpy(u @ v.T / t)
    options = dict(kind="embeddings", critic="cosine", temperature=0.1, trials=10)
    report = check_infonce(additive, **options)
    assert report.diagnosis == "unknown" and 1e-10 < report.max_error < 1e-7
    note = next(n for n in report.notes if "float32's precision" in n)
    assert "additive ε" in note and "not the exact loss" in note and "eps=" not in note
    assert "not .item(), float() or .double()" in note
    assert check_infonce(clamped, **options).passed


def test_nan_on_ordinary_inputs_is_named_with_its_case():
    def nan_from_b_8(scores):
        return right_numpy(scores) if len(scores) < 8 else float("nan")
    report = check_infonce(nan_from_b_8, trials=10)
    assert report.diagnosis == "not-finite"
    assert "it returned nan on case 3 (ordinary, B = 8) and NaN or ±inf on 2 other " \
           "ordinary cases" in report.notes
    assert check_infonce(lambda s: np.inf, trials=3).diagnosis == "not-finite"


def test_nan_only_on_masked_cases_is_not_called_a_missing_max_shift():
    def mask_multiplied(scores):        # shifted, so stable; NaN from 0 · (−inf) when masked
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -np.mean(np.sum(np.eye(len(scores)) * log_prob, axis=1))
    report = check_infonce(mask_multiplied, trials=20)
    assert report.diagnosis == "masked-nan" and "0 · (−inf) = NaN" in report.explanation
    assert "max shift" not in report.explanation

    def transposed_and_masked(scores):
        return mask_multiplied(scores.T)
    report = check_infonce(transposed_and_masked, trials=20)
    assert report.diagnosis == "transposed"
    assert any("gives NaN where negatives are −inf" in n for n in report.notes)


def test_the_temperature_goes_to_a_parameter_named_for_it():
    """Bug: T went to the next positional parameter, here ``normalize``."""
    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    def keyword(z, z_prime, normalize=True, temperature=0.1):
        if normalize:
            z, z_prime = unit(z), unit(z_prime)
        return right_numpy(z @ z_prime.T / temperature)

    def keyword_only(z, z_prime, *, tau=0.1):
        return right_numpy(unit(z) @ unit(z_prime).T / tau)
    options = dict(kind="embeddings", critic="cosine", temperature=0.5, trials=10)
    for fn, name in ((keyword, "temperature"), (keyword_only, "tau")):
        report = check_infonce(fn, **options)
        assert report.passed, str(report)
        assert f"the temperature is passed by name: {name}=T" in report.notes
    positional = check_infonce(lambda s, scale: right_numpy(s / scale), temperature=0.5,
                               trials=10)
    assert positional.passed and not any("by name" in n for n in positional.notes)


@pytest.mark.parametrize("signature, kind, expected", [
    ("scores, t", "scores", "t"), ("scores, T=1.0", "scores", "T"),
    ("scores, *, _temp", "scores", "_temp"), ("z, z_prime, scale, tau=0.1", "embeddings", "tau"),
    ("t, scale", "scores", None),                 # the input itself is called t
    ("z, t, temperature", "embeddings", "temperature"), ("scores, scale", "scores", None),
    ("scores, *args, **kwargs", "scores", None),
])
def test_temperature_parameter_names(signature, kind, expected):
    from rpmref.testing.conformance import temperature_parameter
    namespace = {}
    exec(f"def fn({signature}):\n    pass", namespace)
    assert temperature_parameter(namespace["fn"], kind) == expected


def test_a_temperature_fixed_inside_is_recognised():
    """Values that are loss(S / τ') for a τ' other than the one checked get a note with τ'
    (one parameter fitted to every ordinary case, each within its tolerance)."""
    baked = check_infonce(lambda s: right_numpy(s / 0.2))
    assert baked.diagnosis == "unknown"
    assert any(n.startswith("the values match the loss at temperature τ ≈ 0.2 (checked with "
                            "no temperature)") for n in baked.notes), baked.notes
    other = check_infonce(lambda s, t: right_numpy(s / 0.07), temperature=0.5, trials=20)
    assert any("τ ≈ 0.07 (checked with temperature 0.5)" in n for n in other.notes)
    float32 = check_infonce(implementations(numpy_ops())["float32 inside"][2], trials=10)
    assert not any("match the loss at temperature" in n for n in float32.notes)
    assert not any("match the loss at temperature" in n for n in check_infonce(
        lambda s: right_numpy(s / 0.2), trials=2).notes)        # one parameter, two cases



def test_a_longdouble_loss_is_held_to_the_float64_reference():
    """A loss computed and returned in long double (ε = 1.1e-19 on x86) cannot be closer
    to the float64 reference than float64's rounding: it conforms, instead of failing as
    'unknown' with a float32 note."""
    def longdouble_loss(scores):
        s = np.asarray(scores, dtype=np.longdouble)
        top = s.max(axis=1, keepdims=True)
        return np.mean(top[:, 0] + np.log(np.exp(s - top).sum(axis=1)) - np.diagonal(s))
    report = check_infonce(longdouble_loss)
    assert report.passed, report
    assert report.eps == EPS


@pytest.mark.parametrize("temperature", [1e160, 1e306, 1e-101])
def test_a_temperature_beyond_the_cases_range_is_refused_by_name(temperature):
    """Bug: at τ = 1e160 the temperature-inverted mistake's logits L·τ² overflowed, so every
    wrong loss was a ValueError about logits from inside the check; at 1e306 the cases'
    scores L·τ were inf, and a right loss was blamed for them."""
    with pytest.raises(ValueError, match=r"temperature must be in \[1e-100, 1e\+100\]"):
        check_infonce(lambda s, t: right_numpy(s), temperature=temperature)


@pytest.mark.parametrize("temperature", [1e-100, 1e100])
@pytest.mark.parametrize("kind, critic", [("scores", None), ("embeddings", "cosine"),
                                          ("embeddings", "dot")])
def test_temperatures_at_the_ends_of_the_range_are_checked(temperature, kind, critic):
    if kind == "scores":
        def right(s, t):
            return infonce_loss(s / t)

        def wrong(s, t):
            return infonce_loss(s.T / t)
    else:
        def right(z, z_prime, t):
            return infonce_loss(critic_scores(critic, z, z_prime) / t)

        def wrong(z, z_prime, t):
            return infonce_loss(critic_scores(critic, z_prime, z) / t)
    assert check_infonce(right, kind=kind, critic=critic, temperature=temperature,
                         trials=10).passed
    report = check_infonce(wrong, kind=kind, critic=critic, temperature=temperature,
                           trials=10)
    # cosines / 1e100 are logits of ~1e-100: every loss is log B there, the transposed one too
    vanishing = critic == "cosine" and temperature > 1
    assert report.diagnosis == (None if vanishing else "transposed")


def test_the_checks_do_their_own_arithmetic_whatever_numpy_error_state_is_set():
    """Bug: under np.seterr(all="raise") (set by the caller or at the checked module's
    import) the exact loss's harmless underflow on masked logits was a FloatingPointError,
    reported by check-infonce as the loss raising."""
    with np.errstate(all="raise"):
        assert check_infonce(right_numpy, trials=10).passed
        assert check_infonce(lambda s: right_numpy(s.T), trials=10).diagnosis == "transposed"
        assert check_mi_estimator(lambda z, z_prime: 0.0, infonce=True, problems="discrete",
                                  batch_size=8, batches=2).passed
        assert np.geterr()["under"] == "raise"       # the caller's state is left as it was


def test_the_kit_imports_under_numpy_errors_that_raise():
    """Bug: after np.seterr(all="raise") `import rpmref.testing` failed: two module-level
    constants (2^-1074 and the smallest RBF lengthscale) underflowed while computed."""
    code = ("import numpy as np\nnp.seterr(all='raise')\nimport rpmref.testing\n"
            "from rpmref.exact.discrete import SMALLEST_SUBNORMAL\n"
            "from rpmref.gaussian.closed_form import MIN_LENGTHSCALE\n"
            "print(SMALLEST_SUBNORMAL.hex(), MIN_LENGTHSCALE.hex())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    with np.errstate(under="ignore"):
        expected = float(np.nextafter(0.0, 1.0)).hex()
    assert out.stdout.split()[0] == expected
    assert float.fromhex(out.stdout.split()[1]) ** -2 < np.inf
