"""L1, Gibbs' inequality: KL(q || p) >= 0, with equality exactly when q = p.

E4, E6 and E8 turn an identity "gap = KL(...)" into an inequality with this
lemma, so it is proved here rather than cited.

What counts as a proof: h(u) = u log u - u + 1 on u > 0 has h(1) = 0, h'(1) = 0
and h''(u) = 1/u, whose sign sympy decides from ``u positive``; a strictly convex
function is >= its value at a stationary point, with equality only there, so
h >= 0 with equality iff u = 1. Then q log(q/p) - (q - p) = p h(q/p) is checked
as a log identity, and summing over the states (sum q = sum p = 1) gives
KL(q || p) = sum p h(q/p) >= 0, equality iff q = p everywhere.
"""
import sympy as sp

from .core import register
from .finite import last_entry_rule
from .logsums import record_log_identity, vanishes

u, p, q = sp.symbols("u p q", positive=True)


def h(value):
    return value * sp.log(value) - value + 1


@register("L1", "Gibbs: KL(q||p) >= 0, = 0 iff q = p (lemma for E4, E6, E8)",
          lambda: r"\sum_s q_s \log \frac{q_s}{p_s} \ge 0,\ \text{equality iff } q = p")
def prove_gibbs(proof, max_size):
    proof.assume("p, q probability vectors with positive entries; u > 0")
    proof.show("h(u) = u log u - u + 1", h(u))
    proof.check("h(1) = 0", vanishes(h(sp.Integer(1))))
    first = sp.diff(h(u), u)
    proof.check("h'(u) = log u, so h'(1) = 0", vanishes(first - sp.log(u)) and first.subs(u, 1) == 0, first)
    second = sp.diff(h(u), u, 2)
    proof.check("h''(u) = 1/u > 0 for u > 0: h strictly convex, so h(u) >= h(1) = 0, equality iff u = 1",
                vanishes(second - 1 / u) and second.is_positive is True, second)
    record_log_identity(proof, "q log(q/p) - (q - p) = p h(q/p) (log identity)",
                        q * sp.log(q / p) - (q - p), p * h(q / p))
    for m in range(2, max_size + 2):
        ps = sp.symbols(f"p1:{m + 1}", positive=True)
        qs = sp.symbols(f"q1:{m + 1}", positive=True)
        kl = sum(qi * sp.log(qi / pi) for qi, pi in zip(qs, ps))
        rules = {**last_entry_rule(ps), **last_entry_rule(qs)}
        record_log_identity(proof, f"m = {m} states: KL(q||p) = sum_s p_s h(q_s/p_s) given sum q = sum p = 1",
                            kl, sum(pi * h(qi / pi) for qi, pi in zip(qs, ps)), rules)
    proof.show("each term p_s h(q_s/p_s) >= 0 and = 0 iff q_s = p_s; hence KL >= 0, = 0 iff q = p "
               "(for any number of states: the pointwise identity and sum q - sum p = 0 are all it uses)")
