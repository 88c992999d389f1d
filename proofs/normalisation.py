"""N1: the RPM is a normalised generative model (docs/theory.md, 'The model').

sum_{x,x'} P_theta(x,x') = sum_{z,z' : P(z)P(z') > 0} P_theta(z,z'), with the RPM
marginal likelihood P_theta(x,x') = P(x)P(x') sum_{z,z'} P_theta(z,z') P(z|x)P(z'|x')/(P(z)P(z')).

What counts as a proof here:

* **Symbolic sizes** n, n', k, k' with the sum rewriter of :mod:`proofs.sums`:
  exchange the finite sums, apply sum_x P(x)P(z|x) = P(z) (Eq. 11), cancel, and
  sum_{z,z'} P_theta = 1. Here every latent state is reachable (P(z) > 0).
* **Finite sizes with symbolic entries** (every size in :func:`proofs.finite.sizes`),
  by :func:`mass_by_monomials`: stochastic encoders with positive entries, 1/P(z) and 1/P(z') kept opaque
  symbols r, r'; the sum is a polynomial in the prior entries and r, r', and the
  coefficient of each monomial P_theta(z,z') r_z r'_z' is read off and shown to be
  P(z)P(z') once the definitions are substituted (a polynomial identity).
* **Unreachable states**: every deterministic encoder up to relabelling
  (:func:`proofs.finite.encoder_maps`), including maps that are not onto, so
  some latent states have P(z) = 0; their terms have P(z|x) = 0 for every x and are
  dropped (0/0 := 0, docs/theory.md, 'The model'). The sum is then exactly the prior mass on the
  reachable states, with an unnormalised symbolic prior.
"""
import itertools

import sympy as sp

from .core import register
from .finite import encoder_maps, one_hot, sizes, table
from .logsums import monomial_coefficients, vanishes
from .notation import ENC, ENC2, P_X, P_X2, P_Z, P_Z2, PRIOR, total, x, x2, z, z2
from .sums import rewrite, rule, same, sum_in_order


def n1_statement():
    likelihood = P_X[x] * P_X2[x2] * total(PRIOR[z, z2] * ENC[x, z] * ENC2[x2, z2] / (P_Z[z] * P_Z2[z2]), z2, z)
    return sp.Eq(total(likelihood, x2, x), total(PRIOR[z, z2], z2, z))


@register("N1", "sum_{x,x'} P_theta(x,x') = prior mass on reachable (z,z'): the RPM is normalised",
          n1_statement)
def prove_n1(proof, max_size):
    proof.assume("P(x), P(x') > 0 (any values: only P(z) = sum_x P(x)P(z|x), Eq. 11, is used), "
                 "P(z|x) > 0 or 0/1 (deterministic); any positive prior table; 0/0 terms dropped")
    prove_n1_generic(proof)
    for size in sizes(max_size):
        prove_n1_finite(proof, size)
    n_maps = sum(prove_n1_deterministic(proof, size) for size in sizes(max_size))
    proof.show(f"{n_maps} deterministic encoder pairs checked in all")


def prove_n1_generic(proof):
    rules = {}
    rules.update(rule(P_X[x] * ENC[x, z], [x], P_Z[z]))
    rules.update(rule(P_X2[x2] * ENC2[x2, z2], [x2], P_Z2[z2]))
    for lhs, value in rules.items():
        proof.show("definition (Eq. 11) used as a rewrite rule", sp.Eq(lhs, value))
    integrand = P_X[x] * P_X2[x2] * PRIOR[z, z2] * ENC[x, z] * ENC2[x2, z2] / (P_Z[z] * P_Z2[z2])
    inner = rewrite(sum_in_order(integrand, x, x2), rules)
    proof.check("symbolic sizes: summing over x, x' first (finite sums commute), the definitions "
                "cancel P(z) P(z'), leaving P_theta(z,z')", same(inner, PRIOR[z, z2]),
                sp.Eq(sum_in_order(integrand, x, x2), inner))
    mass = sum_in_order(PRIOR[z, z2], z2, z)
    proof.check("symbolic sizes: what remains is the prior mass sum_{z,z'} P_theta(z,z') "
                "(= 1 for a normalised prior)", same(sum_in_order(inner, z2, z), mass), mass)


def mass_by_monomials(enc, enc2):
    """Check sum_{x,x'} P_theta(x,x') = reachable prior mass for encoder matrices enc (n, k), enc2 (n', k').

    P(x), P(x') are opaque positive symbols (the identity needs no more of them),
    P(z) = sum_x P(x) P(z|x) (Eq. 11); a latent state is reachable iff its encoder
    column is not all 0. 1/P(z) and 1/P(z') are opaque symbols r, r': the sum is a
    polynomial in the prior entries and r, r', and the coefficient of each
    monomial P_theta(z,z') r_z r'_z' must be P(z)P(z'), with no other monomials.
    Returns (ok, number of reachable (z, z')).
    """
    (n, k), (n2, k2) = enc.shape, enc2.shape
    prior = table(PRIOR, k, k2)
    px, px2 = [P_X[i + 1] for i in range(n)], [P_X2[j + 1] for j in range(n2)]
    reach = [a for a in range(k) if any(enc.col(a))]
    reach2 = [b for b in range(k2) if any(enc2.col(b))]
    inv = {a: sp.Symbol(f"r_{a + 1}", positive=True) for a in reach}     # opaque 1/P(z)
    inv2 = {b: sp.Symbol(f"r'_{b + 1}", positive=True) for b in reach2}  # opaque 1/P(z')
    pz = {a: sum(px[i] * enc[i, a] for i in range(n)) for a in reach}
    pz2 = {b: sum(px2[j] * enc2[j, b] for j in range(n2)) for b in reach2}
    total_mass = sum(px[i] * px2[j] * prior[a, b] * enc[i, a] * enc2[j, b] * inv[a] * inv2[b]
                     for i in range(n) for j in range(n2) for a in reach for b in reach2)
    parts = monomial_coefficients(total_mass, list(prior) + list(inv.values()) + list(inv2.values()))
    expected = {prior[a, b] * inv[a] * inv2[b]: pz[a] * pz2[b] for a in reach for b in reach2}
    ok = set(parts) == set(expected) and all(vanishes(parts[m] - v) for m, v in expected.items())
    return bool(ok), len(expected)


def prove_n1_finite(proof, size):
    n, n2, k, k2 = size
    enc, enc2 = table(ENC, n, k), table(ENC2, n2, k2)
    ok, _ = mass_by_monomials(enc, enc2)
    proof.check(f"(n, n', k, k') = {size}: sum_{{x,x'}} P_theta(x,x') = sum_{{z,z'}} c(z,z') "
                "P_theta(z,z') / (P(z)P(z')) with every coefficient c(z,z') = P(z)P(z') "
                "(1/P(z), 1/P(z') opaque)", ok)


def prove_n1_deterministic(proof, size):
    n, n2, k, k2 = size
    maps, maps2 = encoder_maps(n, k), encoder_maps(n2, k2)
    ok = all(mass_by_monomials(one_hot(g, k), one_hot(g2, k2))[0]
             for g, g2 in itertools.product(maps, maps2))
    proof.check(f"(n, n', k, k') = {size}: every deterministic encoder pair (up to relabelling, onto or "
                "not): sum_{x,x'} P_theta(x,x') = prior mass on the reachable states", ok)
    return len(maps) * len(maps2)
