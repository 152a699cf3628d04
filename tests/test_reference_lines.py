"""The dashed max-margin lines of the Normalized margin plot for runs opened from a file (issue 18):
the run file stores the l2 (``reference_margin``) and the steepest-descent (``reference_margin_steepest``)
max margins, the reader checks them, and an opened run draws them as a live run does."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.optimize import linprog, minimize_scalar

from margin_explorer.core.presets import load_preset
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, preset, steps=40) -> Path:
    out = tmp_path / f"{preset}.h5"
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", preset, "--out", str(out), "--steps",
                             str(steps)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def _l2_max_margin_2d(X, y) -> float:
    """max over unit w in the plane of min_i y_i <w, x_i>, by the angle: a grid, then refined."""
    Z = X * y[:, None]
    angles = np.linspace(0, 2 * np.pi, 200_001)
    margins = (Z @ np.stack([np.cos(angles), np.sin(angles)])).min(axis=0)
    best = angles[np.argmax(margins)]
    res = minimize_scalar(lambda a: -np.min(Z @ [np.cos(a), np.sin(a)]), bounds=(best - 1e-4, best + 1e-4),
                          method="bounded", options={"xatol": 1e-12})
    return -res.fun


def _linf_max_margin(X, y) -> float:
    """max over ||w||_inf <= 1 of min_i y_i <w, x_i>: one linear program over every row."""
    Z = X * y[:, None]
    n, d = Z.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=np.column_stack([-Z, np.ones(n)]), b_ub=np.zeros(n),
                  bounds=[(-1, 1)] * d + [(None, None)], method="highs")
    assert res.status == 0
    return -res.fun


def _session(path):
    from margin_explorer.app.session import RunSession

    with RunReader(path) as reader:
        return RunSession.from_reader(reader)


def _margin_plot(qtbot, session):
    from tests.helpers import shown
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    plots = shown(qtbot, TrajectoryPlots(), 900, 900)
    plots.set_sources([(session, "opened")])
    plots.refresh(force=True)
    return plots.plots["margin"]


def test_a_linear_run_opened_from_its_file_draws_the_svm_margin_line(tmp_path, qtbot):
    path = _run(tmp_path, "linear-separable")
    config = load_preset("linear-separable")
    trainer = Trainer(config)
    expected = trainer.reference_margin()
    X, y = trainer.dataset.X, trainer.dataset.y
    assert X.shape[1] == 2 and not config.architecture.blocks[0].bias  # the oracle's plane through 0
    assert expected == pytest.approx(_l2_max_margin_2d(X, y), abs=1e-7)
    session = _session(path)
    assert session.info["reference_margin"] == pytest.approx(expected, rel=1e-12)
    assert session.info["reference_margin_steepest"] is None  # gradient descent: no steepest line
    margin = _margin_plot(qtbot, session)
    assert margin.reference_line is not None and margin.reference_line.isVisible()
    assert margin.reference_line.value() == pytest.approx(expected, rel=1e-12)
    assert margin.steepest_line is None or not margin.steepest_line.isVisible()


def test_a_sign_descent_run_opened_in_the_window_draws_its_linf_max_margin_line(window, tmp_path):
    path = _run(tmp_path, "sign-descent-linf")
    trainer = Trainer(load_preset("sign-descent-linf"))
    expected = trainer.steepest_reference_margin()
    assert expected == pytest.approx(_linf_max_margin(trainer.dataset.X, trainer.dataset.y), rel=1e-7)
    assert window.open_runs([str(path)])
    session = window.runs.entries[-1].session
    assert session.info["reference_margin_steepest"] == pytest.approx(expected, rel=1e-12)
    assert session.info["reference_margin"] == pytest.approx(trainer.reference_margin(), rel=1e-12)
    window.plots.refresh(force=True)
    margin = window.plots.plots["margin"]
    assert margin.steepest_line is not None and margin.steepest_line.isVisible()
    assert margin.steepest_line.value() == pytest.approx(expected, rel=1e-12)
    assert margin.reference_line.isVisible()
    assert margin.reference_line.value() == pytest.approx(trainer.reference_margin(), rel=1e-12)


def test_a_network_run_stores_nan_and_shows_no_line(tmp_path, qtbot):
    path = _run(tmp_path, "relu2-blobs", steps=10)
    with h5py.File(path, "r") as f:
        assert np.isnan(f.attrs["reference_margin"]) and np.isnan(f.attrs["reference_margin_steepest"])
    session = _session(path)
    assert session.info["reference_margin"] is None and session.info["reference_margin_steepest"] is None


def test_an_older_file_without_the_attributes_opens_with_no_line(window, tmp_path):
    path = _run(tmp_path, "sign-descent-linf")
    with h5py.File(path, "r+") as f:  # as written before the lines were stored
        del f.attrs["reference_margin"], f.attrs["reference_margin_steepest"]
    assert window.open_runs([str(path)])
    session = window.runs.entries[-1].session
    assert session.info["reference_margin"] is None and session.info["reference_margin_steepest"] is None
    window.plots.refresh(force=True)
    margin = window.plots.plots["margin"]
    for line in (margin.reference_line, margin.steepest_line):
        assert line is None or not line.isVisible()
    assert session.get("normalized_margin_linf") is not None  # the curves are there, only the lines are not


@pytest.mark.parametrize("value, words", [("0.2", "should be a number, got str"),
                                          (np.inf, "should be finite or NaN"),
                                          (np.array([0.1, 0.2]), "should be a number, got an array")])
def test_a_damaged_reference_attribute_is_one_clear_error(tmp_path, value, words):
    from margin_explorer.core.errors import RunFileError

    path = _run(tmp_path, "linear-separable", steps=5)
    with h5py.File(path, "r+") as f:
        f.attrs["reference_margin"] = value
    with pytest.raises(RunFileError, match="'reference_margin' attribute") as caught:
        RunReader(path)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_windows_save_keeps_the_live_runs_lines(window, qtbot, tmp_path):
    window.load_preset("sign-descent-linf")
    window.controls.steps.setValue(60)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=60000)
    live = dict(window.session.info)
    assert live["reference_margin_steepest"] is not None
    saved = tmp_path / "saves" / "sign.h5"
    saved.parent.mkdir()
    assert window.save_run(str(saved))
    with RunReader(saved) as reader:
        assert reader.reference_margin == live["reference_margin"]
        assert reader.reference_margin_steepest == live["reference_margin_steepest"]
    # saved again from the opened file (File > Save of a reopened run): still there
    again = tmp_path / "saves" / "again.h5"
    _session(saved).save(str(again))
    with RunReader(again) as reader:
        assert reader.reference_margin_steepest == live["reference_margin_steepest"]


def test_the_python_api_keeps_the_lines_through_save_and_load(tmp_path):
    import margin_explorer.core.api as mx

    run = mx.train(mx.preset("linear-separable"), steps=5)
    expected = Trainer(load_preset("linear-separable")).reference_margin()
    assert run.reference_margin == pytest.approx(expected, rel=1e-12)
    run.save(tmp_path / "api.h5")
    assert mx.load(tmp_path / "api.h5").reference_margin == pytest.approx(expected, rel=1e-12)
