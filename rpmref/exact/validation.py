"""Argument validation for the exact core: one declaration per parameter.

Every public function of ``rpmref.exact`` declares its parameters beside its
definition (after scikit-learn's ``utils/_param_validation``)::

    @validate_params(p_xx=Pmf(dims=("n", "n'")), enc=Conditional(dims=("n", "k")), ...)
    def recognition_joint(p_xx, enc, enc_prime): ...

and every failure is a ``TypeError`` (wrong kind of object) or ``ValueError``
(right kind, wrong value) whose message names the argument, the index and the
value: "enc rows must sum to 1 (tolerance 1e-09); row 3 sums to 0.7". Nothing
is ever renormalised or clipped. Each argument is checked once per call, with
whole-array reductions; the index of the first offender is looked up only
when a check fails.

The rules, the same for every argument:

* Arrays: anything ``numpy.asarray`` turns into an integer or floating dtype.
  Integers, float16, float32 and longdouble are converted to float64 (the exact
  core computes in float64) and then checked as float64 values: the tolerances
  below do not widen for low-precision input, so a table normalised in float32
  is refused with a message naming its dtype. A longdouble
  that float64 cannot hold — beyond ±1.8e308, or non-zero below 4.9e-324, where
  the cast would make it 0 — is refused by entry. ``bool`` arrays are refused (a mask
  is not a probability table; cast it explicitly), as are complex, object,
  string and datetime dtypes and masked arrays (TypeError). Non-contiguous,
  transposed and read-only (broadcast) arrays are fine: nothing is written in place.
* Traced values (autograd): the checks run on the concrete values
  (``autograd.tracer.getval``) and the traced array is passed on untouched, so
  gradients flow through every public function.
* Sizes and counts: Python or NumPy integers (``operator.index``); ``bool`` and
  floats — also 3.0 — are refused (TypeError), as NumPy refuses them for shapes.
* "Sums to 1": |Σ p − 1| ≤ max(SUM_TOLERANCE, m · eps) with m the number of
  entries summed. A table normalised in float64 (each entry divided by the sum)
  is off by at most m·eps/2 (m roundings of eps/2 in the entries and in the
  sum), so the derived term admits every such table with a factor 2 to spare;
  the 1e-9 floor admits tables typed by hand to nine digits.
* Symmetry: max |A − Aᵀ| ≤ rtol · max |A| (relative; default ``SYMMETRY_RTOL``).
  Definiteness: the smallest eigenvalue of (A + Aᵀ)/2 must exceed
  d · eps · (largest |eigenvalue|) for "positive definite" (it is then
  distinguishable from 0 at the rounding level of a d × d eigen-decomposition),
  and must not fall below minus that for "positive semi-definite".

The ``check_*`` functions are the same checks for direct use (the Gaussian
code and the experiment call them); ``as_float_array``, ``check_finite``,
``check_nonnegative``, ``check_pmf``, ``check_conditional``, ``check_shape``,
``check_positive_int``, ``check_rpm_inputs`` and ``check_critic`` keep their
original signatures.
"""
import functools
import inspect
import math
import numbers
import operator
import os

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval, isbox

#: Floor of the tolerance on "sums to 1" (see the module docstring for the derived part).
SUM_TOLERANCE = 1e-9
#: Default relative tolerance of ``check_symmetric``: max|A − Aᵀ| ≤ SYMMETRY_RTOL · max|A|.
#: Products such as X Σ Xᵀ of d × d float64 matrices are symmetric to ≈ d·eps relative,
#: below this for d up to ~10^5.
SYMMETRY_RTOL = 1e-10
_EPS = np.finfo(np.float64).eps
_INT64_MAX = int(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------- messages
def _index(flat_index, shape):
    idx = np.unravel_index(int(flat_index), shape)
    return tuple(int(i) for i in idx) if len(idx) > 1 else int(idx[0])


def _number(v):
    """A number for a message: a Python float/int repr, never 'np.float64(...)'."""
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v)


def sum_tolerance(n_terms):
    """The tolerance on "sums to 1" for a sum of ``n_terms`` entries: max(1e-9, m·eps).

    A table normalised in float64 is off by at most m·eps/2, so the derived term
    admits every such table with a factor 2 to spare; the ``SUM_TOLERANCE`` floor
    admits tables typed by hand to nine digits.

    Parameters
    ----------
    n_terms : int
        m, the number of entries summed.

    Returns
    -------
    float
        The tolerance on |Σ p − 1|.

    Examples
    --------
    >>> from rpmref.exact.validation import sum_tolerance
    >>> sum_tolerance(10)
    1e-09
    >>> float(sum_tolerance(10 ** 8)) == 10 ** 8 * 2.0 ** -52
    True
    """
    return max(SUM_TOLERANCE, n_terms * _EPS)


# --------------------------------------------------------------------------- arrays
def _concrete_array(value, name, max_elements=None):
    """(value to compute with, its concrete float64 ndarray). TypeError for non-real input;
    ValueError beyond ``max_elements`` (checked before any conversion copies the data)."""
    traced = isbox(value)
    raw = getval(value) if traced else value
    if raw is None or isinstance(raw, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, got {type(raw).__name__}")
    if isinstance(raw, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain array, got a masked array "
                        "(its mask would be ignored); fill or drop the masked entries")
    try:
        arr = np.asarray(raw)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError(f"{name} must be an array of real numbers, got dtype bool "
                        f"(a mask is not a table; pass {name}.astype(float) if you mean 0/1)")
    if kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if isinstance(raw, (list, tuple)) and _holds_bool(raw):   # NumPy made [True, 0] ints
        raise TypeError(f"{name} must be an array of real numbers; it holds a bool "
                        f"(a mask is not a table; use 0 and 1 if you mean them)")
    if max_elements is not None and arr.size > max_elements:
        raise ValueError(
            f"{name} has {arr.size:.3g} elements (shape {arr.shape}), more than the budget "
            f"of {max_elements} (rpmref.exact.discrete.MAX_TENSOR_ELEMENTS)")
    if arr.dtype != np.float64:
        wide = arr
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float64)
        if wide.dtype.kind == "f" and wide.dtype.itemsize > 8:   # longdouble: may not fit
            for lost, error in ((np.isinf(arr) & np.isfinite(wide), _beyond_float64),
                                ((arr == 0) & (wide != 0), _below_float64)):
                if lost.any():
                    i = _first(lost)
                    where = f"entry {_index(i, arr.shape)} is" if arr.ndim else "it is"
                    raise error(
                        name, f"{where} {np.format_float_scientific(wide.flat[i], precision=4)}")
        if traced:   # a traced float32 table is computed in float64, as a plain one is
            value = anp.array(value, dtype=np.float64)
    return (value if traced else arr), arr


def _beyond_float64(name, shown):
    """The ValueError for a finite value (``shown``) that float64 cannot hold."""
    return ValueError(f"{name} must be representable in float64; {shown}, beyond its range "
                      "(±1.8e308)")


def _below_float64(name, shown):
    """The ValueError for a non-zero value (``shown``) that float64 would round to 0: a
    probability that silently became 0 would change the support (a finite KL, say, to inf)."""
    return ValueError(f"{name} must be representable in float64; {shown}, below its smallest "
                      "positive value (4.9e-324), where it would become 0")


def _holds_bool(raw):
    """True if a (nested) list or tuple holds a Python or NumPy bool anywhere."""
    flags = np.frompyfunc(lambda v: isinstance(v, (bool, np.bool_)), 1, 1)(
        np.asarray(raw, dtype=object))
    return bool(np.any(flags))


def _first(mask):
    return int(np.flatnonzero(mask.ravel())[0])


def _require_finite(arr, name):
    if not np.isfinite(arr).all():
        if arr.ndim == 0:
            raise ValueError(f"{name} must be finite; got {arr.item()}")
        i = _first(~np.isfinite(arr))
        raise ValueError(f"{name} must be finite; entry {_index(i, arr.shape)} is {arr.flat[i]}")


def _require_nonnegative_finite(arr, name):
    """One reduction in the common case: min ≥ 0 and a finite sum imply finite, ≥ 0 entries."""
    if arr.size and arr.min() >= 0:
        with np.errstate(over="ignore"):  # a sum past 1.8e308 is not itself an error
            if np.isfinite(arr.sum()):
                return
    _require_finite(arr, name)
    neg = arr < 0
    if neg.any() and arr.ndim == 0:
        raise ValueError(f"{name} must be non-negative; got {arr.item()}")
    if neg.any():
        i = _first(neg)
        raise ValueError(
            f"{name} must be non-negative; entry {_index(i, arr.shape)} is {arr.flat[i]}")


def _dtype_hint(raw, name):
    """A hint for a failed "sums to 1" check on low-precision input."""
    try:
        dtype = np.asarray(getval(raw)).dtype
    except Exception:  # pragma: no cover - raw was already converted once
        return ""
    if dtype.kind == "f" and dtype.itemsize < 8:
        return f" ({name} has dtype {dtype}: normalise it in float64)"
    return ""


def _dims_text(dims, bound):
    parts = []
    for d in dims:
        if isinstance(d, str) and d in bound:
            parts.append(f"{d} from {bound[d][1]}")
        elif isinstance(d, str):
            parts.append(d)
    return ", ".join(parts)


def _check_dims(arr, name, dims, bound, rows_message=False):
    """Bind symbolic sizes on first sight; check later arguments against them."""
    if dims is None:
        return
    if arr.ndim != len(dims):
        raise ValueError(f"{name} must be {len(dims)}-dimensional, got shape {arr.shape}")
    expected = []
    mismatch = False
    for axis, d in enumerate(dims):
        if isinstance(d, str) and d in bound:
            expected.append(bound[d][0])
            mismatch |= bound[d][0] != arr.shape[axis]
        elif isinstance(d, numbers.Integral):
            expected.append(int(d))
            mismatch |= int(d) != arr.shape[axis]
        else:
            expected.append(arr.shape[axis])
    if mismatch:
        first = dims[0]
        if (rows_message and isinstance(first, str) and first in bound
                and bound[first][0] != arr.shape[0]):
            raise ValueError(f"{name} has {arr.shape[0]} rows but the data have "
                             f"{bound[first][0]} states; shape {arr.shape} "
                             f"({first} = {bound[first][0]} from {bound[first][1]})")
        named = _dims_text(dims, bound)
        raise ValueError(f"{name} must have shape {tuple(expected)}"
                         f"{f' ({named})' if named else ''}, got {arr.shape}")
    for axis, d in enumerate(dims):
        if isinstance(d, str) and d not in bound:
            bound[d] = (arr.shape[axis], name)


class Spec:
    """One parameter's constraint: ``validate(value, name, bound_dims)`` returns the value to use.

    ``bound_dims`` is the dict of symbolic sizes seen so far in the call (shared
    between the parameters of one call). Subclasses raise TypeError for the wrong
    kind of object and ValueError for the right kind with a wrong value.

    Examples
    --------
    >>> from rpmref.exact.validation import Integer, Spec
    >>> isinstance(Integer(minimum=1), Spec)
    True
    >>> Integer(minimum=1).validate(3, "n", {})
    3
    """

    def validate(self, value, name, bound):  # pragma: no cover - interface
        raise NotImplementedError


class Array(Spec):
    """A real array (float64 after conversion).

    Parameters
    ----------
    ndim : int, optional
        Required number of axes.
    dims : tuple, optional
        Symbolic sizes (str, shared between the arguments of one call), fixed sizes
        (int) or None (any); also fixes ``ndim``.
    finite : bool, default True
        Refuse NaN/±inf.
    nonnegative : bool, default False
        Refuse entries < 0.
    allow_empty : bool, default False
        Accept zero-size arrays.
    max_elements : int or callable, optional
        Refuse larger arrays before any work is done on them (a callable returning
        the limit is read at call time).
    same_shape_as : str, optional
        The name of an earlier parameter whose shape this one must have.

    Raises
    ------
    TypeError
        From ``validate``: bool, complex, object, string or datetime dtypes, masked
        arrays, None.
    ValueError
        From ``validate``: wrong number of axes or sizes, empty, too many elements,
        non-finite or negative entries (as configured).

    Examples
    --------
    >>> from rpmref.exact.validation import Array
    >>> Array(dims=("n", 2)).validate([[1, 2]], "a", {})
    array([[1., 2.]])
    >>> Array(dims=("n", 2)).validate([[1, 2, 3]], "a", {})
    Traceback (most recent call last):
    ...
    ValueError: a must have shape (1, 2) (n), got (1, 3)
    """
    rows_message = False

    def __init__(self, ndim=None, dims=None, finite=True, nonnegative=False, allow_empty=False,
                 max_elements=None, same_shape_as=None):
        self.ndim = len(dims) if dims is not None else ndim
        self.dims, self.finite, self.nonnegative = dims, finite, nonnegative
        self.allow_empty, self.max_elements = allow_empty, max_elements
        self.same_shape_as = same_shape_as

    def validate(self, value, name, bound):
        limit = self.max_elements() if callable(self.max_elements) else self.max_elements
        use, arr = _concrete_array(value, name, limit)
        if self.ndim is not None and arr.ndim != self.ndim:
            raise ValueError(f"{name} must be {self.ndim}-dimensional, got shape {arr.shape}")
        if arr.size == 0 and not self.allow_empty:
            raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
        _check_dims(arr, name, self.dims, bound, self.rows_message)
        if self.same_shape_as is not None and ("@" + self.same_shape_as) in bound:
            other = bound["@" + self.same_shape_as]
            if other != arr.shape:
                raise ValueError(f"{name} must have the same shape as {self.same_shape_as} "
                                 f"{other}, got {arr.shape}")
        bound["@" + name] = arr.shape
        if self.nonnegative:
            # One min and the sums the subclass needs anyway: min ≥ 0 and finite sums imply
            # finite, non-negative entries; only a failure looks for the offending entry.
            # Sums within 1 ± tol are finite, so min ≥ 0 and good sums settle every check.
            # Entries near the float64 maximum overflow a sum: that is the finding to
            # report (as a ValueError), not a RuntimeWarning.
            with np.errstate(over="ignore", invalid="ignore"):
                sums = self.sums(arr)
                total = sums if sums is not None else (arr.sum() if arr.size else 0.0)
                if arr.size and arr.min() >= 0:
                    if sums is not None and self.sums_ok(arr, sums):
                        return use
                    if sums is None and np.isfinite(total).all():
                        self.check_values(arr, name, value)
                        return use
                _require_nonnegative_finite(arr, name)
                if sums is not None:
                    self.check_sums(arr, name, value, sums)
                    return use
        elif self.finite:
            _require_finite(arr, name)
        self.check_values(arr, name, value)
        return use

    def sums(self, arr):
        """The sums ``check_sums`` needs (subclasses), or None."""
        return None

    def sums_ok(self, arr, sums):
        """True if ``sums`` pass ``check_sums`` (a fast test; subclasses with ``sums``)."""
        return False

    def check_sums(self, arr, name, raw, sums):
        """``check_values`` given ``sums(arr)``, already computed (subclasses)."""
        self.check_values(arr, name, raw)

    def check_values(self, arr, name, raw):
        """Further checks on the concrete float64 values (subclasses)."""


class Pmf(Array):
    """A probability table of any shape: finite, ≥ 0, all entries summing to 1.

    Parameters
    ----------
    ndim : int, optional
        Required number of axes.
    dims : tuple, optional
        Symbolic or fixed sizes, as for :class:`Array`.
    **kwargs
        Further options of :class:`Array` (``allow_empty``, ``max_elements``,
        ``same_shape_as``).

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :class:`Array`; ValueError if the sum is off by
        more than :func:`sum_tolerance` (low-precision input is named in the message).

    Examples
    --------
    >>> from rpmref.exact.validation import Pmf
    >>> Pmf().validate([0.5, 0.6], "p", {})
    Traceback (most recent call last):
    ...
    ValueError: p must sum to 1 (tolerance 1e-09); it sums to 1.1
    """

    def __init__(self, ndim=None, dims=None, **kwargs):
        super().__init__(ndim=ndim, dims=dims, nonnegative=True, **kwargs)

    def sums(self, arr):
        return arr.sum()

    def sums_ok(self, arr, sums):
        return abs(float(sums) - 1.0) <= sum_tolerance(arr.size)

    def check_values(self, arr, name, raw):
        self.check_sums(arr, name, raw, self.sums(arr))

    def check_sums(self, arr, name, raw, sums):
        total = float(sums)
        tol = sum_tolerance(arr.size)
        if not abs(total - 1.0) <= tol:
            raise ValueError(f"{name} must sum to 1 (tolerance {tol:g}); it sums to "
                             f"{total!r}{_dtype_hint(raw, name)}")


class Conditional(Array):
    """A conditional table: finite, ≥ 0, each slice over the last ``event_axes`` axes a pmf.

    With the default event_axes=1 on a 2-D table (n, k) the rows are P(z | x).

    Parameters
    ----------
    dims : tuple, optional
        Symbolic or fixed sizes, as for :class:`Array`.
    ndim : int, default 2
        Required number of axes.
    event_axes : int, default 1
        How many trailing axes each pmf spans.
    allow_zero_slices : bool, default False
        Also accept slices that are all zero (a conditional left undefined where its
        condition has no mass, as :func:`rpmref.rpm_posterior` returns them); the
        caller decides what they mean.
    **kwargs
        Further options of :class:`Array`.

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :class:`Array`; ValueError naming the first slice
        whose sum is off by more than :func:`sum_tolerance`, or a row count that does
        not match the data.

    Examples
    --------
    >>> from rpmref.exact.validation import Conditional
    >>> Conditional(dims=("n", "k")).validate([[0.5, 0.5], [1.0, 0.1]], "enc", {})
    Traceback (most recent call last):
    ...
    ValueError: enc rows must sum to 1 (tolerance 1e-09); row 1 sums to 1.1
    """
    rows_message = True

    def __init__(self, dims=None, ndim=2, event_axes=1, allow_zero_slices=False, **kwargs):
        super().__init__(ndim=ndim, dims=dims, nonnegative=True, **kwargs)
        self.event_axes = event_axes
        self.allow_zero_slices = allow_zero_slices

    def sums(self, arr):
        return arr.sum(axis=tuple(range(arr.ndim - self.event_axes, arr.ndim)))

    def sums_ok(self, arr, sums):
        tol = sum_tolerance(math.prod(arr.shape[arr.ndim - self.event_axes:]))
        if self.allow_zero_slices:
            return not self._bad_sums(sums, tol).any()
        return bool(sums.size == 0 or (sums.min() >= 1.0 - tol and sums.max() <= 1.0 + tol))

    def _bad_sums(self, sums, tol):
        good = np.abs(sums - 1.0) <= tol
        if self.allow_zero_slices:  # entries are ≥ 0 here, so a zero sum is an all-zero slice
            good |= sums == 0
        return ~good

    def check_values(self, arr, name, raw):
        self.check_sums(arr, name, raw, self.sums(arr))

    def check_sums(self, arr, name, raw, sums):
        tol = sum_tolerance(math.prod(arr.shape[arr.ndim - self.event_axes:]))
        bad = self._bad_sums(sums, tol)
        if not bad.any():
            return
        i = _first(bad)
        where = _index(i, sums.shape)
        total = float(sums.flat[i])
        if arr.ndim == 2 and self.event_axes == 1:
            raise ValueError(f"{name} rows must sum to 1 (tolerance {tol:g}); row {where} sums "
                             f"to {total!r}{_dtype_hint(raw, name)}")
        where = where if isinstance(where, tuple) else (where,)
        raise ValueError(
            f"{name} must be normalised over its last {self.event_axes} axes (tolerance {tol:g}); "
            f"{name}[{', '.join(map(str, where))}] sums to {total!r}{_dtype_hint(raw, name)}")


class SymmetricMatrix(Array):
    """A finite real square matrix, symmetric to a relative tolerance; optionally definite.

    Parameters
    ----------
    dims : tuple, optional
        Symbolic or fixed sizes of the two axes.
    rtol : float, default ``SYMMETRY_RTOL``
        max|A − Aᵀ| ≤ rtol · max|A|.
    definite : {None, "positive", "semi"}, optional
        Require positive definiteness or semi-definiteness, judged on the
        eigenvalues of (A + Aᵀ)/2 relative to the largest (module docstring).
    **kwargs
        Further options of :class:`Array`.

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :func:`check_symmetric` and
        :func:`check_positive_definite`.

    Examples
    --------
    >>> from rpmref.exact.validation import SymmetricMatrix
    >>> SymmetricMatrix(definite="positive").validate([[2.0, 1.0], [1.0, 2.0]], "cov", {})
    array([[2., 1.],
           [1., 2.]])
    """

    def __init__(self, dims=None, rtol=SYMMETRY_RTOL, definite=None, **kwargs):
        super().__init__(ndim=2, dims=dims, **kwargs)
        self.rtol, self.definite = rtol, definite

    def check_values(self, arr, name, raw):
        check_symmetric(arr, name, rtol=self.rtol)
        if self.definite is not None:
            check_positive_definite(arr, name, semi=self.definite == "semi",
                                    _symmetry_checked=True)


class Integer(Spec):
    """An integer (Python or NumPy; bool and floats refused) in [minimum, maximum].

    Parameters
    ----------
    minimum : int, optional
        Smallest allowed value.
    maximum : int, optional
        Largest allowed value.

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :func:`check_int`.

    Examples
    --------
    >>> from rpmref.exact.validation import Integer
    >>> Integer(minimum=1).validate(0, "n", {})
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """

    def __init__(self, minimum=None, maximum=None):
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value, name, bound):
        return check_int(value, name, self.minimum, self.maximum)


class Real(Spec):
    """A real scalar (bool refused) in an interval; finite unless ``finite=False``.

    Parameters
    ----------
    minimum : float, optional
        Lower end of the interval.
    maximum : float, optional
        Upper end of the interval.
    inclusive : tuple of bool, default (True, True)
        Whether each end belongs to the interval.
    finite : bool, default True
        Refuse ±inf (NaN is always refused).

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :func:`check_real`.

    Examples
    --------
    >>> from rpmref.exact.validation import Real
    >>> Real(0, 1).validate(2.0, "x", {})
    Traceback (most recent call last):
    ...
    ValueError: x must be in [0, 1], got 2.0
    """

    def __init__(self, minimum=None, maximum=None, inclusive=(True, True), finite=True):
        self.minimum, self.maximum, self.inclusive, self.finite = minimum, maximum, inclusive, finite

    def validate(self, value, name, bound):
        return check_real(value, name, self.minimum, self.maximum, self.inclusive, self.finite)


class Options(Spec):
    """One of a fixed set of values (strings compared exactly).

    Parameters
    ----------
    *options : str
        The allowed values.

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :func:`check_choice`.

    Examples
    --------
    >>> from rpmref.exact.validation import Options
    >>> Options("exact", "mc").validate("mc", "method", {})
    'mc'
    """

    def __init__(self, *options):
        self.options = options

    def validate(self, value, name, bound):
        return check_choice(value, name, self.options)


class GeneratorSpec(Spec):
    """A ``numpy.random.Generator``.

    Raises
    ------
    TypeError
        From ``validate``, for anything else.

    Examples
    --------
    >>> from rpmref.exact.validation import GeneratorSpec
    >>> GeneratorSpec().validate(0, "rng", {})
    Traceback (most recent call last):
    ...
    TypeError: rng must be a numpy.random.Generator, got int
    """

    def validate(self, value, name, bound):
        return check_generator(value, name)


class Seed(Spec):
    """A seed for ``numpy.random.default_rng``.

    A non-negative integer, a sequence of them, a ``numpy.random.SeedSequence`` or None.

    Raises
    ------
    TypeError, ValueError
        From ``validate``, as for :func:`check_seed`.

    Examples
    --------
    >>> from rpmref.exact.validation import Seed
    >>> Seed().validate([1, 2], "seed", {})
    [1, 2]
    """

    def validate(self, value, name, bound):
        return check_seed(value, name)


class Optional(Spec):
    """``None`` or a value satisfying ``spec``.

    Parameters
    ----------
    spec : Spec
        The constraint on values other than None.

    Examples
    --------
    >>> from rpmref.exact.validation import Integer, Optional
    >>> Optional(Integer(1)).validate(None, "n", {}) is None
    True
    """

    def __init__(self, spec):
        self.spec = spec

    def validate(self, value, name, bound):
        return None if value is None else self.spec.validate(value, name, bound)


def validate_params(**specs):
    """Decorator: validate the named parameters (in declaration order) before every call.

    The wrapped function receives the validated values (float64 arrays, Python
    ints) or, for traced autograd values, the traced values themselves. Symbolic
    dims are shared between the parameters of one call. ``func.param_specs``
    holds the declarations.

    Parameters
    ----------
    **specs : Spec
        One constraint per parameter name.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    TypeError
        At decoration, if a spec names a parameter the function does not have.

    Examples
    --------
    >>> from rpmref.exact.validation import Integer, Pmf, validate_params
    >>> @validate_params(p=Pmf(dims=("k",)), n=Integer(minimum=1))
    ... def repeat(p, n):
    ...     return n * p
    >>> repeat([0.5, 0.5], 2)
    array([1., 1.])
    >>> repeat([0.5, 0.5], 0)
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """
    def decorate(func):
        signature = inspect.signature(func)
        unknown = set(specs) - set(signature.parameters)
        if unknown:
            raise TypeError(f"validate_params: {func.__name__} has no parameter {sorted(unknown)}")
        order = list(specs.items())
        params = list(signature.parameters.values())
        names = [p.name for p in params]
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        # Calls with only named, non-variadic parameters are bound by a dict (Signature.bind
        # costs ~20 µs); anything unusual, including every binding error, goes to bind().
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)

        def bind(args, kwargs):
            if plain and len(args) <= len(names):
                values = dict(zip(names, args))
                if not kwargs.keys() & values.keys() and kwargs.keys() <= set(names):
                    values.update(kwargs)
                    for key, default in defaults.items():
                        values.setdefault(key, default)
                    if len(values) == len(names):
                        return values
            bound_args = signature.bind(*args, **kwargs)
            bound_args.apply_defaults()
            return dict(bound_args.arguments)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = bind(args, kwargs)
            dims = {}
            for name, spec in order:
                values[name] = spec.validate(values[name], name, dims)
            return func(**values)

        wrapper.param_specs = dict(specs)
        return wrapper
    return decorate


# --------------------------------------------------------------------------- direct checks
def as_real_array(value, name, *, ndim=None, dims=None, finite=True, allow_empty=False):
    """``value`` as a float64 array (traced values passed through), checked as :class:`Array`.

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    ndim : int, optional
        Required number of axes.
    dims : tuple, optional
        Required sizes (symbolic names are bound within this call only).
    finite : bool, default True
        Refuse NaN/±inf.
    allow_empty : bool, default False
        Accept zero-size arrays.

    Returns
    -------
    ndarray or autograd box
        The float64 array.

    Raises
    ------
    TypeError
        For bool, complex, object or string dtypes, masked arrays, None.
    ValueError
        For the wrong shape, an empty array or non-finite entries.

    Examples
    --------
    >>> from rpmref.exact.validation import as_real_array
    >>> as_real_array([1, 2], "x")
    array([1., 2.])
    >>> as_real_array([True], "x")
    Traceback (most recent call last):
    ...
    TypeError: x must be an array of real numbers, got dtype bool (a mask is not a table; pass x.astype(float) if you mean 0/1)
    """
    return Array(ndim=ndim, dims=dims, finite=finite, allow_empty=allow_empty).validate(
        value, name, {})


def as_float_array(value, name, ndim=None):
    """``value`` as a float64 array; TypeError if it is not real-numeric (bool is refused).

    Finiteness is not checked here (:func:`check_finite`).

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    ndim : int, optional
        Required number of dimensions, or None for any.

    Returns
    -------
    ndarray or autograd box
        The float64 array.

    Raises
    ------
    TypeError
        For non-real input.
    ValueError
        For the wrong number of dimensions or an empty array.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import as_float_array
    >>> as_float_array([np.inf, 1], "x")
    array([inf,  1.])
    """
    return Array(ndim=ndim, finite=False).validate(value, name, {})


def check_finite(arr, name):
    """Raise ValueError at the first NaN or ±inf entry of ``arr``; return ``arr``.

    Parameters
    ----------
    arr : array_like
        The values.
    name : str
        Its name, for the message.

    Returns
    -------
    array_like
        ``arr`` unchanged.

    Raises
    ------
    ValueError
        Naming the first non-finite entry.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_finite
    >>> check_finite(np.array([1.0, np.nan]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be finite; entry 1 is nan
    """
    _require_finite(np.asarray(getval(arr)), name)
    return arr


def check_nonnegative(arr, name):
    """Raise ValueError unless every entry of ``arr`` is finite and ≥ 0; return ``arr``.

    Parameters
    ----------
    arr : array_like
        The values.
    name : str
        Its name, for the message.

    Returns
    -------
    array_like
        ``arr`` unchanged.

    Raises
    ------
    ValueError
        Naming the first non-finite or negative entry.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_nonnegative
    >>> check_nonnegative(np.array([1.0, -1.0]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be non-negative; entry 1 is -1.0
    """
    _require_nonnegative_finite(np.asarray(getval(arr)), name)
    return arr


def check_pmf(value, name, ndim=None):
    """A probability table: finite, non-negative, summing to 1 (tolerance :func:`sum_tolerance`).

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    ndim : int, optional
        Required number of axes.

    Returns
    -------
    ndarray or autograd box
        The float64 table (never renormalised).

    Raises
    ------
    TypeError, ValueError
        As for :class:`Pmf`.

    Examples
    --------
    >>> from rpmref.exact.validation import check_pmf
    >>> check_pmf([0.25] * 4, "p")
    array([0.25, 0.25, 0.25, 0.25])
    """
    return Pmf(ndim=ndim).validate(value, name, {})


def check_conditional(value, name, n_rows=None):
    """A conditional table P(z | x) of shape (n, k): every row a pmf.

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    n_rows : int, optional
        The number of rows required (the number of data states), or None.

    Returns
    -------
    ndarray or autograd box
        The float64 table.

    Raises
    ------
    TypeError, ValueError
        As for :class:`Conditional`.

    Examples
    --------
    >>> from rpmref.exact.validation import check_conditional
    >>> check_conditional([[1.0, 0.0]], "enc", n_rows=2)
    Traceback (most recent call last):
    ...
    ValueError: enc has 1 rows but the data have 2 states; shape (1, 2) (n = 2 from the data)
    """
    bound = {} if n_rows is None else {"n": (int(n_rows), "the data")}
    return Conditional(dims=("n", "k")).validate(value, name, bound)


def check_shape(arr, name, shape, what):
    """Raise ValueError unless ``arr.shape == shape``; ``what`` explains the shape.

    Parameters
    ----------
    arr : array_like
        The array.
    name : str
        Its name, for the message.
    shape : tuple of int
        The required shape.
    what : str
        What the shape means, for the message.

    Returns
    -------
    array_like
        ``arr`` unchanged.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_shape
    >>> check_shape(np.zeros((2, 3)), "f", (2, 2), "the latent states")
    Traceback (most recent call last):
    ...
    ValueError: f must have shape (2, 2) (the latent states), got (2, 3)
    """
    actual = np.shape(getval(arr))
    if actual != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({what}), got {actual}")
    return arr


def check_int(value, name, minimum=None, maximum=None):
    """An integer in [minimum, maximum] as a Python int. bool and floats (also 3.0) are TypeErrors.

    Parameters
    ----------
    value : int or numpy integer
        The argument (anything ``operator.index`` accepts).
    name : str
        Its name, for messages.
    minimum : int, optional
        Smallest allowed value.
    maximum : int, optional
        Largest allowed value.

    Returns
    -------
    int
        The value as a Python int.

    Raises
    ------
    TypeError
        For bools, floats and other non-integers.
    ValueError
        Outside [minimum, maximum].

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_int
    >>> check_int(np.int64(3), "n", 1, 5)
    3
    >>> check_int(3.0, "n")
    Traceback (most recent call last):
    ...
    TypeError: n must be an integer, got 3.0 (float)
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got a bool ({value!r})")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {_describe(value)}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {number}")
    return int(number)


def check_positive_int(value, name, minimum=1):
    """An integer ≥ ``minimum`` (bools and floats are refused).

    Parameters
    ----------
    value : int or numpy integer
        The argument.
    name : str
        Its name, for messages.
    minimum : int, default 1
        Smallest allowed value.

    Returns
    -------
    int
        The value as a Python int.

    Raises
    ------
    TypeError, ValueError
        As for :func:`check_int`.

    Examples
    --------
    >>> from rpmref.exact.validation import check_positive_int
    >>> check_positive_int(0, "batch")
    Traceback (most recent call last):
    ...
    ValueError: batch must be >= 1, got 0
    """
    return check_int(value, name, minimum=minimum)


def _describe(value):
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def check_real(value, name, minimum=None, maximum=None, inclusive=(True, True), finite=True):
    """A real scalar as a Python float, in the interval given (bool and complex refused).

    Parameters
    ----------
    value : float, int, numpy scalar or 0-d array
        The argument.
    name : str
        Its name, for messages.
    minimum : float, optional
        Lower end of the interval.
    maximum : float, optional
        Upper end of the interval.
    inclusive : tuple of bool, default (True, True)
        Whether each end belongs to the interval.
    finite : bool, default True
        Refuse ±inf (NaN is always refused).

    Returns
    -------
    float
        The value.

    Raises
    ------
    TypeError
        For bools, complex numbers and non-numbers.
    ValueError
        For NaN, ±inf (when ``finite``) or a value outside the interval.

    Examples
    --------
    >>> from rpmref.exact.validation import check_real
    >>> check_real(0.0, "lr", 0, None, inclusive=(False, True))
    Traceback (most recent call last):
    ...
    ValueError: lr must be in (0, inf), got 0.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    with np.errstate(over="ignore"):
        try:
            number = float(value)
        except OverflowError:                     # an int beyond float64, 10**400
            raise _beyond_float64(
                name, f"got an integer of {len(str(abs(int(value))))} digits") from None
    if np.isinf(number) and isinstance(value, np.floating) and np.isfinite(value):
        raise _beyond_float64(name, f"got {np.format_float_scientific(value, precision=4)}")
    if number == 0 and isinstance(value, np.floating) and value != 0:
        raise _below_float64(name, f"got {np.format_float_scientific(value, precision=4)}")
    if np.isnan(number) or (finite and not np.isfinite(number)):
        raise ValueError(f"{name} must be a finite real number, got {number!r}")
    low_ok = minimum is None or (number >= minimum if inclusive[0] else number > minimum)
    high_ok = maximum is None or (number <= maximum if inclusive[1] else number < maximum)
    if not (low_ok and high_ok):
        # an open end at ±inf when ±inf is refused (finite=True)
        interval = (("[" if inclusive[0] and (minimum is not None or not finite) else "(")
                    + ("-inf" if minimum is None else f"{minimum:g}")
                    + ", " + ("inf" if maximum is None else f"{maximum:g}")
                    + ("]" if inclusive[1] and (maximum is not None or not finite) else ")"))
        raise ValueError(f"{name} must be in {interval}, got {number!r}")
    return number


def check_path(value, name, allow_none=False):
    """``value`` as a str file-system path (bytes decoded as the file system encodes names).

    Parameters
    ----------
    value : str, bytes or os.PathLike
        The argument.
    name : str
        Its name, for messages.
    allow_none : bool, default False
        Accept None (returned as it is).

    Returns
    -------
    str or None
        The path.

    Raises
    ------
    TypeError
        For anything else (a number, None unless ``allow_none``).
    ValueError
        If the path holds a NUL character, which no file name can.

    Examples
    --------
    >>> from rpmref.exact.validation import check_path
    >>> check_path(b"run", "out_dir")
    'run'
    >>> check_path(3, "out_dir", allow_none=True)
    Traceback (most recent call last):
    ...
    TypeError: out_dir must be a str, os.PathLike or None; got int
    """
    if value is None and allow_none:
        return None
    try:
        path = os.fsdecode(os.fspath(value))
    except TypeError:
        kinds = "a str, os.PathLike or None" if allow_none else "a str or os.PathLike"
        raise TypeError(f"{name} must be {kinds}; got {type(value).__name__}") from None
    if "\0" in path:
        raise ValueError(f"{name} must not contain a NUL character (no file name can); "
                         f"got {path!r}")
    return path


def check_generator(value, name="rng", optional=False):
    """``value`` if it is a ``numpy.random.Generator`` (or None, when ``optional``).

    Parameters
    ----------
    value : object
        The argument.
    name : str, default "rng"
        Its name, for messages.
    optional : bool, default False
        Whether None is allowed (and returned as it is).

    Returns
    -------
    numpy.random.Generator or None

    Raises
    ------
    TypeError
        For anything else (a seed too: the functions that take one say so).

    Examples
    --------
    >>> from rpmref.exact.validation import check_generator
    >>> check_generator(None, optional=True) is None
    True
    >>> check_generator(0, optional=True)
    Traceback (most recent call last):
    ...
    TypeError: rng must be a numpy.random.Generator or None, got int
    """
    if value is None and optional:
        return None
    if not isinstance(value, np.random.Generator):
        allowed = "numpy.random.Generator or None" if optional else "numpy.random.Generator"
        raise TypeError(f"{name} must be a {allowed}, got {type(value).__name__}")
    return value


def check_float_dtype(dtype, name="dtype", why=None):
    """``dtype`` as a floating-point ``numpy.dtype``.

    Parameters
    ----------
    dtype : dtype-like
        The argument ('float32', np.float64, ...).
    name : str, default "dtype"
        Its name, for messages.
    why : str, optional
        Why an integer dtype will not do, added to the message.

    Returns
    -------
    numpy.dtype
        The dtype.

    Raises
    ------
    TypeError
        If it is not a dtype.
    ValueError
        If it is not floating point.

    Examples
    --------
    >>> from rpmref.exact.validation import check_float_dtype
    >>> check_float_dtype("float32")
    dtype('float32')
    >>> check_float_dtype("int64")
    Traceback (most recent call last):
    ...
    ValueError: dtype must be floating point; got int64
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy dtype such as 'float64'; got {dtype!r}") from None
    if not np.issubdtype(dtype, np.floating):
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be floating point{reason}; got {dtype}")
    return dtype


def check_bool(value, name):
    """``value`` if it is True or False (not 0/1, not a string, not a NumPy bool array).

    Parameters
    ----------
    value : bool
        The argument.
    name : str
        Its name, for messages.

    Returns
    -------
    bool
        ``value``.

    Raises
    ------
    TypeError
        For anything but a bool (``numpy.bool_`` is accepted and returned as bool).

    Examples
    --------
    >>> from rpmref.exact.validation import check_bool
    >>> check_bool(True, "resume")
    True
    >>> check_bool(1, "resume")
    Traceback (most recent call last):
    ...
    TypeError: resume must be True or False, got 1 (int)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {_describe(value)}")


def check_choice(value, name, options):
    """``value`` if it is one of ``options`` (strings compared exactly), else ValueError/TypeError.

    Parameters
    ----------
    value : str
        The argument.
    name : str
        Its name, for messages.
    options : sequence of str
        The allowed values.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    TypeError
        If ``value`` is not a string.
    ValueError
        If it is a string not among ``options``.

    Examples
    --------
    >>> from rpmref.exact.validation import check_choice
    >>> check_choice("rbf", "critic", ("rbf", "cosine"))
    'rbf'
    >>> check_choice("RBF", "critic", ("rbf", "cosine"))
    Traceback (most recent call last):
    ...
    ValueError: critic must be one of 'rbf', 'cosine', got 'RBF'
    """
    if isinstance(value, str) and value in options:
        return value
    listed = ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed}, got {_describe(value)}")
    raise ValueError(f"{name} must be one of {listed}, got {value!r}")


def check_seed(value, name):
    """A seed accepted by ``numpy.random.default_rng`` (None, int ≥ 0, sequence, SeedSequence).

    Parameters
    ----------
    value : None, int, sequence of int or numpy.random.SeedSequence
        The argument.
    name : str
        Its name, for messages.

    Returns
    -------
    object
        ``value`` unchanged.

    Raises
    ------
    TypeError
        For bools, floats, strings and other non-seeds.
    ValueError
        For negative integers or sequences NumPy refuses.

    Examples
    --------
    >>> from rpmref.exact.validation import check_seed
    >>> check_seed(1.5, "seed")
    Traceback (most recent call last):
    ...
    TypeError: seed must be a non-negative integer, a sequence of them or a numpy.random.SeedSequence, got 1.5 (float)
    """
    if value is None or isinstance(value, np.random.SeedSequence):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:   # np.array(5): SeedSequence wants 5
        value = value.item()
    if isinstance(value, (bool, np.bool_, float, str, bytes)):
        raise TypeError(f"{name} must be a non-negative integer, a sequence of them or a "
                        f"numpy.random.SeedSequence, got {_describe(value)}")
    try:
        np.random.SeedSequence(value)
    except (TypeError, ValueError) as exc:
        kind = ValueError if isinstance(value, numbers.Integral) or np.iterable(value) else TypeError
        raise kind(f"{name} must be a non-negative integer, a sequence of them or a "
                   f"numpy.random.SeedSequence, got {_describe(value)}: {exc}") from None
    return value


def as_generator(value, name="rng"):
    """``value`` if it is a ``numpy.random.Generator``, else ``default_rng(value)`` for a seed.

    For functions whose one argument takes either (``make_generator`` is for a pair of
    ``rng=`` and ``seed=`` arguments).

    Parameters
    ----------
    value : numpy.random.Generator, int, sequence of int, SeedSequence or None
        A Generator (used as it is, advanced in place) or a seed.
    name : str, default "rng"
        Its name, for messages.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError, ValueError
        For a value that is neither a Generator nor a valid seed (see ``check_seed``).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import as_generator
    >>> rng = np.random.default_rng(0)
    >>> as_generator(rng) is rng
    True
    >>> bool(as_generator(3).random() == np.random.default_rng(3).random())
    True
    >>> as_generator("x")
    Traceback (most recent call last):
    ...
    TypeError: rng must be a non-negative integer, a sequence of them or a numpy.random.SeedSequence, got 'x' (str)
    """
    if isinstance(value, np.random.Generator):
        return value
    return np.random.default_rng(check_seed(value, name))


def make_generator(rng, seed, rng_name="rng", seed_name="seed"):
    """The Generator to use: ``rng`` if given, else ``default_rng(seed)``; not both.

    Parameters
    ----------
    rng : numpy.random.Generator or None
        A generator.
    seed : None, int, sequence of int or numpy.random.SeedSequence
        A seed, used when ``rng`` is None.
    rng_name : str, default "rng"
        The name of ``rng``, for messages.
    seed_name : str, default "seed"
        The name of ``seed``, for messages.

    Returns
    -------
    numpy.random.Generator
        The generator.

    Raises
    ------
    ValueError
        If both are given, or the seed is invalid.
    TypeError
        If ``rng`` is not a Generator, or the seed is of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import make_generator
    >>> int(make_generator(None, 0).integers(10)) == int(np.random.default_rng(0).integers(10))
    True
    >>> make_generator(np.random.default_rng(0), 0)
    Traceback (most recent call last):
    ...
    ValueError: pass rng or seed, not both
    """
    if rng is not None:
        if seed is not None:
            raise ValueError(f"pass {rng_name} or {seed_name}, not both")
        return check_generator(rng, rng_name)
    return np.random.default_rng(check_seed(seed, seed_name))


def check_index_array(value, name, size, length=None):
    """A 1-D array of integers in 0..size−1 (``length`` entries if given), as int64.

    Floats and bools are refused (TypeError), as for a single index.

    Parameters
    ----------
    value : array_like of int
        The indices.
    name : str
        Its name, for messages.
    size : int
        Indices must be below it.
    length : int, optional
        Required number of entries.

    Returns
    -------
    ndarray of int64, shape (length,)
        The indices.

    Raises
    ------
    TypeError
        For a non-integer dtype (floats, bools).
    ValueError
        If it is not 1-D, has another length, or an entry is outside 0..size−1.

    Examples
    --------
    >>> from rpmref.exact.validation import check_index_array
    >>> check_index_array([2, 0, 1], "labels", 3)
    array([2, 0, 1])
    >>> check_index_array([0, 3], "labels", 3)
    Traceback (most recent call last):
    ...
    ValueError: labels entries must be in 0..2; labels[1] = 3
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or (length is not None and arr.size != length):
        want = f"({length},)" if length is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    bad = np.flatnonzero((arr < 0) | (arr >= size))
    if bad.size:
        raise ValueError(f"{name} entries must be in 0..{size - 1}; {name}[{int(bad[0])}] = "
                         f"{int(arr[bad[0]])}")
    return arr.astype(np.int64)


def check_permutation(value, name, size):
    """A permutation of 0..size−1 (1-D integer array, each index once), as int64.

    Parameters
    ----------
    value : array_like of int
        The permutation.
    name : str
        Its name, for messages.
    size : int
        Its length.

    Returns
    -------
    ndarray of int64, shape (size,)
        The permutation.

    Raises
    ------
    TypeError, ValueError
        As for :func:`check_index_array` (with ``length=size``); ValueError naming
        an index that appears twice.

    Examples
    --------
    >>> from rpmref.exact.validation import check_permutation
    >>> check_permutation([1, 1, 0], "perm", 3)
    Traceback (most recent call last):
    ...
    ValueError: perm must be a permutation of 0..2; 1 appears 2 times
    """
    arr = check_index_array(value, name, size, length=size)
    counts = np.bincount(arr, minlength=size)
    if counts.max() > 1:
        twice = int(np.flatnonzero(counts > 1)[0])
        raise ValueError(f"{name} must be a permutation of 0..{size - 1}; {twice} appears "
                         f"{int(counts[twice])} times")
    return arr


def check_symmetric(value, name, rtol=SYMMETRY_RTOL):
    """A finite real square matrix with max|A − Aᵀ| ≤ rtol · max|A|; returns it (float64).

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    rtol : float, default ``SYMMETRY_RTOL``
        The relative tolerance.

    Returns
    -------
    ndarray or autograd box
        The float64 matrix.

    Raises
    ------
    TypeError
        For non-real input.
    ValueError
        If it is not 2-D, not finite, not square or not symmetric (naming the worst pair).

    Examples
    --------
    >>> from rpmref.exact.validation import check_symmetric
    >>> check_symmetric([[1.0, 2.0], [2.1, 1.0]], "cov")
    Traceback (most recent call last):
    ...
    ValueError: cov must be symmetric (relative tolerance 1e-10); cov[0, 1] = 2.0 but cov[1, 0] = 2.1
    """
    use = Array(ndim=2).validate(value, name, {})
    arr = np.asarray(getval(use))
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square, got shape {arr.shape}")
    asym = np.abs(arr - arr.T)
    scale = float(np.max(np.abs(arr)))
    if asym.max() > rtol * scale:
        i = int(np.argmax(asym))
        r, c = _index(i, arr.shape)
        raise ValueError(
            f"{name} must be symmetric (relative tolerance {rtol:g}); {name}[{r}, {c}] = "
            f"{_number(arr[r, c])} but {name}[{c}, {r}] = {_number(arr[c, r])}")
    return use


def check_positive_definite(value, name, semi=False, _symmetry_checked=False):
    """A symmetric matrix whose eigenvalues are positive (semi=False) or ≥ 0 (semi=True).

    Judged relative to its largest |eigenvalue|, at the rounding level d·eps
    (module docstring), after scaling it to unit diagonal where its diagonal is
    positive (D^-1/2 A D^-1/2 has the inertia of A), so that coordinates of very
    different scales (diag([1, 1e-20])) are not mistaken for a singular matrix.

    Parameters
    ----------
    value : array_like or autograd box
        The argument.
    name : str
        Its name, for messages.
    semi : bool, default False
        Accept positive semi-definite matrices.

    Returns
    -------
    ndarray or autograd box
        The float64 matrix.

    Raises
    ------
    TypeError, ValueError
        As for :func:`check_symmetric`; ValueError if the smallest eigenvalue is
        below the level.

    Examples
    --------
    >>> from rpmref.exact.validation import check_positive_definite
    >>> check_positive_definite([[1.0, 1.0], [1.0, 1.0]], "cov", semi=True)
    array([[1., 1.],
           [1., 1.]])
    >>> check_positive_definite([[1.0, 1.0], [1.0, 1.0]], "cov")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cov must be positive definite; its smallest eigenvalue (scaled to unit diagonal) is ...
    """
    use = value if _symmetry_checked else check_symmetric(value, name)
    arr = np.asarray(getval(use))
    # (A + Aᵀ)/2 without overflow, and without halving entries that are already symmetric:
    # ½x + ½x rounds a subnormal x (½·5e-324 is 0, and a valid variance would look singular)
    sym = np.where(arr == arr.T, arr, 0.5 * arr + 0.5 * arr.T)
    scaled, what_of = _unit_diagonal(sym), ""
    if scaled is not None:   # same inertia (Sylvester), judged free of the coordinates' scales
        sym, what_of = scaled, " (scaled to unit diagonal)"
    eig = np.linalg.eigvalsh(sym)
    scale = float(np.max(np.abs(eig)))
    level = arr.shape[0] * _EPS * scale
    smallest = float(eig[0])
    ok = smallest >= -level if semi else smallest > level
    if not ok:
        what = "positive semi-definite" if semi else "positive definite"
        raise ValueError(f"{name} must be {what}; its smallest eigenvalue{what_of} is "
                         f"{smallest!r} (largest |eigenvalue| {scale!r}, tolerance d·eps·that "
                         f"= {level:.3g})")
    return use


def _unit_diagonal(sym):
    """D^-1/2 A D^-1/2 for a symmetric A with a positive diagonal D (diag([1, 1e-20]) is
    as definite as the identity), or None where the diagonal is not positive or the
    scaling is not finite."""
    diag = np.diag(sym)
    if not np.all(diag > 0):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        root = 1.0 / np.sqrt(diag)
        scaled = (sym * root[:, None]) * root[None, :]
    return scaled if np.all(np.isfinite(scaled)) else None


def check_rpm_inputs(p_xx, enc, enc_prime, prior=None):
    """Validate the data pmf, both encoders and (optionally) the prior together.

    Parameters
    ----------
    p_xx : array_like, shape (n, n')
        The data pmf.
    enc : array_like, shape (n, k)
        P(z | x).
    enc_prime : array_like, shape (n', k')
        P(z' | x').
    prior : array_like, shape (k, k'), optional
        The prior P_θ(z, z').

    Returns
    -------
    tuple
        (p_xx (n, n'), enc (n, k), enc_prime (n', k'), prior (k, k') or None), as float64.

    Raises
    ------
    TypeError, ValueError
        As for :class:`Pmf` and :class:`Conditional`, with the sizes n, n', k, k'
        shared between the arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_rpm_inputs
    >>> check_rpm_inputs(np.eye(2) / 2, np.eye(2), np.eye(3))
    Traceback (most recent call last):
    ...
    ValueError: enc_prime has 3 rows but the data have 2 states; shape (3, 3) (n' = 2 from p_xx)
    """
    bound = {}
    p_xx = Pmf(dims=("n", "n'")).validate(p_xx, "p_xx", bound)
    enc = Conditional(dims=("n", "k")).validate(enc, "enc", bound)
    enc_prime = Conditional(dims=("n'", "k'")).validate(enc_prime, "enc_prime", bound)
    if prior is not None:
        prior = Pmf(dims=("k", "k'")).validate(prior, "prior", bound)
    return p_xx, enc, enc_prime, prior


def check_critic(f, name, shape):
    """A critic table f(z, z'): finite real values of the given shape.

    Parameters
    ----------
    f : array_like, shape (k, k')
        The critic.
    name : str
        Its name, for messages.
    shape : tuple of int
        The required shape (k, k').

    Returns
    -------
    ndarray or autograd box
        The float64 table.

    Raises
    ------
    TypeError
        For non-real input.
    ValueError
        If it is not 2-D, not finite or of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.exact.validation import check_critic
    >>> check_critic(np.zeros((2, 3)), "f", (2, 2))
    Traceback (most recent call last):
    ...
    ValueError: f must have shape (2, 2) ((k, k') = the latent states of p_zz), got (2, 3)
    """
    f = Array(ndim=2).validate(f, name, {})
    return check_shape(f, name, shape, "(k, k') = the latent states of p_zz")


__all__ = [
    "SUM_TOLERANCE", "SYMMETRY_RTOL", "sum_tolerance", "Spec", "Array", "Pmf", "Conditional",
    "SymmetricMatrix", "Integer", "Real", "Options", "GeneratorSpec", "Seed", "Optional",
    "validate_params", "as_real_array", "as_float_array", "check_finite", "check_nonnegative",
    "check_pmf", "check_conditional", "check_shape", "check_int", "check_positive_int",
    "check_real", "check_path", "check_generator", "check_float_dtype", "check_bool", "check_choice", "check_seed", "as_generator", "make_generator", "check_symmetric",
    "check_positive_definite", "check_rpm_inputs", "check_critic", "check_index_array",
    "check_permutation",
]
