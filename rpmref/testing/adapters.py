"""Calling a user's function in NumPy, PyTorch or JAX, with its value and gradient.

The only place in rpmref that imports torch or jax, and only when asked to: each
adapter converts float64 NumPy inputs to the framework's arrays (torch.float64
tensors; jax arrays with 64-bit mode enabled for the call), calls the function,
and brings back the value as a float, the dtype it was computed in, and the
gradient with respect to every input array:

* torch: ``torch.autograd.grad``; an output not attached to the inputs' graph is a
  broken gradient (a loss you cannot train with). The function gets clones of leaf
  tensors (real logits are not leaves), so in-place operations on its inputs work;
* jax: ``jax.grad``; a function ``jax.grad`` cannot trace has a broken gradient;
* numpy: autograd, for functions written with ``autograd.numpy``; a plain NumPy
  function simply has no gradient to check.

Results below single precision (float16, bfloat16, the float8 types; torch tensors
or jax arrays) are brought back exactly, as float64 numbers,
with the dtype they were computed in.
"""
import functools
import importlib
import importlib.util
import inspect
import re
import sys
import typing
import warnings
from typing import NamedTuple

import numpy as np

FRAMEWORKS = ("numpy", "torch", "jax")
#: Machine epsilons of the half-precision dtypes (NumPy has no bfloat16); the narrower
#: formats are named by their bits (``half_precision_eps``).
HALF_PRECISION_EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
#: float8_e4m3fn, float8_e5m2fnuz, float4_e2m1fn, ...: exponent bits E, mantissa bits M
_NARROW_FLOAT = re.compile(r"float[468]_e(\d+)m(\d+)[a-z0-9]*")


def half_precision_eps(dtype):
    """The machine epsilon of a floating dtype below single precision, else None.

    float16 and bfloat16 (``HALF_PRECISION_EPS``), and the 8-, 6- and 4-bit formats of
    torch and ml_dtypes (jax) by the mantissa bits M in their names: 2^-M
    (float8_e4m3fn: 0.125; float8_e8m0fnu, exponent only: 1).

    Parameters
    ----------
    dtype : numpy.dtype, str or a dtype-like with a ``name``
        The dtype (or its name).

    Returns
    -------
    float or None

    Examples
    --------
    >>> from rpmref.testing.adapters import half_precision_eps
    >>> half_precision_eps("bfloat16"), half_precision_eps("float8_e5m2"), half_precision_eps("float32")
    (0.0078125, 0.25, None)
    """
    name = dtype_name(dtype)
    if name in HALF_PRECISION_EPS:
        return HALF_PRECISION_EPS[name]
    match = _NARROW_FLOAT.fullmatch(name)
    return 2.0 ** -int(match.group(2)) if match else None


class NotScalarError(ValueError):
    """The function returned an array with more than one element (a ValueError).

    Parameters
    ----------
    shape : tuple of int
        The shape returned (kept as ``.shape``).

    Examples
    --------
    >>> from rpmref.testing.adapters import NotScalarError
    >>> error = NotScalarError((3,))
    >>> str(error), error.shape
    ('returned an array of shape (3,), not a scalar', (3,))
    """

    def __init__(self, shape, message=None):
        super().__init__(message or f"returned an array of shape {tuple(shape)}, not a scalar")
        self.shape = tuple(shape)


class NotANumberError(TypeError):
    """The function returned something that is not a number (a string, None, an object).

    Parameters
    ----------
    value : object
        What it returned (shown, shortened, in the message).

    Examples
    --------
    >>> from rpmref.testing.adapters import NotANumberError
    >>> str(NotANumberError("hello"))
    "returned a str ('hello'), not a number"
    """

    def __init__(self, value):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        kind = type(value).__name__
        super().__init__(f"returned {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} "
                         f"({shown}), not a number")


class FunctionFailed(TypeError):
    """The function raised on every framework tried; ``__cause__`` is what it raised on
    NumPy inputs (its own error, with its own traceback), ``errors`` maps each framework
    to its error (or to "not installed").

    Parameters
    ----------
    message : str
        Each framework's error, in one line.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import FunctionFailed, detect
    >>> def broken(scores):
    ...     raise ArithmeticError("no loss today")
    >>> try:
    ...     detect(broken, [np.eye(2)])
    ... except FunctionFailed as failure:        # torch or jax installed: each was tried
    ...     print(type(failure.__cause__).__name__)
    ... except ArithmeticError as error:         # NumPy only: the function's own error
    ...     print(type(error).__name__)
    ArithmeticError
    """


class _NamedDtype(str):
    """A floating dtype NumPy has no dtype for (bfloat16): a str of its name, with the
    ``name``, ``kind`` and ``itemsize`` of a numpy.dtype (``numpy.finfo`` does not take it)."""
    kind = "f"

    def __new__(cls, name, itemsize):
        dtype = super().__new__(cls, name)
        dtype.itemsize = itemsize
        return dtype

    @property
    def name(self):
        return str(self)


class Outcome(NamedTuple):
    """The result of :func:`evaluate`.

    Parameters
    ----------
    value : float
        The function's value.
    dtype : numpy.dtype or str
        The dtype the value was computed in; for a dtype NumPy lacks (bfloat16) a str
        of its name that also has the ``name``, ``kind`` and ``itemsize`` of a dtype.
    gradients : tuple of ndarray or None
        One array per input, or None.
    gradient_status : {"ok", "unavailable", "broken"}
        "unavailable": nothing to check; "broken": the framework should
        differentiate it and cannot.
    reason : str or None
        Why the status is not "ok".

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import Outcome
    >>> Outcome(1.0, np.dtype("float64"), None, "unavailable", "not requested").gradient_status
    'unavailable'
    """
    value: float
    dtype: np.dtype
    gradients: tuple | None
    gradient_status: str
    reason: str | None


def under_numpy_defaults(check):
    """``check`` run under NumPy's default handling of floating-point errors (underflow
    ignored, the others warned), whatever the caller or the checked module set: the
    check's own arithmetic (the exact loss of masked logits underflows, harmlessly) is
    not the checked function's, and a module's ``np.seterr(all="raise")`` made it a
    FloatingPointError reported as the loss raising.

    Parameters
    ----------
    check : callable
        ``check_infonce`` or ``check_mi_estimator``.

    Returns
    -------
    callable
        ``check`` with the same signature and docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import under_numpy_defaults
    >>> with np.errstate(all="raise"):
    ...     float(under_numpy_defaults(lambda: np.exp(-1000.0))())
    0.0
    """
    @functools.wraps(check)
    def checked(*arguments, **options):
        with np.errstate(divide="warn", over="warn", under="ignore", invalid="warn"):
            return check(*arguments, **options)
    return checked


def installed(framework):
    """Whether ``framework`` can be imported (without importing it).

    Parameters
    ----------
    framework : {"numpy", "torch", "jax"}
        The framework.

    Returns
    -------
    bool
        True for numpy, and for torch / jax when they are installed.

    Examples
    --------
    >>> from rpmref.testing.adapters import installed
    >>> installed("numpy")
    True
    """
    return framework == "numpy" or importlib.util.find_spec(framework) is not None


def require(framework):
    """Import and return the framework's module, or raise ImportError saying how to get it.

    Parameters
    ----------
    framework : {"numpy", "torch", "jax"}
        The framework.

    Returns
    -------
    module
        ``numpy``, ``torch`` or ``jax``.

    Raises
    ------
    ImportError
        If it is not installed (with the pip command).

    Examples
    --------
    >>> from rpmref.testing.adapters import require
    >>> require("numpy").__name__
    'numpy'
    """
    if framework == "numpy":
        return np
    try:
        return importlib.import_module(framework)
    except ImportError as err:
        hint = {"torch": "pip install torch", "jax": "pip install jax"}[framework]
        raise ImportError(f"framework={framework!r} needs {framework}, which is not installed "
                          f"({hint})") from err


def call_signature(fn, follow_wrapped=True):
    """The signature of what calling ``fn`` runs: ``inspect.signature(fn)``, except for an
    object whose ``__call__`` only passes ``*args, **kwargs`` on to its ``forward`` method
    (a ``torch.nn.Module``, a Keras-style layer), which is described by ``forward``'s
    signature (without self).

    Parameters
    ----------
    fn : callable
        The user's function, an instance with ``forward``, or a ``functools.wraps``
        wrapper of either.
    follow_wrapped : bool, default True
        Describe a ``functools.wraps`` wrapper by what it wraps (its annotations), as
        ``inspect.signature`` does; False: by its own parameters (what it takes).

    Returns
    -------
    inspect.Signature

    Raises
    ------
    TypeError, ValueError
        As ``inspect.signature`` does, for a callable without a signature.

    Examples
    --------
    >>> from rpmref.testing.adapters import call_signature
    >>> class Loss:
    ...     def __call__(self, *args, **kwargs):
    ...         return self.forward(*args, **kwargs)
    ...     def forward(self, z, z_prime, temperature=0.1):
    ...         pass
    >>> str(call_signature(Loss()))
    '(z, z_prime, temperature=0.1)'
    """
    signature = inspect.signature(fn, follow_wrapped=follow_wrapped)
    if not all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values()):
        return signature
    forward = getattr(inspect.unwrap(fn) if follow_wrapped else fn, "forward", None)
    if not inspect.ismethod(forward):
        return signature
    try:
        return inspect.signature(forward)
    except (TypeError, ValueError):
        return signature


def framework_of_value(value):
    """"torch" or "jax" if ``value`` is one of their arrays, else None (no imports)."""
    top = type(value).__module__.split(".")[0]
    return {"torch": "torch", "jax": "jax", "jaxlib": "jax"}.get(top)


def framework_of_annotations(fn):
    """"torch" or "jax" if ``fn``'s parameter annotations name one of their types and that
    framework is installed, else None (an annotation cannot make an absent framework work).

    An annotation names a framework when it is one of its types (by the module it comes
    from: ``torch``, ``jax`` or ``jaxlib``), a typing construct over one (``Optional``,
    ``Union``, ``list[...]``, the first argument of ``Annotated``), jaxtyping's
    ``Float[T, "..."]`` of such a type T (jaxtyping itself names no framework:
    ``Float[np.ndarray, "b b"]`` is NumPy), or a string annotation with the word
    ``torch``, ``jax``, ``jaxlib`` or ``jnp`` in it.

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import framework_of_annotations
    >>> def loss(scores: np.ndarray) -> float:
    ...     pass
    >>> framework_of_annotations(loss) is None
    True
    """
    try:
        parameters = call_signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    named = set()
    for parameter in parameters:
        if parameter.annotation is not parameter.empty:
            named |= _frameworks_named_by(parameter.annotation)
    return next((f for f in ("torch", "jax") if f in named and installed(f)), None)


#: Top-level modules whose types make an annotation name a framework.
_FRAMEWORK_MODULES = {"torch": "torch", "jax": "jax", "jaxlib": "jax"}


def _frameworks_named_by(note, depth=0):
    """The set of frameworks ("torch", "jax") an annotation names (see
    ``framework_of_annotations``)."""
    if depth > 8:                                    # a self-referencing construct
        return set()
    if isinstance(note, str):
        words = re.findall(r"\b(torch|jax|jaxlib|jnp)\b", note)
        return {"torch" if word == "torch" else "jax" for word in words}
    module = getattr(note, "__module__", None)
    top = module.split(".")[0] if isinstance(module, str) else ""
    named = {_FRAMEWORK_MODULES[top]} if top in _FRAMEWORK_MODULES else set()
    array_type = getattr(note, "array_type", None)   # jaxtyping's Float[T, "..."]
    if array_type is not None and array_type is not note:
        named |= _frameworks_named_by(array_type, depth + 1)
    arguments = typing.get_args(note)
    if typing.get_origin(note) is typing.Annotated:
        arguments = arguments[:1]                    # the type, not its metadata
    for argument in arguments:
        named |= _frameworks_named_by(argument, depth + 1)
    return named


def dtype_name(dtype):
    """"float16", "bfloat16", "float32", ... of a NumPy dtype or a dtype's name (as
    :func:`scalar` returns it: a str for bfloat16).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import dtype_name
    >>> dtype_name(np.dtype("float32")), dtype_name("bfloat16"), dtype_name("torch.float16")
    ('float32', 'bfloat16', 'float16')
    """
    return str(getattr(dtype, "name", None) or dtype).rpartition(".")[2]


def scalar(value):
    """(float, dtype) of a scalar result of any framework; NotScalarError otherwise.

    Parameters
    ----------
    value : object
        A number, a 1-element array, a torch tensor or an autograd box.

    Returns
    -------
    tuple
        (the value as a float, the floating dtype it was computed in; float64 for integers).
        A float16, bfloat16 or float8 value (torch or jax) is exact; its dtype is
        ``float16``, or a str such as ``"bfloat16"`` (NumPy has neither bfloat16 nor
        float8).

    Raises
    ------
    NotScalarError
        If it has more than one element, or is a tuple (a ``(loss, logits)`` pair, or
        ``(loss,)``, which NumPy alone would have read as a number).
    NotANumberError
        If it is not a number (a string, None, an object).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import scalar
    >>> scalar(np.float32(2.5))
    (2.5, dtype('float32'))
    """
    if isinstance(value, tuple):      # (loss,) too: no framework differentiates a tuple
        items = f"{len(value)} item" + ("" if len(value) == 1 else "s")
        raise NotScalarError((len(value),), f"returned a tuple of {items}, not a scalar "
                             "(a (loss, ...) pair? return the loss alone)")
    returned, dtype = value, None
    if hasattr(value, "detach"):                       # torch
        try:
            value, dtype = _torch_to_numpy(value)
        except Exception:
            raise NotANumberError(returned) from None
    value = getattr(value, "_value", value)            # an autograd box
    try:
        array = np.asarray(value)
    except Exception:
        raise NotANumberError(returned) from None
    if (array.dtype.kind in "Vf" and array.dtype != np.float16
            and half_precision_eps(array.dtype) is not None):
        # jax's bfloat16 and 8/6/4-bit floats (ml_dtypes, NumPy kind "V" or "f"): exact as
        # float64, with their own dtype
        dtype = _NamedDtype(array.dtype.name, array.dtype.itemsize)
        array = array.astype(np.float64)
    if array.dtype.kind not in "iuf":               # a bool is a verdict, not a loss
        raise NotANumberError(returned)
    if array.size != 1:
        raise NotScalarError(array.shape)
    if dtype is None:
        dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)
    return float(array.reshape(())), dtype


def _torch_to_numpy(tensor):
    """(ndarray, its dtype as computed or None) of a torch tensor: float16 and bfloat16,
    which NumPy cannot take (bfloat16) or would keep in half precision, come back as exact
    float64 values with their own dtype."""
    tensor = tensor.detach().cpu()
    if tensor.is_complex():
        tensor = tensor.resolve_conj()
    tensor = tensor.resolve_neg()
    if not tensor.is_floating_point() or tensor.element_size() >= 4:
        return tensor.numpy(), None
    name = str(tensor.dtype).removeprefix("torch.")
    dtype = (np.dtype(np.float16) if name == "float16" else
             _NamedDtype(name, tensor.element_size()))  # bfloat16, the float8 types
    return tensor.double().numpy(), dtype


def _numpy(fn, inputs, extra, gradients):
    out = fn(*(a.copy() for a in inputs), *extra)
    value, dtype = scalar(out)
    if not gradients:
        return Outcome(value, dtype, None, "unavailable", "not requested")
    returned = framework_of_value(out)
    if returned is not None:    # e.g. torch.from_numpy(scores): no path back to the inputs
        return Outcome(value, dtype, None, "unavailable",
                       f"it takes NumPy arrays and returns a {returned} array made from them, "
                       "which has no gradient with respect to them")
    import autograd
    from autograd.tracer import isbox

    traced = {}

    def on_tuple(arrays):
        out = fn(*arrays, *extra)
        traced["box"] = isbox(out)
        return out
    try:
        with warnings.catch_warnings():     # "Output seems independent of input": handled below
            warnings.simplefilter("ignore", UserWarning)
            vjp, _ = autograd.make_vjp(on_tuple)(tuple(a.copy() for a in inputs))
            grads = vjp(1.0) if traced["box"] else None
    except Exception as err:    # a plain NumPy function: autograd cannot trace it
        return Outcome(value, dtype, None, "unavailable",
                       f"not differentiable by autograd ({type(err).__name__})")
    if grads is None:
        return Outcome(value, dtype, None, "unavailable",
                       "not written with autograd.numpy (the output does not depend on "
                       "traced inputs)")
    return Outcome(value, dtype, tuple(np.asarray(g, dtype=float) for g in grads), "ok", None)


def _torch(fn, inputs, extra, gradients, track=None):
    """``track`` (default: ``gradients``): hand over tensors that require grad, as when
    gradients are taken, even if they are not (``detect`` tries the call that will run)."""
    torch = require("torch")
    track = gradients if track is None else track
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=track) for a in inputs]
    # clones, not the leaves: in-place operations (scores /= t) work on them as on real
    # logits, and the gradient still reaches the leaves
    tensors = [leaf.clone() for leaf in leaves] if track else leaves
    out = fn(*tensors, *extra)
    value, dtype = scalar(out)
    if not gradients:
        return Outcome(value, dtype, None, "unavailable", "not requested")
    if not torch.is_tensor(out):
        return Outcome(value, dtype, None, "broken",
                       f"the loss is a {type(out).__name__}, not a tensor: no gradient reaches "
                       "its inputs (.item() or float() on the loss?)")
    if not out.requires_grad:
        return Outcome(value, dtype, None, "broken",
                       "the loss is detached from its inputs (no grad_fn)")
    try:
        grads = torch.autograd.grad(out.reshape(()), leaves, allow_unused=True)
    except Exception as err:    # a backward that raises: a loss torch cannot train
        return Outcome(value, dtype, None, "broken",
                       f"torch.autograd.grad cannot differentiate it ({type(err).__name__}: "
                       f"{err})".splitlines()[0])
    if all(g is None for g in grads):   # no path in the graph (not a gradient that is zero)
        return Outcome(value, dtype, None, "broken",
                       "no gradient reaches its inputs: the loss is a tensor that requires "
                       "grad but is not computed from them (a new tensor made from its value, "
                       "torch.tensor(loss.item(), requires_grad=True)?)")
    grads = tuple(np.zeros(a.shape) if g is None else
                  np.asarray(_torch_to_numpy(g)[0], dtype=float) for a, g in zip(inputs, grads))
    return Outcome(value, dtype, grads, "ok", None)


def _enable_x64(jax):
    manager = getattr(jax, "enable_x64", None)
    if manager is None:                                # jax < 0.4.3x
        from jax.experimental import enable_x64 as manager
    return manager(True)


#: (fn, extra, inputs, gradients) -> fn jitted (with its gradient), or None once jit failed.
#: Emptied by ``forget_traces`` when a check starts.
_JAX_JIT = {}


def forget_traces():
    """Drop the jitted functions kept from earlier calls (``check_infonce`` does this
    when it starts): a trace holds the values of the globals and closures fn read when
    it was traced, so a check of a function whose module-level setting has changed
    since the last check must trace it again.

    Returns
    -------
    None

    Examples
    --------
    >>> from rpmref.testing.adapters import forget_traces
    >>> forget_traces()
    """
    _JAX_JIT.clear()


def _jax_jitted(jax, fn, extra, n_inputs, gradients):
    """(cache key, ``jax.jit`` of fn or of its value and gradient, or None if it cannot be
    jitted). Cached: eager JAX compiles every primitive for every new input shape, while one
    jit per shape is several times cheaper."""
    key = (fn, extra, n_inputs, gradients)
    try:
        if key in _JAX_JIT:
            return key, _JAX_JIT[key]
    except TypeError:                                  # an unhashable callable: no cache
        key = None

    def bound(*arrays):
        return fn(*arrays, *extra)
    jitted = jax.jit(jax.value_and_grad(bound, argnums=tuple(range(n_inputs))) if gradients
                     else bound)
    if key is not None:
        if len(_JAX_JIT) >= 64:
            _JAX_JIT.clear()
        _JAX_JIT[key] = jitted
    return key, jitted


def _jax(fn, inputs, extra, gradients):
    """jit first; a function jit cannot trace (Python control flow on values, NumPy
    conversions) is called eagerly, and differentiated eagerly with jax.grad."""
    jax = require("jax")
    import jax.numpy as jnp
    with _enable_x64(jax):
        arrays = [jnp.asarray(a) for a in inputs]
        key, jitted = _jax_jitted(jax, fn, extra, len(arrays), gradients)
        result = None
        if jitted is not None:
            try:
                result = jitted(*arrays)
            except Exception:                          # retried eagerly below
                if key is not None:
                    _JAX_JIT[key] = None
        if result is not None:
            value, dtype = scalar(result[0] if gradients else result)
            grads = tuple(np.asarray(g, dtype=float) for g in result[1]) if gradients else None
            return Outcome(value, dtype, grads, "ok" if gradients else "unavailable",
                           None if gradients else "not requested")
        value, dtype = scalar(fn(*arrays, *extra))     # the function's own errors propagate
        if not gradients:
            return Outcome(value, dtype, None, "unavailable", "not requested")
        try:
            grads = jax.grad(lambda *a: fn(*a, *extra), argnums=tuple(range(len(arrays))))(
                *arrays)
        except Exception as err:
            return Outcome(value, dtype, None, "broken",
                           f"jax.grad cannot differentiate it ({type(err).__name__}: {err})"
                           .splitlines()[0])
    return Outcome(value, dtype, tuple(np.asarray(g, dtype=float) for g in grads), "ok", None)


_ADAPTERS = {"numpy": _numpy, "torch": _torch, "jax": _jax}


def evaluate(fn, framework, inputs, extra=(), gradients=True):
    """Call ``fn(*inputs, *extra)`` in ``framework``; returns an ``Outcome``.

    Exceptions raised by ``fn`` propagate.

    Parameters
    ----------
    fn : callable
        The user's function.
    framework : {"numpy", "torch", "jax"}
        The framework to call it in.
    inputs : sequence of ndarray
        float64 NumPy arrays (converted to the framework's arrays).
    extra : tuple, default ()
        Further arguments passed as they are (the temperature).
    gradients : bool, default True
        Also compute the gradient with respect to every input.

    Returns
    -------
    Outcome
        The value, its dtype and the gradients.

    Raises
    ------
    NotScalarError
        If ``fn`` does not return a scalar.
    ImportError
        If the framework is not installed.

    Examples
    --------
    >>> import autograd.numpy as anp
    >>> import numpy as np
    >>> from rpmref.testing.adapters import evaluate
    >>> outcome = evaluate(lambda s: anp.sum(s ** 2), "numpy", [np.ones((2, 2))])
    >>> outcome.value, outcome.gradient_status, outcome.gradients[0].tolist()
    (4.0, 'ok', [[2.0, 2.0], [2.0, 2.0]])
    """
    return _ADAPTERS[framework](fn, inputs, extra, gradients)


def detect(fn, inputs, extra=(), gradients=True):
    """Choose the framework for ``fn`` ("auto"): returns (framework, how it was chosen).

    In order: parameter annotations naming torch or jax (when installed); a call with
    NumPy arrays that returns a torch tensor or jax array (that framework, if it also
    takes its own arrays; else numpy), or a number (numpy, or torch when the call ran
    torch functions and torch tensors work too: a torch loss converting its input);
    if that call raises, torch, then jax (those installed): the first that works, else
    the first that takes the inputs but returns no scalar (that result is reported).

    Parameters
    ----------
    fn : callable
        The user's function.
    inputs : sequence of ndarray
        Example inputs.
    extra : tuple, default ()
        Further arguments.
    gradients : bool, default True
        Whether the calls that follow take gradients: torch is tried with tensors that
        require grad if so (as ``check_infonce`` hands them over), plain tensors if not
        (as ``check_mi_estimator`` does), so that ``z.numpy()`` works where it will.

    Returns
    -------
    tuple of str
        (framework, the reason).

    Raises
    ------
    Exception
        What the function raised on NumPy inputs, as it is, when no other framework is
        installed; otherwise FunctionFailed (a TypeError) naming each framework's error,
        with the NumPy one as its ``__cause__``; a TypeError saying so when ``fn`` is a
        method taken from its class (it needs an instance).

    Examples
    --------
    >>> import numpy as np
    >>> from rpmref.testing.adapters import detect
    >>> detect(lambda s: float(s.sum()), [np.ones((2, 2))])
    ('numpy', 'it accepts NumPy arrays')
    """
    hinted = framework_of_annotations(fn)
    if hinted is not None:
        return hinted, "its parameter annotations"
    errors = {}
    try:
        out, used_torch = _numpy_call_watching_torch(fn, inputs, extra)
    except Exception as err:
        errors["numpy"] = err
    else:
        returned = framework_of_value(out)
        if returned is not None:
            err = _try(fn, returned, inputs, extra, gradients)
            if err is None or isinstance(err, (NotScalarError, NotANumberError)):
                return returned, f"it returns a {returned} array"
            return "numpy", (f"it returns a {returned} array but takes NumPy arrays only "
                             f"({returned} inputs: {type(err).__name__})")
        if used_torch and _try(fn, "torch", inputs, extra, gradients) is None:
            return "torch", "it computes in torch, and takes torch tensors"
        return "numpy", "it accepts NumPy arrays"
    accepted = None     # a framework whose arrays it takes, returning no scalar
    for framework in ("torch", "jax"):
        if not installed(framework):
            errors[framework] = "not installed"
            continue
        err = _try(fn, framework, inputs, extra, gradients)
        if err is None:
            return framework, f"it fails on NumPy arrays ({type(errors['numpy']).__name__})"
        errors[framework] = err
        if isinstance(err, (NotScalarError, NotANumberError)) and accepted is None:
            accepted = framework
    if accepted is not None:
        return accepted, f"it fails on NumPy arrays ({type(errors['numpy']).__name__})"
    method = _unbound_method(fn)
    if method is not None:
        raise TypeError(method) from errors["numpy"]
    if all(isinstance(err, str) for name, err in errors.items() if name != "numpy"):
        raise errors["numpy"]   # NumPy was the only try: the function's own error, as it is
    described = "; ".join(f"{name}: {_describe(err)}" for name, err in errors.items())
    failure = FunctionFailed(f"fn could not be called with NumPy, torch or jax inputs "
                             f"({described})")
    failure.errors = errors
    raise failure from errors["numpy"]


def _try(fn, framework, inputs, extra, gradients=True):
    """None if ``fn`` gives a scalar on ``framework``'s arrays (torch's requiring grad
    when ``gradients``, as in a gradient check), else what it raised."""
    try:
        if framework == "torch":
            _torch(fn, inputs, extra, gradients=False, track=gradients)
        else:
            evaluate(fn, framework, inputs, extra, gradients=False)
    except Exception as err:
        return err
    return None


def _numpy_call_watching_torch(fn, inputs, extra):
    """(fn's result on copies of the NumPy inputs, whether torch functions ran in the call).

    Only a call made once torch is imported can be watched (a torch function mode): a
    function that imports torch itself is called a second time, watched."""
    def call():
        return fn(*(a.copy() for a in inputs), *extra)
    torch = sys.modules.get("torch")
    if torch is None:
        out = call()
        torch = sys.modules.get("torch")
        if torch is None:
            return out, False
    from torch.overrides import TorchFunctionMode

    class Watch(TorchFunctionMode):
        used = False

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.used = True
            return func(*args, **(kwargs or {}))
    with Watch() as watch:
        out = call()
    return out, watch.used


def _unbound_method(fn):
    """A message if ``fn`` is a method taken from its class (``Loss.forward``), else None."""
    if not inspect.isfunction(fn):
        return None
    owner, _, name = fn.__qualname__.rpartition(".")
    try:
        first = next(iter(inspect.signature(fn).parameters), None)
    except (TypeError, ValueError):
        return None
    if not owner or owner.endswith("<locals>") or first != "self":
        return None
    cls = owner.rpartition(".")[2]
    return (f"{fn.__qualname__} is a method: it needs an instance, e.g. {cls}(...).{name} "
            "(taken from the class, its first input became self)")


def _describe(err):
    if isinstance(err, str):
        return err
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


__all__ = ["FRAMEWORKS", "FunctionFailed", "NotANumberError", "NotScalarError", "Outcome",
           "call_signature", "installed", "require", "detect", "evaluate", "scalar",
           "half_precision_eps", "forget_traces"]
