"""rpmref.structure: MI is the same for every relabelling, I_∞ with the local critic is not,
the topography scores on hand-derived cases, the learning runs, the CLI and bad input.

Independent routes: MI and I_∞ are recomputed here with plain Python loops and ``math``
(no rpmref function), over every permutation of small latent spaces.
"""
import itertools
import json
import math

import numpy as np
import pytest

from rpmref.cli import main
from rpmref.structure import (
    LearnConfig, coarse_encoder, data_pmf, distance_correlation, geometry, labellings,
    linear_map_table, local_critic, neighbour_fraction, neighbour_kernel, one_hot,
    position_correlation, relabel_encoder, relabelling_baseline, relabelling_table,
    spearman, symmetries, topography_scores, train_encoder)
from rpmref.structure.experiment import problem

SMALL = [("line", 8, 4), ("ring", 8, 4), ("grid", 4, 2), ("line", 10, 5), ("ring", 10, 5)]


def _brute_joint(p_xx, enc):
    n, k = enc.shape
    return [[math.fsum(p_xx[x, y] * enc[x, z] * enc[y, w] for x in range(n) for y in range(n))
             for w in range(k)] for z in range(k)]


def _brute_mi(p):
    k = len(p)
    row = [math.fsum(p[z]) for z in range(k)]
    col = [math.fsum(p[z][w] for z in range(k)) for w in range(k)]
    return math.fsum(p[z][w] * math.log(p[z][w] / (row[z] * col[w]))
                     for z in range(k) for w in range(k) if p[z][w] > 0)


def _brute_limit(p, f):
    """I_∞ = Σ P(z,z') f(z,z') − Σ_z P(z) log Σ_z' P(z') e^{f(z,z')} (Eq. 7), by loops."""
    k = len(p)
    row = [math.fsum(p[z]) for z in range(k)]
    col = [math.fsum(p[z][w] for z in range(k)) for w in range(k)]
    e_f = math.fsum(p[z][w] * f[z][w] for z in range(k) for w in range(k))
    log_z = [math.log(math.fsum(col[w] * math.exp(f[z][w]) for w in range(k))) for z in range(k)]
    return e_f - math.fsum(row[z] * log_z[z] for z in range(k))


@pytest.mark.parametrize("kind, n, k", SMALL)
def test_mi_is_the_same_for_every_relabelling_and_equals_brute_force(kind, n, k):
    data_geo, latent_geo = geometry(kind, n), geometry(kind, k)
    p_xx, enc = data_pmf(data_geo), coarse_encoder(data_geo, latent_geo)
    perms = labellings(latent_geo.n)
    table = relabelling_table(p_xx, enc, latent_geo, perms)
    brute = _brute_mi(_brute_joint(p_xx, enc))
    # MI is a P-weighted sum of ≤ 25 terms |log(p/(p p'))| ≤ 10 here: float64 is off by
    # ≤ 25·1.1e-16·10 ≈ 3e-14 per route; 1e-12 is 15× both routes together.
    assert np.max(np.abs(table["mi"] - brute)) <= 1e-12
    assert table["mi"].max() - table["mi"].min() <= 1e-12
    # …while I_∞ differs between labellings by far more than any rounding
    assert table["i_inf"].max() - table["i_inf"].min() > 0.05


@pytest.mark.parametrize("kind, n, k", SMALL)
@pytest.mark.parametrize("ell", [0.5, 1.0, 2.0])
def test_identity_labelling_maximises_i_inf_and_ties_only_with_symmetries(kind, n, k, ell):
    """Every k! labelling by loops at a fixed ℓ: the max is the identity's, attained exactly by
    the distance-preserving relabellings (found here by brute force, not by ``symmetries``)."""
    data_geo, latent_geo = geometry(kind, n), geometry(kind, k)
    p_xx, enc = data_pmf(data_geo), coarse_encoder(data_geo, latent_geo)
    f = local_critic(latent_geo, ell).tolist()
    values = {}
    for perm in itertools.permutations(range(latent_geo.n)):
        values[perm] = _brute_limit(_brute_joint(p_xx, relabel_encoder(enc, np.array(perm))), f)
    identity = tuple(range(latent_geo.n))
    best = max(values.values())
    # Loop sums of ≤ 25 terms of size ≤ max|f| + 10 ≤ 60: off by ≤ 25·1.1e-16·60 ≈ 2e-13;
    # distinct labellings differ by ≥ 1e-3 (printed by `rpmref structure`, 'separation').
    tol = 1e-11
    assert values[identity] >= best - tol
    tied = {p for p, v in values.items() if v >= best - tol}
    d = latent_geo.distance
    preserving = {p for p in values if np.array_equal(d[np.ix_(p, p)], d)}
    assert tied == preserving == {tuple(s) for s in symmetries(latent_geo)}


def test_relabelling_table_i_inf_matches_brute_force_at_its_lengthscale():
    data_geo, latent_geo = geometry("ring", 8), geometry("ring", 4)
    p_xx, enc = data_pmf(data_geo), coarse_encoder(data_geo, latent_geo)
    perms = labellings(4)
    table = relabelling_table(p_xx, enc, latent_geo, perms)
    for i, perm in enumerate(perms):
        f = local_critic(latent_geo, table["lengthscale"][i]).tolist()
        brute = _brute_limit(_brute_joint(p_xx, relabel_encoder(enc, perm)), f)
        assert abs(table["i_inf"][i] - brute) <= 1e-11  # as in the test above
    # the vectorised ℓ search and rpmref.infonce_limit agree (same tolerance)
    assert table["grid_gap"] <= 1e-11


def test_symmetries_and_data_pmf():
    for kind, size, count in [("line", 6, 2), ("ring", 6, 12), ("grid", 3, 8)]:
        geo = geometry(kind, size)
        sym = symmetries(geo)
        assert len(sym) == count and np.array_equal(sym[0], np.arange(geo.n))
        p = data_pmf(geo)
        kernel = neighbour_kernel(geo)
        assert np.array_equal(p, p.T)
        # rows of ≤ 5 entries: sums off by ≤ 5 u
        assert np.max(np.abs(kernel.sum(axis=1) - 1)) <= 1e-15
        assert np.max(np.abs(p.sum(axis=0) - 1 / geo.n)) <= 1e-15
    # line of 3, stay 1/2: the middle state moves to each side with 1/4, the ends too
    assert np.array_equal(neighbour_kernel(geometry("line", 3)),
                          [[0.75, 0.25, 0], [0.25, 0.5, 0.25], [0, 0.25, 0.75]])


def test_labellings_sample_includes_identity_and_symmetries():
    latent = geometry("grid", 3)
    perms = labellings(9, max_count=300, seed=1, include=symmetries(latent))
    assert perms.shape == (300, 9) and len({tuple(p) for p in perms}) == 300
    assert np.array_equal(perms[0], np.arange(9))
    assert {tuple(s) for s in symmetries(latent)} <= {tuple(p) for p in perms}
    assert np.array_equal(perms, labellings(9, max_count=300, seed=1, include=symmetries(latent)))
    assert labellings(5).shape == (120, 5)


# ------------------------------------------------------------------ topography
def test_topography_of_identity_and_reversed_codes():
    line = geometry("line", 6)
    eye = np.eye(6)
    assert topography_scores(line, line, eye) == {
        "neighbour_fraction": 1.0, "distance_correlation": pytest.approx(1.0, abs=1e-15),
        "position_correlation": pytest.approx(1.0, abs=1e-15)}
    reverse = eye[::-1]
    assert position_correlation(line, line, reverse) == pytest.approx(-1.0, abs=1e-15)
    assert distance_correlation(line, line, reverse) == pytest.approx(1.0, abs=1e-15)
    assert neighbour_fraction(line, line, reverse) == 1.0


def test_topography_hand_computed_case():
    """Line of 3 encoded by 0→0, 1→2, 2→1. Neighbour pairs {0,1}→(0,2), d=2, and {1,2}→(2,1),
    d=1: fraction 1/2. Pairs (0,1), (0,2), (1,2) have data distances 1, 2, 1 and latent 2, 1, 1:
    ranks (1.5, 3, 1.5) and (3, 1.5, 1.5), centred (−.5, 1, −.5)·(1, −.5, −.5) = −.75 over
    1.5 → ρ = −1/2. Positions (0, 1, 2) vs (0, 2, 1): ρ = 1/2."""
    line = geometry("line", 3)
    enc = one_hot(np.array([0, 2, 1]), 3)
    assert neighbour_fraction(line, line, enc) == 0.5
    # a few roundings in sums of 3 ranks: 1e-15
    assert distance_correlation(line, line, enc) == pytest.approx(-0.5, abs=1e-15)
    assert position_correlation(line, line, enc) == pytest.approx(0.5, abs=1e-15)
    # a soft code: x=1 goes to 1 or 2 with 1/2 each; P(d ≤ 1) = 1/2 for {0,1}, 1 for {1,2}
    soft = np.array([[1.0, 0, 0], [0, 0.5, 0.5], [0, 0, 1.0]])
    assert neighbour_fraction(line, line, soft) == 0.75


def test_neighbour_fraction_baseline_is_the_average_over_all_relabellings():
    data_geo, latent_geo = geometry("ring", 10), geometry("ring", 5)
    enc = 0.7 * coarse_encoder(data_geo, latent_geo) + 0.3 / 5       # soft, rows sum to 1
    exact = relabelling_baseline(data_geo, latent_geo, enc, samples=1)["neighbour_fraction"]
    every = [neighbour_fraction(data_geo, latent_geo, relabel_encoder(enc, np.array(p)))
             for p in itertools.permutations(range(5))]
    # a mean of 120 values in [0, 1] against a sum of 10 terms: ≤ 1e-14
    assert exact == pytest.approx(np.mean(every), abs=1e-14)


def test_labellings_refuse_a_max_count_that_would_drop_rows_of_include():
    """labellings(9, max_count=3, include=<8 symmetries>) returned 3 rows, silently dropping
    6 of the rows it was told to include; with room for them, every one is there."""
    include = [np.roll(np.arange(9), s) for s in range(1, 9)]          # 8 distinct rows
    with pytest.raises(ValueError, match="max_count = 3 cannot hold the identity and the 8 "
                                         "other distinct rows of include; give max_count >= 9"):
        labellings(9, max_count=3, include=include)
    rows = {tuple(r) for r in labellings(9, max_count=12, include=include)}
    assert len(rows) == 12 and {tuple(r) for r in include} <= rows
    assert tuple(range(9)) in rows


# ------------------------------------------------------------------ learning
def test_learning_takes_a_seed_sequence_and_leaves_it_as_it_was():
    """check_seed accepts a SeedSequence, but SeedSequence(seed).spawn(3) raised NumPy's
    TypeError on one; a SeedSequence(3) seed is the int seed 3, and passing the same
    object twice gives the same run (spawn would have advanced it)."""
    data_geo, latent_geo, p_xx, _ = problem("line", quick=True)
    config = LearnConfig(steps=5, baseline_samples=2)
    by_int = train_encoder(data_geo, latent_geo, p_xx, "sampled", 3, config)
    sequence = np.random.SeedSequence(3)
    first = train_encoder(data_geo, latent_geo, p_xx, "sampled", sequence, config)
    second = train_encoder(data_geo, latent_geo, p_xx, "sampled", sequence, config)
    assert np.array_equal(first["enc"], by_int["enc"]) and first["trace"] == by_int["trace"]
    assert np.array_equal(second["enc"], first["enc"]) and second["trace"] == first["trace"]
    assert sequence.n_children_spawned == 0


@pytest.mark.parametrize("objective", ["mi", "local", "table", "sampled"])
def test_learning_is_reproducible_and_improves(objective):
    data_geo, latent_geo, p_xx, _ = problem("line", quick=True)
    config = LearnConfig(steps=40, baseline_samples=5)
    run = train_encoder(data_geo, latent_geo, p_xx, objective, 3, config)
    again = train_encoder(data_geo, latent_geo, p_xx, objective, 3, config)
    assert np.array_equal(run["enc"], again["enc"]) and run["trace"] == again["trace"]
    assert not np.array_equal(run["enc"],
                              train_encoder(data_geo, latent_geo, p_xx, objective, 4, config)["enc"])
    trace = np.asarray(run["trace"])
    # sampled batches are noisy: compare the means of the first and last 10 steps
    assert trace[-10:].mean() > trace[:10].mean() + 0.05
    # the reported MI of the trained code bounds its I_∞ (E6: the gap is a KL ≥ 0)
    assert run["mi"] >= run["i_inf"] - 1e-12


def test_topographic_encoder_attains_the_scores_maximum():
    data_geo, latent_geo, p_xx, enc = problem("line", quick=True)
    scores = topography_scores(data_geo, latent_geo, enc)
    assert scores["neighbour_fraction"] == 1.0 and scores["position_correlation"] > 0.97


# ------------------------------------------------------------------ Gaussian analogue
def test_gaussian_linear_maps_keep_mi_and_change_rbf_i_inf():
    rows = {r["map"]: r for r in linear_map_table()}
    mi = [r["mi"] for r in rows.values()]
    # −½ Σ log(1 − σ²) from an SVD of 2×2 whitened matrices: relative error ~1e-15 per
    # σ, amplified by 1/(1 − σ²) ≤ 5.3: 1e-13 covers it 10×
    assert max(mi) - min(mi) <= 1e-13
    base = rows["identity"]["i_inf"]
    for name in ("rotation 36°", "scaling ×3"):     # the RBF prior's symmetries
        # ℓ* is a root found to 1e-14 in log ℓ², where dI_∞/dℓ = 0: I_∞ is off by O(1e-28)
        assert rows[name]["i_inf"] == pytest.approx(base, abs=1e-12)
    for name in ("scaling (1, 5)", "shear 2", "random"):
        assert abs(rows[name]["i_inf"] - base) > 0.1


# ------------------------------------------------------------------ CLI and bad input
def test_cli_json_keys_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["structure", "--help"])
    assert done.value.code == 0 and "--geometry" in capsys.readouterr().out
    path = tmp_path / "s.json"
    code = main(["structure", "--quick", "--seeds", "2", "--steps", "5", "--geometry", "ring",
                 "--json", str(path)])
    assert code == 0
    record = json.loads(path.read_text())
    assert {"environment", "settings", "invariance", "learning", "gaussian"} <= set(record)
    assert record["invariance"]["ring"]["identity_rank"] == 1
    assert record["learning"]["ring"]["objectives"]["mi"]["runs"] == 2
    assert "Relabellings" in capsys.readouterr().out


def test_cli_json_alone_prints_only_json_on_stdout(capsys):
    """``rpmref structure --json`` (no PATH): stdout is one JSON object, the tables go to
    stderr; the MI spread over relabellings is at rounding level and I_inf's is not."""
    code = main(["structure", "--quick", "--seeds", "2", "--steps", "5", "--geometry", "line",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0
    record = json.loads(captured.out)
    line = record["invariance"]["line"]
    assert line["mi_spread"] <= 1e-12 < line["i_inf_spread"] and line["identity_rank"] == 1
    assert "Relabellings" in captured.err


@pytest.mark.parametrize("argv", [["structure", "--seeds", "0"], ["structure", "--geometry", "moon"],
                                  ["structure", "--steps", "x"]])
def test_cli_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and "error" in capsys.readouterr().err


def test_cli_unwritable_json_is_refused_before_work(tmp_path, capsys):
    assert main(["structure", "--quick", "--json", str(tmp_path / "no" / "s.json")]) == 2
    assert "--json" in capsys.readouterr().err


def test_max_size_is_the_largest_geometry_whose_tables_fit_the_budget():
    from rpmref.exact.discrete import MAX_TENSOR_ELEMENTS
    from rpmref.structure.geometry import MAX_SIZE
    for kind, side in MAX_SIZE.items():
        states = side * side if kind == "grid" else side
        bigger = (side + 1) ** 2 if kind == "grid" else side + 1
        assert states ** 2 <= MAX_TENSOR_ELEMENTS < bigger ** 2


@pytest.mark.parametrize("call, error, words", [
    (lambda: geometry("moon", 4), ValueError, "kind"),
    (lambda: geometry("ring", 2), ValueError, "size"),
    (lambda: geometry("line", 4.0), TypeError, "size"),
    # beyond the tensor budget: a ValueError before NumPy tries to allocate terabytes
    (lambda: geometry("line", 10 ** 6), ValueError, "size must be <= 5792 for a line"),
    (lambda: geometry("grid", 77), ValueError, "size must be <= 76 for a grid"),
    (lambda: neighbour_kernel(geometry("line", 4), stay=1.5), ValueError, "stay"),
    (lambda: relabel_encoder(np.eye(3), np.array([0, 0, 1])), ValueError, "perm"),
    (lambda: one_hot(np.array([0, 3]), 3), ValueError, "labels"),
    (lambda: local_critic(geometry("line", 3), 0.0), ValueError, "lengthscale"),
    (lambda: coarse_encoder(geometry("line", 4), geometry("ring", 4)), ValueError, "latent_geo"),
    (lambda: LearnConfig(steps=0), ValueError, "steps"),
    (lambda: train_encoder(*problem("line", True)[:3], "bilinear", 0), ValueError, "objective"),
    (lambda: train_encoder(*problem("line", True)[:3], "mi", -1), ValueError, "seed"),
    (lambda: relabelling_table(data_pmf(geometry("line", 4)), np.eye(4), geometry("line", 3),
                               labellings(3)), ValueError, "latent_geo"),
    # a geometry that is not a Geometry was an AttributeError from inside the function
    (lambda: neighbour_kernel(None), TypeError, "geo must be a Geometry"),
    (lambda: data_pmf("line"), TypeError, "geo must be a Geometry"),
    (lambda: coarse_encoder(geometry("line", 4), 2), TypeError, "latent_geo must be a Geometry"),
    (lambda: local_critic(3, 1.0), TypeError, "latent_geo must be a Geometry"),
    (lambda: topography_scores("line", geometry("line", 2), np.eye(2)), TypeError,
     "data_geo must be a Geometry"),
    (lambda: train_encoder(geometry("line", 4), "line", data_pmf(geometry("line", 4)), "mi", 0),
     TypeError, "latent_geo must be a Geometry"),
    (lambda: train_encoder(*problem("line", True)[:3], "mi", 0, config={"steps": 2}), TypeError,
     "config must be a LearnConfig"),
    # unused arguments were not checked at all (k ≤ MAX_EXHAUSTIVE)
    (lambda: labellings(3, -1), ValueError, "max_count"),
    (lambda: labellings(3, seed=-1), ValueError, "seed"),
    # spearman: NumPy's broadcasting error, or a NaN silently ranked
    (lambda: spearman([1, 2], [1, 2, 3]), ValueError, "a and b must have the same length"),
    (lambda: spearman([1, np.nan, 3], [1, 2, 3]), ValueError, "a must be finite"),
    (lambda: spearman(["x", "y"], [1, 2]), TypeError, "a must be an array of real numbers"),
])
def test_bad_input_names_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("value, error, words", [
    (np.array([0, 2, 1]), None, None),
    (np.array([0, 1, 1]), ValueError, "1 appears 2 times"),
    (np.array([0, 1, 3]), ValueError, r"perm\[2\] = 3"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integers"),
    (np.array([[0, 1, 2]]), ValueError, "shape"),
])
def test_check_permutation(value, error, words):
    from rpmref.exact.validation import check_permutation
    if error is None:
        assert np.array_equal(check_permutation(value, "perm", 3), value)
    else:
        with pytest.raises(error, match=words):
            check_permutation(value, "perm", 3)


@pytest.mark.parametrize("kind", ["mi", "local", "table", "sampled"])
def test_objective_gradients_match_central_differences(kind):
    """autograd's reverse-mode gradient of each training objective against finite differences."""
    from autograd.misc.flatten import flatten
    from autograd.test_util import check_grads
    from rpmref.structure.learning import _objective
    data_geo, latent_geo, p_xx, _ = problem("ring", quick=True)
    rng = np.random.default_rng(0)
    params = {"logits": rng.standard_normal((8, 4)), "log_l": np.array(0.2),
              "table": rng.standard_normal((4, 4))}
    flat, unflatten = flatten(params)
    x = rng.integers(0, 8, 16)
    value = _objective(kind, p_xx, latent_geo.distance ** 2, lambda step: (x, (x + 1) % 8))
    check_grads(lambda w: value(unflatten(w), 0), modes=["rev"], order=1)(flat)


@pytest.mark.parametrize("rate", ["1e3", "1e308"])
def test_cli_divergent_training_is_one_line_exit_1_naming_the_learning_rate(rate, capsys):
    """Bug: --learning-rate 1e3 ended in a FloatingPointError traceback; 1e308 printed NumPy
    overflow warnings and then 'enc rows must sum to 1 ... row 2 sums to 2.0' (exit 2):
    softmax of logits near 1e308 had lost its log 2."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["structure", "--quick", "--seeds", "1", "--steps", "20", "--geometry",
                     "line", "--learning-rate", rate])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err and "Warning" not in err
    assert last.startswith("rpmref structure: error: training diverged") and "--learning-rate" in last


def test_softmax_encoder_rows_are_pmfs_for_logits_near_the_float64_maximum():
    """exp(log_softmax) of [1e308, 1e308] is [1/2, 1/2] (it was [1, 1])."""
    from rpmref.structure.learning import encoder
    rows = encoder(np.array([[1e308, 1e308, -1e308], [1.7e308, -1.7e308, 0.0]]))
    np.testing.assert_array_equal(rows, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
