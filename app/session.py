"""A session: everything the window shows of 1..S runs trained together (a single run is a
session of one, a family a session of S), fed by live chunks from the worker or by run files.

The plots, the run list, the status bar and the claims read one protocol whatever the size:
``get``, ``band``, ``snapshot_metrics``, ``snapshot_steps``, ``version``, ``info``, ``events``,
``status`` (DESIGN.md, One path for data). A session of one reads its run's buffers as they
are; a larger one the median over its members with an interquartile band (app/quartiles.py),
while its boundary, snapshots and parameters are the lead's (member 0).
"""

from __future__ import annotations

import numpy as np

from margin_explorer.core.config import RunConfig
from margin_explorer.core.datasets import Dataset
from margin_explorer.core.metrics import SNAPSHOT_METRICS
from margin_explorer.core.run_status import RunStatus
from margin_explorer.core.runfile import RunReader

from .member_run import GrowingArray, MemberRun
from .messages import ChunkArrived, RunInfo
from .quartiles import Quartiles, SnapshotMedian

__all__ = ["RunSession", "MemberRun", "GrowingArray"]


class RunSession:
    """See the module docstring. ``members``: the runs (built from ``config``, one per family
    member, when not given)."""

    def __init__(self, config: RunConfig, dataset: Dataset, members: list[MemberRun] | None = None, name: str = ""):
        self.config = config
        self.dataset = dataset
        if members is None:
            configs = [config] if config.family is None else map(config.member, range(config.family_size))
            members = [MemberRun(member, dataset) for member in configs]
        self.members = members
        self.name = name or config.name or ("run" if len(members) == 1 else "family")
        self.info: dict = {}  # facts from the worker or the file: layer names, reference margins, parameter count
        self.homogeneity: dict = {}
        self.saved_path: str | None = None
        self.parent = ""  # the run file this one continues
        self.start_step = 0
        self._status, self._reason = RunStatus.READY, ""  # a family's own (a run's are its member's)
        self._quartiles: dict = {}
        self._snapshot_medians = {name: SnapshotMedian(self, name) for name in SNAPSHOT_METRICS}

    # --------------------------------------------------------------- building
    @classmethod
    def from_reader(cls, reader: RunReader, metrics=None, snapshots: bool = True) -> "RunSession":
        """A session of the one run in ``reader`` (MemberRun.from_reader: ``metrics`` and
        ``snapshots`` read less, to draw only)."""
        session = cls(reader.config, reader.dataset, [MemberRun.from_reader(reader, metrics, snapshots)],
                      name=reader.path.stem)
        session.homogeneity = reader.homogeneity or {}
        session.saved_path = str(reader.path)
        session.parent, session.start_step = reader.parent, reader.start_step
        session.info = {"layer_names": reader.layer_names or [], "reference_margin": reader.reference_margin,
                        "reference_margin_steepest": reader.reference_margin_steepest}
        return session

    @classmethod
    def grouped(cls, sessions: list["RunSession"]) -> "RunSession":
        """A family reopened from its members' files, each a session of one with the file's family
        attribute; the family's config is rebuilt from the members present (core/runner.family_config)."""
        from margin_explorer.core.trainer import family_status
        from margin_explorer.core.runner import family_config

        order = sorted(sessions, key=lambda s: s.family["index"])
        config = family_config([(s.config, s.family) for s in order])
        family = cls(config, order[0].dataset, [s.lead for s in order], name=config.name)
        family.homogeneity = order[0].homogeneity
        family.info = dict(order[0].info)
        family.status = RunStatus.of(family_status([s.status for s in order]))
        family.saved_path = order[0].saved_path
        return family

    # --------------------------------------------------------------- filling
    def started(self, info: RunInfo) -> None:
        """The worker's facts about the trainer it built."""
        self.info = info.facts()
        self.homogeneity = info.homogeneity

    def append_chunk(self, chunk: ChunkArrived) -> None:
        """A chunk from the worker: each member's part to its member. A family's members take their
        statuses from their parts (one diverges while the others run on); the session's own status,
        a single run's included, comes from the worker's StatusChanged (a prepared run is "ready"
        although its trainer's chunk says running)."""
        for member, part in zip(self.members, chunk.members):
            member.append_part(part)
            if self.size > 1:
                member.status, member.reason = RunStatus(part.status), part.reason

    # --------------------------------------------------------------- what it is
    @property
    def size(self) -> int:
        """How many runs: 1 for a single run, S for a family."""
        return len(self.members)

    @property
    def lead(self) -> MemberRun:
        """Member 0: its boundary, snapshots and parameters stand for a family's."""
        return self.members[0]

    @property
    def family(self) -> dict | None:
        """The file's family attribute of a run opened from a family member's file."""
        return self.lead.family if self.size == 1 else None

    @property
    def status(self) -> RunStatus:
        return self.lead.status if self.size == 1 else self._status

    @status.setter
    def status(self, status) -> None:
        if self.size == 1:
            self.lead.status = RunStatus(status)
        else:
            self._status = RunStatus(status)

    @property
    def reason(self) -> str:
        return self.lead.reason if self.size == 1 else self._reason

    @reason.setter
    def reason(self, reason: str) -> None:
        if self.size == 1:
            self.lead.reason = reason
        else:
            self._reason = reason

    @property
    def events(self) -> list:
        """Health events (core/health.py) of a single run; a family's median line shows none."""
        return self.lead.events if self.size == 1 else []

    # --------------------------------------------------------------- what the plots read
    @property
    def version(self) -> int:
        """Bumps on every append; views redraw when it changes."""
        return sum(m.version for m in self.members)

    @property
    def step(self) -> int:
        return max(m.step for m in self.members)

    @property
    def params(self):
        return self.lead.params

    @property
    def optimizer_state(self):
        return self.lead.optimizer_state

    @property
    def snapshot_steps(self) -> GrowingArray:
        return self.lead.snapshot_steps

    @property
    def snapshot_params(self) -> list:
        return self.lead.snapshot_params

    @property
    def snapshot_metrics(self) -> dict:
        """name -> an object whose ``view()`` is the series (the median for a family)."""
        return self.lead.snapshot_metrics if self.size == 1 else self._snapshot_medians

    def get(self, name: str) -> np.ndarray | None:
        """The series ``name``: a run's own, or the median over a family's members (``step``: the
        steps themselves, the same for all)."""
        if self.size == 1:
            return self.lead.get(name)
        if name == "step":
            longest = max(self.members, key=lambda m: m.n_records)
            steps = longest.get("step")
            agg = self._series("log_loss")
            return None if steps is None or agg is None else steps[: agg.mid.size]
        agg = self._series(name)
        return None if agg is None else agg.mid.view()

    def band(self, name: str):
        """(25th, 75th percentile) over a family's members, row by row; None for a single run."""
        if self.size == 1:
            return None
        agg = self._series(name)
        return None if agg is None else (agg.low.view(), agg.high.view())

    @property
    def n_records(self) -> int:
        if self.size == 1:
            return self.lead.n_records
        steps = self.get("step")
        return 0 if steps is None else len(steps)

    def last(self, name: str, default=float("nan")):
        values = self.get(name)
        return default if values is None or not len(values) else values[-1]

    def run_datas(self) -> list:
        """Each member as core.claims.RunData, for the claim checks."""
        return [m.run_data() for m in self.members]

    # --------------------------------------------------------------- a family's statistics
    def quartiles(self, key, arrays, final_rows=None) -> Quartiles:
        """The quartiles of ``arrays`` (one per member) under ``key``, brought up to the rows every
        member still running has (``final_rows`` when given)."""
        agg = self._quartiles.get(key)
        if agg is None:
            agg = self._quartiles[key] = Quartiles()
        if final_rows is None:
            lengths = [0 if a is None else len(a) for a in arrays]
            growing = [n for n, m in zip(lengths, self.members) if m.status.going or m.status == RunStatus.READY]
            final_rows = min(growing) if growing else max(lengths, default=0)
        agg.update(arrays, final_rows)
        return agg

    def _series(self, name: str) -> Quartiles | None:
        arrays = [m.get(name) for m in self.members]
        if all(a is None for a in arrays):
            return None
        agg = self.quartiles(name, arrays)
        return agg if agg.mid is not None else None

    # --------------------------------------------------------------- saving
    @property
    def has_unsaved_results(self) -> bool:
        return self.n_records > 0 and self.saved_path is None

    def save(self, path: str, device: str = "cpu", overwrite: bool = False) -> list[str]:
        """Write the run file ``path``, or a family's one file per member (core/runner.member_paths),
        each with the family attribute; every member's path is checked before the first is
        written (core/output_path.py). Returns the paths written."""
        import uuid

        from margin_explorer.core.output_path import check_output
        from margin_explorer.core.runner import family_attribute, member_paths

        facts = {"info": self.info, "homogeneity": self.homogeneity, "parent": self.parent,
                 "start_step": self.start_step, "device": device, "overwrite": overwrite}
        if self.size == 1:
            self.lead.save(str(path), **facts)
            self.saved_path = str(path)
            return [str(path)]
        family_id = uuid.uuid4().hex
        paths = member_paths(path, self.size)
        for member_path in paths:
            check_output(member_path, overwrite=overwrite, inputs={"parent run": self.parent})
        for k, (member, member_path) in enumerate(zip(self.members, paths)):
            member.save(str(member_path), family=family_attribute(self.config, family_id, k), **facts)
        self.saved_path = str(paths[0])
        return [str(p) for p in paths]
