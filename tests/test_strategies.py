"""The public hypothesis strategies draw what their docstrings promise, extremes included."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given, strategies as st

from rpmref import gaussian
from rpmref.strategies import (
    ENCODER_KINDS, MAX_CORRELATION, conditionals, critic_tables, embedding_batches, encoders, gaussian_problems,
    joint_and_critic, joint_tables, pmfs, rpm_problems, score_matrices)

ROOT = Path(__file__).resolve().parent.parent


@given(joint_tables(max_states=5))
def test_joint_tables_are_pmfs(table):
    assert table.ndim == 2 and 1 <= min(table.shape) and max(table.shape) <= 5
    assert np.all(table >= 0) and abs(table.sum() - 1.0) <= 1e-12


def test_joint_tables_reach_zeros_and_tiny_entries():
    assert find(joint_tables(), lambda t: (t == 0).any() and t.size > 1) is not None
    assert find(joint_tables(), lambda t: ((t > 0) & (t < 1e-10)).any()) is not None


@given(st.sampled_from(ENCODER_KINDS + ("deterministic", "near", "dense")), st.data())
def test_encoders_of_each_kind(kind, data):
    enc = data.draw(encoders(4, 3, kind))
    assert enc.shape == (4, 3) and np.all(enc >= 0)
    np.testing.assert_allclose(enc.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    if kind in ("one-hot", "deterministic"):
        assert set(np.unique(enc)) <= {0.0, 1.0}
    if kind in ("near-one-hot", "near"):
        assert np.all(enc.max(axis=1) >= 1 - 3e-12)


def test_encoder_kind_is_checked_and_conditionals_is_encoders():
    with pytest.raises(ValueError, match="kind must be one of soft, one-hot"):
        find(encoders(2, 2, "hard"), lambda _: True)
    assert conditionals is encoders


@given(rpm_problems(max_data=4, max_latent=4, kind="one-hot"))
def test_rpm_problems_fit_together(problem):
    p_xx, enc, enc_prime, prior = problem
    assert enc.shape[0] == p_xx.shape[0] and enc_prime.shape[0] == p_xx.shape[1]
    assert prior.shape == (enc.shape[1], enc_prime.shape[1])
    assert set(np.unique(enc)) <= {0.0, 1.0}


@given(joint_and_critic(bound=7.0, max_latent=3), critic_tables((2, 3), 1.0))
def test_joint_and_critic_shapes_and_bound(pair, table):
    p_zz, f = pair
    assert p_zz.shape == f.shape and np.all(np.abs(f) <= 7.0)
    assert table.shape == (2, 3) and np.all(np.abs(table) <= 1.0)


@given(score_matrices(max_size=6, masked=True))
def test_score_matrices_have_finite_positives(scores):
    b = scores.shape[0]
    assert scores.shape == (b, b) and 1 <= b <= 6
    assert np.all(np.isfinite(np.diagonal(scores)))
    assert not np.isnan(scores).any() and not np.isposinf(scores).any()
    assert np.all(np.abs(scores[np.isfinite(scores)]) <= 1e3)


def test_score_matrices_reach_overflow_and_masks():
    assert find(score_matrices(), lambda s: np.abs(s).max() > 710) is not None
    assert find(score_matrices(masked=True), lambda s: np.isneginf(s).any()) is not None
    unmasked = find(score_matrices(max_magnitude=10.0), lambda s: s.shape[0] > 3)
    assert np.all(np.isfinite(unmasked)) and np.abs(unmasked).max() <= 10.0


@given(embedding_batches(max_size=5, max_dim=4, min_norm=2.0, max_norm=3.0))
def test_embedding_batches_have_the_drawn_norms(batch):
    z, z_prime = batch
    assert z.shape == z_prime.shape and z.shape[1] <= 4
    for a in (z, z_prime):
        norms = np.linalg.norm(a, axis=1)
        assert np.all(norms >= 2.0 - 1e-12) and np.all(norms <= 3.0 + 1e-12)


@given(gaussian_problems(max_dim=3))
def test_gaussian_problems_have_the_mutual_information_they_claim(problem):
    """MI from the construction (−½ Σ log(1 − ρ²)) against rpmref.gaussian's canonical
    correlations of the covariance: a different computation of the same number."""
    cov = problem.cov
    assert np.allclose(cov, cov.T, rtol=0, atol=0) and np.linalg.eigvalsh(cov)[0] > 0
    joint = gaussian.GaussianPair(problem.mean, cov, problem.k)
    assert abs(gaussian.mutual_information(joint) - problem.mutual_information) <= 1e-9
    np.testing.assert_allclose(np.sort(gaussian.canonical_correlations(joint)),
                               np.sort(problem.correlations), rtol=0, atol=1e-9)


def test_strategies_without_hypothesis_say_what_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import rpmref\n"
            "try:\n    import rpmref.strategies\n"
            "except ImportError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "rpmref.strategies needs hypothesis: pip install hypothesis" in out.stdout


@given(pmfs((2, 3)))
def test_pmfs_of_a_given_shape(p):
    assert p.shape == (2, 3) and abs(p.sum() - 1.0) <= 1e-12


@pytest.mark.parametrize("make, error, message", [
    (lambda: pmfs((0, 3)), ValueError, "shape[0] must be >= 1"),
    (lambda: pmfs("ab"), TypeError, "shape must be a tuple of ints"),
    (lambda: joint_tables(min_states=0), ValueError, "min_states must be >= 1"),
    (lambda: joint_tables(min_states=3, max_states=2), ValueError, "max_states must be >= min_states"),
    (lambda: encoders(0, 3), ValueError, "n must be >= 1"),
    (lambda: encoders(3, 0), ValueError, "k must be >= 1"),
    (lambda: encoders(2.5, 3), TypeError, "n must be an integer"),
    (lambda: encoders(3, 3, kind="bad"), ValueError, "kind must be one of"),
    (lambda: rpm_problems(max_data=0), ValueError, "max_data must be >= 1"),
    (lambda: rpm_problems(kind="bad"), ValueError, "kind must be one of"),
    (lambda: critic_tables((2, 2), bound=-1.0), ValueError, "bound must be in [0, inf)"),
    (lambda: critic_tables((2, 2), bound=float("inf")), ValueError, "bound must be a finite"),
    (lambda: joint_and_critic(float("nan")), ValueError, "bound must be a finite"),
    (lambda: joint_and_critic(1.0, max_latent=0), ValueError, "max_latent must be >= 1"),
    (lambda: score_matrices(min_size=0), ValueError, "min_size must be >= 1"),
    (lambda: score_matrices(max_magnitude=-1.0), ValueError, "max_magnitude must be in"),
    (lambda: score_matrices(max_magnitude=float("inf")), ValueError, "max_magnitude must be a finite"),
    (lambda: score_matrices(masked="yes"), TypeError, "masked must be True or False"),
    (lambda: embedding_batches(min_size=0), ValueError, "min_size must be >= 1"),
    (lambda: embedding_batches(min_size=5, max_size=2), ValueError, "max_size must be >= min_size"),
    (lambda: embedding_batches(max_dim=0), ValueError, "max_dim must be >= 1"),
    (lambda: embedding_batches(max_norm=float("inf")), ValueError, "max_norm must be a finite"),
    (lambda: embedding_batches(min_norm=1e-320, max_norm=1e-310), ValueError, "min_norm must be in"),
    (lambda: gaussian_problems(max_dim=0), ValueError, "max_dim must be >= 1"),
    (lambda: gaussian_problems(max_correlation=1.0), ValueError, "max_correlation must be in"),
    (lambda: gaussian_problems(max_correlation=-0.5), ValueError, "max_correlation must be in"),
])
def test_strategy_arguments_are_refused_at_construction(make, error, message):
    """Out-of-range arguments raise naming the argument when the strategy is built, not a
    hypothesis InvalidArgument, IndexError or RuntimeWarning at the first draw."""
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


@given(gaussian_problems(max_dim=4, max_correlation=MAX_CORRELATION))
def test_gaussian_problems_at_the_largest_correlation_keep_their_claim(problem):
    """At MAX_CORRELATION the covariance's condition number is ~1/(1 − ρ²) ≈ 5e5, so its
    rounding (~1e-16 relative) moves the mutual information by ~1e-10 nats at most."""
    joint = gaussian.GaussianPair(problem.mean, problem.cov, problem.k)
    assert abs(gaussian.mutual_information(joint) - problem.mutual_information) <= 1e-9
