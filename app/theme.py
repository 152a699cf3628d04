"""Light and dark themes and presentation mode's larger type and lines, for the whole window:
the Qt palette and every pyqtgraph view."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QWidget

from margin_explorer.widgets.palette import set_ink

THEMES = {"light": {"background": "w", "foreground": "#222"},
          "dark": {"background": "#111", "foreground": "#ddd"}}
DARK_DISABLED = "#7a7a7a"  # disabled text and buttons: they looked enabled in the dark palette


def _dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in [(QPalette.Window, "#2b2b2b"), (QPalette.WindowText, "#e6e6e6"), (QPalette.Base, "#1e1e1e"),
                         (QPalette.AlternateBase, "#2b2b2b"), (QPalette.Text, "#e6e6e6"), (QPalette.Button, "#3a3a3a"),
                         (QPalette.ButtonText, "#e6e6e6"), (QPalette.Highlight, "#0072B2"),
                         (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, "#333333"),
                         (QPalette.ToolTipText, "#e6e6e6")]:
        p.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor(DARK_DISABLED))
    p.setColor(QPalette.PlaceholderText, QColor("#9a9a9a"))
    return p


def apply_theme(window, theme: str, base_font: QFont, font_scale: float = 1.0) -> None:
    """Colour the window and its plots; scale the application font. Widgets with a ``restyle``
    method take the theme's text colours (widgets/palette.py ink) and the scale there."""
    set_ink(theme)
    app = QApplication.instance()
    colours = THEMES[theme]
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if theme == "dark" else app.style().standardPalette())
    font = QFont(base_font)
    if font.pointSizeF() > 0:
        font.setPointSizeF(base_font.pointSizeF() * font_scale)
    app.setFont(font)
    pg.setConfigOptions(background=colours["background"], foreground=colours["foreground"])
    style_views(window, theme, font_scale)
    for widget in window.findChildren(QLabel):
        if widget.styleSheet():  # a style sheet keeps the font it was polished with: the badge stayed large
            widget.setFont(font)
    for combo in window.findChildren(QComboBox):
        # a combo box measured in presentation mode's type kept that width afterwards (the Dataset
        # panel stayed 50 px wider); its own font re-measures it. A font change drops only the
        # cached size hint, not the minimum size hint (QComboBox::changeEvent): a style change
        # drops both (the Run panel's loss and optimizer boxes kept the dock 60 px wider)
        combo.setFont(font)
        QApplication.sendEvent(combo, QEvent(QEvent.StyleChange))


def style_views(root, theme: str, font_scale: float = 1.0, line_width: int = 1) -> None:
    """The theme's colours on every pyqtgraph view in ``root`` (itself included): background,
    axes and titles, and ``restyle`` on every widget that has one. Exports use it on their copy of
    a view (app/export.py: print style whatever the screen theme; axes ``line_width`` wide)."""
    colours = THEMES[theme]
    views = ([root] if isinstance(root, pg.GraphicsView) else []) + root.findChildren(pg.GraphicsView)
    for view in views:
        view.setBackground(colours["background"])
    for item in _plot_items(views):
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setPen(pg.mkPen(colours["foreground"], width=line_width))
            axis.setTextPen(colours["foreground"])
            axis.setStyle(tickFont=_scaled(QFont(), font_scale))
        item.titleLabel.setText(item.titleLabel.text, color=colours["foreground"],
                                size=f"{10 * font_scale:.0f}pt")
    for widget in [root] + root.findChildren(QWidget):
        if callable(getattr(widget, "restyle", None)):
            widget.restyle(font_scale)


def _scaled(font: QFont, scale: float) -> QFont:
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * scale)
    return font


def _plot_items(views):
    for view in views:
        scene = view.scene()
        if scene is None:
            continue
        for item in scene.items():
            if isinstance(item, pg.PlotItem):
                yield item
