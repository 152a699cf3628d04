"""The worker's events in the window: the live session grows, the banner and the status bar
speak, and a timer redraws at a bounded rate (never one redraw per step)."""

from __future__ import annotations

import time

from margin_explorer.core.run_status import RunStatus

from .messages import BoundaryGrid, ChunkArrived, RunInfo


class LiveRun:
    """The training process's events (a part of MainWindow)."""

    def _on_started(self, info: RunInfo) -> None:
        if self.session is None:
            return
        self.session.started(info)
        if info.engine_note:
            self.banner.show_message(f"Family of {info.family_size}: {info.engine_note}.", kind="info", topic="run")
        if info.homogeneity.get("verdict") == "none":
            # the explanation starts "not homogeneous: ..." itself
            self.banner.show_message(f"This network is {info.homogeneity['explanation']}; the margin plots stay "
                                     "empty.", kind="info", topic="homogeneity")

    def _on_chunk(self, chunk: ChunkArrived) -> None:
        if self.session is None:
            return
        self.session.append_chunk(chunk)
        if chunk.events:  # a collapse or a stuck run: said where the user looks (core/health.py)
            self.banner.show_message(chunk.events[-1]["message"], kind="warning")
            self._update_status_bar()

    def _on_boundary(self, grid: BoundaryGrid) -> None:
        if self.session is None or self.runs.replaying is not None or self.runs.current() is not self.runs.live_entry():
            return  # the boundary shows a replayed snapshot or another run
        self.boundary.set_grid(grid.values, grid.rect, self.session.last("q_min", None))

    def _on_status(self, status: RunStatus, reason: str) -> None:
        self.status = status
        if self.session is not None:  # "running" too: the run list said "ready" while a run ran
            self.session.status, self.session.reason = status, reason
        if status == RunStatus.DIVERGED:
            self.banner.show_message(reason, kind="error", topic="run")
        if status.ended:
            if self.plots.live:
                self.plots.set_live(False)  # redraws every plot with the last chunk, axes fitted
            else:
                self.plots.refresh(force=True)
            self._follow_live_snapshots()
            live = self.runs.live_entry()
            if live is not None and self.runs.replaying is None and self.runs.current() in (live, None):
                self.runs.show_support_samples(live, live.session.params, None)  # image data: the support vectors
            self.runs.refresh_list()
            self.update_claims()
        self._update_controls()
        self._update_status_bar()

    def _on_worker_error(self, message: str) -> None:
        self.status = RunStatus.FAILED
        if self.session is not None:
            self.session.status, self.session.reason = RunStatus.FAILED, message.splitlines()[0]
        self.banner.show_message(message.splitlines()[0] if not message.startswith("internal") else message,
                                 kind="error", topic="run")
        self._update_controls()
        self._update_status_bar()  # "failed", not "running ... left" of a process that is gone

    def show_error(self, message: str) -> None:
        self.banner.show_message(message, kind="error")

    def _redraw(self) -> None:
        session = self.session
        if session is None:
            return
        self.plots.refresh()  # budgeted: stale plots are redrawn a few per tick
        if session.version == self._drawn_version:
            return
        self._drawn_version = session.version
        margins = session.lead.get("sample_margins")  # a family's boundary is member 0's
        showing_live = self.runs.replaying is None and self.runs.current() is self.runs.live_entry()
        if margins is not None and len(margins) and showing_live:
            self.boundary.set_support(session.dataset.X, margins[-1], session.config.recording.support_tolerance)
        now = time.perf_counter()
        if now - self._claims_checked > 1.0:
            self.update_claims()
        if now - self._list_refreshed > 0.5:  # steps and status in the run list, twice a second
            self._list_refreshed = now
            self.runs.refresh_list()
            self._follow_live_snapshots()
        self._update_status_bar()

    def _update_status_bar(self) -> None:
        self.run_status.show(self.status, self.session)

    def _follow_live_snapshots(self) -> None:
        """Offer the live run's snapshots on the replay bar unless another run or a replay is shown."""
        live = self.runs.live_entry()
        current = self.runs.current() or live
        if live is not None and current is live and self.runs.replaying is None:
            self.replay_bar.set_steps(live.session.snapshot_steps.view())
