"""The prover for identities between sums of weighted logarithms.

Method (what counts as a proof here). Let D = lhs - rhs, built from positive
symbols, the real critic values f, and opaque *named quantities* (P(x), P(z),
Z(z), ...) that stand for their definitions.

1. Common factors are pulled out of every log argument (``factor_terms``), then
   ``expand_log`` (without ``force``: sympy splits a log only where it can see
   that the factors are positive) and ``expand`` turn D into
   D = sum_a c_a * log(a) + c_0, the atoms log(a) being logs of single symbols or of
   sums that cannot be split.
2. Each coefficient c_a (and c_0) is a polynomial or rational function. The
   definitions of the named quantities and the normalisation constraints (last
   entry = 1 - the others) are substituted *into the coefficients only*, and the
   result must expand to exactly 0.

If every coefficient vanishes on the constraint set, D = 0 there, whatever
values the log atoms take: the check is sufficient (it can fail to prove a true
identity, never prove a false one). The decomposition is read off term by
term from the expanded sum, so nothing is lost. ``simplify`` is never used:
it is not a decision procedure and on these sums it is also too slow.
"""
import sympy as sp


def vanishes(expr, substitutions=None):
    """True if ``expr`` with ``substitutions`` applied is identically 0.

    Polynomials are decided by ``expand``; rational functions by expanding the
    numerator of ``together``. Returns a real bool, never sympy's None.
    """
    if substitutions:
        expr = expr.xreplace(substitutions)
    value = sp.expand(expr)
    if value == 0:
        return True
    numerator, _ = sp.fraction(sp.together(value))
    return sp.expand(numerator) == 0


def log_coefficients(expr):
    """Split ``expr`` as {log atom: coefficient} plus {1: remainder}.

    Works term by term on the expanded sum (``collect`` is far slower here).
    Raises ValueError if a term holds a product or power of logs (the expression
    is not linear in its logs, so the method does not apply).
    """
    # (a + b)/2 is stored as a/2 + b/2: pull common factors out of every log argument
    # so that log((a + b)/2) splits into log(a + b) - log(2) like its other spellings
    expr = expr.replace(lambda e: isinstance(e, sp.log), lambda e: sp.log(sp.factor_terms(e.args[0])))
    expanded = sp.expand(sp.expand_log(expr))
    parts = {}
    for term in sp.Add.make_args(expanded):
        logs = [f for f in sp.Mul.make_args(term) if f.has(sp.log)]
        if not logs:
            key, rest = sp.S.One, term
        elif len(logs) == 1 and isinstance(logs[0], sp.log):
            key = logs[0]
            rest = sp.Mul(*(f for f in sp.Mul.make_args(term) if f is not key))
        else:
            raise ValueError(f"not linear in logs: term {term}")
        parts.setdefault(key, []).append(rest)
    return {key: sp.Add(*terms) for key, terms in parts.items()}


def monomial_coefficients(expr, generators):
    """Split the expanded ``expr`` as {product of generator powers: coefficient}."""
    generators = set(generators)
    parts = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        factors = sp.Mul.make_args(term)
        key = sp.Mul(*(f for f in factors if f.as_base_exp()[0] in generators))
        rest = sp.Mul(*(f for f in factors if f.as_base_exp()[0] not in generators))
        parts.setdefault(key, []).append(rest)
    return {key: sp.Add(*terms) for key, terms in parts.items()}


def check_log_identity(lhs, rhs, substitutions=None):
    """Decide lhs == rhs by the coefficient method above.

    Returns (ok, residuals, n_atoms): residuals maps each log atom whose
    coefficient did not vanish to that coefficient (after substitution).
    """
    parts = log_coefficients(lhs - rhs)
    residuals = {}
    for atom, coefficient in parts.items():
        if not vanishes(coefficient, substitutions):
            residual = coefficient.xreplace(substitutions) if substitutions else coefficient
            residuals[atom] = sp.expand(residual)
    n_atoms = sum(1 for atom in parts if atom != 1)
    return not residuals, residuals, n_atoms


def record_log_identity(proof, text, lhs, rhs, substitutions=None):
    """Decide lhs == rhs (:func:`check_log_identity`) and record the verdict on ``proof``;
    a failure's text names the first non-vanishing coefficients."""
    ok, residuals, _ = check_log_identity(lhs, rhs, substitutions)
    return proof.check(text + ("" if ok else ": " + describe(residuals)), ok)


def describe(residuals, limit=2):
    """A short text naming the first non-vanishing coefficients."""
    items = list(residuals.items())[:limit]
    text = "; ".join(f"coefficient of {atom} is {sp.sstr(c)[:80]}" for atom, c in items)
    more = len(residuals) - len(items)
    return text + (f"; and {more} more" if more > 0 else "")
