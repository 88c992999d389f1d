"""The critic comparison (rpmref.compare): summaries, writers, and the --quick run."""
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from rpmref import cli, compare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_record(critic, seed, r2, matched, estimate=1.0, ell=float("nan"), wall=2.0):
    scores = {"r2_overall": r2, "rmse_px": 1.0 - r2, "min_matched_r2": min(matched),
              "mean_matched_r2": float(np.mean(matched)),
              "maps_tracked": sum(m >= 0.95 for m in matched), "mean_within_radius": 0.5,
              "matched_r2": matched}
    untrained = dict(scores, r2_overall=0.8)
    return {"critic": critic, "seed": seed, "scores": {"held_out": scores},
            "untrained": {"held_out": untrained}, "final_estimate": estimate,
            "lengthscale": ell, "wall_time": wall}


def test_summarise_is_mean_and_sample_sd_over_seeds():
    """Checked against the standard library's statistics.mean / statistics.stdev."""
    runs = {"rbf": [fake_record("rbf", s, r2, [r2, 0.97, 0.99], estimate=e, ell=ell)
                    for s, (r2, e, ell) in enumerate([(0.99, 3.1, 2.0), (0.97, 3.3, 2.5),
                                                      (0.985, 3.2, 1.5)])],
            "bilinear": [fake_record("bilinear", s, r2, [0.9, 0.2, r2])
                         for s, r2 in enumerate([0.6, 0.7, 0.65])]}
    summary = compare.summarise(runs, "held_out")
    assert list(summary) == ["rbf", "bilinear", "untrained"]
    mean, sd, n = summary["rbf"]["r2_overall"]
    assert n == 3
    assert mean == pytest.approx(statistics.mean([0.99, 0.97, 0.985]), abs=1e-12)
    assert sd == pytest.approx(statistics.stdev([0.99, 0.97, 0.985]), abs=1e-12)
    assert summary["rbf"]["lengthscale"][0] == pytest.approx(2.0, abs=1e-12)
    assert "lengthscale" not in summary["bilinear"]  # NaN for a non-RBF critic: no entry
    assert summary["bilinear"]["maps_tracked"][0] == pytest.approx(0.0, abs=1e-12)
    assert summary["rbf"]["maps_tracked"][0] == pytest.approx(statistics.mean([3, 3, 3]))
    assert summary["untrained"]["r2_overall"][0] == pytest.approx(0.8, abs=1e-12)
    text = compare.results_markdown(summary, "Default settings")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["critic", "rbf", "bilinear", "untrained"]
    assert "0.982 ± 0.010" in rows[1]  # mean 0.98167, sd 0.01041


def test_write_json_turns_nan_into_null_and_numpy_into_python(tmp_path):
    path = tmp_path / "r.json"
    compare.write_json(path, {"a": np.float64("nan"), "b": np.arange(3), "c": (np.int64(4),)})
    assert json.loads(path.read_text()) == {"a": None, "b": [0, 1, 2], "c": [4]}


@pytest.mark.parametrize("argv, message", [
    (["--critics", "rbf,linear"], "critics must be"),
    (["--seeds", "0"], "positive integer"),
    (["--seeds", "two"], "positive integer"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["balls", "compare"] + argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
