"""A sweep's index, DIR/sweep.h5 (docs/run-format.md, "Sweeps"): the grid, and for each run its
coordinates, file, status and final metrics.

One writer: the client that runs the sweep (core/sweep.py). It rewrites the whole index into a
temporary file beside it and renames that over sweep.h5, so a reader (the Sweep view following a
sweep, `mx.load_sweep`) and a client killed at any moment see a complete index, the previous one
or the new one, never half of one: a killed HDF5 writer can leave a file that does not open
(DESIGN.md), a rename is atomic. A rewrite costs about a millisecond per thousand runs; the client
rewrites at most a few times a second.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

from .config import RunConfig
from .errors import RunFileError
from .sweep_grid import SweepPlan

INDEX_NAME = "sweep.h5"
FORMAT = "margin-explorer-sweep"
FORMAT_VERSION = 1
PENDING = "pending"
KEPT = ("finished", "diverged")  # a run in one of these states is done: --resume keeps it
TEMPORARY_PREFIX = ".sweep.h5.tmp-"
MAX_OBJECTS = 4096  # objects in one group of the index: a few dozen in practice


def index_path(folder) -> Path:
    return Path(folder) / INDEX_NAME


def is_sweep_folder(folder) -> bool:
    return Path(folder).is_dir() and index_path(folder).is_file()


def run_file_name(point: int, size: int) -> str:
    """The run file of grid point ``point``, relative to the sweep's folder."""
    return f"runs/run-{point:0{max(4, len(str(size - 1)))}d}.h5"


class SweepIndex:
    """The index in memory: ``plan`` (config and axes), and per run ``status``, ``reason``,
    ``file``, ``final_step``, ``seconds`` (its share of its task's time), ``session`` (which
    invocation trained it: 1 the first, 2 the first --resume, ...) and ``metrics`` (name -> the
    final value of each run, NaN where a run has none)."""

    def __init__(self, folder, plan: SweepPlan, *, state: str = "running", sessions: int = 0):
        self.folder = Path(folder)
        self.plan = plan
        n = plan.size
        self.status = np.full(n, PENDING, dtype=object)
        self.reason = np.full(n, "", dtype=object)
        self.file = np.array([run_file_name(i, n) for i in range(n)], dtype=object)
        self.final_step = np.zeros(n, dtype=np.int64)
        self.seconds = np.full(n, np.nan)
        self.session = np.zeros(n, dtype=np.int32)
        self.metrics: dict[str, np.ndarray] = {}
        self.state = state
        self.sessions = sessions
        self.updated = time.time()

    @property
    def size(self) -> int:
        return self.plan.size

    @property
    def done(self) -> int:
        return int(np.isin(self.status, KEPT).sum())

    def counts(self) -> dict:
        names, counts = np.unique(self.status.astype(str), return_counts=True)
        return dict(zip(names.tolist(), counts.tolist()))

    def record(self, point: int, status: str, reason: str = "", final_step: int = 0, seconds: float = np.nan,
               metrics: dict | None = None, session: int | None = None) -> None:
        self.status[point], self.reason[point] = status, reason
        self.final_step[point], self.seconds[point] = final_step, seconds
        self.session[point] = self.sessions if session is None else session
        for name, value in (metrics or {}).items():
            column = self.metrics.get(name)
            if column is None:
                column = self.metrics[name] = np.full(self.size, np.nan)
            try:
                column[point] = float(value)
            except (TypeError, ValueError):
                column[point] = np.nan
        for name, column in self.metrics.items():
            if metrics is None or name not in metrics:
                column[point] = np.nan

    # --- writing: the whole index to a temporary file, renamed over the old one --------------
    def write(self) -> None:
        self.updated = time.time()
        target = index_path(self.folder)
        temporary = self.folder / f"{TEMPORARY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        strings = h5py.string_dtype()
        try:
            with h5py.File(temporary, "x") as f:
                f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                                "config": self.plan.config.to_json(), "grid": json.dumps(self.plan.grid_dict()),
                                "state": self.state, "sessions": self.sessions, "updated": self.updated,
                                "runs": self.size, "done": self.done})
                axes = f.create_group("axes")
                coords = f.create_group("runs/coords")
                columns = coordinate_columns(self.plan)
                for axis, column in zip(self.plan.axes, columns):
                    ds = axes.create_dataset(axis.label, data=_array(axis.values))
                    ds.attrs.update({"path": axis.path, "log": axis.log})
                    coords.create_dataset(axis.label, data=column)
                runs = f["runs"]
                runs.create_dataset("status", data=self.status.astype(str).tolist(), dtype=strings)
                runs.create_dataset("reason", data=self.reason.astype(str).tolist(), dtype=strings)
                runs.create_dataset("file", data=self.file.astype(str).tolist(), dtype=strings)
                runs.create_dataset("final_step", data=self.final_step)
                runs.create_dataset("seconds", data=self.seconds)
                runs.create_dataset("session", data=self.session)
                final = runs.create_group("final")
                for name, column in self.metrics.items():
                    final.create_dataset(name, data=column)
            os.replace(temporary, target)
        except BaseException:
            if temporary.exists():
                temporary.unlink()  # our own temporary file, never the index
            raise

    @staticmethod
    def remove_stale_temporaries(folder) -> None:
        """Temporary indexes of a client killed while writing (ours by their name)."""
        for path in Path(folder).glob(f"{TEMPORARY_PREFIX}*"):
            if path.is_file() and not path.is_symlink():
                path.unlink()

    # --- reading ----------------------------------------------------------------------------
    @classmethod
    def read(cls, folder) -> "SweepIndex":
        """The index of the sweep in ``folder`` (RunFileError, one line, if there is none or it is
        not one)."""
        folder = Path(folder)
        path = index_path(folder)
        if not path.is_file():
            what = "does not exist" if not folder.exists() else "holds no sweep (no sweep.h5)"
            raise RunFileError(f"{folder}: {what}")
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise RunFileError(f"{path}: is not a Margin Explorer sweep index")
                version = int(f.attrs.get("format_version", 0))
                if version > FORMAT_VERSION:
                    raise RunFileError(f"{path}: a sweep index of format {version}, newer than this program "
                                       f"reads ({FORMAT_VERSION}); update Margin Explorer")
                config = RunConfig.from_json(_text(f.attrs["config"]))
                plan = SweepPlan.from_stored(config, json.loads(_text(f.attrs["grid"])))
                index = cls(folder, plan, state=_text(f.attrs.get("state", "running")),
                            sessions=int(f.attrs.get("sessions", 0)))
                index.updated = float(f.attrs.get("updated", 0.0))
                runs = _group(path, f, "runs")
                n = plan.size
                index.status[:] = _column(path, runs, "status", n, text=True)
                index.reason[:] = _column(path, runs, "reason", n, text=True)
                index.file[:] = _column(path, runs, "file", n, text=True)
                index.final_step[:] = _column(path, runs, "final_step", n)
                index.seconds[:] = _column(path, runs, "seconds", n)
                index.session[:] = _column(path, runs, "session", n)
                final = _group(path, runs, "final")
                for name in final.keys():
                    index.metrics[name] = _column(path, final, name, n).astype(np.float64)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, RunFileError):
                raise
            raise RunFileError(f"{path}: cannot be read as a sweep index ({exc})") from None
        bad = [f for f in index.file
               if f.startswith(("/", "\\")) or ":" in f or ".." in f.replace("\\", "/").split("/")]
        if bad:
            raise RunFileError(f"{path}: names a run file outside its folder ({bad[0]!r}): refused")
        return index


def coordinate_columns(plan: SweepPlan) -> list[np.ndarray]:
    """Each axis's value for every run (row-major over the axes, as the runs are numbered)."""
    grids = np.meshgrid(*[np.arange(n) for n in plan.shape], indexing="ij")
    return [_array(axis.values)[g.ravel()] for axis, g in zip(plan.axes, grids)]


def _array(values: list) -> np.ndarray:
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values], dtype=h5py.string_dtype())


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check(path: Path, group: h5py.Group, name: str) -> None:
    """The index holds its own data: no links, virtual datasets or external storage (DESIGN.md)."""
    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise RunFileError(f"{path}: {group.name}/{name} is not stored in the index itself: refused")
    obj = group[name]
    if isinstance(obj, h5py.Dataset) and (obj.is_virtual or obj.external):
        raise RunFileError(f"{path}: {group.name}/{name} is stored outside the index: refused")


def _group(path: Path, parent: h5py.Group, name: str) -> h5py.Group:
    if name not in parent.keys():
        raise RunFileError(f"{path}: the index has no '{name}' group; it is damaged")
    _check(path, parent, name)
    group = parent[name]
    if not isinstance(group, h5py.Group) or len(group) > MAX_OBJECTS:
        raise RunFileError(f"{path}: '{name}' is not a group of the index; it is damaged")
    return group


def _column(path: Path, group: h5py.Group, name: str, n: int, text: bool = False) -> np.ndarray:
    if name not in group.keys():
        raise RunFileError(f"{path}: the index has no '{group.name}/{name}'; it is damaged")
    _check(path, group, name)
    ds = group[name]
    if not isinstance(ds, h5py.Dataset) or ds.shape != (n,):
        raise RunFileError(f"{path}: '{group.name}/{name}' does not hold one value per run ({n}); it is damaged")
    return np.asarray(ds.asstr()[:], dtype=object) if text else ds[:]
