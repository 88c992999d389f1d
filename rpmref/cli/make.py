"""``rpmref balls make``: generate a bouncing-balls video (Appendix D)."""
import argparse
import os
import sys
import time

from rpmref.balls.render import render_frames, save_gif, save_preview
from rpmref.balls.video import BallsConfig, ball_colours, save_video, simulate


def add_parser(subparsers):
    """Register ``rpmref balls make``."""
    defaults = BallsConfig()
    p = subparsers.add_parser(
        "make", help="generate a bouncing-balls video (Appendix D)",
        description="Generate a bouncing-balls video (Sec. 5, Appendix D) and save frames, "
        "ball centres and the config to an .npz file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="output .npz path")
    p.add_argument("--preview", help="also write a PNG grid of frames with trajectories")
    p.add_argument("--gif", help="also write an animated GIF")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--frames", type=int, default=defaults.n_frames, help="number of frames")
    p.add_argument("--balls", type=int, default=defaults.n_balls, help="number of balls")
    p.add_argument("--size", type=int, default=defaults.size, help="frame side in pixels")
    p.add_argument("--diameter", type=float, default=defaults.diameter,
                   help="ball diameter (= step per frame) in pixels")
    p.add_argument("--noise", type=float, default=defaults.noise,
                   help="direction noise half-range a in radians")
    p.add_argument("--gray", action="store_true",
                   help="one grayscale channel (balls differ by intensity) instead of RGB")
    p.set_defaults(func=_make_command)


def _make_command(args):
    try:
        config = BallsConfig(n_frames=args.frames, n_balls=args.balls, size=args.size,
                             diameter=args.diameter, noise=args.noise,
                             channels="gray" if args.gray else "rgb")
    except ValueError as e:
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    for target in (args.out, args.preview, args.gif):
        folder = os.path.dirname(os.path.abspath(target)) if target else None
        if folder and not os.path.isdir(folder):
            print(f"rpmref balls make: error: directory {folder} does not exist", file=sys.stderr)
            return 2
    start = time.perf_counter()
    try:
        trajectory = simulate(config, args.seed)
    except (ValueError, RuntimeError) as e:
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    frames = render_frames(trajectory.positions, 0.5 * config.diameter, config.size,
                           config.size, ball_colours(config))
    elapsed = time.perf_counter() - start
    written = save_video(args.out, frames, trajectory.positions, config)
    kind = "RGB" if config.channels == "rgb" else "gray"
    print(f"wrote {written}: {config.n_frames} frames, {config.n_balls} balls, "
          f"{config.size}x{config.size} {kind}, diameter {config.diameter:g} px, "
          f"noise ±{config.noise:.4f} rad, seed {args.seed}")
    print(f"generated in {elapsed:.3f} s; {trajectory.n_redrawn} of {trajectory.n_moves} moves "
          f"redrawn ({100.0 * trajectory.n_redrawn / max(trajectory.n_moves, 1):.1f}%); "
          f"{trajectory.n_dead_ends} dead ends (backtracked)")
    try:
        if args.preview:
            colours = ball_colours(config) if config.channels == "rgb" else None
            save_preview(args.preview, frames, trajectory.positions, colours=colours)
            print(f"wrote {args.preview}")
        if args.gif:
            save_gif(args.gif, frames)
            print(f"wrote {args.gif}")
    except RuntimeError as e:  # matplotlib / Pillow missing
        print(f"rpmref balls make: error: {e}", file=sys.stderr)
        return 2
    return 0
