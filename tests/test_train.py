"""The training loop: learning, resume, interruption, NaN handling, checkpoints, CLI.

Runs on tiny videos (16 × 16 frames, 4 hidden channels, 3 × 3 kernels) so every
test takes about a second.
"""
import json
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits
from autograd.test_util import check_grads

from rpmref.balls import checkpoint as ckpt
from rpmref.balls import trainer as T
from rpmref.balls.video import BallsConfig, make_video, save_video
from rpmref.balls.critics import get_critic

SMALL_VIDEO = BallsConfig(n_frames=96, size=16, diameter=3.0)


@pytest.fixture(scope="module")
def video():
    return make_video(SMALL_VIDEO, seed=0)


def small_config(**kw):
    base = dict(critic="rbf", epochs=4, batch_size=16, hidden_channels=4, kernel_size=3,
                dtype="float64", seed=3)
    base.update(kw)
    return T.TrainConfig(**base)


def _same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_objective_gradient_float64(video):
    """check_grads on the whole training objective (encoder + RBF critic + InfoNCE)."""
    frames, _ = video
    config = small_config()
    params = T.init_params(config, np.random.default_rng(0))
    x = np.concatenate([T.layers.to_channel_first(frames[:6]),
                        T.layers.to_channel_first(frames[1:7])], axis=1).astype(np.float64)
    scale = T.coordinate_scale(16, 16)
    for name in ("rbf", "bilinear", "cosine"):
        p = T.init_params(small_config(critic=name), np.random.default_rng(1))
        check_grads(lambda q: T.objective(q, x, get_critic(name), scale)[0],
                    modes=["rev"], order=1)(p)
    assert params["conv1_w"].shape == (4, 3, 3, 3)


def test_short_run_raises_the_estimate(video):
    frames, _ = video
    result = T.train(small_config(epochs=8, dtype="float32"), frames, progress=False)
    est = [row["estimate"] for row in result.history]
    assert len(est) == 8 and all(row["complete"] for row in result.history)
    assert result.history[-1]["step"] == 8 * 6  # 95 pairs in ceil(95/16) = 6 batches per epoch
    assert est[-1] > est[0] + 0.2
    assert all(e <= np.log(16) for e in est)


def test_each_epoch_visits_every_pair_once(video, monkeypatch):
    frames, _ = video
    seen = []
    original = T.train_step

    def spy(params, bn_state, opt_state, x, config, critic, scale):
        seen.append(x.shape[1] // 2)
        return original(params, bn_state, opt_state, x, config, critic, scale)
    monkeypatch.setattr(T, "train_step", spy)
    T.train(small_config(epochs=1), frames, progress=False)
    assert sum(seen) == frames.shape[0] - 1 and max(seen) - min(seen) <= 1


def test_resume_after_interrupt_equals_uninterrupted(video, tmp_path):
    """Ctrl-C after epoch 2 (simulated in on_epoch) writes a checkpoint; --resume then ends
    with exactly the parameters, statistics and history of an uninterrupted run."""
    frames, _ = video
    config = small_config()
    full = T.train(config, frames, out_dir=str(tmp_path / "full"), progress=False)

    def interrupt(epoch, params, bn_state):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        T.train(config, frames, out_dir=str(tmp_path / "cut"), progress=False, on_epoch=interrupt)
    resumed = T.train(config, frames, out_dir=str(tmp_path / "cut"), resume=True, progress=False)
    _same_params(full.params, resumed.params)
    _same_params(full.bn_state, resumed.bn_state)
    assert resumed.history == full.history
    lines = (tmp_path / "cut" / T.METRICS).read_text().splitlines()
    assert [json.loads(line) for line in lines] == full.history


def test_resume_mid_epoch_equals_uninterrupted(video, tmp_path):
    """A run stopped by --steps in the middle of an epoch continues the same pair order."""
    frames, _ = video
    full = T.train(small_config(epochs=3), frames, progress=False)
    T.train(small_config(epochs=3, steps=8), frames, out_dir=str(tmp_path), progress=False)
    resumed = T.train(small_config(epochs=3), frames, out_dir=str(tmp_path), resume=True,
                      progress=False)
    _same_params(full.params, resumed.params)
    assert resumed.history == full.history


def test_non_finite_loss_stops_and_keeps_last_checkpoint(video, tmp_path, monkeypatch):
    frames, _ = video
    config = small_config(epochs=2)
    T.train(config, frames, out_dir=str(tmp_path), progress=False)
    before = (tmp_path / T.CHECKPOINT).read_bytes()
    real = T._GRAD
    calls = []

    def poisoned(params, x, critic, scale):
        g, (loss, est, stats) = real(params, x, critic, scale)
        calls.append(1)
        return g, (np.nan if len(calls) == 3 else loss, est, stats)
    monkeypatch.setattr(T, "_GRAD", poisoned)
    with pytest.raises(T.NonFiniteLossError, match="non-finite loss.*epoch 2.*is kept"):
        T.train(small_config(epochs=4), frames, out_dir=str(tmp_path), resume=True, progress=False)
    assert (tmp_path / T.CHECKPOINT).read_bytes() == before


def test_a_diverging_critic_scale_stops_as_a_non_finite_loss(video):
    """SGD at lr = 1e3 drives the RBF critic's log lengthscale to about −186 within two steps
    (1/ℓ² overflows float32): the run stops with NonFiniteLossError naming the step, as for any
    divergence, and not with the critic's ValueError for a caller's out-of-range parameter
    (which holds only for untraced calls)."""
    frames, _ = video
    config = small_config(epochs=1, critic="rbf", optimizer="sgd", lr=1e3, dtype="float32",
                          batch_size=8)
    with pytest.raises(T.NonFiniteLossError, match=r"training stopped at step \d+ .*non-finite"):
        T.train(config, frames, progress=False)


def test_checkpoint_errors(video, tmp_path):
    frames, _ = video
    T.train(small_config(epochs=1), frames, out_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="another config.*critic"):
        T.train(small_config(critic="bilinear"), frames, out_dir=str(tmp_path), resume=True,
                progress=False)
    with pytest.raises(ValueError, match="different video"):
        T.train(small_config(), frames[::-1].copy(), out_dir=str(tmp_path), resume=True,
                progress=False)
    (tmp_path / T.CHECKPOINT).write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="corrupt"):
        T.train(small_config(), frames, out_dir=str(tmp_path), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        T.train(small_config(), frames, out_dir=str(tmp_path / "empty"), resume=True,
                progress=False)


def test_initial_params_orient_maps_on_the_videos_first_frames(video):
    """The starting point is the random draw, with exactly the maps that layers.orient_maps
    flips on the first PROBE_FRAMES frames turned over; orient_maps=False keeps the draw."""
    frames, _ = video
    raw = T.init_params(small_config(), np.random.default_rng(3))
    _same_params(T.initial_params(small_config(orient_maps=False), frames), raw)
    probe = T.layers.to_channel_first(frames[:T.PROBE_FRAMES])
    _, flipped = T.layers.orient_maps(raw, probe)
    start = T.initial_params(small_config(), frames)
    for k in range(3):
        np.testing.assert_array_equal(start["conv2_w"][k],
                                      -raw["conv2_w"][k] if flipped[k] else raw["conv2_w"][k])
    assert all(np.array_equal(start[n], raw[n]) for n in raw if not n.startswith("conv2"))
    with pytest.raises(TypeError, match="orient_maps must be True or False"):
        T.TrainConfig(orient_maps="yes")


def test_resume_refuses_another_orientation(video, tmp_path):
    frames, _ = video
    T.train(small_config(epochs=1), frames, out_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="another config.*orient_maps"):
        T.train(small_config(epochs=2, orient_maps=False), frames, out_dir=str(tmp_path),
                resume=True, progress=False)


@pytest.mark.parametrize("flags, message", [
    (dict(resume=True), "resume=True needs out_dir"),
    (dict(overwrite=True), "overwrite=True needs out_dir"),
    (dict(resume=True, overwrite=True), "resume=True and overwrite=True need out_dir")])
def test_resume_or_overwrite_without_a_run_directory_names_the_flag_given(video, flags,
                                                                           message):
    """resume=True alone was told "resume=True and overwrite=True need out_dir"."""
    frames, _ = video
    with pytest.raises(ValueError, match=f"^{message} \\(the run directory\\)$"):
        T.train(small_config(epochs=1), frames, progress=False, **flags)


def test_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(2, 3)).astype(np.float32)}
    path = str(tmp_path / "c.npz")
    ckpt.save_checkpoint(path, params, {"m": np.ones(2)}, {"t": np.int64(4)}, np.arange(5),
                         {"epoch": 1, "rng_state": rng.bit_generator.state})
    back = ckpt.load_checkpoint(path)
    np.testing.assert_array_equal(back["params"]["a"], params["a"])
    assert back["params"]["a"].dtype == np.float32 and int(back["opt_state"]["t"]) == 4
    assert back["meta"]["rng_state"] == rng.bit_generator.state
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temp file left behind


def test_encode_untrained_is_inside_the_frame(video):
    frames, _ = video
    config = small_config()
    params = T.init_params(config, 0)
    z = T.encode(params, T.init_bn_state(config), frames, config, batch=40)
    assert z.shape == (frames.shape[0], 6) and z.dtype == np.float64
    assert np.all((z > 0) & (z < 16))


def test_bad_config_and_frames():
    with pytest.raises(ValueError, match="critic must be one of"):
        T.TrainConfig(critic="mlp")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        T.TrainConfig(kernel_size=4)
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        T.TrainConfig(batch_size=1)
    with pytest.raises(ValueError, match=r"frames must be a \(T, C, H, W\)"):
        T.train(T.TrainConfig(), np.zeros((10, 16, 16)), progress=False)


@pytest.mark.parametrize("change, error, message", [
    # NaN frames trained (and gave NaN latents) as long as no batch happened to hold them
    (lambda f: np.where(np.arange(f.size).reshape(f.shape) == 5, np.nan, f), ValueError,
     r"frames must be finite; entry \(0, 0, 0, 5\) is nan"),
    (lambda f: f * 255.0, ValueError, r"frames must be in \[0, 1\].*divide them by 255"),
    (lambda f: f - 0.5, ValueError, r"frames must be in \[0, 1\]; got values from -0.5"),
    # channels last was 'kernel_size 5 is larger than the 32×3 frames'
    (lambda f: f.transpose(0, 2, 3, 1), ValueError, r"looks like \(T, H, W, C\).*transpose"),
])
def test_train_encode_and_initial_params_refuse_frames_they_cannot_use(video, change, error,
                                                                       message):
    frames = change(video[0].astype(np.float64))
    config = T.TrainConfig(steps=1, batch_size=8, hidden_channels=4, kernel_size=3)
    for call in (lambda: T.train(config, frames, progress=False),
                 lambda: T.initial_params(config, frames),
                 lambda: T.encode(T.init_params(config, 0), T.init_bn_state(config), frames,
                                  config)):
        with pytest.raises(error, match=message):
            call()


def test_train_and_initial_params_check_their_other_arguments(video):
    frames = video[0]
    config = T.TrainConfig(steps=1, batch_size=8, hidden_channels=4, kernel_size=3)
    with pytest.raises(TypeError, match="on_epoch must be callable or None; got int"):
        T.train(config, frames, progress=False, on_epoch=5)   # was raised after an epoch
    with pytest.raises(TypeError, match="progress must be True or False"):
        T.train(config, frames, progress="yes")
    with pytest.raises(TypeError, match="config must be a TrainConfig; got dict"):
        T.initial_params({"seed": 0}, frames)                  # was an AttributeError
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        T.initial_params(config, frames, rng=0)


def test_cli_train_and_resume(video, tmp_path, capsys):
    from rpmref.cli import main
    train_path = save_video(str(tmp_path / "train.npz"), *video, SMALL_VIDEO)
    held_path = save_video(str(tmp_path / "held.npz"), *make_video(SMALL_VIDEO, seed=1), SMALL_VIDEO)
    out = str(tmp_path / "run")
    args = ["balls", "train", "--critic", "rbf", "--out", out, "--video", train_path,
            "--heldout-video", held_path, "--batch", "16", "--channels", "4", "--kernel", "3",
            "--no-progress"]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    summary = json.loads(open(os.path.join(out, T.SUMMARY)).read())
    assert summary["steps"] == 12 and summary["epochs_completed"] == 2
    assert set(summary["readout_heldout"]) == {"r2_overall", "r2_per_coordinate", "rmse_px"}
    assert len(open(os.path.join(out, T.METRICS)).read().splitlines()) == 2
    assert "held-out readout R²" in capsys.readouterr().out
    assert main(args + ["--kernel", "4"]) == 2
    assert main(args + ["--critic", "cosine", "--resume"]) == 2
    assert "another config" in capsys.readouterr().err


def _blas_thread_counts():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_threads_are_set_while_training_and_restored_after(video):
    frames, _ = video
    if not _blas_thread_counts():
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        T.train(small_config(epochs=1, blas_threads=1), frames, progress=False,
                on_epoch=lambda *_: seen.append(_blas_thread_counts()))
        assert set(_blas_thread_counts()) == {2}  # put back after training
    assert seen and all(set(counts) == {1} for counts in seen)  # 1 while training


def test_train_config_checks_every_field():
    for kwargs, error, message in [
        (dict(momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (dict(momentum=-0.1), ValueError, "momentum"),
        (dict(bn_momentum=1.5), ValueError, r"bn_momentum must be in \[0, 1\]"),
        (dict(bn_momentum=float("nan")), ValueError, "bn_momentum"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(seed=1.0), TypeError, "seed must be an integer"),
        (dict(epochs=True), TypeError, "epochs must be an integer"),
        (dict(batch_size=np.True_), TypeError, "batch_size must be an integer"),
        (dict(steps=False), TypeError, "steps must be an integer"),
        (dict(lr=True), TypeError, "lr must be a real number"),
        (dict(lr=float("inf")), ValueError, "lr must be a finite real number"),
        (dict(momentum="0.9"), TypeError, "momentum must be a real number"),
        (dict(blas_threads=0), ValueError, "blas_threads must be >= 1"),
        (dict(critic=3), TypeError, "critic must be one of"),
        (dict(critic="rbff"), ValueError, "critic must be one of"),
        (dict(orient_maps=1), TypeError, "orient_maps must be True or False"),
    ]:
        with pytest.raises(error, match=message):
            T.TrainConfig(**kwargs)


def test_train_config_accepts_numpy_numbers_and_stores_python_ones():
    config = T.TrainConfig(epochs=np.int64(3), batch_size=np.int32(8), seed=np.uint8(2),
                           lr=np.float32(0.5), momentum=np.float64(0.5), steps=np.int64(4))
    assert config.epochs == 3 and type(config.epochs) is int and type(config.steps) is int
    assert type(config.lr) is float and config.lr == 0.5
    json.dumps(T._config_dict(config))  # JSON-ready for checkpoints and summaries


def test_encode_refuses_a_bad_batch():
    frames = make_video(SMALL_VIDEO, seed=0)[0]
    config = T.TrainConfig(hidden_channels=2, kernel_size=3)
    params, bn = T.init_params(config, 0), T.init_bn_state(config)
    for bad, error in [(-1, ValueError), (0, ValueError), (True, TypeError), (2.0, TypeError)]:
        with pytest.raises(error, match="batch"):
            T.encode(params, bn, frames, config, batch=bad)
    z = T.encode(params, bn, frames, config, batch=np.int64(5))
    # the same per-pixel sums in chunks of 5 or all 96 frames; only BLAS blocking may reorder
    # a reduction of C·k² = 27 O(1) terms: ≤ ~27 ulps of coordinates ≤ 16 px
    np.testing.assert_allclose(z, T.encode(params, bn, frames, config, batch=17),
                               rtol=0, atol=1e-12)


def test_blas_threads_reach_every_openblas_once_scipy_has_loaded_its_own():
    """SciPy's wheels bring their own OpenBLAS. Once it is loaded, NumPy's must still be
    set: setting only the first library found once left NumPy's at 2 threads in the parent,
    so compare's jobs=1 run differed from the one-thread workers of jobs=2."""
    pytest.importorskip("scipy.linalg")
    with T.blas_threads(1):
        counts = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
                  if lib["internal_api"] == "openblas"}
    if not counts:
        pytest.skip("NumPy is not linked against OpenBLAS")
    assert set(counts.values()) == {1}, counts


def test_encode_refuses_what_it_cannot_encode():
    """Frames of another channel count, non-finite frames, parameters or statistics:
    a ValueError naming what is wrong, before any work (not NaN latents)."""
    frames = make_video(SMALL_VIDEO, seed=0)[0]
    config = T.TrainConfig(hidden_channels=2, kernel_size=3)
    params, bn = T.init_params(config, 0), T.init_bn_state(config)
    with pytest.raises(ValueError, match=r"frames have 1 channel\(s\); the encoder's conv1_w"):
        T.encode(params, bn, frames[:, :1], config)
    nan_frames = frames.copy()
    nan_frames[7, 0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"frames must be finite; entry \(7, 0, 2, 3\) is nan"):
        T.encode(params, bn, nan_frames, config)
    for group, name in (("params", "conv2_w"), ("bn", "bn2_var")):
        p, b = dict(params), dict(bn)
        target = p if group == "params" else b
        target[name] = np.where(np.arange(target[name].size).reshape(target[name].shape) == 1,
                                np.inf, target[name])
        with pytest.raises(ValueError, match=rf"\['{name}'\] must be finite; entry .* is inf"):
            T.encode(p, b, frames, config)


def test_encode_names_what_is_missing_or_not_real():
    frames = make_video(SMALL_VIDEO, seed=0)[0]
    config = T.TrainConfig(hidden_channels=2, kernel_size=3)
    params, bn = T.init_params(config, 0), T.init_bn_state(config)
    without = {k: v for k, v in params.items() if k != "conv1_w"}
    with pytest.raises(ValueError, match="params lacks conv1_w"):
        T.encode(without, bn, frames, config)
    with pytest.raises(ValueError, match="bn_state lacks bn2_var"):
        T.encode(params, {k: v for k, v in bn.items() if k != "bn2_var"}, frames, config)
    for bad, error, pattern in ((None, TypeError, r"params\['conv1_b'\] must be an array of real"),
                                (params["conv1_b"] + 1j, TypeError, r"params\['conv1_b'\] must be real"),
                                (params["conv1_b"] > 0, TypeError, "got dtype bool"),
                                (np.array(["a", "b"], dtype=object), TypeError, "got dtype object")):
        with pytest.raises(error, match=pattern):
            T.encode({**params, "conv1_b": bad}, bn, frames, config)
    with pytest.raises(ValueError, match=r"bn_state\['bn1_var'\] must be ≥ 0 \(a variance\)"):
        T.encode(params, {**bn, "bn1_var": -np.ones(2)}, frames, config)
    with pytest.raises(TypeError, match="params must be a dict"):
        T.encode([params], bn, frames, config)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        T.encode(params, bn, frames, None)
    with pytest.raises(ValueError, match="at least one pixel"):
        T.encode(params, bn, frames[:, :, :, :0], config)


def test_encode_of_no_frames_is_empty_and_of_other_map_counts_is_wider():
    frames = make_video(SMALL_VIDEO, seed=0)[0]
    config = T.TrainConfig(hidden_channels=2, kernel_size=3)
    params, bn = T.init_params(config, 0), T.init_bn_state(config)
    empty = T.encode(params, bn, frames[:0], config)
    assert empty.shape == (0, 6) and empty.dtype == np.float64
    # the same encoder with its third map repeated as a fourth: the same centres, twice
    four = dict(params, conv2_w=np.concatenate([params["conv2_w"], params["conv2_w"][2:]]))
    for name in ("conv2_b", "bn2_gamma", "bn2_beta"):
        four[name] = np.concatenate([params[name], params[name][2:]])
    bn4 = dict(bn, bn2_mean=np.concatenate([bn["bn2_mean"], bn["bn2_mean"][2:]]),
               bn2_var=np.concatenate([bn["bn2_var"], bn["bn2_var"][2:]]))
    z3, z4 = T.encode(params, bn, frames, config), T.encode(four, bn4, frames, config)
    assert z4.shape == (frames.shape[0], 8)
    # the same sums; only BLAS blocking of the wider layer-2 product may reorder one of
    # C₁ = 2 terms: ≤ a few ulps of coordinates ≤ 16 px
    np.testing.assert_allclose(z4[:, :6], z3, rtol=0, atol=1e-12)
    np.testing.assert_allclose(z4[:, 6:], z3[:, 4:], rtol=0, atol=1e-12)
