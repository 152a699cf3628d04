"""The batched engine: the members' parameters as one (S, P) tensor on the run's device (core/
batched.py's network, the loss and update rules' torch forms), stepped together.

Nothing is read back inside the steps: on a GPU the host queues them and the device runs them;
divergence is tracked per member on the device, a member that fails is frozen there, and the
block's kept quantities, the final parameters and where members failed are read back once, at
the end of ``advance``. On CUDA a step (~60 tiny kernels) is replayed as one CUDA graph.

The records are made on the device too (``records_on_device``; by default on any device but the
CPU): the kept parameters, margins and gradients stay there in the StepBlock's ``device`` part,
and the recorder makes a block of steps of all S members' records from them at once (core/
batched_records.py); only the snapshot steps' parameters come back whole.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np

from .. import step_rule
from ..batched import BatchedNetwork
from ..batched_records import DeviceBlock, TorchOps
from ..config import RunConfig
from ..losses import torch_log_loss_and_weights
from ..optimizers import BatchedRule
from ..step_block import StepBlock
from . import check_device

KEPT_BYTES = 64 << 20  # parameters kept on the device for one block, at most


class BatchedEngine:
    """See the module docstring and core/engines/__init__.py for the interface."""

    # where the records are made: True on the device, False from the quantities read back to the host (the
    # recorder's numpy path), None: on the device unless it is the CPU, where nothing needs reading back and
    # torch's threads made the same arithmetic no quicker than numpy's (docs/performance.md, Families' records)
    records_on_device: bool | None = None

    def __init__(self, config: RunConfig, X, y, thetas, lrs, order):
        # torch is a dependency of the app (pyproject.toml), imported here, off the window's start-up
        self.torch = torch = check_device(config.run.device)
        self.device = torch.device(config.run.device)
        thetas = np.asarray(thetas)
        self.np_dtype = thetas.dtype
        self.dtype = torch.float64 if thetas.dtype == np.float64 else torch.float32
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)  # noqa: E731
        self.net = BatchedNetwork(config.architecture)
        self.theta = as_tensor(thetas).clone()  # its own: the driver keeps its copy of the parameters
        self.XT, self.y = as_tensor(X.T.copy()), as_tensor(y)
        opt = config.optimizer
        self.rule = BatchedRule(opt.kind, as_tensor(lrs), self.theta, opt.momentum, opt.beta1, opt.beta2, opt.eps)
        self.grad = torch.empty_like(self.theta)
        S = self.size = len(thetas)
        self.alive = torch.ones(S, dtype=torch.bool, device=self.device)
        self.diverged_at = torch.full((S,), -1, dtype=torch.int64, device=self.device)
        self.overflowed = torch.zeros(S, dtype=torch.bool, device=self.device)  # recorded, then diverged
        self.norm_limit = step_rule.norm_limit(order, thetas.dtype)
        self.loss_kind, self.mean = config.loss.kind, config.loss.reduction == "mean"
        self.log_n = float(np.log(len(y)))
        self.step_rule, self.power = opt.step_rule, step_rule.lyu_li_power(order)
        self.max_kept = max(1, KEPT_BYTES // (self.theta.numel() * self.theta.element_size()))
        self.note = ""
        self.ops = TorchOps(torch, self.device)
        self._test_inputs = None  # (the recorder's test set X, its transpose on the device)
        # on a GPU a step is ~60 tiny kernels: replaying them as one CUDA graph saves their launches
        self.graph = StepGraph(self) if self.device.type == "cuda" else None

    def step_threads(self):
        return nullcontext()

    def state(self) -> list[dict]:
        return self.rule.state() if self.rule.tensors() else [{} for _ in range(self.size)]

    def load_state(self, states: list[dict]) -> None:
        self.rule.load_state(states)

    def advance(self, start: int, end: int, record_steps, snapshot_steps, deadline: float | None) -> StepBlock:
        started = time.perf_counter()
        return self.read_back(self.queue_steps(start, end, record_steps, snapshot_steps, deadline, started), started)

    def queue_steps(self, start, end, record_steps, snapshot_steps, deadline, started) -> tuple:
        """The steps of ``advance`` without reading anything back: (step reached, kept), kept
        holding (step, wall, record?, snapshot?, theta, q, log L, grad log L or None) tensors."""
        records, snapshots = set(np.asarray(record_steps).tolist()), set(np.asarray(snapshot_steps).tolist())
        kept = []
        step = start
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
                 self.overflowed) = self.step_tensors(theta, self.alive, self.diverged_at, self.overflowed, step)
            record, snapshot = step in records, step in snapshots
            if record or snapshot:
                if graph is not None:  # the graph's tensors are rewritten by the next replay
                    theta, q, log_l = theta.clone(), q.clone(), log_l.clone()
                kept.append((step, time.perf_counter() - started, record, snapshot, theta, q, log_l,
                             grad.clone() if record else None))  # grad: the one buffer backward fills
            step += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        return step, kept

    def read_back(self, queued, started) -> StepBlock:
        """The one read-back of an advance: the kept steps' quantities, the final parameters and
        where members failed."""
        torch = self.torch
        end_step, kept = queued
        device = None
        if kept:
            theta, q, log_l = (torch.stack([k[i] for k in kept]) for i in (4, 5, 6))
            grad = torch.zeros_like(theta)
            rows = [i for i, k in enumerate(kept) if k[2]]
            if rows:
                grad[rows] = torch.stack([kept[i][7] for i in rows])
            on_device = self.records_on_device
            if on_device is None:
                on_device = self.device.type != "cpu"
            if on_device:
                device = DeviceBlock(self.ops, theta, q, log_l.to(torch.float64), grad, self.outputs_on)
                snapshots = [i for i, k in enumerate(kept) if k[3]]
                theta_host = np.full(tuple(theta.shape), np.nan, dtype=self.np_dtype)  # the snapshots' rows only
                if snapshots:
                    theta_host[snapshots] = theta[snapshots].cpu().numpy()
                theta, q, log_l, grad = theta_host, None, None, None
            else:
                theta, q, log_l, grad = (t.cpu().numpy() for t in (theta, q, log_l, grad))
        else:
            S, P = self.theta.shape
            theta, grad = np.zeros((0, S, P), dtype=self.np_dtype), np.zeros((0, S, P), dtype=self.np_dtype)
            q, log_l = np.zeros((0, S, self.y.shape[0]), dtype=self.np_dtype), np.zeros((0, S))
        diverged_at = self.diverged_at.cpu().numpy()
        if not self.alive.any().item():  # every member failed: the step reached is the last failure
            end_step = int(diverged_at.max())
        return StepBlock(steps=np.array([k[0] for k in kept], dtype=np.int64),
                         walls=np.array([k[1] for k in kept], dtype=np.float64),
                         record=np.array([k[2] for k in kept], dtype=bool),
                         snapshot=np.array([k[3] for k in kept], dtype=bool),
                         theta=theta, q=q, log_l=None if log_l is None else log_l.astype(np.float64), grad=grad,
                         end_step=end_step, final_theta=self.theta.cpu().numpy(), diverged_at=diverged_at,
                         overflowed=self.overflowed.cpu().numpy(), device=device)

    def outputs_on(self, theta, X):
        """f(theta_r; X) (R, m) on the device for parameters theta (R, P) there: the recorder's test
        set, put on the device once."""
        if self._test_inputs is None or self._test_inputs[0] is not X:
            self._test_inputs = (X, self.torch.as_tensor(X.T.copy(), dtype=self.dtype, device=self.device))
        return self.net.outputs(theta, self._test_inputs[1])

    def step_tensors(self, theta, alive, diverged_at, overflowed, step):
        """One step of every member, as tensors in and out (``step``: a number, or a tensor on the
        device inside a CUDA graph): (theta after, q, log L, grad log L, alive, diverged_at,
        overflowed), all before-the-update quantities at ``theta``."""
        torch = self.torch
        q = self.y * self.net.outputs(theta, self.XT)
        log_l, weights = torch_log_loss_and_weights(self.loss_kind, q)
        grad = self.net.backward(theta, weights * self.y, self.grad)
        # the numpy engine's finiteness test, as a mask instead of a branch
        ok = torch.isfinite(log_l) & torch.isfinite((grad * grad).sum(dim=1)) & (
            torch.sqrt((theta * theta).sum(dim=1)) < self.norm_limit)
        log_step = log_l - self.log_n if self.mean else log_l
        factor, overflow = step_rule.torch_factor(self.step_rule, log_l, log_step, self.power)
        if overflow is not None:  # as in the numpy engine, a loss that overflows exp() is found after the step's record
            overflow = alive & ok & overflow
            overflowed = overflowed | overflow
            ok = ok & ~overflow
        diverged_at = torch.where(alive & ~ok, step, diverged_at)
        alive = alive & ok
        # a diverged member stays frozen where it failed, as a single run stops there
        theta_after = torch.where(alive.unsqueeze(1), self.rule.apply(theta, grad, factor), theta)
        return theta_after, q, log_l, grad, alive, diverged_at, overflowed


class StepGraph:
    """One step of the batched engine captured as a CUDA graph over fixed tensors: the engine's
    parameters, masks and step counter are updated in place by each replay, and the quantities a
    record needs are left in ``before``, ``q``, ``log_l`` and ``grad`` until the next."""

    def __init__(self, engine: BatchedEngine):
        torch = engine.torch
        self.engine = engine
        self.step = torch.zeros((), dtype=torch.int64, device=engine.device)
        self.before = torch.empty_like(engine.theta)
        state = (engine.theta, engine.alive, engine.diverged_at, engine.overflowed, *engine.rule.tensors())
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
        theta, self.q, self.log_l, self.grad, alive, diverged_at, overflowed = engine.step_tensors(
            engine.theta, engine.alive, engine.diverged_at, engine.overflowed, self.step)
        engine.theta.copy_(theta)
        engine.alive.copy_(alive)
        engine.diverged_at.copy_(diverged_at)
        engine.overflowed.copy_(overflowed)
        self.step += 1

    def replay(self) -> None:
        self.graph.replay()
