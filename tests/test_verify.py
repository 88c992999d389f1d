"""Tests of ``rpmref verify``: it passes on the real code and catches a broken identity."""
import json

import numpy as np
import pytest

import rpmref
from rpmref import verify
from rpmref.cli import main


def test_every_identity_passes_with_few_trials():
    rows = verify.run_checks(trials=10, seed=1, max_states=6)
    ids = {r["id"] for r in rows}
    assert {"E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9", "N1", "A1"} <= ids
    # verify's own tolerance (1e-10, rpmref.verify.DEFAULT_TOLERANCE): its identities are
    # the ones of test_identities, whose rounding is ≲ 1e-10 (tests/tolerances.py IDENTITY)
    assert all(r["passed"] and r["max_error"] <= 1e-10 for r in rows), rows


def test_a_broken_identity_is_reported_failed(monkeypatch):
    """Shift L by 1e-6: E2 (data average = L) must fail; the CLI must exit 1."""
    real = rpmref.expected_elbo
    monkeypatch.setattr(verify.exact, "expected_elbo", lambda *a: real(*a) + 1e-6)
    rows = {r["id"]: r for r in verify.run_checks(trials=3, seed=0, max_states=4)}
    # the error is the shift itself plus rounding ≲ 1e-13 (1e-7 of it): rel 1e-3 is loose
    assert not rows["E2"]["passed"] and rows["E2"]["max_error"] == pytest.approx(1e-6, rel=1e-3)
    assert main(["verify", "--trials", "3", "--max-states", "4"]) == 1


def test_cli_json_output_and_exit_code(capsys):
    assert main(["verify", "--trials", "2", "--max-states", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"environment", "settings", "rows"}
    assert out["settings"] == {"trials": 2, "seed": 0, "max_states": 3,
                               "tolerance": verify.DEFAULT_TOLERANCE}
    assert out["environment"]["blas"] and "numpy" in out["environment"]
    rows = out["rows"]
    assert rows[0]["id"] == "E1" and set(rows[0]) >= {"equation", "statement", "max_error",
                                                       "worst_case", "passed"}


@pytest.mark.parametrize("argv", [["--trials", "5", "--max-states", "0"], ["--trials", "x"],
                                  ["--tolerance", "-1"], ["--bogus"]])
def test_bad_arguments_give_one_line_error_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


class LargestSizes(np.random.Generator):
    """A numpy Generator (the checks accept nothing else) whose ``integers`` always returns
    its largest value, so that a check draws every size at --max-states (its worst case
    for memory)."""

    def __init__(self, seed):
        super().__init__(np.random.PCG64(seed))

    def integers(self, low, high=None, size=None, **kwargs):
        low, high = (0, low) if high is None else (low, high)
        return high - 1 if size is None else np.full(size, high - 1)


@pytest.mark.parametrize("m", [8, 12])
def test_memory_model_of_max_states_bounds_every_check(m):
    """--max-states is bounded by MEMORY_BUDGET through PEAK_ARRAYS: no check, with every
    size at m, allocates more than PEAK_ARRAYS (m, m, m, m) float64 arrays (tracemalloc)."""
    import tracemalloc
    from rpmref.cli import verify as command
    worst = 0
    for _, _, _, check in verify.CHECKS:
        tracemalloc.start()
        try:
            check(LargestSizes(0), m)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        worst = max(worst, peak)
    assert worst <= command.PEAK_ARRAYS * 8 * m**4
    assert worst >= 0.5 * command.PEAK_ARRAYS * 8 * m**4  # the model is not loose either


def test_max_states_too_large_for_memory_is_refused(capsys):
    """--max-states 1000000 used to end in a MemoryError traceback."""
    from rpmref.cli import verify as command
    from rpmref.cli.common import MEMORY_BUDGET
    from rpmref.verify import MAX_STATES_LIMIT
    assert command.PEAK_ARRAYS * 8 * command.MAX_STATES**4 <= MEMORY_BUDGET
    # the largest that fits in memory, or the library's limit if that is lower (--help
    # promised 83, which fits, while run_checks refused anything above 32)
    assert (command.MAX_STATES == MAX_STATES_LIMIT
            or command.PEAK_ARRAYS * 8 * (command.MAX_STATES + 1)**4 > MEMORY_BUDGET)
    assert command.MAX_STATES <= MAX_STATES_LIMIT
    for value in ("1000000", str(command.MAX_STATES + 1)):
        with pytest.raises(SystemExit) as exit_info:
            main(["verify", "--max-states", value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--max-states: expected an integer from 1 to {command.MAX_STATES}" in err


def test_tolerance_applies_to_the_gaussian_rows_too(capsys):
    """Bug: --tolerance 1e-300 failed the E rows but the eight Gaussian rows kept their own
    1e-10 (and passed), while the summary and settings claimed 1e-300."""
    from rpmref.verify import run_checks
    rows = run_checks(trials=2, max_states=3, tolerance=1e-300)
    gaussian = [row for row in rows if row["id"].startswith("G-")]
    assert len(gaussian) == 8
    assert all(row["tolerance"] == 1e-300 and row["passed"] == (row["max_error"] <= 1e-300)
               for row in gaussian)
    assert not all(row["passed"] for row in gaussian)   # their errors are ~1e-16, not 0
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--trials", "200000"])
    assert exit_info.value.code == 2 and "--trials" in capsys.readouterr().err
