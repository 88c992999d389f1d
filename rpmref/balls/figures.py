"""Fig. 1 of the paper, redrawn from a critic comparison (``rpmref.compare``).

matplotlib is imported inside the function, so ``rpmref`` works without it.
Coordinates follow the package convention: x = column, y = row, pixel (i, j)
covers [j, j+1) × [i, i+1), so ``imshow(..., extent=(0, W, H, 0))`` puts ball
positions directly on the image.
"""
import numpy as np

BALL_COLOURS = ("tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple")


def fig1(path, frames, positions, held_out_frame, held_out_positions, panels,
         n_example_frames=3, trail=6, dpi=80):
    """Draw and save Fig. 1 (Sec. 5); returns ``path``. Needs matplotlib.

    Row A: example frames with the true trajectories over the previous
    ``trail`` frames. Row B: decoded vs true coordinate per panel. Row C:
    InfoNCE estimate per epoch, held-out R² per epoch, and the centres of mass
    of each panel drawn over the held-out frame.

    Parameters
    ----------
    path : str
        The PNG to write.
    frames : ndarray, shape (T, C, H, W)
        Training frames in [0, 1].
    positions : ndarray, shape (T, n_balls, 2)
        Their ball centres.
    held_out_frame : ndarray, shape (C, H, W)
        One held-out frame.
    held_out_positions : ndarray, shape (n_balls, 2)
        Its ball centres.
    panels : dict
        Ordered name → dict with ``pred``, ``true``: (T', 2·n_balls) held-out
        readout predictions and truth; ``r2``: overall held-out R² (for the title);
        ``history``: list of {"epoch", "estimate"} (absent for the untrained
        encoder); ``r2_per_epoch``: list of (epoch, held-out R²) (may be empty);
        ``centres``: (n_maps, 2) raw centres of mass on ``held_out_frame``;
        ``calibrated``: (n_balls, 2) matched maps after affine calibration (or
        None); ``matched_r2``: optional [n_balls] held-out R² of each ball's
        matched map.
    n_example_frames : int, default 3
        Frames in row A.
    trail : int, default 6
        Trajectory length in row A.
    dpi : int, default 80
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        If the frames and positions do not fit together, or ``panels`` is empty.

    Examples
    --------
    A single panel whose readout is perfect:

    >>> import os, tempfile
    >>> from rpmref.balls import BallsConfig, make_video
    >>> from rpmref.balls.figures import fig1
    >>> frames, positions = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0))
    >>> true = positions.reshape(24, 6)
    >>> panel = {"pred": true, "true": true, "r2": 1.0, "centres": positions[12],
    ...          "calibrated": positions[12], "history": [{"epoch": 1, "estimate": 0.5}],
    ...          "r2_per_epoch": [(0, 0.8), (1, 1.0)]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = fig1(os.path.join(tmp, "fig1.png"), frames, positions, frames[12], positions[12],
    ...                 {"rbf": panel})
    ...     print(os.path.basename(path), os.path.getsize(path) > 0)
    fig1.png True
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.asarray(frames)
    positions = np.asarray(positions)
    if frames.ndim != 4 or positions.ndim != 3 or len(frames) != len(positions):
        raise ValueError(f"frames must be (T, C, H, W) and positions (T, n_balls, 2) with "
                         f"the same T; got {frames.shape} and {positions.shape}")
    if not panels:
        raise ValueError("panels must name at least one critic or baseline")
    names = list(panels)
    n_cols = max(len(names), n_example_frames, 3)
    fig = plt.figure(figsize=(2.6 * n_cols, 2.6 * 3 + 2.4), dpi=dpi)
    grid = fig.add_gridspec(4, n_cols, height_ratios=[1, 1, 1, 1], hspace=0.55, wspace=0.35)
    height, width = frames.shape[2], frames.shape[3]
    extent = (0, width, height, 0)

    # A: frames and true trajectories
    t_show = np.linspace(trail, len(frames) - 1, n_example_frames).astype(int)
    for col, t in enumerate(t_show):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(_rgb(frames[t]), extent=extent, interpolation="nearest")
        for b in range(positions.shape[1]):
            path_xy = positions[t - trail:t + 1, b]
            ax.plot(path_xy[:, 0], path_xy[:, 1], "-", lw=1, color="white", alpha=0.8)
            ax.plot(path_xy[:-1, 0], path_xy[:-1, 1], ".", ms=3, color="white")
        ax.set_title(f"A  frame {t}", fontsize=9, loc="left")
        ax.set_xticks([])
        ax.set_yticks([])

    # B: decoded vs true coordinates on held-out frames
    for col, name in enumerate(names):
        panel = panels[name]
        ax = fig.add_subplot(grid[1, col])
        true, pred = np.asarray(panel["true"]), np.asarray(panel["pred"])
        lo, hi = float(true.min()), float(true.max())
        for c in range(true.shape[1]):
            ax.scatter(true[:, c], pred[:, c], s=1.5, alpha=0.35, lw=0, rasterized=True,
                       color=BALL_COLOURS[(c // 2) % len(BALL_COLOURS)])
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_xlim(lo - 2, hi + 2)
        ax.set_ylim(lo - 2, hi + 2)
        ax.set_title(f"B  {name}: R² {panel['r2']:.3f}", fontsize=9, loc="left")
        ax.set_xlabel("true coordinate (px)", fontsize=8)
        if col == 0:
            ax.set_ylabel("decoded (px)", fontsize=8)
        ax.tick_params(labelsize=7)

    # C: InfoNCE estimate and held-out R² per epoch
    ax_est = fig.add_subplot(grid[2, 0])
    ax_r2 = fig.add_subplot(grid[2, 1])
    for name in names:
        history = panels[name].get("history") or []
        if history:
            ax_est.plot([h["epoch"] for h in history], [h["estimate"] for h in history],
                        label=name, lw=1)
        r2_curve = panels[name].get("r2_per_epoch") or []
        if r2_curve:
            epochs, r2 = zip(*r2_curve)
            ax_r2.plot(epochs, r2, label=name, lw=1)
        elif "history" not in panels[name]:  # a baseline: one horizontal line
            ax_r2.axhline(panels[name]["r2"], color="grey", ls="--", lw=0.8, label=name)
    ax_est.set_title("C  InfoNCE estimate (nats)", fontsize=9, loc="left")
    ax_est.set_xlabel("epoch", fontsize=8)
    ax_r2.set_title("C  held-out R² (linear readout)", fontsize=9, loc="left")
    ax_r2.set_xlabel("epoch", fontsize=8)
    for ax in (ax_est, ax_r2):
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)

    # per-map tracking: held-out R² of the map matched to each ball
    if n_cols >= 3 and all("matched_r2" in panels[name] for name in names):
        ax_map = fig.add_subplot(grid[2, 2])
        n_balls = len(panels[names[0]]["matched_r2"])
        bar = 0.8 / n_balls
        for b in range(n_balls):
            values = [max(panels[name]["matched_r2"][b], -0.2) for name in names]
            ax_map.bar(np.arange(len(names)) + (b - (n_balls - 1) / 2) * bar, values, bar,
                       color=BALL_COLOURS[b % len(BALL_COLOURS)], label=f"ball {b + 1}")
        ax_map.axhline(0.95, color="k", lw=0.6, ls=":")
        ax_map.set_xticks(np.arange(len(names)))
        ax_map.set_xticklabels(names, fontsize=7)
        ax_map.set_ylim(-0.2, 1.02)
        ax_map.set_title("C  matched-map R² per ball", fontsize=9, loc="left")
        ax_map.tick_params(labelsize=7)

    # C (continued): centres of mass over one held-out frame, one panel each
    for col, name in enumerate(names):
        panel = panels[name]
        ax = fig.add_subplot(grid[3, col])
        ax.imshow(_rgb(held_out_frame), extent=extent, interpolation="nearest")
        centres = np.asarray(panel["centres"])
        ax.plot(centres[:, 0], centres[:, 1], "o", ms=5, mfc="none", mec="white", mew=1.2,
                label="centre of mass")
        if panel.get("calibrated") is not None:
            cal = np.asarray(panel["calibrated"])
            for b in range(min(len(cal), len(held_out_positions))):  # error of each matched map
                ax.plot([cal[b, 0], held_out_positions[b, 0]],
                        [cal[b, 1], held_out_positions[b, 1]], "-", color="yellow", lw=0.8)
            ax.plot(cal[:, 0], cal[:, 1], "x", ms=6, color="yellow", mew=1.5,
                    label="calibrated")
        ax.plot(held_out_positions[:, 0], held_out_positions[:, 1], "+", ms=6,
                color="black", mew=1.0, label="true")
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"C  {name}: maps", fontsize=9, loc="left")
        if col == 0:  # below the panel, so it hides no ball
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.02), ncol=3,
                      facecolor="0.25", labelcolor="white", framealpha=1.0,
                      handletextpad=0.2, columnspacing=0.8)

    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _rgb(frame):
    """(C, H, W) in [0, 1] -> (H, W, 3) for imshow (grey if C == 1)."""
    frame = np.clip(np.asarray(frame, dtype=float), 0.0, 1.0)
    image = np.transpose(frame, (1, 2, 0))  # (C, H, W) -> (H, W, C)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]
