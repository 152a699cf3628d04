"""The runs a window shows: its own live run and opened files, each with a colour, a name and
a visibility; plus the follower that grows a file another process is still writing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from margin_explorer.core.metrics import SNAPSHOT_METRICS
from margin_explorer.core.run_status import RunStatus
from margin_explorer.core.runfile import RunReader

from .member_run import MemberRun
from .session import RunSession


@dataclass
class RunEntry:
    session: RunSession
    name: str
    colour_index: int
    visible: bool = True
    path: str | None = None
    live: bool = False  # the window's own training run
    follower: "FileFollower | None" = None

    @property
    def status(self) -> RunStatus:
        return self.session.status

    @property
    def step(self) -> int:
        return self.session.step


class FileFollower:
    """Appends to a run what a live writer has flushed to its file since the last poll."""

    def __init__(self, reader: RunReader, run: MemberRun):
        self.reader: RunReader | None = reader
        self.path = reader.path
        self.run = run
        self.quiet_polls = 0

    def poll(self) -> bool:
        """Pick up new records; returns False once the writer has finished (and closes)."""
        seen, seen_snaps = self.run.n_records, self.run.snapshot_steps.size
        if self.reader is None:
            return self._reopen_and_check()
        try:
            self.reader.refresh()
        except (OSError, RuntimeError, KeyError):
            return self._check_finished()
        reader = self.reader
        if reader.n_records > seen:
            self.run.append({name: values[seen:] for name, values in reader.metrics.items()},
                                step=int(reader.metrics["step"][-1]))
            self.quiet_polls = 0
        else:
            self.quiet_polls += 1
        steps = reader.snapshot_steps
        if len(steps) > seen_snaps:
            new = slice(seen_snaps, len(steps))
            metrics = [{m: float(reader.snapshot_metrics[m][i]) for m in SNAPSHOT_METRICS} for i in range(*new.indices(len(steps)))]
            self.run.append({}, steps[new], list(reader.snapshot_params(new)), metrics,
                                params=reader.snapshot_params(len(steps) - 1))
        if len(reader.events) > len(self.run.events):  # health events the writer found (core/health.py)
            self.run.append({}, events=reader.events[len(self.run.events):])
        if self.quiet_polls >= 4:  # no growth for a while: has the writer closed?
            return self._check_finished()
        return True

    def _check_finished(self) -> bool:
        # a second handle in this process would share the first one's cached metadata (and its
        # stale status), so let go of ours before looking afresh
        path = self.path
        self.close()
        try:
            probe = RunReader(path)
        except Exception:
            return self._reopen(path)
        # a plain open works once the writer has left SWMR mode; its final status follows a moment
        # later (it reopens the file to write it), so wait for that unless the file stays quiet
        finished = not probe.swmr and (probe.status != RunStatus.RUNNING or self.quiet_polls > 40)
        if finished:
            self.run.status, self.run.reason = RunStatus.of(probe.status), probe.status_reason
            self.run.params = np.asarray(probe.final_params)
        probe.close()
        return False if finished else self._reopen(path)

    def _reopen(self, path) -> bool:
        try:
            self.reader = RunReader(path)
        except Exception:
            return True  # locked for a moment (the writer is setting its status): try again next poll
        return True

    def _reopen_and_check(self) -> bool:
        path = self.path
        try:
            self.reader = RunReader(path)
        except Exception:
            return True
        return self._check_finished()

    def close(self) -> None:
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:
                pass
            self.reader = None
