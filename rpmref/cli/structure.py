"""``rpmref structure``: MI is blind to relabellings of the latents, the InfoNCE prior is not
(``rpmref.structure.experiment``)."""
import json
import os
import sys
import time

from rpmref.balls.runstore import jsonable, replacing, write_json
from rpmref.cli.common import (RunFailed, check_distinct_outputs, check_output_file,
                                positive_float, positive_int)
from rpmref.environment import environment
from rpmref.structure.experiment import (
    QUICK_SIZES, SIZES, format_gaussian, format_invariance, format_learning, plot, run_experiment)
from rpmref.structure.geometry import GEOMETRIES
from rpmref.structure.learning import LearnConfig

QUICK_STEPS = 60


def run(args):
    if args.figure is not None:  # before the computation, not after ('' is refused)
        check_output_file(args.figure, "--figure", needs_matplotlib=True)
    to_stdout = args.json == "-"
    if args.json is not None and not to_stdout:
        check_output_file(args.json, "--json")
    check_distinct_outputs(("--figure", args.figure), ("--json", args.json))
    out = sys.stderr if to_stdout else sys.stdout   # stdout carries only the JSON then
    steps = args.steps if args.steps is not None else (QUICK_STEPS if args.quick else
                                                      LearnConfig().steps)
    config = LearnConfig(steps=steps, learning_rate=args.learning_rate,
                         baseline_samples=20 if args.quick else LearnConfig().baseline_samples)
    geometries = GEOMETRIES if args.geometry == "all" else (args.geometry,)
    started = time.perf_counter()
    try:
        result = run_experiment(geometries, args.seeds, config, quick=args.quick,
                                progress=lambda text: print(text, file=sys.stderr))
    except FloatingPointError as error:   # a run diverged: the run failed, exit 1
        raise RunFailed(f"training diverged ({error}); try a smaller --learning-rate "
                        f"than {args.learning_rate:g}") from None
    seconds = time.perf_counter() - started
    sizes = QUICK_SIZES if args.quick else SIZES
    print("Relabellings of the topographic (contiguous-block) encoder: I(Z;Z') and I_inf with "
          "the local critic f = -d^2/(2 l^2), l best per labelling (nats)", file=out)
    print(format_invariance(result["invariance"]), file=out)
    print(file=out)
    print(f"Learning: {args.seeds} seeds x {steps} Adam steps per objective", file=out)
    print(format_learning(result["learning"]), file=out)
    print(file=out)
    print("Gaussian latents, z -> Az and z' -> Az' (rho = 0.9, 0.5): I is invariant, "
          "the RBF I_inf at its best l is not", file=out)
    print(format_gaussian(result["gaussian"]), file=out)
    print(f"\n({seconds:.1f} s)", file=sys.stderr)
    if args.json is not None:
        record = {"environment": environment(),
                  "settings": {"geometries": list(geometries), "seeds": args.seeds,
                               "steps": steps, "learning_rate": args.learning_rate,
                               "quick": args.quick,
                               "sizes": {g: list(sizes[g]) for g in geometries}},
                  "invariance": result["invariance"], "learning": result["learning"],
                  "gaussian": result["gaussian"], "seconds": seconds}
        if to_stdout:
            print(json.dumps(jsonable(record), indent=1, allow_nan=False))
        else:
            write_json(args.json, record)
            print(f"wrote {args.json}", file=sys.stderr)
    if args.figure is not None:
        suffix = ".tmp" + os.path.splitext(args.figure)[1]   # matplotlib picks the format by it
        with replacing(args.figure, suffix=suffix) as target:  # a failed write leaves no part
            plot(result, target)
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "structure", help="MI is blind to relabellings of the latents; the InfoNCE prior is not",
        description="Exact discrete check of the argument the paper takes from Tschannen et "
        "al. (2019): I(Z;Z') is the same for every relabelling of the latent states, while "
        "I_inf with the local critic -d(z,z')^2/(2 l^2) (the ELBO with its energy prior, E5) "
        "ranks the topographic labelling first. Then softmax encoders are trained on MI, "
        "on I_inf with the local critic, on I_inf with an unrestricted critic table and on "
        "sampled InfoNCE, and scored for topography; and invertible linear maps of Gaussian "
        "latents, in closed form.")
    p.add_argument("--geometry", choices=GEOMETRIES + ("all",), default="all",
                   help="data and latent geometry (default: %(default)s)")
    p.add_argument("--seeds", type=positive_int, default=5,
                   help="training seeds per objective (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help=f"Adam steps per run (default: {LearnConfig().steps}; "
                   f"{QUICK_STEPS} with --quick)")
    p.add_argument("--learning-rate", type=positive_float, default=LearnConfig().learning_rate,
                   help="Adam step size (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="small problems (8 states, 4 latents; a 4x4 grid, 2x2 latents) and "
                   "few steps: a smoke test")
    p.add_argument("--json", metavar="PATH", nargs="?", const="-",
                   help="also write {environment, settings, invariance, learning, gaussian, "
                   "seconds} to PATH; --json alone prints it on stdout (the tables then go "
                   "to stderr)")
    p.add_argument("--figure", metavar="PATH",
                   help="also write the figure to PATH (.png, .pdf, .svg, ...; needs matplotlib)")
    p.set_defaults(func=run)
