"""The training worker process on its own (Qt-free): it answers geometry requests, and it ends
itself when the window that started it dies."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from margin_explorer.app.messages import (AskGeometry, ChunkArrived, GeometryFound, Pause, Quit, SetPace, Started,
                                          StartRun, StatusChanged)
from margin_explorer.core import datasets, reference
from margin_explorer.core.presets import load_preset

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_worker():
    """A training worker process (spawned as the window spawns it): yields its (commands, results)
    queues; asked to quit, and killed if it does not, when the block ends."""
    import multiprocessing as mp

    from margin_explorer.app.worker import worker_main

    ctx = mp.get_context("spawn")
    commands, results = ctx.Queue(), ctx.Queue()
    worker = ctx.Process(target=worker_main, args=(commands, results), daemon=True)
    worker.start()
    running_worker.pid = worker.pid
    try:
        yield commands, results
    finally:
        commands.put(Quit())
        worker.join(10)
        if worker.is_alive():
            worker.kill()
        for q in (commands, results):
            q.cancel_join_thread()
            q.close()

# a stand-in for the window: starts a worker on a long run, prints the worker's pid, waits
WINDOW = """
import multiprocessing as mp, sys, time
from margin_explorer.app.messages import StartRun
from margin_explorer.app.worker import worker_main
if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    commands, results = ctx.Queue(), ctx.Queue()
    worker = ctx.Process(target=worker_main, args=(commands, results), daemon=True)
    worker.start()
    commands.put(StartRun(sys.argv[1], sys.argv[2] == "run"))
    results.get(timeout=60)  # started
    print(worker.pid, flush=True)
    time.sleep(600)
"""


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:  # a zombie has ended (a container's init may not reap it)
            return any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return True


def _worker_outlives_its_window(tmp_path, mode: str) -> float:
    config = load_preset("relu2-blobs")
    config.run.steps = 10 ** 9
    script = tmp_path / "window.py"
    script.write_text(WINDOW)
    window = subprocess.Popen([sys.executable, str(script), config.to_json(), mode], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pid = int(window.stdout.readline())
    time.sleep(0.5)
    window.send_signal(signal.SIGKILL)
    window.wait()
    start = time.time()
    while not _ended(pid) and time.time() - start < 20:
        time.sleep(0.1)
    ended_after = time.time() - start
    if not _ended(pid):
        os.kill(pid, signal.SIGKILL)
    return ended_after


def test_a_training_worker_ends_when_its_window_is_killed(tmp_path):
    assert _worker_outlives_its_window(tmp_path, "run") < 5


def test_an_idle_worker_ends_when_its_window_is_killed(tmp_path):
    assert _worker_outlives_its_window(tmp_path, "paused") < 5


def test_the_worker_is_a_session_of_its_own():
    """Linux's autogroup scheduler shares the CPU between sessions: in the window's session the
    training process got the window's leftovers on a loaded machine (app/worker.py own_session)."""
    with running_worker() as (commands, results):
        blobs = datasets.linearly_separable(20, 2, 0.3, seed=0)
        commands.put(AskGeometry(1, blobs.X, blobs.y))
        assert isinstance(results.get(timeout=60), GeometryFound)  # its loop runs: own_session is behind it
        assert os.getsid(running_worker.pid) == running_worker.pid != os.getsid(0)


def test_the_worker_answers_geometry_requests():
    with running_worker() as (commands, results):
        blobs = datasets.linearly_separable(40, 2, 0.3, seed=0)
        xor = datasets.xor(40, seed=0)
        commands.put(AskGeometry(7, blobs.X, blobs.y))
        commands.put(AskGeometry(8, xor.X, xor.y))
        commands.put(AskGeometry(9, np.zeros((2, 2)), np.array([1.0, -1.0])))  # the same point in both classes
        answers = {}
        while len(answers) < 3:
            answer = results.get(timeout=60)
            assert isinstance(answer, GeometryFound)
            answers[answer.token] = answer.facts
        assert answers[7]["separable"]
        np.testing.assert_allclose(answers[7]["margin"], reference.svm_margin(blobs.X, blobs.y), rtol=1e-9)
        assert answers[8]["separable"] is False and answers[8]["margin"] is None
        assert answers[8]["through_origin"] is False
        assert answers[9]["separable"] is False
        assert answers[9]["ray_pairs"]["count"] == 1  # two points at the origin: on every ray, opposite labels



def _steps_in(seconds: float, pace: float) -> int:
    """Steps a worker trains of the demo in ``seconds`` at ``pace`` steps/s (0: full speed)."""
    config = load_preset("relu2-blobs")
    config.run.steps = 10 ** 9
    with running_worker() as (commands, results):
        commands.put(SetPace(pace))
        commands.put(StartRun(config.to_json(), True))
        assert isinstance(results.get(timeout=60), Started)
        start, last = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            message = results.get(timeout=10)
            if isinstance(message, ChunkArrived):
                last = message.step
        return last


def test_the_pace_holds_a_run_to_its_steps_per_second_and_full_speed_is_untouched():
    paced = _steps_in(1.5, 40.0)
    assert 40 <= paced <= 75, paced  # 40 steps/s for 1.5 s: 60, give or take a chunk's lag
    full = _steps_in(1.5, 0.0)
    assert full > 20 * paced, (full, paced)


def test_a_pause_that_crosses_the_end_of_a_run_leaves_it_finished():
    """Space pressed as a short run ends: the worker answered "paused" after "finished", and the
    window then waited forever for steps a finished trainer never takes."""
    config = load_preset("linear-separable")
    config.run.steps = 50
    with running_worker() as (commands, results):
        commands.put(StartRun(config.to_json(), True))
        statuses = []
        while "finished" not in statuses:
            message = results.get(timeout=60)
            if isinstance(message, StatusChanged):
                statuses.append(message.status)
        commands.put(Pause())
        commands.put(AskGeometry(7, np.eye(2), np.array([1.0, -1.0])))  # answered after the pause
        while True:
            message = results.get(timeout=60)
            if isinstance(message, GeometryFound):
                break
            if isinstance(message, StatusChanged):
                statuses.append(message.status)
        assert statuses == ["finished"]


def test_a_command_that_is_not_a_message_is_reported_not_waited_on():
    """A bare tuple (the old protocol) once left the worker idle forever; now it says so."""
    from margin_explorer.app.messages import WorkerFailed

    with running_worker() as (commands, results):
        commands.put(("start", "{}", True))
        answer = results.get(timeout=60)
        assert isinstance(answer, WorkerFailed) and "not a command of app/messages.py: ('start'" in answer.message


def test_the_worker_trains_a_cnn_run():
    """The window's Run with a CNN config: the worker's driver trains it on autograd to the end."""
    from margin_explorer.core.config import RunConfig
    from tests.test_conv import CNN_RUN

    config = RunConfig.from_dict(dict(CNN_RUN, run={"steps": 8}))
    with running_worker() as (commands, results):
        commands.put(StartRun(config.to_json(), True))
        statuses, steps = [], 0
        while "finished" not in statuses:
            message = results.get(timeout=120)
            if isinstance(message, StatusChanged):
                statuses.append(message.status)
            elif isinstance(message, ChunkArrived):
                steps = max(steps, message.step)
        assert statuses == ["finished"] and steps == 8


def test_the_live_boundary_grid_is_computed_on_one_blas_thread(monkeypatch):
    """Its product is large enough for OpenBLAS to thread; on a loaded machine that waited on a
    descheduled helper thread, a quarter of the training process's time (app/worker.py _live_grid)."""
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from margin_explorer.app import worker
    from margin_explorer.core.trainer import Trainer

    config = load_preset("relu2-blobs")
    config.run.backend = "numpy"
    trainer = Trainer(config)
    seen = []
    real = worker.boundary_grid
    monkeypatch.setattr(worker, "boundary_grid", lambda *args: (
        seen.append(max(p.num_threads for p in ThreadpoolController().select(user_api="blas").lib_controllers)),
        real(*args))[1])
    with threadpool_limits(2, user_api="blas"):
        grid = worker._live_grid(trainer)
        after = max(p.num_threads for p in ThreadpoolController().select(user_api="blas").lib_controllers)
    assert seen == [1] and after == 2  # one thread inside, the pools as they were after
    np.testing.assert_array_equal(grid.values, real(trainer.net, trainer.members[0].theta, trainer.dataset.X).values)
