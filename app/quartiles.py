"""A family's statistics for the plots: the median of every series across the members with an
interquartile band, extended as rows become final (app/session.py uses them).

Members record at the same steps (they train together), so record i of every member is the same
step. A member that diverged stops early; past its end the statistics are over the others.
Rows are aggregated once, when every member still running has them.
"""

from __future__ import annotations

import warnings

import numpy as np

from .member_run import GrowingArray

QUANTILES = (25.0, 50.0, 75.0)  # the band and the line


class Quartiles:
    """Low, median and high of one series over the members, extended as rows become final."""

    def __init__(self):
        self.low = self.mid = self.high = None
        self.done = 0

    def update(self, arrays: list, final_rows: int) -> None:
        if final_rows <= self.done:
            return
        present = [a for a in arrays if a is not None and len(a) > self.done]
        if not present:
            return
        rows = slice(self.done, final_rows)
        width = present[0].shape[1:]
        block = np.full((len(present), final_rows - self.done) + width, np.nan)
        for i, a in enumerate(present):
            part = a[rows]
            block[i, : len(part)] = part
        with warnings.catch_warnings():  # rows where every value is NaN (undefined metrics) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low, mid, high = np.nanpercentile(block, QUANTILES, axis=0)
        if self.mid is None:
            self.low, self.mid, self.high = (GrowingArray(width[0] if width else None) for _ in range(3))
        self.low.extend(low)
        self.mid.extend(mid)
        self.high.extend(high)
        self.done = final_rows


class SnapshotMedian:
    """``view()`` of the median of one snapshot metric over a session's members (what a run's
    GrowingArray offers)."""

    def __init__(self, session, name: str):
        self.session, self.name = session, name

    def view(self) -> np.ndarray:
        session = self.session
        agg = session.quartiles(("snapshot", self.name), [m.snapshot_metrics[self.name].view() for m in session.members],
                                session.snapshot_steps.size)
        return np.empty(0) if agg.mid is None else agg.mid.view()
