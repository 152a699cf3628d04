"""core/support_samples.py: the samples of the smallest normalized margins at a run's shown
parameters, from the record at that step or by a forward pass, binary and C-class."""

import numpy as np

import margin_explorer as mx
from margin_explorer.core.network import evaluation_network
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.support_samples import computed_margins, recorded_margins, smallest


def test_the_forward_pass_gives_the_recorded_margins_at_every_snapshot_that_is_a_record(tmp_path):
    path = tmp_path / "digits.h5"
    mx.train(mx.preset("digits-odd-even-test"), steps=150, out=path)
    with RunReader(path) as reader:
        steps, margins = reader.metrics["step"], reader.metrics["sample_margins"]
        ds, snapshots = reader.dataset, reader.snapshot_steps
        net = evaluation_network(reader.config.architecture)
        assert len(snapshots) >= 5
        for i, step in enumerate(snapshots):
            recorded = recorded_margins(steps, margins, int(step))
            assert recorded is not None  # every step to 1000 is recorded
            theta = reader.snapshot_params(i)
            # the preset's network, by hand: y relu(X W1^T) w2 / ||theta||^2
            W1, w2 = theta[:2048].reshape(32, 64), theta[2048:]
            by_hand = ds.y * (np.maximum(ds.X @ W1.T, 0) @ w2) / (theta @ theta)
            np.testing.assert_allclose(recorded, by_hand, rtol=1e-9, atol=1e-15)
            np.testing.assert_allclose(computed_margins(net, theta, ds.X, ds.y, 2.0), by_hand, rtol=1e-9, atol=1e-15)


def test_no_record_at_the_step_or_only_nan_gives_none():
    steps = np.array([1, 2, 5])
    margins = np.array([[0.1, 0.2], [0.3, 0.4], [np.nan, np.nan]])
    assert recorded_margins(steps, margins, 3) is None
    assert recorded_margins(steps, margins, 5) is None  # a network without an order records NaN
    assert recorded_margins(steps, margins, 2).tolist() == [0.3, 0.4]
    assert recorded_margins(None, None, 2) is None


class ThreeOutputs:
    def outputs(self, theta, X):
        return X @ theta.reshape(3, 2).T


def test_c_class_margins_are_the_lead_over_the_runner_up_and_smallest_orders_them():
    theta = np.array([1.0, 0.0, 0.0, 1.0, -1.0, -1.0])
    X = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])
    y = np.array([0, 1, 2, 1])
    # outputs: [2, 0, -2], [0, 1, -1], [-1, -1, 2], [1, 1, -2]; leads 2, 1, 3, 0
    q = computed_margins(ThreeOutputs(), theta, X, y, 1.0)
    np.testing.assert_allclose(q, np.array([2.0, 1.0, 3.0, 0.0]) / np.linalg.norm(theta))
    assert computed_margins(ThreeOutputs(), theta, X, y, None).tolist() == [2.0, 1.0, 3.0, 0.0]
    assert smallest(q, 3).tolist() == [3, 1, 0]
    assert smallest(np.array([np.nan, 0.5, -1.0, 0.5]), 10).tolist() == [2, 1, 3]
