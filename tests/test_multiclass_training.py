"""Multi-class training on the one path (issue 20, THEORY.md Multi-class): networks with C outputs,
the numpy and autograd engines, the records against an independent recomputation in plain torch,
Lyu and Li's multi-class theorem on a bias-free ReLU network, and binary runs left as they were."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from margin_explorer.core.architecture import ArchitectureSpec, Activation, Dense, check_output_width
from margin_explorer.core.budget import check_kkt_pairs
from margin_explorer.core.datasets import class_blobs
from margin_explorer.core.errors import ConfigError, TrainingError
from margin_explorer.core.network import NumpyNetwork, evaluation_network, initial_parameters
from margin_explorer.core.torch_network import AutogradNetwork
from margin_explorer.core.trainer import Trainer
from tests.helpers import config_for

CLASSES = 3


def three_class_spec(width=16, bias=False) -> ArchitectureSpec:
    return ArchitectureSpec(2, [Dense(width, bias), Activation("relu"), Dense(CLASSES, False)])


def blobs(n=60, n_test=0):
    return class_blobs(n, CLASSES, separation=4.0, noise=0.6, seed=1, n_test=n_test)


def three_class_config(steps=1000, rule="lyu_li", lr=0.2, loss="exponential", backend="auto", **recording):
    config = config_for(three_class_spec(), blobs(), steps=steps, lr=lr, rule=rule, loss=loss, **recording)
    config.architecture.init.scale = 0.5
    config.run.backend = backend
    return config


def train(config):
    trainer = Trainer(config)
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(1 << 30).members[0])
    assert trainer.status == "finished", trainer.reason
    records = {k: np.concatenate([c.records[k] for c in chunks if c.n_records]) for k in chunks[0].records}
    snapshots = [(s, p, m) for c in chunks for s, p, m in zip(c.snapshot_steps, c.snapshot_params, c.snapshot_metrics)]
    return trainer, records, snapshots


def plain_outputs(theta: np.ndarray, X: np.ndarray, hidden: int = 16) -> torch.Tensor:
    """f(theta; X) of the bias-free two-layer ReLU network, written out in plain torch from the
    flat layout (W1 hidden x 2, then W2 C x hidden, row-major): not the project's networks."""
    t = torch.as_tensor(theta, dtype=torch.float64)
    W1 = t[:hidden * 2].reshape(hidden, 2)
    W2 = t[hidden * 2:].reshape(CLASSES, hidden)
    return torch.relu(torch.as_tensor(X, dtype=torch.float64) @ W1.T) @ W2.T


def plain_margins(f: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    """q_i = f_{y_i} - max_{j != y_i} f_j by a loop over the classes."""
    labels = torch.as_tensor(y.astype(np.int64))
    own = f[torch.arange(len(labels)), labels]
    others = torch.stack([torch.where(labels == j, torch.tensor(-math.inf, dtype=f.dtype), f[:, j])
                          for j in range(f.shape[1])], dim=1)
    return own - others.max(dim=1).values


# ------------------------------------------------------------------ networks with C outputs
def test_networks_with_three_outputs_agree_with_torch_autograd():
    """outputs (n, C), backward of (n, C) weights and the (n, C, P) Jacobian of the numpy network
    against torch's own jacobian of the plain network."""
    spec, X = three_class_spec(), blobs().X
    theta = initial_parameters(spec, 3)
    numpy_net, torch_net = NumpyNetwork(spec), AutogradNetwork(spec)
    f = numpy_net.outputs(theta, X)
    assert f.shape == (len(X), CLASSES) and evaluation_network(spec).outputs(theta, X).shape == f.shape
    np.testing.assert_allclose(f, plain_outputs(theta, X).numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(torch_net.outputs(theta, X), f, rtol=1e-13, atol=1e-13)
    jac = torch.autograd.functional.jacobian(lambda t: plain_outputs(t, X), torch.as_tensor(theta)).numpy()
    np.testing.assert_allclose(numpy_net.jacobian(theta, X), jac, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(torch_net.jacobian(theta, X), jac, rtol=1e-12, atol=1e-13)
    weights = np.random.default_rng(0).normal(size=f.shape)
    numpy_net.outputs(theta, X)
    np.testing.assert_allclose(numpy_net.backward(theta, weights), np.einsum("ic,icp->p", weights, jac), rtol=1e-12)


def test_the_output_width_must_fit_the_class_count():
    with pytest.raises(ConfigError, match="^architecture: the network ends with width 1 but the dataset has 3 classes: "
                                          "the last dense layer needs width 3$"):
        check_output_width(ArchitectureSpec(2, [Dense(1)]), 3)
    with pytest.raises(ConfigError, match="width 3 but the dataset is binary"):
        check_output_width(three_class_spec(), 2)
    with pytest.raises(ConfigError, match="ends with width 2: two classes need a scalar output"):
        ArchitectureSpec.from_dict({"input_dim": 2, "blocks": [{"type": "dense", "width": 2}]})


def test_engines_that_have_a_scalar_output_only_say_so_and_auto_avoids_them():
    assert type(Trainer(three_class_config(backend="auto")).engine).__name__ == "NumpyEngine"
    with pytest.raises(TrainingError, match="^run.backend batched: the batched engine trains a scalar output .* not 3 "
                                            "outputs: use run.backend numpy or torch$"):
        Trainer(three_class_config(backend="batched"))
    with pytest.raises(TrainingError, match="^run.backend compiled: .*(not 3 outputs|numba)"):
        Trainer(three_class_config(backend="compiled"))
    family = three_class_config(steps=20).with_family(seed=[0, 1])
    trainer = Trainer(family)
    assert type(trainer.engine).__name__ == "NumpyEngine" and "one by one" in trainer.engine_note
    trainer.run(20)
    assert trainer.status == "finished"


def test_the_kkt_pairs_are_bounded_with_the_number():
    """One KKT row per pair (i, j != y_i): n (C - 1) x P numbers. Ten outputs on 1,797 digits at
    width 128 train, but not with the KKT residual on; the refusal names the number."""
    from margin_explorer.core.config import DatasetConfig

    spec = ArchitectureSpec(64, [Dense(128), Activation("relu"), Dense(10)])
    with pytest.raises(ConfigError, match=r"^recording.kkt: .*\(n \(C - 1\) x P = 1797 x 9 x 9472\) is 1.53e\+08 numbers; "
                                          r"the limit is 1e\+08"):
        check_kkt_pairs(spec, 1797, 10)
    config = config_for(spec, steps=2)
    config.dataset = DatasetConfig.from_dict({"kind": "builtin", "builtin": "digits",
                                              "params": {"classes": "all", "test_fraction": 0}})
    with pytest.raises(ConfigError, match="^recording.kkt: "):
        Trainer(config.copy())
    config.recording.kkt = False
    trainer = Trainer(config)
    trainer.run(2)
    assert trainer.status == "finished" and trainer.n == 1797


# ------------------------------------------------------------------ the engines
def test_numpy_and_autograd_engines_take_the_same_thousand_steps():
    _t, numpy_records, _s = train(three_class_config(backend="numpy"))
    trainer, torch_records, _s = train(three_class_config(backend="torch"))
    assert type(trainer.engine).__name__ == "AutogradEngine"
    numpy_trainer, _r, _s = train(three_class_config(backend="numpy"))
    np.testing.assert_allclose(trainer.params[0], numpy_trainer.params[0], rtol=1e-12, atol=0)
    assert np.linalg.norm(trainer.params[0] - numpy_trainer.params[0]) <= 1e-12 * np.linalg.norm(trainer.params[0])
    for name in ("log_loss", "q_min", "normalized_margin", "smoothed_margin", "alignment"):
        np.testing.assert_allclose(torch_records[name], numpy_records[name], rtol=1e-10, err_msg=name)
    assert numpy_records["accuracy"][-1] == 1.0


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_records_and_snapshots_match_a_plain_torch_recomputation(loss):
    """q_min, log L, accuracy, each sample's normalized margin and the Euler defect at every
    snapshot, recomputed from the snapshot's parameters: cross-entropy by F.cross_entropy
    (summed), the exponential loss by log-sum-exp over the pairs (i, j != y_i)."""
    config = three_class_config(steps=300, loss=loss)
    trainer, records, snapshots = train(config)
    y = trainer.dataset.y
    labels = torch.as_tensor(y.astype(np.int64))
    compared = 0
    for step, theta, metrics in snapshots:
        row = int(np.searchsorted(records["step"], step))
        if row == len(records["step"]) or records["step"][row] != step:
            continue
        compared += 1
        f = plain_outputs(theta, trainer.X)
        q = plain_margins(f, y)
        if loss == "logistic":
            log_l = torch.log(torch.nn.functional.cross_entropy(f, labels, reduction="sum"))
            if float(log_l) < -8:  # F.cross_entropy's LSE(f) - f_y cancels: ~1e-16 |f| / L relative, the oracle's limit
                continue
        else:
            pairs = (f - f[torch.arange(len(y)), labels][:, None])[torch.nn.functional.one_hot(labels, CLASSES) == 0]
            log_l = torch.logsumexp(pairs, dim=0)
        norm_sq = float(np.dot(theta, theta))
        assert records["q_min"][row] == pytest.approx(float(q.min()), rel=1e-11, abs=1e-13)
        assert records["log_loss"][row] == pytest.approx(float(log_l), rel=1e-9, abs=1e-12)
        assert records["accuracy"][row] == float((f.argmax(dim=1) == labels).double().mean())
        np.testing.assert_allclose(records["sample_margins"][row], q.numpy() / norm_sq, rtol=1e-10, atol=1e-14)
        jac = torch.autograd.functional.jacobian(lambda t: plain_outputs(t, trainer.X), torch.as_tensor(theta)).numpy()
        euler = np.max(np.abs(jac @ theta - 2 * f.numpy())) / norm_sq
        assert metrics["euler_defect"] == pytest.approx(euler, abs=1e-12)
    assert compared >= 8


def test_the_smoothed_margin_never_decreases_and_sandwiches_the_margin():
    """Lyu and Li's multi-class theorem on a bias-free ReLU network: after L < l(0) = 1 the
    smoothed margin never decreases (1e-9 relative), and at every record
    gamma~ <= gamma <= gamma~ + log(n (C - 1)) / ||theta||^2."""
    config = three_class_config(steps=5000)
    trainer, records, snapshots = train(config)
    n = trainer.n
    gamma, smoothed, norm = records["normalized_margin"], records["smoothed_margin"], records["param_norm"]
    tiny = 1e-12 * np.abs(gamma)
    assert np.all(smoothed <= gamma + tiny)
    assert np.all(gamma <= smoothed + math.log(n * (CLASSES - 1)) / norm ** 2 + tiny)
    start = int(np.argmax(records["log_loss"] < 0.0))
    assert records["log_loss"][start] < 0 and start < len(gamma) - 100
    after = smoothed[start:]
    dips = (after[:-1] - after[1:]) / np.abs(after[:-1])
    assert dips.max() <= 1e-9, f"dip {dips.max():.3g} at step {records['step'][start + int(np.argmax(dips))]}"
    assert smoothed[-1] > 1.5 * smoothed[start + 1] and records["accuracy"][-1] == 1.0
    kkt = [m["kkt_eps"] for _s, _p, m in snapshots if math.isfinite(m["kkt_eps"])]
    assert len(kkt) > 5 and kkt[-1] < kkt[0] / 5  # one multiplier per pair (i, j), from one joint fit


def test_log_loss_stays_finite_far_below_the_float64_floor():
    """The loss-normalized step drives L of a 2-homogeneous network past 1e-308 (log L < -708)
    within a few hundred steps; log L, the margins and the records stay finite."""
    trainer, records, _snapshots = train(three_class_config(steps=1500, rule="loss_normalized", lr=0.1))
    assert records["log_loss"][-1] < -1e4
    for name in ("log_loss", "smoothed_margin", "normalized_margin", "q_min", "alignment"):
        assert np.all(np.isfinite(records[name])), name
    assert records["smoothed_margin"][-1] == pytest.approx(records["normalized_margin"][-1], rel=1e-6)


def test_test_metrics_of_a_three_class_run_match_the_test_outputs():
    """Test accuracy (argmax == y) and the test samples' normalized margins from plain torch."""
    data = blobs(n_test=200)
    config = config_for(three_class_spec(), data, steps=200, lr=0.2, rule="lyu_li")
    trainer, records, snapshots = train(config)
    step, theta, _m = snapshots[-1]
    row = int(np.flatnonzero(records["step"] == step)[0])
    f = plain_outputs(theta, data.X_test)
    labels = torch.as_tensor(data.y_test.astype(np.int64))
    q = plain_margins(f, data.y_test).numpy() / float(np.dot(theta, theta))
    assert records["test_accuracy"][row] == float((f.argmax(dim=1) == labels).double().mean())
    assert records["test_margin_min"][row] == pytest.approx(q.min(), rel=1e-10)
    np.testing.assert_allclose(records["test_margin_quantiles"][row], np.quantile(q, [0.1, 0.25, 0.5, 0.75, 0.9]),
                               rtol=1e-10)
    exp_mean = torch.logsumexp((f - f[torch.arange(len(labels)), labels][:, None])[
        torch.nn.functional.one_hot(labels, CLASSES) == 0], dim=0) - math.log(len(labels))
    assert records["test_log_loss"][row] == pytest.approx(float(exp_mean), rel=1e-10)


# ------------------------------------------------------------------ binary runs unchanged
def test_a_binary_run_is_never_trained_as_two_outputs():
    """A binary dataset keeps the scalar path: q = y f with labels -1/+1, its records those of the
    plain scalar network (an independent recomputation of the last snapshot)."""
    from margin_explorer.core.datasets import gaussian_blobs

    spec = ArchitectureSpec(2, [Dense(16), Activation("relu"), Dense(1)])
    data = gaussian_blobs(60, 2, separation=4.0, noise=0.6, seed=1)
    trainer, records, snapshots = train(config_for(spec, data, steps=200, lr=0.2, rule="lyu_li"))
    assert trainer.labels is None and set(np.unique(trainer.y)) == {-1.0, 1.0}
    step, theta, _m = snapshots[-1]
    row = int(np.flatnonzero(records["step"] == step)[0])
    t = torch.as_tensor(theta)
    f = (torch.relu(torch.as_tensor(data.X) @ t[:32].reshape(16, 2).T) @ t[32:]).numpy()
    q = data.y * f
    assert records["q_min"][row] == pytest.approx(q.min(), rel=1e-12)
    assert records["log_loss"][row] == pytest.approx(float(torch.logsumexp(torch.as_tensor(-q), 0)), rel=1e-12)


def test_a_cli_run_of_three_classes_writes_a_file_info_and_check_read(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from margin_explorer.core.runfile import RunReader

    root = Path(__file__).resolve().parent.parent
    config = three_class_config(steps=400)
    config.claims = [{"check": "smoothed_margin_monotone", "statement": "the smoothed margin never decreases"}]
    path = tmp_path / "three.json"
    path.write_text(json.dumps(config.to_dict()))
    out = tmp_path / "three.h5"

    def main(*args):
        return subprocess.run([sys.executable, str(root / "main.py"), *args], cwd=root, capture_output=True,
                              text=True, timeout=300)

    result = main("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    info = main("info", str(out))
    assert info.returncode == 0 and "n = 60, d = 2, 3 classes (labels 0..2)" in info.stdout, info.stdout + info.stderr
    check = main("check", str(out))
    assert check.returncode == 0 and "[yes] the smoothed margin never decreases" in check.stdout, check.stdout
    with RunReader(out) as run:
        assert run.classes == 3 and run.dataset.classes == 3
        margins = run.metrics_named(["sample_margins"])["sample_margins"]
        assert margins.shape == (run.n_records, 60)
        theta = run.final_params
        assert evaluation_network(run.config.architecture).outputs(theta, run.dataset.X).shape == (60, 3)
