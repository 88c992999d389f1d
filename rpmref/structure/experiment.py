"""The structure experiment of ``rpmref structure``: invariance, learning, Gaussian maps.

For each geometry: data of ``SIZES[kind][0]`` states (a side of the grid), latents of
``SIZES[kind][1]``, the topographic encoder = contiguous blocks (``coarse_encoder``).

1. invariance — ``invariance_summary`` over every labelling (k ≤ 8) or 10,000 of them
   (the identity and the geometry's symmetries included);
2. learning — ``train_encoder`` for every objective × seed, summarised as mean ± sd,
   next to the topographic encoder's own values (the target);
3. gaussian — ``linear_map_table``.
"""
import numpy as np

from rpmref.structure.gaussian import linear_map_table
from rpmref.structure.geometry import GEOMETRIES, data_pmf, geometry, symmetries
from rpmref.structure.learning import OBJECTIVES, LearnConfig, evaluate, summarise, train_encoder
from rpmref.structure.relabel import (
    DEFAULT_SAMPLE, MAX_SAMPLE, coarse_encoder, invariance_summary, labellings,
    relabelling_table)
from rpmref.exact.validation import check_bool, check_choice, check_int

#: (data size, latent size) per geometry; the grid's are sides (36 → 9 states).
SIZES = {"line": (16, 8), "ring": (16, 8), "grid": (6, 3)}
QUICK_SIZES = {"line": (8, 4), "ring": (8, 4), "grid": (4, 2)}
MI_HEAD = "I(Z;Z')"


def problem(kind, quick=False):
    """The problem of one geometry: (data geometry, latent geometry, P(x, x'), topographic
    encoder), at ``SIZES`` (or ``QUICK_SIZES``).

    Parameters
    ----------
    kind : {'line', 'ring', 'grid'}
    quick : bool, default False
        Use ``QUICK_SIZES`` (the ``--quick`` run).

    Returns
    -------
    data_geo : Geometry
    latent_geo : Geometry
    p_xx : ndarray, shape (n, n)
        ``data_pmf(data_geo)``.
    encoder : ndarray, shape (n, k)
        ``coarse_encoder(data_geo, latent_geo)``.

    Raises
    ------
    ValueError
        ``kind`` not one of ``GEOMETRIES``.
    TypeError
        ``kind`` not a string or ``quick`` not a bool.

    Examples
    --------
    >>> from rpmref.structure.experiment import problem
    >>> data, latent, p_xx, enc = problem("grid", quick=True)
    >>> data.n, latent.n, p_xx.shape, enc.shape              # sides 4 and 2
    (16, 4, (16, 16), (16, 4))
    """
    kind = check_choice(kind, "kind", GEOMETRIES)
    quick = check_bool(quick, "quick")
    n, k = (QUICK_SIZES if quick else SIZES)[kind]
    data_geo, latent_geo = geometry(kind, n), geometry(kind, k)
    return data_geo, latent_geo, data_pmf(data_geo), coarse_encoder(data_geo, latent_geo)


def run_experiment(geometries=GEOMETRIES, seeds=5, config=LearnConfig(), quick=False,
                   sample=DEFAULT_SAMPLE, progress=None):
    """Everything ``rpmref structure`` prints, for the geometries given.

    Per geometry (``problem``): ``invariance_summary`` over ``labellings`` (all of them for
    k ≤ 8, else ``sample`` including the symmetries); ``train_encoder`` for every objective
    × seed, summarised (``summarise``) next to the topographic encoder's own values
    (``evaluate``); and once, ``linear_map_table``.

    Parameters
    ----------
    geometries : sequence of str, default GEOMETRIES
        Each one of 'line', 'ring', 'grid' (one name alone: that geometry); at least one.
    seeds : int, default 5
        Training seeds 0..seeds−1 per objective (≥ 1).
    config : LearnConfig, default LearnConfig()
    quick : bool, default False
        ``QUICK_SIZES`` instead of ``SIZES``.
    sample : int, default DEFAULT_SAMPLE
        Labellings drawn when k > 8 (at most ``MAX_SAMPLE``, 100,000).
    progress : callable, optional
        Called with one line of text at each stage.

    Returns
    -------
    dict
        ``invariance`` ({kind: summary}), ``learning`` ({kind: {"sizes", "topographic",
        "objectives"}}), ``gaussian`` (rows of ``linear_map_table``), ``runs`` ({kind: [run,
        ...]}, with the trained encoders) and ``histogram`` ({kind: {"i_inf": per
        labelling, "mi": of the identity}}).

    Raises
    ------
    ValueError
        An unknown geometry, no geometry, ``seeds`` < 1 or ``sample`` outside
        [1, ``MAX_SAMPLE``].
    TypeError
        A geometry not a string, ``seeds`` or ``sample`` not an integer, ``config`` not a
        LearnConfig, ``quick`` not a bool or ``progress`` not callable (all checked before
        any work).

    Examples
    --------
    >>> from rpmref.structure import LearnConfig
    >>> from rpmref.structure.experiment import run_experiment
    >>> result = run_experiment(("line",), seeds=1, quick=True,
    ...                         config=LearnConfig(steps=5, baseline_samples=5))
    >>> sorted(result), sorted(result["learning"]["line"]["objectives"])
    (['gaussian', 'histogram', 'invariance', 'learning', 'runs'], ['local', 'mi', 'sampled', 'table'])
    >>> summary = result["invariance"]["line"]        # 4 latent states: all 4! labellings
    >>> summary["labellings"], summary["tied_are_symmetries"], summary["mi_spread"] < 1e-12
    (24, True, True)
    """
    if isinstance(geometries, str):                 # "line", not the letters of it
        geometries = (geometries,)
    geometries = [check_choice(g, "geometries", GEOMETRIES) for g in geometries]
    if not geometries:
        raise ValueError("geometries must name at least one of 'line', 'ring', 'grid'")
    seeds = check_int(seeds, "seeds", minimum=1)
    sample = check_int(sample, "sample", minimum=1, maximum=MAX_SAMPLE)
    quick = check_bool(quick, "quick")
    if not isinstance(config, LearnConfig):
        raise TypeError(f"config must be a LearnConfig, got {type(config).__name__}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable or None, got {type(progress).__name__}")
    say = progress or (lambda text: None)
    out = {"invariance": {}, "learning": {}, "gaussian": linear_map_table(), "runs": {},
           "histogram": {}}
    for kind in geometries:
        data_geo, latent_geo, p_xx, topographic = problem(kind, quick)
        say(f"{kind}: relabellings")
        perms = labellings(latent_geo.n, sample, seed=0, include=symmetries(latent_geo))
        table = relabelling_table(p_xx, topographic, latent_geo, perms)
        out["invariance"][kind] = invariance_summary(p_xx, topographic, latent_geo, perms, table)
        out["histogram"][kind] = {"i_inf": table["i_inf"], "mi": float(table["mi"][0])}
        runs = []
        for objective in OBJECTIVES:
            say(f"{kind}: training {objective} × {seeds} seed{'' if seeds == 1 else 's'}")
            runs += [train_encoder(data_geo, latent_geo, p_xx, objective, seed, config)
                     for seed in range(seeds)]
        reference = evaluate(data_geo, latent_geo, p_xx, topographic, config.baseline_samples)
        out["learning"][kind] = {
            "sizes": {"data_states": data_geo.n, "latent_states": latent_geo.n},
            "topographic": {"mi": reference["mi"], "i_inf": reference["i_inf"],
                            **reference["scores"]},
            "objectives": summarise(runs)}
        out["runs"][kind] = runs
    return out


def _pm(stat, digits=3):
    return "–" if stat is None else f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def format_invariance(invariance):
    """The invariance table of ``rpmref structure``: one row per geometry.

    Parameters
    ----------
    invariance : dict
        {kind: ``invariance_summary`` dict}, e.g. ``run_experiment(...)["invariance"]``.

    Returns
    -------
    str
        A header and one line per geometry (a footnote if a sample was used).

    Raises
    ------
    KeyError
        A summary without the keys of ``invariance_summary``.

    Examples
    --------
    >>> from rpmref.structure import coarse_encoder, data_pmf, geometry, invariance_summary, labellings
    >>> from rpmref.structure.experiment import format_invariance
    >>> data, latent = geometry("line", 6), geometry("line", 3)
    >>> s = invariance_summary(data_pmf(data), coarse_encoder(data, latent), latent, labellings(3))
    >>> lines = format_invariance({"line": s}).splitlines()
    >>> len(lines), lines[1].split()[:2]
    (3, ['line', '6'])
    """
    lines = [f"{'geometry':<8}  {'labellings':>10}  {MI_HEAD:>7}  {'MI spread':>9}  "
             f"{'I_inf id':>8}  {'I_inf min':>9}  {'I_inf spread':>12}  {'rank id':>7}  "
             f"{'tied':>4}  {'symm.':>5}  {'tied=symm.':>10}  {'|ELBO-C-I_inf|':>14}"]
    for kind, s in invariance.items():
        count = f"{s['labellings']}{'' if s['exhaustive'] else '*'}"
        lines.append(f"{kind:<8}  {count:>10}  {s['mi']:>7.4f}  {s['mi_spread']:>9.1e}  "
                     f"{s['i_inf_identity']:>8.4f}  {s['i_inf_min']:>9.4f}  "
                     f"{s['i_inf_spread']:>12.4f}  {s['identity_rank']:>7}  {s['tied']:>4}  "
                     f"{s['symmetries']:>5}  {str(s['tied_are_symmetries']):>10}  "
                     f"{s['elbo_gap']:>14.1e}")
    if any(not s["exhaustive"] for s in invariance.values()):
        lines.append("* a random sample (the identity and the symmetries included)")
    lines.append("rank id: the identity labelling's place by I_inf (1 = best); tied: labellings "
                 "with its I_inf; symm.: symmetries of the geometry; tied=symm.: the tied "
                 "ones are exactly the symmetries")
    return "\n".join(lines)


def format_learning(learning):
    """The learning tables of ``rpmref structure``: per geometry, mean ± sd over seeds per
    objective, next to each score's random-relabelling baseline, the topographic row last.

    Parameters
    ----------
    learning : dict
        ``run_experiment(...)["learning"]``.

    Returns
    -------
    str
        One block per geometry, separated by a blank line.

    Raises
    ------
    KeyError
        An entry without the keys of ``run_experiment``'s ``learning``.

    Examples
    --------
    >>> from rpmref.structure import LearnConfig
    >>> from rpmref.structure.experiment import format_learning, run_experiment
    >>> result = run_experiment(("ring",), seeds=2, quick=True,
    ...                         config=LearnConfig(steps=5, baseline_samples=5))
    >>> lines = format_learning(result["learning"]).splitlines()
    >>> lines[0].split(";")[0]
    'ring: 8 data states -> 4 latent states'
    >>> [line.split()[0] for line in lines[2:]]
    ['mi', 'local', 'table', 'sampled', 'topographic']
    """
    blocks = []
    for kind, entry in learning.items():
        sizes = entry["sizes"]
        head = (f"{kind}: {sizes['data_states']} data states -> {sizes['latent_states']} latent "
                f"states; mean ± sd over seeds (baseline: the same code randomly relabelled)")
        cols = f"{'objective':<11} {'MI':>15} {'I_inf local':>15} {'nbr frac':>15} " \
               f"{'(baseline)':>10} {'dist corr':>15} {'(baseline)':>10}"
        line = kind == "line"
        if line:
            cols += f" {'|pos corr|':>15} {'(baseline)':>10}"
        rows = [head, cols]
        for objective, s in entry["objectives"].items():
            row = (f"{objective:<11} {_pm(s['mi']):>15} {_pm(s['i_inf']):>15} "
                   f"{_pm(s['neighbour_fraction']):>15} "
                   f"{s['baseline_neighbour_fraction']['mean']:>10.3f} "
                   f"{_pm(s['distance_correlation']):>15} "
                   f"{s['baseline_distance_correlation']['mean']:>10.3f}")
            if line:
                row += (f" {_pm(s['position_correlation']):>15} "
                        f"{s['baseline_position_correlation']['mean']:>10.3f}")
            rows.append(row)
        t = entry["topographic"]
        row = (f"{'topographic':<11} {t['mi']:>15.3f} {t['i_inf']:>15.3f} "
               f"{t['neighbour_fraction']:>15.3f} {'':>10} {t['distance_correlation']:>15.3f} "
               f"{'':>10}")
        if line:
            row += f" {t['position_correlation']:>15.3f}"
        rows.append(row)
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


def format_gaussian(rows):
    """The Gaussian table of ``rpmref structure``: one row per linear map.

    Parameters
    ----------
    rows : list of dict
        From ``linear_map_table``.

    Returns
    -------
    str
        A header and one line per map: its name, I(Z; Z'), ℓ* and I_∞(ℓ*).

    Raises
    ------
    KeyError
        A row without the keys of ``linear_map_table``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.structure import linear_map_table
    >>> from rpmref.structure.experiment import format_gaussian
    >>> lines = format_gaussian(linear_map_table({"identity": np.eye(2)})).splitlines()
    >>> mi = -0.5 * (np.log(1 - 0.9 ** 2) + np.log(1 - 0.5 ** 2))
    >>> lines[1].split()[:2] == ["identity", f"{mi:.6f}"]
    True
    """
    lines = [f"{'map A':<15} {MI_HEAD:>10} {'l*':>8} {'I_inf(l*)':>10}"]
    lines += [f"{r['map']:<15} {r['mi']:>10.6f} {r['lengthscale']:>8.4f} {r['i_inf']:>10.6f}"
              for r in rows]
    return "\n".join(lines)


def plot(result, path, kind=None):
    """Write the figure of ``rpmref structure``: the encoder P(z | x) of seed 0 of every
    objective (geometry ``kind``) and the histogram of I_∞ over the relabellings, with
    the (constant) MI marked. Needs matplotlib.

    Parameters
    ----------
    result : dict
        From ``run_experiment`` (with seed 0 among its runs).
    path : str or path-like
        The image file to write.
    kind : str, optional
        The geometry to show; default the first of ``result["runs"]``.

    Returns
    -------
    None

    Raises
    ------
    ImportError
        matplotlib is not installed.
    KeyError
        ``kind`` not in the result.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.structure import LearnConfig
    >>> from rpmref.structure.experiment import plot, run_experiment
    >>> result = run_experiment(("line",), seeds=1, quick=True,
    ...                         config=LearnConfig(steps=5, baseline_samples=5))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "structure.png")
    ...     plot(result, path)
    ...     os.path.getsize(path) > 0
    True
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kind = kind or next(iter(result["runs"]))
    runs = {r["objective"]: r for r in result["runs"][kind] if r["seed"] == 0}
    fig, axes = plt.subplots(1, len(runs) + 1, figsize=(3.2 * (len(runs) + 1), 3.2))
    for ax, (objective, run) in zip(axes, runs.items()):
        enc = run["enc"]
        ax.imshow(enc.T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1)
        ax.set_title(f"{objective} (seed 0)")
        ax.set_xlabel("data state x")
        ax.set_ylabel("latent state z (P(z|x))")
    ax = axes[-1]
    hist = result.get("histogram", {}).get(kind)
    if hist is not None:
        ax.hist(hist["i_inf"], bins=60, color="tab:blue")
        ax.axvline(hist["mi"], color="tab:red", label="I(Z;Z') (every labelling)")
        ax.set_xlabel("I_inf (local critic, best l)")
        ax.set_ylabel("labellings")
        ax.legend(fontsize=7)
    ax.set_title(f"{kind}: relabellings")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["SIZES", "QUICK_SIZES", "problem", "run_experiment", "format_invariance",
           "format_learning", "format_gaussian", "plot"]
