"""What the plots, the run list and the comparison table read of a run: one protocol for a
single run, a family (its median, with a band) and a run read from a file. The application's
session (app/session.py RunSession) is one; widgets never import it."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PlotSource(Protocol):
    config: object  # core.config.RunConfig
    dataset: object  # core.datasets.Dataset
    info: dict  # layer names, reference margins (by the names a run file gives them)
    events: list  # health events (dicts step, kind, message); a family's median has none
    snapshot_metrics: dict  # name -> an object with view()
    version: int  # bumps when the series grow

    def get(self, name: str) -> np.ndarray | None: ...

    def band(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(25th, 75th percentile) row by row for a family; None for a single run."""

    def last(self, name: str, default=float("nan")): ...
