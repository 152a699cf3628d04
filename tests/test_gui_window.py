"""The main window: a run started from the GUI delivers metrics to the plots; pause, resume,
stop, save and close work mid-run and leave no process or thread behind."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from margin_explorer.core import datasets, reference
from margin_explorer.core.runfile import RunReader
from margin_explorer.widgets.trajectory_plots import PLOT_KEYS

ROOT = Path(__file__).resolve().parent.parent


def _wait_records(qtbot, win, at_least, timeout=30000):
    qtbot.waitUntil(lambda: win.session is not None and win.session.n_records >= at_least, timeout=timeout)


def test_demo_is_loaded_and_ready(window):
    assert window.dataset_editor.model.n == 100
    assert window.builder.badge.property("verdict") == "exact"
    assert window.controls.run_button.isEnabled() and window.problem() is None
    assert window.plots.waiting_note.isVisible() and "press Run" in window.plots.waiting_note.text()
    assert window.status_fields["status"].text() == "idle"


def test_a_run_from_the_gui_delivers_metrics_to_the_plots(window, qtbot):
    window.controls.steps.setValue(3000)
    qtbot.keyClick(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.status == "finished", timeout=60000)
    session = window.session
    assert session.step == 3000 and session.last("accuracy") == 1.0
    qtbot.wait(200)
    curve = window.plots.plots["margin"].curves[(0, "normalized_margin")]
    x, y = curve.getData()
    assert len(x) > 100 and x[-1] == 3000
    assert not window.plots.waiting_note.isVisible()
    window.plots.set_visible_plots(["norm", "margin"])  # rebuilt: the note moves to the new first plot
    assert not window.plots.waiting_note.isVisible()
    window.plots.set_visible_plots([])
    window.plots.refresh(force=True)
    window.plots.set_visible_plots(list(PLOT_KEYS))
    np.testing.assert_allclose(y[-1], session.last("normalized_margin"))
    assert "finished" in window.status_fields["status"].text()
    assert window.status_fields["step"].text() == "step 3,000 of 3,000"
    assert not window.run_status.progress.isVisible() and "left" not in window.status_fields["elapsed"].text()
    assert window.boundary.image.image is not None and window.boundary.image.image.shape == (96, 96)


def test_pause_resume_and_stop_mid_run(window, qtbot):
    window.controls.steps.setValue(0)  # unlimited
    window.toggle_run()
    _wait_records(qtbot, window, 50)
    window.toggle_run()  # pause
    qtbot.waitUntil(lambda: window.status == "paused", timeout=10000)
    qtbot.wait(300)
    paused_at = window.session.step
    qtbot.wait(300)
    assert window.session.step == paused_at
    assert window.controls.run_button.text() == "Resume"
    window.toggle_run()  # resume
    qtbot.waitUntil(lambda: window.session.step > paused_at, timeout=10000)
    window.stop()
    qtbot.waitUntil(lambda: window.status == "stopped", timeout=10000)
    assert window.session.status == "stopped"
    assert window.controls.run_button.text() == "Run"


def test_step_takes_exactly_k_steps(window, qtbot):
    window.controls.step_size.setValue(250)
    window.step(250)
    qtbot.waitUntil(lambda: window.session is not None and window.session.step == 250 and window.status == "paused",
                    timeout=30000)
    window.step(250)
    qtbot.waitUntil(lambda: window.session.step == 500 and window.status == "paused", timeout=30000)


def test_save_writes_a_run_file_that_reads_back(window, qtbot, tmp_path):
    window.controls.steps.setValue(1500)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=60000)
    path = tmp_path / "gui.h5"
    assert window.save_run(str(path))
    with RunReader(path) as run:
        assert run.status == "finished" and run.final_step == 1500
        np.testing.assert_array_equal(run.metrics["normalized_margin"], window.session.get("normalized_margin"))
        assert run.config.optimizer.step_rule == "lyu_li"
    assert not window.session.has_unsaved_results


def test_closing_mid_run_stops_the_worker(window, qtbot):
    window.controls.steps.setValue(0)
    window.toggle_run()
    _wait_records(qtbot, window, 20)
    process = window.controller.process
    assert process.is_alive()
    asked = []
    window.confirm = lambda title, text: asked.append(text) or True
    window.close()
    assert asked and "in progress" in asked[0]
    assert not process.is_alive()


def test_closing_can_be_refused(window, qtbot):
    window.controls.steps.setValue(0)
    window.toggle_run()
    _wait_records(qtbot, window, 5)
    window.confirm = lambda *_: False
    window.close()
    assert window.isVisible() and window.controller.process.is_alive()
    window.confirm = lambda *_: True


def test_bad_inputs_disable_run_with_the_reason(window, qtbot):
    window.controls.lr.setText("0")
    assert not window.controls.run_button.isEnabled()
    assert "step size" in window.controls.problem_label.text()
    window.controls.lr.setText("0.5")
    assert window.controls.run_button.isEnabled()
    model = window.dataset_editor.model
    model.remove(np.flatnonzero(model.y < 0))
    assert not window.controls.run_button.isEnabled()
    assert "only one class" in window.controls.problem_label.text()
    model.undo_stack.undo()
    window.builder.blocks[-1]["width"] = 2  # two outputs fit no dataset (4 would be a four-class network's)
    window.builder._rebuild()
    assert window.controls.problem_label.text() == ("Architecture: the network has 2 outputs but the dataset has two "
                                                    "classes (-1/+1): make the last dense layer 1 wide")


def test_divergence_is_a_message_not_a_crash(window, qtbot):
    window.controls.rule.set_name("constant")
    window.controls.lr.setText("1e6")
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "diverged", timeout=30000)
    assert "diverged at step" in window.banner.text
    assert window.isVisible()


def test_a_run_whose_outputs_overflow_float32_prints_nothing(window, qtbot):
    """Residual GELU with a constant step of 3 (float64) grows f(x) past float32's range: the
    boundary grid's cast to float32 printed numpy's overflow warning, and the heatmap's colour
    scaling pyqtgraph's NaN warnings (the quiet_gui fixture fails the test on either)."""
    from margin_explorer.core.presets import load_preset

    config = load_preset("residual-gelu-moons")
    config.optimizer.step_rule, config.optimizer.lr, config.run.steps = "constant", 3.0, 3000
    window.load_config(config)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status in ("finished", "diverged"), timeout=60000)
    qtbot.wait(300)  # the last boundary grid arrives and is drawn
    image = window.boundary.image.image
    assert image is not None and np.isfinite(image).all() and np.abs(image).max() == 1e30  # clipped


def test_undo_shortcut_restores_a_dataset_edit(window, qtbot):
    model = window.dataset_editor.model
    model.add_point(0.0, 0.0, 1)
    assert model.n == 101
    window.undo_action.trigger()
    assert model.n == 100


def test_undo_acts_on_the_editor_in_front(window, qtbot):
    model, builder = window.dataset_editor.model, window.builder
    model.add_point(0.0, 0.0, 1)
    window.docks["architecture"].raise_()
    qtbot.waitUntil(lambda: window.undo_group.activeStack() is builder.undo_stack)
    blocks = len(builder.spec_dict()["blocks"])
    builder.add_block("dense")
    assert len(builder.spec_dict()["blocks"]) == blocks + 1
    assert window.undo_action.text() == "&Undo add a dense block"
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert len(builder.spec_dict()["blocks"]) == blocks and model.n == 101  # the dataset keeps its point
    window.docks["dataset"].raise_()
    qtbot.waitUntil(lambda: window.undo_group.activeStack() is model.undo_stack)
    qtbot.keyClick(window, Qt.Key_Z, Qt.ControlModifier)
    assert model.n == 100 and len(builder.spec_dict()["blocks"]) == blocks


def test_settings_remember_visible_plots(qtbot, settings, no_leaks):
    from margin_explorer.app.main_window import MainWindow

    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.plot_actions["stable_rank"].trigger()  # View > Stable rank, unticked
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert "stable_rank" not in second.plots.plots and "margin" in second.plots.plots
    second.close()


def test_the_window_asks_its_worker_for_separability(window, qtbot, monkeypatch):
    """The dataset panel's linear programs run in the worker process, not the window's."""
    import margin_explorer.widgets.dataset_editor as editor_module

    def in_the_window(*_args):
        raise AssertionError("the window computed the geometry itself")

    monkeypatch.setattr(editor_module, "dataset_geometry", in_the_window)
    editor = window.dataset_editor
    editor.model.reset(datasets.xor(40, seed=0))
    qtbot.waitUntil(lambda: "not linearly separable" in editor.facts.text(), timeout=20000)
    editor.model.reset(datasets.linearly_separable(40, 2, 0.3, seed=0))
    assert "checking separability" in editor.facts.text() or "separable" not in editor.facts.text()
    qtbot.waitUntil(lambda: "SVM margin" in editor.facts.text(), timeout=20000)
    expected = reference.svm_margin(editor.model.X, editor.model.y)
    shown = float(editor.facts.text().rsplit("SVM margin ", 1)[1].split("<")[0])
    assert abs(shown - expected) <= 1e-3 * expected
    editor.show_geometry(editor._geometry_token - 1, {"separable": False, "margin": None})  # a stale answer
    assert "SVM margin" in editor.facts.text()


def test_the_window_process_never_imports_scipy(tmp_path):
    """scipy is ~50 MB of the window's memory (issue #6, bar 4): a run in the window, the dataset
    facts included, leaves it unimported there."""
    code = ("import sys; from margin_explorer.app.launch import demo; "
            f"code = demo('relu2-blobs', 300, {str(tmp_path / 'shot.png')!r}); "
            "print('SCIPY', 'scipy' in sys.modules); sys.exit(code)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SCIPY False" in result.stdout


def test_a_window_closed_while_its_worker_starts_does_not_wait_for_it(qtbot, settings, no_leaks):
    """The worker takes 0.2-1 s to import; a window closed before that (a demo's screenshot, a
    quick open and close) ends it at once (~1 ms) instead of waiting to tell it to quit."""
    import signal
    import time

    from margin_explorer.app.main_window import MainWindow

    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.controller.warm_up()
    process = window.controller.process
    start = time.perf_counter()
    window.controller.shutdown()
    assert time.perf_counter() - start < 1.0  # generous for a loaded machine: the exit code tells
    assert process.exitcode == -signal.SIGTERM  # terminated, not told to quit and waited for
    window.close()


def test_the_ensemble_plot_says_why_it_stays_blank(window, qtbot):
    note = window.plots.plots["ensemble"].empty_note
    assert note.text() == "the network has no ensemble" and not note.isVisible()  # nothing shown yet
    window.controls.steps.setValue(200)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    window.plots.refresh(force=True)
    assert note.isVisible()
    window.load_preset("ensemble-shallow-fades")
    window.controls.steps.setValue(200)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished" and window.session.n_records > 100, timeout=30000)
    window.plots.refresh(force=True)
    assert not note.isVisible()
    x, _y = window.plots.plots["ensemble"].curves[(0, 0)].getData()
    assert len(x) > 100


def test_help_lists_the_real_shortcuts_the_definitions_and_the_versions(window, qtbot):
    from importlib import metadata

    from margin_explorer.core.metrics import DEFINITIONS

    qtbot.keyClick(window, Qt.Key_F1)
    keys = window.help_dialogs["keys"]
    assert keys.isVisible()
    text = keys.browser.toPlainText()
    # read from the actions themselves: what the keys do is what the page says
    lines = text.splitlines()  # a table's cells, one a line: menu, action, keys
    for action, key in [("Run / Pause", "Space"), ("Undo", "Ctrl+Z"), ("Presentation mode", "F5"),
                        ("Keyboard and mouse", "F1")]:
        assert key in lines[lines.index(action) + 1], (action, key)
    assert "Ctrl+click" in text and "drag a legend" in text
    window.help_actions["quantities"].trigger()
    assert DEFINITIONS["normalized_margin"] in window.help_dialogs["quantities"].browser.toPlainText()
    window.help_actions["about"].trigger()
    about = window.help_dialogs["about"].browser.toPlainText()
    assert f"Margin Explorer {metadata.version('margin-explorer')}" in about and "Lyu and Li 2020" in about
    for dialog in window.help_dialogs.values():
        dialog.close()


def test_the_window_process_never_imports_torch():
    """The window imported torch to list devices: 360 MB resident right after start instead of
    ~150 MB (issue 18). The training process lists them; the window's process, in a child here,
    has no torch after start-up and after the list arrived."""
    from benchmarks.memory_and_startup import window_start_memory

    rss_mb, torch_loaded, line = window_start_memory()
    assert "DEVICES [[" in line  # the list arrived (empty on a machine without cuda or mps)
    assert not torch_loaded, line
    assert rss_mb < 250, line


def test_a_conv_block_reads_the_loaded_digits_as_8_by_8_images(window):
    from margin_explorer.core import builtin_data

    window.dataset_editor.load(builtin_data.load_builtin("digits", classes=[0, 1]))
    builder = window.builder
    assert builder.input_dim == 64 and builder.image_shape == (8, 8)  # the dataset says so, not a guess
    builder.add_block("conv2d")
    assert builder.image_edit.text() == "1 x 8 x 8" and builder.spec_dict()["input_shape"] == [1, 8, 8]
