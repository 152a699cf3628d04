"""The run state machine: start, pause, resume, step, stop, reset and continue the window's
live run, through the TrainingController; and asking before a run is discarded."""

from __future__ import annotations

from margin_explorer.core.config import DatasetConfig, RunConfig
from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.run_status import RunStatus

from .session import RunSession


class RunControl:
    """The live run's state machine (a part of MainWindow)."""

    def toggle_run(self) -> None:
        state = self.controller.state
        if state == RunStatus.RUNNING:
            self.controller.pause()
        elif state == RunStatus.PAUSED and not self._config_changed_during_run:
            self.controller.resume()
        else:
            self.start_run()
        self._update_controls()

    def start_run(self, run: bool = True, *, config: RunConfig | None = None, params=None, start_step: int = 0,
                  parent: str = "", optimizer_state: dict | None = None) -> bool:
        """Start a live run from the editors (or from ``config``; ``params`` and ``start_step``
        continue the run in file ``parent``)."""
        if config is not None:
            return self._start(config, config.dataset.build(), run, params, start_step, parent, optimizer_state)
        problem = self.problem()
        if problem:
            self.show_error(problem)
            return False
        try:
            config = self.current_config()
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return False
        return self._start(config, self.dataset_editor.model.dataset(), run)

    def _start(self, config, dataset, run, params=None, start_step=0, parent="", optimizer_state=None) -> bool:
        if not self._may_discard("Start a new run and discard the current one?"):
            return False
        self._stop_and_forget()
        self.banner.drop("", "run", "homogeneity")  # errors and notes of earlier runs and files; a preset's text stays
        self.session = RunSession(config, dataset)  # a family's members, or the one run
        self.session.parent, self.session.start_step = parent, start_step
        self.plots.set_live(True)
        self.runs.set_live(self.session)
        self.run_list.table.setCurrentCell(0, 0)
        self.boundary.set_points(dataset.X, dataset.y)
        self._config_changed_during_run = False
        # a new session counts its versions from 0 again: one that reached the last run's final
        # version within a redraw tick was never drawn (no rings, an old status bar)
        self._drawn_version = -1
        self.status = RunStatus.RUNNING if run else RunStatus.PAUSED
        self.controller.start(config.to_json(), run=run, params=params, start_step=start_step,
                              optimizer_state=optimizer_state)
        if params is None:
            self.settings.setValue("last_config", config.to_json())
        self._update_controls()
        return True

    def continue_run(self, entry) -> bool:
        """Train on from ``entry``'s last parameters as a new live run that records its parent."""
        session = entry.session
        if session.params is None:
            self.show_error(f"{entry.name} has no saved parameters to continue from.")
            return False
        if entry.live:
            self.show_error("Continue a saved run; the live run continues with Run / Resume.")
            return False
        if session.size > 1:
            self.show_error("Continue works on one run: open one member's file on its own to continue it.")
            return False
        more = self.ask_steps("Continue the run", f"Train {entry.name} on from step {session.step:,}: how many more "
                              "steps?", default=max(session.step - session.start_step, 100))
        if more is None:
            return False
        config = session.config.copy()
        config.dataset = DatasetConfig.inline(session.dataset)  # the run's own points, never a path from its file
        config.run.steps = session.step + more
        config.name = f"{entry.name} (continued)"
        return self.start_run(config=config, params=session.params, start_step=session.step,
                              parent=entry.path or "", optimizer_state=session.optimizer_state)

    def step(self, k: int) -> None:
        if self.controller.state == RunStatus.RUNNING:
            return
        if self.controller.state != RunStatus.PAUSED or self._config_changed_during_run:
            if not self.start_run(run=False):
                return
        self.controller.step(k)
        self._update_controls()

    def stop(self) -> None:
        self.controller.stop()

    def reset(self) -> None:
        """Discard the run and show the initialization (a prepared, paused run at step 0)."""
        if not self._may_discard("Reset and discard the current run?"):
            return
        self._stop_and_forget()
        self.start_run(run=False)

    def _stop_and_forget(self) -> None:
        if self.controller.state.going:
            self.controller.stop()
        self.session = None
        self.runs.set_live(None)
        self.status = RunStatus.IDLE
        self._update_status_bar()  # no old run's numbers beside the next preset

    def _may_discard(self, question: str) -> bool:
        session = self.session
        if session is None or self._discard_without_asking:
            return True
        if self.controller.state.going and session.n_records > 1 and session.saved_path is None:
            return self.confirm("Run in progress", f"A run is in progress and not saved. {question}", True)
        if session.has_unsaved_results and session.status.ended:
            return self.confirm("Unsaved run", f"The run has not been saved. {question}", True)
        return True
