"""The bouncing-balls experiment (Sec. 5, Appendix D).

``video`` (the Appendix D motion) and ``render`` (exact disc coverage) make the
data; ``layers`` (the CNN encoder), ``critics`` (bilinear, RBF, cosine and the
in-batch InfoNCE loss), ``optim`` and ``checkpoint`` serve ``trainer`` (the
training loop); ``readout`` and ``tracking`` score an encoder; ``compare``
reproduces the paper's comparison of critics and ``figures`` draws Fig. 1.
"""
from rpmref._lazy import lazy_exports

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

__all__ = [
    "BallsConfig", "make_video", "save_video", "load_video", "simulate",
    "TrainConfig", "TrainResult", "initial_params", "train", "encode",
    "fit_linear_readout", "score_readout", "run_compare", "run_sweep",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
