"""The decision-boundary view for C classes (issue 20): each class's region in its colour (the
argmax of the C outputs), the boundaries where the top two outputs tie, and the margin level sets
f_k - max_(j != k) f_j = q_min. Hand-made parameters of 3-output networks on a 2-D grid; the
oracle is a plain numpy forward and argmax, not the view's code."""

import numpy as np
import pytest

from margin_explorer.app.worker import boundary_grid
from margin_explorer.widgets.boundary_view import BoundaryView
from margin_explorer.widgets.palette import class_color

ANGLES = np.deg2rad([90.0, 210.0, 330.0])
LINEAR = {"W": np.column_stack([np.cos(ANGLES), np.sin(ANGLES)])}  # three sectors of 120 degrees
TWIST = np.deg2rad(50.0)
ROTATE = np.array([[np.cos(TWIST), -np.sin(TWIST)], [np.sin(TWIST), np.cos(TWIST)]])
# each class's direction as a hidden unit, and the direction turned by 50 degrees: curved-looking regions
RELU = {"W1": np.vstack([LINEAR["W"], LINEAR["W"] @ ROTATE.T]), "W2": np.hstack([2.0 * np.eye(3), 0.8 * np.eye(3)])}


def forward(params, X):
    if "W" in params:
        return X @ params["W"].T
    return np.maximum(X @ params["W1"].T, 0.0) @ params["W2"].T


class HandMade:
    """A network of hand-made parameters with evaluation_network's face: outputs (m, 3)."""

    def __init__(self, params):
        self.params = params

    def outputs(self, theta, X):
        return forward(self.params, X)


def _rgb(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.mark.parametrize("params", [LINEAR, RELU], ids=["linear", "relu"])
def test_three_class_regions_boundaries_and_margin_level_sets(qtbot, params):
    X = np.vstack([1.5 * LINEAR["W"], 2.0 * LINEAR["W"] @ np.array([[0.96, -0.28], [0.28, 0.96]])])
    y = np.argmax(forward(params, X), axis=1).astype(float)
    assert set(y) == {0.0, 1.0, 2.0}
    q = np.sort(forward(params, X), axis=1)
    q_min = float(np.min(q[:, -1] - q[:, -2]))
    grid = boundary_grid(HandMade(params), np.zeros(1), X, resolution=80)
    assert grid.values.shape == (80, 80, 3)
    view = BoundaryView()
    qtbot.addWidget(view)
    view.set_points(X, y)
    view.set_grid(grid.values, grid.rect, q_min)
    # the oracle: outputs at the grid's nodes in float64, argmax
    x0, y0, w, h = grid.rect
    gx, gy = np.meshgrid(x0 + w * np.arange(80) / 79, y0 + h * np.arange(80) / 79)
    f = forward(params, np.column_stack([gx.ravel(), gy.ravel()])).reshape(80, 80, 3)
    want = np.argmax(f, axis=2)
    top2 = np.sort(f, axis=2)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 1e-6 * np.abs(f).max()  # nodes that are no float32 tie
    assert set(np.unique(want)) == {0, 1, 2}
    assert np.array_equal(view.regions[clear], want[clear])
    # the pixels: each node in its class's colour mixed with white
    rgba = view.regions_image.image
    assert rgba.shape == (80, 80, 4) and view.regions_image.isVisible() and not view.image.isVisible()
    ink = 255.0 - rgba[..., :3].astype(float)
    directions = np.array([255.0 - _rgb(class_color(k)) for k in range(3)])
    cosine = (ink @ directions.T) / (np.linalg.norm(ink, axis=2)[..., None] * np.linalg.norm(directions, axis=1))
    assert np.array_equal(np.argmax(cosine, axis=2)[clear], want[clear])
    assert np.all(cosine.max(axis=2) > 0.999)
    # the boundaries: where the top two outputs tie (within one cell's change of the outputs)
    cell = np.hypot(w, h) / 79
    slope = max(np.abs(np.diff(f, axis=a)).max() for a in (0, 1)) / (min(w, h) / 79)
    bx, by = view.zero.getData()
    assert len(bx) > 20
    fb = np.sort(forward(params, np.column_stack([bx, by])), axis=1)
    assert np.all(fb[:, -1] - fb[:, -2] <= 2 * slope * cell)
    # the margin level sets: class k leads the others by q_min on its dashed curve, inside its region
    drawn = 0
    for k, curve in enumerate(view.class_margins[:3]):
        mx_, my_ = curve.getData()
        if mx_ is None or not len(mx_):
            continue
        drawn += 1
        assert curve.isVisible() and curve.opts["pen"].color().name().lower() == class_color(k).lower()
        fk = forward(params, np.column_stack([mx_, my_]))
        lead = fk[:, k] - np.delete(fk, k, axis=1).max(axis=1)
        assert np.all(np.abs(lead - q_min) <= 2 * slope * cell)
    assert drawn == 3
    # the points in their class colours
    brushes = [b.color().name().lower() for b in view.points.data["brush"]]
    assert brushes == [class_color(int(k)).lower() for k in y]


def test_a_binary_grid_draws_as_before_after_a_class_grid(qtbot):
    view = BoundaryView()
    qtbot.addWidget(view)
    xs = np.linspace(-1, 1, 40)
    view.set_grid(np.zeros((40, 40, 3), dtype=np.float32) + np.arange(3), (-1, -1, 2, 2), 0.5)
    values = np.add.outer(xs, xs).astype(np.float32)  # f(x, y) = x + y
    view.set_grid(values, (-1, -1, 2, 2), 0.5)
    assert view.image.isVisible() and not view.regions_image.isVisible() and view.regions is None
    assert view.colour_bar.isVisible() and view.plus.isVisible() and view.minus.isVisible()
    assert not any(curve.isVisible() for curve in view.class_margins)
    px, py = view.plus.getData()
    assert len(px) and np.allclose(px + py, 0.5, atol=1e-6)


def test_points_are_coloured_as_classes_or_as_minus_and_plus_one(qtbot):
    from margin_explorer.widgets.palette import NEGATIVE, POSITIVE

    view = BoundaryView()
    qtbot.addWidget(view)
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])

    def brushes():
        return [b.color().name().lower() for b in view.points.data["brush"]]

    view.set_points(X, np.array([1.0, 1.0, 1.0]))  # the first clicks: +1, not class 1
    assert brushes() == [POSITIVE.lower()] * 3
    view.set_points(X, np.array([1.0, -1.0, 1.0]))
    assert brushes() == [POSITIVE.lower(), NEGATIVE.lower(), POSITIVE.lower()]
    view.set_points(X, np.array([0.0, 1.0, 2.0]))
    assert brushes() == [class_color(k).lower() for k in range(3)]
    view.set_points(X, np.array([1.0, 1.0, 1.0]), classes=True)  # the panel says they are class 1
    assert brushes() == [class_color(1).lower()] * 3
