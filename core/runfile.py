"""The HDF5 run file (schema in docs/run-format.md): written while the run goes, read back by
the window, the command line and plain h5py in a notebook. Arrays, attributes and JSON
strings only; no pickle.

The writer uses HDF5's single-writer/multiple-reader mode (SWMR): every dataset is created
up front, then each chunk is appended and flushed. A writer killed at any moment (kill -9)
leaves a file that opens, through SWMR read, with everything up to the last flush; and a file
still being written can be opened by another process and grows as it is refreshed.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import platform
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .config import RunConfig
from .datasets import Dataset
from .errors import RunFileError, RunFileWriteError
from .metrics import RATE_SCALARS, SCALAR_METRICS, SNAPSHOT_METRICS, SUPPORT_DECADES, TEST_QUANTILES, TEST_SCALARS
from .output_path import FORMAT, check_output, hold_writer_lock

# Chunk sizes: a chunk is allocated whole on disk and held whole in HDF5's cache while it fills, so
# they stay small (4 KB a scalar series, at most 64 KB a row block of an array metric): larger ones
# cost a short family member megabytes of disk and memory (docs/performance.md).
# HDF5's chunk cache per dataset holds the chunk being filled: two array chunks' worth in a few hash
# slots (the default 521 slots more than doubled a writer's memory before anything was written).
SCALAR_CHUNK = 512
ARRAY_CHUNK_BYTES = 64 << 10
CHUNK_CACHE_BYTES = 2 * ARRAY_CHUNK_BYTES
CHUNK_CACHE_SLOTS = 17
# room kept free on the disk for closing a run file and writing its final status
DISK_RESERVE_BYTES = 1 << 20
# files whose HDF5 write failed: kept referenced so that no garbage collection closes them again
_ABANDONED: list = []
# the reader and its checks live in run_reader.py; imported here so `core.runfile.RunReader` works
from .run_reader import COLUMN_AXES, FORMAT_VERSION, INT_METRICS, RunReader  # noqa: E402,F401


@functools.cache  # importlib.metadata reads the installed packages: slow, and once per family member
def _versions() -> dict:
    out = {"app_version": __version__, "numpy_version": np.__version__, "h5py_version": h5py.__version__,
           "python_version": platform.python_version()}
    try:  # torch is optional on the CPU path; record it when it is importable
        import importlib.metadata as md

        out["torch_version"] = md.version("torch")
    except Exception:
        out["torch_version"] = "not installed"
    return out


class RunWriter:
    """Append a run to ``path`` chunk by chunk. Use as a context manager or call ``close``.

    ``path`` must be new, or (``overwrite``) a run file that may be replaced: core/output_path.py
    says which; ``inputs`` names the files the run reads, never written. A new file is created
    exclusively at ``path``, so a reader can follow it from the first flush; a replaced run is
    written under a temporary name beside it and renamed over the old one once it is a valid
    run, so the path always holds one whole run. For the whole run the writer holds a shared
    flock on the file: readers open it, another writer does not (HDF5 drops its own lock when
    SWMR writing starts). Before each append it checks that the disk has room for the chunk plus
    DISK_RESERVE_BYTES, and stops with RunFileWriteError while the file can still be closed; if
    HDF5 itself fails in a write, the file is closed once and h5py is never called on it again.
    """

    def __init__(self, path: str | os.PathLike, config: RunConfig, dataset: Dataset, *, n_params: int,
                 layer_names: list[str], ensemble_size: int, homogeneity: dict, device: str,
                 parent: str = "", start_step: int = 0, family: dict | None = None,
                 overwrite: bool = False, inputs: dict | None = None, reference_margin: float | None = None,
                 reference_margin_steepest: float | None = None):
        self.path = Path(path)
        self.closed = False
        self.broken = False  # HDF5 failed inside a write: never call it again
        self.last_step_written = None  # the step of the last record on disk
        self._lock_fd = None
        replace = check_output(self.path, overwrite=overwrite, inputs=inputs)
        # replacing through a symbolic link replaces the run it points to, not the link
        target = Path(os.path.realpath(self.path)) if replace else self.path
        created = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part") if replace else target
        self.target = target
        try:  # room for the header and the dataset, and to close the file
            check_space(target, DISK_RESERVE_BYTES + dataset.X.nbytes + dataset.y.nbytes
                        + (0 if dataset.X_test is None else dataset.X_test.nbytes + dataset.y_test.nbytes))
        except RunFileWriteError as exc:
            raise RunFileWriteError(f"{self.path}: cannot be created: {exc}") from None
        try:
            f = h5py.File(created, "x", libver="latest", rdcc_nbytes=CHUNK_CACHE_BYTES,
                          rdcc_nslots=CHUNK_CACHE_SLOTS)  # "x": O_CREAT|O_EXCL, never truncates
        except OSError as exc:
            if not replace and os.path.lexists(created):  # another writer created it a moment ago
                raise RunFileError(f"{self.path}: already exists (another program created it just now)") from None
            raise RunFileError(f"{self.path}: cannot be created ({exc})") from None
        self.file = f
        try:
            self._create(config, dataset, n_params=n_params, layer_names=layer_names, ensemble_size=ensemble_size,
                         homogeneity=homogeneity, device=device, parent=parent, start_step=start_step, family=family,
                         references=(reference_margin, reference_margin_steepest))
            f.swmr_mode = True
            f.flush()
            self._lock_fd = hold_writer_lock(created)
            if replace:
                check_output(target, overwrite=True, inputs=inputs)  # still a run nobody writes
                os.replace(created, target)
        except BaseException as exc:
            self._abandon(exc)
            try:
                os.unlink(created)  # ours: created exclusively above
            except OSError:
                pass
            if isinstance(exc, RunFileError) or not isinstance(exc, (OSError, RuntimeError, ValueError)):
                raise
            error = RunFileWriteError(f"{self.path}: cannot be created ({_cause(exc)})")
            error.hdf5_unusable = self.broken
            raise error from None

    def _create(self, config, dataset, *, n_params, layer_names, ensemble_size, homogeneity, device, parent,
                start_step, family, references) -> None:
        f = self.file
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["config"] = json.dumps(config.to_dict())
        f.attrs["status"] = "running"
        f.attrs["status_reason"] = "the writer was still running, or it was killed, when this file was last flushed"
        f.attrs["device"] = device
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["homogeneity"] = json.dumps(homogeneity)
        f.attrs["margin_order"] = float(homogeneity["order"]) if homogeneity.get("order") is not None else float("nan")
        f.attrs["loss_reduction"] = config.loss.reduction
        f.attrs["margin_norm"] = "l2"
        f.attrs["parent"] = parent
        f.attrs["start_step"] = int(start_step)
        # the max-margin values the Normalized margin plot draws dashed (NaN: the run has none)
        for key, value in zip(("reference_margin", "reference_margin_steepest"), references):
            f.attrs[key] = float("nan") if value is None else float(value)
        if family is not None:  # this run is one member of a family (docs/run-format.md, Families)
            f.attrs["family"] = json.dumps(family)
        for key, value in _versions().items():
            f.attrs[key] = value
        data = f.create_group("dataset")
        data.create_dataset("X", data=dataset.X)
        data.create_dataset("y", data=dataset.y)
        data.attrs["name"] = dataset.name
        if dataset.classes != 2:  # absent: binary, labels -1/+1 (every file before multi-class)
            data.attrs["classes"] = int(dataset.classes)
        if dataset.image_shape is not None:  # rows are images of this (height, width)
            data.attrs["image_shape"] = np.asarray(dataset.image_shape, dtype=np.int64)
        if dataset.X_test is not None:  # the test set, never trained on (absent: none)
            data.create_dataset("X_test", data=dataset.X_test)
            data.create_dataset("y_test", data=dataset.y_test)
        metrics = f.create_group("metrics")
        self.metrics = {}
        for name, definition in SCALAR_METRICS.items():
            dtype = np.int64 if name in INT_METRICS else np.float64
            ds = metrics.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(SCALAR_CHUNK,), dtype=dtype)
            ds.attrs["definition"] = definition
            self.metrics[name] = ds
        tested = dataset.X_test is not None  # the test metrics: only for a run with a test set
        adaptive = config.optimizer.step_rule == "loss_based"  # alpha and step_taken: that rule's only
        for name, definition in [*(TEST_SCALARS.items() if tested else ()), *(RATE_SCALARS.items() if adaptive else ())]:
            ds = metrics.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(SCALAR_CHUNK,), dtype=np.float64)
            ds.attrs["definition"] = definition
            self.metrics[name] = ds
        widths = {"sample_margins": dataset.n, "layer_norms": len(layer_names), "stable_rank": len(layer_names),
                  "support_counts": SUPPORT_DECADES}
        if ensemble_size:
            widths["ensemble_share"] = ensemble_size
        if tested:
            widths["test_margin_quantiles"] = len(TEST_QUANTILES)
        from .metrics import ARRAY_METRICS, TEST_ARRAYS

        for name, width in widths.items():
            rows = max(1, min(1024, ARRAY_CHUNK_BYTES // max(8 * width, 1)))
            ds = metrics.create_dataset(name, shape=(0, width), maxshape=(None, width), chunks=(rows, max(width, 1)),
                                        dtype=np.float64)
            ds.attrs["definition"] = {**ARRAY_METRICS, **TEST_ARRAYS}[name]
            if name in ("layer_norms", "stable_rank"):
                ds.attrs["columns"] = json.dumps(layer_names)
            self.metrics[name] = ds
        self._label_axes(metrics, {"sample": np.arange(dataset.n), "layer": layer_names,
                                   "member": np.arange(ensemble_size), "decade": np.arange(1, SUPPORT_DECADES + 1),
                                   "quantile": np.asarray(TEST_QUANTILES)})
        snaps = f.create_group("snapshots")
        self.snap_step = snaps.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(256,), dtype=np.int64)
        prow = max(1, min(64, (1 << 20) // (8 * n_params)))
        self.snap_params = snaps.create_dataset("params", shape=(0, n_params), maxshape=(None, n_params),
                                                chunks=(prow, n_params), dtype=np.float64)
        self.snap_metrics = {}
        for name, definition in SNAPSHOT_METRICS.items():
            ds = snaps.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(256,), dtype=np.float64)
            ds.attrs["definition"] = definition
            self.snap_metrics[name] = ds
        self.final_params = snaps.create_dataset("final_params", shape=(n_params,), dtype=np.float64)
        self.final_step = snaps.create_dataset("final_step", shape=(), dtype=np.int64)
        self.final_step[()] = start_step
        self._create_optimizer_state(snaps, config.optimizer, n_params)
        self._create_events(f)

    def _label_axes(self, metrics, columns: dict) -> None:
        """HDF5 dimension scales (docs/run-format.md): ``step`` labels every metric's rows, and
        ``sample``, ``layer``, ``member`` and ``decade`` (support_counts' k) the array metrics'
        columns, so that netCDF readers
        (xarray with h5netcdf) see labeled arrays. Made before SWMR starts: appending rows to
        ``step`` later changes no attribute."""
        step = self.metrics["step"]
        step.make_scale("step")
        scales = {}
        for name, ds in self.metrics.items():
            if name == "step":
                continue
            ds.dims[0].attach_scale(step)
            axis = COLUMN_AXES.get(name)
            if axis is not None:
                if axis not in scales:
                    values = columns[axis]
                    data = (np.array(values, dtype=h5py.string_dtype()) if axis == "layer"
                            else np.asarray(values, np.float64) if axis == "quantile"
                            else np.asarray(values, np.int64))
                    scales[axis] = metrics.create_dataset(axis, data=data)
                    scales[axis].make_scale(axis)
                ds.dims[1].attach_scale(scales[axis])

    def _create_optimizer_state(self, snaps, optimizer, n_params: int) -> None:
        """``snapshots/optimizer_state``: the state that goes with final_params (core/optimizers.py
        state_layout) and ``step``, the step it belongs to (-1: none saved, e.g. a file the window
        saved from a session), written with final_params at every append."""
        from .optimizers import state_layout

        group = snaps.create_group("optimizer_state")
        self.optimizer_state = {name: group.create_dataset(name, shape=shape, dtype=dtype)
                                for name, (shape, dtype) in
                                state_layout(optimizer.kind, n_params, optimizer.step_rule).items()}
        self.optimizer_state_step = group.create_dataset("step", data=np.int64(-1))

    def space_needed(self, chunk) -> int:
        """Bytes the disk must have free before ``chunk`` is appended: the HDF5 chunks its rows
        start, plus DISK_RESERVE_BYTES to close the file and write its final status."""
        n_new = len(chunk.records.get("step", ()))
        k = len(chunk.snapshot_steps or ())
        grows = [(ds, n_new) for name, ds in self.metrics.items() if name in chunk.records]
        grows += [(ds, k) for ds in (self.snap_step, self.snap_params, *self.snap_metrics.values())]
        total = DISK_RESERVE_BYTES
        for ds, rows in grows:
            if rows:
                per_chunk = ds.chunks[0]
                have = ds.shape[0]
                started = -(-(have + rows) // per_chunk) - -(-have // per_chunk)
                total += started * int(np.prod(ds.chunks)) * ds.dtype.itemsize
        return total

    def append(self, chunk) -> None:
        """Append a trainer Chunk and flush, so a reader (or a crash) sees it whole. Raises
        RunFileWriteError, having written nothing, when the disk lacks room for it."""
        if self.closed:
            raise RunFileError(f"{self.path}: the run file is closed")
        check_space(self.target, self.space_needed(chunk))
        try:
            self._write(chunk)
        except (OSError, RuntimeError, ValueError) as exc:  # h5py's errors: a full disk, an I/O error
            self._abandon(exc)
            error = RunFileWriteError(_cause(exc))
            error.hdf5_unusable = True
            raise error from None
        steps = chunk.records.get("step", ())
        if len(steps):
            self.last_step_written = int(steps[-1])

    def _write(self, chunk) -> None:
        records = chunk.records
        n_new = len(records.get("step", ()))
        if n_new:
            for name, ds in self.metrics.items():
                values = records.get(name)
                if values is None:
                    continue
                start = ds.shape[0]
                ds.resize(start + n_new, axis=0)
                ds[start:] = values
        if chunk.snapshot_steps:
            k = len(chunk.snapshot_steps)
            start = self.snap_step.shape[0]
            self.snap_step.resize((start + k,))
            self.snap_step[start:] = chunk.snapshot_steps
            self.snap_params.resize(start + k, axis=0)
            self.snap_params[start:] = np.asarray(chunk.snapshot_params, dtype=np.float64)
            for name, ds in self.snap_metrics.items():
                ds.resize((start + k,))
                ds[start:] = [m[name] for m in chunk.snapshot_metrics]
        if chunk.params is not None:
            self.final_params[...] = chunk.params
            self.final_step[()] = chunk.step
            state = getattr(chunk, "optimizer_state", None)
            if state is not None and set(state) == set(self.optimizer_state):
                for name, ds in self.optimizer_state.items():
                    ds[()] = state[name]
                self.optimizer_state_step[()] = chunk.step
            else:  # the state saved before belongs to another step now
                self.optimizer_state_step[()] = -1
        self.append_events(getattr(chunk, "events", ()))
        self.file.flush()

    def _abandon(self, exc: BaseException) -> None:
        """After a failed write: close the file once and never call h5py on it again. After a
        failed HDF5 write (ENOSPC) HDF5 keeps metadata it cannot write and can crash when it
        tries again, even at exit: the file object is kept alive so that no garbage collection
        closes it a second time, and the error tells the caller to end the process."""
        self.closed = True
        self._release_lock()
        h5py_failed = isinstance(exc, (OSError, RuntimeError, ValueError)) and not isinstance(exc, RunFileError)
        try:
            self.file.close()
        except Exception:
            h5py_failed = True
        if h5py_failed:
            self.broken = True
            _ABANDONED.append(self.file)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def holds(self) -> str:
        """What the file holds, in words, for a message."""
        if self.last_step_written is None:
            return "no records"
        return f"records up to step {self.last_step_written}"

    def _create_events(self, f) -> None:
        """The ``events`` group (core/health.py): step, kind and message per event, fixed-size
        strings so that SWMR can append them (docs/run-format.md)."""
        from .health import MESSAGE_BYTES

        group = f.create_group("events")
        self.events = {"step": group.create_dataset("step", shape=(0,), maxshape=(None,), chunks=(64,), dtype=np.int64),
                       "kind": group.create_dataset("kind", shape=(0,), maxshape=(None,), chunks=(64,), dtype="S16"),
                       "message": group.create_dataset("message", shape=(0,), maxshape=(None,), chunks=(16,),
                                                       dtype=f"S{MESSAGE_BYTES}")}

    def append_events(self, events) -> None:
        """Append events (dicts step, kind, message) as they happen; flushed with the chunk."""
        if not events:
            return
        from .health import fits_in_file

        start = self.events["step"].shape[0]
        columns = {"step": [int(e["step"]) for e in events], "kind": [e["kind"].encode("ascii") for e in events],
                   "message": [fits_in_file(e["message"]) for e in events]}
        for name, ds in self.events.items():
            ds.resize((start + len(events),))
            ds[start:] = columns[name]

    def close(self, status: str, reason: str = "") -> None:
        """Close the SWMR session and set the final status (attributes cannot change under SWMR).
        A writer whose HDF5 write failed was closed already and touches nothing more."""
        if self.closed:
            return
        self.closed = True
        try:
            self.file.close()
        except (OSError, RuntimeError) as exc:
            self.broken = True
            _ABANDONED.append(self.file)
            self._release_lock()
            error = RunFileWriteError(f"{self.path}: the run file could not be closed ({_cause(exc)})")
            error.hdf5_unusable = True
            raise error from None
        self._release_lock()  # HDF5's r+ open below takes the exclusive lock itself
        try:
            for attempt in range(5):
                try:
                    f = h5py.File(self.target, "r+", locking=attempt < 4)
                    break
                except OSError as exc:
                    # a reader (the window following this run) holds a shared lock: wait a moment,
                    # then write the two attributes without the lock rather than crash at the end
                    if "lock" not in str(exc):
                        raise
                    time.sleep(0.05)
            with f:
                f.attrs["status"] = str(status)  # a RunStatus is a str subclass h5py cannot store
                f.attrs["status_reason"] = reason
        except (OSError, RuntimeError) as exc:
            raise RunFileError(f"{self.path}: the final status could not be written ({_cause(exc)})") from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.closed:
            self.close("failed" if exc_type else "stopped", str(exc) if exc else "")


def _cause(exc: BaseException) -> str:
    """A failed write's cause in a few words: HDF5's messages run to several lines."""
    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in text or "errno = 28" in text:
        return "the disk is full"
    return f"writing failed: {text.splitlines()[0][:200] if text else type(exc).__name__}"


def check_space(path: Path, needed: int) -> None:
    """Refuse (RunFileWriteError, nothing written) when the disk holding ``path`` has fewer than
    ``needed`` bytes free for us. statvfs's f_bavail leaves out the blocks kept for root."""
    try:
        info = os.statvfs(Path(path).parent)
    except OSError:
        return  # a file system that does not tell: HDF5's own error then stops the run
    free = info.f_bavail * info.f_frsize
    if free < needed:
        raise RunFileWriteError(f"the disk is full ({free / 2**20:.1f} MiB free, {needed / 2**20:.1f} MiB needed)")

