"""Which steps are recorded and snapshotted, so that a 10^7-step run stays bounded.

Records: every step up to ``every_step_until``, then ``per_decade`` log-spaced steps per
decade (so each decade of steps has the same number of points on a log axis), optionally
capped at ``max_per_second`` records a second in that phase. Snapshots: step 0, then
``snapshots_per_decade`` log-spaced steps per decade. The run's last step is always both.
"""

from __future__ import annotations

import math
import time


class LogSchedule:
    """Steps 0, ..., dense - 1, then ceil(s * 10^(1/per_decade)) from there: ``due(step)``."""

    def __init__(self, dense_until: int, per_decade: int):
        self.dense_until = dense_until
        self.factor = 10.0 ** (1.0 / per_decade)
        self.next = 0

    def due(self, step: int) -> bool:
        if step < self.dense_until:
            return True
        if step >= self.next:
            self.next = max(step + 1, math.ceil(max(step, 1) * self.factor))
            return True
        return False

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
        now = time.perf_counter()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        return self._window_count <= self.max_per_second
