"""The command line's progress line and its graceful Ctrl+C (`run`, `continue`)."""

from __future__ import annotations

import math
import signal
import sys
import time

from .durations import time_left


def format_number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class GracefulInterrupt:
    """Ctrl+C (SIGINT) and SIGTERM set a reason that the run checks between chunks, so the file is
    never interrupted in the middle of a write (a KeyboardInterrupt inside h5py can leave the final
    status unwritten); the run ends "stopped" with that reason. A second signal interrupts at once."""

    REASONS = {signal.SIGINT: "interrupted (Ctrl+C)", signal.SIGTERM: "terminated (SIGTERM)"}

    def __init__(self):
        self.reason = None

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def __enter__(self):
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.REASONS}
        return self

    def _handle(self, signum, frame):
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = self.REASONS[signum]

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Progress:
    """One status line: step, steps/s, the time left, normalized margin, log L. Rewritten in
    place on a terminal; a line every few seconds otherwise (logs, CI)."""

    def __init__(self, total: int, stream=None, members: int = 1, start: int = 0):
        self.total, self.members = total, members
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.start_step = start  # a continued run's first step
        # the rate and the time left count from the first chunk on: before it, imports and the
        # first chunk's set-up made a run's first line say "3 steps/s, 2 h left"
        self.base = None
        self.last_print = 0.0

    def update(self, trainer, chunk, force=False):
        now = time.perf_counter()
        if self.base is None:
            self.base = (now, trainer.step)
        if not force and now - self.last_print < (0.2 if self.tty else 5.0):
            return
        if trainer.step > self.base[1]:
            since, base_step = self.base
        elif force:  # a run of one chunk: its own average is all there is
            since, base_step = self.start, self.start_step
        else:  # the first chunk: no rate to tell yet
            since, base_step = now, trainer.step
        elapsed = now - since
        rate = f"{(trainer.step - base_step) * self.members / elapsed:,.0f} steps/s" if elapsed > 0 else "starting"
        left = time_left(self.total, trainer.step, base_step, elapsed)
        rec = chunk.records
        gamma = rec["normalized_margin"][-1] if chunk.n_records else float("nan")
        log_l = rec["log_loss"][-1] if chunk.n_records else float("nan")
        total = f"/{self.total}" if self.total else ""
        who = f"{self.members} runs, " if self.members > 1 else ""
        line = (f"step {trainer.step}{total}  {who}{rate}" + (f"  {left} left" if left else "")
                + f"  normalized margin {format_number(float(gamma))}  log L {format_number(float(log_l))}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_print = now

    def done(self):
        if self.tty:
            self.stream.write("\n")
