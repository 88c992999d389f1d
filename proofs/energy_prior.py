"""E5 (Eq. 21-25) and E6: the energy prior turns L into InfoNCE; the gap to the MI is a KL.

Energy prior: P_theta^f(z,z') = P(z) P(z') e^{f(z,z')} / Z(z), Z(z) = sum_z' P(z') e^{f(z,z')}.
Infinite-sample InfoNCE (Eq. 7, 25): I_inf(f) = E_{P(z,z')}[f] - E_{P(z)}[log Z(z)].

What counts as a proof here:

* **Pointwise log identities** with positive probabilities and real f (e^f is
  positive, so ``expand_log`` splits log(P e^f / Z) without ``force``):
  log[P_theta^f/(P(z)P(z'))] = f - log Z(z) (E5), and the MI integrand minus the
  InfoNCE integrand is the KL integrand log[P(z,z')/P_theta^f] (E6). Expectations
  are linear, so the pointwise identities prove the expected ones.
* **Finite sums with symbolic entries** at every (k, k') of ``sizes(max_size, 2)``,
  P(z,z') on the simplex, P(z), P(z') its marginals and Z(z) opaque (definitions
  substituted in the coefficients): the energy prior sums to 1; L - C = I_inf(f);
  I - I_inf(f) = KL(P(z,z') || P_theta^f), >= 0 by L1.
* **Symbolic sizes** k, k' with the sum rewriter of :mod:`proofs.sums`: the
  energy prior sums to 1 (sum_z' P(z') e^f = Z(z), then sum_z P(z) = 1), and the
  weight of log Z(z) is sum_z' P(z,z') = P(z), which turns the expected
  integrand into I_inf(f) (E5) and the MI minus the KL into I_inf(f) (E6).
* **When the gap is zero** (E6): solving P_theta^f = P(z,z') for e^f gives
  e^f = Z(z) P(z,z')/(P(z)P(z')), i.e. P(z'|z)/P(z') times a factor of z alone;
  conversely every critic e^f = c(z) P(z,z')/(P(z)P(z')) has Z(z) = c(z) and
  P_theta^f = P(z,z') (rational identities at each size).
"""
import itertools

import sympy as sp

from .core import register
from .finite import latent_tables, sizes, table
from .logsums import monomial_coefficients, record_log_identity, vanishes
from .notation import F, P_Z, P_Z2, P_ZZ, ZF, total, z, z2
from .sums import rewrite, rule, same, sum_in_order


def energy_prior(pz, pz2, f, partition):
    """P_theta^f(z,z') = P(z) P(z') e^f / Z(z)   (Eq. 21)."""
    return pz * pz2 * sp.exp(f) / partition


PRIOR_F = sp.IndexedBase(r"P^{f}_{\theta}", positive=True)


def definition_of_prior():
    return sp.latex(sp.Eq(PRIOR_F[z, z2], sp.Mul(P_Z[z], P_Z2[z2], sp.exp(F[z, z2]), 1 / ZF[z], evaluate=False)))


def e5_statement():
    identity = sp.Eq(total(P_ZZ[z, z2] * sp.log(PRIOR_F[z, z2] / (P_Z[z] * P_Z2[z2])), z2, z),
                     total(P_ZZ[z, z2] * F[z, z2], z2, z) - total(P_Z[z] * sp.log(ZF[z]), z))
    return definition_of_prior() + r"\quad\Longrightarrow\quad " + sp.latex(identity)


def marginal_rules():
    rules = {}
    rules.update(rule(P_ZZ[z, z2], [z2], P_Z[z]))
    rules.update(rule(P_Z2[z2] * sp.exp(F[z, z2]), [z2], ZF[z]))
    rules.update(rule(P_Z[z], [z], 1))
    return rules


def prove_log_partition_weight(proof, integrand, target, text):
    """Symbolic sizes: sum over z' then z of ``integrand`` rewrites to ``target`` (sums in that order)."""
    summed = rewrite(sum_in_order(integrand, z2, z), marginal_rules())
    proof.check("symbolic sizes: " + text, same(summed, target), sp.Eq(sum_in_order(integrand, z2, z), summed))


def finite_setup(kk, kk2):
    """Tables at (k, k'): P(z,z'), marginals, critic, opaque Z(z) and its definition."""
    pzz, pz, pz2, rules = latent_tables(kk, kk2)
    f = table(F, kk, kk2)
    zf = [ZF[a + 1] for a in range(kk)]
    z_definition = {zf[a]: sum(pz2[b] * sp.exp(f[a, b]) for b in range(kk2)) for a in range(kk)}
    prior = {(a, b): energy_prior(pz[a], pz2[b], f[a, b], zf[a])
             for a, b in itertools.product(range(kk), range(kk2))}
    return pzz, pz, pz2, f, zf, z_definition, prior, rules


def infonce(pzz, pz, f, zf):
    """I_inf(f) = sum P(z,z') f(z,z') - sum_z P(z) log Z(z)   (Eq. 7, 25)."""
    kk, kk2 = pzz.shape
    return (sum(pzz[a, b] * f[a, b] for a in range(kk) for b in range(kk2))
            - sum(pz[a] * sp.log(zf[a]) for a in range(kk)))


@register("E5", "Eq. 21-25: with the energy prior, L = E[f] - E_P(z)[log Z(z)] + C = I_inf(f) + C",
          e5_statement)
def prove_e5(proof, max_size):
    proof.assume("P(z,z') > 0 on the simplex, P(z), P(z') its marginals; f(z,z') real; "
                 "Z(z) = sum_z' P(z') e^{f(z,z')} (Eq. 22); L - C = sum P(z,z') log P_theta/(P(z)P(z')) (E2)")
    record_log_identity(proof, "pointwise: log P_theta^f/(P(z)P(z')) = f(z,z') - log Z(z)",
                        sp.log(energy_prior(P_Z[z], P_Z2[z2], F[z, z2], ZF[z]) / (P_Z[z] * P_Z2[z2])),
                        F[z, z2] - sp.log(ZF[z]))
    for lhs, value in marginal_rules().items():
        proof.show("definition used as a rewrite rule (marginal, Eq. 22, normalisation)", sp.Eq(lhs, value))
    prove_log_partition_weight(
        proof, energy_prior(P_Z[z], P_Z2[z2], F[z, z2], ZF[z]), sp.Integer(1),
        "the energy prior sums to 1 (sum over z' gives Z(z), then sum_z P(z) = 1)")
    prove_log_partition_weight(
        proof, P_ZZ[z, z2] * (F[z, z2] - sp.log(ZF[z])),
        sum_in_order(P_ZZ[z, z2] * F[z, z2], z2, z) - sum_in_order(P_Z[z] * sp.log(ZF[z]), z),
        "sum P(z,z') (f - log Z(z)) = E_P(z,z')[f] - E_P(z)[log Z(z)] = I_inf(f)")
    for kk, kk2 in sizes(max_size, dims=2):
        pzz, pz, pz2, f, zf, z_definition, prior, rules = finite_setup(kk, kk2)
        tag = f"(k, k') = ({kk}, {kk2})"
        # sum = sum_z P(z)/Z(z) * [sum_z' P(z') e^f]: read off the coefficient of each 1/Z(z)
        parts = monomial_coefficients(sum(prior.values()), zf)
        expected = {1 / zf[a]: pz[a] * z_definition[zf[a]] for a in range(kk)}
        normalised = (set(parts) == set(expected)
                      and all(vanishes(parts[key] - value) for key, value in expected.items())
                      and vanishes(sum(pz) - 1, rules))
        proof.check(f"{tag}: the energy prior sums to 1: the coefficient of 1/Z(z) is P(z) Z(z), "
                    "and sum_z P(z) = 1", normalised)
        lhs = sum(pzz[a, b] * sp.log(prior[a, b] / (pz[a] * pz2[b])) for a, b in prior)
        record_log_identity(proof, f"{tag}: L - C = I_inf(f) (the weight of log Z(z) is the marginal P(z))",
                            lhs, infonce(pzz, pz, f, zf), rules)


def e6_statement():
    mi = total(P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2])), z2, z)
    infonce_ = total(P_ZZ[z, z2] * F[z, z2], z2, z) - total(P_Z[z] * sp.log(ZF[z]), z)
    identity = sp.Eq(mi - infonce_, total(P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / PRIOR_F[z, z2]), z2, z))
    return definition_of_prior() + r"\quad\Longrightarrow\quad " + sp.latex(identity) + r" \ge 0"


@register("E6", "gap: I(Z;Z') - I_inf(f) = KL(P(z,z') || P_theta^f) >= 0, zero iff e^f ∝ P(z'|z)/P(z') per z",
          e6_statement)
def prove_e6(proof, max_size):
    proof.assume("as E5; P(z'|z) = P(z,z')/P(z)")
    prior = energy_prior(P_Z[z], P_Z2[z2], F[z, z2], ZF[z])
    record_log_identity(proof, "pointwise: MI integrand - InfoNCE integrand = log P(z,z')/P_theta^f(z,z')",
                        sp.log(P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2])) - (F[z, z2] - sp.log(ZF[z])),
                        sp.log(P_ZZ[z, z2] / prior))
    mi_integrand = P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2]))
    prove_log_partition_weight(
        proof, mi_integrand - P_ZZ[z, z2] * (F[z, z2] - sp.log(ZF[z])),
        sum_in_order(mi_integrand, z2, z) - sum_in_order(P_ZZ[z, z2] * F[z, z2], z2, z)
        + sum_in_order(P_Z[z] * sp.log(ZF[z]), z),
        "the sum over (z,z') of [MI integrand - P(z,z')(f - log Z(z))] is I(Z;Z') - I_inf(f) "
        "(the weight of log Z(z) is P(z)); with the pointwise step, I - I_inf(f) = KL")
    w = sp.Symbol("w", positive=True)                     # w = e^{f(z,z')} at one cell
    solved = sp.solve(sp.Eq(energy_prior(P_Z[z], P_Z2[z2], sp.log(w), ZF[z]), P_ZZ[z, z2]), w)
    optimal = ZF[z] * P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2])
    proof.check("P_theta^f(z,z') = P(z,z') solved for e^f: e^f = Z(z) P(z,z')/(P(z)P(z')) "
                "= Z(z) P(z'|z)/P(z'), Z(z) a factor of z alone",
                len(solved) == 1 and vanishes(solved[0] - optimal), sp.Eq(sp.exp(F[z, z2]), optimal))
    for kk, kk2 in sizes(max_size, dims=2):
        pzz, pz, pz2, f, zf, z_definition, prior, rules = finite_setup(kk, kk2)
        tag = f"(k, k') = ({kk}, {kk2})"
        mi = sum(pzz[a, b] * sp.log(pzz[a, b] / (pz[a] * pz2[b])) for a, b in prior)
        kl = sum(pzz[a, b] * sp.log(pzz[a, b] / prior[a, b]) for a, b in prior)
        record_log_identity(proof, f"{tag}: I - I_inf(f) = KL(P(z,z') || P_theta^f)",
                            mi - infonce(pzz, pz, f, zf), kl, rules)
        scale = [sp.Symbol(f"c_{a + 1}", positive=True) for a in range(kk)]
        critic = {f[a, b]: sp.log(scale[a] * pzz[a, b] / (pz[a] * pz2[b])) for a, b in prior}
        z_at_critic = {zf[a]: z_definition[zf[a]].xreplace(critic) for a in range(kk)}
        ok = (all(vanishes(z_at_critic[zf[a]] - scale[a], rules) for a in range(kk))
              and all(vanishes(prior[c].xreplace(critic).xreplace(z_at_critic) - pzz[c], rules) for c in prior))
        proof.check(f"{tag}: every critic e^f = c(z) P(z'|z)/P(z') has Z(z) = c(z) and P_theta^f = P(z,z') "
                    "(KL = 0)", ok)
    proof.show("KL >= 0 with equality iff P_theta^f = P(z,z') (L1): the gap is >= 0 and is 0 exactly for "
               "the critics e^f = c(z) P(z'|z)/P(z')")
