"""The examples run, their printed identities hold (examples cannot rot), each explains itself
with --help and refuses an unwritable --figure before its work."""
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_discrete_identities_example(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["discrete_identities.py"])
    runpy.run_path(str(EXAMPLES / "discrete_identities.py"), run_name="__main__")
    out = capsys.readouterr().out
    numbers = lambda line: [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", line)]
    # printed with 6 decimals: each number is off by ≤ 5e-7, so a sum of four by ≤ 2e-6
    # and a difference of two by ≤ 1e-6 (rounding of the print, not of the computation)
    uniform = numbers(out.splitlines()[0])            # L, I, KL, C
    assert abs(uniform[0] - (uniform[1] - uniform[2] + uniform[3])) <= 2e-6
    energy = numbers(out.splitlines()[2])             # L - C, I_inf, I - I_inf, KL
    assert abs(energy[0] - energy[1]) <= 1e-6 and abs(energy[2] - energy[3]) <= 1e-6
    bounds = [numbers(line)[0] for line in out.splitlines() if line.startswith("I_N")]
    assert all(b <= uniform[1] for b in bounds)          # E7: I_N <= I(Z;Z')
    assert "= 1.000000000000" in out


def test_structure_example(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["structure.py", "--quick"])
    runpy.run_path(str(EXAMPLES / "structure.py"), run_name="__main__")
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    for kind in ("line", "ring", "grid"):
        assert rows[kind][7] == "1"     # rank of the identity labelling: first
    assert "topographic" in out and "identity" in out


@pytest.mark.parametrize("script", ["mi_staircase.py", "structure.py"])
def test_an_unwritable_figure_is_refused_before_the_work(script, tmp_path):
    """One usage line and exit 2 at once, not a traceback after the whole run."""
    missing = tmp_path / "no such dir" / "f.png"
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick",
                           "--figure", str(missing)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert len(done.stderr.splitlines()) == 1 and "does not exist (see " in done.stderr


@pytest.mark.parametrize("script", ["discrete_identities.py", "mi_staircase.py", "structure.py",
                                    "reproduce_fig1.py"])
def test_a_bad_argument_is_one_line_and_exit_2(script):
    """Bug: the examples printed argparse's usage line and the error, two lines, where every
    rpmref command prints one; and took '--qui' for '--quick'."""
    for argv in (["--bogus"], ["--qui"]):
        done = subprocess.run([sys.executable, str(EXAMPLES / script), *argv],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and done.stdout == "", done.stdout
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert f"{script}: error: unrecognized arguments: {argv[0]}" in done.stderr


@pytest.mark.parametrize("script", ["discrete_identities.py", "mi_staircase.py", "structure.py",
                                    "reproduce_fig1.py"])
def test_every_example_explains_itself_with_help(script):
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and "Run:" in done.stdout, done.stdout
