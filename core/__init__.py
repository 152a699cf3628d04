"""Margin Explorer's science, free of Qt: datasets, architectures and their homogeneity,
log-space losses, optimizers, margin metrics, the trainer and the HDF5 run format.

Every quantity follows ../shared/THEORY.md; docstrings name the definition they implement.
"""

__version__ = "0.1.0"
