"""Final metrics of every run side by side, to 4 digits (a cell's tooltip has all of them); Copy
puts them on the clipboard to 6 digits as tab-separated text (pastes into a spreadsheet or a
paper's table)."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from margin_explorer.core.metrics import DEFINITIONS

ROWS = [("step", "steps"), ("log_loss", "log L"), ("accuracy", "accuracy"), ("normalized_margin", "γ"),
        ("smoothed_margin", "γ̃"), ("param_norm", "‖θ‖"), ("alignment_gap", "1 − cos(θ, −∇L)"),
        ("angle_to_reference", "angle to max-margin (rad)"), ("support_vectors", "support vectors"),
        ("wall_time", "training time (s)")]


def _text(value, digits: int = 6) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(value):
        return "-"
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:.{digits}g}"


MAX_COLUMN = 110  # pixels: three runs beside each other in the default dock
SHOWN_DIGITS = 4  # on screen: narrow enough for three runs beside each other in the dock
COPIED = Qt.UserRole  # each cell keeps the 6-digit text that Copy puts on the clipboard


class CompareTable(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(len(ROWS), 0)
        self.table.setObjectName("compare-table")
        self.table.setVerticalHeaderLabels([label for _name, label in ROWS])
        for row, (name, _label) in enumerate(ROWS):
            header = self.table.verticalHeaderItem(row)
            header.setToolTip(DEFINITIONS.get(name, ""))
        copy = QPushButton("Copy table")
        copy.setToolTip("Copy as tab-separated text (Ctrl+C in the table copies it too)")
        copy.clicked.connect(self.copy)
        QShortcut(QKeySequence.Copy, self.table, activated=self.copy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(copy)

    def set_runs(self, runs: list) -> None:
        """``runs``: (name, session) pairs; each session's last record fills a column."""
        self.table.setColumnCount(len(runs))
        self.table.setHorizontalHeaderLabels([name for name, _session in runs])
        for col, (name, _session) in enumerate(runs):
            self.table.horizontalHeaderItem(col).setToolTip(name)
        for col, (_name, session) in enumerate(runs):
            for row, (metric, _label) in enumerate(ROWS):
                value = session.last(metric)
                item = QTableWidgetItem(_text(value, SHOWN_DIGITS))
                item.setData(COPIED, _text(value))
                item.setToolTip(_text(value, 17))  # every digit the run file holds
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        # a long run name made one column as wide as the dock: the numbers set the width, the
        # header elides the name (its tooltip has it whole)
        for col in range(len(runs)):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), MAX_COLUMN))

    def as_text(self) -> str:
        header = ["metric"] + [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())]
        lines = ["\t".join(header)]
        for row, (_name, label) in enumerate(ROWS):
            cells = [self.table.item(row, c).data(COPIED) if self.table.item(row, c) else "" for c in
                     range(self.table.columnCount())]
            lines.append("\t".join([label] + cells))
        return "\n".join(lines)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.as_text())
