"""Tests of ``rpmref mi-bench`` (rpmref.mi_bench) and examples/mi_staircase.py:
the benchmark's closed forms against hand derivations for x ~ N(0, I_d),
y = ρx + √(1−ρ²)ε, its Monte Carlo against an independent simulation, the CLI."""
import json
import pathlib
import runpy
import sys

import mpmath
import numpy as np
import pytest

from rpmref import cli
from rpmref.gaussian import staircase as mi_bench
from rpmref.gaussian.staircase import largest_true_mi

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "mi_staircase.py"
KEYS = {"true_mi", "log_k", "infonce_limit_optimal", "infonce_optimal", "infonce_optimal_stderr",
        "infonce_bilinear", "infonce_rbf", "infonce_bilinear_stderr", "infonce_rbf_stderr"}


def rho_for(true_mi, d):
    """Invert I = −(d/2) log(1 − ρ²)."""
    return np.sqrt(1 - np.exp(-2 * true_mi / d))


@pytest.fixture(scope="module")
def rows():
    return mi_bench.benchmark_rows(levels=(2.0, 10.0), dim=20, batch_size=64, batches=200, seed=1)


def test_rows_closed_forms_match_hand_derivations(rows):
    """Per coordinate the benchmark is the 1-D unit-variance pair with correlation ρ,
    and every quantity adds over the d independent coordinates: I = −(d/2) log(1−ρ²);
    bilinear I_∞(W*) = d ρ²/2; RBF I_∞(ℓ) = d × the 1-D formula of docs/theory.md ('Gaussian latents'), maximised at
    ℓ² = root of 2ρu² − (3 − 4ρ)u − 2(1 − ρ)."""
    for row in rows:
        d, rho = 20, rho_for(row["true_mi"], 20)
        assert KEYS <= set(row)
        # closed forms summed over d = 20 independent coordinates, values ≤ 10 nats: ≲ 20
        # roundings of 10 (≲ 4e-14) vs IDENTITY (1e-9); the RBF ℓ is an iterative root
        # (see test_gaussian), 1e-9 relative; log K is one correctly rounded log
        assert row["log_k"] == pytest.approx(np.log(64), abs=1e-15)
        assert row["infonce_limit_optimal"] == pytest.approx(row["true_mi"], abs=1e-9)
        assert row["infonce_limit_bilinear"] == pytest.approx(d * rho**2 / 2, abs=1e-9)
        u = ((3 - 4 * rho) + np.sqrt((3 - 4 * rho) ** 2 + 16 * rho * (1 - rho))) / (4 * rho)
        assert row["rbf_lengthscale"] == pytest.approx(np.sqrt(u), rel=1e-9)
        spec = -(1 - rho) / u - 0.5 * np.log(u) + 0.5 * np.log1p(u) + 0.5 / (1 + u)
        assert row["infonce_limit_rbf"] == pytest.approx(d * spec, abs=1e-9)


def test_rows_respect_log_k_and_ordering(rows):
    """E7: I_K ≤ log K (each draw, hence the mean); E6: I_∞ ≤ I for every critic."""
    for row in rows:
        for name in ("optimal", "bilinear", "rbf"):
            assert row[f"infonce_{name}"] <= row["log_k"]
            assert row[f"infonce_limit_{name}"] <= row["true_mi"] + 1e-9
            assert row[f"infonce_{name}_stderr"] > 0


def test_optimal_critic_estimate_matches_independent_simulation(rows):
    """I_K for the optimal critic, simulated here from the definition: y = ρx + √(1−ρ²)ε,
    f(x, y) = log p(y|x) − log p(y) = −‖y − ρx‖²/(2(1−ρ²)) + ‖y‖²/2; agreement within
    4 combined standard errors."""
    rng = np.random.default_rng(123)
    d, k, batches = 20, 64, 400
    for row in rows:
        rho = rho_for(row["true_mi"], d)
        x = rng.standard_normal((batches, k, d))
        y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((batches, k, d))
        sq = np.sum((y[:, None, :, :] - rho * x[:, :, None, :]) ** 2, axis=-1)  # (B, i, j)
        scores = -sq / (2 * (1 - rho**2)) + 0.5 * np.sum(y**2, axis=-1)[:, None, :]
        shift = scores.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(scores - shift).sum(axis=-1)) + shift[..., 0]
        draws = np.mean(np.diagonal(scores, axis1=1, axis2=2) - lse, axis=1) + np.log(k)
        se = np.hypot(draws.std(ddof=1) / np.sqrt(batches), row["infonce_optimal_stderr"])
        assert abs(draws.mean() - row["infonce_optimal"]) < 4 * se


def test_cli_json_has_environment_settings_and_rows(capsys):
    code = cli.main(["mi-bench", "--json", "--batches", "20", "--levels", "2,4", "--dim", "5"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"environment", "settings", "rows"}
    assert out["environment"]["numpy"] == np.__version__
    assert out["settings"] == {"levels": [2.0, 4.0], "dim": 5, "batch_size": 64,
                               "batches": 20, "seed": 0}
    assert [r["true_mi"] for r in out["rows"]] == [2.0, 4.0]
    assert all(KEYS <= set(r) for r in out["rows"])


def test_cli_table_and_figure(tmp_path, capsys):
    path = tmp_path / "staircase.png"
    code = cli.main(["mi-bench", "--batches", "10", "--levels", "3", "--figure", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "true MI" in out and "3.00" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 200_000


@pytest.mark.parametrize("argv", [
    ["mi-bench", "--batches", "0"],
    ["mi-bench", "--dim", "x"],
    ["mi-bench", "--unknown"],
])
def test_cli_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(argv)
    assert err.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["mi-bench", "--levels", "2,x"],
    ["mi-bench", "--levels", "-1"],
    ["mi-bench", "--batches", "1", "--levels", "2"],
    ["mi-bench", "--batches", "2", "--levels", "2", "--dim", "2", "--figure", "/nonexistent/dir/f.png"],
])
def test_cli_bad_values_return_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpmref mi-bench: error:") and len(err.strip().splitlines()) == 1


def test_staircase_joint_rejects_bad_levels():
    with pytest.raises(ValueError, match="true_mi"):
        mi_bench.staircase_joint(0.0)
    with pytest.raises(ValueError, match="dim"):
        mi_bench.staircase_joint(2.0, dim=0)
    # the rounding of ρ (an ulp, ≤ 2^-52 ρ) moves I by ≤ 2^-52 expm1(2I): held to 1e-9 · I
    # (with a factor 2 to spare) up to the root of 2^-51 expm1(2I) = 1e-9 I, I ≈ 8.37
    top = largest_true_mi(1)
    assert 8.3 < top < 8.45
    mi_bench.staircase_joint(top, dim=1)
    with pytest.raises(ValueError, match=f"at most {top:.4g} nats at dim = 1"):
        mi_bench.staircase_joint(top * 1.01, dim=1)


@pytest.mark.parametrize("dim", [1, 2, 20])
def test_the_built_joint_has_the_mi_asked_for_up_to_the_largest_level(dim):
    """staircase_joint(16, dim=1) built a joint of 16.0003 nats and (17, 1) one of 16.982:
    ρ rounds to float64, and near ρ = 1 that moves −(d/2) log(1 − ρ²). Every level up to
    largest_true_mi now holds to MI_RTOL = 1e-9 relative, against mpmath's MI of the ρ
    actually used (60 digits, log1p so that tiny levels are resolved)."""
    from rpmref.gaussian.staircase import MI_RTOL
    top = largest_true_mi(dim)
    levels = [1e-300, 1e-8, 0.5] + list(np.linspace(0.1, 1.0, 40) * top)
    with mpmath.workdps(60):
        for level in levels:
            _, rho = mi_bench.staircase_joint(level, dim=dim)
            built = float(-dim * mpmath.log1p(-mpmath.mpf(rho) ** 2) / 2)
            assert abs(built - level) <= MI_RTOL * level, (level, built)


def test_a_level_beyond_float64_is_a_usage_error_naming_levels(capsys):
    assert cli.main(["mi-bench", "--levels", "2,20", "--dim", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpmref mi-bench: error: --levels 20: ") and err.count("\n") == 1
    assert "at most" in err and "--dim 1" in err


def test_example_runs_quick(tmp_path, monkeypatch, capsys):
    figure = tmp_path / "fig.png"
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--quick", "--figure", str(figure)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "I_inf = 10.0000" in out and figure.exists()


@pytest.mark.parametrize("dim, batch_size, batches", [
    (20, 64, 200),      # the default sizes, fewer batches: chunks of 200 batches
    (100, 64, 100),     # the K × 2d draws dominate
    (20, 2100, 2),      # one batch per chunk: the K × K scores dominate
    (400, 8, 2),        # the 2d × 2d matrices dominate
])
def test_memory_model_bounds_the_measured_peak(dim, batch_size, batches):
    """peak_bytes (behind the --batch-size and --dim limits) is an upper bound of the
    memory the benchmark really allocates (tracemalloc, which sees NumPy's buffers),
    and not a loose one: within a factor 2.5, so the limits are not far too strict."""
    import tracemalloc
    from rpmref.cli import mi_bench as command
    tracemalloc.start()
    try:
        mi_bench.benchmark_rows(levels=(2.0,), dim=dim, batch_size=batch_size,
                                batches=batches, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    model = command.peak_bytes(dim, batch_size, batches)
    assert peak <= model <= 2.5 * peak


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "100000"], "--batch-size must be at most"),
    (["--dim", "100000"], "--dim must be at most"),
    (["--dim", "1000"], "--dim must be at most"),   # K × 2d draws at K = 64
    (["--dim", "638"], "--dim must be at most 537"),  # memory allows 637; the draws 537
    (["--dim", "538"], "--dim must be at most 537"),
])
def test_sizes_too_large_for_memory_are_refused_at_once(argv, message, capsys):
    """A size whose arrays would not fit in the memory budget, or whose chunk of batches
    would draw more than MAX_SAMPLE_ELEMENTS Gaussians: one line, exit 2, before any work
    (it used to end in a MemoryError traceback, and --dim 600 in a message naming no
    option). The limit named is one that fits: --dim 638 at K = 64 was told '--batch-size
    must be at most 7972' (the need is not monotone in K: a larger K takes fewer batches
    per chunk), which K = 64 already is."""
    from rpmref.cli import mi_bench as command
    from rpmref.cli.common import gib, MEMORY_BUDGET
    assert cli.main(["mi-bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpmref mi-bench: error:") and err.count("\n") == 1
    assert message in err and f"the limit is {gib(MEMORY_BUDGET)}" in err
    limit = int(err.split("must be at most ")[1].split()[0])
    flag_values = dict(zip(argv[::2], argv[1::2]))
    dim = int(flag_values.get("--dim", mi_bench.DIM))
    if "--batch-size" in message:  # the limit is the largest K that fits (and K² scores)
        assert command.fits(dim, limit, mi_bench.BATCHES)
        assert limit == command.MAX_BATCH_SIZE or \
            not command.fits(dim, limit + 1, mi_bench.BATCHES)
    else:
        assert command.fits(limit, mi_bench.BATCH_SIZE, mi_bench.BATCHES)
        assert not command.fits(limit + 1, mi_bench.BATCH_SIZE, mi_bench.BATCHES)


@pytest.mark.parametrize("name, message", [
    ("f.xyz", "must be a file name ending in one of .png, .pdf, .svg"),
    ("", "must be a file name ending in"),  # a directory: savefig would write DIR.png
    ("missing/f.png", "directory"),
])
def test_figure_location_is_checked_before_computing(name, message, tmp_path, capsys, monkeypatch):
    """--figure f.xyz used to fail in matplotlib after the whole computation, and
    --figure DIR printed "wrote DIR" but wrote DIR.png."""
    from rpmref.cli import mi_bench as command
    monkeypatch.setattr(command, "benchmark_rows", lambda *a: pytest.fail("computed first"))
    path = str(tmp_path / name) if name else str(tmp_path)
    assert cli.main(["mi-bench", "--figure", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpmref mi-bench: error: --figure") and err.count("\n") == 1
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_figure_write_failure_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    """An OSError while the figure is written (disk full, say): one line naming the file."""
    import errno
    from rpmref.cli import mi_bench as command
    path = tmp_path / "f.png"

    def full_disk(rows, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(command, "plot", full_disk)
    assert cli.main(["mi-bench", "--batches", "2", "--levels", "2", "--dim", "2",
                     "--figure", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"rpmref mi-bench: error: {path}: No space left on device\n"


def test_batch_size_beyond_the_score_matrix_limit_is_a_usage_error(capsys):
    """--batch-size 8300 fits the memory budget at the default --dim, but its 8300²
    score matrix is beyond MAX_SCORE_ELEMENTS = 2^26 (K ≤ 8192): it was refused only at
    run time, naming the library's n and constant; --help promised 8740."""
    from rpmref.cli import mi_bench as command
    from rpmref.gaussian.monte_carlo import MAX_SCORE_ELEMENTS
    assert command.MAX_BATCH_SIZE ** 2 <= MAX_SCORE_ELEMENTS < (command.MAX_BATCH_SIZE + 1) ** 2
    assert cli.main(["mi-bench", "--batch-size", "8300", "--levels", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size must be at most 8192" in err
    assert command.DEFAULT_MAX_BATCH <= command.MAX_BATCH_SIZE


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "argument --seed: expected a non-negative integer, got -1"),
    (["--levels", "1e-300"], "--levels 1e-300: so small an MI makes the best RBF lengthscale"),
])
def test_seed_and_tiny_levels_are_usage_errors_naming_the_option(argv, message, capsys):
    """--seed -1 gave NumPy's 'expected non-negative integer' and --levels 1e-300
    'lengthscale must be a finite real number, got inf', neither naming the option."""
    try:
        code = cli.main(["mi-bench", *argv])
    except SystemExit as exit_:   # argparse's own usage errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
