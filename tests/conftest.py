"""Test set-up: Qt offscreen, settings in a temporary folder, and a leak check that fails any
GUI test leaving a thread, a child process or a running window timer behind."""

import multiprocessing
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def no_leaks():
    """Fail if the test leaves a child process or a non-daemon-safe thread running."""
    before = {t.ident for t in threading.enumerate()}
    yield
    children = multiprocessing.active_children()
    assert not children, f"child processes left running: {children}"
    extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()
             and not t.name.startswith(("QueueFeederThread", "device-probe"))]
    assert not extra, f"threads left running: {extra}"


@pytest.fixture
def window(qtbot, settings, no_leaks):
    """A main window with the demo loaded, closed (worker stopped) after the test."""
    from app.main_window import MainWindow, configure_pyqtgraph

    configure_pyqtgraph()
    win = MainWindow(settings=settings)
    win.confirm = lambda *_args: True  # dialogs would block an offscreen test
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.close()
    assert win.controller._process is None, "the worker process outlived the window"
    assert not win.redraw_timer.isActive()
