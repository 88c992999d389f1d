"""Properties of the bouncing-balls code and the conformance kit that the other tests leave open.

Each test checks one property against an independent computation (scalar loops, a
derivation written beside it, or a documented constant), never against numbers read
off the code's own output: the cases are chosen so that a sign, a dropped term, a
transposed kernel, a block-merge formula or a bias correction that is wrong changes
the answer by far more than the tolerance.
"""
import math

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from rpmref.balls import critics as C
from rpmref.balls import grid as G
from rpmref.balls import layers as L
from rpmref.balls import optim
from rpmref.balls import render
from rpmref.balls import tracking
from autograd.tracer import getval

from rpmref.testing import cases as testing_cases
from rpmref.testing import check_infonce
from rpmref.testing import diagnoses
from rpmref.testing.reference import infonce_loss as exact_infonce_loss
from tests.test_layers import naive_conv


# --------------------------------------------------------------------------- scalar loops
_loop_conv = naive_conv   # out[o,n,i,j] = b[o] + Σ w[o,c,di,dj] x[c,n,i+di−p,j+dj−p], scalar loops


def _loop_conv_vjp(x, w, g):
    """(dx, dw, db) of Σ g · conv(x, w, b), derived from the formula of ``_loop_conv``:
    ∂out[o,n,i,j]/∂x[c,n,i',j'] = w[o, c, i' − i + p, j' − j + p] and
    ∂out[o,n,i,j]/∂w[o,c,di,dj] = x[c, n, i + di − p, j + dj − p]; ∂out/∂b[o] = 1."""
    c_in, n, h, wd = x.shape
    c_out, _, k, _ = w.shape
    p = k // 2
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for o in range(c_out):
        for m in range(n):
            for i in range(h):
                for j in range(wd):
                    for c in range(c_in):
                        for di in range(k):
                            for dj in range(k):
                                ii, jj = i + di - p, j + dj - p
                                if 0 <= ii < h and 0 <= jj < wd:
                                    dx[c, m, ii, jj] += w[o, c, di, dj] * g[o, m, i, j]
                                    dw[o, c, di, dj] += x[c, m, ii, jj] * g[o, m, i, j]
    return dx, dw, g.sum(axis=(1, 2, 3))


# --------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize("c_in,c_out,k", [(4, 2, 3), (3, 1, 5), (2, 3, 3)])
def test_conv2d_joint_gradient_of_input_weight_and_bias_matches_the_loop_derivation(c_in, c_out, k):
    """All three gradients requested at once (the path where, with fewer output than
    input channels, dx comes out of the same im2col of g as dw), against the loop
    derivation. Each entry is a float64 sum of ≤ N·H·W = 40 products of O(1) normals:
    round-off ≤ 40·ε·Σ|terms| ≲ 1e-12 absolute; a wrong shift or a flipped kernel
    changes entries by O(1)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(c_in, 2, 4, 5))
    w = rng.normal(size=(c_out, c_in, k, k))
    b = rng.normal(size=c_out)
    g = rng.normal(size=(c_out, 2, 4, 5))
    np.testing.assert_allclose(L.conv2d(x, w, b), _loop_conv(x, w, b), rtol=0, atol=1e-12)
    got = grad(lambda x, w, b: anp.sum(L.conv2d(x, w, b) * g), (0, 1, 2))(x, w, b)
    for name, a, e in zip(("dx", "dw", "db"), got, _loop_conv_vjp(x, w, g)):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-11, err_msg=name)


# --------------------------------------------------------------------------- encoder init
def test_encoder_init_is_uniform_with_bound_one_over_root_fan_in():
    """PyTorch's default: U(−1/√fan_in, 1/√fan_in), fan_in = C_in·k². With 3·25·16 = 1200
    and 16·25·3 = 1200 draws, P(max |w| < 0.95·bound) = 0.95¹²⁰⁰ ≈ 1e-27, so both ends
    of the bound are checked; the mean |w| of U(−a, a) is a/2 (sd of the mean ≈ 0.3a/√1200
    ≈ 0.008a, so ±0.05a is > 6 sd)."""
    params = L.init_encoder_params(np.random.default_rng(5), in_channels=3, hidden_channels=16,
                                   n_maps=3, kernel_size=5)
    for name, fan_in in (("conv1_w", 3 * 25), ("conv2_w", 16 * 25)):
        a = 1.0 / math.sqrt(fan_in)
        w = params[name]
        assert np.abs(w).max() <= a, name
        assert np.abs(w).max() >= 0.95 * a, name
        assert abs(np.abs(w).mean() - a / 2) <= 0.05 * a, name


# --------------------------------------------------------------------------- grid blocks
def _loop_encoder(x, p, eps=G.BN_EPS):
    """z and the batch statistics of conv → BN → ReLU → conv → BN → sigmoid → centre of
    mass, from the loop convolution and NumPy's mean and (biased) var."""
    h1 = _loop_conv(x, p["conv1_w"], p["conv1_b"])
    m1, v1 = h1.mean(axis=(1, 2, 3)), h1.var(axis=(1, 2, 3))
    a1 = np.maximum(p["bn1_gamma"][:, None, None, None] * (h1 - m1[:, None, None, None])
                    / np.sqrt(v1[:, None, None, None] + eps)
                    + p["bn1_beta"][:, None, None, None], 0.0)
    h2 = _loop_conv(a1, p["conv2_w"], p["conv2_b"])
    m2, v2 = h2.mean(axis=(1, 2, 3)), h2.var(axis=(1, 2, 3))
    y = (p["bn2_gamma"][:, None, None, None] * (h2 - m2[:, None, None, None])
         / np.sqrt(v2[:, None, None, None] + eps) + p["bn2_beta"][:, None, None, None])
    s = 1.0 / (1.0 + np.exp(-y))
    c2, n, h, w = s.shape
    z = np.empty((n, 2 * c2))
    for m in range(n):
        for c in range(c2):
            mass = s[c, m].sum()
            z[m, 2 * c] = sum(s[c, m, i, j] * (j + 0.5) for i in range(h) for j in range(w)) / mass
            z[m, 2 * c + 1] = sum(s[c, m, i, j] * (i + 0.5)
                                  for i in range(h) for j in range(w)) / mass
    return z, {"bn1_mean": m1, "bn1_var": v1, "bn2_mean": m2, "bn2_var": v2}


def test_grid_statistics_merged_over_many_blocks_are_those_of_the_whole_batch(monkeypatch):
    """With blocks of 64 positions (GEMM_MACS = BLOCK_BYTES = 1), the batch statistics are
    merged from several blocks of different sizes and means (Chan et al.); they must be
    the plain mean and biased variance over all N·H·W pixels. float64 sums of ≤ 126
    values of O(1): ≲ 1e-13 relative; a dropped between-block term or a wrong weight
    changes the variance or the mean by O(10⁻²) or more."""
    monkeypatch.setattr(G, "GEMM_MACS", 1)
    monkeypatch.setattr(G, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(3)
    c0, c1, k, n, h, w = 2, 3, 3, 3, 6, 7
    params = L.init_encoder_params(rng, c0, c1, 3, k)
    params = {name: v + 0.3 * rng.normal(size=v.shape) for name, v in params.items()}
    # brightness that grows from frame to frame, so that the blocks' means differ
    x = rng.uniform(size=(c0, n, h, w)) + np.arange(n)[None, :, None, None]
    grid = G.Grid(n, h, w, k)
    assert len(grid.blocks(c0 * k * k, 8, c0 * k * k * c1)[0]) >= 3   # several blocks really
    ws = G.Workspace()
    z = G.encoder_z(x, *(params[name] for name in G.PARAMS), workspace=ws)
    z_loop, stats = _loop_encoder(x, params)
    for name, value in stats.items():
        np.testing.assert_allclose(ws.stats[name], value, rtol=1e-11, atol=0, err_msg=name)
    np.testing.assert_allclose(z, z_loop, rtol=1e-11, atol=0)


# --------------------------------------------------------------------------- optimisers
def _adam_by_hand(theta, grads, lr, beta1, beta2, eps):
    """Kingma & Ba (2015), Algorithm 1, on Python floats."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
    return theta


@pytest.mark.parametrize("g_scale", [1.0, 1e-7])
def test_adam_follows_algorithm_1_with_both_bias_corrections(g_scale):
    """Three steps with β₁ = 0.5, β₂ = 0.75, ε = 1e-6 (far from the defaults, so that each
    bias correction is O(1)); gradients of size 1e-7 make ε comparable to √v̂, so ε
    outside the square root is checked too. O(1) arithmetic of a few operations per
    step: 1e-14 relative."""
    g_seq = [np.array([0.3, -2.0]) * g_scale, np.array([-0.1, 1.5]) * g_scale,
             np.array([0.7, 0.2]) * g_scale]
    params = {"w": np.array([1.0, -1.0])}
    state = optim.init_state(params, "adam")
    for g in g_seq:
        params, state = optim.step(params, {"w": g}, state, "adam", lr=0.01, beta1=0.5,
                                   beta2=0.75, eps=1e-6)
    for i in range(2):
        expected = _adam_by_hand(float([1.0, -1.0][i]), [float(g[i]) for g in g_seq], 0.01,
                                 0.5, 0.75, 1e-6)
        assert params["w"][i] == pytest.approx(expected, rel=1e-14, abs=0)
    assert int(state["t"]) == 3


def test_first_adam_step_moves_each_parameter_by_lr_against_the_gradient_sign():
    """Step 1: m̂ = g and v̂ = g², so θ₁ = θ₀ − η·g/(|g| + ε) ≈ θ₀ − η·sign g (Kingma & Ba's
    scale invariance); ε = 1e-8 against |g| ≥ 0.1 shifts it by ≤ 1e-7·η."""
    params = {"w": np.array([0.0, 0.0, 0.0])}
    g = np.array([0.1, -3.0, 50.0])
    new, _ = optim.step(params, {"w": g}, optim.init_state(params, "adam"), "adam", lr=0.05)
    np.testing.assert_allclose(new["w"], -0.05 * np.sign(g), rtol=1e-6, atol=0)


def test_sgd_heavy_ball_accumulates_the_full_gradient():
    """torch.optim.SGD (dampening 0): m₁ = g₁, θ₁ = θ₀ − η g₁; m₂ = μ g₁ + g₂,
    θ₂ = θ₁ − η (μ g₁ + g₂). Exact in binary for these dyadic numbers up to one rounding
    per operation: 1e-15."""
    params = {"w": np.array([1.0, 2.0])}
    state = optim.init_state(params, "sgd")
    g1, g2 = np.array([0.5, -1.0]), np.array([0.25, 2.0])
    params, state = optim.step(params, {"w": g1}, state, "sgd", lr=0.1, momentum=0.5)
    np.testing.assert_allclose(params["w"], [1.0 - 0.05, 2.0 + 0.1], rtol=1e-15)
    params, state = optim.step(params, {"w": g2}, state, "sgd", lr=0.1, momentum=0.5)
    np.testing.assert_allclose(params["w"], [0.95 - 0.1 * (0.25 + 0.25), 2.1 - 0.1 * (-0.5 + 2.0)],
                               rtol=1e-15)


# --------------------------------------------------------------------------- critics
def test_critic_initial_values_are_the_documented_ones():
    """ℓ = 0.1 and τ = 0.1 (a tenth of the frame side; SimCLR's temperature) and W = 4·I
    (init_critic_params' docstring and README)."""
    assert math.exp(float(C.init_critic_params("rbf")["critic_log_lengthscale"])) == \
        pytest.approx(0.1, rel=1e-15)
    assert math.exp(float(C.init_critic_params("cosine")["critic_log_temperature"])) == \
        pytest.approx(0.1, rel=1e-15)
    np.testing.assert_array_equal(C.init_critic_params("bilinear", dim=3)["critic_W"],
                                  4.0 * np.eye(3))


def test_cosine_critic_is_scale_invariant_down_to_small_latents():
    """cos(c·z, z') = cos(z, z') for any c > 0: the norm's regulariser (COSINE_EPS, documented
    as only keeping ‖z‖ > 0) must not bias latents of norm ~1e-3, as collapsing maps give.
    Relative error of √(‖cz‖² + ε) is ½ε/‖cz‖²; allowing 1e-6 accepts any ε ≤ 2e-12 here,
    while a regulariser of 1e-4 would change the scores by ~5 %."""
    rng = np.random.default_rng(4)
    z, zp = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    z *= 1e-3 / np.linalg.norm(z, axis=1, keepdims=True)              # ‖z_i‖ = 1e-3
    params = {"critic_log_temperature": np.asarray(0.0)}
    small = C.cosine(params, z, zp)
    direct = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ \
        (zp / np.linalg.norm(zp, axis=1, keepdims=True)).T
    np.testing.assert_allclose(small, direct, rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------- conformance kit
@pytest.mark.parametrize("kind", ["scores", "embeddings"])
def test_temperature_mistakes_are_applicable_exactly_when_they_change_the_loss(kind):
    """At τ = 1 each temperature mistake gives the exact loss on every case (S/τ = S·τ = S),
    so it cannot be told apart and ``applicable`` must say False; at τ = 0.5 it differs
    from the exact loss by O(1) on some case and must be applicable."""
    critic = "dot" if kind == "embeddings" else None
    for temperature, expected in ((1.0, False), (0.5, True)):
        cases = testing_cases.make_cases(kind, 6, 0, temperature=temperature, critic=critic)
        for code in diagnoses.TEMPERATURE_CODES:
            differences = [abs(diagnoses.transformation_value(code, c)
                               - exact_infonce_loss(c.logits))
                           for c in cases if not c.extreme]
            changes = max(differences) > 1e-6
            assert changes is expected, (code, temperature)
            assert diagnoses.applicable(code, kind, temperature) is expected, (code, temperature)


def _documented_tolerance(logits, b, d):
    """8 ε (B + D + 1) max(1, max |L|) over the finite logits (the module docstring of
    rpmref.testing.conformance and docs/tutorials/conformance.md), ε of float64."""
    finite = np.abs(logits[np.isfinite(logits)])
    return 8 * np.finfo(np.float64).eps * (b + d + 1) * max(1.0, float(finite.max()))


def _right_loss(scores):
    """The exact loss, differentiable by autograd (the trainer's max-shifted form)."""
    return C.infonce_loss(scores)[0]


def test_each_case_is_held_to_the_documented_tolerance():
    report = check_infonce(_right_loss, trials=12)
    assert report.passed
    cases = testing_cases.make_cases("scores", 12, 0)
    assert len(report.results) == len(cases)
    for result, case in zip(report.results, cases):
        assert result.tolerance == pytest.approx(
            _documented_tolerance(case.logits, case.batch_size, 0), rel=1e-12), case.index


@pytest.mark.parametrize("factor,passes", [(3.0, False), (0.25, True)])
def test_gradient_errors_are_held_to_the_same_tolerance(factor, passes):
    """A loss with the exact value (the added term is 0 in value) whose gradient has every
    finite entry off by δ = factor · tol / B: its relative gradient error (relative to the
    natural scale 1/B at τ = 1) is factor · tol. Three tolerances must fail; a quarter
    of one must pass (the autograd round-off of the right gradient is ≲ 1e-15 relative,
    a few hundredths of the smallest tolerance, 8 ε (B + 1) ≥ 7e-15 at B ≥ 3)."""
    def nudged(scores):
        s = getval(scores)
        b = s.shape[0]
        delta = factor * _documented_tolerance(s, b, 0) / b
        finite = np.isfinite(s)              # masked −inf negatives: their gradient is 0
        offset = anp.where(finite, scores - np.where(finite, s, 0.0), 0.0)   # 0 in value
        return _right_loss(scores) + delta * anp.sum(offset)

    report = check_infonce(nudged, trials=10)
    assert report.max_error <= min(r.tolerance for r in report.results)   # values right
    assert report.diagnosis == (None if passes else "gradient")
    assert report.passed is passes, report.gradient
    for r in report.results:        # the relative error is factor · tol (± the round-off)
        assert r.gradient_error == pytest.approx(factor * r.tolerance, rel=0.2), r.index
    assert report.gradient.startswith("FAILED" if not passes else "matches")


def test_nan_on_masked_cases_and_overflow_on_large_ones_is_unstable_not_masked_nan():
    """log Σ e^L without the max shift (e^1000 = inf on the large cases) and a mask multiplied
    into the log-probabilities (0 · (−inf) = NaN on the masked ones): right on every
    ordinary case. 'masked-nan' is for a loss whose *only* failures are NaN on masked
    cases; this one also fails where nothing is masked, so it is 'unstable'."""
    def naive(scores):
        b = scores.shape[0]
        logp = scores - anp.log(anp.sum(anp.exp(scores), axis=1, keepdims=True))
        return -anp.mean(anp.sum(np.eye(b) * logp, axis=1))

    report = check_infonce(naive, trials=20, gradients=False)
    labels = {r.label for r in report.results if not r.error <= r.tolerance}
    assert labels == {"masked", "large"}                 # both kinds of extreme case fail
    assert report.diagnosis == "unstable"


def test_nt_xent_takes_each_anchor_s_softmax_over_its_own_row_for_an_asymmetric_critic():
    """NT-Xent: for each of the 2B anchors v_a of [z; z'], −log of the softmax over the 2B − 1
    others j ≠ a of f(v_a, v_j)/τ, at its other view a ± B; averaged. With f(u, v) = uᵀ W v
    and W not symmetric, f(v_a, v_j) ≠ f(v_j, v_a), so rows and columns differ by O(1).
    Written out with scalar sums; ~2B·2B terms of O(1): 1e-12 is ample."""
    W = np.array([[1.0, 2.0, 0.0], [-1.5, 0.5, 0.3], [0.2, -0.7, 1.1]])

    def critic(a, b):
        return a @ W @ b.T

    tau = 0.5
    for index in (1, 8, 15, 22):                     # the cases of D = 3 (D = 2 + index % 7)
        case = testing_cases.embedding_case(index, 0, tau, critic)
        assert case.dim == 3
        z, z_prime = case.inputs
        v = np.vstack([z, z_prime])
        b2, b = v.shape[0], z.shape[0]
        total = 0.0
        for a in range(b2):
            logit = [sum(v[a, i] * W[i, j] * v[c, j] for i in range(3) for j in range(3)) / tau
                     for c in range(b2)]
            others = [logit[c] for c in range(b2) if c != a]
            top = max(others)
            total += -(logit[(a + b) % b2] - top - math.log(sum(math.exp(t - top) for t in others)))
        assert diagnoses.transformation_value("nt-xent", case) == pytest.approx(total / b2,
                                                                                rel=1e-12), index


# --------------------------------------------------------------------------- tracking
def test_a_map_exactly_one_radius_from_its_ball_counts_as_within(monkeypatch):
    """within_radius is the fraction of frames with ‖calibrated map − ball‖ ≤ radius (closed).
    The calibration is pinned to the exact identity (lstsq's is only near it), and every
    held-out ball sits (3, 4) from its map: distance √25 = 5 exactly, the radius."""
    monkeypatch.setattr(tracking, "fit_affine",
                        lambda source, target: np.vstack([np.eye(2), np.zeros((1, 2))]))
    rng = np.random.default_rng(0)
    z_train, z_test = rng.integers(0, 20, size=(6, 2)).astype(float), \
        rng.integers(0, 20, size=(5, 2)).astype(float)
    scores = tracking.tracking_metrics(z_train, z_train[:, None, :], z_test,
                                       (z_test + [3.0, 4.0])[:, None, :], radius=5.0)
    assert scores["within_radius"] == [1.0]
    scores = tracking.tracking_metrics(z_train, z_train[:, None, :], z_test,
                                       (z_test + [3.0, 4.0])[:, None, :], radius=4.999)
    assert scores["within_radius"] == [0.0]


# --------------------------------------------------------------------------- rendering
def test_rgb_conversion_rounds_to_the_nearest_level():
    """v ↦ round(255 v) (the nearest of the 256 levels), clipped to [0, 1] first:
    0.01 → 2.55 → 3, 0.5 → 127.5 → 128 (half to even), 0.999 → 254.745 → 255."""
    frames = np.array([0.01, 0.5, 0.999, 1.7, -0.2]).reshape(1, 1, 1, 5)
    rgb = render.frames_to_rgb_uint8(frames)
    assert rgb.shape == (1, 1, 5, 3)
    np.testing.assert_array_equal(rgb[0, 0, :, 0], [3, 128, 255, 255, 0])


@pytest.mark.parametrize("temperature,noted", [(None, True), (1.0, True), (0.5, False)])
def test_a_temperature_of_one_is_reported_as_hiding_the_temperature_mistakes(temperature, noted):
    """At τ = 1 (as without one) S/τ = S·τ = S, so no temperature mistake can be seen: the
    report says so; at τ = 0.5 they can, and it does not."""
    def loss(scores, temperature=1.0):
        return _right_loss(scores / temperature)

    options = {} if temperature is None else {"temperature": temperature}
    report = check_infonce(loss, trials=4, **options)
    assert report.passed
    assert any("temperature mistakes cannot be seen" in note for note in report.notes) is noted


@pytest.mark.parametrize("factor,passes", [(3.0, False), (0.25, True)])
def test_cosine_gradient_errors_are_relative_to_the_largest_normalisation_jacobian(factor, passes):
    """For the cosine critic the natural scale of ∂loss/∂z is 1/(Bτ) times the largest norm
    of the Jacobian of z_i ↦ z_i/‖z_i‖, which is (I − u uᵀ)/‖z_i‖ of norm 1/‖z_i‖: so
    1/(B · min_i ‖z_i‖) at τ = 1 (min over the rows of z and z'). Every entry of both
    gradients nudged by δ = factor · tol · that scale gives a relative error of
    factor · tol (± the round-off of the exact gradient, ≲ 1e-15 relative)."""
    def nudged(z, z_prime):
        zv, zpv = getval(z), getval(z_prime)
        unit = [a / anp.sqrt(anp.sum(a ** 2, axis=1, keepdims=True)) for a in (z, z_prime)]
        scores = anp.matmul(unit[0], anp.transpose(unit[1]))
        b, d = zv.shape
        norms = np.linalg.norm(np.vstack([zv, zpv]), axis=1)
        delta = factor * _documented_tolerance(getval(scores), b, d) / (b * norms.min())
        return _right_loss(scores) + delta * (anp.sum(z - zv) + anp.sum(z_prime - zpv))

    report = check_infonce(nudged, kind="embeddings", critic="cosine", trials=8)
    assert report.max_error <= min(r.tolerance for r in report.results)   # values right
    assert report.passed is passes, report.gradient
    for r in report.results:
        assert r.gradient_error == pytest.approx(factor * r.tolerance, rel=0.2), r.index
