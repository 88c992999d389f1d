"""A small rewriter for sums of symbolic size (n, n', k, k' left as symbols).

sympy's ``doit``/``simplify`` leave these ``Sum`` expressions unchanged, and
``.subs`` on a ``Sum`` silently does nothing, so the proofs are written as the
hand proof would be and sympy carries out each step:

* :func:`sum_over` sums an expression over one index, pulling every factor free
  of that index out of the sum (distributivity; finite sums may be taken in any
  order, so the proof chooses the order);
* :func:`rewrite` replaces sub-sums by what they are defined to be
  (``xreplace`` with rules such as  sum_z P(z|x) = 1,  sum_x' P(x,x') = P(x),
  sum_x P(x) P(z|x) = P(z)), matching the exact expression tree.

Each rule's left side is built with :func:`sum_over` itself, so it has the same
tree as the sums it must match. A proof ends by comparing two expressions
structurally after ``expand``: equal trees, or not proved.
"""
import sympy as sp

from .notation import RANGE


def sum_over(expr, index):
    """sum over ``index`` of ``expr``, with factors free of ``index`` pulled out."""
    out = []
    for term in sp.Add.make_args(sp.expand_mul(expr)):
        inside, outside = [], []
        for factor in sp.Mul.make_args(term):
            (inside if index in factor.free_symbols else outside).append(factor)
        out.append(sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), RANGE[index]))
    return sp.Add(*out)


def sum_in_order(expr, *indices):
    """sum_over the indices one at a time, first index innermost."""
    for index in indices:
        expr = sum_over(expr, index)
    return expr


def rewrite(expr, rules):
    """Apply definition rules {sub-sum: value} until nothing changes."""
    while True:
        new = sp.expand_mul(expr.xreplace(rules))
        if new == expr:
            return new
        expr = new


def rule(body, indices, value):
    """The rule  sum_{indices} body = value, its left side built by sum_in_order."""
    return {sum_in_order(body, *indices): value}


def same(a, b):
    """Structural equality after expansion (a verdict: True or False)."""
    return bool(sp.expand_mul(a - b) == 0)
