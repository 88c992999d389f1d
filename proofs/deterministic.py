"""E9 (Appendix C) and A1 (Appendix A, Eq. 28-34): deterministic encoders.

What counts as a proof here: finite sums with fully symbolic entries, for every
deterministic encoder up to relabelling of the latent states
(:func:`proofs.finite.encoder_maps`: one map per set partition of the inputs into
at most k blocks, so non-injective and non-onto maps are all included). With an
identity map sympy would cancel P(z) = P(x) while building the expression and
the check would prove nothing; with the maps here P(z) is a genuine sum of
several P(x). Terms whose weight P(z|x) is 0 are dropped (0 log 0 = 0, and 0/0
terms of unreachable latent states, docs/theory.md, 'The model').

* **E9**, every size in ``sizes(max_size)`` and every pair (x, x'): the ELBO of
  Eq. 15 equals log P_theta(x,x') for any positive prior table; P(x), P(z) are the
  explicit marginals of a symbolic P(x,x') on the simplex (log-coefficient method).
* **A1**, every (N, k, k') in ``sizes(max_size, 3)``: the empirical marginals
  (P(x_n) = 1/N, Eq. 29), the energy prior (Eq. 21) and a real critic table f;
  the RPM pmf over index pairs (Eq. 34) equals (1/N) e^{f(z_n,z'_m)} / sum_j e^{f(z_n,z'_j)}
  (a rational identity in the e^f), sums to 1, and its per-pair mean log-probability
  is the batch InfoNCE objective minus 2 log N.
"""
import itertools

import sympy as sp

from .core import register
from .finite import encoder_maps, last_entry_rule, one_hot, sizes, table
from .logsums import check_log_identity, describe, vanishes
from .notation import P_XX, PRIOR


def e9_statement():
    return r"\mathrm{ELBO}(x,x') = \log P_\theta(x,x')\ \text{when } P(z|x) = [z = g(x)],\ P(z'|x') = [z' = g'(x')]"


def rpm_marginal(px, px2, pz, pz2, enc, enc2, prior, i, j):
    """P_theta(x_i, x'_j) (docs/theory.md, 'The model'), over reachable latent states only."""
    k, k2 = prior.shape
    return px[i] * px2[j] * sum(prior[a, b] * enc[i, a] * enc2[j, b] / (pz[a] * pz2[b])
                                for a in range(k) for b in range(k2) if pz[a] != 0 and pz2[b] != 0)


def elbo15(px, px2, pz, pz2, enc, enc2, prior, i, j):
    """Eq. 15 with 0 log(...) terms dropped."""
    k, k2 = prior.shape
    return (sum(enc[i, a] * enc2[j, b] * sp.log(prior[a, b] / (pz[a] * pz2[b]))
                for a in range(k) for b in range(k2) if enc[i, a] * enc2[j, b] != 0)
            + sp.log(px[i]) + sp.log(px2[j]))


@register("E9", "Appendix C: deterministic encoders (non-injective included): ELBO(x,x') = log P_theta(x,x')",
          e9_statement)
def prove_e9(proof, max_size):
    proof.assume("P(x,x') > 0 on the simplex; 0/1 encoders; any positive prior table")
    n_maps = n_pairs = 0
    for size in sizes(max_size):
        n, n2, k, k2 = size
        p, prior = table(P_XX, n, n2), table(PRIOR, k, k2)
        constraint = last_entry_rule(p)
        px = [sum(p.row(i)) for i in range(n)]
        px2 = [sum(p.col(j)) for j in range(n2)]
        maps, maps2 = encoder_maps(n, k), encoder_maps(n2, k2)
        failures = []
        for g, g2 in itertools.product(maps, maps2):
            enc, enc2 = one_hot(g, k), one_hot(g2, k2)
            pz = [sum(px[i] * enc[i, a] for i in range(n)) for a in range(k)]
            pz2 = [sum(px2[j] * enc2[j, b] for j in range(n2)) for b in range(k2)]
            for i, j in itertools.product(range(n), range(n2)):
                args = (px, px2, pz, pz2, enc, enc2, prior, i, j)
                ok, residuals, _ = check_log_identity(elbo15(*args), sp.log(rpm_marginal(*args)), constraint)
                n_pairs += 1
                if not ok:
                    failures.append(f"g={g}, g'={g2}, pair ({i + 1},{j + 1}): {describe(residuals)}")
        n_maps += len(maps) * len(maps2)
        proof.check(f"(n, n', k, k') = {size}: ELBO(x,x') = log P_theta(x,x') for every encoder pair "
                    "(up to relabelling) and every (x, x')" + ("" if not failures else ": " + failures[0]),
                    not failures)
    proof.show(f"{n_maps} encoder pairs and {n_pairs} (encoder pair, x, x') identities checked in all")


def a1_statement():
    return (r"P_\theta(n,m) = \frac{1}{N^2}\sum_{z,z'} \frac{P_\theta(z,z') P(z|x_n) P(z'|x'_m)}{P(z)P(z')}"
            r" = \frac{1}{N}\,\frac{e^{f(z_n,z'_m)}}{\sum_j e^{f(z_n,z'_j)}}")


@register("A1", "Appendix A, Eq. 28-34: empirical-marginal RPM with deterministic encoders and energy prior "
          "= in-batch softmax / N", a1_statement)
def prove_a1(proof, max_size):
    proof.assume("N training pairs, P(x_n) = P(x'_m) = 1/N (Eq. 29); z_n = g(x_n), z'_m = g'(x'_m); "
                 "energy prior with any real critic table f (Eq. 21-22)")
    n_maps = 0
    for size in sizes(max_size, dims=3):
        batch, k, k2 = size
        f = sp.Matrix(k, k2, lambda a, b: sp.Symbol(f"f_{a + 1}{b + 1}", real=True))
        maps, maps2 = encoder_maps(batch, k), encoder_maps(batch, k2)
        failures = []
        for g, g2 in itertools.product(maps, maps2):
            enc, enc2 = one_hot(g, k), one_hot(g2, k2)
            pz = [sp.Rational(sum(enc.col(a)), batch) for a in range(k)]        # Eq. 29
            pz2 = [sp.Rational(sum(enc2.col(b)), batch) for b in range(k2)]
            zf = [sum(pz2[b] * sp.exp(f[a, b]) for b in range(k2)) for a in range(k)]
            prior = sp.Matrix(k, k2, lambda a, b: pz[a] * pz2[b] * sp.exp(f[a, b]) / zf[a])
            uniform = [sp.Rational(1, batch)] * batch
            closed = {}
            for i, j in itertools.product(range(batch), range(batch)):
                model = rpm_marginal(uniform, uniform, pz, pz2, enc, enc2, prior, i, j)
                softmax = sp.exp(f[g[i], g2[j]]) / sum(sp.exp(f[g[i], g2[m]]) for m in range(batch))
                closed[i, j] = softmax / batch
                if not vanishes(model - closed[i, j]):
                    failures.append(f"g={g}, g'={g2}, (n, m) = ({i + 1},{j + 1}): model != softmax/N")
            if not vanishes(sum(closed.values()) - 1):
                failures.append(f"g={g}, g'={g2}: the pmf does not sum to 1")
            mean_log = sum(sp.log(closed[i, i]) for i in range(batch)) / batch
            infonce = sum(sp.log(sp.exp(f[g[i], g2[i]]) / (sum(sp.exp(f[g[i], g2[m]]) for m in range(batch)) / batch))
                          for i in range(batch)) / batch
            ok, residuals, _ = check_log_identity(mean_log, infonce - 2 * sp.log(batch))
            if not ok:
                failures.append(f"g={g}, g'={g2}: mean log P_theta(n,n) != I_batch - 2 log N: {describe(residuals)}")
        n_maps += len(maps) * len(maps2)
        proof.check(f"(N, k, k') = {size}: for every encoder pair (up to relabelling) P_theta(n,m) = softmax/N, "
                    "it sums to 1, and mean log P_theta(n,n) = batch InfoNCE - 2 log N"
                    + ("" if not failures else ": " + failures[0]), not failures)
    proof.show(f"{n_maps} encoder pairs checked in all")
