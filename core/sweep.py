"""Sweeps on Dask's distributed scheduler (docs/sweeps.md): the client side.

The client cuts the grid into tasks (core/sweep_grid.py), submits them to a Dask cluster (a
LocalCluster of processes on this machine by default, or a scheduler's address), and keeps the
index (core/sweep_index.py) as their results come back: it is the index's one writer. The tasks
(core/sweep_task.py) train families on the workers and write the run files. Dask reruns a task
whose worker died; a task's results are counted once, by the client, when its future completes.

Stopping (Ctrl+C on the command line, should_stop(), KeyboardInterrupt in a notebook) cancels
what has not finished; finished runs stay, and `--resume` (resume=True) trains only the runs
that are missing or unfinished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConfigError, RunFileError
from .run_reader import RunReader
from .sweep_grid import SweepPlan
from .sweep_index import KEPT, PENDING, SweepIndex, is_sweep_folder
from .sweep_task import PARTIAL, train_task

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

CONNECT_SECONDS = 5  # how long a scheduler's address is tried before it is called unreachable
INDEX_SECONDS = 0.5  # the index is rewritten at most this often while results arrive
LOCK_NAME = ".sweep.lock"


@dataclass
class SweepProgress:
    """Where a sweep stands: runs ``done`` (finished or diverged) of ``total``, ``failed``,
    ``trained`` in this session of ``to_train``, ``rate`` (runs a second, this session), ``left``
    (seconds, None until a rate is known) and the Dask ``dashboard`` address ("" without one)."""

    done: int
    total: int
    failed: int
    trained: int
    to_train: int
    elapsed: float
    rate: float
    left: float | None
    dashboard: str


# --- the result ---------------------------------------------------------------------------

class Sweep:
    """A sweep's folder read through its index: ``table`` (coordinates, status, file and final
    metrics of every run: a pandas DataFrame when pandas is installed, else a numpy structured
    array), ``axes``, ``config`` and ``runs(where)`` (the Runs, loaded from their files)."""

    def __init__(self, index: SweepIndex):
        self.index = index
        self.path = index.folder
        self.plan = index.plan
        self.config = index.plan.config
        self.axes = index.plan.axes
        self.stopped = index.state == "stopped"

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.index.counts().items()))
        return f"Sweep({str(self.path)!r}, {self.index.size} runs: {counts})"

    def __len__(self) -> int:
        return self.index.size

    def columns(self) -> dict:
        """The table as {column: numpy array}: run, one per axis, status, reason, file,
        final_step, seconds, session, then the final metrics."""
        from .sweep_index import coordinate_columns

        index = self.index
        out = {"run": np.arange(index.size)}
        for axis, column in zip(self.axes, coordinate_columns(self.plan)):
            out[axis.label] = column.astype(str) if column.dtype.kind == "O" else column
        out.update({"status": index.status.astype(str), "reason": index.reason.astype(str),
                    "file": index.file.astype(str), "final_step": index.final_step, "seconds": index.seconds,
                    "session": index.session})
        for name, column in index.metrics.items():
            out.setdefault(name, column)
        return out

    @property
    def table(self):
        columns = self.columns()
        try:
            import pandas
        except ImportError:
            return np.rec.fromarrays(list(columns.values()), names=list(columns))
        return pandas.DataFrame(columns)

    def to_csv(self, path) -> None:
        """The table as a CSV file (one row per run)."""
        import csv

        columns = self.columns()
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(list(columns))
            for row in zip(*columns.values()):
                writer.writerow([v.item() if isinstance(v, np.generic) else v for v in row])

    def select(self, where=None) -> np.ndarray:
        """The numbers of the runs that ``where`` picks: None (all), {axis label or column: a
        value, a list of values or a predicate}, a callable of the row (a dict), or a boolean mask."""
        n = self.index.size
        if where is None:
            return np.arange(n)
        columns = self.columns()
        if callable(where):
            rows = [{name: column[i] for name, column in columns.items()} for i in range(n)]
            return np.array([i for i, row in enumerate(rows) if where(row)], dtype=np.int64)
        if isinstance(where, dict):
            mask = np.ones(n, dtype=bool)
            for name, wanted in where.items():
                if name not in columns:
                    raise ConfigError(f"where: {name!r} is no column of the sweep's table "
                                      f"(columns: {', '.join(columns)})")
                mask &= _matches(columns[name], wanted)
            return np.flatnonzero(mask)
        mask = np.asarray(where)
        if mask.dtype != bool or mask.shape != (n,):
            raise ConfigError(f"where: a dict of column values, a callable or a boolean mask of {n} runs")
        return np.flatnonzero(mask)

    def files(self, where=None, *, present: bool = True) -> list[Path]:
        """The run files of the runs ``where`` picks (those that exist, with ``present``)."""
        paths = [self.path / str(self.index.file[i]) for i in self.select(where)]
        return [p for p in paths if p.is_file()] if present else paths

    def runs(self, where=None) -> list:
        """The Runs ``where`` picks (see select) whose files exist, loaded (core/api.py load)."""
        from .api import load

        return [load(p) for p in self.files(where)]


def _matches(column: np.ndarray, wanted) -> np.ndarray:
    if callable(wanted):
        return np.array([bool(wanted(v)) for v in column])
    values = wanted if isinstance(wanted, (list, tuple, set, np.ndarray, range)) else [wanted]
    mask = np.zeros(len(column), dtype=bool)
    for value in values:
        if column.dtype.kind == "f" and isinstance(value, (int, float, np.number)):
            mask |= np.isclose(column, float(value), rtol=1e-9, atol=0.0)
        else:
            mask |= column == value
    return mask


def load_sweep(folder) -> Sweep:
    """The sweep in ``folder`` (DIR/sweep.h5), also one a client is still running."""
    return Sweep(SweepIndex.read(folder))


# --- running --------------------------------------------------------------------------------

def _check_folder(folder: Path, resume: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise RunFileError(f"{folder}: is not a folder; a sweep writes a folder of run files (--out DIR)")
    if resume:
        if not is_sweep_folder(folder):
            raise RunFileError(f"{folder}: holds no sweep to resume (no sweep.h5)")
        return
    if is_sweep_folder(folder):
        raise RunFileError(f"{folder}: already holds a sweep; --resume (resume=True) trains what it lacks, or "
                           "choose a new folder")
    if folder.exists() and any(folder.iterdir()):
        raise RunFileError(f"{folder}: is not empty and holds no sweep; choose a new or empty folder")
    if not folder.parent.is_dir():
        raise RunFileError(f"{folder}: the folder {folder.parent} does not exist")


@contextlib.contextmanager
def _client_lock(folder: Path):
    """One client per sweep folder: the index has one writer."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunFileError(f"{folder}: another sweep client is running in this folder") from None
        yield
    finally:
        os.close(fd)


def connect(client=None, scheduler: str | None = None, workers: int | None = None):
    """(client, cluster we started or None, whether the client is ours). ``client``: a
    distributed.Client to use as it is; ``scheduler``: a Dask scheduler's address; neither: a
    LocalCluster of ``workers`` processes (one thread each) on this machine."""
    from distributed import Client

    if client is not None:
        if scheduler is not None:
            raise ConfigError("--scheduler: give a client or a scheduler's address, not both")
        return client, None, False
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers: a whole number >= 1, got {workers!r}")
    if scheduler is not None:
        if workers is not None:
            raise ConfigError("--workers: the workers of a scheduler are started with it (docs/sweeps.md); "
                              "--workers is for the local cluster")
        _probe(scheduler)
        try:
            return Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False), None, True
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc})"[:500]) from None
    from distributed import LocalCluster

    # a free port: two sweeps on one machine would otherwise both want 8787
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        return Client(cluster, set_as_default=False), cluster, True
    except BaseException:
        cluster.close()
        raise


def _probe(address: str) -> None:
    """Refuse at once an address where nothing listens (Dask's client retries until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"--scheduler: a Dask scheduler's address such as tcp://HOST:8786, got {address!r}")
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return  # tls://, ucx://, inproc://: Dask's client tells
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        raise ConfigError(f"--scheduler {address}: not an address (tcp://HOST:PORT)") from None
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(f"--scheduler {address}: no Dask scheduler answers there ({exc.strerror or exc})") from None


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401  the dashboard's dependency
    except ImportError:
        return False
    return True


def dashboard_address(client, local: bool) -> str:
    """The dashboard's address, "" when the scheduler serves none: a local scheduler serves its
    pages only where bokeh is installed (a remote one's we cannot tell, so its address is shown)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}) or (local and not _has_bokeh()):
            return ""
        return client.dashboard_link
    except Exception:  # noqa: BLE001  a scheduler that does not tell: no address to show
        return ""


def _reconcile(index: SweepIndex) -> None:
    """On --resume: a run the index counts as done but whose file is gone is trained again; a run
    file that exists but the index does not count (the client died before it wrote the index) is
    taken from the file. A file in runs/ is always complete (core/sweep_task.py)."""
    for point in range(index.size):
        path = index.folder / str(index.file[point])
        kept = index.status[point] in KEPT
        if kept and not path.is_file():
            index.record(point, PENDING, "its run file is missing", session=0)
        elif not kept and path.is_file():
            try:
                with RunReader(path) as reader:
                    status, reason, step = reader.status, reader.status_reason, reader.final_step
                    metrics = reader.final_metrics()
            except RunFileError:
                continue  # trained again; the task replaces it only if it is a run file
            if status in KEPT:
                index.record(point, status, reason, step, metrics=metrics, session=max(index.sessions - 1, 1))


def _remove_partials(folder: Path) -> None:
    """Partial files of attempts that will never finish (killed workers, a stopped sweep)."""
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)
    SweepIndex.remove_stale_temporaries(folder)


def run_sweep(plan: SweepPlan | None, out, *, client=None, scheduler: str | None = None,
              workers: int | None = None, resume: bool = False,
              on_progress: Callable[[SweepProgress], None] | None = None,
              should_stop: Callable[[], object] = lambda: False) -> Sweep:
    """Train the runs of ``plan`` into the folder ``out`` (see the module docstring); with
    ``resume`` only those the folder lacks (``plan`` None: the folder's own grid). Everything a
    user can get wrong (the folder, the scheduler, the grid) is refused before anything trains."""
    folder = Path(out)
    _check_folder(folder, resume)
    index = None
    if resume:
        index = SweepIndex.read(folder)
        if plan is not None and not plan.same_grid(index.plan):
            raise ConfigError(f"--resume: {folder} holds a sweep of another config or grid; give the same config, "
                              "--grid, --seeds and --steps, or none of them")
        plan = index.plan
    if plan is None:
        raise ConfigError("sweep: a config and a grid, or resume=True on a sweep's folder")
    with _environment_kept():
        client, cluster, owned = connect(client, scheduler, workers)
        try:
            folder.mkdir(exist_ok=True)
            with _client_lock(folder):
                return _run(plan, folder, index, client, cluster is not None, on_progress, should_stop)
        finally:
            if owned:
                client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _environment_kept():
    """Dask's nannies live in this process and set OMP_NUM_THREADS=1, MKL_NUM_THREADS=1,
    OPENBLAS_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_ and PYTHONHASHSEED in its environment, so that
    the worker processes they spawn inherit them; they stay after the cluster closes, and every
    program the caller starts later would run one-threaded. A library call changes nothing global
    (DESIGN.md): the environment is put back as it was."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def _run(plan, folder, index, client, local, on_progress, should_stop) -> Sweep:
    if index is None:
        index = SweepIndex(folder, plan)
    index.sessions += 1
    index.state = "running"
    _remove_partials(folder)
    _reconcile(index)
    wanted = [p for p in range(index.size) if index.status[p] not in KEPT]
    for point in wanted:
        if index.status[point] != PENDING:
            index.record(point, PENDING, session=0)
    tasks = plan.tasks(wanted)
    index.write()
    wanted_set = set(wanted)
    futures = {}
    token = os.urandom(6).hex()
    for task in tasks:
        spec = {"key": task.key, "config": task.config, "points": task.points,
                "files": [str(index.file[p]) for p in task.points],
                "wanted": [p for p in task.points if p in wanted_set]}
        future = client.submit(train_task, spec, str(folder), key=f"{task.key}-{token}", pure=False)
        futures[future.key] = (future, spec)
    dashboard = dashboard_address(client, local)
    started = time.perf_counter()
    trained = failed = 0
    last_write = time.perf_counter()
    dirty = False
    stopped = False

    def report():
        elapsed = time.perf_counter() - started
        rate = trained / elapsed if elapsed > 0 and trained else 0.0
        left = (len(wanted) - trained - failed) / rate if rate > 0 else None
        if on_progress is not None:
            on_progress(SweepProgress(index.done, index.size, failed, trained, len(wanted), elapsed, rate, left,
                                      dashboard))

    from distributed import as_completed

    pending = as_completed([f for f, _spec in futures.values()], loop=client.loop)
    report()
    try:
        while not pending.is_empty():
            if should_stop():
                stopped = True
                break
            batch = pending.next_batch(block=False)
            if not batch:
                time.sleep(0.05)
            for future in batch:
                _future, spec = futures[future.key]
                n_ok, n_failed = _collect(index, future, spec)
                trained += n_ok
                failed += n_failed
                dirty = True
            if batch:
                report()
            if dirty and time.perf_counter() - last_write >= INDEX_SECONDS:
                index.write()
                last_write, dirty = time.perf_counter(), False
    except KeyboardInterrupt:  # a notebook's interrupt (the command line stops through should_stop)
        stopped = True
    finally:
        if stopped or any(not f.done() for f, _s in futures.values()):
            stopped = True
            client.cancel([f for f, _s in futures.values() if not f.done()], force=True)
        index.state = "stopped" if stopped else "finished"
        index.write()
        if not stopped:
            _remove_partials(folder)
    report()
    return Sweep(index)


def _collect(index: SweepIndex, future, spec) -> tuple[int, int]:
    """Record a finished task's runs in the index: (runs trained, runs failed)."""
    if future.status == "finished":
        results = future.result()
        for result in results:
            index.record(result["point"], result["status"], result["reason"], result["final_step"],
                         result["seconds"], result["metrics"])
        return len(results), 0
    if future.status == "cancelled":
        return 0, 0
    exc = future.exception()
    name = type(exc).__name__
    if name == "KilledWorker":
        reason = "the workers running it died too often (KilledWorker): it may need more memory"
    else:
        reason = f"{name}: {exc}"
    for point in spec["wanted"]:
        index.record(point, "failed", reason[:2000])
    return 0, len(spec["wanted"])


def sweep(config, grid=None, *, seeds=None, out, steps: int | None = None, client=None,
          scheduler: str | None = None, workers: int | None = None, resume: bool = False,
          on_progress: Callable[[SweepProgress], None] | None = None) -> Sweep:
    """Train every run of ``grid`` x ``seeds`` on ``config`` into the folder ``out`` on a Dask
    cluster; returns the Sweep (see core/api.py's mx.sweep)."""
    plan = SweepPlan.build(config, grid or {}, seeds, steps) if config is not None else None
    return run_sweep(plan, out, client=client, scheduler=scheduler, workers=workers, resume=resume,
                     on_progress=on_progress)
