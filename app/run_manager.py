"""The runs on screen: the live run and opened files, their list, the comparison table, the
replay bar, files that are still being written, "use this setup" and "continue"."""

from __future__ import annotations

import traceback

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.homogeneity import analyze
from margin_explorer.core.multiclass import sample_margins
from margin_explorer.core.network import evaluation_network
from margin_explorer.core.run_status import RunStatus
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.support_samples import computed_margins, recorded_margins

from .run_header import run_title
from .runs import FileFollower, RunEntry
from .session import RunSession
from .worker import boundary_grid

FOLLOW_MS = 500  # how often a file still being written is re-read


class RunManager(QObject):
    runsChanged = Signal()
    setupRequested = Signal(object, object)  # a RunConfig and the run's own Dataset, for the editors
    continueRequested = Signal(object)  # a RunEntry to train on from
    message = Signal(str, str)  # text, kind (error / info)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.entries: list[RunEntry] = []
        self._next_colour = 0
        self._networks: dict = {}
        self.replaying: RunEntry | None = None  # the run whose snapshot the boundary shows
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(FOLLOW_MS)
        self.follow_timer.timeout.connect(self._follow)
        run_list, replay = window.run_list, window.replay_bar
        run_list.visibilityChanged.connect(self._set_visible)
        run_list.renamed.connect(self._rename)
        run_list.removeRequested.connect(self.remove)
        run_list.useSetupRequested.connect(lambda row: self.setupRequested.emit(self.entries[row].session.config,
                                                                                self.entries[row].session.dataset))
        run_list.continueRequested.connect(lambda row: self.continueRequested.emit(self.entries[row]))
        run_list.currentChanged.connect(self._current_changed)
        replay.snapshotChosen.connect(self.show_snapshot)

    # --------------------------------------------------------------- the list
    def _colour(self) -> int:
        colour = self._next_colour
        self._next_colour += 1
        return colour

    def set_live(self, session: RunSession | None) -> None:
        """Put the window's training session first in the list (replacing the previous one)."""
        self.entries = [e for e in self.entries if not e.live]
        self.window.dataset_editor.clear_margins()  # the last run's support vectors are not the new run's
        if session is not None:
            self.entries.insert(0, RunEntry(session, run_title(session, live=True), self._colour(), live=True))
        self.changed()

    def live_entry(self) -> RunEntry | None:
        return next((e for e in self.entries if e.live), None)

    def current(self) -> RunEntry | None:
        row = self.window.run_list.current_row()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def changed(self) -> None:
        self._show_sources()
        self._current_changed(self.window.run_list.current_row())
        self.runsChanged.emit()

    def _show_sources(self) -> None:
        """The shown runs on the plots, every run in the list, the shown ones in the table."""
        visible = [(e.session, e.name, e.colour_index) for e in self.entries if e.visible]
        self.window.plots.set_sources(visible)
        self.refresh_list()

    def refresh_list(self) -> None:
        """Status and steps changed (no new runs): update the list and table only."""
        self.window.run_list.set_runs(self.entries)
        self.window.compare_table.set_runs([(e.name, e.session) for e in self.entries if e.visible])

    def _set_visible(self, row: int, visible: bool) -> None:
        """Show or hide a run on the plots; the selection and the replay stay where they are."""
        if 0 <= row < len(self.entries) and self.entries[row].visible != visible:
            self.entries[row].visible = visible
            self._show_sources()
            self.runsChanged.emit()

    def _rename(self, row: int, name: str) -> None:
        if 0 <= row < len(self.entries) and name and self.entries[row].name != name:
            self.entries[row].name = name
            self.changed()

    def remove(self, row: int) -> None:
        if not 0 <= row < len(self.entries):
            return
        entry = self.entries[row]
        if entry.live:
            self.message.emit("The live run is removed by Reset or a new run, not from the list.", "info")
            return
        if entry.follower is not None:
            entry.follower.close()
        del self.entries[row]
        self.changed()

    # --------------------------------------------------------------- opening
    def open(self, paths: list[str]) -> list[RunEntry]:
        """Add run files; a bad one gets its message and the others still open."""
        opened, errors = [], []
        for path in paths:
            try:
                reader = RunReader(path)
            except MarginExplorerError as exc:
                errors.append(str(exc))
                continue
            except Exception as exc:  # a bug, not the user's file: say so in the window too, not only on stderr
                traceback.print_exc()
                errors.append(f"{path}: could not be opened (unexpected {type(exc).__name__}: {exc})")
                continue
            try:
                session = RunSession.from_reader(reader)
            except MarginExplorerError as exc:
                reader.close()
                errors.append(str(exc))
                continue
            except Exception as exc:
                traceback.print_exc()
                reader.close()
                errors.append(f"{path}: could not be opened (unexpected {type(exc).__name__}: {exc})")
                continue
            if not session.homogeneity:
                session.homogeneity = analyze(session.config.architecture).to_dict()
            entry = RunEntry(session, run_title(session), self._colour(), path=str(path))
            if reader.swmr and reader.status == RunStatus.RUNNING:  # its writer is alive (or died): follow it
                entry.follower = FileFollower(reader, session.lead)
                self.follow_timer.start()
            else:
                reader.close()
            if session.status == RunStatus.DIVERGED:
                self.message.emit(f"{entry.name} diverged: {session.reason}", "info")
            self.entries.append(entry)
            opened.append(entry)
        opened = self._group_families(opened)
        if opened:
            self.changed()
            self.window.run_list.table.setCurrentCell(self.entries.index(opened[0]), 0)
        if errors:
            self.message.emit("\n".join(errors), "error")
        return opened

    def _group_families(self, opened: list[RunEntry]) -> list[RunEntry]:
        """Members of one family opened together become one entry (median and band); a member
        opened alone stays a run of its own."""
        groups: dict = {}
        for entry in opened:
            family = entry.session.family
            if family is not None and entry.follower is None:
                groups.setdefault(family["id"], []).append(entry)
        for members in groups.values():
            if len(members) < 2:
                continue
            family = RunSession.grouped([e.session for e in members])
            grouped = RunEntry(family, run_title(family), members[0].colour_index, path=members[0].path)
            self.entries = [e for e in self.entries if e not in members]
            self.entries.append(grouped)
            opened = [e for e in opened if e not in members] + [grouped]
        return opened

    def _follow(self) -> None:
        active = False
        for entry in self.entries:
            if entry.follower is not None:
                if entry.follower.poll():
                    active = True
                else:
                    entry.follower = None
                    self.refresh_list()
        if not active:
            self.follow_timer.stop()

    def close(self) -> None:
        self.follow_timer.stop()
        for entry in self.entries:
            if entry.follower is not None:
                entry.follower.close()
                entry.follower = None

    # --------------------------------------------------------------- replay
    def _current_changed(self, row: int) -> None:
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        bar = self.window.replay_bar
        bar.stop()
        if entry is None:
            bar.set_steps([])
            return
        bar.set_steps(entry.session.snapshot_steps.view())
        self.replaying = None
        if not entry.live:
            self.show_final(entry)

    def _network(self, entry: RunEntry):
        key = id(entry.session)
        if key not in self._networks:
            self._networks[key] = evaluation_network(entry.session.config.architecture)  # torch's for image blocks
        return self._networks[key]

    def show_params(self, entry: RunEntry, params: np.ndarray, step: int | None) -> None:
        """The boundary, support vectors and plot markers at ``params`` of ``entry``."""
        window = self.window
        dataset = entry.session.dataset
        window.boundary.set_points(dataset.X, dataset.y, dataset.multiclass)
        self.show_support_samples(entry, params, step)
        if dataset.dim != 2 or params is None:
            window.plots.set_marker(step)
            return
        net = self._network(entry)
        q = sample_margins(net.outputs(params, dataset.X), dataset.y)  # y f, or f_y - max_(j != y) f_j for C classes
        grid = boundary_grid(net, params, dataset.X)
        window.boundary.set_grid(grid.values, grid.rect, float(q.min()))
        window.boundary.set_support(dataset.X, q, entry.session.config.recording.support_tolerance)
        window.plots.set_marker(step)

    def show_support_samples(self, entry: RunEntry, params: np.ndarray | None, step: int | None) -> None:
        """Image data: the Dataset panel's samples of the smallest normalized margins at ``params``
        (``step`` None: the run's last), from the record at that step, else by a forward pass."""
        session, editor = entry.session, self.window.dataset_editor
        dataset, lead = session.dataset, session.lead
        if dataset.image_shape is None or params is None:
            editor.clear_margins()
            return
        shown = lead.step if step is None else int(step)
        margins = recorded_margins(lead.get("step"), lead.get("sample_margins"), shown)
        if margins is None:  # a snapshot between records, or a run without records yet
            margins = computed_margins(self._network(entry), params, dataset.X, dataset.y,
                                       (session.homogeneity or {}).get("order"))
        editor.show_margins(dataset, margins, f"step {shown:,}", entry.name)

    def show_final(self, entry: RunEntry) -> None:
        self.show_params(entry, entry.session.params, None)

    def show_snapshot(self, index: int) -> None:
        entry = self.current()
        if entry is None or index >= len(entry.session.snapshot_params):
            return
        steps = entry.session.snapshot_steps.view()
        latest = index == len(steps) - 1
        self.replaying = None if (latest and entry.live) else entry
        self.show_params(entry, entry.session.snapshot_params[index], None if latest and entry.live else int(steps[index]))
