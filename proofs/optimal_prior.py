"""E4 (Eq. 19-20): the prior maximising L is the recognition joint P(z,z').

L depends on the prior only through sum_{z,z'} P(z,z') log P_theta(z,z') (E2), the
rest (P(z), P(z'), C) being fixed.

What counts as a proof here, at every (k, k') of ``sizes(max_size, dims=2)``, with
P(z,z') a symbolic table on the simplex (last entry = 1 - the others):

1. *Stationarity*: ``sympy.solve`` on the gradient of the Lagrangian
   sum P(z,z') log P_theta(z,z') - lam (sum P_theta(z,z') - 1) (each equation
   multiplied by P_theta(z,z') > 0, an equivalence that makes it polynomial)
   together with the constraint returns exactly one solution, P_theta = P(z,z')
   and lam = 1.
2. *Concavity*: the Hessian of L in the k k' prior entries is diagonal with
   entries -P(z,z')/P_theta(z,z')^2, negative (sympy decides the sign from the
   positive symbols), so L is strictly concave on the positive orthant and a
   stationary point of the Lagrangian on the simplex is the global maximum.
3. *Value*: L(P) - L(P_theta) = KL(P(z,z') || P_theta) (log identity), >= 0 by L1:
   no other prior scores higher; at the optimum KL = 0 and L = I(Z;Z') + C (E3).
"""
import itertools

import sympy as sp

from .core import register
from .finite import latent_tables, sizes, table
from .logsums import record_log_identity
from .notation import P_ZZ, PRIOR, total, z, z2


def e4_statement():
    objective = total(P_ZZ[z, z2] * sp.log(PRIOR[z, z2]), z2, z)
    return sp.Eq(sp.Symbol(r"\operatorname{arg\,max}_{P_{\theta}}") * objective, P_ZZ[z, z2])


@register("E4", "Eq. 19-20: argmax over priors of L is P_theta = P(z,z'); there L = I(Z;Z') + C",
          lambda: r"\operatorname*{arg\,max}_{P_\theta:\ \sum P_\theta = 1}"
                  r" \sum_{z,z'} P(z,z') \log P_\theta(z,z') = P(z,z')")
def prove_e4(proof, max_size):
    proof.assume("P(z,z') > 0 on the simplex; priors P_theta(z,z') > 0 with sum 1; L as in E2/E3")
    lam = sp.Symbol("lambda", positive=True)
    for kk, kk2 in sizes(max_size, dims=2):
        raw, _, _, rules = latent_tables(kk, kk2)
        pzz = raw.xreplace(rules)                                  # entries on the simplex
        prior = table(PRIOR, kk, kk2)
        cells = list(itertools.product(range(kk), range(kk2)))
        objective = sum(pzz[a, b] * sp.log(prior[a, b]) for a, b in cells)
        lagrangian = objective - lam * (sum(prior) - 1)
        # dL/dP_theta = P/P_theta - lam = 0, times P_theta > 0 (an equivalence): P - lam P_theta = 0
        equations = [sp.numer(sp.together(sp.diff(lagrangian, prior[a, b]))) for a, b in cells]
        equations.append(sum(prior) - 1)
        solutions = sp.solve(equations, list(prior) + [lam], dict=True)
        expected = {prior[a, b]: pzz[a, b] for a, b in cells}
        expected[lam] = sp.Integer(1)
        unique = len(solutions) == 1 and all(
            sp.expand(solutions[0].get(v, v) - value) == 0 for v, value in expected.items())
        tag = f"(k, k') = ({kk}, {kk2})"
        proof.check(f"{tag}: the Lagrangian's only stationary point is P_theta = P(z,z'), lambda = 1", unique)
        objective = sum(raw[a, b] * sp.log(prior[a, b]) for a, b in cells)  # each entry > 0
        hessian = sp.hessian(objective, list(prior))
        diagonal = [hessian[i, i] for i in range(hessian.rows)]
        concave = (all(hessian[i, j] == 0 for i in range(hessian.rows) for j in range(hessian.cols) if i != j)
                   and all((-d).is_positive is True for d in diagonal)
                   and all(sp.expand(d + raw[a, b] / prior[a, b] ** 2) == 0
                           for d, (a, b) in zip(diagonal, cells)))
        proof.check(f"{tag}: Hessian = diag(-P(z,z')/P_theta^2), negative definite: L strictly concave",
                    concave)
        at_optimum = sum(raw[a, b] * sp.log(raw[a, b]) for a, b in cells)
        kl = sum(raw[a, b] * sp.log(raw[a, b] / prior[a, b]) for a, b in cells)
        record_log_identity(proof, f"{tag}: L(P(z,z')) - L(P_theta) = KL(P(z,z') || P_theta) >= 0 (L1)",
                            at_optimum - objective, kl)
    proof.show("at P_theta = P(z,z') the KL term of E3 is 0, so L = I(Z;Z') + C")
