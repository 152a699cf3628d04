"""The window's menu bar: Edit (undo per editor), Run, View (plots, axes, zoom, full screen,
presentation, theme, docks), Presets and Help; the File menu is app/file_actions.py's. Every
action is also added to the window, so its shortcut works with the menu bar hidden."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.presets import load_preset, preset_names
from margin_explorer.widgets.trajectory_plots import PLOTS, X_AXES

from . import help_menu
from .dock_focus import DockFocus
from .sweep_actions import SweepActions
from .theme import THEMES


class MenuActions:
    """The menus and their actions (a part of MainWindow)."""

    def add_action(self, menu, text, slot, shortcut=None, tip="", checkable=False):
        """A menu action that is also the window's, so its shortcut works with the menu bar hidden
        (the File, Sweep and Help menus, app/file_actions.py and others, add theirs through it)."""
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work with the menu bar hidden (presentation, full screen)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.files.build(file_menu)
        self.sweeps = SweepActions(self, file_menu)  # File > Open sweep, the Sweep dock (app/sweep_actions.py)

        edit_menu = bar.addMenu("&Edit")
        # each editor keeps its own history; Undo acts on the one whose tab is in front
        self.undo_group = QUndoGroup(self)
        stacks = {"dataset": self.dataset_editor.model.undo_stack, "architecture": self.builder.undo_stack}
        for key, stack in stacks.items():
            self.undo_group.addStack(stack)
            self.docks[key].visibilityChanged.connect(
                lambda shown, s=stack: shown and self.undo_group.setActiveStack(s))
        self.undo_group.setActiveStack(self.dataset_editor.model.undo_stack)
        undo = self.undo_group.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence("Ctrl+Z"))
        redo = self.undo_group.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (undo, redo):
            edit_menu.addAction(a)
            self.addAction(a)
        self.undo_action, self.redo_action = undo, redo

        run_menu = bar.addMenu("&Run")
        self.run_action = self.add_action(run_menu, "Run / Pause", self.toggle_run, "Space", "Start, pause or resume")
        self.add_action(run_menu, "Step", lambda: self.step(self.controls.step_size.value()), "S", "Take k steps")
        self.add_action(run_menu, "Stop", self.stop, tip="End the run")
        self.add_action(run_menu, "Reset", self.reset, "R", "Back to the initialization")

        view_menu = bar.addMenu("&View")
        self.plot_actions = {}
        for spec in PLOTS:
            action = self.add_action(view_menu, spec.title, self._plots_chosen, tip=f"Show the {spec.title} plot",
                                  checkable=True)
            action.setChecked(spec.key in self.plots.visible)
            self.plot_actions[spec.key] = action
        view_menu.addSeparator()
        self.log_x_action = self.add_action(view_menu, "Log step axis", lambda on: self.plots.set_log_x(on), "Ctrl+L",
                                         "Logarithmic step axis", checkable=True)
        self.add_action(view_menu, "Reset zoom", lambda: (self.plots.reset_zoom(), self.boundary.autoRange()), "Ctrl+0",
                     "Every plot and the decision boundary back to their data (right-click a plot: log or linear y)")
        self.dock_focus = DockFocus(self, self.docks)
        self.boundary_focus_action = self.add_action(
            view_menu, "Enlarge decision boundary", lambda on: self.dock_focus.toggle("boundary", on), "Ctrl+B",
            "The decision boundary takes the room of the plots and the Run panel (again: back)", checkable=True)
        axis_menu = view_menu.addMenu("Horizontal axis")
        self.x_axis_group = QActionGroup(self)
        self.x_axis_actions = {}
        for mode, label in X_AXES.items():
            action = self.add_action(axis_menu, label, lambda _=False, m=mode: self.set_x_axis(m), checkable=True,
                                  tip="Runs with different step sizes compare best at equal loss (-log L)")
            self.x_axis_group.addAction(action)
            self.x_axis_actions[mode] = action
        self.x_axis_actions["step"].setChecked(True)
        self.fullscreen_action = self.add_action(view_menu, "Full screen", self.toggle_full_screen, "F11", checkable=True)
        self.presentation_action = self.add_action(view_menu, "Presentation mode", self.toggle_presentation, "F5",
                                                "Large type and lines, editors hidden, full screen: for talks",
                                                checkable=True)
        theme_menu = view_menu.addMenu("Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for theme in THEMES:
            action = self.add_action(theme_menu, theme.capitalize(), lambda _=False, t=theme: self.set_theme(t),
                                  checkable=True, tip="Light suits projectors")
            self.theme_group.addAction(action)
            self.theme_actions[theme] = action
        self.theme_actions["light"].setChecked(True)
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())

        preset_menu = bar.addMenu("&Presets")
        for name in preset_names():
            try:
                title = load_preset(name).name or name
            except MarginExplorerError:
                continue
            self.add_action(preset_menu, title, lambda _=False, n=name: self.load_preset(n), tip=name)

        self.help_actions = help_menu.build(self, bar.addMenu("&Help"))

    def set_x_axis_scale(self, scale: str) -> None:
        """``log`` or ``linear`` steps (View > Log step axis); a preset opens on its own."""
        on = scale == "log"
        self.log_x_action.setChecked(on)
        self.plots.set_log_x(on)

    def apply_view(self, config) -> None:
        """A config's first view (core/config.py ViewConfig): its step axis, and the plots of the
        grid where it names them (checked in the View menu, as if chosen there)."""
        view = config.view
        self.set_x_axis_scale(view.x_axis if view is not None else "log")
        wanted = list(view.plots) if view is not None else []
        unknown = [k for k in wanted if k not in self.plot_actions]
        if unknown:
            self.show_error(f"view.plots: unknown plot {unknown[0]!r} (choose from {', '.join(self.plot_actions)})")
        if len(unknown) < len(wanted):
            if self.plots.presenting:  # the desk's plots; the presenter's own choice stays, and stays saved
                self.plots.visible = [k for k in self.plot_actions if k in wanted]
                return
            for key, action in self.plot_actions.items():
                action.setChecked(key in wanted)
            self._plots_chosen()

    def set_x_axis(self, mode: str) -> None:
        self.plots.set_x_axis(mode)
        self.x_axis_actions[mode].setChecked(True)
        self.settings.setValue("x_axis", mode)

    def _plots_chosen(self) -> None:
        self.plots.set_visible_plots([k for k, a in self.plot_actions.items() if a.isChecked()])
