"""Every message between the window and its training process (app/worker.py), as dataclasses.

Commands go to the worker, events come back; both cross the process boundary through a
multiprocessing queue (pickled), so they hold plain values and numpy arrays only, never a
trainer or a Qt object. A family's chunk and a single run's have one shape: a list of member
parts, one for a single run (a run is a family of one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from margin_explorer.core.run_status import RunStatus


# ------------------------------------------------------------------ commands (window -> worker)
@dataclass(frozen=True)
class StartRun:
    """Build a trainer for the config; train at once unless ``run`` is False (prepared, paused).
    ``params``, ``start_step`` and ``optimizer_state`` continue a run from its last state."""
    config_json: str
    run: bool = True
    params: np.ndarray | None = None
    start_step: int = 0
    optimizer_state: dict | None = None


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class TakeSteps:
    """Train ``count`` steps, then pause."""
    count: int


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class SetPace:
    """At most this many steps per second (0: full speed), for this run and later ones."""
    steps_per_second: float


@dataclass(frozen=True)
class AskGeometry:
    """Is (X, y) linearly separable, and its SVM margin: the dataset panel's facts."""
    token: int
    X: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class AskDevices:
    pass


@dataclass(frozen=True)
class Quit:
    pass


COMMANDS = (StartRun, Pause, Resume, TakeSteps, Stop, SetPace, AskGeometry, AskDevices, Quit)


# ------------------------------------------------------------------ events (worker -> window)
@dataclass
class RunInfo:
    """What the trainer knows once built (the lead member's, for a family)."""
    layer_names: list[str]
    n_params: int
    homogeneity: dict  # core.homogeneity's to_dict()
    reference_margin: float | None
    reference_margin_steepest: float | None
    params: np.ndarray
    device: str
    family_size: int = 1
    engine_note: str = ""  # a family: which engine trains it, or why the plain one

    def facts(self) -> dict:
        """The facts a session keeps as ``info`` (by the names a run file gives them)."""
        return dict(vars(self))


@dataclass
class Started:
    info: RunInfo


@dataclass
class MemberChunk:
    """One run's part of a chunk: its records and snapshots since the last chunk."""
    records: dict  # metric name -> numpy array, one row per record
    snapshot_steps: list
    snapshot_params: list
    snapshot_metrics: list  # one {name: value} per snapshot
    step: int
    params: np.ndarray | None
    status: RunStatus
    reason: str = ""
    events: list = field(default_factory=list)  # core/health.py events (dicts step, kind, message)
    optimizer_state: dict | None = None


@dataclass
class ChunkArrived:
    """The members' parts (one for a single run), and the whole run's step and status."""
    members: list[MemberChunk]
    step: int
    status: RunStatus
    reason: str = ""

    @property
    def events(self) -> list:
        """Health events of a single run (a family's median shows none of its members')."""
        return self.members[0].events if len(self.members) == 1 else []


@dataclass
class BoundaryGrid:
    """f(theta; x) of the lead run on a grid over the data: float32 values (rows = y) and the
    rectangle (x, y, width, height) they cover."""
    values: np.ndarray
    rect: tuple


@dataclass
class StatusChanged:
    status: RunStatus
    reason: str = ""


@dataclass
class GeometryFound:
    """The answer to AskGeometry ``token``: core.reference.dataset_geometry's facts, or {"error"}."""
    token: int
    facts: dict


@dataclass
class DevicesFound:
    names: list[str]  # accelerators PyTorch sees besides the cpu (cuda, cuda:1, mps)


@dataclass
class WorkerFailed:
    """A user's error in one line, or an internal error with its traceback."""
    message: str


EVENTS = (Started, ChunkArrived, BoundaryGrid, StatusChanged, GeometryFound, DevicesFound, WorkerFailed)
