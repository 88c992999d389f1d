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


def test_batches_beyond_exact_enumeration_get_a_monte_carlo_reference():
    """N = 1491 is one past the largest N whose I_N(f*) the 3 × 3 problem enumerates within
    the term budget: its reference becomes a Monte Carlo value with a standard error, which
    agrees with the exact I_N(f*) at N = 1490 (the two differ by O(1/N²) ≈ 1e-6, far below
    the standard error); the other problems stay exact, and without a critic no reference
    is needed for the batch size to work."""
    n = 1491
    joint = DISCRETE_JOINTS["3x3, strong"]
    exact = discrete_problem("3x3", joint, n - 1, reference_batches=0)
    assert exact.infonce_n_stderr == 0.0
    sampled = discrete_problem("3x3", joint, n, reference_batches=400,
                               rng=np.random.default_rng(3))
    assert sampled.infonce_n_stderr > 0
    assert abs(sampled.infonce_n - exact.infonce_n) <= 5 * sampled.infonce_n_stderr
    assert discrete_problem("3x3", joint, n, reference_batches=0).infonce_n is None
    report = check_mi_estimator(lambda z, z_prime: 0.0, problems="discrete", batch_size=n,
                                batches=2)
    assert [r.infonce_n is None for r in report.results] == [False, True, False]
    report = check_mi_estimator(infonce_estimate, critic=True, infonce=True,
                                problems="discrete", batch_size=n, batches=3,
                                reference_batches=200)
    assert report.passed is True
    assert [r.infonce_n_stderr > 0 for r in report.results] == [False, True, False]


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
    # no caps before: each of these ran for minutes (or until memory ran out) before an error
    (dict(batch_size=8193), ValueError, "batch_size must be <= 8192"),
    (dict(batch_size=10 ** 9), ValueError, "batch_size must be <= 8192"),
    (dict(batches=10 ** 9), ValueError, "batches must be <= 10000"),
    (dict(reference_batches=10 ** 9), ValueError, "reference_batches must be <= 100000"),
    (dict(reference_batches=1), ValueError, "reference_batches must be >= 2"),
    (dict(problems="images"), ValueError, "problems must be"),
    (dict(framework="images"), ValueError, "framework must be"),
    (dict(critic="False"), TypeError, "critic must be True or False"),
    (dict(infonce=1), TypeError, "infonce must be True or False"),
    (dict(dim=None), TypeError, "dim must be an integer"),
    (dict(dim=2.5), TypeError, "dim must be an integer"),
    (dict(dim="20"), TypeError, "dim must be an integer"),
    (dict(dim=0), ValueError, "dim must be >= 1"),
    (dict(levels="2"), TypeError, "levels must be a sequence"),
    (dict(levels=2.0), TypeError, "levels must be a sequence"),
    (dict(levels=["a"]), TypeError, "levels must be"),
    (dict(levels=[1e6]), ValueError, "levels must be in"),
    (dict(levels=[-1.0]), ValueError, "levels must be in"),
    (dict(levels=[2.0, float("nan")]), ValueError, "levels must be finite"),
    (dict(levels=[], problems="gaussian"), ValueError, "levels is empty"),
    (dict(levels=(), problems="gaussian"), ValueError, "no problem would be run"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_mi_estimator(lambda z, zp: 0.0, **kwargs)


def test_problems_need_full_support():
    with pytest.raises(ValueError, match="full support"):
        discrete_problem("x", np.array([[0.5, 0.0], [0.0, 0.5]]), 8)


def test_an_empty_staircase_leaves_the_discrete_problems():
    report = check_mi_estimator(lambda z, zp: 0.0, levels=[], batches=2)
    assert [r.problem for r in report.results] == list(DISCRETE_JOINTS)


def test_half_precision_results_are_refused_not_allowed_for():
    """float16's ε would make the rounding allowance 8 ε (N + 1000) ≈ 8.3 nats."""
    def above(z, z_prime, critic):
        return np.float16(math.log(len(z)) + 3)
    report = check_mi_estimator(above, critic=True, infonce=True, problems="discrete",
                                batches=10)
    assert report.passed is False
    assert all(r.above_ceiling == 10 for r in report.results)
    assert all("half-precision" in " ".join(r.failures) for r in report.results)
    assert "float16" in str(report)
    # without claims the table is still made
    report = check_mi_estimator(lambda z, zp: np.float16(0.5), problems="discrete", batches=2)
    assert report.passed is None and [r.mean for r in report.results] == [0.5] * 3


def test_bfloat16_results_are_refused_not_a_crash():
    torch = pytest.importorskip("torch")
    report = check_mi_estimator(lambda z, zp: torch.tensor(0.5, dtype=torch.bfloat16),
                                framework="torch", infonce=True, problems="discrete",
                                batches=2)
    assert report.passed is False
    assert all("half-precision: fn returned bfloat16" in r.failures[0] for r in report.results)


def test_float32_results_get_float32_rounding_only():
    """8 ε32 (64 + 1000) ≈ 1.0e-3: log N + 1e-4 passes in float32, + 1e-2 does not."""
    for excess, above in ((1e-4, 0), (1e-2, 2)):
        value = np.float32(math.log(64) + excess)
        report = check_mi_estimator(lambda z, zp: value, infonce=True, problems="discrete",
                                    batches=2)
        assert all(r.above_ceiling == above for r in report.results)


@pytest.mark.parametrize("bad", [float("nan"), -math.inf, math.inf])
def test_non_finite_estimates_fail_and_name_the_batch(bad):
    calls = []

    def sometimes(z, z_prime):
        calls.append(1)
        return bad if len(calls) == 3 else 0.0
    for infonce in (False, True):
        calls.clear()
        report = check_mi_estimator(sometimes, infonce=infonce, problems="discrete", batches=5)
        assert report.passed is False
        first = report.results[0]
        assert f"fn returned {bad!r} on batch 3" in first.failures[0]
        assert not report.results[1].failures
    report = check_mi_estimator(lambda z, zp: bad, problems="discrete", batches=2)
    assert report.passed is False and "on batch 1 (of 2; 2 not finite)" in str(report)


def test_the_multiple_of_the_standard_error_is_student_t():
    """Closed forms of Student's t with 1 and 2 degrees of freedom; 4 for many."""
    from rpmref.testing.estimators import student_quantile
    tail = 0.5 * math.erfc(4 / math.sqrt(2))
    assert student_quantile(1) == pytest.approx(math.tan(math.pi * (0.5 - tail)), rel=1e-9)
    # ν = 2: P(T > k) = 1/2 − k / (2 √(2 + k²))  =>  k = √(2 a² / (1 − a²)), a = 1 − 2 tail
    a = 1 - 2 * tail
    assert student_quantile(2) == pytest.approx(math.sqrt(2 * a * a / (1 - a * a)), rel=1e-9)
    assert 4 < student_quantile(1e9) < 4.002
    report = check_mi_estimator(lambda z, zp: 0.0, infonce=True, problems="discrete",
                                batches=5)
    assert "mean <= I + 17.45 s.e." in report.claims[1]


def test_a_right_estimator_passes_with_few_batches():
    """With a fixed 4 s.e. and an s.e. from 2 batches, about half of these runs failed."""
    for seed in range(12):
        report = check_mi_estimator(infonce_estimate, critic=True, infonce=True,
                                    problems="discrete", batches=2, seed=seed)
        assert report.passed is True, str(report)


def test_what_fn_raises_names_the_problem_batch_and_n():
    def needs_128(z, z_prime):
        assert len(z) == 128
        return 0.0
    with pytest.raises(AssertionError) as raised:
        check_mi_estimator(needs_128, problems="discrete", batches=2)
    assert "raised by fn (needs_128) on problem 'binary, weak', batch 1 of 2, N = 64" in \
        raised.value.__notes__[0]
    calls = []

    def divides(z, z_prime):
        calls.append(1)
        return 1 / (len(calls) - 4)
    with pytest.raises(ZeroDivisionError) as raised:
        check_mi_estimator(divides, problems="discrete", batches=3)
    assert "on problem '3x3, strong', batch 1 of 3" in raised.value.__notes__[0]


@pytest.mark.parametrize("returned,error,match", [
    (True, TypeError, "returned a bool"),
    (np.bool_(False), TypeError, "returned a bool"),
    ("1.0", TypeError, "returned a str"),
    (np.zeros(3), ValueError, "shape"),
])
def test_hostile_returns_are_refused_with_the_problem(returned, error, match):
    with pytest.raises(error, match=match) as raised:
        check_mi_estimator(lambda z, zp: returned, problems="gaussian", levels=[4.0],
                           batches=2)
    assert "returned by fn (<lambda>) on problem 'gaussian 4 nats', batch 1 of 2, N = 64" in \
        raised.value.__notes__[0]


def test_a_torch_bool_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="returned a Tensor"):
        check_mi_estimator(lambda z, zp: torch.tensor(True), framework="torch",
                           problems="discrete", batches=2)


def test_framework_auto_detects_torch():
    torch = pytest.importorskip("torch")
    seen = []

    def estimate(z: torch.Tensor, z_prime: torch.Tensor):
        seen.append(type(z))
        return torch.tensor(0.25)
    report = check_mi_estimator(estimate, framework="auto", problems="discrete", batches=2)
    assert set(seen) == {torch.Tensor} and [r.mean for r in report.results] == [0.25] * 3
    report = check_mi_estimator(lambda z, zp: float(z.sum()) * 0, framework="auto",
                                problems="discrete", batches=2)
    assert report.passed is None


def test_the_gaussian_critic_is_the_optimal_one_up_to_a_function_of_z():
    """critic(z, z') − [log p(z'|z) − log p(z')] is constant along each row (z fixed)."""
    from rpmref.testing.estimators import gaussian_problem
    dim, level = 3, 2.0
    problem = gaussian_problem(level, dim, 8, 0, np.random.default_rng(0))
    z, z_prime = problem.sample(6, np.random.default_rng(1))
    rho = math.sqrt(1 - math.exp(-2 * level / dim))
    conditional = -0.5 * (((z_prime[None, :, :] - rho * z[:, None, :]) ** 2).sum(-1)
                          / (1 - rho ** 2)) - 0.5 * dim * math.log(1 - rho ** 2)
    marginal = -0.5 * (z_prime ** 2).sum(-1)[None, :]
    difference = problem.critic(z, z_prime) - (conditional - marginal)
    np.testing.assert_allclose(difference - difference[:, :1], 0, atol=1e-12)
