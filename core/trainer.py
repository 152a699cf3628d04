"""The trainer: gradient descent in log space on a flat parameter vector, driven in chunks.

``Trainer.run(k)`` takes up to k steps and returns a Chunk of metric records and snapshots;
the caller pauses or stops between chunks (the CLI, the window's worker and the tests all
drive it the same way). Nothing here imports Qt.

Each step at theta_t: f = net(theta_t), q = y f, (log L, w) from core/losses.py, grad log L by
one backward pass; the record at step t (if due) is computed from these same quantities; then
the update from the direction source (grad log L for the loss-normalized rule, L grad log L
for the constant one). L itself is never formed (THEORY.md, Numerics).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from . import losses, reference
from .architecture import is_linear_model
from .blas import one_torch_thread
from .budget import check_run_size
from .config import RunConfig
from .datasets import Dataset
from .errors import TrainingError
from .family_records import PendingRecords
from .health import HealthMonitor
from .homogeneity import NONE, analyze
from .level1 import abs_sum_and_max
from .metrics import SUPPORT_DECADES, SUPPORT_STEPS, kkt_residual, stable_rank, unit_angle
from .network import NumpyNetwork, initial_parameters, per_sample_jacobian
from .optimizers import UpdateRule, rng_state, set_rng_state, state_layout
from .recording import LogSchedule, RecordSchedule
from .spectral import TopEigenvalue

RUNNING, FINISHED, STOPPED, DIVERGED, FAILED = "running", "finished", "stopped", "diverged", "failed"
LOG_MAX = 700.0  # exp() of more overflows float64
# Records made together: at most MAX_RECORD_BLOCK, their copies of theta, q and grad within
# RECORD_BLOCK_BYTES (the block's arrays stay in cache), and not at all when fewer than
# MIN_RECORD_BLOCK fit: for a large network each record's numpy calls are already large, and
# the copies cost more than they save (residual GELU width 64: 1,570 steps/s one by one, 1,220 in blocks)
MAX_RECORD_BLOCK = 256
RECORD_BLOCK_BYTES = 1 << 20
MIN_RECORD_BLOCK = 32


@dataclass
class Chunk:
    """What one ``Trainer.run`` call produced: records (name -> array, all the same length),
    snapshots (step, params and snapshot metrics), and the status after it."""

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


class _TorchEvaluator:
    """The autograd path with the NumpyNetwork interface (numpy in, numpy out), for cuda, mps
    and as the reference. It synchronizes every step; batching on the device is issue #6's."""

    def __init__(self, spec, dtype, device):
        import torch

        from .torch_network import TorchNetwork

        self.torch = torch
        self.device = torch.device(device)
        self.tdtype = torch.float64 if dtype == np.float64 else torch.float32
        self.module = TorchNetwork(spec, self.tdtype, self.device)
        self.params = list(self.module.parameters())
        self.size = sum(p.numel() for p in self.params)
        self._numpy_twin = NumpyNetwork(spec)
        self.weight_slices = self._numpy_twin.weight_slices
        self._X = None
        self._Xt = None

    def step_threads(self):
        """One torch thread while it steps on the CPU (core/blas.py): each step's ops are small
        and read back at once."""
        return nullcontext() if self.device.type != "cpu" else one_torch_thread(self.torch)

    def _inputs(self, X):
        if self._X is not X:
            self._X, self._Xt = X, self.torch.as_tensor(X, dtype=self.tdtype, device=self.device)
        return self._Xt

    def outputs(self, theta, X):
        torch = self.torch
        self.module.load_flat(torch.as_tensor(theta, device=self.device))
        self._out = self.module(self._inputs(X))
        return self._out.detach().cpu().numpy().astype(theta.dtype)

    def backward(self, theta, grad_outputs, out=None):
        torch = self.torch
        g = torch.as_tensor(grad_outputs, dtype=self.tdtype, device=self.device)
        grads = torch.autograd.grad(self._out, self.params, grad_outputs=g, retain_graph=True)
        flat = torch.cat([gr.reshape(-1) for gr in grads]).cpu().numpy()
        if out is not None:
            out[...] = flat
            return out
        return flat.astype(theta.dtype)

    def jacobian(self, theta, X):
        return per_sample_jacobian(self, theta, X)

    def member_outputs(self):
        return None


def check_device(device: str):
    """torch, once ``device`` is known to be there; a TrainingError saying what is missing otherwise."""
    try:
        import torch
    except ImportError:
        raise TrainingError("the torch backend needs PyTorch installed") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"run.device: {device} was asked for, but no CUDA GPU is available here")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TrainingError("run.device: mps was asked for, but it is not available here")
    return torch


def make_evaluator(config: RunConfig, dtype):
    """The hand-written numpy network on the CPU ('auto' or 'numpy'), torch autograd otherwise."""
    settings = config.run
    if settings.backend == "numpy" or (settings.backend == "auto" and settings.device == "cpu"):
        return NumpyNetwork(config.architecture)
    check_device(settings.device)
    return _TorchEvaluator(config.architecture, dtype, settings.device)


class Trainer:
    """Trains ``config`` from theta_0 (or ``params`` to continue); see the module docstring."""

    def __init__(self, config: RunConfig, dataset: Dataset | None = None, params: np.ndarray | None = None,
                 start_step: int = 0, reference=None, net=None, optimizer_state: dict | None = None):
        self.config = config
        self.dtype = np.float64 if config.run.dtype == "float64" else np.float32
        self.dataset = dataset if dataset is not None else config.dataset.build()
        spec = config.architecture
        if self.dataset.dim != spec.input_dim:
            raise TrainingError(f"architecture.input_dim is {spec.input_dim} but the dataset has "
                                f"{self.dataset.dim} coordinates per point")
        self.X = np.ascontiguousarray(self.dataset.X, dtype=self.dtype)
        self.y = self.dataset.y.astype(self.dtype)
        self.n = self.dataset.n
        self.homogeneity = analyze(spec)
        # M: the order that normalizes margins; None for networks with no positive order
        self.order = None if self.homogeneity.verdict == NONE else float(self.homogeneity.order)
        # before the network, its parameters or a reference solve allocate anything (README, Limits)
        # every network: the stuck-sample check (core/health.py) forms the Jacobian rows of the
        # misclassified samples, up to all n, whatever the homogeneity (the KKT residual all n)
        check_run_size(spec, self.n, jacobian=True)
        self.net = net if net is not None else make_evaluator(config, self.dtype)
        with np.errstate(over="ignore"):  # an init scale of 1e308: the first step reports it as a divergence
            self.theta = (initial_parameters(spec, config.run.seed, self.dtype) if params is None
                          else np.array(params, dtype=self.dtype))
        if self.theta.shape != (self.net.size,):
            raise TrainingError(f"the parameters have {self.theta.size} entries; the architecture needs {self.net.size}")
        opt = config.optimizer
        self.rule = UpdateRule(opt.kind, opt.lr, opt.momentum, opt.beta1, opt.beta2, opt.eps)
        self.loss_kind = config.loss.kind
        self.mean = config.loss.reduction == "mean"
        self.log_n = math.log(self.n)
        self.step_rule = opt.step_rule
        self._lyu_li_power = 2.0 - 2.0 / (self.order or 1.0)
        self.batch_size = opt.batch_size if opt.kind == "sgd" else None
        self.rng = np.random.default_rng(config.run.seed + 1)
        if optimizer_state is not None:  # continuing: the state saved with ``params``
            self.load_optimizer_state(optimizer_state)
        self.step = self.start_step = start_step
        self.total_steps = config.run.steps  # 0: unlimited
        self.status, self.reason = RUNNING, ""
        rec = config.recording
        self.records = RecordSchedule(rec.every_step_until, rec.per_decade, rec.max_per_second)
        self.snapshots = LogSchedule(1, rec.snapshots_per_decade)
        self.support_tol = rec.support_tolerance
        self.compute_kkt = rec.kkt and self.order is not None
        self.health = HealthMonitor(self.loss_kind, self.n, self.mean)
        self._events: list = []  # found at snapshots, drained with the chunk
        # ``reference``: a family's members share one solve (same data, same optimizer kind)
        self.reference = self._reference_direction() if reference is None else reference
        self._previous_direction = None
        self._top_eigenvalues = [TopEigenvalue() for _ in self.net.weight_slices]  # warm per layer: stable ranks
        self._wall = 0.0
        self._grad = np.empty(self.net.size, dtype=self.dtype)
        if self.order is not None:
            self._norm_limit = float(np.finfo(self.dtype).max) ** (1.0 / self.order) / 1e3
        else:
            self._norm_limit = float(np.finfo(self.dtype).max) ** 0.5
        self._rows: list = []  # one tuple of SCALARS per record
        self._sample_rows: list = []
        self._layer_rows: list = []
        self._member_rows: list = []
        self._support_rows: list = []  # Lyu and Li's n_k, k = 1..7
        self._snap: list = []
        self._last_recorded = self._last_snapshot = -1
        # records are made in blocks of steps, as array operations (core/family_records.py): one at a
        # time, a record's ~30 small numpy calls cost more than a small network's step. Ensembles
        # need a forward per record for their shares, and the autograd path has no host network.
        per_record = (2 * self.net.size + self.n) * np.dtype(self.dtype).itemsize
        block = min(MAX_RECORD_BLOCK, RECORD_BLOCK_BYTES // per_record)
        blockable = isinstance(self.net, NumpyNetwork) and not self.net.ensembles and block >= MIN_RECORD_BLOCK
        self._block_size = block if blockable else 0
        self._pending = PendingRecords(block, self.net.size, self.n, self.dtype) if blockable else None

    # ------------------------------------------------------------------ optimizer state
    def optimizer_state(self) -> dict:
        """name -> array: what continuing from ``theta`` exactly needs (state_layout)."""
        state = self.rule.state(self.net.size)
        if self.batch_size is not None:
            state["minibatch_rng"] = rng_state(self.rng)
        return state

    def load_optimizer_state(self, state: dict) -> None:
        """Continue from a saved ``optimizer_state()``; a TrainingError if it is not this run's."""
        layout = state_layout(self.config.optimizer.kind, self.net.size)
        if set(state) != set(layout):
            raise TrainingError(f"the saved optimizer state holds {sorted(state) or 'nothing'}; a "
                                f"{self.config.optimizer.kind} run needs {sorted(layout) or 'nothing'}")
        for name, (shape, _dtype) in layout.items():
            if np.shape(state[name]) != shape:
                raise TrainingError(f"the saved optimizer state's {name} has shape {np.shape(state[name])}; "
                                    f"this run needs {shape}")
        self.rule.load_state(state, self.dtype)
        if "minibatch_rng" in state:
            set_rng_state(self.rng, state["minibatch_rng"])

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
        """min_i y_i <w*, x_i> of the unit reference direction: the limit of the normalized margin."""
        if self.reference is None:
            return None
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
    def run(self, max_steps: int, max_seconds: float | None = None) -> Chunk:
        """Take up to ``max_steps`` steps (fewer at the run's end, a divergence, or after
        ``max_seconds``) and return what was recorded."""
        if self.status != RUNNING:
            return self._drain()
        # overflows are found and reported by _finite as a divergence: numpy's warnings would only repeat them
        with self.net.step_threads(), np.errstate(over="ignore", invalid="ignore"):
            self._steps(max_steps, max_seconds)
        if self.status == RUNNING and self.total_steps and self.step >= self.total_steps:
            self.finish(FINISHED)
        return self._drain()

    def _steps(self, max_steps: int, max_seconds: float | None) -> None:
        """``run``'s loop: the steps themselves, their records and snapshots."""
        started = time.perf_counter()
        deadline = None if max_seconds is None else started + max_seconds
        net, X, y, theta = self.net, self.X, self.y, self.theta
        end = self.step + max_steps
        if self.total_steps:
            end = min(end, self.total_steps)
        loss_kind, mean = self.loss_kind, self.mean
        while self.step < end:
            step = self.step
            f = net.outputs(theta, X)
            q = y * f
            log_l, weights = losses.log_loss_and_weights(loss_kind, q)
            grad = net.backward(theta, weights * y, out=self._grad)
            if not self._finite(log_l, grad, theta):
                break
            if self.records.due(step):
                self._wall += time.perf_counter() - started
                started = time.perf_counter()
                if self._block_size:
                    if self._pending.add(step, self._wall, theta, q, log_l, grad):
                        self._flush_records()
                else:
                    self._record(step, theta, f, q, log_l, grad, self._squares)
            if self.snapshots.due(step):
                self._snapshot(step, theta)
            if self.batch_size is not None:
                grad, log_l = self._minibatch_gradient(theta)
            # direction source: grad log L (loss-normalized), grad L = L grad log L (constant),
            # or grad log L / log(1/L)^(2 - 2/M) (Lyu and Li's schedule, polynomial norm growth)
            log_step = log_l - self.log_n if mean else log_l
            if self.step_rule == "loss_normalized":
                factor = 1.0
            elif self.step_rule == "lyu_li":  # log(1/L) of the SUM, whatever the reduction (THEORY.md)
                factor = (-log_l) ** -self._lyu_li_power if log_l < -1.0 else 1.0
            else:
                if log_step > LOG_MAX:
                    self._diverge(f"the loss overflowed (log L = {log_step:.4g})")
                    break
                factor = math.exp(log_step)
            self.rule.apply(theta, grad, factor)
            self.step = step + 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        self._wall += time.perf_counter() - started

    def _minibatch_gradient(self, theta):
        idx = self.rng.choice(self.n, size=min(self.batch_size, self.n), replace=False)
        yb = self.y[idx]
        qb = yb * self.net.outputs(theta, self.X[idx])
        log_l, weights = losses.log_loss_and_weights(self.loss_kind, qb)
        return self.net.backward(theta, weights * yb), log_l

    def finish(self, status: str, reason: str = "") -> None:
        """End the run: record the final state (unless it diverged) and set the status."""
        if self.status != RUNNING:
            return
        if status != DIVERGED:
            self._record_current(force_snapshot=True)
        self.status, self.reason = status, reason

    def stop(self, reason: str = "stopped by the user") -> Chunk:
        self.finish(STOPPED, reason)
        return self._drain()

    def evaluate(self, theta):
        """(f, q, log L, grad log L) at ``theta``: what a step computes before it updates."""
        f = self.net.outputs(theta, self.X)
        q = self.y * f
        log_l, weights = losses.log_loss_and_weights(self.loss_kind, q)
        return f, q, log_l, self.net.backward(theta, weights * self.y)

    def record_state(self, step: int, theta: np.ndarray, wall: float) -> None:
        """The record of step ``step`` at ``theta`` after ``wall`` seconds, for parameters a batched
        engine computed (core/family.py): the same record a single run would make there."""
        self._wall = wall
        self._record(step, theta, *self.evaluate(theta))

    def _record_current(self, force_snapshot: bool = False) -> None:
        """Record (and snapshot) the state at the current step unless it already was."""
        self._flush_records()
        theta = self.theta
        f, q, log_l, grad = self.evaluate(theta)
        if not (math.isfinite(log_l) and np.all(np.isfinite(grad))):
            return
        if self._last_recorded != self.step:
            self._record(self.step, theta, f, q, log_l, grad)
        if force_snapshot and self._last_snapshot != self.step:
            self._snapshot(self.step, theta)

    def _finite(self, log_l, grad, theta) -> bool:
        """Whether the step may go on; the two squared norms are kept for this step's record."""
        self._squares = (float(np.dot(theta, theta)), float(np.dot(grad, grad)))
        norm = math.sqrt(self._squares[0])
        # a NaN or inf anywhere in the gradient makes its squared norm NaN or inf: one dot, not a scan
        if math.isfinite(log_l) and math.isfinite(norm) and norm < self._norm_limit and math.isfinite(self._squares[1]):
            return True
        if not math.isfinite(norm):
            what = "the parameters are no longer finite"
        elif norm >= self._norm_limit:
            what = f"the parameter norm {norm:.3g} overflows ||theta||^M"
        elif not math.isfinite(log_l):
            what = f"log L is {log_l}"
        else:
            what = "the gradient is no longer finite"
        self._diverge(what, norm_overflow=math.isfinite(norm) and norm >= self._norm_limit)
        return False

    def _diverge(self, what: str, norm_overflow: bool = False) -> None:
        """Diverged at the current step; the reason says what failed and the one change likely to help."""
        self.status = DIVERGED
        self.reason = f"diverged at step {self.step}: {what} ({self._divergence_advice(norm_overflow)})"

    def _divergence_advice(self, norm_overflow: bool) -> str:
        """One piece of advice, never a rule already in use nor two rules at once."""
        if self.step == self.start_step:  # nothing was updated yet: the step size is not the cause
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

    # ------------------------------------------------------------------ records
    SCALARS = ("step", "wall_time", "log_loss", "accuracy", "q_min", "param_norm", "param_norm_l1",
               "param_norm_linf", "normalized_margin", "smoothed_margin", "normalized_margin_l1",
               "normalized_margin_linf", "alignment", "alignment_gap", "direction_change", "angle_to_reference",
               "support_vectors", "normalized_margin_layers")

    def _flush_records(self) -> None:
        """Make the records the loop deferred (in ``_pending``), in order, as one block: the same
        records as _record's (tests/test_training.py holds them to 1e-12)."""
        if self._pending is None or not self._pending.count:
            return
        wall = self._wall  # append_records leaves it at the last record's; the run's clock goes on
        self._pending.flush(self)
        self._wall = wall

    def _record(self, step, theta, f, q, log_l_sum, grad, squares=None) -> None:
        """One record at step ``step`` from quantities the step already has (THEORY.md), including
        ``squares`` = (||theta||^2, ||grad||^2) when the finiteness test made them. Scalars go into
        one tuple per record (columns are made when the chunk drains)."""
        self._flush_records()
        self._last_recorded = step
        order = self.order
        nan = float("nan")
        sq, grad_sq = squares or (float(np.dot(theta, theta)), float(np.dot(grad, grad)))
        norm = math.sqrt(sq)
        norm_l1, norm_linf = abs_sum_and_max(theta)
        q_min = float(q.min())
        if order is not None and norm > 0:
            scale = norm ** order
            margins = (q_min / scale, losses.inverse_loss(self.loss_kind, log_l_sum) / scale,
                       q_min / norm_l1 ** order, q_min / norm_linf ** order)
            sample_margins = q / scale
        else:
            margins = (nan, nan, nan, nan)
            sample_margins = np.full(self.n, nan)
        gnorm = math.sqrt(grad_sq)
        if norm > 0 and gnorm > 0:
            u = theta / norm
            diff = u + grad / gnorm  # u - v with v = -grad / ||grad||
            gap = 0.5 * float(np.dot(diff, diff))  # 1 - cos without cancellation
            alignment = (1.0 - gap, gap)
        else:
            u = None
            alignment = (nan, nan)
        prev = self._previous_direction
        change = unit_angle(u, prev) if (u is not None and prev is not None) else nan
        self._previous_direction = u
        ref = self.reference
        to_reference = unit_angle(u, ref) if (ref is not None and u is not None) else nan
        support = int(np.count_nonzero(q <= q_min + self.support_tol * abs(q_min)))
        layer_norms, ranks = [], []
        for (_name, sl, shape), top in zip(self.net.weight_slices, self._top_eigenvalues):
            w = theta[sl]
            squared = float(np.dot(w, w))
            layer_norms.append(math.sqrt(squared))
            ranks.append(stable_rank(w.reshape(shape), top, step, squared))
        product = math.prod(layer_norms)
        by_layers = q_min / product if order is not None and product > 0 else nan
        self._rows.append((step, self._wall, log_l_sum - self.log_n if self.mean else log_l_sum,
                           float(np.count_nonzero(q > 0)) / self.n, q_min, norm, norm_l1, norm_linf, *margins,
                           *alignment, change, to_reference, support, by_layers))
        self._sample_rows.append(sample_margins)
        self._support_rows.append(np.count_nonzero(q[None, :] < q_min + SUPPORT_STEPS[:, None], axis=1))
        self._layer_rows.append((layer_norms, ranks))
        members = self.net.member_outputs()
        if members is not None:
            sizes = np.array([float(np.linalg.norm(m)) for m in members])
            total = sizes.sum()
            self._member_rows.append(sizes / total if total > 0 else np.full(len(sizes), nan))

    def _snapshot(self, step, theta) -> None:
        self._last_snapshot = step
        metrics = {"kkt_eps": float("nan"), "kkt_delta": float("nan"), "euler_defect": float("nan")}
        f = self.net.outputs(theta, self.X)  # for the Euler defect and the dead-sample check alike
        if self.order is not None:
            norm = float(np.linalg.norm(theta))
            if norm > 0:
                jac = self.net.jacobian(theta, self.X)
                metrics["euler_defect"] = float(np.max(np.abs(jac @ theta - self.order * f)) / norm ** self.order)
            if self.compute_kkt and norm > 0:
                metrics["kkt_eps"], metrics["kkt_delta"] = kkt_residual(self.net, theta, self.X, self.y, self.order)
        q = self.y * f  # samples with a dead gradient (core/health.py)
        self._events += self.health.check_samples(step, self.X, q, lambda rows: self.net.jacobian(theta, self.X[rows]))
        self._snap.append((step, theta.copy(), metrics))

    def _drain(self) -> Chunk:
        self._flush_records()
        records = {}
        if self._rows:
            table = np.array(self._rows, dtype=np.float64)
            for i, name in enumerate(self.SCALARS):
                records[name] = table[:, i].astype(np.int64) if name in ("step", "support_vectors") else table[:, i].copy()
            records["sample_margins"] = np.array(self._sample_rows, dtype=np.float64)
            records["layer_norms"] = np.array([r[0] for r in self._layer_rows], dtype=np.float64)
            records["stable_rank"] = np.array([r[1] for r in self._layer_rows], dtype=np.float64)
            if self._member_rows:
                records["ensemble_share"] = np.array(self._member_rows, dtype=np.float64)
            records["support_counts"] = np.array(self._support_rows, dtype=np.float64).reshape(-1, SUPPORT_DECADES)
        self._rows, self._sample_rows, self._layer_rows, self._member_rows = [], [], [], []
        self._support_rows = []
        snaps, self._snap = self._snap, []
        events = sorted(self._events + self.health.observe(records), key=lambda e: e.step)
        self._events = []
        return Chunk(records=records, snapshot_steps=[s[0] for s in snaps], snapshot_params=[s[1] for s in snaps],
                     snapshot_metrics=[s[2] for s in snaps], status=self.status, reason=self.reason,
                     step=self.step, params=self.theta.copy(), events=[e.to_dict() for e in events],
                     optimizer_state=self.optimizer_state())

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

