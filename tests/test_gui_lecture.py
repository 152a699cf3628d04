"""A lecture, start to end, through the real window with the mouse and the keyboard: presets, an
edited dataset and network, run, pause, step, pace, save, open and compare runs, show and hide
them, replay, export in both themes, presentation mode. Nothing may raise in a slot, warn or print
on stderr (the quiet_gui fixture in conftest.py fails the test on any of it)."""

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from margin_explorer.app.export import export_scene, export_widget_png
from tests.test_gui_dataset import click


def _preset(window, stem):
    """Presets > ... as the menu does it (an action's trigger: menus are popups offscreen)."""
    action = next(a for a in window.menuBar().actions() if a.text() == "&Presets").menu()
    next(a for a in action.actions() if a.toolTip() == stem).trigger()


def _finished(window, qtbot, timeout=30000):
    qtbot.waitUntil(lambda: window.status in ("finished", "stopped", "diverged"), timeout=timeout)
    assert window.status == "finished", window.banner.text


def test_a_lecture_walks_through_the_window_without_a_sound(window, qtbot, tmp_path):
    window.confirm = lambda *_args: True
    window.ask_steps = lambda _title, _text, default: 300
    saved = []

    # 1. the linear model, the classic: run it on the log axis, paused and stepped on the way
    _preset(window, "linear-separable")
    assert window.log_x_action.isChecked() and "Linear" in window.banner.text
    window.controls.steps.setValue(0)  # until stopped
    qtbot.keyClick(window, Qt.Key_Space)  # run
    qtbot.waitUntil(lambda: window.session is not None and window.session.n_records > 5, timeout=20000)
    qtbot.keyClick(window, Qt.Key_Space)  # pause
    qtbot.waitUntil(lambda: window.status == "paused", timeout=10000)
    at = window.session.step
    qtbot.keyClick(window, Qt.Key_S)  # step 100 more
    qtbot.waitUntil(lambda: window.status == "paused" and window.session.step == at + 100, timeout=10000)
    qtbot.keyClick(window, Qt.Key_Space)  # resume
    qtbot.waitUntil(lambda: window.session.step > at + 1000, timeout=20000)
    qtbot.mouseClick(window.controls.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.status == "stopped", timeout=10000)
    saved.append(tmp_path / "linear.h5")
    assert window.save_run(str(saved[-1]))

    # 2. the demo network on blobs, with two points drawn in and a wider first layer, paced
    _preset(window, "relu2-blobs")
    canvas = window.dataset_editor.canvas
    n = window.dataset_editor.model.n
    model = window.dataset_editor.model
    plus, minus = model.X[model.y > 0].mean(axis=0), model.X[model.y < 0].mean(axis=0)
    click(canvas, *plus)  # a +1 point amid the +1 blob
    click(canvas, *minus, Qt.RightButton)  # a -1 point amid the -1 blob
    assert window.dataset_editor.model.n == n + 2
    window.docks["architecture"].raise_()
    builder = window.builder
    first = builder.tree.topLevelItem(0)
    qtbot.mouseClick(builder.tree.viewport(), Qt.LeftButton, pos=builder.tree.visualItemRect(first).center())
    builder.width_spin.setValue(16)
    assert window.current_config().modified == ["dataset", "architecture"]
    window.controls.pace.setCurrentIndex(window.controls.pace.findData(300.0))
    window.controls.steps.setValue(400)
    qtbot.mouseClick(window.controls.run_button, Qt.LeftButton)  # (Space would go to the focused tree)
    _finished(window, qtbot)
    window.controls.pace.setCurrentIndex(0)  # full speed again
    assert window.controller.pace == 0.0
    assert window.session.name.endswith("(modified)")
    saved.append(tmp_path / "relu-edited.h5")
    assert window.save_run(str(saved[-1]))

    # 3. a near-homogeneous network: the residual GELU preset, its last block selected, then the
    # linear network in its place (this raised IndexError), then back to the preset's own
    _preset(window, "residual-gelu-moons")
    last = builder.tree.topLevelItem(builder.tree.topLevelItemCount() - 1)
    qtbot.mouseClick(builder.tree.viewport(), Qt.LeftButton, pos=builder.tree.visualItemRect(last).center())
    linear = next(i for i in range(builder.preset.count()) if builder.preset.itemText(i) == "Linear model")
    builder.preset.activated.emit(linear)
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)  # undo: the residual network again
    assert len(builder.spec().blocks) > 1
    window.controls.steps.setValue(600)
    qtbot.mouseClick(window.controls.run_button, Qt.LeftButton)
    _finished(window, qtbot)

    # 4. compare: open the saved runs beside the live one, hide and show them with the mouse
    assert window.open_runs([str(p) for p in saved])
    table = window.run_list.table
    window.docks["runs"].raise_()
    rows = range(len(window.runs.entries) - 2, len(window.runs.entries))
    table.setCurrentCell(rows[0], 0)
    window.replay_bar.slider.setValue(3)
    for _ in range(2):
        for row in rows:
            rect = table.visualItemRect(table.item(row, 0))
            qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))
    assert all(window.runs.entries[r].visible for r in rows) and window.replay_bar.slider.value() == 3
    header = window.compare_table.as_text().splitlines()[0].split("\t")
    assert header[-2:] == ["linear", "relu-edited"]

    # 5. replay the opened run, then continue it for 300 steps
    bar = window.replay_bar
    bar.play_button.setChecked(True)
    qtbot.waitUntil(lambda: not bar.play_button.isChecked(), timeout=20000)
    parent_step = window.runs.entries[rows[0]].session.step
    qtbot.mouseClick(window.run_list.buttons[2], Qt.LeftButton)  # Continue… (asks: 300 more steps)
    _finished(window, qtbot)
    assert window.session.start_step == parent_step and window.session.step == parent_step + 300

    # 6. exports in both themes, then presentation mode and back
    for theme in ("dark", "light"):
        window.set_theme(theme)
        plots, boundary, whole = (tmp_path / f"{name}-{theme}.png" for name in ("plots", "boundary", "window"))
        export_scene(window.plots.view.scene(), plots)
        export_scene(window.boundary.plotItem, boundary)
        export_widget_png(window, whole)
        for path in (plots, boundary, whole):
            image = np.asarray(Image.open(path).convert("L"))
            assert image.std() > 5, path  # a picture, not a blank
    qtbot.keyClick(window, Qt.Key_F5)
    assert window.isFullScreen() and window.fullscreen_action.isChecked()
    qtbot.keyClick(window, Qt.Key_F5)
    assert not window.presentation_action.isChecked() and not window.fullscreen_action.isChecked()
    _preset(window, "relu2-blobs")  # ready for the next lecture: nothing of the last run left on screen
    assert window.boundary.image.image is None and window.status_fields["margin"].text() == "-"
    assert Path(tmp_path / "window-dark.png").stat().st_size > 0
