"""Hostile input to the bouncing-balls Python API: contradictory configs, wrong types,
empty arrays, non-finite values; each must be refused with a message naming the
argument (or give the right answer), never a silent conversion, a NaN or an error
from deep inside NumPy."""
import math

import numpy as np
import pytest

from rpmref.balls import BallsConfig, TrainConfig, initial_params, make_video, train
from rpmref.balls import critics as C
from rpmref.balls import optim
from rpmref.balls import readout as R
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
