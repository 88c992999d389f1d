"""Hostile input to rpmref.structure, rpmref.verify and rpmref.proofs: extreme but valid
arguments give exact answers, bad ones a one-line ValueError/TypeError naming the argument.

Independent routes: the local critic at extreme lengthscales against its limit computed
with exact rational arithmetic (``fractions``); the Gaussian mapped pair of a scaled
identity against the closed form of the base pair (Cov scales by c², MI is unchanged).
"""
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from rpmref import verify
from rpmref.gaussian import mutual_information as gaussian_mi
from rpmref.proofs.run import run_proofs, select
from rpmref.structure import (
    LearnConfig, data_pmf, evaluate, geometry, invariance_summary, labellings,
    linear_map_table, local_critic, mapped_pair, one_hot, position_correlation,
    relabel_encoder, relabelling_baseline, relabelling_table, tie_tolerance, train_encoder)
from rpmref.exact.discrete import MAX_TENSOR_ELEMENTS
from rpmref.structure.relabel import MAX_EXHAUSTIVE, MAX_SAMPLE
from rpmref.structure.topography import rank

LINE4 = geometry("line", 4)
ID4 = one_hot(range(4), 4)


def _exact_critic(distance, ell):
    """−d²/(2ℓ²) in exact rationals, rounded once to float64 (−inf beyond its range)."""
    out = np.empty(distance.shape)
    for idx, d in np.ndenumerate(distance):
        value = -Fraction(d) ** 2 / (2 * Fraction(ell) ** 2)
        try:
            out[idx] = float(value)
        except OverflowError:
            out[idx] = -math.inf
    return out


@pytest.mark.parametrize("ell", [1e-300, 1e-160, 1e-5, 1.0, 1e5, 1e160, 1e300])
def test_local_critic_extreme_lengthscales_are_exact(ell):
    """ℓ = 1e-300 gave NaN on the diagonal (0/0), ℓ = 1e300 an OverflowError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = local_critic(LINE4, ell)
    expected = _exact_critic(LINE4.distance, ell)
    assert not np.isnan(f).any()
    assert np.array_equal(np.isneginf(f), np.isneginf(expected))
    finite = np.isfinite(expected)
    # one division and one square: within 3 ulps of the correctly rounded value
    np.testing.assert_allclose(f[finite], expected[finite], rtol=4 * np.finfo(float).eps, atol=0)
    assert np.all(np.diag(f) == 0)


@pytest.mark.parametrize("lengthscales, word", [([-1.0, 1.0], "positive"), ([0.0, 1.0], "positive")])
def test_relabelling_table_refuses_nonpositive_lengthscales(lengthscales, word):
    with pytest.raises(ValueError, match=f"lengthscales.*{word}"):
        relabelling_table(data_pmf(LINE4), ID4, LINE4, labellings(4), lengthscales=lengthscales)


def test_relabelling_table_tiny_lengthscale_against_the_closed_form():
    """ℓ = 1e-150: the critic is finite (−d²/(2ℓ²) ~ −1e300) but e^f = 0 off the diagonal,
    so log Z(z) = log P(z) and I_∞ = Σ P(z, z') f(z, z') + H(Z), summed here with fsum."""
    p_xx, ell = data_pmf(LINE4), 1e-150
    table = relabelling_table(p_xx, ID4, LINE4, labellings(4)[:1], lengthscales=[ell])
    f = -LINE4.distance ** 2 / (2 * ell ** 2)
    p_z = p_xx.sum(axis=1)
    by_hand = math.fsum((p_xx * f).ravel()) - math.fsum(p_z * np.log(p_z))
    assert table["i_inf"][0] == pytest.approx(by_hand, rel=1e-12, abs=0)


def test_relabelling_table_refuses_lengthscales_whose_critic_overflows():
    with pytest.raises(ValueError, match="lengthscales.*overflow"):
        relabelling_table(data_pmf(LINE4), ID4, LINE4, labellings(4), lengthscales=[1e-200, 1.0])


def test_relabelling_table_refuses_no_permutations():
    with pytest.raises(ValueError, match="perms"):
        relabelling_table(data_pmf(LINE4), ID4, LINE4, np.zeros((0, 4), dtype=int))


@pytest.mark.parametrize("enc, error", [([0.5, 0.5], ValueError), (3, ValueError),
                                        ([[np.nan, 1.0]], ValueError), ([["a", "b"]], TypeError),
                                        ([[2.0, -1.0]], ValueError)])
def test_relabel_encoder_checks_enc(enc, error):
    with pytest.raises(error, match="enc"):
        relabel_encoder(enc, [1, 0])


def test_position_correlation_refuses_a_non_geometry():
    with pytest.raises(TypeError, match="data_geo must be a Geometry"):
        position_correlation("line", LINE4, ID4)
    with pytest.raises(TypeError, match="latent_geo must be a Geometry"):
        position_correlation(LINE4, None, ID4)


@pytest.mark.parametrize("values, error", [([[1, 2], [3, 4]], ValueError), ([np.nan, 1.0], ValueError),
                                           (["a"], TypeError), ([], ValueError)])
def test_rank_checks_values(values, error):
    with pytest.raises(error, match="values"):
        rank(values)


def test_invariance_summary_without_identity_is_a_value_error():
    with pytest.raises(ValueError, match="perms.*identity"):
        invariance_summary(data_pmf(LINE4), ID4, LINE4, labellings(4)[1:])


@pytest.mark.parametrize("value, error", [(True, TypeError), (2.5, TypeError), (-1, ValueError),
                                          ("3", TypeError)])
def test_invariance_summary_checks_elbo_labellings(value, error):
    with pytest.raises(error, match="elbo_labellings"):
        invariance_summary(data_pmf(LINE4), ID4, LINE4, labellings(4), elbo_labellings=value)


def test_invariance_summary_refuses_a_table_of_other_perms():
    p_xx, perms = data_pmf(LINE4), labellings(4)
    table = relabelling_table(p_xx, ID4, LINE4, perms[:3])
    with pytest.raises(ValueError, match="table"):
        invariance_summary(p_xx, ID4, LINE4, perms, table=table)
    with pytest.raises(TypeError, match="table"):
        invariance_summary(p_xx, ID4, LINE4, perms, table=[1, 2])


@pytest.mark.parametrize("k, max_abs_f, error", [(True, 1.0, TypeError), (2.5, 1.0, TypeError),
                                                 (0, 1.0, ValueError), (3, float("nan"), ValueError),
                                                 (3, "1", TypeError), (3, -1.0, ValueError)])
def test_tie_tolerance_checks_arguments(k, max_abs_f, error):
    with pytest.raises(error, match="k|max_abs_f"):
        tie_tolerance(k, max_abs_f)


@pytest.mark.parametrize("include, error", [(5, TypeError), (np.arange(9), ValueError)])
def test_labellings_checks_include(include, error):
    with pytest.raises(error, match="include"):
        labellings(9, max_count=3, include=include)


def test_labellings_include_one_row_message_names_rows():
    with pytest.raises(ValueError, match=r"include must be .*\(m, 9\)"):
        labellings(9, max_count=3, include=np.arange(9))


def test_train_encoder_refuses_mixed_geometries_before_training():
    """A line of data with ring latents has no position correlation: refused up front
    (it used to train first and fail in the scoring)."""
    config = LearnConfig(steps=10 ** 9)          # would take forever if it trained first
    with pytest.raises(ValueError, match="latent_geo"):
        train_encoder(LINE4, geometry("ring", 3), data_pmf(LINE4), "local", 0, config)


def test_evaluate_checks_enc_against_the_geometries():
    with pytest.raises(ValueError, match="enc has 2 columns but latent_geo has 4"):
        evaluate(LINE4, LINE4, data_pmf(LINE4), one_hot([0, 0, 1, 1], 2), 2)


@pytest.mark.parametrize("scale", [1e-7, 1e-100, 1e100])
def test_mapped_pair_of_a_scaled_identity(scale):
    """c·I is invertible at every c: the covariances scale by c² and the MI is unchanged."""
    pair = mapped_pair(scale * np.eye(2))
    base = mapped_pair(np.eye(2))
    np.testing.assert_allclose(pair.cov, scale ** 2 * base.cov, rtol=4 * np.finfo(float).eps, atol=0)
    mi = -0.5 * (math.log(1 - 0.9 ** 2) + math.log(1 - 0.5 ** 2))
    assert gaussian_mi(pair) == pytest.approx(mi, rel=1e-12, abs=0)


def test_mapped_pair_refuses_a_map_whose_covariance_overflows():
    with pytest.raises(ValueError, match="A"):
        mapped_pair(1e200 * np.eye(2))


def test_mapped_pair_still_refuses_near_singular_maps():
    with pytest.raises(ValueError, match="invertible"):
        mapped_pair([[1.0, 1.0], [1.0, 1.0 + 1e-15]])


def test_linear_map_table_checks_maps():
    with pytest.raises(TypeError, match="maps"):
        linear_map_table([np.eye(2)])


# --------------------------------------------------------------------------- rpmref.verify
@pytest.mark.parametrize("max_states, error", [(0, ValueError), (2.5, TypeError), (True, TypeError),
                                               ("3", TypeError), (33, ValueError)])
def test_verify_checks_max_states(max_states, error):
    rng = np.random.default_rng(0)
    with pytest.raises(error, match="max_states"):
        verify.random_problem(rng, max_states)
    with pytest.raises(error, match="max_states"):
        verify.check_e7(rng, max_states)


def test_verify_checks_rng_and_kind():
    with pytest.raises(TypeError, match="rng"):
        verify.random_problem(0, 3)
    with pytest.raises(TypeError, match="rng"):
        verify.check_e1(0, 3)
    with pytest.raises(ValueError, match="kind"):
        verify.random_problem(np.random.default_rng(0), 3, kind="x")


def test_verify_checks_accept_numpy_integers():
    error, case = verify.check_e1(np.random.default_rng(0), np.int64(2))
    assert error == verify.check_e1(np.random.default_rng(0), 2)[0]


# --------------------------------------------------------------------------- rpmref.proofs
def test_select_refuses_ids_naming_nothing():
    with pytest.raises(ValueError, match="ids"):
        select("")
    with pytest.raises(ValueError, match="ids"):
        select(",,")


def test_select_checks_types():
    with pytest.raises(TypeError, match="ids"):
        select(5)
    with pytest.raises(TypeError, match="include_wrong"):
        select(None, include_wrong="no")


def test_run_proofs_accepts_numpy_integer_max_size():
    assert run_proofs(select("L1"), max_size=np.int64(1))[0].status == "proved"


def test_run_proofs_checks_entries_and_on_result_before_running():
    with pytest.raises(TypeError, match="entries"):
        run_proofs(None)
    with pytest.raises(TypeError, match="on_result"):
        run_proofs(select("L1"), 1, on_result=5)


# --------------------------------------------------------------------------- the ℓ search
def _golden_max(func, lo, hi, tol=1e-12):
    """max of a unimodal func on [lo, hi] in log ℓ by golden-section search (plain Python)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = math.log(lo), math.log(hi)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = func(math.exp(c)), func(math.exp(d))
    while b - a > tol:
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = func(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = func(math.exp(d))
    return max(fc, fd, func(lo), func(hi))


def test_best_lengthscale_reaches_the_closed_form_sup():
    """Two used latent states (0 and 2 of a line of 3): the local critic's one free value
    −4/(2ℓ²) can equal the PMI difference, so sup_ℓ I_∞ = I(Z; Z') exactly, at
    ℓ* = sqrt(2 / log(P(0,0) / P(0,2))) (f(0,0) − f(0,2) = 2/ℓ² equal to the PMI
    difference, P(0) = P(2)) — for every labelling (a relabelling
    only rescales ℓ*), so all 6 tie. The grid search stopped 1.6e-4 nats short at ℓ = 1,
    ranked the identity 5th of 6 and tied only 2."""
    from rpmref import mutual_information, recognition_joint
    latent = geometry("line", 3)
    enc = one_hot([0, 0, 2, 2], 3)
    p_xx = data_pmf(LINE4)
    p_zz = np.asarray(recognition_joint(p_xx, enc, enc))
    table = relabelling_table(p_xx, enc, latent, labellings(3))
    mi = mutual_information(p_zz)
    np.testing.assert_allclose(table["i_inf"], mi, rtol=0, atol=1e-14)
    ell_star = math.sqrt(2 / math.log(p_zz[0, 0] / p_zz[0, 2]))
    # Newton solves dI_∞/ds = 0, well conditioned (the curvature is not small here)
    assert table["lengthscale"][0] == pytest.approx(ell_star, rel=1e-12)
    summary = invariance_summary(p_xx, enc, latent, labellings(3), table=table)
    assert summary["identity_rank"] == 1 and summary["tied"] == 6


def test_best_lengthscale_with_an_asymmetric_joint():
    """P(x, x') not symmetric: the row and column marginals of P(z, z') differ. The
    vectorised search used the row marginal inside Z(z) (grid_gap 6e-4); each labelling's
    I_∞ must be the maximum over ℓ ∈ [0.1, 10] of rpmref.infonce_limit, found here by
    golden-section search."""
    from rpmref import infonce_limit, recognition_joint
    rng = np.random.default_rng(0)
    p_xx = rng.random((4, 4))
    p_xx /= p_xx.sum()
    enc = rng.random((4, 3))
    enc /= enc.sum(axis=1, keepdims=True)
    latent = geometry("line", 3)
    perms = labellings(3)
    table = relabelling_table(p_xx, enc, latent, perms)
    assert table["grid_gap"] <= 1e-14
    for row, perm in enumerate(perms):
        enc_sigma = relabel_encoder(enc, perm)
        p_zz = np.asarray(recognition_joint(p_xx, enc_sigma, enc_sigma))
        best = _golden_max(lambda ell: float(infonce_limit(p_zz, local_critic(latent, ell))),
                           0.1, 10.0)
        assert table["i_inf"][row] == pytest.approx(best, rel=0, abs=1e-13)


# --------------------------------------------------------------------------- the experiment
def test_problem_unknown_kind_is_a_value_error():
    from rpmref.structure.experiment import problem
    with pytest.raises(ValueError, match="kind"):
        problem("cube")
    with pytest.raises(TypeError, match="quick"):
        problem("line", quick="no")


@pytest.mark.parametrize("kwargs, error, name", [
    ({"geometries": ()}, ValueError, "geometries"),
    ({"sample": True}, TypeError, "sample"),
    ({"sample": 0}, ValueError, "sample"),
    ({"quick": "yes"}, TypeError, "quick"),
    ({"config": {}}, TypeError, "config"),
    ({"progress": 5}, TypeError, "progress"),
])
def test_run_experiment_checks_arguments_before_any_work(kwargs, error, name):
    from rpmref.structure.experiment import run_experiment
    args = {"geometries": ("line",), "seeds": 1, "quick": True,
            "config": LearnConfig(steps=10 ** 9)}       # would run for ever if it started
    args.update(kwargs)
    with pytest.raises(error, match=name):
        run_experiment(**args)


def test_run_experiment_takes_one_geometry_name():
    from rpmref.structure.experiment import run_experiment
    result = run_experiment("line", seeds=1, quick=True,
                            config=LearnConfig(steps=2, baseline_samples=2))
    assert list(result["invariance"]) == ["line"]


def test_relabelling_table_memory_does_not_grow_with_k():
    """The ℓ search took 2000 labellings per chunk whatever k: (2000, 21, k, k) arrays,
    0.9 GB at k = 36 (0.27 GB for these 600). Chunks now hold _CHUNK_FLOATS floats per
    array and the working set is a few such arrays (f, its shifted exponential, the
    weights): measured 5.2 of them, bounded here by 6."""
    import tracemalloc
    from rpmref.structure import coarse_encoder, symmetries
    from rpmref.structure.relabel import _CHUNK_FLOATS
    data = latent = geometry("grid", 6)
    perms = labellings(36, max_count=600, include=symmetries(latent))
    p_xx, enc = data_pmf(data), coarse_encoder(data, latent)
    tracemalloc.start()
    try:
        relabelling_table(p_xx, enc, latent, perms)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 6 * 8 * _CHUNK_FLOATS      # 600 labellings at once: about 8 of them


@pytest.mark.parametrize("results, max_size, error", [("x", 2, TypeError), ([1], 2, TypeError),
                                                      (None, 2, TypeError), ([], True, TypeError),
                                                      ([], 0, ValueError)])
def test_write_report_checks_before_opening_the_file(tmp_path, results, max_size, error):
    """write_report opened (truncated) the file first: bad results left an empty report."""
    from rpmref.proofs.report import write_report
    path = tmp_path / "report.md"
    path.write_text("previous report")
    with pytest.raises(error):
        write_report(path, results, max_size)
    assert path.read_text() == "previous report"


def test_write_report_writes_real_results(tmp_path):
    from rpmref.proofs.report import write_report
    path = tmp_path / "report.md"
    write_report(path, run_proofs(select("L1"), max_size=1), np.int64(1))
    assert "## L1:" in path.read_text() and "1 proved, 0 FAILED" in path.read_text()


@pytest.mark.parametrize("k, max_count, message", [
    (20, 10 ** 12, "max_count must be <= MAX_SAMPLE"),
    (10 ** 9, 2, "beyond MAX_TENSOR_ELEMENTS"),
])
def test_labellings_refuses_a_sample_beyond_budget_before_drawing(k, max_count, message):
    """Too many labellings, or a (count, k) table too large, is refused at once: drawing
    10^12 distinct permutations one by one, or permuting 10^9 states, would not finish."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        labellings(k, max_count=max_count)


def test_labellings_at_the_budget_are_distinct_and_include_the_identity():
    perms = labellings(MAX_EXHAUSTIVE + 1, max_count=MAX_SAMPLE)
    assert perms.shape == (MAX_SAMPLE, MAX_EXHAUSTIVE + 1)
    assert len({tuple(p) for p in perms}) == MAX_SAMPLE
    assert perms[0].tolist() == list(range(MAX_EXHAUSTIVE + 1))


@pytest.mark.parametrize("call, message", [
    (lambda: relabelling_baseline(LINE4, LINE4, ID4, samples=10 ** 12),
     "samples must be <= 100000"),
    (lambda: relabelling_baseline(geometry("grid", 76), geometry("grid", 2),
                                  np.full((76 * 76, 4), 0.25), samples=100),
     "samples must be <= 64 for 5776 data states"),
    (lambda: evaluate(LINE4, LINE4, data_pmf(LINE4), ID4, 10 ** 9),
     "baseline_samples must be <= 100000"),
    (lambda: train_encoder(LINE4, LINE4, data_pmf(LINE4), "sampled", 0,
                           LearnConfig(steps=10 ** 6, batch_size=10 ** 7)),
     "config.steps × config.batch_size must be <="),
    (lambda: LearnConfig(baseline_samples=10 ** 9), "baseline_samples must be <= 100000"),
])
def test_sample_and_step_counts_beyond_budget_are_refused_before_work(call, message):
    """Counts whose loops or arrays would not finish or fit (10^12 relabellings, a
    10^6 × 10^7 table of pairs) are refused at once, naming the argument."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()


@pytest.mark.parametrize("call, error, message", [
    (lambda: one_hot([0], 10 ** 12), ValueError, "beyond MAX_TENSOR_ELEMENTS"),
    (lambda: tie_tolerance(10 ** 300, 1.0), ValueError, "k must be <= 5792"),
])
def test_relabel_helpers_refuse_sizes_beyond_the_tensor_budget(call, error, message):
    """A (1, 10^12) one-hot table (7.3 TiB) or k² beyond float64 (10^600) is refused naming
    the argument, not a MemoryError or OverflowError from NumPy or float()."""
    with pytest.raises(error, match=message):
        call()


def test_tie_tolerance_at_the_largest_k_is_finite():
    k = math.isqrt(MAX_TENSOR_ELEMENTS)
    assert tie_tolerance(k, 1e300) == 1e-14 * k ** 2 * (1e300 + 50.0) < math.inf
