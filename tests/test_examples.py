"""The discrete worked example runs and its printed identities hold (examples cannot rot)."""
import re
import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_discrete_identities_example(capsys):
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
