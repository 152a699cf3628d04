"""Presentation mode (F5, for talks): large type and lines, the editors hidden, full screen;
and the theme."""

from __future__ import annotations

from .theme import apply_theme


class Presentation:
    """Presentation mode and the theme (a part of MainWindow)."""

    def set_theme(self, theme: str) -> None:
        self.theme = theme
        self.theme_actions[theme].setChecked(True)
        apply_theme(self, theme, self._base_font, 1.6 if self.presentation_action.isChecked() else 1.0)
        self.settings.setValue("theme", theme)

    def toggle_presentation(self, on: bool | None = None) -> None:
        """For talks: large type and lines, the editors hidden, full screen."""
        on = self.presentation_action.isChecked() if on is None else on
        self.presentation_action.setChecked(on)
        shown = self.plots.set_presentation(on)  # fewer, larger plots and thick lines
        for key, action in self.plot_actions.items():
            action.setChecked(key in shown)
        editors = ("dataset", "architecture", "runs", "run")
        if on:
            if not self.isFullScreen():  # the layout to come back to, before the editors are hidden
                self._layout_before_full_screen, self._geometry_before_full_screen = self.saveState(), self.geometry()
            self._editor_visibility = {k: self.docks[k].isVisible() for k in editors}
            for k in editors:
                self.docks[k].hide()
            self._enter_full_screen(keep_layout=False)
        else:
            for k in editors:
                self.docks[k].setVisible(self._editor_visibility.get(k, True))
            apply_theme(self, self.theme, self._base_font, 1.0)  # the type first: the
            self._leave_full_screen()  # layout restored on the way back is measured in it
        self.boundary_room.set_active(on)
        if on:
            apply_theme(self, self.theme, self._base_font, 1.6)
        self.settings.setValue("presentation", on)
