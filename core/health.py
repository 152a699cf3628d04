"""Run health: events a run records as they happen, so that no status or verdict says "finished"
or "supported" over a run that collapsed or got stuck (docs/run-format.md, ``events``).

- unstable: the summed loss climbs back to l(0) or above after it was below (THEORY.md claim 2's
  threshold; below it every q_i > 0, so this is also where the training accuracy falls from 1):
  the run left the regime the claims are about.
- stuck: samples with q_i <= 0 whose gradient of q_i is zero (every unit inactive on them: no
  step can move them), or log L that has not decreased over a decade of steps while L >= l(0).

A single run and a family member make the same events: both come from the records and snapshots
that core/trainer.py's Trainer drains, whichever engine stepped it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

UNSTABLE, STUCK = "unstable", "stuck"
KINDS = (UNSTABLE, STUCK)
MAX_UNSTABLE = 10  # episodes recorded per run: an oscillating run is named, not flooded
FLAT = 1e-3  # a decade of steps whose log L fell by less than this has not decreased
MESSAGE_BYTES = 512  # the run file's fixed-size message field (UTF-8)


@dataclass
class Event:
    step: int
    kind: str
    message: str

    def to_dict(self) -> dict:
        return {"step": int(self.step), "kind": self.kind, "message": self.message}


def log_threshold(loss_kind: str) -> float:
    """log l(0): 0 for the exponential loss, log log 2 for the logistic."""
    return 0.0 if loss_kind == "exponential" else math.log(math.log(2.0))


def _num(value: float) -> str:
    return f"{value:.3g}"


class HealthMonitor:
    """Watches a run's records (and the samples at its snapshots) and returns new events."""

    def __init__(self, loss_kind: str, n: int, mean: bool):
        self.threshold = log_threshold(loss_kind)
        self.offset = math.log(n) if mean else 0.0  # recorded log L + offset = log of the summed loss
        self.below_since = None  # the step the current stretch below l(0) began
        self.armed = False  # that stretch is long enough to call the run settled
        self.best = (math.inf, 0)  # (lowest recorded log L in the stretch, its step)
        self.unstable = 0
        self.flat_reported = False
        self.dead: set = set()  # samples reported
        self._dead_now: set = set()  # dead at the last check
        self._dead_since = 0
        # every record's step and log L, in arrays grown by doubling: the check below reads a
        # decade of them at every record, and a list turned into an array each time cost O(records)
        # in Python per record (every step recorded: 110 ms for 2,000 steps, the whole chunk's time)
        self._steps = np.empty(256, dtype=np.int64)
        self._logs = np.empty(256)
        self._count = 0

    def observe(self, records: dict) -> list:
        """Events in the records of one chunk (``step``, ``log_loss``, ``accuracy``), in order."""
        events = []
        if not len(records.get("step", ())):
            return events
        for step, log_l, accuracy in zip(records["step"].tolist(), records["log_loss"].tolist(),
                                         records["accuracy"].tolist()):
            if not math.isfinite(log_l):
                continue
            event = self._stability(step, log_l, accuracy)
            if event is None:
                event = self._flat(step, log_l)
            if event is not None:
                events.append(event)
        return events

    def _stability(self, step, log_l, accuracy):
        """An event when the loss rises back to l(0) after a settled stretch below it: one at least
        as long as the run before it (and 10 steps), or one that took L below l(0) / e, so that
        the small crossings back and forth of the early phase are not called a collapse. Below l(0)
        (the sum) every q_i > 0, so this is also where the training accuracy falls from 1."""
        below = log_l + self.offset < self.threshold
        if below:
            if self.below_since is None:
                self.below_since, self.best = step, (log_l, step)
            elif log_l < self.best[0]:
                self.best = (log_l, step)
            if step - self.below_since >= max(10, self.below_since) or log_l + self.offset < self.threshold - 1.0:
                self.armed = True  # settled: a long stretch below l(0), or a loss well below it (L < l(0) / e)
            return None
        self.below_since = None
        if not self.armed:
            return None
        self.armed = False
        self.unstable += 1
        if self.unstable > MAX_UNSTABLE:
            return None
        fell = f"accuracy 1.0 -> {accuracy:.3g}" if accuracy < 1.0 else "accuracy still 1"
        more = " (further episodes are not recorded)" if self.unstable == MAX_UNSTABLE else ""
        return Event(step, UNSTABLE, f"unstable at step {step:,}: log L rose from {_num(self.best[0])} (step "
                                     f"{self.best[1]:,}) to {_num(log_l)}, past l(0); {fell}{more}")

    def _flat(self, step, log_l):
        k = self._count
        if k == len(self._steps):
            self._steps, self._logs = np.resize(self._steps, 2 * k), np.resize(self._logs, 2 * k)
        self._steps[k], self._logs[k] = step, log_l
        self._count = k + 1
        if self.flat_reported or step < 100 or log_l + self.offset < self.threshold:
            return None
        steps = self._steps[:k + 1]
        start = int(np.searchsorted(steps, step // 10, side="right")) - 1  # the last record at or before t/10
        if start < 0 or steps[start] < 10:
            return None
        window = self._logs[start:k + 1]
        if window[0] - window[1:].min() >= FLAT:
            return None
        self.flat_reported = True
        return Event(step, STUCK, f"stuck at step {step:,}: log L = {_num(log_l)} has not decreased since step "
                                  f"{int(steps[start]):,} (by less than {FLAT:g} over a decade of steps) while L >= l(0)")

    def check_samples(self, step: int, X: np.ndarray, q: np.ndarray, jacobian) -> list:
        """Samples with q_i <= 0 whose gradient of q_i is exactly zero here and at the previous
        check (``jacobian(rows)``: the rows d f(x_i) / d theta of the given samples; called at
        log-spaced snapshots, so "still" spans a stretch of the run): their own loss term cannot
        move them, and only the other samples' updates might."""
        wrong = np.flatnonzero(q <= 0)
        jac = np.asarray(jacobian(wrong)) if len(wrong) else np.zeros((0, 0))
        dead = {int(i) for i, row in zip(wrong, jac) if not np.any(row)}
        previous, since = self._dead_now, self._dead_since
        self._dead_now, self._dead_since = dead, step
        new = sorted(i for i in dead & previous if i not in self.dead)
        if not new:
            return []
        self.dead.update(new)
        shown = ", ".join(f"#{i} at ({', '.join(f'{v:.3g}' for v in X[i][:4])}{', ...' if X.shape[1] > 4 else ''})"
                          f" with q = {q[i] + 0.0:.3g}" for i in new[:5])
        more = f" and {len(new) - 5} more" if len(new) > 5 else ""
        return [Event(step, STUCK, f"stuck at step {step:,}: sample{'s' if len(new) > 1 else ''} {shown}{more}: "
                                   f"q_i <= 0 with a zero gradient of q_i since step {since:,} at least (every unit "
                                   "inactive on it): its own loss term cannot move it")]


def fits_in_file(message: str) -> bytes:
    """The message as the run file stores it: UTF-8, cut to MESSAGE_BYTES on a character boundary."""
    data = message.encode("utf-8")[:MESSAGE_BYTES]
    return data.decode("utf-8", errors="ignore").encode("utf-8")


def settled_at_end(metrics: dict) -> bool:
    """Whether the last record is past the loss threshold with every sample classified: smoothed
    margin gamma~ > 0 (that is, the summed L < l(0)) and accuracy 1."""
    accuracy, smoothed = metrics.get("accuracy"), metrics.get("smoothed_margin")
    if accuracy is None or not len(accuracy):
        return False
    return bool(accuracy[-1] >= 1.0 and (smoothed is None or not smoothed[-1] <= 0))  # NaN: no order, accuracy alone
