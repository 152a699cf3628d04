"""TrainingController: one interface for the window to drive training in a child process.

The process is spawned once (a fresh interpreter: forking a Qt process is unsafe) and reused
for later runs. A QTimer drains its result queue on the GUI thread at ~30 Hz and re-emits
the messages as Qt signals; only the GUI thread touches widgets.
"""

from __future__ import annotations

import multiprocessing as mp
import queue

from PySide6.QtCore import QObject, QTimer, Signal

from margin_explorer.core.run_status import RunStatus

from .messages import (AskDevices, AskGeometry, BoundaryGrid, ChunkArrived, DevicesFound, GeometryFound, Pause, Quit,
                       Resume, SetPace, Started, StartRun, StatusChanged, Stop, TakeSteps, WorkerFailed)
from .worker import worker_main

POLL_MS = 33


class TrainingController(QObject):
    # the events of app/messages.py, as Qt signals on the GUI thread
    started = Signal(object)  # RunInfo: layer names, parameter count, homogeneity, reference margin
    chunkReceived = Signal(object)  # ChunkArrived: records and snapshots of every member, step, status
    boundaryReceived = Signal(object)  # BoundaryGrid: values (float32 grid), rect
    statusChanged = Signal(object, str)  # a RunStatus (running, paused, finished, stopped, diverged), reason
    errorOccurred = Signal(str)
    devicesReceived = Signal(list)  # accelerators PyTorch sees in the training process (cuda, mps)
    factsReceived = Signal(int, dict)  # token, {"separable", "margin"} or {"error"}: the dataset panel's geometry

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._commands = None
        self._results = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.state = RunStatus.IDLE  # IDLE, RUNNING, PAUSED, or how the last run ended
        self._shut_down = False
        self.pace = 0.0  # steps per second; 0: full speed

    # --------------------------------------------------------------- process
    def _ensure_process(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._commands = self._ctx.Queue()
        self._results = self._ctx.Queue()
        self._ready = self._ctx.Event()
        self._process = self._ctx.Process(target=worker_main, args=(self._commands, self._results, self._ready),
                                          name="margin-explorer-worker", daemon=True)
        self._process.start()
        # the child has its own copy of the results pipe's write end now; without ours, a child
        # killed in the middle of a message leaves a read that ends (EOF) instead of one that
        # waits forever for the rest and freezes the window (seen: kill -9 of the worker)
        self._results._writer.close()
        self._timer.start()
        if self.pace:
            self._commands.put(SetPace(self.pace))  # a new process starts at full speed

    def warm_up(self) -> None:
        """Start the worker process ahead of the first run (its imports take a while)."""
        self._ensure_process()

    @property
    def process(self):
        """The training process (a multiprocessing Process), or None before one is started."""
        return self._process

    @property
    def process_id(self) -> int | None:
        """The training process's pid while it is alive, else None."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    @property
    def has_process(self) -> bool:
        """A training process is started (alive or not) and not shut down."""
        return self._process is not None

    def _send(self, command) -> None:
        self._ensure_process()
        self._commands.put(command)

    # --------------------------------------------------------------- commands
    def start(self, config_json: str, run: bool = True, params=None, start_step: int = 0,
              optimizer_state: dict | None = None) -> None:
        """Build a trainer for the config; train at once unless ``run`` is False (prepared, paused).
        ``params``, ``start_step`` and ``optimizer_state`` continue a run from its last state."""
        self.state = RunStatus.RUNNING if run else RunStatus.PAUSED
        self._send(StartRun(config_json, bool(run), params, int(start_step), optimizer_state))
        if run:
            self.statusChanged.emit(RunStatus.RUNNING, "")

    def set_pace(self, steps_per_second: float) -> None:
        """Train at most this many steps per second (0: full speed), now and for later runs."""
        self.pace = max(float(steps_per_second), 0.0)
        if self._process is not None and self._process.is_alive():
            self._commands.put(SetPace(self.pace))

    def pause(self) -> None:
        if self.state == RunStatus.RUNNING:
            self.state = RunStatus.PAUSED
            self._send(Pause())

    def resume(self) -> None:
        if self.state == RunStatus.PAUSED:
            self.state = RunStatus.RUNNING
            self._send(Resume())
            self.statusChanged.emit(RunStatus.RUNNING, "")

    def step(self, k: int) -> None:
        if self.state.going:
            self.state = RunStatus.RUNNING
            self._send(TakeSteps(int(k)))
            self.statusChanged.emit(RunStatus.RUNNING, "")

    def request_facts(self, token: int, X, y) -> None:
        """Ask the worker whether (X, y) is linearly separable and for its SVM margin; the answer
        comes as factsReceived(token, ...). The linear programs need scipy, which the window's
        process does without; the worker has it loaded anyway."""
        if not self._shut_down:  # a late request from a closing window must not start a new worker
            self._send(AskGeometry(int(token), X, y))

    def request_devices(self) -> None:
        """Ask the training process for the devices it can train on (devicesReceived answers)."""
        if not self._shut_down:
            self._send(AskDevices())

    def stop(self) -> None:
        if self.state.going:
            self._send(Stop())

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop the process and the timer; called when the window closes."""
        self._shut_down = True
        self._timer.stop()
        process = self._process
        if process is None:
            return
        try:
            if process.is_alive() and self._ready.is_set():
                self._commands.put(Quit())
                process.join(timeout)
            # still importing (a window closed right after opening): nothing to finish, no need to wait
            if process.is_alive():
                process.terminate()
                process.join(timeout)
        finally:
            for q in (self._commands, self._results):
                if q is not None:
                    q.cancel_join_thread()
                    q.close()
            self._process = self._commands = self._results = None
            self.state = RunStatus.IDLE

    # --------------------------------------------------------------- results
    def _poll(self) -> None:
        if self._results is None:
            return
        for _ in range(200):  # bounded: never starve the event loop
            try:
                message = self._results.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                break
            self._dispatch(message)
        if self._process is not None and not self._process.is_alive() and self.state == RunStatus.RUNNING:
            self.state = RunStatus.FAILED
            self.errorOccurred.emit(f"the training process ended unexpectedly (exit code {self._process.exitcode})")

    def _dispatch(self, message) -> None:
        """One event from the worker, re-emitted as its signal."""
        if isinstance(message, Started):
            self.started.emit(message.info)
        elif isinstance(message, ChunkArrived):
            self.chunkReceived.emit(message)
        elif isinstance(message, BoundaryGrid):
            self.boundaryReceived.emit(message)
        elif isinstance(message, StatusChanged):
            self.state = message.status  # paused, or how the run ended
            self.statusChanged.emit(message.status, message.reason)
        elif isinstance(message, GeometryFound):
            self.factsReceived.emit(message.token, message.facts)
        elif isinstance(message, DevicesFound):
            self.devicesReceived.emit(message.names)
        elif isinstance(message, WorkerFailed):
            self.state = RunStatus.FAILED
            self.errorOccurred.emit(message.message)
