"""Drawing C classes in the Dataset panel (keys 1-9 and the Draw picker), their colours, and
image data shown as a grid of samples (widgets/image_grid.py)."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from margin_explorer.core import builtin_data, datasets
from margin_explorer.widgets.dataset_editor import CLASS_SYMBOLS, DatasetEditor
from margin_explorer.widgets.palette import class_color
from tests.helpers import shown
from tests.test_gui_dataset import click


@pytest.fixture
def editor(qtbot):
    w = shown(qtbot, DatasetEditor(), 500, 800)
    w.model.reset(datasets.Dataset([[0.0, 0.0], [1.0, 1.0]], [1, -1]))
    w.canvas.setRange(xRange=(-2, 2), yRange=(-2, 2), padding=0)
    qtbot.waitExposed(w)
    QApplication.processEvents()
    return w


def test_keys_one_to_three_and_clicks_draw_three_classes(editor, qtbot):
    model, canvas = editor.model, editor.canvas
    canvas.setFocus()
    for key, (x, y) in zip((Qt.Key_1, Qt.Key_2, Qt.Key_3), [(-1.5, -1.5), (1.5, -1.5), (0.0, 1.5)]):
        qtbot.keyClick(canvas, key)
        click(canvas, x, y)
    click(canvas, 0.5, 1.5, Qt.RightButton)  # in class mode a right click draws the picked class too
    # the +1 / -1 points became classes 1 / 0; the clicks added classes 0, 1, 2, 2
    assert model.multiclass and model.y.tolist() == [1, 0, 0, 1, 2, 2]
    np.testing.assert_allclose(model.X[4], [0.0, 1.5], atol=0.05)
    assert editor.class_picker.currentIndex() == 3  # "class 2 (key 3)"
    ds = model.dataset()
    assert ds.classes == 3 and ds.y.tolist() == [1, 0, 0, 1, 2, 2]
    # each class its own colour and symbol
    brushes = [b.color().name() for b in canvas.scatter.data["brush"]]
    assert brushes == [class_color(int(k)).lower() for k in model.y] and len(set(brushes)) == 3
    assert list(canvas.scatter.data["symbol"]) == [CLASS_SYMBOLS[int(k)] for k in model.y]
    assert "1 of class 2" not in editor.facts.text() and "2 of class 2" in editor.facts.text()
    # F gives the selection the picked class
    canvas.set_selection([0])
    qtbot.keyClick(canvas, Qt.Key_F)
    assert model.y[0] == 2
    # undo walks back to the two -1/+1 points
    for _ in range(6):
        model.undo_stack.undo()
    assert not model.multiclass and model.y.tolist() == [1, -1]
    assert canvas.current_class is None and editor.class_picker.currentIndex() == 0  # the picker follows
    click(canvas, 1.5, 1.5)
    assert model.y.tolist() == [1, -1, 1]


def test_the_picker_goes_back_to_minus_one_plus_one_only_while_two_classes_are_drawn(editor, qtbot):
    messages = []
    editor.error.connect(messages.append)
    editor.class_picker.setCurrentIndex(2)
    editor.class_picker.activated.emit(2)  # "class 1 (key 2)"
    assert editor.model.multiclass and editor.canvas.current_class == 1
    click(editor.canvas, 1.5, 1.5)
    editor.class_picker.activated.emit(0)
    assert not editor.model.multiclass and editor.model.y.tolist() == [1, -1, 1] and not messages
    editor.canvas.set_current_class(2)
    click(editor.canvas, -1.5, 1.5)
    editor.class_picker.setCurrentIndex(0)
    editor.class_picker.activated.emit(0)
    assert editor.model.multiclass and editor.class_picker.currentIndex() == 3
    assert messages == ["the points hold classes past 1: they cannot be drawn as -1/+1 (remove those first)"]


def test_a_generated_three_class_dataset_is_shown_in_three_colours(editor):
    editor.kind.set_name("class_blobs")
    editor.generate()
    assert editor.model.multiclass and editor.model.dataset().classes == 3
    assert editor.canvas.current_class == 0 and editor.class_picker.currentIndex() == 1  # clicks draw classes now
    click(editor.canvas, 0.1, 0.1)
    assert editor.model.y[-1] == 0
    assert len({b.color().name() for b in editor.canvas.scatter.data["brush"]}) == 3
    editor.update_facts()  # what the facts timer does after an edit
    assert "separable" not in editor.facts.text()  # the binary facts are not claimed for three classes
    assert editor.problem() is None  # three classes train (tests/test_gui_classes_run.py)


def test_digits_show_as_a_grid_of_images(editor):
    digits = builtin_data.load_builtin("digits", standardize=False)
    editor.load(digits)
    QApplication.processEvents()
    grid = editor.images
    assert grid.isVisible() and grid.tiles == 32 and len(grid.captions) == 32
    assert [c.textItem.toPlainText() for c in grid.captions[:5]] == [str(int(v)) for v in digits.y[:5]]
    # tile k of the mosaic is sample k, ink on paper: its largest value black (0), its smallest white (1)
    rows, cols = divmod(9, grid.columns)
    cell_h, cell_w = 8 + 1 + 3, 8 + 1
    tile = grid.mosaic[rows * cell_h:rows * cell_h + 8, cols * cell_w:cols * cell_w + 8]
    image = digits.X[9].reshape(8, 8)
    np.testing.assert_allclose(tile, (image.max() - image) / (image.max() - image.min()), atol=1e-6)
    editor.load(datasets.moons(20, seed=1))
    QApplication.processEvents()
    assert not grid.isVisible()


def test_the_real_data_box_loads_digits_with_all_ten_classes_and_a_test_set(editor):
    editor.builtin.set_name("digits")
    editor.builtin_classes.set_name("all")
    editor.load_builtin()
    QApplication.processEvents()
    ds = editor.model.dataset()
    assert ds.classes == 10 and ds.X.shape == (1438, 64) and ds.n_test == 359 and ds.image_shape == (8, 8)
    editor.update_facts()
    assert editor.images.isVisible() and "143 of class 7" in editor.facts.text()
    # each class's colour only on its swatch: the counts are in the theme's ink, which reads on its
    # background (class 7's wine #882255 as text on the dark theme did not)
    import re

    from margin_explorer.widgets.dataset_editor import SWATCH
    from margin_explorer.widgets.palette import class_color

    text = editor.facts.text()
    coloured = re.findall(r"<span style='color:([^']+)'>([^<]*)</span>", text)
    assert [c for c, _ in coloured] == [class_color(k) for k in range(10)]
    assert all(words == SWATCH for _, words in coloured)
    editor.builtin.set_name("iris")
    editor.builtin_classes.set_name("first_two")
    editor.builtin_subsample.setValue(500)
    messages = []
    editor.error.connect(messages.append)
    editor.load_builtin()
    assert messages == ["subsample: 500 is more than the 80 training samples of iris with these classes and test_fraction"]
    editor.builtin_subsample.setValue(0)
    editor.load_builtin()
    assert editor.model.dataset().classes == 2 and not editor.model.multiclass and not editor.images.isVisible()
    editor.model.undo_stack.undo()
    assert editor.model.dataset().classes == 10


def test_the_generator_box_draws_a_test_set(editor):
    editor.kind.set_name("moons")
    editor.n.setValue(30)
    editor.n_test.setValue(12)
    editor.generate()
    ds = editor.model.dataset()
    want = datasets.moons(30, seed=0, n_test=12)
    assert np.array_equal(ds.X, want.X) and np.array_equal(ds.X_test, want.X_test) and ds.n_test == 12
    assert "n_test" not in editor.extra.text()


def test_the_ten_digit_classes_have_ten_colours_and_none_is_the_boundaries_black():
    colours = [class_color(k).lower() for k in range(10)]
    assert len(set(colours)) == 10 and "#000000" not in colours
