"""The claims panel: beside a run made from a preset, each claim from the literature and
whether the run so far supports it, with the number behind the verdict."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from .palette import ink

COLOURS = {True: "good", False: "bad", None: "pending"}  # ink roles (widgets/palette.py)
MARKS = {True: "✔", False: "✘", None: "…"}
SETTLED = "–"  # None for good: the claim does not apply, or the finished run cannot judge it


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
        self._shown = (title, verdicts)
        if not verdicts:
            self.label.setText("<i>Run a preset (Presets menu) to see its claims checked here.</i>")
            return
        rows = [f"<b>{html.escape(title)}</b>"] if title else []
        for v in verdicts:
            colour = ink(COLOURS[v.supported])
            symbol = SETTLED if v.supported is None and getattr(v, "settled", False) else MARKS[v.supported]
            rows.append(f"<p><span style='color:{colour}; font-weight:bold'>{symbol} {v.mark}</span> "
                        f"{html.escape(v.statement)}<br><span style='color:{ink('muted')}'>{html.escape(v.detail)}"
                        "</span></p>")
        self.label.setText("".join(rows))

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours: the verdicts drawn again."""
        self.show_verdicts(*self._shown)

    @property
    def text(self) -> str:
        return self.label.text()
