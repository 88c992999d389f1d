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
