"""Run health (core/health.py): a run that collapsed or got stuck says so, with events recorded
as they happen, kept in the run file, printed by `info` and `check`, and a claim about the late
phase says it cannot hold. The data and configurations are built here."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Residual
from margin_explorer.core.claims import RunData, judge
from margin_explorer.core.config import DatasetConfig
from margin_explorer.core.datasets import gaussian_blobs
from margin_explorer.core.health import HealthMonitor
from margin_explorer.core.presets import load_preset
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.runner import run_to_file
from margin_explorer.core.trainer import Trainer
from tests.helpers import ROOT, config_for


def collapse_config(steps=300, seed=1):
    """A residual block (dense 32, ReLU, dense 32) after a dense 32, GELU, logistic loss, momentum
    0.9, the loss-normalized step at lr 1: L goes far below l(0) within ten steps, then the run
    blows up to a one-class boundary (the issue's collapse)."""
    spec = ArchitectureSpec(2, [Dense(32), Residual([Dense(32), Activation("relu"), Dense(32)]), Activation("gelu"),
                                Dense(1)])
    return config_for(spec, gaussian_blobs(100, 2, 4.0, 0.6, seed=0), steps=steps, lr=1.0, kind="momentum",
                      loss="logistic", seed=seed)


def stuck_data():
    """Two blobs centred at +-(1.25, 0.4) rotated (|centre| = 1.31), std 0.6, 60 points, seed 7."""
    return gaussian_blobs(60, 2, separation=2 * math.hypot(1.25, 0.4), noise=0.6, seed=7)


def stuck_config(steps=5000):
    config = load_preset("relu2-blobs")
    config.dataset = DatasetConfig.inline(stuck_data())
    config.run.steps = steps
    return config


def _train(config):
    trainer = Trainer(config)
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(1 << 30).members[0])
    return trainer, chunks


def _events(chunks):
    return [e for c in chunks for e in c.events]


def _records(chunks, name):
    return np.concatenate([c.records[name] for c in chunks if c.records])


def test_a_collapse_is_an_unstable_event_with_its_numbers():
    trainer, chunks = _train(collapse_config())
    assert trainer.status == "finished"  # the trainer ends normally: only the health monitor tells
    steps, log_l, accuracy = (_records(chunks, n) for n in ("step", "log_loss", "accuracy"))
    # the oracle: the summed logistic loss crosses l(0) = log 2 upward after being far below it
    threshold = math.log(math.log(2.0))
    below = log_l < threshold
    rise = next(i for i in range(1, len(log_l)) if below[:i].any() and not below[i] and log_l[:i].min() < threshold - 1)
    unstable = [e for e in _events(chunks) if e["kind"] == "unstable"]
    assert unstable, _events(chunks)
    first = unstable[0]
    assert first["step"] == steps[rise]
    lowest = log_l[:rise][below[:rise]].min()
    assert f"log L rose from {lowest:.3g}" in first["message"] and f"to {log_l[rise]:.3g}" in first["message"]
    assert f"accuracy 1.0 -> {accuracy[rise]:.3g}" in first["message"], first["message"]
    assert accuracy[-1] < 1 and log_l[-1] > threshold  # it never recovers
    config = collapse_config()
    config.claims = [{"check": "margins_converge"}, {"check": "norm_increasing"}]
    for verdict in judge(RunData.from_chunks(config, chunks), config.claim_specs()):
        assert verdict.supported is False and verdict.detail.startswith("cannot hold: the run is not settled"), verdict.line()
        assert "unstable at step" in verdict.detail


def test_a_sample_with_every_unit_inactive_is_named_as_stuck():
    data = stuck_data()
    trainer, chunks = _train(stuck_config())
    stuck = [e for e in _events(chunks) if e["kind"] == "stuck"]
    assert stuck, _events(chunks)
    # the oracle: samples on which every hidden ReLU unit is inactive at the end (W1 x_i <= 0)
    W1 = trainer.members[0].theta[: 32 * 2].reshape(32, 2)
    dead = np.flatnonzero(np.all(data.X @ W1.T <= 0, axis=1))
    assert len(dead) >= 1
    named = stuck[0]["message"]
    for i in dead:
        assert f"#{i} at ({data.X[i, 0]:.3g}, {data.X[i, 1]:.3g}) with q = 0" in named, named
    assert "zero gradient" in named
    accuracy = _records(chunks, "accuracy")
    assert accuracy[-1] == pytest.approx(1 - len(dead) / data.n)
    # its claims: not "inf" and "not yet" but cannot hold, naming the cause
    config = stuck_config()
    verdicts = judge(RunData.from_chunks(config, chunks), config.claim_specs())
    assert all(v.supported is False and "cannot hold" in v.detail and "stuck at step" in v.detail for v in verdicts), \
        [v.line() for v in verdicts]
    assert not any("inf" in v.detail.split() for v in verdicts)


def test_a_loss_flat_for_a_decade_at_l0_is_stuck_and_a_slow_fall_is_not():
    steps = np.arange(1, 3001)
    flat = HealthMonitor("exponential", 20, mean=False)
    events = flat.observe({"step": steps, "log_loss": np.zeros(len(steps)), "accuracy": np.full(len(steps), 0.5)})
    assert [e.kind for e in events] == ["stuck"] and events[0].step == 100, events  # 10 .. 100: one decade
    assert "has not decreased since step 10" in events[0].message
    slow = HealthMonitor("exponential", 20, mean=False)
    falling = 2.0 - 0.01 * np.log10(steps)  # -0.01 per decade: slow, but falling
    assert slow.observe({"step": steps, "log_loss": falling, "accuracy": np.ones(len(steps))}) == []
    # a mean loss: the threshold is on the sum (L_mean < l(0) / n), so log L_mean = -1 is above it for n = 20
    mean = HealthMonitor("exponential", 20, mean=True)
    assert [e.kind for e in mean.observe({"step": steps, "log_loss": np.full(len(steps), -1.0),
                                          "accuracy": np.ones(len(steps))})] == ["stuck"]


def test_early_crossings_of_l0_are_not_a_collapse_but_a_fall_after_a_settled_stretch_is():
    monitor = HealthMonitor("exponential", 10, mean=False)
    wobble = np.array([0.2, -0.05, 0.1, -0.02, 0.05, -0.1, -0.2, -0.3])  # the early phase, near l(0)
    assert monitor.observe({"step": np.arange(1, 9), "log_loss": wobble, "accuracy": np.ones(8)}) == []
    settled = -np.linspace(0.4, 5.0, 40)  # steps 9 .. 48: a settled stretch as long as the run before it
    rise = np.array([3.0])
    events = monitor.observe({"step": np.arange(9, 50), "log_loss": np.concatenate([settled, rise]),
                              "accuracy": np.concatenate([np.ones(40), [0.7]])})
    assert len(events) == 1 and events[0].step == 49
    assert events[0].message == "unstable at step 49: log L rose from -5 (step 48) to 3, past l(0); accuracy 1.0 -> 0.7"


def test_events_are_written_as_they_happen_and_printed_by_info_and_check(tmp_path):
    path = tmp_path / "stuck.h5"
    config = stuck_config(steps=2000)
    seen = []
    run_to_file(config, path, on_chunk=lambda _t, chunk: seen.extend(chunk.events))
    with RunReader(path) as reader:
        assert reader.events == seen and any(e["kind"] == "stuck" for e in seen)
        assert RunData.from_reader(reader).events == seen
    info = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert info.returncode == 0, info.stderr
    assert f"events:     {len(seen)}" in info.stdout and seen[0]["message"] in info.stdout
    as_json = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(path), "--json"], cwd=ROOT,
                             capture_output=True, text=True)
    assert json.loads(as_json.stdout)["events"] == seen
    check = subprocess.run([sys.executable, str(ROOT / "main.py"), "check", str(path)], cwd=ROOT, capture_output=True,
                           text=True)
    assert check.returncode == 1  # the claims cannot hold on a stuck run
    assert f"[stuck] {seen[0]['message']}" in check.stdout and "cannot hold" in check.stdout


def test_a_bias_free_network_that_cannot_start_is_stuck_at_l0():
    """A bias-free ReLU network from theta = 0 on spirals: f = 0 for every sample, every gradient is
    0, and log L stays at log(n l(0)) = log n forever: both stuck rules name it."""
    from margin_explorer.core.architecture import mlp
    from margin_explorer.core.datasets import spirals

    data = spirals(40, seed=1)
    config = config_for(mlp(2, [16], init=None), data, steps=2000, lr=1.0, rule="lyu_li")
    config.architecture.init.scheme = "zeros"
    trainer, chunks = _train(config)
    log_l = _records(chunks, "log_loss")
    assert np.all(log_l == pytest.approx(math.log(data.n), abs=1e-12))  # the oracle: L = n exp(0), never moves
    events = _events(chunks)
    flat = [e for e in events if "has not decreased" in e["message"]]
    dead = [e for e in events if "zero gradient" in e["message"]]
    assert len(flat) == 1 and flat[0]["step"] == 100, events
    assert dead and "and 35 more" in dead[0]["message"]  # all 40 samples: 5 shown, 35 more
