"""The compiled engine (core/engines/compiled_engine.py, issue #23) through the driver: a Trainer
with backend "compiled" against Trainers with backend "numpy" and "torch" (the autograd
reference): every record and the parameters after 1,000 steps within 1e-12 relative in float64,
for every block type, activation, update rule, step rule, loss and reduction; float32 against
autograd within float32's tolerance; divergence at the same step with the same reason; the
optimizer state continued exactly; make_engine's 'auto' choice (a file look-up, no compile); an
install whose numba cache cannot be written; the warming child's life tied to its parent's."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from margin_explorer.core import activations  # noqa: E402
from margin_explorer.core.architecture import (Activation, ArchitectureSpec, Dense, Ensemble, Init,  # noqa: E402
                                               Residual, mlp)
from margin_explorer.core.config import (DatasetConfig, LossConfig, OptimizerConfig,  # noqa: E402
                                         RunConfig, RunSettings)
from margin_explorer.core.engines.autograd_engine import AutogradEngine  # noqa: E402
from margin_explorer.core.engines.compiled_engine import CompiledEngine, covers  # noqa: E402
from margin_explorer.core.engines.numpy_engine import NumpyEngine  # noqa: E402
from margin_explorer.core.errors import TrainingError  # noqa: E402
from margin_explorer.core.trainer import DIVERGED, FINISHED, Trainer  # noqa: E402

STEPS = 1000
TOL = 1e-12


def make_config(spec, kind="gd", step_rule="loss_normalized", loss="exponential", lr=0.01, reduction="sum", n=30,
                steps=STEPS, backend="numpy"):
    config = RunConfig(spec, dataset=DatasetConfig(generator="blobs", params={"n": n, "seed": 0}),
                       loss=LossConfig(kind=loss, reduction=reduction),
                       optimizer=OptimizerConfig(kind=kind, lr=lr, step_rule=step_rule),
                       run=RunSettings(steps=steps, backend=backend))
    config.recording.every_step_until, config.recording.per_decade = 10, 20
    config.recording.snapshots_per_decade = 5
    return config


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    largest = float(np.max(np.abs(b[np.isfinite(b)]))) if np.any(np.isfinite(b)) else 0.0
    if largest > 0:  # norms of numbers near 1e300 would overflow
        a, b = a / largest, b / largest
    same_nan = np.isnan(a) == np.isnan(b)
    assert same_nan.all()
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.linalg.norm(a))


def train(config, backend, steps=None):
    config = config.copy()
    config.run.backend = backend
    trainer = Trainer(config)
    chunk = trainer.run(steps or config.run.steps).members[0]
    return trainer, chunk


def run_both(config, steps=None):
    """((numpy trainer, chunk), (compiled ...), (autograd ...)): the compiled engine and the two it is
    held to, the numpy engine and the reference, torch autograd."""
    numpy_trainer, numpy_chunk = train(config, "numpy", steps)
    compiled_trainer, compiled_chunk = train(config, "compiled", steps)
    autograd_trainer, autograd_chunk = train(config, "torch", steps)
    assert isinstance(numpy_trainer.engine, NumpyEngine) and isinstance(compiled_trainer.engine, CompiledEngine)
    assert isinstance(autograd_trainer.engine, AutogradEngine)
    return (numpy_trainer, numpy_chunk), (compiled_trainer, compiled_chunk), (autograd_trainer, autograd_chunk)


def assert_same(runs, tol=TOL, min_records=20):
    """The compiled run (runs[1]) against the numpy engine's (runs[0]) and autograd's (runs[2])."""
    for reference in (runs[0], runs[2]):
        _assert_same_run(reference, runs[1], tol, min_records)


def _assert_same_run(reference, compiled, tol, min_records):
    """Status, reason, steps, every record (but wall time), snapshots and the parameters."""
    (_, ca), (_, cb) = reference, compiled
    assert (cb.status, cb.reason, cb.step) == (ca.status, ca.reason, ca.step)
    assert relative(cb.params, ca.params) <= tol
    assert set(ca.records) == set(cb.records)
    np.testing.assert_array_equal(cb.records["step"], ca.records["step"])
    assert ca.n_records >= min_records
    for name, values in ca.records.items():
        values = np.asarray(values)
        if name in ("step", "wall_time") or values.dtype.kind not in "fc":
            continue
        assert relative(cb.records[name], values) <= tol, name
    assert cb.snapshot_steps == ca.snapshot_steps
    for p, q in zip(cb.snapshot_params, ca.snapshot_params):
        assert relative(p, q) <= tol


def test_every_activation_with_and_without_bias():
    for kind in sorted(activations.HOMOGENEITY):
        param = activations.PARAMETERS.get(kind, (None, None))[1]
        spec = ArchitectureSpec(2, [Dense(6, True), Activation(kind, param), Dense(5), Activation(kind, param),
                                    Dense(1)])
        # the constant rule: with eta / L and L at e^-4000 a few kinks crossed differently in 1,000 steps
        # part two runs of any two engines (numpy's against autograd's too), a property of the dynamics
        pair = run_both(make_config(spec, "gd", "constant", "logistic", lr=0.02))
        assert pair[0][1].status == FINISHED, kind
        assert_same(pair)


def test_residual_and_ensemble_blocks_and_blas_sized_products():
    spec = ArchitectureSpec(2, [Dense(6), Activation("gelu"),
                                Residual([Dense(6), Activation("gelu"), Dense(6)], scale=0.5),
                                Ensemble([[Dense(1)], [Dense(4, True), Activation("relu"), Dense(1)],
                                          [Activation("silu"), Dense(3), Activation("relu"), Dense(1)]])])
    assert_same(run_both(make_config(spec, "gd", "constant", "logistic", lr=0.02)))
    # width 40 on 30 points: the products take the BLAS path, and a skip sum adds two input gradients
    wide = ArchitectureSpec(2, [Dense(40), Activation("relu"), Residual([Dense(40), Activation("gelu"), Dense(40)]),
                                Dense(1)])
    assert_same(run_both(make_config(wide, "gd", "constant", "logistic", lr=0.002, steps=300)))


@pytest.mark.parametrize("kind", ["gd", "normalized_gd", "sign", "coordinate", "momentum", "adam"])
def test_every_update_rule_and_step_rule(kind):
    # steps small enough that the loss-normalized runs are not chaotic (with momentum at 0.003, two
    # engines' last-bit differences grow to 1e-2 in 1,000 steps: the dynamics, not the arithmetic)
    lr = {"sign": 2e-4, "momentum": 1e-3}.get(kind, 0.01)
    for step_rule in ("constant", "loss_normalized", "lyu_li"):
        for loss, reduction in (("exponential", "sum"), ("logistic", "mean")):
            assert_same(run_both(make_config(mlp(2, [8]), kind, step_rule, loss, lr=lr, reduction=reduction)))


def test_lyu_li_rule_where_its_factor_acts():
    """lyu_li differs from loss_normalized only once log L < -1: a run that gets there."""
    pair = run_both(make_config(mlp(2, [8]), "gd", "lyu_li", "exponential", lr=0.2, n=12))
    assert np.min(pair[1][1].records["log_loss"]) < -3.0
    assert_same(pair)


def test_the_loss_based_rule_undoes_the_same_steps():
    """Lyu and Li's rate (core/step_rule.py LossBasedRate): alpha grows until steps overshoot, and
    those are undone inside the compiled loop; alpha and step_taken recorded as the numpy engine's
    and the reference's, every record within 1e-12 over 1,000 steps. A smooth network: with ReLU
    at these rates the numpy engine and autograd part too (1e-5 to 1e-3 in 1,000 steps, as the
    compiled engine from either), the kinks amplifying last-bit differences."""
    spec = ArchitectureSpec(2, [Dense(6), Activation("gelu"), Dense(1)])
    runs = run_both(make_config(spec, "gd", "loss_based", "logistic", lr=0.1))
    taken = runs[1][1].records["step_taken"]
    assert 0 < np.sum(taken == 0.0) and np.sum(taken == 1.0) > 0  # some undone, some kept
    assert runs[0][1].status == FINISHED
    assert_same(runs)


def test_the_constant_rule_overflow_diverges_at_the_same_step_with_its_record():
    config = make_config(mlp(2, [8]), "gd", "constant", "exponential", lr=0.05)
    config.recording.every_step_until = STEPS
    pair = run_both(config)
    (_a, ca), (b, cb), _autograd = pair
    assert ca.status == DIVERGED and "overflowed" in ca.reason and 0 < ca.step < STEPS
    assert cb.records["step"][-1] == ca.step  # the failing step's record is kept
    assert_same(pair, min_records=ca.step + 1)
    assert b.run(100).members[0].step == ca.step  # frozen where it failed


def test_a_norm_overflow_diverges_at_the_same_step_without_its_record():
    spec = mlp(2, [8], init=Init(scale=5e148))  # ||theta|| passes the limit (1.3e151 for M = 2) at step 3
    config = make_config(spec, "gd", "loss_normalized", "exponential", lr=5.0)
    config.recording.every_step_until = STEPS
    (a, ca), (b, cb), (c, cc) = run_both(config)
    assert ca.status == DIVERGED and "norm" in ca.reason and 0 < ca.step < STEPS, ca.reason
    for reference in (ca, cc):
        assert (cb.status, cb.reason, cb.step) == (reference.status, reference.reason, reference.step)
        assert cb.records["step"][-1] == reference.step - 1
        assert relative(cb.params, reference.params) <= TOL


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_the_optimizer_state_continues_exactly(kind):
    config = make_config(mlp(2, [8]), kind, "loss_normalized", "logistic", steps=600, backend="compiled")
    whole = Trainer(config)
    end = whole.run(600).members[0]
    first = Trainer(config)
    half = first.run(300).members[0]
    assert set(half.optimizer_state) == ({"velocity"} if kind == "momentum" else {"m", "v", "t"})
    second = Trainer(config, params=half.params, start_step=300, optimizer_state=half.optimizer_state)
    assert isinstance(second.engine, CompiledEngine)
    rest = second.run(300).members[0]
    np.testing.assert_array_equal(rest.params, end.params)  # the same arithmetic: bit for bit
    for name, value in end.optimizer_state.items():
        np.testing.assert_array_equal(rest.optimizer_state[name], value)
    # the numpy engine continues from the compiled engine's state as from its own
    config.run.backend = "numpy"
    numpy_rest = Trainer(config, params=half.params, start_step=300, optimizer_state=half.optimizer_state)
    assert relative(numpy_rest.run(300).members[0].params, end.params) <= TOL
    with pytest.raises(TrainingError, match="optimizer state"):
        config.run.backend = "compiled"
        Trainer(config, params=half.params, start_step=300, optimizer_state={})


@pytest.mark.parametrize("spec, kind, step_rule, loss, lr", [
    (mlp(2, [8]), "gd", "constant", "logistic", 0.02),
    (mlp(2, [8]), "gd", "loss_normalized", "exponential", 0.01),  # at 0.02 its kinks make it chaotic
    (ArchitectureSpec(2, [Dense(6, True), Activation("gelu"), Residual([Dense(6), Activation("gelu"), Dense(6)]),
                          Dense(1)]), "gd", "constant", "logistic", 0.02),
    (ArchitectureSpec(2, [Dense(6, True), Activation("leaky_softplus", 0.5), Dense(1)]), "adam", "constant",
     "logistic", 0.002),
], ids=["relu-constant", "relu-loss-normalized", "residual-gelu", "leaky-softplus-adam"])
def test_float32_follows_autograd_within_float32_rounding(spec, kind, step_rule, loss, lr):
    """float32 arrays (the scalars in float64, as the numpy engine): every record and the parameters
    after 1,000 steps within 1e-5 of autograd's in float32 (its epsilon is 1.2e-7; measured ~1e-7,
    the numpy engine's distance from autograd too). Configs away from chaos and from float32's
    underflow: past log L ~ -87 e^-q underflows there, and where autograd and the numpy engine then
    stop on a non-finite gradient the compiled engine, whose loss sums in float64, goes on."""
    config = make_config(spec, kind, step_rule, loss, lr=lr)
    config.run.dtype = "float32"
    compiled, autograd = train(config, "compiled"), train(config, "torch")
    assert isinstance(compiled[0].engine, CompiledEngine) and compiled[0].engine.theta.dtype == np.float32
    assert compiled[1].params.dtype == np.float32 and compiled[1].status == FINISHED
    _assert_same_run(autograd, compiled, 1e-5, 20)
    assert relative(compiled[1].params, autograd[1].params) > 0  # float32 rounding is there: not float64 in disguise


def test_a_family_trains_each_member_as_alone_and_as_the_batched_engine():
    """run.backend compiled with a family: the members one after another in each block, each
    member's records, snapshots, status and parameters those of the same run alone (on the
    compiled engine, held to numpy and autograd above), the parameters within 1e-12 of the batched
    engine's family; a member that diverges stops alone; the loss_based rule per member."""
    from tests.test_family import _assert_members_match_single_runs, _family, _train

    config = _family(mlp(2, [16], "relu"), "seed", [0, 1], steps=300, lr=0.05, rule="lyu_li")
    config.run.backend = "compiled"
    family, _chunks = _assert_members_match_single_runs(config, rtol=0)
    assert isinstance(family.engine, CompiledEngine) and "one by one" in family.engine_note
    batched = config.copy()
    batched.run.backend = "batched"
    reference = Trainer(batched)
    _train(reference)
    for member, other in zip(family.members, reference.members):
        assert relative(member.theta, other.theta) <= TOL
    diverging = _family(mlp(2, [8], "relu"), "lr", [0.01, 1e4], steps=100, rule="constant")
    diverging.run.backend = "compiled"
    family, _chunks = _assert_members_match_single_runs(diverging, rtol=0)
    assert [m.status for m in family.members] == [FINISHED, DIVERGED]
    adaptive = _family(ArchitectureSpec(2, [Dense(6), Activation("gelu"), Dense(1)]), "lr", [0.1, 0.3], steps=200,
                       rule="loss_based", loss="logistic")
    adaptive.run.backend = "compiled"
    _assert_members_match_single_runs(adaptive, rtol=0)


def test_what_it_does_not_cover_says_why():
    config = make_config(mlp(2, [8]), "gd")
    assert covers(config) is True
    config.optimizer.kind, config.optimizer.batch_size = "sgd", 4
    assert "sgd" in covers(config)
    config.run.backend = "auto"  # auto falls back to the numpy engine, which has sgd
    assert isinstance(Trainer(config).engine, NumpyEngine)
    config.run.backend = "compiled"
    with pytest.raises(TrainingError, match="run.backend compiled: .*sgd"):
        Trainer(config)


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=400,
                          env={**os.environ, **env})


def test_a_training_program_drops_the_compilers_pages_and_trains_the_same():
    """core/idle_pages.py: a library process keeps LLVM's code resident after loading the kernels;
    once the process is a program's (tune_process), those clean pages are dropped, the steps
    that follow touch none of them again, and they train bit for bit as before."""
    if not sys.platform.startswith("linux"):
        pytest.skip("madvise and /proc/self/smaps: Linux")
    code = ("import numpy as np; from margin_explorer.core.trainer import Trainer; "
            "from margin_explorer.core.presets import load_preset; "
            "from margin_explorer.core.idle_pages import clean_mappings; "
            "from margin_explorer.core.process import tune_process; "
            "llvm = lambda: sum(r for _s, _e, r in clean_mappings('libllvmlite')) >> 20; "
            "c = load_preset('relu2-blobs'); c.run.backend = 'compiled'; "
            "a = Trainer(c).run(300).members[0].params; held = llvm(); "
            "tune_process(); dropped = llvm(); "
            "b = Trainer(c).run(300).members[0].params; "
            "print(held, dropped, llvm(), np.array_equal(a, b))")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    held, dropped, after, same = out.stdout.split()
    assert int(held) > 20 and int(dropped) == 0 and int(after) < 5 and same == "True", out.stdout


def test_auto_takes_it_once_the_cache_holds_the_kernels(tmp_path):
    """A cold cache: 'auto' trains on numpy with no numba imported; after prepare() (the worker's
    warm_cache, the CLI's long runs) it takes the compiled engine, loading the kernels from disk."""
    code = ("import sys, time; import margin_explorer as mx; from margin_explorer.core.trainer import Trainer; "
            "from margin_explorer.core.engines.compiled_engine import kernels_ready, warm_if_cold; "
            "c = mx.preset('relu2-blobs'); "
            "print(kernels_ready('float64'), type(Trainer(c).engine).__name__, 'numba' in sys.modules); "
            "child = warm_if_cold(); print(child.wait(), 'numba' in sys.modules); "  # the worker's start
            "print(kernels_ready('float64'), kernels_ready('float32'), type(Trainer(c).engine).__name__, "
            "warm_if_cold())")
    out = _python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "NumpyEngine", "False", "0", "False", "True", "False", "CompiledEngine",
                                  "None"]
    # a new process loads them from the cache without compiling
    code = ("import time; t = time.perf_counter(); from margin_explorer.core.engines.compiled_engine import prepare; "
            "prepare(); print(time.perf_counter() - t)")
    out = _python(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 5.0


def test_an_unwritable_numba_cache_still_trains():
    """Only the user-provided cache folder is allowed, and it cannot be made: numba refuses
    cache=True there; the engine compiles in memory instead, and 'auto' never waits for it."""
    code = ("import margin_explorer as mx; from margin_explorer.core.trainer import Trainer; "
            "from margin_explorer.core.engines.compiled_engine import kernels_ready, prepare; "
            "c = mx.preset('relu2-blobs'); c.run.steps = 50; print(type(Trainer(c).engine).__name__); "
            "prepare(); print(kernels_ready('float64')); c.run.backend = 'compiled'; t = Trainer(c); "
            "ch = t.run(50).members[0]; print(type(t.engine).__name__, ch.status, ch.step)")
    out = _python(code, NUMBA_CACHE_DIR="/proc/margin-explorer-no-cache",
                  NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["NumpyEngine", "False", "CompiledEngine", "finished", "50"]


def test_a_long_cli_run_on_auto_is_worth_a_compile_a_short_one_or_a_family_not(tmp_path, monkeypatch):
    from margin_explorer.core.engines.compiled_engine import worth_compiling

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # a cold cache
    config = make_config(mlp(2, [8]), backend="auto", steps=10**5)
    assert worth_compiling(config)
    config.run.steps = 0  # unlimited
    assert worth_compiling(config)
    assert not worth_compiling(config, size=2)
    config.run.steps = 10**5 - 1
    assert not worth_compiling(config)
    config.run.steps, config.run.backend = 10**5, "numpy"
    assert not worth_compiling(config)


def test_training_processes_started_together_compile_once_and_never_outlive_their_parent(tmp_path, monkeypatch):
    """Each window's training process warms a cold cache: a second compiler waits on no one and
    exits at once, and a compiler whose process ended (a window closed, a test done) is killed."""
    import fcntl
    import signal
    import time

    from margin_explorer.core.engines import compiled_engine

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # a cold cache
    folder = compiled_engine._marker("float64").parent
    folder.mkdir(parents=True)
    with open(folder / "margin_explorer_warming.lock", "a") as held:  # another child compiling
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.perf_counter()
        assert compiled_engine.warm_cache().wait(timeout=60) == 0
        assert time.perf_counter() - started < 30  # no compile: an import of the package, then out
        assert not compiled_engine.kernels_ready("float64")
    code = ("import os, sys; from margin_explorer.core.engines.compiled_engine import warm_cache; "
            "print(warm_cache().pid, flush=True); os._exit(0)")  # the parent ends mid-compile
    out = _python(code, NUMBA_CACHE_DIR=str(tmp_path))
    pid = int(out.stdout)
    deadline = time.perf_counter() + 3  # a cold compile takes 5-20 s: gone before, it was killed
    while time.perf_counter() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:  # reaped by init once killed; a zombie of ours would not be
            if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                break
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the compiler outlived the process that started it")


def test_its_blocks_of_kept_steps_are_the_numpy_engines():
    """The recorder's temporaries grow with a block of kept steps: the compiled engine's blocks are
    bounded as the numpy engine's (its 64 MB blocks added 10 MB to a 10^6-step run's peak)."""
    for spec in (mlp(2, [8]), mlp(2, [256])):
        config = make_config(spec, n=100)
        limits = [train(config, backend, steps=1)[0].engine.max_kept for backend in ("numpy", "compiled")]
        assert limits[0] == limits[1] and 1 <= limits[1] <= 256


def test_the_warming_child_is_started_without_preexec_fn_and_leaves_when_its_parent_is_gone(monkeypatch):
    """preexec_fn runs Python between fork and exec: unsafe where the parent has threads (a window's
    worker has a queue's feeder thread). The child asks for its death signal itself, and a child
    whose parent is already gone (here: told another parent pid) leaves at once, compiling nothing."""
    import subprocess

    from margin_explorer.core.engines import compiled_engine

    seen = {}

    class Recorded:
        def __init__(self, args, **kwargs):
            seen.update(kwargs, args=args)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    compiled_engine.warm_cache(wait=True)
    assert "preexec_fn" not in seen and f"{os.getpid()}, True)" in seen["args"][-1]
    monkeypatch.undo()
    code = ("import os, sys; from margin_explorer.core.engines import compiled_engine as c; "
            "c.prepare = lambda *a: sys.exit(3); c.warm_alone(('float64',), os.getppid() + 999983)")
    out = _python(code)
    assert out.returncode == 0 and out.stderr == ""  # left before prepare (which would exit 3)


def test_a_long_cli_run_compiles_in_a_child_and_loads_the_kernels(tmp_path):
    """`main.py run` on auto, 10^5 steps, a cold cache: the kernels are compiled in a child process
    (the run's own process only loads them from the cache, ~70 MB less at its peak) and the run
    trains on the compiled engine."""
    code = ("import sys; from margin_explorer.app.cli import main; "
            f"main(['run', 'relu2-blobs', '--steps', '100000', '--out', {str(tmp_path / 'run.h5')!r}]); "
            "from margin_explorer.core import compiled_kernels as k; s = k.run_block.stats; "
            "print('HITS', sum(s.cache_hits.values()), 'MISSES', sum(s.cache_misses.values()))")
    out = _python(code, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    assert out.returncode == 0, out.stderr
    assert "compiling the compiled engine's kernels" in out.stdout
    assert out.stdout.split()[-4:] == ["HITS", "1", "MISSES", "0"], out.stdout
    from margin_explorer.core.run_reader import RunReader

    with RunReader(tmp_path / "run.h5") as run:
        assert int(run.metrics["step"][-1]) == 100000


def test_gradients_below_the_scalar_output_are_kept_rank_one_until_an_activation():
    """core/compiled_program.py: a buffer read only by dense layers and sums whose gradient is rank
    one has a rank-one gradient u (x) g (its u kept, no (width, n) product); one an activation
    reads is full. The equivalence tests above hold the arithmetic (residual, ensemble, both paths)."""
    from margin_explorer.core.compiled_program import ACT, ADD, CODE, DENSE, EXTRA, IN, OUT, compile_program

    spec = ArchitectureSpec(2, [Dense(6), Activation("gelu"), Residual([Dense(6), Activation("gelu"), Dense(6)]),
                                Dense(1)])
    program = compile_program(spec)
    ops = program.ops
    first_gelu, branch_gelu = (int(r[OUT]) for r in ops if r[CODE] == ACT)
    skip_sum = int(next(r[OUT] for r in ops if r[CODE] == ADD))
    branch_end = int(next(r[EXTRA] for r in ops if r[CODE] == ADD))  # the branch's last layer
    rank_one = {b for b in range(len(program.buffers)) if program.rank_one[b] >= 0}
    assert rank_one == {program.output, skip_sum, branch_end, branch_gelu}
    # the first GELU's output is read by a dense layer that feeds a GELU; the data needs no gradient
    assert first_gelu not in rank_one and int(ops[0, IN]) not in rank_one
    assert program.vector_rows == 1 + 6 + 6 + 6
    assert [int(r[CODE]) for r in ops].count(DENSE) == 4
