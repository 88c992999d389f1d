"""Deliberately wrong identities: the provers must report them FAILED.

They are registered with ``wrong=True``, left out of the default run and
selected with ``rpmref proofs --check-wrong`` (or ``--only WRONG-E2``), so that a
failing proof and the exit code 1 can be demonstrated.

* WRONG-E2: Eq. 16 with the constant C = -H(X) - H(X') dropped (log-coefficient
  method at finite sizes, and the symbolic-size rewriter).
* WRONG-N1: the RPM likelihood with P(z') missing from the denominator, claimed
  to sum to the prior mass (symbolic-size rewriter and finite monomial check).
"""
import sympy as sp

from .core import register
from .elbo import elbo15, log_ratio
from .finite import recognition_tables
from .logsums import monomial_coefficients, record_log_identity, vanishes
from .notation import ENC, ENC2, P_X, P_X2, P_XX, P_Z, P_ZZ, PRIOR, total, x, x2, z, z2
from .sums import rewrite, rule, same, sum_in_order


@register("WRONG-E2", "Eq. 16 without the constant C",
          lambda: sp.Eq(sp.Symbol("L"), total(P_ZZ[z, z2] * log_ratio(z, z2), z2, z)), wrong=True)
def prove_wrong_e2(proof, max_size):
    proof.assume("as E2; the right side omits C = -H(X) - H(X')")
    t = recognition_tables(2, 2, 2, 2)
    lhs = sum(t.p[i, j] * elbo15(t, i, j) for i in range(2) for j in range(2))
    rhs = sum(t.pzz[a, b] * log_ratio(a + 1, b + 1) for a in range(2) for b in range(2))
    record_log_identity(proof, "(n, n', k, k') = (2, 2, 2, 2): finite sums", lhs, rhs, t.rules)
    rules = rule(P_XX[x, x2] * ENC[x, z] * ENC2[x2, z2], [x, x2], P_ZZ[z, z2])
    summed = rewrite(sum_in_order(P_XX[x, x2] * ENC[x, z] * ENC2[x2, z2] * log_ratio(z, z2), x, x2, z2, z)
                     + sum_in_order(P_XX[x, x2] * (sp.log(P_X[x]) + sp.log(P_X2[x2])), x2, x), rules)
    claimed = sum_in_order(P_ZZ[z, z2] * log_ratio(z, z2), z2, z)
    proof.check("symbolic sizes: L, rewritten with the definitions, equals the claimed right side",
                same(summed, claimed), sp.Eq(summed, claimed))


@register("WRONG-N1", "N1 with P(z') missing from the likelihood's denominator",
          lambda: sp.Eq(total(P_X[x] * P_X2[x2] * total(PRIOR[z, z2] * ENC[x, z] * ENC2[x2, z2] / P_Z[z], z2, z),
                              x2, x), total(PRIOR[z, z2], z2, z)), wrong=True)
def prove_wrong_n1(proof, max_size):
    proof.assume("as N1, but the likelihood divides by P(z) only")
    rules = rule(P_X[x] * ENC[x, z], [x], P_Z[z])
    inner = rewrite(sum_in_order(P_X[x] * P_X2[x2] * PRIOR[z, z2] * ENC[x, z] * ENC2[x2, z2] / P_Z[z], x, x2),
                    rules)
    proof.check("symbolic sizes: summing over x, x' leaves P_theta(z,z')", same(inner, PRIOR[z, z2]),
                sp.Eq(inner, PRIOR[z, z2]))
    t = recognition_tables(2, 2, 2, 2)
    inv = [sp.Symbol(f"r_{a + 1}", positive=True) for a in range(2)]
    mass = sum(t.px[i] * t.px2[j] * t.prior[a, b] * t.enc[i, a] * t.enc2[j, b] * inv[a]
               for i in range(2) for j in range(2) for a in range(2) for b in range(2))
    parts = monomial_coefficients(mass, list(t.prior) + inv)
    ok = all(vanishes(parts.get(t.prior[a, b] * inv[a], 0) - t.pz[a], t.rules) for a in range(2) for b in range(2))
    proof.check("(2, 2, 2, 2): coefficient of P_theta(z,z')/P(z) is P(z)", ok)
