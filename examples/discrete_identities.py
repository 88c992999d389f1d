"""A worked example of the exact discrete core (see docs/tutorials/discrete.md).

Four data states in pairs (x, x'), a 3-state recognition model for each side,
and a critic f. Prints the ELBO decomposition (E3), the optimal prior (E4), the
energy prior and I_inf (E5, E6) and the finite-sample bound I_N (E7).
Run: python examples/discrete_identities.py
"""
import argparse

import numpy as np

import rpmref
from rpmref.cli.common import OneLineErrorParser

p_xx = np.array([[0.30, 0.05, 0.00, 0.00],     # P(x, x'): mostly x' = x
                 [0.05, 0.20, 0.05, 0.00],
                 [0.00, 0.05, 0.15, 0.05],
                 [0.00, 0.00, 0.05, 0.05]])
enc = np.array([[0.9, 0.1, 0.0],                # P(z | x), rows sum to 1
                [0.2, 0.7, 0.1],
                [0.0, 0.3, 0.7],
                [0.0, 0.0, 1.0]])
enc_prime = enc.copy()                          # the same recognition model for x'
f = np.array([[2.0, 0.0, -2.0],                 # a critic f(z, z') favouring z' = z
              [0.0, 2.0, 0.0],
              [-2.0, 0.0, 2.0]])


def main():
    p_zz = rpmref.recognition_joint(p_xx, enc, enc_prime)
    uniform = np.full((3, 3), 1 / 9)
    d = rpmref.elbo_decomposition(p_xx, enc, enc_prime, uniform)
    print(f"uniform prior:  L = {d.elbo:.6f} = I {d.mutual_information:.6f} "
          f"- KL {d.kl:.6f} + C {d.constant:.6f}")
    best = rpmref.elbo_decomposition(p_xx, enc, enc_prime, rpmref.optimal_prior(p_xx, enc, enc_prime))
    print(f"optimal prior:  L = {best.elbo:.6f}, KL = {best.kl:.1e}  (L = I + C)")
    energy = rpmref.energy_prior(p_zz, f)
    limit = rpmref.infonce_limit(p_zz, f)
    print(f"energy prior:   L - C = {rpmref.expected_elbo(p_xx, enc, enc_prime, energy) - d.constant:.6f}"
          f" = I_inf(f) = {limit:.6f};  I - I_inf = {d.mutual_information - limit:.6f}"
          f" = KL = {rpmref.kl_divergence(p_zz, energy):.6f}")
    for n in (2, 8, 64):
        bound = rpmref.infonce_bound(p_zz, f, n)
        print(f"I_N, N = {n:2d}:   {bound.estimate:.6f}  ({bound.method})")
    total = np.exp(rpmref.rpm_log_likelihood(p_xx, enc, enc_prime, energy)).sum()
    print(f"sum of P_theta(x, x') = {total:.12f}  (N1)")


if __name__ == "__main__":
    OneLineErrorParser(description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
