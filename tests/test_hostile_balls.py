"""Hostile input to the bouncing-balls Python API: contradictory configs, wrong types,
empty arrays, non-finite values; each must be refused with a message naming the
argument (or give the right answer), never a silent conversion, a NaN or an error
from deep inside NumPy."""
import math

import numpy as np
import pytest

from rpmref.balls import (BallsConfig, TrainConfig, initial_params, load_video, make_video,
                          save_video, train)
from rpmref.balls import checkpoint as ckpt
from rpmref.balls import critics as C
from rpmref.balls import layers as L
from rpmref.balls import optim
from rpmref.balls import readout as R
from rpmref.balls import render as Rn
from rpmref.balls import tracking

TINY_VIDEO = BallsConfig(n_frames=12, size=12, diameter=3.0)


@pytest.fixture(scope="module")
def video():
    return make_video(TINY_VIDEO, seed=0)


def tiny_config(**kw):
    return TrainConfig(**{**dict(steps=1, batch_size=2, hidden_channels=2, kernel_size=3,
                                 dtype="float64"), **kw})


# ---------------------------------------------------------------- BallsConfig

@pytest.mark.parametrize("kwargs, field", [
    (dict(channels="gray", colours=((1, 0, 0), (0, 1, 0), (0, 0, 1))), "colours"),
    (dict(channels="rgb", intensities=(1.0, 0.5, 0.25)), "intensities"),
])
def test_balls_config_refuses_the_other_channels_setting(kwargs, field):
    """colours of a gray video (or intensities of an rgb one) were silently ignored."""
    with pytest.raises(ValueError, match=rf"{field} .*channels="):
        BallsConfig(n_frames=12, size=12, diameter=3.0, **kwargs)


# ---------------------------------------------------------------- trainer

def test_initial_params_refuses_a_video_train_would_refuse(video):
    """No frames gave "range() arg 3 must not be zero" from deep in orient_maps."""
    frames, _ = video
    with pytest.raises(ValueError, match="frames must hold at least 3 frames"):
        initial_params(tiny_config(), frames[:0])
    with pytest.raises(ValueError, match="kernel_size 13 is larger"):
        initial_params(tiny_config(kernel_size=13), frames)


def test_train_out_dir_is_checked_by_name(video, tmp_path, monkeypatch):
    """out_dir=3 was "expected str, bytes or os.PathLike object, not int"; bytes made the
    directory, then failed with "Can't mix strings and bytes in path components"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="out_dir must be a str, os.PathLike or None; got int"):
        train(tiny_config(), video[0], out_dir=3, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert train(tiny_config(), video[0], out_dir=b"run", progress=False).steps == 1
    assert (tmp_path / "run" / "checkpoint.npz").is_file()


# ---------------------------------------------------------------- readout

def test_readout_of_no_frames_names_the_problem(video):
    """(0, n_balls, 2) positions gave NumPy's "cannot reshape array of size 0"."""
    _, positions = video
    z = positions.reshape(len(positions), -1)
    fitted = R.fit_linear_readout(z, positions)
    with pytest.raises(ValueError, match="score_readout needs at least 2 frames"):
        R.score_readout(fitted, z[:0], positions[:0])
    with pytest.raises(ValueError, match="fit_linear_readout needs at least 2 frames"):
        R.fit_linear_readout(z[:0], positions[:0])


# ---------------------------------------------------------------- tracking

def _maps(positions):
    return positions[:, [2, 0, 1]].reshape(len(positions), 6) * 0.5 + 3.0


@pytest.mark.parametrize("convert", [lambda z: z.astype(str), lambda z: z > 5])
def test_tracking_refuses_strings_and_bools(video, convert):
    """Strings were parsed as numbers and bools scored as 0/1."""
    _, positions = video
    z = convert(_maps(positions))
    with pytest.raises(TypeError, match="z_train must be an array of real numbers"):
        tracking.tracking_metrics(z[:8], positions[:8], z[8:], positions[8:], radius=1.5)


def test_tracking_names_the_argument_with_too_few_maps(video):
    """Two maps for three balls said "score must be (K, n_balls) ...", an argument the
    caller never passed; a NaN in z_test was reported as "z"."""
    _, positions = video
    z = _maps(positions)
    with pytest.raises(ValueError, match=r"z_train has 2 maps .* pos_train has 3 balls"):
        tracking.tracking_metrics(z[:8, :4], positions[:8], z[8:, :4], positions[8:], 1.5)
    z_test = z[8:].copy()
    z_test[0, 0] = np.nan
    with pytest.raises(ValueError, match="z_test contains NaN"):
        tracking.tracking_metrics(z[:8], positions[:8], z_test, positions[8:], 1.5)


# ---------------------------------------------------------------- critics

@pytest.mark.parametrize("dim, error", [(True, TypeError), (2.0, TypeError), ("6", TypeError),
                                        (0, ValueError), (-1, ValueError)])
def test_init_critic_params_checks_dim(dim, error):
    """dim=True gave a 1 × 1 W; 2.0 NumPy's "'float' object cannot be interpreted as an
    integer"; 0 an empty W."""
    with pytest.raises(error, match="dim"):
        C.init_critic_params("bilinear", dim=dim)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dtype=np.int64), ValueError, "dtype"), (dict(dtype="banana"), TypeError, "dtype"),
    (dict(rng=0), TypeError, "rng"),
])
def test_init_critic_params_checks_dtype_and_rng(kwargs, error, message):
    """An integer dtype rounded log 0.1 to -2; rng=0 was accepted."""
    with pytest.raises(error, match=message):
        C.init_critic_params("rbf", **kwargs)


def test_infonce_loss_of_a_minus_infinite_positive_is_infinite():
    """A positive pair scored -inf has probability 0: the loss is +inf, not NaN."""
    loss, estimate = C.infonce_loss(np.array([[-np.inf, 0.0], [0.0, 0.0]]))
    assert loss == np.inf and estimate == -np.inf
    # the other rows stay exact: row 1 alone gives log 2
    loss, _ = C.infonce_loss(np.array([[0.0, -np.inf], [0.0, 0.0]]))
    assert loss == pytest.approx(math.log(2) / 2, abs=1e-15)  # one rounding of log 2 / 2


def test_infonce_loss_refuses_bool_scores():
    with pytest.raises(TypeError, match="scores"):
        C.infonce_loss(np.eye(2, dtype=bool))


# ---------------------------------------------------------------- optim

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=True), TypeError, "lr"), (dict(lr="0.1"), TypeError, "lr"),
    (dict(lr=math.nan), ValueError, "lr"), (dict(lr=-1.0), ValueError, "lr"),
    (dict(lr=0.1, beta1=1.0), ValueError, "beta1"), (dict(lr=0.1, beta2=1.0), ValueError, "beta2"),
    (dict(lr=0.1, eps=-1.0), ValueError, "eps"),
])
def test_optim_step_checks_its_numbers(kwargs, error, message):
    """lr=True stepped by 1, lr=nan made every parameter NaN, beta1=1 divided by 0."""
    params = {"w": np.ones(3)}
    with pytest.raises(error, match=message):
        optim.step(params, {"w": np.ones(3)}, optim.init_state(params, "adam"), "adam", **kwargs)


def test_optim_step_checks_its_dicts():
    """Missing gradients or state were a bare KeyError; a list of params an AttributeError."""
    params = {"w": np.ones(3)}
    state = optim.init_state(params, "adam")
    with pytest.raises(ValueError, match="grads lacks 'w'"):
        optim.step(params, {}, state, "adam", 0.1)
    with pytest.raises(ValueError, match="grads\\['w'\\] has shape"):
        optim.step(params, {"w": np.ones(2)}, state, "adam", 0.1)
    with pytest.raises(ValueError, match="state lacks"):
        optim.step(params, {"w": np.ones(3)}, {}, "adam", 0.1)
    with pytest.raises(ValueError, match="state lacks 'v/w'"):
        optim.step(params, {"w": np.ones(3)}, optim.init_state(params, "sgd"), "adam", 0.1)
    with pytest.raises(TypeError, match="params must be a dict"):
        optim.init_state([np.ones(3)], "adam")


# ---------------------------------------------------------------- layers

def _conv_args(n=2):
    rng = np.random.default_rng(0)
    return rng.random((3, n, 6, 6)), rng.normal(size=(2, 3, 3, 3)), rng.normal(size=2)


@pytest.mark.parametrize("change, error, message", [
    (lambda x, w, b: (x.tolist(), w, b), TypeError, "x must be an ndarray"),
    (lambda x, w, b: (x > 0.5, w, b), TypeError, "x must be real"),
    (lambda x, w, b: (x, w + 0j, b), TypeError, "w must be real"),
    (lambda x, w, b: (x[:, :0], w, b), ValueError, "x must hold at least one image"),
])
def test_conv2d_refuses_what_it_cannot_convolve(change, error, message):
    """A list was "'list' object has no attribute 'ndim'", no images "range() arg 3 must
    not be zero"; bool images were convolved as 0/1 and complex kernels accepted."""
    with pytest.raises(error, match=message):
        L.conv2d(*change(*_conv_args()))


@pytest.mark.parametrize("eps, error", [(-1.0, ValueError), (0.0, ValueError),
                                        (math.nan, ValueError), (True, TypeError)])
def test_batchnorm_checks_eps(eps, error):
    """eps=0 on a constant channel gave NaN; eps=True was 1; eps=-1 a NaN when σ² < 1."""
    h = np.random.default_rng(0).normal(size=(2, 2, 4, 4))
    for layer in (L.batchnorm_relu, L.batchnorm_sigmoid_com):
        with pytest.raises(error, match="eps"):
            layer(h, np.ones(2), np.zeros(2), eps=eps)


@pytest.mark.parametrize("change, error, message", [
    (lambda h, g, b: (h, g[:1], b[:1]), ValueError, r"gamma must have shape \(C,\) = \(2,\)"),
    (lambda h, g, b: (h, g, np.zeros(3)), ValueError, r"beta must have shape \(C,\)"),
    (lambda h, g, b: (h[0], g, b), ValueError, r"h must be \(C, N, H, W\)"),
    (lambda h, g, b: (h[:, :0], g, b), ValueError, "at least one channel, image and pixel"),
    (lambda h, g, b: (h.tolist(), g, b), TypeError, "h must be an ndarray"),
    (lambda h, g, b: (h, g.astype(complex), b), TypeError, "gamma must be real"),
])
def test_batchnorm_refuses_what_it_cannot_normalise(change, error, message):
    """A (1,) γ was broadcast over 2 channels, a (C, H, W) h gave a (C, C, H, W) output,
    an empty batch NaN statistics with RuntimeWarnings, a list "no attribute 'shape'"."""
    h = np.random.default_rng(0).normal(size=(2, 2, 4, 4))
    for layer in (L.batchnorm_relu, L.batchnorm_sigmoid_com):
        with pytest.raises(error, match=f"{layer.__name__}: .*{message}"):
            layer(*change(h, np.ones(2), np.zeros(2)))


@pytest.mark.parametrize("call, error, message", [
    (lambda: L.init_encoder_params(0), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: L.init_encoder_params(np.random.default_rng(0), kernel_size=4), ValueError,
     "kernel_size must be odd"),
    (lambda: L.init_encoder_params(np.random.default_rng(0), hidden_channels=0), ValueError,
     "hidden_channels must be >= 1"),
    (lambda: L.init_encoder_params(np.random.default_rng(0), in_channels=True), TypeError,
     "in_channels must be an integer"),
    (lambda: L.init_encoder_params(np.random.default_rng(0), dtype=np.int64), ValueError,
     "dtype must be floating point"),
    (lambda: L.init_bn_state(0), ValueError, "hidden_channels must be >= 1"),
    (lambda: L.init_bn_state(2.0), TypeError, "hidden_channels must be an integer"),
    (lambda: L.init_bn_state(2, n_maps=True), TypeError, "n_maps must be an integer"),
    (lambda: L.init_bn_state(2, dtype=np.int64), ValueError, "dtype must be floating point"),
    (lambda: L.pixel_centres(-1, 3), ValueError, "h must be >= 1"),
    (lambda: L.pixel_centres(True, 3), TypeError, "h must be an integer"),
    (lambda: L.pixel_centres(2, 2.5), TypeError, "w must be an integer"),
    (lambda: L.to_channel_first(np.ones((2, 3, 4))), ValueError, r"frames must be \(N, C, H, W\)"),
])
def test_layer_constructors_check_their_arguments(call, error, message):
    """An int rng was "'int' object has no attribute 'uniform'", an even kernel made
    weights conv2d refuses, 0 channels an OverflowError, 2.5 pixels 3 centres, and an
    integer dtype running variances that round."""
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_per_channel=0), ValueError, "n_per_channel must be >= 1"),
    (dict(n_per_channel=True), TypeError, "n_per_channel must be an integer"),
    (dict(n_per_channel=10, momentum=2.0), ValueError, "momentum"),
    (dict(n_per_channel=10, momentum=math.nan), ValueError, "momentum"),
])
def test_update_bn_state_checks_its_numbers(kwargs, error, message):
    state = L.init_bn_state(2, 3)
    stats = {"bn1_mean": np.zeros(2), "bn1_var": np.ones(2),
             "bn2_mean": np.zeros(3), "bn2_var": np.ones(3)}
    with pytest.raises(error, match=message):
        L.update_bn_state(state, stats, **kwargs)


# ---------------------------------------------------------------- checkpoint

def _save(path, **change):
    args = dict(params={"w": np.ones(2)}, bn_state={"m": np.zeros(2)},
                opt_state={"t": np.array(1)}, perm=[1, 0, 2], meta={"step": 1})
    args.update(change)
    ckpt.save_checkpoint(path, **args)


@pytest.mark.parametrize("change, error, message", [
    (dict(perm=[0.5, 1.5, 2.0]), TypeError, "perm must be integers"),
    (dict(perm=np.arange(6).reshape(2, 3)), ValueError, "perm must be 1-D"),
    (dict(params=[np.ones(2)]), TypeError, "params must be a dict"),
    (dict(params={"w": np.array([None])}), TypeError, r"params\['w'\] must be an array of real"),
    (dict(bn_state={"m": np.array(["a"])}), TypeError, r"bn_state\['m'\] must be an array of real"),
    (dict(meta=[1]), TypeError, "meta must be a dict"),
    (dict(meta={"x": object()}), TypeError, "meta must be JSON"),
    (dict(meta={"x": math.nan}), ValueError, "meta must be JSON"),
])
def test_save_checkpoint_refuses_what_it_cannot_store(tmp_path, change, error, message):
    """perm [0.5, 1.5] was truncated to [0, 1]; an object array was pickled (and then
    unreadable); a NaN in meta was written as the non-JSON 'NaN'; the rest were errors
    from inside json or dict."""
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(error, match=message):
        _save(str(path), **change)
    assert not path.exists()


@pytest.mark.parametrize("path", [3, None])
def test_checkpoint_paths_are_checked_by_name(tmp_path, path):
    """load_checkpoint(3) looked at file descriptor 3; None was a TypeError from os.stat."""
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        ckpt.load_checkpoint(path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        _save(path)


def test_load_checkpoint_of_a_video_says_so(tmp_path):
    """A video .npz was "not a readable rpmref checkpoint ('meta')"."""
    config = BallsConfig(n_frames=4, size=6, diameter=2.0)
    path = save_video(str(tmp_path / "video.npz"), *make_video(config), config)
    with pytest.raises(ckpt.CorruptCheckpointError, match=r"video\.npz .*no 'meta' entry"):
        ckpt.load_checkpoint(path)


# ---------------------------------------------------------------- compare

def _compare_kwargs(**change):
    return {**dict(seeds=(0,), critics=("rbf",), train_config=tiny_config(),
                   balls_config=TINY_VIDEO, progress=False, log=lambda *a: None, jobs=1),
            **change}


@pytest.mark.parametrize("change, error, message", [
    (dict(seeds=0), TypeError, "seeds must be a sequence"),
    (dict(critics="rbf"), TypeError, "critics must be a sequence"),
    (dict(balls_config={}), TypeError, "balls_config must be a BallsConfig"),
    (dict(curve_every=0), ValueError, "curve_every must be >= 1"),
    (dict(curve_every=True), TypeError, "curve_every must be an integer"),
    (dict(curve_every=1.5), TypeError, "curve_every must be an integer"),
    (dict(seeds=(0, 1), figure_seed=True), TypeError, "figure_seed must be an integer"),
    (dict(progress=1), TypeError, "progress must be True or False"),
    (dict(overwrite=1), TypeError, "overwrite must be True or False"),
    (dict(log=3), TypeError, "log must be callable"),
    (dict(title=3), TypeError, "title must be a str"),
    (dict(out_dir=3), TypeError, "out_dir must be a str, os.PathLike or None"),
])
def test_run_compare_checks_its_arguments_before_any_run(tmp_path, monkeypatch, change, error,
                                                         message):
    """curve_every=0 was a ZeroDivisionError after training, balls_config={} an
    AttributeError; True as a figure seed, 1 as progress or overwrite and 1.5 epochs
    between curve points were taken; log=3 failed at the first message."""
    from rpmref.balls import run_compare
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        run_compare(**_compare_kwargs(**change))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, error, message", [
    (dict(learning_rates=(True,)), TypeError, "learning_rates"),
    (dict(learning_rates=("0.1",)), TypeError, "learning_rates"),
    (dict(learning_rates=()), ValueError, "learning_rates must name at least one"),
    (dict(optimisers=()), ValueError, "optimisers must name at least one"),
    (dict(learning_rates=0.1), TypeError, "learning_rates must be a sequence"),
    (dict(optimisers="adam"), TypeError, "optimisers must be a sequence"),
])
def test_run_sweep_checks_its_grid(change, error, message):
    """A learning rate True was 1.0 and '0.1' was parsed; an empty grid was
    "max() arg is an empty sequence" after the videos were made; 'adam' was 4 optimisers."""
    from rpmref.balls import run_sweep
    with pytest.raises(error, match=message):
        run_sweep(**_compare_kwargs(**change))


# ---------------------------------------------------------------- video files

def test_save_video_into_a_missing_directory_names_the_path(video, tmp_path):
    """The error named the hidden temporary file ('.video.npz-1a2b.tmp'), not the path."""
    target = tmp_path / "missing" / "video.npz"
    with pytest.raises(FileNotFoundError, match=r"video\.npz: directory .*missing does not exist"):
        save_video(str(target), *video, TINY_VIDEO)
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.npz is a directory"):
        save_video(str(tmp_path / "dir.npz"), *video, TINY_VIDEO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npz"]
    assert list((tmp_path / "dir.npz").iterdir()) == []


def test_paths_with_a_nul_character_are_refused_by_name(video, tmp_path, monkeypatch):
    """A NUL in a path was "embedded null byte" (from os.stat) without naming the argument,
    and for train's out_dir only once the run began."""
    frames, positions = video
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="path must not contain a NUL character"):
        save_video("a\0b.npz", frames, positions, TINY_VIDEO)
    with pytest.raises(ValueError, match="path must not contain a NUL character"):
        load_video("a\0b.npz")
    with pytest.raises(ValueError, match="out_dir must not contain a NUL character"):
        train(tiny_config(), frames, out_dir="run\0x", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stored", ["null", "1.0", "[1, 2]", '"text"'])
def test_load_video_with_a_config_that_is_not_an_object(video, tmp_path, stored):
    """A config of 1.0 was "'float' object is not iterable"; [1, 2] "unknown config fields"."""
    path = save_video(str(tmp_path / "video.npz"), *video, TINY_VIDEO)
    with np.load(path) as data:
        contents = {k: data[k] for k in data.files}
    contents["config"] = np.array(stored)
    np.savez(path, **contents)
    with pytest.raises(ValueError, match=r"video\.npz has an invalid config: not a JSON object"):
        load_video(path)


# ---------------------------------------------------------------- render

@pytest.mark.parametrize("args, error, message", [
    (([[2.0, 2.0]], True, 4, 4), TypeError, "radius must be a real number"),
    (([[2.0, 2.0]], math.inf, 4, 4), ValueError, "radius must be a finite"),
    (([[2.0, 2.0]], "1", 4, 4), TypeError, "radius must be a real number"),
    (([[math.nan, 2.0]], 1.0, 4, 4), ValueError, "centres must be finite"),
    (([[True, False]], 1.0, 4, 4), TypeError, "centres must be an array of real numbers"),
    (([[2.0, 2.0]], 1.0, 2.5, 4), TypeError, "height must be an integer"),
    (([[2.0, 2.0]], 1.0, 4, 0), ValueError, "width must be >= 1"),
])
def test_disc_coverage_checks_its_arguments(args, error, message):
    """radius=True drew a disc of radius 1, inf was an OverflowError, a NaN centre an
    IndexError from a cast of NaN to an index."""
    with pytest.raises(error, match=message):
        Rn.disc_coverage(*args)


def test_render_frames_checks_colours_against_the_balls():
    """3 colours for 2 balls was an einsum broadcasting error."""
    with pytest.raises(ValueError, match=r"colours must have shape \(n_balls, C\) = \(2, C\)"):
        Rn.render_frames(np.full((1, 2, 2), 2.0), 1.0, 4, 4, np.ones((3, 3)))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(scale=0), ValueError, "scale must be >= 1"), (dict(scale=-1), ValueError, "scale"),
    (dict(scale=2.5), TypeError, "scale must be an integer"),
    (dict(scale=True), TypeError, "scale must be an integer"),
])
def test_frames_to_rgb_uint8_checks_scale(kwargs, error, message):
    """scale=2.5 was taken as 2, True as 1, 0 gave empty images."""
    with pytest.raises(error, match=message):
        Rn.frames_to_rgb_uint8(np.ones((1, 1, 2, 2)), **kwargs)


def test_frames_to_rgb_uint8_refuses_nan_and_strings():
    """NaN pixels became black (0) after a RuntimeWarning; strings a ufunc error."""
    with pytest.raises(ValueError, match="frames must be finite"):
        Rn.frames_to_rgb_uint8(np.full((1, 1, 2, 2), np.nan))
    with pytest.raises(TypeError, match="frames must be an array of real numbers"):
        Rn.frames_to_rgb_uint8(np.full((1, 1, 2, 2), "a"))


@pytest.mark.parametrize("call, error, message", [
    (lambda p: Rn.save_gif(p / "a.gif", np.ones((2, 1, 2, 2)), fps=0), ValueError, "fps"),
    (lambda p: Rn.save_gif(p / "a.gif", np.ones((0, 1, 2, 2))), ValueError,
     "frames must hold at least one frame"),
    (lambda p: Rn.save_preview(p / "a.png", np.ones((0, 1, 4, 4)), np.ones((0, 1, 2))),
     ValueError, "frames must hold at least one frame"),
    (lambda p: Rn.save_preview(p / "a.png", np.ones((2, 1, 4, 4)), np.ones((2, 1, 2)),
                               n_panels=True), TypeError, "n_panels must be an integer"),
    (lambda p: Rn.save_preview(p / "a.png", np.ones((2, 1, 4, 4)), np.ones((3, 1, 2))),
     ValueError, "positions must have shape"),
])
def test_image_writers_check_their_arguments(tmp_path, call, error, message):
    """fps=0 was a ZeroDivisionError, no frames an IndexError, n_panels=True one panel."""
    pytest.importorskip("matplotlib")
    with pytest.raises(error, match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- grid

def test_encoder_z_refuses_eps_zero_and_nan_frames():
    """Training-mode batch norm with eps=0 turned a blank batch (variance 0) into NaN
    latents, and NaN frames gave NaN latents, where encoder_z_eval refuses them."""
    from rpmref.balls import grid
    params = L.init_encoder_params(np.random.default_rng(0), in_channels=1, hidden_channels=2,
                                   kernel_size=3)
    args = [params[name] for name in grid.PARAMS]
    with pytest.raises(ValueError, match="eps must be > 0"):
        grid.encoder_z(np.zeros((1, 4, 6, 6)), *args, eps=0.0)
    x = np.zeros((1, 4, 6, 6))
    x[0, 1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"encoder_z: x must be finite; entry \(0, 1, 2, 3\)"):
        grid.encoder_z(x, *args)
    assert np.all(np.isfinite(grid.encoder_z(np.zeros((1, 4, 6, 6)), *args)))


# ---------------------------------------------------------------- critic functions

@pytest.mark.parametrize("name", C.CRITICS)
def test_critics_check_their_batches(name):
    """z and z' of other widths were a matmul error from inside autograd, a 1-D z an
    AxisError, missing parameters a bare KeyError, a list a TypeError on '**'."""
    critic, params = C.get_critic(name), C.init_critic_params(name)
    z = np.random.default_rng(0).normal(size=(4, 6))
    with pytest.raises(ValueError, match=r"z and z_prime must be \(B, D\) batches of one D"):
        critic(params, z, z[:, :3])
    with pytest.raises(ValueError, match=r"z and z_prime must be \(B, D\)"):
        critic(params, z[0], z[0])
    with pytest.raises(TypeError, match="z must be an array"):
        critic(params, z.tolist(), z)
    with pytest.raises(ValueError, match=f"params lacks {C.CRITIC_PARAMS[name][0]}"):
        critic({}, z, z)


def test_apply_affine_and_map_ball_r2_name_mismatches():
    """A coef of the wrong size was a matmul error from inside NumPy; z_score without
    pos_score said "pos_score must be an array of real numbers, got NoneType"."""
    with pytest.raises(ValueError, match=r"coef must be \(d_in \+ 1, d_out\) = \(3, d_out\)"):
        tracking.apply_affine(np.ones((2, 2)), np.ones((5, 2)))
    with pytest.raises(TypeError, match="coef must be an array of real numbers"):
        tracking.apply_affine(np.ones((3, 2), bool), np.ones((5, 2)))
    z, pos = np.random.default_rng(0).normal(size=(5, 6)), np.ones((5, 3, 2))
    with pytest.raises(ValueError, match="z_score and pos_score go together"):
        tracking.map_ball_r2(z, pos, z)
