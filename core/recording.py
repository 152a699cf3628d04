"""Which steps are recorded and snapshotted, so that a 10^7-step run stays bounded.

Records: every step up to ``every_step_until``, then ``per_decade`` log-spaced steps per
decade (so each decade of steps has the same number of points on a log axis), optionally
capped at ``max_per_second`` records a second in that phase. Snapshots: step 0, then
``snapshots_per_decade`` log-spaced steps per decade. The run's last step is always both.

The driver (core/trainer.py) asks for the due steps of a range ahead of time (``due_in``), so
that an engine can run the whole range with no Python in its loop, and ``commit``s the steps
it reached; ``due`` answers one step at a time.
"""

from __future__ import annotations

import math
import time

import numpy as np


class LogSchedule:
    """Steps 0, ..., dense - 1, then ceil(s * 10^(1/per_decade)) from there: ``due(step)``."""

    def __init__(self, dense_until: int, per_decade: int):
        self.dense_until = dense_until
        self.factor = 10.0 ** (1.0 / per_decade)
        self.next = 0

    def _after(self, step: int) -> int:
        return max(step + 1, math.ceil(max(step, 1) * self.factor))

    def due(self, step: int) -> bool:
        if step < self.dense_until:
            return True
        if step >= self.next:
            self.next = self._after(step)
            return True
        return False

    def due_in(self, start: int, end: int, limit: int) -> np.ndarray:
        """The due steps in [start, end), at most ``limit`` of them, as ``due`` would find them
        step by step from ``start`` (int64, ascending); nothing is consumed until ``commit``."""
        dense = np.arange(start, min(end, self.dense_until, start + limit), dtype=np.int64)
        steps = [int(s) for s in dense] if len(dense) < limit else None
        if steps is None:
            return dense
        s = max(start, self.dense_until, self.next)
        while s < end and len(steps) < limit:
            steps.append(s)
            s = self._after(s)
        return np.array(steps, dtype=np.int64)

    def commit(self, start: int, end: int) -> None:
        """The steps [start, end) were taken: their due steps are consumed."""
        s = max(start, self.dense_until, self.next)
        if s >= end:
            return
        while s < end:
            s = self._after(s)
        self.next = s

    def count_until(self, steps: int) -> int:
        """How many steps in [0, steps) are due (for preallocating)."""
        probe = LogSchedule(self.dense_until, 1)
        probe.factor = self.factor
        count, s = min(self.dense_until, steps), self.dense_until
        probe.next = s
        while s < steps:
            count += 1
            probe.due(s)
            s = probe.next
        return count


class RecordSchedule(LogSchedule):
    def __init__(self, every_step_until: int, per_decade: int, max_per_second: float = 0.0):
        super().__init__(every_step_until, per_decade)
        self.max_per_second = max_per_second
        self._window_start = 0.0
        self._window_count = 0

    def due(self, step: int) -> bool:
        if not super().due(step):
            return False
        if self.max_per_second <= 0 or step < self.dense_until:
            return True
        return self._allowed(1) == 1

    def due_in(self, start: int, end: int, limit: int) -> np.ndarray:
        """LogSchedule.due_in, with the cap on records a second applied to the whole range at once
        (the log phase's steps past the second's allowance are left out)."""
        steps = super().due_in(start, end, limit)
        if self.max_per_second <= 0 or not len(steps) or steps[-1] < self.dense_until:
            return steps
        sparse = steps >= self.dense_until
        allowed = self._allowed(int(np.count_nonzero(sparse)))
        return np.concatenate([steps[~sparse], steps[sparse][:allowed]])

    def _allowed(self, wanted: int) -> int:
        """How many of ``wanted`` log-phase records this second's window still takes (counted)."""
        now = time.perf_counter()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        allowed = max(0, min(wanted, int(self.max_per_second - self._window_count)))
        self._window_count += wanted
        return allowed
