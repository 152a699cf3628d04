"""A family as the window holds it: one RunSession per member, and for the plots the median of
every series across the members with an interquartile band (``band``). To the plots it is a
session like any other (the same ``get``, ``snapshot_metrics``, ``version``); the trajectory
plots draw the band where a source has one.

Members record at the same steps (they train together), so record i of every member is the same
step. A member that diverged stops early; past its end the statistics are over the others.
Rows are aggregated once, when every member still running has them.
"""

from __future__ import annotations

import warnings

import numpy as np

from margin_explorer.core.config import RunConfig
from margin_explorer.core.datasets import Dataset
from margin_explorer.core.metrics import SNAPSHOT_METRICS

from .session import GrowingArray, RunSession

QUANTILES = (25.0, 50.0, 75.0)  # the band and the line


class _Aggregate:
    """Low, median and high of one series over the members, extended as rows become final."""

    def __init__(self):
        self.low = self.mid = self.high = None
        self.done = 0

    def update(self, arrays: list, final_rows: int) -> None:
        if final_rows <= self.done:
            return
        present = [a for a in arrays if a is not None and len(a) > self.done]
        if not present:
            return
        rows = slice(self.done, final_rows)
        width = present[0].shape[1:]
        block = np.full((len(present), final_rows - self.done) + width, np.nan)
        for i, a in enumerate(present):
            part = a[rows]
            block[i, : len(part)] = part
        with warnings.catch_warnings():  # rows where every value is NaN (undefined metrics) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low, mid, high = np.nanpercentile(block, QUANTILES, axis=0)
        if self.mid is None:
            self.low, self.mid, self.high = (GrowingArray(width[0] if width else None) for _ in range(3))
        self.low.extend(low)
        self.mid.extend(mid)
        self.high.extend(high)
        self.done = final_rows


class _SnapshotMedian:
    """``view()`` of the median snapshot metric (what a RunSession's GrowingArray offers)."""

    def __init__(self, family: "FamilySession", name: str):
        self.family, self.name = family, name

    def view(self) -> np.ndarray:
        agg = self.family._aggregate(("snapshot", self.name), [m.snapshot_metrics[self.name].view()
                                                                for m in self.family.members],
                                     self.family.snapshot_steps.size)
        return np.empty(0) if agg.mid is None else agg.mid.view()


class FamilySession:
    """Everything the window shows of a family; see the module docstring."""

    def __init__(self, config: RunConfig, dataset: Dataset, members: list[RunSession] | None = None, name: str = ""):
        self.config = config
        self.dataset = dataset
        self.members = members if members is not None else [
            RunSession(member, dataset, name=member.name) for member in map(config.member, range(config.family_size))]
        self.name = name or config.name or "family"
        self.homogeneity: dict = {}
        self.info: dict = {}
        self.status, self.reason = "ready", ""
        self.saved_path: str | None = None
        self.parent, self.start_step = "", 0
        self.snapshot_metrics = {name: _SnapshotMedian(self, name) for name in SNAPSHOT_METRICS}
        self._aggregates: dict = {}

    # --------------------------------------------------------------- filling
    def append_members(self, payloads: list[dict]) -> None:
        for member, payload in zip(self.members, payloads):
            member.append(payload["records"], payload["snapshot_steps"], payload["snapshot_params"],
                          payload["snapshot_metrics"], params=payload["params"], step=payload["step"],
                          events=payload.get("events", ()))
            member.status, member.reason = payload["status"], payload["reason"]

    @classmethod
    def from_members(cls, sessions: list[RunSession], family: dict) -> "FamilySession":
        """A family reopened from its members' files (``family``: a member's family attribute;
        the family's config is rebuilt from the members present, core/runner.family_config)."""
        from margin_explorer.core.runner import family_config

        order = sorted(sessions, key=lambda s: s.family["index"])
        config = family_config([(s.config, s.family) for s in order])
        family_session = cls(config, order[0].dataset, order, name=config.name)
        family_session.homogeneity = order[0].homogeneity
        family_session.info = dict(order[0].info)
        family_session.status = _status([s.status for s in order])
        family_session.saved_path = order[0].saved_path
        return family_session

    # --------------------------------------------------------------- what the plots read
    @property
    def lead(self) -> RunSession:
        """Member 0: its boundary, snapshots and parameters stand for the family's."""
        return self.members[0]

    @property
    def version(self) -> int:
        return sum(m.version for m in self.members)

    @property
    def step(self) -> int:
        return max(m.step for m in self.members)

    @property
    def params(self):
        return self.lead.params

    @property
    def snapshot_steps(self):
        return self.lead.snapshot_steps

    @property
    def snapshot_params(self):
        return self.lead.snapshot_params

    def _final_rows(self, lengths: list[int], statuses: list[str]) -> int:
        growing = [n for n, s in zip(lengths, statuses) if s in ("running", "paused", "ready")]
        return min(growing) if growing else max(lengths, default=0)

    def _aggregate(self, key, arrays, final_rows=None) -> _Aggregate:
        agg = self._aggregates.get(key)
        if agg is None:
            agg = self._aggregates[key] = _Aggregate()
        if final_rows is None:
            final_rows = self._final_rows([0 if a is None else len(a) for a in arrays], [m.status for m in self.members])
        agg.update(arrays, final_rows)
        return agg

    def _series(self, name: str) -> _Aggregate | None:
        arrays = [m.get(name) for m in self.members]
        if all(a is None for a in arrays):
            return None
        agg = self._aggregate(name, arrays)
        return agg if agg.mid is not None else None

    def get(self, name: str) -> np.ndarray | None:
        """The median over the members (``step``: the steps themselves, the same for all)."""
        if name == "step":
            longest = max(self.members, key=lambda m: m.n_records)
            steps = longest.get("step")
            agg = self._series("log_loss")
            return None if steps is None or agg is None else steps[: agg.mid.size]
        agg = self._series(name)
        return None if agg is None else agg.mid.view()

    def band(self, name: str):
        """(25th, 75th percentile) over the members, row by row, or None."""
        agg = self._series(name)
        return None if agg is None else (agg.low.view(), agg.high.view())

    @property
    def n_records(self) -> int:
        steps = self.get("step")
        return 0 if steps is None else len(steps)

    def last(self, name: str, default=float("nan")):
        values = self.get(name)
        return default if values is None or not len(values) else values[-1]

    def run_datas(self) -> list:
        return [m.run_data() for m in self.members]

    @property
    def has_unsaved_results(self) -> bool:
        return self.n_records > 0 and self.saved_path is None

    # --------------------------------------------------------------- saving
    def save(self, path: str, device: str = "cpu", overwrite: bool = False) -> list[str]:
        """One run file per member (core/runner.member_paths), each with the family attribute;
        every member's path is checked before the first is written (core/output_path.py)."""
        import uuid

        from margin_explorer.core.output_path import check_output
        from margin_explorer.core.runner import family_attribute, member_paths

        family_id = uuid.uuid4().hex
        paths = member_paths(path, len(self.members))
        for member, member_path in zip(self.members, paths):
            check_output(member_path, overwrite=overwrite, inputs={"parent run": member.parent})
        for k, (member, member_path) in enumerate(zip(self.members, paths)):
            member.info = {**self.info, **member.info}
            member.homogeneity = member.homogeneity or self.homogeneity
            member.save(str(member_path), device=device, family=family_attribute(self.config, family_id, k),
                        overwrite=overwrite)
        self.saved_path = str(paths[0])
        return [str(p) for p in paths]


def _status(statuses: list[str]) -> str:
    from margin_explorer.core.trainer import family_status

    return family_status(statuses)
