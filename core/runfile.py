"""The HDF5 run file (schema in docs/run-format.md): written while the run goes, read back by
the window, the command line and plain h5py in a notebook. Arrays, attributes and JSON
strings only; no pickle.

The writer uses HDF5's single-writer/multiple-reader mode (SWMR): every dataset is created
up front, then each chunk is appended and flushed. A writer killed at any moment (kill -9)
leaves a file that opens, through SWMR read, with everything up to the last flush; and a file
still being written can be opened by another process and grows as it is refreshed.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .config import RunConfig
from .datasets import Dataset
from .errors import ConfigError, DatasetError, RunFileError
from .metrics import SCALAR_METRICS, SNAPSHOT_METRICS

# Chunk sizes: a chunk is allocated whole on disk and held whole in HDF5's cache while it fills, so
# they stay small (4 KB a scalar series, at most 64 KB a row block of an array metric): 4,096-number
# scalar chunks and 1 MB array chunks cost a 200-step family member 1.4 MB of disk and ~2.7 MB of memory.
# HDF5's chunk cache per dataset holds the chunk being filled: two array chunks' worth in a few hash
# slots (the default 521 slots took a writer from 1.1 MB to 2.7 MB of memory before anything was written).
SCALAR_CHUNK = 512
ARRAY_CHUNK_BYTES = 64 << 10
CHUNK_CACHE_BYTES = 2 * ARRAY_CHUNK_BYTES
CHUNK_CACHE_SLOTS = 17
FORMAT = "margin-explorer-run"
FORMAT_VERSION = 1
INT_METRICS = ("step", "support_vectors")


@functools.cache  # importlib.metadata reads the installed packages: 8 ms a call, once per family member
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
    """Append a run to ``path`` chunk by chunk. Use as a context manager or call ``close``."""

    def __init__(self, path: str | os.PathLike, config: RunConfig, dataset: Dataset, *, n_params: int,
                 layer_names: list[str], ensemble_size: int, homogeneity: dict, device: str,
                 parent: str = "", start_step: int = 0, family: dict | None = None):
        self.path = Path(path)
        if self.path.exists():
            self.path.unlink()  # a fresh file: h5py's truncate would fight a reader's lock
        try:
            f = h5py.File(self.path, "w", libver="latest", rdcc_nbytes=CHUNK_CACHE_BYTES,
                          rdcc_nslots=CHUNK_CACHE_SLOTS)
        except OSError as exc:
            raise RunFileError(f"{self.path}: cannot be created ({exc})") from None
        self.file = f
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
        if family is not None:  # this run is one member of a family (docs/run-format.md, Families)
            f.attrs["family"] = json.dumps(family)
        for key, value in _versions().items():
            f.attrs[key] = value
        data = f.create_group("dataset")
        data.create_dataset("X", data=dataset.X)
        data.create_dataset("y", data=dataset.y)
        data.attrs["name"] = dataset.name
        metrics = f.create_group("metrics")
        self.metrics = {}
        for name, definition in SCALAR_METRICS.items():
            dtype = np.int64 if name in INT_METRICS else np.float64
            ds = metrics.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(SCALAR_CHUNK,), dtype=dtype)
            ds.attrs["definition"] = definition
            self.metrics[name] = ds
        widths = {"sample_margins": dataset.n, "layer_norms": len(layer_names), "stable_rank": len(layer_names)}
        if ensemble_size:
            widths["ensemble_share"] = ensemble_size
        from .metrics import ARRAY_METRICS

        for name, width in widths.items():
            rows = max(1, min(1024, ARRAY_CHUNK_BYTES // max(8 * width, 1)))
            ds = metrics.create_dataset(name, shape=(0, width), maxshape=(None, width), chunks=(rows, max(width, 1)),
                                        dtype=np.float64)
            ds.attrs["definition"] = ARRAY_METRICS[name]
            if name in ("layer_norms", "stable_rank"):
                ds.attrs["columns"] = json.dumps(layer_names)
            self.metrics[name] = ds
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
        f.swmr_mode = True
        f.flush()
        self.closed = False

    def append(self, chunk) -> None:
        """Append a trainer Chunk and flush, so a reader (or a crash) sees it whole."""
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
        self.file.flush()

    def close(self, status: str, reason: str = "") -> None:
        """Close the SWMR session and set the final status (attributes cannot change under SWMR)."""
        if self.closed:
            return
        self.file.close()
        self.closed = True
        for attempt in range(5):
            try:
                f = h5py.File(self.path, "r+", locking=attempt < 4)
                break
            except OSError as exc:
                # a reader (the window following this run) holds a shared lock: wait a moment,
                # then write the two attributes without the lock rather than crash at the end
                if "lock" not in str(exc):
                    raise
                time.sleep(0.05)
        with f:
            f.attrs["status"] = status
            f.attrs["status_reason"] = reason

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.closed:
            self.close("failed" if exc_type else "stopped", str(exc) if exc else "")


def _open(path: Path) -> tuple[h5py.File, bool]:
    """Open read-only; a file whose SWMR writer is alive or was killed needs SWMR read."""
    if not path.exists():
        raise RunFileError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise RunFileError(f"{path}: not an HDF5 file (a Margin Explorer run is an .h5 file written by this app)")
    try:
        return h5py.File(path, "r"), False
    except (OSError, RuntimeError) as first:
        try:
            return h5py.File(path, "r", swmr=True), True
        except (OSError, RuntimeError):
            if "unable to lock file" in str(first):  # a writer is creating it, before SWMR starts
                raise RunFileError(f"{path}: another program is creating this file right now; "
                                   "open it again in a moment") from None
            raise RunFileError(f"{path}: the file is damaged or truncated and cannot be opened ({first})") from None


class RunReader:
    """Read a run file: ``config``, ``dataset``, ``metrics`` (name -> array), ``snapshots``,
    ``status``. ``refresh()`` picks up what a live writer has flushed since."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.file, self.swmr = _open(self.path)
        try:
            self._check()
            self._load()
        except RunFileError:
            self.file.close()
            raise
        except (KeyError, OSError, ValueError, RuntimeError) as exc:  # h5py's errors for damaged files
            self.file.close()
            raise RunFileError(f"{self.path}: the run file is incomplete or damaged ({exc})") from None

    def _check(self) -> None:
        attrs = self.file.attrs
        if attrs.get("format") != FORMAT:
            raise RunFileError(f"{self.path}: an HDF5 file, but not a Margin Explorer run (no format attribute '{FORMAT}')")
        version = int(attrs.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise RunFileError(f"{self.path}: written in run-format version {version}, newer than this app reads "
                               f"({FORMAT_VERSION}); update Margin Explorer to open it")
        for group in ("dataset", "metrics", "snapshots"):
            if group not in self.file:
                raise RunFileError(f"{self.path}: the run file has no '{group}' group; it is incomplete")

    def _load(self) -> None:
        attrs = self.file.attrs
        try:
            self.config = RunConfig.from_json(attrs["config"])
        except ConfigError as exc:
            raise RunFileError(f"{self.path}: the stored config is not valid ({exc})") from None
        try:
            self.dataset = Dataset(self.file["dataset/X"][()], self.file["dataset/y"][()],
                                   str(self.file["dataset"].attrs.get("name", "dataset")))
        except DatasetError as exc:
            raise RunFileError(f"{self.path}: the stored dataset is not valid ({exc})") from None
        self.homogeneity = json.loads(attrs.get("homogeneity", "{}"))
        try:
            self.family = json.loads(attrs["family"]) if "family" in attrs else None
            if self.family is not None:
                self.family["config"] = RunConfig.from_dict(self.family["config"])
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            raise RunFileError(f"{self.path}: the family attribute is not valid ({exc})") from None
        self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()
                      if k not in ("config", "family")}
        self.read_arrays()

    def read_arrays(self) -> None:
        """(Re)read every metric and snapshot array; all metrics are cut to a common length,
        since a live writer may be between two datasets' resizes."""
        group = self.file["metrics"]
        raw = {name: group[name][()] for name in group}
        length = min((len(v) for v in raw.values()), default=0)
        self.metrics = {name: v[:length] for name, v in raw.items()}
        snaps = self.file["snapshots"]
        k = min(len(snaps["step"]), len(snaps["params"]), *(len(snaps[m]) for m in SNAPSHOT_METRICS))
        self.snapshot_steps = snaps["step"][:k]
        self.snapshot_metrics = {m: snaps[m][:k] for m in SNAPSHOT_METRICS}
        self.final_params = snaps["final_params"][()]
        self.final_step = int(snaps["final_step"][()])

    def snapshot_params(self, index: int | slice = slice(None)) -> np.ndarray:
        return self.file["snapshots/params"][index]

    @property
    def status(self) -> str:
        return str(self.file.attrs.get("status", "unknown"))

    @property
    def status_reason(self) -> str:
        return str(self.file.attrs.get("status_reason", ""))

    @property
    def n_records(self) -> int:
        return len(self.metrics.get("step", ()))

    def refresh(self) -> int:
        """Pick up records a live SWMR writer has flushed; returns the new record count."""
        if self.swmr:
            for name in self.file["metrics"]:
                self.file["metrics"][name].refresh()
            for name in self.file["snapshots"]:
                self.file["snapshots"][name].refresh()
        self.read_arrays()
        return self.n_records

    def final_metrics(self) -> dict:
        """The last record's scalar metrics."""
        if not self.n_records:
            return {}
        return {name: v[-1].item() for name, v in self.metrics.items() if v.ndim == 1}

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
