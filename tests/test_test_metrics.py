"""Test metrics in the records (issue 20, "A test set, and generalization"): a run whose dataset
has a test set records test accuracy, test log loss and the test samples' normalized margins
(core/metrics.py TEST_METRICS), each equal to an independent computation from the saved
parameters; a run without one records exactly the columns it did before."""


import h5py
import numpy as np
import pytest

import margin_explorer as mx
from margin_explorer.core.config import RunConfig
from margin_explorer.core.metrics import TEST_ARRAYS, TEST_QUANTILES, TEST_SCALARS
from margin_explorer.core.multiclass import test_metrics
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.trainer import Trainer

TEST_NAMES = set(TEST_SCALARS) | set(TEST_ARRAYS)


def blobs_config(n_test: int = 200, steps: int = 400, loss: str = "exponential") -> RunConfig:
    return RunConfig.from_dict({
        "name": "test-set",
        "dataset": {"kind": "generator", "generator": "blobs",
                    "params": {"n": 60, "dim": 2, "separation": 2.0, "noise": 0.9, "seed": 3, "n_test": n_test}},
        "architecture": {"input_dim": 2, "blocks": [{"type": "dense", "width": 16, "bias": False},
                                                    {"type": "activation", "kind": "relu"},
                                                    {"type": "dense", "width": 1, "bias": False}],
                         "init": {"scheme": "he", "scale": 0.5}},
        "loss": {"kind": loss}, "optimizer": {"kind": "gd", "lr": 0.5, "step_rule": "lyu_li"},
        "run": {"steps": steps},
        "recording": {"snapshots_per_decade": 10},
    })


def plain_forward(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """f(x) = W2 relu(W1 x) of the 2 -> 16 -> 1 bias-free network, written out (W1 first, row-major)."""
    W1, W2 = theta[:32].reshape(16, 2), theta[32:48].reshape(1, 16)
    return (W2 @ np.maximum(W1 @ X.T, 0.0))[0]


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_recorded_test_metrics_equal_a_plain_forward_of_the_saved_parameters(tmp_path, loss):
    run = mx.train(blobs_config(loss=loss), out=tmp_path / "run.h5")
    with RunReader(tmp_path / "run.h5") as reader:
        metrics, snaps = reader.metrics, reader.snapshot_steps
        data = reader.dataset
        params = reader.snapshot_params(slice(None))
        with h5py.File(tmp_path / "run.h5", "r") as f:
            assert np.allclose(f["metrics/quantile"][()], TEST_QUANTILES)
            assert f["metrics/test_margin_quantiles"].dims[1][0].name == "/metrics/quantile"
    assert data.X_test.shape == (200, 2)
    steps = list(metrics["step"])
    checked = 0
    for k, step in enumerate(snaps):
        if step not in steps or step == 0:
            continue
        r = steps.index(step)
        theta = params[k]
        expected = test_metrics(plain_forward(theta, data.X_test), data.y_test, float(np.linalg.norm(theta)), 2.0,
                                kind=loss)
        for name in TEST_SCALARS:
            np.testing.assert_allclose(metrics[name][r], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(metrics["test_margin_quantiles"][r], expected["test_margin_quantiles"],
                                   rtol=1e-12, atol=1e-12)
        checked += 1
    assert checked >= 5
    # the data make the quantities move: some test points are misclassified at the start
    assert metrics["test_accuracy"].min() < 1.0 and metrics["test_margin_below_zero"].max() > 0.0
    assert metrics["test_margin_min"][-1] < metrics["test_margin_quantiles"][-1, 0] < metrics["test_margin_quantiles"][-1, 4]
    assert set(TEST_NAMES) <= set(run.metrics)  # mx.load's metrics carry them


def test_a_run_without_a_test_set_has_the_same_columns_as_before(tmp_path):
    mx.train(blobs_config(n_test=0, steps=50), out=tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5", "r") as f:
        names = set(f["metrics"].keys())
    assert not names & (TEST_NAMES | {"quantile"})
    from margin_explorer.core.metrics import ARRAY_METRICS, SCALAR_METRICS

    assert names == set(SCALAR_METRICS) | (set(ARRAY_METRICS) - {"ensemble_share"}) | {"sample", "layer", "decade"}


def test_each_family_member_records_its_own_test_metrics():
    config = blobs_config(steps=120).with_family(seed=[1, 2])
    trainer = Trainer(config)
    chunk = trainer.run(120)
    data = trainer.dataset
    for member in chunk.members:
        records = member.records
        theta = member.params
        # the final record is the final state (finish records it)
        assert records["step"][-1] == member.step
        expected = test_metrics(plain_forward(theta, data.X_test), data.y_test, float(np.linalg.norm(theta)), 2.0)
        for name in TEST_SCALARS:
            np.testing.assert_allclose(records[name][-1], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)
    a, b = (m.records["test_margin_min"][-1] for m in chunk.members)
    assert a != b


def _run_data(accuracy, gamma, test_accuracy=None, steps=None):
    from margin_explorer.core.claims import RunData

    steps = np.arange(len(gamma)) * 10 if steps is None else steps
    metrics = {"step": np.asarray(steps), "accuracy": np.asarray(accuracy, float), "normalized_margin": np.asarray(gamma, float)}
    if test_accuracy is not None:
        metrics["test_accuracy"] = np.asarray(test_accuracy, float)
    return RunData(metrics, np.zeros(0), {}, finished=True)


def test_the_figure_7_claim_holds_fails_and_does_not_apply_on_the_numbers():
    from margin_explorer.core.claims import margin_grows_test_flat

    steps = np.array([1, 10, 100, 1000, 2000, 5000])
    acc = [0.9, 1, 1, 1, 1, 1]
    # margin x4 from step 10 (accuracy 1) and still rising over the last decade; test accuracy within 0.01
    held = margin_grows_test_flat(_run_data(acc, [-0.1, 0.05, 0.1, 0.15, 0.18, 0.2], [0.9, 0.95, 0.955, 0.96, 0.96, 0.955],
                                            steps), "s")
    assert held.supported is True and held.value == pytest.approx(4.0)
    assert "training accuracy 1 from step 10" in held.detail and "range 0.01" in held.detail
    # test accuracy moves by 0.05: fails, with its range
    moved = margin_grows_test_flat(_run_data(acc, [-0.1, 0.05, 0.1, 0.15, 0.18, 0.2], [0.9, 0.9, 0.92, 0.94, 0.95, 0.95],
                                             steps), "s")
    assert moved.supported is False and "range 0.05" in moved.detail
    # the margin stopped growing in the last decade: fails
    flat = margin_grows_test_flat(_run_data(acc, [-0.1, 0.05, 0.1, 0.2, 0.2, 0.2], [0.9] * 6, steps), "s")
    assert flat.supported is False and "+0.00% over the last decade" in flat.detail
    none = margin_grows_test_flat(_run_data(acc, [0.1] * 6, None, steps), "s")
    assert none.supported is None and none.settled and "no test set" in none.detail


def test_the_opposite_claim_asks_the_test_accuracy_to_rise_with_the_margin():
    from margin_explorer.core.claims import margin_grows_test_rises

    steps = np.array([1, 10, 100, 1000, 2000, 5000])
    acc = [0.9, 1, 1, 1, 1, 1]
    gamma = [-0.1, 0.05, 0.1, 0.15, 0.18, 0.2]  # x4 from step 10, still rising over the last decade
    # test accuracy from 0.8 (step 10, training accuracy 1) to 0.9: +0.1 against the bar 0.05
    rose = margin_grows_test_rises(_run_data(acc, gamma, [0.5, 0.8, 0.85, 0.9, 0.92, 0.9], steps), "s")
    assert rose.supported is True and rose.value == pytest.approx(0.1)
    assert "0.8 -> 0.9 (+0.1, bar +0.05; lowest 0.8, highest 0.92" in rose.detail
    # the flat test accuracy Figure 7 claims fails this one (its higher record at step 0 does not count)
    flat = margin_grows_test_rises(_run_data(acc, gamma, [0.5, 0.95, 0.955, 0.96, 0.96, 0.955], steps), "s")
    assert flat.supported is False and flat.value == pytest.approx(0.005)
    # a rise that came back down by the end: fails
    back = margin_grows_test_rises(_run_data(acc, gamma, [0.5, 0.8, 0.95, 0.9, 0.85, 0.84], steps), "s")
    assert back.supported is False
    # the test accuracy rises but the margin stopped growing in the last decade: fails
    stalled = margin_grows_test_rises(_run_data(acc, [-0.1, 0.05, 0.1, 0.2, 0.2, 0.2], [0.5, 0.8, 0.85, 0.9, 0.9, 0.9],
                                                steps), "s")
    assert stalled.supported is False and "+0.00% over the last decade" in stalled.detail
    short = np.array([1, 10, 20, 30, 40, 50])
    early = margin_grows_test_rises(_run_data(acc, gamma, [0.5, 0.8, 0.85, 0.9, 0.92, 0.9], short), "s")
    assert early.supported is None and "needs steps up to 100" in early.detail


def test_info_shows_the_final_test_accuracy_and_test_margin(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    run = mx.train(blobs_config(steps=100), out=tmp_path / "run.h5")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "main.py"), "info",
                          str(tmp_path / "run.h5")], capture_output=True, text=True, timeout=120).stdout
    m = run.metrics
    line = next(l for l in out.splitlines() if l.startswith("test set:"))
    assert line.startswith(f"test set:   200 points: accuracy {m['test_accuracy'][-1]:.6g}")
    assert f"normalized margin min {m['test_margin_min'][-1]:.6g}" in line
    assert f"50% {m['test_margin_quantiles'][-1, 2]:.6g}" in line
    assert line.endswith(f"{m['test_margin_below_zero'][-1]:.1%} below zero")
    mx.train(blobs_config(n_test=0, steps=20), out=tmp_path / "plain.h5")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "main.py"), "info",
                          str(tmp_path / "plain.h5")], capture_output=True, text=True, timeout=120).stdout
    assert "test set:   none" in out


def test_netcdf_readers_see_the_test_quantiles_labeled(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    run = mx.train(blobs_config(steps=30), out=tmp_path / "run.h5")
    with xr.open_dataset(tmp_path / "run.h5", group="metrics", engine="h5netcdf") as ds:
        assert ds["test_margin_quantiles"].dims == ("step", "quantile")
        assert ds["quantile"].values.tolist() == list(TEST_QUANTILES)
        assert ds["test_margin_quantiles"].sel(quantile=0.5).values[-1] == run.metrics["test_margin_quantiles"][-1, 2]


def test_a_block_of_three_output_records_gets_each_records_test_metrics_and_torch_refuses_them():
    """batched_records.test_quantities on a (K, S, m, C) block of C outputs (a family's records on
    the numpy path), one (k, s) unrecorded (NaN): each recorded row equals a hand computation of
    its own outputs (q_i = f_{y_i} - max_{j != y_i} f_j; exponential loss of C classes: l_i =
    sum_{j != y_i} exp(f_j - f_{y_i})); the torch path, which never gets C outputs, says so."""
    import math

    import torch

    from margin_explorer.core.batched_records import NUMPY, TorchOps, test_quantities

    rng = np.random.default_rng(5)
    K, S, m, C = 2, 3, 40, 3
    f = rng.normal(size=(K, S, m, C))
    f[1, 2] = np.nan  # a member that failed: its row is not recorded
    y = rng.integers(0, C, size=m).astype(np.float64)
    norm = rng.uniform(0.5, 2.0, size=(K, S))
    with np.errstate(all="ignore"):
        got = test_quantities(NUMPY, "exponential", f, y, norm, 2.0)
    assert got.shape == (K, S, len(TEST_SCALARS) + len(TEST_QUANTILES))
    labels = y.astype(int)
    for k in range(K):
        for s in range(S):
            if (k, s) == (1, 2):
                continue
            own = f[k, s, np.arange(m), labels]
            others = np.array([[f[k, s, i, j] for j in range(C) if j != labels[i]] for i in range(m)])
            q = own - others.max(axis=1)
            loss = np.exp(others - own[:, None]).sum(axis=1)
            normalized = q / norm[k, s] ** 2
            assert got[k, s, 0] == np.mean(q > 0)
            assert got[k, s, 1] == pytest.approx(math.log(loss.mean()), rel=1e-12)
            assert got[k, s, 2] == pytest.approx(normalized.min(), rel=1e-12)
            assert got[k, s, 3] == np.mean(q < 0)
            np.testing.assert_allclose(got[k, s, 4:], np.quantile(normalized, TEST_QUANTILES), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="C outputs"):
        ops = TorchOps(torch, torch.device("cpu"))
        test_quantities(ops, "exponential", ops.asarray(f), y, ops.asarray(norm), 2.0)
