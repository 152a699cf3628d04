"""Margin Explorer's science, free of Qt: datasets, architectures and their homogeneity,
log-space losses, optimizers, margin metrics, the trainer and the HDF5 run format.

Every quantity follows ../shared/THEORY.md; docstrings name the definition they implement.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # one version source: pyproject.toml's, as installed (pip install -e . or the wheel)
    __version__ = version("margin-explorer")
except PackageNotFoundError:  # a checkout run without installing it: say so rather than guess
    __version__ = "0+unknown"
