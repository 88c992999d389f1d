"""Structure: what the mutual information cannot see and the InfoNCE prior can.

``geometry`` (data on a line, a ring or a grid; a symmetric random-walk P(x, x'))
→ ``relabel`` (MI and I_∞ over relabellings of the latents) → ``topography``
(does the code keep neighbours together?) → ``learning`` (softmax encoders trained
on MI, on I_∞ with a local or an unrestricted critic, and on sampled InfoNCE);
``gaussian`` is the continuous analogue in closed form (invertible linear maps);
``experiment`` runs all of it with the settings of ``rpmref structure``.
"""
from rpmref.structure.geometry import (
    GEOMETRIES, Geometry, coarse_labels, data_pmf, geometry, neighbour_kernel, symmetries)
from rpmref.structure.relabel import (
    coarse_encoder, invariance_summary, labellings, local_critic, one_hot,
    relabel_encoder, relabelling_table, tie_tolerance)
from rpmref.structure.topography import (
    distance_correlation, neighbour_fraction, position_correlation, relabelling_baseline,
    spearman, topography_scores)
from rpmref.structure.learning import OBJECTIVES, LearnConfig, evaluate, summarise, train_encoder
from rpmref.structure.gaussian import default_maps, linear_map_table, mapped_pair

__all__ = [
    "GEOMETRIES", "Geometry", "geometry", "neighbour_kernel", "data_pmf", "coarse_labels",
    "symmetries", "one_hot", "coarse_encoder", "local_critic", "relabel_encoder",
    "labellings", "relabelling_table", "tie_tolerance", "invariance_summary",
    "neighbour_fraction", "distance_correlation", "position_correlation", "spearman",
    "topography_scores", "relabelling_baseline",
    "OBJECTIVES", "LearnConfig", "train_encoder", "evaluate", "summarise",
    "default_maps", "mapped_pair", "linear_map_table",
]
