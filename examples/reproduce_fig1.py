"""Reproduce Fig. 1 of Aitchison & Ganev (Sec. 5, Appendix D) through the Python API.

Read next to the paper:

1. Appendix D: one continuous video of three balls bouncing in a box; every
   ball moves one diameter per frame. We also make a held-out video (another
   seed) on which every number below is scored.
2. Sec. 5: an encoder (two batch-normalised conv layers, 3 sigmoid maps, their
   centres of mass z ∈ R⁶) is trained with in-batch InfoNCE (Eq. 6), pairs of
   consecutive frames as positives. The critic f is the prior (Eq. 21):
   bilinear f = zᵀWz' (Eq. 8, "the usual InfoNCE"), Gaussian RBF
   f = −‖z − z'‖²/2ℓ² (Eq. 27: "adjacent frames have nearby locations"), and
   the cosine/temperature critic common in SSL.
3. Appendix D: a linear decoder, fit on training frames, maps z to the 6 ball
   coordinates; we report held-out R². We add a stricter score: does each of
   the 3 maps follow one ball (``rpmref.balls.tracking``)? And the untrained
   encoder, which every trained critic has to beat.

Run:  python examples/reproduce_fig1.py [--quick]
"""
import argparse
import dataclasses

from rpmref.balls import compare, trainer as train, video as balls
from rpmref.cli.common import OneLineErrorParser

parser = OneLineErrorParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
args = parser.parse_args()

# Settings: the package defaults are the settings of the README table.
if args.quick:
    train_config, balls_config = compare.quick_configs()
    seeds, critics = (0,), ("rbf", "bilinear")
else:
    train_config, balls_config = train.TrainConfig(), balls.BallsConfig()
    seeds, critics = (0, 1, 2), compare.CRITICS
radius = balls_config.diameter / 2  # a map "is on" its ball within one radius

# 1. Data (Appendix D): training video and held-out video.
frames, positions = balls.make_video(balls_config, seed=compare.VIDEO_SEEDS["train"])
frames_ho, positions_ho = balls.make_video(balls_config, seed=compare.VIDEO_SEEDS["held_out"])
print(f"videos: {frames.shape} training, {frames_ho.shape} held-out frames (T, C, H, W)")

for critic in critics:
    for seed in seeds:
        config = dataclasses.replace(train_config, critic=critic, seed=seed)

        # The untrained encoder: the baseline (random colour filters already
        # have centres of mass that move with the balls). It is the exact
        # starting point of training: the random draw with every map turned
        # bright on bright input (TrainConfig.orient_maps; the balls tutorial of the
        # documentation, "Why the maps are oriented", says why).
        params0, bn0 = compare.untrained_encoder(config, frames)
        z0 = train.encode(params0, bn0, frames, config)
        z0_ho = train.encode(params0, bn0, frames_ho, config)

        # 2. Train with in-batch InfoNCE and this critic (Eq. 6, 8 / 27).
        result = train.train(config, frames, progress=False)
        z = train.encode(result.params, result.bn_state, frames, config)        # (T, 6)
        z_ho = train.encode(result.params, result.bn_state, frames_ho, config)  # (T', 6)

        # 3. The paper's linear readout and per-map tracking, held-out frames.
        trained = compare.score_encoder(z, positions, z_ho, positions_ho, radius)
        untrained = compare.score_encoder(z0, positions, z0_ho, positions_ho, radius)
        print(f"{critic:8s} seed {seed}: InfoNCE estimate {result.history[-1]['estimate']:.3f} "
              f"nats, readout R² {trained['r2_overall']:.3f} (untrained "
              f"{untrained['r2_overall']:.3f}), matched map R² "
              + ", ".join(f"{r:.3f}" for r in trained["matched_r2"])
              + f", within one radius {trained['mean_within_radius']:.2f}")

# `rpmref balls compare` runs exactly this loop (compare.run_compare) and adds
# results.json, results.md (mean ± sd over seeds) and fig1.png.
