"""Structure: what the mutual information cannot see and the InfoNCE prior can.

``geometry`` (data on a line, a ring or a grid; a symmetric random-walk P(x, x'))
→ ``relabel`` (MI and I_∞ over relabellings of the latents) → ``topography``
(does the code keep neighbours together?) → ``learning`` (softmax encoders trained
on MI, I_∞ with a local or an unrestricted critic, and sampled InfoNCE);
``gaussian`` is the continuous analogue in closed form.
"""
from rpmref.structure.geometry import (
    GEOMETRIES, Geometry, coarse_labels, data_pmf, geometry, neighbour_kernel, symmetries)
from rpmref.structure.relabel import (
    LENGTHSCALES, coarse_encoder, invariance_summary, labellings, local_critic, one_hot,
    relabel_encoder, relabelling_table)

__all__ = [
    "GEOMETRIES", "Geometry", "geometry", "neighbour_kernel", "data_pmf", "coarse_labels",
    "symmetries", "LENGTHSCALES", "one_hot", "coarse_encoder", "local_critic", "relabel_encoder",
    "labellings", "relabelling_table", "invariance_summary",
]
