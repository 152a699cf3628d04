"""What the window keeps between sessions (QSettings): geometry, dock layout, visible plots,
axes, theme, presentation mode and the last config."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QTimer

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.widgets.trajectory_plots import X_AXES

from .theme import THEMES


class WindowSettings:
    """Saved and restored settings (a part of MainWindow)."""

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("visible_plots", json.dumps(self.plots.visible))
        s.setValue("log_x", bool(self.log_x_action.isChecked()))
        try:
            s.setValue("last_config", self.current_config().to_json())
        except MarginExplorerError:
            pass
        s.sync()

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        restored = isinstance(geometry, QByteArray) and not geometry.isEmpty() and self.restoreGeometry(geometry)
        if not (restored and self._fits_screen()):
            self._fit_screen()
        state = s.value("window_state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
            self.banner.sync()
        try:
            visible = json.loads(str(s.value("visible_plots", "")))
        except (json.JSONDecodeError, TypeError):
            visible = None
        if isinstance(visible, list) and visible:
            for key, action in self.plot_actions.items():
                action.setChecked(key in visible)
            self.plots.set_visible_plots(visible)
        if str(s.value("log_x", "false")).lower() == "true":
            self.log_x_action.setChecked(True)
            self.plots.set_log_x(True)
        mode = str(s.value("x_axis", "step"))
        if mode in X_AXES and mode != "step":
            self.set_x_axis(mode)
        theme = str(s.value("theme", "light"))
        if theme in THEMES and theme != "light":
            self.set_theme(theme)
        if str(s.value("presentation", "false")).lower() == "true":
            QTimer.singleShot(0, lambda: self.toggle_presentation(True))
