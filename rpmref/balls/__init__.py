"""The bouncing-balls experiment (Sec. 5, Appendix D).

``video`` (the Appendix D motion) and ``render`` (exact disc coverage) make the
data; ``layers`` (the CNN encoder), ``critics`` (bilinear, RBF, cosine and the
in-batch InfoNCE loss), ``optim`` and ``checkpoint`` serve ``trainer`` (the
training loop); ``readout`` and ``tracking`` score an encoder; ``compare``
reproduces the paper's comparison of critics and ``figures`` draws Fig. 1.
"""
import importlib
import importlib.util

#: the names this package exports, by the module that defines them; imported on first use
#: (PEP 562), so that ``rpmref.balls.rundir`` and the command line's first imports do
#: not load NumPy and autograd before ``rpmref`` can handle a Ctrl-C
_EXPORTS = {
    "rpmref.balls.video": ("BallsConfig", "make_video", "save_video", "load_video",
                           "simulate"),
    "rpmref.balls.trainer": ("TrainConfig", "TrainResult", "initial_params", "train",
                             "encode"),
    "rpmref.balls.readout": ("fit_linear_readout", "score_readout"),
    "rpmref.balls.compare": ("run_compare", "run_sweep"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "BallsConfig", "make_video", "save_video", "load_video", "simulate",
    "TrainConfig", "TrainResult", "initial_params", "train", "encode",
    "fit_linear_readout", "score_readout", "run_compare", "run_sweep",
]


def __getattr__(name):
    """An exported name, imported from its module on first use; or a submodule, imported
    (as the eager imports used to make every one an attribute of the package)."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
