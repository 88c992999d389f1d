"""The validation layer of rpmref.exact: dtypes, sizes, tolerances, traced values, shapes.

Every public function validates through ``rpmref.exact.validation``; these tests
pin the rules stated in its module docstring, one regression test per bug that
the rules fixed (named after the bug).
"""
import math

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

import rpmref
from rpmref.exact import validation as V

U = np.full((2, 2), 0.25)
EYE = np.eye(2)
P_XX = np.array([[0.25, 0.25], [0.25, 0.25]])
ENC = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
ENC_P = np.array([[0.5, 0.5], [0.0, 1.0]])
PRIOR = np.full((3, 2), 1 / 6)

MODEL_FUNCTIONS = [rpmref.rpm_log_likelihood, rpmref.elbo, rpmref.rpm_posterior,
                   rpmref.expected_elbo, rpmref.elbo_decomposition]


# --------------------------------------------------------------------------- regressions
@pytest.mark.parametrize("func", MODEL_FUNCTIONS, ids=lambda f: f.__name__)
def test_prior_none_is_refused_not_nan(func):
    """Bug: expected_elbo(U, eye, eye, None) returned nan (prior=None skipped validation)."""
    with pytest.raises(TypeError, match="prior must be an array of real numbers, got NoneType"):
        func(U, EYE, EYE, None)


@pytest.mark.parametrize("call, message", [
    (lambda: rpmref.entropy([1e308, 1e308]), "p must sum to 1.*it sums to inf"),
    (lambda: rpmref.kl_divergence([0.5, 0.5], [1e308, 1e308]), "q must sum to 1.*it sums to inf"),
    (lambda: rpmref.recognition_joint(np.array([[1e308, 1e308]]), EYE[:1], EYE),
     "p_xx must sum to 1.*it sums to inf"),
    (lambda: rpmref.recognition_joint(P_XX, np.array([[1e308, 1e308], [0.5, 0.5]]), EYE),
     r"enc rows must sum to 1.*row 0 sums to inf"),
])
def test_huge_entries_are_a_value_error_without_overflow_warnings(call, message):
    """Bug: tables whose sum overflows emitted NumPy's 'overflow encountered in reduce'
    RuntimeWarning (an error under -W error) before the ValueError."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.5, -0.1], [0.3, 0.3]]), r"p_xx must be non-negative; entry \(0, 1\) is -0.1"),
    (np.array([[0.5, 0.1], [0.3, 0.3]]), r"p_xx must sum to 1"),
    (np.full((2, 2), np.nan), r"p_xx must be finite; entry \(0, 0\) is nan"),
])
def test_latent_marginals_validates_its_inputs(bad, message):
    """Bug: latent_marginals (exported) validated nothing."""
    with pytest.raises(ValueError, match=message):
        rpmref.latent_marginals(bad, EYE, EYE)
    with pytest.raises(ValueError, match="enc rows must sum to 1"):
        rpmref.latent_marginals(U, np.array([[0.5, 0.4], [0, 1]]), EYE)
    with pytest.raises(ValueError, match="enc_prime has 3 rows but the data have 2 states"):
        rpmref.latent_marginals(U, EYE, np.eye(3)[:, :2])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(max_terms=float("nan")), TypeError, "max_terms must be an integer, got nan"),
    (dict(max_terms=0), ValueError, "max_terms must be >= 1, got 0"),
    (dict(max_terms=1e7), TypeError, "max_terms must be an integer, got 10000000.0"),
    (dict(n_batches=2.5), TypeError, "n_batches must be an integer"),
    (dict(n_batches=-3), ValueError, "n_batches must be >= 2, got -3"),
    (dict(seed=-1), ValueError, "seed must be a non-negative integer"),
    (dict(seed=1.5), TypeError, "seed must be a non-negative integer"),
    (dict(seed="abc"), TypeError, "seed must be a non-negative integer"),
    (dict(rng=np.random.default_rng(0), seed=0), ValueError, "pass rng or seed, not both"),
    (dict(method=None), TypeError, "method must be one of 'auto', 'exact', 'mc'"),
])
def test_infonce_bound_validates_seed_max_terms_and_n_batches(kwargs, error, message):
    """Bug: bad seed/max_terms/n_batches reached NumPy; max_terms=nan disabled the size
    guard and hung (N = 200 with 36 cells would enumerate ~1e11 count vectors)."""
    p_zz = np.full((6, 6), 1 / 36)
    with pytest.raises(error, match=message):
        rpmref.infonce_bound(p_zz, np.zeros((6, 6)), 200, **({"method": "mc"} | kwargs))


# --------------------------------------------------------------------------- dtypes
def test_bool_arrays_are_refused_everywhere():
    """A mask is not a table: bool is a TypeError naming the argument and the dtype."""
    with pytest.raises(TypeError, match=r"enc must be an array of real numbers, got dtype bool"):
        rpmref.recognition_joint(U, EYE.astype(bool), EYE)
    with pytest.raises(TypeError, match=r"f must be an array of real numbers, got dtype bool"):
        rpmref.infonce_limit(U, EYE.astype(bool))


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16])
def test_integer_tables_are_converted_to_float64(dtype):
    out = rpmref.recognition_joint(U, EYE.astype(dtype), EYE.astype(dtype))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, U)
    assert rpmref.infonce_limit(U, np.array([[2, 1], [0, 3]], dtype=dtype)) == pytest.approx(
        rpmref.infonce_limit(U, np.array([[2.0, 1.0], [0.0, 3.0]])), abs=0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_floats_are_widened_and_checked_at_float64_tolerance(dtype):
    """float16/32 values are converted exactly; exactly representable tables pass unchanged,
    tables normalised in low precision fail with a message naming the dtype."""
    exact = np.array([[0.5, 0.25], [0.125, 0.125]], dtype=dtype)   # sums to 1 exactly
    np.testing.assert_array_equal(rpmref.recognition_joint(exact, EYE, EYE), exact.astype(float))
    raw = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=dtype)
    rounded = raw / raw.sum(dtype=dtype)                               # 0.1 etc. are not exact
    total = float(rounded.astype(float).sum())
    if abs(total - 1) > 1e-9:
        with pytest.raises(ValueError, match=rf"p_xx has dtype {np.dtype(dtype).name}: "
                                             "normalise it in float64"):
            rpmref.recognition_joint(rounded, EYE, EYE)


@pytest.mark.parametrize("value, error, message", [
    (np.array([0.5 + 0j, 0.5]), TypeError, "p must be real, got complex"),
    (np.array(["0.5", "0.5"]), TypeError, "p must be an array of real numbers, got dtype <U3"),
    (np.array([0.5, 0.5], dtype=object), TypeError, "got dtype object"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), TypeError, "got dtype datetime64"),
    (np.ma.masked_array([0.5, 0.5], mask=[0, 1]), TypeError, "p must be a plain array"),
    ({"a": 1}, TypeError, "p must be an array of real numbers, got dtype object"),
])
def test_non_real_inputs_are_type_errors_naming_the_argument(value, error, message):
    with pytest.raises(error, match=message):
        rpmref.entropy(value)


def test_non_contiguous_transposed_and_read_only_arrays_give_the_same_results():
    """Same values up to BLAS's layout-dependent summation order (a few ulps of |values| ≤ 5)."""
    rng = np.random.default_rng(0)
    big = rng.random((6, 8))
    enc_t = (big / big.sum(axis=0, keepdims=True)).T                # (8, 6) transposed view
    p_xx = np.full((16, 10), 1 / 40)[::2, ::2]                      # strided (8, 5) view
    enc_p = np.broadcast_to(np.array([0.2, 0.8]), (5, 2))           # read-only broadcast
    prior = np.full((6, 2), 1 / 12)
    assert not enc_t.flags.c_contiguous and not p_xx.flags.c_contiguous
    assert not enc_p.flags.writeable
    for func in MODEL_FUNCTIONS:
        a = func(p_xx, enc_t, enc_p, prior)
        b = func(np.ascontiguousarray(p_xx), np.ascontiguousarray(enc_t), np.array(enc_p), prior)
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-13)


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("n", [3, np.int64(3), np.int32(3), np.uint8(3), np.array(3)])
def test_integer_sizes_accept_numpy_integers(n):
    p_zz, f = np.array([[0.4, 0.1], [0.1, 0.4]]), np.eye(2)
    assert rpmref.infonce_bound(p_zz, f, n, method="exact").estimate == pytest.approx(
        rpmref.infonce_bound(p_zz, f, 3, method="exact").estimate, abs=0)


@pytest.mark.parametrize("n, message", [
    (True, "n must be an integer, got a bool"), (np.bool_(True), "n must be an integer, got a bool"),
    (3.0, r"n must be an integer, got 3.0 \(float\)"), (np.float64(3.0), "n must be an integer"),
    ("3", "n must be an integer"), (None, "n must be an integer, got None"),
    (np.array([3]), "n must be an integer"), (3 + 0j, "n must be an integer"),
])
def test_sizes_refuse_bools_floats_and_others(n, message):
    """Decision: 3.0 is refused like NumPy refuses float shapes (a computed 2.9999999 would
    otherwise slip through); bools are refused (True is not a batch size)."""
    with pytest.raises(TypeError, match=message):
        rpmref.infonce_bound(np.array([[0.5, 0.5]]), np.zeros((1, 2)), n)


def test_huge_sizes_are_refused_early_not_attempted():
    p_zz, f = np.array([[0.5, 0.5]]), np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"n must be <= 9223372036854775807"):
        rpmref.infonce_bound(p_zz, f, 2 ** 64)
    with pytest.raises(ValueError, match=r"method='exact'.*needs 1e\+18 terms"):
        rpmref.infonce_bound(p_zz, f, 5 * 10 ** 17, method="exact")


# --------------------------------------------------------------------------- tolerances
def test_sum_tolerance_is_derived_from_the_number_of_entries():
    """max(1e-9, m·eps): a table of 10^7 entries normalised in float64 may be off by
    ~m·eps/2 = 1.1e-9, which the floor alone would refuse."""
    assert V.sum_tolerance(4) == 1e-9
    assert V.sum_tolerance(10 ** 7) == pytest.approx(10 ** 7 * 2.220446049250313e-16)
    p = np.full(10 ** 7, 1e-7) * (1 + 1.5e-9)          # off by 1.5e-9 < 2.2e-9
    assert rpmref.entropy(p) == pytest.approx(math.log(1e7), rel=1e-8)
    with pytest.raises(ValueError, match=r"p must sum to 1 \(tolerance 1e-09\); it sums to 1.0000000015"):
        rpmref.entropy(np.array([0.5, 0.5]) * (1 + 1.5e-9))


def test_tables_are_never_renormalised():
    """A table within tolerance is used as given: the output carries its 4e-10 excess."""
    almost = P_XX * (1 + 4e-10)
    assert rpmref.data_constant(almost) != rpmref.data_constant(P_XX)
    np.testing.assert_array_equal(rpmref.recognition_joint(almost, EYE, EYE), almost)


# --------------------------------------------------------------------------- traced values
def test_traced_arguments_are_checked_on_their_values_and_passed_through():
    """Bug: autograd.grad through expected_elbo failed ('dtype object'); now the box passes."""
    g = grad(lambda prior: rpmref.expected_elbo(U, EYE, EYE, prior))(U)
    np.testing.assert_allclose(g, U / U, rtol=1e-15)   # ∂/∂P_θ Σ P log P_θ = P / P_θ
    with pytest.raises(ValueError, match=r"prior must be non-negative; entry \(0, 0\) is -0.25"):
        grad(lambda prior: rpmref.expected_elbo(U, EYE, EYE, -prior + 0.5 * U * 0))(U)
    with pytest.raises(ValueError, match="prior must sum to 1"):
        grad(lambda prior: rpmref.expected_elbo(U, EYE, EYE, 2 * prior))(U)


def test_traced_values_of_several_arguments_share_the_shape_checks():
    with pytest.raises(ValueError, match=r"prior must have shape \(2, 2\)"):
        grad(lambda e: rpmref.expected_elbo(U, e, EYE, np.full((3, 2), 1 / 6)))(EYE)


# --------------------------------------------------------------------------- shapes
def test_shape_messages_name_where_each_size_comes_from():
    with pytest.raises(ValueError, match=r"prior must have shape \(3, 2\) \(k from enc, k' from "
                                         r"enc_prime\), got \(2, 3\)"):
        rpmref.elbo(P_XX, ENC, ENC_P, np.full((2, 3), 1 / 6))
    with pytest.raises(ValueError, match=r"q must have the same shape as p \(2,\), got \(3,\)"):
        rpmref.kl_divergence([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match=r"f must be 2-dimensional, got shape \(2,\)"):
        rpmref.energy_prior(U, np.zeros(2))


@pytest.mark.parametrize("func", [rpmref.entropy, rpmref.mutual_information])
def test_empty_and_scalar_inputs(func):
    with pytest.raises(ValueError, match="must not be empty"):
        func(np.zeros((0, 3)))


# --------------------------------------------------------------------------- helpers for others
def test_check_int_and_check_real():
    assert V.check_int(np.int64(5), "k", 1, 10) == 5 and type(V.check_int(np.int64(5), "k")) is int
    with pytest.raises(ValueError, match="k must be <= 10, got 11"):
        V.check_int(11, "k", 1, 10)
    assert V.check_real(np.float32(0.5), "rho", -1, 1, inclusive=(False, False)) == 0.5
    with pytest.raises(ValueError, match=r"rho must be in \(-1, 1\), got 1.0"):
        V.check_real(1.0, "rho", -1, 1, inclusive=(False, False))
    with pytest.raises(ValueError, match="ell must be a finite real number, got nan"):
        V.check_real(float("nan"), "ell", 0)
    with pytest.raises(TypeError, match="ell must be a real number, got True"):
        V.check_real(True, "ell", 0)


def test_symmetric_and_positive_definite_checks_are_relative():
    """The same matrix scaled by 1e-200 or 1e200 passes or fails in the same way."""
    a = np.array([[2.0, 1.0], [1.0, 2.0]])
    for scale in (1e-200, 1.0, 1e200):
        V.check_positive_definite(a * scale, "cov")
        with pytest.raises(ValueError, match=r"cov must be symmetric \(relative tolerance 1e-10\); "
                                             r"cov\[0, 1\] = "):
            V.check_symmetric(a * scale + np.array([[0, 1e-9], [0, 0]]) * scale, "cov")
        with pytest.raises(ValueError, match=r"cov must be positive definite; its smallest "
                                             r"eigenvalue \(scaled to unit diagonal\) is"):
            V.check_positive_definite(np.array([[1.0, 2.0], [2.0, 1.0]]) * scale, "cov")
    # coordinates of very different scales are not a singular matrix (unit-diagonal test);
    # a rank-one matrix is refused whatever the scales of its coordinates
    V.check_positive_definite(np.diag([1.0, 1e-20]), "cov")
    V.check_positive_definite(np.array([[1e10, 0.5], [0.5, 1e-10]]), "cov")   # correlation 0.5
    with pytest.raises(ValueError, match="cov must be positive definite"):
        V.check_positive_definite(np.array([[1e10, 1.0], [1.0, 1e-10]]), "cov")  # correlation 1
    V.check_positive_definite(np.array([[1.0, 1.0], [1.0, 1.0]]), "cov", semi=True)
    with pytest.raises(ValueError, match="cov must be positive definite"):
        V.check_positive_definite(np.array([[1.0, 1.0], [1.0, 1.0]]), "cov")
    assert V.check_symmetric(a * (1 + np.array([[0, 1e-12], [0, 0]])), "cov") is not None


def test_validate_params_declarations_serve_other_modules():
    @V.validate_params(cov=V.SymmetricMatrix(dims=("d", "d"), definite="positive"),
                       mean=V.Array(dims=("d",)), draws=V.Integer(1))
    def draw(cov, mean, draws=10):
        return cov, mean, draws

    cov, mean, draws = draw([[1, 0], [0, 1]], [0, 0])
    assert cov.dtype == np.float64 and mean.dtype == np.float64 and draws == 10
    with pytest.raises(ValueError, match=r"mean must have shape \(2,\) \(d from cov\), got \(3,\)"):
        draw(np.eye(2), np.zeros(3))
    with pytest.raises(TypeError, match="draws must be an integer, got 2.0"):
        draw(np.eye(2), np.zeros(2), 2.0)
    assert draw.param_specs["draws"].minimum == 1
    box_cov = grad(lambda c: anp.sum(draw(c, np.zeros(2))[0]))(np.eye(2))
    np.testing.assert_array_equal(box_cov, np.ones((2, 2)))
