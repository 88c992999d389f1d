"""Tolerances shared by several tests, each with the reason for its size.

float64 rounds every operation to within u = ε/2 relative (ε = 2.2e-16). Two rules
give most bounds below:

* A sum of n terms, in any order (numpy's pairwise or BLAS blocked sums, or a Python
  loop), is off by at most (n − 1)·u·Σ|term|. For probability-weighted sums
  Σ p·g with Σ p ≤ 1, Σ|term| ≤ max|g|, so the error is ≤ n·u·max|g|.
* log(x(1 + δ)) = log x + δ: a log carries the *relative* error of its argument as
  an *absolute* error; e^{x + δ} = e^x (1 + δ): an exponential turns an absolute
  error into a relative one. So e^f with |f| ≤ M is off by ~M·ε relative.

An identity compares two independent float64 computations, so the tolerance covers
both sides' bounds with a margin of ≥ 10×, while a wrong formula is off by far more
(the sympy "wrong identity" checks and ``rpmref verify``'s broken-identity test see
errors ≥ 1e-6).
"""
import numpy as np

EPS = float(np.finfo(np.float64).eps)

IDENTITY = 1e-9
"""Absolute (nats), for identities of the discrete core on the strategies' problems:
≤ 8×8 data and 8×8 latent states, so a value is a probability-weighted sum of
≤ 4096 terms, each a sum of ≤ 4 logs of probabilities. Nonzero table entries are
≥ 1e-12/64, so a log is ≥ −70 in size and a term ≤ M = 250. Worst case
n·u·M = 4096 · 1.1e-16 · 250 ≈ 1.1e-10 per side; 1e-9 is 4× both sides' worst case
(observed errors ≲ 1e-13)."""

PER_NAT = 1e-12
"""Absolute tolerance per nat of magnitude, for values built from critic scores f or
logs whose size M varies over orders of magnitude (|f| up to 1e3, logs of e^-100):
a weighted sum of ≤ 64 terms of size ≤ M plus ≤ 8-term log-sum-exps shifted by
values of size M is off by ≤ (64 + 8)·u·M ≈ 8e-15·M. 1e-12·M leaves 100× (observed
≤ 1e-15·M); at M = 1e3 it is the 1e-9 identity tolerance. Use ``per_nat``."""

POSITIVE_RTOL = 1e-13
"""Relative, for a sum of ≤ 64 non-negative terms, each a product or quotient of
≤ 8 factors that are themselves sums of ≤ 8 non-negative terms (a recognition joint
P(z,z'), a Bayes likelihood, an RPM pmf entry). With no cancellation every rounding
is relative to the result: ≤ (64 + 8·8)·u ≈ 1.4e-14 per side; 1e-13 leaves > 3×
both sides' worst case. Relative, so a 1e-24 entry is checked as hard as a 0.5 one."""

MC_SIGMAS = 4
"""Monte Carlo checks (fixed seeds) accept |estimate − exact| < 4 standard errors:
a correct estimator fails one such check with probability 6e-5 (normal tails), so
a new seed is very unlikely to break it, while a bias of 5 s.e. is seen half the time."""


def per_nat(magnitude):
    """PER_NAT × max(1, magnitude): the tolerance for a value whose terms are of size
    ≤ ``magnitude`` nats."""
    return PER_NAT * max(1.0, float(np.max(np.abs(magnitude))))
