"""``rpmref.testing.adapters``: how a user's loss is called in NumPy, PyTorch or JAX.

Losses written the way people write them: in half precision, dividing their input in
place, turning a NumPy input into a tensor, returning per-anchor losses or a tuple, or
calling ``.item()``; each must be called in the framework it is written for and its
result reported as it is (not as an error of a framework it was never meant for).
"""
import subprocess
import sys
import textwrap
import typing

import numpy as np
import pytest

from rpmref.testing import adapters, check_infonce, infonce_loss, infonce_loss_gradient
from rpmref.testing.cases import make_cases


@pytest.fixture
def case():
    return make_cases("scores", 1, 0)[0]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def cross_entropy(torch, scores):
    return torch.nn.functional.cross_entropy(scores, torch.arange(scores.shape[0]))


# ------------------------------------------------------------------ half precision

@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_a_half_precision_torch_result_comes_back_exactly_with_its_dtype(torch, case, name):
    half = getattr(torch, name)
    computed = {}

    def loss(scores):
        computed["out"] = cross_entropy(torch, scores.to(half))
        return computed["out"]
    outcome = adapters.evaluate(loss, "torch", case.inputs)
    assert outcome.value == float(computed["out"].detach().double())
    assert str(outcome.dtype) == name and outcome.dtype.name == name
    assert outcome.dtype.itemsize == 2 and outcome.dtype.kind == "f"
    assert outcome.gradient_status == "ok"
    assert outcome.gradients[0].dtype == np.float64 and np.isfinite(outcome.gradients[0]).all()
    assert adapters.scalar(torch.tensor(1.5, dtype=half)) == (1.5, name)


def test_a_float16_dtype_is_numpys_and_float32_is_unchanged(torch):
    assert adapters.scalar(torch.tensor(0.25, dtype=torch.float16))[1] is np.dtype(np.float16)
    assert adapters.scalar(torch.tensor(0.25, dtype=torch.float32)) == (0.25, np.float32)


# ------------------------------------------------------------------ in-place operations

def test_a_torch_loss_may_divide_its_input_in_place(torch):
    """Real logits are not leaves: ``scores /= t`` must work, and the gradient still
    reaches the scores."""
    case = make_cases("scores", 1, 0, temperature=0.5)[0]

    def in_place(scores, temperature):
        scores /= temperature
        return cross_entropy(torch, scores)
    outcome = adapters.evaluate(in_place, "torch", case.inputs, (0.5,))
    assert outcome.value == pytest.approx(infonce_loss(case.logits), rel=1e-14)
    expected = infonce_loss_gradient(case.logits) / 0.5
    np.testing.assert_allclose(outcome.gradients[0], expected, rtol=0, atol=1e-14)
    assert adapters.detect(in_place, case.inputs, (0.5,))[0] == "torch"


def test_a_backward_that_raises_is_a_broken_gradient_not_the_functions_error(torch, case):
    class NoBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("backward not implemented")
    outcome = adapters.evaluate(lambda s: NoBackward.apply(cross_entropy(torch, s)), "torch",
                                case.inputs)
    assert outcome.gradient_status == "broken"
    assert outcome.reason == ("torch.autograd.grad cannot differentiate it (RuntimeError: "
                              "backward not implemented)")


# ------------------------------------------------------------------ choosing the framework

def test_a_numpy_input_turned_into_a_tensor_is_checked_with_numpy_inputs(torch, case):
    def from_numpy(scores: np.ndarray):
        s = torch.from_numpy(scores)
        return cross_entropy(torch, s)
    framework, reason = adapters.detect(from_numpy, case.inputs)
    assert framework == "numpy"
    assert reason == ("it returns a torch array but takes NumPy arrays only "
                      "(torch inputs: TypeError)")
    outcome = adapters.evaluate(from_numpy, "numpy", case.inputs)
    assert outcome.gradient_status == "unavailable" and "returns a torch array" in outcome.reason
    report = check_infonce(from_numpy, trials=5)
    assert report.passed and report.framework == "numpy"
    assert report.gradient.startswith("not checked (it takes NumPy arrays and returns a torch")


def test_per_anchor_losses_in_torch_are_diagnosed_not_scalar(torch):
    def per_anchor(scores):
        return torch.nn.functional.cross_entropy(scores, torch.arange(len(scores)),
                                                 reduction="none")
    report = check_infonce(per_anchor, trials=5)
    assert report.framework == "torch" and report.diagnosis == "not-scalar"


@pytest.mark.parametrize("items", [1, 2])
@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_a_loss_returning_a_tuple_is_diagnosed_not_scalar_in_every_framework(request,
                                                                             framework, items):
    """(loss, logits) is a loss with something extra, in NumPy as in torch: the report says
    so (not an exception in one framework and a report in the other). (loss,) too: NumPy
    read it as a number and torch, with the graph attached, as "not a number"."""
    if framework == "torch":
        torch = request.getfixturevalue("torch")

        def pair(scores):
            return (cross_entropy(torch, scores), scores)[:items]
    else:
        def pair(scores):
            return (infonce_loss(scores), 0.5)[:items]
    report = check_infonce(pair, trials=5)
    assert report.framework == framework and report.diagnosis == "not-scalar"
    assert f"returned a tuple of {items} item{'s' if items > 1 else ''}," in report.notes[0]
    assert "return the loss alone" in report.notes[0]


@pytest.mark.parametrize("returned,shown", [
    (lambda torch, loss: {"loss": loss}, "returned a dict ({'loss': tensor("),
    (lambda torch, loss: loss.to(torch.complex128), "returned a Tensor (tensor("),
    # a bool was taken as the loss 1.0 (check_mi_estimator already refused it)
    (lambda torch, loss: bool(loss > 0), "returned a bool (True)"),
    (lambda torch, loss: loss > 0, "returned a Tensor (tensor(True")])
def test_a_torch_loss_returning_no_number_says_what_it_returned(torch, returned, shown):
    def loss(scores):
        return returned(torch, cross_entropy(torch, scores))
    with pytest.raises(adapters.NotANumberError) as failure:
        check_infonce(loss, trials=5)
    assert str(failure.value).startswith(shown) and str(failure.value).endswith("not a number")


def _jaxtyping_like(array_type):
    """An annotation as jaxtyping makes them (Float[T, "b b"]): a class from the module
    ``jaxtyping`` whose ``array_type`` is T."""
    return type("Float[T, 'b b']", (), {"__module__": "jaxtyping", "array_type": array_type})


def test_jaxtyping_annotations_name_their_array_type_not_jax(case, monkeypatch):
    """jaxtyping's module name contains "jax", but Float[np.ndarray, ...] is NumPy and
    Float[torch.Tensor, ...] is torch (their reprs show "Tensor", not "torch")."""
    monkeypatch.setattr(adapters, "installed", lambda framework: True)

    def numpy_loss(scores: _jaxtyping_like(np.ndarray)):
        return infonce_loss(scores)

    def numpy_loss_string(scores: 'jaxtyping.Float[np.ndarray, "b b"]'):
        return infonce_loss(scores)
    for loss in (numpy_loss, numpy_loss_string):
        assert adapters.framework_of_annotations(loss) is None
        assert adapters.detect(loss, case.inputs) == ("numpy", "it accepts NumPy arrays")
    fake_torch = type("Tensor", (), {"__module__": "torch"})
    fake_jax = type("Array", (), {"__module__": "jax"})

    def torch_loss(scores: _jaxtyping_like(fake_torch)):
        pass

    def optional_jax_loss(scores: typing.Optional[fake_jax]):
        pass

    def annotated(scores: typing.Annotated[np.ndarray, "torch"]):
        pass
    assert adapters.framework_of_annotations(torch_loss) == "torch"
    assert adapters.framework_of_annotations(optional_jax_loss) == "jax"
    assert adapters.framework_of_annotations(annotated) is None    # metadata is no type


def test_a_jaxtyping_annotated_torch_loss_is_checked_in_torch(torch):
    def loss(scores: _jaxtyping_like(torch.Tensor)):
        return cross_entropy(torch, scores)
    report = check_infonce(loss, trials=5)
    assert report.passed and report.framework == "torch"
    assert report.framework_reason == "its parameter annotations"


@pytest.mark.parametrize("name, eps", [("float8_e4m3fn", 2.0 ** -3), ("float8_e5m2", 2.0 ** -2)])
def test_a_float8_torch_result_is_diagnosed_half_precision(torch, name, eps):
    """float8 is below single precision as float16 is: its value comes back exactly and
    the check says half-precision (not a crash looking up numpy.finfo of its dtype)."""
    eight = getattr(torch, name)
    assert adapters.scalar(torch.tensor(1.5, dtype=eight)) == (1.5, name)

    def loss(scores):
        return cross_entropy(torch, scores).to(eight)
    report = check_infonce(loss, trials=5)
    assert report.diagnosis == "half-precision" and report.eps == eps


def test_half_precision_eps_is_two_to_minus_the_mantissa_bits():
    """IEEE-style formats with M explicit mantissa bits have ε = 2^-M."""
    expected = {"float16": 10, "bfloat16": 7, "float8_e4m3fn": 3, "float8_e5m2": 2,
                "float8_e4m3b11fnuz": 3, "float8_e3m4": 4, "float4_e2m1fn": 1,
                "float6_e3m2fn": 2, "float8_e8m0fnu": 0}
    for name, bits in expected.items():
        assert adapters.half_precision_eps(name) == 2.0 ** -bits, name
    for name in ("float32", "float64", "int8", "floaty_e4m3"):
        assert adapters.half_precision_eps(name) is None, name


def test_jax_half_and_quarter_precision_results_come_back_with_their_dtype():
    """jax's bfloat16 and 8/4-bit floats are ml_dtypes arrays (NumPy dtype kind "V", or "f"
    for float8_e5m2): a number with its own dtype, not "not a number" or float64."""
    jnp = pytest.importorskip("jax.numpy")
    for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e3m4", "float4_e2m1fn"):
        if hasattr(jnp, name):
            assert adapters.scalar(jnp.asarray(1.5, dtype=getattr(jnp, name))) == (1.5, name)

    def loss(scores):
        rows = scores - jnp.max(scores, axis=1, keepdims=True)
        log_softmax = rows - jnp.log(jnp.sum(jnp.exp(rows), axis=1, keepdims=True))
        return (-jnp.mean(jnp.diag(log_softmax))).astype(jnp.bfloat16)
    report = check_infonce(loss, trials=5, framework="jax")
    assert report.diagnosis == "half-precision" and report.eps == 2.0 ** -7

    def quarter(scores):
        return loss(scores).astype(jnp.float8_e5m2)
    report = check_infonce(quarter, trials=5, framework="jax")
    assert report.diagnosis == "half-precision" and report.eps == 2.0 ** -2


def test_an_annotation_naming_a_missing_framework_is_ignored(case, monkeypatch):
    def annotated(scores: "jax.Array"):
        return infonce_loss(scores)
    monkeypatch.setattr(adapters, "installed", lambda framework: framework != "jax")
    assert adapters.detect(annotated, case.inputs) == ("numpy", "it accepts NumPy arrays")
    monkeypatch.setattr(adapters, "installed", lambda framework: True)
    assert adapters.detect(annotated, case.inputs) == ("jax", "its parameter annotations")


def test_a_torch_loss_calling_item_is_checked_in_torch_and_fails_its_gradient(torch, case):
    """A NumPy input converted to a tensor, the loss returned with .item(): torch ran, and
    torch tensors work too, so it is a torch loss, which cannot be trained."""
    def item(scores):
        return cross_entropy(torch, torch.as_tensor(scores)).item()
    assert adapters.detect(item, case.inputs) == (
        "torch", "it computes in torch, and takes torch tensors")
    report = check_infonce(item, trials=5)
    assert not report.passed and report.diagnosis == "gradient"
    assert report.gradient == ("FAILED: the loss is a float, not a tensor: no gradient "
                               "reaches its inputs (.item() or float() on the loss?)")


def test_a_numpy_loss_that_also_takes_tensors_stays_numpy(torch, case):
    """A plain NumPy loss runs no torch function on NumPy arrays: given tensors it may
    return a float too, and must not be called detached for it."""
    def plain(scores):
        rows = scores.tolist()
        return float(np.mean([np.log(np.sum(np.exp(row))) - row[i]
                              for i, row in enumerate(rows)]))
    assert adapters.evaluate(plain, "torch", case.inputs, gradients=False).value == \
        pytest.approx(infonce_loss(case.logits), rel=1e-12)        # tensors work
    assert adapters.detect(plain, case.inputs) == ("numpy", "it accepts NumPy arrays")


def test_a_loss_importing_torch_itself_is_seen_to_compute_in_torch(tmp_path):
    """torch not imported before the call: the call that imports it is made again, watched."""
    pytest.importorskip("torch")
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from rpmref.testing import adapters

        def item(scores):
            import torch
            s = torch.as_tensor(scores)
            return torch.nn.functional.cross_entropy(s, torch.arange(len(s))).item()
        assert "torch" not in sys.modules
        print(adapters.detect(item, [np.eye(3)])[0])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == "torch"


# ------------------------------------------------------------------ methods

class Loss:
    def __init__(self, temperature):
        self.temperature = temperature

    def forward(self, z, z_prime):
        logits = z @ z_prime.T / self.temperature
        shifted = logits - logits.max(axis=1, keepdims=True)
        return -np.mean(np.diag(shifted) - np.log(np.exp(shifted).sum(axis=1)))


def test_a_method_taken_from_its_class_is_said_to_need_an_instance():
    with pytest.raises(TypeError) as failure:
        check_infonce(Loss.forward, kind="embeddings", critic="dot", temperature=0.5, trials=5)
    assert str(failure.value) == ("Loss.forward is a method: it needs an instance, e.g. "
                                  "Loss(...).forward (taken from the class, its first input "
                                  "became self)")
    assert check_infonce(Loss(1.0).forward, kind="embeddings", critic="dot", trials=5).passed


# ------------------------------------------------------------------ jax traces

#: What the jax losses below read at trace time: a module-level setting, as a notebook's.
SETTINGS = {"scale": 1.0}


def test_a_jax_loss_is_checked_as_it_is_now_not_as_an_earlier_check_traced_it():
    """Bug: jitted traces were kept from one check to the next, so a loss whose global
    setting changed was judged by its old trace (a right loss made wrong still passed)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    def loss(scores):
        logits = scores * SETTINGS["scale"]
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits))
    SETTINGS["scale"] = 1.0
    assert check_infonce(loss, trials=5).passed
    SETTINGS["scale"] = 2.0
    assert check_infonce(loss, trials=5).diagnosis == "unknown"
    SETTINGS["scale"] = 1.0
    assert check_infonce(loss, trials=5).passed

