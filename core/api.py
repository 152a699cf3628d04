"""The library face: train, save, load and check runs from Python (a notebook, a script) with
plain numpy arrays out. docs/python-api.md shows it at work; `import margin_explorer as mx` names
this module's __all__ (core/_namespace/__init__.py is the top-level package).

    import margin_explorer as mx
    run = mx.train(mx.preset("relu2-blobs"), steps=2000)
    run.metrics["normalized_margin"]           # a numpy array, one value per record

Keyword arguments; errors of the project's own types (core/errors.py); and no global side
effects: nothing here tunes the process (its BLAS pools, malloc), which is the programs' business
(core/process.py). Files are written and read by the same RunWriter and RunReader as the command
line's, with their safety rules (core/output_path.py, core/run_reader.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .config import DatasetConfig, RunConfig
from .datasets import Dataset
from .errors import ConfigError
from .presets import load_preset, preset_names

__all__ = ["RunConfig", "Run", "Snapshots", "preset", "presets", "train", "iter_train", "load", "check", "sweep",
           "load_sweep"]

CHUNK_SECONDS = 0.5  # training time between two yields of iter_train


def preset(name: str) -> RunConfig:
    """The config of a preset (`presets()` lists them): a RunConfig to change and train."""
    return load_preset(name)


def presets() -> list[str]:
    return preset_names()


@dataclass
class Snapshots:
    """Parameters at log-spaced steps and the last: ``steps`` (K,), ``params`` (K, P) and the
    snapshot metrics (``kkt_eps``, ``kkt_delta``, ``euler_defect``: name -> (K,))."""

    steps: np.ndarray
    params: np.ndarray
    metrics: dict


@dataclass
class Run:
    """One run, trained here or read from a file: ``config``, ``status`` (running, finished,
    stopped, diverged, failed) and its ``reason``, ``events`` (dicts step, kind, message),
    ``metrics`` (name -> numpy array, one row per record; docs/run-format.md defines them),
    ``snapshots``, ``final_params`` (theta at ``final_step``), ``dataset`` (X, y)."""

    config: RunConfig
    dataset: Dataset
    status: str = "running"
    reason: str = ""
    events: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    snapshots: Snapshots | None = None
    final_params: np.ndarray | None = None
    final_step: int = 0
    optimizer_state: dict | None = None  # what continuing exactly needs (core/optimizers.py)
    path: str | None = None  # the file it was saved to or loaded from
    parent: str = ""
    start_step: int = 0
    family: dict | None = None  # the run file's family attribute, for a member of a family
    reference_margin: float | None = None  # linear models: the l2 max margin, the limit of normalized_margin
    reference_margin_steepest: float | None = None  # sign / coordinate descent: the l_inf / l1 max margin

    def __post_init__(self):
        if self.snapshots is None:
            self.snapshots = Snapshots(np.zeros(0, dtype=np.int64), np.zeros((0, 0)), {})

    def __repr__(self) -> str:
        name = self.config.name or "run"
        return (f"Run({name!r}, {self.status} at step {self.final_step}, {len(self.metrics.get('step', ()))} records, "
                f"{len(self.snapshots.steps)} snapshots)")

    def _extend(self, chunk) -> None:
        """Add a trainer Chunk's records, snapshots and state."""
        if chunk.n_records:
            for name, values in chunk.records.items():
                old = self.metrics.get(name)
                self.metrics[name] = values.copy() if old is None else np.concatenate([old, values])
        if chunk.snapshot_steps:
            params = np.asarray(chunk.snapshot_params, dtype=np.float64)
            snaps = self.snapshots
            before = snaps.params if len(snaps.steps) else np.zeros((0, params.shape[1]))
            metrics = {name: np.concatenate([snaps.metrics.get(name, np.zeros(0)),
                                             [m[name] for m in chunk.snapshot_metrics]])
                       for name in chunk.snapshot_metrics[0]}
            self.snapshots = Snapshots(np.concatenate([snaps.steps, np.asarray(chunk.snapshot_steps, dtype=np.int64)]),
                                       np.concatenate([before, params]), metrics)
        self.events = self.events + list(chunk.events)
        self.status, self.reason = chunk.status, chunk.reason
        if chunk.params is not None:
            self.final_params = np.asarray(chunk.params, dtype=np.float64).copy()
            self.final_step = int(chunk.step)
            self.optimizer_state = chunk.optimizer_state

    def _as_chunk(self):
        from .trainer import Chunk

        snaps = self.snapshots
        names = list(snaps.metrics)
        return Chunk(records=dict(self.metrics), snapshot_steps=[int(s) for s in snaps.steps],
                     snapshot_params=list(snaps.params),
                     snapshot_metrics=[{n: float(snaps.metrics[n][i]) for n in names} for i in range(len(snaps.steps))],
                     status=self.status, reason=self.reason, step=self.final_step, params=self.final_params,
                     events=list(self.events), optimizer_state=self.optimizer_state)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the run file ``path`` (docs/run-format.md). ``path`` must be new, or with
        ``overwrite`` a run file (never anything else: core/output_path.py)."""
        from .architecture import parameter_count, weight_slices
        from .homogeneity import analyze
        from .runfile import RunWriter

        spec = self.config.architecture
        ensembles = [len(b.members) for b in spec.blocks if hasattr(b, "members")]
        writer = RunWriter(path, self.config, self.dataset, n_params=parameter_count(spec),
                           layer_names=[name for name, _sl, _shape in weight_slices(spec)],
                           ensemble_size=ensembles[0] if ensembles else 0,
                           homogeneity=analyze(self.config.architecture).to_dict(), device=self.config.run.device,
                           parent=self.parent, start_step=self.start_step, family=self.family, overwrite=overwrite,
                           inputs={"parent run": self.parent} if self.parent else None,
                           reference_margin=self.reference_margin,
                           reference_margin_steepest=self.reference_margin_steepest)
        try:
            writer.append(self._as_chunk())
        except BaseException as exc:
            writer.close("failed", f"{type(exc).__name__}: {exc}")
            raise
        writer.close(self.status, self.reason)
        self.path = str(path)


def _references(trainer) -> dict:
    """A trainer's max-margin values, as Run keeps them."""
    return {"reference_margin": trainer.reference_margin(),
            "reference_margin_steepest": trainer.steepest_reference_margin()}


def _prepared(config: RunConfig, steps: int | None, dataset) -> tuple[RunConfig, Dataset | None]:
    """A validated copy of ``config`` with ``steps`` and ``dataset`` applied."""
    if not isinstance(config, RunConfig):
        raise ConfigError(f"config: expected a RunConfig (mx.preset(name), RunConfig.from_dict(...)), "
                          f"got {type(config).__name__}")
    config = config.copy()
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"steps: a whole number of steps >= 1, got {steps!r}")
        config.run.steps = int(steps)
    if not config.run.steps:
        raise ConfigError("steps: the config trains without end (run.steps = 0); give steps=N")
    data = None
    if dataset is not None:
        if isinstance(dataset, Dataset):
            data = dataset
        elif isinstance(dataset, tuple) and len(dataset) == 2:
            data = Dataset(np.asarray(dataset[0]), np.asarray(dataset[1]), "arrays")
        else:
            raise ConfigError(f"dataset: expected a Dataset or a tuple (X, y) of arrays, got {type(dataset).__name__}")
        config.dataset = DatasetConfig.inline(data)
    return config.copy(), data


def iter_train(config: RunConfig, steps: int | None = None, *, dataset=None,
               chunk_seconds: float = CHUNK_SECONDS) -> Iterator:
    """Train ``config`` and yield as it goes, about every ``chunk_seconds``: the Run (a list of
    Runs for a config with a family), updated in place, for live plotting. Leaving the loop early
    stops the training there (the Run says "stopped")."""
    from .runner import family_attribute
    from .trainer import RUNNING, Trainer

    config, data = _prepared(config, steps, dataset)
    trainer = Trainer(config, data)
    runs = [Run(m.config, trainer.dataset, **_references(trainer)) for m in trainer.members]
    if config.family is not None:
        family_id = os.urandom(16).hex()
        for k, run in enumerate(runs):
            run.family = family_attribute(config, family_id, k)

    def extend(chunk):
        for run, member_chunk in zip(runs, chunk.members):
            run._extend(member_chunk)
    result = runs if config.family is not None else runs[0]
    try:
        while trainer.status == RUNNING:
            extend(trainer.run(1 << 30, max_seconds=chunk_seconds))
            yield result
    finally:
        if trainer.status == RUNNING:  # the caller left the loop (or was interrupted)
            extend(trainer.stop("stopped by the caller"))


def train(config: RunConfig, steps: int | None = None, *, dataset=None, out: str | os.PathLike | None = None,
          overwrite: bool = False):
    """Train ``config`` (``steps`` replaces run.steps) on its own dataset, or ``dataset`` (a Dataset
    or arrays (X, y)); a Run, or for a config with a family (RunConfig.with_family) a list of Runs
    trained together. With ``out`` the run is written to that file as it trains (a family's
    members to OUT-00.h5, OUT-01.h5, ...), as `main.py run` does. Ctrl+C (a notebook's
    interrupt) stops the training and returns what was trained."""
    if out is None:
        result = None
        trainer = iter_train(config, steps, dataset=dataset)
        try:
            for result in trainer:
                pass
        except KeyboardInterrupt:
            trainer.close()  # stops the trainer; the runs keep what was trained
            if result is None:
                raise
        return result
    from .runner import run_family_to_files, run_to_file

    config, data = _prepared(config, steps, dataset)
    if config.family is not None:
        _family, paths = run_family_to_files(config, out, dataset=data, overwrite=overwrite)
        return [load(p) for p in paths]
    run_to_file(config, out, dataset=data, overwrite=overwrite)
    return load(out)


def load(path: str | os.PathLike) -> Run:
    """The Run in the file ``path`` (checked as `main.py info` checks it), also a file a writer
    is still appending to: its status then says "running"."""
    from .runfile import RunReader

    with RunReader(path) as reader:
        reader.read_arrays()
        steps = np.asarray(reader.snapshot_steps)
        snaps = Snapshots(steps, reader.snapshot_params(slice(None)) if len(steps) else np.zeros((0, 0)),
                          dict(reader.snapshot_metrics))
        family = dict(reader.family) if reader.family else None
        if family is not None and "config" in family:  # a file of an earlier version (family_config)
            family["config"] = family["config"].to_dict()
        return Run(reader.config, reader.dataset, status=reader.status, reason=reader.status_reason,
                   events=list(reader.events), metrics=dict(reader.metrics), snapshots=snaps,
                   final_params=reader.final_params, final_step=reader.final_step,
                   optimizer_state=reader.final_optimizer_state, path=str(path), parent=reader.parent,
                   start_step=reader.start_step, family=family, reference_margin=reader.reference_margin,
                   reference_margin_steepest=reader.reference_margin_steepest)


def check(run, claims=None) -> list:
    """The claims' verdicts (core/claims.py Verdict: .check, .statement, .supported (True, False or
    None: cannot tell), .detail, .value) on a Run, or one per claim for a list of Runs (it holds
    when it holds for every run). ``claims``: a list of claim dicts, or a preset's name; the run's
    own config's claims by default ([] when it names none)."""
    from .claims import RunData, judge, judge_family, parse_claims

    if isinstance(run, (list, tuple)):
        if not run:
            raise ConfigError("check: an empty list of runs")
        return judge_family([check(r, claims) for r in run])
    if not isinstance(run, Run):
        raise ConfigError(f"check: expected a Run (mx.train, mx.load), got {type(run).__name__}")
    if claims is None:
        specs = run.config.claim_specs()
    elif isinstance(claims, str):
        specs = load_preset(claims).claim_specs()
    else:
        specs = parse_claims(list(claims))
    data = RunData(dict(run.metrics), np.asarray(run.snapshots.steps), dict(run.snapshots.metrics), run.config,
                   finished=run.status != "running", final_params=run.final_params, events=list(run.events),
                   dataset=run.dataset)
    return judge(data, specs)


def sweep(config: RunConfig | None, grid: dict | None = None, *, seeds=None, out: str | os.PathLike,
          steps: int | None = None, client=None, scheduler: str | None = None, workers: int | None = None,
          resume: bool = False):
    """Train the grid ``grid`` ({field: values}: a dotted path such as ``"optimizer.lr"`` or
    ``"architecture.blocks.0.width"``, or a short name: lr, init_scale, width, depth, ...; values
    a list or the command line's ``"0.01..1/8"``) times ``seeds`` (a range, a list or ``"0:8"``)
    on ``config`` into the folder ``out`` (one run file per run and the index sweep.h5), on Dask:
    ``client`` (a distributed.Client), ``scheduler`` (an address) or, with neither, a LocalCluster
    of ``workers`` processes here. Returns a Sweep: ``.table`` (pandas DataFrame, or a numpy
    structured array without pandas) and ``.runs(where)``. ``resume=True`` trains only what the
    folder lacks (``config`` None: its own grid). docs/sweeps.md."""
    from .sweep import sweep as run

    return run(config, grid, seeds=seeds, out=out, steps=steps, client=client, scheduler=scheduler,
               workers=workers, resume=resume)


def load_sweep(folder: str | os.PathLike):
    """The Sweep in ``folder`` (its index, sweep.h5), also one still running."""
    from .sweep import load_sweep as read

    return read(folder)
