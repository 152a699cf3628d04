"""The window's message line: errors, warnings and a preset's description, never a dialog."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication, QHBoxLayout, QLabel, QPushButton, QToolBar, QWidget

from .palette import ink



class _WrappedLine(QLabel):
    """A word-wrapped label as tall as its text needs at the window's width: QLabel's own hint
    wraps at a narrow width, and a tool bar takes hints as they are (no height for width), so
    a three-line message stood in a box five times its height."""

    def sizeHint(self) -> QSize:
        width = max(200, self.window().width() - 60)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:
        return QSize(100, self.sizeHint().height())


class MessageBanner(QToolBar):
    """A dismissable line across the top of the window, shown only while it holds a message.

    It is a tool bar itself, shown and hidden whole: a widget put into a QToolBar cannot be
    shown or hidden by QWidget.show() (Qt's documented caveat): the banner used to be such a
    widget and never appeared, though it reported itself visible."""

    def __init__(self, parent=None):
        super().__init__("Messages", parent)
        self.setObjectName("toolbar-messages")  # the name the window's saved state knows it by
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)  # not a tool bar the user picks from a menu
        body = QWidget()
        self.label = _WrappedLine()
        self.label.setObjectName("message-banner")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.close_button = close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(body)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.addWidget(self.label, stretch=1)
        layout.addWidget(close, alignment=Qt.AlignTop)
        self.addWidget(body)
        self.body = body
        self.setVisible(False)

    def show_message(self, text: str, kind: str = "error", topic: str = "") -> None:
        """``topic`` names the message's cause (e.g. "homogeneity", "preset"), so that the window
        can take it back once the cause is gone (``drop``)."""
        self.kind = "error" if kind == "error" else "info"
        self.body.setStyleSheet(ink(f"banner_{self.kind}"))  # the theme's own (widgets/palette.py)
        self.label.setText(text)
        self.topic = topic
        self.setVisible(True)

    def drop(self, *topics: str) -> None:
        """Clear the message if its topic is one of ``topics``."""
        if self.label.text() and getattr(self, "topic", "") in topics:
            self.clear()

    def restyle(self, _font_scale: float) -> None:
        """The application's type size (presentation mode): a widget with a style sheet keeps
        the font it was polished with, so the banner's line stayed small on a projector. And the
        theme's colours: a pale box in the dark theme glared."""
        self.body.setStyleSheet(ink(f"banner_{getattr(self, 'kind', 'info')}"))
        for widget in (self.label, self.close_button):
            widget.setFont(QApplication.font())
        self.label.updateGeometry()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.label.updateGeometry()  # the window's width changed: so does the text's height

    def clear(self) -> None:
        self.label.setText("")
        self.topic = ""
        self.setVisible(False)

    def sync(self) -> None:
        """Shown exactly while it holds a message: after the window restores a saved layout,
        which remembers tool bars' visibility, not their messages."""
        self.setVisible(bool(self.label.text()))

    @property
    def text(self) -> str:
        return self.label.text()
