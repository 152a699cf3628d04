"""Lyu and Li's loss-based learning rate (core/step_rule.py LossBasedRate), as their code ran it:
eta_t = alpha_t / L, alpha *= 2^(1/5) after a step that lowers the loss, the step undone and
alpha /= 2^(1/10) after one that does not."""

from __future__ import annotations

import numpy as np
import pytest

from margin_explorer.core import losses
from margin_explorer.core.architecture import mlp
from margin_explorer.core.datasets import gaussian_blobs, linearly_separable
from margin_explorer.core.errors import ConfigError
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.runner import run_to_file
from margin_explorer.core.torch_network import AutogradNetwork
from margin_explorer.core.trainer import Trainer

from .helpers import config_for, linear_spec

R_UP, R_DOWN = 2 ** 0.2, 2 ** 0.1  # their LossBasedLRv1 alpha1, alpha2


def every_step(trainer, steps):
    """The engine's StepBlock with every step kept: theta, log L, alpha and taken per step."""
    kept = np.arange(steps)
    return trainer.engine.advance(0, steps, kept, np.zeros(0, dtype=np.int64), None)


@pytest.mark.parametrize("backend", ["numpy", "torch", "compiled"])
def test_a_rise_is_undone_exactly_and_shrinks_alpha_a_fall_grows_it(backend):
    """A 2-layer ReLU net from alpha_0 = 3 (large): some steps overshoot. Each undone step leaves
    theta bit for bit where it was, and the point it tried (recomputed by torch autograd from the
    recorded theta, alpha and grad) has a higher loss; each kept step has a lower or equal one."""
    if backend == "compiled":
        pytest.importorskip("numba")
    data = gaussian_blobs(40, 2, separation=2.0, noise=1.0, seed=1)
    config = config_for(mlp(2, [8]), data, steps=60, lr=3.0, rule="loss_based")
    config.run.backend = backend
    trainer = Trainer(config)
    block = every_step(trainer, 60)
    theta, log_l, alpha, taken = block.theta[:, 0], block.log_l[:, 0], block.alpha[:, 0], block.taken[:, 0]
    assert alpha[0] == 3.0 and taken[0] == 1.0
    reference = AutogradNetwork(config.architecture)
    undone = kept = 0
    for k in range(1, 60):
        tried = theta[k - 1] - alpha[k - 1] * block.grad[k - 1, 0]  # gd on grad log L with eta = alpha / L
        log_tried, _w = losses.log_loss_and_weights("exponential", data.y * reference.outputs(tried, data.X))
        if taken[k] == 0.0:
            undone += 1
            np.testing.assert_array_equal(theta[k], theta[k - 1])
            assert log_l[k] == log_l[k - 1] and log_tried > log_l[k - 1]
            assert alpha[k] == pytest.approx(alpha[k - 1] / R_DOWN, rel=1e-15)
        else:
            kept += 1
            assert log_l[k] <= log_l[k - 1] and log_tried <= log_l[k - 1] + 1e-9 * abs(log_l[k - 1])
            np.testing.assert_allclose(theta[k], tried, rtol=0, atol=1e-12 * np.abs(tried).max())
            assert alpha[k] == pytest.approx(alpha[k - 1] * R_UP, rel=1e-15)
    assert undone >= 3 and kept >= 3, (undone, kept)


def test_the_loss_falls_below_1e_minus_300_on_a_separable_problem(tmp_path):
    """A linear model on separable data: log L < -690 (L < 1e-300) within 300 steps, recorded in
    the run file with alpha and step_taken columns."""
    data = linearly_separable(30, 2, margin=0.3, seed=0)
    path = tmp_path / "run.h5"
    run_to_file(config_for(linear_spec(), data, steps=300, lr=0.1, rule="loss_based"), path)
    with RunReader(path) as run:
        metrics = run.metrics_named(["log_loss", "step_alpha", "step_taken"])
        log_loss, alpha, taken = metrics["log_loss"], metrics["step_alpha"], metrics["step_taken"]
        assert run.status == "finished"
    assert log_loss.min() < -690
    assert alpha[0] == 0.1 and len(alpha) == len(log_loss) and set(np.unique(taken)) <= {0.0, 1.0}
    # undone steps repeat the loss: it never rises. The last record is the driver's own evaluation of
    # the final state (numpy's), which on the compiled engine ('auto' takes it once its kernels are
    # cached) may differ from the engine's log L of the same theta in the last bits
    assert np.all(np.diff(log_loss[:-1]) <= 0)
    assert log_loss[-1] - log_loss[-2] <= 4 * np.finfo(float).eps * abs(log_loss[-2])


def test_other_optimizers_refuse_it_and_the_batched_engine_leaves_it_to_numpy():
    from margin_explorer.core.config import RunConfig

    data = config_for(linear_spec(), rule="loss_based", kind="adam").to_dict()
    with pytest.raises(ConfigError, match="optimizer.step_rule: loss_based .* runs with gd only, not adam"):
        RunConfig.from_dict(data)
    config = config_for(linear_spec(), linearly_separable(10, 2, seed=0), rule="loss_based")
    config.run.backend = "batched"
    assert "loss_based step rule undoes steps" in Trainer(config).engine_note
