"""Critics (Eq. 8, 27, SimCLR cosine) and the in-batch InfoNCE loss (Eq. 6)."""
import math
import warnings

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rpmref.balls import critics as C


def _batch(b=5, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, d)), rng.normal(size=(b, d)), rng


def _params(name, rng):
    p = C.init_critic_params(name)
    return {k: v + 0.3 * rng.normal(size=np.shape(v)) for k, v in p.items()}


def direct_score(name, params, a, b):
    """f(a, b) for one pair, written out per the paper's formula."""
    if name == "bilinear":
        W = params["critic_W"]
        return sum(a[i] * W[i, j] * b[j] for i in range(len(a)) for j in range(len(b)))
    if name == "rbf":
        ell = math.exp(params["critic_log_lengthscale"])
        return -sum((x - y) ** 2 for x, y in zip(a, b)) / (2 * ell ** 2)
    tau = math.exp(params["critic_log_temperature"])
    return (sum(x * y for x, y in zip(a, b))
            / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) / tau)


@pytest.mark.parametrize("name", C.CRITICS)
def test_critic_matches_direct_evaluation(name):
    z, zp, rng = _batch()
    params = _params(name, rng)
    scores = C.get_critic(name)(params, z, zp)
    assert scores.shape == (5, 5)
    for i in range(5):
        for j in range(5):
            # ≤ 36 products of normals (Σ|terms| ≲ 20): ≤ 36·u·20 ≈ 8e-14 absolute, and
            # the rbf/cosine forms carry ≤ ~10 relative roundings (≈ 1e-15). The cosine
            # critic divides by √(‖a‖² + COSINE_EPS), not ‖a‖: relative ½ε_c(1/‖a‖² + 1/‖b‖²)
            guard = 0.5 * C.COSINE_EPS * (1 / (z[i] @ z[i]) + 1 / (zp[j] @ zp[j]))
            np.testing.assert_allclose(scores[i, j], direct_score(name, params, z[i], zp[j]),
                                       rtol=1e-13 + (guard if name == "cosine" else 0),
                                       atol=1e-12)


@pytest.mark.parametrize("name", C.CRITICS)
def test_critic_gradients(name):
    z, zp, rng = _batch(4, 3, seed=1)
    params = _params(name, rng)
    params = {k: v[:3, :3] if k == "critic_W" else v for k, v in params.items()}
    critic = C.get_critic(name)
    check_grads(lambda p, a, b: critic(p, a, b), modes=["rev"], order=1)(params, z, zp)


def test_rbf_is_log_gaussian_up_to_a_constant():
    """Eq. 27: f = log N(z; z', ℓ² I) + (D/2) log(2πℓ²)."""
    z, zp, rng = _batch(3, 6, seed=2)
    params = _params("rbf", rng)
    ell2 = np.exp(2 * params["critic_log_lengthscale"])
    diff = z[:, None, :] - zp[None, :, :]
    log_normal = (-0.5 * np.einsum("ijd,ijd->ij", diff, diff) / ell2
                  - 3 * np.log(2 * np.pi * ell2))
    # adding and removing 3 log(2πℓ²) (≲ 10) costs ~ulp(10) ≈ 2e-15 absolute on scores of
    # size ≳ 0.5 (6-D normals never coincide): ≲ 4e-15 relative; 1e-12 is generous but fixed
    np.testing.assert_allclose(C.rbf(params, z, zp), log_normal + 3 * np.log(2 * np.pi * ell2),
                               rtol=1e-12)


@pytest.mark.parametrize("b", [1, 2, 3, 6, 7, 11, 64, 299])
@pytest.mark.parametrize("c", [3.7, -1e3, 0.0])
def test_constant_critic_gives_log_b(b, c):
    """A constant critic carries no information: the loss is log B *exactly*, so this one
    test compares floats with ==: every term is −log B, with no rounding on the way."""
    loss, estimate = C.infonce_loss(np.full((b, b), c))
    assert loss == math.log(b)
    assert estimate == 0.0


def direct_infonce(scores):
    """−(1/B) Σ_i log( e^{s_ii} / Σ_j e^{s_ij} ), in exact rational-free float arithmetic via math.fsum."""
    b = scores.shape[0]
    total = []
    for i in range(b):
        m = max(scores[i])
        total.append(scores[i, i] - m - math.log(math.fsum(math.exp(s - m) for s in scores[i])))
    return -math.fsum(total) / b


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.just(0)).map(lambda t: (t[0], t[0])),
              elements=st.floats(-50, 50)))
def test_infonce_matches_direct_and_is_bounded(scores):
    """Loss = row-wise cross-entropy with diagonal labels; estimate = log B − loss ≤ log B."""
    loss, estimate = C.infonce_loss(scores)
    # |s| ≤ 50, B ≤ 6: row shifts, a ≤ 6-term log-sum-exp and a mean of ≤ 6 values of size
    # ≤ 100 each side: ≤ 12·u·100 ≈ 1.3e-13 absolute, under the 1e-12 slack everywhere
    np.testing.assert_allclose(loss, direct_infonce(scores), rtol=1e-12, atol=1e-12)
    assert estimate <= math.log(scores.shape[0]) + 1e-12
    assert loss >= -1e-12


def test_infonce_extreme_scores_are_finite():
    s = np.array([[1000.0, -1000.0], [1000.0, 1000.0]])
    loss, _ = C.infonce_loss(s)
    # rows are shifted by their max before any sum, so no value of size 1000 is rounded:
    # ½ log 2 to a few ulp. (Adding 1000 first would be off by ulp(1000)/0.35 ≈ 3e-13.)
    np.testing.assert_allclose(loss, 0.5 * math.log(2), rtol=1e-14)


def test_infonce_gradient():
    rng = np.random.default_rng(3)
    check_grads(lambda s: C.infonce_loss(s)[0], modes=["rev"], order=1)(rng.normal(size=(5, 5)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        C.infonce_loss(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="critic must be one of"):
        C.get_critic("mlp")


@pytest.mark.parametrize("name, key, value", [
    ("rbf", "critic_log_lengthscale", -400.0), ("rbf", "critic_log_lengthscale", math.nan),
    ("cosine", "critic_log_temperature", -800.0), ("cosine", "critic_log_temperature", math.inf),
])
def test_critic_scale_that_overflows_is_refused(name, key, value):
    """log ℓ = −400 made 1/(2ℓ²) = ∞, and the exact 0 distance of z to itself 0·∞ = NaN: a NaN
    loss after RuntimeWarnings, and a gradient of −inf."""
    z = np.random.default_rng(0).normal(size=(3, 6))
    params = {key: np.array(value)}
    with pytest.raises(ValueError, match=rf"params\['{key}'\] must be finite"):
        C.get_critic(name)(params, z, z)
    # traced (training), a scale past float64 is a divergence the trainer reports from the
    # non-finite loss (test_train: test_a_diverging_critic_scale_stops_as_a_non_finite_loss)
    loss = C.infonce_loss(C.get_critic(name)({key: np.array(0.0)}, z, z))[0]
    assert math.isfinite(float(loss))


def test_infonce_scores_a_float64_apart_without_warning():
    """−1e308 − 1e308 overflowed to −inf while rows were shifted: the right loss (that entry
    has weight 0), but with a RuntimeWarning, an error under -W error."""
    s = np.array([[1e308, -1e308, 5e307], [-1e308, 1e308, 1e308], [0.0, -1.7e308, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, _ = C.infonce_loss(s)
        g = grad(lambda t: C.infonce_loss(t)[0])(s)
    # rows 0 and 1 contribute 0 and log 2 exactly; row 2 log(1 + e) − 1 (≤ 2 ulps each)
    expected = (math.log(2) + math.log1p(math.e) - 1) / 3
    assert loss == pytest.approx(expected, rel=1e-15)
    np.testing.assert_allclose(g[1], [0, -1 / 6, 1 / 6], rtol=1e-15)
