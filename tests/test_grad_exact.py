"""Gradients of every public function of the exact core (autograd), against finite differences.

Two checks per function on random problems: ``autograd.test_util.check_grads``
(reverse mode, one random direction, central differences with step 1e-6) and
our own central difference along a random direction, required to agree with
the autograd directional derivative to 1e-6 relative (+1e-9 absolute).

Tables are parametrised through softmax logits, so every perturbation of the
parameters stays a valid pmf / conditional table and the point is interior.

At one-hot encoder rows (and pmfs with zero entries) the tables sit on the
boundary of the simplex: a two-sided step leaves it (a negative probability,
refused by validation), so there the derivative along a feasible direction d
(raise a zero entry, lower the hot one) is compared with the one-sided,
second-order difference (−3 F(0) + 4 F(t) − F(2t)) / (2t). These points are
chosen so that a finite derivative exists: every latent state stays reachable
and the prior is positive (an entropy at P = 0 has slope −inf, so entropy,
KL and MI are only tested inside the simplex).

Tolerance: with step h = 1e-5 the central difference has truncation error
≈ h²/6 · |F'''| ≈ 1e-11 and rounding error ≈ eps · |F| / h ≈ 2e-11 for the O(1)
values here; 1e-6 relative + 1e-9 absolute is far above both and far below any
real gradient error (which is O(|F'|)).
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads

import rpmref
import rpmref.exact

STEP = 1e-5
RTOL, ATOL = 1e-6, 1e-9


@pytest.fixture(autouse=True)
def _seed_check_grads():
    np.random.seed(0)  # check_grads draws its direction from the global NumPy generator


def softmax(logits, axis=-1):
    shifted = logits - anp.max(logits, axis=axis, keepdims=True)
    e = anp.exp(shifted)
    return e / anp.sum(e, axis=axis, keepdims=True)


def joint_softmax(logits):
    return anp.reshape(softmax(anp.reshape(logits, (-1,))), anp.shape(logits))


def random_params(seed, n=3, n_prime=4, k=3, k_prime=2):
    rng = np.random.default_rng(seed)
    return dict(p_xx=rng.normal(size=(n, n_prime)), enc=rng.normal(size=(n, k)),
                enc_prime=rng.normal(size=(n_prime, k_prime)), prior=rng.normal(size=(k, k_prime)),
                f=rng.normal(scale=2.0, size=(k, k_prime)),
                posterior=rng.normal(size=(n, n_prime, k, k_prime)))


def tables(p):
    """Softmax the logits into (p_xx, enc, enc_prime, prior)."""
    return joint_softmax(p["p_xx"]), softmax(p["enc"]), softmax(p["enc_prime"]), joint_softmax(p["prior"])


def weighted(out, seed=7):
    """A scalar from any output: a fixed random weighting of its entries (fields summed)."""
    if isinstance(out, tuple):
        return sum((i + 1) * weighted(o, seed + i) for i, o in enumerate(out))
    weights = np.random.default_rng(seed).normal(size=anp.shape(out))
    return anp.sum(weights * out)


def _recognition_posterior_logits(p):
    return anp.reshape(softmax(anp.reshape(p["posterior"], p["posterior"].shape[:2] + (-1,))),
                       p["posterior"].shape)


#: name -> F(params dict of logits) -> scalar
OBJECTIVES = {
    "recognition_joint": lambda p: weighted(rpmref.recognition_joint(*tables(p)[:3])),
    "optimal_prior": lambda p: weighted(rpmref.optimal_prior(*tables(p)[:3])),
    "latent_marginals": lambda p: weighted(rpmref.latent_marginals(*tables(p)[:3])),
    "data_marginals": lambda p: weighted(rpmref.exact.data_marginals(tables(p)[0])),
    "rpm_log_likelihood": lambda p: weighted(rpmref.rpm_log_likelihood(*tables(p))),
    "rpm_posterior": lambda p: weighted(rpmref.rpm_posterior(*tables(p))),
    "expected_elbo": lambda p: rpmref.expected_elbo(*tables(p)),
    "elbo": lambda p: weighted(rpmref.elbo(*tables(p))),
    "elbo_with_posterior": lambda p: weighted(
        rpmref.elbo(*tables(p), posterior=_recognition_posterior_logits(p))),
    "elbo_decomposition": lambda p: weighted(tuple(rpmref.elbo_decomposition(*tables(p)))),
    "data_constant": lambda p: rpmref.data_constant(tables(p)[0]),
    "empirical_rpm_pmf": lambda p: weighted(rpmref.empirical_rpm_pmf(
        softmax(p["enc"]), softmax(p["enc_prime"][:3]), joint_softmax(p["prior"]))),
    "entropy": lambda p: rpmref.entropy(tables(p)[0]),
    "mutual_information": lambda p: rpmref.mutual_information(tables(p)[3]),
    "kl_divergence": lambda p: rpmref.kl_divergence(tables(p)[3], joint_softmax(p["f"])),
    "energy_prior": lambda p: weighted(rpmref.energy_prior(tables(p)[3], p["f"])),
    "log_partition": lambda p: weighted(rpmref.log_partition(tables(p)[3], p["f"])),
    "infonce_limit": lambda p: rpmref.infonce_limit(tables(p)[3], p["f"]),
    "infonce_bound_exact": lambda p: rpmref.infonce_bound(tables(p)[3], p["f"], 4,
                                                          method="exact").estimate,
}


def directional_fd(fun, x, direction, step=STEP):
    """Central difference of fun along direction at x (dicts of arrays)."""
    plus = {key: x[key] + step * direction[key] for key in x}
    minus = {key: x[key] - step * direction[key] for key in x}
    return (fun(plus) - fun(minus)) / (2 * step)


def assert_close(analytic, numeric):
    assert abs(analytic - numeric) <= RTOL * max(abs(analytic), abs(numeric)) + ATOL, (
        analytic, numeric)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_central_difference_and_check_grads(name, seed):
    fun = OBJECTIVES[name]
    params = random_params(seed)
    gradient = grad(fun)(params)
    rng = np.random.default_rng(100 + seed)
    direction = {key: rng.normal(size=v.shape) for key, v in params.items()}
    analytic = sum(float(np.sum(gradient[key] * direction[key])) for key in params)
    assert np.isfinite(analytic)
    assert_close(analytic, directional_fd(fun, params, direction))
    check_grads(fun, modes=["rev"], order=1)(params)


def test_gradients_flow_into_every_table():
    """A gradient w.r.t. each argument is non-zero (nothing is cut off by validation)."""
    params = random_params(3)
    g = grad(OBJECTIVES["rpm_log_likelihood"])(params)
    for key in ("p_xx", "enc", "enc_prime", "prior"):
        assert np.abs(g[key]).max() > 1e-6, key
    g = grad(OBJECTIVES["infonce_bound_exact"])(params)
    assert np.abs(g["prior"]).max() > 1e-6 and np.abs(g["f"]).max() > 1e-6


# --------------------------------------------------------------------------- boundary
ONE_HOT = np.eye(3)[[0, 1, 2, 0]]             # (4, 3): every latent state is reached
ONE_HOT_PRIME = np.eye(2)[[1, 0, 1]]          # (3, 2)
P_XX = np.arange(1.0, 13.0).reshape(4, 3) / 78.0
PRIOR = np.arange(1.0, 7.0).reshape(3, 2) / 21.0


def _simplex_direction(table, row, up, down):
    """Move mass from entry (row, down) to (row, up): stays in the simplex for a step t ≥ 0."""
    d = np.zeros_like(table)
    d[row, up], d[row, down] = 1.0, -1.0
    return d


def one_sided(fun, x, d, t=1e-5):
    """(−3 F(0) + 4 F(t) − F(2t)) / (2t): second-order accurate, only steps t ≥ 0."""
    return (-3 * fun(x) + 4 * fun(x + t * d) - fun(x + 2 * t * d)) / (2 * t)


BOUNDARY = {
    # name -> (F of the encoder table, at ONE_HOT)
    "recognition_joint": lambda e: weighted(rpmref.recognition_joint(P_XX, e, ONE_HOT_PRIME)),
    "latent_marginals": lambda e: weighted(rpmref.latent_marginals(P_XX, e, ONE_HOT_PRIME)),
    "rpm_log_likelihood": lambda e: weighted(rpmref.rpm_log_likelihood(P_XX, e, ONE_HOT_PRIME, PRIOR)),
    "rpm_posterior": lambda e: weighted(rpmref.rpm_posterior(P_XX, e, ONE_HOT_PRIME, PRIOR)),
    "expected_elbo": lambda e: rpmref.expected_elbo(P_XX, e, ONE_HOT_PRIME, PRIOR),
    "elbo": lambda e: weighted(rpmref.elbo(P_XX, e, ONE_HOT_PRIME, PRIOR)),
    "elbo_decomposition": lambda e: weighted(tuple(rpmref.elbo_decomposition(
        P_XX, e, ONE_HOT_PRIME, PRIOR))),
    "empirical_rpm_pmf": lambda e: weighted(rpmref.empirical_rpm_pmf(
        e, np.eye(2)[[1, 0, 1, 1]], PRIOR)),
}


@pytest.mark.parametrize("name", sorted(BOUNDARY))
@pytest.mark.parametrize("row, up", [(0, 1), (3, 2), (1, 0)])
def test_gradient_at_one_hot_encoder_rows_matches_one_sided_difference(name, row, up):
    """At a one-hot row, the derivative along 'move mass from the hot entry to entry up'."""
    fun = BOUNDARY[name]
    d = _simplex_direction(ONE_HOT, row, up, int(ONE_HOT[row].argmax()))
    analytic = float(np.sum(grad(fun)(ONE_HOT) * d))
    assert np.isfinite(analytic)
    assert_close(analytic, one_sided(fun, ONE_HOT, d))


P_XX_SPARSE = P_XX.copy()
P_XX_SPARSE[1, 1] = 0.0                     # the only pair reaching (z, z') = (1, 0) ...
P_XX_SPARSE /= P_XX_SPARSE.sum()            # ... so P(z=1, z'=0) = 0 at the one-hot point


@pytest.mark.parametrize("name, fun", [
    ("expected_elbo", lambda e: rpmref.expected_elbo(P_XX_SPARSE, e, ONE_HOT_PRIME, PRIOR)),
    ("elbo", lambda e: weighted(rpmref.elbo(P_XX_SPARSE, e, ONE_HOT_PRIME, PRIOR))),
    ("rpm_log_likelihood", lambda e: weighted(rpmref.rpm_log_likelihood(
        P_XX_SPARSE, e, ONE_HOT_PRIME, PRIOR))),
])
def test_gradient_where_the_recognition_joint_has_a_zero_entry(name, fun):
    """Moving mass of row 0 to z = 1 makes P(1, 0) positive: the slope of Σ P(z,z') log P_θ there
    is log P_θ(1, 0) · ∂P(1,0) (finite), not 0 — the x·log y gradient at x = 0."""
    assert rpmref.recognition_joint(P_XX_SPARSE, ONE_HOT, ONE_HOT_PRIME)[1, 0] == 0
    d = _simplex_direction(ONE_HOT, 0, 1, 0)
    analytic = float(np.sum(grad(fun)(ONE_HOT) * d))
    assert_close(analytic, one_sided(fun, ONE_HOT, d))


def test_xlogy_slope_in_x_at_zero_is_log_y():
    from rpmref.exact.numerics import xlogy
    g = grad(lambda x: anp.sum(xlogy(x, np.array([0.5, 2.0, 0.0]))))(np.zeros(3))
    np.testing.assert_allclose(g[:2], np.log([0.5, 2.0]), rtol=1e-15)
    assert g[2] == 0.0   # x log 0 has no finite slope; 0 by convention, never NaN


P_ZZ_WITH_ZEROS = np.array([[0.3, 0.0, 0.1], [0.0, 0.25, 0.05], [0.15, 0.15, 0.0]])
CRITIC = np.array([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1], [-1.0, 1.5, 0.4]])

JOINT_BOUNDARY = {
    "energy_prior": lambda p: weighted(rpmref.energy_prior(p, CRITIC)),
    "log_partition": lambda p: weighted(rpmref.log_partition(p, CRITIC)),
    "infonce_limit": lambda p: rpmref.infonce_limit(p, CRITIC),
    "infonce_bound_exact": lambda p: rpmref.infonce_bound(p, CRITIC, 3, method="exact").estimate,
    "data_constant": lambda p: rpmref.data_constant(p),
}


@pytest.mark.parametrize("name", sorted(JOINT_BOUNDARY))
def test_gradient_at_zero_entries_of_the_joint_matches_one_sided_difference(name):
    """Raising a zero entry of P(z, z') (marginals stay positive) has a finite slope."""
    fun = JOINT_BOUNDARY[name]
    d = np.zeros_like(P_ZZ_WITH_ZEROS)
    d[0, 1], d[0, 0] = 1.0, -1.0
    analytic = float(np.sum(grad(fun)(P_ZZ_WITH_ZEROS) * d))
    assert np.isfinite(analytic)
    assert_close(analytic, one_sided(fun, P_ZZ_WITH_ZEROS, d))


def test_critic_gradient_of_infonce_limit_is_the_data_minus_model_expectation():
    """∂I_∞/∂f(z,z') = P(z,z') − P(z) P_θ(z'|z) = P(z,z') − P_θ^f(z,z') (Eq. 21–25):
    an independent closed form for the gradient."""
    p = P_ZZ_WITH_ZEROS
    g = grad(lambda f: rpmref.infonce_limit(p, f))(CRITIC)
    np.testing.assert_allclose(g, p - rpmref.energy_prior(p, CRITIC), rtol=0, atol=1e-14)


def test_encoder_gradient_of_expected_elbo_with_optimal_prior_is_data_gradient_of_mi():
    """At P_θ = P(z,z') held fixed, ∂L/∂enc equals ∂(I(Z;Z') + C)/∂enc when P_θ is re-set to the
    joint (envelope: ∂L/∂P_θ is orthogonal to the simplex there, E4)."""
    e = np.full((4, 3), 1 / 3) + np.array([[0.1, -0.05, -0.05]] * 4)
    prior = rpmref.optimal_prior(P_XX, e, ONE_HOT_PRIME)
    fixed = grad(lambda t: rpmref.expected_elbo(P_XX, t, ONE_HOT_PRIME, prior))(e)
    moving = grad(lambda t: rpmref.mutual_information(rpmref.optimal_prior(P_XX, t, ONE_HOT_PRIME))
                  + rpmref.data_constant(P_XX))(e)
    tangent = fixed - fixed.mean(axis=1, keepdims=True)   # project out the row-sum direction
    np.testing.assert_allclose(tangent, moving - moving.mean(axis=1, keepdims=True),
                               rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- below the normal range
def _mp_directional(fun, args, index, direction, h="1e-30", dps=80):
    """Central difference of ``fun`` (written for mpmath) along ``direction`` in argument
    ``index``, at ``dps`` digits: an independent reference for one directional derivative."""
    import mpmath
    with mpmath.workdps(dps):
        h = mpmath.mpf(h)
        base = [[mpmath.mpf(float(v)) for v in np.ravel(a)] for a in args]

        def at(sign):
            moved = [list(b) for b in base]
            moved[index] = [b + sign * h * float(d) for b, d in zip(base[index],
                                                                    np.ravel(direction))]
            return fun(*moved)
        return float((at(1) - at(-1)) / (2 * h))


def _mp_kl(p, q):
    import mpmath
    return mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(p, q) if a > 0)


@pytest.mark.parametrize("p, q", [
    ([1 - 1e-10, 1e-10], [1 - 1e-310, 1e-310]),
    ([1e-310, 0.5, 0.5], [0.5, 1e-200, 0.5]),
    ([0.5, 1e-300, 0.5], [0.5, 5e-324, 0.5]),
], ids=["subnormal q", "1e-200 q", "5e-324 q"])
def test_kl_gradient_is_finite_and_exact_where_q_is_below_the_normal_range(p, q):
    """Bug: autograd's chain through (p − q)/q formed x/q², which underflows to 0 below
    q ≈ 1e-154: ∂KL/∂q came back −inf or NaN where it is −p/q (finite). Checked against
    −p/q in closed form (one rounding) and an 80-digit central difference along a
    sum-preserving direction (the relative step 1e-30 makes the truncation error ~1e-60)."""
    p, q = np.array(p), np.array(q)
    g_q = grad(rpmref.kl_divergence, 1)(p, q)
    np.testing.assert_allclose(g_q, -p / q, rtol=4 * np.finfo(float).eps, atol=0)
    g_p = grad(rpmref.kl_divergence, 0)(p, q)
    big = int(np.argmax(p))
    for i in range(p.size):
        if i == big or p[i] == 0:
            continue
        d = np.zeros_like(p)
        d[i], d[big] = p[i], -p[i]   # relative step on entry i, its mass taken from the largest
        expected = _mp_directional(_mp_kl, (p, q), 0, d)
        assert abs(np.dot(g_p, d) - expected) <= 1e-12 * (1 + abs(expected))


def _mp_mi(flat, shape=(2, 2)):
    import mpmath
    rows, cols = shape
    t = [flat[i * cols:(i + 1) * cols] for i in range(rows)]
    pa = [mpmath.fsum(r) for r in t]
    pb = [mpmath.fsum(t[i][j] for i in range(rows)) for j in range(cols)]
    return mpmath.fsum(t[i][j] * mpmath.log(t[i][j] / (pa[i] * pb[j]))
                       for i in range(rows) for j in range(cols) if t[i][j] > 0)


def test_mi_gradient_is_finite_where_the_product_of_marginals_underflows():
    """Bug: with P(a) P(b) = 4e-600 (0 in float64) on the support, every entry of the
    autograd gradient of mutual_information was NaN; the true one is finite:
    log p − log P(a) − log P(b) − 1. Checked along sum-preserving directions against an
    80-digit central difference."""
    P = np.array([[1e-300, 1e-300], [1e-300, 1 - 3e-300]])
    g = grad(rpmref.mutual_information)(P)
    assert np.all(np.isfinite(g))
    for i in range(3):
        d = np.zeros(4)
        d[i], d[3] = P.flat[i], -P.flat[i]
        expected = _mp_directional(_mp_mi, (P,), 0, d)
        assert abs(np.dot(g.ravel(), d) - expected) <= 1e-12 * (1 + abs(expected))
    pxx, prior = np.array([[.3, .1], [.2, .4]]), np.array([[.4, .1], [.2, .3]])
    enc = np.array([[1 - 1e-160, 1e-160], [1.0, 0.0]])
    g = grad(lambda e: rpmref.elbo_decomposition(pxx, e, e, prior).mutual_information)(enc)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("p_zz, f, n", [
    ([[.5, 0.], [.5, 0.]], [[1., 0.], [0., 1.]], 2),
    ([[.3, 0., .2], [.1, 0., .4]], [[1., -.5, .2], [.3, .8, -1.]], 2),
    ([[.3, 0., .2], [.1, 0., .4]], [[1., -.5, .2], [.3, .8, -1.]], 4),
], ids=["one column reached", "3 columns, N=2", "3 columns, N=4"])
def test_exact_infonce_bound_gradient_into_an_unreached_column(p_zz, f, n):
    """Bug: the exact I_N enumerated only the reached columns, so moving mass into a column
    with P(z') = 0 had slope 0 (one column reached) or a wrong one; I_N is smooth there.
    Reference: the one-sided second-order difference (−3 F(0) + 4 F(t) − F(2t)) / (2t) of the
    exact value along d = (+1 at (0, 1), −1 at (0, 0)), t = 1e-5 (truncation t² |F'''|
    ≈ 1e-10); and for the first case the closed form 2 log 2 + 1/2 − 2 log(1 + e)."""
    p_zz, f = np.array(p_zz), np.array(f)
    d = np.zeros_like(p_zz)
    d[0, 1], d[0, 0] = 1.0, -1.0
    value = lambda p: rpmref.infonce_bound(p, f, n, method="exact").estimate  # noqa: E731
    g = grad(value)(p_zz)
    t = 1e-5
    one_sided = (-3 * value(p_zz) + 4 * value(p_zz + t * d) - value(p_zz + 2 * t * d)) / (2 * t)
    assert np.all(np.isfinite(g))
    assert abs(np.sum(g * d) - one_sided) <= RTOL * abs(one_sided) + ATOL
    if p_zz.shape == (2, 2):
        assert np.sum(g * d) == pytest.approx(2 * np.log(2) + 0.5 - 2 * np.log(1 + np.e),
                                              rel=1e-13)


@pytest.mark.parametrize("n", [4, 6, 9])
@pytest.mark.parametrize("p_zz", [[[0.5, 0.0], [0.25, 0.25]], [[0.4, 0.1], [0.1, 0.4]]],
                         ids=["a zero entry", "dense"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_exact_infonce_bound_gradient_at_critic_values_near_1e308(p_zz, n, sign):
    """Bug: at f = 1e308 the gradient in p_zz was inf and NaN (N = 4) or all NaN (N = 6):
    one count vector's slope, ~1e308 times a multinomial coefficient, overflowed although
    the gradient it sums to is ~6e307. Reference: for |f| ≫ 1 the gradient in p_zz grows
    linearly in the scale F of f, so grad / F at F = 1e308 equals grad / F at F = 1e200
    (a scale whose backward pass never nears the float64 range) up to O(1/F) = 1e-200
    relative, far below the 1e-13 asked here (a few ulps over the ~10 count vectors); the
    gradient in f, a difference of probabilities, is the same at both scales."""
    p_zz = np.array(p_zz)
    shape, offset = np.array([[0.0, sign], [0.0, 0.0]]), np.array([[0.0, 0.0], [1.0, 0.0]])

    def slopes(scale):
        f = shape * scale + offset
        in_p = grad(lambda q: rpmref.infonce_bound(q, f, n, method="exact").estimate)(p_zz)
        in_f = grad(lambda g: rpmref.infonce_bound(p_zz, g, n, method="exact").estimate)(f)
        return in_p / scale, in_f

    huge_p, huge_f = slopes(1e308)
    ref_p, ref_f = slopes(1e200)
    assert np.all(np.isfinite(huge_p)) and np.all(np.isfinite(huge_f))
    np.testing.assert_allclose(huge_p, ref_p, rtol=1e-13, atol=1e-13 * np.abs(ref_p).max())
    np.testing.assert_allclose(huge_f, ref_f, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", ["mc", "auto"])
def test_monte_carlo_infonce_bound_refuses_a_traced_p_zz(method):
    """The batches are draws from p_zz, so the Monte Carlo estimate has no gradient in it:
    autograd returned all zeros, silently (and "auto" switched to it under tracing, where
    the plain call was exact). Its gradient in f is still there."""
    p_zz, f = np.array([[0.4, 0.1], [0.1, 0.4]]), 2 * np.eye(2)

    def estimate(q):
        return rpmref.infonce_bound(q, f, 8, method=method, n_batches=50, seed=0,
                                    max_terms=10).estimate
    with pytest.raises(ValueError, match="Monte Carlo, which is not differentiable in p_zz"):
        grad(estimate)(p_zz)
    slope = grad(lambda g: rpmref.infonce_bound(p_zz, g, 8, method="mc", n_batches=50,
                                                seed=0).estimate)(f)
    assert np.all(np.isfinite(slope)) and np.any(slope != 0)


@pytest.mark.parametrize("tiny, q", [(1e-100, 1e-250), (1e-200, 1e-30), (1e-200, 1e-250),
                                     (1e-300, 1e-30)])
def test_rpm_posterior_gradient_where_a_slice_rides_on_a_tiny_encoder_entry(tiny, q):
    """Row 0 of enc is [1, tiny] (summing to 1 in float64), and slice (0, 0) is a point mass
    at (1, 0) for every tiny > 0. Autograd's chain through the normaliser added post/enc and
    −post/enc, ~1/tiny each, which cancel only to eps/tiny: the gradient came out 4.9e83,
    0 or −3.8e286 where it is 0.1347 (a 500-digit mpmath difference gives 0.13474353183).
    References: the point-mass slice's entry has slope exactly 0; the directional
    derivative along d = (+1 at (0, 1), −1 at (0, 0)) is 0.13474353183 (the posterior
    written out in mpmath at 500 digits, one-sided difference at h = 1e-130; quoted to 11
    digits, so ±5e-12). A float64 difference cannot check it more tightly than ~1e-8: the
    value carries ~1e-13 from its log-space path, which a step t turns into 1e-13/t."""
    from autograd import jacobian
    p_xx, enc_prime = np.array([[0.4, 0.1], [0.1, 0.4]]), np.eye(2)
    enc = np.array([[1.0, tiny], [0.0, 1.0]])
    prior = np.array([[0.0, 0.5], [q, 0.5 - q]])
    weights = np.random.default_rng(1).normal(size=(2, 2, 2, 2))

    def value(e):
        return anp.sum(weights * rpmref.rpm_posterior(p_xx, e, enc_prime, prior))
    d = np.zeros((2, 2))
    d[0, 1], d[0, 0] = 1.0, -1.0
    slope = np.sum(grad(value)(enc) * d)
    assert abs(slope - 0.13474353183) <= 5e-12, slope
    jac = jacobian(lambda e: rpmref.rpm_posterior(p_xx, e, enc_prime, prior))(enc)
    assert jac[0, 0, 1, 0][0, 1] == 0.0


@pytest.mark.parametrize("a", [1 / 3, 0.1, 0.123456789])
@pytest.mark.parametrize("tiny", [1e-300, 1e-100, 3e-100, 1e-20])
def test_gradients_in_an_encoder_entry_that_alone_makes_p_z(a, tiny):
    """Only x = 0 reaches z = 0 (enc[0] = [tiny, 1], enc[1] = [0, 1]), so P(z=0) = a·tiny
    and the Bayes ratio enc(0, 0)/P(z=0) = 1/a does not depend on tiny: the likelihood, the
    posterior and the empirical RPM have slope exactly 0 in enc(0, 0). Autograd's chain
    added 1/P(z) through enc and −P(x|z)/P(z) through log P(z), which cancel only to
    eps/P(z): −9.7e83, −2.4e83 and 4096 (at tiny = 1e-20) where the slope is 0.
    The slope of log P_θ(0, 0) in enc(1, 0) is −(1 − a)/(a(1 + a) tiny) by hand (the z = 0
    term is 0.25 enc(0,0)/(a P(z=0)), P(z=0) = a tiny + (1 − a) enc(1, 0), and the sum
    of the terms is 0.25 (1 + a)/a²); its float64 value has a few roundings of O(1)
    factors: 1e-14 relative."""
    from autograd import jacobian
    p_xx = np.array([[a, 0.0], [0.0, 1.0 - a]])
    enc, enc_prime, prior = np.array([[tiny, 1.0], [0.0, 1.0]]), np.eye(2), np.full((2, 2), 0.25)
    likelihood = jacobian(lambda e: rpmref.rpm_log_likelihood(p_xx, e, enc_prime, prior))(enc)
    posterior = jacobian(lambda e: rpmref.rpm_posterior(p_xx, e, enc_prime, prior))(enc)
    empirical = jacobian(lambda e: rpmref.empirical_rpm_pmf(e, enc_prime, prior))(enc)
    assert np.all(likelihood[..., 0, 0] == 0.0), likelihood[..., 0, 0]
    assert np.all(posterior[..., 0, 0] == 0.0), posterior[..., 0, 0]
    assert np.all(empirical[..., 0, 0] == 0.0), empirical[..., 0, 0]
    want = -(1 - a) / (a * (1 + a) * tiny)
    assert abs(likelihood[0, 0, 1, 0] - want) <= 1e-14 * abs(want), (likelihood[0, 0, 1, 0], want)


@pytest.mark.parametrize("t", [1e-100, 1e-20, 3e-8, 0.25])
def test_likelihood_gradient_in_the_data_pmf_where_one_pair_alone_makes_p_z(t):
    """p_xx = diag(t, 1 − t), enc = [[0.75, 0.25], [0, 1]], enc' = I, prior 1/4: x = 0 alone
    makes P(z=0) = 0.75 t, and P_θ(0, 0) = 0.25 + 0.0625 t / (0.25 t + c) with c = p_xx(1, 1)
    held fixed, so ∂ log P_θ(0, 0) / ∂p_xx(0, 0) = 0.0625 c / ((0.25 t + c)² P_θ(0, 0)),
    0.25 as t → 0. Autograd's chain added 2/t through log P(x) log P(x') and −2/t through
    log P(z) log P(z'), which cancel only to eps/t: 0.0 at t = 1e-20 and 1e-100, 7.5e-9 off
    at 3e-8. The hand formula is a few roundings of O(1) numbers: 1e-14 relative."""
    p_xx = np.array([[t, 0.0], [0.0, 1.0 - t]])
    enc, enc_prime, prior = np.array([[0.75, 0.25], [0.0, 1.0]]), np.eye(2), np.full((2, 2), 0.25)
    slope = grad(lambda p: rpmref.rpm_log_likelihood(p, enc, enc_prime, prior)[0, 0])(p_xx)
    c = 1.0 - t
    lik = 0.25 + 0.0625 * t / (0.25 * t + c)
    want = 0.0625 * c / ((0.25 * t + c) ** 2 * lik)
    assert abs(slope[0, 0] - want) <= 1e-14 * want, (slope[0, 0], want)


@pytest.mark.parametrize("seed", [0, 1])
def test_rpm_posterior_can_be_differentiated_twice(seed):
    """The posterior's closed-form backward pass is itself differentiable (written in
    autograd.numpy): a Hessian-vector product in the encoder logits against the central
    difference of the gradient along v (step 1e-5: the file's RTOL/ATOL, as for the
    first-order checks)."""
    from autograd import hessian
    params = random_params(seed)

    def value(enc_logits):
        return OBJECTIVES["rpm_posterior"](dict(params, enc=enc_logits))
    x = params["enc"]
    v = np.random.default_rng(seed + 10).normal(size=x.shape)
    hvp = np.tensordot(hessian(value)(x), v, axes=2)
    central = (grad(value)(x + STEP * v) - grad(value)(x - STEP * v)) / (2 * STEP)
    for analytic, numeric in zip(hvp.ravel(), central.ravel()):
        assert_close(analytic, numeric)


#: name -> F(float32 table) -> scalar, the table being the argument traced
FLOAT32_ARGUMENT = {
    "entropy": lambda q: rpmref.entropy(q),
    "kl_divergence": lambda q: rpmref.kl_divergence(q, np.full(q.shape, 1.0 / q.size)),
    "mutual_information": lambda q: rpmref.mutual_information(q),
    "expected_elbo (prior)": lambda q: rpmref.expected_elbo(
        np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([[0.9, 0.1], [0.2, 0.8]]),
        np.array([[0.9, 0.1], [0.2, 0.8]]), q),
    "infonce_limit (p_zz)": lambda q: rpmref.infonce_limit(q, np.array([[1.0, -2.0],
                                                                          [0.5, 3.0]])),
    "log_partition (f)": lambda q: anp.sum(rpmref.log_partition(
        np.array([[0.4, 0.1], [0.1, 0.4]]), q * 7.0)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_ARGUMENT))
def test_a_traced_float32_argument_is_computed_in_float64_as_a_plain_one(name):
    """value_and_grad on a float32 table gave float32 arithmetic (3.8e-9 off for
    expected_elbo) while the plain call converts to float64: both now compute in float64
    on the same values. The tolerance is a few ulps of O(1) values over ~10 terms (the
    traced and plain paths may order a sum differently)."""
    from autograd import value_and_grad
    fun = FLOAT32_ARGUMENT[name]
    q = np.array([[0.25, 0.125], [0.375, 0.25]], dtype=np.float32)   # exact in float32
    plain = fun(q)
    traced, slope = value_and_grad(fun)(q)
    assert abs(float(traced) - float(plain)) <= 1e-14 * max(1.0, abs(float(plain))), \
        (traced, plain)
    assert np.all(np.isfinite(slope))


def test_a_slope_beyond_float64_is_inf_without_a_warning():
    """Bug: the slope of expected_elbo in a prior entry of 5e-324 where the joint has 0.1
    is ∂/∂q Σ p log q = 0.1 / 5e-324 ≈ 2e322, beyond float64: inf, as returned, but with a
    RuntimeWarning ("overflow encountered in divide") from the backward pass. The other
    slopes are those of p/q at q = 0.5 / (1 + 1e-310 + 5e-324) (0.4/0.5 = 0.8, to rounding)."""
    import warnings
    p_xx, identity = np.array([[0.4, 0.1], [0.1, 0.4]]), np.eye(2)
    prior = np.array([[0.5, 5e-324], [1e-310, 0.5]])
    prior = prior / prior.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        slope = grad(lambda q: rpmref.expected_elbo(p_xx, identity, identity, q))(prior)
    assert slope[0, 1] == np.inf and slope[1, 0] == np.inf    # 0.1 / 1e-310 = 1e309 too
    np.testing.assert_allclose(np.diag(slope), [0.8, 0.8], rtol=4 * np.finfo(float).eps)
