"""``rpmref check-infonce MODULE:FUNCTION``: is that InfoNCE loss the exact one? (``rpmref.testing``)

MODULE is either a path to a Python file (anything ending in ``.py``, relative to the
current directory or absolute), imported with its own directory and the current
directory first on ``sys.path`` (so that its imports of neighbouring modules work), or
a dotted module name, imported with the current directory first on ``sys.path`` (as
``python -m`` does). FUNCTION may be dotted
(``Class.staticmethod``, ``loss_object.method``, ``losses.infonce``) to reach an
attribute of an attribute; a method defined on a class needs an instance.

``--temperature T`` passes T by name to a parameter named temperature, tau, temp, t, T
or τ (``rpmref.testing.conformance.temperature_parameter``), else as the last positional
argument; ``--fixed-temperature T`` is for a loss with T fixed inside (it is called
without it). What the checked code prints goes to stderr, so stdout holds the report.

Exit codes: 0 the loss conforms; 1 it does not (the diagnosis is printed) or it raised;
2 usage errors, including a module or function that cannot be found (one line).
"""
import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import traceback
from pathlib import Path

from rpmref.cli.common import bounded_float, bounded_int, nonnegative_int
from rpmref.environment import environment
from rpmref.testing import check_infonce as run_check
from rpmref.testing import adapters
from rpmref.testing.conformance import (MAX_TRIALS, TEMPERATURE_NAMES, TEMPERATURE_RANGE,
                                       temperature_parameter)


class UsageError(Exception):
    """A problem with the command's arguments: printed as one line, exit code 2."""


def _import_file(path_text):
    """The module of a .py file, imported with its own directory and the current directory
    first on ``sys.path`` (as ``python FILE`` and ``python -m`` would find its imports)."""
    path = Path(path_text)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as err:          # a name too long for the file system, say
        raise UsageError(f"{path_text} cannot be looked up: {err.strerror or err}") from None
    if is_dir:
        raise UsageError(f"{path_text} is a directory, not a Python file")
    if not is_file:
        raise UsageError(f"no such file: {path_text}")
    for directory in (os.getcwd(), str(path.resolve().parent)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    name = f"_rpmref_checked_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as err:    # SystemExit, pytest.importorskip's Skipped, ...
        del sys.modules[name]
        raise UsageError(f"importing {path_text} failed: {_describe_error(err)}") from None
    return module


def _describe_error(err):
    """One line for what the user's code raised (any BaseException but Ctrl-C)."""
    if isinstance(err, SystemExit):  # sys.exit() in the user's code must not end the check
        return f"it called sys.exit({err.code!r})"
    return f"{type(err).__name__}: {err}"


_WHAT_MODULE_IS = ("MODULE is a dotted module on sys.path or the current directory, or a "
                   "path to a .py file")


def _not_a_module(name):
    """The UsageError for a MODULE that is no importable name: what it is instead."""
    what = ("a directory" if os.path.isdir(name) else "a file but not a .py file"
            if os.path.exists(name) else "not a module name, nor a .py file")
    return UsageError(f"{name} is {what} ({_WHAT_MODULE_IS})")


def _import_dotted(name):
    if not all(part.isidentifier() for part in name.split(".")):
        # ".", "./losses": say what it is, not importlib's "the 'package' argument is required"
        raise _not_a_module(name)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            if os.path.isfile(name):   # v.npz, found as a file but read as module v
                raise _not_a_module(name) from None
            raise UsageError(f"no module named {err.name!r} ({_WHAT_MODULE_IS})") from None
        raise UsageError(f"importing {name} failed: {err}") from None
    except KeyboardInterrupt:
        raise
    except BaseException as err:    # SystemExit, pytest.importorskip's Skipped, ...
        raise UsageError(f"importing {name} failed: {_describe_error(err)}") from None


def load_function(target):
    """The callable named by ``MODULE:FUNCTION``; UsageError if it cannot be found."""
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"expected MODULE:FUNCTION (e.g. losses.py:infonce), got {target!r}")
    module = (_import_file(module_name) if module_name.endswith(".py")
              else _import_dotted(module_name))
    obj = module
    for part in attribute.split("."):
        parent = obj
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name} has no attribute {attribute!r}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as err:    # a property or a module __getattr__ that raises
            raise UsageError(f"getting {attribute!r} from {module_name} failed: "
                             f"{_describe_error(err)}") from None
    if not callable(obj):
        kind = type(obj).__name__
        raise UsageError(f"{target} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, "
                         "not a function")
    _refuse_unbound(target, parent, obj)
    return obj


def _refuse_unbound(target, parent, obj):
    """UsageError for a method taken from its class, or a class: they need an instance."""
    module_name, _, attribute = target.rpartition(":")
    static = inspect.getattr_static(parent, attribute.rpartition(".")[2], None)
    if (inspect.isclass(parent) and inspect.isfunction(static)
            and next(iter(inspect.signature(static).parameters), None) == "self"):
        owner = attribute.rpartition(".")[0]
        raise UsageError(f"{target} is a method of the class {owner}: it needs an instance "
                         f"(e.g. loss = {owner}() in {module_name}, then check "
                         f"{module_name}:loss.{attribute.rpartition('.')[2]}), or check a "
                         "module-level function")
    if inspect.isclass(obj):
        raise UsageError(f"{target} is a class: check an instance (e.g. loss = {attribute}() "
                         f"in {module_name}, then check {module_name}:loss) or a module-level "
                         "function")


def _descriptors():
    """(stdout's file descriptor, stderr's), or None when either has none (a capture)."""
    try:
        return sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):     # io.UnsupportedOperation, closed
        return None


@contextlib.contextmanager
def _output_to_stderr():
    """While the checked code runs, what it writes to stdout goes to stderr: ``print``
    (``sys.stdout``) and, where stdout is a file descriptor, what reaches that descriptor
    directly (``os.write(1, ...)``, a child process of ``os.system`` or ``subprocess``),
    so that stdout holds only the report."""
    descriptors = _descriptors()
    saved = None
    if descriptors is not None:
        sys.stdout.flush()
        saved = os.dup(descriptors[0])
        os.dup2(descriptors[1], descriptors[0])
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            os.dup2(saved, descriptors[0])
            os.close(saved)


def _finite(value):
    """JSON has no inf or nan: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def run(args):
    fixed = getattr(args, "fixed_temperature", None)
    try:
        if args.kind == "embeddings" and args.critic is None:
            raise UsageError("--kind embeddings needs --critic cosine or --critic dot")
        if args.kind == "scores" and args.critic is not None:
            raise UsageError("--critic is only used with --kind embeddings")
        if args.temperature is not None and fixed is not None:
            raise UsageError("--temperature passes T to FUNCTION and --fixed-temperature says "
                             "it takes none: give one of them")
        if args.framework != "auto" and not adapters.installed(args.framework):
            raise UsageError(f"--framework {args.framework}: {args.framework} is not installed")
        with _output_to_stderr():     # its prints must not mix with --json
            fn = load_function(args.target)
        _check_call_shape(fn, args)
    except UsageError as err:
        print(f"rpmref check-infonce: error: {err}", file=sys.stderr)
        return 2
    try:
        with _output_to_stderr():
            report = run_check(_without_temperature(fn) if fixed is not None else fn,
                               kind=args.kind, critic=args.critic,
                               temperature=fixed if fixed is not None else args.temperature,
                               framework=args.framework, trials=args.trials, seed=args.seed)
    except KeyboardInterrupt:
        raise
    except BaseException as err:    # sys.exit(0) in the loss is no pass, pytest.skip() none
        return _report_failure(args, err)
    if fixed is not None:
        ignored = (f"with --fixed-temperature {fixed:g}, 'temperature-ignored' means FUNCTION "
                   "computes at temperature 1 (its scores are the logits), not at "
                   f"{fixed:g}: is T really fixed inside it?",) \
            if report.diagnosis == "temperature-ignored" else ()
        report = dataclasses.replace(report, notes=(
            f"the temperature {fixed:g} is fixed inside FUNCTION (--fixed-temperature): it "
            "is called without one",) + ignored + tuple(
                note for note in report.notes
                if not note.startswith("the temperature is passed by name")))
    if args.json:
        print(json.dumps(_finite({**report.to_dict(), "environment": environment()}), indent=1))
    else:
        print(report)
    return 0 if report.passed else 1


def _without_temperature(fn):
    """fn with a temperature fixed inside, called by the check as fn(inputs, T), or as
    fn(inputs, tau=T) when fn has a parameter of a temperature's name (its default, as in
    ``def loss(scores, tau=0.2)``, is the fixed one): T dropped either way. Wrapped with
    ``functools.wraps``: the check reads fn's annotations through it, and sees from its
    own parameters that it takes T."""
    @functools.wraps(fn, updated=())
    def fixed_temperature(*arguments, **named_temperature):
        return fn(*arguments) if named_temperature else fn(*arguments[:-1])
    return fixed_temperature


_HOW_T_IS_PASSED = ("--temperature passes T as its last argument, or by name to a parameter "
                    f"named {' or '.join(TEMPERATURE_NAMES)} (any case, leading or trailing _)")


def _check_call_shape(fn, args):
    """UsageError if FUNCTION cannot take the arguments it will be given (a torch.nn.Module
    by its forward's parameters); the hint names --kind when the other kind's inputs fit."""
    try:
        signature = adapters.call_signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: just call it
        return
    names = ["scores"] if args.kind == "scores" else ["z", "z_prime"]
    named = None
    if args.temperature is not None:
        named = temperature_parameter(fn, args.kind)
        if named is None:
            names.append("T")
    shown = ", ".join(names + ([f"{named}=T"] if named else []))
    try:
        signature.bind(*names, **({named: "T"} if named else {}))
    except TypeError as err:
        hint = _fixed_temperature_hint(signature, names, args) or _kind_hint(signature, args) or (
            f"--temperature passes T as {named}=" if named else _HOW_T_IS_PASSED
            if args.temperature is not None else
            "add --temperature T if it takes a temperature, or --fixed-temperature T if "
            "T is fixed inside")
        raise UsageError(f"{args.target} is called as {args.target.rpartition(':')[2]}"
                         f"({shown}) but {err} ({hint})") from None


def _fixed_temperature_hint(signature, names, args):
    """The hint for --temperature given to FUNCTION that takes this --kind's inputs and
    nothing more (a temperature fixed inside, e.g. self.temperature), else None."""
    if args.temperature is None:
        return None
    try:
        signature.bind(*names[:1 if args.kind == "scores" else 2])
    except TypeError:
        return None
    return (f"it takes no temperature ({_HOW_T_IS_PASSED}): if T is fixed inside it, use "
            f"--fixed-temperature {args.temperature:g} instead")


def _kind_hint(signature, args):
    """How to check FUNCTION when its parameters fit the other --kind's inputs (none of
    them a temperature's name: (scores, tau) is no loss of embeddings), else None."""
    other = ["z", "z_prime"] if args.kind == "scores" else ["scores"]

    def fits(arguments):
        try:
            bound = signature.bind(*arguments)
        except TypeError:
            return False
        inputs = list(bound.arguments)[:len(other)]
        return not any(name.strip("_").lower() in TEMPERATURE_NAMES for name in inputs)
    alone, with_t = fits(other), fits(other + ["T"])
    if not (alone or with_t):
        return None
    given = args.temperature is not None or getattr(args, "fixed_temperature", None) is not None
    then = " and --temperature T (or --fixed-temperature T)" if not alone and not given else ""
    if args.kind == "scores":
        return ("it takes two inputs: a loss of two embedding batches (z, z_prime) is "
                f"checked with --kind embeddings --critic cosine or dot{then}")
    return f"it takes one input: a loss of a score matrix is checked with --kind scores{then}"


def _report_failure(args, err):
    """The checked function failed: one line, then the traceback of its own code (none of
    rpmref's frames), exit 1; with --json a JSON object instead."""
    own = err.__cause__ if isinstance(err, adapters.FunctionFailed) and err.__cause__ else err
    verb = "" if isinstance(err, adapters.NotANumberError) else f"raised {type(own).__name__}: "
    message = str(own)
    if isinstance(own, SystemExit):
        verb, message = "", f"called sys.exit({own.code!r}) instead of returning a loss"
    where = next((m for note in getattr(own, "__notes__", ())
                  if (m := re.search(r"on case (\d+) \(inputs of shape (.*)\)", note))), None)
    if where is not None:                  # the case it failed on (check_infonce's note)
        message += f" (on case {where.group(1)}, inputs of shape {where.group(2)})"
    if isinstance(err, adapters.FunctionFailed):
        tried = {name: e for name, e in getattr(err, "errors", {}).items()
                 if name != "numpy" and not isinstance(e, str)}
        same = all(type(e) is type(own) and str(e) == str(own) for e in tried.values())
        message += (f" (on NumPy inputs, and the same on {', '.join(tried)})" if same else
                    f" (on NumPy inputs; {str(err)})")
    if args.json:
        print(json.dumps({"target": args.target, "passed": False,
                          "error": {"type": type(own).__name__, "message": message}}, indent=1))
    print(f"rpmref check-infonce: {args.target} {verb}{message}", file=sys.stderr)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(own.__traceback__)
              if not os.path.abspath(f.filename).startswith(package + os.sep)]
    if frames and not isinstance(err, adapters.NotANumberError):
        print("Traceback of the checked function (most recent call last):", file=sys.stderr)
        print("".join(traceback.format_list(frames)).rstrip(), file=sys.stderr)
    return 1


#: argparse type of --temperature and --fixed-temperature.
_TEMPERATURE = bounded_float(*TEMPERATURE_RANGE, why="the check's cases overflow beyond")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check-infonce", help="check an InfoNCE loss against the exact in-batch loss",
        description="Call MODULE:FUNCTION on seeded batches (varied B, non-symmetric scores, "
        "huge and masked logits) and compare it with the exact in-batch InfoNCE loss "
        "-(1/B) sum_i log softmax_j(L_ij)_i (a loss, in nats, mean over anchors, z -> z') and "
        "its gradient. If it differs, name the mistake (transposed, sum-reduction, "
        "estimate-not-loss, log2, sign, log-mean-exp, negatives-only, positive-twice, "
        "shifted-labels, symmetric, temperature-*, nt-xent, unstable, masked-nan, not-finite, "
        "non-deterministic, half-precision, gradient, not-scalar, unknown). MODULE is a .py file or a dotted "
        "module (its imports are searched first in the .py file's own folder, then in the "
        "current directory; a dotted module's in the current directory). What FUNCTION "
        "prints goes to "
        "stderr. Exit 0 conforming, 1 not, 2 usage error.")
    p.add_argument("target", metavar="MODULE:FUNCTION",
                   help="e.g. losses.py:infonce or mypackage.losses:infonce")
    p.add_argument("--kind", choices=("scores", "embeddings"), default="scores",
                   help="FUNCTION(scores[, T]) with scores (B, B), or FUNCTION(z, z_prime[, T]) "
                   "with embeddings (B, D) (default: %(default)s)")
    p.add_argument("--critic", choices=("cosine", "dot"),
                   help="the critic of --kind embeddings, which needs one: cosine (SimCLR) or "
                   "dot (z^T z')")
    p.add_argument("--framework", choices=("auto",) + adapters.FRAMEWORKS, default="auto",
                   help="hand over numpy arrays, torch tensors or jax arrays (default: "
                   "%(default)s, decided from what FUNCTION accepts and returns)")
    p.add_argument("--temperature", type=_TEMPERATURE, metavar="T",
                   help="pass T to FUNCTION: by name to a parameter named temperature, tau, "
                   "temp, t or T, else as its last argument; the logits are scores / T "
                   "(default: no T passed, the logits are the scores)")
    p.add_argument("--fixed-temperature", type=_TEMPERATURE, metavar="T",
                   help="FUNCTION has the temperature T fixed inside (e.g. self.temperature): "
                   "it is called without one, and the logits are scores / T")
    p.add_argument("--trials", type=bounded_int(1, MAX_TRIALS), default=50,
                   help=f"number of batches to try, at most {MAX_TRIALS} (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
