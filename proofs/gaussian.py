"""G1 (docs/theory.md, 'Gaussian latents'): the 1-D Gaussian example in closed form, from the Gaussian integrals.

(z, z') jointly Gaussian with unit variances and correlation rho, |rho| < 1, written
z' = rho z + s u with z, u independent N(0, 1) and s = sqrt(1 - rho^2) > 0; RBF
critic f(z, z') = -(z - z')^2 / (2 l^2) (Eq. 27), l > 0. Claims:

  I_inf(l) = -(1 - rho)/l^2 - log l + 1/2 log(1 + l^2) + 1/(2 (1 + l^2)),
  I(Z;Z')  = -1/2 log(1 - rho^2)  (= -log s),
  I - I_inf(l) = E_z KL( p(z'|z) || p_theta^f(z'|z) ) > 0 for every l > 0   (E6 in closed form).

What counts as a proof here: two integrals are done by ``sympy.integrate`` once
and checked against their closed forms -- the Gaussian integral
int exp(-a w^2 + b w + c) dw = sqrt(pi/a) exp(b^2/(4a) + c) for a > 0, and the
standard normal moments E[w^m], m <= 4 -- and every expectation below is computed
from those two facts (the exponent's coefficients read off with ``Poly``; a
polynomial's expectation term by term). Every comparison is the log-coefficient
method of :mod:`proofs.logsums`, s^2 = 1 - rho^2 substituted into coefficients
only. Strictness: the expected KL splits as 1/2 (t - 1 - log t) + 1/2 (rho - a)^2 / v
with t = s^2/v; both parts are >= 0 (the first by the same convexity argument as
L1), and ``solve`` shows they cannot vanish together for l > 0.
"""
import functools

import sympy as sp

from .core import register
from .logsums import record_log_identity, vanishes

z, u, v, w = sp.symbols("z u v w", real=True)
ell, s, a_, t_ = sp.symbols("ell s a t", positive=True)
rho = sp.Symbol("rho", real=True)
b_, c_ = sp.symbols("b c", real=True)
ON_SIMPLEX = {s: sp.sqrt(1 - rho ** 2)}   # s = sqrt(1 - rho^2), substituted into coefficients


def normal_pdf(x, mean, var):
    return sp.exp(-(x - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def critic(x, y):
    """RBF critic (Eq. 27) in one dimension."""
    return -(x - y) ** 2 / (2 * ell ** 2)


@functools.lru_cache(maxsize=None)
def moment(m):
    """E[w^m] for w ~ N(0, 1), by sympy.integrate."""
    return sp.integrate(w ** m * normal_pdf(w, 0, 1), (w, -sp.oo, sp.oo))


def gaussian_integral(exponent, var):
    """int exp(exponent) d var for exponent = -a var^2 + b var + c with a > 0 (the checked lemma)."""
    poly = sp.Poly(sp.expand(exponent), var)
    if poly.degree() != 2:
        raise ValueError(f"exponent must be quadratic in {var}, got degree {poly.degree()}")
    a, b, c = -poly.coeff_monomial(var ** 2), poly.coeff_monomial(var), poly.coeff_monomial(1)
    if a.is_positive is not True:
        raise ValueError(f"the coefficient of -{var}^2 must be positive, got {a}")
    return sp.sqrt(sp.pi / a) * sp.exp(b ** 2 / (4 * a) + c)


def normal_expectation(expr, variables):
    """E[expr] for independent N(0, 1) variables, expr a polynomial in them (other factors constant)."""
    poly = sp.Poly(sp.expand(expr), *variables)
    total = 0
    for powers, coefficient in poly.terms():
        term = coefficient
        for power in powers:
            term *= moment(power)
        total += term
    return total


def log_identity(proof, text, lhs, rhs, substitutions=ON_SIMPLEX):
    return record_log_identity(proof, text, lhs, rhs, substitutions)


def g1_statement():
    infonce = sp.Eq(sp.Symbol(r"I_{\infty}(\ell)"),
                    -(1 - rho) / ell ** 2 - sp.log(ell) + sp.log(1 + ell ** 2) / 2 + 1 / (2 * (1 + ell ** 2)))
    mutual = sp.Eq(sp.Symbol("I(Z;Z')"), -sp.log(1 - rho ** 2) / 2)
    return sp.latex(infonce) + r",\quad " + sp.latex(mutual) + r",\quad I(Z;Z') - I_{\infty}(\ell) > 0"


@register("G1", "1-D Gaussian, RBF critic: I_inf(l) closed form, I = -1/2 log(1-rho^2), gap > 0",
          g1_statement)
def prove_g1(proof, max_size):
    proof.assume("z, u independent N(0,1); z' = rho z + s u with s = sqrt(1 - rho^2) > 0 (|rho| < 1): "
                 "unit variances, correlation rho; l > 0")
    lemma = sp.integrate(sp.exp(-a_ * w ** 2 + b_ * w + c_), (w, -sp.oo, sp.oo))
    proof.check("lemma: int exp(-a w^2 + b w + c) dw = sqrt(pi/a) exp(b^2/(4a) + c), a > 0 (sympy.integrate)",
                vanishes(lemma - sp.sqrt(sp.pi / a_) * sp.exp(b_ ** 2 / (4 * a_) + c_)))
    proof.check("lemma: standard normal moments E[w^m] = 1, 0, 1, 0, 3 for m = 0..4 (sympy.integrate)",
                [moment(m) for m in range(5)] == [1, 0, 1, 0, 3])
    z2 = rho * z + s * u
    mean_f = normal_expectation(critic(z, z2), [z, u])
    log_identity(proof, "E_p(z,z')[f] = -(1 - rho)/l^2", mean_f, -(1 - rho) / ell ** 2)
    partition = gaussian_integral(sp.expand_log(sp.log(normal_pdf(v, 0, 1)), force=False) + critic(z, v), v)
    closed_partition = ell / sp.sqrt(1 + ell ** 2) * sp.exp(-z ** 2 / (2 * (1 + ell ** 2)))
    log_identity(proof, "Z(z) = E_p(z')[e^f(z,z')] = l/sqrt(1+l^2) exp(-z^2/(2(1+l^2)))",
                 sp.log(partition), sp.log(closed_partition), None)
    mean_log_partition = normal_expectation(sp.expand(sp.expand_log(sp.log(closed_partition))), [z])
    infonce = mean_f - mean_log_partition
    formula = -(1 - rho) / ell ** 2 - sp.log(ell) + sp.log(1 + ell ** 2) / 2 + 1 / (2 * (1 + ell ** 2))
    log_identity(proof, "I_inf(l) = E[f] - E_p(z)[log Z(z)] = the closed form", infonce, formula)
    conditional = normal_pdf(z2, rho * z, s ** 2)
    mutual = normal_expectation(sp.expand(sp.expand_log(sp.log(conditional / normal_pdf(z2, 0, 1)))), [z, u])
    log_identity(proof, "I(Z;Z') = E log p(z'|z)/p(z') = -log s = -1/2 log(1 - rho^2)", mutual, -sp.log(s))
    shrink, var = 1 / (1 + ell ** 2), ell ** 2 / (1 + ell ** 2)
    model = normal_pdf(v, 0, 1) * sp.exp(critic(z, v)) / closed_partition
    log_identity(proof, "p_theta^f(z'|z) = p(z') e^f / Z(z) = N(z'; z/(1+l^2), l^2/(1+l^2))",
                 sp.log(model), sp.log(normal_pdf(v, shrink * z, var)), None)
    expected_kl = normal_expectation(
        sp.expand(sp.expand_log(sp.log(conditional / normal_pdf(z2, shrink * z, var)))), [z, u])
    log_identity(proof, "I - I_inf(l) = E_z KL(p(z'|z) || p_theta^f(z'|z)) (E6)", mutual - infonce, expected_kl)
    ratio = s ** 2 / var
    split = (ratio - 1 - sp.log(ratio)) / 2 + (rho - shrink) ** 2 / (2 * var)
    log_identity(proof, "E_z KL = 1/2 (t - 1 - log t) + 1/2 (rho - a)^2 / v, t = s^2/v, a = 1/(1+l^2), "
                 "v = l^2/(1+l^2)", expected_kl, split)
    g = t_ - 1 - sp.log(t_)
    proof.check("g(t) = t - 1 - log t: g(1) = 0, g'(1) = 0, g''(t) = 1/t^2 > 0, so g >= 0, = 0 iff t = 1",
                g.subs(t_, 1) == 0 and sp.diff(g, t_).subs(t_, 1) == 0
                and sp.diff(g, t_, 2).is_positive is True)
    mismatch = sp.cancel((1 - rho ** 2 - var).subs(rho, shrink))
    proof.check("at rho = a the variances differ: 1 - a^2 - v = l^2/(1+l^2)^2 > 0",
                vanishes(mismatch - ell ** 2 / (1 + ell ** 2) ** 2) and mismatch.is_positive is True, mismatch)
    both_zero = sp.solve([1 - rho ** 2 - var, rho - shrink], [rho, ell], dict=True)
    proof.check("1 - rho^2 = v and rho = a have no solution with l > 0: the gap is > 0 at every l",
                both_zero == [], sp.Eq(sp.Symbol("solutions"), sp.Integer(len(both_zero))))
