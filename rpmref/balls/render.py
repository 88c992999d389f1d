"""Anti-aliased rendering of discs: each pixel's value is the exact area of the
pixel covered by the disc (sub-pixel exact, closed form).

Pixel coordinates (shared by the whole package): x = column, y = row; pixel
(row i, column j) covers the square [j, j+1) × [i, i+1), so its centre is
(j + 0.5, i + 0.5) and a frame of size H × W covers [0, W] × [0, H].

The covered area of the rectangle [x0, x1] × [y0, y1] by a disc of radius r at
the origin is the inclusion–exclusion of one corner function,

    area = F(x1, y1) − F(x0, y1) − F(x1, y0) + F(x0, y0),
    F(x, y) = ∫_0^x ∫_0^y 1[u² + v² ≤ r²] dv du      (oriented integrals),

and F is odd in each argument because the disc is symmetric, so it only has to
be written out for x, y ≥ 0 (see ``quarter_disc_area``).
"""
import numpy as np

from rpmref.exact.validation import as_real_array, check_int, check_real


def quarter_disc_area(x, y, radius):
    """F(x, y): signed area of {0 ≤ u ≤ x, 0 ≤ v ≤ y, u² + v² ≤ r²} (oriented).

    For x, y ≥ 0 clipped to [0, r]: if the corner (x, y) is inside the disc the
    region is the rectangle x·y; otherwise, with u* = √(r² − y²) where the circle
    crosses v = y, it is y·u* + ∫_{u*}^{x} √(r² − u²) du, and
    ∫ √(r² − u²) du = ½ (u √(r² − u²) + r² arcsin(u/r)).
    Negative arguments flip the sign (F is odd in x and in y).

    Parameters
    ----------
    x : array_like
        Corner abscissae, broadcast against ``y``.
    y : array_like
        Corner ordinates.
    radius : float
        r > 0.

    Returns
    -------
    ndarray of float64
        F(x, y), the broadcast shape.

    Examples
    --------
    A quarter of the unit disc, and a rectangle inside it:

    >>> import math
    >>> from rpmref.balls.render import quarter_disc_area
    >>> abs(float(quarter_disc_area(1.0, 1.0, 1.0)) - math.pi / 4) < 1e-15   # a few ulps of 0.79
    True
    >>> float(quarter_disc_area(-0.5, 0.5, 1.0))
    -0.25
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sign = np.sign(x) * np.sign(y)
    ax = np.minimum(np.abs(x), radius)
    ay = np.minimum(np.abs(y), radius)
    r2 = radius * radius

    def primitive(u):  # ∫_0^u √(r² − t²) dt
        return 0.5 * (u * np.sqrt(np.maximum(r2 - u * u, 0.0))
                      + r2 * np.arcsin(np.clip(u / radius, -1.0, 1.0)))

    u_star = np.sqrt(np.maximum(r2 - ay * ay, 0.0))
    inside = ax * ax + ay * ay <= r2
    # where the corner is inside, u_star >= ax and the second branch is unused
    outside_area = ay * u_star + primitive(ax) - primitive(np.minimum(u_star, ax))
    return sign * np.where(inside, ax * ay, outside_area)


def disc_coverage(centres, radius, height, width):
    """Fraction of each pixel covered by each disc.

    Only a K × K window of pixels around each disc (K = ⌈2r⌉ + 2, enough to
    contain it) is computed; the rest is 0.

    Parameters
    ----------
    centres : array_like, shape (..., 2)
        Disc centres (x, y) in pixel coordinates.
    radius : float
        r > 0, in pixels.
    height : int
        Frame height H.
    width : int
        Frame width W.

    Returns
    -------
    ndarray of float64, shape (..., height, width)
        Values in [0, 1]; a disc wholly inside the frame sums to π r² over the pixels.

    Raises
    ------
    ValueError
        If ``centres`` does not end in an axis of 2 or is not finite, ``radius`` is
        not positive and finite, or ``height`` / ``width`` < 1.
    TypeError
        If ``centres`` is not an array of real numbers, ``radius`` not a real number or
        ``height`` / ``width`` not an integer (bool included).

    Examples
    --------
    >>> import math
    >>> from rpmref.balls.render import disc_coverage
    >>> coverage = disc_coverage([[4.0, 4.0]], 1.5, 8, 8)
    >>> coverage.shape  # the 1e-12 below: 64 pixel areas of O(1), each exact to a few ulps
    (1, 8, 8)
    >>> abs(float(coverage.sum()) - math.pi * 1.5 ** 2) < 1e-12
    True
    """
    centres = as_real_array(centres, "centres", allow_empty=True)  # NaN: ValueError
    if centres.shape[-1:] != (2,):
        raise ValueError(f"centres must have shape (..., 2); got {centres.shape}")
    radius = check_real(radius, "radius", minimum=0, inclusive=(False, True))
    height = check_int(height, "height", minimum=1)
    width = check_int(width, "width", minimum=1)
    lead = centres.shape[:-1]
    flat = centres.reshape(-1, 2)                              # (..., 2) -> (N, 2)
    kx = min(int(np.ceil(2 * radius)) + 2, width)
    ky = min(int(np.ceil(2 * radius)) + 2, height)
    # first pixel column / row of each window, kept inside the frame: (N,)
    x0 = np.clip(np.floor(flat[:, 0] - radius), 0, width - kx).astype(np.intp)
    y0 = np.clip(np.floor(flat[:, 1] - radius), 0, height - ky).astype(np.intp)
    # window pixel edges relative to each centre: (N, kx+1), (N, ky+1)
    dx = (x0[:, None] + np.arange(kx + 1)) - flat[:, 0:1]
    dy = (y0[:, None] + np.arange(ky + 1)) - flat[:, 1:2]
    corner = quarter_disc_area(dx[:, None, :], dy[:, :, None], radius)  # (N, ky+1, kx+1)
    # inclusion–exclusion over each pixel's four corners -> (N, ky, kx)
    area = corner[:, 1:, 1:] - corner[:, :-1, 1:] - corner[:, 1:, :-1] + corner[:, :-1, :-1]
    out = np.zeros((flat.shape[0], height, width))
    rows = y0[:, None, None] + np.arange(ky)[None, :, None]    # (N, ky, 1)
    cols = x0[:, None, None] + np.arange(kx)[None, None, :]    # (N, 1, kx)
    out[np.arange(flat.shape[0])[:, None, None], rows, cols] = np.clip(area, 0.0, 1.0)
    return out.reshape(lead + (height, width))


def render_frames(positions, radius, height, width, colours):
    """Frames of coloured discs on a black background.

    Pixel value = Σ_k colour_k · coverage_k. Discs whose centres are at least
    one diameter apart have disjoint interiors, so Σ_k coverage_k ≤ 1 and every
    value stays in [0, 1].

    Parameters
    ----------
    positions : array_like, shape (T, n_balls, 2)
        Centres (x, y) in pixels.
    radius : float
        Disc radius, in pixels.
    height : int
        Frame height.
    width : int
        Frame width.
    colours : array_like, shape (n_balls, C)
        Colours in [0, 1].

    Returns
    -------
    ndarray of float32, shape (T, C, height, width)
        The frames.

    Raises
    ------
    ValueError, TypeError
        As :func:`disc_coverage`; ValueError if ``positions`` is not (T, n_balls, 2)
        or ``colours`` not (n_balls, C).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.render import render_frames
    >>> frames = render_frames(np.array([[[4.0, 4.0]]]), 1.5, 8, 8, np.array([[1.0, 0.0, 0.0]]))
    >>> frames.shape, frames.dtype, float(frames[0, 0, 3, 3]), float(frames[0, 1].max())
    ((1, 3, 8, 8), dtype('float32'), 1.0, 0.0)
    """
    positions = as_real_array(positions, "positions", allow_empty=True)
    colours = as_real_array(colours, "colours", ndim=2)
    if positions.ndim != 3 or positions.shape[2] != 2:
        raise ValueError(f"positions must have shape (T, n_balls, 2); got {positions.shape}")
    if colours.shape[0] != positions.shape[1]:
        raise ValueError(f"colours must have shape (n_balls, C) = ({positions.shape[1]}, C); "
                         f"got {colours.shape}")
    coverage = disc_coverage(positions, radius, height, width)  # (T, n, H, W)
    frames = np.einsum("tnhw,nc->tchw", coverage, colours)       # (T, C, H, W)
    return np.clip(frames, 0.0, 1.0).astype(np.float32)


def frames_to_rgb_uint8(frames, scale=1):
    """(T, C, H, W) floats in [0, 1] → (T, H·scale, W·scale, 3) uint8 for images.

    One channel is shown as gray; three as RGB. Each pixel becomes a
    scale × scale block (nearest neighbour, so the anti-aliasing stays visible).

    Parameters
    ----------
    frames : array_like, shape (T, C, H, W)
        C = 1 or 3.
    scale : int, default 1
        Block size per pixel.

    Returns
    -------
    ndarray of uint8, shape (T, H·scale, W·scale, 3)
        The images.

    Raises
    ------
    ValueError
        If ``frames`` is not (T, 1 or 3, H, W) or not finite, or ``scale`` < 1.
    TypeError
        If ``frames`` is not an array of real numbers or ``scale`` not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.render import frames_to_rgb_uint8
    >>> images = frames_to_rgb_uint8(np.full((1, 1, 2, 2), 0.5), scale=2)
    >>> images.shape, images.dtype, int(images.max())
    ((1, 4, 4, 3), dtype('uint8'), 128)
    """
    frames = as_real_array(frames, "frames", allow_empty=True)  # NaN would be black
    if frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise ValueError(f"frames must have shape (T, 1 or 3, H, W); got {frames.shape}")
    scale = check_int(scale, "scale", minimum=1)
    img = np.transpose(frames, (0, 2, 3, 1))  # (T, C, H, W) -> (T, H, W, C)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = np.repeat(np.repeat(img, scale, axis=1), scale, axis=2)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def _checked_frames(frames):
    """(T ≥ 1, 1 or 3, H, W) real frames: an image needs at least one."""
    frames = as_real_array(frames, "frames", allow_empty=True)
    if frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise ValueError(f"frames must have shape (T, 1 or 3, H, W); got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames must hold at least one frame")
    return frames


def save_preview(path, frames, positions, colours=None, n_panels=8, trail=8, dpi=90):
    """PNG grid of ``n_panels`` evenly spaced frames, each with the recent ball centres drawn as a line.

    Needs matplotlib.

    Parameters
    ----------
    path : str or os.PathLike
        The PNG to write.
    frames : array_like, shape (T, C, H, W)
        The frames.
    positions : array_like, shape (T, n_balls, 2)
        Ball centres (x = column, y = row).
    colours : sequence, optional
        (n_balls, 3) trail colours; by default matplotlib's tab10 colours.
    n_panels : int, default 8
        Frames shown.
    trail : int, default 8
        Earlier centres drawn before each shown frame.
    dpi : int, default 90
        Resolution.

    Returns
    -------
    None

    Raises
    ------
    RuntimeError
        Without matplotlib.
    ValueError
        If ``frames`` is not (T ≥ 1, 1 or 3, H, W), ``positions`` not (T, n_balls, 2),
        ``n_panels`` or ``dpi`` < 1 or ``trail`` < 0.
    TypeError
        If ``n_panels``, ``trail`` or ``dpi`` is not an integer (bool included).

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls import BallsConfig, make_video
    >>> from rpmref.balls.render import save_preview
    >>> frames, positions = make_video(BallsConfig(n_frames=8, size=16, diameter=3.0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_preview(os.path.join(tmp, "preview.png"), frames, positions, n_panels=2)
    ...     print(os.listdir(tmp))
    ['preview.png']
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is in the [plot] extra
        raise RuntimeError("--preview needs matplotlib: pip install matplotlib") from e
    frames = _checked_frames(frames)
    positions = as_real_array(positions, "positions")
    T, C, H, W = frames.shape
    if positions.ndim != 3 or positions.shape[0] != T or positions.shape[2] != 2:
        raise ValueError(f"positions must have shape (T, n_balls, 2) with T = {T}; "
                         f"got {positions.shape}")
    n_panels = check_int(n_panels, "n_panels", minimum=1)
    trail = check_int(trail, "trail", minimum=0)
    dpi = check_int(dpi, "dpi", minimum=1)
    n_balls = positions.shape[1]
    if colours is None:
        colours = [plt.get_cmap("tab10")(b % 10)[:3] for b in range(n_balls)]
    n_panels = max(1, min(n_panels, T))
    index = np.linspace(0, T - 1, n_panels).round().astype(int)
    cols = min(4, n_panels)
    rows = -(-n_panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), squeeze=False)
    rgb = frames_to_rgb_uint8(frames[index])
    for ax in axes.ravel():
        ax.axis("off")
    for k, t in enumerate(index):
        ax = axes.ravel()[k]
        # extent puts pixel (i, j) on [j, j+1) x [i, i+1), matching the coordinates
        ax.imshow(rgb[k], extent=(0, W, H, 0), interpolation="nearest")
        lo = max(0, t - trail)
        for b in range(n_balls):
            ax.plot(positions[lo:t + 1, b, 0], positions[lo:t + 1, b, 1], ".-", lw=0.7,
                    ms=2.0, color=colours[b], alpha=0.8)
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_title(f"frame {t}", fontsize=8)
    fig.tight_layout(pad=0.4, h_pad=0.8)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def save_gif(path, frames, scale=4, fps=10):
    """Animated GIF of the frames, each pixel a scale × scale block. Needs Pillow.

    Parameters
    ----------
    path : str or os.PathLike
        The GIF to write.
    frames : array_like, shape (T, C, H, W)
        The frames, C = 1 or 3.
    scale : int, default 4
        Block size per pixel.
    fps : float, default 10
        Frames per second.

    Returns
    -------
    None

    Raises
    ------
    RuntimeError
        Without Pillow.
    ValueError
        If ``frames`` is not (T ≥ 1, 1 or 3, H, W) or ``fps`` not positive and finite.
    TypeError
        If ``fps`` is not a real number or ``scale`` not an integer.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls import BallsConfig, make_video
    >>> from rpmref.balls.render import save_gif
    >>> frames, _ = make_video(BallsConfig(n_frames=4, size=16, diameter=3.0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_gif(os.path.join(tmp, "video.gif"), frames, scale=1)
    ...     print(os.listdir(tmp))
    ['video.gif']
    """
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow comes with matplotlib
        raise RuntimeError("--gif needs Pillow: pip install pillow") from e
    fps = check_real(fps, "fps", minimum=0, inclusive=(False, True))
    rgb = frames_to_rgb_uint8(_checked_frames(frames), scale=scale)
    images = [Image.fromarray(frame) for frame in rgb]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0)
