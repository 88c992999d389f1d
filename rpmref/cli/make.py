"""``rpmref balls make``: generate a bouncing-balls video (Appendix D).

Every output (``--out``, ``--preview``, ``--gif``) is checked before the video
is simulated — the extension, a writable folder, matplotlib / Pillow for the
images — and so is the memory rendering will need; bad arguments exit 2. A
failure while working (out of memory, a full disk) is one line with exit 1.
"""
import importlib.util
import os
import sys
import time

from rpmref.balls.render import render_frames, save_gif, save_preview
from rpmref.balls.runstore import replacing
from rpmref.balls.video import (
    BallsConfig, available_memory, ball_colours, render_nbytes, save_video, simulate)
from rpmref.cli.common import (
    DefaultsHelpFormatter, bounded_int, check_distinct_outputs, check_output_file, flag_names,
    matplotlib_suffixes, nonnegative_int,
    os_error_text, positive_int)

PROG = "rpmref balls make"
#: BallsConfig field → the flag that sets it, for error messages
FLAGS = {"n_frames": "--frames", "n_balls": "--balls", "size": "--size",
         "diameter": "--diameter", "noise": "--noise", "channels": "--gray"}
#: the fewest frames a video may have: ``balls train`` and ``compare`` learn from pairs of
#: consecutive frames and InfoNCE needs at least two pairs (a positive and a negative)
MIN_FRAMES = 3


def add_parser(subparsers):
    """Register ``rpmref balls make``."""
    defaults = BallsConfig()
    p = subparsers.add_parser(
        "make", help="generate a bouncing-balls video (Appendix D)",
        description="Generate a bouncing-balls video (Sec. 5, Appendix D) and save frames, "
        "ball centres and the config to an .npz file.",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--preview", help="also write a grid of frames with trajectories "
                   "(.png, .pdf, .svg, ...: any format matplotlib writes; needs matplotlib)")
    p.add_argument("--gif", help="also write an animated GIF (.gif; needs Pillow)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")
    p.add_argument("--frames", default=defaults.n_frames,
                   type=bounded_int(MIN_FRAMES, why="training needs 2 pairs of consecutive "
                                    "frames"),
                   help=f"number of frames, at least {MIN_FRAMES} (training needs two pairs "
                        "of consecutive frames)")
    p.add_argument("--balls", type=positive_int, default=defaults.n_balls, help="number of balls")
    p.add_argument("--size", type=positive_int, default=defaults.size,
                   help="frame side in pixels")
    p.add_argument("--diameter", type=float, default=defaults.diameter,
                   help="ball diameter (= step per frame) in pixels")
    p.add_argument("--noise", type=float, default=defaults.noise,
                   help="direction noise half-range a in radians (default: π/8)")
    p.add_argument("--gray", action="store_true",
                   help="one grayscale channel (balls differ by intensity) instead of RGB")
    p.set_defaults(func=_make_command)


def _fail(message, code):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _count(n, noun):
    """'1 frame', '2 frames'."""
    return f"{n} {noun if n == 1 else noun + 's'}"


def _gib(n_bytes):
    return f"{n_bytes / 2 ** 30:.3g} GiB"


def _check_outputs(args, config):
    check_output_file(args.out, "--out", (".npz",))
    if args.preview is not None:   # '' is refused below, not skipped
        if importlib.util.find_spec("matplotlib") is None:
            raise ValueError("--preview needs matplotlib: pip install matplotlib")
        check_output_file(args.preview, "--preview", matplotlib_suffixes())
    if args.gif is not None:
        if importlib.util.find_spec("PIL") is None:
            raise ValueError("--gif needs Pillow: pip install pillow")
        check_output_file(args.gif, "--gif", (".gif",))
    check_distinct_outputs(("--out", args.out), ("--preview", args.preview), ("--gif", args.gif))
    need, available = render_nbytes(config), available_memory()
    if available is not None and need > available:
        raise ValueError(f"--frames {config.n_frames} of --size {config.size} px need about "
                         f"{_gib(need)} of memory to render; {_gib(available)} is available")


def _make_command(args):
    try:
        config = BallsConfig(n_frames=args.frames, n_balls=args.balls, size=args.size,
                             diameter=args.diameter, noise=args.noise,
                             channels="gray" if args.gray else "rgb")
        _check_outputs(args, config)
    except (ValueError, TypeError) as e:
        return _fail(flag_names(str(e), FLAGS), 2)
    start = time.perf_counter()
    try:
        trajectory = simulate(config, args.seed)
    except (ValueError, RuntimeError) as e:  # the balls do not fit / the box is too crowded
        return _fail(flag_names(str(e), FLAGS), 2)
    try:
        frames = render_frames(trajectory.positions, 0.5 * config.diameter, config.size,
                               config.size, ball_colours(config))
        elapsed = time.perf_counter() - start
        written = save_video(args.out, frames, trajectory.positions, config)
    except MemoryError:
        return _fail(f"out of memory rendering {config.n_frames} frames of {config.size} px "
                     f"(about {_gib(render_nbytes(config))})", 1)
    except OSError as e:
        return _fail(f"cannot write {args.out} ({os_error_text(e)})", 1)
    kind = "RGB" if config.channels == "rgb" else "gray"
    print(f"wrote {written}: {_count(config.n_frames, 'frame')}, "
          f"{_count(config.n_balls, 'ball')}, "
          f"{config.size}x{config.size} {kind}, diameter {config.diameter:g} px, "
          f"noise ±{config.noise:.4f} rad, seed {args.seed}")
    print(f"generated in {elapsed:.3f} s; {trajectory.n_redrawn} of "
          f"{_count(trajectory.n_moves, 'move')} redrawn "
          f"({100.0 * trajectory.n_redrawn / max(trajectory.n_moves, 1):.1f}%); "
          f"{_count(trajectory.n_dead_ends, 'dead end')} (backtracked)")
    for flag, path in (("--preview", args.preview), ("--gif", args.gif)):
        if path is None:
            continue
        try:   # written beside and renamed: a failure leaves no truncated image
            with replacing(path, suffix=".tmp" + os.path.splitext(path)[1]) as target:
                if flag == "--preview":
                    colours = ball_colours(config) if config.channels == "rgb" else None
                    save_preview(target, frames, trajectory.positions, colours=colours)
                else:
                    save_gif(target, frames)
        except OSError as e:
            return _fail(f"cannot write {flag} {path} ({os_error_text(e)}); {written} is written", 1)
        except MemoryError:
            return _fail(f"out of memory writing {flag} {path}; {written} is written", 1)
        print(f"wrote {path}")
    return 0
