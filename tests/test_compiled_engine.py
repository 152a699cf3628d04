"""The compiled engine (core/compiled_engine.py, issue #23) against today's Trainer with its numpy
network: parameters and the kept quantities (theta, q, log L, grad log L at every step due a record
or a snapshot) after 1,000 steps within 1e-12 relative in float64, for every block type,
activation, update rule, step rule, loss and reduction; divergence at the same step; the optimizer
state round trip; an install whose numba cache cannot be written."""

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
from margin_explorer.core.compiled_engine import CompiledEngine, covers  # noqa: E402
from margin_explorer.core.config import (DatasetConfig, LossConfig, OptimizerConfig, RunConfig,  # noqa: E402
                                         RunSettings)
from margin_explorer.core.errors import TrainingError  # noqa: E402
from margin_explorer.core.recording import LogSchedule  # noqa: E402
from margin_explorer.core.trainer import DIVERGED, Trainer  # noqa: E402

STEPS = 1000
TOL = 1e-12


class RecordingTrainer(Trainer):
    """Today's Trainer, keeping what each record and snapshot sees instead of making them: the
    oracle for the engine's kept steps. Records one by one (no blocks), with the same loop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._block_size, self._pending = 0, None
        self.seen, self.snapshot_steps = {}, []

    def _record(self, step, theta, f, q, log_l, grad, squares=None):
        self.seen[step] = (theta.copy(), q.copy(), log_l, grad.copy())

    def _snapshot(self, step, theta):
        self.snapshot_steps.append(step)


def make_config(spec, kind="gd", step_rule="loss_normalized", loss="exponential", lr=0.01, dtype="float64",
                reduction="sum", n=30):
    config = RunConfig(spec, dataset=DatasetConfig(generator="blobs", params={"n": n, "seed": 0}),
                       loss=LossConfig(kind=loss, reduction=reduction),
                       optimizer=OptimizerConfig(kind=kind, lr=lr, step_rule=step_rule),
                       run=RunSettings(steps=0, dtype=dtype))  # 0: no final record from finish()
    config.recording.every_step_until, config.recording.per_decade = 10, 20
    config.recording.snapshots_per_decade = 5
    return config


def due(schedule: LogSchedule, steps: int) -> np.ndarray:
    return np.array([s for s in range(steps) if schedule.due(s)], dtype=np.int64)


def schedules(config, steps):
    rec = config.recording
    return (due(LogSchedule(rec.every_step_until, rec.per_decade), steps),
            due(LogSchedule(1, rec.snapshots_per_decade), steps))


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    largest = float(np.max(np.abs(b))) if b.size else 0.0
    if largest > 0:  # norms of numbers near 1e300 would overflow
        a, b = a / largest, b / largest
    scale = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else float(np.linalg.norm(a))


def run_both(config, steps=STEPS):
    trainer = RecordingTrainer(config)
    theta0 = trainer.theta.copy()
    trainer.run(steps)
    records, snapshots = schedules(config, steps)
    engine = CompiledEngine(config, trainer.dataset, theta0)
    block = engine.advance(0, steps, records, snapshots)
    return trainer, engine, block


def assert_same(trainer, block, tol=TOL):
    """The engine's end state and every kept step against the Trainer's."""
    assert block.end_step == trainer.step
    assert relative(block.final_theta[0], trainer.theta) <= tol
    kept_records = block.steps[block.record].tolist()
    assert kept_records == sorted(trainer.seen)  # the same steps, none missing, none extra
    assert block.steps[block.snapshot].tolist() == trainer.snapshot_steps
    assert np.all(np.diff(block.steps) > 0) and np.all(np.diff(block.walls) >= 0) and np.all(block.walls >= 0)
    for k in np.flatnonzero(block.record):
        theta, q, log_l, grad = trainer.seen[int(block.steps[k])]
        assert relative(block.theta[k, 0], theta) <= tol
        assert relative(block.q[k, 0], q) <= tol
        assert abs(block.log_l[k, 0] - log_l) <= tol * max(1.0, abs(log_l))
        assert relative(block.grad[k, 0], grad) <= tol


@pytest.mark.parametrize("kind", sorted(activations.HOMOGENEITY))
def test_every_activation_with_and_without_bias(kind):
    param = activations.PARAMETERS.get(kind, (None, None))[1]
    spec = ArchitectureSpec(2, [Dense(6, True), Activation(kind, param), Dense(5), Activation(kind, param),
                                Dense(1)])
    # the constant rule: with eta / L and L at e^-4000 a few kinks crossed differently in 1,000 steps
    # part two runs of any two engines (numpy's against autograd's too), a property of the dynamics
    trainer, _engine, block = run_both(make_config(spec, "gd", "constant", "logistic", lr=0.02))
    assert trainer.status != DIVERGED
    assert_same(trainer, block)


def test_residual_and_ensemble_blocks():
    spec = ArchitectureSpec(2, [Dense(6), Activation("gelu"),
                                Residual([Dense(6), Activation("gelu"), Dense(6)], scale=0.5),
                                Ensemble([[Dense(1)], [Dense(4, True), Activation("relu"), Dense(1)],
                                          [Activation("silu"), Dense(3), Activation("relu"), Dense(1)]])])
    trainer, _engine, block = run_both(make_config(spec, "gd", "constant", "logistic", lr=0.02))
    assert_same(trainer, block)


def test_products_large_enough_for_blas():
    """A residual block of width 40 on 30 points: its products take the BLAS path, and a branch
    whose input gradient adds to another's (the skip sum)."""
    spec = ArchitectureSpec(2, [Dense(40), Activation("relu"), Residual([Dense(40), Activation("gelu"), Dense(40)]),
                                Dense(1)])
    trainer, _engine, block = run_both(make_config(spec, "gd", "constant", "logistic", lr=0.002), steps=300)
    assert_same(trainer, block)


@pytest.mark.parametrize("kind", ["gd", "normalized_gd", "sign", "coordinate", "momentum", "adam"])
def test_every_update_rule_and_step_rule(kind):
    spec = mlp(2, [8])
    # steps small enough that the loss-normalized runs are not chaotic (with momentum at 0.003, two
    # engines' last-bit differences grow to 1e-2 in 1,000 steps: the dynamics, not the arithmetic)
    lr = {"sign": 2e-4, "momentum": 1e-3}.get(kind, 0.01)
    for step_rule in ("constant", "loss_normalized", "lyu_li"):
        for loss, reduction in (("exponential", "sum"), ("logistic", "mean")):
            config = make_config(spec, kind, step_rule, loss, lr=lr, reduction=reduction)
            trainer, _engine, block = run_both(config)
            assert_same(trainer, block)


def test_lyu_li_rule_where_its_factor_acts():
    """lyu_li differs from loss_normalized only once log L < -1: a run that gets there."""
    config = make_config(mlp(2, [8]), "gd", "lyu_li", "exponential", lr=0.2, n=12)
    trainer, _engine, block = run_both(config)
    assert np.min(block.log_l[block.record]) < -3.0
    assert_same(trainer, block)


@pytest.mark.parametrize("kind", ["gd", "adam", "sign"])
def test_float32_follows_the_numpy_engine(kind):
    """float32 arrays, float64 scalars, as the numpy engine: equal to float32 rounding."""
    config = make_config(mlp(2, [8]), kind, "loss_normalized", "logistic", lr=2e-4 if kind == "sign" else 0.01,
                         dtype="float32")
    trainer, engine, block = run_both(config, steps=200)
    assert block.final_theta.dtype == np.float32
    assert_same(trainer, block, tol=1e-4)


def test_the_constant_rule_overflow_is_recorded_then_diverges_at_the_trainers_step():
    config = make_config(mlp(2, [8]), "gd", "constant", "exponential", lr=0.05)
    config.recording.every_step_until = STEPS
    trainer, engine, block = run_both(config)
    assert trainer.status == DIVERGED and "overflowed" in trainer.reason
    assert block.diverged_at.tolist() == [trainer.step] and block.overflowed.tolist() == [True]
    assert block.steps[-1] == trainer.step and block.record[-1]  # the failing step's record is kept
    assert_same(trainer, block)
    again = engine.advance(block.end_step, STEPS, *schedules(config, STEPS))
    assert again.end_step == trainer.step and len(again.steps) == 0  # frozen where it failed


def test_a_norm_overflow_diverges_at_the_trainers_step_without_its_record():
    spec = mlp(2, [8], init=Init(scale=5e148))  # ||theta|| passes the limit (1.3e151 for M = 2) at step 3
    config = make_config(spec, "gd", "loss_normalized", "exponential", lr=5.0)
    config.recording.every_step_until = STEPS
    trainer, _engine, block = run_both(config)
    assert trainer.status == DIVERGED and 0 < trainer.step < STEPS, trainer.reason
    assert block.diverged_at.tolist() == [trainer.step] and block.overflowed.tolist() == [False]
    assert block.steps[-1] == trainer.step - 1
    assert_same(trainer, block)


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_optimizer_state_round_trips(kind):
    config = make_config(mlp(2, [8]), kind, "loss_normalized", "logistic")
    records, snapshots = schedules(config, 600)
    trainer = Trainer(config)
    theta0 = trainer.theta.copy()
    whole = CompiledEngine(config, trainer.dataset, theta0)
    whole.advance(0, 600, records, snapshots)
    first = CompiledEngine(config, trainer.dataset, theta0)
    half = first.advance(0, 300, records, snapshots)
    state = first.state()
    assert set(state) == ({"velocity"} if kind == "momentum" else {"m", "v", "t"})
    assert all(np.asarray(v).dtype == (np.int64 if k == "t" else np.float64) for k, v in state.items())
    second = CompiledEngine(config, trainer.dataset, half.final_theta[0], optimizer_state=state)
    end = second.advance(300, 600, records, snapshots)
    np.testing.assert_array_equal(end.final_theta, whole.theta[None, :])  # the same arithmetic: bit for bit
    for name, value in whole.state().items():
        np.testing.assert_array_equal(second.state()[name], value)
    # today's Trainer continues from the engine's state as from its own
    trainer.run(300)
    continued = Trainer(config, params=half.final_theta[0], start_step=300, optimizer_state=state)
    continued.run(300)
    assert relative(end.final_theta[0], continued.theta) <= TOL
    with pytest.raises(TrainingError, match="optimizer state"):
        second.load_state({})


def test_blocks_split_by_deadline_or_a_full_buffer_give_the_same_run():
    config = make_config(mlp(2, [8]), "adam", "loss_normalized", "logistic")
    records, snapshots = schedules(config, STEPS)
    dataset = config.dataset.build()
    theta0 = Trainer(config, dataset).theta.copy()
    whole = CompiledEngine(config, dataset, theta0).advance(0, STEPS, records, snapshots)
    engine = CompiledEngine(config, dataset, theta0)
    engine.max_kept = 7
    steps, thetas, step = [], [], 0
    while step < STEPS:
        block = engine.advance(step, STEPS, records, snapshots, deadline=0.0)  # long past: stops at the first look
        assert block.end_step > step
        steps += block.steps.tolist()
        thetas += list(block.theta[:, 0])
        step = block.end_step
    assert steps == whole.steps.tolist()
    np.testing.assert_array_equal(np.array(thetas), whole.theta[:, 0])
    np.testing.assert_array_equal(engine.theta, whole.final_theta[0])


def test_covers_says_why_not():
    config = make_config(mlp(2, [8]), "gd")
    assert covers(config) is True
    config.optimizer.kind, config.optimizer.batch_size = "sgd", 4
    assert "sgd" in covers(config)
    config = make_config(mlp(2, [8]), "gd")
    config.run.device = "cuda"
    assert "cpu" in covers(config)
    with pytest.raises(TrainingError, match="cuda"):
        CompiledEngine(config, config.dataset.build(), np.zeros(32))


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_asking_whether_it_covers_a_config_loads_no_numba():
    code = ("import sys; from margin_explorer.core.compiled_engine import covers; import margin_explorer as mx; "
            "print(covers(mx.preset('relu2-blobs')), 'numba' in sys.modules)")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_an_unwritable_numba_cache_still_trains():
    """Only the user-provided cache folder is allowed, and it cannot be made: numba refuses
    cache=True there; the engine compiles in memory instead."""
    code = ("import numpy as np; from margin_explorer.core.compiled_engine import CompiledEngine; "
            "from margin_explorer.core.architecture import mlp; "
            "from margin_explorer.core.config import RunConfig, DatasetConfig; "
            "c = RunConfig(mlp(2, [4]), dataset=DatasetConfig(generator='blobs', params={'n': 10, 'seed': 0})); "
            "e = CompiledEngine(c, c.dataset.build(), np.full(12, 0.1)); "
            "b = e.advance(0, 50, np.arange(50), np.zeros(0, np.int64)); print(b.end_step, len(b.steps))")
    out = _python(code, NUMBA_CACHE_DIR="/proc/margin-explorer-no-cache",
                  NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["50", "50"]
