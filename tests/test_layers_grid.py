"""The fused training-mode encoder (rpmref.balls.grid) against the plain layer compositions.

Every check compares grid.encoder_z with layers.encoder_train(reference=True),
which autograd differentiates operation by operation, or with central finite
differences (autograd.test_util.check_grads), in float64.
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, make_vjp
from autograd.test_util import check_grads

from rpmref.balls import grid as G
from rpmref.balls import layers as L

ARGNAMES = ("x",) + G.PARAMS


def _case(seed, c0=3, c1=4, k=3, n=3, h=6, w=7, dtype=np.float64):
    """Random input and parameters with γ ≠ 1, β ≠ 0 and non-zero conv biases."""
    rng = np.random.default_rng(seed)
    params = L.init_encoder_params(rng, c0, c1, 3, k)
    params = {name: v + 0.3 * rng.normal(size=v.shape) for name, v in params.items()}
    x = rng.uniform(size=(c0, n, h, w))
    return x.astype(dtype), {name: v.astype(dtype) for name, v in params.items()}


def _args(x, params):
    return (x,) + tuple(params[name] for name in G.PARAMS)


def _reference_z(x, *p):
    return L.encoder_train(dict(zip(G.PARAMS, p)), x, reference=True)[0]


def _fast_z(x, *p, threads=1):
    return G.encoder_z(x, *p, workspace=G.Workspace(threads))


SHAPES = [dict(c0=3, c1=4, k=3, n=3, h=6, w=7),    # C1 > C0
          dict(c0=3, c1=2, k=3, n=2, h=5, w=5),    # fewer hidden than input channels
          dict(c0=1, c1=5, k=5, n=2, h=7, w=6),    # kernel wider than half the image
          dict(c0=2, c1=3, k=1, n=4, h=4, w=3),    # 1 × 1 kernels: no padding at all
          dict(c0=2, c1=3, k=3, n=1, h=9, w=4)]    # one frame: statistics over H·W only


@pytest.mark.parametrize("shape", SHAPES)
def test_values_and_gradients_match_the_reference_composition(shape):
    """Forward z and all nine gradients equal those of the layer-by-layer composition.

    float64: both sides sum at most C·k² ≤ 125 products per convolution output and
    ≤ N·H·W = 63 positions per statistic, so their round-off differs by ~10³·ε ≈ 2e-13
    relative; rtol 1e-10 leaves a margin. A conv bias feeding batch norm has exact
    gradient 0: both sides give round-off, compared against the weight gradients' scale.
    """
    x, params = _case(1, **shape)
    args = _args(x, params)
    np.testing.assert_allclose(_fast_z(*args), _reference_z(*args), rtol=1e-10, atol=0)
    g = np.random.default_rng(2).normal(size=(x.shape[1], 6))
    argnums = tuple(range(len(args)))
    fast = grad(lambda *a: anp.sum(_fast_z(*a) * g), argnums)(*args)
    ref = grad(lambda *a: anp.sum(_reference_z(*a) * g), argnums)(*args)
    for name, f, r in zip(ARGNAMES, fast, ref):
        assert f.shape == r.shape and f.dtype == r.dtype, name
        if name.endswith("_b"):
            scale = np.max(np.abs(ref[ARGNAMES.index(name.replace("_b", "_w"))]))
            assert np.max(np.abs(f)) <= 1e-12 * scale and np.max(np.abs(r)) <= 1e-12 * scale, name
        else:
            np.testing.assert_allclose(f, r, rtol=1e-10, atol=1e-12 * np.max(np.abs(r)),
                                       err_msg=name)


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_gradients_match_finite_differences(shape):
    x, params = _case(3, **shape)
    check_grads(lambda *a: _fast_z(*a), argnum=tuple(range(9)), modes=["rev"], order=1)(
        *_args(x, params))


def test_thread_count_changes_no_bit(monkeypatch):
    """Blocks and their order do not depend on the threads, so neither does any result
    (float32 and many small blocks, where a different summation order would show)."""
    monkeypatch.setattr(G, "BLOCK_BYTES", 1 << 17)
    monkeypatch.setattr(G, "GEMM_MACS", 3 * 10 ** 4)
    x, params = _case(4, c0=3, c1=6, k=5, n=24, h=20, w=20, dtype=np.float32)
    args = _args(x, params)
    g = np.random.default_rng(5).normal(size=(x.shape[1], 6)).astype(np.float32)

    def run(threads):
        ws = G.Workspace(threads)
        vjp, z = make_vjp(lambda *a: G.encoder_z(*a, workspace=ws), tuple(range(9)))(*args)
        return (z,) + vjp(g) + tuple(ws.stats[k] for k in sorted(ws.stats))
    one = run(1)
    blocks, sub = G.Grid(24, 20, 20, 5).blocks(75, 4, 6 * 75)
    assert len(blocks) > 20 and sub < blocks[0][1]  # many blocks, several BLAS calls each
    for threads in (2, 3):
        for a, b in zip(one, run(threads)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threads", [1, 3])
def test_reused_workspace_gives_fresh_results(threads, monkeypatch):
    """Buffers kept from earlier calls (other inputs, other batch sizes) change nothing,
    also where the threads' runs of blocks meet (small blocks: several per pass)."""
    monkeypatch.setattr(G, "BLOCK_BYTES", 1 << 12)
    monkeypatch.setattr(G, "GEMM_MACS", 10 ** 3)
    ws = G.Workspace(threads)
    x, params = _case(6, n=4)
    args = _args(x, params)
    small = _args(x[:, :3], params)
    g = np.random.default_rng(7).normal(size=(4, 6))

    def grads(ws, a, gz):
        vjp, z = make_vjp(lambda *b: G.encoder_z(*b, workspace=ws), tuple(range(9)))(*a)
        return (z,) + vjp(gz)
    expected = grads(G.Workspace(), args, g)
    grads(ws, args, 3 * g)            # same shape, other cotangent
    grads(ws, small, g[:3])           # a smaller batch, then back
    again = grads(ws, (args[0] + 0.0,) + args[1:], g)
    for a, b in zip(expected, again):
        np.testing.assert_array_equal(a, b)


def test_batch_statistics_are_those_of_the_layers():
    """ws.stats: mean and biased variance of each pre-normalisation activation (including
    its conv bias), computed here by layers.batch_stats on the plain compositions."""
    x, params = _case(8, n=5)
    ws = G.Workspace()
    G.encoder_z(*_args(x, params), workspace=ws)
    h1 = L.conv2d_reference(x, params["conv1_w"], params["conv1_b"])
    a1 = L.batchnorm_relu_reference(h1, params["bn1_gamma"], params["bn1_beta"])
    h2 = L.conv2d_reference(a1, params["conv2_w"], params["conv2_b"])
    for name, h in (("bn1", h1), ("bn2", h2)):
        mean, var = L.batch_stats(h)
        np.testing.assert_allclose(ws.stats[name + "_mean"], mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ws.stats[name + "_var"], var, rtol=1e-11)


def test_float32_agrees_with_float64_within_float32_round_off():
    """The float32 primitive is as close to the exact (float64) encoder as the float32
    composition of plain operations is, up to a factor 4.

    Both round every product and partial sum to float32 (ε = 1.2e-7); they differ in
    summation order (blocks, BLAS kernels), which changes the error's constant, not its
    size, so the float32 composition's own error sets the scale. Where that error is
    ~0 by luck (a bias gradient the composition sums to exactly 0), the floor is the
    round-off of one gradient component: a sum of N·H·W = 4096 terms, whose rounding
    errors of random sign add up to ≈ √4096·ε = 64·ε times the gradient scale.
    """
    x, params = _case(9, c0=3, c1=8, k=5, n=16, h=16, w=16)
    args64 = _args(x, params)
    args32 = tuple(a.astype(np.float32) for a in args64)
    exact_args = tuple(a.astype(np.float64) for a in args32)  # the same rounded inputs
    g = np.random.default_rng(10).normal(size=(16, 6))
    argnums = tuple(range(9))
    exact = (_reference_z(*exact_args),) + grad(
        lambda *a: anp.sum(_reference_z(*a) * g), argnums)(*exact_args)
    ref32 = (_reference_z(*args32),) + grad(
        lambda *a: anp.sum(_reference_z(*a) * g.astype(np.float32)), argnums)(*args32)
    fast32 = (_fast_z(*args32),) + grad(
        lambda *a: anp.sum(_fast_z(*a) * g.astype(np.float32)), argnums)(*args32)
    eps = np.finfo(np.float32).eps
    for name, e, r, f in zip(("z",) + ARGNAMES, exact, ref32, fast32):
        if name in ("x",):
            continue
        assert f.dtype == np.float32, name
        scale = np.max(np.abs(e)) if not name.endswith("_b") else np.max(
            np.abs(exact[1 + ARGNAMES.index(name.replace("_b", "_w"))]))
        err_ref = np.max(np.abs(r - e))
        err_fast = np.max(np.abs(f - e))
        assert err_fast <= 4 * err_ref + 64 * eps * scale, (name, err_fast, err_ref, scale)


def test_backward_after_another_forward_pass_raises():
    x, params = _case(11)
    ws = G.Workspace()
    args = _args(x, params)
    vjp, z = make_vjp(lambda *a: G.encoder_z(*a, workspace=ws), 1)(*args)
    G.encoder_z(*args, workspace=ws)
    with pytest.raises(RuntimeError, match="another forward pass"):
        vjp(np.ones_like(z))


def test_bad_arguments():
    x, params = _case(12)
    args = list(_args(x, params))
    with pytest.raises(TypeError, match="dtype"):
        G.encoder_z(*([x.astype(np.float32)] + args[1:]))
    bad = list(args)
    bad[5] = args[5][:, :2]  # conv2_w with the wrong number of input channels
    with pytest.raises(ValueError, match="conv weights"):
        G.encoder_z(*bad)
    bad = list(args)
    bad[4] = args[4][:2]
    with pytest.raises(ValueError, match="bn1_beta"):
        G.encoder_z(*bad)
    with pytest.raises(ValueError, match="threads"):
        G.Workspace(0)


def test_window_views_stay_inside_their_array():
    grid = G.Grid(2, 4, 4, 3)
    src = np.arange(2 * grid.length, dtype=float).reshape(2, grid.length)
    view = G._windows(src, 5, 7, grid)
    assert view[1, 2, 1, 3] == src[1, 5 + 2 * grid.wq + 1 + 3]
    with pytest.raises(IndexError):
        G._windows(src, grid.length - grid.reach, 1, grid)


def _running(seed, c1, c2, dtype=np.float64):
    """Running statistics unlike any batch's: means ≠ 0 (and ≠ the conv biases), variances ≠ 1."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=c1).astype(dtype), rng.uniform(0.5, 2.0, size=c1).astype(dtype),
            rng.normal(size=c2).astype(dtype), rng.uniform(0.5, 2.0, size=c2).astype(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_eval_mode_matches_the_plain_composition(shape):
    """encoder_z_eval equals layers.encoder_eval (plain NumPy: conv, affine, maximum,
    sigmoid, centre of mass) with the same running statistics. float64: each output is a
    sum of ≤ C·k² = 125 products and a COM ratio over ≤ 63 pixels on either side, so the
    two differ by ~10³·ε ≈ 2e-13 relative; rtol 1e-11."""
    x, params = _case(13, **shape)
    running = _running(14, params["conv1_w"].shape[0], 3)
    state = dict(zip(G.RUNNING, running))
    for threads in (1, 2):
        z = G.encoder_z_eval(*_args(x, params), *running, workspace=G.Workspace(threads))
        np.testing.assert_allclose(z, L.encoder_eval(params, state, x), rtol=1e-11, atol=0)


def test_eval_mode_at_the_batch_statistics_is_training_mode():
    """With the batch's own statistics as the running ones, evaluation mode gives the
    training-mode latents (the other route to the same numbers: encoder_z's moments)."""
    x, params = _case(15, n=5)
    ws = G.Workspace()
    z = G.encoder_z(*_args(x, params), workspace=ws)
    running = tuple(ws.stats[name] for name in G.RUNNING)
    np.testing.assert_allclose(G.encoder_z_eval(*_args(x, params), *running), z, rtol=1e-12)


def test_eval_mode_invalidates_a_pending_backward_pass_and_is_thread_blind(monkeypatch):
    monkeypatch.setattr(G, "BLOCK_BYTES", 1 << 12)
    monkeypatch.setattr(G, "GEMM_MACS", 10 ** 3)
    x, params = _case(16, n=6, dtype=np.float32)
    running = _running(17, params["conv1_w"].shape[0], 3, np.float32)
    ws = G.Workspace(2)
    vjp, z = make_vjp(lambda *a: G.encoder_z(*a, workspace=ws), 1)(*_args(x, params))
    two = G.encoder_z_eval(*_args(x, params), *running, workspace=ws)
    with pytest.raises(RuntimeError, match="another forward pass"):
        vjp(np.ones_like(z))
    one = G.encoder_z_eval(*_args(x, params), *running, workspace=G.Workspace(1))
    assert two.dtype == np.float32
    np.testing.assert_array_equal(one, two)


def test_eval_mode_bad_running_statistics():
    x, params = _case(18)
    args = _args(x, params)
    running = list(_running(19, params["conv1_w"].shape[0], 3))
    bad = list(running)
    bad[1] = running[1][:2]
    with pytest.raises(ValueError, match=r"bn1_var must have shape \(4,\)"):
        G.encoder_z_eval(*args, *bad)
    bad = list(running)
    bad[2] = running[2].astype(np.float32)
    with pytest.raises(TypeError, match="bn2_mean must have the dtype of x"):
        G.encoder_z_eval(*args, *bad)
    with pytest.raises(TypeError, match="dtype"):
        G.encoder_z_eval(*((x.astype(np.float32),) + args[1:]), *running)
    with pytest.raises(TypeError, match="encoder_z_eval: x must be floating point; got dtype int64"):
        G.encoder_z_eval(*((x.astype(np.int64),) + args[1:]), *running)
    with pytest.raises(TypeError, match="encoder_z_eval: conv1_b must be a NumPy array; got list"):
        G.encoder_z_eval(*(args[:2] + (list(args[2]),) + args[3:]), *running)
    with pytest.raises(TypeError, match="bn1_mean must be a NumPy array"):
        G.encoder_z_eval(*args, list(running[0]), *running[1:])
    with pytest.raises(TypeError, match="workspace must be a grid.Workspace"):
        G.encoder_z_eval(*args, *running, workspace="abc")
    for eps, error in ((-1e-5, ValueError), (np.nan, ValueError), (np.ones(2), TypeError)):
        with pytest.raises(error, match="eps"):
            G.encoder_z_eval(*args, *running, eps=eps)
    bad = list(running)
    bad[3] = np.where(np.arange(3) == 1, -1.0, running[3])
    with pytest.raises(ValueError, match=r"bn2_var \+ eps must be positive"):
        G.encoder_z_eval(*args, *bad)
    bad = list(running)
    bad[0] = np.where(np.arange(4) == 2, np.nan, running[0])
    with pytest.raises(ValueError, match=r"encoder_z_eval: bn1_mean must be finite; entry 2 is nan"):
        G.encoder_z_eval(*args, *bad)
    inf_x = x.copy()
    inf_x[0, 1, 2, 3] = np.inf
    with pytest.raises(ValueError, match=r"encoder_z_eval: x must be finite; entry \(0, 1, 2, 3\) is inf"):
        G.encoder_z_eval(*((inf_x,) + args[1:]), *running)
    with pytest.raises(ValueError, match="at least one pixel"):
        G.encoder_z_eval(*((x[:, :, :0],) + args[1:]), *running)


def test_eval_mode_of_no_frames_is_empty_and_training_mode_refuses_them():
    x, params = _case(20)
    args = _args(x[:, :0], params)
    running = _running(21, params["conv1_w"].shape[0], 3)
    z = G.encoder_z_eval(*args, *running)
    assert z.shape == (0, 6) and z.dtype == x.dtype
    with pytest.raises(ValueError, match="at least one frame of at least one pixel"):
        G.encoder_z(*args)
    with pytest.raises(TypeError, match="workspace must be a grid.Workspace"):
        G.encoder_z(*_args(x, params), workspace=object())
    with pytest.raises(ValueError, match="eps"):
        G.encoder_z(*_args(x, params), eps=-1.0)
