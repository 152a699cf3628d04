"""Plots a room can read (widgets/trajectory_plots.py, widgets/legend.py): legends off the curves
and elided, a visible line-style key, readouts inside their plot, log axes that round-off values
do not stretch, direction change per step, per-plot log / linear y, reset zoom, the
steepest-descent margins, translucent bands, the boundary's colour bar and enlarging it."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tests.helpers import shown
from margin_explorer.widgets.legend import elide


def _session(steps, preset="relu2-blobs", **series):
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset

    config = load_preset(preset)
    session = RunSession(config, config.dataset.build())
    steps = np.asarray(steps, dtype=np.int64)
    margin = 0.2 - 0.2 * np.exp(-steps / 300.0)
    base = {"step": steps, "normalized_margin": margin, "smoothed_margin": margin - 0.01,
            "log_loss": -0.5 * steps.astype(float), "param_norm": 1.0 + steps}
    base.update(series)
    session.lead.append(base)
    return session


@pytest.fixture
def plots(qtbot):
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    return shown(qtbot, TrajectoryPlots(), 900, 900)


def _legend_labels(plot):
    return [label.text for _sample, label in plot.legend.items]


def _points_under_legend(plot) -> int:
    """Drawn points (and points along each segment, 20 per segment) under the legend, on screen."""
    rect = plot.legend.sceneBoundingRect()
    vb = plot.item.vb
    covered = 0
    for curve in plot.curves.values():
        x, y = curve.getData()
        if x is None or len(x) < 2:
            continue
        t = np.linspace(0, 1, 20)[:, None]
        xs, ys = (x[:-1] + t * np.diff(x)).ravel(), (y[:-1] + t * np.diff(y)).ravel()
        for xi, yi in zip(xs, ys):
            if np.isfinite(xi) and np.isfinite(yi) and rect.contains(vb.mapViewToScene(QPointF(xi, yi))):
                covered += 1
    return covered


def test_the_angles_legend_does_not_cover_curves_that_fill_every_corner(plots, qtbot):
    # three curves along the top, the bottom and a diagonal: every place a legend can take in the
    # view covers one of them, as in the Angles plot of a network run
    steps = np.arange(3000)
    session = _session(steps, alignment_gap=np.full(3000, 0.5), direction_change=np.full(3000, 1e-6),
                       angle_to_reference=np.logspace(-1, -5, 3000))
    plots.set_sources([(session, "run")])
    qtbot.wait(20)
    plots.refresh(force=True)
    angles = plots.plots["angles"]
    assert len(angles.legend.items) == 3
    assert _points_under_legend(angles) == 0


def test_no_legend_entry_for_a_curve_that_cannot_exist_and_long_run_names_are_elided(plots, qtbot):
    steps = np.arange(500)
    network = _session(steps, alignment_gap=1 / (1.0 + steps), direction_change=1e-3 / (1.0 + steps),
                       angle_to_reference=np.full(500, np.nan))  # a network: no max-margin direction
    plots.set_sources([(network, "run")])
    assert _legend_labels(plots.plots["angles"]) == ["1 − cos(θ, −∇L)", "direction change / step"]
    long_name = "two-layer-relu-network-blobs-lyu-li-with-a-changed-optimizer-run-3"
    plots.set_sources([(network, long_name), (_session(steps), "short")])
    qtbot.wait(20)  # the run key's row is laid out
    # several runs: named once, above the plots, elided (in full in the tooltip), not in every legend
    shown_names = plots.run_key.text
    assert long_name not in shown_names and elide(long_name) in shown_names and "short" in shown_names
    assert long_name in plots.run_key.toolTip()
    assert plots.view.sceneRect().contains(plots.run_key.sceneBoundingRect())
    for plot in plots.plots.values():
        assert not {"short", long_name} & set(_legend_labels(plot))
        # a legend stays inside its plot (a family's legend was cut at the plot's left edge)
        assert plot.item.vb.sceneBoundingRect().contains(plot.legend.sceneBoundingRect())
    assert plots.plots["margin"].legend.items  # the line-style key
    assert "…" in elide(long_name) and len(elide(long_name)) == 24 and elide(long_name).endswith("run-3")


def test_in_short_plots_legends_take_short_labels_and_still_leave_the_curves_alone(plots, qtbot):
    # 1280 x 720: the plots are about 90 pixels high, and the full legends covered half of each
    steps = np.arange(1, 3000)
    sign = _session(steps, "sign-descent-linf", normalized_margin_linf=0.41 - 0.1 / steps,
                    normalized_margin_l1=0.15 - 0.1 / steps, alignment_gap=np.full(2999, 0.5),
                    direction_change=np.full(2999, 1e-6), angle_to_reference=np.logspace(-1, -3, 2999))
    plots.set_sources([(sign, "sign")])
    plots.resize(640, 760)
    qtbot.wait(20)
    plots.refresh(force=True)
    margin, angles = plots.plots["margin"], plots.plots["angles"]
    assert margin.item.vb.height() < 130
    assert _legend_labels(margin) == ["γ", "γ̃", "γ∞", "γ₁"]
    assert _legend_labels(angles) == ["1 − cos", "turn / step", "∠ w*"]
    assert _points_under_legend(margin) == 0 and _points_under_legend(angles) == 0
    assert "γ = q_min / ‖θ‖^M" in margin.legend.toolTip()  # the full labels, on hover
    plots.resize(900, 1400)  # room again: the full labels
    qtbot.wait(20)
    plots.refresh(force=True)
    assert _legend_labels(margin)[0] == "γ = q_min / ‖θ‖^M"


def test_several_runs_show_which_line_style_is_which_quantity(plots):
    from PySide6.QtCore import Qt

    steps = np.arange(500)
    plots.set_sources([(_session(steps), "a"), (_session(steps), "b")])
    margin = plots.plots["margin"]
    assert _legend_labels(margin) == ["γ", "γ̃"]
    assert "a</" not in plots.run_key.text and "&nbsp;a" in plots.run_key.text and "&nbsp;b" in plots.run_key.text
    key = [sample.item.opts["pen"] for sample, _label in margin.legend.items]
    assert [p.style() for p in key] == [Qt.SolidLine, Qt.DashLine]
    assert margin.curves[(0, "smoothed_margin")].opts["pen"].style() == Qt.DashLine


def test_the_hover_readout_stays_inside_its_plot_and_off_the_legend(plots, qtbot):
    steps = np.arange(3000)
    names = ["a-run-with-a-long-name-that-a-lecturer-gave-it-" + k for k in "ab"]
    plots.set_sources([(_session(steps), names[0]), (_session(steps[:2000]), names[1])])
    plots.resize(700, 900)
    qtbot.wait(20)
    plots.refresh(force=True)
    plots.show_crosshair(1500.0)
    for key in ("margin", "loss", "norm"):
        plot = plots.plots[key]
        readout = plot.readout.sceneBoundingRect()
        assert plot.readout.toPlainText()
        assert plot.item.vb.sceneBoundingRect().contains(readout), key
        # off the legend, or where no corner is clear of it, standing in for it while the pointer is there
        assert not plot.legend.isVisible() or not readout.intersects(plot.legend.sceneBoundingRect()), key
    # a window of 1280 x 720: plots about 90 pixels high; three runs. The readout still fits
    # (a line per run in the run's colour, no name; lines past the plot's height left out)
    plots.set_sources([(_session(steps), names[0]), (_session(steps[:2000]), names[1]),
                       (_session(steps[:2500]), "third")])
    plots.resize(640, 760)
    qtbot.wait(20)
    plots.refresh(force=True)
    plots.show_crosshair(1500.0)
    for key, plot in plots.plots.items():
        readout = plot.readout.sceneBoundingRect()
        if plot.readout.toPlainText():
            assert plot.item.vb.sceneBoundingRect().contains(readout), key
    margin = plots.plots["margin"]
    assert margin.legend.compact and names[0][:10] not in margin.readout.toPlainText()
    assert "#0072B2".lower() in margin.readout.textItem.toHtml().lower()
    hidden = [plot for plot in plots.plots.values() if plot.legend_hidden]
    from PySide6.QtCore import QEvent

    plots.leaveEvent(QEvent(QEvent.Leave))
    assert all(plot.legend.isVisible() for plot in hidden)


def test_round_off_values_do_not_stretch_a_log_axis(plots, qtbot):
    # sign descent: direction change ~1e-16 (round-off) over the first records, the angle to the
    # max-margin direction falling to 0.006 rad
    steps = np.arange(2000)
    change = np.where(steps < 5, 1.9e-16, 1e-4)
    session = _session(steps, alignment_gap=np.full(2000, 1e-3), direction_change=change,
                       angle_to_reference=np.linspace(0.5, 0.006, 2000))
    plots.set_sources([(session, "run")])
    qtbot.wait(20)
    plots.refresh(force=True)
    angles = plots.plots["angles"]
    low, high = angles.item.vb.viewRange()[1]
    assert low > -6  # log10: the range ends near the smallest real value (1e-4), not at 1e-16
    assert angles.round_off_note.isVisible() and "round-off" in angles.round_off_note.text()
    _x, y = angles.curves[(0, "direction_change")].getData()  # log10 of what is drawn
    assert np.nanmin(y) == pytest.approx(-4.0)  # no round-off value drawn, every real one


def test_direction_change_is_drawn_per_step_with_no_jump_where_records_thin_out_or_at_the_end(plots, qtbot):
    # every step to 1000, then every 100th step, and a last record 37 steps after the one before:
    # a direction turning at a steady 2e-5 rad per step
    steps = np.concatenate([np.arange(1000), np.arange(1000, 5001, 100), [5037]])
    per_record = 2e-5 * np.diff(steps, prepend=-1).astype(float)
    per_record[0] = np.nan
    # a live run: the first records, drawn, then the rest (the per-step values are made only for
    # records not seen before)
    head = 1020
    session = _session(steps[:head], direction_change=per_record[:head])
    plots.set_sources([(session, "run")])
    plots.set_log_y("angles", False)
    plots.refresh(force=True)
    margin = 0.2 - 0.2 * np.exp(-steps[head:] / 300.0)
    session.lead.append({"step": steps[head:], "normalized_margin": margin, "smoothed_margin": margin - 0.01,
                    "log_loss": -0.5 * steps[head:].astype(float), "param_norm": 1.0 + steps[head:],
                    "direction_change": per_record[head:]})
    plots.refresh(force=True)
    _x, y = plots.plots["angles"].curves[(0, "direction_change")].getData()
    assert np.nanmax(y) == pytest.approx(2e-5) and np.nanmin(y) == pytest.approx(2e-5)
    plots.show_crosshair(5037)
    assert "2e-05" in plots.plots["angles"].readout.toPlainText()


def test_each_plot_switches_between_log_and_linear_and_its_axes_say_so(plots):
    steps = np.arange(1, 500)
    plots.set_sources([(_session(steps), "run")])
    norm = plots.plots["norm"]
    assert norm.item.getAxis("left").logMode and "(log)" in norm.item.getAxis("left").labelText
    norm.log_action.trigger()  # the plot's right-click menu
    assert not norm.item.getAxis("left").logMode and "(log)" not in norm.item.getAxis("left").labelText
    low, high = norm.item.vb.viewRange()[1]
    assert low <= 2.0 and high >= 500.0  # linear units now: 1 + step
    assert plots.plots["loss"].item.getAxis("left").labelText == "log L"
    plots.set_log_x(True)
    assert plots.plots["loss"].item.getAxis("bottom").labelText == "step (log)"


def test_reset_zoom_brings_every_zoomed_plot_back_to_its_data(plots):
    steps = np.arange(2000)
    plots.set_sources([(_session(steps), "run")])
    norm = plots.plots["norm"]
    norm.item.vb.setRange(xRange=(100, 200), yRange=(0.5, 0.6), padding=0)
    norm._manual_range()  # what a mouse zoom does
    plots.reset_zoom()
    (x0, x1), (y0, y1) = norm.item.vb.viewRange()
    assert norm.follow and x0 <= 0 and x1 >= 1999 and y0 <= 0.0 and y1 >= np.log10(2000)


def test_reset_zoom_and_enlarge_boundary_are_in_the_view_menu_and_the_shortcut_list(window, qtbot):
    from margin_explorer.app import help_menu

    keys = {action: k for _menu, action, k in help_menu.shortcuts(window)}
    assert keys.get("Reset zoom") == "Ctrl+0" and keys.get("Enlarge decision boundary") == "Ctrl+B"
    window.boundary_focus_action.trigger()
    assert window.docks["boundary"].isVisible()
    assert not window.docks["plots"].isVisible() and not window.docks["run"].isVisible()
    window.boundary_focus_action.trigger()
    assert window.docks["plots"].isVisible() and window.docks["run"].isVisible()


def test_steepest_descent_runs_plot_their_own_norms_margins_with_the_max_margin_line(plots):
    steps = np.arange(1, 1000)
    sign = _session(steps, "sign-descent-linf", normalized_margin_linf=0.41 - 0.1 / steps,
                    normalized_margin_l1=0.15 - 0.1 / steps)
    sign.info["reference_margin_steepest"] = 0.4115
    plots.set_sources([(sign, "sign")])
    margin = plots.plots["margin"]
    assert (0, "normalized_margin_linf") in margin.curves and (0, "normalized_margin_l1") in margin.curves
    assert margin.steepest_line.isVisible() and margin.steepest_line.value() == 0.4115
    assert margin.item.vb.viewRange()[1][1] > 0.4115  # the line is inside the range
    plots.set_sources([(_session(steps), "gd")])  # gradient descent: the l2 margins only
    assert not any("linf" in str(k) for k in plots.plots["margin"].curves)


def test_several_runs_sample_margin_bands_are_faint_enough_to_see_through(plots):
    from margin_explorer.widgets.trajectory_plots import SAMPLE_LINES_UP_TO

    steps = np.arange(300)
    n = SAMPLE_LINES_UP_TO + 10
    sources = []
    for k in range(2):
        margins = np.tile(np.linspace(0.1, 0.9, n), (300, 1)) + 0.05 * k
        sources.append((_session(steps, sample_margins=margins), f"run {k}"))
    plots.set_sources(sources)
    samples = plots.plots["samples"]
    fills = [pair[0] for pair in samples.bands.values()]
    assert len(fills) == 2
    assert all(fill.brush().color().alpha() <= 40 for fill in fills)


def test_the_boundary_colour_bar_follows_f(qtbot):
    from margin_explorer.widgets.boundary_view import BoundaryView

    view = shown(qtbot, BoundaryView(), 400, 400)
    assert not view.colour_bar.isVisible()
    xs = np.linspace(-1, 1, 30)
    view.set_points(np.array([[0.5, 0.5], [-0.5, -0.5]]), np.array([1.0, -1.0]))
    view.set_grid(np.add.outer(xs, xs) * 7.0, (-1, -1, 2, 2), 0.5)
    assert view.colour_bar.isVisible() and view.colour_bar.levels() == pytest.approx((-14.0, 14.0))


def test_the_steepest_max_margin_line_bounds_the_margin_sign_descent_climbs_to():
    """margin_explorer.core.trainer.steepest_reference_margin for sign descent is the l_inf max margin: no
    parameter has a larger q_min / ||theta||_inf, and sign descent's own margin climbs towards it."""
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.trainer import Trainer

    config = load_preset("sign-descent-linf")
    trainer = Trainer(config)
    line = trainer.steepest_reference_margin()
    chunk = trainer.run(20000).members[0]
    reached = np.asarray(chunk.records["normalized_margin_linf"])
    assert np.nanmax(reached) <= line + 1e-9  # a maximum: nothing above it
    assert line - reached[-1] < 0.01 and reached[-1] > reached[len(reached) // 10]  # and approached
    # random directions with their bias: all below the line
    rng = np.random.default_rng(0)
    X = np.column_stack([trainer.dataset.X, np.ones(trainer.n)]) if config.architecture.blocks[0].bias \
        else trainer.dataset.X
    W = rng.normal(size=(20000, X.shape[1]))
    margins = (trainer.dataset.y[:, None] * (X @ W.T)).min(axis=0) / np.abs(W).max(axis=1)
    assert margins.max() <= line + 1e-9
    assert Trainer(load_preset("linear-separable")).steepest_reference_margin() is None  # gradient descent



@pytest.fixture(scope="module")
def sign_descent_session(tmp_path_factory):
    """A real sign-descent run (the preset, fewer steps): its Angles curves span ~7 decades."""
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.runfile import RunReader
    from margin_explorer.core.runner import run_to_file

    config = load_preset("sign-descent-linf")
    config.run.steps = 5000
    path = tmp_path_factory.mktemp("sign") / "sign.h5"
    run_to_file(config, path)
    with RunReader(path) as reader:
        return RunSession.from_reader(reader)


@pytest.mark.parametrize("size", [(596, 560), (596, 600), (420, 520)])
def test_on_a_log_axis_the_legend_band_adds_no_empty_decades(qtbot, sign_descent_session, size):
    # the Angles plot of sign descent at 1280x720 (the Plots dock ~596 px wide): the band raised for
    # the legend ran its axis up to 1e5 for curves ending near 1, squeezing them to the bottom
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    plots = shown(qtbot, TrajectoryPlots(), *size)
    plots.set_log_x(True)
    plots.set_sources([(sign_descent_session, "run")])
    qtbot.wait(20)
    for _ in range(3):  # a live window draws it again and again
        plots.refresh(force=True)
    angles = plots.plots["angles"]
    drawn = [c.getData()[1] for c in angles.curves.values()]  # view units: log10
    highest = max(np.nanmax(y) for y in drawn if y is not None and np.isfinite(y).any())
    top = angles.item.vb.viewRange()[1][1]
    assert highest > -1 and top > highest  # curves ending near 1 rad, all of them in view
    # at most the range's own headroom (LOG_HEADROOM_DECADES; a fifth of the span before, ~1.7
    # decades) or a band of at most 35% of the plot's height; before that, 7 to 10 empty decades
    bottom = angles.item.vb.viewRange()[1][0]
    assert top - highest <= 2.1, (top, highest)
    assert not angles.banded or (top - highest) / (top - bottom) <= 0.35 + 1e-6
    assert not angles.legend.isVisible() or _points_under_legend(angles) == 0


def _points_under(plot, rect) -> int:
    """Drawn points (and 20 points along each segment) of ``plot`` inside ``rect`` (scene)."""
    vb = plot.item.vb
    covered = 0
    for curve in plot.curves.values():
        x, y = curve.getData()
        if x is None or len(x) < 2 or not curve.isVisible():
            continue
        t = np.linspace(0, 1, 20)[:, None]
        xs, ys = (x[:-1] + t * np.diff(x)).ravel(), (y[:-1] + t * np.diff(y)).ravel()
        keep = np.isfinite(xs) & np.isfinite(ys)
        covered += sum(rect.contains(vb.mapViewToScene(QPointF(a, b))) for a, b in zip(xs[keep], ys[keep]))
    return covered


@pytest.mark.parametrize("size", [(1260, 640), (1260, 1000)])
def test_the_round_off_note_covers_no_curve(qtbot, sign_descent_session, size):
    # the KKT plot of sign descent: the note sat on the |δ| curve (presentation mode, 1280 x 720)
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    plots = shown(qtbot, TrajectoryPlots(), *size)
    plots.set_log_x(True)
    plots.restyle(1.6)
    plots.set_sources([(sign_descent_session, "run")])
    qtbot.wait(20)
    plots.refresh(force=True)
    shown_notes = 0
    for key in ("kkt", "angles"):
        plot = plots.plots[key]
        assert plot.dropped_round_off  # this run has round-off values in both
        note = plot.round_off_note
        if note.isVisible():
            shown_notes += 1
            assert _points_under(plot, note.sceneBoundingRect()) == 0, key
            assert plot.item.vb.sceneBoundingRect().contains(note.sceneBoundingRect())
            if plot.legend.isVisible():
                assert not plot.legend.sceneBoundingRect().intersects(note.sceneBoundingRect())
    assert shown_notes >= 1  # shown where a free place exists, not hidden to pass


@pytest.mark.parametrize("presenting", [False, True])
def test_follow_mode_leaves_a_fraction_of_a_decade_on_log_axes(qtbot, sign_descent_session, presenting):
    # 30% of the span, as on a linear axis, left ~1.7 empty decades above curves spanning six
    from margin_explorer.widgets.trajectory_plots import LOG_HEADROOM_DECADES, TrajectoryPlots

    plots = shown(qtbot, TrajectoryPlots(), 1260, 640)
    plots.set_presentation(presenting)
    plots.set_log_x(True)
    plots.set_sources([(sign_descent_session, "run")])
    qtbot.wait(20)
    plots.refresh(force=True)
    checked = 0
    for plot in plots.plots.values():
        if not plot.log_y or plot.banded or plot.spec.kind == "samples":
            continue  # a band for the legend is bounded by the test above (LOG_BAND_MOST)
        drawn = [c.getData()[1] for c in plot.curves.values() if c.getData()[1] is not None]
        highest = max(np.nanmax(y) for y in drawn if np.isfinite(y).any())
        lowest = min(np.nanmin(y) for y in drawn if np.isfinite(y).any())
        bottom, top = plot.item.vb.viewRange()[1]
        assert 0 < top - highest <= LOG_HEADROOM_DECADES + 1e-9 < 0.5, (plot.spec.key, top, highest)
        assert 0 < lowest - bottom <= LOG_HEADROOM_DECADES + 1e-9, (plot.spec.key, bottom, lowest)
        checked += 1
    assert checked >= 2  # the norm at least, and the angles or the KKT plot


def test_a_y_label_takes_its_full_form_where_the_plot_is_tall_enough(qtbot):
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    plots = shown(qtbot, TrajectoryPlots(), 900, 1600)
    qtbot.wait(20)
    assert plots.plots["angles"].y_label_text == "angle (rad), 1 − cos (log)"
    plots.resize(900, 500)  # ~40 px a plot: the short form, or cut to fit
    qtbot.wait(50)
    angles = plots.plots["angles"]
    assert angles.y_label_text != "angle (rad), 1 − cos (log)"
    label = angles.item.getAxis("left").label
    assert label.boundingRect().width() <= angles.item.vb.height() + 1
