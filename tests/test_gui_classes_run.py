"""Running C classes from the window (issue 20): the architecture builder gives the network one
output per class when a C-class dataset is loaded or drawn (and says so when the widths do not
fit), and a C-class run trains and colours its classes' regions."""

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from margin_explorer.core.network import evaluation_network
from tests.test_gui_dataset import click


def _load_digits(window, classes):
    editor = window.dataset_editor
    editor.sources.setCurrentIndex(1)
    editor.builtin.set_name("digits")
    editor.builtin_classes.set_name(classes)
    editor.load_builtin()
    QApplication.processEvents()


def _last_width(window):
    return window.builder.spec_dict()["blocks"][-1]["width"]


def test_digits_with_ten_classes_get_ten_outputs_and_two_classes_one(window):
    assert _last_width(window) == 1  # the demo: a binary network
    _load_digits(window, "all")
    assert window.dataset_editor.model.dataset().classes == 10
    assert _last_width(window) == 10 and window.builder.output_problem() is None
    assert window.problem() is None and window.controls.run_button.isEnabled()
    # back to two classes: one output again; undo in the builder brings the ten back
    _load_digits(window, "odd_even")
    assert _last_width(window) == 1 and window.problem() is None
    window.builder.undo_stack.undo()
    assert _last_width(window) == 10
    assert window.builder.output_problem() == ("Architecture: the network has 10 outputs but the dataset has two "
                                               "classes (-1/+1): make the last dense layer 1 wide")


def test_a_network_that_does_not_end_in_a_dense_layer_is_not_changed_but_explained(window):
    spec = {"input_dim": 64, "blocks": [{"type": "dense", "width": 3, "bias": False},
                                        {"type": "activation", "kind": "relu"}]}
    window.builder.set_spec(spec)
    _load_digits(window, "all")
    assert window.builder.spec_dict()["blocks"] == spec["blocks"]
    assert window.builder.problem() == ("Architecture: the network has 3 outputs but the dataset has 10 classes: "
                                        "make the last dense layer 10 wide (one output per class)")


def test_draw_three_classes_with_keys_one_to_three_and_run_the_boundary_view_colours_three_regions(window, qtbot):
    editor = window.dataset_editor
    canvas = editor.canvas
    editor.model.remove(range(editor.model.n))
    canvas.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    QApplication.processEvents()
    canvas.setFocus()
    rng = np.random.default_rng(0)
    centres = 2.0 * np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad([90.0, 210.0, 330.0])])
    for key, centre in zip((Qt.Key_1, Qt.Key_2, Qt.Key_3), centres):
        qtbot.keyClick(canvas, key)
        for x, y in centre + 0.3 * rng.uniform(-1, 1, size=(6, 2)):
            click(canvas, x, y)
    model = editor.model
    assert model.n == 18 and sorted(set(model.y.tolist())) == [0.0, 1.0, 2.0]
    assert _last_width(window) == 3  # one output per class, without the user asking
    window.controls.steps.setValue(500)
    # the demo's step size 1 overshoots on these three clusters (log L 4.2 -> 1.1 -> 4.0 -> 9.2 -> ...,
    # the numpy and autograd engines alike); 0.5 separates them
    window.controls.lr.set_value(0.5)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.status.ended, timeout=120000)
    qtbot.waitUntil(lambda: window.boundary.regions is not None, timeout=20000)
    view = window.boundary
    assert set(np.unique(view.regions)) == {0, 1, 2}
    # the regions are the argmax of the run's network at its final parameters on the view's grid
    session = window.session
    values, rect, _q_min = view._shown["set_grid"]
    n = values.shape[0]
    gx, gy = np.meshgrid(rect[0] + rect[2] * np.arange(n) / (n - 1), rect[1] + rect[3] * np.arange(n) / (n - 1))
    outputs = evaluation_network(session.config.architecture).outputs(session.params,
                                                                      np.column_stack([gx.ravel(), gy.ravel()]))
    top2 = np.sort(outputs, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0] > 1e-6 * np.abs(outputs).max()).reshape(n, n)
    assert np.array_equal(view.regions[clear], np.argmax(outputs, axis=1).reshape(n, n)[clear])
    # and each drawn point lies in its own class's region once the run separates them
    assert session.last("accuracy") == 1.0
