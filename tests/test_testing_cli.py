"""``rpmref check-infonce MODULE:FUNCTION``: exit 0 conforming, 1 not, 2 usage error (one line)."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rpmref.cli import main

ROOT = Path(__file__).resolve().parent.parent

NUMPY_LOSSES = '''
import numpy as np

def _log_softmax(s, axis):
    m = s.max(axis=axis, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=axis, keepdims=True))

def right(scores):
    return -np.mean(np.diag(_log_softmax(scores, 1)))

def columns(scores):
    return -np.mean(np.diag(_log_softmax(scores, 0)))

def tempered(scores, t):
    return right(scores / t)

def cosine(z, z_prime, t):
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    v = z_prime / np.linalg.norm(z_prime, axis=1, keepdims=True)
    return right(u @ v.T / t)

def naive(scores):
    return -np.mean(np.diag(scores) - np.log(np.exp(scores).sum(axis=1)))

def broken(scores):
    raise ArithmeticError("no loss today")

def words(scores):
    return "hello"

class Losses:
    @staticmethod
    def right(scores):
        return right(scores)

    def method(self, scores):
        return right(scores)

def named_temperature(z, z_prime, normalize=True, temperature=0.1):
    if normalize:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        z_prime = z_prime / np.linalg.norm(z_prime, axis=1, keepdims=True)
    return right(z @ z_prime.T / temperature)

def scaled(scores, scale):
    return right(scores / scale)

def chatty(scores):
    print("computing the loss")
    return right(scores)

def fails_at_16(scores):
    if len(scores) == 16:
        raise ValueError("boom")
    return right(scores)

def nan_loss(scores):
    return float("nan")

def half(scores):
    return np.float16(right(scores))

class Fixed:
    temperature = 0.2

    def __call__(self, scores):
        return right(scores / self.temperature)

fixed = Fixed()

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def losses(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(NUMPY_LOSSES)
    return path


def run(capsys, *argv):
    code = main(["check-infonce", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_right_loss_exits_0(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:right", "--trials", 10)
    assert code == 0 and out.startswith("InfoNCE conformance PASSED")


def test_the_cases_left_out_of_the_table_are_pointed_to_an_option(capsys, losses):
    """Bug: the command line pointed to report.table(), a method a shell user cannot call."""
    code, out, _ = run(capsys, f"{losses}:right", "--trials", 12)
    assert code == 0 and "... 2 more cases (all of them: report.table(), or --json" in out
    code, out, _ = run(capsys, f"{losses}:right", "--trials", 12, "--json")
    assert len(json.loads(out)["results"]) == 12


def test_a_wrong_loss_exits_1_with_its_diagnosis(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:columns", "--trials", 10)
    assert code == 1 and "FAILED: transposed" in out


def test_temperature_kind_and_critic_reach_the_check(capsys, losses):
    assert run(capsys, f"{losses}:tempered", "--temperature", 0.3, "--trials", 10)[0] == 0
    code, out, _ = run(capsys, f"{losses}:cosine", "--kind", "embeddings", "--critic",
                       "cosine", "--temperature", 0.1, "--trials", 10, "--json")
    data = json.loads(out)
    assert code == 0 and data["passed"] and data["kind"] == "embeddings"
    assert data["critic"] == "cosine" and data["temperature"] == 0.1 and data["cases"] == 10
    assert data["environment"]["numpy"]   # versions recorded, as in every JSON output


def test_json_of_a_failing_loss_is_strict_json(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:Losses.right", "--json", "--trials", 10,
                       "--framework", "numpy")
    assert code == 0 and json.loads(out)["framework"] == "numpy"
    code, out, _ = run(capsys, f"{losses}:naive", "--json", "--trials", 10)

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")
    data = json.loads(out, parse_constant=refuse)       # inf losses are written as "inf"
    assert code == 1 and data["diagnosis"] == "unstable" and data["max_error"] == "inf"


def test_a_dotted_module_is_found_from_the_current_directory(capsys, losses, monkeypatch):
    monkeypatch.chdir(losses.parent)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        assert run(capsys, "my_losses:right", "--trials", 5)[0] == 0
    finally:
        sys.modules.pop("my_losses", None)


@pytest.mark.parametrize("target,message", [
    ("nowhere.py:right", "no such file: nowhere.py"),
    ("no_such_module_here:right", "no module named 'no_such_module_here'"),
    ("{losses}:wrong_name", "has no attribute 'wrong_name'"),
    ("{losses}:NOT_A_FUNCTION", "is an int, not a function"),
    ("{losses}", "expected MODULE:FUNCTION"),
])
def test_missing_modules_and_functions_are_one_line_usage_errors(capsys, losses, target,
                                                                  message):
    code, out, err = run(capsys, target.format(losses=losses))
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("module,message", [
    (".", ". is a directory (MODULE is a dotted module"),          # was importlib's "the
    ("./losses", "./losses is not a module name, nor a .py file"),  # 'package' argument..."
    ("scores.npz", "scores.npz is a file but not a .py file"),      # was "no module named 'scores'"
])
def test_a_module_that_is_no_module_name_says_what_it_is(capsys, tmp_path, monkeypatch,
                                                         module, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "scores.npz").write_bytes(b"")
    code, out, err = run(capsys, f"{module}:f")
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1, err


def test_trials_beyond_the_limit_are_refused_before_any_work(capsys, losses):
    with pytest.raises(SystemExit) as info:
        main(["check-infonce", f"{losses}:right", "--trials", "100000000"])
    assert info.value.code == 2
    assert "--trials: expected an integer from 1 to 10000, got 100000000" in capsys.readouterr().err


def test_usage_errors_of_the_options(capsys, losses):
    code, _, err = run(capsys, f"{losses}:cosine", "--kind", "embeddings")
    assert code == 2 and "needs --critic" in err
    code, _, err = run(capsys, f"{losses}:right", "--critic", "dot")
    assert code == 2 and "only used with --kind embeddings" in err
    with pytest.raises(SystemExit) as info:
        main(["check-infonce", f"{losses}:right", "--temperature", "-1"])
    assert info.value.code == 2


@pytest.mark.parametrize("flag", ["--temperature", "--fixed-temperature"])
def test_a_temperature_beyond_the_cases_range_is_a_usage_error(capsys, losses, flag):
    """Bug: --temperature 1e306 made the cases' scores inf, and the loss was reported as
    raising rpmref's ValueError about them (exit 1)."""
    with pytest.raises(SystemExit) as info:
        main(["check-infonce", f"{losses}:scaled", flag, "1e306"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert f"argument {flag}: expected a number from 1e-100 to 1e+100" in err, err


@pytest.mark.parametrize("target, shown", [
    ("obj.loss", "RuntimeError: needs a GPU"), ("lazy", "ImportError: needs torch")])
def test_a_function_whose_lookup_raises_is_a_usage_error(capsys, tmp_path, target, shown):
    """Bug: FUNCTION behind a property that raises, or a module __getattr__ raising other
    than AttributeError (a lazy module's ImportError), ended the command with a traceback."""
    path = tmp_path / "lookups.py"
    path.write_text(textwrap.dedent('''
        class Holder:
            @property
            def loss(self):
                raise RuntimeError("needs a GPU")

        obj = Holder()

        def __getattr__(name):
            raise ImportError("needs torch")
    '''))
    code, _, err = run(capsys, f"{path}:{target}")
    assert code == 2 and err.count("\n") == 1, err
    assert f"getting {target!r} from {path} failed: {shown}" in err, err


def test_a_file_name_too_long_to_look_up_is_a_usage_error(capsys, tmp_path):
    """Bug: a MODULE.py whose name the file system refuses (ENAMETOOLONG) was an OSError,
    exit 1, where a module that cannot be found is a usage error, exit 2."""
    target = f"{tmp_path / ('a' * 300)}.py:loss"
    code, _, err = run(capsys, target)
    assert code == 2 and err.count("\n") == 1 and "cannot be looked up" in err, err


def test_a_module_raising_numpy_errors_does_not_make_the_check_blame_its_loss(capsys,
                                                                               tmp_path):
    """Bug: np.seterr(all="raise") at import turned the reference's underflow into
    'loss raised FloatingPointError', exit 1, for a right loss."""
    path = tmp_path / "strict.py"
    path.write_text("import numpy as np\nfrom rpmref.testing import infonce_loss\n"
                    "np.seterr(all='raise')\ndef loss(scores):\n"
                    "    return infonce_loss(scores)\n")
    saved = np.geterr()
    try:
        code, out, err = run(capsys, f"{path}:loss", "--trials", 10)
    finally:
        np.seterr(**saved)
    assert code == 0 and "PASSED" in out, out + err


def test_a_module_that_fails_to_import_is_a_usage_error(capsys, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_real_package_xyz\n")
    code, _, err = run(capsys, f"{bad}:f")
    assert code == 2 and "importing" in err and "not_a_real_package_xyz" in err


@pytest.mark.parametrize("framework", ["numpy", "auto"])
def test_a_loss_that_raises_exits_1_with_its_own_traceback(capsys, losses, framework):
    """One line naming the function's own error (auto tries torch too: the same error),
    then the traceback of the user's code and none of rpmref's frames."""
    code, out, err = run(capsys, f"{losses}:broken", "--framework", framework)
    first, *rest = err.splitlines()
    assert code == 1 and out == ""
    assert first.startswith(f"rpmref check-infonce: {losses}:broken raised ArithmeticError: "
                            "no loss today"), first
    assert "my_losses.py" in err and 'raise ArithmeticError("no loss today")' in err
    assert "rpmref" not in "\n".join(rest), rest


def test_a_loss_that_returns_no_number_is_one_line(capsys, losses):
    code, _, err = run(capsys, f"{losses}:words")
    assert code == 1 and err == (f"rpmref check-infonce: {losses}:words returned a str "
                                 "('hello'), not a number (on case 0, inputs of shape "
                                 "(3, 3))\n"), err


def test_json_of_a_loss_that_raises_is_json(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:broken", "--json")
    report = json.loads(out)
    assert code == 1 and report["passed"] is False
    assert report["error"] == {"type": "ArithmeticError", "message": report["error"]["message"]}
    assert report["error"]["message"].startswith("no loss today")


@pytest.mark.parametrize("target, argv, hint", [
    ("tempered", [], "add --temperature T"),
    ("right", ["--temperature", "0.5"], "--temperature passes T as its last argument"),
])
def test_a_loss_that_cannot_take_its_arguments_is_a_usage_error(capsys, losses, target, argv,
                                                                 hint):
    code, _, err = run(capsys, f"{losses}:{target}", *argv)
    assert code == 2 and err.count("\n") == 1 and hint in err, err


def test_a_loss_with_its_temperature_inside_is_pointed_to_fixed_temperature(capsys, losses,
                                                                          monkeypatch):
    """--temperature given to a loss that takes only its inputs (self.temperature inside):
    the hint is --fixed-temperature with that T, not the other --kind (an embeddings loss
    (z, z_prime) binds (scores, T) too)."""
    embeddings = losses.parent / "embedding_losses.py"
    embeddings.write_text(textwrap.dedent('''
        import numpy as np
        from my_losses import right

        class Cosine:
            temperature = 0.1

            def __call__(self, z, z_prime):
                u = z / np.linalg.norm(z, axis=1, keepdims=True)
                v = z_prime / np.linalg.norm(z_prime, axis=1, keepdims=True)
                return right(u @ v.T / self.temperature)

        loss = Cosine()
        '''))
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        for target, argv in [(f"{embeddings}:loss", ["--kind", "embeddings", "--critic",
                                                      "cosine"]),
                             (f"{losses}:fixed", [])]:
            code, _, err = run(capsys, target, *argv, "--temperature", 0.1)
            assert code == 2 and err.count("\n") == 1, err
            assert "use --fixed-temperature 0.1 instead" in err and "--kind scores" not in err
        code, out, _ = run(capsys, f"{embeddings}:loss", "--kind", "embeddings", "--critic",
                           "cosine", "--fixed-temperature", 0.1, "--trials", 10)
        assert code == 0, out
    finally:
        sys.modules.pop("my_losses", None)


def test_a_fixed_temperature_the_loss_does_not_use_is_explained(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:right", "--fixed-temperature", 0.2, "--trials", 10)
    assert code == 1 and "FAILED: temperature-ignored" in out
    assert "computes at temperature 1 (its scores are the logits), not at 0.2" in out


def test_a_file_imports_its_neighbours_from_its_own_directory(capsys, tmp_path, monkeypatch):
    """FILE.py:FUNCTION finds the modules next to FILE (as `python FILE` would) and in the
    current directory, wherever the command runs."""
    package = tmp_path / "src"
    package.mkdir()
    (package / "helpers_for_check.py").write_text(NUMPY_LOSSES)
    (package / "uses_helpers.py").write_text("from helpers_for_check import right\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        code, out, err = run(capsys, f"{package / 'uses_helpers.py'}:right", "--trials", 5)
        assert code == 0, err
        (elsewhere / "local_helpers_for_check.py").write_text(NUMPY_LOSSES)
        (package / "uses_local.py").write_text("from local_helpers_for_check import right\n")
        code, out, err = run(capsys, f"{package / 'uses_local.py'}:right", "--trials", 5)
        assert code == 0, err
    finally:
        sys.modules.pop("helpers_for_check", None)
        sys.modules.pop("local_helpers_for_check", None)


def test_torch_cross_entropy_conforms_from_the_command_line(tmp_path):
    """Acceptance: F.cross_entropy(scores, arange(B)) is the in-batch InfoNCE loss."""
    pytest.importorskip("torch")
    path = tmp_path / "torch_loss.py"
    path.write_text(textwrap.dedent('''
        import torch
        import torch.nn.functional as F

        def infonce(scores):
            return F.cross_entropy(scores, torch.arange(scores.shape[0]))
    '''))
    out = subprocess.run([sys.executable, "-m", "rpmref", "check-infonce", f"{path}:infonce"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASSED" in out.stdout and "framework torch" in out.stdout
    assert "gradient: matches" in out.stdout


def test_jax_losses_from_the_command_line(capsys, tmp_path):
    pytest.importorskip("jax")
    path = tmp_path / "jax_loss.py"
    path.write_text(textwrap.dedent('''
        import jax
        import jax.numpy as jnp

        def infonce(scores):
            return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(scores, axis=1)))

        def symmetric(scores):
            return 0.5 * (infonce(scores) + infonce(scores.T))
    '''))
    code, out, _ = run(capsys, f"{path}:infonce", "--framework", "jax", "--trials", 5)
    assert code == 0 and "gradient: matches" in out
    code, out, _ = run(capsys, f"{path}:symmetric", "--trials", 5)
    assert code == 1 and "FAILED: symmetric" in out and "framework jax" in out


@pytest.mark.parametrize("code_in_loss", [0, 3, None])
def test_a_loss_that_calls_sys_exit_fails_instead_of_ending_the_check(capsys, tmp_path,
                                                                       code_in_loss):
    """Bug: a loss calling sys.exit(0) ended the process with status 0, which reads as
    'conforming'; sys.exit(3) exited 3 without a word."""
    path = tmp_path / "exits.py"
    path.write_text(f"import sys\ndef loss(scores):\n    sys.exit({code_in_loss!r})\n")
    code, out, err = run(capsys, f"{path}:loss")
    assert code == 1 and f"called sys.exit({code_in_loss!r}) instead of returning a loss" in err
    code, out, _ = run(capsys, f"{path}:loss", "--json")
    assert code == 1 and json.loads(out)["passed"] is False


def test_a_module_that_calls_sys_exit_on_import_is_a_usage_error(capsys, tmp_path):
    path = tmp_path / "exits_on_import.py"
    path.write_text("import sys\nsys.exit(0)\ndef loss(scores):\n    return 0.0\n")
    code, _, err = run(capsys, f"{path}:loss")
    assert code == 2 and err.count("\n") == 1 and "it called sys.exit(0)" in err, err


#: A BaseException that is not an Exception, as pytest.importorskip and pytest.skip raise
#: (pytest's own would skip this test rather than fail it).
SKIPPING = "class Skipped(BaseException):\n    pass\n"


def test_a_base_exception_on_import_is_a_usage_error(capsys, tmp_path, monkeypatch):
    """Bug: a module whose import raised a BaseException other than SystemExit (a test
    module's pytest.importorskip) ended the command with rpmref's own traceback."""
    path = tmp_path / "skips_on_import.py"
    path.write_text(SKIPPING + "raise Skipped('no torch')\ndef loss(scores):\n    return 0.0\n")
    code, _, err = run(capsys, f"{path}:loss")
    assert code == 2 and err.count("\n") == 1 and "Skipped: no torch" in err, err
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "skips_on_import:loss")
    assert code == 2 and err.count("\n") == 1 and "Skipped: no torch" in err, err


def test_a_loss_that_raises_a_base_exception_fails_with_its_traceback(capsys, tmp_path):
    """Bug: a loss raising a BaseException other than SystemExit (pytest.skip()) ended the
    command with rpmref's own traceback instead of the loss's error, exit 1."""
    path = tmp_path / "skips.py"
    path.write_text(SKIPPING + "def loss(scores):\n    raise Skipped('no gpu')\n")
    code, _, err = run(capsys, f"{path}:loss", "--trials", 2)
    assert code == 1 and err.startswith(f"rpmref check-infonce: {path}:loss raised Skipped: "
                                        "no gpu"), err
    assert "rpmref/" not in err and "skips.py" in err, err
    code, out, _ = run(capsys, f"{path}:loss", "--trials", 2, "--json")
    assert code == 1 and json.loads(out)["error"]["type"] == "Skipped"


def test_the_temperature_goes_by_name_or_last(capsys, losses):
    """Bug: --temperature went to the next positional parameter (normalize, here)."""
    code, out, _ = run(capsys, f"{losses}:named_temperature", "--kind", "embeddings",
                       "--critic", "cosine", "--temperature", 0.5, "--trials", 10)
    assert code == 0 and "passed by name: temperature=T" in out, out
    code, out, _ = run(capsys, f"{losses}:scaled", "--temperature", 0.5, "--trials", 10)
    assert code == 0 and "by name" not in out


def test_json_stays_json_when_the_loss_prints(capsys, losses):
    code, out, err = run(capsys, f"{losses}:chatty", "--json", "--trials", 5)
    assert code == 0 and json.loads(out)["passed"] and "computing the loss" in err


def test_json_stays_json_when_the_checked_code_writes_to_descriptor_1(tmp_path):
    """Bug: only print() was sent to stderr; what the module or loss wrote to file
    descriptor 1 itself (os.write, a child process: os.system, subprocess) went into
    stdout and broke --json."""
    path = tmp_path / "writes_fd1.py"
    path.write_text(textwrap.dedent('''
        import os
        import subprocess
        import sys
        from rpmref.testing import infonce_loss

        os.write(1, b"fd 1 on import\\n")
        subprocess.run([sys.executable, "-c", "print('child on import')"])

        def loss(scores):
            os.write(1, b"fd 1 in the loss\\n")
            return infonce_loss(scores)
    '''))
    out = subprocess.run([sys.executable, "-m", "rpmref", "check-infonce", f"{path}:loss",
                          "--trials", "2", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["passed"] is True
    for text in ("fd 1 on import", "child on import", "fd 1 in the loss"):
        assert text in out.stderr, out.stderr


def test_a_failure_on_a_later_case_names_the_case(capsys, losses):
    code, _, err = run(capsys, f"{losses}:fails_at_16", "--trials", 10)
    assert code == 1 and err.splitlines()[0].endswith(
        "raised ValueError: boom (on case 7, inputs of shape (16, 16))"), err


def test_nan_and_half_precision_are_named(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:nan_loss", "--trials", 5)
    assert code == 1 and "FAILED: not-finite" in out and "it returned nan on case 0" in out
    code, out, _ = run(capsys, f"{losses}:half")
    assert code == 1 and "FAILED: half-precision" in out and "float32 or float64" in out


def test_a_temperature_fixed_inside_is_pointed_out_and_can_be_checked(capsys, losses):
    code, out, _ = run(capsys, f"{losses}:fixed", "--trials", 10)
    assert code == 1 and "temperature τ ≈ 0.2" in out and "--fixed-temperature 0.2" in out
    code, out, _ = run(capsys, f"{losses}:fixed", "--fixed-temperature", 0.2, "--trials", 10)
    assert code == 0 and "fixed inside FUNCTION" in out, out
    code, _, err = run(capsys, f"{losses}:fixed", "--fixed-temperature", 0.2,
                       "--temperature", 0.2)
    assert code == 2 and "give one of them" in err


@pytest.mark.parametrize("target, message", [
    ("Losses.method", "is a method of the class Losses: it needs an instance (e.g. loss = "
                      "Losses() in"),
    ("Fixed", "is a class: check an instance"),
])
def test_a_method_or_class_without_an_instance_is_a_usage_error(capsys, losses, target,
                                                                message):
    code, _, err = run(capsys, f"{losses}:{target}")
    assert code == 2 and err.count("\n") == 1 and message in err, err
