"""Finite tables with fully symbolic entries, for the every-size-up-to-a-bound proofs.

``recognition_tables(n, n', k, k')`` builds the objects of docs/theory.md, 'Objects' with integer
indices 1..size: positive symbols for every entry, the normalisation constraints
as substitutions of the last entry (last = 1 - the others), and the named
quantities P(x), P(x'), P(z), P(z'), P(z,z') as opaque symbols together with
their definitions (Eq. 4, 11) in terms of the entries, constraints applied.
"""
import itertools
from types import SimpleNamespace

import sympy as sp

from .notation import ENC, ENC2, P_X, P_X2, P_XX, P_Z, P_Z2, P_ZZ, PRIOR


def table(base, rows, cols):
    """A (rows, cols) matrix of the entries base[i, j], i, j from 1."""
    return sp.Matrix(rows, cols, lambda i, j: base[i + 1, j + 1])


def last_entry_rule(entries):
    """{last: 1 - sum(others)}: the constraint sum(entries) = 1 as a substitution."""
    entries = list(entries)
    return {entries[-1]: 1 - sp.Add(*entries[:-1])}


def row_rules(matrix):
    """Every row of ``matrix`` sums to 1 (a conditional pmf, rows = conditioning value)."""
    rules = {}
    for i in range(matrix.rows):
        rules.update(last_entry_rule(matrix.row(i)))
    return rules


def close(definitions, constraints):
    """One substitution dict: definitions (with constraints applied) and constraints."""
    rules = {name: sp.expand(value.xreplace(constraints)) for name, value in definitions.items()}
    rules.update(constraints)
    return rules


def recognition_tables(n, n2, k, k2):
    """The recognition joint of Eq. 3-4 at sizes (n, n', k, k') with symbolic entries.

    Returns a namespace with matrices p (n, n'), enc (n, k), enc2 (n', k'),
    prior (k, k'); lists px, px2, pz, pz2 and matrix pzz (k, k') of opaque named
    quantities; ``definitions`` (named quantity -> expression in entries);
    ``constraints`` (sum p = 1, rows of enc and enc2 sum to 1); ``rules`` both.
    """
    p, enc, enc2, prior = table(P_XX, n, n2), table(ENC, n, k), table(ENC2, n2, k2), table(PRIOR, k, k2)
    px = [P_X[i + 1] for i in range(n)]
    px2 = [P_X2[i + 1] for i in range(n2)]
    pz = [P_Z[i + 1] for i in range(k)]
    pz2 = [P_Z2[i + 1] for i in range(k2)]
    pzz = table(P_ZZ, k, k2)
    margin_x = [sum(p.row(i)) for i in range(n)]
    margin_x2 = [sum(p.col(j)) for j in range(n2)]
    definitions = {}
    definitions.update({px[i]: margin_x[i] for i in range(n)})
    definitions.update({px2[j]: margin_x2[j] for j in range(n2)})
    definitions.update({pz[a]: sum(margin_x[i] * enc[i, a] for i in range(n)) for a in range(k)})
    definitions.update({pz2[b]: sum(margin_x2[j] * enc2[j, b] for j in range(n2)) for b in range(k2)})
    joint = enc.T * p * enc2                    # (k, n) (n, n') (n', k') -> (k, k'), Eq. 4
    definitions.update({pzz[a, b]: joint[a, b] for a in range(k) for b in range(k2)})
    constraints = last_entry_rule(p)
    constraints.update(row_rules(enc))
    constraints.update(row_rules(enc2))
    return SimpleNamespace(p=p, enc=enc, enc2=enc2, prior=prior, px=px, px2=px2, pz=pz,
                           pz2=pz2, pzz=pzz, definitions=definitions, constraints=constraints,
                           rules=close(definitions, constraints))


def latent_tables(k, k2):
    """A recognition joint P(z, z') given directly as a (k, k') table on the simplex.

    Returns (pzz, pz, pz2, rules): pz, pz2 opaque marginals defined as the row and
    column sums of pzz (Eq. 4), the last entry of pzz constrained.
    """
    pzz = table(P_ZZ, k, k2)
    pz = [P_Z[a + 1] for a in range(k)]
    pz2 = [P_Z2[b + 1] for b in range(k2)]
    definitions = {pz[a]: sum(pzz.row(a)) for a in range(k)}
    definitions.update({pz2[b]: sum(pzz.col(b)) for b in range(k2)})
    return pzz, pz, pz2, close(definitions, last_entry_rule(pzz))


def sizes(max_size, dims=4):
    """The sizes checked: every tuple with entries 1..max_size-1, plus (max_size,)*dims.

    At max_size = 3 that is the 16 sizes in {1, 2}^4 and (3, 3, 3, 3): every small
    shape (including the degenerate size 1) and one in which every sum has 3 terms.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    small = list(itertools.product(range(1, max_size), repeat=dims))
    return small + [(max_size,) * dims]


def encoder_maps(n_inputs, n_latents):
    """Every deterministic encoder x -> z up to relabelling of z.

    A map from {1..n_inputs} to {1..n_latents} is listed in its canonical form
    (labels in order of first use), i.e. one map per set partition of the inputs
    into at most n_latents blocks. Relabelling z only renames the (fully symbolic)
    prior entries, so this covers every map, injective or not, onto or not.
    Returns a list of tuples of 0-based latent labels.
    """
    maps = []
    for labels in itertools.product(range(n_latents), repeat=n_inputs):
        seen = []
        for label in labels:
            if label not in seen:
                seen.append(label)
        if seen == list(range(len(seen))):
            maps.append(labels)
    return maps


def one_hot(labels, n_latents):
    """The (len(labels), n_latents) 0/1 encoder matrix of a deterministic map."""
    return sp.Matrix(len(labels), n_latents, lambda i, a: 1 if labels[i] == a else 0)
