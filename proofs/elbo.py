"""E1, E2, E3, E8: the ELBO of the recognition parameterised model (Eq. 12-18).

What counts as a proof here:

* **Pointwise log identities** (E1, E3) with positive symbols: the integrands
  agree for every (z, z'), checked by the log-coefficient method of
  :mod:`proofs.logsums`. Expectations are linear, so integrands that agree at
  every point have equal expectations under any weights: the pointwise identity
  proves the expected one.
* **Finite sums with symbolic entries** for every size in
  :func:`proofs.finite.sizes` (all of {1, 2}^4 and (3, 3, 3, 3) by default), the
  normalisation constraints substituted and the named quantities P(x), P(z),
  P(z, z') kept opaque, their definitions substituted into the coefficients.
* **Symbolic sizes** n, n', k, k' (E2) with the sum rewriter of :mod:`proofs.sums`.

All probabilities are > 0 (interior of the simplices); the prior need not be
normalised for E1-E3 (the identities hold for any positive table).
"""
import itertools

import sympy as sp

from .core import register
from .finite import last_entry_rule, latent_tables, recognition_tables, sizes, table
from .logsums import record_log_identity, vanishes
from .notation import (ENC, ENC2, P_X, P_X2, P_XX, P_Z, P_Z2, P_ZZ, PRIOR, Q, total,
                             x, x2, z, z2)
from .sums import rewrite, rule, same, sum_in_order


def log_ratio(a, b):
    """log[ P_theta(z, z') / (P(z) P(z')) ] at latent indices (a, b)."""
    return sp.log(PRIOR[a, b] / (P_Z[a] * P_Z2[b]))


def eq12_integrand(xa, xb, a, b, q):
    """Integrand of Eq. 12 with the Bayes likelihoods of Eq. 10: P(x|z) = P(z|x)P(x)/P(z)."""
    return (sp.log(PRIOR[a, b]) + sp.log(ENC[xa, a] * P_X[xa] / P_Z[a])
            + sp.log(ENC2[xb, b] * P_X2[xb] / P_Z2[b]) - sp.log(q))


def e1_statement():
    q = ENC[x, z] * ENC2[x2, z2]
    return sp.Eq(total(q * eq12_integrand(x, x2, z, z2, q), z2, z),
                 total(q * log_ratio(z, z2), z2, z) + sp.log(P_X[x]) + sp.log(P_X2[x2]))


@register("E1", "Eq. 12 -> Eq. 15: with Q = P(z|x)P(z'|x') and Bayes likelihoods, the ELBO is Eq. 15",
          e1_statement)
def prove_e1(proof, max_size):
    proof.assume("P(z|x), P(z'|x'), P_theta(z,z'), P(x), P(x'), P(z), P(z') > 0; "
                 "Q(z,z'|x,x') = P(z|x) P(z'|x') (Eq. 14); P(x|z) = P(z|x) P(x) / P(z) (Eq. 10)")
    q = ENC[x, z] * ENC2[x2, z2]
    record_log_identity(proof, "pointwise: integrand of Eq. 12 = log P_theta/(P(z)P(z')) + log P(x) + log P(x') "
                        "for every (z, z'), so the Q-expectations agree",
                        eq12_integrand(x, x2, z, z2, q), log_ratio(z, z2) + sp.log(P_X[x]) + sp.log(P_X2[x2]))
    for kk, kk2 in sizes(max_size, dims=2):
        enc, enc2 = table(ENC, 1, kk), table(ENC2, 1, kk2)
        pairs = list(itertools.product(range(1, kk + 1), range(1, kk2 + 1)))
        qs = {(a, b): enc[0, a - 1] * enc2[0, b - 1] for a, b in pairs}
        lhs = sum(qs[a, b] * eq12_integrand(1, 1, a, b, qs[a, b]) for a, b in pairs)
        rhs = sum(qs[a, b] * log_ratio(a, b) for a, b in pairs) + sp.log(P_X[1]) + sp.log(P_X2[1])
        rules = {**last_entry_rule(enc), **last_entry_rule(enc2)}
        record_log_identity(proof, f"(k, k') = ({kk}, {kk2}): sum over z, z' of Eq. 12 = Eq. 15 with the "
                            "constants outside the sum (rows of the encoders sum to 1)", lhs, rhs, rules)


def elbo15(t, i, j):
    """Eq. 15 at data indices (i, j) of the finite tables t."""
    k, k2 = t.prior.shape
    return (sum(t.enc[i, a] * t.enc2[j, b] * log_ratio(a + 1, b + 1) for a in range(k) for b in range(k2))
            + sp.log(t.px[i]) + sp.log(t.px2[j]))


def e2_rhs_finite(t):
    k, k2 = t.prior.shape
    mi_part = sum(t.pzz[a, b] * log_ratio(a + 1, b + 1) for a in range(k) for b in range(k2))
    return mi_part + sum(v * sp.log(v) for v in t.px) + sum(v * sp.log(v) for v in t.px2)


def e2_statement():
    elbo = total(ENC[x, z] * ENC2[x2, z2] * log_ratio(z, z2), z2, z) + sp.log(P_X[x]) + sp.log(P_X2[x2])
    return sp.Eq(total(P_XX[x, x2] * elbo, x2, x),
                 total(P_ZZ[z, z2] * log_ratio(z, z2), z2, z)
                 + total(P_X[x] * sp.log(P_X[x]), x) + total(P_X2[x2] * sp.log(P_X2[x2]), x2))


@register("E2", "Eq. 16: E_P(x,x')[ELBO] = sum P(z,z') log P_theta/(P(z)P(z')) - H(X) - H(X')",
          e2_statement)
def prove_e2(proof, max_size):
    proof.assume("P(x,x') on the simplex, rows of P(z|x), P(z'|x') sum to 1, all entries > 0; "
                 "P(x), P(x'), P(z), P(z'), P(z,z') defined by Eq. 4, 11")
    for size in sizes(max_size):
        t = recognition_tables(*size)
        n, n2 = t.p.shape
        lhs = sum(t.p[i, j] * elbo15(t, i, j) for i in range(n) for j in range(n2))
        record_log_identity(proof, f"(n, n', k, k') = {size}: finite sums, definitions substituted in the "
                            "coefficients", lhs, e2_rhs_finite(t), t.rules)
    prove_e2_generic(proof)


def prove_e2_generic(proof):
    """E2 for symbolic n, n', k, k', as the hand proof: exchange sums, apply definitions."""
    ratio = log_ratio(z, z2)
    rules = {}
    rules.update(rule(P_XX[x, x2] * ENC[x, z] * ENC2[x2, z2], [x, x2], P_ZZ[z, z2]))
    rules.update(rule(P_XX[x, x2], [x2], P_X[x]))
    rules.update(rule(P_XX[x, x2], [x], P_X2[x2]))
    for lhs, value in rules.items():
        proof.show("definition (Eq. 4, 11) used as a rewrite rule", sp.Eq(lhs, value))
    parts = [ENC[x, z] * ENC2[x2, z2] * ratio, sp.log(P_X[x]), sp.log(P_X2[x2])]
    integrand = P_XX[x, x2] * (total(ENC[x, z] * ENC2[x2, z2] * ratio, z2, z) + parts[1] + parts[2])
    proof.show("symbolic sizes: L = sum_{x,x'} P(x,x') ELBO(x,x'), split by linearity into three sums", integrand)
    orders = [(x, x2, z2, z), (x2, x), (x, x2)]
    targets = [sum_in_order(P_ZZ[z, z2] * ratio, z2, z), sum_in_order(P_X[x] * sp.log(P_X[x]), x),
               sum_in_order(P_X2[x2] * sp.log(P_X2[x2]), x2)]
    names = ["sum_{z,z'} P(z,z') log P_theta/(P(z)P(z'))", "-H(X)", "-H(X')"]
    for part, order, target, name in zip(parts, orders, targets, names):
        summed = rewrite(sum_in_order(P_XX[x, x2] * part, *order), rules)
        proof.check(f"symbolic sizes: summing in the order {', '.join(map(str, order))} and applying "
                    f"the definitions gives {name}", same(summed, target),
                    sp.Eq(sum_in_order(P_XX[x, x2] * part, *order), summed))


def e3_statement():
    mi = total(P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2])), z2, z)
    kl = total(P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / PRIOR[z, z2]), z2, z)
    return sp.Eq(total(P_ZZ[z, z2] * log_ratio(z, z2), z2, z), mi - kl)


@register("E3", "Eq. 17-18: L = I(Z;Z') - KL(P(z,z') || P_theta(z,z')) + C", e3_statement)
def prove_e3(proof, max_size):
    proof.assume("P(z,z') > 0 on the simplex with marginals P(z), P(z'); P_theta(z,z') > 0; "
                 "with E2, L - C is the left side")
    record_log_identity(proof, "pointwise: P(z,z') log P_theta/(P(z)P(z')) = MI integrand - KL integrand",
                        P_ZZ[z, z2] * log_ratio(z, z2),
                        P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / (P_Z[z] * P_Z2[z2]))
                        - P_ZZ[z, z2] * sp.log(P_ZZ[z, z2] / PRIOR[z, z2]))
    for kk, kk2 in sizes(max_size, dims=2):
        pzz, pz, pz2, rules = latent_tables(kk, kk2)
        cells = list(itertools.product(range(kk), range(kk2)))
        lhs = sum(pzz[a, b] * log_ratio(a + 1, b + 1) for a, b in cells)
        mi = sum(pzz[a, b] * sp.log(pzz[a, b] / (pz[a] * pz2[b])) for a, b in cells)
        kl = sum(pzz[a, b] * sp.log(pzz[a, b] / PRIOR[a + 1, b + 1]) for a, b in cells)
        record_log_identity(proof, f"(k, k') = ({kk}, {kk2}): finite sums", lhs, mi - kl, rules)


def e8_statement():
    post = sp.Symbol(r"P_{\theta}(z,z'|x,x')")
    return sp.Eq(sp.log(sp.Symbol(r"P_{\theta}(x,x')")) - sp.Symbol(r"\mathrm{ELBO}_Q(x,x')"),
                 total(Q[z, z2] * sp.log(Q[z, z2] / post), z2, z))


@register("E8", "ELBO(x,x') <= log P_theta(x,x'); the gap is KL(Q || P_theta(z,z'|x,x'))", e8_statement)
def prove_e8(proof, max_size):
    proof.assume("any Q(z,z'|x,x') > 0 on the simplex (Eq. 14's choice is one); Bayes likelihoods (Eq. 10); "
                 "S = sum P_theta P(z|x)P(z'|x')/(P(z)P(z')) so P_theta(x,x') = P(x)P(x') S (docs/theory.md, 'The model'); "
                 "posterior P_theta(z,z'|x,x') = P_theta(z,z') P(x|z) P(x'|z') / P_theta(x,x')")
    s = sp.Symbol("S", positive=True)
    for kk, kk2 in sizes(max_size, dims=2):
        enc, enc2, q = table(ENC, 1, kk), table(ENC2, 1, kk2), table(Q, kk, kk2)
        cells = [(a, b) for a in range(kk) for b in range(kk2)]
        weight = {(a, b): PRIOR[a + 1, b + 1] * enc[0, a] * enc2[0, b] / (P_Z[a + 1] * P_Z2[b + 1])
                  for a, b in cells}
        definition = {s: sum(weight.values())}
        marginal = P_X[1] * P_X2[1] * s
        posterior = {c: (PRIOR[c[0] + 1, c[1] + 1] * enc[0, c[0]] * P_X[1] / P_Z[c[0] + 1]
                         * enc2[0, c[1]] * P_X2[1] / P_Z2[c[1] + 1] / marginal) for c in cells}
        elbo = sum(q[a, b] * eq12_integrand(1, 1, a + 1, b + 1, q[a, b]) for a, b in cells)
        kl = sum(q[a, b] * sp.log(q[a, b] / posterior[a, b]) for a, b in cells)
        tag = f"(k, k') = ({kk}, {kk2})"
        proof.check(f"{tag}: the posterior sums to 1 (S substituted)",
                    vanishes(sum(posterior.values()) - 1, definition))
        record_log_identity(proof, f"{tag}: log P_theta(x,x') - ELBO_Q = KL(Q || posterior) (sum Q = 1)",
                            sp.log(marginal) - elbo, kl, last_entry_rule(q))
    proof.show("KL >= 0 by L1, so ELBO_Q(x,x') <= log P_theta(x,x'), equality iff Q is the posterior")
