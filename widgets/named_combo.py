"""A drop-down that shows words and keeps names: "Lyu and Li" on screen, ``lyu_li`` in the config."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox


class NamedCombo(QComboBox):
    def __init__(self, items, parent=None):
        """``items``: names, or (name, words) pairs; a bare name is shown with spaces for underscores."""
        super().__init__(parent)
        for item in items:
            name, words = item if isinstance(item, tuple) else (item, item.replace("_", " "))
            self.addItem(words, name)

    def name(self) -> str:
        return str(self.currentData())

    def set_name(self, name: str) -> None:
        index = self.findData(name)
        if index >= 0:
            self.setCurrentIndex(index)
