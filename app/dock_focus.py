"""View > Enlarge decision boundary: one dock takes the room of the docks beside it (the boundary
was small, also in presentation mode), and gives it back as they were."""

from __future__ import annotations


class DockFocus:
    """Hide the docks that share ``key``'s dock area while it is enlarged; restore them after."""

    def __init__(self, window, docks: dict):
        self.window = window
        self.docks = docks
        self.saved: dict | None = None  # dock key -> visible, while a dock is enlarged

    def toggle(self, key: str, on: bool) -> None:
        dock = self.docks[key]
        if on and self.saved is None:
            area = self.window.dockWidgetArea(dock)
            self.saved = {k: d.isVisible() for k, d in self.docks.items()
                          if k != key and self.window.dockWidgetArea(d) == area}
            for k in self.saved:
                self.docks[k].hide()
            dock.show()
            dock.raise_()
        elif not on and self.saved is not None:
            for k, visible in self.saved.items():
                self.docks[k].setVisible(visible)
            self.saved = None
