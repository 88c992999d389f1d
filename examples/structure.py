"""Mutual information is blind to relabellings of the latents; the InfoNCE prior is not.

Read next to the paper's introduction (Tschannen et al. 2019) and docs/tutorials/structure.md:

1. Data on a line, a ring or a grid; P(x, x') = uniform P(x) × a lazy random walk.
2. The topographic encoder maps x to its contiguous block. Relabelling the blocks leaves
   I(Z;Z') unchanged and changes I_∞ (Eq. 7) with the local critic −d(z,z')²/(2ℓ²)
   (Eq. 27), the ELBO with that critic's energy prior (E5).
3. Softmax encoders trained from random starts on MI, on I_∞ (local critic or a free
   critic table) and on sampled InfoNCE, scored for topography.
4. The Gaussian analogue: invertible linear maps of the latents.

Run:  python examples/structure.py [--quick] [--figure structure.png]
"""
import argparse

from rpmref.cli.common import OneLineErrorParser, check_output_file
from rpmref.structure.experiment import (
    format_gaussian, format_invariance, format_learning, plot, run_experiment)
from rpmref.structure.learning import LearnConfig

parser = OneLineErrorParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
parser.add_argument("--figure", metavar="PATH", help="write the figure here (needs matplotlib)")
args = parser.parse_args()
if args.figure:  # before the work, not after it
    try:
        check_output_file(args.figure, "--figure", needs_matplotlib=True)
    except ValueError as error:
        parser.error(str(error))

config = LearnConfig(steps=40, baseline_samples=10) if args.quick else LearnConfig()
result = run_experiment(seeds=2 if args.quick else 5, config=config, quick=args.quick)
print(format_invariance(result["invariance"]))
print()
print(format_learning(result["learning"]))
print()
print(format_gaussian(result["gaussian"]))
if args.figure:
    plot(result, args.figure)
    print(f"wrote {args.figure}")
