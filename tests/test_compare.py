"""The critic comparison (rpmref.compare): summaries, writers, and the --quick run."""
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from rpmref import cli
from rpmref.balls import compare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_record(critic, seed, r2, matched, estimate=1.0, ell=float("nan"), wall=2.0):
    scores = {"r2_overall": r2, "rmse_px": 1.0 - r2, "min_matched_r2": min(matched),
              "mean_matched_r2": float(np.mean(matched)),
              "maps_tracked": sum(m >= 0.95 for m in matched), "mean_within_radius": 0.5,
              "matched_r2": matched}
    untrained = dict(scores, r2_overall=0.8)
    return {"critic": critic, "seed": seed, "scores": {"held_out": scores},
            "untrained": {"held_out": untrained}, "final_estimate": estimate,
            "lengthscale": ell / 32, "lengthscale_px": ell, "wall_time": wall}


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
    # means and sds of ≤ 3 numbers ≤ 4 vs statistics' correctly rounded ones: a few ulp
    # (≲ 1e-15); 1e-12 throughout this file for such summaries
    assert mean == pytest.approx(statistics.mean([0.99, 0.97, 0.985]), abs=1e-12)
    assert sd == pytest.approx(statistics.stdev([0.99, 0.97, 0.985]), abs=1e-12)
    assert summary["rbf"]["lengthscale_px"][0] == pytest.approx(2.0, abs=1e-12)
    assert "lengthscale_px" not in summary["bilinear"]  # NaN for a non-RBF critic: no entry
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


def test_figure_seed_outside_the_seeds_exits_2(capsys):
    assert cli.main(["balls", "compare", "--seeds", "2", "--figure-seed", "2"]) == 2
    err = capsys.readouterr().err
    assert "--figure-seed must be one of the seeds 0..1" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--critics", "rbf,linear"], "critics must be"),
    (["--seeds", "0"], "positive integer"),
    (["--seeds", "two"], "positive integer"),
    (["--lrs", "0.01,-1"], "positive learning rates"),
    (["--optimizers", "rmsprop"], "subset of sgd,adam"),
    (["--jobs", "0"], "positive integer"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["balls", "compare"] + argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_score_encoder_is_perfect_for_latents_that_are_the_positions():
    """z = the ball centres themselves: readout R² 1, RMSE 0, 3 maps tracked."""
    rng = np.random.default_rng(0)
    pos, pos_ho = rng.uniform(3, 29, (200, 3, 2)), rng.uniform(3, 29, (150, 3, 2))
    out = compare.score_encoder(pos.reshape(200, 6), pos, pos_ho.reshape(150, 6), pos_ho, 2.5)
    # an exact (identity) map fit by least squares: as in test_tracking, residuals ≲ 1e-11 px
    assert out["r2_overall"] == pytest.approx(1.0, abs=1e-9)
    assert out["rmse_px"] == pytest.approx(0.0, abs=1e-7)
    assert out["maps_tracked"] == 3 and out["map_for_ball"] == [0, 1, 2]


def test_untrained_encoder_is_the_trainers_starting_point():
    """A run with a vanishing learning rate ends (to float precision) where it began."""
    from rpmref.balls import trainer as train, video as balls
    frames, _ = balls.make_video(balls.BallsConfig(n_frames=20), seed=3)
    config = train.TrainConfig(batch_size=8, steps=1, lr=1e-300, seed=5, hidden_channels=4)
    start, _ = compare.untrained_encoder(config, frames)
    end = train.train(config, frames, progress=False).params
    for name in start:
        np.testing.assert_array_equal(start[name], end[name])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `rpmref balls compare --quick --sweep` run (1 seed), shared by the checks below."""
    out = tmp_path_factory.mktemp("compare")
    code = cli.main(["balls", "compare", "--quick", "--sweep", "--seeds", "1", "--no-progress",
                     "--jobs", "1", "--out", str(out)])
    return code, out


def test_quick_run_writes_every_output(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("results.json", "results.md", "fig1.png", "sweep.json", "sweep.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "fig1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fig1.png").stat().st_size < 300_000
    rows = [line.split("|")[1].strip() for line in (out / "results.md").read_text().splitlines()
            if line.startswith("| ")]
    assert rows == ["critic", "rbf", "bilinear", "cosine", "untrained"]


def test_quick_tables_say_they_are_a_smoke_test(quick_run):
    """results.md of a --quick run was titled "Default settings"."""
    _, out = quick_run
    assert (out / "results.md").read_text().splitlines()[0] == \
        "### Quick settings (a smoke test, not a result)"
    assert "quick settings (a smoke test, not a result)" in \
        (out / "sweep.md").read_text().splitlines()[0]


def test_results_record_the_environment(quick_run):
    """The numpy version and BLAS library of the machine that computed the results."""
    import numpy
    from threadpoolctl import threadpool_info
    _, out = quick_run
    blas = {entry["internal_api"] for entry in threadpool_info() if entry["user_api"] == "blas"}
    for name in ("results.json", "sweep.json"):
        saved = json.loads((out / name).read_text())
        environment = saved["environment"]
        assert environment["numpy"] == numpy.__version__
        assert {entry["library"] for entry in environment["blas"]} == blas and blas
        assert saved["execution"] == {"backend": "this process", "jobs": 1, "resumed_runs": 0}


def test_quick_results_are_internally_consistent(quick_run):
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    assert set(results["runs"]) == {"rbf", "bilinear", "cosine"}
    for critic, records in results["runs"].items():
        (record,) = records
        s = record["scores"]["held_out"]
        assert s["maps_tracked"] == sum(r >= compare.TRACKED_R2 for r in s["matched_r2"])
        assert sorted(s["map_for_ball"]) == [0, 1, 2]
        assert s["min_matched_r2"] == pytest.approx(min(s["matched_r2"]), abs=1e-12)  # a copy
        assert -1 < s["r2_overall"] <= 1 and s["rmse_px"] > 0
        assert record["final_estimate"] == record["history"][-1]["estimate"]
        assert len(record["history"]) == 2  # the quick setting's 2 epochs
        assert [e for e, _ in record["r2_per_epoch"]] == [0, 1, 2]
        assert (record["lengthscale"] is not None) == (critic == "rbf")
        mean, sd, n = results["summary"][critic]["r2_overall"]
        assert (mean, sd, n) == (s["r2_overall"], 0.0, 1)
        # the untrained encoder of a seed is the same for every critic
        assert record["untrained"] == results["runs"]["rbf"][0]["untrained"]


def test_quick_sweep_reports_the_setting_best_on_validation(quick_run):
    _, out = quick_run
    sweep = json.loads((out / "sweep.json").read_text())
    for critic, grid in sweep["grid"].items():
        assert len(grid) == len(compare.SWEEP_OPTIMISERS)  # quick: one learning rate
        for setting in grid:
            validation = [r["scores"]["validation"]["mean_matched_r2"] for r in setting["runs"]]
            assert setting["validation_mean_matched_r2"] == pytest.approx(
                statistics.mean(validation), abs=1e-12)
        best = max(grid, key=lambda g: g["validation_mean_matched_r2"])
        assert sweep["best_setting"][critic] == {"optimizer": best["optimizer"], "lr": best["lr"]}
        held_out = [r["scores"]["held_out"]["r2_overall"] for r in best["runs"]]
        assert sweep["summary"][critic]["r2_overall"][0] == pytest.approx(
            statistics.mean(held_out), abs=1e-12)


def test_example_runs_with_quick_settings(tmp_path):
    example = os.path.join(REPO, "examples", "reproduce_fig1.py")
    # the example must import this checkout's rpmref, not another installed copy
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, example, "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "rbf      seed 0: InfoNCE estimate" in done.stdout


def test_optimizer_lr_and_orientation_override_the_trainer_defaults(tmp_path, quick_run):
    code = cli.main(["balls", "compare", "--quick", "--seeds", "1", "--critics", "rbf",
                     "--optimizer", "sgd", "--lr", "0.02", "--no-orient-maps", "--no-progress",
                     "--out", str(tmp_path)])
    assert code == 0
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]["train"]
    assert (settings["optimizer"], settings["lr"], settings["orient_maps"]) == ("sgd", 0.02, False)
    assert "orient_maps False" in (tmp_path / "results.md").read_text()
    default = json.loads((quick_run[1] / "results.json").read_text())["settings"]["train"]
    assert default["orient_maps"] is True


#: the entries of results.json / sweep.json that may differ between two runs of the same
#: settings (run_compare's docstring lists them): wall-clock times, the machine, and where
#: the runs went (jobs, Dask, how many were resumed)
UNREPEATABLE = ("wall_time", "steps_per_s", "total_wall_time", "environment", "execution")


def without_times(obj):
    """A results dict without its UNREPEATABLE entries, NaN written as "nan" so that
    two NaNs compare equal."""
    if isinstance(obj, float) and np.isnan(obj):
        return "nan"
    if isinstance(obj, dict):
        return {k: without_times(v) for k, v in obj.items() if k not in UNREPEATABLE}
    if isinstance(obj, list):
        return [without_times(v) for v in obj]
    return obj


def test_two_jobs_give_the_same_results_as_one(tmp_path):
    """Worker processes change nothing but the wall times: every score, curve and
    history is bit-identical to the sequential run, in the same order."""
    train_config, balls_config = compare.quick_configs()
    common = dict(seeds=(0, 1), train_config=train_config, balls_config=balls_config,
                  curve_every=1, figure_seed=1, progress=False, log=lambda line: None)
    one = compare.run_compare(jobs=1, out_dir=tmp_path / "one", **common)
    two = compare.run_compare(jobs=2, out_dir=tmp_path / "two", **common)
    assert [(r["critic"], r["seed"]) for c in two["runs"] for r in two["runs"][c]] == \
        [(c, s) for c in compare.CRITICS for s in (0, 1)]
    assert without_times(two) == without_times(one)
    saved = json.loads((tmp_path / "two" / "results.json").read_text())
    assert without_times(saved) == without_times(json.loads(
        (tmp_path / "one" / "results.json").read_text()))
    assert not (tmp_path / "two" / "results.partial.json").exists()

    sweep = dict(seeds=(0,), critics=("rbf", "cosine"), train_config=train_config,
                 balls_config=balls_config, learning_rates=(1e-2,), progress=False,
                 log=lambda line: None)
    assert without_times(compare.run_sweep(jobs=2, **sweep)) == \
        without_times(compare.run_sweep(jobs=1, **sweep))


def test_jobs_must_be_positive():
    with pytest.raises(ValueError, match="jobs must be a positive integer; got 0"):
        compare.run_compare(jobs=0)


def test_runs_are_reported_in_task_order_whatever_finished_first():
    tasks = [{"critic": c, "seed": s} for c in ("rbf", "cosine") for s in (0, 1)]
    finished = {i: dict(tasks[i], n=i) for i in (3, 0, 2, 1)}  # completion order 3, 0, 2, 1
    runs = compare._by_critic(("rbf", "cosine"), finished, tasks)
    assert list(runs) == ["rbf", "cosine"]
    assert [[r["seed"] for r in runs[c]] for c in runs] == [[0, 1], [0, 1]]


class ComparedInt(int):
    """An int that counts the equality tests made on it (in ``comparisons``)."""

    comparisons = 0

    def __eq__(self, other):
        ComparedInt.comparisons += 1
        return int(self) == int(other)

    __hash__ = int.__hash__


def test_the_seed_check_looks_at_each_seed_a_bounded_number_of_times():
    """`--seeds 1000000` must reach its first run: the repeat check compares a seed with a
    bounded number of others, not with every other seed (a million squared comparisons
    held the command before its first line for hours)."""
    seeds = [ComparedInt(s) for s in range(2000)]
    ComparedInt.comparisons = 0
    compare._check_choices(seeds, ("rbf",))
    assert ComparedInt.comparisons <= 4 * len(seeds)
    with pytest.raises(ValueError, match="repeated: 7"):
        compare._check_choices(seeds + [ComparedInt(7)], ("rbf",))
