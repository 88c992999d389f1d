"""E7 (Eq. 6), the part that is an algebraic fact: I_N(f) <= log N.

I_N(f) = E[ (1/N) sum_i log( e^{f(z_i,z'_i)} / ((1/N) sum_j e^{f(z_i,z'_j)}) ) ].

What counts as a proof here: for each concrete N = 1 .. 2 max_size, with the
N^2 critic values f_ij = f(z_i, z'_j) real symbols, and for every i:

1. log N - term_i = log A_i, where A_i = 1 + sum_{j != i} e^{f_ij - f_ii}
   (the argument identity is checked by ``expand``, the log step by the
   log-coefficient method: every quantity inside a log is positive);
2. A_i - 1 is a sum of exponentials of reals, so sympy decides A_i - 1 > 0 for
   N >= 2 (and A_i = 1 for N = 1), hence log A_i >= 0 and term_i <= log N.

Each term of the average is <= log N whatever the sample, so the expectation is
too. Symbolic N does not go through (sympy cannot split a Sum of symbolic length
into the i-th term and the rest), so this is the statement for every N up to the
bound. The other two parts of E7 (I_N <= I(Z;Z') and I_N -> I_inf as N -> inf)
are probabilistic, not algebraic: they are numeric checks in ``rpmref verify``.
"""
import sympy as sp

from .core import register
from .logsums import check_log_identity, describe, vanishes


def e7_statement():
    n_, i, j = sp.symbols("N i j", integer=True, positive=True)
    f = sp.IndexedBase("f", real=True)
    term = sp.log(sp.exp(f[i, i]) / (sp.Sum(sp.exp(f[i, j]), (j, 1, n_)) / n_))
    return sp.Le(sp.Sum(term, (i, 1, n_)) / n_, sp.log(n_))


@register("E7", "Eq. 6: I_N(f) <= log N (each in-batch log-softmax term <= log N), N = 1 .. 2 max_size",
          e7_statement)
def prove_e7(proof, max_size):
    proof.assume("critic values f(z_i, z'_j) real, any sample (z_i, z'_i), i = 1..N")
    for batch in range(1, 2 * max_size + 1):
        f = sp.Matrix(batch, batch, lambda a, b: sp.Symbol(f"f_{a + 1}{b + 1}", real=True))
        ok = True
        for i in range(batch):
            mean_exp = sp.Add(*(sp.exp(f[i, j]) for j in range(batch))) / batch
            term = sp.log(sp.exp(f[i, i]) / mean_exp)
            rest = sp.Add(*(sp.exp(f[i, j] - f[i, i]) for j in range(batch) if j != i))
            argument = 1 + rest
            ok = ok and vanishes(batch * sp.exp(-f[i, i]) * mean_exp - argument)
            same, residuals, _ = check_log_identity(sp.log(batch) - term,
                                                    sp.log(batch * sp.exp(-f[i, i]) * mean_exp))
            if not same:
                proof.check(f"N = {batch}, i = {i + 1}: log step: " + describe(residuals), False)
            sign = (rest == 0) if batch == 1 else (rest.is_positive is True)
            ok = ok and same and bool(sign)
        proof.check(f"N = {batch}: for every i, log N - term_i = log(1 + sum_(j != i) e^(f_ij - f_ii)) "
                    + ("= 0" if batch == 1 else ">= 0, the sum being positive"), bool(ok))
    proof.show("every term, hence the average and its expectation, is <= log N")
