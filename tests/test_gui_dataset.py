"""The dataset editor driven by simulated mouse and keyboard events."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from margin_explorer.core import datasets
from tests.helpers import drag as drag_pixels
from tests.helpers import mouse, shown
from margin_explorer.widgets.dataset_editor import DatasetEditor


@pytest.fixture
def editor(qtbot):
    w = shown(qtbot, DatasetEditor(), 500, 700)
    w.model.reset(datasets.Dataset([[0.0, 0.0], [1.0, 1.0]], [1, -1]))
    w.canvas.setRange(xRange=(-2, 2), yRange=(-2, 2), padding=0)
    qtbot.waitExposed(w)
    QApplication.processEvents()
    return w


def _pixel(canvas, x, y) -> QPoint:
    scene = canvas.plotItem.vb.mapViewToScene(QPointF(x, y))
    return canvas.mapFromScene(scene)


def click(canvas, x, y, button=Qt.LeftButton, modifiers=Qt.NoModifier):
    pos = _pixel(canvas, x, y)
    mouse(canvas, QEvent.MouseButtonPress, pos, button, button, modifiers)
    mouse(canvas, QEvent.MouseButtonRelease, pos, button, Qt.NoButton, modifiers)
    QApplication.processEvents()


def drag(canvas, start, end, steps=8):
    drag_pixels(canvas, _pixel(canvas, *start), _pixel(canvas, *end), steps)


def test_clicks_add_points_of_each_class_and_undo_restores(editor):
    model, canvas = editor.model, editor.canvas
    click(canvas, 0.5, -1.0)
    click(canvas, -1.0, 1.0, Qt.RightButton)
    click(canvas, -1.5, -1.5, Qt.LeftButton, Qt.ShiftModifier)
    assert model.n == 5
    assert list(model.y[2:]) == [1.0, -1.0, -1.0]
    np.testing.assert_allclose(model.X[2], [0.5, -1.0], atol=0.05)
    model.undo_stack.undo()
    model.undo_stack.undo()
    model.undo_stack.undo()
    assert model.n == 2
    model.undo_stack.redo()
    assert model.n == 3 and model.y[2] == 1.0


def test_dragging_a_point_moves_it_in_one_undo_step(editor):
    model, canvas = editor.model, editor.canvas
    drag(canvas, (1.0, 1.0), (-1.0, 1.5))
    np.testing.assert_allclose(model.X[1], [-1.0, 1.5], atol=0.05)
    assert model.n == 2
    model.undo_stack.undo()
    np.testing.assert_allclose(model.X[1], [1.0, 1.0])


def test_ctrl_click_removes_and_rubber_band_selects_then_delete(editor, qtbot):
    model, canvas = editor.model, editor.canvas
    click(canvas, 0.0, 0.0, Qt.LeftButton, Qt.ControlModifier)
    assert model.n == 1 and model.y[0] == -1.0
    model.undo_stack.undo()
    for x in (-1.5, -1.2, -0.9):
        click(canvas, x, -1.5)
    assert model.n == 5
    drag(canvas, (-1.8, -1.8), (-0.6, -1.2))  # a rectangle around the three new points
    assert sorted(canvas.selection.tolist()) == [2, 3, 4]
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_F)
    assert list(model.y[2:]) == [-1.0, -1.0, -1.0]
    qtbot.keyClick(canvas, Qt.Key_Delete)
    assert model.n == 2
    model.undo_stack.undo()
    assert model.n == 5


def test_facts_follow_the_data_and_bad_data_are_explained(editor, qtbot):
    editor.model.reset(datasets.linearly_separable(40, 2, 0.3, seed=0))
    assert editor.facts.text().startswith("<b>40</b> points")  # counts at once, the linear program after a pause
    qtbot.waitUntil(lambda: "SVM margin" in editor.facts.text(), timeout=5000)
    assert "linearly separable" in editor.facts.text()
    for _ in range(5):  # a burst of edits (a drag) runs the linear program once, after the last
        editor.model.reset(datasets.xor(40, seed=0))
    assert "separable" not in editor.facts.text()
    qtbot.waitUntil(lambda: "not linearly separable" in editor.facts.text(), timeout=5000)
    editor.model.remove(np.flatnonzero(editor.model.y < 0))
    assert editor.problem() is not None and "only one class" in editor.problem()


def test_generator_import_export(editor, tmp_path):
    editor.kind.set_name("moons")
    editor.n.setValue(60)
    editor.generate()
    assert editor.model.n == 60
    path = str(tmp_path / "moons.csv")
    assert editor.export_file(path)
    editor.model.undo_stack.undo()
    assert editor.model.n == 2
    assert editor.import_file(path)
    assert editor.model.n == 60
    messages = []
    editor.error.connect(messages.append)
    (tmp_path / "bad.csv").write_text("x1,x2,label\n0,0,7\n1,1,1\n")
    assert not editor.import_file(str(tmp_path / "bad.csv"))
    assert "class 0 has no sample (the labels are 1, 7)" in messages[-1] and editor.model.n == 60


def test_high_dimensional_data_are_projected_read_only(editor):
    editor.model.reset(datasets.nearly_orthogonal(20, 300, seed=0))
    assert not editor.model.editable
    click(editor.canvas, 0.0, 0.0)
    assert editor.model.n == 20
    assert "PCA projection" in editor.canvas.projection_note.toPlainText()


def test_the_panel_says_what_a_model_without_bias_cannot_separate_before_a_run(editor, qtbot):
    from margin_explorer.core.datasets import Dataset

    # +1 far out along two rays, -1 closer in along the same rays: a threshold with a bias separates
    # them; through the origin nothing does, and each ray holds opposite labels
    rng = np.random.default_rng(3)
    angles = np.concatenate([rng.normal(0.0, 0.01, 10), rng.normal(2.0, 0.01, 10)])
    radii = np.tile(np.r_[np.full(5, 3.0), np.full(5, 1.0)], 2)
    X = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    y = np.tile(np.r_[np.ones(5), -np.ones(5)], 2)
    editor.model.reset(Dataset(X, y, "rays"))
    qtbot.waitUntil(lambda: "SVM margin" in editor.facts.text() or "not linearly" in editor.facts.text(), timeout=5000)
    text = editor.facts.text()
    assert "not separable through the origin" in text, text
    # the oracle: opposite-label pairs within 3 degrees, counted here
    U = X / np.linalg.norm(X, axis=1)[:, None]
    close = np.degrees(np.arccos(np.clip(U[y > 0] @ U[y < 0].T, -1, 1))) <= 3.0
    assert close.sum() > 0
    assert f"{close.sum()} opposite-label pairs within 3° of one ray" in text, text
    # data separable through the origin: said so, and no ray warning
    editor.model.reset(datasets.linearly_separable(40, 2, 0.3, seed=0))
    qtbot.waitUntil(lambda: "SVM margin" in editor.facts.text(), timeout=5000)
    assert "separable through the origin too" in editor.facts.text()
    assert "opposite-label" not in editor.facts.text()


def test_import_errors_all_name_the_file_then_the_reason(editor, tmp_path):
    messages = []
    editor.error.connect(messages.append)
    cases = {"bad-number.csv": "x1,x2,label\n1,2,1\n3,bad,0\n", "bad-label.csv": "1,2,3\n", "empty.csv": "",
             "broken.npz": "not a zip"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    for name in [*cases, "missing.csv"]:
        assert not editor.import_file(str(tmp_path / name))
    assert [m.split(": ")[0] for m in messages] == [f"Could not import {n}" for n in [*cases, "missing.csv"]]
    assert not any(str(tmp_path) in m for m in messages)  # the name, not the whole path
    assert "'bad' is not a number" in messages[0] and "labels 0..3: class 0 has no sample" in messages[1]
