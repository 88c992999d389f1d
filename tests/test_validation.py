"""Every validation error: a clear ValueError/TypeError naming the argument, index and value."""
import warnings

import numpy as np
import pytest

import rpmref

P_XX = np.array([[0.25, 0.25], [0.25, 0.25]])
ENC = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
ENC_P = np.array([[0.5, 0.5], [0.0, 1.0]])
PRIOR = np.full((3, 2), 1 / 6)


def test_negative_probability_names_argument_and_index():
    bad = P_XX.copy()
    bad[1, 0], bad[1, 1] = -0.1, 0.6
    with pytest.raises(ValueError, match=r"p_xx must be non-negative; entry \(1, 0\) is -0.1"):
        rpmref.recognition_joint(bad, ENC, ENC_P)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_probability(value):
    bad = PRIOR.copy()
    bad[2, 1] = value
    with pytest.raises(ValueError, match=r"prior must be finite; entry \(2, 1\) is"):
        rpmref.expected_elbo(P_XX, ENC, ENC_P, bad)


def test_table_not_summing_to_one_states_tolerance_and_sum():
    with pytest.raises(ValueError, match=r"p_xx must sum to 1 \(tolerance 1e-09\); it sums to 0.7"):
        rpmref.recognition_joint(np.array([[0.2, 0.2], [0.2, 0.1]]), ENC, ENC_P)


def test_table_summing_to_one_within_tolerance_is_accepted_unchanged():
    almost = P_XX * (1 + 4e-10)
    np.testing.assert_array_equal(rpmref.recognition_joint(almost, np.eye(2), np.eye(2)), almost)


def test_encoder_rows_must_sum_to_one():
    bad = ENC.copy()
    bad[1] = [0.0, 0.5, 0.2]
    with pytest.raises(ValueError, match=r"enc rows must sum to 1 \(tolerance 1e-09\); row 1 sums to 0.7"):
        rpmref.elbo(P_XX, bad, ENC_P, PRIOR)


def test_encoder_row_count_must_match_data_states():
    with pytest.raises(ValueError, match=r"enc_prime has 3 rows but the data have 2 states"):
        rpmref.rpm_log_likelihood(P_XX, ENC, np.full((3, 2), 0.5), PRIOR)


def test_prior_shape_must_match_latent_states():
    with pytest.raises(ValueError, match=r"prior must have shape \(3, 2\).*got \(2, 3\)"):
        rpmref.elbo(P_XX, ENC, ENC_P, np.full((2, 3), 1 / 6))


def test_critic_shape_and_finiteness():
    p_zz = rpmref.recognition_joint(P_XX, ENC, ENC_P)
    with pytest.raises(ValueError, match=r"f must have shape \(3, 2\)"):
        rpmref.infonce_limit(p_zz, np.zeros((2, 2)))
    f = np.zeros((3, 2))
    f[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"f must be finite; entry \(0, 1\) is nan"):
        rpmref.energy_prior(p_zz, f)


def test_posterior_shape_and_normalisation():
    q = ENC[:, None, :, None] * ENC_P[None, :, None, :]
    with pytest.raises(ValueError, match=r"posterior must have shape \(2, 2, 3, 2\)"):
        rpmref.elbo(P_XX, ENC, ENC_P, PRIOR, posterior=q[:, :, :2])
    bad = q.copy()
    bad[1, 0] *= 0.9
    with pytest.raises(ValueError, match=r"posterior\[1, 0\] sums to 0.9"):
        rpmref.elbo(P_XX, ENC, ENC_P, PRIOR, posterior=bad)
    bad = q.copy()
    bad[1, 0] = 0.0   # all zero: allowed only where P_θ(x, x') = 0, and here it is not
    with pytest.raises(ValueError, match=r"posterior\[1, 0\] sums to 0.0, which only a pair "
                                         r"the model gives no mass may have"):
        rpmref.elbo(P_XX, ENC, ENC_P, PRIOR, posterior=bad)
    bad = q.copy()
    bad[0, 1, 0, 0] = -0.5
    with pytest.raises(ValueError, match=r"posterior must be non-negative; entry \(0, 1, 0, 0\)"):
        rpmref.elbo(P_XX, ENC, ENC_P, PRIOR, posterior=bad)


@pytest.mark.parametrize("value, message", [
    ("abc", "p must be an array of real numbers"),
    (None, "p must be an array of real numbers"),
    (np.array([0.5 + 0j, 0.5]), "p must be real"),
    ([[0.5], [0.25, 0.25]], "p must be an array of real numbers"),
])
def test_non_numeric_input_is_a_type_error(value, message):
    with pytest.raises(TypeError, match=message):
        rpmref.entropy(value)


def test_wrong_dimensionality_and_empty_input():
    with pytest.raises(ValueError, match=r"p_xx must be 2-dimensional, got shape \(4,\)"):
        rpmref.recognition_joint(np.full(4, 0.25), ENC, ENC_P)
    with pytest.raises(ValueError, match="p must not be empty"):
        rpmref.entropy([])


def test_kl_shape_mismatch_and_mi_split():
    with pytest.raises(ValueError, match="same shape"):
        rpmref.kl_divergence([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="more than split=2 axes"):
        rpmref.mutual_information(P_XX, split=2)


def test_empirical_rpm_pmf_checks_pair_count():
    with pytest.raises(ValueError, match="enc_prime_rows has 2 rows but the data have 3 states"):
        rpmref.empirical_rpm_pmf(np.eye(3), np.eye(2), np.full((3, 2), 1 / 6))


def test_prior_mass_on_unreachable_states_is_allowed():
    """N1: such a prior is valid input; the RPM then sums to the reachable mass only."""
    enc = np.array([[1.0, 0.0], [1.0, 0.0]])   # z = 1 is never reached
    prior = np.array([[0.3, 0.3], [0.2, 0.2]])
    total = np.exp(rpmref.rpm_log_likelihood(P_XX, enc, np.eye(2), prior)).sum()
    assert abs(total - 0.6) <= 1e-12  # 4 entries through exp(log): a few ulp (≲ 1e-15)


@pytest.mark.parametrize("table", [[[True, 0], [0, 0]], [[0.5, 0.5], [0.0, False]],
                                   ([0.25, 0.25], (0.5, np.False_))])
def test_a_list_holding_a_bool_is_refused(table):
    """NumPy turns [[True, 0], [0, 0]] into integers and [0.5, False] into floats, so the
    bool check on the array's dtype let a mask typed as a list through."""
    with pytest.raises(TypeError, match="p_xx must be an array of real numbers; it holds a bool"):
        rpmref.data_constant(table)


def test_an_interval_end_at_infinity_is_open_when_infinity_is_refused():
    """check_real(0, minimum=0, inclusive=(False, True)) said 'must be in (0, inf]' but refuses
    inf (finite=True); with finite=False inf belongs to the interval."""
    from rpmref.exact.validation import check_real
    with pytest.raises(ValueError, match=r"must be in \(0, inf\), got 0.0"):
        check_real(0, "x", minimum=0, inclusive=(False, True))
    with pytest.raises(ValueError, match=r"must be in \(0, inf\], got 0.0"):
        check_real(0, "x", minimum=0, inclusive=(False, True), finite=False)
    assert check_real(np.inf, "x", minimum=0, finite=False) == np.inf


def test_a_zero_dimensional_array_is_a_seed():
    """np.array(5) as a seed was '...: len() of unsized object'."""
    from rpmref.exact.validation import check_seed
    assert check_seed(np.array(5), "seed") == 5
    with pytest.raises(TypeError, match="got True"):
        check_seed(np.array(True), "seed")



@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max,
                    reason="longdouble is float64 on this platform")
def test_a_longdouble_beyond_float64_is_named_without_a_warning():
    """A finite longdouble of 1e4000 has no float64 value: a ValueError that shows it, not
    a RuntimeWarning from the cast and then "entry (0, 0) is inf"."""
    from rpmref.exact.validation import check_real
    huge = np.longdouble("1e4000")
    f = np.array([[huge, 0], [0, 1]], dtype=np.longdouble)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"f must be representable in float64; entry "
                                             r"\(0, 0\) is 1.e\+4000, beyond its range"):
            rpmref.infonce_limit(P_XX, f)
        with pytest.raises(ValueError, match=r"p must be representable in float64; entry 1 is "
                                             r"-1.e\+4000"):
            rpmref.entropy(np.array([0.5, -huge, 0.5], dtype=np.longdouble))
        with pytest.raises(ValueError, match="temperature must be representable in float64; "
                                             r"got 1.e\+4000"):
            check_real(huge, "temperature", finite=False)
        # within range, a longdouble table is used at its float64 value
        assert rpmref.entropy(np.array([0.5, 0.5], dtype=np.longdouble)) == \
            rpmref.entropy([0.5, 0.5])


@pytest.mark.skipif(np.finfo(np.longdouble).tiny >= np.finfo(np.float64).tiny,
                    reason="longdouble is float64 on this platform")
def test_a_longdouble_below_float64_is_named_not_flushed_to_zero():
    """A longdouble of 1e-4000 rounds to 0 in float64: as a probability that would change
    the support (KL(p || q) finite in exact arithmetic, +inf after the cast), so it is
    refused by name; an exact 0 in a longdouble table is still an ordinary 0."""
    from rpmref.exact.validation import check_real
    tiny = np.longdouble("1e-4000")
    assert tiny > 0 and np.float64(tiny) == 0          # the premise of the test
    q = np.array([0.5 - tiny, 0.5 + tiny, 0.0], dtype=np.longdouble)
    q[2] = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"q must be representable in float64; entry 2 is "
                                             r"1.e-4000, below its smallest positive value"):
            rpmref.kl_divergence([0.25, 0.25, 0.5], q)
        with pytest.raises(ValueError, match=r"temperature must be representable in float64; "
                                             r"got 1.e-4000, below"):
            check_real(tiny, "temperature")
        assert check_real(np.longdouble(0), "x") == 0.0
        assert rpmref.entropy(np.array([0.5, 0.0, 0.5], dtype=np.longdouble)) == \
            rpmref.entropy([0.5, 0.0, 0.5])


def test_an_integer_beyond_float64_is_a_value_error():
    from rpmref.exact.validation import check_real
    with pytest.raises(ValueError, match="n must be representable in float64; got an integer "
                                         "of 401 digits"):
        check_real(10 ** 400, "n")


def test_a_fixed_shape_is_named_without_empty_parentheses():
    """mapped_pair(eye(2), rho=[0.9]) said "rho must have shape (2,) (), got (1,)": a shape of
    fixed sizes has no symbolic names to list."""
    from rpmref.exact.validation import Array
    with pytest.raises(ValueError, match=r"^a must have shape \(2,\), got \(3,\)$"):
        Array(dims=(2,)).validate([1.0, 2.0, 3.0], "a", {})
    with pytest.raises(ValueError, match=r"^a must have shape \(1, 2\) \(n\), got \(1, 3\)$"):
        Array(dims=("n", 2)).validate([[1.0, 2.0, 3.0]], "a", {})
