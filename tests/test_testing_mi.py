"""``rpmref.testing.check_mi_estimator``: sampling, the summaries, and the InfoNCE claims."""
import math

import numpy as np
import pytest

from rpmref.testing import check_mi_estimator
from rpmref.testing.estimators import DISCRETE_JOINTS, discrete_problem
from tests import reference as ref

FAST = dict(levels=(2.0, 8.0), batches=10, reference_batches=200)


def lse(a):
    m = a.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.exp(a - m).sum(axis=1))


def infonce_estimate(z, z_prime, critic):
    """log N − loss of the critic's scores, written independently of rpmref."""
    s = critic(z, z_prime)
    return math.log(len(z)) + float(np.mean(np.diagonal(s) - lse(s)))


class Recorder:
    """Wraps an estimator and keeps every batch it saw and every value it returned."""

    def __init__(self, fn):
        self.fn, self.batches, self.values = fn, [], []

    def __call__(self, *args):
        self.batches.append(args[:2])
        self.values.append(self.fn(*args))
        return self.values[-1]


def test_a_right_infonce_estimator_passes_and_the_summaries_are_right():
    recorder = Recorder(infonce_estimate)
    report = check_mi_estimator(recorder, critic=True, infonce=True, **FAST)
    assert report.passed is True and len(report.claims) == 3
    names = [r.problem for r in report.results]
    assert names == list(DISCRETE_JOINTS) + ["gaussian 2 nats", "gaussian 8 nats"]
    values = np.array(recorder.values).reshape(len(names), FAST["batches"])
    truth = [ref.mutual_information(p.tolist()) for p in DISCRETE_JOINTS.values()] + [2.0, 8.0]
    for row, result, mi in zip(values, report.results, truth):
        assert result.mean == pytest.approx(row.mean(), abs=1e-15)
        assert result.stderr == pytest.approx(row.std(ddof=1) / math.sqrt(row.size), abs=1e-15)
        assert result.mutual_information == pytest.approx(mi, abs=1e-12)
        assert result.bias == pytest.approx(row.mean() - mi, abs=1e-12)
        assert result.above_ceiling == 0 and result.log_n == math.log(64)
    assert "PASSED" in str(report)


def test_discrete_batches_are_one_hot_draws_from_the_joint():
    """All pairs handed over, pooled: their frequencies match P(z, z') within 5 s.d."""
    p_zz = DISCRETE_JOINTS["3x3, strong"]
    problem = discrete_problem("3x3", p_zz, 64)
    z, z_prime = problem.sample(20_000, np.random.default_rng(1))
    assert set(np.unique(z)) == {0.0, 1.0} and np.all(z.sum(axis=1) == 1)
    counts = z.T @ z_prime
    sd = np.sqrt(p_zz * (1 - p_zz) / 20_000)
    assert np.all(np.abs(counts / 20_000 - p_zz) <= 5 * sd)
    # the critic is the optimal one, log p(z'|z) − log p(z'), looked up from one-hot rows
    f = np.log(p_zz / np.outer(p_zz.sum(1), p_zz.sum(0)))
    np.testing.assert_allclose(problem.critic(z[:5], z_prime[:7]),
                               f[z[:5].argmax(1)][:, z_prime[:7].argmax(1)], rtol=0, atol=1e-15)
    assert problem.infonce_limit == pytest.approx(problem.mutual_information, abs=1e-12)  # E6


def test_exceeding_log_n_is_reported():
    report = check_mi_estimator(lambda z, zp: math.log(len(z)) + 0.01, infonce=True, **FAST)
    assert report.passed is False
    assert all(r.above_ceiling == FAST["batches"] for r in report.results)
    assert "exceed log N" in str(report)


def test_an_estimator_that_returns_the_loss_is_biased_for_i_n():
    def loss_not_estimate(z, z_prime, critic):
        return math.log(len(z)) - infonce_estimate(z, z_prime, critic)
    report = check_mi_estimator(loss_not_estimate, critic=True, infonce=True,
                                problems="discrete", batches=10)
    assert report.passed is False
    assert all("biased for the N-sample InfoNCE objective" in " ".join(r.failures)
               for r in report.results)


def test_more_than_the_true_mi_is_reported_for_infonce():
    report = check_mi_estimator(lambda z, zp: 1.2, infonce=True, problems="discrete",
                                batches=5)
    failing = {r.problem for r in report.results if r.failures}
    assert failing == set(DISCRETE_JOINTS)                 # all three have I < 1.2 < log 64
    assert all(r.bias == pytest.approx(1.2 - r.mutual_information, abs=1e-15)
               for r in report.results)


def test_without_claims_nothing_is_checked():
    def plug_in(z, z_prime):
        """Plug-in MI of the empirical joint of one-hot pairs."""
        p = z.T @ z_prime / len(z)
        return ref.mutual_information(p.tolist())
    report = check_mi_estimator(plug_in, problems="discrete", batches=5)
    assert report.passed is None and report.claims == ()
    assert "no claims checked" in str(report)
    assert all(r.infonce_n is not None and r.bias_infonce_n is None for r in report.results)


def test_torch_inputs_when_asked():
    torch = pytest.importorskip("torch")

    def estimate(z, z_prime):
        assert torch.is_tensor(z) and z.dtype == torch.float64
        return torch.tensor(0.0)
    report = check_mi_estimator(estimate, framework="torch", problems="discrete", batches=2)
    assert [r.mean for r in report.results] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(batch_size=1), ValueError, "batch_size must be >= 2"),
    (dict(batches=1), ValueError, "batches must be >= 2"),
    (dict(problems="images"), ValueError, "problems must be"),
    (dict(framework="auto"), ValueError, "framework must be"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_mi_estimator(lambda z, zp: 0.0, **kwargs)


def test_problems_need_full_support():
    with pytest.raises(ValueError, match="full support"):
        discrete_problem("x", np.array([[0.5, 0.0], [0.0, 0.5]]), 8)
