"""The window on its screen: a size that fits (a 1280x720 projector too), and full screen
entered and left with the dock layout kept."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


class WindowGeometry:
    """Size, screen and full screen (a part of MainWindow)."""

    def _available(self):
        screen = self.screen() or QApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def _fits_screen(self) -> bool:
        """A saved geometry is kept only if the window fits the screen it opens on now."""
        available = self._available()
        return available is None or (self.width() <= available.width() and self.height() <= available.height())

    def _fit_screen(self) -> None:
        """1500x920 where there is room; else the available screen (a 1280x720 projector)."""
        available = self._available()
        if available is None:
            self.resize(1500, 920)
            return
        frame = self.frameGeometry().size() - self.geometry().size()  # the window manager's title and borders
        self.resize(min(1500, available.width() - frame.width()), min(920, available.height() - frame.height()))
        self.move(available.topLeft())

    def _enter_full_screen(self, keep_layout: bool = True) -> None:
        if not self.isFullScreen():
            if keep_layout:  # full screen re-shares the docks' room: remember it as it is
                self._layout_before_full_screen, self._geometry_before_full_screen = self.saveState(), self.geometry()
            self.showFullScreen()
        self.fullscreen_action.setChecked(True)

    def _leave_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
            # restored once the normal size is back (resizeEvent): at the full screen's size the
            # docks' shares came out wrong (the Dataset panel 60% wider, the plots squeezed)
            self._layout_to_restore = self._layout_before_full_screen
            geometry = self._geometry_before_full_screen
            if geometry is not None:  # without a window manager, showNormal alone kept the screen's size
                self.setGeometry(geometry)
            QTimer.singleShot(100, self._restore_layout)  # in case no resize comes (same size)
        self.fullscreen_action.setChecked(False)

    def _restore_layout(self) -> None:
        state = self._layout_to_restore
        if state is not None and not self.isFullScreen():
            self._layout_to_restore = None
            self.restoreState(state)
            self.banner.sync()

    def resizeEvent(self, event):  # noqa: N802
        super().resizeEvent(event)
        self._restore_layout()

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self._leave_full_screen()
        else:
            self._enter_full_screen()
