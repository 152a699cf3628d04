"""The compiled CPU engine (issue #23): a run's steps in blocks, each block one call into compiled
code (core/compiled_kernels.py, numba) with no Python per step; the engines' interface
(core/engines/__init__.py), a family's members one after another (``run.backend compiled``; 'auto'
gives a family the batched engine).

``advance(start, end, record_steps, snapshot_steps, deadline)`` hands the kept steps' theta, q,
log L and grad log L (and the loss_based rule's alpha and taken) to the driver as a StepBlock,
made inside the compiled loop (the schedule is given as arrays, so that it needs no Python in the
loop). Its arithmetic is the numpy engine's
(core/network.py, core/losses.py, core/optimizers.py, core/step_rule.py), in the same order of
operations; tests/test_compiled_engine.py holds the two together through the driver.

numba is imported when the first engine is made (or by ``prepare``), never by importing this
module: ``covers`` and ``kernels_ready`` answer without it, so the window's process can ask.

Compiling costs 5-20 s per dtype on a loaded 2-core machine, loading numba's on-disk cache
~1.5 s: ``prepare`` leaves a marker beside numba's cache once the kernels of a dtype are in it,
and ``kernels_ready`` (a file look-up) tells make_engine whether backend 'auto' may take this
engine without a compile.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import step_rule as rules
from ..blas import one_blas_thread
from ..architecture import Activation, Dense, Ensemble, Residual, output_classes
from ..compiled_program import ACTIVATION_CODES
from ..config import RunConfig
from ..errors import TrainingError
from ..step_block import StepBlock
from .numpy_engine import MAX_RECORD_BLOCK, RECORD_BLOCK_BYTES

OPTIMIZERS = ("gd", "normalized_gd", "sign", "coordinate", "momentum", "adam")
STEP_RULES = ("constant", "loss_normalized", "lyu_li", "loss_based")
LOSSES = ("exponential", "logistic")
# the kept steps of one block, at most: the numpy engine's bounds (its theta, grad and q within
# RECORD_BLOCK_BYTES, MAX_RECORD_BLOCK of them). The recorder's temporaries grow with a block: with
# the 64 MB this engine had, the first 1,000 steps of relu2-blobs (each recorded) made one block that
# added 10 MB to the run's peak; blocks of 4,096 record every step 17-19% faster at widths 16-64
LONG_RUN = 10**5  # steps: a first compile pays for itself (worth_compiling)
CHECK_EVERY = 64  # steps between two looks at the clock for the deadline (~25 ns each)


def covers(config: RunConfig) -> bool | str:
    """True when the compiled engine can train ``config``, else the reason it cannot (one line)."""
    platform = covers_platform()
    if platform is not True:
        return platform
    if config.run.device != "cpu":
        return f"the compiled engine runs on the cpu, not {config.run.device}"
    if config.optimizer.kind not in OPTIMIZERS:
        return f"the compiled engine has no {config.optimizer.kind} (it draws minibatches per run)"
    if config.optimizer.step_rule not in STEP_RULES:
        return f"the compiled engine has no {config.optimizer.step_rule} step rule"
    unknown = _unknown_blocks(config.architecture.blocks)
    if unknown:
        return f"the compiled engine has no {unknown}"
    classes = output_classes(config.architecture)
    if classes > 1:
        return (f"the compiled engine trains a scalar output (two classes), not {classes} outputs: "
                "use run.backend numpy or torch")
    return True


def _unknown_blocks(blocks) -> str:
    for block in blocks:
        if isinstance(block, Residual):
            inner = _unknown_blocks(block.blocks)
        elif isinstance(block, Ensemble):
            inner = next((u for u in map(_unknown_blocks, block.members) if u), "")
        elif isinstance(block, Activation):
            inner = "" if block.kind in ACTIVATION_CODES else f"{block.kind} activation"
        elif isinstance(block, Dense):
            inner = "frozen dense layer" if block.frozen is not None else ""
        else:
            inner = f"{getattr(block, 'type', type(block).__name__)} block"
        if inner:
            return inner
    return ""


def _marker(dtype) -> Path:
    """The file that says the kernels of ``dtype`` are in numba's on-disk cache: in the folder
    numba caches core/compiled_kernels.py in (NUMBA_CACHE_DIR's, else __pycache__ beside it), named
    by the kernels' source stamp (numba drops its cache when the source changes) and numba's
    version, so that a stale marker is never found."""
    source = Path(__file__).resolve().parent.parent / "compiled_kernels.py"
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if cache:  # numba's UserProvidedCacheLocator: the source folder's name and its path's SHA1
        folder = str(source.parent)
        where = Path(cache) / f"{source.parent.name}_{hashlib.sha1(folder.encode()).hexdigest()}"
    else:
        where = source.parent / "__pycache__"
    try:
        stat = source.stat()
        from importlib.metadata import version

        numba_version = version("numba")
    except Exception:  # no source (a frozen install) or no numba: never ready
        return Path("/nonexistent/margin-explorer")
    stamp = f"{stat.st_mtime_ns}-{stat.st_size}-{numba_version}-{sys.version_info[0]}{sys.version_info[1]}"
    return where / f"margin_explorer_ready.{np.dtype(dtype).name}.{stamp}"


def kernels_ready(dtype) -> bool:
    """True when ``prepare`` left the kernels of ``dtype`` in numba's cache (a file look-up, no
    numba): a first engine then loads them (~1.5 s) instead of compiling them (5-20 s)."""
    return covers_platform() is True and _marker(dtype).is_file()


def covers_platform() -> bool | str:
    if importlib.util.find_spec("numba") is None:
        return "the compiled engine needs numba, which is not installed"
    if sys.platform == "win32":
        return "the compiled engine's clock (clock_gettime) is POSIX only"
    return True


def prepare(dtypes=(np.float64,)) -> float:
    """Compile (or load from numba's on-disk cache) the kernels for ``dtypes``; the seconds it took.
    Leaves ``kernels_ready``'s marker where numba saved them to its cache (nothing where it could
    not). The first engine of a process compiles anyway; a program may call this ahead, in the
    training process (or a child: ``warm_cache``)."""
    started = time.perf_counter()
    from ..architecture import ArchitectureSpec
    for dtype in dtypes:
        spec = ArchitectureSpec(1, [Dense(1)])
        engine = _Kernels(spec, np.zeros((1, 1)), np.ones(1), dtype)
        marker = _marker(dtype)
        cache = getattr(engine.kernels.run_block, "_cache", None)
        saved = getattr(cache, "_cache_path", None)
        try:
            if saved is not None and Path(saved).resolve() == marker.parent.resolve() and any(
                    Path(saved).glob("compiled_kernels.run_block-*.nbc")):
                marker.touch()
        except OSError:  # a cache folder that cannot be written: the kernels compile in each process
            pass
    return time.perf_counter() - started


def warm_cache(dtypes=("float64",), wait: bool = False):
    """Compile the kernels into numba's on-disk cache in a child process, and return it (a
    subprocess.Popen): a training process may start this when it starts, so that the first Run
    finds the cache warm (a first compile takes 5-22 s on a loaded 2-core machine; loading the
    cache ~1.5 s) without holding its GIL while it trains with another engine meanwhile. Useless,
    and harmless, where the cache cannot be written. ``wait``: where another child is compiling,
    wait for it rather than leave at once. The child ends with the process that started it
    (``_die_with_parent``, run first thing in the child: no preexec_fn, which is unsafe in a
    process with threads)."""
    import subprocess

    code = ("import numpy as np; from margin_explorer.core.engines.compiled_engine import warm_alone; "
            f"warm_alone(tuple(np.dtype(d) for d in {list(map(str, dtypes))!r}), {os.getpid()}, {bool(wait)})")
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _die_with_parent(parent: int) -> None:
    """In the warming child: end it when ``parent``, the process that started it, ends (a window
    closed mid-compile leaves no compiler behind). On Linux the kernel sends SIGKILL then
    (PR_SET_PDEATHSIG), and a parent gone before the request took effect shows as a changed
    parent pid (the child was adopted); elsewhere a daemon thread looks at the parent pid twice
    a second."""
    try:
        import ctypes
        import signal

        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL)) != 0:  # PR_SET_PDEATHSIG
            raise OSError("prctl")
    except (OSError, AttributeError):  # not Linux
        import threading

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    if os.getppid() != parent:  # it ended before the request was made
        os._exit(0)


def warm_alone(dtypes, parent: int | None = None, wait: bool = False) -> None:
    """``prepare`` in the warming child (see warm_cache), unless another child is compiling already:
    training processes started together (a test suite, several windows) compile once, not once
    each; with ``wait``, after the other child, loading what it left (no second compile)."""
    import fcntl

    if parent is not None:
        _die_with_parent(parent)
    folder = _marker("float64").parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / "margin_explorer_warming.lock", "a")  # noqa: SIM115 (held until exit)
        fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another child holds it, or the cache cannot be written: nothing to do here
        return
    prepare(dtypes)


def warm_if_cold(dtype="float64"):
    """``warm_cache`` for ``dtype`` unless its kernels are cached already or cannot be compiled here
    (the Popen, else None): the window's worker calls it when it starts."""
    if covers_platform() is not True or kernels_ready(dtype):
        return None
    return warm_cache((dtype,))


def worth_compiling(config: RunConfig, size: int = 1) -> bool:
    """A run long enough (10^5 steps or more, or unlimited) that 'auto' on the CPU should pay a
    first compile (5-20 s, once per install) to take the compiled engine, which it covers."""
    steps = config.run.steps
    return (config.run.backend == "auto" and size == 1 and (steps == 0 or steps >= LONG_RUN)
            and not kernels_ready(config.run.dtype) and covers(config) is True)


_loaded: dict = {}  # dtype -> whether this process has run_block of that dtype


class _Rate(NamedTuple):
    alpha: float
    taken: bool


class _Kernels:
    """The program, its workspaces and the call into run_block with one fixed signature per dtype
    (every argument's type is set here, so that no call compiles a second variant)."""

    def __init__(self, spec, X, y, dtype):
        from .. import compiled_kernels as kernels
        from ..compiled_program import compile_program
        from ..idle_pages import after_compiler_work

        self.kernels = kernels
        self.dtype = np.dtype(dtype)
        self.program = program = compile_program(spec)
        self.n = n = X.shape[0]
        self.size = program.size
        self.work = np.zeros(program.rows * n, dtype=dtype)
        rows, width = program.buffers[0]
        self.work[rows * n:(rows + width) * n] = np.ascontiguousarray(X.T, dtype=dtype).ravel()
        self.gwork, self.tmp = np.zeros_like(self.work), np.zeros_like(self.work)
        self.uvec = np.zeros(max(program.vector_rows, 1), dtype=dtype)  # the rank-one gradients' u
        self.y = np.ascontiguousarray(y, dtype=dtype)
        P = program.size
        self.grad, self.scratch = np.zeros(P, dtype=dtype), np.zeros(P, dtype=dtype)
        self.q, self.weights = np.zeros(n, dtype=dtype), np.zeros(n, dtype=dtype)
        self.velocity, self.m, self.v = (np.zeros(P, dtype=dtype) for _ in range(3))
        self.t = np.zeros(1, dtype=np.int64)
        # the loss_based rule's state (compiled_kernels.ALPHA ...) and the point its next step starts from
        self.rate = np.zeros(kernels.RATE_SIZE, dtype=np.float64)
        self.start_theta, self.start_grad = np.zeros(P, dtype=dtype), np.zeros(P, dtype=dtype)
        self.start_q = np.zeros(n, dtype=dtype)
        self.output_row = int(program.buffers[program.output, 0])
        self.clock = int(getattr(time, "CLOCK_MONOTONIC", 1))
        self.settings = (0, 0.1, 0.9, 0.9, 0.999, 1e-8, 1, 1, False, 0.0, 0.0, math.inf)
        if not _loaded.get(self.dtype):  # load (or compile) the kernels now, in stages (core/idle_pages.py)
            after_compiler_work()  # numba imported: LLVM's start-up
            kernels.clock_ns(self.clock)  # numba's compiler set-up
            after_compiler_work()
            self.call(np.zeros(self.size, dtype=dtype), 0, 0, np.zeros(0, np.int64), np.zeros(0, np.int64), None, 0)
            after_compiler_work()
            _loaded[self.dtype] = True

    def configure(self, opt_kind, lr, momentum, beta1, beta2, eps, step_rule, loss_kind, mean, log_n, power, limit):
        self.settings = (int(opt_kind), float(lr), float(momentum), float(beta1), float(beta2), float(eps),
                         int(step_rule), int(loss_kind), bool(mean), float(log_n), float(power), float(limit))

    def call(self, theta, start, end, record_steps, snapshot_steps, deadline_ns, capacity):
        """run_block from ``start`` to ``end``; (step reached, kept arrays, diverged_at, overflowed)."""
        P, n, dtype = self.size, self.n, self.dtype
        kept = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.zeros(capacity, np.bool_),
                np.zeros(capacity, np.bool_), np.zeros((capacity, P), dtype), np.zeros((capacity, n), dtype),
                np.zeros(capacity, np.float64), np.zeros((capacity, P), dtype), np.zeros(capacity, np.float64),
                np.zeros(capacity, np.float64))
        opt_kind, lr, momentum, beta1, beta2, eps, step_rule, loss_kind, mean, log_n, power, limit = self.settings
        program = self.program
        step, count, diverged_at, overflowed = self.kernels.run_block(
            program.ops, program.values, program.buffers, n, self.output_row, int(program.output), program.rank_one,
            self.uvec, self.y, theta, self.work, self.gwork, self.tmp,
            self.grad, self.q, self.weights, self.scratch, dtype.type(0), opt_kind, lr, momentum, beta1, beta2, eps,
            self.velocity, self.m, self.v, self.t, step_rule, loss_kind, mean, log_n, power, limit, rules.LOG_MAX,
            self.rate, self.start_theta, self.start_q, self.start_grad, int(start), int(end),
            np.ascontiguousarray(record_steps, np.int64), np.ascontiguousarray(snapshot_steps, np.int64), self.clock, int(-1 if deadline_ns is None else deadline_ns),
            CHECK_EVERY, *kept)
        return int(step), tuple(a[:count] for a in kept), int(diverged_at), bool(overflowed)


class CompiledEngine:
    """S >= 1 runs of ``config`` (make_engine's constructor convention): one kernel state per
    member, the members one after another in each block as the numpy engine's (the first within
    its share of the time, the rest as many steps); see the module docstring and
    core/engines/__init__.py for the interface."""

    def __init__(self, config: RunConfig, X, y, thetas, lrs, seeds, order):
        reason = covers(config)
        if reason is not True:
            raise TrainingError(reason)
        self.theta = np.array(thetas)  # (S, P): each row updated in place by its member's kernels
        self.dtype = self.theta.dtype
        S = len(self.theta)
        X, y = np.asarray(X), np.asarray(y)
        self._members = [_Kernels(config.architecture, X, y, self.dtype) for _ in range(S)]
        self.n, P = self._members[0].n, self._members[0].size
        if self.theta.shape[1] != P:
            raise TrainingError(f"the parameters have {self.theta.shape[1]} entries; the architecture needs {P}")
        opt = config.optimizer
        from .. import compiled_kernels as k

        self.kind = opt.kind
        self.adaptive = opt.step_rule == "loss_based"
        for kernels, lr in zip(self._members, lrs):
            kernels.configure(OPTIMIZERS.index(opt.kind), lr, opt.momentum, opt.beta1, opt.beta2, opt.eps,
                              {"constant": k.CONSTANT, "loss_normalized": k.LOSS_NORMALIZED, "lyu_li": k.LYU_LI,
                               "loss_based": k.LOSS_BASED}[opt.step_rule],
                              k.EXPONENTIAL if config.loss.kind == "exponential" else k.LOGISTIC,
                              config.loss.reduction == "mean", math.log(self.n), rules.lyu_li_power(order),
                              rules.norm_limit(order, self.dtype))
            if self.adaptive:  # LossBasedRate(lr): alpha_0 = lr, nothing undone yet, no start point kept
                kernels.rate[[k.ALPHA, k.ALPHA0, k.TAKEN, k.UP, k.DOWN]] = (
                    lr, lr, 1.0, rules.LOSS_BASED_UP, rules.LOSS_BASED_DOWN)
        self.size = S
        self.note = "the compiled engine trains a family's members one by one" if S > 1 else ""
        self.diverged_at = np.full(S, -1, dtype=np.int64)
        self.overflowed = np.zeros(S, dtype=bool)
        per_kept = (2 * P + self.n) * np.dtype(self.dtype).itemsize * S
        self.max_kept = max(1, min(MAX_RECORD_BLOCK, RECORD_BLOCK_BYTES // per_kept))

    @property
    def rates(self):
        """The loss_based rule's alpha and taken now, per member (the driver records the final
        state with them, as the numpy engine's LossBasedRate), None for the other rules."""
        if not self.adaptive:
            return None
        from .. import compiled_kernels as k

        return [_Rate(float(m.rate[k.ALPHA]), bool(m.rate[k.TAKEN])) for m in self._members]

    def step_threads(self):
        # the kernels call no torch; their products one BLAS thread, as the numpy engine's (core/blas.py):
        # cai-figure1-large's steps took 11-25 ms on one against 27-60 on two (load 3-4)
        return one_blas_thread()

    # ------------------------------------------------------------------ optimizer state
    def state(self) -> list[dict]:
        """Each member's optimizer state in core/optimizers.py's layout (state_layout), float64 copies;
        for the loss_based rule also its alpha and last verdict (LossBasedRate.state's names)."""
        if self.kind == "momentum":
            states = [{"velocity": m.velocity.astype(np.float64)} for m in self._members]
        elif self.kind == "adam":
            states = [{"m": m.m.astype(np.float64), "v": m.v.astype(np.float64),
                       "t": np.array(m.t[0], dtype=np.int64)} for m in self._members]
        else:
            states = [{} for _ in self._members]
        for state, rate in zip(states, self.rates or ()):
            state.update(rules.rate_state(rate.alpha, rate.taken))
        return states

    def load_state(self, states: list[dict]) -> None:
        """Continue from ``states`` (the driver checked their names and shapes). The loss_based
        rule's start point is the parameters continued from, kept at the first step as for a new run."""
        from .. import compiled_kernels as k

        for kernels, state in zip(self._members, states):
            if self.kind == "momentum":
                kernels.velocity[:] = state["velocity"]
            elif self.kind == "adam":
                kernels.m[:], kernels.v[:] = state["m"], state["v"]
                kernels.t[0] = int(state["t"])
            rate = rules.rate_values(state) if self.adaptive else None
            if rate is not None:
                kernels.rate[[k.ALPHA, k.TAKEN]] = rate[0], float(rate[1])

    # ------------------------------------------------------------------ the steps
    def advance(self, start: int, end: int, record_steps, snapshot_steps, deadline: float | None) -> StepBlock:
        """Steps [start, end) (the interface's). ``deadline`` is looked at every CHECK_EVERY steps.
        The block ends early where its first running member diverges (end_step is then the step
        that failed), at the deadline, or when the kept steps would pass max_kept (end_step: the
        first step not kept); the other members take as many steps."""
        started = time.perf_counter()
        record_steps = np.asarray(record_steps, dtype=np.int64)
        snapshot_steps = np.asarray(snapshot_steps, dtype=np.int64)
        due = np.union1d(record_steps[(record_steps >= start) & (record_steps < end)],
                         snapshot_steps[(snapshot_steps >= start) & (snapshot_steps < end)])
        capacity = min(len(due), self.max_kept)
        S, P, n = self.size, self._members[0].size, self.n
        K, dtype = capacity if S > 1 else 0, self.dtype
        theta, grad = np.zeros((K, S, P), dtype=dtype), np.zeros((K, S, P), dtype=dtype)
        q, log_l = np.zeros((K, S, n), dtype=dtype), np.full((K, S), np.nan)
        alpha, taken = np.full((K, S), np.nan), np.full((K, S), np.nan)
        lead = self._members[0]
        clock0 = int(lead.kernels.clock_ns(lead.clock))
        offset = time.perf_counter() - started  # walls count from ``started``, the kernel's clock from clock0
        alive = np.flatnonzero(self.diverged_at < 0)
        reached, rows, steps, walls, record, snapshot = start, 0, due[:0], np.zeros(0), np.zeros(0, bool), None
        for i, s in enumerate(alive):
            deadline_ns = None
            if i == 0 and deadline is not None:  # the first member within its share of the time
                deadline_ns = clock0 + int((deadline - started) / len(alive) * 1e9)
            step, kept, diverged_at, overflowed = self._members[s].call(
                self.theta[s], start, end if i == 0 else reached, record_steps, snapshot_steps, deadline_ns, capacity)
            if diverged_at >= 0:
                self.diverged_at[s], self.overflowed[s] = diverged_at, overflowed
            count = len(kept[0])
            if i == 0:
                reached, rows = step, count
                steps, ns, record, snapshot = kept[:4]
                walls = (ns - clock0) * 1e-9 + offset
            if S == 1:  # the kept arrays as they are: no second copy of the block
                theta, q, log_l, grad, alpha, taken = (a[:, None] for a in kept[4:])
            else:
                theta[:count, s], q[:count, s], log_l[:count, s], grad[:count, s] = kept[4:8]
                alpha[:count, s], taken[:count, s] = kept[8], kept[9]
        if record is None:
            record, snapshot = np.zeros(0, bool), np.zeros(0, bool)
        return StepBlock(steps=steps, walls=walls, record=record, snapshot=snapshot, theta=theta[:rows], q=q[:rows],
                         log_l=log_l[:rows], grad=grad[:rows], end_step=reached, final_theta=self.theta.copy(),
                         diverged_at=self.diverged_at.copy(), overflowed=self.overflowed.copy(),
                         alpha=alpha[:rows] if self.adaptive else None, taken=taken[:rows] if self.adaptive else None)
