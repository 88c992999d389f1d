"""The inputs ``check_infonce`` hands to a loss: seeded, varied, and chosen so that
the known mistakes give different values (``diagnoses``).

Case c (c = 0, 1, ...) draws from ``numpy.random.default_rng([seed, c])``. Batch sizes
cycle through ``BATCH_SIZES`` (estimate-not-loss and sum-reduction differ from the
loss by amounts that depend on B), logits are never symmetric (on symmetric logits
the transposed and symmetric losses equal the right one), and positives are boosted
by a random amount, as a trained critic's are. Every fifth case (c = 4, 9, ...) is
*extreme*: logits of magnitude ~1e3 (e^s overflows float64) or, for score matrices,
off-diagonal −inf entries (masked negatives; every row keeps one finite negative).
For embeddings, extreme cases need the "dot" critic (the cosine critic's logits are
bounded by 1/τ); other critics get ordinary cases only.

Cosine embeddings have norms in [8, 40], so a norm clamped from below, max(‖z‖, ε)
(``F.normalize``, ``F.cosine_similarity``), is ‖z‖ exactly, and sqrt(‖z‖² + 1e-12)
differs from it by < 1e-14 relatively, below the check's float64 tolerance: these
conform. An additive ε does not: z / (‖z‖ + 1e-8) scales every cosine by about
1 − 1e-8 (1/‖z‖ + 1/‖z'‖), which moves the loss by ~1e-9 relative (6e-9 nats at τ = 0.1),
far above float64's tolerance (~1e-13 nats). That loss is not the exact one, and the
check reports it ('unknown', with a note naming additive ε) rather than widening the
tolerance, which is derived from rounding alone.
"""
from dataclasses import dataclass

import numpy as np

from rpmref.testing.reference import critic_scores

BATCH_SIZES = (3, 5, 2, 8, 4, 11, 6, 16, 7)
SCALES = (1.0, 3.0, 0.3, 8.0)        # typical |logit| of ordinary cases
EXTREME_EVERY = 5
LARGE = 1e3


@dataclass(frozen=True)
class Case:
    """One input of :func:`check_infonce` and everything the diagnoses need.

    Properties: ``batch_size`` (B), ``dim`` (D of embeddings, 0 for scores) and
    ``extreme`` (not "ordinary").

    Parameters
    ----------
    index : int
        The case number c.
    label : {"ordinary", "large", "masked"}
        The kind of case.
    inputs : tuple of ndarray
        The arrays handed to the loss: scores (B, B), or z and z' (B, D).
    scores : ndarray, shape (B, B)
        S = f(z_i, z'_j) before the temperature.
    logits : ndarray, shape (B, B)
        L = S / τ (S when τ is None).
    temperature : float or None
        τ.
    pair_logits : ndarray, shape (2B, 2B), optional
        For embeddings, f(u_a, u_b) / τ over u = [z; z'], self-pairs −inf (NT-Xent's).

    Examples
    --------
    >>> from rpmref.testing.cases import score_case
    >>> case = score_case(0, seed=0, temperature=None)
    >>> case.label, case.batch_size, case.extreme
    ('ordinary', 3, False)
    """
    index: int
    label: str
    inputs: tuple
    scores: np.ndarray
    logits: np.ndarray
    temperature: float | None
    pair_logits: np.ndarray | None = None

    @property
    def batch_size(self):
        return self.scores.shape[0]

    @property
    def dim(self):
        return self.inputs[0].shape[1] if len(self.inputs) == 2 else 0

    @property
    def extreme(self):
        return self.label != "ordinary"


def _divide(scores, temperature):
    return scores if temperature is None else scores / temperature


def _label(index, allow_masked, allow_large=True):
    if index % EXTREME_EVERY != EXTREME_EVERY - 1 or not allow_large:
        return "ordinary"
    extreme_number = index // EXTREME_EVERY
    return "masked" if allow_masked and extreme_number % 2 == 1 else "large"


def _ordinary_logits(rng, b, scale):
    logits = scale * rng.standard_normal((b, b))
    return logits + np.diag(rng.uniform(0.0, 2.0 * scale, size=b))


def score_case(index, seed, temperature):
    """Case ``index`` for a loss of a (B, B) score matrix.

    Drawn from ``default_rng([seed, index])``; B cycles through ``BATCH_SIZES``;
    every fifth case is extreme ("large" logits ~1e3 or "masked" −inf negatives).

    Parameters
    ----------
    index : int
        The case number c ≥ 0.
    seed : int
        The seed of the case set.
    temperature : float or None
        τ; the scores are the logits times τ.

    Returns
    -------
    Case
        The case.

    Examples
    --------
    >>> from rpmref.testing.cases import score_case
    >>> score_case(4, seed=0, temperature=None).label
    'large'
    """
    rng = np.random.default_rng([seed, index])
    b = BATCH_SIZES[index % len(BATCH_SIZES)]
    label = _label(index, allow_masked=True)
    if label == "large":
        logits = _ordinary_logits(rng, b, LARGE)
    else:
        logits = _ordinary_logits(rng, b, SCALES[index % len(SCALES)])
    if label == "masked":
        mask = rng.random((b, b)) < 0.4
        keep = (np.arange(b) + rng.integers(1, b, size=b)) % b      # one negative per row
        mask[np.arange(b), keep] = False
        np.fill_diagonal(mask, False)
        logits = np.where(mask, -np.inf, logits)
    scores = logits if temperature is None else logits * temperature
    return Case(index, label, (scores,), scores, _divide(scores, temperature), temperature)


def embedding_case(index, seed, temperature, critic):
    """Case ``index`` for a loss of two (B, D) embedding batches under ``critic``.

    Cosine embeddings have norms in [8, 40]; dot embeddings are scaled so that the
    largest |logit| is the case's target magnitude (~1e3 for extreme cases).

    Parameters
    ----------
    index : int
        The case number c ≥ 0.
    seed : int
        The seed of the case set.
    temperature : float or None
        τ.
    critic : {"dot", "cosine"} or callable
        The critic (extreme cases only for "dot").

    Returns
    -------
    Case
        The case, with ``pair_logits`` for NT-Xent.

    Examples
    --------
    >>> from rpmref.testing.cases import embedding_case
    >>> case = embedding_case(0, seed=0, temperature=0.5, critic="cosine")
    >>> case.inputs[0].shape, case.pair_logits.shape
    ((3, 2), (6, 6))
    """
    rng = np.random.default_rng([seed, index])
    b = BATCH_SIZES[index % len(BATCH_SIZES)]
    d = 2 + index % 7
    label = _label(index, allow_masked=False, allow_large=critic == "dot")
    z = rng.standard_normal((b, d))
    z_prime = z + rng.choice([0.3, 1.0, 3.0]) * rng.standard_normal((b, d))
    if critic == "cosine":
        z, z_prime = (a / np.linalg.norm(a, axis=1, keepdims=True)
                      * rng.uniform(8.0, 40.0, size=(b, 1)) for a in (z, z_prime))
    elif critic == "dot":
        # scale both batches so that max |logit| is the target magnitude
        target = LARGE if label == "large" else SCALES[index % len(SCALES)] * 3.0
        raw = np.max(np.abs(z @ z_prime.T))
        factor = np.sqrt(target * (1.0 if temperature is None else temperature) / raw)
        z, z_prime = z * factor, z_prime * factor
    scores = _positives_kept(critic_scores(critic, z, z_prime), index)
    both = np.vstack([z, z_prime])
    pair = _divide(critic_scores(critic, both, both), temperature)
    np.fill_diagonal(pair, -np.inf)
    return Case(index, label, (z, z_prime), scores, _divide(scores, temperature), temperature,
                pair)


def _positives_kept(scores, index):
    """The critic's scores, refused (ValueError naming the critic) when it masks a
    positive pair with −inf: the loss of a batch needs every positive's score."""
    masked = np.flatnonzero(~np.isfinite(np.diagonal(scores)))
    if masked.size:
        i = int(masked[0])
        raise ValueError(f"critic(z, z_prime) must give every positive pair (z_i, z'_i) a "
                         f"finite score (−inf masks negatives only); on case {index} entry "
                         f"({i}, {i}) is {scores[i, i]}")
    return scores


def make_cases(kind, trials, seed, temperature=None, critic=None):
    """``trials`` cases for ``kind`` "scores" or "embeddings".

    Parameters
    ----------
    kind : {"scores", "embeddings"}
        What the loss takes.
    trials : int
        Number of cases.
    seed : int
        The seed of the case set.
    temperature : float, optional
        τ.
    critic : {"dot", "cosine"} or callable, optional
        The critic of embedding cases.

    Returns
    -------
    list of Case
        Cases 0 .. trials − 1.

    Examples
    --------
    >>> from rpmref.testing.cases import make_cases
    >>> [case.label for case in make_cases("scores", 10, seed=0)]
    ['ordinary', 'ordinary', 'ordinary', 'ordinary', 'large', 'ordinary', 'ordinary', 'ordinary', 'ordinary', 'masked']
    """
    if kind == "scores":
        return [score_case(i, seed, temperature) for i in range(trials)]
    return [embedding_case(i, seed, temperature, critic) for i in range(trials)]


__all__ = ["Case", "make_cases", "score_case", "embedding_case", "BATCH_SIZES", "SCALES"]
