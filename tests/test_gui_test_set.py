"""The window shows a run's test set (issue 20): train and test accuracy together in the Accuracy
plot, and the test margin distribution (quantiles, minimum) beside the training one; a run
without a test set draws no test curve."""

import numpy as np
import pytest

import margin_explorer as mx
from margin_explorer.core.run_reader import RunReader
from tests.test_test_metrics import blobs_config


@pytest.fixture(scope="module")
def test_set_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("test-set-runs")
    with_test, without = folder / "with.h5", folder / "without.h5"
    mx.train(blobs_config(steps=300), out=with_test)
    mx.train(blobs_config(n_test=0, steps=300), out=without)
    return with_test, without


def _drawn(plot, key):
    x, y = plot.curves[key].getData()
    return np.asarray(x), np.asarray(y)


def test_a_run_with_a_test_set_shows_its_test_curves_with_the_recorded_values(window, test_set_runs):
    path, _ = test_set_runs
    assert window.open_runs([str(path)])
    with RunReader(path) as reader:
        metrics = reader.metrics
    accuracy = window.plots.plots["accuracy"]
    for name in ("accuracy", "test_accuracy"):
        x, y = _drawn(accuracy, (0, name))
        values = metrics[name]
        assert x[-1] == metrics["step"][-1] and y[-1] == values[-1]
        assert np.isin(y, values).all() and y.min() == values.min() and y.max() == values.max()
    assert {"train accuracy", "test accuracy"} <= set(accuracy.legend.full_names)
    margins = window.plots.plots["test_samples"]
    quantiles = metrics["test_margin_quantiles"]
    for col in range(quantiles.shape[1]):
        _x, y = _drawn(margins, (0, col))
        assert y[-1] == quantiles[-1, col] and np.isin(y, quantiles[:, col]).all()
    _x, y = _drawn(margins, (0, "test_margin_min"))
    assert y[-1] == metrics["test_margin_min"][-1] and y.min() == metrics["test_margin_min"].min()
    from margin_explorer.widgets.plot_specs import tooltip

    assert "fraction of TEST samples with q_i = y_i f(x_i) > 0" in tooltip(accuracy.spec)
    assert "quantiles of the test samples' normalized margins" in tooltip(margins.spec)
    assert "min_i q_i / ||theta||_2^M over the test samples" in tooltip(margins.spec)


def test_a_run_without_a_test_set_draws_no_test_curve(window, test_set_runs):
    _, path = test_set_runs
    assert window.open_runs([str(path)])
    # the test plots are in the grid only while a shown run has a test set
    assert "accuracy" not in window.plots.plots and "test_samples" not in window.plots.plots
    assert "margin" in window.plots.plots
