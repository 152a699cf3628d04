"""One run's records as the window holds them: growing buffers of every metric, its snapshots,
final parameters and status, fed by live chunks from the worker or by a RunReader. A session
(app/session.py) holds one of these per member; a single run is a session of one."""

from __future__ import annotations

import numpy as np

from margin_explorer.core.config import RunConfig
from margin_explorer.core.datasets import Dataset
from margin_explorer.core.metrics import SNAPSHOT_METRICS
from margin_explorer.core.run_status import RunStatus
from margin_explorer.core.runfile import RunReader, RunWriter
from margin_explorer.core.trainer import Chunk

from .messages import MemberChunk


class GrowingArray:
    """A preallocated buffer that doubles when full (pyqtgraph's scrollingPlots pattern);
    ``view()`` is the filled part, without a copy."""

    def __init__(self, width: int | None = None, dtype=np.float64, capacity: int = 1024):
        shape = (capacity,) if width is None else (capacity, width)
        self.data = np.empty(shape, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray, adopt: bool = False) -> None:
        """Append ``values``. With ``adopt``, an empty buffer takes the array itself instead of a
        copy (a run just read from a file: 10^6 records need not be copied twice)."""
        values = np.asarray(values, dtype=self.data.dtype)
        if adopt and self.size == 0 and values.ndim == self.data.ndim and values.flags.c_contiguous:
            self.data, self.size = values, len(values)
            return
        end = self.size + len(values)
        if end > len(self.data):
            capacity = max(end, 2 * len(self.data))
            grown = np.empty((capacity,) + self.data.shape[1:], dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end

    def view(self) -> np.ndarray:
        return self.data[: self.size]


class MemberRun:
    """The records of one run (a family's member, or a run of its own)."""

    def __init__(self, config: RunConfig, dataset: Dataset):
        self.config = config
        self.dataset = dataset
        self.series: dict[str, GrowingArray] = {}
        self.snapshot_steps = GrowingArray(dtype=np.int64, capacity=64)
        self.snapshot_params: list[np.ndarray] = []
        self.snapshot_metrics = {name: GrowingArray(capacity=64) for name in SNAPSHOT_METRICS}
        self.params: np.ndarray | None = None
        self.optimizer_state: dict | None = None  # with ``params``: what continuing exactly needs
        self.step = 0
        self.status = RunStatus.READY
        self.reason = ""
        self.family: dict | None = None  # the file's family attribute when this run is a family member
        self.version = 0  # bumps on every append; views redraw when it changes
        self.events: list = []  # core/health.py events (dicts step, kind, message), as they arrive

    # --------------------------------------------------------------- filling
    def append(self, records: dict, snapshot_steps=(), snapshot_params=(), snapshot_metrics=(),
               params=None, step=None, adopt: bool = False, events=(), optimizer_state=None) -> None:
        """Add records (and snapshots, and health events). ``adopt``: the arrays are fresh and may be kept as they are."""
        self.events.extend(events)
        for name, values in records.items():
            values = np.asarray(values)
            buf = self.series.get(name)
            if buf is None:
                width = None if values.ndim == 1 else values.shape[1]
                buf = self.series[name] = GrowingArray(width, np.int64 if values.dtype.kind == "i" else np.float64)
            buf.extend(values, adopt=adopt)
        if len(snapshot_steps):
            self.snapshot_steps.extend(snapshot_steps)
            self.snapshot_params.extend(np.asarray(p) for p in snapshot_params)
            for name, buf in self.snapshot_metrics.items():
                buf.extend([m[name] for m in snapshot_metrics])
        if params is not None:
            self.params = np.asarray(params)
            self.optimizer_state = optimizer_state
        if step is not None:
            self.step = int(step)
        self.version += 1

    def append_part(self, part: MemberChunk) -> None:
        """This run's records and snapshots from a chunk of the worker (its status: see
        RunSession.append_chunk)."""
        self.append(part.records, part.snapshot_steps, part.snapshot_params, part.snapshot_metrics,
                    params=part.params, step=part.step, events=part.events, optimizer_state=part.optimizer_state)

    @classmethod
    def from_reader(cls, reader: RunReader, metrics=None, snapshots: bool = True) -> "MemberRun":
        """The whole run; or, given ``metrics`` (names), a run to draw only: those series,
        the snapshots' steps and metrics only with ``snapshots``, and never the snapshots' or the
        final parameters (it cannot be saved or continued)."""
        run = cls(reader.config, reader.dataset)
        whole = metrics is None
        steps = reader.snapshot_steps if whole or snapshots else np.empty(0, dtype=np.int64)
        snap = [{m: float(reader.snapshot_metrics[m][i]) for m in SNAPSHOT_METRICS} for i in range(len(steps))]
        params = list(reader.snapshot_params()) if whole and len(steps) else []
        run.append(reader.metrics if whole else reader.metrics_named(metrics), steps, params, snap,
                   params=reader.final_params if whole else None, step=reader.final_step, adopt=True,
                   events=reader.events, optimizer_state=reader.final_optimizer_state if whole else None)
        run.status, run.reason = RunStatus.of(reader.status), reader.status_reason
        run.family = reader.family
        return run

    # --------------------------------------------------------------- reading
    def get(self, name: str) -> np.ndarray | None:
        buf = self.series.get(name)
        return None if buf is None else buf.view()

    @property
    def n_records(self) -> int:
        buf = self.series.get("step")
        return 0 if buf is None else buf.size

    def last(self, name: str, default=float("nan")):
        values = self.get(name)
        return default if values is None or not len(values) else values[-1]

    def run_data(self):
        """This session as core.claims.RunData (views, no copies), for the claim checks."""
        from margin_explorer.core.claims import RunData

        return RunData({name: buf.view() for name, buf in self.series.items()}, self.snapshot_steps.view(),
                       {name: buf.view() for name, buf in self.snapshot_metrics.items()}, self.config,
                       finished=self.status.settled, final_params=self.params,
                       events=self.events, dataset=self.dataset)

    # --------------------------------------------------------------- saving
    def save(self, path: str, *, info: dict, homogeneity: dict, parent: str = "", start_step: int = 0,
             device: str = "cpu", family: dict | None = None, overwrite: bool = False) -> None:
        """Write the run as a run file through the same writer as a live headless run, under
        the same rule (core/output_path.py): a new file, or with ``overwrite`` a run file that is
        not this run's ``parent``. ``info`` and ``homogeneity``: its session's facts."""
        layers = info.get("layer_names", [])
        n_params = self.params.size if self.params is not None else int(info.get("n_params", 0))
        ensemble = self.get("ensemble_share")
        writer = RunWriter(path, self.config, self.dataset, n_params=n_params, layer_names=layers,
                           ensemble_size=0 if ensemble is None else ensemble.shape[1],
                           homogeneity=homogeneity, device=device, parent=parent,
                           start_step=start_step, family=family, overwrite=overwrite,
                           inputs={"parent run": parent},
                           reference_margin=info.get("reference_margin"),
                           reference_margin_steepest=info.get("reference_margin_steepest"))
        records = {name: buf.view() for name, buf in self.series.items()}
        chunk = Chunk(records=records, snapshot_steps=list(self.snapshot_steps.view()),
                      snapshot_params=self.snapshot_params,
                      snapshot_metrics=[{m: float(self.snapshot_metrics[m].view()[i]) for m in SNAPSHOT_METRICS}
                                        for i in range(self.snapshot_steps.size)],
                      step=self.step, params=self.params, events=list(self.events),
                      optimizer_state=self.optimizer_state)
        writer.append(chunk)
        going = self.status.going
        writer.close(RunStatus.STOPPED if going else self.status, self.reason or ("saved while running" if going else ""))
