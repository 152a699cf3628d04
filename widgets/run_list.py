"""The run list: every run on the plots with its colour, a show/hide box, an editable name,
its status and steps; and the actions on the selected run."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from .palette import color, ink


def _swatch(hex_color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(hex_color))
    return QIcon(pixmap)


class RunList(QWidget):
    visibilityChanged = Signal(int, bool)
    renamed = Signal(int, str)
    removeRequested = Signal(int)
    useSetupRequested = Signal(int)
    continueRequested = Signal(int)
    currentChanged = Signal(int)

    COLUMNS = ["run", "status", "steps"]

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("run-list")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("Tick a run to show it on the plots; double-click its name to rename it")
        self.table.itemChanged.connect(self._item_changed)
        self.table.currentCellChanged.connect(lambda row, *_: self.currentChanged.emit(row))
        self._updating = False
        self.empty_hint = QLabel("No runs yet. Press Run (Space), or open saved runs: File > Open runs (Ctrl+O), "
                                 "or drop .h5 files on the window.")
        self.empty_hint.setObjectName("run-list-empty")
        self.empty_hint.setWordWrap(True)
        self.restyle()
        self.buttons: list[QPushButton] = []
        buttons = QHBoxLayout()
        for text, signal, tip in [
            ("Remove", self.removeRequested, "Remove the run from the list (the file stays)"),
            ("Use this setup", self.useSetupRequested, "Put the run's dataset, network and settings in the editors"),
            ("Continue…", self.continueRequested, "Train on from the run's last snapshot into a new run"),
        ]:
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=signal: self.current_row() >= 0 and s.emit(self.current_row()))
            buttons.addWidget(button)
            self.buttons.append(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self._show_empty(True)

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours (widgets/palette.py ink)."""
        self.empty_hint.setStyleSheet(f"color: {ink('pending')}; padding: 6px;")

    def _show_empty(self, empty: bool) -> None:
        """With no run: say how to get one, and nothing to act on."""
        self.empty_hint.setVisible(empty)
        for button in self.buttons:
            button.setEnabled(not empty)

    def current_row(self) -> int:
        return self.table.currentRow()

    def set_runs(self, runs: list) -> None:
        """``runs``: objects with name, visible, colour_index, status and step. Rows are updated in
        place: replacing the items while a click on one is being handled deleted it under Qt."""
        self._updating = True
        current = self.table.currentRow()
        self.table.setRowCount(len(runs))
        for row, run in enumerate(runs):
            name = self.table.item(row, 0)
            if name is None:
                name = QTableWidgetItem()
                name.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsEditable | Qt.ItemIsUserCheckable)
                self.table.setItem(row, 0, name)
            if name.data(Qt.UserRole) != run.colour_index:
                name.setIcon(_swatch(color(run.colour_index)))
                name.setData(Qt.UserRole, run.colour_index)
            if name.text() != run.name:
                name.setText(run.name)
            state = Qt.Checked if run.visible else Qt.Unchecked
            if name.checkState() != state:
                name.setCheckState(state)
            name.setToolTip(run.path or "not saved")
            for col, text in ((1, run.status), (2, f"{run.step:,}")):
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
                    self.table.setItem(row, col, item)
                if item.text() != text:
                    item.setText(text)
        if runs and self.table.currentRow() != min(max(current, 0), len(runs) - 1):
            self.table.setCurrentCell(min(max(current, 0), len(runs) - 1), 0)
        self.table.resizeColumnsToContents()
        self._show_empty(not runs)
        self._updating = False

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 0:
            return
        # read everything first: a slot below may rebuild the list
        row, visible, text = item.row(), item.checkState() == Qt.Checked, item.text()
        self.visibilityChanged.emit(row, visible)
        self.renamed.emit(row, text)
