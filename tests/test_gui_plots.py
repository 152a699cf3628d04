"""The trajectory plots on screen: legends that move off the curves (widgets/legend.py: the grid
of cells a curve's lines cross, the place with the fewest, a legend dragged with a real mouse),
tick labels that keep apart on a short axis in large type, and the hover readout."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF

from tests.helpers import drag, shown
from margin_explorer.widgets.legend import GRID, PLACES, better, cells_under, occupied_cells

COLUMNS, ROWS = GRID


def test_a_line_marks_the_cells_it_crosses_not_only_its_points():
    # two points, one at each end of the top row: a KKT-like curve with few snapshots
    grid = occupied_cells([(np.array([0.0, 1.0]), np.array([0.99, 0.99]))], ((0, 1), (0, 1)))
    assert grid[0].all() and grid[1:].sum() == 0
    # a steep segment crosses every row of the column it falls in
    grid = occupied_cells([(np.array([0.5, 0.5]), np.array([0.0, 1.0]))], ((0, 1), (0, 1)))
    assert grid[:, COLUMNS // 2].sum() >= ROWS - 1 and grid.sum() == grid[:, COLUMNS // 2].sum()


def test_a_gap_in_a_curve_is_not_drawn_and_points_outside_the_view_are_nowhere():
    x = np.array([0.0, 0.2, 0.8, 1.0])
    y = np.array([0.1, 0.1, np.nan, 0.1])  # the NaN breaks the line: 0.2 .. 1.0 is not drawn
    grid = occupied_cells([(x, y)], ((0, 1), (0, 1)))
    bottom = grid[int(0.9 * ROWS)]
    assert bottom[: int(0.2 * COLUMNS)].all() and not bottom[int(0.3 * COLUMNS): int(0.95 * COLUMNS)].any()
    assert bottom[-1]  # the last point, alone and on the right edge, is in the last cell
    assert not occupied_cells([(np.array([2.0, 3.0]), np.array([5.0, 6.0]))], ((0, 1), (0, 1))).any()


def test_each_place_counts_the_cells_under_a_legend_of_that_size():
    grid = np.zeros((ROWS, COLUMNS), dtype=bool)
    grid[0, :] = True  # a curve along the top
    counts = cells_under(grid, (0.25, 0.25))
    wide = int(np.ceil(0.25 * COLUMNS))
    expected = [wide if fy == 0 else 0 for _fx, fy in PLACES]
    assert counts == expected


def test_the_legend_moves_only_to_a_clearly_emptier_place():
    options = [(20, 1, 0), (12, 1, 1), (9, 1, 2), (0, 2, 4)]
    assert better(options, (None, 1, 0)) == (0, 2, 4)  # none covered: a row of entries beats a column
    # fewer but not half: stay, so that a live curve near the edge does not make it jump
    assert better([(20, 1, 0), (12, 1, 1)], (None, 1, 0)) == (20, 1, 0)  # (cells it covers, columns, place)
    assert better([(4, 1, 0), (2, 1, 1)], (None, 1, 0)) == (4, 1, 0)  # half, but only 2 cells fewer
    assert better([(3, 1, 0), (3, 1, 1)], (None, 1, 1)) == (3, 1, 1)  # a tie keeps the current place
    # but a place where the legend covers nothing beats any place where it covers something
    assert better([(2, 1, 0), (0, 1, 1)], (None, 1, 0)) == (0, 1, 1)


@pytest.fixture
def plots(qtbot):
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    return shown(qtbot, TrajectoryPlots(), 900, 900)


def _session(margin, log_loss):
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset

    config = load_preset("relu2-blobs")
    session = RunSession(config, config.dataset.build())
    steps = np.arange(len(margin), dtype=np.int64)
    session.lead.append({"step": steps, "normalized_margin": margin, "smoothed_margin": margin - 0.01,
                    "log_loss": log_loss, "param_norm": 1.0 + steps})
    return session


def _covered_points(plot) -> int:
    """How many drawn points of the plot's curves lie under its legend, on screen."""
    legend_rect = plot.legend.sceneBoundingRect()
    covered = 0
    for curve in plot.curves.values():
        x, y = curve.getData()
        for xi, yi in zip(x, y):
            if np.isfinite(yi) and legend_rect.contains(plot.item.vb.mapViewToScene(QPointF(xi, yi))):
                covered += 1
    return covered


def test_legends_leave_the_climbing_margin_alone_and_stay_top_right_above_a_falling_loss(plots, qtbot):
    steps = np.arange(3000)
    margin = 0.2 - 0.2 * np.exp(-steps / 300.0)  # climbs to the top and stays along it, like γ
    plots.set_sources([(_session(margin, -steps * 0.5), "run")])
    qtbot.wait(50)
    plots.refresh(force=True)
    margin_plot, loss_plot = plots.plots["margin"], plots.plots["loss"]
    assert margin_plot.legend.isVisible() and len(margin_plot.legend.items) == 2
    # the fixed top-right legend covered the curves' newest records: not any more
    assert PLACES[margin_plot.legend.where][1] != 0
    assert _covered_points(margin_plot) == 0
    assert loss_plot.legend.where == 0 and _covered_points(loss_plot) == 0  # log L falls away from the top right


def test_a_legend_dragged_by_the_user_stays_where_they_put_it(plots, qtbot):
    steps = np.arange(3000)
    plots.set_sources([(_session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5), "run")])
    plots.refresh(force=True)
    legend = plots.plots["loss"].legend
    view = plots.view
    centre = view.mapFromScene(legend.sceneBoundingRect().center())
    before = legend.pos()
    drag(view, centre, centre + QPoint(-120, 40))
    assert legend.pinned
    moved = legend.pos()
    assert (moved - before).manhattanLength() > 50
    # a log L climbing into the top right would move a legend that was not pinned (see above)
    climbing = 0.2 - 0.2 * np.exp(-steps / 300.0)
    plots.set_sources([(_session(climbing, climbing), "run")])
    plots.refresh(force=True)
    assert legend.where == 0 and legend.pos() == moved
    # a double click lets it go: at once it finds the room the climbing curve leaves
    from PySide6.QtCore import QEvent, Qt

    from tests.helpers import mouse

    at = view.mapFromScene(legend.sceneBoundingRect().center())
    for kind in (QEvent.MouseButtonPress, QEvent.MouseButtonRelease, QEvent.MouseButtonDblClick,
                 QEvent.MouseButtonRelease):
        mouse(view, kind, at, Qt.LeftButton, Qt.NoButton if kind == QEvent.MouseButtonRelease else Qt.LeftButton)
    assert not legend.pinned and legend.pos() != moved and _covered_points(plots.plots["loss"]) == 0


def test_a_short_axis_with_large_type_spaces_its_labels_apart(qtbot):
    import pyqtgraph as pg
    from PySide6.QtGui import QFont, QFontMetrics

    from margin_explorer.widgets.trajectory_plots import SparseLogAxis

    plain, ours = pg.AxisItem("left"), SparseLogAxis("left")
    # ordinary type and height: pyqtgraph's spacing, untouched
    assert ours.tickSpacing(0.8, 1.85, 110) == plain.tickSpacing(0.8, 1.85, 110)
    big = QFont()
    big.setPointSizeF(big.pointSizeF() * 1.6)  # presentation mode
    ours.setStyle(tickFont=big)
    plain_major = plain.tickSpacing(0.8, 1.85, 70)[0][0]
    major = ours.tickSpacing(0.8, 1.85, 70)[0][0]
    assert major > plain_major and major in (0.5, 1.0)
    assert 70 * major / 1.05 >= QFontMetrics(big).height()  # one label's height between two labels at least
    assert ours.tickSpacing(0.8, 1.85, 70)[1][0] < major  # the minor ticks stay
    # a horizontal axis is left alone: label widths, not heights, decide there
    wide = SparseLogAxis("bottom")
    wide.setStyle(tickFont=big)
    assert wide.tickSpacing(0, 8000, 300) == pg.AxisItem("bottom").tickSpacing(0, 8000, 300)


def _hover(plots, qtbot, step: float) -> int:
    """Move the mouse over the margin plot at ``step``, as a user would; the step it reads."""
    from PySide6.QtCore import QEvent, Qt

    from tests.helpers import mouse

    plots.refresh(force=True)
    hovered = []
    plots.hoveredStep.connect(hovered.append)
    at = plots.view.mapFromScene(plots.plots["margin"].item.vb.mapViewToScene(QPointF(step, 0.1)))
    mouse(plots.view, QEvent.MouseMove, at, Qt.NoButton, Qt.NoButton)
    qtbot.waitUntil(lambda: bool(hovered))  # the mouse proxy is rate-limited
    return int(round(hovered[-1]))


def test_hovering_reads_each_plots_values_at_the_nearest_record(plots, qtbot):
    steps = np.arange(3000)
    session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    plots.set_sources([(session, "run")])
    margin = plots.plots["margin"]
    step = _hover(plots, qtbot, 1500.2)
    assert abs(step - 1500) < 90  # a few pixels of a 3,000-step axis
    expected = session.get("normalized_margin")[step]
    assert margin.readout.toPlainText().startswith(f"step {step}  γ {expected:.5g}")
    assert margin.cross.isVisible() and plots.plots["loss"].cross.isVisible()
    assert f"log L {-0.5 * step:.5g}" in plots.plots["loss"].readout.toPlainText()
    assert plots.plots["ensemble"].readout.toPlainText() == ""  # nothing there but a step: no readout
    plots.leaveEvent(None)
    assert margin.readout.toPlainText() == "" and not margin.cross.isVisible()


def test_hovering_over_several_runs_reads_each_of_them(plots, qtbot):
    steps = np.arange(3000)
    fast = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    slow = _session(0.1 - 0.1 * np.exp(-steps[:2000] / 900.0), -steps[:2000] * 0.1)  # a shorter run
    plots.set_sources([(fast, "fast"), (slow, "slow")])
    step = _hover(plots, qtbot, 2500.0)
    lines = plots.plots["margin"].readout.toPlainText().splitlines()
    assert lines[0] == f"fast, step {step}:  γ {fast.get('normalized_margin')[step]:.5g}  γ̃ {fast.get('smoothed_margin')[step]:.5g}"
    # the shorter run: its record nearest the line, its last
    assert lines[1].startswith(f"slow, step 1999:  γ {slow.get('normalized_margin')[1999]:.5g}")
    # many runs: the first few, and how many more
    plots.set_sources([(fast, f"run {k}") for k in range(7)])
    _hover(plots, qtbot, 2500.0)
    lines = plots.plots["margin"].readout.toPlainText().splitlines()
    assert len(lines) == 5 and lines[0].startswith("run 0, step") and lines[-1] == "… and 3 more runs"


def test_a_bands_fill_is_occupied_not_only_its_edges():
    x = np.linspace(0.0, 1.0, 50)
    grid = occupied_cells([], ((0, 1), (0, 1)), bands=[(x, np.full(50, 0.2), np.full(50, 0.8))])
    filled = grid[int(0.3 * ROWS): int(0.7 * ROWS)]
    assert filled.all()  # between the quartiles, across the whole width
    assert not grid[: int(0.15 * ROWS)].any() and not grid[int(0.85 * ROWS):].any()
    # a legend over the band covers it; one above it does not
    counts = cells_under(grid, (0.3, 0.1))
    assert counts[PLACES.index((1, 0.5))] > 0 and counts[PLACES.index((1, 0))] == 0


def test_a_curve_inside_the_empty_plots_default_range_still_gets_headroom(plots):
    steps = np.arange(3000)
    session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    fading = 0.3 * np.exp(-steps / 200.0)  # an ensemble's shallow member fades, the deep one takes over
    session.lead.append({"ensemble_share": np.column_stack([fading, 1 - fading])})
    plots.set_sources([(session, "run")])
    plots.refresh(force=True)
    (_x0, _x1), (y0, y1) = plots.plots["ensemble"].item.vb.viewRange()
    # pyqtgraph's empty plot shows [0, 1]: the shares lie inside it, and the one near 1 ran along the clipped edge
    assert y1 > 1.1 and y0 < -0.1


def test_several_runs_layers_differ_by_line_style_and_the_legend_names_each_run_once(plots):
    from PySide6.QtCore import Qt

    steps = np.arange(500)
    sessions = []
    for scale in (1.0, 2.0):
        session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
        session.lead.append({"stable_rank": np.column_stack([1 + scale * np.exp(-steps / 50.0), np.ones(500)])})
        session.info["layer_names"] = ["0.weight", "2.weight"]
        sessions.append(session)
    plots.set_sources([(sessions[0], "small"), (sessions[1], "large")])
    plots.refresh(force=True)
    rank = plots.plots["stable_rank"]
    # the runs by colour in the run key above the plots, and a key in grey in the legend: which
    # line style is which layer (it was only in a tooltip)
    assert "small" in plots.run_key.text and "large" in plots.run_key.text
    assert [label.text for _sample, label in rank.legend.items] == ["0.weight", "2.weight"]
    key = [sample.item.opts["pen"] for sample, _label in rank.legend.items]
    assert [pen.style() for pen in key] == [Qt.SolidLine, Qt.DashLine]
    run_colours = {rank.curves[(i, 0)].opts["pen"].color().name() for i in (0, 1)}
    assert not {pen.color().name() for pen in key} & run_colours
    first, second = rank.curves[(0, 0)].opts["pen"], rank.curves[(0, 1)].opts["pen"]
    assert first.color() == second.color() and (first.style(), second.style()) == (Qt.SolidLine, Qt.DashLine)
    assert rank.curves[(1, 0)].opts["pen"].color() != first.color()
    plots.set_sources([(sessions[0], "small")])  # one run: a colour per layer, named by layer
    plots.refresh(force=True)
    assert [label.text for _sample, label in rank.legend.items] == ["0.weight", "2.weight"]


def test_a_kkt_delta_that_turns_negative_is_drawn_as_its_size_and_read_with_its_sign(plots, qtbot):
    # a GELU network's late snapshots: q_min(theta~) < 1 makes delta negative (large-step-gelu
    # goes from 0.41 to -0.79); a log axis that dropped those values ended the curve mid-run
    steps = np.arange(3000)
    session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    snap_steps = [0, 500, 1000, 1500, 2000, 2500]
    deltas = [np.nan, 2.5, 0.4, -0.01, -0.39, -0.79]
    session.lead.append({}, snapshot_steps=snap_steps, snapshot_params=[np.zeros(3)] * 6,
                   snapshot_metrics=[{"kkt_eps": 0.9, "kkt_delta": d, "euler_defect": 0.01} for d in deltas])
    plots.set_sources([(session, "run")])
    plots.refresh(force=True)
    kkt = plots.plots["kkt"]
    x, y = kkt.curves[(0, "kkt_delta")].getData()
    drawn = np.isfinite(y)
    assert list(np.asarray(x)[drawn]) == snap_steps[1:]
    np.testing.assert_allclose(10.0 ** np.asarray(y)[drawn], np.abs(deltas[1:]), rtol=1e-12)  # log mode: log10
    step = _hover(plots, qtbot, 2000.2)
    assert abs(step - 2000) < 90
    assert "KKT δ -0.39" in kkt.readout.toPlainText()
    assert "|KKT δ|" in [label.text for _sample, label in kkt.legend.items]


def test_a_kkt_eps_of_zero_is_drawn_on_a_labeled_floor_not_dropped(plots):
    # a linear model at its SVM direction: eps is 0 to float precision from some snapshot on; the
    # log axis dropped those values and the curve vanished while the legend still listed it
    from margin_explorer.widgets.trajectory_plots import ZERO_FLOOR

    steps = np.arange(3000)
    session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    snap_steps = [0, 500, 1000, 1500, 2000, 2500]
    eps = [np.nan, 0.3, 1e-4, 0.0, 4e-17, 0.0]
    session.lead.append({}, snapshot_steps=snap_steps, snapshot_params=[np.zeros(3)] * 6,
                   snapshot_metrics=[{"kkt_eps": e, "kkt_delta": 0.1, "euler_defect": 0.01} for e in eps])
    plots.set_sources([(session, "run")])
    plots.refresh(force=True)
    kkt = plots.plots["kkt"]
    x, y = kkt.curves[(0, "kkt_eps")].getData()
    drawn = np.isfinite(y)
    assert list(np.asarray(x)[drawn]) == snap_steps[1:]  # the undefined first snapshot stays a gap
    np.testing.assert_allclose(10.0 ** np.asarray(y)[drawn], [0.3, 1e-4, ZERO_FLOOR, ZERO_FLOOR, ZERO_FLOOR],
                               rtol=1e-12)
    assert kkt.floor_line.isVisible() and "0 (below 1e-15)" in kkt.floor_line.label.toPlainText()
    assert 10.0 ** kkt.floor_line.value() == pytest.approx(ZERO_FLOOR)
    session2 = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    session2.lead.append({}, snapshot_steps=snap_steps[:2], snapshot_params=[np.zeros(3)] * 2,
                    snapshot_metrics=[{"kkt_eps": e, "kkt_delta": 0.1, "euler_defect": 0.01} for e in (0.5, 0.2)])
    plots.set_sources([(session2, "run")])
    plots.refresh(force=True)
    assert not kkt.floor_line.isVisible()  # nothing on the floor: no line


def test_a_health_event_is_marked_on_every_plot_at_its_step(plots):
    steps = np.arange(3000)
    session = _session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5)
    session.lead.append({}, events=[{"step": 1200, "kind": "stuck", "message": "stuck at step 1,200: sample #3 ..."}])
    plots.set_sources([(session, "run")])
    plots.refresh(force=True)
    for key in ("loss", "margin", "kkt"):
        lines = plots.plots[key].event_lines
        assert len(lines) == 1 and lines[0].value() == pytest.approx(1200.0), key
        assert lines[0].isVisible() and lines[0].label.toPlainText() == "stuck"
    plots.set_sources([(_session(0.2 - 0.2 * np.exp(-steps / 300.0), -steps * 0.5), "healthy")])
    plots.refresh(force=True)
    assert plots.plots["loss"].event_lines == []


def test_a_loss_based_run_draws_alpha_on_the_loss_plots_right_axis(plots, qtbot):
    """Lyu and Li's adaptive rate: alpha grows x2^(1/5) and falls /2^(1/10) at undone steps; the
    loss plot's right-hand axis shows it, in decades (log10 alpha), and a run without it has none."""
    steps = np.arange(200)
    alpha = 0.1 * 2.0 ** (steps / 5.0)
    session = _session(np.linspace(-0.1, 0.1, 200), -steps * 0.5)
    session.lead.append({"step": np.array([200]), "normalized_margin": np.array([0.1]),
                         "smoothed_margin": np.array([0.09]), "log_loss": np.array([-100.0]),
                         "param_norm": np.array([201.0])})
    plots.set_sources([(session, "plain")])
    qtbot.wait(50)
    plots.refresh(force=True)
    loss_plot = plots.plots["loss"]
    assert loss_plot.companion is None and not loss_plot.item.getAxis("right").isVisible()
    with_alpha = _session(np.linspace(-0.1, 0.1, 200), -steps * 0.5)
    with_alpha.lead.series.clear()
    with_alpha.lead.append({"step": steps, "normalized_margin": np.linspace(-0.1, 0.1, 200),
                            "smoothed_margin": np.linspace(-0.11, 0.09, 200), "log_loss": -steps * 0.5,
                            "param_norm": 1.0 + steps, "step_alpha": alpha})
    plots.set_sources([(with_alpha, "adaptive")])
    qtbot.wait(50)
    plots.refresh(force=True)
    companion = loss_plot.companion
    assert companion is not None and loss_plot.item.getAxis("right").isVisible()
    x, y = companion.curve.getData()
    assert len(x) >= 100 and np.nanmax(y) == pytest.approx(np.log10(alpha[-1])) and np.nanmin(y) == pytest.approx(-1.0)
    low, high = companion.view.viewRange()[1]
    assert low < -1.0 and high > np.log10(alpha[-1])
    assert "α" in loss_plot.item.getAxis("right").labelText
    # the right axis's view box lies over the plot's own, and goes with the plot
    assert companion.view.sceneBoundingRect() == loss_plot.item.vb.sceneBoundingRect()
    assert companion.view.parentItem() is loss_plot.item


def test_lyu_and_lis_margin_plot_is_opt_in_and_draws_each_runs_layer_normalized_margin(plots, qtbot):
    """The plot of q_min / prod_l ||W_l||_F (Lyu and Li's figures' normalization) is off on the
    desk until chosen, and then draws that series of every shown run (their Figure 1 compares two)."""
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset
    from margin_explorer.widgets.plot_specs import OPTIONAL_PLOTS

    assert "margin_layers" in OPTIONAL_PLOTS and "margin_layers" not in plots.plots and "margin" in plots.plots
    config = load_preset("relu2-blobs")
    steps = np.arange(400, dtype=np.int64)
    runs = []
    for k, scale in enumerate((1.0, 5.0)):
        margin = 0.01 * scale * (1 - np.exp(-steps / 50.0))
        session = RunSession(config, config.dataset.build())
        session.lead.append({"step": steps, "normalized_margin": margin, "smoothed_margin": margin - 1e-3,
                             "log_loss": -0.5 * steps, "param_norm": 1.0 + steps,
                             "normalized_margin_layers": 4 * margin})
        runs.append((session, f"run {k}"))
    plots.set_visible_plots(["margin", "margin_layers"])
    plots.set_sources(runs)
    qtbot.wait(50)
    plots.refresh(force=True)
    layer_plot = plots.plots["margin_layers"]
    for k, (session, _label) in enumerate(runs):
        x, y = layer_plot.curves[(k, "normalized_margin_layers")].getData()
        finite = np.isfinite(y)
        assert finite.sum() > 10
        series = session.get("normalized_margin_layers")  # drawn peak-decimated: each point one of its values
        assert np.abs(y[finite][:, None] - series[None, :]).min(axis=1).max() < 1e-12
    assert np.nanmax(layer_plot.curves[(1, "normalized_margin_layers")].getData()[1]) > 0.19  # 4 x 5 x 0.01


def test_the_loss_plot_of_a_loss_based_run_follows_log_l_past_minus_308(plots, qtbot):
    """The companion axis (alpha, log scale) once told the loss plot's own view box it was a log
    axis, which clamps a range to +-308 decades: a loss-based run's log L of -776 ran off the plot."""
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset

    config = load_preset("lyu-li-figure1-loss-based")
    steps = np.arange(0, 25000, 50, dtype=np.int64)
    log_loss = 2.3 - 0.031 * steps  # to -773
    session = RunSession(config, config.dataset.build())
    session.lead.append({"step": steps, "log_loss": log_loss, "step_alpha": 0.1 * np.exp(-steps / 3000.0)})
    plots.set_sources([(session, "loss-based")])
    qtbot.wait(50)
    plots.refresh(force=True)
    loss = plots.plots["loss"]
    assert loss.companion is not None and loss.companion.curve.getData()[1] is not None  # alpha drawn on the right
    low, high = loss.item.vb.viewRange()[1]
    assert low < log_loss.min() and high > log_loss.max(), (low, high)
    assert not loss.item.vb.state["logMode"][1]
