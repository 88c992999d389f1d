"""Property tests of every identity in docs/theory.md, 'Identities' (E1–E9, N1, A1).

Each test states its identity and compares rpmref against an independent
computation: the brute-force loops of ``tests/reference.py`` (the paper's
equations written literally) or a different formula. Tolerances (tests/tolerances.py):
IDENTITY (1e-9 absolute, nats) for the discrete core's values, relative ones for
non-negative tables (POSITIVE_RTOL) and for values built from critics (per_nat).
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import rpmref
from tests import reference as ref
from tests.strategies import conditionals, joint_and_critic, pmfs, rpm_problems
from tests.tolerances import IDENTITY, MC_SIGMAS, POSITIVE_RTOL, per_nat

ATOL = IDENTITY
LOG_P = 32  # |log p| ≤ 32 for a nonzero entry of a strategies pmf (≥ 1e-12/64)


def assert_close_or_same_inf(actual, expected, atol=ATOL):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert np.all(np.isfinite(actual[finite]))
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=0, atol=atol)


def recognition_posterior(enc, enc_prime):
    """Q(z, z' | x, x') = P(z|x) P(z'|x') (Eq. 14), shape (n, n', k, k')."""
    return enc[:, None, :, None] * enc_prime[None, :, None, :]


@given(rpm_problems())
def test_E1_elbo_eq12_with_recognition_posterior_equals_eq15(problem):
    """E1: with Q = P(z|x)P(z'|x') (Eq. 14), the ELBO of Eq. 12 equals Eq. 15 for every (x, x')."""
    p_xx, enc, enc_prime, prior = problem
    eq15 = rpmref.elbo(p_xx, enc, enc_prime, prior)
    q = recognition_posterior(enc, enc_prime)
    eq12_loops = ref.elbo_general(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                  prior.tolist(), q.tolist())
    assert_close_or_same_inf(eq15, eq12_loops)
    assert_close_or_same_inf(rpmref.elbo(p_xx, enc, enc_prime, prior, posterior=q), eq15)


@given(rpm_problems())
def test_E2_data_average_of_eq15_is_eq16(problem):
    """E2: Σ P(x,x') ELBO(x,x') = Σ P(z,z') log[P_θ/(P(z)P(z'))] − H(X) − H(X') (Eq. 16)."""
    p_xx, enc, enc_prime, prior = problem
    elbos = rpmref.elbo(p_xx, enc, enc_prime, prior)
    support = p_xx > 0
    averaged = float(np.sum(p_xx[support] * elbos[support]))
    p_zz = ref.recognition_joint(p_xx.tolist(), enc.tolist(), enc_prime.tolist())
    p_x, p_xp, p_z, p_zp = ref.marginals(p_xx.tolist(), enc.tolist(), enc_prime.tolist())
    eq16 = sum(ref.xlogy(p_zz[z][zp], prior[z][zp] / (p_z[z] * p_zp[zp]))
               for z in range(len(p_z)) for zp in range(len(p_zp)) if p_zz[z][zp] > 0)
    eq16 += -ref.entropy(p_x) - ref.entropy(p_xp)
    expected = rpmref.expected_elbo(p_xx, enc, enc_prime, prior)
    if math.isinf(eq16):
        assert averaged == expected == eq16 == -math.inf
    else:
        assert abs(averaged - eq16) <= ATOL and abs(expected - eq16) <= ATOL


@given(rpm_problems())
def test_E3_elbo_is_mi_minus_kl_plus_constant(problem):
    """E3: L = I(Z;Z') − KL(P(z,z') ‖ P_θ(z,z')) + C, C = −H(X) − H(X') (Eq. 17–18)."""
    p_xx, enc, enc_prime, prior = problem
    d = rpmref.elbo_decomposition(p_xx, enc, enc_prime, prior)
    p_zz = ref.recognition_joint(p_xx.tolist(), enc.tolist(), enc_prime.tolist())
    p_x, p_xp, _, _ = ref.marginals(p_xx.tolist(), enc.tolist(), enc_prime.tolist())
    mi = ref.mutual_information(p_zz)
    kl = ref.kl([v for r in p_zz for v in r], prior.ravel().tolist())
    constant = -ref.entropy(p_x) - ref.entropy(p_xp)
    assert abs(d.mutual_information - mi) <= ATOL
    assert abs(d.constant - constant) <= ATOL
    if math.isinf(kl):
        assert d.kl == math.inf and d.elbo == -math.inf
    else:
        assert abs(d.kl - kl) <= ATOL
        assert abs(d.elbo - (mi - kl + constant)) <= ATOL


@given(rpm_problems(), st.data())
def test_E4_optimal_prior_is_the_recognition_joint_and_beats_every_prior(problem, data):
    """E4: P_θ = P(z,z') maximises L; there KL = 0 and L = I(Z;Z') + C; random priors do no better."""
    p_xx, enc, enc_prime, prior = problem
    best = rpmref.optimal_prior(p_xx, enc, enc_prime)
    p_zz = np.array(ref.recognition_joint(p_xx.tolist(), enc.tolist(), enc_prime.tolist()))
    # sums of ≤ 64 non-negative terms: equal to a relative rounding bound, not to 1e-15
    # absolute (a 7×8 uniform p_xx with k = k' = 1 sums to 1 ± 1.1e-15)
    np.testing.assert_allclose(best, p_zz, rtol=POSITIVE_RTOL, atol=0)
    d = rpmref.elbo_decomposition(p_xx, enc, enc_prime, best)
    assert abs(d.kl) <= ATOL
    assert abs(d.elbo - (d.mutual_information + d.constant)) <= ATOL
    for candidate in (prior, data.draw(pmfs(prior.shape))):
        assert rpmref.expected_elbo(p_xx, enc, enc_prime, candidate) <= d.elbo + ATOL


@given(rpm_problems(), st.data())
def test_E5_energy_prior_turns_elbo_into_infonce_limit(problem, data):
    """E5: with the energy prior (Eq. 21–22), L = E[f] − E_{P(z)}[log Σ P(z') e^f] + C = I_∞(f) + C."""
    p_xx, enc, enc_prime, _ = problem
    p_zz = rpmref.recognition_joint(p_xx, enc, enc_prime)
    f = data.draw(st.builds(np.array, st.lists(st.lists(
        st.floats(-50, 50), min_size=p_zz.shape[1], max_size=p_zz.shape[1]),
        min_size=p_zz.shape[0], max_size=p_zz.shape[0])))
    prior = rpmref.energy_prior(p_zz, f)
    constant = rpmref.data_constant(p_xx)
    limit_loops = ref.infonce_limit(p_zz.tolist(), f.tolist())
    assert abs(rpmref.expected_elbo(p_xx, enc, enc_prime, prior) - (limit_loops + constant)) <= ATOL
    assert abs(rpmref.infonce_limit(p_zz, f) - limit_loops) <= per_nat(f)


@given(joint_and_critic(bound=50.0))
def test_E6_gap_between_mi_and_infonce_limit_is_kl_to_energy_prior(pair):
    """E6: I(Z;Z') − I_∞(f) = KL(P(z,z') ‖ P_θ^f) ≥ 0."""
    p_zz, f = pair
    prior = rpmref.energy_prior(p_zz, f)
    gap = rpmref.mutual_information(p_zz) - rpmref.infonce_limit(p_zz, f)
    kl_loops = ref.kl(p_zz.ravel().tolist(), prior.ravel().tolist())
    scale = 2 * np.max(np.abs(f)) + 3 * LOG_P   # log p/P_θ = log p − log P(z)P(z') − f + log Z
    assert abs(gap - kl_loops) <= per_nat(scale)
    assert gap >= -per_nat(scale)


@given(pmfs((4, 3)), st.lists(st.floats(-20, 20), min_size=4, max_size=4))
def test_E6_gap_is_zero_for_an_optimal_critic(p_zz, shift):
    """E6: the gap vanishes when e^f ∝ P(z'|z)/P(z') up to a factor c(z)."""
    p_zz = 0.5 * p_zz + 0.5 / p_zz.size  # full support so log P(z'|z) is finite
    f = np.log(p_zz / p_zz.sum(axis=1, keepdims=True)) - np.log(p_zz.sum(axis=0)) + np.array(shift)[:, None]
    assert abs(rpmref.mutual_information(p_zz) - rpmref.infonce_limit(p_zz, f)) <= per_nat(f)
    assert abs(rpmref.kl_divergence(p_zz, rpmref.energy_prior(p_zz, f))) <= per_nat(f)


@given(joint_and_critic(bound=5.0, max_latent=3), st.integers(1, 3))
def test_E7_exact_infonce_bound_matches_enumeration_of_all_batches(pair, n):
    """E7: the count-vector formula for I_N equals the literal sum over all (k·k')^N batches."""
    p_zz, f = pair
    assume(np.count_nonzero(p_zz) ** n <= 800)
    exact = rpmref.infonce_bound(p_zz, f, n, method="exact")
    assert exact.method == "exact" and exact.stderr == 0.0
    # ≤ 800 batches of values ≤ 2·5 + log 3 in size: 800 · 1.1e-16 · 12 ≈ 1e-12 ≪ IDENTITY
    assert abs(exact.estimate - ref.infonce_enumerated(p_zz.tolist(), f.tolist(), n)) <= ATOL


@given(joint_and_critic(bound=20.0, max_latent=5), st.integers(1, 12))
def test_E7_infonce_bound_below_mutual_information_and_log_n(pair, n):
    """E7: I_N(f) ≤ I(Z;Z') and I_N(f) ≤ log N, for every critic."""
    p_zz, f = pair
    value = rpmref.infonce_bound(p_zz, f, n, method="exact").estimate
    assert value <= rpmref.mutual_information(p_zz) + ATOL
    assert value <= math.log(n) + ATOL


def test_E7_infonce_bound_approaches_infonce_limit():
    """E7: I_N → I_∞. Exact for N ≤ 5 on a small case (|I_N − I_∞| shrinks with N); exact at
    N = 100 and 500 (k' = 2 keeps the enumeration small) with the O(1/N) gap shrinking at least
    3-fold; and Monte Carlo at N = 500 agreeing with the exact value within 4 s.e."""
    p_zz = np.array([[0.30, 0.05], [0.10, 0.25], [0.05, 0.25]])
    f = np.array([[1.0, -0.5], [0.2, 0.7], [-1.0, 1.5]])
    limit = rpmref.infonce_limit(p_zz, f)
    gaps = [abs(rpmref.infonce_bound(p_zz, f, n, method="exact").estimate - limit)
            for n in range(1, 6)]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:]))
    medium = rpmref.infonce_bound(p_zz, f, 100, method="exact").estimate
    large = rpmref.infonce_bound(p_zz, f, 500, method="exact").estimate
    # not rounding: the gap is O(1/N), so N = 100 → 500 should shrink it ~5-fold
    assert abs(large - limit) < min(1e-3, abs(medium - limit) / 3)
    mc = rpmref.infonce_bound(p_zz, f, 500, method="mc", n_batches=200, seed=7)
    assert mc.method == "mc" and mc.stderr > 0
    assert abs(mc.estimate - large) <= MC_SIGMAS * mc.stderr


@given(rpm_problems(), st.data())
def test_E8_elbo_is_below_log_likelihood_with_kl_to_posterior_as_gap(problem, data):
    """E8: ELBO_Q(x,x') ≤ log P_θ(x,x'), gap = KL(Q(·|x,x') ‖ P_θ(z,z'|x,x'))."""
    p_xx, enc, enc_prime, prior = problem
    n, n_prime = p_xx.shape
    k, k_prime = prior.shape
    raw = data.draw(pmfs((n * n_prime, k * k_prime)))
    q = raw.reshape(n, n_prime, k * k_prime)
    sums = q.sum(axis=2, keepdims=True)
    q = np.where(sums > 0, q / np.where(sums > 0, sums, 1), 1.0 / (k * k_prime)).reshape(
        n, n_prime, k, k_prime)
    log_lik = rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior)
    lik_loops = np.array(ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                            prior.tolist()))
    post = rpmref.rpm_posterior(p_xx, enc, enc_prime, prior)
    bound = rpmref.elbo(p_xx, enc, enc_prime, prior, posterior=q)
    for x in range(n):
        for xp in range(n_prime):
            if lik_loops[x, xp] == 0:
                assert log_lik[x, xp] == -math.inf and bound[x, xp] == -math.inf
                continue
            joint = prior * (enc[x][:, None] * enc_prime[xp][None, :])
            p_z, p_zp = enc.T @ p_xx.sum(axis=1), enc_prime.T @ p_xx.sum(axis=0)
            reach = np.outer(p_z > 0, p_zp > 0)
            joint = np.where(reach, joint / np.where(reach, np.outer(p_z, p_zp), 1), 0)
            np.testing.assert_allclose(post[x, xp], joint / joint.sum(), rtol=POSITIVE_RTOL,
                                       atol=0)
            assert abs(log_lik[x, xp] - math.log(lik_loops[x, xp])) <= ATOL
            gap = ref.kl(q[x, xp].ravel().tolist(), post[x, xp].ravel().tolist())
            assert bound[x, xp] <= log_lik[x, xp] + ATOL
            if math.isinf(gap):
                assert bound[x, xp] == -math.inf
            else:
                assert abs((log_lik[x, xp] - bound[x, xp]) - gap) <= ATOL


@given(rpm_problems())
def test_E8_the_model_posterior_closes_the_gap(problem):
    """E8 at Q = P_θ(z,z'|x,x'): ELBO = log P_θ(x,x'). rpm_posterior's output goes back into
    elbo as it is, including the all-zero slices of pairs with P_θ(x,x') = 0 (bug: they were
    refused as 'posterior[1, 0] sums to 0.0'), whose ELBO is −inf like their log-likelihood."""
    p_xx, enc, enc_prime, prior = problem
    lik_loops = np.array(ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                            prior.tolist()))
    post = rpmref.rpm_posterior(p_xx, enc, enc_prime, prior)
    bound = rpmref.elbo(p_xx, enc, enc_prime, prior, posterior=post)
    for x, xp in np.ndindex(*p_xx.shape):
        if lik_loops[x, xp] == 0:
            assert bound[x, xp] == -math.inf
        else:
            assert abs(bound[x, xp] - math.log(lik_loops[x, xp])) <= ATOL


@given(rpm_problems())
def test_E8_posterior_slices_are_pmfs_exactly_where_the_model_has_the_pair(problem):
    """A slice of rpm_posterior is a pmf where P_θ(x, x') > 0 (brute-force loops of Eq. 10)
    and all zero where P_θ(x, x') = 0, including pairs with P(x) = 0 or P(x') = 0, whose
    z-sum alone is positive (bug: those slices summed to 1)."""
    p_xx, enc, enc_prime, prior = problem
    lik_loops = np.array(ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                            prior.tolist()))
    post = rpmref.rpm_posterior(p_xx, enc, enc_prime, prior)
    # each entry is e^{six logs (α, β, the z-sum, enc, enc', prior)}, each of size ≤ L
    # (the largest |log| of a nonzero table entry): relative error ≤ 6·L nats' worth
    logs = np.concatenate([np.log(t[t > 0]) for t in (p_xx, enc, enc_prime, prior)])
    tolerance = per_nat(6 * np.abs(logs).max())
    for x, xp in np.ndindex(*p_xx.shape):
        if lik_loops[x, xp] == 0:
            assert not post[x, xp].any()
        else:
            assert abs(post[x, xp].sum() - 1.0) <= tolerance


def test_E8_a_data_state_without_mass_has_no_posterior():
    p_xx = np.array([[0.5, 0.0], [0.0, 0.0], [0.0, 0.5]])         # P(x = 1) = 0
    enc = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    prior = np.full((2, 2), 0.25)
    assert np.all(rpmref.rpm_log_likelihood(p_xx, enc, np.eye(2), prior)[1] == -math.inf)
    post = rpmref.rpm_posterior(p_xx, enc, np.eye(2), prior)
    assert not post[1].any()
    assert np.allclose(post[[0, 2]].sum(axis=(2, 3)), 1.0, rtol=0, atol=4 * 2.0 ** -52)


@given(rpm_problems(kind="deterministic"))
def test_E9_deterministic_encoders_make_elbo_equal_log_likelihood(problem):
    """E9 (Appendix C): with one-hot encoder rows, ELBO(x,x') = log P_θ(x,x') exactly."""
    p_xx, enc, enc_prime, prior = problem
    lik_loops = np.array(ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                            prior.tolist()))
    with np.errstate(divide="ignore"):
        log_lik_loops = np.log(lik_loops)
    assert_close_or_same_inf(rpmref.elbo(p_xx, enc, enc_prime, prior), log_lik_loops)
    assert_close_or_same_inf(rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior),
                             log_lik_loops)


@given(rpm_problems())
def test_N1_rpm_likelihood_sums_to_the_reachable_prior_mass(problem):
    """N1: Σ_{x,x'} P_θ(x,x') = Σ_{z,z': P(z)P(z')>0} P_θ(z,z') (= 1 for priors on reachable states)."""
    p_xx, enc, enc_prime, prior = problem
    _, _, p_z, p_zp = ref.marginals(p_xx.tolist(), enc.tolist(), enc_prime.tolist())
    reachable_mass = sum(prior[z][zp] for z in range(len(p_z)) for zp in range(len(p_zp))
                         if p_z[z] > 0 and p_zp[zp] > 0)
    total = float(np.sum(np.exp(rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, prior))))
    # sums of non-negative terms: relative; exp(log P_θ) adds |log P_θ|·ε ≤ 100·ε relative
    # to an entry, ≤ 2.2e-14, inside POSITIVE_RTOL
    assert abs(total - reachable_mass) <= POSITIVE_RTOL * reachable_mass
    lik_loops = ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(), prior.tolist())
    assert abs(sum(map(sum, lik_loops)) - reachable_mass) <= POSITIVE_RTOL * reachable_mass
    optimal = rpmref.optimal_prior(p_xx, enc, enc_prime)
    total = np.sum(np.exp(rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, optimal)))
    assert abs(total - 1) <= POSITIVE_RTOL


@given(st.integers(1, 8), st.data())
def test_A1_empirical_rpm_pmf_matches_eq34_loops(n, data):
    """A1 (Eq. 34): P_θ(n, m) = (1/N²) Σ P_θ(z,z') P(z|x_n) P(z'|x'_m)/(P(z)P(z')), P(z) the batch mean."""
    k, k_prime = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    enc, enc_prime = data.draw(conditionals(n, k)), data.draw(conditionals(n, k_prime))
    prior = data.draw(pmfs((k, k_prime)))
    pmf = rpmref.empirical_rpm_pmf(enc, enc_prime, prior)
    p_xx = np.eye(n) / n  # the training pairs (x_n, x'_n), each with mass 1/N
    loops = np.array(ref.rpm_likelihood(p_xx.tolist(), enc.tolist(), enc_prime.tolist(),
                                        prior.tolist()))
    np.testing.assert_allclose(pmf, loops, rtol=POSITIVE_RTOL, atol=0)
    # N1 for the batch: the table sums to the prior mass on the pairs the rows reach
    reached = np.outer(enc.max(axis=0) > 0, enc_prime.max(axis=0) > 0)
    assert abs(pmf.sum() - prior[reached].sum()) <= ATOL


@given(st.integers(1, 8), st.data())
def test_A1_deterministic_encoders_and_energy_prior_give_in_batch_softmax(n, data):
    """A1: with z_n = g(x_n), z'_m = g'(x'_m) and the energy prior, P_θ(n,m) = (1/N) softmax_m f(z_n, z'_m)
    exactly, and (1/N) Σ_n log P_θ(n,n) = (batch InfoNCE objective) − 2 log N."""
    k, k_prime = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    enc = data.draw(conditionals(n, k, "deterministic"))
    enc_prime = data.draw(conditionals(n, k_prime, "deterministic"))
    f = data.draw(st.builds(np.array, st.lists(st.lists(
        st.floats(-50, 50), min_size=k_prime, max_size=k_prime), min_size=k, max_size=k)))
    p_zz = rpmref.recognition_joint(np.eye(n) / n, enc, enc_prime)
    pmf = rpmref.empirical_rpm_pmf(enc, enc_prime, rpmref.energy_prior(p_zz, f))
    z, z_prime = enc.argmax(axis=1), enc_prime.argmax(axis=1)
    scores = f[z][:, z_prime]                                  # f(z_n, z'_m), (N, N)
    softmax = [[math.exp(scores[i, j] - max(scores[i])) / sum(math.exp(s - max(scores[i]))
                                                               for s in scores[i])
                for j in range(n)] for i in range(n)]
    # entries down to e^-100/8: relative. e^x with |x| ≤ 2 max|f| is off by |x|·ε relative,
    # so the pmf carries per_nat(2 max|f|) relatively and its logs that much absolutely
    scale = 2 * np.max(np.abs(f)) + 2 * math.log(n)
    np.testing.assert_allclose(pmf, np.array(softmax) / n, rtol=per_nat(scale), atol=0)
    batch_infonce = sum(math.log(softmax[i][i]) for i in range(n)) / n + math.log(n)
    per_pair = float(np.mean(np.log(np.diag(pmf))))
    assert abs(per_pair - (batch_infonce - 2 * math.log(n))) <= per_nat(scale)
