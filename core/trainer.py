"""The driver: trains S >= 1 runs of one config (a single run is a family of one; a config with a
family section, RunConfig.family, has a member per value), driven in chunks.

``Trainer.run(k)`` takes up to k steps and returns a FamilyChunk: one Chunk of records and
snapshots per member, and the family's status; the caller pauses or stops between chunks (the
CLI, the window's worker, the library face and the tests all drive it the same way). Nothing
here imports Qt.

The data path: the driver lists the steps of a range due a record or a snapshot (core/
recording.py) and asks the engine (core/engines/, chosen by what the config needs) to take the
steps; the engine hands back a StepBlock (core/step_block.py) with the kept steps' quantities of
every member; the recorder (core/recorder.py) makes the records from it, the driver the
snapshots (their KKT residual and Euler defect from core/snapshot_metrics.py; the health
checks), and a member that failed ends "diverged" with its reason while the others train on.
The runner (core/runner.py) writes the chunks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import losses, multiclass, reference, step_rule
from .architecture import check_image_input, check_output_width, is_linear_model
from .budget import check_family_size, check_kkt_pairs, check_run_size
from .config import RunConfig
from .datasets import Dataset
from .engines import make_engine
from .errors import TrainingError
from .health import HealthMonitor
from .homogeneity import NONE, analyze
from .network import evaluation_network, initial_parameters
from .optimizers import state_layout
from .recorder import Recorder
from .recording import LogSchedule, RecordSchedule
from .snapshot_metrics import SnapshotMetrics
from .step_block import StepBlock

RUNNING, FINISHED, STOPPED, DIVERGED, FAILED = "running", "finished", "stopped", "diverged", "failed"


@dataclass
class Chunk:
    """What one ``Trainer.run`` call produced for one member: records (name -> array, all the
    same length), snapshots (step, params and snapshot metrics), and the status after it."""

    records: dict
    snapshot_steps: list = field(default_factory=list)
    snapshot_params: list = field(default_factory=list)
    snapshot_metrics: list = field(default_factory=list)  # dicts kkt_eps, kkt_delta, euler_defect
    status: str = RUNNING
    reason: str = ""
    step: int = 0
    params: np.ndarray | None = None  # theta at ``step``
    events: list = field(default_factory=list)  # core/health.py events (dicts step, kind, message), in step order
    optimizer_state: dict | None = None  # at ``step``, with ``params`` (core/optimizers.py state_layout)

    @property
    def n_records(self) -> int:
        return len(self.records.get("step", ()))


@dataclass
class FamilyChunk:
    """What one ``Trainer.run`` produced: a Chunk per member, and the family's status."""

    members: list = field(default_factory=list)
    status: str = RUNNING
    reason: str = ""
    step: int = 0


def family_status(statuses: list[str]) -> str:
    """running while any member runs; then diverged if all diverged, stopped if any was stopped,
    else finished."""
    if RUNNING in statuses:
        return RUNNING
    if all(s == DIVERGED for s in statuses):
        return DIVERGED
    return STOPPED if STOPPED in statuses else FINISHED


@dataclass
class Member:
    """One run of the family: its own config, status, reason and step (a member that failed
    stays at the step it failed), its parameters (a row of the driver's), and its snapshots and
    events since the last chunk."""

    config: RunConfig
    theta: np.ndarray
    health: HealthMonitor
    step: int = 0
    status: str = RUNNING
    reason: str = ""
    snapshots: list = field(default_factory=list)
    events: list = field(default_factory=list)
    last_snapshot: int = -1


class Trainer:
    """Trains ``config`` (its family's members together) from theta_0, or one run from
    ``params`` at ``start_step`` with its ``optimizer_state`` to continue; see the module docstring."""

    def __init__(self, config: RunConfig, dataset: Dataset | None = None, params: np.ndarray | None = None,
                 start_step: int = 0, optimizer_state: dict | None = None):
        self.config = config
        self.dtype = np.float64 if config.run.dtype == "float64" else np.float32
        self.dataset = dataset if dataset is not None else config.dataset.build()
        spec = config.architecture
        # width 1 for two classes (labels -1/+1), C for C >= 3 (labels 0..C-1): never one as the other
        check_output_width(spec, self.dataset.classes)
        if self.dataset.dim != spec.input_dim:
            raise TrainingError(f"architecture.input_dim is {spec.input_dim} but the dataset has "
                                f"{self.dataset.dim} coordinates per point")
        check_image_input(spec, self.dataset.image_shape)
        self.X = np.ascontiguousarray(self.dataset.X, dtype=self.dtype)
        self.y = self.dataset.y.astype(self.dtype)
        # C >= 3 classes: the labels as indices for core/multiclass.py (None: binary, q = y f)
        self.labels = self.dataset.y.astype(np.intp) if self.dataset.multiclass else None
        self.n = self.dataset.n
        self.homogeneity = analyze(spec)
        # M: the order that normalizes margins; None for networks with no positive order
        self.order = None if self.homogeneity.verdict == NONE else float(self.homogeneity.order)
        family = config.family is not None
        if family:
            if params is not None or optimizer_state is not None:
                raise TrainingError("family: a family starts from its members' initializations; continue one run")
            check_family_size(spec, self.n, config.family_size)  # before any member exists
        # before the network, its parameters or a reference solve allocate anything (README, Limits)
        # every network: the stuck-sample check (core/health.py) forms the Jacobian rows of the
        # misclassified samples, up to all n, whatever the homogeneity (the KKT residual all n)
        check_run_size(spec, self.n, jacobian=True)
        configs = [config.member(k) for k in range(config.family_size)] if family else [config]
        # the host network: records, snapshots and the decision boundary, whatever the engine
        # (the numpy network: image blocks included, core/conv_nodes.py)
        self.net = evaluation_network(spec)
        self.params = np.empty((len(configs), self.net.size), dtype=self.dtype)  # row s: member s's theta
        with np.errstate(over="ignore"):  # an init scale of 1e308: the first step reports it as a divergence
            for s, member in enumerate(configs):
                theta = (initial_parameters(member.architecture, member.run.seed, self.dtype) if params is None
                         else np.array(params, dtype=self.dtype))
                if theta.shape != (self.net.size,):
                    raise TrainingError(f"the parameters have {theta.size} entries; the architecture needs "
                                        f"{self.net.size}")
                self.params[s] = theta
        self.loss_kind = config.loss.kind
        self.mean = config.loss.reduction == "mean"
        self.step_rule = config.optimizer.step_rule
        self.norm_limit = step_rule.norm_limit(self.order, self.dtype)
        self.engine = make_engine(config, self.X, self.y, self.params, [m.optimizer.lr for m in configs],
                                  [m.run.seed for m in configs], self.order)
        self.engine_note = self.engine.note
        # the most kept steps in one advance: the engine's bound (1: every record made alone)
        self.record_block = self.engine.max_kept
        self.step = self.start_step = start_step
        self.members = [Member(m, self.params[s], HealthMonitor(self.loss_kind, self.n, self.mean), step=start_step)
                        for s, m in enumerate(configs)]
        if optimizer_state is not None:  # continuing: the state saved with ``params``
            self.load_optimizer_state(optimizer_state)
        self.total_steps = config.run.steps  # 0: unlimited
        rec = config.recording
        self.records = RecordSchedule(rec.every_step_until, rec.per_decade, rec.max_per_second)
        self.snapshots = LogSchedule(1, rec.snapshots_per_decade)
        self.compute_kkt = rec.kkt and self.order is not None
        if self.compute_kkt and self.labels is not None:  # one Jacobian row per pair (i, j != y_i)
            check_kkt_pairs(spec, self.n, self.dataset.classes)
        # the members share one solve (same data, same optimizer kind)
        self.reference = self._reference_direction()
        self.recorder = Recorder(self.net, self.X, self.y, self.loss_kind, self.mean, self.order, self.reference,
                                 rec.support_tolerance, len(configs), self.dataset.X_test, self.dataset.y_test)
        self.recorder.rates = self.step_rule == "loss_based"
        self.wall = 0.0  # seconds of training so far (the records' wall_time)
        self.snapshot_metrics = SnapshotMetrics(self.net, spec, self.X, self.y, self.labels, self.dataset.classes,
                                                self.order, self.compute_kkt)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def status(self) -> str:
        return family_status([m.status for m in self.members])

    @property
    def reason(self) -> str:
        """A single run's reason; a family's says how many members diverged, and the first's reason."""
        if self.size == 1:
            return self.members[0].reason
        diverged = [m for m in self.members if m.status == DIVERGED]
        if not diverged:
            return next((m.reason for m in self.members if m.reason), "")
        return f"{len(diverged)} of {self.size} members diverged (first: {diverged[0].config.name}: {diverged[0].reason})"

    # ------------------------------------------------------------------ optimizer state
    def load_optimizer_state(self, state: dict) -> None:
        """Continue a single run from a saved optimizer state; a TrainingError if it is not this run's."""
        layout = state_layout(self.config.optimizer.kind, self.net.size, self.config.optimizer.step_rule)
        if set(state) != set(layout):
            raise TrainingError(f"the saved optimizer state holds {sorted(state) or 'nothing'}; a "
                                f"{self.config.optimizer.kind} run needs {sorted(layout) or 'nothing'}")
        for name, (shape, _dtype) in layout.items():
            if np.shape(state[name]) != shape:
                raise TrainingError(f"the saved optimizer state's {name} has shape {np.shape(state[name])}; "
                                    f"this run needs {shape}")
        self.engine.load_state([state])

    # ------------------------------------------------------------------ reference directions
    def _reference_direction(self):
        """The max-margin separator of the norm the optimizer is steepest in, for linear models."""
        if not is_linear_model(self.config.architecture):
            return None
        X = self._reference_inputs()
        kind = self.config.optimizer.kind
        solver = {"sign": reference.linf_max_margin_direction,
                  "coordinate": reference.l1_max_margin_direction}.get(kind, reference.svm_direction)
        return solver(X, self.dataset.y)

    def _reference_inputs(self) -> np.ndarray:
        """The data as the linear model sees them: a first-layer bias is an extra coordinate 1."""
        X = self.dataset.X
        return np.column_stack([X, np.ones(self.n)]) if self.config.architecture.blocks[0].bias else X

    def reference_margin(self) -> float | None:
        """min_i y_i <w*, x_i> of the unit reference direction: the limit of the normalized margin;
        for a small two-layer network with frozen output weights, the largest normalized margin it
        can have (core/network_margin.py)."""
        if self.reference is None:
            from .network_margin import max_normalized_margin

            return max_normalized_margin(self.config.architecture, self.dataset.X, self.dataset.y)
        return float(np.min(self.dataset.y * (self._reference_inputs() @ self.reference)))

    def steepest_reference_margin(self) -> float | None:
        """For sign (coordinate) descent, the l_inf (l1) max margin min_i y_i <w*, x_i> / ||w*||_inf
        (||w*||_1) of the reference direction: the limit of normalized_margin_linf (_l1)."""
        norm = {"sign": np.inf, "coordinate": 1}.get(self.config.optimizer.kind)
        if self.reference is None or norm is None:
            return None
        margin = self.reference_margin()
        return float(margin / np.linalg.norm(self.reference, norm))

    # ------------------------------------------------------------------ the loop
    def run(self, max_steps: int, max_seconds: float | None = None) -> FamilyChunk:
        """Take up to ``max_steps`` steps of every member (fewer at the run's end, when every member
        has failed, or after ``max_seconds``) and return what was recorded."""
        if self.status == RUNNING:
            # overflows are found and reported as a divergence: numpy's warnings would only repeat them
            with self.engine.step_threads(), np.errstate(over="ignore", invalid="ignore"):
                self._steps(max_steps, max_seconds)
            if self.total_steps and self.step >= self.total_steps:
                self.finish(FINISHED)
        return self._drain()

    def _steps(self, max_steps: int, max_seconds: float | None) -> None:
        """``run``'s loop: blocks of steps, each ending where the engine's kept steps fill up."""
        started = time.perf_counter()
        deadline = None if max_seconds is None else started + max_seconds
        end = self.step + max_steps
        if self.total_steps:
            end = min(end, self.total_steps)
        while self.step < end and self.status == RUNNING:
            start, limit = self.step, max(1, self.record_block)
            records = self.records.due_in(start, end, limit)
            snapshots = self.snapshots.due_in(start, end, limit)
            kept = np.union1d(records, snapshots)
            block_end = end if len(kept) < limit else int(kept[limit - 1]) + 1
            offset = self.wall + time.perf_counter() - started
            block = self.engine.advance(start, block_end, records[records < block_end],
                                        snapshots[snapshots < block_end], deadline)
            self.records.commit(start, block.end_step)
            self.snapshots.commit(start, block.end_step)
            self._take(block, offset)
            if block.end_step < block_end or (deadline is not None and time.perf_counter() > deadline):
                break
        self.wall += time.perf_counter() - started

    def _take(self, block: StepBlock, wall_offset: float) -> None:
        """A block's records, snapshots, final parameters and failures, member by member."""
        running = np.array([m.status == RUNNING for m in self.members])
        valid = running[None, :] & (block.steps[:, None] <= block.last_valid()[None, :])
        self.recorder.record(block, valid & block.record[:, None], wall_offset)
        for k in np.flatnonzero(block.snapshot):
            for s in np.flatnonzero(valid[k]):
                self._snapshot(s, int(block.steps[k]), block.theta[k, s])
        for s in np.flatnonzero(running):
            member = self.members[s]
            member.theta[:] = block.final_theta[s]
            if block.diverged_at[s] >= 0:
                member.step = int(block.diverged_at[s])
                self._diverge(member, bool(block.overflowed[s]))
            else:
                member.step = block.end_step
        self.step = block.end_step

    def evaluate(self, theta):
        """(f, q, log L, grad log L) at ``theta`` with the host network: what a step computes
        before it updates."""
        f = self.net.outputs(theta, self.X)
        if self.labels is not None:  # C outputs (core/multiclass.py), as the engines compute them
            log_l, weights = multiclass.log_loss_and_weights(self.loss_kind, f, self.labels)
            return f, multiclass.sample_margins(f, self.labels), log_l, self.net.backward(theta, weights.astype(f.dtype))
        q = self.y * f
        log_l, weights = losses.log_loss_and_weights(self.loss_kind, q)
        return f, q, log_l, self.net.backward(theta, weights * self.y)

    def finish(self, status: str, reason: str = "") -> None:
        """End every running member: record its final state (unless it diverged) and set its status."""
        running = [s for s, m in enumerate(self.members) if m.status == RUNNING]
        if status != DIVERGED and running:
            self._record_current(running)
        for s in running:
            self.members[s].status, self.members[s].reason = status, reason

    def stop(self, reason: str = "stopped by the user") -> FamilyChunk:
        self.finish(STOPPED, reason)
        return self._drain()

    def _record_current(self, members: list[int]) -> None:
        """Record and snapshot the members' current states unless they already were (as a block of
        one step), where their loss and gradient are finite."""
        S, P = self.params.shape
        theta, grad = np.zeros((1, S, P), dtype=self.dtype), np.zeros((1, S, P), dtype=self.dtype)
        q, log_l = np.zeros((1, S, self.n), dtype=self.dtype), np.full((1, S), np.nan)
        valid = np.zeros((1, S), dtype=bool)
        with np.errstate(all="ignore"):
            for s in members:
                member = self.members[s]
                _f, q_s, log_l_s, grad_s = self.evaluate(member.theta)
                if not (math.isfinite(log_l_s) and np.all(np.isfinite(grad_s))):
                    continue
                if self.recorder.last_step(s) != member.step:
                    theta[0, s], q[0, s], log_l[0, s], grad[0, s] = member.theta, q_s, log_l_s, grad_s
                    valid[0, s] = True
                if member.last_snapshot != member.step:
                    self._snapshot(s, member.step, member.theta)
            if valid.any():  # the running members are all at the driver's step
                block = StepBlock(steps=np.array([self.step], dtype=np.int64), walls=np.zeros(1),
                                  record=np.ones(1, dtype=bool), snapshot=np.zeros(1, dtype=bool), theta=theta, q=q,
                                  log_l=log_l, grad=grad, end_step=self.step, final_theta=self.params.copy(),
                                  diverged_at=np.full(S, -1, dtype=np.int64), overflowed=np.zeros(S, dtype=bool))
                rates = getattr(self.engine, "rates", None)  # the loss_based rule's state now
                if rates is not None:
                    block.alpha = np.array([[r.alpha for r in rates]])
                    block.taken = np.array([[float(r.taken) for r in rates]])
                self.recorder.record(block, valid, self.wall)

    # ------------------------------------------------------------------ divergence
    def _diverge(self, member: Member, overflowed: bool) -> None:
        """The member failed at its step: the reason says what failed (from the state it is frozen
        in) and the one change likely to help."""
        theta = member.theta
        with np.errstate(all="ignore"):
            _f, _q, log_l, grad = self.evaluate(theta)
            norm = math.sqrt(float(np.dot(theta, theta)))
            grad_sq = float(np.dot(grad, grad))
        log_step = log_l - math.log(self.n) if self.mean else log_l
        norm_overflow = False
        if overflowed:
            what = f"the loss overflowed (log L = {log_step:.4g})"
        elif not math.isfinite(norm):
            what = "the parameters are no longer finite"
        elif norm >= self.norm_limit:
            what = f"the parameter norm {norm:.3g} overflows ||theta||^M"
            norm_overflow = True
        elif not math.isfinite(log_l):
            what = f"log L is {log_l}"
        elif not math.isfinite(grad_sq):
            what = "the gradient is no longer finite"
        else:  # the engine and the host network disagree at the margin
            what = "a value was no longer finite"
        member.status = DIVERGED
        member.reason = f"diverged at step {member.step}: {what} ({self._divergence_advice(member, norm_overflow)})"

    def _divergence_advice(self, member: Member, norm_overflow: bool) -> str:
        """One piece of advice, never a rule already in use nor two rules at once."""
        if member.step == self.start_step:  # nothing was updated yet: the step size is not the cause
            return ("at the starting parameters, before any update: the data's coordinates or the initialization "
                    "(architecture.init.scale) are too large for this network's values to stay finite")
        precision = " or run.dtype float64" if self.dtype == np.float32 else ""
        if norm_overflow:  # the loss-normalized step makes a network of order M > 1 grow exponentially
            rule = "the lyu_li step rule, " if self.step_rule == "loss_normalized" and (self.order or 1) > 1 else ""
            return f"use {rule}a smaller step (optimizer.lr){precision}"
        if self.step_rule == "constant":
            return ("the step size is too large for the constant rule: lower it or use the loss-normalized rule"
                    + precision)
        return f"the step size is too large: lower optimizer.lr{precision}"

    # ------------------------------------------------------------------ snapshots and chunks
    def _snapshot(self, s: int, step: int, theta) -> None:
        member = self.members[s]
        member.last_snapshot = step
        f = self.net.outputs(theta, self.X)  # for the Euler defect and the dead-sample check alike
        metrics = self.snapshot_metrics.measure(theta, f)
        # samples with a dead gradient (core/health.py)
        member.events += member.health.check_samples(step, self.X, self.snapshot_metrics.sample_margins(f),
                                                     lambda rows: self.snapshot_metrics.jacobian_rows(theta, rows))
        member.snapshots.append((step, np.array(theta, copy=True), metrics))

    def _drain(self) -> FamilyChunk:
        states = self.engine.state()
        chunks = []
        for s, member in enumerate(self.members):
            records = self.recorder.drain(s)
            snaps, member.snapshots = member.snapshots, []
            events = sorted(member.events + member.health.observe(records), key=lambda e: e.step)
            member.events = []
            chunks.append(Chunk(records=records, snapshot_steps=[x[0] for x in snaps],
                                snapshot_params=[x[1] for x in snaps], snapshot_metrics=[x[2] for x in snaps],
                                status=member.status, reason=member.reason, step=member.step,
                                params=member.theta.copy(), events=[e.to_dict() for e in events],
                                optimizer_state=states[s]))
        return FamilyChunk(members=chunks, status=self.status, reason=self.reason, step=self.step)

    # ------------------------------------------------------------------ facts for the file
    def layer_names(self) -> list[str]:
        return [name for name, _sl, _shape in self.net.weight_slices]

    def ensemble_size(self) -> int:
        for block in self.config.architecture.blocks:
            if hasattr(block, "members"):
                return len(block.members)
        return 0

    def device_name(self) -> str:
        return self.config.run.device
