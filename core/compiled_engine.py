"""The compiled CPU engine (issue #23): a run's steps in blocks, each block one call into compiled
code (core/compiled_kernels.py, numba) with no Python per step.

``CompiledEngine(config, dataset, theta0).advance(start, end, record_steps, snapshot_steps,
deadline)`` takes steps start..end-1 and returns a StepBlock (core/step_block.py): theta, q, log L
and grad log L at the steps due a record or a snapshot (given as arrays, so that the schedule needs
no Python in the loop), the step reached, and where the run diverged. Its arithmetic is the numpy
engine's (core/network.py, core/losses.py, core/optimizers.py, Trainer._steps), in the same
order of operations; tests/test_compiled_engine.py holds the two together.

numba is imported when the first engine is made (or by ``prepare``), never by importing this
module: ``covers`` answers without it, so the window's process can ask.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time

import numpy as np

from .architecture import Activation, Dense, Ensemble, Residual
from .config import RunConfig
from .datasets import Dataset
from .errors import TrainingError
from .homogeneity import NONE, analyze
from .optimizers import state_layout
from .step_block import StepBlock

OPTIMIZERS = ("gd", "normalized_gd", "sign", "coordinate", "momentum", "adam")
STEP_RULES = ("constant", "loss_normalized", "lyu_li")
LOSSES = ("exponential", "logistic")
LOG_MAX = 700.0  # as core/trainer.py: exp() of more overflows float64
KEPT_BYTES = 64 << 20  # the kept steps' theta, grad and q in one block, at most
CHECK_EVERY = 64  # steps between two looks at the clock for the deadline (~25 ns each)


def covers(config: RunConfig) -> bool | str:
    """True when the compiled engine can train ``config``, else the reason it cannot (one line)."""
    if importlib.util.find_spec("numba") is None:
        return "the compiled engine needs numba, which is not installed"
    if sys.platform == "win32":
        return "the compiled engine's clock (clock_gettime) is POSIX only"
    if config.run.device != "cpu":
        return f"the compiled engine runs on the cpu, not {config.run.device}"
    if config.optimizer.kind not in OPTIMIZERS:
        return f"the compiled engine has no {config.optimizer.kind} (it draws minibatches per run)"
    unknown = _unknown_blocks(config.architecture.blocks)
    if unknown:
        return f"the compiled engine has no {unknown} block"
    return True


def _unknown_blocks(blocks) -> str:
    for block in blocks:
        if isinstance(block, Residual):
            inner = _unknown_blocks(block.blocks)
        elif isinstance(block, Ensemble):
            inner = next((u for u in map(_unknown_blocks, block.members) if u), "")
        elif isinstance(block, (Dense, Activation)):
            inner = ""
        else:
            inner = getattr(block, "type", type(block).__name__)
        if inner:
            return inner
    return ""


def norm_limit(order: float | None, dtype) -> float:
    """The parameter norm past which a run counts as diverged: ||theta||^M would overflow
    (Trainer._finite's limit)."""
    largest = float(np.finfo(dtype).max)
    return largest ** (1.0 / order) / 1e3 if order is not None else largest ** 0.5


def prepare(dtypes=(np.float64,)) -> float:
    """Compile (or load from numba's on-disk cache) the kernels for ``dtypes``; the seconds it took.
    The first engine of a process does this anyway; a program may call it ahead, in the training
    process, while it does something else."""
    started = time.perf_counter()
    from .architecture import ArchitectureSpec
    for dtype in dtypes:
        spec = ArchitectureSpec(1, [Dense(1)])
        engine = _Kernels(spec, np.zeros((1, 1)), np.ones(1), dtype)
        engine.call(np.zeros(1, dtype=dtype), 0, 0, np.zeros(0, np.int64), np.zeros(0, np.int64), None, 0)
    return time.perf_counter() - started


def warm_cache(dtypes=("float64",)):
    """Compile the kernels into numba's on-disk cache in a child process, and return it (a
    subprocess.Popen): a training process may start this when it starts, so that the first Run
    finds the cache warm (a first compile takes 5-22 s on a loaded 2-core machine; loading the
    cache ~1.5 s) without holding its GIL while it trains with another engine meanwhile. Useless,
    and harmless, where the cache cannot be written."""
    import subprocess

    code = ("import numpy as np; from margin_explorer.core.compiled_engine import prepare; "
            f"prepare(tuple(np.dtype(d) for d in {list(map(str, dtypes))!r}))")
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


class _Kernels:
    """The program, its workspaces and the call into run_block with one fixed signature per dtype
    (every argument's type is set here, so that no call compiles a second variant)."""

    def __init__(self, spec, X, y, dtype):
        from . import compiled_kernels as kernels
        from .compiled_program import compile_program

        self.kernels = kernels
        self.dtype = np.dtype(dtype)
        self.program = program = compile_program(spec)
        self.n = n = X.shape[0]
        self.size = program.size
        self.work = np.zeros(program.rows * n, dtype=dtype)
        rows, width = program.buffers[0]
        self.work[rows * n:(rows + width) * n] = np.ascontiguousarray(X.T, dtype=dtype).ravel()
        self.gwork, self.tmp = np.zeros_like(self.work), np.zeros_like(self.work)
        self.y = np.ascontiguousarray(y, dtype=dtype)
        P = program.size
        self.grad, self.scratch = np.zeros(P, dtype=dtype), np.zeros(P, dtype=dtype)
        self.q, self.weights = np.zeros(n, dtype=dtype), np.zeros(n, dtype=dtype)
        self.velocity, self.m, self.v = (np.zeros(P, dtype=dtype) for _ in range(3))
        self.t = np.zeros(1, dtype=np.int64)
        self.output_row = int(program.buffers[program.output, 0])
        self.clock = int(getattr(time, "CLOCK_MONOTONIC", 1))
        self.settings = (0, 0.1, 0.9, 0.9, 0.999, 1e-8, 1, 1, False, 0.0, 0.0, math.inf)

    def configure(self, opt_kind, lr, momentum, beta1, beta2, eps, step_rule, loss_kind, mean, log_n, power, limit):
        self.settings = (int(opt_kind), float(lr), float(momentum), float(beta1), float(beta2), float(eps),
                         int(step_rule), int(loss_kind), bool(mean), float(log_n), float(power), float(limit))

    def call(self, theta, start, end, record_steps, snapshot_steps, deadline_ns, capacity):
        """run_block from ``start`` to ``end``; (step reached, kept arrays, diverged_at, overflowed)."""
        P, n, dtype = self.size, self.n, self.dtype
        kept = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.zeros(capacity, np.bool_),
                np.zeros(capacity, np.bool_), np.zeros((capacity, P), dtype), np.zeros((capacity, n), dtype),
                np.zeros(capacity, np.float64), np.zeros((capacity, P), dtype))
        opt_kind, lr, momentum, beta1, beta2, eps, step_rule, loss_kind, mean, log_n, power, limit = self.settings
        program = self.program
        step, count, diverged_at, overflowed = self.kernels.run_block(
            program.ops, program.values, program.buffers, n, self.output_row, self.y, theta, self.work, self.gwork, self.tmp,
            self.grad, self.q, self.weights, self.scratch, dtype.type(0), opt_kind, lr, momentum, beta1, beta2, eps,
            self.velocity, self.m, self.v, self.t, step_rule, loss_kind, mean, log_n, power, limit, LOG_MAX,
            int(start), int(end), np.ascontiguousarray(record_steps, np.int64),
            np.ascontiguousarray(snapshot_steps, np.int64), self.clock, int(-1 if deadline_ns is None else deadline_ns),
            CHECK_EVERY, *kept)
        return int(step), tuple(a[:count] for a in kept), int(diverged_at), bool(overflowed)


class CompiledEngine:
    """One run (S = 1) of ``config`` from ``theta0`` on ``dataset`` (see the module docstring)."""

    S = 1

    def __init__(self, config: RunConfig, dataset: Dataset, theta0: np.ndarray, optimizer_state: dict | None = None):
        reason = covers(config)
        if reason is not True:
            raise TrainingError(reason)
        self.config = config
        self.dtype = np.float64 if config.run.dtype == "float64" else np.float32
        spec = config.architecture
        if dataset.dim != spec.input_dim:
            raise TrainingError(f"architecture.input_dim is {spec.input_dim} but the dataset has "
                                f"{dataset.dim} coordinates per point")
        self._kernels = kernels = _Kernels(spec, np.asarray(dataset.X), np.asarray(dataset.y), self.dtype)
        self.size, self.n = kernels.size, kernels.n
        self.theta = np.array(theta0, dtype=self.dtype)
        if self.theta.shape != (self.size,):
            raise TrainingError(f"the parameters have {self.theta.size} entries; the architecture needs {self.size}")
        homogeneity = analyze(spec)
        order = None if homogeneity.verdict == NONE else float(homogeneity.order)
        opt = config.optimizer
        from . import compiled_kernels as k

        kernels.configure(OPTIMIZERS.index(opt.kind), opt.lr, opt.momentum, opt.beta1, opt.beta2, opt.eps,
                          {"constant": k.CONSTANT, "loss_normalized": k.LOSS_NORMALIZED, "lyu_li": k.LYU_LI}[opt.step_rule],
                          k.EXPONENTIAL if config.loss.kind == "exponential" else k.LOGISTIC,
                          config.loss.reduction == "mean", math.log(self.n), 2.0 - 2.0 / (order or 1.0),
                          norm_limit(order, self.dtype))
        self.kind = opt.kind
        self.diverged_at = -1
        self.overflowed = False
        self.max_kept = max(1, KEPT_BYTES // ((2 * self.size + self.n) * np.dtype(self.dtype).itemsize))
        if optimizer_state is not None:
            self.load_state(optimizer_state)

    # ------------------------------------------------------------------ optimizer state
    def state(self) -> dict:
        """The optimizer state in core/optimizers.py's layout (state_layout), as float64 copies."""
        kernels = self._kernels
        if self.kind == "momentum":
            return {"velocity": kernels.velocity.astype(np.float64)}
        if self.kind == "adam":
            return {"m": kernels.m.astype(np.float64), "v": kernels.v.astype(np.float64),
                    "t": np.array(kernels.t[0], dtype=np.int64)}
        return {}

    def load_state(self, state: dict) -> None:
        """Continue from ``state`` (``state()``'s layout); a TrainingError if it is not this run's."""
        layout = state_layout(self.kind, self.size)
        if set(state) != set(layout):
            raise TrainingError(f"the saved optimizer state holds {sorted(state) or 'nothing'}; a "
                                f"{self.kind} run needs {sorted(layout) or 'nothing'}")
        for name, (shape, _dtype) in layout.items():
            if np.shape(state[name]) != shape:
                raise TrainingError(f"the saved optimizer state's {name} has shape {np.shape(state[name])}; "
                                    f"this run needs {shape}")
        kernels = self._kernels
        if self.kind == "momentum":
            kernels.velocity[:] = state["velocity"]
        elif self.kind == "adam":
            kernels.m[:], kernels.v[:] = state["m"], state["v"]
            kernels.t[0] = int(state["t"])

    # ------------------------------------------------------------------ the steps
    def advance(self, start: int, end: int, record_steps: np.ndarray, snapshot_steps: np.ndarray,
                deadline: float | None = None) -> StepBlock:
        """Steps ``start``..``end - 1`` (see the module docstring). ``record_steps`` and
        ``snapshot_steps``: ascending steps (any range; those in [start, end) count). ``deadline``: a
        time.perf_counter() time, looked at every CHECK_EVERY steps. The block ends early at a
        divergence (end_step is then the step that failed), at the deadline, or when the kept steps
        would pass KEPT_BYTES (end_step is then the first step not kept, not yet taken)."""
        started = time.perf_counter()
        record_steps = np.asarray(record_steps, dtype=np.int64)
        snapshot_steps = np.asarray(snapshot_steps, dtype=np.int64)
        if self.diverged_at >= 0:
            end = start  # a diverged run stays where it failed
        due = np.union1d(record_steps[(record_steps >= start) & (record_steps < end)],
                         snapshot_steps[(snapshot_steps >= start) & (snapshot_steps < end)])
        kernels = self._kernels
        clock0 = int(kernels.kernels.clock_ns(kernels.clock))
        offset = time.perf_counter() - started  # walls count from ``started``, the kernel's clock from clock0
        deadline_ns = None if deadline is None else clock0 + int((deadline - started) * 1e9)
        step, kept, diverged_at, overflowed = kernels.call(self.theta, start, end, record_steps, snapshot_steps,
                                                           deadline_ns, min(len(due), self.max_kept))
        if diverged_at >= 0:
            self.diverged_at, self.overflowed = diverged_at, overflowed
        steps, ns, record, snapshot, theta, q, log_l, grad = kept
        return StepBlock(steps=steps, walls=(ns - clock0) * 1e-9 + offset, record=record, snapshot=snapshot,
                         theta=theta[:, None, :], q=q[:, None, :], log_l=log_l[:, None], grad=grad[:, None, :],
                         end_step=self.diverged_at if self.diverged_at >= 0 else step,
                         final_theta=self.theta[None, :].copy(),
                         diverged_at=np.array([self.diverged_at], dtype=np.int64),
                         overflowed=np.array([self.overflowed]))
