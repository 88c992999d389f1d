"""Input checks with errors that name the argument, the index and the value.

Every public function of the exact core validates its inputs here, so a user
sees "enc rows must sum to 1 (tolerance 1e-09); row 3 sums to 0.7" instead of a
NaN or a traceback from deep inside NumPy. Nothing is ever renormalised.
"""
import numbers

import numpy as np

#: Absolute tolerance on "sums to 1" for probability tables.
SUM_TOLERANCE = 1e-9


def as_float_array(value, name, ndim=None):
    """``value`` as a float64 array; TypeError if it is not real-numeric.

    ndim: required number of dimensions (int) or None for any.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def _index(flat_index, shape):
    idx = np.unravel_index(flat_index, shape)
    return tuple(int(i) for i in idx) if len(idx) > 1 else int(idx[0])


def check_finite(arr, name):
    """Raise ValueError at the first NaN or ±inf entry of ``arr``."""
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite; entry {_index(i, arr.shape)} is {arr.flat[i]}")
    return arr


def check_nonnegative(arr, name):
    """Raise ValueError unless every entry of ``arr`` is finite and ≥ 0."""
    check_finite(arr, name)
    neg = arr < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(
            f"{name} must be non-negative; entry {_index(i, arr.shape)} is {arr.flat[i]}")
    return arr


def check_pmf(value, name, ndim=None):
    """A probability table: finite, non-negative, summing to 1 (±``SUM_TOLERANCE``)."""
    arr = check_nonnegative(as_float_array(value, name, ndim), name)
    total = float(arr.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"{name} must sum to 1 (tolerance {SUM_TOLERANCE:g}); it sums to {total!r}")
    return arr


def check_conditional(value, name, n_rows=None):
    """A conditional table P(z | x) of shape (n, k): every row a pmf.

    n_rows: the number of rows required (the number of data states), or None.
    """
    arr = check_nonnegative(as_float_array(value, name, ndim=2), name)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but the data have {n_rows} states; "
            f"shape {arr.shape}")
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} rows must sum to 1 (tolerance {SUM_TOLERANCE:g}); "
            f"row {row} sums to {float(sums[row])!r}")
    return arr


def check_shape(arr, name, shape, what):
    """Raise ValueError unless ``arr.shape == shape``; ``what`` explains the shape."""
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({what}), got {arr.shape}")
    return arr


def check_positive_int(value, name, minimum=1):
    """An integer ≥ ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_rpm_inputs(p_xx, enc, enc_prime, prior=None):
    """Validate the data pmf, both encoders and (optionally) the prior together.

    Returns float64 arrays (p_xx (n, n'), enc (n, k), enc_prime (n', k'), prior (k, k') or None).
    """
    p_xx = check_pmf(p_xx, "p_xx", ndim=2)
    n, n_prime = p_xx.shape
    enc = check_conditional(enc, "enc", n_rows=n)
    enc_prime = check_conditional(enc_prime, "enc_prime", n_rows=n_prime)
    if prior is not None:
        prior = check_pmf(prior, "prior", ndim=2)
        check_shape(prior, "prior", (enc.shape[1], enc_prime.shape[1]),
                    "(k, k') = latent states of enc and enc_prime")
    return p_xx, enc, enc_prime, prior


def check_critic(f, name, shape):
    """A critic table f(z, z'): finite real values of the given shape."""
    f = check_finite(as_float_array(f, name, ndim=2), name)
    return check_shape(f, name, shape, "(k, k') = the latent states of p_zz")
