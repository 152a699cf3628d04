"""The window on the screen it has: it fits a small one, full screen gives the layout back, and
the View menu says what the window is doing (issue 18, Pace and screen)."""

import pytest
from PySide6.QtCore import QByteArray, QRect


def _dock_sizes(window):
    """The docks on screen (the Architecture and Runs tabs behind Dataset keep a stale size)."""
    return {key: (dock.width(), dock.height()) for key, dock in window.docks.items()
            if key in ("dataset", "plots", "run", "boundary")}


def test_presentation_mode_checks_view_full_screen(window, qtbot):
    window.toggle_presentation(True)
    assert window.isFullScreen() and window.fullscreen_action.isChecked()
    window.toggle_presentation(False)
    assert not window.fullscreen_action.isChecked() and not window.isFullScreen()


def test_f11_twice_gives_the_layout_back_exactly(window, qtbot):
    qtbot.wait(50)
    before = _dock_sizes(window)
    window.toggle_full_screen()
    assert window.isFullScreen() and window.fullscreen_action.isChecked()
    qtbot.wait(50)
    window.toggle_full_screen()
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=2000)
    qtbot.wait(100)
    assert _dock_sizes(window) == before
    assert not window.fullscreen_action.isChecked()


def test_presentation_mode_checks_full_screen_and_gives_the_layout_back(window, qtbot):
    qtbot.wait(50)
    before = _dock_sizes(window)
    window.toggle_presentation(True)
    assert window.isFullScreen() and window.fullscreen_action.isChecked()
    window.toggle_presentation(False)
    qtbot.wait(100)
    assert not window.fullscreen_action.isChecked() and _dock_sizes(window) == before


def test_a_saved_geometry_is_kept_only_if_it_fits_the_screen(qtbot, settings, no_leaks, monkeypatch):
    from margin_explorer.app.main_window import MainWindow

    small = QRect(0, 0, 1280, 720)
    monkeypatch.setattr(MainWindow, "_available", lambda self: small)
    # a geometry saved on a large monitor
    big = MainWindow(settings=settings, load_demo=False)
    big.resize(1900, 1050)
    settings.setValue("geometry", big.saveGeometry())
    big.controller.shutdown()
    big.deleteLater()
    window = MainWindow(settings=settings, load_demo=False)
    qtbot.addWidget(window)
    assert window.width() <= 1280 and window.height() <= 720
    window.resize(700, 500)  # (the offscreen screen is 800x600: Qt itself clamps to it)
    settings.setValue("geometry", window.saveGeometry())
    again = MainWindow(settings=settings, load_demo=False)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (700, 500)  # it fits: kept
    settings.setValue("geometry", QByteArray())
    fresh = MainWindow(settings=settings, load_demo=False)
    qtbot.addWidget(fresh)
    assert fresh.width() <= 1280 and fresh.height() <= 720
    for w in (window, again, fresh):
        w.controller.shutdown()


def test_dont_ask_again_this_session_on_the_discard_prompt(window, qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QCheckBox, QMessageBox

    del window.confirm  # the real dialog, answered below as a user would
    window.controls.steps.setValue(100)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        box.findChild(QCheckBox).setChecked(True)
        box.button(QMessageBox.Yes).click()

    QTimer.singleShot(0, answer)
    window.load_preset("relu3-moons")
    assert len(seen) == 1 and "not been saved" in seen[0]
    assert "moons" in window.current_config().dataset.name
    window.controls.steps.setValue(100)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    window.load_preset("relu2-blobs")  # no second question: it would block here
    assert len(seen) == 1 and "blobs" in window.current_config().dataset.name
