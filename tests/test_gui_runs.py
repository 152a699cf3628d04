"""Saved runs in the window: open, compare, replay, continue, export, record, render, and
every bad file's message."""

import signal
import subprocess
import sys
import time
import xml.dom.minidom
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from margin_explorer.app.export import export_metrics_csv, export_scene, export_widget_png
from margin_explorer.core.runfile import FORMAT_VERSION, RunReader
from margin_explorer.core.runner import run_to_file
from tests.helpers import config_for, linear_spec, mlp, open_when_it_has_records, start_headless_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """Two small runs: a ReLU network and a linear model, on the same blobs."""
    from margin_explorer.core.datasets import gaussian_blobs

    folder = tmp_path_factory.mktemp("runs")
    data = gaussian_blobs(40, 2, separation=4.0, noise=0.5, seed=0)
    paths = []
    for name, spec, rule in (("relu", mlp(2, [8]), "lyu_li"), ("linear", linear_spec(), "loss_normalized")):
        config = config_for(spec, data, steps=1500, lr=0.5, rule=rule, snapshots_per_decade=6)
        config.name = name
        path = folder / f"{name}.h5"
        run_to_file(config, path)
        paths.append(path)
    return paths


def test_opening_fills_the_plots_with_exactly_the_files_data(window, run_files):
    assert window.open_runs([str(run_files[0])])
    entry = window.runs.entries[-1]
    with RunReader(run_files[0]) as reader:
        np.testing.assert_array_equal(entry.session.get("normalized_margin"), reader.metrics["normalized_margin"])
        steps = reader.metrics["step"]
    curve = window.plots.plots["margin"].curves[(0, "normalized_margin")]
    x, y = curve.getData()
    values = reader.metrics["normalized_margin"]
    assert x[0] == steps[0] and x[-1] == steps[-1] and y[-1] == values[-1]
    assert np.isin(y, values).all()  # every drawn point is a recorded value (decimated to min/max per pixel)
    assert y.min() == values.min() and y.max() == values.max()
    # the setup came with it
    assert window.builder.spec_dict()["blocks"][0]["width"] == 8
    assert window.controls.rule.name() == "lyu_li"


def test_two_runs_compare_with_a_legend_list_and_table(window, run_files, qtbot):
    window.open_runs([str(p) for p in run_files])
    names = [e.name for e in window.runs.entries]
    assert names[-2:] == ["relu", "linear"]
    assert len(window.plots.sources) >= 2
    table = window.compare_table.as_text().splitlines()
    assert table[0].split("\t")[-2:] == ["relu", "linear"]
    copied = next(line for line in table if line.startswith("γ\t")).split("\t")[-1]
    cell = window.compare_table.table.item(3, window.compare_table.table.columnCount() - 1)  # γ of "linear"
    assert len(copied.lstrip("-0.")) <= 6 and len(cell.text().lstrip("-0.")) <= 4  # 6 digits copied, 4 shown
    assert float(cell.text()) == pytest.approx(float(copied), rel=1e-3)
    assert float(cell.toolTip()) == pytest.approx(float(copied), rel=1e-6)
    # hide one, rename the other: the plots follow
    window.run_list.visibilityChanged.emit(len(window.runs.entries) - 1, False)
    assert [label for _s, label, _c in window.plots.sources][-1] == "relu"
    window.run_list.renamed.emit(len(window.runs.entries) - 2, "relu net")
    assert window.runs.entries[-2].name == "relu net"
    window.set_x_axis("neg_log_loss")
    x, _y = window.plots.plots["margin"].curves[(len(window.plots.sources) - 1, "normalized_margin")].getData()
    assert x.max() > 100  # -log L of a separated run: large and positive
    window.set_x_axis("step")


def test_clicking_show_hide_boxes_keeps_the_list_and_the_replay(window, run_files, qtbot):
    """With two runs open, a click on a show/hide box raised 'Internal C++ object (QTableWidgetItem)
    already deleted' (the list was rebuilt under the click) and sent the replay slider to the end."""
    from PySide6.QtCore import QPoint, Qt

    window.open_runs([str(p) for p in run_files])
    table = window.run_list.table
    row = len(window.runs.entries) - 2
    table.setCurrentCell(row, 0)
    bar = window.replay_bar
    bar.slider.setValue(2)
    def click_box(r):
        rect = table.visualItemRect(table.item(r, 0))
        qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))

    for r in (row, row + 1):
        click_box(r)
    assert [e.visible for e in window.runs.entries[row:]] == [False, False]
    assert window.plots.sources == [] or all(label not in ("relu", "linear") for _s, label, _c in window.plots.sources)
    for r in (row, row + 1):
        click_box(r)
    assert [e.visible for e in window.runs.entries[row:]] == [True, True]
    assert bar.slider.value() == 2 and table.currentRow() == row
    window.run_list.visibilityChanged.emit(row + 1, False)
    assert [c for c in window.compare_table.as_text().splitlines()[0].split("\t")][-1] == "relu"  # shown runs only


def test_the_scrubber_moves_the_boundary_image_and_the_markers(window, run_files, qtbot):
    window.open_runs([str(run_files[0])])
    row = len(window.runs.entries) - 1
    window.run_list.table.setCurrentCell(row, 0)
    bar = window.replay_bar
    assert len(bar.steps) >= 5 and bar.steps[0] == 0
    bar.slider.setValue(len(bar.steps) - 1)
    late = window.boundary.image.image.copy()
    bar.slider.setValue(1)
    early = window.boundary.image.image.copy()
    assert not np.allclose(early, late)
    marker = window.plots.plots["margin"].marker
    assert marker.isVisible() and marker.value() == bar.steps[1]
    bar.play_button.setChecked(True)
    qtbot.waitUntil(lambda: bar.slider.value() == bar.slider.maximum(), timeout=10000)
    qtbot.waitUntil(lambda: not bar.play_button.isChecked(), timeout=5000)


def test_continue_trains_on_and_records_its_parent(window, run_files, qtbot, tmp_path):
    window.open_runs([str(run_files[0])])
    entry = window.runs.entries[-1]
    asked = []
    window.ask_steps = lambda title, text, default: asked.append(default) or None  # cancelled
    assert not window.continue_run(entry) and window.session is None
    window.ask_steps = lambda title, text, default: asked.append(default) or 500
    assert window.continue_run(entry)
    assert asked == [1500, 1500]  # as many steps again as the run took
    qtbot.waitUntil(lambda: window.runs.entries[0].status == "running" or window.status == "finished",
                    timeout=30000)
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    assert window.runs.entries[0].status == "finished"
    # the margin axis holds both runs' separated phases, not the continued run's flat piece alone
    window.plots.refresh(force=True)
    _y0, _y1 = window.plots.plots["margin"].item.vb.viewRange()[1]
    parent_margin = entry.session.get("normalized_margin")
    start = window.plots._threshold_index(entry.session, entry.session.get("smoothed_margin"))
    assert _y0 <= parent_margin[start:].min() and parent_margin[start:].max() <= _y1
    assert window.session.step == 2000 and window.session.get("step")[0] == 1500
    out = tmp_path / "continued.h5"
    assert window.save_run(str(out))
    with h5py.File(out, "r") as f:
        assert f.attrs["parent"] == str(run_files[0]) and f.attrs["start_step"] == 1500


def test_exports_are_valid_files(window, run_files, tmp_path):
    window.open_runs([str(run_files[0])])
    scene = window.plots.view.scene()
    export_scene(scene, tmp_path / "plots.png", scale=2.0)
    width = int(scene.sceneRect().width())
    with Image.open(tmp_path / "plots.png") as img:
        assert img.size[0] == 2 * width and img.mode in ("RGB", "RGBA")
    export_scene(scene, tmp_path / "clear.png", transparent=True)
    with Image.open(tmp_path / "clear.png") as img:
        assert img.mode == "RGBA" and img.getpixel((1, 1))[3] == 0
    export_scene(scene, tmp_path / "plots.svg")
    svg = xml.dom.minidom.parse(str(tmp_path / "plots.svg"))
    assert svg.documentElement.tagName == "svg" and len(svg.getElementsByTagName("polyline")) > 10
    export_widget_png(window, tmp_path / "window.png", scale=1.5)
    with Image.open(tmp_path / "window.png") as img:
        assert img.size == (int(window.width() * 1.5), int(window.height() * 1.5))
    session = window.runs.entries[-1].session
    export_metrics_csv(session, tmp_path / "metrics.csv")
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,wall_time,log_loss") and len(rows) == session.n_records + 1
    assert float(rows[-1].split(",")[rows[0].split(",").index("normalized_margin")]) == pytest.approx(
        session.last("normalized_margin"))


def test_an_mp4_of_n_frames_decodes_to_n_frames(window, run_files, qtbot, tmp_path):
    import imageio.v2 as imageio

    window.open_runs([str(run_files[0])])
    path = tmp_path / "replay.mp4"
    assert window.files.start_recording(window.boundary, str(path), fps=20)
    assert window.files.rec_label.isVisible() or window.files.rec_label.text().startswith("●")
    qtbot.waitUntil(lambda: window.files.recorder.frames >= 12, timeout=10000)
    frames_written = window.files.recorder.frames
    window.files.stop_recording()
    reader = imageio.get_reader(str(path))
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == frames_written
    h, w = frames[0].shape[:2]
    assert h % 2 == 0 and w % 2 == 0
    # a GIF of a replay: Pillow merges identical frames, so step the replay between captures
    from margin_explorer.app.recorder import Recorder

    gif = tmp_path / "replay.gif"
    window.run_list.table.setCurrentCell(len(window.runs.entries) - 1, 0)
    recorder = Recorder(window.boundary, str(gif), fps=5)
    for index in (1, 3, 5, 7):
        window.replay_bar.slider.setValue(index)
        recorder.capture()
    recorder.stop()
    with Image.open(gif) as img:
        assert img.n_frames == 4


def test_render_draws_figures_headless(run_files, tmp_path):
    out = tmp_path / "fig.png"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "render", *map(str, run_files), "--plots",
                             "margin,norm,angle", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    with Image.open(out) as img:
        assert img.size[0] >= 1000 and img.size[1] >= 250
    assert elapsed < 30  # the speed figure is the benchmark's; this only guards against a hang
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "render", str(run_files[0]), "--plots", "bogus",
                             "--out", str(tmp_path / "x.png")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown plot 'bogus'" in result.stderr


def test_each_bad_file_gets_its_message_and_nothing_is_lost(window, run_files, tmp_path):
    window.open_runs([str(run_files[0])])
    before = len(window.runs.entries)
    (tmp_path / "text.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    newer = tmp_path / "newer.h5"
    newer.write_bytes(Path(run_files[0]).read_bytes())
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    data = Path(run_files[1]).read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 3])
    cases = [(tmp_path / "missing.h5", "no such file"), (tmp_path / "text.h5", "not an HDF5 file"),
             (tmp_path / "other.h5", "not a Margin Explorer run"), (newer, "newer than this app reads"),
             (tmp_path / "truncated.h5", "")]
    for path, message in cases:
        assert not window.open_runs([str(path)])
        assert window.banner.isVisible() and message in window.banner.text and str(path.name) in window.banner.text
        assert len(window.runs.entries) == before
    assert window.isVisible()


def test_a_diverged_run_opens_with_a_notice(window, tmp_path):
    from margin_explorer.core.datasets import xor

    path = tmp_path / "diverged.h5"
    run_to_file(config_for(mlp(2, [8]), xor(30, seed=0), steps=300, lr=1e6, rule="constant"), path)
    assert window.open_runs([str(path)])
    assert "diverged" in window.banner.text
    assert window.runs.entries[-1].status == "diverged"


def test_a_file_being_written_grows_on_screen(window, qtbot, tmp_path):
    path = tmp_path / "live.h5"
    proc = start_headless_run(path)
    try:
        open_when_it_has_records(path).close()
        assert window.open_runs([str(path)])
        entry = window.runs.entries[-1]
        assert entry.follower is not None
        first = entry.session.n_records
        qtbot.waitUntil(lambda: entry.session.n_records > first + 20, timeout=20000)
        steps = entry.session.get("step")
        assert np.all(np.diff(steps) > 0)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    qtbot.waitUntil(lambda: entry.follower is None, timeout=20000)
    assert entry.session.status == "stopped"


def test_presentation_mode_hides_editors_and_is_remembered(window, settings, qtbot):
    window.toggle_presentation(True)
    assert not window.docks["dataset"].isVisible() and window.plots.pen_width == 3
    assert str(settings.value("presentation")).lower() == "true"
    window.set_theme("dark")
    assert window.plots.view.backgroundBrush().color().lightness() < 50
    window.toggle_presentation(False)
    window.set_theme("light")
    assert window.docks["plots"].isVisible() and window.plots.pen_width == 1


def test_the_dark_theme_and_presentation_mode_reach_legends_readouts_and_text(window, qtbot):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from margin_explorer.widgets.palette import INK

    window.load_preset("relu2-blobs")
    window.controls.steps.setValue(300)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    window.update_claims()
    margin = window.plots.plots["margin"]
    assert len(margin.legend.items) == 2
    light_height = margin.legend.items[0][1].boundingRect().height()
    window.set_theme("dark")
    dark = INK["dark"]
    assert margin.legend.opts["brush"].color().getRgb() == dark["legend"]
    assert margin.readout.color.name() == dark["text"]
    assert dark["good"] in window.claims_panel.text and INK["light"]["good"] not in window.claims_panel.text
    palette = QApplication.palette()  # a disabled button must look disabled
    assert (palette.color(QPalette.Disabled, QPalette.ButtonText).lightness()
            < palette.color(QPalette.Active, QPalette.ButtonText).lightness() - 60)
    window.toggle_presentation(True)
    margin = window.plots.plots["margin"]  # presentation mode's own grid of plots
    assert margin.legend.opts["labelTextSize"] == "13pt" and margin.readout.color.name() == dark["text"]
    # the labels were drawn again, larger
    assert margin.legend.items[0][1].boundingRect().height() > 1.3 * light_height
    window.toggle_presentation(False)
    window.set_theme("light")
    margin = window.plots.plots["margin"]
    assert margin.legend.opts["labelTextSize"] == "8pt" and margin.readout.color.name() == INK["light"]["text"]


def test_an_empty_run_list_says_how_to_get_a_run_and_offers_nothing_to_act_on(qtbot):
    from types import SimpleNamespace

    from margin_explorer.widgets.run_list import RunList

    runs = RunList()
    qtbot.addWidget(runs)
    runs.show()
    assert runs.empty_hint.isVisible() and "Ctrl+O" in runs.empty_hint.text()
    assert not any(b.isEnabled() for b in runs.buttons)
    run = SimpleNamespace(name="relu", visible=True, colour_index=0, status="finished", step=3000, path="")
    runs.set_runs([run])
    assert not runs.empty_hint.isVisible() and all(b.isEnabled() for b in runs.buttons)
    assert runs.table.item(0, 2).text() == "3,000"
    runs.set_runs([])
    assert runs.empty_hint.isVisible() and not any(b.isEnabled() for b in runs.buttons)


def test_the_compare_table_keeps_three_runs_in_view_with_units(window, run_files):
    window.open_runs([str(p) for p in run_files])
    entry = window.runs.entries[-1]
    window.run_list.renamed.emit(len(window.runs.entries) - 1, "a linear model on two blobs, loss-normalized step (modified)")
    table = window.compare_table.table
    assert all(table.columnWidth(c) <= 110 for c in range(table.columnCount()))
    assert table.horizontalHeaderItem(table.columnCount() - 1).toolTip() == entry.name
    labels = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert "angle to max-margin (rad)" in labels and "training time (s)" in labels


def test_continue_in_the_window_resumes_the_optimizer_where_it_stopped(window, qtbot, tmp_path):
    """Adam's moments and step count come back from the file: 40 + 40 steps equal 80 (issue 19)."""
    from margin_explorer.core import api as mx

    config = mx.preset("relu2-blobs")
    config.optimizer.kind, config.optimizer.lr = "adam", 0.01
    whole = mx.train(config, steps=80)
    mx.train(config, steps=40, out=tmp_path / "first.h5")
    window.open_runs([str(tmp_path / "first.h5")])
    window.ask_steps = lambda _title, _text, default: 40  # Continue… asks how many more steps
    assert window.continue_run(window.runs.entries[-1])
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    assert window.session.step == 80
    np.testing.assert_allclose(window.session.params, whole.final_params, rtol=1e-12, atol=0)
    assert int(window.session.optimizer_state["t"]) == 80
    assert window.save_run(str(tmp_path / "continued.h5"))  # saved with its state, to continue again
    saved = mx.load(tmp_path / "continued.h5")
    np.testing.assert_array_equal(saved.optimizer_state["m"], whole.optimizer_state["m"])
