"""Hypothesis strategies shared by the tests (after dit's ``utils/testing.py``).

Raw non-negative arrays are drawn entry by entry from a mix of exact zeros, tiny
values (1e-12, which make near-deterministic rows) and ordinary values; all-zero
rows are replaced by a one-hot row (never rejected, so no filtering), then rows
or whole tables are normalised. Shapes go up to 8 × 8 data and latent states.
"""
import numpy as np
from hypothesis import settings, strategies as st
from hypothesis.extra.numpy import arrays

MAX_STATES = 8


def scaled_examples(n):
    """max_examples for a test that runs fewer than the profile's 100: n in the ci and
    dev profiles, 10·n in the hunt profile (read when the test module is imported)."""
    return max(1, n * settings.default.max_examples // 100)
_entries = st.one_of(st.just(0.0), st.just(1e-12), st.floats(0.01, 1.0))


def _nonzero_rows(raw, hot):
    rows = raw.copy()
    empty = rows.sum(axis=1) == 0
    rows[empty] = np.eye(rows.shape[1])[hot[empty]]
    return rows


@st.composite
def pmfs(draw, shape):
    """A pmf of the given shape with possible exact zeros and 1e-12 entries."""
    raw = draw(arrays(np.float64, shape, elements=_entries))
    if raw.sum() == 0:
        raw.flat[draw(st.integers(0, raw.size - 1))] = 1.0
    return raw / raw.sum()


@st.composite
def conditionals(draw, n, k, kind=None):
    """An (n, k) table whose rows are pmfs.

    kind: "deterministic" (one-hot rows), "near" (one entry ≈ 1, the rest 1e-12
    or 0), "dense" or None (any of these, or a mixture of row types).
    """
    kind = kind or draw(st.sampled_from(["deterministic", "near", "dense", "mixed"]))
    hot = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    one_hot = np.eye(k)[hot]
    if kind == "deterministic":
        return one_hot
    if kind == "near":
        tiny = draw(arrays(np.float64, (n, k), elements=st.sampled_from([0.0, 1e-12])))
        rows = np.where(one_hot > 0, 0.0, tiny)
        return rows + one_hot * (1.0 - rows.sum(axis=1, keepdims=True))
    raw = _nonzero_rows(draw(arrays(np.float64, (n, k), elements=_entries)), hot)
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def rpm_problems(draw, max_data=MAX_STATES, max_latent=MAX_STATES, kind=None):
    """(p_xx, enc, enc_prime, prior) with p_xx (n, n'), enc (n, k), enc_prime (n', k')."""
    n, n_prime = draw(st.integers(1, max_data)), draw(st.integers(1, max_data))
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    p_xx = draw(pmfs((n, n_prime)))
    enc = draw(conditionals(n, k, kind))
    enc_prime = draw(conditionals(n_prime, k_prime, kind))
    prior = draw(pmfs((k, k_prime)))
    return p_xx, enc, enc_prime, prior


def critics(shape, bound):
    """A critic table f with entries in [−bound, bound]."""
    return arrays(np.float64, shape, elements=st.floats(-bound, bound))


@st.composite
def joint_and_critic(draw, bound, max_latent=MAX_STATES):
    """(p_zz, f): a (k, k') pmf and a critic table of the same shape."""
    k, k_prime = draw(st.integers(1, max_latent)), draw(st.integers(1, max_latent))
    return draw(pmfs((k, k_prime))), draw(critics((k, k_prime), bound))
