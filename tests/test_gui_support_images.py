"""The support-vector images (issue 20): after a run on image data, the Dataset panel shows the
training samples of the smallest normalized margins at the shown snapshot (the last by default),
smallest first, each captioned with its class and margin. The oracle recomputes the margins from
the saved parameters with a plain numpy forward of the preset's network (64 -> 32 ReLU -> 1, no
biases, 2-homogeneous), not with the app's network or records."""

import numpy as np
import pytest

import margin_explorer as mx
from margin_explorer.core.run_reader import RunReader
from margin_explorer.widgets.dataset_editor import SUPPORT_SAMPLES

STEPS = 300


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("support-images") / "digits.h5"
    mx.train(mx.preset("digits-odd-even-test"), steps=STEPS, out=path)
    return path


def numpy_margins(params, X, y):
    """y_i f(x_i) / ||theta||^2 for f(x) = w2 . relu(W1 x), theta = (W1 row-major, w2)."""
    W1 = params[:32 * 64].reshape(32, 64)
    w2 = params[32 * 64:]
    assert w2.size == 32
    f = np.maximum(X @ W1.T, 0.0) @ w2
    return y * f / np.dot(params, params)


def shown_tiles(window):
    editor = window.dataset_editor
    return editor.shown_indices, editor.images.rows, [c.textItem.toPlainText() for c in editor.images.captions]


def check_grid(window, X, y, margins):
    order = np.argsort(margins, kind="stable")[:SUPPORT_SAMPLES]
    indices, rows, captions = shown_tiles(window)
    assert list(indices) == list(order)
    assert np.array_equal(rows, X[order])
    assert captions == [f"{int(y[i]):+d}\n{margins[i]:.3g}" for i in order]
    assert window.dataset_editor.images.isVisibleTo(window.dataset_editor)


def test_an_opened_digits_run_shows_its_smallest_margins_at_the_last_snapshot(window, digits_run):
    with RunReader(digits_run) as reader:
        X, y, final, steps = reader.dataset.X, reader.dataset.y, reader.final_params, reader.snapshot_steps
        snapshot = reader.snapshot_params(len(steps) // 2)
        middle = int(steps[len(steps) // 2])
    assert window.open_runs([str(digits_run)])
    editor = window.dataset_editor
    assert editor.image_choice.currentIndex() == 1
    assert f"step {STEPS:,}" in editor.image_choice.currentText()
    check_grid(window, X, y, numpy_margins(final, X, y))
    # a snapshot chosen on the replay bar: its own margins
    window.runs.show_snapshot(len(steps) // 2)
    assert f"step {middle:,}" in editor.image_choice.currentText()
    check_grid(window, X, y, numpy_margins(snapshot, X, y))
    # the first samples again on request, and the run's margins back
    editor.image_choice.setCurrentIndex(0)
    editor.image_choice.activated.emit(0)
    assert list(editor.shown_indices) == list(range(32))
    editor.image_choice.setCurrentIndex(1)
    editor.image_choice.activated.emit(1)
    check_grid(window, X, y, numpy_margins(snapshot, X, y))
    # an edit of the points: the run's margins no longer describe them
    editor.model.remove([0])
    assert editor.image_choice.currentIndex() == 0
    assert not editor.image_choice.model().item(1).isEnabled()


def test_a_live_digits_run_shows_its_support_vectors_when_it_ends(window, qtbot, tmp_path):
    window.load_preset("digits-odd-even-test")
    window.controls.steps.setValue(200)
    editor = window.dataset_editor
    assert editor.image_choice.currentIndex() == 0
    window.start_run()
    qtbot.waitUntil(lambda: window.status.ended, timeout=120000)
    qtbot.waitUntil(lambda: editor.image_choice.currentIndex() == 1, timeout=10000)
    session = window.session
    X, y = session.dataset.X, session.dataset.y
    check_grid(window, X, y, numpy_margins(session.params, X, y))
    assert "step 200" in editor.image_choice.currentText()


def test_the_captions_read_on_their_background_in_both_themes(window, digits_run):
    """The grey under the captions follows the theme: a light grey under the dark theme's light
    text made the captions invisible."""
    assert window.open_runs([str(digits_run)])
    grid = window.dataset_editor.images
    for theme in ("dark", "light", "dark"):
        window.set_theme(theme)
        text = grid.captions[0].color
        text_grey = (0.299 * text.redF() + 0.587 * text.greenF() + 0.114 * text.blueF())
        below = grid.mosaic[8 + 1 + 2, 4]  # under the first tile, where its caption is
        assert abs(text_grey - below) > 0.5, (theme, text_grey, below)
        assert grid.image.image[8 + 1 + 2, 4] == below  # the image shown is the mosaic
