"""Starting the window: the QApplication, the window itself (`main.py`, `open`), and the demo
that runs a preset and saves a screenshot (`main.py demo`)."""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from margin_explorer.core.presets import load_preset

from .scratch_settings import scratch_settings


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background="w", foreground="#222", antialias=False, useOpenGL=False)


def make_application(argv=None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("Margin Explorer")
    app.setOrganizationName("MarginExplorer")
    configure_pyqtgraph()
    return app


def launch(open_paths: list[str] | None = None) -> int:
    from .main_window import MainWindow

    app = make_application()
    window = MainWindow()
    window.show()
    window.controller.warm_up()
    window.detect_devices()
    if open_paths:
        QTimer.singleShot(0, lambda: window.sweeps.open_paths(open_paths))  # sweep folders and run files
    return app.exec()


def demo(preset: str, steps: int, screenshot: str, timeout: float = 300.0, family: str | None = None) -> int:
    """Open the window on a preset (as a family: ``family`` in the command line's form), run
    ``steps`` steps, save a screenshot of the whole window, exit."""
    from .main_window import MainWindow

    app = make_application()
    window = MainWindow(settings=scratch_settings(), load_demo=False)  # a demo neither reads nor changes the user's settings
    config = load_preset(preset)
    if family:
        from margin_explorer.core.config import FamilyConfig

        config.family = FamilyConfig.parse(family)
    window.load_config(config)
    window.apply_view(config)
    window.banner.clear()
    window.show()
    result = {"code": 0}

    def shoot():
        window.plots.refresh(force=True)
        app.processEvents()
        if not window.grab().save(screenshot):
            print(f"error: could not write {screenshot}", file=sys.stderr)
            result["code"] = 1
        window.session = None  # a demo's run is not the user's: close without asking
        window.close()

    if steps <= 0:
        QTimer.singleShot(0, shoot)
    else:
        window.controls.steps.setValue(steps)
        deadline = time.monotonic() + timeout

        def wait_for_end():
            if window.status.ended or time.monotonic() > deadline:
                QTimer.singleShot(300, shoot)  # let the last chunk and boundary arrive
            else:
                QTimer.singleShot(50, wait_for_end)

        QTimer.singleShot(0, lambda: (window.start_run(), wait_for_end()))
    app.exec()
    return result["code"]
