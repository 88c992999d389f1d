"""``check_infonce`` and ``rpmref check-infonce`` on losses written the way users write them:
``torch.nn.Module`` subclasses (whose ``__call__`` takes ``*args, **kwargs``), losses of
embeddings checked without ``--kind embeddings``, and losses in training mode (dropout),
whose values change from call to call."""
import numpy as np
import pytest

from rpmref.cli import main
from rpmref.testing import check_infonce


def _rows(logits):
    m = logits.max(axis=1, keepdims=True)
    return -np.mean(np.diag(logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))))


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


class ModuleLike:
    """What torch.nn.Module does: ``__call__(*args, **kwargs)`` runs ``forward``."""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, z, z_prime, normalize=True, temperature=0.1):
        if normalize:
            z, z_prime = _unit(z), _unit(z_prime)
        return _rows(z @ z_prime.T / temperature)


def test_a_module_is_described_by_its_forward():
    from rpmref.testing.adapters import call_signature
    assert list(call_signature(ModuleLike()).parameters) == ["z", "z_prime", "normalize",
                                                             "temperature"]


def test_a_module_gets_the_temperature_in_its_forwards_parameter():
    """Given positionally, τ = 0.2 would land in ``normalize`` and the default 0.1 be used."""
    report = check_infonce(ModuleLike(), kind="embeddings", critic="cosine", temperature=0.2,
                           trials=10)
    assert report.passed, str(report)
    assert "the temperature is passed by name: temperature=T" in report.notes


def test_a_torch_module_gets_the_temperature_in_its_forwards_parameter():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional

    class InfoNCE(torch.nn.Module):
        def forward(self, z, z_prime, normalize=True, temperature=0.1):
            if normalize:
                z, z_prime = functional.normalize(z, dim=-1), functional.normalize(z_prime, dim=-1)
            return functional.cross_entropy(z @ z_prime.T / temperature,
                                            torch.arange(z.shape[0]))
    report = check_infonce(InfoNCE(), kind="embeddings", critic="cosine", temperature=0.2,
                           trials=10)
    assert report.passed and report.framework == "torch", str(report)


def test_a_loss_in_training_mode_is_diagnosed_non_deterministic():
    rng = np.random.default_rng()       # unseeded on purpose: a new mask on every call

    def dropout_loss(scores):
        keep = rng.random(scores.shape) >= 0.1
        return _rows(np.where(keep, scores / 0.9, 0.0))
    report = check_infonce(dropout_loss, trials=10)
    assert report.diagnosis == "non-deterministic", str(report)
    assert any("on the same input" in note for note in report.notes)


def test_a_deterministic_wrong_loss_is_not_called_non_deterministic():
    report = check_infonce(lambda s: _rows(s.T), trials=10)
    assert report.diagnosis == "transposed"


def test_a_torch_module_with_dropout_is_diagnosed_non_deterministic(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "dropout_loss.py"
    path.write_text(
        "import torch\n"
        "import torch.nn.functional as F\n\n"
        "class Loss(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.drop = torch.nn.Dropout(0.1)   # modules start in training mode\n\n"
        "    def forward(self, scores):\n"
        "        return F.cross_entropy(self.drop(scores), torch.arange(scores.shape[0]))\n\n"
        "loss = Loss()\n")
    code = main(["check-infonce", f"{path}:loss", "--trials", "10"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED: non-deterministic" in out


LOSSES = '''
import numpy as np

def _rows(logits):
    m = logits.max(axis=1, keepdims=True)
    return -np.mean(np.diag(logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))))

def dot(z1, z2):
    return _rows(z1 @ z2.T)

def dot_tempered(z1, z2, temperature):
    return _rows(z1 @ z2.T / temperature)

def scores_loss(scores):
    return _rows(scores)

def tempered_scores(scores, tau):
    return _rows(scores / tau)

def default_temperature(scores, temperature=0.2):
    return _rows(scores / temperature)

class Module:
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, z1, z2):
        return dot(z1, z2)

module = Module()
'''


@pytest.fixture
def losses(tmp_path):
    path = tmp_path / "user_losses.py"
    path.write_text(LOSSES)
    return path


def run(capsys, *argv):
    code = main(["check-infonce", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("target,options,hint", [
    ("dot", [], "--kind embeddings --critic cosine or dot)"),
    ("dot_tempered", [], "--kind embeddings --critic cosine or dot and --temperature T"),
    ("dot_tempered", ["--temperature", 0.5], "--kind embeddings --critic cosine or dot)"),
    ("module", [], "--kind embeddings --critic cosine or dot)"),
    ("scores_loss", ["--kind", "embeddings", "--critic", "dot"], "--kind scores)"),
    ("tempered_scores", [], "add --temperature T if it takes a temperature"),
])
def test_a_loss_of_the_other_kind_is_a_usage_error_naming_kind(capsys, losses, target, options,
                                                               hint):
    """(scores, tau) without --temperature is told about --temperature, not --kind."""
    code, out, err = run(capsys, f"{losses}:{target}", *options, "--trials", 5)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert hint in err


def test_the_hinted_command_runs(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:module", "--kind", "embeddings", "--critic", "dot",
                       "--trials", 5)
    assert code == 0 and out.startswith("InfoNCE conformance PASSED")


def test_a_torch_loss_rebuilt_from_its_value_has_no_gradient_path():
    """A new leaf tensor requires grad but no gradient reaches the inputs: said so, not
    reported as a gradient that is wrong by 100%."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional

    def rebuilt(scores):
        value = functional.cross_entropy(scores, torch.arange(scores.shape[0])).item()
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)
    report = check_infonce(rebuilt, trials=5)
    assert report.diagnosis == "gradient"
    assert "no gradient reaches its inputs" in report.gradient, report.gradient


@pytest.mark.parametrize("mistake,named", [
    (lambda estimate, log_n: estimate - log_n, "log N left out"),
    (lambda estimate, log_n: log_n - estimate, "the loss (log N − estimate) instead"),
    (lambda estimate, log_n: estimate / np.log(2.0), "in bits"),
    (lambda estimate, log_n: estimate + 0.5, None),
])
def test_an_mi_estimator_with_a_classic_mistake_is_told_which(mistake, named):
    from rpmref.testing import check_mi_estimator

    def estimator(z, z_prime, critic):
        s = critic(z, z_prime)
        log_n = np.log(len(z))
        return mistake(log_n - _rows(s), log_n)
    report = check_mi_estimator(estimator, critic=True, infonce=True, problems="discrete",
                                batches=30)
    text = " ".join(f for r in report.results for f in r.failures)
    assert report.passed is False and "biased for the N-sample InfoNCE objective" in text
    if named is None:                   # a bias no mistake explains gets no name
        assert "it matches the mean of" not in text
    else:
        assert all(named in " ".join(r.failures) for r in report.results), text


def test_a_fixed_temperature_loss_with_a_temperature_parameter(capsys, losses):
    """--fixed-temperature on def loss(scores, temperature=0.2): called without T, whatever
    its parameter is named (the wrapper that drops T was handed temperature=T)."""
    code, out, err = run(capsys, f"{losses}:default_temperature", "--fixed-temperature", 0.2,
                         "--trials", 5)
    assert code == 0 and out.startswith("InfoNCE conformance PASSED"), err
    assert "passed by name" not in out and "--fixed-temperature" in out


def test_a_nan_gradient_is_named_as_such():
    """Right values, NaN gradient (0 · ∂sqrt(0)): said to be NaN, with the case, not
    'relative error up to nan'."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional

    def loss(scores):
        value = functional.cross_entropy(scores, torch.arange(scores.shape[0]))
        return value + 0 * torch.sqrt(scores - scores).sum()
    report = check_infonce(loss, trials=4)             # ordinary cases: the values are right
    assert report.diagnosis == "gradient"
    assert "NaN or ±inf in the gradient on 4 of 4 cases, the first case 0" in report.gradient
    assert np.isnan(report.max_gradient_error)


def test_framework_auto_hands_an_mi_estimator_what_framework_torch_does():
    """No gradient is taken of an MI estimate, so torch inputs do not require grad: a torch
    estimator calling z.numpy() works with framework="auto" as with "torch" (detection
    tried it on tensors that required grad, and it failed on every framework)."""
    torch = pytest.importorskip("torch")
    from rpmref.testing import check_mi_estimator

    def estimator(z, z_prime, critic):
        scores = torch.as_tensor(critic(z.numpy(), z_prime.numpy()))
        return np.log(len(z)) - torch.nn.functional.cross_entropy(scores,
                                                                  torch.arange(len(z)))
    options = dict(critic=True, infonce=True, problems="discrete", batches=5)
    auto = check_mi_estimator(estimator, framework="auto", **options)
    torch_inputs = check_mi_estimator(estimator, framework="torch", **options)
    assert auto.passed and [r.mean for r in auto.results] == [r.mean for r in
                                                              torch_inputs.results]


def test_gradients_false_detects_torch_with_the_tensors_it_will_get():
    """With gradients=False the tensors do not require grad, in detection as in the check."""
    torch = pytest.importorskip("torch")

    def loss(scores):
        return _rows(scores.numpy())      # fails on NumPy arrays and on tensors needing grad
    report = check_infonce(loss, gradients=False, trials=5)
    assert report.passed and report.framework == "torch"
