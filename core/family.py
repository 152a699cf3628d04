"""Families: S runs that differ only in their seed, step size or initialization scale
(RunConfig.family), trained together.

``FamilyTrainer.run(k)`` steps all members at once with the batched engine (core/batched.py)
on the run's device and returns one Chunk per member. The members are ordinary Trainers: the
batched engine owns the parameters while it steps, keeps the parameters of the steps due a
record or snapshot on the device, and hands them over once per chunk; each member then makes
its records and snapshots with exactly the code a single run uses. So a member's file is a run
file like any other, and its records equal a single run's up to the engine's rounding (the
tests hold it to 1e-12 relative over 1,000 steps).

Divergence is tracked per member on the device: a member that diverges is frozen there and
ends as "diverged" with its reason, while the others train on. Optimizers the batched engine
lacks (sgd, whose minibatches are drawn per run) train the members one after another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .budget import check_family_size
from .config import FamilyConfig, RunConfig
from .datasets import Dataset
from .errors import TrainingError
from .family_records import append_records
from .network import NumpyNetwork
from .recording import LogSchedule, RecordSchedule
from .trainer import DIVERGED, FINISHED, LOG_MAX, RUNNING, STOPPED, Chunk, Trainer, check_device

BATCHED_OPTIMIZERS = ("gd", "normalized_gd", "sign", "coordinate", "momentum", "adam")  # core/batched.py
KEPT_BYTES = 64 << 20  # parameters kept on the device for records in one chunk, at most


@dataclass
class FamilyChunk:
    """What one ``FamilyTrainer.run`` produced: a Chunk per member, and the family's status."""

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


class FamilyTrainer:
    """Trains the members of ``config.family`` together; see the module docstring."""

    def __init__(self, config: RunConfig, dataset: Dataset | None = None):
        if config.family is None:
            raise TrainingError("family: this config describes one run, not a family")
        self.config = config
        self.dataset = dataset if dataset is not None else config.dataset.build()
        check_family_size(config.architecture, self.dataset.n, config.family_size)  # before any member exists
        # the members record and snapshot on the host with the numpy network, whatever the device
        first = Trainer(config.member(0), self.dataset, net=NumpyNetwork(config.architecture))
        self.members = [first] + [Trainer(config.member(k), self.dataset, reference=first.reference,
                                          net=NumpyNetwork(config.architecture))
                                  for k in range(1, config.family_size)]
        self.step = 0
        self.engine = None
        self.engine_note = ""
        if config.optimizer.kind not in BATCHED_OPTIMIZERS:
            self.engine_note = f"{config.optimizer.kind} draws minibatches per run: the members train one by one"
        else:
            self.engine = _BatchedEngine(self)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def status(self) -> str:
        return family_status([m.status for m in self.members])

    def reason(self) -> str:
        diverged = [m for m in self.members if m.status == DIVERGED]
        if not diverged:
            return next((m.reason for m in self.members if m.reason), "")
        return f"{len(diverged)} of {self.size} members diverged (first: {diverged[0].config.name}: {diverged[0].reason})"

    def run(self, max_steps: int, max_seconds: float | None = None) -> FamilyChunk:
        """Up to ``max_steps`` steps of every member (fewer at the end or after ``max_seconds``)."""
        if self.status == RUNNING:
            if self.engine is None:
                return self._run_one_by_one(max_steps, max_seconds)
            self.engine.run(max_steps, max_seconds)
        return self._drain()

    def _run_one_by_one(self, max_steps, max_seconds) -> FamilyChunk:
        """Each member in turn: the first within its share of the time, the rest as many steps."""
        running = [m for m in self.members if m.status == RUNNING]
        lead = running[0]
        before = lead.step
        chunks = {id(lead): lead.run(max_steps, None if max_seconds is None else max_seconds / len(running))}
        taken = max(lead.step - before, 1)
        for member in running[1:]:
            chunks[id(member)] = member.run(taken)
        self.step = max(m.step for m in self.members)
        return FamilyChunk(members=[chunks.get(id(m)) or m._drain() for m in self.members], status=self.status,
                           reason=self.reason(), step=self.step)

    def stop(self, reason: str = "stopped by the user") -> FamilyChunk:
        if self.engine is not None:
            self.engine.hand_over()
        for member in self.members:
            member.finish(STOPPED, reason)
        return self._drain()

    def _drain(self) -> FamilyChunk:
        chunks = [m._drain() for m in self.members]
        return FamilyChunk(members=chunks, status=self.status, reason=self.reason(), step=self.step)

    # the facts a run file needs, shared by every member
    def layer_names(self) -> list[str]:
        return self.members[0].layer_names()

    def device_name(self) -> str:
        return self.config.run.device


class SoloTrainer:
    """One run on the batched engine (a family of one) behind the Trainer interface that the
    runner, the worker and the command line drive: the GPU path for single runs, with the
    engine's one read-back per chunk instead of autograd's one per step."""

    def __init__(self, config: RunConfig, dataset: Dataset | None = None):
        as_family = config.copy()
        as_family.family = FamilyConfig("seed", [config.run.seed])
        self.family = FamilyTrainer(as_family, dataset)
        self.member = self.family.members[0]
        self.member.config = config  # its own name and settings, for the file

    def __getattr__(self, name):  # everything else (dataset, net, theta, step, status, ...) is the member's
        return getattr(self.member, name)

    def run(self, max_steps: int, max_seconds: float | None = None) -> Chunk:
        return self.family.run(max_steps, max_seconds).members[0]

    def stop(self, reason: str = "stopped by the user") -> Chunk:
        return self.family.stop(reason).members[0]


def make_trainer(config: RunConfig, dataset: Dataset | None = None, params=None, start_step: int = 0,
                 optimizer_state: dict | None = None):
    """The trainer for one run: the batched engine where the backend asks for it ('batched') or
    the device is not the CPU ('auto'), unless the run continues from parameters or uses an
    optimizer the engine lacks; the Trainer (numpy on the CPU, autograd elsewhere) otherwise."""
    backend, device = config.run.backend, config.run.device
    batched = backend == "batched" or (backend == "auto" and device != "cpu")
    if batched and params is None and start_step == 0 and config.optimizer.kind in BATCHED_OPTIMIZERS:
        return SoloTrainer(config, dataset)
    return Trainer(config, dataset, params=params, start_step=start_step, optimizer_state=optimizer_state)


class _BatchedEngine:
    """The members' parameters as one (S, P) tensor on the device, stepped together."""

    def __init__(self, family: FamilyTrainer):
        config = family.config
        # torch is a dependency of the app (pyproject.toml), imported here, off the window's start-up
        self.torch = torch = check_device(config.run.device)
        self.family = family
        members = family.members
        first = members[0]
        self.device = torch.device(config.run.device)
        self.dtype = torch.float64 if first.dtype == np.float64 else torch.float32
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)  # noqa: E731
        from .batched import BatchedNetwork, BatchedRule

        self.net = BatchedNetwork(config.architecture)
        self.theta = as_tensor(np.stack([m.theta for m in members]))
        self.XT, self.y = as_tensor(first.X.T.copy()), as_tensor(first.y)
        opt = config.optimizer
        self.rule = BatchedRule(opt.kind, as_tensor([m.config.optimizer.lr for m in members]), self.theta,
                                opt.momentum, opt.beta1, opt.beta2, opt.eps)
        self.grad = torch.empty_like(self.theta)
        S = len(members)
        self.alive = torch.ones(S, dtype=torch.bool, device=self.device)
        self.diverged_at = torch.full((S,), -1, dtype=torch.int64, device=self.device)
        self.overflowed = torch.zeros(S, dtype=torch.bool, device=self.device)  # recorded, then diverged
        self.norm_limit = first._norm_limit
        self.loss_kind, self.mean, self.log_n = first.loss_kind, first.mean, first.log_n
        self.step_rule, self.lyu_li_power = first.step_rule, first._lyu_li_power
        rec = config.recording
        self.records = RecordSchedule(rec.every_step_until, rec.per_decade, rec.max_per_second)
        self.snapshots = LogSchedule(1, rec.snapshots_per_decade)
        self.total_steps = config.run.steps
        self.max_kept = max(1, KEPT_BYTES // (self.theta.numel() * self.theta.element_size()))
        self.wall = 0.0
        # on a GPU a step is ~60 tiny kernels: replaying them as one CUDA graph saves their launches
        self.graph = _StepGraph(self) if self.device.type == "cuda" else None

    def run(self, max_steps: int, max_seconds: float | None) -> None:
        started = time.perf_counter()
        end = self.family.step + max_steps
        if self.total_steps:
            end = min(end, self.total_steps)
        kept = self._steps(end, None if max_seconds is None else started + max_seconds, started)
        self._deliver(kept, started)

    def _steps(self, end: int, deadline: float | None, started: float) -> list:
        """Step to ``end`` (or the deadline, or a full buffer) without reading anything back: on a
        GPU the host queues the steps and the device runs them; the chunk syncs once, after."""
        family = self.family
        kept = []  # (step, wall, record?, snapshot?, theta before the update, q, log L, grad log L)
        step = family.step
        graph = self.graph
        if graph is not None:
            graph.step.fill_(step)
        while step < end:
            if graph is not None:
                graph.replay()
                theta, q, log_l, grad = graph.before, graph.q, graph.log_l, graph.grad
            else:
                theta = self.theta
                (self.theta, q, log_l, grad, self.alive, self.diverged_at,
                 self.overflowed) = self._step_tensors(theta, self.alive, self.diverged_at, self.overflowed, step)
            record, snapshot = self.records.due(step), self.snapshots.due(step)
            if record or snapshot:
                if graph is not None:  # the graph's tensors are rewritten by the next replay
                    theta, q, log_l = theta.clone(), q.clone(), log_l.clone()
                kept.append((step, self.wall + time.perf_counter() - started, record, snapshot, theta, q, log_l,
                             grad.clone() if record else None))  # grad: the one buffer backward fills
            step += 1
            if len(kept) >= self.max_kept or (deadline is not None and time.perf_counter() > deadline):
                break
        family.step = step
        return kept

    def _step_tensors(self, theta, alive, diverged_at, overflowed, step):
        """One step of every member, as tensors in and out (``step``: a number, or a tensor on the
        device inside a CUDA graph): (theta after, q, log L, grad log L, alive, diverged_at,
        overflowed), all before-the-update quantities at ``theta``."""
        from .batched import log_loss_and_weights

        torch = self.torch
        q = self.y * self.net.outputs(theta, self.XT)
        log_l, weights = log_loss_and_weights(self.loss_kind, q)
        grad = self.net.backward(theta, weights * self.y, self.grad)
        # the single run's finiteness test (Trainer._finite), as a mask instead of a branch
        ok = torch.isfinite(log_l) & torch.isfinite((grad * grad).sum(dim=1)) & (
            torch.sqrt((theta * theta).sum(dim=1)) < self.norm_limit)
        log_step = log_l - self.log_n if self.mean else log_l
        if self.step_rule == "loss_normalized":
            factor = torch.ones_like(log_l)
        elif self.step_rule == "lyu_li":
            # log(1/L) of the SUM, whatever the reduction (THEORY.md): Trainer._steps' rule
            factor = torch.where(log_l < -1.0, (-log_l).clamp(min=1.0) ** -self.lyu_li_power, 1.0)
        else:
            # as in Trainer.run, a loss that overflows exp() is found after the step's record
            overflow = alive & ok & (log_step > LOG_MAX)
            overflowed = overflowed | overflow
            ok = ok & ~overflow
            factor = torch.exp(log_step.clamp(max=LOG_MAX))
        diverged_at = torch.where(alive & ~ok, step, diverged_at)
        alive = alive & ok
        # a diverged member stays frozen where it failed, as a single run stops there
        theta_after = torch.where(alive.unsqueeze(1), self.rule.apply(theta, grad, factor), theta)
        return theta_after, q, log_l, grad, alive, diverged_at, overflowed

    def _deliver(self, kept, started) -> None:
        """The one read-back of the chunk: what the kept steps need, the final parameters and where
        members diverged; then each member records and snapshots as a single run would."""
        family, torch = self.family, self.torch
        members = family.members
        final = self.theta.cpu().numpy()
        diverged_at = self.diverged_at.cpu().numpy()
        # the last step a diverged member records: the one before it failed, or the one whose loss overflowed
        last = np.where(diverged_at < 0, np.iinfo(np.int64).max, diverged_at - 1 + self.overflowed.cpu().numpy())
        running = np.array([m.status == RUNNING for m in members])
        recorded = [k for k in kept if k[2]]
        if recorded:
            steps = np.array([k[0] for k in recorded])
            fields = [torch.stack([k[i] for k in recorded]).cpu().numpy() for i in (4, 5, 6, 7)]
            valid = running[None, :] & (steps[:, None] <= last[None, :])
            walls = np.array([k[1] for k in recorded])
            if members[0].net.ensembles:  # ensemble shares need each member's forward: one by one
                for i, step in enumerate(steps):
                    for s in np.flatnonzero(valid[i]):
                        members[s].record_state(int(step), fields[0][i, s], walls[i])
            else:
                append_records(members, valid, steps, walls, *fields)
        with np.errstate(all="ignore"):
            for step, _wall, _record, snapshot, params, *_rest in kept:
                if snapshot:
                    host = params.cpu().numpy()
                    for s in np.flatnonzero(running & (step <= last)):
                        members[s]._snapshot(step, host[s])
            self._hand_state_over(running)
            for s, member in enumerate(members):
                if member.status != RUNNING:
                    continue
                member.theta[:] = final[s]
                if diverged_at[s] >= 0:
                    member.step = int(diverged_at[s])
                    self._explain_divergence(member)
                else:
                    member.step = family.step
        self.wall += time.perf_counter() - started
        for member in members:
            member._wall = self.wall
        if self.total_steps and family.step >= self.total_steps:
            for member in members:
                member.finish(FINISHED)

    def _explain_divergence(self, member: Trainer) -> None:
        """The member's status and reason, from the single run's own test at the frozen state."""
        f, q, log_l, grad = member.evaluate(member.theta)
        if member._finite(log_l, grad, member.theta):  # the device and the host disagree at the margin
            log_step = log_l - member.log_n if member.mean else log_l
            what = (f"the loss overflowed (log L = {log_step:.4g})" if member.step_rule == "constant"
                    and log_step > LOG_MAX else "a value was no longer finite")
            member._diverge(what)

    def _hand_state_over(self, running) -> None:
        """Each running member's row of the rule's state into its own update rule, so that its
        chunks carry the optimizer state a continued run starts from (one more read-back a chunk,
        for momentum and Adam only)."""
        rule = self.rule
        rows = {name: getattr(rule, name).cpu().numpy() for name in ("velocity", "m", "v")
                if getattr(rule, name) is not None}
        t = int(rule.t.item()) if rule.t is not None else 0
        for s, member in enumerate(self.family.members):
            if running[s]:
                member.rule.load_state({**{name: rows[name][s] for name in rows}, "t": t}, member.dtype)

    def hand_over(self) -> None:
        """Give the members the current parameters and optimizer state (before a stop)."""
        self._hand_state_over([m.status == RUNNING for m in self.family.members])
        final = self.theta.cpu().numpy()
        for s, member in enumerate(self.family.members):
            if member.status == RUNNING:
                member.theta[:] = final[s]
                member.step = self.family.step
                member._wall = self.wall


class _StepGraph:
    """One step of the batched engine captured as a CUDA graph over fixed tensors: the engine's
    parameters, masks and step counter are updated in place by each replay, and the quantities a
    record needs are left in ``before``, ``q``, ``log_l`` and ``grad`` until the next."""

    def __init__(self, engine: _BatchedEngine):
        torch = engine.torch
        self.engine = engine
        self.step = torch.zeros((), dtype=torch.int64, device=engine.device)
        self.before = torch.empty_like(engine.theta)
        state = (engine.theta, engine.alive, engine.diverged_at, engine.overflowed, *engine.rule.state())
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream()  # CUDA graphs want a few warm-up steps on a side stream first
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._body()
        for tensor, value in zip(state, saved):  # the warm-up steps were not the run's
            tensor.copy_(value)

    def _body(self) -> None:
        engine = self.engine
        self.before.copy_(engine.theta)
        theta, self.q, self.log_l, self.grad, alive, diverged_at, overflowed = engine._step_tensors(
            engine.theta, engine.alive, engine.diverged_at, engine.overflowed, self.step)
        engine.theta.copy_(theta)
        engine.alive.copy_(alive)
        engine.diverged_at.copy_(diverged_at)
        engine.overflowed.copy_(overflowed)
        self.step += 1

    def replay(self) -> None:
        self.graph.replay()
