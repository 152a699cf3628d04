"""Small builders shared by the tests."""

from __future__ import annotations

import numpy as np

from margin_explorer.core.architecture import ArchitectureSpec, Dense, mlp
from margin_explorer.core.config import DatasetConfig, LossConfig, OptimizerConfig, RecordingConfig, RunConfig, RunSettings
from margin_explorer.core.datasets import Dataset


def config_for(spec: ArchitectureSpec, dataset: Dataset | None = None, *, steps=1000, lr=0.1, rule="loss_normalized",
               kind="gd", loss="exponential", seed=0, dtype="float64", **recording) -> RunConfig:
    ds = DatasetConfig.inline(dataset) if dataset is not None else DatasetConfig(generator="blobs")
    return RunConfig(spec, dataset=ds, loss=LossConfig(kind=loss),
                     optimizer=OptimizerConfig(kind=kind, lr=lr, step_rule=rule,
                                               batch_size=10 if kind == "sgd" else None),
                     run=RunSettings(steps=steps, seed=seed, dtype=dtype),
                     recording=RecordingConfig(**recording))


def small_run_file(path, steps: int):
    """A small real run file: a width-4 ReLU network on 100 blobs points, ``steps`` steps at lr 0.5."""
    from margin_explorer.core.datasets import gaussian_blobs
    from margin_explorer.core.runner import run_to_file

    run_to_file(config_for(mlp(2, [4]), gaussian_blobs(100, 2, separation=4.0, noise=0.5, seed=0), steps=steps,
                           lr=0.5), path)
    return path


def symmetric(dataset: Dataset) -> Dataset:
    """Add (-x_i, -y_i) for every point: the l2 SVM of symmetric data has zero intercept, so
    scikit-learn's SVC (which always fits one) solves the bias-free problem exactly."""
    return Dataset(np.vstack([dataset.X, -dataset.X]), np.concatenate([dataset.y, -dataset.y]), dataset.name)


def linear_spec(dim=2) -> ArchitectureSpec:
    return ArchitectureSpec(dim, [Dense(1, False)])


__all__ = ["config_for", "symmetric", "linear_spec", "mlp"]


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def start_headless_run(path, preset: str = "relu2-blobs", **popen):
    """`main.py run PRESET --steps 0` writing ``path`` in a child process (stop it with SIGINT)."""
    import subprocess
    import sys

    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", preset, "--out", str(path), "--steps", "0"],
                            cwd=ROOT, **popen)


def open_when_it_has_records(path, timeout: float = 60.0):
    """A RunReader on ``path`` once its writer has flushed records (None after ``timeout``)."""
    import time

    from margin_explorer.core.errors import RunFileError
    from margin_explorer.core.runfile import RunReader

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            reader = RunReader(path)
            if reader.n_records:
                return reader
            reader.close()
        except RunFileError:  # not created yet, or being created
            pass
        time.sleep(0.1)
    return None


def shown(qtbot, widget, width: int, height: int):
    """``widget`` on screen at this size, with pyqtgraph configured as the window does it, and
    closed by qtbot after the test."""
    from margin_explorer.app.launch import configure_pyqtgraph

    configure_pyqtgraph()
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def mouse(view, kind, pos, button, buttons, modifiers=None) -> None:
    """One mouse event at widget pixel ``pos`` of a QGraphicsView (a pyqtgraph plot), sent to its
    viewport as a real mouse would (QTest's mouseMove carries no buttons in Qt 6, and pyqtgraph
    drags on buttons)."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    viewport = view.viewport()
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons,
                        Qt.NoModifier if modifiers is None else modifiers)
    QApplication.sendEvent(viewport, event)


def drag(view, start, end, steps: int = 8) -> None:
    """A left-button drag from widget pixel ``start`` to ``end``: press, moves with the button
    held, release."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication

    mouse(view, QEvent.MouseButtonPress, start, Qt.LeftButton, Qt.LeftButton)
    for i in range(1, steps + 1):
        mouse(view, QEvent.MouseMove, start + (end - start) * (i / steps), Qt.NoButton, Qt.LeftButton)
    mouse(view, QEvent.MouseButtonRelease, end, Qt.LeftButton, Qt.NoButton)
    QApplication.processEvents()


def finite_difference_gradient(net, theta: np.ndarray, X: np.ndarray, weights: np.ndarray, h: float = 1e-6):
    """sum_i weights_i grad f(theta; x_i) by central differences, one coordinate at a time: the
    oracle the networks' backward passes are held to (call it after the backward under test: it
    runs forwards of its own)."""
    numeric = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        numeric[j] = (weights @ net.outputs(theta + e, X) - weights @ net.outputs(theta - e, X)) / (2 * h)
    return numeric
