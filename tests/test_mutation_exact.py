"""Properties of the exact discrete core that the identity and fuzz tests leave open.

Each test pins one property against an independent computation (mpmath or explicit
loops from ``tests/reference.py``, or a derivation written beside it): the entries a
fast path would handle identically are avoided on purpose, so that a sign, a dropped
term, a swapped axis or a boundary off by one in the code changes the answer.
"""
import math

import mpmath
import numpy as np
import pytest
from autograd import grad

import rpmref
from rpmref.exact.measures import kl_divergence_of, mutual_information_of

from tests import reference

EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- hidden mass
def _hidden_mass_problem():
    """A joint entry of 1e-400 (positive, below float64: it rounds to 0) where the prior is 0.

    P(z=0, z'=0) = P(x) · 1e-200 · 1e-200 = 1e-400 > 0 in exact arithmetic, so
    Σ P(z,z') log P_θ(z,z') = −inf and KL(P ‖ P_θ) = +inf however small that mass is."""
    p_xx = np.array([[1.0]])
    enc = np.array([[1e-200, 1.0]])            # sums to 1 + 1e-200 = 1.0 in float64
    prior = np.array([[0.0, 0.25], [0.25, 0.5]])
    return p_xx, enc, enc, prior


def test_prior_missing_joint_mass_below_the_float64_range_gives_minus_inf_elbo():
    p_xx, enc, enc_prime, prior = _hidden_mass_problem()
    assert rpmref.recognition_joint(p_xx, enc, enc_prime)[0, 0] == 0.0   # the mass is hidden
    expected = reference.mp_expected_elbo(p_xx, enc, enc_prime, prior)   # exact (mpmath)
    assert expected == -math.inf
    assert rpmref.expected_elbo(p_xx, enc, enc_prime, prior) == expected
    d = rpmref.elbo_decomposition(p_xx, enc, enc_prime, prior)
    assert d.elbo == -math.inf
    kl = reference.mp_kl_of_tables(reference.mp_joint(p_xx, enc, enc_prime),
                                   [[mpmath.mpf(v) for v in row] for row in prior])
    assert kl == math.inf and d.kl == math.inf


# --------------------------------------------------------------------------- gradients
def _random_pmf(rng, shape):
    p = rng.uniform(0.05, 1.0, size=shape)
    return p / p.sum()


@pytest.mark.parametrize("seed", range(3))
def test_mutual_information_gradient_is_the_derivative_of_its_entropy_form(seed):
    """∂I/∂p(a,b) for I = Σ p log p − Σ_a P(a) log P(a) − Σ_b P(b) log P(b) (the form that
    extends I off the simplex): log p(a,b) + 1 − (log P(a) + 1) − (log P(b) + 1)
    = log p − log P(a) − log P(b) − 1. Every component, not only its part along the
    simplex (a constant shift of the gradient is invisible there). O(1) values from a
    few logs: 1e-13 is > 100 ulps."""
    p = _random_pmf(np.random.default_rng(seed), (3, 4))
    g = grad(lambda t: rpmref.mutual_information(t))(p)
    p_a, p_b = p.sum(axis=1), p.sum(axis=0)
    want = np.log(p) - np.log(p_a)[:, None] - np.log(p_b)[None, :] - 1.0
    np.testing.assert_allclose(g, want, rtol=0, atol=1e-13)
    # and the same along a direction off the simplex, by central differences of the
    # unvalidated kernel (step 1e-6: truncation ~1e-12, rounding ~eps/1e-6 ≈ 2e-10)
    d = np.random.default_rng(seed + 10).normal(size=p.shape)
    h = 1e-6
    fd = (mutual_information_of(p + h * d) - mutual_information_of(p - h * d)) / (2 * h)
    assert abs(fd - np.sum(want * d)) < 1e-8


def test_mutual_information_gradient_off_the_support_counts_both_marginals():
    """At p(a,b) = 0 with P(a) > 0 and P(b) > 0 the entropy form's slope is
    (0 · log 0)' taken as 0, minus 1 for each of the two marginal entropies: −2."""
    p = np.array([[0.5, 0.0], [0.25, 0.25]])
    g = grad(lambda t: rpmref.mutual_information(t))(p)
    assert g[0, 1] == -2.0


@pytest.mark.parametrize("q_last", [0.1, 1e-310], ids=["normal q", "subnormal q"])
def test_kl_gradient_in_p_is_log_ratio_plus_one(q_last):
    """∂/∂p Σ p log(p/q) = log(p/q) + 1 and ∂/∂q = −p/q, in the normal-range kernel and in
    the general one (a subnormal q on p's support). Values O(1)–O(25): 1e-13 absolute."""
    p = np.array([0.4, 0.6 - 2e-300, 2e-300]) if q_last < 1e-300 else np.array([0.4, 0.5, 0.1])
    q = np.array([0.5, 0.5 - q_last, q_last]) if q_last < 1e-300 else np.array([0.5, 0.4, 0.1])
    g_p = grad(lambda t: rpmref.kl_divergence(t, q))(p)
    want_p = np.log(p) - np.log(q) + 1.0      # log p − log q: no overflow of p/q at 1e-310
    np.testing.assert_allclose(g_p, want_p, rtol=1e-15, atol=1e-13)
    g_q = grad(lambda t: rpmref.kl_divergence(p, t))(q)
    np.testing.assert_allclose(g_q, -p / q, rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- explicit posteriors
def test_elbo_with_an_empty_posterior_slice_is_minus_inf_only_where_the_model_has_no_mass():
    """With a diagonal prior and one-hot encoders P_θ(x, x') = 0 off the diagonal, so
    ELBO(x, x') ≤ log P_θ(x, x') = −inf there (the all-zero slices rpm_posterior leaves);
    an all-zero slice where P_θ(x, x') > 0 is not a posterior and is refused."""
    p_xx = np.array([[0.5, 0.0], [0.0, 0.5]])
    enc = np.eye(2)
    prior = np.array([[0.5, 0.0], [0.0, 0.5]])
    log_lik = np.array(reference.mp_rpm_log_likelihood(p_xx, enc, enc, prior))
    assert log_lik[0, 1] == -math.inf and log_lik[0, 0] == math.log(0.5 * 0.5 / 0.5)
    post = rpmref.rpm_posterior(p_xx, enc, enc, prior)
    assert not post[0, 1].any()
    value = rpmref.elbo(p_xx, enc, enc, prior, posterior=post)
    assert value[0, 1] == -math.inf and value[1, 0] == -math.inf
    # on the diagonal the posterior is the model's, so the ELBO is log P_θ(x, x') (E8):
    # log(0.5 · 1 · 1 · 0.5 / (0.5 · 0.5)) + log 0.5 + log 0.5 = log 0.5, a few ulps
    assert abs(value[0, 0] - math.log(0.5)) < 4 * EPS

    p_full = np.full((2, 2), 0.25)
    prior_full = np.full((2, 2), 0.25)
    post_full = rpmref.rpm_posterior(p_full, enc, enc, prior_full)
    post_full[0, 1] = 0.0                     # the model gives (0, 1) mass 1/16 > 0
    with pytest.raises(ValueError, match=r"posterior\[0, 1\] sums to 0\.0"):
        rpmref.elbo(p_full, enc, enc, prior_full, posterior=post_full)


def test_tensor_budget_is_256_mib_and_rpm_posterior_is_built_up_to_it(monkeypatch):
    """MAX_TENSOR_ELEMENTS is documented as 2^25 float64 = 256 MiB; a posterior of exactly the
    budget is built, one element more is refused (shown with a budget of 16 = 2·2·2·2)."""
    import rpmref.exact.discrete as discrete
    assert discrete.MAX_TENSOR_ELEMENTS * np.dtype(np.float64).itemsize == 256 * 2 ** 20
    p_xx = np.full((2, 2), 0.25)
    enc = np.array([[0.75, 0.25], [0.25, 0.75]])
    prior = np.full((2, 2), 0.25)
    monkeypatch.setattr(discrete, "MAX_TENSOR_ELEMENTS", 16)
    assert rpmref.rpm_posterior(p_xx, enc, enc, prior).shape == (2, 2, 2, 2)
    monkeypatch.setattr(discrete, "MAX_TENSOR_ELEMENTS", 15)
    with pytest.raises(ValueError, match="MAX_TENSOR_ELEMENTS = 15"):
        rpmref.rpm_posterior(p_xx, enc, enc, prior)


# --------------------------------------------------------------------------- I_N: work budget
P_ZZ = np.array([[0.375, 0.125], [0.125, 0.375]])
F = np.array([[1.5, -0.5], [0.25, 1.0]])


def test_infonce_bound_exact_enumeration_costs_compositions_times_cells():
    """N = 4 with 2 reachable z': the N − 1 = 3 negatives have 4 count vectors (3,0), (2,1),
    (1,2), (0,3) (stars and bars: C(3 + 1, 1) = 4), times k·k' = 4 cells = 16 elements.
    A budget of exactly 16 enumerates (also under "auto"); 15 refuses "exact" and sends
    "auto" to Monte Carlo. The value is the literal Eq. 6 summed over all 4^4 batches."""
    want = reference.mp_infonce_enumerated(P_ZZ, F, 4)
    for method in ("exact", "auto"):
        got = rpmref.infonce_bound(P_ZZ, F, 4, method=method, max_terms=16)
        assert got.method == "exact"
        assert abs(got.estimate - want) < 1e-13      # O(1) values, ~20 terms: ≲ 1e-15
    with pytest.raises(ValueError, match="needs 16 terms, more than max_terms=15"):
        rpmref.infonce_bound(P_ZZ, F, 4, method="exact", max_terms=15)
    auto = rpmref.infonce_bound(P_ZZ, F, 4, max_terms=15, n_batches=2, seed=0)
    assert auto.method == "mc"


def test_infonce_bound_counts_only_reachable_columns_in_its_budget():
    """A z' column with P(z') = 0 never holds a negative: with 2 of 3 columns reachable,
    N = 4 costs C(3 + 1, 1) = 4 count vectors × 6 cells = 24 elements (not C(5, 2) · 6 = 60)."""
    p_zz = np.array([[0.375, 0.0, 0.125], [0.125, 0.0, 0.375]])
    f = np.array([[1.5, 3.0, -0.5], [0.25, -2.0, 1.0]])
    got = rpmref.infonce_bound(p_zz, f, 4, method="exact", max_terms=24)
    assert abs(got.estimate - reference.mp_infonce_enumerated(p_zz, f, 4)) < 1e-13
    with pytest.raises(ValueError, match="needs 24 terms"):
        rpmref.infonce_bound(p_zz, f, 4, method="exact", max_terms=23)


def test_infonce_bound_monte_carlo_budget_is_batches_times_cells():
    """n_batches · k · k' = 4 · 4 = 16 elements: accepted at max_terms = 16, refused at 15."""
    assert rpmref.infonce_bound(P_ZZ, F, 50, method="mc", n_batches=4, seed=1,
                                max_terms=16).n_batches == 4
    with pytest.raises(ValueError, match="needs 16 terms, more than max_terms=15"):
        rpmref.infonce_bound(P_ZZ, F, 50, method="mc", n_batches=4, seed=1, max_terms=15)


# --------------------------------------------------------------------------- I_N: values
def test_infonce_bound_exact_draws_from_the_normalised_joint():
    """A joint that sums to 1 − 9e-10 (inside the validation tolerance) is a pmf after
    dividing by its sum; the literal enumeration (mpmath) divides likewise. Not dividing
    would scale the N − 1 negatives' weights by (1 − 9e-10)^(N−1) and move I_N by ~5e-9;
    the float64 result is within ~1e-14 of the exact one."""
    p_zz = P_ZZ * (1.0 - 9e-10)
    got = rpmref.infonce_bound(p_zz, F, 6, method="exact").estimate
    assert abs(got - reference.mp_infonce_enumerated(p_zz, F, 6)) < 1e-12


def test_infonce_bound_monte_carlo_is_the_mean_and_standard_error_of_the_batches():
    """Each batch is rebuilt from its pair counts and valued by the O(N²) formula of Eq. 6
    (reference.infonce_batch_value); the estimate is their mean and the stderr the sample
    standard deviation (ddof = 1) over √B. Batch values are O(1) sums of ~N² terms:
    1e-12 covers their rounding."""
    from rpmref.exact.infonce import sample_batch_counts
    n, batches, seed = 5, 40, 3
    got = rpmref.infonce_bound(P_ZZ, F, n, method="mc", n_batches=batches, seed=seed)
    counts = sample_batch_counts(P_ZZ, n, batches, np.random.default_rng(seed))
    values = []
    for c in counts:
        pairs = [(z, zp) for z in range(2) for zp in range(2) for _ in range(int(c[z, zp]))]
        values.append(reference.infonce_batch_value(pairs, F.tolist()))
    mean = math.fsum(values) / batches
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (batches - 1))
    assert abs(got.estimate - mean) < 1e-12
    assert abs(got.stderr - sd / math.sqrt(batches)) < 1e-12
    assert got.stderr > 0.01      # the batches differ: a spread of 0 would pass trivially
    from rpmref.exact.infonce import batch_values
    np.testing.assert_allclose(batch_values(counts, F, n), values, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- measures, numerics
def test_mutual_information_needs_an_axis_on_each_side_of_the_split():
    """split = 2 on a 2-D table leaves B with no axes: refused, like split = 3."""
    p = np.full((2, 2), 0.25)
    for split in (2, 3):
        with pytest.raises(ValueError, match=f"split={split}"):
            rpmref.mutual_information(p, split=split)


def test_xlogy_of_a_negative_weight_at_zero_is_plus_inf():
    """x · log 0 = x · (−inf): −inf for x > 0, +inf for x < 0, 0 for x = 0."""
    from rpmref.exact.numerics import xlogy
    out = xlogy(np.array([2.0, -2.0, 0.0]), np.zeros(3))
    assert out.tolist() == [-math.inf, math.inf, 0.0]


# --------------------------------------------------------------------------- validation bounds
#: The "sums to 1" tolerance for a handful of entries: max(1e-9, m·eps) = 1e-9.
TOL = 1e-9


@pytest.mark.parametrize("off", [1.5 * TOL, -1.5 * TOL, 5e-9, -5e-9])
def test_pmf_sums_just_outside_the_tolerance_are_refused(off):
    """|Σ p − 1| = 1.5e-9 or 5e-9 > 1e-9: refused (both signs)."""
    p = np.array([0.25, 0.75 + off])
    assert abs(math.fsum(p) - 1.0) > 1.4 * TOL
    with pytest.raises(ValueError, match="must sum to 1"):
        rpmref.entropy(p)


@pytest.mark.parametrize("off", [0.9 * TOL, -0.9 * TOL])
def test_pmf_sums_just_inside_the_tolerance_are_accepted_as_given(off):
    """|Σ p − 1| = 0.9e-9 ≤ 1e-9: accepted and not renormalised (H of the table as given)."""
    p = np.array([0.25, 0.75 + off])
    want = -math.fsum(v * math.log(v) for v in p)
    assert abs(rpmref.entropy(p) - want) < 1e-15


@pytest.mark.parametrize("off", [1.5 * TOL, -1.5 * TOL, 5e-9, -5e-9])
def test_conditional_rows_just_outside_the_tolerance_are_refused(off):
    """A row of enc off by 1.5e-9 or 5e-9 (either sign, first or last row) is refused."""
    p_xx = np.full((2, 2), 0.25)
    for row in (0, 1):
        enc = np.array([[0.5, 0.5], [0.25, 0.75]])
        enc[row, 1] += off
        with pytest.raises(ValueError, match=f"enc rows must sum to 1.*row {row}"):
            rpmref.recognition_joint(p_xx, enc, np.eye(2))


def test_conditional_rows_just_inside_the_tolerance_are_accepted():
    p_xx = np.full((2, 2), 0.25)
    enc = np.array([[0.5, 0.5 + 0.9 * TOL], [0.25, 0.75 - 0.9 * TOL]])
    joint = rpmref.recognition_joint(p_xx, enc, np.eye(2))
    # P(x, x') = 1/4 and enc' = I: P(z, z') = Σ_x enc(x, z) / 4 for every z'
    want = np.repeat(0.25 * enc.sum(axis=0)[:, None], 2, axis=1)
    np.testing.assert_allclose(joint, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("off", [1.5 * TOL, -1.5 * TOL])
def test_posterior_slices_just_outside_the_tolerance_are_refused(off):
    """The (n, n', k, k') posterior: a slice summing to 1 ± 1.5e-9 is refused; an all-zero
    slice is only a zero slice, not 'normalised'."""
    p_xx = np.full((2, 2), 0.25)
    enc = np.array([[0.75, 0.25], [0.25, 0.75]])
    prior = np.full((2, 2), 0.25)
    post = rpmref.rpm_posterior(p_xx, enc, enc, prior)
    post[1, 0, 0, 0] += off
    with pytest.raises(ValueError, match=r"posterior\[1, 0\] sums to"):
        rpmref.elbo(p_xx, enc, enc, prior, posterior=post)


@pytest.mark.parametrize("tiny", [1e-13, 1e-300])
def test_a_tiny_negative_entry_is_refused_even_when_the_sum_is_fine(tiny):
    """−1e-13 (or −1e-300) is not a probability, though the sum stays within 1e-9 of 1."""
    with pytest.raises(ValueError, match="must be non-negative"):
        rpmref.entropy(np.array([0.5, 0.5 + tiny, -tiny]))
    with pytest.raises(ValueError, match="must be non-negative"):
        rpmref.recognition_joint(np.full((2, 2), 0.25),
                                 np.array([[0.5, 0.5 + tiny, -tiny], [0.0, 0.0, 1.0]]), np.eye(2))


def test_log_partition_is_the_log_of_the_marginal_weighted_sum():
    """log Z(z) = log Σ_z' P(z') e^{f(z,z')} with P(z') = (0.5, 0.5) here:
    log(0.5 e^{1.5} + 0.5 e^{-0.5}) and log(0.5 e^{0.25} + 0.5 e^{1}), against mpmath."""
    got = rpmref.log_partition(P_ZZ, F)
    want = reference.mp_log_partition(P_ZZ, F)
    assert abs(want[0] - math.log(0.5 * math.exp(1.5) + 0.5 * math.exp(-0.5))) < 1e-15
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
