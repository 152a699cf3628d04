"""The window's message line: on screen, as tall as its text, gone when dismissed, and never
left as an empty strip by a restored layout."""

import pytest
from PySide6.QtCore import QPoint, Qt

from margin_explorer.app.main_window import MainWindow
from margin_explorer.core.presets import load_preset


def _on_screen(window, widget) -> bool:
    """The widget is what the window shows at its centre: laid out, inside the window, on top."""
    centre = widget.mapTo(window, widget.rect().center())
    return window.rect().contains(centre) and window.childAt(centre) is widget


def test_an_error_is_shown_on_screen_and_dismissed(window, qtbot):
    dataset_dock = window.docks["dataset"]
    top_without = dataset_dock.mapTo(window, QPoint(0, 0)).y()
    window.show_error("Dataset: the file has no rows")
    qtbot.waitUntil(lambda: _on_screen(window, window.banner.label), timeout=3000)
    assert window.banner.label.height() >= window.banner.label.fontMetrics().height()
    assert dataset_dock.mapTo(window, QPoint(0, 0)).y() > top_without  # the docks make room for it
    qtbot.mouseClick(window.banner.close_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dataset_dock.mapTo(window, QPoint(0, 0)).y() == top_without, timeout=3000)
    assert window.banner.text == "" and not window.banner.isVisible()


def test_a_preset_description_shows_whole_at_its_height(window, qtbot):
    window.resize(1000, 900)
    window.load_preset("orthogonal-leaky-relu")
    label = window.banner.label
    qtbot.waitUntil(lambda: _on_screen(window, label), timeout=3000)
    assert load_preset("orthogonal-leaky-relu").description in window.banner.text
    needed = label.heightForWidth(label.width())
    assert needed <= label.height() <= needed + 2 * label.fontMetrics().height()  # all of it, no tall box
    lines = needed // label.fontMetrics().lineSpacing()
    window.resize(1400, 900)  # wider: fewer lines, and the banner shrinks to them
    qtbot.waitUntil(lambda: label.heightForWidth(label.width()) // label.fontMetrics().lineSpacing() < lines,
                    timeout=3000)
    qtbot.waitUntil(lambda: label.height() <= label.heightForWidth(label.width()) + 2 * label.fontMetrics().height(),
                    timeout=3000)


def test_a_layout_saved_with_a_message_does_not_restore_an_empty_strip(qtbot, settings, no_leaks):
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.show()
    first.show_error("Training: something to say at close")
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    second.show()
    assert second.banner.text == "" and not second.banner.isVisible()
    second.close()


def test_presentation_mode_enlarges_the_message_too(window, qtbot):
    window.show_error("Training: read from the back of the room")
    size = window.banner.label.font().pointSizeF()
    window.toggle_presentation(True)
    assert window.banner.label.font().pointSizeF() == pytest.approx(1.6 * size, rel=0.05)
    qtbot.waitUntil(lambda: window.banner.label.height() >= window.banner.label.fontMetrics().height(), timeout=3000)
    window.toggle_presentation(False)
    assert window.banner.label.font().pointSizeF() == pytest.approx(size, rel=0.05)


def test_the_message_line_takes_the_dark_theme(window, qtbot):
    """It stayed a pale box with dark text in the dark theme; dialogs take the dark palette."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication, QMessageBox

    window.show_error("Dataset: the file has no rows")
    window.set_theme("dark")
    qtbot.wait(50)
    image = window.banner.body.grab().toImage()
    background = QColor(image.pixel(3, 3))
    assert background.lightness() < 100, background.name()
    box = QMessageBox(window)
    assert box.palette().color(box.backgroundRole()).lightness() < 100  # dialogs: the dark palette
    window.set_theme("light")
    qtbot.wait(50)
    assert QColor(window.banner.body.grab().toImage().pixel(3, 3)).lightness() > 200
    assert QApplication.instance() is not None
