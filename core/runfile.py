"""The HDF5 run file (schema in docs/run-format.md): written while the run goes, read back by
the window, the command line and plain h5py in a notebook. Arrays, attributes and JSON
strings only; no pickle.

The writer uses HDF5's single-writer/multiple-reader mode (SWMR): every dataset is created
up front, then each chunk is appended and flushed. A writer killed at any moment (kill -9)
leaves a file that opens, through SWMR read, with everything up to the last flush; and a file
still being written can be opened by another process and grows as it is refreshed.
"""

from __future__ import annotations

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
from .errors import RunFileError
from .metrics import SCALAR_METRICS, SNAPSHOT_METRICS

# the reader and its checks live in run_reader.py; imported here so `core.runfile.RunReader` works
from .run_reader import FORMAT, FORMAT_VERSION, INT_METRICS, RunReader  # noqa: F401


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
            f = h5py.File(self.path, "w", libver="latest")
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
            ds = metrics.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(4096,), dtype=dtype)
            ds.attrs["definition"] = definition
            self.metrics[name] = ds
        widths = {"sample_margins": dataset.n, "layer_norms": len(layer_names), "stable_rank": len(layer_names)}
        if ensemble_size:
            widths["ensemble_share"] = ensemble_size
        from .metrics import ARRAY_METRICS

        for name, width in widths.items():
            rows = max(1, min(1024, (1 << 20) // max(8 * width, 1)))
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
