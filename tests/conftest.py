"""Test set-up: Qt offscreen, settings in a temporary folder, a leak check that fails any GUI test
leaving a thread, a child process or a running window timer behind, and a quiet check that fails
any GUI test whose slots raise (pytest-qt), warn (RuntimeWarning is an error there) or print to
stderr (the window's process and its training process alike)."""

import multiprocessing
import os
import re
import sys
import threading
import warnings
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.helpers and benchmarks


class _CheckoutFoldersAreNotPackages:
    """The checkout's root is on sys.path (above, and pytest's own rootdir insert), which would
    make its folders importable as top-level `core`, `app`, `widgets`: an import missed by the move
    to margin_explorer.* would pass here and fail in the wheel. Refuse them."""

    def find_spec(self, name, path=None, target=None):
        if path is None and name in ("core", "app", "widgets", "main"):
            raise ModuleNotFoundError(f"import margin_explorer.{name} (pip install -e .), not {name!r}",
                                      name=name)
        return None


sys.meta_path.insert(0, _CheckoutFoldersAreNotPackages())

import pytest  # noqa: E402


# what Qt's offscreen platform says on stderr whatever the app does: not the app's output
QT_PLATFORM_NOISE = re.compile(r"^(This plugin does not support \w+\(\)|QStandardPaths: .*|"
                               r"qt\.qpa\.\w+: .*)$")


def stray_stderr(err: str) -> list[str]:
    """Lines on stderr that are not Qt platform noise: warnings, tracebacks, anything printed."""
    return [line for line in err.splitlines() if line.strip() and not QT_PLATFORM_NOISE.match(line)]


@pytest.fixture(autouse=True)
def quiet_gui(request):
    """For every test that uses qtbot (the window included): an exception in a slot fails it
    (pytest-qt, kept on: qt_no_exception_capture is never set), a RuntimeWarning raised anywhere in
    the test's process is an error (so one in a slot is an exception in a slot), and anything
    printed on stderr, by this process or the training process it starts, fails it."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    capfd = request.getfixturevalue("capfd")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield
    err = capfd.readouterr().err
    stray = stray_stderr(err)
    sys.stderr.write(err)  # still shown in the report
    assert not stray, "the test printed on stderr:\n" + "\n".join(stray[:20])


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
    from margin_explorer.app.launch import configure_pyqtgraph
    from margin_explorer.app.main_window import MainWindow

    configure_pyqtgraph()
    win = MainWindow(settings=settings)
    win.confirm = lambda *_args: True  # dialogs would block an offscreen test
    win.ask_steps = lambda _title, _text, default: default  # likewise Continue's steps dialog
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.close()
    assert not win.controller.has_process, "the worker process outlived the window"
    assert not win.redraw_timer.isActive()
