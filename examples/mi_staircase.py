"""The MI staircase of Poole et al. (2019) with the critics of Aitchison & Ganev.

Read next to the paper (and docs/theory.md, 'Gaussian latents'):

1. Data: x ∈ R^20 standard normal, y = ρx + √(1−ρ²) ε, so the true mutual
   information is −(d/2) log(1 − ρ²); ρ is set to give 2, 4, 6, 8, 10 nats.
   Identity encoders: z = x, z' = y (a Gaussian recognition joint, Eq. 3).
2. Critics (Sec. 3.2, 5): the optimal critic log p(y|x)/p(y) (E6: it makes the
   energy prior, Eq. 21, equal to the recognition joint, so I_∞ = I); the
   bilinear critic xᵀWy (Eq. 8) and the RBF critic −‖x − y‖²/(2ℓ²) (Eq. 27),
   each with the parameters W*, ℓ* that maximise I_∞ in closed form.
3. Objectives: I_∞ (Eq. 7, 25) in closed form, I_K (Eq. 6) with batch K = 64
   by Monte Carlo. E6: I − I_∞ = KL(P(z,z') ‖ P_θ^f) ≥ 0; E7: I_K ≤ log K.

Run:  python examples/mi_staircase.py [--quick] [--figure docs/mi_staircase.png]
"""
import argparse

from rpmref import gaussian
from rpmref.cli.common import OneLineErrorParser, check_output_file
from rpmref.gaussian import staircase as mi_bench

parser = OneLineErrorParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
parser.add_argument("--figure", metavar="PATH", help="write the figure (PNG) here")
args = parser.parse_args()
if args.figure:  # before the work, not after it
    try:
        check_output_file(args.figure, "--figure", needs_matplotlib=True)
    except ValueError as error:
        parser.error(str(error))
batches = 20 if args.quick else mi_bench.BATCHES

# 1–2. One level by hand: the joint, the three critics and their closed forms.
joint, rho = mi_bench.staircase_joint(10.0)
ell = gaussian.optimal_rbf_lengthscale(joint)
print(f"10 nats in d = 20: rho = {rho:.4f}, I(Z;Z') = {gaussian.mutual_information(joint):.4f}")
for name, critic in [("optimal", gaussian.optimal_critic(joint)),
                     ("bilinear W*", gaussian.optimal_bilinear_critic(joint)),
                     (f"RBF l*={ell:.3f}", gaussian.rbf_critic(ell, 20))]:
    limit = gaussian.infonce_limit(joint, critic)
    kl = gaussian.kl_divergence(joint, gaussian.energy_prior(joint, critic))
    print(f"  {name:>14}: I_inf = {limit:.4f}, KL(P || energy prior) = {kl:.4f} "
          f"(E6: I - I_inf = {gaussian.mutual_information(joint) - limit:.4f})")

# 3. The staircase: every level, I_inf in closed form and I_K by Monte Carlo.
rows = mi_bench.benchmark_rows(batches=batches)
print()
print(mi_bench.format_table(rows))
if args.figure:
    mi_bench.plot(rows, args.figure)
    print(f"wrote {args.figure}")
