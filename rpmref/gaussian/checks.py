"""The Gaussian rows of ``rpmref verify``: each closed form of ``rpmref.gaussian``
against an independent computation (another closed-form route, the exact
discrete core on a fine grid, or a perturbation identity), on random Gaussians.

``verify_checks(rng, trials)`` returns one dict per check with keys id,
equation, statement, max_error, worst_case, tolerance.
"""
import numpy as np

from rpmref.exact import infonce as discrete_infonce
from rpmref.exact.validation import GeneratorSpec, as_generator, check_int
from rpmref.gaussian import closed_form as g

TOLERANCE = 1e-10    # float64 closed forms; the worst error over seeds 0-19 at 200 trials is 3.1e-13
GRID_TRIALS = 20     # the discretisation check is the slow one: cap its trials
GRID_POINTS = 161    # nodes per axis (see _grid_joint)


#: The largest ``max_dim`` of ``random_joint``: its data covariance is at most
#: (2·MAX_RANDOM_DIM + 2)² entries, checked by eigendecompositions.
MAX_RANDOM_DIM = 256


def random_joint(rng, max_dim=3, square=False):
    """A random Gaussian recognition joint (Eq. 3, 11), built through ``recognition_joint``.

    Random data covariance (a Wishart-like draw plus 0.05 I), random linear encoders,
    diagonal encoder noise with variances in [0.05, 0.5] and random data means; the
    dimensions k of z and k' of z' are drawn from 1..``max_dim`` (equal if ``square``),
    the data dimensions from k..k+1 and k'..k'+1.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness (advanced in place).
    max_dim : int, default 3
        The largest latent dimension (≥ 1).
    square : bool, default False
        Draw k' = k (needed for the RBF critic).

    Returns
    -------
    joint : GaussianPair
        P(z, z').
    description : str
        ``"k=<k>, k'=<k'>"``, for the ``worst_case`` column of ``verify_checks``.

    Raises
    ------
    TypeError
        ``rng`` not a numpy Generator, ``max_dim`` not an integer.
    ValueError
        ``max_dim`` < 1 or > ``MAX_RANDOM_DIM``.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian.checks import random_joint
    >>> joint, description = random_joint(np.random.default_rng(0), square=True)
    >>> k, k_prime = joint.k, joint.mean.size - joint.k
    >>> k == k_prime and 1 <= k <= 3 and description == f"k={k}, k'={k_prime}"
    True
    >>> bool(np.all(np.linalg.eigvalsh(joint.cov) > 0))       # a valid covariance
    True
    """
    rng = GeneratorSpec().validate(rng, "rng", {})
    max_dim = check_int(max_dim, "max_dim", minimum=1, maximum=MAX_RANDOM_DIM)
    k, kp = rng.integers(1, max_dim + 1, size=2)
    kp = k if square else kp
    d, dp = k + rng.integers(0, 2), kp + rng.integers(0, 2)
    root = rng.normal(size=(d + dp, d + dp))
    cov_xx = root @ root.T / (d + dp) + 0.05 * np.eye(d + dp)
    joint = g.recognition_joint(
        cov_xx, rng.normal(size=(k, d)), rng.normal(size=(kp, dp)),
        noise_cov=np.diag(rng.uniform(0.05, 0.5, k)),
        noise_cov_prime=np.diag(rng.uniform(0.05, 0.5, kp)),
        mean_xx=rng.normal(scale=0.5, size=d + dp))
    return joint, f"k={k}, k'={kp}"


def random_critic(rng, joint):
    """A random quadratic critic for ``joint``: bilinear (Eq. 8), RBF (Eq. 27, only when
    k = k') or a general ``QuadraticCritic``, the kind drawn uniformly.

    Bilinear: W with N(0, 0.7²) entries; RBF: ℓ log-uniform on [0.3, 3]; quadratic: W as
    for bilinear, Q = R Rᵀ with R of N(0, 0.5²) entries, b standard normal.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness (advanced in place).
    joint : GaussianPair
        Fixes the dimensions k and k' of the critic.

    Returns
    -------
    critic : QuadraticCritic
    description : str
        ``"bilinear"``, ``"rbf ell=<ℓ>"`` or ``"quadratic"``.

    Raises
    ------
    TypeError
        ``rng`` not a numpy Generator, or ``joint`` not a GaussianPair.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.gaussian import QuadraticCritic, gaussian_pair
    >>> from rpmref.gaussian.checks import random_critic
    >>> critic, description = random_critic(np.random.default_rng(0), gaussian_pair(1.0, 2.0, 0.5))
    >>> isinstance(critic, QuadraticCritic), critic.W.shape, critic.Q.shape, critic.b.shape
    (True, (1, 1), (1, 1), (1,))
    >>> description.split()[0] in {"bilinear", "rbf", "quadratic"}
    True
    """
    rng = GeneratorSpec().validate(rng, "rng", {})
    if not isinstance(joint, g.GaussianPair):
        raise TypeError(f"joint must be a GaussianPair; got {type(joint).__name__}")
    k, kp = joint.k, joint.mean.size - joint.k
    kind = rng.choice(["bilinear", "rbf", "quadratic"] if k == kp else ["bilinear", "quadratic"])
    if kind == "bilinear":
        return g.bilinear_critic(rng.normal(scale=0.7, size=(k, kp))), "bilinear"
    if kind == "rbf":
        ell = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
        return g.rbf_critic(ell, k), f"rbf ell={ell:.3g}"
    root = rng.normal(scale=0.5, size=(kp, kp))
    return g.QuadraticCritic(rng.normal(scale=0.7, size=(k, kp)), root @ root.T,
                             rng.normal(size=kp)), "quadratic"


def _row(id_, equation, statement, errors, cases, tolerance):
    worst = int(np.argmax(errors))
    return {"id": id_, "equation": equation, "statement": statement,
            "max_error": float(errors[worst]), "worst_case": cases[worst],
            "tolerance": tolerance}


def _check_mi(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        _, _, c, cp, _ = g.blocks(joint)
        logdets = [np.linalg.slogdet(a)[1] for a in (c, cp, joint.cov)]
        errors.append(abs(g.mutual_information(joint) - 0.5 * (logdets[0] + logdets[1] - logdets[2])))
        cases.append(desc)
    return _row("G-MI", "Gaussian MI", "I(Z;Z') from canonical correlations = "
                "1/2 log(det C det C' / det Sigma)", errors, cases, TOLERANCE)


def _check_rbf_routes(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        if joint.k != joint.mean.size - joint.k:
            continue
        ell = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
        errors.append(abs(g.infonce_limit(joint, g.rbf_critic(ell, joint.k))
                          - g.rbf_infonce_limit(joint, ell)))
        cases.append(f"{desc}, ell={ell:.3g}")
    return _row("G-E5-RBF", "Eq. 25, 27", "RBF I_inf: quadratic-critic formula = "
                "RBF-specific formula (two derivations)", errors, cases, TOLERANCE)


def _grid_joint(joint, points=GRID_POINTS):
    """A 1-D Gaussian joint on a (points, points) grid: z and z' share one axis
    spanning both means ± 12 of the larger sd (room for the energy prior's tilted
    z'|z, and for the z that make those z' likely). Returns (axis, axis, p_zz)."""
    m, mp, c, cp, _ = g.blocks(joint)
    half = 12 * np.sqrt(max(c[0, 0], cp[0, 0])) + abs(m[0] - mp[0]) / 2
    axis = (m[0] + mp[0]) / 2 + np.linspace(-half, half, points)
    pts = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1) - joint.mean   # (n, n, 2)
    log_p = -0.5 * np.einsum("abi,ij,abj->ab", pts, np.linalg.inv(joint.cov), pts)
    p_zz = np.exp(log_p - log_p.max())
    return axis, axis, p_zz / p_zz.sum()


def _quadratic_table(critic, z, zp):
    W, Q, b = (np.asarray(a, dtype=float).reshape(-1) for a in critic)
    return W[0] * z[:, None] * zp[None, :] - 0.5 * Q[0] * zp[None, :] ** 2 + b[0] * zp[None, :]


def _check_grid(rng, pool):
    errors, cases = [], []
    for _ in range(min(len(pool), GRID_TRIALS)):
        rho = rng.uniform(-0.9, 0.9)
        sd, sdp = np.exp(rng.uniform(-0.5, 0.5, size=2))
        joint = g.gaussian_pair(sd**2, sdp**2, rho * sd * sdp, *rng.normal(scale=0.5, size=2))
        kind = rng.choice(["bilinear", "rbf"])
        if kind == "bilinear":
            critic = g.bilinear_critic(rng.uniform(-0.8, 0.8) / (sd * sdp))
            desc = f"bilinear W={float(critic.W[0, 0]):.3g}"
        else:
            ell = float(np.sqrt(sd * sdp) * np.exp(rng.uniform(np.log(0.5), np.log(3.0))))
            critic, desc = g.rbf_critic(ell, 1), f"rbf ell={ell:.3g}"
        z, zp, p_zz = _grid_joint(joint)
        exact = discrete_infonce.infonce_limit(p_zz, _quadratic_table(critic, z, zp))
        errors.append(abs(g.infonce_limit(joint, critic) - exact))
        cases.append(f"rho={rho:.3g}, sd=({sd:.3g}, {sdp:.3g}), {desc}")
    return _row("G-E5-GRID", "Eq. 7, 25", f"1-D I_inf closed form = discrete core's I_inf on "
                f"a {GRID_POINTS}x{GRID_POINTS} grid", errors, cases, TOLERANCE)


def _check_gap(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        critic, kind = random_critic(rng, joint)
        gap = g.mutual_information(joint) - g.infonce_limit(joint, critic)
        kl = g.kl_divergence(joint, g.energy_prior(joint, critic))
        # random critics can put I_∞ near −500 nats: compare relative to max(1, KL)
        errors.append((abs(gap - kl) + max(0.0, -kl)) / max(1.0, kl))
        cases.append(f"{desc}, {kind}")
    return _row("G-E6", "Eq. 21-25 (E6)", "I(Z;Z') - I_inf(f) = KL(P(z,z') || P_th^f) >= 0 "
                "(error relative to max(1, KL))", errors, cases, TOLERANCE)


def _check_optimal(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        critic = g.optimal_critic(joint)
        prior = g.energy_prior(joint, critic)
        errors.append(max(abs(g.infonce_limit(joint, critic) - g.mutual_information(joint)),
                          float(np.max(np.abs(prior.cov - joint.cov))),
                          float(np.max(np.abs(prior.mean - joint.mean)))))
        cases.append(desc)
    return _row("G-E4", "Eq. 19-20 (E4, E6)", "critic log p(z'|z)/p(z'): energy prior = "
                "P(z,z') and I_inf = I(Z;Z')", errors, cases, TOLERANCE)


def _check_elbo(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        n = joint.mean.size
        root = rng.normal(size=(n, n))
        prior = g.GaussianPair(rng.normal(size=n), root @ root.T / n + 0.1 * np.eye(n), joint.k)
        parts = g.elbo_decomposition(joint, prior)
        errors.append(abs(parts["elbo_minus_constant"]
                          - (parts["mutual_information"] - parts["kl"])))
        cases.append(desc)
    return _row("G-E3", "Eq. 16-18 (E3)", "E_P[log P_th/(p(z)p(z'))] (cross-entropy route) = "
                "I - KL(P || P_th), random Gaussian prior", errors, cases, TOLERANCE)


def _check_bilinear_optimum(rng, pool):
    errors, cases = [], []
    for joint, desc in pool:
        m, _, c, cp, _ = g.blocks(joint)
        best = g.optimal_bilinear_critic(joint)
        delta = rng.normal(scale=0.3, size=best.W.shape)
        drop = g.infonce_limit(joint, g.bilinear_critic(best.W + delta)) - \
            g.infonce_limit(joint, best)
        errors.append(abs(drop + 0.5 * np.trace(delta @ cp @ delta.T @ (c + np.outer(m, m)))))
        cases.append(desc)
    return _row("G-W*", "Eq. 8, 25", "I_inf(W*+D) - I_inf(W*) = -1/2 tr(D C' D^T (C + m m^T)) <= 0 "
                "(W* is the bilinear maximiser)", errors, cases, TOLERANCE)


def _check_rbf_optimum(rng, pool):
    errors, cases = [], []
    for _ in range(len(pool)):
        rho = rng.uniform(0.02, 0.98)
        # the 1-D I_∞(ℓ) of docs/theory.md ('Gaussian latents') is stationary where 2ρu² − (3 − 4ρ)u − 2(1 − ρ) = 0, u = ℓ².
        u = ((3 - 4 * rho) + np.sqrt((3 - 4 * rho) ** 2 + 16 * rho * (1 - rho))) / (4 * rho)
        ell = g.optimal_rbf_lengthscale(g.gaussian_pair(1.0, 1.0, rho))
        errors.append(abs(ell - np.sqrt(u)) / np.sqrt(u))
        cases.append(f"rho={rho:.3g}")
    return _row("G-l*", "Eq. 27", "1-D unit variances: numerical l* = root of "
                "2 rho l^4 - (3 - 4 rho) l^2 - 2(1 - rho) (relative error)", errors, cases, TOLERANCE)


def verify_checks(rng, trials=200):
    """The Gaussian rows of ``rpmref verify``: every check on ``trials`` random cases.

    One pool of ``trials`` random joints (``random_joint``; every third with k = k', so
    the RBF checks have cases) is shared by the checks: the MI from canonical correlations
    against log-determinants (G-MI), the two RBF I_∞ formulas (G-E5-RBF, Eq. 25, 27), the
    1-D I_∞ against the discrete core on a grid (G-E5-GRID, Eq. 7, 25), the gap
    I − I_∞ = KL (G-E6, Eq. 21–25), the optimal critic (G-E4, Eq. 19–20), the ELBO
    decomposition (G-E3, Eq. 16–18), the bilinear maximiser W* (G-W*, Eq. 8) and the
    optimal RBF lengthscale ℓ* (G-l*, Eq. 27). Deterministic given ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator or seed
        A Generator is used as it is; anything else seeds ``numpy.random.default_rng``.
    trials : int, default 200
        Random cases per check (≥ 1); the grid check uses at most ``GRID_TRIALS``.

    Returns
    -------
    list of dict
        One per check, with keys ``id``, ``equation``, ``statement``, ``max_error`` (float),
        ``worst_case`` (str) and ``tolerance`` (``TOLERANCE``).

    Raises
    ------
    ValueError
        ``trials`` < 1, or a negative seed (``check_seed``).
    TypeError
        ``trials`` not an integer (bools and floats are refused), or ``rng`` neither a
        Generator nor a seed (a float, a string, ...).

    Examples
    --------
    >>> from rpmref.gaussian.checks import verify_checks
    >>> rows = verify_checks(0, trials=3)
    >>> [row["id"] for row in rows]
    ['G-MI', 'G-E5-RBF', 'G-E5-GRID', 'G-E6', 'G-E4', 'G-E3', 'G-W*', 'G-l*']
    >>> all(row["max_error"] <= row["tolerance"] for row in rows)
    True
    """
    rng = as_generator(rng)
    trials = check_int(trials, "trials", minimum=1)
    pool = [random_joint(rng, square=(i % 3 == 0)) for i in range(trials)]
    checks = [_check_mi, _check_rbf_routes, _check_grid, _check_gap, _check_optimal,
              _check_elbo, _check_bilinear_optimum, _check_rbf_optimum]
    return [check(rng, pool) for check in checks]


__all__ = ["random_joint", "random_critic", "verify_checks"]
