"""Reproduce the paper's experiment (Sec. 5, Fig. 1B–C): compare InfoNCE critics.

``rpmref balls compare`` trains the encoder with every critic for every seed on
one training video, scores it on a held-out video, and scores the *untrained*
encoder of every seed as the baseline a trained critic has to beat (centres of
mass of random colour filters already carry position). Two metrics:

1. the paper's linear readout (Appendix D): least squares with intercept from
   z (6 numbers) to the 6 ball coordinates, fit on training frames, R² and
   RMSE on held-out frames (``rpmref.readout``);
2. per-map tracking (``rpmref.tracking``): does each map follow one ball?

``--sweep`` repeats this over optimiser × learning rate and picks each critic's
setting on a separate validation video by mean matched-map R², then reports
that setting on the held-out video.

Data: one training video (seed 0), one held-out video (seed 1), and for the
sweep one validation video (seed 2), all with the generator's defaults; the
``--seeds`` vary the network initialisation and batch order, as in the paper's
single-video setting.
"""
import concurrent.futures
import dataclasses
import itertools
import json
import multiprocessing
import os
import time

import numpy as np

from rpmref.balls import figures, readout, tracking, trainer, video

CRITICS = ("rbf", "bilinear", "cosine")
VIDEO_SEEDS = {"train": 0, "held_out": 1, "validation": 2}
SWEEP_OPTIMISERS = ("sgd", "adam")
SWEEP_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
TRACKED_R2 = 0.95  # a map "tracks" its ball when its matched held-out R² reaches this

# (key in a run's metrics, column title, format) for results.md
COLUMNS = (
    ("r2_overall", "readout R²", "{:.3f}"),
    ("rmse_px", "RMSE px", "{:.2f}"),
    ("min_matched_r2", "min map R²", "{:.3f}"),
    ("mean_matched_r2", "mean map R²", "{:.3f}"),
    ("maps_tracked", "maps ≥ 0.95", "{:.1f}"),
    ("mean_within_radius", "within radius", "{:.3f}"),
    ("final_estimate", "InfoNCE (nats)", "{:.3f}"),
    ("lengthscale_px", "ℓ px", "{:.2f}"),
    ("wall_time", "time s", "{:.1f}"),
)


# --------------------------------------------------------------------------
# scoring one encoder


def score_encoder(z_train, pos_train, z_eval, pos_eval, radius):
    """Both metrics of one encoder: readout and per-map tracking.

    z_*: (T, 6) centres of mass; pos_*: (T, 3, 2) ball centres. The readout and
    the per-map calibrations are fitted on the training frames and scored on
    the evaluation frames. Returns a flat dict of plain floats and lists.
    """
    n_train, n_eval = len(pos_train), len(pos_eval)
    targets_train = np.asarray(pos_train, dtype=float).reshape(n_train, -1)  # (T, 3, 2) -> (T, 6)
    targets_eval = np.asarray(pos_eval, dtype=float).reshape(n_eval, -1)
    fitted = readout.fit_linear_readout(z_train, targets_train)
    scores = readout.score_readout(fitted, z_eval, targets_eval)
    track = tracking.tracking_metrics(z_train, pos_train, z_eval, pos_eval, radius)
    return {
        "r2_overall": float(scores["r2_overall"]),
        "r2_per_coordinate": [float(v) for v in scores["r2_per_coordinate"]],
        "rmse_px": float(scores["rmse_px"]),
        "maps_tracked": int(sum(r >= TRACKED_R2 for r in track["matched_r2"])),
        **track,
    }


def readout_predictions(z_train, pos_train, z_eval):
    """Held-out linear-readout predictions (T', 6), for Fig. 1B."""
    coef = tracking.fit_affine(z_train, np.asarray(pos_train).reshape(len(pos_train), -1))
    return tracking.apply_affine(coef, z_eval)


# --------------------------------------------------------------------------
# one training run


def run_one(critic, seed, train_config, videos, radius, eval_names=("held_out",),
            curve_every=None, curve_frames=200, untrained_cache=None, progress=False):
    """Train one critic from one seed and score it (and its untrained start).

    videos: dict name -> (frames, positions) with at least "train" and every
    name in ``eval_names``. If ``curve_every`` is set, the held-out R² of the
    linear readout is recorded every ``curve_every`` epochs for Fig. 1C, on the
    first ``curve_frames`` frames of the training and first evaluation video
    (a subset, because encoding is a large share of a run's time).
    untrained_cache: dict shared between runs, so the untrained encoder of a
    seed (the same weights for every critic) is scored once.
    Returns (record, extras): record is JSON-ready; extras holds z arrays.
    """
    config = _config_for(train_config, critic=critic, seed=seed)
    frames, pos_train = videos["train"]
    first_eval = eval_names[0]
    names = ("train",) + tuple(eval_names)

    params0, bn0 = untrained_encoder(config, frames)
    key = (tuple(eval_names), _encoder_fingerprint(params0))
    cache = {} if untrained_cache is None else untrained_cache
    if key not in cache:
        z0 = {name: trainer.encode(params0, bn0, videos[name][0], config) for name in names}
        cache[key] = (z0, {name: score_encoder(z0["train"], pos_train, z0[name], videos[name][1],
                                               radius) for name in eval_names})
    z_untrained, untrained = cache[key]

    r2_per_epoch = []
    on_epoch = None
    if curve_every is not None:
        n = min(curve_frames, len(pos_train), len(videos[first_eval][1]))
        sub = {"train": (frames[:n], pos_train[:n]),
               "eval": (videos[first_eval][0][:n], videos[first_eval][1][:n])}

        def curve_point(epoch, params, bn_state):
            z_tr = trainer.encode(params, bn_state, sub["train"][0], config)
            z_ev = trainer.encode(params, bn_state, sub["eval"][0], config)
            fitted = readout_predictions(z_tr, sub["train"][1], z_ev)
            r2 = _r2(fitted, sub["eval"][1])
            r2_per_epoch.append([int(epoch), r2])

        def on_epoch(epoch, params, bn_state):
            if epoch % curve_every == 0:
                curve_point(epoch, params, bn_state)

        curve_point(0, params0, bn0)

    result = trainer.train(config, frames, progress=progress, on_epoch=on_epoch)
    if curve_every is not None and result.history and \
            r2_per_epoch[-1][0] != result.history[-1]["epoch"]:
        curve_point(result.history[-1]["epoch"], result.params, result.bn_state)
    z = {name: trainer.encode(result.params, result.bn_state, videos[name][0], config)
         for name in names}
    scores = {name: score_encoder(z["train"], pos_train, z[name], videos[name][1], radius)
              for name in eval_names}
    history = [{"epoch": int(h["epoch"]), "step": int(h["step"]), "loss": float(h["loss"]),
                "estimate": float(h["estimate"])} for h in result.history]
    size = frames.shape[-1]
    record = {
        "critic": critic,
        "seed": int(seed),
        "scores": scores,
        "untrained": untrained,
        "final_estimate": history[-1]["estimate"] if history else float("nan"),
        "lengthscale": _lengthscale(result.params, critic),
        "lengthscale_px": _lengthscale(result.params, critic) * size,
        "wall_time": float(result.wall_time),
        "steps": int(result.steps),
        "steps_per_s": float(result.steps_per_s),
        "history": history,
        "r2_per_epoch": r2_per_epoch,
    }
    return record, {"z": z, "z_untrained": z_untrained}


def default_jobs():
    """Worker processes by default: 2, or fewer on a machine with fewer cores."""
    return min(2, os.cpu_count() or 1)


def _run_all(tasks, videos, radius, jobs, progress, blas_threads):
    """Yield (index, (record, extras)) for every task as its run finishes.

    tasks: list of keyword dicts for ``run_one`` (critic, seed, train_config,
    eval_names, curve_every). With ``jobs`` > 1 the runs go to that many
    worker processes ('spawn': no forked OpenBLAS or autograd state), each with
    ``blas_threads`` BLAS threads, its own copy of the videos and its own
    untrained-baseline cache; a run is deterministic given its seed, so the
    records are the same as with ``jobs`` = 1. Workers draw no progress bars.
    """
    if jobs == 1:
        cache = {}
        for index, task in enumerate(tasks):
            yield index, run_one(videos=videos, radius=radius, untrained_cache=cache,
                                 progress=progress, **task)
        return
    with concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(videos, radius, blas_threads)) as pool:
        futures = {pool.submit(_worker_run, task): index for index, task in enumerate(tasks)}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:  # Ctrl-C, a failed run, or the caller stopped: start no more runs
            pool.shutdown(wait=False, cancel_futures=True)
            raise


_WORKER = {}  # a worker process's videos, radius and untrained-baseline cache


def _start_worker(videos, radius, blas_threads):
    trainer.limit_blas_threads(blas_threads)
    _WORKER.update(videos=videos, radius=radius, untrained_cache={})


def _worker_run(task):
    """``run_one`` in a worker process (top level, so 'spawn' can pickle it)."""
    return run_one(progress=False, **_WORKER, **task)


def _r2(pred, positions):
    return tracking.r2_pooled(pred, np.asarray(positions).reshape(len(positions), -1))


def _encoder_fingerprint(params):
    """Bytes of the encoder weights (every parameter except the critic's)."""
    return b"".join(np.ascontiguousarray(params[k]).tobytes()
                    for k in sorted(params) if not k.startswith("critic"))


# --------------------------------------------------------------------------
# the comparison


def run_compare(seeds=(0, 1, 2), critics=CRITICS, train_config=None, balls_config=None,
                out_dir=None, curve_every=2, figure_seed=None, progress=True, log=print,
                jobs=None):
    """Default comparison: every critic × seed at ``train_config``; writes results.

    Returns the results dict (also written as ``results.json``; the table as
    ``results.md``; the figure as ``fig1.png`` when matplotlib is available).
    The figure and the per-epoch held-out R² are for ``figure_seed`` (default:
    the first seed). ``jobs``: worker processes (default ``default_jobs()``);
    the results do not depend on it.
    """
    with _blas_threads(train_config):
        return _run_compare(seeds, critics, train_config, balls_config, out_dir, curve_every,
                            figure_seed, progress, log, jobs)


def _run_compare(seeds, critics, train_config, balls_config, out_dir, curve_every,
                 figure_seed, progress, log, jobs):
    train_config, balls_config, jobs = _checked_run_args(train_config, balls_config, seeds,
                                                         critics, jobs)
    figure_seed = seeds[0] if figure_seed is None else figure_seed
    if figure_seed not in seeds:
        raise ValueError(f"figure_seed must be one of the seeds {list(seeds)}; got {figure_seed}")
    start = time.perf_counter()
    videos = {name: video.make_video(balls_config, seed=VIDEO_SEEDS[name])
              for name in ("train", "held_out")}
    radius = _radius(balls_config)
    # the held-out R² per epoch (Fig. 1C) only for the seed drawn in the figure
    tasks = [{"critic": critic, "seed": seed, "train_config": train_config,
              "curve_every": curve_every if seed == figure_seed else None}
             for critic in critics for seed in seeds]
    finished, figure_runs = {}, {}
    for index, (record, extras) in _run_all(tasks, videos, radius, jobs, progress,
                                            train_config.blas_threads):
        finished[index] = record
        if record["seed"] == figure_seed:
            figure_runs[record["critic"]] = (record, extras)
        log(_run_line(record, "held_out"))
        if out_dir is not None:  # keep finished runs if a long comparison is stopped
            os.makedirs(out_dir, exist_ok=True)
            write_json(os.path.join(out_dir, "results.partial.json"),
                       {"runs": _by_critic(critics, finished, tasks)})
    runs = _by_critic(critics, finished, tasks)
    figure_runs = {c: figure_runs[c] for c in critics}  # in critic order, whatever finished first
    results = {
        "settings": _settings(train_config, balls_config, seeds, critics, radius),
        "runs": runs,
        "summary": summarise(runs, "held_out"),
        "total_wall_time": time.perf_counter() - start,
    }
    if out_dir is not None:
        _write_final(out_dir, "results", results, results_markdown(
            results["summary"], title="Default settings", settings=results["settings"]))
        if _have_matplotlib():
            draw_fig1(os.path.join(out_dir, "fig1.png"), videos, figure_runs, radius)
    return results


def run_sweep(seeds=(0, 1, 2), critics=CRITICS, train_config=None, balls_config=None,
              optimisers=SWEEP_OPTIMISERS, learning_rates=SWEEP_LEARNING_RATES,
              out_dir=None, progress=False, log=print, jobs=None):
    """Optimiser × learning-rate sweep; each critic's setting chosen on validation.

    Every run is scored on the validation video (seed 2) and the held-out video
    (seed 1); a critic's best setting maximises the mean over seeds of the
    validation mean matched-map R², and the held-out scores of that setting are
    reported. The held-out video never enters the choice. ``jobs``: worker
    processes (default ``default_jobs()``); the results do not depend on it.
    """
    with _blas_threads(train_config):
        return _run_sweep(seeds, critics, train_config, balls_config, optimisers,
                          learning_rates, out_dir, progress, log, jobs)


def _run_sweep(seeds, critics, train_config, balls_config, optimisers, learning_rates,
               out_dir, progress, log, jobs):
    train_config, balls_config, jobs = _checked_run_args(train_config, balls_config, seeds,
                                                         critics, jobs)
    start = time.perf_counter()
    videos = {name: video.make_video(balls_config, seed=VIDEO_SEEDS[name])
              for name in ("train", "validation", "held_out")}
    radius = _radius(balls_config)
    settings = list(itertools.product(critics, optimisers, learning_rates))
    tasks = [{"critic": critic, "seed": seed, "eval_names": ("validation", "held_out"),
              "train_config": _config_for(train_config, optimizer=optimiser, lr=lr)}
             for critic, optimiser, lr in settings for seed in seeds]
    finished, grid, best = {}, {c: [] for c in critics}, {}
    for index, (record, _) in _run_all(tasks, videos, radius, jobs, progress,
                                       train_config.blas_threads):
        finished[index] = record
        critic, optimiser, lr = settings[index // len(seeds)]
        log(f"sweep {optimiser:4s} lr {lr:g} " + _run_line(record, "held_out"))
        first = index - index % len(seeds)  # the setting's runs are tasks first .. first+seeds-1
        records = [finished.get(i) for i in range(first, first + len(seeds))]
        if all(records):  # the setting is complete
            validation = float(np.mean([r["scores"]["validation"]["mean_matched_r2"]
                                        for r in records]))
            grid[critic].append({"optimizer": optimiser, "lr": lr,
                                 "validation_mean_matched_r2": validation, "runs": records})
            log(f"sweep {critic:8s} {optimiser:4s} lr {lr:g}: validation mean map R² "
                f"{validation:.3f}, held-out readout R² "
                f"{np.mean([r['scores']['held_out']['r2_overall'] for r in records]):.3f}")
        if out_dir is not None:  # keep finished runs if a long sweep is stopped
            os.makedirs(out_dir, exist_ok=True)
            write_json(os.path.join(out_dir, "sweep.partial.json"), {
                "grid": grid,  # the complete settings; "runs": every finished run
                "runs": [dict(r, optimizer=tasks[i]["train_config"].optimizer,
                              lr=tasks[i]["train_config"].lr) for i, r in sorted(finished.items())]})
    for critic in critics:  # settings in grid order, whatever finished first
        order = [(o, lr) for c, o, lr in settings if c == critic]
        grid[critic].sort(key=lambda g: order.index((g["optimizer"], g["lr"])))
        best[critic] = max(grid[critic], key=lambda g: g["validation_mean_matched_r2"])
    best_runs = {c: best[c]["runs"] for c in critics}
    results = {
        "settings": _settings(train_config, balls_config, seeds, critics, radius),
        "grid": grid,
        "best_setting": {c: {"optimizer": best[c]["optimizer"], "lr": best[c]["lr"]}
                         for c in critics},
        "summary": summarise(best_runs, "held_out"),
        "total_wall_time": time.perf_counter() - start,
    }
    if out_dir is not None:
        _write_final(out_dir, "sweep", results, sweep_markdown(results))
    return results


# --------------------------------------------------------------------------
# summaries and writers


def summarise(runs, eval_name):
    """Mean and sample sd (ddof = 1; 0 for one seed) over seeds, per critic.

    runs: dict critic -> list of run records. Adds a row "untrained" from the
    untrained encoders of the first critic's seeds (the same seeds' starting
    points). Returns dict row -> dict column -> (mean, sd, n).
    """
    summary = {}
    critics = list(runs)
    for critic in critics:
        summary[critic] = _mean_sd([_row_values(r, r["scores"][eval_name]) for r in runs[critic]])
    if critics:
        summary["untrained"] = _mean_sd([_row_values(None, r["untrained"][eval_name])
                                         for r in runs[critics[0]]])
    return summary


def results_markdown(summary, title, settings=None):
    """A Markdown table of ``summarise`` output: mean ± sd over seeds."""
    lines = [f"### {title}", ""]
    if settings is not None:
        lines += [_settings_line(settings), ""]
    header = ["critic"] + [title_ for _, title_, _ in COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row, cols in summary.items():
        cells = [row]
        for key, _, fmt in COLUMNS:
            mean, sd, n = cols.get(key, (float("nan"), float("nan"), 0))
            if n == 0 or not np.isfinite(mean):
                cells.append("–")
            else:
                cells.append(f"{fmt.format(mean)} ± {fmt.format(sd)}")
        lines.append("| " + " | ".join(cells) + " |")
    n_seeds = max((c[k][2] for c in summary.values() for k in c), default=0)
    lines += ["", f"Mean ± sd over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
              f"{' (sd 0 for one seed)' if n_seeds == 1 else ''}, held-out video. readout R²/RMSE: the "
              "paper's 6 → 6 linear readout. map R²: per-map affine calibration, maps "
              f"matched to balls by permutation; maps ≥ {TRACKED_R2}: how many of the 3 maps "
              "track one ball; within radius: held-out fraction of frames with the "
              "calibrated map within one ball radius of its ball.", ""]
    return "\n".join(lines)


def sweep_markdown(results):
    """Best setting per critic (held-out table) and the validation grid."""
    text = results_markdown(results["summary"], "Each critic at its best setting "
                            "(chosen on the validation video)", results["settings"])
    text = text.replace("Settings: ", "Base settings (optimiser and learning rate replaced by "
                        "each critic's best setting, below): ", 1)
    lines = ["", "Best setting (by validation mean map R²): " + ", ".join(
        f"{c}: {s['optimizer']} lr {s['lr']:g}" for c, s in results["best_setting"].items()), "",
        "Validation video, every setting (mean over seeds): mean matched-map R² "
        "(the selection score) / readout R²:", ""]
    critics = list(results["grid"])
    settings = [(g["optimizer"], g["lr"]) for g in results["grid"][critics[0]]]
    lines.append("| optimiser | lr | " + " | ".join(critics) + " |")
    lines.append("|---|---|" + "---|" * len(critics))
    for i, (opt, lr) in enumerate(settings):
        cells = []
        for c in critics:
            g = results["grid"][c][i]
            readout = np.mean([r["scores"]["validation"]["r2_overall"] for r in g["runs"]])
            cells.append(f"{g['validation_mean_matched_r2']:.3f} / {readout:.3f}")
        lines.append(f"| {opt} | {lr:g} | " + " | ".join(cells) + " |")
    lines += ["", f"Total sweep time: {results['total_wall_time']:.0f} s.", ""]
    return text + "\n".join(lines)


def _write_final(out_dir, stem, results, markdown):
    """Write ``stem``.json and ``stem``.md; the run's ``stem``.partial.json is then obsolete."""
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, f"{stem}.json"), results)
    os.remove(os.path.join(out_dir, f"{stem}.partial.json"))
    with open(os.path.join(out_dir, f"{stem}.md"), "w") as fh:
        fh.write(markdown)


def write_json(path, obj):
    """JSON with NaN written as null (strict JSON) and numpy scalars converted.

    Written to a temporary file first, so a Ctrl-C during the write leaves the
    previous file whole."""
    text = json.dumps(_jsonable(obj), indent=1, allow_nan=False)
    with open(f"{path}.tmp", "w") as fh:
        fh.write(text)
    os.replace(f"{path}.tmp", path)


def draw_fig1(path, videos, figure_runs, radius):
    """Fig. 1 from the first seed of every critic plus that seed's untrained encoder."""
    frames, pos_train = videos["train"]
    frames_ho, pos_ho = videos["held_out"]
    t_frame = len(frames_ho) // 2
    panels = {}
    first = None
    for critic, (record, extras) in figure_runs.items():
        panels[critic] = _panel(record["scores"]["held_out"], extras["z"], pos_train, pos_ho,
                                t_frame, record["history"], record["r2_per_epoch"])
        first = first or (record, extras)
    record, extras = first
    panels["untrained"] = _panel(record["untrained"]["held_out"], extras["z_untrained"],
                                 pos_train, pos_ho, t_frame, None, None)
    return figures.fig1(path, frames, pos_train, frames_ho[t_frame], pos_ho[t_frame], panels)


# --------------------------------------------------------------------------
# command line


def quick_configs():
    """(TrainConfig, BallsConfig) small enough for a smoke test in seconds."""
    balls_config = dataclasses.replace(video.BallsConfig(), n_frames=QUICK_FRAMES)
    return _config_for(_default_train_config(), **QUICK_TRAIN), balls_config


QUICK_FRAMES = 64
QUICK_TRAIN = {"batch_size": 16, "epochs": 2, "hidden_channels": 8}


# --------------------------------------------------------------------------
# helpers (the trainer interface is touched only here)


def _blas_threads(train_config):
    """Run the encoding as well as the training with the trainer's BLAS thread count."""
    config = _default_train_config() if train_config is None else train_config
    return trainer.blas_threads(config.blas_threads)


def _default_train_config():
    return trainer.TrainConfig()


def _config_for(config, **changes):
    return dataclasses.replace(config, **changes)


def untrained_encoder(config, frames):
    """(params, bn_state) of the encoder a run with ``config`` on ``frames`` starts from."""
    return trainer.initial_params(config, frames), trainer.init_bn_state(config)


def _lengthscale(params, critic):
    """The learned RBF lengthscale ℓ (units of the frame width: the critic sees
    u = z / S − ½), or NaN for other critics."""
    if critic != "rbf":
        return float("nan")
    return float(np.exp(np.asarray(params["critic_log_lengthscale"], dtype=np.float64)))


def _radius(balls_config):
    return float(balls_config.diameter) / 2.0


def _settings(train_config, balls_config, seeds, critics, radius):
    return {"train": _jsonable(dataclasses.asdict(train_config)),
            "balls": _jsonable(dataclasses.asdict(balls_config)),
            "video_seeds": dict(VIDEO_SEEDS), "seeds": list(seeds), "critics": list(critics),
            "ball_radius_px": radius}


def _settings_line(settings):
    t = settings["train"]
    keys = [k for k in ("optimizer", "lr", "batch_size", "steps", "epochs", "orient_maps")
            if k in t]
    return ("Settings: " + ", ".join(f"{k} {t[k]}" for k in keys)
            + f"; training video seed {settings['video_seeds']['train']}, held-out video "
            f"seed {settings['video_seeds']['held_out']}; training seeds {settings['seeds']}.")


def _row_values(record, scores):
    values = {k: scores[k] for k in ("r2_overall", "rmse_px", "min_matched_r2",
                                     "mean_matched_r2", "maps_tracked", "mean_within_radius")}
    if record is not None:
        values.update(final_estimate=record["final_estimate"],
                      lengthscale_px=record["lengthscale_px"], wall_time=record["wall_time"])
    return values


def _mean_sd(rows):
    out = {}
    for key in rows[0]:
        values = np.array([r[key] for r in rows], dtype=float)
        if not np.all(np.isfinite(values)):
            continue
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        out[key] = (float(np.mean(values)), sd, len(values))
    return out


def _panel(scores, z, pos_train, pos_ho, t_frame, history, r2_per_epoch):
    maps_train, maps_ho = tracking.split_maps(z["train"]), tracking.split_maps(z["held_out"])
    calibrated = []
    for b, k in enumerate(scores["map_for_ball"]):
        coef = tracking.fit_affine(maps_train[:, k], pos_train[:, b])
        calibrated.append(tracking.apply_affine(coef, maps_ho[t_frame:t_frame + 1, k])[0])
    panel = {"pred": readout_predictions(z["train"], pos_train, z["held_out"]),
             "true": pos_ho.reshape(len(pos_ho), -1), "r2": scores["r2_overall"],
             "centres": maps_ho[t_frame], "calibrated": np.array(calibrated),
             "matched_r2": scores["matched_r2"]}
    if history is not None:
        panel["history"] = history
        panel["r2_per_epoch"] = r2_per_epoch
    return panel


def _run_line(record, eval_name):
    s = record["scores"][eval_name]
    u = record["untrained"][eval_name]
    return (f"{record['critic']:8s} seed {record['seed']}: readout R² {s['r2_overall']:.3f} "
            f"(untrained {u['r2_overall']:.3f}), RMSE {s['rmse_px']:.2f} px, map R² "
            + " ".join(f"{r:.3f}" for r in s["matched_r2"])
            + f", within radius {s['mean_within_radius']:.2f}, {record['wall_time']:.1f} s")


def _check_jobs(jobs):
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer; got {jobs!r}")
    return jobs


def _by_critic(critics, finished, tasks):
    """{critic: [records in seed order]} of the finished runs (finished: task index -> record)."""
    runs = {c: [] for c in critics}
    for index in sorted(finished):
        runs[tasks[index]["critic"]].append(finished[index])
    return runs


def _checked_run_args(train_config, balls_config, seeds, critics, jobs):
    """The defaults filled in and every argument checked, for run_compare and run_sweep:
    returns (train_config, balls_config, jobs)."""
    _check_choices(seeds, critics)
    return (_default_train_config() if train_config is None else train_config,
            video.BallsConfig() if balls_config is None else balls_config,
            _check_jobs(jobs))


def _check_choices(seeds, critics):
    if len(seeds) == 0:
        raise ValueError("seeds must name at least one seed")
    unknown = [c for c in critics if c not in CRITICS]
    if unknown or not critics:
        raise ValueError(f"critics must be a non-empty subset of {', '.join(CRITICS)}; "
                         f"got {', '.join(critics) or 'none'}")


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
