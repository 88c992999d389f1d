"""The known InfoNCE mistakes, each as the value a loss with that mistake returns.

L = S / τ are the logits of a case, S the critic's scores (``cases``), B the batch
size and loss(·) the exact in-batch loss of ``reference.infonce_loss``. A loss that
matches one of these transformations on every case is diagnosed with its code.
"""
import numpy as np

from rpmref.exact.numerics import logsumexp
from rpmref.testing.reference import infonce_loss

#: Every diagnosis code and what it means (also documented in docs/tutorials/conformance.md).
DIAGNOSES = {
    "transposed": "softmax over the wrong axis: the loss of Lᵀ, i.e. the z' → z direction "
                  "(columns instead of rows)",
    "sum-reduction": "summed over the B anchors instead of averaged: B · loss(L)",
    "estimate-not-loss": "returns the InfoNCE estimate log B − loss(L) instead of the loss",
    "log2": "in bits, not nats: loss(L) / log 2",
    "sign": "the negated loss −loss(L) (the objective to maximise, without log B)",
    "log-mean-exp": "the mean instead of the sum over j in the denominator, log-mean-exp for "
                    "log-sum-exp: loss(L) − log B (the negated estimate)",
    "negatives-only": "denominator over the B − 1 negatives only, the positive left out: "
                      "−(1/B) Σ_i [L_ii − log Σ_{j≠i} e^{L_ij}]",
    "positive-twice": "the positive counted twice in the denominator (e.g. its logit "
                      "concatenated to the full row): −(1/B) Σ_i [L_ii − log(e^{L_ii} + "
                      "Σ_j e^{L_ij})]",
    "shifted-labels": "the positives taken at j = i + 1 (mod B), e.g. labels (arange(B) + 1) "
                      "% B: −(1/B) Σ_i [L_{i,i+1} − log Σ_j e^{L_ij}]",
    "symmetric": "the average of both directions: (loss(L) + loss(Lᵀ)) / 2",
    "temperature-positives": "temperature not applied to the positive logits: "
                             "−(1/B) Σ_i [S_ii − log Σ_j e^{S_ij / τ}]",
    "temperature-inverted": "multiplied by the temperature instead of divided: loss(S · τ)",
    "temperature-ignored": "the temperature argument is not used: loss(S)",
    "nt-xent": "NT-Xent (SimCLR): the 2B × 2B similarities of [z; z'], each of the 2B anchors "
               "against its 2B − 1 others (self excluded), averaged over 2B anchors",
    "unstable": "agrees on ordinary inputs but not on extreme ones (logits ~1e3, where e^s "
                "overflows, or −inf masked negatives): log Σ e^s without the max shift?",
    "masked-nan": "agrees except NaN where negatives are −inf (masked): 0 · (−inf) = NaN, e.g. "
                  "a mask multiplied into log-probabilities; select the positives (diagonal, "
                  "where, masked_fill) instead of multiplying by a mask",
    "not-finite": "returns NaN or ±inf on ordinary inputs, where the exact loss is finite",
    "non-deterministic": "returns a different value when called again on the same input "
                         "(dropout or another layer in training mode, random sampling, state "
                         "kept between calls), so no value can be checked; call .eval(), fix "
                         "the randomness, or check the deterministic part",
    "half-precision": "returns a float16, bfloat16 or float8 value: its rounding is larger than the "
                      "differences between the exact loss and the mistakes the check names; "
                      "compute the loss in float32 or float64",
    "gradient": "the values agree but the gradient does not, or the loss is detached from "
                "its inputs (no gradient at all)",
    "not-scalar": "returns an array of per-anchor losses (or another shape) instead of "
                  "one number",
    "unknown": "none of the known mistakes explains the values",
}

#: The transformations, in the order they are tried.
TRANSFORMATIONS = ("transposed", "sum-reduction", "estimate-not-loss", "log2", "sign",
                   "log-mean-exp", "negatives-only", "positive-twice", "shifted-labels",
                   "symmetric", "temperature-positives", "temperature-inverted",
                   "temperature-ignored", "nt-xent")
TEMPERATURE_CODES = ("temperature-positives", "temperature-inverted", "temperature-ignored")


def _negatives_only(logits):
    b = logits.shape[0]
    if b < 2:
        return np.inf
    off = np.where(np.eye(b, dtype=bool), -np.inf, logits)
    return -float(np.mean(np.diagonal(logits) - logsumexp(off, axis=1)))


def _positive_twice(logits):
    doubled = np.hstack([np.diagonal(logits)[:, None], logits])
    return -float(np.mean(np.diagonal(logits) - logsumexp(doubled, axis=1)))


def _shifted_labels(logits):
    b = logits.shape[0]
    shifted = logits[np.arange(b), (np.arange(b) + 1) % b]
    return -float(np.mean(shifted - logsumexp(logits, axis=1)))


def _temperature_positives(scores, temperature):
    tempered = logsumexp(scores / temperature, axis=1)
    return -float(np.mean(np.diagonal(scores) - tempered))


def _nt_xent(pair_logits):
    """Mean over the 2B anchors of −log softmax (self excluded) at the other view."""
    two_b = pair_logits.shape[0]
    b = two_b // 2
    partner = np.concatenate([np.arange(b, two_b), np.arange(b)])
    positives = pair_logits[np.arange(two_b), partner]
    return -float(np.mean(positives - logsumexp(pair_logits, axis=1)))


def applicable(code, kind, temperature):
    """Whether ``code``'s transformation can differ from the loss for these settings.

    Parameters
    ----------
    code : str
        A code of ``TRANSFORMATIONS``.
    kind : {"scores", "embeddings"}
        What the loss takes.
    temperature : float or None
        τ (the temperature mistakes need τ ∉ {None, 1}).

    Returns
    -------
    bool
        False where the mistake is indistinguishable from the right loss.

    Examples
    --------
    >>> from rpmref.testing.diagnoses import applicable
    >>> applicable("nt-xent", "scores", None), applicable("log2", "scores", None)
    (False, True)
    >>> applicable("temperature-ignored", "scores", 1.0)
    False
    """
    if code in TEMPERATURE_CODES:
        return temperature is not None and temperature != 1.0
    if code == "nt-xent":
        return kind == "embeddings"
    return True


def transformation_value(code, case):
    """The value a loss with mistake ``code`` returns on ``case``.

    Parameters
    ----------
    code : str
        A code of ``TRANSFORMATIONS``.
    case : Case
        The input (:mod:`rpmref.testing.cases`).

    Returns
    -------
    float
        The mistaken loss, in nats (bits for "log2").

    Raises
    ------
    ValueError
        For an unknown code.

    Examples
    --------
    >>> from rpmref.testing.cases import score_case
    >>> from rpmref.testing.diagnoses import transformation_value
    >>> from rpmref.testing.reference import infonce_loss
    >>> case = score_case(0, seed=0, temperature=None)
    >>> value = transformation_value("sum-reduction", case)
    >>> abs(value - case.batch_size * infonce_loss(case.logits)) <= 1e-15 * value   # a few ulps
    True
    """
    logits, b = case.logits, case.batch_size
    if code == "transposed":
        return infonce_loss(logits.T)
    if code == "sum-reduction":
        return b * infonce_loss(logits)
    if code == "estimate-not-loss":
        return float(np.log(b)) - infonce_loss(logits)
    if code == "log2":
        return infonce_loss(logits) / float(np.log(2.0))
    if code == "sign":
        return -infonce_loss(logits)
    if code == "log-mean-exp":
        return infonce_loss(logits) - float(np.log(b))
    if code == "negatives-only":
        return _negatives_only(logits)
    if code == "positive-twice":
        return _positive_twice(logits)
    if code == "shifted-labels":
        return _shifted_labels(logits)
    if code == "symmetric":
        return 0.5 * (infonce_loss(logits) + infonce_loss(logits.T))
    if code == "temperature-positives":
        return _temperature_positives(case.scores, case.temperature)
    if code == "temperature-inverted":
        return infonce_loss(case.scores * case.temperature)
    if code == "temperature-ignored":
        return infonce_loss(case.scores)
    if code == "nt-xent":
        return _nt_xent(case.pair_logits)
    raise ValueError(f"unknown transformation {code!r}")


__all__ = ["DIAGNOSES", "TRANSFORMATIONS", "applicable", "transformation_value"]
