"""The training worker: a child process that owns a core Trainer and talks through two queues.

On 2 cores a QThread beside the GUI lost throughput to GIL contention (DESIGN.md,
docs/performance.md); a
child process lost none. Commands in and events out are the dataclasses of app/messages.py
(StartRun, Pause, ..., Quit; Started, ChunkArrived, ..., WorkerFailed). Qt-free. A worker whose window died (killed, crashed) ends itself: nobody
would read what it trains, and its unread results would pile up in memory.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback

import numpy as np

from margin_explorer.core.blas import one_blas_thread
from margin_explorer.core.run_status import RunStatus

from .messages import (COMMANDS, AskDevices, AskGeometry, BoundaryGrid, ChunkArrived, DevicesFound, GeometryFound,
                       MemberChunk, Pause, Quit, Resume, RunInfo, SetPace, Started, StartRun, StatusChanged, Stop,
                       TakeSteps, WorkerFailed)

CHUNK_SECONDS = 0.05  # a pause or stop is obeyed within this
BOUNDARY_SECONDS = 0.25  # the decision-boundary grid is recomputed at most this often
GRID = 96
PARENT_CHECK_SECONDS = 1.0  # an idle worker looks this often whether its window is still there


def boundary_grid(net, theta, X, resolution=GRID) -> BoundaryGrid:
    """f(theta; x) on a grid covering the 2-D data with a 15% border, as float32 (rows = y):
    (resolution, resolution) for one output, (resolution, resolution, C) for C outputs."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.15 * np.maximum(hi - lo, 1e-9)
    lo, hi = lo - pad, hi + pad
    xs = np.linspace(lo[0], hi[0], resolution)
    ys = np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = np.column_stack([gx.ravel(), gy.ravel()]).astype(theta.dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run's outputs overflow: shown clipped
        values = np.asarray(net.outputs(theta, points))
        values = values.reshape((resolution, resolution) + values.shape[1:])
    big = 1e30  # float32 holds it, and the view's colour scaling (a subtraction) does not overflow
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=big, neginf=-big)
    values = np.clip(values, -big, big)
    return BoundaryGrid(np.ascontiguousarray(values, dtype=np.float32), (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]))


def _live_grid(trainer) -> BoundaryGrid:
    """boundary_grid of member 0 with one BLAS thread: its 9,216 x 2 by 2 x w product is large
    enough for numpy's OpenBLAS to thread it, and on a loaded machine it then waited on a
    descheduled helper: 52-59 ms against 7 on one thread, four times a second, a quarter of the
    training process's time (benchmarks/gui_speed.py, relu2-blobs on the compiled engine)."""
    with one_blas_thread():
        return boundary_grid(trainer.net, trainer.members[0].theta, trainer.dataset.X)


def _start_info(trainer) -> RunInfo:
    info = RunInfo(layer_names=trainer.layer_names(), n_params=int(trainer.net.size),
                   homogeneity=trainer.homogeneity.to_dict(), reference_margin=trainer.reference_margin(),
                   reference_margin_steepest=trainer.steepest_reference_margin(),
                   params=trainer.members[0].theta.copy(), device=trainer.device_name())
    if trainer.config.family is not None:
        info.family_size = trainer.size
        info.engine_note = trainer.engine_note
    return info


def _member(chunk) -> MemberChunk:
    return MemberChunk(records=chunk.records, snapshot_steps=chunk.snapshot_steps,
                       snapshot_params=chunk.snapshot_params, snapshot_metrics=chunk.snapshot_metrics,
                       step=chunk.step, params=chunk.params, status=RunStatus(chunk.status), reason=chunk.reason,
                       events=chunk.events, optimizer_state=chunk.optimizer_state)


def _chunk(chunk) -> ChunkArrived:
    """A core chunk as the window's message: one part per member (one for a single run)."""
    return ChunkArrived([_member(c) for c in chunk.members], chunk.step, RunStatus(chunk.status), chunk.reason)


def _geometry(X, y) -> dict:
    from margin_explorer.core.reference import dataset_geometry

    try:
        return dataset_geometry(X, y)
    except Exception as exc:  # a solver failure must not end the training process
        return {"error": f"{type(exc).__name__}: {exc}"}


def accelerators() -> list[str]:
    """The devices PyTorch sees besides the cpu (cuda, cuda:1, ..., mps). Asked here, in the
    training process, which imports torch to train anyway: the window's process stays without it."""
    devices = []
    try:
        import torch

        if torch.cuda.is_available():
            devices += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps")
    except Exception:  # no torch, or a broken driver: the cpu stays
        pass
    return devices


def own_session() -> None:
    """Make the training process a session of its own. Linux's scheduler (autogroup, on by default
    on desktops) shares the CPU fairly between sessions, not processes: in the window's session
    the training process got the window's leftovers, 25% of a core against a headless run's ~55%
    on a loaded machine (benchmarks/gui_speed.py); in its own it gets a headless run's share. It
    leaves its parent's session only: the window still ends it (Quit, and it looks every second
    whether the window is alive)."""
    try:
        os.setsid()
    except (AttributeError, OSError):  # not POSIX, or already a session leader
        pass


def worker_main(commands, results, ready=None) -> None:
    """The child process's loop (the target of multiprocessing.Process). ``ready``, an Event, is
    set once the imports are done: until then a closing window need not wait for a clean quit."""
    import signal

    # Ctrl+C in the terminal reaches the whole process group: the window decides when the worker stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    own_session()
    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.errors import MarginExplorerError
    from margin_explorer.core.process import tune_process
    from margin_explorer.core.engines.compiled_engine import warm_if_cold
    from margin_explorer.core.trainer import Trainer

    if ready is not None:
        ready.set()
    # the compiled engine's kernels into numba's cache, in a child (5-20 s, once per install): the
    # Runs before it is done train on the numpy engine ('auto'), those after on the compiled one
    warming = warm_if_cold()  # noqa: F841 (kept: the child is reaped with this process)

    parent = multiprocessing.parent_process()
    trainer = None
    running = False
    steps_left = None  # for TakeSteps
    last_boundary = 0.0
    pace = 0.0  # steps per second for a talk; 0: as fast as it trains (no clock read per chunk then)
    paced_from = None  # (time, step) the pace counts from: reset at every start, resume and pause
    next_step_at = 0.0  # paced and ahead: wait (for a command) until then
    while True:
        if parent is not None and not parent.is_alive():
            results.cancel_join_thread()  # else exiting would wait to flush into a pipe nobody reads
            return
        if running:  # between chunks: take a command if one is waiting (paced: wait for the next step)
            delay = next_step_at - time.perf_counter() if pace else 0.0
            try:
                command = commands.get(timeout=delay) if delay > 0 else commands.get_nowait()
            except queue.Empty:
                command = None
        else:  # idle: sleep until told, or until it is time to look for the window
            try:
                command = commands.get(timeout=PARENT_CHECK_SECONDS)
            except queue.Empty:
                continue
        try:
            if command is not None:
                if isinstance(command, Quit):
                    return
                if not isinstance(command, COMMANDS):  # a bug in the window: say so, never wait on it
                    raise TypeError(f"not a command of app/messages.py: {command!r:.200}")
                if isinstance(command, StartRun):  # with params, start_step, optimizer_state: continue a run
                    tune_process()  # this process trains: its BLAS pools and malloc (core/process.py)
                    config = RunConfig.from_json(command.config_json)
                    trainer = Trainer(config, params=command.params, start_step=command.start_step,
                                      optimizer_state=command.optimizer_state)
                    results.put(Started(_start_info(trainer)))
                    results.put(_chunk(trainer.run(0)))
                    if trainer.dataset.dim == 2:  # a family's member 0
                        results.put(_live_grid(trainer))
                    running, steps_left, paced_from = bool(command.run), None, None
                elif isinstance(command, AskGeometry):  # the dataset panel's geometry, off the window
                    results.put(GeometryFound(command.token, _geometry(command.X, command.y)))
                elif isinstance(command, AskDevices):
                    results.put(DevicesFound(accelerators()))
                elif isinstance(command, SetPace):
                    pace, paced_from = max(float(command.steps_per_second), 0.0), None
                elif trainer is None:
                    continue
                elif isinstance(command, Pause):
                    running, paced_from = False, None
                    if trainer.status == RunStatus.RUNNING:  # a pause that crossed the run's end: it stays finished
                        results.put(StatusChanged(RunStatus.PAUSED))
                elif isinstance(command, Resume):
                    running, steps_left = trainer.status == RunStatus.RUNNING, None
                elif isinstance(command, TakeSteps):
                    running, steps_left = trainer.status == RunStatus.RUNNING, int(command.count)
                elif isinstance(command, Stop):
                    running = False
                    chunk = trainer.stop()
                    results.put(_chunk(chunk))
                    results.put(StatusChanged(RunStatus(chunk.status), chunk.reason))
                continue  # drain every pending command before training on
            if not running or trainer is None:
                continue
            budget = (1 << 30) if steps_left is None else steps_left
            if pace:
                now = time.perf_counter()
                if paced_from is None:
                    paced_from = (now, trainer.step)
                taken = trainer.step - paced_from[1]
                allowed = int(pace * (now - paced_from[0])) - taken
                if allowed < 1:  # ahead of the pace: wait for the next step's time (commands still obeyed)
                    next_step_at = paced_from[0] + (taken + 1) / pace
                    continue
                budget = min(budget, allowed)
            before = trainer.step
            tune_process()  # a BLAS imported since (cheap otherwise)
            chunk = trainer.run(budget, max_seconds=CHUNK_SECONDS)
            if steps_left is not None:
                steps_left -= trainer.step - before
            results.put(_chunk(chunk))
            now = time.perf_counter()
            if trainer.dataset.dim == 2 and (now - last_boundary > BOUNDARY_SECONDS
                                             or chunk.status != RunStatus.RUNNING or steps_left == 0):
                results.put(_live_grid(trainer))
                last_boundary = now
            if chunk.status != RunStatus.RUNNING:
                running = False
                results.put(StatusChanged(RunStatus(chunk.status), chunk.reason))
            elif steps_left is not None and steps_left <= 0:
                running = False
                results.put(StatusChanged(RunStatus.PAUSED))
        except MarginExplorerError as exc:
            running = False
            results.put(WorkerFailed(str(exc)))
        except MemoryError:
            running = False
            results.put(WorkerFailed("out of memory: try a smaller network, dataset or recording rate"))
        except Exception as exc:  # a bug: report it in the window rather than die silently
            running = False
            results.put(WorkerFailed(f"internal error ({type(exc).__name__}: {exc})\n{traceback.format_exc(limit=4)}"))
