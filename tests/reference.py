"""Brute-force reference implementations: explicit loops over every state.

These follow the paper's equations literally with Python floats and ``math``,
sharing no code with ``rpmref``, so that agreement is evidence for both.
"""
import itertools
import math

NEG_INF = float("-inf")


def xlogy(x, y):
    if x == 0:
        return 0.0
    return NEG_INF if y == 0 else x * math.log(y)


def marginals(p_xx, enc, enc_prime):
    n, n_prime = len(p_xx), len(p_xx[0])
    k, k_prime = len(enc[0]), len(enc_prime[0])
    p_x = [sum(p_xx[x][xp] for xp in range(n_prime)) for x in range(n)]
    p_xp = [sum(p_xx[x][xp] for x in range(n)) for xp in range(n_prime)]
    p_z = [sum(p_x[x] * enc[x][z] for x in range(n)) for z in range(k)]
    p_zp = [sum(p_xp[xp] * enc_prime[xp][zp] for xp in range(n_prime)) for zp in range(k_prime)]
    return p_x, p_xp, p_z, p_zp


def recognition_joint(p_xx, enc, enc_prime):
    n, n_prime, k, k_prime = len(p_xx), len(p_xx[0]), len(enc[0]), len(enc_prime[0])
    return [[sum(p_xx[x][xp] * enc[x][z] * enc_prime[xp][zp]
                 for x in range(n) for xp in range(n_prime))
             for zp in range(k_prime)] for z in range(k)]


def rpm_likelihood(p_xx, enc, enc_prime, prior):
    """P_θ(x, x') by Eq. 9–10: Σ_{z,z'} P_θ(z,z') P(x|z) P(x'|z') with Bayes likelihoods."""
    p_x, p_xp, p_z, p_zp = marginals(p_xx, enc, enc_prime)
    out = []
    for x in range(len(p_x)):
        row = []
        for xp in range(len(p_xp)):
            total = 0.0
            for z in range(len(p_z)):
                for zp in range(len(p_zp)):
                    if p_z[z] > 0 and p_zp[zp] > 0:
                        lik = enc[x][z] * p_x[x] / p_z[z]
                        lik_p = enc_prime[xp][zp] * p_xp[xp] / p_zp[zp]
                        total += prior[z][zp] * lik * lik_p
            row.append(total)
        out.append(row)
    return out


def elbo_general(p_xx, enc, enc_prime, prior, q):
    """Eq. 12 term by term: E_Q[log P_θ + log P(x|z) + log P(x'|z') − log Q]."""
    p_x, p_xp, p_z, p_zp = marginals(p_xx, enc, enc_prime)
    out = []
    for x in range(len(p_x)):
        row = []
        for xp in range(len(p_xp)):
            total = 0.0
            for z in range(len(p_z)):
                for zp in range(len(p_zp)):
                    w = q[x][xp][z][zp]
                    if w == 0:
                        continue
                    lik = enc[x][z] * p_x[x] / p_z[z] if p_z[z] > 0 else 0.0
                    lik_p = enc_prime[xp][zp] * p_xp[xp] / p_zp[zp] if p_zp[zp] > 0 else 0.0
                    total += (xlogy(w, prior[z][zp]) + xlogy(w, lik) + xlogy(w, lik_p)
                              - xlogy(w, w))
            row.append(total)
        out.append(row)
    return out


def entropy(p):
    return -sum(xlogy(v, v) for v in p)


def mutual_information(p_zz):
    rows = [sum(r) for r in p_zz]
    cols = [sum(c) for c in zip(*p_zz)]
    return sum(xlogy(p_zz[i][j], p_zz[i][j] / (rows[i] * cols[j]))
               for i in range(len(rows)) for j in range(len(cols)) if p_zz[i][j] > 0)


def kl(p, q):
    total = 0.0
    for pi, qi in zip(p, q):
        if pi > 0:
            if qi == 0:
                return float("inf")
            total += pi * math.log(pi / qi)
    return total


def infonce_limit(p_zz, f):
    """E_{P(z,z')}[f] − E_{P(z)}[log Σ_{z'} P(z') e^{f(z,z')}] (Eq. 25), with an explicit max shift."""
    k, k_prime = len(p_zz), len(p_zz[0])
    p_z = [sum(r) for r in p_zz]
    p_zp = [sum(c) for c in zip(*p_zz)]
    expected_f = sum(p_zz[z][zp] * f[z][zp] for z in range(k) for zp in range(k_prime))
    expected_log_z = 0.0
    for z in range(k):
        if p_z[z] == 0:
            continue
        m = max(f[z][zp] for zp in range(k_prime) if p_zp[zp] > 0)
        s = sum(p_zp[zp] * math.exp(f[z][zp] - m) for zp in range(k_prime))
        expected_log_z += p_z[z] * (m + math.log(s))
    return expected_f - expected_log_z


def infonce_enumerated(p_zz, f, n):
    """I_N (Eq. 6) by summing over all (k·k')^n batches of pairs: the literal definition."""
    k, k_prime = len(p_zz), len(p_zz[0])
    cells = [(z, zp) for z in range(k) for zp in range(k_prime) if p_zz[z][zp] > 0]
    total = 0.0
    for batch in itertools.product(cells, repeat=n):
        weight = math.prod(p_zz[z][zp] for z, zp in batch)
        value = 0.0
        for z, zp in batch:
            scores = [f[z][zpj] for _, zpj in batch]
            m = max(scores)
            value += f[z][zp] - (m + math.log(sum(math.exp(s - m) for s in scores) / n))
        total += weight * value / n
    return total
