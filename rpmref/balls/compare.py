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

The runs go to worker processes or a Dask cluster (``parallel``) and are kept
on disk as they finish (``runstore``): an interrupted comparison resumes.
"""
import collections
import collections.abc
import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import os
import time

import numpy as np

from rpmref.balls import figures, parallel, readout, runstore, tracking, trainer, video
from rpmref.balls.rundir import TOO_DEEP, special_file_kind
from rpmref.balls.runstore import write_json
from rpmref.environment import environment
from rpmref.exact.validation import check_bool, check_choice, check_int, check_path, check_real

CRITICS = ("rbf", "bilinear", "cosine")
VIDEO_SEEDS = {"train": 0, "held_out": 1, "validation": 2}
SWEEP_OPTIMISERS = ("sgd", "adam")
SWEEP_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
TRACKED_R2 = 0.95  # a map "tracks" its ball when its matched held-out R² reaches this
CURVE_FRAMES = 200  # frames of each video scored for the per-epoch R² curve (Fig. 1C)
RUN_BLAS_THREADS = 1  # every run trains with one BLAS thread: the runs are the parallelism
RECORD_FORMAT = 1  # of a run's record; a change makes stored partial runs be trained again
STEM_NAMES = {"results": "comparison", "sweep": "sweep"}  # output file stem -> what it holds

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
    """Both metrics of one encoder: the linear readout and per-map tracking.

    The readout and the per-map calibrations are fitted on the training frames
    and scored on the evaluation frames.

    Parameters
    ----------
    z_train : array_like, shape (T, 6)
        Centres of mass on the training frames.
    pos_train : array_like, shape (T, 3, 2)
        Ball centres of the training frames.
    z_eval : array_like, shape (T', 6)
        Centres of mass on the evaluation frames.
    pos_eval : array_like, shape (T', 3, 2)
        Ball centres of the evaluation frames.
    radius : float
        Ball radius in pixels.

    Returns
    -------
    dict
        Plain floats and lists: ``r2_overall``, ``r2_per_coordinate``, ``rmse_px``
        (:func:`rpmref.balls.score_readout`), ``maps_tracked`` (matched maps with
        held-out R² ≥ ``TRACKED_R2``) and every key of
        :func:`rpmref.balls.tracking.tracking_metrics`.

    Raises
    ------
    ValueError
        As for the readout and tracking functions (shapes, non-finite values,
        constant targets).

    Examples
    --------
    Latents that are the ball centres themselves score perfectly:

    >>> from rpmref.balls import BallsConfig, make_video
    >>> from rpmref.balls.compare import score_encoder
    >>> _, positions = make_video(BallsConfig(n_frames=40, size=16, diameter=3.0), seed=0)
    >>> z = positions.reshape(40, 6)
    >>> scores = score_encoder(z[:30], positions[:30], z[30:], positions[30:], radius=1.5)
    >>> round(scores["r2_overall"], 12), scores["maps_tracked"], scores["map_for_ball"]
    (1.0, 3, [0, 1, 2])
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
    """Held-out linear-readout predictions, for Fig. 1B.

    Parameters
    ----------
    z_train : array_like, shape (T, 6)
        Training latents.
    pos_train : array_like, shape (T, n_balls, 2)
        Training ball centres.
    z_eval : array_like, shape (T', 6)
        Held-out latents.

    Returns
    -------
    ndarray, shape (T', 2·n_balls)
        Predicted (x1, y1, x2, y2, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls import BallsConfig, make_video
    >>> from rpmref.balls.compare import readout_predictions
    >>> _, positions = make_video(BallsConfig(n_frames=40, size=16, diameter=3.0), seed=0)
    >>> z = 2.0 * positions.reshape(40, 6) + 1.0
    >>> predicted = readout_predictions(z[:30], positions[:30], z[30:])
    >>> predicted.shape, float(np.abs(predicted - positions[30:].reshape(10, 6)).max()) < 1e-9
    ((10, 6), True)
    """
    coef = tracking.fit_affine(z_train, np.asarray(pos_train).reshape(len(pos_train), -1))
    return tracking.apply_affine(coef, z_eval)


# --------------------------------------------------------------------------
# one training run


def run_one(critic, seed, train_config, videos, radius, eval_names=("held_out",),
            curve_every=None, curve_frames=CURVE_FRAMES, untrained_cache=None,
            progress=False):
    """Train one critic from one seed and score it (and its untrained start).

    If ``curve_every`` is set, the held-out R² of the linear readout is recorded
    every ``curve_every`` epochs for Fig. 1C, on the first ``curve_frames`` frames
    of the training and first evaluation video (a subset, because encoding is a
    large share of a run's time).

    Parameters
    ----------
    critic : {"rbf", "bilinear", "cosine"}
        The critic.
    seed : int
        The training seed (replaces ``train_config.seed``).
    train_config : TrainConfig
        The other training settings.
    videos : dict
        name → (frames, positions), with at least "train" and every name in ``eval_names``.
    radius : float
        Ball radius in pixels.
    eval_names : tuple of str, default ("held_out",)
        The videos scored.
    curve_every : int, optional
        Epochs between learning-curve points.
    curve_frames : int, default ``CURVE_FRAMES``
        Frames of each video scored for the curve.
    untrained_cache : dict, optional
        Shared between runs, so the untrained encoder of a seed (the same weights
        for every critic) is scored once.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    record : dict
        JSON-ready: critic, seed, steps, scores and untrained (per evaluation
        video, as :func:`score_encoder`), history, r2_per_epoch, lengthscale, timings.
    extras : dict
        ``z`` and ``z_untrained``: video name → (T, 6) latents.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> videos = {"train": make_video(balls, seed=0), "held_out": make_video(balls, seed=1)}
    >>> from rpmref.balls.compare import run_one
    >>> record, extras = run_one("rbf", 0, tiny, videos, radius=1.5, curve_every=1)
    >>> record["steps"], sorted(record["scores"]), extras["z"]["held_out"].shape
    (2, ['held_out'], (24, 6))
    >>> [epoch for epoch, r2 in record["r2_per_epoch"]]
    [0, 1]
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
    """Worker processes by default: 2, or fewer on a machine with fewer cores.

    Returns
    -------
    int
        min(2, cores).

    Examples
    --------
    >>> import os
    >>> from rpmref.balls.compare import default_jobs
    >>> default_jobs() == min(2, os.cpu_count() or 1)
    True
    """
    return min(2, os.cpu_count() or 1)


def max_jobs():
    """The most worker processes allowed: 4 per core.

    Each holds the videos and its own NumPy and autograd (~150 MB), and more
    workers than cores only slow each other.

    Returns
    -------
    int
        4 × cores.

    Examples
    --------
    >>> import os
    >>> from rpmref.balls.compare import max_jobs
    >>> max_jobs() == 4 * (os.cpu_count() or 1)
    True
    """
    return 4 * (os.cpu_count() or 1)


def run_settings(task, balls_config, fingerprints):
    """Everything that determines a run's record.

    The key under which a finished run is stored in the partial results and
    reused by a rerun (:mod:`rpmref.balls.runstore`).

    Parameters
    ----------
    task : dict
        A :func:`run_one` keyword dict (critic, seed, train_config, eval_names,
        curve_every, curve_frames).
    balls_config : BallsConfig
        The videos' settings.
    fingerprints : dict
        Video name → SHA-256 of its frames and positions (:func:`video_fingerprint`).

    Returns
    -------
    dict
        record_format, critic, seed, train, balls, videos, eval_names,
        curve_every, curve_frames.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> videos = {"train": make_video(balls, seed=0), "held_out": make_video(balls, seed=1)}
    >>> from rpmref.balls.compare import run_settings, video_fingerprint
    >>> fingerprints = {name: video_fingerprint(*video) for name, video in videos.items()}
    >>> task = dict(critic="rbf", seed=0, train_config=tiny, eval_names=("held_out",),
    ...             curve_every=None, curve_frames=200)
    >>> settings = run_settings(task, balls, fingerprints)
    >>> sorted(settings["videos"]), settings["videos"]["held_out"]["seed"]
    (['held_out', 'train'], 1)
    """
    names = ("train",) + tuple(task["eval_names"])
    return {"record_format": RECORD_FORMAT, "critic": task["critic"], "seed": int(task["seed"]),
            "train": dataclasses.asdict(_config_for(task["train_config"], critic=task["critic"],
                                                    seed=task["seed"])),
            "balls": dataclasses.asdict(balls_config),
            "videos": {name: {"seed": VIDEO_SEEDS[name], "sha256": fingerprints[name]}
                       for name in names},
            "eval_names": list(task["eval_names"]), "curve_every": task["curve_every"],
            "curve_frames": task["curve_frames"]}


def video_fingerprint(frames, positions):
    """SHA-256 of a video's frames and ball positions (shapes, dtypes and bytes).

    Parameters
    ----------
    frames : array_like
        The frames.
    positions : array_like
        The ball centres.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.balls.compare import video_fingerprint
    >>> a = video_fingerprint(np.zeros((2, 1, 4, 4), np.float32), np.zeros((2, 1, 2)))
    >>> len(a), a == video_fingerprint(np.zeros((2, 1, 4, 4), np.float64), np.zeros((2, 1, 2)))
    (64, False)
    """
    digest = hashlib.sha256()
    for array in (frames, positions):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _run_all(tasks, videos, balls_config, radius, out_dir, stem, execution, progress, log,
             describe, keep_arrays):
    """Run every task (resuming finished ones from ``out_dir``); returns (records, arrays, keys).

    records[i], arrays[i]: task i's record (JSON-ready) and its stored z arrays
    (only for tasks with ``keep_arrays[i]``; else None). keys[i]: its settings key.
    Each batch of runs that finishes is added to ``stem``.partial.json/.npz
    before anything else happens (``runstore``), so a Ctrl-C or a killed process
    loses at most the runs in flight; a rerun with the same tasks trains only the
    runs that are missing. describe(i, record, records) -> log lines of a run.
    execution: dict from ``_execution`` (jobs or a Dask client).
    """
    fingerprints = {name: video_fingerprint(*videos[name]) for name in videos}
    settings = [run_settings(task, balls_config, fingerprints) for task in tasks]
    keys = [runstore.settings_key(s) for s in settings]
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)  # before the first run, not after it
    store = runstore.load(out_dir, stem) if out_dir is not None else {}
    records, arrays = {}, {}
    for i, key in enumerate(keys):
        stored = store.get(key)
        if stored is not None:
            _check_stored_record(stored["record"], tasks[i], out_dir, stem)
        if stored is not None and (not keep_arrays[i] or _has_z(stored["arrays"], tasks[i])):
            records[i] = stored["record"]
            arrays[i] = _unpack_z(stored["arrays"]) if keep_arrays[i] else None
    todo = [i for i in range(len(tasks)) if i not in records]
    where = parallel.describe(min(execution["jobs"], max(len(todo), 1)), execution["client"])
    where = ("in " if where == parallel.describe() else "on ") + where
    resumed = (f"; {len(records)} finished earlier, resumed from "
               f"{runstore.partial_paths(out_dir, stem)[0]}" if records else "")
    log(f"{STEM_NAMES[stem]}: {plural(len(tasks), 'run')}, {len(todo)} to train {where}"
        f"{resumed}")
    execution["record"]["resumed_runs"] = len(records)
    if not todo:
        return records, arrays, keys
    shared = {"videos": videos, "radius": radius, "videos_id": "/".join(sorted(
        f"{name}={fp}" for name, fp in fingerprints.items())),
        "progress": progress and execution["jobs"] == 1 and execution["client"] is None}
    from tqdm import tqdm
    bar = tqdm(total=len(tasks), initial=len(records), unit="run", desc=STEM_NAMES[stem], smoothing=0,
               disable=None if progress else True, mininterval=1.0, dynamic_ncols=True)
    try:
        for batch in parallel.run_tasks(_run_task, [tasks[i] for i in todo], shared,
                                        jobs=min(execution["jobs"], len(todo)),
                                        client=execution["client"], on_wait=bar.refresh):
            finished = []
            for j, (record, extras) in batch:
                i = todo[j]
                z = _pack_z(extras) if keep_arrays[i] else {}
                store[keys[i]] = runstore.entry(settings[i], record, z)
                records[i] = store[keys[i]]["record"]
                arrays[i] = _unpack_z(z) if keep_arrays[i] else None
                finished.append(i)
            if out_dir is not None:  # saved before anything else: a stop now loses nothing
                runstore.save(out_dir, stem, store)
            for count, i in enumerate(finished, start=len(records) - len(finished) + 1):
                bar.update(1)
                with tqdm.external_write_mode():
                    for line in describe(i, records[i], records):
                        log(f"[{count}/{len(tasks)}] {line}")
    finally:
        bar.close()
    return records, arrays, keys


#: keys of a run's record (:func:`run_one`) that the summaries and the figure read
RECORD_KEYS = ("critic", "seed", "scores", "untrained", "final_estimate", "lengthscale_px",
               "wall_time", "history", "r2_per_epoch")


def _check_stored_record(record, task, out_dir, stem):
    """ValueError naming the partial file if a stored run of this task's settings lacks
    what the summaries read (a damaged or hand-edited file)."""
    ok = all(key in record for key in RECORD_KEYS) and all(
        isinstance(record[kind], dict) and isinstance(record[kind].get(name), dict)
        for kind in ("scores", "untrained") for name in task["eval_names"])
    if not ok:
        path = runstore.partial_paths(out_dir, stem)[0]
        raise ValueError(f"cannot read {path}: it is corrupt (the run {task['critic']} seed "
                         f"{task['seed']} lacks its scores); move it away to start afresh "
                         f"(its finished runs are then trained again)")


def plural(count, noun):
    """'1 run', '2 runs'.

    Parameters
    ----------
    count : int
        How many.
    noun : str
        The singular.

    Returns
    -------
    str
        The count and the noun.

    Examples
    --------
    >>> from rpmref.balls.compare import plural
    >>> plural(1, "run"), plural(3, "run")
    ('1 run', '3 runs')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _run_task(task, shared):
    """``run_one`` for ``parallel.run_tasks``: the untrained baselines are cached per
    process and set of videos, so a worker scores each seed's start once."""
    cache = _UNTRAINED_CACHES.setdefault(shared["videos_id"], {})
    while len(_UNTRAINED_CACHES) > 4:  # a long-lived (Dask) worker: keep the newest videos
        del _UNTRAINED_CACHES[next(iter(_UNTRAINED_CACHES))]
    try:
        return run_one(videos=shared["videos"], radius=shared["radius"], untrained_cache=cache,
                       progress=shared["progress"], **task)
    except trainer.NonFiniteLossError as error:   # say which run diverged
        config = task["train_config"]
        raise trainer.NonFiniteLossError(
            f"the {task['critic']} run of seed {task['seed']} ({config.optimizer}, lr "
            f"{config.lr:g}) diverged: {error}") from None


_UNTRAINED_CACHES = {}  # videos id -> untrained_cache of run_one, in this process


def _pack_z(extras):
    """The latents of ``run_one``'s extras as flat arrays: 'z/train', 'z_untrained/held_out', ..."""
    return {f"{kind}/{name}": np.asarray(z) for kind in ("z", "z_untrained")
            for name, z in extras[kind].items()}


def _unpack_z(arrays):
    extras = {"z": {}, "z_untrained": {}}
    for name, value in arrays.items():
        kind, _, video_name = name.partition("/")
        extras[kind][video_name] = value
    return extras


def _has_z(arrays, task):
    names = ("train",) + tuple(task["eval_names"])
    return all(f"{kind}/{name}" in arrays for kind in ("z", "z_untrained") for name in names)


@contextlib.contextmanager
def _execution(jobs, dask):
    """{"jobs", "client", "record"}: where the runs go; a Dask client is closed on exit."""
    if dask is None:
        yield {"jobs": jobs, "client": None, "record": {"backend": "processes" if jobs > 1
                                                        else "this process", "jobs": jobs}}
        return
    with parallel.dask_client(dask) as client:
        workers = parallel.dask_workers(client)
        record = {"backend": "dask", "scheduler": client.scheduler_info()["address"],
                  "workers": client.run(environment)}
        yield {"jobs": len(workers), "client": client, "record": record}


def _dask_warnings(execution, log):
    if execution["client"] is None:
        return
    workers = parallel.dask_workers(execution["client"])
    if not workers:
        raise parallel.NoWorkersError(f"the Dask cluster at {execution['record']['scheduler']} "
                                      f"has no workers")
    threaded = sorted(address for address, n in workers.items() if n > 1)
    if threaded:
        log(f"warning: Dask workers with more than one thread ({', '.join(threaded)}): "
            f"autograd holds the GIL, so start workers with --nthreads 1 (and --nworkers N)")


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
                jobs=None, dask=None, overwrite=False, title="Default settings"):
    """Default comparison (Sec. 5, Fig. 1): every critic × seed at ``train_config``.

    The figure and the per-epoch held-out R² are for ``figure_seed``. Every run
    uses one BLAS thread, so the results do not depend on ``jobs`` or ``dask``.

    Resuming: finished runs are kept in ``out_dir``/results.partial.json (and
    .npz: the figure seed's latents) as they finish; a rerun with the same
    arguments trains only the missing runs and writes the same results.json but
    for the fields ``total_wall_time``, every run's ``wall_time`` and
    ``steps_per_s``, the summary's ``wall_time``, ``environment`` and
    ``execution``. If ``out_dir`` already holds a finished results.json of the
    same settings it is returned as read.

    Parameters
    ----------
    seeds : sequence of int, default (0, 1, 2)
        Training seeds (non-negative, no repeats, at least one).
    critics : sequence of str, default ("rbf", "bilinear", "cosine")
        A non-empty subset of the critics, without repeats.
    train_config : TrainConfig, optional
        The training settings (default ``TrainConfig()``); its ``blas_threads`` is
        set to 1 for every run (the runs are the parallelism).
    balls_config : BallsConfig, optional
        The video settings (default ``BallsConfig()``).
    out_dir : str or os.PathLike, optional
        Where ``results.json``, ``results.md`` (headed ``title``) and ``fig1.png``
        (when matplotlib is available) are written; None writes nothing.
    curve_every : int, default 2
        Epochs between the held-out R² points of the learning curve.
    figure_seed : int, optional
        The seed shown in the figure (default: the first seed); one of ``seeds``.
    progress : bool, default True
        Show progress bars.
    log : callable, default print
        Receives one-line progress messages.
    jobs : int, optional
        Worker processes (default ``default_jobs()``; at most ``max_jobs()``).
    dask : str or distributed.Client, optional
        Run on Dask instead: "local:N" (a LocalCluster of N processes), a scheduler
        address or a ``distributed.Client``.
    overwrite : bool, default False
        Replace a finished result of other settings in ``out_dir``.
    title : str, default "Default settings"
        Heading of ``results.md``.

    Returns
    -------
    dict
        The results: ``settings``, ``runs``, ``summary`` (per critic, and the
        untrained encoder), ``environment``, ``execution``, ``total_wall_time``.

    Raises
    ------
    TypeError
        If ``train_config`` / ``balls_config`` is not a TrainConfig / BallsConfig,
        ``seeds`` or ``critics`` is not a sequence, ``curve_every`` or ``figure_seed``
        not an integer (bool included), ``progress`` / ``overwrite`` not a bool, ``log``
        not callable, ``title`` not a str or ``out_dir`` not a path.
    ValueError
        If ``seeds`` or ``critics`` are empty, repeat, or hold invalid entries,
        ``curve_every`` < 1, or
        ``jobs`` is not a positive integer within ``max_jobs()``; before any run,
        naming the file, if an output file in ``out_dir`` is a directory
        (:func:`check_output_files`), or its finished result or partial files
        are unreadable or corrupt.
    OSError
        Naming the file, if writing fails (a full disk, say); the runs finished
        until then are kept in the partial files.
    FileExistsError
        If ``out_dir`` holds a finished result of other settings and not ``overwrite``.
    RuntimeError
        ``parallel.NoWorkersError`` if the Dask cluster has no workers;
        ``trainer.NonFiniteLossError`` naming the run if a training run diverges. Also ValueError if ``figure_seed`` is
        not one of ``seeds``.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> from rpmref.balls import run_compare
    >>> results = run_compare(seeds=(0,), critics=("rbf",), train_config=tiny,
    ...                       balls_config=balls, progress=False, log=lambda *a: None, jobs=1)
    >>> sorted(results["summary"])
    ['rbf', 'untrained']
    """
    _check_call_options(balls_config, out_dir, progress, log, overwrite, title)
    train_config, balls_config, jobs = _checked_run_args(train_config, balls_config, seeds,
                                                         critics, jobs, dask)
    curve_every = check_int(curve_every, "curve_every", minimum=1)
    figure_seed = seeds[0] if figure_seed is None else check_int(figure_seed, "figure_seed")
    if figure_seed not in seeds:
        raise ValueError(f"figure_seed must be one of the seeds {list(seeds)}; got {figure_seed}")
    settings = compare_settings(seeds, critics, train_config, balls_config, curve_every,
                                figure_seed)
    with runstore.locked(out_dir):
        _prepare_out_dir(out_dir, "results")
        finished = _finished(out_dir, "results", settings, overwrite, log)
        if finished is not None:
            return finished
        with trainer.blas_threads(RUN_BLAS_THREADS), _execution(jobs, dask) as execution:
            _dask_warnings(execution, log)
            return _run_compare(seeds, critics, train_config, balls_config, out_dir,
                                curve_every, figure_seed, progress, log, execution, settings,
                                title)


def _run_compare(seeds, critics, train_config, balls_config, out_dir, curve_every, figure_seed,
                 progress, log, execution, settings, title):
    start = time.perf_counter()
    videos = {name: video.make_video(balls_config, seed=VIDEO_SEEDS[name])
              for name in ("train", "held_out")}
    radius = _radius(balls_config)
    # the held-out R² per epoch (Fig. 1C) only for the seed drawn in the figure
    tasks = [_task(critic, seed, train_config, ("held_out",),
                   curve_every if seed == figure_seed else None)
             for critic in critics for seed in seeds]
    keep = [task["seed"] == figure_seed for task in tasks]
    records, arrays, keys = _run_all(
        tasks, videos, balls_config, radius, out_dir, "results", execution, progress, log,
        lambda i, record, done: [_run_line(record, "held_out")], keep)
    runs = _by_critic(critics, records, tasks)
    figure_runs = {tasks[i]["critic"]: (records[i], arrays[i])  # in critic order
                   for i in range(len(tasks)) if keep[i]}
    results = {
        "settings": settings,
        "runs": runs,
        "summary": summarise(runs, "held_out"),
        "total_wall_time": time.perf_counter() - start,
        "environment": environment(),
        "execution": execution["record"],
    }
    if out_dir is not None:
        figure = None
        if _have_matplotlib():
            figure = draw_fig1(os.path.join(out_dir, "fig1.png"), videos, figure_runs, radius)
        _write_final(out_dir, "results", results, results_markdown(
            results["summary"], title=title, settings=results["settings"]), keys)
        if figure is None:
            log("fig1.png not drawn: matplotlib is not installed (pip install matplotlib)")
    return results


def run_sweep(seeds=(0, 1, 2), critics=CRITICS, train_config=None, balls_config=None,
              optimisers=SWEEP_OPTIMISERS, learning_rates=SWEEP_LEARNING_RATES,
              out_dir=None, progress=False, log=print, jobs=None, dask=None, overwrite=False,
              title="Each critic at its best setting (chosen on the validation video)"):
    """Optimiser × learning-rate sweep; each critic's setting chosen on validation.

    Every run is scored on the validation video (seed 2) and the held-out video
    (seed 1); a critic's best setting maximises the mean over seeds of the
    validation mean matched-map R², and the held-out scores of that setting are
    reported. The held-out video never enters the choice. Resuming from
    ``out_dir``/sweep.partial.json: as in :func:`run_compare` (the results do not
    depend on where the runs go).

    Parameters
    ----------
    seeds : sequence of int, default (0, 1, 2)
        Training seeds (non-negative, no repeats, at least one).
    critics : sequence of str, default ("rbf", "bilinear", "cosine")
        A non-empty subset of the critics, without repeats.
    train_config : TrainConfig, optional
        The training settings (default ``TrainConfig()``); its ``blas_threads`` is
        set to 1 for every run (the runs are the parallelism).
    balls_config : BallsConfig, optional
        The video settings (default ``BallsConfig()``).
    optimisers : sequence of str, default ("sgd", "adam")
        Optimisers of the grid.
    learning_rates : sequence of float, default (1e-3, 3e-3, 1e-2, 3e-2)
        Learning rates of the grid.
    out_dir : str or os.PathLike, optional
        Where the sweep's results are written; None writes nothing.
    progress : bool, default False
        Show progress bars.
    log : callable, default print
        Receives one-line progress messages.
    jobs : int, optional
        Worker processes (default ``default_jobs()``; at most ``max_jobs()``).
    dask : str or distributed.Client, optional
        Run on Dask instead: "local:N" (a LocalCluster of N processes), a scheduler
        address or a ``distributed.Client``.
    overwrite : bool, default False
        Replace a finished result of other settings in ``out_dir``.
    title : str
        Heading of the Markdown table.

    Returns
    -------
    dict
        ``settings``, ``grid`` (every run), ``best_setting`` and ``summary`` (per
        critic), ``environment``, ``execution``, ``total_wall_time``.

    Raises
    ------
    TypeError
        If ``train_config`` / ``balls_config`` is not a TrainConfig / BallsConfig,
        ``seeds``, ``critics``, ``optimisers`` or ``learning_rates`` is not a sequence,
        a learning rate is not a real number (bool and strings included), ``progress``
        / ``overwrite`` is not a bool, ``log`` not callable, ``title`` not a str or
        ``out_dir`` not a path.
    ValueError
        If ``seeds``, ``critics``, ``optimisers`` or ``learning_rates`` are empty,
        repeat, or hold invalid entries (a learning rate must be positive and finite), or
        ``jobs`` is not a positive integer within ``max_jobs()``; before any run,
        naming the file, if an output file in ``out_dir`` is a directory
        (:func:`check_output_files`), or its finished result or partial files
        are unreadable or corrupt.
    OSError
        Naming the file, if writing fails (a full disk, say); the runs finished
        until then are kept in the partial files.
    FileExistsError
        If ``out_dir`` holds a finished result of other settings and not ``overwrite``.
    RuntimeError
        ``parallel.NoWorkersError`` if the Dask cluster has no workers;
        ``trainer.NonFiniteLossError`` naming the run if a training run diverges.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> from rpmref.balls import run_sweep
    >>> sweep = run_sweep(seeds=(0,), critics=("rbf",), train_config=tiny, balls_config=balls,
    ...                   optimisers=("adam",), learning_rates=(3e-3,), log=lambda *a: None, jobs=1)
    >>> sorted(sweep["best_setting"])
    ['rbf']
    """
    _check_call_options(balls_config, out_dir, progress, log, overwrite, title)
    train_config, balls_config, jobs = _checked_run_args(train_config, balls_config, seeds,
                                                         critics, jobs, dask)
    for name, values in (("optimisers", optimisers), ("learning_rates", learning_rates)):
        _check_sequence(name, values)
        if len(values) == 0:
            raise ValueError(f"{name} must name at least one setting")
    # as TrainConfig would take them: no bool as 1.0, no '0.1' parsed
    optimisers = tuple(check_choice(o, "optimisers entry", trainer.optim.OPTIMIZERS)
                       for o in optimisers)
    learning_rates = tuple(check_real(lr, "learning_rates entry", minimum=0,
                                      inclusive=(False, True)) for lr in learning_rates)
    _check_distinct("optimisers", optimisers)
    _check_distinct("learning_rates", learning_rates)
    settings = sweep_settings(seeds, critics, train_config, balls_config, optimisers,
                              learning_rates)
    with runstore.locked(out_dir):
        _prepare_out_dir(out_dir, "sweep")
        finished = _finished(out_dir, "sweep", settings, overwrite, log)
        if finished is not None:
            return finished
        with trainer.blas_threads(RUN_BLAS_THREADS), _execution(jobs, dask) as execution:
            _dask_warnings(execution, log)
            return _run_sweep(seeds, critics, train_config, balls_config, optimisers,
                              learning_rates, out_dir, progress, log, execution, settings,
                              title)


def _run_sweep(seeds, critics, train_config, balls_config, optimisers, learning_rates,
               out_dir, progress, log, execution, settings, title):
    start = time.perf_counter()
    videos = {name: video.make_video(balls_config, seed=VIDEO_SEEDS[name])
              for name in ("train", "validation", "held_out")}
    radius = _radius(balls_config)
    grid_points = list(itertools.product(critics, optimisers, learning_rates))
    tasks = [_task(critic, seed, _config_for(train_config, optimizer=optimiser, lr=lr),
                   ("validation", "held_out"), None)
             for critic, optimiser, lr in grid_points for seed in seeds]

    def setting_runs(i, records):
        first = i - i % len(seeds)  # the setting's runs are tasks first .. first+seeds-1
        return [records.get(j) for j in range(first, first + len(seeds))]

    def describe(i, record, records):
        critic, optimiser, lr = grid_points[i // len(seeds)]
        lines = [f"sweep {optimiser:4s} lr {lr:g} " + _run_line(record, "held_out")]
        runs = setting_runs(i, records)
        if all(runs):  # the setting is complete
            lines.append(f"sweep {critic:8s} {optimiser:4s} lr {lr:g}: validation mean map R² "
                         f"{_validation_score(runs):.3f}, held-out readout R² "
                         f"{np.mean([r['scores']['held_out']['r2_overall'] for r in runs]):.3f}")
        return lines

    records, _, keys = _run_all(tasks, videos, balls_config, radius, out_dir, "sweep",
                                execution, progress, log, describe, [False] * len(tasks))
    grid, best = {c: [] for c in critics}, {}
    for point, (critic, optimiser, lr) in enumerate(grid_points):  # in grid order
        runs = setting_runs(point * len(seeds), records)
        grid[critic].append({"optimizer": optimiser, "lr": lr,
                             "validation_mean_matched_r2": _validation_score(runs),
                             "runs": runs})
    for critic in critics:
        best[critic] = max(grid[critic], key=lambda g: g["validation_mean_matched_r2"])
    best_runs = {c: best[c]["runs"] for c in critics}
    results = {
        "settings": settings,
        "grid": grid,
        "best_setting": {c: {"optimizer": best[c]["optimizer"], "lr": best[c]["lr"]}
                         for c in critics},
        "summary": summarise(best_runs, "held_out"),
        "total_wall_time": time.perf_counter() - start,
        "environment": environment(),
        "execution": execution["record"],
    }
    if out_dir is not None:
        _write_final(out_dir, "sweep", results, sweep_markdown(results, title), keys)
    return results


def _validation_score(runs):
    """A setting's selection score: mean over seeds of the validation mean matched-map R²."""
    return float(np.mean([r["scores"]["validation"]["mean_matched_r2"] for r in runs]))


def _task(critic, seed, train_config, eval_names, curve_every):
    return {"critic": critic, "seed": seed, "train_config": train_config,
            "eval_names": tuple(eval_names), "curve_every": curve_every,
            "curve_frames": CURVE_FRAMES}


def compare_settings(seeds, critics, train_config, balls_config, curve_every, figure_seed):
    """The "settings" of results.json for these arguments.

    The trainer's config as the comparison runs it (one BLAS thread). A finished
    results.json with other settings is never overwritten without ``overwrite``.

    Parameters
    ----------
    seeds : sequence of int
        Training seeds.
    critics : sequence of str
        Critics.
    train_config : TrainConfig
        Training settings.
    balls_config : BallsConfig
        Video settings.
    curve_every : int or None
        Epochs between learning-curve points.
    figure_seed : int
        The seed of the figure.

    Returns
    -------
    dict
        JSON-ready: train, balls, seeds, critics, video_seeds, ball_radius_px,
        curve_every, figure_seed.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig
    >>> from rpmref.balls.compare import compare_settings
    >>> settings = compare_settings((0,), ("rbf",), TrainConfig(blas_threads=None), BallsConfig(), 2, 0)
    >>> settings["train"]["blas_threads"], settings["ball_radius_px"]
    (1, 2.5)
    """
    train_config = _config_for(train_config, blas_threads=RUN_BLAS_THREADS)
    return dict(_settings(train_config, balls_config, seeds, critics, _radius(balls_config)),
                curve_every=curve_every, figure_seed=figure_seed)


def sweep_settings(seeds, critics, train_config, balls_config, optimisers, learning_rates):
    """The "settings" of sweep.json for these arguments (see :func:`compare_settings`).

    Parameters
    ----------
    seeds : sequence of int
        Training seeds.
    critics : sequence of str
        Critics.
    train_config : TrainConfig
        Base training settings.
    balls_config : BallsConfig
        Video settings.
    optimisers : sequence of str
        Optimisers of the grid.
    learning_rates : sequence of float
        Learning rates of the grid.

    Returns
    -------
    dict
        JSON-ready: train, balls, seeds, critics, video_seeds, ball_radius_px,
        optimizers, learning_rates.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig
    >>> from rpmref.balls.compare import sweep_settings
    >>> settings = sweep_settings((0,), ("rbf",), TrainConfig(), BallsConfig(), ("adam",), (3e-3,))
    >>> settings["optimizers"], settings["learning_rates"]
    (['adam'], [0.003])
    """
    train_config = _config_for(train_config, blas_threads=RUN_BLAS_THREADS)
    return dict(_settings(train_config, balls_config, seeds, critics, _radius(balls_config)),
                optimizers=list(optimisers), learning_rates=[float(lr) for lr in learning_rates])


def output_files(out_dir, stem):
    """Every file a comparison ("results") or a sweep ("sweep") writes in ``out_dir``.

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        "results" or "sweep".

    Returns
    -------
    list of str
        ``stem``.json, ``stem``.md, the partial files and, for "results", fig1.png.

    Examples
    --------
    >>> from rpmref.balls.compare import output_files
    >>> output_files("out", "sweep")
    ['out/sweep.json', 'out/sweep.md', 'out/sweep.partial.json', 'out/sweep.partial.npz']
    """
    names = [f"{stem}.json", f"{stem}.md"]
    paths = [os.path.join(out_dir, name) for name in names] + list(
        runstore.partial_paths(out_dir, stem))
    if stem == "results":
        paths.append(os.path.join(out_dir, "fig1.png"))
    return paths


def check_output_files(out_dir, stem):
    """ValueError naming the first of :func:`output_files` that could not be written.

    That is, one that is a directory (or a link to one): checked before the
    first run, not after the last.

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        "results" or "sweep".

    Returns
    -------
    None

    Raises
    ------
    ValueError
        "PATH is a directory, not a file ...".

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.compare import check_output_files
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     os.mkdir(os.path.join(tmp, "fig1.png"))
    ...     try:
    ...         check_output_files(tmp, "results")
    ...     except ValueError as error:
    ...         print(str(error).replace(tmp, "OUT").split(";")[0])
    OUT/fig1.png is a directory, not a file the comparison can write
    """
    for path in output_files(out_dir, stem):
        if os.path.isdir(path):
            raise ValueError(f"{path} is a directory, not a file the {STEM_NAMES[stem]} can "
                             f"write; move it away or choose another directory")


def _prepare_out_dir(out_dir, stem):
    """With ``out_dir``'s lock held: refuse unwritable outputs, remove stale temporary files."""
    if out_dir is None:
        return
    check_output_files(out_dir, stem)
    runstore.remove_stale_temp_files(out_dir, [os.path.basename(path)
                                               for path in output_files(out_dir, stem)])


def finished_state(out_dir, stem, settings):
    """Is ``out_dir``/``stem``.json a finished result, and of which settings?

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        "results" or "sweep".
    settings : dict
        The settings of this call (:func:`compare_settings`, :func:`sweep_settings`).

    Returns
    -------
    {None, "same", "other", "corrupt"}
        None (no such file), "same" (of these settings), "other" (of other
        settings) or "corrupt" (unreadable, or not a finished result:
        :func:`read_finished` says why).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from rpmref.balls.compare import finished_state
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     before = finished_state(tmp, "results", {"seeds": [0]})
    ...     with open(os.path.join(tmp, "results.json"), "w") as f:
    ...         json.dump({"settings": {"seeds": [0]}, "runs": {}, "summary": {}}, f)
    ...     print(before, finished_state(tmp, "results", {"seeds": [0]}),
    ...           finished_state(tmp, "results", {"seeds": [1]}))
    ...     with open(os.path.join(tmp, "results.json"), "w") as f:
    ...         _ = f.write('{"settings": {"se')
    ...     print(finished_state(tmp, "results", {"seeds": [0]}))
    None same other
    corrupt
    """
    saved, _ = read_finished(out_dir, stem)
    if saved is None:
        return "corrupt" if os.path.lexists(os.path.join(out_dir, f"{stem}.json")) else None
    return "same" if saved["settings"] == runstore.jsonable(settings) else "other"


#: what a finished result holds besides "settings"
FINISHED_KEYS = {"results": ("runs", "summary"), "sweep": ("grid", "best_setting", "summary")}


def read_finished(out_dir, stem):
    """(the finished result ``out_dir``/``stem``.json, None) or (None, why it is unusable).

    Parameters
    ----------
    out_dir : str
        The directory.
    stem : str
        "results" or "sweep".

    Returns
    -------
    saved : dict or None
        The result, if the file is one (a JSON object with its settings,
        summary, ...).
    reason : str or None
        Else why not: "no such file", a JSON or I/O error, or the missing key.

    Examples
    --------
    >>> import os, tempfile
    >>> from rpmref.balls.compare import read_finished
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(read_finished(tmp, "sweep"))
    (None, 'no such file')
    """
    path = os.path.join(out_dir, f"{stem}.json")
    if not os.path.lexists(path):
        return None, "no such file"
    kind = special_file_kind(path)
    if kind:  # reading a FIFO would wait for a writer forever
        return None, f"it is {kind}, not a regular file"
    try:
        with open(path, encoding="utf-8") as fh:
            saved = json.load(fh)
    except OSError as error:
        return None, error.strerror or str(error)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return None, f"not JSON: {error}"
    except RecursionError:  # json's decoder recurses once per level of nesting
        return None, TOO_DEEP
    if not isinstance(saved, dict):
        return None, "not a JSON object"
    missing = [key for key in ("settings",) + FINISHED_KEYS[stem] if key not in saved]
    if missing:
        return None, f"it has no {', '.join(repr(key) for key in missing)}"
    return saved, None


def _finished(out_dir, stem, settings, overwrite, log):
    """The finished results in ``out_dir`` if they have these settings (None if there
    are none, or ``overwrite``); FileExistsError if they have other settings,
    ValueError if the file is not a readable result."""
    if out_dir is None or overwrite:
        return None
    path = os.path.join(out_dir, f"{stem}.json")
    saved, reason = read_finished(out_dir, stem)
    if saved is None:
        if not os.path.lexists(path):
            return None
        raise ValueError(f"{path} is unreadable or corrupt ({reason}); move it away, or pass "
                         f"overwrite=True to replace it")
    if saved["settings"] != runstore.jsonable(settings):
        raise FileExistsError(errno.EEXIST, f"{path} holds a finished result with other "
                              f"settings; pass overwrite=True to replace it", path)
    log(f"{STEM_NAMES[stem]}: {path} is finished with these settings; nothing to train "
        f"(--overwrite, or overwrite=True, trains it again)")
    return saved


# --------------------------------------------------------------------------
# summaries and writers


def summarise(runs, eval_name):
    """Mean and sample sd (ddof = 1; 0 for one seed) over seeds, per critic.

    Adds a row "untrained" from the untrained encoders of the first critic's seeds
    (the same seeds' starting points).

    Parameters
    ----------
    runs : dict
        critic → list of run records (:func:`run_one`).
    eval_name : str
        The evaluation video ("held_out", "validation").

    Returns
    -------
    dict
        row → column → (mean, sd, n).

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> videos = {"train": make_video(balls, seed=0), "held_out": make_video(balls, seed=1)}
    >>> from rpmref.balls.compare import run_one
    >>> record, extras = run_one("rbf", 0, tiny, videos, radius=1.5, curve_every=1)
    >>> from rpmref.balls.compare import summarise
    >>> summary = summarise({"rbf": [record]}, "held_out")
    >>> sorted(summary), summary["rbf"]["r2_overall"][1:]
    (['rbf', 'untrained'], (0.0, 1))
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
    """A Markdown table of :func:`summarise` output: mean ± sd over seeds.

    Parameters
    ----------
    summary : dict
        row → column → (mean, sd, n).
    title : str
        The heading.
    settings : dict, optional
        Settings to state under the heading.

    Returns
    -------
    str
        The Markdown.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> videos = {"train": make_video(balls, seed=0), "held_out": make_video(balls, seed=1)}
    >>> from rpmref.balls.compare import run_one
    >>> record, extras = run_one("rbf", 0, tiny, videos, radius=1.5, curve_every=1)
    >>> from rpmref.balls.compare import results_markdown, summarise
    >>> text = results_markdown(summarise({"rbf": [record]}, "held_out"), "Tiny")
    >>> print(text.splitlines()[0])
    ### Tiny
    >>> [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| rbf") or line.startswith("| untrained")]
    ['| rbf', '| untrained']
    """
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


def sweep_markdown(results, title="Each critic at its best setting (chosen on the validation "
                   "video)"):
    """Best setting per critic (held-out table) and the validation grid, in Markdown.

    Parameters
    ----------
    results : dict
        What :func:`rpmref.balls.run_sweep` returns.
    title : str
        The heading of the held-out table.

    Returns
    -------
    str
        The Markdown.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, run_sweep
    >>> from rpmref.balls.compare import sweep_markdown
    >>> sweep = run_sweep(seeds=(0,), critics=("rbf",),
    ...                   train_config=TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3),
    ...                   balls_config=BallsConfig(n_frames=24, size=16, diameter=3.0),
    ...                   optimisers=("adam",), learning_rates=(3e-3,), log=lambda *a: None, jobs=1)
    >>> "Best setting (by validation mean map R²): rbf: adam lr 0.003" in sweep_markdown(sweep)
    True
    """
    text = results_markdown(results["summary"], title, results["settings"])
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


def _write_final(out_dir, stem, results, markdown, keys):
    """Write ``stem``.json and ``stem``.md, then drop the runs ``keys`` (now in
    ``stem``.json) from the partial files; runs of other settings stay there."""
    os.makedirs(out_dir, exist_ok=True)
    runstore.write_text(os.path.join(out_dir, f"{stem}.md"), markdown)
    write_json(os.path.join(out_dir, f"{stem}.json"), results)  # last: marks the result finished
    store = runstore.load(out_dir, stem)
    runstore.save(out_dir, stem, {k: v for k, v in store.items() if k not in set(keys)})


def draw_fig1(path, videos, figure_runs, radius):
    """Fig. 1 from the first seed of every critic plus that seed's untrained encoder.

    Needs matplotlib (:func:`rpmref.balls.figures.fig1`).

    Parameters
    ----------
    path : str
        The PNG to write.
    videos : dict
        "train" and "held_out" → (frames, positions).
    figure_runs : dict
        critic → (record, extras) of :func:`run_one` (with ``curve_every``).
    radius : float
        Ball radius in pixels.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, make_video
    >>> balls = BallsConfig(n_frames=24, size=16, diameter=3.0)
    >>> tiny = TrainConfig(steps=2, batch_size=8, hidden_channels=4, kernel_size=3)
    >>> videos = {"train": make_video(balls, seed=0), "held_out": make_video(balls, seed=1)}
    >>> from rpmref.balls.compare import run_one
    >>> record, extras = run_one("rbf", 0, tiny, videos, radius=1.5, curve_every=1)
    >>> import os, tempfile
    >>> from rpmref.balls.compare import draw_fig1
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = draw_fig1(os.path.join(tmp, "fig1.png"), videos, {"rbf": (record, extras)}, 1.5)
    ...     print(os.path.basename(path), os.path.getsize(path) > 0)
    fig1.png True
    """
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
    suffix = ".tmp" + os.path.splitext(path)[1]  # savefig picks the format by the name
    with runstore.replacing(path, suffix=suffix) as target:
        figures.fig1(target, frames, pos_train, frames_ho[t_frame], pos_ho[t_frame], panels)
    return path


# --------------------------------------------------------------------------
# command line


def quick_configs():
    """(TrainConfig, BallsConfig) small enough for a smoke test in seconds.

    Returns
    -------
    train_config : TrainConfig
        2 epochs, batch size 16, 8 hidden channels.
    balls_config : BallsConfig
        64 frames.

    Examples
    --------
    >>> from rpmref.balls.compare import quick_configs
    >>> train_config, balls_config = quick_configs()
    >>> train_config.epochs, train_config.batch_size, balls_config.n_frames
    (2, 16, 64)
    """
    balls_config = dataclasses.replace(video.BallsConfig(), n_frames=QUICK_FRAMES)
    return _config_for(_default_train_config(), **QUICK_TRAIN), balls_config


QUICK_FRAMES = 64
QUICK_TRAIN = {"batch_size": 16, "epochs": 2, "hidden_channels": 8}


# --------------------------------------------------------------------------
# helpers (the trainer interface is touched only here)


def _default_train_config():
    return trainer.TrainConfig()


def _config_for(config, **changes):
    return dataclasses.replace(config, **changes)


def untrained_encoder(config, frames):
    """(params, bn_state) of the encoder a run with ``config`` on ``frames`` starts from.

    Parameters
    ----------
    config : TrainConfig
        The run's settings.
    frames : ndarray, shape (T, C, H, W)
        Its training frames (the maps are oriented on them).

    Returns
    -------
    params : dict of ndarray
        :func:`rpmref.balls.initial_params`.
    bn_state : dict of ndarray
        Initial running statistics.

    Examples
    --------
    >>> from rpmref.balls import BallsConfig, TrainConfig, initial_params, make_video
    >>> from rpmref.balls.compare import untrained_encoder
    >>> config = TrainConfig(hidden_channels=4, kernel_size=3)
    >>> frames, _ = make_video(BallsConfig(n_frames=24, size=16, diameter=3.0))
    >>> params, bn_state = untrained_encoder(config, frames)
    >>> all((params[k] == v).all() for k, v in initial_params(config, frames).items())
    True
    """
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
    return {"train": runstore.jsonable(dataclasses.asdict(train_config)),
            "balls": runstore.jsonable(dataclasses.asdict(balls_config)),
            "video_seeds": dict(VIDEO_SEEDS), "seeds": list(seeds), "critics": list(critics),
            "ball_radius_px": radius}


def _settings_line(settings):
    t = settings["train"]
    keys = [k for k in ("optimizer", "lr", "batch_size", "steps", "epochs", "orient_maps")
            if t.get(k) is not None]  # steps None: the run is set by its epochs
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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer; got {jobs!r}")
    if jobs > max_jobs():
        raise ValueError(f"jobs must be at most {max_jobs()} (4 per core: each worker holds the "
                         f"videos and its own NumPy); got {jobs}")
    return jobs


def _by_critic(critics, records, tasks):
    """{critic: [records in seed order]} of the finished runs (records: task index -> record)."""
    runs = {c: [] for c in critics}
    for index in sorted(records):
        runs[tasks[index]["critic"]].append(records[index])
    return runs


def _checked_run_args(train_config, balls_config, seeds, critics, jobs, dask=None):
    """The defaults filled in and every argument checked, for run_compare and run_sweep:
    returns (train_config with one BLAS thread, balls_config, jobs)."""
    _check_choices(seeds, critics)
    if dask is not None:
        parallel.parse_local(dask)  # a malformed "local:N" is a ValueError now, not later
        parallel.import_distributed()
    train_config = _default_train_config() if train_config is None else train_config
    if not isinstance(train_config, trainer.TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig; got {type(train_config).__name__}")
    return (_config_for(train_config, blas_threads=RUN_BLAS_THREADS),
            video.BallsConfig() if balls_config is None else balls_config,
            _check_jobs(jobs) if dask is None else 1)


def _check_sequence(name, values):
    """``values`` must be a sized collection (not a str: 'rbf' is not 3 critics)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, collections.abc.Collection):
        raise TypeError(f"{name} must be a sequence (a tuple or list); got "
                        f"{type(values).__name__} {values!r}")


def _check_call_options(balls_config, out_dir, progress, log, overwrite, title):
    """The arguments run_compare and run_sweep share beyond _checked_run_args's."""
    if balls_config is not None and not isinstance(balls_config, video.BallsConfig):
        raise TypeError(f"balls_config must be a BallsConfig; got {type(balls_config).__name__}")
    check_path(out_dir, "out_dir", allow_none=True)
    check_bool(progress, "progress")
    check_bool(overwrite, "overwrite")
    if not callable(log):
        raise TypeError(f"log must be callable (it receives one-line messages); got "
                        f"{type(log).__name__}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str; got {type(title).__name__}")


def _check_choices(seeds, critics):
    _check_sequence("seeds", seeds)
    _check_sequence("critics", critics)
    if len(seeds) == 0:
        raise ValueError("seeds must name at least one seed")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0
               for s in seeds):
        raise ValueError(f"seeds must be non-negative integers; got {list(seeds)}")
    unknown = [c for c in critics if c not in CRITICS]
    if unknown or not critics:
        raise ValueError(f"critics must be a non-empty subset of {', '.join(CRITICS)}; "
                         f"got {', '.join(critics) or 'none'}")
    _check_distinct("seeds", seeds)
    _check_distinct("critics", critics)


def _check_distinct(name, values):
    counts = collections.Counter(values)  # one pass: --seeds 1000000 is checked at once
    repeated = sorted(str(v) for v, n in counts.items() if n > 1)
    if repeated:
        raise ValueError(f"{name} must not repeat (a repeated run adds nothing but a false "
                         f"count of seeds); repeated: {', '.join(repeated)}")


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
