"""``rpmref balls compare``: train every critic for every seed and compare (Fig. 1B–C)."""
import argparse
import contextlib
import math
import os
import sys

from rpmref.balls import parallel, runstore
from rpmref.balls.compare import (
    STEM_NAMES, SWEEP_LEARNING_RATES, SWEEP_OPTIMISERS, _config_for, _default_train_config,
    _have_matplotlib, check_output_files, compare_settings, default_jobs, max_jobs, plural,
    quick_configs, read_finished, results_markdown, run_compare, run_sweep, sweep_markdown,
    sweep_settings)
from rpmref.balls.critics import CRITICS
from rpmref.balls.rundir import _missing_directories, drop_lone_lock, remove_directories
from rpmref.balls.trainer import NonFiniteLossError
from rpmref.balls.video import BallsConfig
from rpmref.cli.common import (
    RunFailed, UsageError, check_output_dir, nonnegative_int, positive_float, positive_int)

DEFAULT_OUT, QUICK_OUT = "compare_out", "compare_quick_out"
#: the most --seeds: every seed trains every critic, and each finished run rewrites the
#: store of finished runs, so far more is never meant (a huge count was planned in memory
#: for minutes, or raised OverflowError, before the first run)
MAX_SEEDS = 1000
QUICK_TITLE = "Quick settings (a smoke test, not a result)"


def add_parser(subparsers):
    """Register ``rpmref balls compare``."""
    p = subparsers.add_parser(
        "compare", help="train every critic for every seed and compare (Fig. 1B–C)",
        description="Reproduce the paper's experiment: train the encoder with each critic "
        "for each seed, score the linear readout and per-map tracking on a held-out "
        "video, against the untrained encoder; write results.json, results.md, fig1.png. "
        "Finished runs are kept in --out as they finish (results.partial.json, .npz): "
        "rerunning the same command after an interruption trains only the missing runs.")
    p.add_argument("--seeds", type=_seed_count, default=3,
                   help=f"number of training seeds (0, 1, ...; default 3, at most {MAX_SEEDS})")
    p.add_argument("--critics", type=_critic_list, default=list(CRITICS),
                   help="comma-separated critics, each once (default rbf,bilinear,cosine)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help="override the trainer's default optimiser (adam) for the comparison "
                   "(not with --sweep-only: the sweep trains every optimiser of --optimizers)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="override the trainer's default learning rate (3e-3) for the "
                   "comparison (not with --sweep-only: the sweep trains every rate of --lrs)")
    p.add_argument("--no-orient-maps", action="store_true",
                   help="start from the raw random second-layer filters (the ablation: maps "
                   "may start dark on the balls; see docs/tutorials/balls.md, 'Why the maps are oriented')")
    p.add_argument("--figure-seed", type=nonnegative_int, default=None,
                   help="the seed drawn in fig1.png, with per-epoch R² (default 0; not with "
                   "--sweep-only, which draws no figure)")
    p.add_argument("--out", default=None,
                   help=f"output directory, created with its parents if missing (default "
                        f"{DEFAULT_OUT}; with --quick {QUICK_OUT})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished results.json / sweep.json of other settings in "
                   "--out, or train a finished one again (without it a finished result is "
                   "never overwritten; unfinished runs are always resumed)")
    p.add_argument("--quick", action="store_true",
                   help="tiny video and few steps (a smoke test, not a result)")
    p.add_argument("--sweep", action="store_true",
                   help="also sweep optimiser × learning rate, chosen on a validation video")
    p.add_argument("--sweep-only", action="store_true",
                   help="run only the sweep (skip the default comparison)")
    p.add_argument("--optimizers", type=_name_list(("sgd", "adam")), default=None,
                   help="sweep optimisers, comma-separated (default sgd,adam; needs --sweep "
                   "or --sweep-only)")
    p.add_argument("--lrs", type=_lr_list, default=None,
                   help="sweep learning rates, comma-separated (default 1e-3,3e-3,1e-2,3e-2; "
                   "needs --sweep or --sweep-only)")
    p.add_argument("--jobs", type=_jobs, default=None,
                   help="training runs at once, in worker processes of 1 BLAS thread each; "
                   "the results do not depend on it (default: min(2, cores) = "
                   f"{default_jobs()}; at most 4 per core = {max_jobs()})")
    p.add_argument("--dask", metavar="ADDRESS", type=_dask_spec, default=None,
                   help="submit every run to a Dask cluster instead of --jobs: a scheduler "
                   "address (tcp://HOST:8786, from 'dask scheduler'; start workers with "
                   "'dask worker ADDRESS --nthreads 1') or local:N (N local worker "
                   "processes); needs Dask's distributed (pip install distributed); same results as --jobs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_compare_command)


def _compare_command(args):
    if args.jobs is not None and args.dask is not None:
        raise UsageError("--jobs and --dask are exclusive (with --dask the cluster's workers "
                         "run the jobs)")
    if args.out == "":
        raise UsageError("--out must be a directory path; got ''")
    _refuse_options_without_effect(args)
    if args.dask is not None:
        try:
            parallel.import_distributed()
        except ImportError as error:
            raise UsageError(f"--dask: {error}") from None
    seeds = tuple(range(args.seeds))
    figure_seed = 0 if args.figure_seed is None else args.figure_seed
    if figure_seed not in seeds:
        raise UsageError(f"--figure-seed must be one of the seeds 0..{len(seeds) - 1}; "
                         f"got {figure_seed}")
    train_config, balls_config, curve_every = _default_train_config(), BallsConfig(), 2
    optimisers, lrs = SWEEP_OPTIMISERS, SWEEP_LEARNING_RATES
    if args.quick:
        train_config, balls_config = quick_configs()
        curve_every = 1
        optimisers, lrs = SWEEP_OPTIMISERS, SWEEP_LEARNING_RATES[2:3]
    overrides = {k: v for k, v in (("optimizer", args.optimizer), ("lr", args.lr)) if v is not None}
    if args.no_orient_maps:
        overrides["orient_maps"] = False
    train_config = _config_for(train_config, **overrides)
    optimisers, lrs = tuple(args.optimizers or optimisers), tuple(args.lrs or lrs)
    critics = tuple(args.critics)
    out = args.out if args.out is not None else (QUICK_OUT if args.quick else DEFAULT_OUT)
    planned = []
    if not args.sweep_only:
        planned.append(("results", compare_settings(
            seeds, critics, train_config, balls_config, curve_every, figure_seed)))
    if args.sweep or args.sweep_only:
        planned.append(("sweep", sweep_settings(seeds, critics, train_config, balls_config,
                                                optimisers, lrs)))

    created = _missing_directories(out)  # removed again if the command leaves them empty
    try:
        check_output_dir(out, "--out")
        _check_outputs(out, planned, args.overwrite)
        if not args.sweep_only and not _have_matplotlib():
            print("note: matplotlib is not installed, so fig1.png will not be drawn "
                  "(pip install matplotlib)")
        # one Dask client (and LocalCluster) for the comparison and the sweep
        cluster = (parallel.dask_client(args.dask) if args.dask is not None
                   else contextlib.nullcontext())
        stems = [stem for stem, _ in planned]
        try:
            return _run_planned(args, cluster, out, seeds, critics, train_config, balls_config,
                                curve_every, figure_seed, optimisers, lrs)
        except KeyboardInterrupt:
            kept = _kept(out, stems)
            print("rpmref balls compare: interrupted; " + (
                f"{kept}: run the same command again to train only the rest" if kept
                else "no run had finished, so none is kept"), file=sys.stderr)
            return 130
        except runstore.StoreLockedError:
            raise
        except (NonFiniteLossError, parallel.NoWorkersError) as error:   # the run failed: exit 1
            kept = _kept(out, stems)
            hint = "; try a smaller --lr or --lrs" if isinstance(error, NonFiniteLossError) else ""
            raise RunFailed(f"{error}{hint}" + (f"; {kept}: run the same command again once this "
                                                f"is fixed to train only the rest" if kept else "")
                            ) from None
        except OSError as error:  # a full disk, say: name what is kept
            kept = _kept(out, stems)
            if not kept:
                raise
            raise OSError(error.errno, f"{error.strerror or error}; {kept}: run the same "
                          f"command again once this is fixed to train only the rest",
                          error.filename) from None
    finally:
        _remove_if_left_empty(created, out)


def _refuse_options_without_effect(args):
    """UsageError for an option that the other options make meaningless."""
    sweeping = args.sweep or args.sweep_only
    for flag, value in (("--optimizers", args.optimizers), ("--lrs", args.lrs)):
        if value is not None and not sweeping:
            raise UsageError(f"{flag} sets the sweep's grid, but no sweep runs: add --sweep "
                             f"(or --sweep-only)")
    if args.sweep_only:
        for flag, what, grid in (("--optimizer", "optimiser", "--optimizers"),
                                 ("--lr", "learning rate", "--lrs")):
            if getattr(args, flag[2:]) is not None:
                raise UsageError(f"{flag} sets the comparison's {what}, but --sweep-only "
                                 f"runs no comparison and the sweep trains every value of "
                                 f"{grid}: use {grid}, or --sweep to run both")
        if args.figure_seed is not None:
            raise UsageError("--figure-seed chooses the seed drawn in fig1.png, but "
                             "--sweep-only runs no comparison and draws no figure")


def _check_outputs(out, planned, overwrite):
    """Every output file in ``out`` writable, a finished result not replaced without
    --overwrite, the partial files readable: UsageError/ValueError naming the file."""
    for stem, settings in planned:
        try:
            check_output_files(out, stem)
        except ValueError as error:
            raise UsageError(f"--out {out}: {error}") from None
        path = os.path.join(out, f"{stem}.json")
        saved, reason = read_finished(out, stem)
        if saved is None and os.path.lexists(path) and not overwrite:
            raise UsageError(f"--out {out}: {path} is unreadable or corrupt ({reason}); move "
                             f"it away, or pass --overwrite to replace it")
        same = saved is not None and saved["settings"] == runstore.jsonable(settings)
        if saved is not None and not same and not overwrite:
            raise UsageError(f"--out {out} holds a finished {STEM_NAMES[stem]} ({stem}.json) "
                             f"of other settings; pass --overwrite to replace it, or choose "
                             f"another --out")
        if overwrite or not same:  # the runs will be trained: their partial files are read
            runstore.load(out, stem)  # ValueError naming a corrupt one


def _kept(out, stems):
    """'N finished runs are kept in OUT/x.partial.json', or '' if none are."""
    count, files = 0, []
    for stem in stems:
        try:
            n = len(runstore.load(out, stem))
        except (ValueError, OSError):
            continue
        if n:
            count += n
            files.append(runstore.partial_paths(out, stem)[0])
    if not count:
        return ""
    return f"{plural(count, 'finished run')} {'is' if count == 1 else 'are'} kept in " \
        + " and ".join(files)


def _remove_if_left_empty(created, out):
    """Remove the directories this command created for --out (``created``, deepest first)
    if nothing but the lock file is in them: a run that failed before its first file
    leaves no debris. If ``out`` itself was never made (a name too long deep down), the
    parents made before it go."""
    if created and (not os.path.lexists(out) or drop_lone_lock(out, runstore.LOCK_NAME)):
        remove_directories(created)


def _run_planned(args, cluster, out, seeds, critics, train_config, balls_config, curve_every,
                 figure_seed, optimisers, lrs):
    """The comparison and/or the sweep, with the checks done."""
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(cluster)
        except OSError as error:  # e.g. no scheduler at the address: name the option
            raise OSError(error.errno, f"--dask {args.dask}: {error.strerror or error}") \
                from None
        except RuntimeError as error:  # a LocalCluster that cannot start (no loopback)
            first = (str(error).splitlines() or [type(error).__name__])[0]
            raise RunFailed(f"--dask {args.dask}: {first}") from None
        where = {"jobs": args.jobs, "dask": client, "overwrite": args.overwrite,
                 "progress": not args.no_progress}
        if not args.sweep_only:
            title = QUICK_TITLE if args.quick else "Default settings"
            kept = _finished_before(out, "results", args.overwrite)
            results = run_compare(seeds, critics, train_config, balls_config, out,
                                  curve_every=curve_every, figure_seed=figure_seed,
                                  title=title, **where)
            print(results_markdown(results["summary"], title, results["settings"]))
            earlier = results.get("execution", {}).get("resumed_runs", 0)
            when = (f" in this process ({plural(earlier, 'run')} finished earlier)"
                    if earlier else "")
            if kept:
                print(f"total {results['total_wall_time']:.1f} s when it ran; nothing written "
                      f"({out}/results.json and results.md are that run's)")
            else:
                print(f"total {results['total_wall_time']:.1f} s{when}; wrote {out}/results.json, "
                      f"results.md" + (", fig1.png" if _have_matplotlib() else ""))
        if args.sweep or args.sweep_only:
            title = ("Each critic at its best setting (chosen on the validation video)"
                     + (f" — {QUICK_TITLE.lower()}" if args.quick else ""))
            kept = _finished_before(out, "sweep", args.overwrite)
            sweep = run_sweep(seeds, critics, train_config, balls_config,
                              optimisers=optimisers, learning_rates=lrs, out_dir=out,
                              title=title, **where)
            print(sweep_markdown(sweep, title))
            print(f"nothing written ({out}/sweep.json and sweep.md are that run's)" if kept
                  else f"wrote {out}/sweep.json, sweep.md")
    return 0


def _finished_before(out, stem, overwrite):
    """True if ``out`` holds a finished ``stem``.json that the run will only read back
    (_check_outputs has refused one of other settings without --overwrite)."""
    return not overwrite and read_finished(out, stem)[0] is not None


def _name_list(allowed):
    def parse(text):
        names = [c.strip() for c in text.split(",")]
        if any(n not in allowed for n in names):            # an empty item too
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(allowed)}; got {text!r}")
        _refuse_repeats(names, text)
        return names
    return parse


def _lr_list(text):
    try:
        lrs = [float(c) for c in text.split(",")]       # float('') refuses an empty item
    except ValueError:
        lrs = []
    if not lrs or not all(0 < lr < math.inf for lr in lrs):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive learning rates; got {text!r}")
    _refuse_repeats(lrs, text)
    return lrs


def _critic_list(text):
    critics = [c.strip() for c in text.split(",")]
    unknown = [c for c in critics if c not in CRITICS]      # an empty item too ('rbf,,cosine')
    if unknown or not critics:
        raise argparse.ArgumentTypeError(
            f"critics must be a comma-separated subset of {','.join(CRITICS)}; got {text!r}")
    _refuse_repeats(critics, text)
    return critics


def _refuse_repeats(values, text):
    repeated = sorted({f"{v:g}" if isinstance(v, float) else v
                       for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"each value may appear once (a repeat would train the same runs twice); "
            f"{', '.join(repeated)} repeated in {text!r}")


def _seed_count(text):
    """argparse type of --seeds: an integer from 1 to MAX_SEEDS."""
    value = positive_int(text)
    if value > MAX_SEEDS:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer of at most {MAX_SEEDS} (every seed trains every "
            f"critic), got {text}")
    return value


def _jobs(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= max_jobs():
        raise argparse.ArgumentTypeError(
            f"expected a positive integer of at most {max_jobs()} (4 per core), got {text!r}")
    return value


def _dask_spec(text):
    if text.startswith("local:"):
        try:
            count = parallel.parse_local(text)
        except ValueError:
            count = 0
        if not count or count > max_jobs():
            raise argparse.ArgumentTypeError(
                f"expected local:N with N from 1 to {max_jobs()} (4 per core), or a scheduler "
                f"address such as tcp://127.0.0.1:8786; got {text!r}")
        return text
    if "://" not in text and ":" not in text:
        raise argparse.ArgumentTypeError(
            f"expected a scheduler address such as tcp://127.0.0.1:8786, or local:N; got {text!r}")
    return text
