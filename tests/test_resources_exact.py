"""Resources of the exact core: bounded memory, no recursion limits, clear refusals by size.

Speed is measured in benchmarks/, never asserted here; memory is asserted through
tracemalloc's peak (a deterministic count of bytes allocated by NumPy), which
shows an O(N²) array if one is ever built.
"""
import itertools
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, strategies as st

import rpmref
from rpmref.exact import discrete, infonce
from tests import reference as ref
from tests.strategies import joint_and_critic

P_ZZ = np.array([[0.30, 0.05], [0.10, 0.25], [0.05, 0.25]])
F = np.array([[1.0, -0.5], [0.2, 0.7], [-1.0, 1.5]])


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- Monte Carlo
def test_monte_carlo_at_n_1e5_uses_memory_independent_of_n_squared():
    """Bug: method='mc' built an (n_batches, N, N) array (N = 1e4: 14 min, 2.3 GB; N = 1e5:
    MemoryError for 74.5 GiB). A batch now enters through its (k, k') pair counts only."""
    rpmref.infonce_bound(P_ZZ, F, 10, method="mc", n_batches=100, seed=0)   # warm-up
    result = {}
    peaks = {n: peak_bytes(lambda: result.__setitem__(n, rpmref.infonce_bound(
        P_ZZ, F, n, method="mc", n_batches=100, seed=0))) for n in (10 ** 3, 10 ** 5)}
    assert peaks[10 ** 5] < 2 ** 20   # 1 MiB; one (100, N) int array alone would be 80 MB
    assert abs(peaks[10 ** 5] - peaks[10 ** 3]) < 2 ** 14   # the same few kB whatever N is
    mc = result[10 ** 5]
    assert mc.method == "mc" and mc.n_batches == 100 and math.isfinite(mc.estimate)
    limit = rpmref.infonce_limit(P_ZZ, F)
    # I_N − I_∞ = O(1/N); at N = 1e5 the gap is ~1e-5, far inside 5 standard errors.
    assert abs(mc.estimate - limit) <= 5 * mc.stderr + 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monte_carlo_batches_equal_the_old_n_squared_formula_on_the_same_batches(seed):
    """The count-based batch value equals the O(N²) formula of the old sampler
    (ref.infonce_batch_value, plain Python floats) on the very same batches: the shared
    sampler infonce.sample_batch_counts draws them from the Generator, and infonce_bound
    consumes the Generator the same way. Tolerance: both sum N = 12 terms of size ≤ |f| + log N
    ≈ 4, so rounding is ≲ 12 · 4 · eps ≈ 1e-14; 1e-12 leaves room."""
    n, n_batches = 12, 50
    counts = infonce.sample_batch_counts(P_ZZ, n, n_batches, np.random.default_rng(seed))
    assert counts.shape == (n_batches,) + P_ZZ.shape and np.all(counts.sum(axis=(1, 2)) == n)
    pairs = [[(z, zp) for z in range(3) for zp in range(2) for _ in range(c[z, zp])] for c in counts]
    old = np.array([ref.infonce_batch_value(batch, F.tolist()) for batch in pairs])
    np.testing.assert_allclose(infonce.batch_values(counts, F, n), old, rtol=0, atol=1e-12)
    mc = rpmref.infonce_bound(P_ZZ, F, n, method="mc", n_batches=n_batches, seed=seed)
    assert abs(mc.estimate - old.mean()) <= 1e-12
    assert abs(mc.stderr - old.std(ddof=1) / math.sqrt(n_batches)) <= 1e-12


def test_old_formula_is_invariant_to_the_order_of_pairs_in_a_batch():
    """Why comparing on count tables is fair: Eq. 6 for one batch is symmetric in its pairs."""
    batch = [(0, 0), (1, 1), (2, 1), (0, 1), (1, 0)]
    values = {round(ref.infonce_batch_value(list(p), F.tolist()), 13)
              for p in itertools.permutations(batch)}
    assert len(values) == 1


@pytest.mark.parametrize("n", [2, 7, 50])
def test_monte_carlo_agrees_with_exact_within_four_standard_errors(n):
    """Statistical test, derandomised (seed 0): |MC − exact| ≤ 4 s.e. A correct sampler fails
    this for a random seed with probability 6e-5; a biased one (e.g. a batch of N − 1 pairs
    or negatives excluding the positive) misses by many s.e. at 20000 batches."""
    exact = rpmref.infonce_bound(P_ZZ, F, n, method="exact").estimate
    mc = rpmref.infonce_bound(P_ZZ, F, n, method="mc", n_batches=20000, seed=0)
    assert abs(mc.estimate - exact) <= 4 * mc.stderr
    assert mc.stderr < 0.01


def test_monte_carlo_is_refused_beyond_its_work_budget():
    with pytest.raises(ValueError, match=r"method='mc'\) with n_batches=2000000 and k·k'=6 needs "
                                         r"1.2e\+07 terms, more than max_terms=1e\+07"):
        rpmref.infonce_bound(P_ZZ, F, 10, method="mc", n_batches=2_000_000)


# --------------------------------------------------------------------------- exact enumeration
def test_exact_method_with_1000_reachable_states_does_not_recurse():
    """Bug: _compositions recursed once per state (RecursionError at 1000 reachable z').
    N = 2 has one negative, so I_2 = log 2 + Σ P(z,z') Σ_j P(j) [f(z,z') − log(e^{f(z,z')} +
    e^{f(z,j)})] — an independent direct formula."""
    rng = np.random.default_rng(0)
    p_zz = rng.random((1, 1000))
    p_zz /= p_zz.sum()
    f = rng.normal(size=(1, 1000))
    value = rpmref.infonce_bound(p_zz, f, 2, method="exact").estimate
    p = p_zz[0]
    direct = math.log(2) + float(np.sum(p[:, None] * p[None, :] * (
        f[0][:, None] - np.logaddexp(f[0][:, None], f[0][None, :]))))
    assert abs(value - direct) <= 1e-12


def test_compositions_are_all_count_vectors_once():
    for total, parts in [(0, 1), (4, 1), (0, 3), (3, 3), (5, 4), (2, 6)]:
        got = infonce._compositions(total, parts)
        expected = {c for c in itertools.product(range(total + 1), repeat=parts) if sum(c) == total}
        assert got.shape == (len(expected), parts) and set(map(tuple, got)) == expected
        assert len(expected) == infonce._n_compositions(total, parts)
    assert infonce._compositions(1, 1000).shape == (1000, 1000)


def test_exact_size_of_huge_batches_is_estimated_without_big_integers():
    """n = 1e18 with 50 reachable states: refused at once (lgamma estimate, no 2000-digit comb)."""
    p_zz = np.full((1, 50), 1 / 50)
    with pytest.raises(ValueError, match=r"n=1000000000000000000 and 50 reachable z' states needs"):
        rpmref.infonce_bound(p_zz, np.zeros((1, 50)), 10 ** 18, method="exact")


# --------------------------------------------------------------------------- tensors
def test_rpm_posterior_refuses_a_posterior_beyond_the_element_budget():
    """Bug: at n = n' = k = k' = 200 (1.6e9 elements) NumPy raised MemoryError from inside.
    Now the size is estimated first and refused, naming the arguments and the size."""
    n = 200
    p_xx = np.full((n, n), 1 / n ** 2)
    enc = np.full((n, n), 1 / n)
    prior = np.full((n, n), 1 / n ** 2)
    with pytest.raises(ValueError, match=r"rpm_posterior: p_xx \(200, 200\), enc \(n, k=200\) and "
                                         r"enc_prime \(n', k'=200\) make an \(n, n', k, k'\) "
                                         r"posterior of 1.6e\+09 elements, more than "
                                         r"MAX_TENSOR_ELEMENTS = 33554432"):
        rpmref.rpm_posterior(p_xx, enc, enc, prior)


def test_elbo_refuses_a_posterior_beyond_the_element_budget_before_touching_it():
    """A broadcast view costs no memory, but evaluating Eq. 12 on it would: refused by size,
    before validation reads (or converts) 1.6e9 entries."""
    n = 200
    p_xx = np.full((n, n), 1 / n ** 2)
    enc = np.full((n, n), 1 / n)
    q = np.broadcast_to(np.float32(1 / n ** 2), (n, n, n, n))
    with pytest.raises(ValueError, match=r"posterior has 1.6e\+09 elements \(shape \(200, 200, 200, "
                                         r"200\)\), more than the budget of 33554432"):
        rpmref.elbo(p_xx, enc, enc, np.full((n, n), 1 / n ** 2), posterior=q)


def test_the_budget_is_read_at_call_time(monkeypatch):
    monkeypatch.setattr(discrete, "MAX_TENSOR_ELEMENTS", 15)
    q = np.full((2, 2, 2, 2), 0.25)
    with pytest.raises(ValueError, match="posterior has 16 elements"):
        rpmref.elbo(np.full((2, 2), 0.25), np.eye(2), np.eye(2), np.full((2, 2), 0.25), posterior=q)
    with pytest.raises(ValueError, match="posterior of 16 elements"):
        rpmref.rpm_posterior(np.full((2, 2), 0.25), np.eye(2), np.eye(2), np.full((2, 2), 0.25))


def test_data_sized_quantities_never_build_an_n_n_k_k_tensor():
    """rpm_log_likelihood and elbo at n = k = 60 (an (n, n', k, k') tensor: 13e6 floats =
    104 MB) stay within a few (n, k) arrays: peak below 4 MB."""
    n = 60
    rng = np.random.default_rng(1)
    p_xx = rng.random((n, n))
    p_xx /= p_xx.sum()
    enc = rng.random((n, n))
    enc /= enc.sum(axis=1, keepdims=True)
    prior = rng.random((n, n))
    prior /= prior.sum()
    for func in (rpmref.rpm_log_likelihood, rpmref.elbo, rpmref.expected_elbo):
        assert peak_bytes(lambda: func(p_xx, enc, enc, prior)) < 4 * 2 ** 20


# --------------------------------------------------------------------------- more Monte Carlo
def pairs_of(counts):
    """The (z, z') pairs of one batch from its (k, k') count table."""
    return [(z, zp) for (z, zp), c in np.ndenumerate(counts) for _ in range(int(c))]


@given(joint_and_critic(bound=30.0, max_latent=4), st.integers(1, 25), st.integers(0, 2 ** 32 - 1))
def test_batch_values_equal_the_old_formula_for_any_table_critic_and_batch_size(pair, n, seed):
    """As above, over random shapes, zero entries, |f| ≤ 30 and N ≤ 25. Tolerance: each of
    the N terms f − log Σ_j e^f is a few roundings of size ≤ 2|f|max + log N, so a batch
    value is off by ≲ 10 eps (2|f|max + log N); 1e-12 · (1 + |f|max + log N) is ~50× that."""
    p_zz, f = pair
    counts = infonce.sample_batch_counts(p_zz, n, 5, np.random.default_rng(seed))
    values = infonce.batch_values(counts, f, n)
    tol = 1e-12 * (1 + np.abs(f).max() + math.log(n))
    for b in range(counts.shape[0]):
        assert abs(values[b] - ref.infonce_batch_value(pairs_of(counts[b]), f.tolist())) <= tol


# Fixed seeds as above (4 s.e.: false-alarm probability 6e-5 per case for a fresh seed).
MC_CASES = [
    (np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([[1.0, -1.0], [-1.0, 1.0]]), 64),
    (np.array([[0.2, 0.1, 0.0], [0.05, 0.3, 0.35]]), np.array([[3.0, 0.0, 1.0], [-2.0, 2.0, 0.5]]), 9),
    (np.array([[0.25, 0.25], [0.0, 0.5]]), np.array([[40.0, -40.0], [0.0, 30.0]]), 500),
]


@pytest.mark.parametrize("case", range(len(MC_CASES)))
def test_monte_carlo_agrees_with_exact_on_zero_cells_large_critics_and_large_n(case):
    p_zz, f, n = MC_CASES[case]
    exact = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    mc = rpmref.infonce_bound(p_zz, f, n, method="mc", n_batches=3000, seed=case)
    assert mc.stderr > 0
    assert abs(mc.estimate - exact) <= 4 * mc.stderr, (mc, exact)


def test_monte_carlo_at_n_1e5_agrees_with_the_exact_enumeration():
    """With two reachable z' states the exact enumeration at N = 10⁵ is only 10⁵ count
    vectors, so the N = 10⁵ Monte Carlo estimate is checked against I_N itself (4 s.e.)."""
    p_zz = np.array([[0.35, 0.15], [0.1, 0.4]])
    f = np.array([[1.0, -0.5], [0.25, 2.0]])
    n = 10 ** 5
    mc = rpmref.infonce_bound(p_zz, f, n, method="mc", n_batches=100, seed=0)
    exact = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    assert abs(mc.estimate - exact) <= 4 * mc.stderr, (mc, exact)
