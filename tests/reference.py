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


def infonce_batch_value(pairs, f):
    """One batch's I_N sample by the O(N²) formula (Eq. 6 for one batch, as the old Monte
    Carlo code computed it): log N + (1/N) Σ_i [f(z_i, z'_i) − log Σ_j e^{f(z_i, z'_j)}],
    with an explicit max shift per row. pairs: a list of (z, z')."""
    n = len(pairs)
    total = 0.0
    for z, zp in pairs:
        scores = [f[z][zpj] for _, zpj in pairs]
        m = max(scores)
        total += f[z][zp] - (m + math.log(sum(math.exp(s - m) for s in scores)))
    return math.log(n) + total / n


# --------------------------------------------------------------------------- mpmath references
# The same equations in 60-digit arithmetic. Inputs are taken as the exact binary values of
# the float64 arrays (mpmath.mpf(float) is exact) and never renormalised; results are
# rounded to the nearest float64 (±inf when the value is beyond float64's range).
import mpmath  # noqa: E402

DPS = 60


def _mp(v):
    return mpmath.mpf(float(v))


def _mp_table(a):
    return [[_mp(v) for v in row] for row in a]


def mp_float(x):
    """Nearest float64 of an mpf; −inf for log 0 results passed as None."""
    return float("-inf") if x is None else float(x)


def mp_log(x):
    return mpmath.log(x) if x > 0 else None


def mp_marginals(p_xx, enc, enc_prime):
    P, A, B = _mp_table(p_xx), _mp_table(enc), _mp_table(enc_prime)
    n, n_prime, k, k_prime = len(P), len(P[0]), len(A[0]), len(B[0])
    p_x = [mpmath.fsum(P[x]) for x in range(n)]
    p_xp = [mpmath.fsum(P[x][xp] for x in range(n)) for xp in range(n_prime)]
    p_z = [mpmath.fsum(p_x[x] * A[x][z] for x in range(n)) for z in range(k)]
    p_zp = [mpmath.fsum(p_xp[xp] * B[xp][zp] for xp in range(n_prime)) for zp in range(k_prime)]
    return P, A, B, p_x, p_xp, p_z, p_zp


def mp_rpm_likelihood(p_xx, enc, enc_prime, prior):
    """P_θ(x, x') (Eq. 9–10) as an (n, n') list of mpf."""
    with mpmath.workdps(DPS):
        P, A, B, p_x, p_xp, p_z, p_zp = mp_marginals(p_xx, enc, enc_prime)
        R = _mp_table(prior)
        return [[p_x[x] * p_xp[xp] * mpmath.fsum(
            R[z][zp] * A[x][z] * B[xp][zp] / (p_z[z] * p_zp[zp])
            for z in range(len(p_z)) for zp in range(len(p_zp)) if p_z[z] > 0 and p_zp[zp] > 0)
            for xp in range(len(p_xp))] for x in range(len(p_x))]


def mp_rpm_log_likelihood(p_xx, enc, enc_prime, prior):
    with mpmath.workdps(DPS):
        return [[mp_float(mp_log(v)) for v in row]
                for row in mp_rpm_likelihood(p_xx, enc, enc_prime, prior)]


def mp_rpm_posterior(p_xx, enc, enc_prime, prior):
    """P_θ(z, z' | x, x') as nested lists of floats (zeros where P_θ(x, x') = 0)."""
    with mpmath.workdps(DPS):
        P, A, B, p_x, p_xp, p_z, p_zp = mp_marginals(p_xx, enc, enc_prime)
        R = _mp_table(prior)
        out = []
        for x in range(len(p_x)):
            row = []
            for xp in range(len(p_xp)):
                w = [[(R[z][zp] * A[x][z] * B[xp][zp] / (p_z[z] * p_zp[zp])
                       if p_z[z] > 0 and p_zp[zp] > 0 else mpmath.mpf(0))
                      for zp in range(len(p_zp))] for z in range(len(p_z))]
                total = mpmath.fsum(v for r in w for v in r)
                # P_θ(x, x') = P(x) P(x') · total: no posterior where any factor is 0
                defined = total > 0 and p_x[x] > 0 and p_xp[xp] > 0
                row.append([[float(v / total) if defined else 0.0 for v in r] for r in w])
            out.append(row)
        return out


def mp_elbo(p_xx, enc, enc_prime, prior):
    """Eq. 15 for every (x, x'): Σ P(z|x)P(z'|x') log[P_θ/(P(z)P(z'))] + log P(x) + log P(x')."""
    with mpmath.workdps(DPS):
        P, A, B, p_x, p_xp, p_z, p_zp = mp_marginals(p_xx, enc, enc_prime)
        R = _mp_table(prior)
        out = []
        for x in range(len(p_x)):
            row = []
            for xp in range(len(p_xp)):
                if p_x[x] == 0 or p_xp[xp] == 0:
                    row.append(float("-inf"))
                    continue
                total, blocked = mpmath.mpf(0), False
                for z in range(len(p_z)):
                    for zp in range(len(p_zp)):
                        w = A[x][z] * B[xp][zp]
                        if w == 0:
                            continue
                        if R[z][zp] == 0:
                            blocked = True
                        else:
                            total += w * mpmath.log(R[z][zp] / (p_z[z] * p_zp[zp]))
                row.append(float("-inf") if blocked else
                           float(total + mpmath.log(p_x[x]) + mpmath.log(p_xp[xp])))
            out.append(row)
        return out


def mp_joint(p_xx, enc, enc_prime):
    with mpmath.workdps(DPS):
        P, A, B = _mp_table(p_xx), _mp_table(enc), _mp_table(enc_prime)
        return [[mpmath.fsum(P[x][xp] * A[x][z] * B[xp][zp]
                             for x in range(len(P)) for xp in range(len(P[0])))
                 for zp in range(len(B[0]))] for z in range(len(A[0]))]


def _mp_xlogy(x, y):
    if x == 0:
        return mpmath.mpf(0)
    return None if y == 0 else x * mpmath.log(y)


def _mp_sum_or_neg_inf(terms):
    terms = list(terms)
    return None if any(t is None for t in terms) else mpmath.fsum(terms)


def mp_entropy_mp(p):
    return -mpmath.fsum(_mp_xlogy(v, v) for v in p)


def mp_expected_elbo(p_xx, enc, enc_prime, prior):
    """Eq. 16: Σ P(z,z') log P_θ + H(Z) + H(Z') − H(X) − H(X'), −inf if P_θ misses P(z,z')."""
    with mpmath.workdps(DPS):
        J = mp_joint(p_xx, enc, enc_prime)
        R = _mp_table(prior)
        cross = _mp_sum_or_neg_inf(_mp_xlogy(J[z][zp], R[z][zp])
                                   for z in range(len(J)) for zp in range(len(J[0])))
        if cross is None:
            return float("-inf")
        P = _mp_table(p_xx)
        h = (mp_entropy_mp([mpmath.fsum(r) for r in J]) + mp_entropy_mp([mpmath.fsum(c) for c in zip(*J)])
             - mp_entropy_mp([mpmath.fsum(r) for r in P]) - mp_entropy_mp([mpmath.fsum(c) for c in zip(*P)]))
        return float(cross + h)


def mp_kl(p, q):
    """KL(p ‖ q) of flat sequences; +inf when q = 0 < p."""
    with mpmath.workdps(DPS):
        total = mpmath.mpf(0)
        for pi, qi in zip(p, q):
            pi, qi = _mp(pi), _mp(qi)
            if pi > 0:
                if qi == 0:
                    return float("inf")
                total += pi * mpmath.log(pi / qi)
        return float(total)


def mp_kl_of_tables(p_mp, q_mp):
    """KL between two mpf tables (lists of lists), as float."""
    with mpmath.workdps(DPS):
        total = mpmath.mpf(0)
        for pr, qr in zip(p_mp, q_mp):
            for pi, qi in zip(pr, qr):
                if pi > 0:
                    if qi == 0:
                        return float("inf")
                    total += pi * mpmath.log(pi / qi)
        return float(total)


def mp_mutual_information(p_joint):
    with mpmath.workdps(DPS):
        J = _mp_table(p_joint) if not isinstance(p_joint[0][0], mpmath.mpf) else p_joint
        rows = [mpmath.fsum(r) for r in J]
        cols = [mpmath.fsum(c) for c in zip(*J)]
        return float(mpmath.fsum(J[i][j] * mpmath.log(J[i][j] / (rows[i] * cols[j]))
                                 for i in range(len(rows)) for j in range(len(cols)) if J[i][j] > 0))


def mp_entropy(p):
    with mpmath.workdps(DPS):
        return float(mp_entropy_mp([_mp(v) for v in p]))


def dps_for(f):
    """Digits that resolve f − log Z for critics up to |f|: DPS + the decimal exponent of max |f|
    (at |f| = 1e300 the O(1) difference sits 300 digits below f)."""
    biggest = max((abs(float(v)) for row in f for v in row), default=0.0)
    return DPS + (int(math.log10(biggest)) + 1 if biggest > 1 else 0)


def mp_energy_prior(p_zz, f):
    """P(z) P(z') e^{f(z,z')} / Σ_j P(j) e^{f(z,j)} (Eq. 21–22) as a float table."""
    with mpmath.workdps(dps_for(f)):
        J, F = _mp_table(p_zz), _mp_table(f)
        rows = [mpmath.fsum(r) for r in J]
        cols = [mpmath.fsum(c) for c in zip(*J)]
        out = []
        for z in range(len(rows)):
            weights = [cols[j] * mpmath.exp(F[z][j]) for j in range(len(cols))]
            total = mpmath.fsum(weights)
            out.append([float(rows[z] * w / total) for w in weights])
        return out


def mp_log_partition(p_zz, f):
    with mpmath.workdps(dps_for(f)):
        J, F = _mp_table(p_zz), _mp_table(f)
        cols = [mpmath.fsum(c) for c in zip(*J)]
        return [float(_mp_log_sum([cols[j] * mpmath.exp(F[z][j]) for j in range(len(cols))]))
                for z in range(len(F))]


def _mp_log_sum(terms):
    """log Σ terms as log(top) + log1p(others / top): exact whatever the working precision
    (log of 1 + 5e-324 at 60 digits would round to log 1 = 0)."""
    top = max(range(len(terms)), key=lambda j: terms[j])
    others = mpmath.fsum(t for j, t in enumerate(terms) if j != top)
    return mpmath.log(terms[top]) + mpmath.log1p(others / terms[top])


def mp_infonce_limit(p_zz, f):
    """I_∞ (Eq. 25): Σ P(z,z') (f(z,z') − log Σ_j P(j) e^{f(z,j)})."""
    with mpmath.workdps(dps_for(f)):
        J, F = _mp_table(p_zz), _mp_table(f)
        cols = [mpmath.fsum(c) for c in zip(*J)]
        total = mpmath.mpf(0)
        for z in range(len(J)):
            if mpmath.fsum(J[z]) == 0:
                continue
            log_z = _mp_log_sum([cols[j] * mpmath.exp(F[z][j]) for j in range(len(cols))])
            total += mpmath.fsum(J[z][j] * (F[z][j] - log_z) for j in range(len(cols)))
        return float(total)


def mp_infonce_enumerated(p_zz, f, n):
    """I_N (Eq. 6) summed over every batch of n pairs, in mpmath; pairs drawn from p_zz / Σ p_zz."""
    with mpmath.workdps(dps_for(f)):
        J, F = _mp_table(p_zz), _mp_table(f)
        mass = mpmath.fsum(v for r in J for v in r)
        cells = [(z, zp) for z in range(len(J)) for zp in range(len(J[0])) if J[z][zp] > 0]
        total = mpmath.mpf(0)
        for batch in itertools.product(cells, repeat=n):
            weight = mpmath.fprod(J[z][zp] / mass for z, zp in batch)
            value = mpmath.mpf(0)
            for z, zp in batch:
                value += F[z][zp] - mpmath.log(mpmath.fsum(mpmath.exp(F[z][zpj]) for _, zpj in batch) / n)
            total += weight * value / n
        return float(total)


def mp_empirical_rpm_pmf(enc_rows, enc_prime_rows, prior):
    """Eq. 34 with P(z) = (1/N) Σ_n P(z | x_n): an (N, N) float table."""
    with mpmath.workdps(DPS):
        A, B, R = _mp_table(enc_rows), _mp_table(enc_prime_rows), _mp_table(prior)
        n = len(A)
        p_z = [mpmath.fsum(A[i][z] for i in range(n)) / n for z in range(len(A[0]))]
        p_zp = [mpmath.fsum(B[i][z] for i in range(n)) / n for z in range(len(B[0]))]
        return [[float(mpmath.fsum(R[z][zp] * A[i][z] * B[j][zp] / (p_z[z] * p_zp[zp])
                                   for z in range(len(p_z)) for zp in range(len(p_zp))
                                   if p_z[z] > 0 and p_zp[zp] > 0) / n ** 2)
                 for j in range(n)] for i in range(n)]


def mp_elbo_general(p_xx, enc, enc_prime, prior, q):
    """Eq. 12 term by term in mpmath: E_Q[log P_θ + log P(x|z) + log P(x'|z') − log Q]."""
    with mpmath.workdps(DPS):
        P, A, B, p_x, p_xp, p_z, p_zp = mp_marginals(p_xx, enc, enc_prime)
        R = _mp_table(prior)
        out = []
        for x in range(len(p_x)):
            row = []
            for xp in range(len(p_xp)):
                total, blocked = mpmath.mpf(0), False
                for z in range(len(p_z)):
                    for zp in range(len(p_zp)):
                        w = _mp(q[x][xp][z][zp])
                        if w == 0:
                            continue
                        lik = A[x][z] * p_x[x] / p_z[z] if p_z[z] > 0 else mpmath.mpf(0)
                        lik_p = B[xp][zp] * p_xp[xp] / p_zp[zp] if p_zp[zp] > 0 else mpmath.mpf(0)
                        if R[z][zp] == 0 or lik == 0 or lik_p == 0:
                            blocked = True
                            break
                        total += w * (mpmath.log(R[z][zp]) + mpmath.log(lik) + mpmath.log(lik_p)
                                      - mpmath.log(w))
                    if blocked:
                        break
                row.append(float("-inf") if blocked else float(total))
            out.append(row)
        return out
