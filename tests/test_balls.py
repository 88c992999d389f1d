"""Tests of the bouncing-balls generator (rpmref.balls, rpmref.render; Appendix D).

Motion rules are checked on the arrays themselves (distances, walls); the exact
valid-direction set against a brute-force scan of angles; the pixel coverage
against a numerical integral of the disc's chord length (a different formula).
"""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rpmref.balls.video import (BallsConfig, ball_colours, draw_direction, is_valid_move,
                                load_video, make_video, render_nbytes, save_video, simulate,
                                step, valid_directions)
from rpmref.cli import OneLineErrorParser, main
from rpmref.cli.make import add_parser as add_make_parser
from rpmref.balls.render import disc_coverage, quarter_disc_area, render_frames
from tests.strategies import scaled_examples

DEFAULT = BallsConfig()
# 3 balls of diameter 5 in a 16 x 16 box: crowded enough that dead ends are common
CROWDED = BallsConfig(n_frames=100, size=16)


@pytest.fixture(scope="module")
def default_video():
    return make_video(DEFAULT, seed=0)


def _check_motion_rules(positions, config):
    """Slack 1e-12 px: positions ≤ 32 px are rounded to ulp(32) = 7e-15 at each step, so
    a step length or distance is exact to ~3e-14; rules are u·n ≤ κ exactly in reals."""
    d, r, size = config.diameter, 0.5 * config.diameter, config.size
    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1)          # (T-1, n)
    np.testing.assert_allclose(step, d, rtol=0, atol=1e-12)
    assert np.all(positions >= r - 1e-12) and np.all(positions <= size - r + 1e-12)
    pair = np.linalg.norm(positions[:, :, None, :] - positions[:, None, :, :], axis=-1)
    i, j = np.triu_indices(config.n_balls, k=1)
    assert np.all(pair[:, i, j] >= d - 1e-12)


# ---------------------------------------------------------------- motion

def test_default_video_obeys_motion_rules(default_video):
    """Every step is exactly one diameter, balls stay in the box and never overlap."""
    frames, positions = default_video
    assert frames.shape == (900, 3, 32, 32) and frames.dtype == np.float32
    assert positions.shape == (900, 3, 2) and positions.dtype == np.float64
    _check_motion_rules(positions, DEFAULT)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dead_ends_are_backtracked_without_breaking_the_rules(seed):
    """In a crowded box dead ends happen; the trajectory still obeys every rule
    (no ball stays put or takes a shorter step) and the directions recorded are
    those of the steps taken."""
    trajectory = simulate(CROWDED, seed)
    assert trajectory.n_dead_ends > 0
    _check_motion_rules(trajectory.positions, CROWDED)
    step = np.diff(trajectory.positions, axis=0)
    expected = CROWDED.diameter * np.stack([np.cos(trajectory.directions[1:]),
                                            np.sin(trajectory.directions[1:])], axis=-1)
    np.testing.assert_allclose(step, expected, rtol=0, atol=1e-12)  # as _check_motion_rules


def test_same_seed_same_video_different_seed_different():
    config = BallsConfig(n_frames=50)
    frames_a, positions_a = make_video(config, seed=7)
    frames_b, positions_b = make_video(config, seed=7)
    frames_c, positions_c = make_video(config, seed=8)
    assert np.array_equal(frames_a, frames_b) and np.array_equal(positions_a, positions_b)
    assert not np.array_equal(positions_a, positions_c)
    assert not np.array_equal(frames_a, frames_c)


def test_seed_may_be_a_generator():
    config = BallsConfig(n_frames=20)
    _, from_int = make_video(config, seed=3)
    _, from_generator = make_video(config, seed=np.random.default_rng(3))
    assert np.array_equal(from_int, from_generator)


def _collides(position, theta, others, d, size):
    """Brute-force collision test for an array of directions theta (...,),
    written independently of rpmref.balls: (...,) bool."""
    theta = np.asarray(theta, dtype=float)
    new = np.asarray(position) + d * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    r = d / 2
    outside = np.any((new < r) | (new > size - r), axis=-1)
    others = np.asarray(others, dtype=float).reshape(-1, 2)
    sq = np.sum((new[..., None, :] - others) ** 2, axis=-1)   # (..., m)
    return outside | np.any(sq < d * d, axis=-1)


def test_collision_redraw_doubles_the_range():
    """A ball 0.5 px from the right wall heading right with noise a = 0.05 must
    collide with every draw from ±a, ±2a, ... until the range is wide enough:
    the half-ranges tried double, each draw lies in previous ± h, every draw
    but the last collides, and the draws are exactly previous + Uniform(−h, h)
    from the seeded stream."""
    config = BallsConfig(size=32, diameter=5.0, noise=0.05)
    position = np.array([32 - 2.5 - 0.5, 16.0])
    others = np.array([[5.0, 5.0], [5.0, 27.0]])
    theta, attempts = draw_direction(position, 0.0, others, config, np.random.default_rng(1))
    halves = [h for h, _ in attempts]
    assert len(attempts) >= 5  # |θ| must exceed arccos(0.5/5) ≈ 1.47 > 0.05 * 2^4
    # ±0.05, ±0.1, ..., ±1.6 (6 ranges below π), then the full circle
    partial = [0.05 * 2 ** k for k in range(7) if 0.05 * 2 ** k < math.pi]
    assert halves[:len(partial)] == partial[:len(halves)]
    assert all(h == math.pi for h in halves[len(partial):])
    for h, drawn in attempts:  # uniform(−h, h) = −h + 2h·U rounds to ≤ h + ulp(π) = h + 4.4e-16
        assert abs(math.remainder(drawn - 0.0, 2 * math.pi)) <= h + 1e-15
    for _, drawn in attempts[:-1]:
        assert _collides(position, drawn, others, 5.0, 32)
    assert not _collides(position, attempts[-1][1], others, 5.0, 32)
    assert theta == attempts[-1][1]
    replay = np.random.default_rng(1)
    for h, drawn in attempts:
        if h < math.pi:
            assert drawn == math.remainder(0.0 + replay.uniform(-h, h), 2 * math.pi)


def test_redraws_happen_in_a_video():
    """With a small noise the balls run straight into walls, so redraws must fire."""
    trajectory = simulate(BallsConfig(n_frames=60, noise=0.01), seed=0)
    assert trajectory.n_redrawn > 0
    assert trajectory.n_moves >= 59 * 3


def test_boxed_in_ball_has_no_valid_direction():
    """A ball in the corner touching two balls (one right, one below) cannot move:
    the exact valid set is empty, a dense scan finds no valid angle, and the draw
    reports a dead end."""
    config = BallsConfig(size=32, diameter=5.0)
    position = np.array([2.5, 2.5])
    others = np.array([[7.5, 2.5], [2.5, 7.5]])
    assert valid_directions(position, others, 5.0, 32) == []
    angles = np.linspace(-np.pi, np.pi, 20001)
    assert np.all(_collides(position, angles, others, 5.0, 32))
    theta, _ = draw_direction(position, 0.3, others, config, np.random.default_rng(0))
    assert theta is None


@settings(max_examples=scaled_examples(60))
@example(7.47, 16.0, [])                # wall barely in reach: excluded arc ±0.11 rad
@example(16.0, 16.0, [(0.3, 9.95)])     # ball barely in reach: excluded arc ±0.1 rad
@example(2.5, 2.5, [(0.0, 5.0), (np.pi / 2, 5.0)])  # boxed in: empty set
@example(3.0, 29.5, [])                 # touching a wall: an interval ends at 2π ≡ angle 0
@example(11.484629201803417, 3.0, [(0.0, 10.0)])  # tangent ball: rounding decides angle 0
@given(st.floats(2.5, 29.5), st.floats(2.5, 29.5),
       st.lists(st.tuples(st.floats(0, 2 * np.pi), st.floats(5.0, 12.0)), max_size=3))
def test_valid_directions_match_brute_force(px, py, polar):
    """The exact valid set (complement of excluded arcs) agrees with a direct
    collision test at 2,000 angles, away from the interval ends (distance taken
    around the circle, so that an end at 2π also guards the angle 0) and away from
    the boundary of every constraint. An end is the root of a margin (wall
    distance, or squared ball distance − d²) that rounding moves by ~1e-13 (ulps
    of coordinates ≤ 44 px, times 2dδ ≤ 170 for a ball). Where the move is tangent
    to the boundary, that shifts the end by √(1e-13/50) ≈ 4e-8 rad, more than any
    fixed angular guard; a guard of 1e-9 on the margins themselves covers both."""
    position = np.array([px, py])
    others = np.array([[px + rho * np.cos(phi), py + rho * np.sin(phi)] for phi, rho in polar])
    intervals = valid_directions(position, others, 5.0, 32)
    ends = np.array([e for lo, hi in intervals for e in (lo, hi)])
    angles = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    if ends.size:
        gap = np.abs(ends[:, None] - angles) % (2 * np.pi)
        angles = angles[np.min(np.minimum(gap, 2 * np.pi - gap), axis=0) >= 1e-9]
    new = position + 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    walls = np.concatenate([new - 2.5, 32 - 2.5 - new], axis=-1)                 # px
    balls = np.sum((new[:, None, :] - others.reshape(-1, 2)) ** 2, axis=-1) - 25.0  # px²
    angles = angles[np.all(np.abs(walls) >= 1e-9, axis=-1) & np.all(np.abs(balls) >= 1e-9, axis=-1)]
    inside = np.zeros(angles.shape, dtype=bool)
    for lo, hi in intervals:
        inside |= (lo <= angles) & (angles <= hi)
    np.testing.assert_array_equal(inside, ~_collides(position, angles, others, 5.0, 32))


# ---------------------------------------------------------------- rendering

def _coverage_by_quadrature(cx, cy, radius, height, width, n=20000):
    """Covered area of each pixel as ∫ chord-length dx (midpoint rule, n points per
    pixel column): the chord of the disc at abscissa t is cy ± √(r² − (t − cx)²),
    clipped to each pixel row. The midpoint error near the √ singularity at
    t = cx ± r is O(h^1.5) ≈ 4e-7 per pixel for h = 1/20000."""
    t = (np.arange(width * n) + 0.5) / n                       # (W*n,)
    half = np.sqrt(np.maximum(radius ** 2 - (t - cx) ** 2, 0.0))
    lo, hi = cy - half, cy + half
    rows = np.arange(height)[:, None]
    length = np.clip(np.minimum(hi, rows + 1) - np.maximum(lo, rows), 0.0, None)  # (H, W*n)
    return length.reshape(height, width, n).sum(axis=-1) / n


@pytest.mark.parametrize("centre,radius", [((5.3, 4.71), 2.5), ((3.0, 3.0), 2.5),
                                           ((6.5, 2.2), 1.7), ((4.0001, 5.9999), 3.1)])
def test_coverage_matches_numerical_integral(centre, radius):
    """Exact corner-function coverage vs a numerical integral of the chord length
    (tolerance 2e-6: the quadrature error bound above, summed over two edges)."""
    exact = disc_coverage(np.array(centre), radius, 10, 11)
    numeric = _coverage_by_quadrature(centre[0], centre[1], radius, 10, 11)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=2e-6)


@settings(max_examples=scaled_examples(15))
@given(st.floats(-1.0, 12.0), st.floats(-1.0, 11.0), st.floats(0.3, 3.5))
def test_coverage_matches_numerical_integral_anywhere(cx, cy, radius):
    """Same check for random sub-pixel centres, including discs cut by the frame
    edge (where the computed window is clipped to the frame)."""
    exact = disc_coverage(np.array([cx, cy]), radius, 10, 11)
    numeric = _coverage_by_quadrature(cx, cy, radius, 10, 11)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=2e-6)


def test_coverage_known_values():
    """Hand-computable cases: a unit disc at a pixel corner covers π/4 of it; a
    pixel inside the disc is covered fully; the inclusion–exclusion over a whole
    disc gives π r²; F is odd in each argument."""
    # (a few roundings of values ≤ 1: ≲ 4e-16)
    assert disc_coverage(np.array([0.0, 0.0]), 1.0, 1, 1)[0, 0] == pytest.approx(np.pi / 4, abs=1e-15)
    assert disc_coverage(np.array([0.0, 0.0]), np.sqrt(2.0) + 1e-9, 1, 1)[0, 0] == 1.0
    total = disc_coverage(np.array([[10.37, 9.81]]), 4.2, 20, 20).sum()
    # ~80 covered pixels, each 4 corner terms of size ≤ r² ≈ 18 (ulp 3.6e-15) that mostly
    # telescope across neighbours: ≤ 80·4·3.6e-15 ≈ 1.2e-12 worst case, measured 7e-15
    assert total == pytest.approx(np.pi * 4.2 ** 2, abs=1e-12)
    x, y = 0.7, 1.9
    assert quarter_disc_area(-x, y, 2.0) == -quarter_disc_area(x, y, 2.0)
    assert quarter_disc_area(-x, -y, 2.0) == quarter_disc_area(x, y, 2.0)


def test_rendered_centroid_is_the_ball_centre(default_video):
    """Intensity-weighted centroid (pixel centres j + 0.5, i + 0.5) of each ball's
    channel is within 0.05 px of its true centre, in every frame, and each
    channel's mass is the disc area π r² (to float32 precision). 0.05 px is not rounding:
    pixel centres stand in for ∫x over partly covered pixels (measured ≤ 0.006 px here)."""
    frames, positions = default_video
    frames = frames.astype(np.float64)
    centres = np.arange(32) + 0.5
    mass = frames.sum(axis=(-1, -2))                           # (T, C)
    cx = np.einsum("tchw,w->tc", frames, centres) / mass
    cy = np.einsum("tchw,h->tc", frames, centres) / mass
    assert np.max(np.abs(cx - positions[:, :, 0])) < 0.05
    assert np.max(np.abs(cy - positions[:, :, 1])) < 0.05
    # float32 pixels, each within u32/2 = 3e-8 relative, summed in float64: ≤ 3e-8 relative
    np.testing.assert_allclose(mass, np.pi * 2.5 ** 2, rtol=1e-6)


def test_values_in_unit_interval_and_gray_is_intensity_weighted_rgb():
    """Frames lie in [0, 1]; a gray video equals Σ_k intensity_k × (ball k's RGB channel)."""
    rgb_config = BallsConfig(n_frames=40)
    gray_config = BallsConfig(n_frames=40, channels="gray", intensities=(1.0, 0.6, 0.3))
    rgb, pos_rgb = make_video(rgb_config, seed=5)
    gray, pos_gray = make_video(gray_config, seed=5)
    assert np.array_equal(pos_rgb, pos_gray)
    assert gray.shape == (40, 1, 32, 32)
    assert rgb.min() >= 0 and rgb.max() <= 1 and gray.min() >= 0 and gray.max() <= 1
    expected = np.einsum("tchw,c->thw", rgb.astype(np.float64), [1.0, 0.6, 0.3])
    # float32 rounding: 3 channel values ≤ 1 and the gray value each within 3e-8: ≤ 1.2e-7
    np.testing.assert_allclose(gray[:, 0], expected, rtol=0, atol=1e-6)


def test_render_frames_of_touching_balls_stay_below_one():
    positions = np.array([[[10.0, 10.0], [15.0, 10.0]]])
    frames = render_frames(positions, 2.5, 20, 20, np.ones((2, 1)))
    assert frames.max() <= 1.0
    # float32 frames summed in float32 (pairwise): ≲ (1 + log2 800)·u32/2 ≈ 3e-7 relative
    assert frames.sum() == pytest.approx(2 * np.pi * 2.5 ** 2, rel=1e-6)


# ---------------------------------------------------------------- files

def test_save_load_round_trip_is_exact(tmp_path):
    config = BallsConfig(n_frames=30, channels="gray")
    frames, positions = make_video(config, seed=2)
    path = save_video(tmp_path / "v", frames, positions, config)
    assert path.endswith(".npz")
    frames2, positions2, config2 = load_video(path)
    assert np.array_equal(frames, frames2) and np.array_equal(positions, positions2)
    assert config2 == config
    assert load_video(path, config=config)[2] == config


def test_load_rejects_other_config_and_bad_files(tmp_path):
    config = BallsConfig(n_frames=10)
    frames, positions = make_video(config, seed=0)
    path = save_video(tmp_path / "v.npz", frames, positions, config)
    with pytest.raises(ValueError, match="another config.*n_frames"):
        load_video(path, config=BallsConfig(n_frames=11))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable") as refused:
        load_video(corrupt)
    assert "pickle" not in str(refused.value)  # np.load's advice to unpickle is not passed on
    array = tmp_path / "array.npy"
    np.save(array, frames)  # a NumPy file, but not an .npz archive
    with pytest.raises(ValueError, match="not a .npz"):
        load_video(array)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(path, "rb").read()[:500])
    with pytest.raises(ValueError):
        load_video(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, frames=frames)
    with pytest.raises(ValueError, match="not an rpmref balls video"):
        load_video(foreign)
    tampered = tmp_path / "tampered.npz"
    with np.load(path) as data:
        contents = dict(data)
    np.savez(tampered, **{**contents, "frames": np.full_like(frames, np.nan)})
    with pytest.raises(ValueError, match="corrupt"):
        load_video(tampered)
    np.savez(tampered, **{**contents, "config": np.array('{"n_frames": 10, "speed": 2}')})
    with pytest.raises(ValueError, match="invalid config.*speed"):
        load_video(tampered)
    np.savez(tampered, **{**contents, "positions": positions[:, :2]})
    with pytest.raises(ValueError, match="does not match its own config"):
        load_video(tampered)
    with pytest.raises(FileNotFoundError):
        load_video(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="frames must have shape"):
        save_video(tmp_path / "w.npz", frames[:5], positions, config)


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_frames=0), "n_frames"), (dict(diameter=-1.0), "diameter"),
    (dict(size=8), "two diameters"), (dict(noise=4.0), "noise"),
    (dict(channels="cmyk"), "channels"), (dict(n_balls=4), "colours"),
    (dict(colours=((1, 0, 0), (0, 1, 0))), "colours"), (dict(colours=(1, 0, 0)), "colours"),
    (dict(channels="gray", intensities=(1.0, 0.0, 0.5)), "intensities"),
    (dict(n_balls=40, channels="gray"), "could not place"),
    (dict(n_balls=60, channels="gray"), "could not place"),
])
def test_bad_config_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_video(BallsConfig(**kwargs), seed=0)


def test_ball_colours_are_distinct_primaries_by_default():
    np.testing.assert_array_equal(ball_colours(DEFAULT), np.eye(3))


# ---------------------------------------------------------------- argument checks

SMALL = BallsConfig(n_frames=6, size=16, diameter=3.0)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(n_frames="3"), TypeError, r"n_frames must be an integer, got '3' \(str\)"),
    (dict(n_balls=3.0), TypeError, r"n_balls must be an integer, got 3.0 \(float\)"),
    (dict(size=True), TypeError, r"size must be an integer, got a bool"),
    (dict(n_frames=0), ValueError, r"n_frames must be >= 1, got 0"),
    (dict(diameter=True), TypeError, r"diameter must be a real number, got True \(bool\)"),
    (dict(diameter="5"), TypeError, r"diameter must be a real number, got '5' \(str\)"),
    (dict(diameter=math.nan), ValueError, r"diameter must be a finite real number, got nan"),
    (dict(diameter=math.inf), ValueError, r"diameter must be a finite real number, got inf"),
    (dict(diameter=0), ValueError, r"diameter must be a positive number; got 0.0"),
    (dict(noise=np.bool_(True)), TypeError, r"noise must be a real number"),
    (dict(noise=math.nan), ValueError, r"noise must be a finite real number, got nan"),
    (dict(noise=-0.1), ValueError, r"noise must be in \(0, pi\] radians; got -0.1"),
    (dict(channels=None), TypeError, r"channels must be one of 'rgb', 'gray', got None"),
    (dict(channels="RGB"), ValueError, r"channels must be one of 'rgb', 'gray', got 'RGB'"),
    (dict(colours="rgb"), TypeError, r"colours must be an array of real numbers, got str"),
    (dict(colours=(("1", "0", "0"),) * 3), TypeError, r"colours must be an array of real numbers"),
    (dict(colours=((1, 0, 0), (0, 1, 0), (0, 0, math.nan))), ValueError,
     r"colours must be finite; entry \(2, 2\) is nan"),
    (dict(channels="gray", intensities=(True, True, True)), TypeError,
     r"intensities must be an array of real numbers, got dtype bool"),
    (dict(channels="gray", intensities=((1.0,), (0.5,), (0.2,))), ValueError,
     r"intensities must be 1-dimensional"),
])
def test_config_types_and_values_are_checked_by_name(kwargs, error, message):
    """Wrong types are TypeErrors (n_frames="3" was a ValueError, diameter=True was taken
    as 1, strings in colours were converted with float())."""
    with pytest.raises(error, match=message):
        BallsConfig(**kwargs)


def test_config_takes_numpy_numbers_and_stores_python_ones(tmp_path):
    """np.float32 diameter and noise were refused although NumPy integer counts were
    accepted; the counts were stored as np.int64, which then failed in save_video
    (json.dumps cannot write them)."""
    config = BallsConfig(n_frames=np.int64(6), n_balls=np.int32(2), size=np.uint8(16),
                         diameter=np.float32(3), noise=np.float32(0.25))
    assert [type(getattr(config, f)) for f in ("n_frames", "n_balls", "size")] == [int] * 3
    assert type(config.diameter) is float and type(config.noise) is float
    assert config == BallsConfig(n_frames=6, n_balls=2, size=16, diameter=3.0,
                                 noise=float(np.float32(0.25)))
    assert hash(config) == hash(BallsConfig(n_frames=6, n_balls=2, size=16, diameter=3,
                                            noise=float(np.float32(0.25))))
    path = save_video(tmp_path / "v.npz", *make_video(config, seed=0), config)
    assert load_video(path, config)[2] == config
    gray = BallsConfig(channels="gray", intensities=np.array([1.0, 0.5, 0.25]))
    assert gray.intensities == (1.0, 0.5, 0.25) and hash(gray)


@pytest.mark.parametrize("seed,error,message", [
    (-1, ValueError, r"seed must be a non-negative integer.*got -1"),
    (1.5, TypeError, r"seed must be a non-negative integer.*got 1.5 \(float\)"),
    (True, TypeError, r"seed must be a non-negative integer.*got True \(bool\)"),
    ("0", TypeError, r"seed must be a non-negative integer.*got '0' \(str\)"),
])
def test_make_video_and_simulate_check_the_seed_by_name(seed, error, message):
    """seed=-1 gave NumPy's "expected non-negative integer" and 1.5 a SeedSequence
    TypeError, neither naming seed. The checks are exact.validation's (check_seed)."""
    with pytest.raises(error, match=message):
        make_video(SMALL, seed=seed)
    with pytest.raises(error, match=message):
        simulate(SMALL, seed=seed)


def test_seeds_numpy_accepts_are_still_accepted():
    _, from_int = make_video(SMALL, seed=5)
    _, from_numpy_int = make_video(SMALL, seed=np.int64(5))
    _, from_sequence = make_video(SMALL, seed=np.random.SeedSequence(5))
    assert np.array_equal(from_int, from_numpy_int) and np.array_equal(from_int, from_sequence)
    assert make_video(SMALL, seed=[1, 2])[1].shape == (6, 3, 2)


@pytest.mark.parametrize("config", [{"n_frames": 6}, None, "default", DEFAULT.__dict__])
def test_functions_taking_a_config_refuse_anything_else_by_name(config, tmp_path):
    """config={...} raised AttributeError: 'dict' object has no attribute 'n_frames'."""
    message = r"config must be a BallsConfig; got " + type(config).__name__
    frames, positions = make_video(SMALL, seed=0)
    save_video(tmp_path / "v.npz", frames, positions, SMALL)
    calls = [lambda: make_video(config), lambda: simulate(config), lambda: ball_colours(config),
             lambda: render_nbytes(config),
             lambda: save_video(tmp_path / "w.npz", frames, positions, config),
             lambda: draw_direction((8.0, 8.0), 0.0, np.zeros((0, 2)), config,
                                    np.random.default_rng(0))]
    if config is not None:
        calls.append(lambda: load_video(tmp_path / "v.npz", config))
    for call in calls:
        with pytest.raises(TypeError, match=message):
            call()
    if isinstance(config, dict):
        with pytest.raises(TypeError, match=r"build one with BallsConfig\(\*\*config\)"):
            make_video(config)


def test_simulate_checks_max_dead_ends():
    with pytest.raises(TypeError, match=r"max_dead_ends must be an integer, got 2.5"):
        simulate(SMALL, max_dead_ends=2.5)
    with pytest.raises(ValueError, match=r"max_dead_ends must be >= 0, got -1"):
        simulate(SMALL, max_dead_ends=-1)
    assert simulate(SMALL, max_dead_ends=np.int64(0)).n_dead_ends == 0


@pytest.mark.parametrize("call,error,message", [
    (lambda: step((1.0, 2.0), "0", 3.0), TypeError, r"theta must be a real number, got '0'"),
    (lambda: step((1.0, 2.0, 3.0), 0.0, 3.0), ValueError,
     r"position must have shape \(2,\) \(the centre \(x, y\)\), got \(3,\)"),
    (lambda: step((1.0, 2.0), 0.0, -3.0), ValueError, r"diameter must be a positive number"),
    (lambda: step((1.0, 2.0), math.nan, 3.0), ValueError, r"theta must be a finite real number"),
    (lambda: step((1j, 2.0), 0.0, 3.0), TypeError, r"position must be real, got complex"),
    (lambda: is_valid_move((math.nan, 8.0), 0.0, [], 3.0, 16), ValueError,
     r"position must be finite; entry 0 is nan"),
    (lambda: is_valid_move((8.0, 8.0), 0.0, [1.0, 2.0], 3.0, 16), ValueError,
     r"others must have shape \(m, 2\)"),
    (lambda: is_valid_move((8.0, 8.0), 0.0, [[1.0, np.inf]], 3.0, 16), ValueError,
     r"others must be finite; entry \(0, 1\) is inf"),
    (lambda: is_valid_move((8.0, 8.0), 0.0, [], 3.0, "16"), TypeError,
     r"size must be a real number, got '16'"),
    (lambda: valid_directions((8.0, 8.0), [], 0.0, 16), ValueError,
     r"diameter must be a positive number; got 0.0"),              # was ZeroDivisionError
    (lambda: valid_directions((math.nan, 8.0), [], 3.0, 16), ValueError,
     r"position must be finite"),                                  # was NaN intervals
    (lambda: valid_directions((8.0, 8.0), [[True, False]], 3.0, 16), TypeError,
     r"others must be an array of real numbers, got dtype bool"),
    (lambda: draw_direction((8.0, 8.0), 0.0, [], SMALL, 0), TypeError,
     r"rng must be a numpy.random.Generator, got int"),
    (lambda: draw_direction((8.0, 8.0), None, [], SMALL, np.random.default_rng(0)), TypeError,
     r"previous must be a real number, got None"),
])
def test_motion_helpers_check_their_arguments_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_motion_helpers_take_arrays_lists_and_numpy_numbers():
    assert step(np.array([1, 2]), np.float32(0), np.int64(3)) == (4.0, 2.0)
    assert type(step(np.array([1.0, 2.0]), 0.0, 3.0)[0]) is float
    assert is_valid_move([8, 8], 0.0, [], 3, 16) is True
    assert valid_directions((1.5, 8.0), [], 3.0, 16) == valid_directions(
        (1.5, 8.0), np.zeros((0, 2)), 3.0, 16)


def test_save_and_load_video_check_path_and_arrays_by_name(tmp_path):
    frames, positions = make_video(SMALL, seed=0)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike; got NoneType"):
        save_video(None, frames, positions, SMALL)
    with pytest.raises(ValueError, match=r"path must not be empty"):
        save_video("", frames, positions, SMALL)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike; got int"):
        load_video(3)
    with pytest.raises(TypeError, match=r"frames must be real, got complex"):  # was a
        save_video(tmp_path / "v.npz", frames + 0j, positions, SMALL)        # ComplexWarning
    with pytest.raises(TypeError, match=r"frames must be an array of real numbers, got dtype bool"):
        save_video(tmp_path / "v.npz", frames > 0.5, positions, SMALL)
    with pytest.raises(TypeError, match=r"positions must be an array of real numbers, got dtype <U"):
        save_video(tmp_path / "v.npz", frames, positions.astype(str), SMALL)
    spoiled = frames.astype(np.float64)
    spoiled[1, 0, 2, 3] = 1e300  # refused as given, not as float32's inf
    with pytest.raises(ValueError, match=r"frames must lie in \[0, 1\]; entry \(1, 0, 2, 3\) is 1e\+300"):
        save_video(tmp_path / "v.npz", spoiled, positions, SMALL)
    assert list(tmp_path.iterdir()) == []
    path = save_video(str(tmp_path / "v").encode(), frames.astype(np.float64), positions, SMALL)
    assert path == str(tmp_path / "v.npz") and load_video(path.encode())[2] == SMALL


# ---------------------------------------------------------------- command line

def _make(argv):
    """Run ``rpmref balls make ARGV`` through the ``make`` parser alone."""
    parser = OneLineErrorParser(prog="rpmref balls")
    add_make_parser(parser.add_subparsers(dest="command", parser_class=OneLineErrorParser))
    args = parser.parse_args(["make"] + argv)
    return args.func(args)


def test_cli_make_writes_a_loadable_video(tmp_path, capsys):
    out = tmp_path / "v.npz"
    assert _make(["--out", str(out), "--frames", "25", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert "25 frames" in printed and "dead ends" in printed
    frames, positions, config = load_video(out)
    expected_frames, expected_positions = make_video(BallsConfig(n_frames=25), seed=4)
    assert np.array_equal(positions, expected_positions) and np.array_equal(frames, expected_frames)


def test_cli_preview_and_gif(tmp_path):
    pytest.importorskip("matplotlib")
    preview, gif = tmp_path / "p.png", tmp_path / "v.gif"
    assert _make(["--out", str(tmp_path / "v.npz"), "--frames", "12", "--gray",
                  "--preview", str(preview), "--gif", str(gif)]) == 0
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_cli_bad_arguments_exit_2(tmp_path, capsys):
    assert _make(["--out", str(tmp_path / "v.npz"), "--diameter", "-1"]) == 2
    err = capsys.readouterr().err
    assert "diameter" in err and len(err.strip().splitlines()) == 1
    assert _make(["--out", str(tmp_path / "no" / "v.npz")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        _make(["--out", str(tmp_path / "v.npz"), "--frames", "many"])
    assert exit_info.value.code == 2


def test_rpmref_main_runs_balls_make(tmp_path):
    """The assembled ``rpmref`` command line reaches this subcommand."""
    assert main(["balls", "make", "--out", str(tmp_path / "v.npz"), "--frames", "5"]) == 0
    assert load_video(tmp_path / "v.npz")[0].shape == (5, 3, 32, 32)


# ---------------------------------------------------------------- outputs checked first

import rpmref.balls.video as video_module  # noqa: E402
import rpmref.cli.make as cli_make  # noqa: E402


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if ``balls make`` starts simulating."""
    def simulate(*args, **kwargs):
        raise AssertionError("the video was simulated before the arguments were checked")
    monkeypatch.setattr(cli_make, "simulate", simulate)


@pytest.mark.parametrize("argv,message", [
    (["--out", "/proc/rpmref-v.npz"], "--out /proc/rpmref-v.npz: cannot write in /proc"),
    (["--out", ""], "--out must be a file name ending in .npz; got ''"),
    (["--out", ".npz"], "--out must be a file name ending in .npz"),
    (["--out", "v"], "--out must be a file name ending in .npz; got 'v'"),
    (["--out", "folder.npz"], "--out folder.npz is a directory"),
    (["--out", "v.npz", "--preview", "p.xyz"], "--preview must be a file name ending in"),
    (["--out", "v.npz", "--gif", "g.png"], "--gif must be a file name ending in .gif"),
    (["--out", "v.npz", "--gif", "missing/g.gif"], "does not exist"),
    (["--out", "v.npz", "--balls", "4"], "rgb balls need colours"),
])
def test_cli_make_checks_every_output_before_work(tmp_path, capsys, monkeypatch, no_work,
                                                  argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.npz").mkdir()
    assert _make(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz"]  # nothing written


def test_cli_make_refuses_a_video_larger_than_memory(tmp_path, capsys, monkeypatch, no_work):
    """900 frames of 100000² px would need ~7·10¹⁴ bytes; refused before any work. The
    deterministic case fixes the available memory at 1 GiB: 100 frames of 2000² RGB px with
    3 balls need 100·2000²·(8·3 + 20·3) B = 33.6 GB."""
    if cli_make.available_memory() is not None:
        assert _make(["--out", str(tmp_path / "v.npz"), "--size", "100000"]) == 2
        assert "need about" in capsys.readouterr().err
    monkeypatch.setattr(cli_make, "available_memory", lambda: 2 ** 30)
    assert _make(["--out", str(tmp_path / "v.npz"), "--size", "2000", "--frames", "100"]) == 2
    err = capsys.readouterr().err
    assert "--frames 100 of --size 2000 px need about 31.3 GiB" in err and "1 GiB" in err
    assert list(tmp_path.iterdir()) == []


def test_make_video_refuses_a_video_larger_than_memory_before_simulating(monkeypatch):
    """Bug: the Python make_video had no memory check (only `balls make` had one): at
    n_frames = 10¹² it simulated for hours before failing. With the available memory fixed at
    1 GiB, 100 frames of 2000² RGB px with 3 balls (31.3 GiB, as for the CLI) are refused
    naming the config, and the simulation never starts; 10¹² frames are refused on any
    machine (the frames alone would be 10¹² · 3 · 32² · 4 B = 12 PB)."""
    def simulate(*args, **kwargs):
        raise AssertionError("the simulation started")
    monkeypatch.setattr(video_module, "simulate", simulate)
    if video_module.available_memory() is not None:
        with pytest.raises(ValueError, match="config: 1000000000000 frames of 32×32 px"):
            make_video(BallsConfig(n_frames=10 ** 12), seed=0)
    monkeypatch.setattr(video_module, "available_memory", lambda: 2 ** 30)
    with pytest.raises(ValueError, match=r"config: 100 frames of 2000×2000 px need about "
                                         r"31.3 GiB of memory to render; 1 GiB is available"):
        make_video(BallsConfig(n_frames=100, size=2000), seed=0)


def test_render_nbytes_matches_the_measured_peak():
    """The estimate counts the four frame-sized arrays of rendering; everything else is
    O(T · n_balls · window²), under 1 % here, so the traced peak is within 5 %."""
    import tracemalloc
    from rpmref.balls.video import render_nbytes
    for config in (BallsConfig(n_frames=60, size=48), BallsConfig(n_frames=40, size=64,
                                                                   channels="gray")):
        tracemalloc.start()
        try:
            make_video(config, seed=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert 0.95 < peak / render_nbytes(config) < 1.05


def test_cli_make_out_of_memory_and_full_disk_are_one_line_exit_1(tmp_path, capsys, monkeypatch):
    out = tmp_path / "v.npz"
    with monkeypatch.context() as m:
        m.setattr(cli_make, "render_frames", lambda *a: (_ for _ in ()).throw(MemoryError()))
        assert _make(["--out", str(out), "--frames", "5"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "out of memory" in err

    def no_space(file, **arrays):
        file.write(b"PK half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez_compressed", no_space)
    assert _make(["--out", str(out), "--frames", "5"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"cannot write {out}" in err and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []  # neither the video nor a temporary file


def test_cli_make_preview_needs_matplotlib(tmp_path, capsys, monkeypatch, no_work):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert _make(["--out", str(tmp_path / "v.npz"), "--preview", str(tmp_path / "p.png")]) == 2
    assert "--preview needs matplotlib" in capsys.readouterr().err


def test_save_video_refuses_what_load_video_would_refuse(tmp_path):
    config = BallsConfig(n_frames=6)
    frames, positions = make_video(config, seed=0)
    for bad, message in [(np.nan, r"frames must be finite; entry \(2, 1, 3, 4\) is nan"),
                         (1.5, r"frames must lie in \[0, 1\]; entry \(2, 1, 3, 4\) is 1.5"),
                         (-0.1, r"frames must lie in \[0, 1\]")]:
        spoiled = frames.copy()
        spoiled[2, 1, 3, 4] = bad
        with pytest.raises(ValueError, match=message):
            save_video(tmp_path / "v.npz", spoiled, positions, config)
    spoiled = positions.copy()
    spoiled[4, 2, 1] = np.inf
    with pytest.raises(ValueError, match=r"positions must be finite; entry \(4, 2, 1\)"):
        save_video(tmp_path / "v.npz", frames, spoiled, config)
    assert list(tmp_path.iterdir()) == []
    save_video(tmp_path / "v.npz", frames, positions, config)
    assert [p.name for p in tmp_path.iterdir()] == ["v.npz"]  # no temporary file left
