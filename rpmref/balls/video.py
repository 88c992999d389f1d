"""Bouncing-balls videos for the experiment of Sec. 5 / Appendix D.

Motion (Appendix D): every ball moves exactly one diameter per frame; its new
direction is the previous direction plus Uniform(−a, a); if the move collides
with a wall (the ball would leave the box) or with another ball (centres closer
than one diameter), the direction is redrawn with the noise range doubled —
±a, ±2a, ±4a, ... — until a move is valid. Choices where the paper is silent:

- Balls move one after another in index order 0, 1, 2, ... within a frame;
  ball b is checked against the *new* positions of balls < b and the *current*
  positions of balls > b, so every frame is collision-free for every pair.
- Collisions are checked at the end point of a move (the paper's moves are
  jumps between frames, not continuous paths). Touching is allowed: a move
  is valid when the centre stays in [r, size − r]² and every centre distance
  is ≥ one diameter.
- The doubled range is capped at the full circle (±π). Drawing repeatedly at
  full range until valid is the same as drawing uniformly from the set of
  valid directions, which is computed exactly (``valid_directions``) and
  sampled directly, so the loop always ends.
- Dead ends: a ball boxed in by a wall and other balls can have *no* valid
  direction. Then the frame being built is discarded *and* the previous
  frame is dropped, and generation continues from the frame before (the
  previous frame's moves are redrawn with fresh random numbers; repeated dead
  ends walk further back; at the first frame the initial state is redrawn).
  No ball ever stays put or takes a shorter step. The count is reported.
- Initial positions: uniform in the box, redrawn until no two balls are
  closer than one diameter; initial directions uniform on the circle.

Pixel coordinates: x = column, y = row; pixel (i, j) covers [j, j+1) × [i, i+1)
and the box is [0, size]²; positions are continuous ball centres (x, y).
"""
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple, Optional

import numpy as np

from rpmref.balls.render import render_frames
from rpmref.balls.rundir import DAMAGED_NPZ_ERRORS, TOO_DEEP, special_file_kind
from rpmref.balls.runstore import replacing
from rpmref.exact.validation import (GeneratorSpec, as_generator, as_real_array, check_choice,
                                     check_finite, check_int, check_path, check_real,
                                     check_shape)

FORMAT = "rpmref-balls-v1"


@dataclass(frozen=True)
class BallsConfig:
    """Settings of a bouncing-balls video (Appendix D; the paper gives no sizes).

    Defaults are chosen so the experiment trains on a CPU in minutes: 32 × 32
    frames with 5-px balls leave the centres a 27 × 27 px range (about 5 steps
    across), so a ball meets a wall every few frames and ~40 % of moves need a
    redraw; three balls are distinguishable by colour (identical balls would
    make "which map is which ball" unidentifiable for a linear readout).

    Counts are stored as Python ints, ``diameter`` and ``noise`` as Python floats and
    ``colours`` / ``intensities`` as tuples of floats, whatever (NumPy) types were
    passed, so a config compares, hashes and saves as JSON alike.

    Parameters
    ----------
    n_frames : int, default 900
        Frames of the one continuous video (Appendix D).
    n_balls : int, default 3
        Number of balls (Appendix D).
    size : int, default 32
        Frame height = width, in pixels; at least two diameters.
    diameter : float, default 5.0
        Ball diameter = step length per frame, in pixels.
    noise : float, default π/8
        a: the direction noise is Uniform(−a, a), in radians (0 < a ≤ π).
    channels : {"rgb", "gray"}, default "rgb"
        "rgb": one colour per ball; "gray": one channel.
    colours : tuple, optional
        rgb only: (n_balls, 3) in [0, 1], no ball black; None = red, green, blue.
    intensities : tuple, optional
        gray only: (n_balls,) in (0, 1]; None = evenly 1.0 .. 0.4.

    Raises
    ------
    TypeError
        If a count is not an integer (bool and floats such as 3.0 included),
        ``diameter`` or ``noise`` is not a real number (bool included), ``channels``
        is not a string, or ``colours`` / ``intensities`` are not arrays of real numbers.
    ValueError
        If a count is below 1, ``diameter`` is not positive and finite, ``size``
        is below two diameters, ``noise`` is outside (0, π], ``channels`` is not
        "rgb" or "gray", ``colours`` / ``intensities`` have the wrong shape or range, or
        ``colours`` are given for "gray" (``intensities`` for "rgb").

    Examples
    --------
    >>> from rpmref import BallsConfig
    >>> BallsConfig(n_frames=24, size=16, diameter=3.0).n_balls
    3
    >>> BallsConfig(noise=4.0)
    Traceback (most recent call last):
    ...
    ValueError: noise must be in (0, pi] radians; got 4.0
    """
    n_frames: int = 900           # one continuous video (Appendix D)
    n_balls: int = 3              # three balls (Appendix D)
    size: int = 32                # frame height = width, pixels
    diameter: float = 5.0         # ball diameter = step length per frame, pixels
    noise: float = math.pi / 8    # a: direction noise Uniform(-a, a), radians (0 < a <= pi)
    channels: str = "rgb"         # "rgb": one colour per ball; "gray": one channel
    colours: Optional[tuple] = None      # rgb: (n_balls, 3) in [0, 1]; None = red, green, blue
    intensities: Optional[tuple] = None  # gray: (n_balls,) in (0, 1]; None = evenly 1.0 .. 0.4

    def __post_init__(self):
        # Python ints and floats whatever was passed (NumPy scalars too), so the config
        # compares, hashes and saves as JSON the same way
        for name in ("n_frames", "n_balls", "size"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=1))
        diameter = check_real(self.diameter, "diameter")  # bool, str: TypeError; nan: ValueError
        if diameter <= 0:
            raise ValueError(f"diameter must be a positive number; got {diameter!r}")
        object.__setattr__(self, "diameter", diameter)
        if self.size - self.diameter < self.diameter:
            raise ValueError(f"size must be at least two diameters so a ball can move; "
                             f"got size={self.size}, diameter={self.diameter}")
        noise = check_real(self.noise, "noise")
        if not 0 < noise <= math.pi:
            raise ValueError(f"noise must be in (0, pi] radians; got {noise!r}")
        object.__setattr__(self, "noise", noise)
        check_choice(self.channels, "channels", ("rgb", "gray"))
        # a setting of the other channels would be ignored: refuse it rather than drop it
        if self.channels == "gray" and self.colours is not None:
            raise ValueError("colours are for channels='rgb'; a gray video takes intensities "
                             "(BallsConfig(channels='gray', intensities=...))")
        if self.channels == "rgb" and self.intensities is not None:
            raise ValueError("intensities are for channels='gray'; an rgb video takes colours "
                             "(BallsConfig(channels='rgb', colours=...))")
        # freeze list-valued fields (e.g. from JSON) into tuples so the config stays hashable
        if self.colours is not None:
            colours = as_real_array(self.colours, "colours", ndim=2)
            object.__setattr__(self, "colours", tuple(tuple(row) for row in colours.tolist()))
        if self.intensities is not None:
            intensities = as_real_array(self.intensities, "intensities", ndim=1)
            object.__setattr__(self, "intensities", tuple(intensities.tolist()))
        ball_colours(self)  # validates colours / intensities against n_balls


def _check_config(config, name="config"):
    """``config`` if it is a BallsConfig, else TypeError naming ``name``."""
    if not isinstance(config, BallsConfig):
        hint = f" (build one with BallsConfig(**{name}))" if isinstance(config, dict) else ""
        raise TypeError(f"{name} must be a BallsConfig; got {type(config).__name__}{hint}")
    return config


def ball_colours(config):
    """The colour of each ball: (n_balls, 3) for "rgb", (n_balls, 1) for "gray".

    Defaults: red, green, blue (rgb, at most 3 balls); intensities evenly from 1.0
    to 0.4 (gray).

    Parameters
    ----------
    config : BallsConfig
        The video's settings.

    Returns
    -------
    ndarray of float64, shape (n_balls, C)
        Colours in [0, 1].

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig.
    ValueError
        For more than 3 rgb balls without ``colours``, or colours / intensities of
        the wrong shape or range (black balls included).

    Examples
    --------
    >>> from rpmref.balls import BallsConfig
    >>> from rpmref.balls.video import ball_colours
    >>> ball_colours(BallsConfig(channels="gray"))
    array([[1. ],
           [0.7],
           [0.4]])
    """
    n = _check_config(config).n_balls
    if config.channels == "rgb":
        if config.colours is None:
            if n > 3:
                raise ValueError(f"n_balls={n} rgb balls need colours (BallsConfig(colours=...): "
                                 f"the default colours cover 3); or use channels='gray' "
                                 f"(--gray on the command line)")
            return np.eye(3)[:n]
        colours = np.asarray(config.colours, dtype=np.float64)
        if colours.shape != (n, 3):
            raise ValueError(f"colours must have shape (n_balls, 3) = ({n}, 3); got {colours.shape}")
        if not np.all((colours >= 0) & (colours <= 1)) or np.any(colours.max(axis=1) <= 0):
            raise ValueError("colours must be in [0, 1] and no ball may be black")
        return colours
    if config.intensities is None:
        return np.linspace(1.0, 0.4, n)[:, None] if n > 1 else np.ones((1, 1))
    intensities = np.asarray(config.intensities, dtype=np.float64)
    if intensities.shape != (n,):
        raise ValueError(f"intensities must have n_balls = {n} entries; got {intensities.shape}")
    if not np.all((intensities > 0) & (intensities <= 1)):
        raise ValueError(f"intensities must be in (0, 1]; got {config.intensities}")
    return intensities[:, None]


# ---------------------------------------------------------------- motion

def step(position, theta, diameter):
    """Centre (x, y) after moving one diameter from ``position`` in direction theta.

    Parameters
    ----------
    position : sequence of float
        (x, y).
    theta : float
        Direction, in radians (0 = +x, π/2 = +y, i.e. down the rows).
    diameter : float
        The step length.

    Returns
    -------
    tuple of float
        The new (x, y).

    Raises
    ------
    TypeError
        If ``position`` is not an array of real numbers, or ``theta`` or ``diameter``
        is not a real number.
    ValueError
        If ``position`` is not (x, y) or not finite, ``theta`` is not finite, or
        ``diameter`` is not positive and finite.

    Examples
    --------
    >>> from rpmref.balls.video import step
    >>> step((1.0, 2.0), 0.0, 3.0)
    (4.0, 2.0)
    """
    position = _check_position(position)
    return _step(position, check_real(theta, "theta"), _check_length(diameter, "diameter"))


def _step(position, theta, diameter):
    return (position[0] + diameter * math.cos(theta), position[1] + diameter * math.sin(theta))


def _check_position(position, name="position"):
    """(x, y) as a tuple of finite Python floats."""
    arr = as_real_array(position, name, ndim=1)
    check_shape(arr, name, (2,), "the centre (x, y)")
    return float(arr[0]), float(arr[1])


def _check_others(others):
    """The other balls' centres as a finite (m, 2) float64 array (m = 0 for an empty one)."""
    arr = as_real_array(others, "others", allow_empty=True)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"others must have shape (m, 2) (the centres of the other balls), "
                         f"got {arr.shape}")
    return arr


def _check_length(value, name):
    """A positive finite length as a Python float."""
    value = check_real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return value


def is_valid_move(position, theta, others, diameter, size):
    """Whether one move keeps the ball inside the frame and clear of the others.

    The centre after the move must lie in [r, size − r]² and at least one diameter
    from every centre in ``others``.

    Parameters
    ----------
    position : sequence of float
        (x, y) before the move.
    theta : float
        Direction, in radians.
    others : array_like, shape (m, 2)
        Centres of the other balls.
    diameter : float
        Ball diameter = step length.
    size : float
        Frame side.

    Returns
    -------
    bool
        True if the move is valid.

    Raises
    ------
    TypeError
        If ``position`` or ``others`` is not an array of real numbers, or ``theta``,
        ``diameter`` or ``size`` is not a real number.
    ValueError
        If ``position`` is not (x, y), ``others`` not (m, 2), a value is not finite,
        or ``diameter`` or ``size`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.video import is_valid_move
    >>> no_others = np.zeros((0, 2))
    >>> is_valid_move((8.0, 8.0), 0.0, no_others, 3.0, 16), is_valid_move((14.0, 8.0), 0.0, no_others, 3.0, 16)
    (True, False)
    """
    return _is_valid_move(_check_position(position), check_real(theta, "theta"),
                          _check_others(others), _check_length(diameter, "diameter"),
                          _check_length(size, "size"))


def _is_valid_move(position, theta, others, diameter, size):
    r = 0.5 * diameter
    x, y = _step(position, theta, diameter)
    if not (r <= x <= size - r and r <= y <= size - r):
        return False
    d2 = diameter * diameter
    return all((x - qx) ** 2 + (y - qy) ** 2 >= d2 for qx, qy in others)


def valid_directions(position, others, diameter, size):
    """The exact set of valid directions as closed intervals [(lo, hi), ...] in [0, 2π).

    Every constraint has the form u·n ≤ κ, u = (cos θ, sin θ): a wall with
    inward distance s from the centre gives n = outward normal, κ = s/d; another
    ball at distance δ in direction n gives κ = δ/(2d) (from |p + d u − q|² ≥ d²).
    It excludes the open arc |θ − angle(n)| < arccos κ (nothing if κ ≥ 1, all if
    κ < −1); the valid set is the complement of the union of these arcs.

    Parameters
    ----------
    position : sequence of float
        (x, y) of the ball.
    others : array_like, shape (m, 2)
        Centres of the other balls.
    diameter : float
        Ball diameter = step length.
    size : float
        Frame side.

    Returns
    -------
    list of tuple of float
        Disjoint intervals (lo, hi), sorted; empty if no move is valid.

    Raises
    ------
    TypeError
        If ``position`` or ``others`` is not an array of real numbers, or
        ``diameter`` or ``size`` is not a real number.
    ValueError
        If ``position`` is not (x, y), ``others`` not (m, 2), a value is not finite,
        or ``diameter`` or ``size`` is not positive.

    Examples
    --------
    A ball touching the left wall may move anywhere to the right:

    >>> import math
    >>> import numpy as np
    >>> from rpmref.balls.video import valid_directions
    >>> intervals = valid_directions((1.5, 8.0), np.zeros((0, 2)), 3.0, 16)
    >>> [(round(lo / math.pi, 12), round(hi / math.pi, 12)) for lo, hi in intervals]
    [(0.0, 0.5), (1.5, 2.0)]
    """
    return _valid_directions(_check_position(position), _check_others(others),
                             _check_length(diameter, "diameter"), _check_length(size, "size"))


def _valid_directions(position, others, diameter, size):
    px, py = position
    r = 0.5 * diameter
    constraints = [(math.pi, (px - r) / diameter), (0.0, (size - r - px) / diameter),
                   (-0.5 * math.pi, (py - r) / diameter), (0.5 * math.pi, (size - r - py) / diameter)]
    for qx, qy in others:
        delta = math.hypot(qx - px, qy - py)
        constraints.append((math.atan2(qy - py, qx - px), delta / (2.0 * diameter)))
    two_pi = 2.0 * math.pi
    arcs = []
    for phi, kappa in constraints:
        if kappa >= 1.0:
            continue
        if kappa < -1.0:
            return []
        half = math.acos(kappa)
        start = (phi - half) % two_pi
        end = start + 2.0 * half
        if end > two_pi:  # wraps past 2π: split in two
            arcs += [(start, two_pi), (0.0, end - two_pi)]
        else:
            arcs.append((start, end))
    arcs.sort()
    intervals, cursor = [], 0.0
    for start, end in arcs:
        if start > cursor:
            intervals.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < two_pi:
        intervals.append((cursor, two_pi))
    return intervals


def _uniform_from_intervals(intervals, rng):
    lengths = [hi - lo for lo, hi in intervals]
    u = rng.uniform(0.0, sum(lengths))
    for (lo, hi), length in zip(intervals, lengths):
        if u <= length:
            return lo + u
        u -= length
    return intervals[-1][1]


def draw_direction(position, previous, others, config, rng):
    """Draw one move's direction by the Appendix D rule.

    Tries previous + Uniform(−h, h) for h = a, 2a, 4a, ... while h < π (one
    draw per range); then draws uniformly from the exact valid set (equal in
    distribution to redrawing at full range h = π until valid).

    Parameters
    ----------
    position : array_like, shape (2,)
        Centre of the moving ball.
    previous : float
        Its previous direction, in radians.
    others : array_like, shape (m, 2)
        Centres of the other balls.
    config : BallsConfig
        ``noise`` (a), ``diameter`` and ``size``.
    rng : numpy.random.Generator
        The generator.

    Returns
    -------
    theta : float or None
        The direction in [−π, π], or None for a dead end.
    attempts : list of tuple of float
        (h, direction drawn, wrapped to [−π, π]) in order; all but an accepted
        last collide.

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig, ``rng`` not a numpy.random.Generator,
        ``position`` or ``others`` not an array of real numbers, or ``previous``
        not a real number.
    ValueError
        If ``position`` is not (x, y), ``others`` not (m, 2), or a value is not finite.

    Examples
    --------
    In open space the first draw is accepted, within a = π/8 of the previous direction:

    >>> import math
    >>> import numpy as np
    >>> from rpmref.balls import BallsConfig
    >>> from rpmref.balls.video import draw_direction
    >>> config = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> theta, attempts = draw_direction(np.array([8.0, 8.0]), 0.0, np.zeros((0, 2)), config,
    ...                                  np.random.default_rng(0))
    >>> len(attempts), abs(theta) < math.pi / 8
    (1, True)
    """
    return _draw_direction(_check_position(position), check_real(previous, "previous"),
                           _check_others(others), _check_config(config),
                           GeneratorSpec().validate(rng, "rng", {}))


def _draw_direction(position, previous, others, config, rng):
    d, size = config.diameter, config.size
    half, attempts = config.noise, []
    while half < math.pi:
        theta = math.remainder(previous + rng.uniform(-half, half), 2.0 * math.pi)
        attempts.append((half, theta))
        if _is_valid_move(position, theta, others, d, size):
            return theta, attempts
        half *= 2.0
    intervals = _valid_directions(position, others, d, size)
    if sum(hi - lo for lo, hi in intervals) > 1e-12:
        for _ in range(100):  # guards against rounding at interval ends
            theta = math.remainder(_uniform_from_intervals(intervals, rng), 2.0 * math.pi)
            attempts.append((math.pi, theta))
            if _is_valid_move(position, theta, others, d, size):
                return theta, attempts
    return None, attempts


def _initial_state(config, rng, max_tries=20_000):
    """Uniform centres, redrawn one ball at a time until ≥ one diameter from
    those already placed; uniform directions. (n_balls, 2), (n_balls,)."""
    r, size, d = 0.5 * config.diameter, config.size, config.diameter
    placed = []
    # disjoint discs of radius r inside the frame need n π r² ≤ size²
    if config.n_balls * math.pi * r * r <= size * size:
        for _ in range(max_tries):
            candidate = rng.uniform(r, size - r, size=2)
            if all(math.hypot(*(candidate - q)) >= d for q in placed):
                placed.append(candidate)
                if len(placed) == config.n_balls:
                    directions = rng.uniform(-math.pi, math.pi, size=config.n_balls)
                    return np.array(placed), directions
    raise ValueError(f"could not place {config.n_balls} balls of diameter {d} without "
                     f"overlap in a {size}x{size} box; use fewer or smaller balls")


class Trajectory(NamedTuple):
    """Ball centres and directions of a simulated video, with counts (:func:`simulate`).

    Parameters
    ----------
    positions : ndarray of float64, shape (T, n_balls, 2)
        Centres (x, y).
    directions : ndarray of float64, shape (T, n_balls)
        The direction of the move that led into each frame (frame 0: initial).
    n_moves : int
        Ball moves drawn (including discarded ones).
    n_redrawn : int
        Moves whose first draw collided.
    n_dead_ends : int
        Backtracks (see the module docstring).

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, simulate
    >>> trajectory = simulate(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> trajectory.directions.shape, trajectory.n_moves >= 23 * 3
    ((24, 3), True)
    """
    positions: np.ndarray
    directions: np.ndarray
    n_moves: int
    n_redrawn: int
    n_dead_ends: int


def simulate(config=BallsConfig(), seed=0, max_dead_ends=None):
    """Simulate the Appendix D motion (no rendering); deterministic for ``seed``.

    Parameters
    ----------
    config : BallsConfig, default ``BallsConfig()``
        The video's settings.
    seed : int, SeedSequence, numpy.random.Generator or None, default 0
        Seed of the motion, or a sequence of ints (a Generator is used as it is and advanced; None: fresh entropy).
    max_dead_ends : int, optional
        Give up (RuntimeError) after this many dead ends (no valid direction);
        default 10 · n_frames + 1000.

    Returns
    -------
    Trajectory
        ``(positions, directions, n_moves, n_redrawn, n_dead_ends)``; positions
        (T, n_balls, 2) in pixels.

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig, ``seed`` is not a seed or Generator
        (bool, float, str), or ``max_dead_ends`` is not an integer.
    ValueError
        If ``seed`` is negative, ``max_dead_ends`` is negative, or the balls cannot
        be placed without overlap.
    RuntimeError
        After more than ``max_dead_ends`` dead ends.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, simulate
    >>> trajectory = simulate(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> trajectory.positions.shape
    (24, 3, 2)
    """
    _check_config(config)
    rng = as_generator(seed, "seed")
    if max_dead_ends is None:
        max_dead_ends = 10 * config.n_frames + 1000
    max_dead_ends = check_int(max_dead_ends, "max_dead_ends", minimum=0)
    n, d = config.n_balls, config.diameter
    pos0, dir0 = _initial_state(config, rng)
    positions, directions = [pos0], [dir0]
    n_moves = n_redrawn = n_dead_ends = 0
    while len(positions) < config.n_frames:
        pos, dirs = positions[-1].copy(), directions[-1].copy()
        for b in range(n):
            others = np.delete(pos, b, axis=0)  # balls < b already moved this frame
            theta, attempts = _draw_direction(pos[b], dirs[b], others, config, rng)
            n_moves += 1
            n_redrawn += len(attempts) > 1
            if theta is None:
                break
            pos[b] = _step(pos[b], theta, d)  # the centre is_valid_move accepted
            dirs[b] = theta
        else:
            positions.append(pos)
            directions.append(dirs)
            continue
        # dead end: drop the previous frame too, so its moves are redrawn
        n_dead_ends += 1
        if n_dead_ends > max_dead_ends:
            raise RuntimeError(f"more than {max_dead_ends} dead ends; the box is too crowded "
                               f"for {n} balls of diameter {d} (config {config})")
        if len(positions) > 1:
            positions.pop()
            directions.pop()
        else:
            positions[0], directions[0] = _initial_state(config, rng)
    return Trajectory(np.array(positions), np.array(directions), n_moves, n_redrawn, n_dead_ends)


# ---------------------------------------------------------------- video

def make_video(config=BallsConfig(), seed=0):
    """Frames and ball centres of one video (Sec. 5, Appendix D).

    Each pixel is the exact area of it covered by each disc, times the ball's colour.

    Parameters
    ----------
    config : BallsConfig, default ``BallsConfig()``
        The video's settings.
    seed : int, SeedSequence, numpy.random.Generator or None, default 0
        Seed of the motion, or a sequence of ints; the same seed gives the same video (a Generator is used
        as it is and advanced; None: fresh entropy).

    Returns
    -------
    frames : ndarray of float32, shape (T, C, size, size)
        Values in [0, 1]; T = ``config.n_frames``, C = 3 (rgb) or 1 (gray).
    positions : ndarray of float64, shape (T, n_balls, 2)
        Ball centres (x = column, y = row), in pixels.

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig or ``seed`` is not a seed or Generator
        (bool, float, str).
    ValueError
        If ``seed`` is negative, the balls cannot be placed without overlap, or
        rendering would need more memory than the machine has available
        (:func:`render_nbytes`; checked before any work).
    RuntimeError
        If the box is too crowded for the balls to keep moving.

    Examples
    --------
    >>> from rpmref import BallsConfig, make_video
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0), seed=0)
    >>> frames.shape, frames.dtype, positions.shape
    ((24, 3, 16, 16), dtype('float32'), (24, 3, 2))
    >>> bool(frames.min() >= 0 and frames.max() <= 1)
    True
    """
    _check_render_memory(_check_config(config))
    trajectory = simulate(config, seed)
    frames = render_frames(trajectory.positions, 0.5 * config.diameter, config.size,
                           config.size, ball_colours(config))
    return frames, trajectory.positions


def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None if unknown.

    Returns
    -------
    int or None

    Examples
    --------
    >>> from rpmref.balls.video import available_memory
    >>> memory = available_memory()
    >>> memory is None or memory > 0
    True
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_render_memory(config):
    """ValueError if rendering ``config`` needs more than the available memory: refused before
    the simulation, which alone would run for hours at 10¹² frames."""
    need, available = render_nbytes(config), available_memory()
    if available is not None and need > available:
        raise ValueError(
            f"config: {config.n_frames} frames of {config.size}×{config.size} px need about "
            f"{need / 2 ** 30:.3g} GiB of memory to render; {available / 2 ** 30:.3g} GiB is "
            "available")


def render_nbytes(config):
    """Bytes ``make_video(config)`` needs at its peak (an estimate, within a few %).

    Rendering holds the per-ball coverage (T, n_balls, H, W) float64, the
    colour sum and its clipped copy (T, C, H, W) float64 and the float32 frames.

    Parameters
    ----------
    config : BallsConfig
        The video's settings.

    Returns
    -------
    int
        The estimate, in bytes.

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig
    >>> from rpmref.balls.video import render_nbytes
    >>> render_nbytes(BallsConfig()) / 2 ** 20     # the default video: about 74 MiB
    73.828125
    """
    pixels = _check_config(config).n_frames * config.size * config.size
    channels = 3 if config.channels == "rgb" else 1
    return pixels * (8 * config.n_balls + (8 + 8 + 4) * channels)


def _check_video_values(frames, positions):
    """Frames must lie in [0, 1] and positions be finite (ValueError naming the entry)."""
    check_finite(frames, "frames")
    outside = (frames < 0) | (frames > 1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        where = tuple(int(v) for v in np.unravel_index(i, frames.shape))
        raise ValueError(f"frames must lie in [0, 1]; entry {where} is {frames.flat[i]}")
    check_finite(positions, "positions")


def _check_video_arrays(frames, positions, config):
    T, n, size = config.n_frames, config.n_balls, config.size
    C = 3 if config.channels == "rgb" else 1
    if frames.shape != (T, C, size, size):
        raise ValueError(f"frames must have shape (T, C, H, W) = {(T, C, size, size)} for "
                         f"this config; got {frames.shape}")
    if positions.shape != (T, n, 2):
        raise ValueError(f"positions must have shape {(T, n, 2)} for this config; "
                         f"got {positions.shape}")


def _check_path(path):
    """``path`` as a non-empty str (TypeError naming it for None, numbers and the like)."""
    path = check_path(path, "path")
    if not path:
        raise ValueError("path must not be empty")
    return path


def save_video(path, frames, positions, config):
    """Write frames, positions and the config (JSON) to a compressed .npz, atomically.

    The file appears complete or not at all (a temporary file beside it is
    renamed), and a failed write leaves an older file at ``path`` in place. A
    symbolic link is written through and stays a link; a device (/dev/full, a
    FIFO) is written directly (``runstore.replacing``).

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; ".npz" is appended to a path without it (in any case: a path
        ending in ".NPZ" is written as it is).
    frames : array_like, shape (T, C, size, size)
        Values in [0, 1], as ``config`` says.
    positions : array_like, shape (T, n_balls, 2)
        Finite ball centres.
    config : BallsConfig
        The settings the video was made with.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    TypeError
        If ``config`` is not a BallsConfig, ``path`` is not a path, or ``frames`` or
        ``positions`` is not an array of real numbers (bool, complex, strings, ragged).
    ValueError
        If ``path`` is empty, the arrays do not have the shapes ``config`` implies,
        are not finite, or frames leave [0, 1] (nothing is written that
        ``load_video`` would refuse).
    FileNotFoundError
        If the directory of ``path`` does not exist (it is not created).
    IsADirectoryError
        If ``path`` (with ".npz") is a directory.

    Examples
    --------
    >>> import tempfile, os
    >>> from rpmref import BallsConfig, load_video, make_video, save_video
    >>> config = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> frames, positions = make_video(config, seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_video(os.path.join(tmp, "video"), frames, positions, config)
    ...     print(os.path.basename(path), load_video(path, config)[2] == config)
    video.npz True
    """
    _check_config(config)
    path = _check_path(path)
    frames = as_real_array(frames, "frames", finite=False, allow_empty=True)
    positions = as_real_array(positions, "positions", finite=False, allow_empty=True)
    _check_video_arrays(frames, positions, config)
    _check_video_values(frames, positions)  # on the values given, before rounding to float32
    frames = frames.astype(np.float32)
    path = path if path.lower().endswith(".npz") else path + ".npz"
    directory = os.path.dirname(os.path.abspath(path))
    # named here: the temporary file's error would name only itself
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: {path} is a directory")
    with replacing(path) as target:  # a symbolic link is written through, not replaced
        with open(target, "wb") as f:
            np.savez_compressed(f, format=np.array(FORMAT),
                                config=np.array(json.dumps(asdict(config))),
                                frames=frames, positions=positions)
    return path


def load_video(path, config=None):
    """Read a video written by :func:`save_video`.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.
    config : BallsConfig, optional
        If given, the file must have been written with exactly that config.

    Returns
    -------
    frames : ndarray of float32, shape (T, C, size, size)
    positions : ndarray of float64, shape (T, n_balls, 2)
    config : BallsConfig
        The config stored in the file.

    Raises
    ------
    TypeError
        If ``path`` is not a path or ``config`` is neither None nor a BallsConfig.
    ValueError
        If the file is not such a video (not a regular file, unreadable, arrays
        too large for memory, wrong format, missing or corrupt entries, an invalid
        config) or was written with another ``config``; the message says why.
    FileNotFoundError
        If there is no file at ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> from rpmref import BallsConfig, load_video, make_video, save_video
    >>> config = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_video(os.path.join(tmp, "v.npz"), *make_video(config), config)
    ...     frames, positions, stored = load_video(path)
    >>> frames.shape, stored.n_frames
    ((24, 3, 16, 16), 24)
    """
    path = _check_path(path)
    if config is not None:
        _check_config(config)
    kind = special_file_kind(path)
    if kind:  # reading a FIFO would wait for a writer forever
        raise ValueError(f"{path} is {kind}, not a regular file (an rpmref balls video .npz)")
    try:
        with open(path, "rb") as fh:  # np.load would suggest unpickling anything else
            if fh.read(2) != b"PK":
                raise ValueError("not a .npz (zip) archive")
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError) + DAMAGED_NPZ_ERRORS as e:
        raise ValueError(f"{path} is not a readable rpmref balls video (.npz): {e}") from None
    except MemoryError as e:  # an array header may declare any shape
        raise ValueError(f"{path} holds (or its damaged headers declare) arrays too large "
                         f"to load: {e}") from None
    raw = sorted(k for k, v in contents.items() if not isinstance(v, np.ndarray))
    if raw:  # NumPy returns a member that is not an .npy file as its bytes
        raise ValueError(f"{path} is not an rpmref balls video: members {raw} are not .npy "
                         "arrays")
    if not isinstance(contents, dict) or "format" not in contents:
        raise ValueError(f"{path} is not an rpmref balls video (no 'format' entry)")
    if str(contents["format"]) != FORMAT:
        raise ValueError(f"{path} has format {str(contents['format'])!r}; expected {FORMAT!r}")
    missing = [k for k in ("config", "frames", "positions") if k not in contents]
    if missing:
        raise ValueError(f"{path} is missing {', '.join(missing)}")
    try:
        stored = json.loads(str(contents["config"]))
        if not isinstance(stored, dict):
            raise ValueError(f"not a JSON object: {str(contents['config'])[:80]!r}")
        known = {f.name for f in fields(BallsConfig)}
        unknown = set(stored) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        stored = BallsConfig(**stored)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path} has an invalid config: {e}") from None
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise ValueError(f"{path} has an invalid config: {TOO_DEEP}") from None
    if config is not None and stored != config:
        diff = [f"{f.name}: file {getattr(stored, f.name)!r} vs requested {getattr(config, f.name)!r}"
                for f in fields(BallsConfig) if getattr(stored, f.name) != getattr(config, f.name)]
        raise ValueError(f"{path} was written by another config ({'; '.join(diff)})")
    frames, positions = contents["frames"], contents["positions"]
    if frames.dtype != np.float32 or positions.dtype != np.float64:
        raise ValueError(f"{path}: frames must be float32 and positions float64; "
                         f"got {frames.dtype}, {positions.dtype}")
    try:
        _check_video_arrays(frames, positions, stored)
    except ValueError as e:
        raise ValueError(f"{path} does not match its own config: {e}") from None
    try:
        _check_video_values(frames, positions)
    except ValueError as e:
        raise ValueError(f"{path} is corrupt: {e}") from None
    return frames, positions, stored


__all__ = ["BallsConfig", "Trajectory", "available_memory", "ball_colours", "draw_direction",
           "is_valid_move", "load_video", "make_video", "render_nbytes", "save_video",
           "simulate", "step", "valid_directions"]
