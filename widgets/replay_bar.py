"""The replay bar: a slider over a run's snapshot steps with play/pause; the window moves the
decision boundary, the support vectors and a marker on every plot to the chosen snapshot."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget


class ReplayBar(QWidget):
    snapshotChosen = Signal(int)  # index into the snapshot steps; -1: back to live / latest

    def __init__(self, parent=None):
        super().__init__(parent)
        self.steps: list[int] = []
        self.play_button = QPushButton("▶")
        self.play_button.setFixedWidth(32)
        self.play_button.setToolTip("Play the snapshots in order")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setObjectName("replay-slider")
        self.slider.setToolTip("Replay: move through the run's snapshots (log-spaced steps)")
        self.slider.valueChanged.connect(self._moved)
        self.label = QLabel("no snapshots")
        self.label.setMinimumWidth(110)
        self.timer = QTimer(self)
        self.timer.setInterval(150)
        self.timer.timeout.connect(self._advance)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.play_button)
        layout.addWidget(self.slider, stretch=1)
        layout.addWidget(self.label)
        self.set_steps([])

    def set_steps(self, steps) -> None:
        """Offer these snapshot steps; the slider goes to the last one."""
        self.steps = [int(s) for s in steps]
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(self.steps) - 1, 0))
        self.slider.setValue(max(len(self.steps) - 1, 0))
        self.slider.blockSignals(False)
        self.setEnabled(bool(self.steps))
        self.label.setText(f"step {self.steps[-1]:,}" if self.steps else "no snapshots")

    def _moved(self, index: int) -> None:
        if 0 <= index < len(self.steps):
            self.label.setText(f"step {self.steps[index]:,}")
            self.snapshotChosen.emit(index)

    def _play(self, on: bool) -> None:
        self.play_button.setText("❚❚" if on else "▶")
        if on:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start()
        else:
            self.timer.stop()

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            self.play_button.setChecked(False)
        else:
            self.slider.setValue(self.slider.value() + 1)

    def stop(self) -> None:
        self.play_button.setChecked(False)
