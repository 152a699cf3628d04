"""Presentation mode's rule for a dock whose view has nothing to show (the decision boundary of
data beyond 2-D, which took a third of a 1280 x 720 screen to say so): the dock gives its room to
the others while presenting, and takes it back when its view has a picture again or presentation
mode ends."""

from __future__ import annotations

from PySide6.QtCore import QObject


class GiveWayWhenBlank(QObject):
    """Hide ``dock`` while active and ``view.blank``; show it again when either ends. ``view``
    says when it changes with a ``blankChanged(bool)`` signal (widgets/boundary_view.py)."""

    def __init__(self, dock, view):
        super().__init__(dock)
        self.dock, self.view = dock, view
        self.active = False
        self.hidden_here = False  # hidden by this rule, not by the user: ours to show again
        view.blankChanged.connect(self._update)

    def set_active(self, on: bool) -> None:
        self.active = bool(on)
        self._update()

    def _update(self, *_args) -> None:
        give_way = self.active and self.view.blank
        if give_way and not self.dock.isHidden():
            self.dock.hide()
            self.hidden_here = True
        elif not give_way and self.hidden_here:
            self.dock.show()
            self.hidden_here = False
