"""The MI-estimation staircase of Poole et al. (2019), "On
variational bounds of mutual information", with the critics of Sec. 3.2 and 5.

x ∈ R^d (d = 20) standard normal, y = ρx + √(1−ρ²) ε, so I(X; Y) = −(d/2) log(1−ρ²);
ρ is chosen to give 2, 4, 6, 8, 10 nats. Here z = x and z' = y (identity
encoders, no noise). For each level and batch size K = 64 we report

* I_∞ (Eq. 7, 25) in closed form and I_K (Eq. 6) by Monte Carlo with its
  standard error, for the optimal critic log p(y|x)/p(y) (I_∞ = I exactly),
  the best bilinear critic xᵀW*y and the best RBF critic −‖x − y‖²/(2ℓ*²),
  W* and ℓ* maximising I_∞ (``rpmref.gaussian``);
* log K, the ceiling every I_K respects (E7).

The three critics at one level are scored on the same batches (common random
numbers), so their differences are sharper than their standard errors suggest.
"""
import numpy as np

from rpmref.exact.validation import check_int, check_positive_int, check_real
from rpmref.gaussian import closed_form as g
from rpmref.gaussian.monte_carlo import infonce_bounds

LEVELS = (2.0, 4.0, 6.0, 8.0, 10.0)   # true MI in nats (Poole et al. 2019, Fig. 2)
DIM = 20
BATCH_SIZE = 64
BATCHES = 2000                        # Monte Carlo batches per (level, critic)
#: How far the built joint's MI may lie from the level asked for (relative): ρ rounds to
#: float64, and near ρ = 1 that moves I = −(d/2) log(1 − ρ²) (by 2e-5 at 16 nats, d = 1).
MI_RTOL = 1e-9
#: The largest dimension d the staircase builds: its joint covariance is (2d, 2d), at most
#: 2^26 float64 entries (512 MiB, the budget of the Monte Carlo score matrices).
MAX_DIM = 4096


def _check_dim(dim):
    return check_int(dim, "dim", minimum=1, maximum=MAX_DIM)


def staircase_joint(true_mi, dim=DIM):
    """The joint of (x, y) with I(X; Y) = ``true_mi`` nats, and its per-coordinate correlation ρ.

    x ~ N(0, I_d), y = ρx + √(1 − ρ²) ε with ρ = √(1 − exp(−2I/d)), so
    I(X; Y) = −(d/2) log(1 − ρ²) = I, to ``MI_RTOL`` (1e-9) relative for the ρ float64
    holds; z = x and z' = y (identity encoders, no noise, through ``recognition_joint``).

    Parameters
    ----------
    true_mi : float
        The mutual information in nats (> 0, finite).
    dim : int, default DIM (20)
        The dimension d of x and y (≥ 1).

    Returns
    -------
    joint : GaussianPair
        P(x, y), k = d.
    rho : float
        ρ.

    Raises
    ------
    ValueError
        ``true_mi`` not a positive finite number or beyond ``largest_true_mi(dim)`` (a
        correlation float64 cannot hold to ``MI_RTOL`` of the MI), or ``dim`` not in
        [1, ``MAX_DIM``].
    TypeError
        ``true_mi`` not a real number (bool, complex, strings and arrays are refused) or
        ``dim`` not an integer (bool and floats are refused).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import mutual_information
    >>> from rpmref.gaussian.staircase import staircase_joint
    >>> joint, rho = staircase_joint(2.0, dim=2)
    >>> bool(np.isclose(rho, np.sqrt(1 - np.exp(-2.0))))      # ρ² = 1 − e^{−2I/d}
    True
    >>> bool(np.isclose(mutual_information(joint), 2.0))
    True
    """
    true_mi = check_real(true_mi, "true_mi", minimum=0, inclusive=(False, True))
    dim = _check_dim(dim)
    if not _held_to_tolerance(true_mi, dim):
        raise ValueError(f"true_mi = {true_mi:g} nats in {dim} dimension(s) needs a correlation "
                         f"ρ = 1 − {0.5 * np.exp(-2 * true_mi / dim):.2g} per coordinate, too "
                         f"close to 1 for float64 to hold it to {MI_RTOL:g} of the MI: at "
                         f"most {largest_true_mi(dim):.4g} nats at dim = {dim}")
    rho = float(np.sqrt(-np.expm1(-2.0 * true_mi / dim)))
    eye = np.eye(dim)
    cov_xy = np.block([[eye, rho * eye], [rho * eye, eye]])
    return g.recognition_joint(cov_xy, eye, eye), rho


def _held_to_tolerance(true_mi, dim):
    """True if the float64 ρ for ``true_mi`` gives that MI to ``MI_RTOL``: ρ =
    √(−expm1(−2I/d)) is within an ulp (≤ 2^-52 ρ) of the exact value, which moves
    I = −(d/2) log(1 − ρ²) by at most d ρ² 2^-52 / (1 − ρ²) = d 2^-52 expm1(2I/d); twice
    that must be within MI_RTOL · I (a relative 4e-16 for small I; false beyond the one
    root near 8.4 nats per dimension)."""
    with np.errstate(over="ignore"):
        return dim * 2.0 ** -51 * np.expm1(2.0 * true_mi / dim) <= MI_RTOL * true_mi


def largest_true_mi(dim=DIM):
    """The largest ``true_mi`` that ``staircase_joint`` can build at ``dim`` (nats, to
    about 1e-3 relative): beyond it the rounding of ρ to float64 moves the MI by more than
    ``MI_RTOL`` (near 8.4 nats per dimension; 1 − ρ itself reaches float64's rounding
    near 18).

    Parameters
    ----------
    dim : int, default DIM (20)
        The dimension d (≥ 1).

    Returns
    -------
    float

    Raises
    ------
    TypeError, ValueError
        ``dim`` not an integer in [1, ``MAX_DIM``].

    Examples
    --------
    >>> from rpmref.gaussian.staircase import largest_true_mi
    >>> 8 < largest_true_mi(1) < 9.5
    True
    """
    dim = _check_dim(dim)
    low, high = 1.0 * dim, 40.0 * dim     # held at 1 nat per dimension, not at 40
    while high - low > 1e-3 * low:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _held_to_tolerance(mid, dim) else (low, mid)
    return low


def benchmark_rows(levels=LEVELS, dim=DIM, batch_size=BATCH_SIZE, batches=BATCHES, seed=0):
    """The staircase: one row per MI level, three critics scored on the same batches.

    For each level, the optimal, the best bilinear (W*) and the best RBF (ℓ*) critic:
    I_∞ (Eq. 7, 25) in closed form and I_K (Eq. 6) by Monte Carlo (``infonce_bounds``,
    common random numbers; seed ``[seed, level index]``). Deterministic given ``seed``.

    Parameters
    ----------
    levels : sequence of float, default LEVELS (2, 4, 6, 8, 10)
        The true MI levels, in nats (each > 0).
    dim : int, default DIM (20)
        The dimension d.
    batch_size : int, default BATCH_SIZE (64)
        K, pairs per batch.
    batches : int, default BATCHES (2000)
        Monte Carlo batches per level (≥ 2).
    seed : int, default 0
        The seed of the batches.

    Returns
    -------
    list of dict
        Keys ``true_mi``, ``log_k``, ``dim``, ``rho``, ``rbf_lengthscale`` and, for each
        critic name in (optimal, bilinear, rbf), ``infonce_limit_<name>``,
        ``infonce_<name>`` and ``infonce_<name>_stderr`` (nats).

    Raises
    ------
    ValueError
        As for ``staircase_joint`` on each level and ``dim``; ``batch_size`` < 1,
        ``batches`` < 2 or ``seed`` < 0.
    TypeError
        ``levels`` not a sequence of real numbers, or as for ``staircase_joint``;
        ``batch_size``, ``batches`` or ``seed`` not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian.staircase import benchmark_rows
    >>> (row,) = benchmark_rows(levels=(1.0,), dim=2, batch_size=8, batches=20)
    >>> bool(np.isclose(row["infonce_limit_optimal"], 1.0))   # E4: the optimal critic reaches I
    True
    >>> # unit variances: the best bilinear w = ρ per coordinate gives I_∞ = (d/2) ρ² = 1 − e^{−1}
    >>> bool(np.isclose(row["infonce_limit_bilinear"], 1 - np.exp(-1.0)))
    True
    >>> all(row[f"infonce_{name}"] <= row["log_k"] for name in ("optimal", "bilinear", "rbf"))
    True
    """
    if isinstance(levels, (str, bytes)) or not hasattr(levels, "__iter__"):
        raise TypeError(f"levels must be a sequence of MI levels in nats; got {levels!r}")
    levels = [check_real(level, f"levels[{i}]", minimum=0, inclusive=(False, True))
              for i, level in enumerate(levels)]
    dim = _check_dim(dim)
    batch_size = check_positive_int(batch_size, "batch_size")
    batches = check_positive_int(batches, "batches", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    rows = []
    for index, level in enumerate(levels):
        joint, rho = staircase_joint(level, dim)
        ell = g.optimal_rbf_lengthscale(joint)
        critics = {"optimal": g.optimal_critic(joint),
                   "bilinear": g.optimal_bilinear_critic(joint),
                   "rbf": g.rbf_critic(ell, dim)}
        row = {"true_mi": float(level), "log_k": float(np.log(batch_size)), "dim": int(dim),
               "rho": rho, "rbf_lengthscale": ell}
        bounds = infonce_bounds(joint, critics, batch_size, batches,
                                rng=np.random.default_rng([seed, index]))   # same batches
        for name, critic in critics.items():
            row[f"infonce_limit_{name}"] = g.infonce_limit(joint, critic)
            row[f"infonce_{name}"], row[f"infonce_{name}_stderr"] = bounds[name]
        rows.append(row)
    return rows


def format_table(rows):
    """The rows of ``benchmark_rows`` as a fixed-width text table (nats, ± one standard error).

    Parameters
    ----------
    rows : list of dict
        From ``benchmark_rows``.

    Returns
    -------
    str
        A header, a rule and one line per row.

    Raises
    ------
    KeyError
        A row without the keys of ``benchmark_rows``.

    Examples
    --------
    >>> from rpmref.gaussian.staircase import benchmark_rows, format_table
    >>> table = format_table(benchmark_rows(levels=(1.0, 2.0), dim=2, batch_size=8, batches=20))
    >>> lines = table.splitlines()
    >>> len(lines), lines[0].split("|")[0].split()
    (4, ['true', 'MI', 'log', 'K'])
    >>> lines[2].split()[:2]                  # true MI 1, log 8 = 2.0794...
    ['1.00', '2.079']
    """
    head = (f"{'true MI':>7} {'log K':>6} | {'I_inf opt':>9} {'I_K opt':>14} | "
            f"{'I_inf bil':>9} {'I_K bil':>14} | {'I_inf rbf':>9} {'I_K rbf':>14} {'ell*':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = [f"{r['true_mi']:7.2f} {r['log_k']:6.3f}"]
        for name in ("optimal", "bilinear", "rbf"):
            cells.append(f"{r[f'infonce_limit_{name}']:9.3f} "
                         f"{r[f'infonce_{name}']:7.3f} ± {r[f'infonce_{name}_stderr']:.3f}")
        ell = r["rbf_lengthscale"]
        lines.append(" | ".join(cells) + (f" {ell:6.3f}" if ell < 1e4 else f" {ell:6.3g}"))
    return "\n".join(lines)


def plot(rows, path):
    """Write the staircase figure: I_K of each critic (± 2 standard errors) and I_∞ of the
    bilinear and RBF critics against the true MI, with the log K ceiling. Needs matplotlib.

    Parameters
    ----------
    rows : list of dict
        From ``benchmark_rows``.
    path : str or path-like
        The image file to write (its format from the suffix, as ``matplotlib.savefig``).

    Returns
    -------
    None

    Raises
    ------
    ImportError
        matplotlib is not installed.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.gaussian.staircase import benchmark_rows, plot
    >>> rows = benchmark_rows(levels=(1.0, 2.0), dim=2, batch_size=8, batches=20)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "staircase.png")
    ...     plot(rows, path)
    ...     os.path.getsize(path) > 0
    True
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true = np.array([r["true_mi"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.6, 4.2), dpi=110)
    ax.plot(true, true, color="0.3", lw=1, label="true MI = I_∞ (optimal critic)")
    ax.axhline(rows[0]["log_k"], color="0.5", ls=":", lw=1.2,
               label=f"log K = {rows[0]['log_k']:.2f} (K = {round(np.exp(rows[0]['log_k']))})")
    styles = {"optimal": ("C0", "o", "optimal critic log p(y|x)/p(y)"),
              "bilinear": ("C3", "s", "best bilinear xᵀW*y"),
              "rbf": ("C2", "^", "best RBF −‖x−y‖²/(2ℓ*²)")}
    for name, (colour, marker, label) in styles.items():
        estimate = np.array([r[f"infonce_{name}"] for r in rows])
        stderr = np.array([r[f"infonce_{name}_stderr"] for r in rows])
        ax.errorbar(true, estimate, yerr=2 * stderr, color=colour, marker=marker, ms=5,
                    capsize=2, lw=1.2, label=f"I_K, {label}")
        if name != "optimal":
            ax.plot(true, [r[f"infonce_limit_{name}"] for r in rows], color=colour, ls="--",
                    lw=1, label=f"I_∞, {label.split(' ', 1)[1]}")
    ax.set_xlabel("true MI (nats)")
    ax.set_ylabel("InfoNCE objective (nats)")
    ax.set_title(f"Poole et al. staircase, d = {rows[0]['dim']}, K = "
                 f"{round(np.exp(rows[0]['log_k']))}", fontsize=10)
    ax.set_xlim(0, true.max() + 1)
    ax.set_ylim(0, true.max() + 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["staircase_joint", "largest_true_mi", "benchmark_rows", "format_table", "plot"]
