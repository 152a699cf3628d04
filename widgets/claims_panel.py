"""The claims panel: beside a run made from a preset, each claim from the literature and
whether the run so far supports it, with the number behind the verdict."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

COLOURS = {True: "#1b7f3b", False: "#b00020", None: "#6b6b6b"}
MARKS = {True: "✔", False: "✘", None: "…"}


class ClaimsPanel(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.label = QLabel()
        self.label.setObjectName("claims-text")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.RichText)
        self.label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(self.label)
        self.setWidget(inner)
        self.show_verdicts("", [])

    def show_verdicts(self, title: str, verdicts: list) -> None:
        """``verdicts``: core.claims.Verdict objects (empty: the run states no claims)."""
        if not verdicts:
            self.label.setText("<i>Run a preset (Presets menu) to see its claims checked here.</i>")
            return
        rows = [f"<b>{html.escape(title)}</b>"] if title else []
        for v in verdicts:
            colour = COLOURS[v.supported]
            rows.append(f"<p><span style='color:{colour}; font-weight:bold'>{MARKS[v.supported]} {v.mark}</span> "
                        f"{html.escape(v.statement)}<br><span style='color:#555'>{html.escape(v.detail)}</span></p>")
        self.label.setText("".join(rows))

    @property
    def text(self) -> str:
        return self.label.text()
