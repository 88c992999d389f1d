"""The bouncing-balls experiment (Sec. 5, Appendix D).

``video`` (the Appendix D motion) and ``render`` (exact disc coverage) make the
data; ``layers`` (the CNN encoder), ``critics`` (bilinear, RBF, cosine and the
in-batch InfoNCE loss), ``optim`` and ``checkpoint`` serve ``trainer`` (the
training loop); ``readout`` and ``tracking`` score an encoder; ``compare``
reproduces the paper's comparison of critics and ``figures`` draws Fig. 1.
"""
from rpmref.balls.compare import run_compare, run_sweep
from rpmref.balls.readout import fit_linear_readout, score_readout
from rpmref.balls.trainer import TrainConfig, TrainResult, encode, initial_params, train
from rpmref.balls.video import BallsConfig, load_video, make_video, save_video, simulate

__all__ = [
    "BallsConfig", "make_video", "save_video", "load_video", "simulate",
    "TrainConfig", "TrainResult", "initial_params", "train", "encode",
    "fit_linear_readout", "score_readout", "run_compare", "run_sweep",
]
