"""Symbols shared by every proof: sizes, indices and the tables of docs/theory.md, 'Objects'.

Tables are ``sympy.IndexedBase`` objects indexed from 1, so one name serves both
the generic-size proofs (symbolic index x ranging over 1..n) and the finite-size
proofs (integer indices). Probabilities are declared ``positive``: every proof
holds on the interior of the simplices (all entries > 0); zero entries are the
business of the 0·log 0 = 0 convention and of the numeric checks (rpmref verify).
"""
import sympy as sp

n, n2, k, k2 = sp.symbols("n n' k k'", integer=True, positive=True)
x, x2, z, z2 = sp.symbols("x x' z z'", integer=True, positive=True)

P_XX = sp.IndexedBase("P_{XX'}", positive=True)      # P(x, x')          (n, n')
ENC = sp.IndexedBase("P_{Z|X}", positive=True)       # P(z | x)          (n, k), rows sum to 1
ENC2 = sp.IndexedBase("P_{Z'|X'}", positive=True)    # P(z' | x')        (n', k')
PRIOR = sp.IndexedBase(r"P_{\theta}", positive=True)  # P_theta(z, z')   (k, k')
P_X = sp.IndexedBase("P_{X}", positive=True)         # P(x)  = sum_x' P(x, x')
P_X2 = sp.IndexedBase("P_{X'}", positive=True)       # P(x') = sum_x P(x, x')
P_Z = sp.IndexedBase("P_{Z}", positive=True)         # P(z)  = sum_x P(x) P(z|x)     (Eq. 11)
P_Z2 = sp.IndexedBase("P_{Z'}", positive=True)       # P(z') = sum_x' P(x') P(z'|x')
P_ZZ = sp.IndexedBase("P_{ZZ'}", positive=True)      # P(z, z'), recognition joint   (Eq. 4)
F = sp.IndexedBase("f", real=True)                   # critic f(z, z'), any real values
ZF = sp.IndexedBase("Z", positive=True)              # Z(z) = sum_z' P(z') e^{f(z,z')}  (Eq. 22)
Q = sp.IndexedBase("Q", positive=True)               # approximate posterior Q(z, z' | x, x')

RANGE = {x: (x, 1, n), x2: (x2, 1, n2), z: (z, 1, k), z2: (z2, 1, k2)}


def total(expr, *indices):
    """sum over the given generic indices (declared ranges), innermost first."""
    return sp.Sum(expr, *(RANGE[i] for i in indices))
