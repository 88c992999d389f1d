"""Layers of the balls encoder: each fast primitive against an independent computation.

Gradients: autograd.test_util.check_grads (central differences, float64) and
agreement with autograd's own gradient of the plain composition (*_reference).
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads

from rpmref.balls import layers as L


def _rng(seed=0):
    return np.random.default_rng(seed)


def naive_conv(x, w, b):
    """Direct 7-fold loop of out[o,n,i,j] = b[o] + Σ w[o,c,di,dj] x[c,n,i+di−p,j+dj−p]."""
    c_in, n, h, wd = x.shape
    c_out, _, k, _ = w.shape
    p = k // 2
    out = np.zeros((c_out, n, h, wd))
    for o in range(c_out):
        for m in range(n):
            for i in range(h):
                for j in range(wd):
                    s = b[o]
                    for c in range(c_in):
                        for di in range(k):
                            for dj in range(k):
                                ii, jj = i + di - p, j + dj - p
                                if 0 <= ii < h and 0 <= jj < wd:
                                    s += w[o, c, di, dj] * x[c, m, ii, jj]
                    out[o, m, i, j] = s
    return out


@pytest.mark.parametrize("c_in,c_out,k", [(3, 4, 3), (4, 2, 3), (2, 3, 5), (1, 1, 1)])
def test_conv2d_matches_naive_loop(c_in, c_out, k):
    """Both code paths (im2col of x when C_in ≤ C_out, matmul + shifted sums otherwise)."""
    rng = _rng(1)
    x = rng.normal(size=(c_in, 2, 6, 7))
    w = rng.normal(size=(c_out, c_in, k, k))
    b = rng.normal(size=c_out)
    # ≤ c_in·k² = 50 products of normals (Σ|terms| ≲ 50): ≤ 50·u·50 ≈ 3e-13 any order
    np.testing.assert_allclose(L.conv2d(x, w, b), naive_conv(x, w, b), rtol=1e-12, atol=1e-12)


def test_conv2d_chunking_does_not_change_result(monkeypatch):
    """Many small chunks (tiny scratch budget) give the same output and gradients as one chunk."""
    rng = _rng(2)
    x, w, b = rng.normal(size=(3, 3, 9, 8)), rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    w2 = rng.normal(size=(2, 5, 3, 3))
    f = lambda x, w, b, w2: anp.sum(anp.sin(L.conv2d(L.conv2d(x, w, b), w2, b[:2])))
    g_one = grad(f, (0, 1, 2, 3))(x, w, b, w2)
    monkeypatch.setattr(L, "_COL_BYTES", 1)  # forces the 512-column minimum chunk
    monkeypatch.setattr(L, "_chunk_len", lambda rows, itemsize, m: 37)
    g_many = grad(f, (0, 1, 2, 3))(x, w, b, w2)
    # chunks only regroup the same sums (≤ 3·72 = 216 terms of size ≲ 5 for dw):
    # ≤ 216·u·5 ≈ 1.2e-13 absolute either way
    for a, c in zip(g_one, g_many):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c_in,c_out,k", [(3, 4, 3), (4, 2, 3), (2, 2, 5)])
def test_conv2d_gradients(c_in, c_out, k):
    rng = _rng(3)
    x = rng.normal(size=(c_in, 2, 5, 6))
    w = rng.normal(size=(c_out, c_in, k, k))
    b = rng.normal(size=c_out)
    check_grads(L.conv2d, modes=["rev"], order=1)(x, w, b)
    g = rng.normal(size=(c_out, 2, 5, 6))
    for argnum in range(3):
        fast = grad(lambda *a: anp.sum(L.conv2d(*a) * g), argnum)(x, w, b)
        ref = grad(lambda *a: anp.sum(L.conv2d_reference(*a) * g), argnum)(x, w, b)
        # each gradient entry sums ≤ 100 products of normals (N·H·W = 60 for dw, C_out·k²
        # ≤ 100 for dx), Σ|terms| ≲ 100, grouped differently by the two paths:
        # ≤ 100·u·100 ≈ 1.1e-12
        np.testing.assert_allclose(fast, ref, rtol=1e-11, atol=1e-11)


def test_conv2d_bad_arguments():
    x = np.zeros((3, 1, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        L.conv2d(x, np.zeros((2, 3, 2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="channel mismatch"):
        L.conv2d(x, np.zeros((2, 4, 3, 3)), np.zeros(2))


def test_batch_stats_direct_formulas():
    """μ_c = mean over (N, H, W), σ²_c = mean of squared deviations, by explicit loops."""
    rng = _rng(4)
    h = rng.normal(size=(3, 4, 5, 6)) * 3 + 1
    mean, var = L.batch_stats(h)
    for c in range(3):
        vals = [h[c, n, i, j] for n in range(4) for i in range(5) for j in range(6)]
        mu = sum(vals) / len(vals)
        # 120 values of size ≲ 10, mean ≈ 1: ≤ 120·u·Σ|v|/n ≈ 120·u·3 ≈ 4e-14 of |μ| ≳ 0.5
        np.testing.assert_allclose(mean[c], mu, rtol=1e-13)
        np.testing.assert_allclose(var[c], sum((v - mu) ** 2 for v in vals) / len(vals), rtol=1e-12)


def test_batchnorm_normalises_each_channel():
    """With γ = 1, β = 0 every channel of the output has mean 0 and variance σ²/(σ² + ε)."""
    rng = _rng(5)
    h = rng.normal(size=(3, 4, 5, 6)) * np.array([0.1, 1, 10])[:, None, None, None]
    y = L.batchnorm_reference(h, np.ones(3), np.zeros(3))
    _, var = L.batch_stats(h)
    # 120 normalised values of size ≲ 3: their mean is 0 to ≲ 120·u·3 ≈ 4e-14, their
    # variance matches to ≲ 120·u relative ≈ 1.3e-14 (was rtol 1e-10)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2, 3)), var / (var + L.BN_EPS), rtol=1e-12)


def test_batchnorm_relu_values_and_gradients():
    rng = _rng(6)
    h, gamma, beta = rng.normal(size=(3, 2, 4, 5)), rng.normal(size=3), rng.normal(size=3)
    # the fused and plain forms round the same 40-value statistics differently: ≲ 40·u
    # relative ≈ 4e-15 on values ≲ 3
    np.testing.assert_allclose(L.batchnorm_relu(h, gamma, beta),
                               L.batchnorm_relu_reference(h, gamma, beta), rtol=1e-13, atol=1e-14)
    check_grads(L.batchnorm_relu, modes=["rev"], order=1)(h, gamma, beta)
    g = rng.normal(size=h.shape)
    for argnum in range(3):
        fast = grad(lambda *a: anp.sum(L.batchnorm_relu(*a) * g), argnum)(h, gamma, beta)
        ref = grad(lambda *a: anp.sum(L.batchnorm_relu_reference(*a) * g), argnum)(h, gamma, beta)
        # the backward pass subtracts channel means of g and g·ŷ (40 terms ≲ 3): entries
        # near 0 carry ~40·u·3/σ ≈ 1e-14 absolute (atol); the rest ≲ 1e-13 relative
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)


def test_sigmoid_matches_logistic_and_is_stable():
    a = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 800.0])
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-a))
    # ≤ 4 relative roundings each form (e^x is correctly rounded to ~1 ulp): ≲ 1e-15
    np.testing.assert_allclose(L.sigmoid(a), expected, rtol=1e-14, atol=1e-300)
    check_grads(L.sigmoid, modes=["rev"], order=1)(np.linspace(-3, 3, 7))


def test_centre_of_mass_direct_and_gradient():
    rng = _rng(7)
    s = rng.uniform(0.1, 1, size=(3, 2, 4, 5))
    z = L.centre_of_mass(s)  # (N, 6)
    for n in range(2):
        for c in range(3):
            m = s[c, n].sum()
            x = sum(s[c, n, i, j] * (j + 0.5) for i in range(4) for j in range(5)) / m
            y = sum(s[c, n, i, j] * (i + 0.5) for i in range(4) for j in range(5)) / m
            # a ratio of two 20-term positive sums: ≤ 2·20·u ≈ 4.4e-15 relative per side
            np.testing.assert_allclose(z[n, 2 * c:2 * c + 2], [x, y], rtol=1e-13)
    check_grads(L.centre_of_mass, modes=["rev"], order=1)(s)


def test_centre_of_mass_of_rendered_ball():
    """A disc rendered by exact pixel coverage (rpmref.render) has its centre of mass
    within 0.05 px of its true centre, in the generator's pixel coordinates. Not rounding:
    pixel centres stand in for ∫x over each partly covered pixel, a bias that mostly
    cancels around the disc (measured ≤ 0.006 px on these 20 discs)."""
    render = pytest.importorskip("rpmref.balls.render")
    rng = _rng(8)
    centres = rng.uniform(6, 26, size=(20, 2))
    cover = render.disc_coverage(centres, 2.5, 32, 32)  # (20, 32, 32)
    z = L.centre_of_mass(cover[None])  # one map, 20 frames -> (20, 2)
    assert np.max(np.abs(z - centres)) < 0.05


def test_batchnorm_sigmoid_com_values_and_gradients():
    rng = _rng(9)
    h, gamma, beta = rng.normal(size=(3, 2, 4, 5)), rng.normal(size=3), rng.normal(size=3)
    # batch-norm statistics of 40 values, a sigmoid and a ratio of 20-term sums, rounded
    # in another order: ≲ 100·u ≈ 1e-14 relative
    np.testing.assert_allclose(L.batchnorm_sigmoid_com(h, gamma, beta),
                               L.batchnorm_sigmoid_com_reference(h, gamma, beta), rtol=1e-13)
    check_grads(L.batchnorm_sigmoid_com, modes=["rev"], order=1)(h, gamma, beta)
    g = rng.normal(size=(2, 6))
    for argnum in range(3):
        fast = grad(lambda *a: anp.sum(L.batchnorm_sigmoid_com(*a) * g), argnum)(h, gamma, beta)
        ref = grad(lambda *a: anp.sum(L.batchnorm_sigmoid_com_reference(*a) * g), argnum)(h, gamma, beta)
        # as for batchnorm_relu: channel-mean subtractions make near-zero entries absolute
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)


def _small_encoder(seed=10):
    rng = _rng(seed)
    params = L.init_encoder_params(rng, in_channels=2, hidden_channels=3, kernel_size=3)
    params = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}  # γ ≠ 1, β ≠ 0
    x = rng.uniform(size=(2, 4, 6, 6))
    return params, x


def test_whole_encoder_gradients():
    """check_grads on the whole fast encoder, and equality with the plain composition's gradient."""
    params, x = _small_encoder()
    g = _rng(11).normal(size=(4, 6))

    def loss(p, reference=False):
        return anp.sum(L.encoder_train(p, x, reference=reference)[0] * g)
    check_grads(loss, modes=["rev"], order=1)(params)
    fast, ref = grad(loss)(params), grad(lambda p: loss(p, reference=True))(params)
    # two conv + two batch-norm layers: each backward stage sums ≲ 1e3 terms and the
    # batch-norm stages cancel (see above); ≲ 1e-13 per stage relative to the largest
    # term, compounded through 4 stages and a COM ratio: 1e-9 relative, 1e-12 absolute
    for k in params:
        np.testing.assert_allclose(fast[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_eval_mode_equals_train_mode_at_batch_statistics():
    """encoder_eval with running statistics set to the batch's own statistics reproduces
    the training-mode output (an independent, non-autograd code path)."""
    params, x = _small_encoder(12)
    z_train, stats = L.encoder_train(params, x)
    z_eval = L.encoder_eval(params, stats, x)
    # the same statistics applied by another code path: ≲ 100·u ≈ 1e-14 relative
    np.testing.assert_allclose(z_eval, z_train, rtol=1e-12)


def test_running_statistics_update():
    """r ← 0.9 r + 0.1 batch, with the unbiased variance n/(n−1)·σ² (PyTorch's convention)."""
    state = L.init_bn_state(hidden_channels=2, n_maps=3)
    rng = _rng(13)
    stats = {"bn1_mean": rng.normal(size=2), "bn1_var": rng.uniform(size=2),
             "bn2_mean": rng.normal(size=3), "bn2_var": rng.uniform(size=3)}
    new = L.update_bn_state(state, stats, n_per_channel=11, momentum=0.1)
    # ≤ 3 roundings each (0.9·r + 0.1·x·11/10 in either grouping): ≤ 3.3e-16 relative
    np.testing.assert_allclose(new["bn1_mean"], 0.1 * stats["bn1_mean"], rtol=1e-15)
    np.testing.assert_allclose(new["bn2_var"], 0.9 + 0.1 * stats["bn2_var"] * 11 / 10, rtol=1e-15)


def test_float32_forward_close_to_float64():
    params, x = _small_encoder(14)
    z64, _ = L.encoder_train(params, x)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    z32, _ = L.encoder_train(p32, x.astype(np.float32))
    assert z32.dtype == np.float32
    # float32 round-off, not a bug tolerance: u32 = 6e-8 through two ≤ 27-term convs, batch
    # norms over 144 values and a COM ratio, ≲ 100·u32 ≈ 6e-6 relative
    np.testing.assert_allclose(z32, z64, rtol=1e-5)


def _probe_frames(n=24, size=16, seed=0):
    """(3, n, size, size) frames: black background, two non-overlapping coloured squares
    each, so that the summed brightness is 0 or 1 at every pixel."""
    rng = _rng(seed)
    x = np.zeros((3, n, size, size))
    half = size // 2
    for m in range(n):
        for top in (0, half):  # one square in the upper half, one in the lower
            i, j = top + rng.integers(0, half - 2), rng.integers(0, size - 2)
            x[rng.integers(0, 3), m, i:i + 3, j:j + 3] = 1.0
    assert set(np.unique(x.sum(axis=0))) <= {0.0, 1.0}
    return x


def _map_preactivations(params, x):
    """Second-layer pre-activations (n_maps, N, H, W) through the plain compositions."""
    a1 = L.batchnorm_relu_reference(L.conv2d_reference(x, params["conv1_w"], params["conv1_b"]),
                                    params["bn1_gamma"], params["bn1_beta"])
    return np.asarray(L.conv2d_reference(a1, params["conv2_w"], params["conv2_b"]))


def _brightness_covariance(h2, x):
    """Cov(pre-activation of each output map, summed input): (n_maps,)."""
    bright = x.sum(axis=0).ravel()
    return np.array([np.cov(h2[k].ravel(), bright)[0, 1] for k in range(h2.shape[0])])


@pytest.mark.parametrize("seed", range(6))
def test_orient_maps_makes_every_map_bright_on_bright_input(seed):
    x = _probe_frames(seed=seed)
    raw = L.init_encoder_params(_rng(seed), 3, 6, 3, 3)
    oriented, flipped = L.orient_maps(raw, x)
    h2 = _map_preactivations(oriented, x)
    before = _brightness_covariance(_map_preactivations(raw, x), x)
    after = _brightness_covariance(h2, x)
    np.testing.assert_array_equal(flipped, before < 0)
    assert np.all(after > 0)
    # negating conv2's weights negates each pre-activation exactly (negation is exact in
    # floating point); 1e-12 allows only np.cov to sum in another order
    np.testing.assert_allclose(np.abs(after), np.abs(before), rtol=1e-12)
    for name in raw:
        if name in ("conv2_w", "conv2_b"):
            sign = np.where(flipped, -1.0, 1.0).reshape((-1,) + (1,) * (raw[name].ndim - 1))
            np.testing.assert_array_equal(oriented[name], sign * raw[name])
        else:
            assert oriented[name] is raw[name]
    # brightness is 0/1, so a positive covariance means: every map's pre-activation is
    # higher, on average, on lit pixels than on dark ones
    lit = x.sum(axis=0) > 0
    assert all(h2[k][lit].mean() > h2[k][~lit].mean() for k in range(3))
    # orienting twice changes nothing more
    again, flipped_again = L.orient_maps(oriented, x)
    assert not flipped_again.any()
    np.testing.assert_array_equal(again["conv2_w"], oriented["conv2_w"])


def test_orient_maps_keeps_dtype():
    raw = L.init_encoder_params(_rng(1), 3, 4, 3, 3, dtype=np.float32)
    oriented, _ = L.orient_maps(raw, _probe_frames(n=8))
    assert all(oriented[k].dtype == np.float32 for k in oriented)
