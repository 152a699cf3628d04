"""The Sweep view (widgets/sweep_view.py, app/sweep_actions.py): the heatmap's values in the right
cells, the sliders, a click opening the cell's runs, a running sweep filling in, the exports."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

import margin_explorer as mx
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.runner import run_to_file
from margin_explorer.core.sweep_grid import SweepPlan
from margin_explorer.core.sweep_index import SweepIndex

LRS, WIDTHS, SEEDS = [0.05, 0.2, 0.8], [4, 8], [0, 1, 2]


def _train_into(folder: Path, index: SweepIndex, points) -> None:
    for point in points:
        path = folder / str(index.file[point])
        path.parent.mkdir(exist_ok=True)
        run_to_file(index.plan.run_config(point), path)
        with RunReader(path) as reader:
            index.record(point, reader.status, reader.status_reason, reader.final_step, 0.0, reader.final_metrics())


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    """A finished sweep of 3 lr x 2 widths x 3 seeds, its runs trained here one by one (the view
    reads the folder; how the runs were trained is test_sweep.py's business)."""
    config = mx.preset("relu2-blobs")
    config.dataset.params["n"] = 24
    folder = tmp_path_factory.mktemp("sweep")
    plan = SweepPlan.build(config, {"lr": LRS, "width": WIDTHS}, seeds=SEEDS, steps=60)
    index = SweepIndex(folder, plan, sessions=1)
    _train_into(folder, index, range(plan.size))
    index.state = "finished"
    index.write()
    return folder


def _final(folder, lr, width, seed, metric="normalized_margin"):
    """A run's final metric read from its own file, found by its config (not by the index)."""
    for path in sorted((folder / "runs").iterdir()):
        with RunReader(path) as reader:
            c = reader.config
            if (c.optimizer.lr, c.architecture.blocks[0].width, c.run.seed) == (lr, width, seed):
                return reader.final_metrics()[metric]
    raise AssertionError("no such run")


def test_the_heatmap_holds_each_cells_median_over_the_seeds_and_a_slider_fixes_one(window, sweep_folder):
    assert window.sweeps.open(str(sweep_folder))
    view = window.sweeps.view
    view.metric_choice.setCurrentText("normalized_margin")
    assert (view.x_axis.currentText(), view.y_axis.currentText()) == ("lr", "width")
    image = view.image.image
    assert image.shape == (len(WIDTHS), len(LRS)) and image.dtype == np.float32
    finals = {(lr, w, s): _final(sweep_folder, lr, w, s) for lr in LRS for w in WIDTHS for s in SEEDS}
    for i, lr in enumerate(LRS):
        for j, width in enumerate(WIDTHS):
            expected = np.median([finals[lr, width, s] for s in SEEDS])
            assert image[j, i] == pytest.approx(expected, rel=1e-6), (lr, width)  # row j = width, column i = lr
    assert "quartiles" in view.describe(2, 1) and "of 3 runs" in view.describe(2, 1)
    assert view.colour_bar.levels() == pytest.approx((float(image.min()), float(image.max())))
    view.sliders[2].setValue(2)  # seed axis held at its second value, seed 1
    for i, lr in enumerate(LRS):
        for j, width in enumerate(WIDTHS):
            assert view.image.image[j, i] == pytest.approx(finals[lr, width, 1], rel=1e-6)
    view.sliders[2].setValue(0)
    # rendering the view alone (a grab): an attribute named like QWidget.metric() crashed it
    assert not view.grab().isNull()


def test_a_click_on_a_cell_opens_that_cells_runs(window, sweep_folder, qtbot):
    window.sweeps.open(str(sweep_folder))
    view = window.sweeps.view
    window.sweeps.dock.raise_()
    qtbot.waitUntil(lambda: view.plot.isVisible() and view.plot.width() > 50)
    before = len(window.runs.entries)
    where = view.plot.mapFromScene(view.cell_centre(1, 1))  # lr 0.2, width 8
    QTest.mouseClick(view.plot.viewport(), Qt.LeftButton, Qt.NoModifier, where)
    opened = window.runs.entries[before:]
    configs = [(e.session.config.optimizer.lr, e.session.config.architecture.blocks[0].width,
                e.session.config.run.seed) for e in opened]
    assert sorted(configs) == [(0.2, 8, s) for s in SEEDS]


def test_a_running_sweep_fills_in_as_its_index_changes(window, tmp_path, qtbot):
    config = mx.preset("relu2-blobs")
    config.dataset.params["n"] = 24
    plan = SweepPlan.build(config, {"lr": [0.05, 0.2]}, seeds=[0], steps=40)
    index = SweepIndex(tmp_path, plan, sessions=1)
    _train_into(tmp_path, index, [0])
    index.write()
    assert window.sweeps.open(str(tmp_path))
    view = window.sweeps.view
    assert window.sweeps.timer.isActive()
    row = view.image.image[0]
    assert np.isfinite(row[0]) and np.isnan(row[1])  # the second run has not finished: an empty cell
    _train_into(tmp_path, index, [1])
    index.state = "finished"
    index.write()
    qtbot.waitUntil(lambda: np.isfinite(view.image.image[0][1]), timeout=5000)
    assert view.image.image[0][1] == pytest.approx(index.metrics["normalized_margin"][1], rel=1e-6)
    qtbot.waitUntil(lambda: not window.sweeps.timer.isActive(), timeout=5000)  # finished: no more polling


def test_the_heatmap_exports_as_png_and_svg_and_the_table_as_csv(window, sweep_folder, tmp_path):
    window.sweeps.open(str(sweep_folder))
    png, svg, table = tmp_path / "phase.png", tmp_path / "phase.svg", tmp_path / "sweep.csv"
    window.sweeps.export_image(png)
    window.sweeps.export_image(svg)
    window.sweeps.export_csv(table)
    with Image.open(png) as picture:
        assert picture.width > 100 and picture.height > 100
    assert "<svg" in svg.read_text()
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == len(LRS) * len(WIDTHS) * len(SEEDS)
    first = rows[0]
    assert (float(first["lr"]), int(first["width"]), int(first["seed"])) == (LRS[0], WIDTHS[0], SEEDS[0])
    assert float(first["normalized_margin"]) == pytest.approx(_final(sweep_folder, LRS[0], WIDTHS[0], SEEDS[0]),
                                                              rel=1e-12)


def test_open_recognises_a_sweep_folder_and_refuses_a_folder_without_one(window, sweep_folder, tmp_path):
    assert window.sweeps.open_paths([str(sweep_folder)])
    assert window.sweeps.dock.isVisible()
    assert not window.sweeps.open(str(tmp_path))
    assert "holds no sweep" in window.banner.text
