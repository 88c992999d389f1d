"""rpmref: InfoNCE as variational inference in a recognition parameterised model.

A NumPy reference for Aitchison & Ganev, "InfoNCE is variational inference in a
recognition parameterised model" (arXiv 2107.02495).
"""
__version__ = "0.1.0"
