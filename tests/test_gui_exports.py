"""Exports that print (app/export.py): figures in print style whatever the screen theme, text and
line samples scaled with the figure, a chosen figure size, `render` in the same style, and CSV of
several runs. Pixels are read back with QImage."""

import csv

import numpy as np
import pytest

from tests.helpers import shown


def _session(n=2000, name="relu2-blobs"):
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset

    config = load_preset(name)
    session = RunSession(config, config.dataset.build())
    steps = np.arange(n, dtype=np.int64)
    margin = 0.2 - 0.2 * np.exp(-steps / 300.0)
    session.lead.append({"step": steps, "normalized_margin": margin, "smoothed_margin": margin - 0.01,
                    "log_loss": -0.5 * steps, "param_norm": 1.0 + steps,
                    "alignment_gap": 1.0 / (1.0 + steps), "direction_change": 0.01 / (1.0 + steps)})
    return session


def _pixels(path) -> np.ndarray:
    """(h, w, 4) RGBA of a PNG, read back by Qt."""
    from PySide6.QtGui import QImage

    image = QImage(str(path)).convertToFormat(QImage.Format_RGBA8888)
    assert not image.isNull()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()].copy()


def _grey_luminance(rgba):
    """Luminance of the grey pixels (text, axes, boxes) and a mask of which are grey: the curves are
    Okabe-Ito colours, never grey."""
    rgb = rgba[..., :3].astype(np.int32)
    grey = (rgb.max(axis=-1) - rgb.min(axis=-1)) < 12
    return rgb.mean(axis=-1), grey


def _solid_dark_block(dark: np.ndarray, size: int = 10) -> bool:
    """Whether a size x size square of ``dark`` pixels exists (a filled box, not a text stroke)."""
    table = np.pad(dark.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return bool((sums == size * size).any())


@pytest.fixture
def dark_screen():
    """The screen in the dark theme (its ink, as app/theme.py sets it), light again after."""
    from margin_explorer.widgets.palette import set_ink

    set_ink("dark")
    yield
    set_ink("light")


@pytest.fixture
def plots(qtbot):
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    widget = shown(qtbot, TrajectoryPlots(), 900, 700)
    widget.set_visible_plots(["loss", "margin", "norm", "angles"])
    return widget


def _dark_styled(widget):
    from margin_explorer.app.theme import style_views

    style_views(widget, "dark")
    return widget


def test_a_dark_screen_exports_plots_in_print_style_dark_text_on_white(plots, dark_screen, tmp_path):
    from margin_explorer.app.export import export_plots
    from margin_explorer.widgets.palette import set_ink

    plots.set_sources([(_session(), "a run with a long name for a talk"), (_session(1500), "another run")])
    _dark_styled(plots)
    export_plots(plots, tmp_path / "dark.png", size=(900, 700))
    pixels = _pixels(tmp_path / "dark.png")
    lum, grey = _grey_luminance(pixels)
    assert (pixels[..., :3] == 255).all(axis=-1).mean() > 0.8  # the background is white
    # dark text: titles, tick labels, legends (the dark theme's #ddd text on white gave none)
    assert (grey & (lum < 90)).sum() > 3000
    # no filled dark boxes (the dark legends and readouts came out as black rectangles)
    assert not _solid_dark_block(grey & (lum < 120))
    # print style is print style whatever the screen theme: the same figure from a light screen
    set_ink("light")
    from margin_explorer.app.theme import style_views

    style_views(plots, "light")
    export_plots(plots, tmp_path / "light.png", size=(900, 700))
    differ = np.abs(_pixels(tmp_path / "light.png").astype(int) - pixels.astype(int)).max(axis=-1) > 8
    assert differ.mean() < 0.002


def test_the_theme_style_keeps_the_dark_theme_and_a_transparent_background_stays_transparent(plots, dark_screen,
                                                                                             tmp_path):
    from margin_explorer.app.export import export_plots

    plots.set_sources([(_session(), "run")])
    _dark_styled(plots)
    export_plots(plots, tmp_path / "theme.png", style="theme")
    pixels = _pixels(tmp_path / "theme.png")
    lum, grey = _grey_luminance(pixels)
    assert (pixels[..., :3] == 0x11).all(axis=-1).mean() > 0.8  # the dark theme's background
    assert (grey & (lum > 170)).sum() > 3000  # pale text on it
    export_plots(plots, tmp_path / "clear.png", transparent=True)
    assert (_pixels(tmp_path / "clear.png")[..., 3] == 0).mean() > 0.8


def test_scale_two_doubles_legend_text_and_line_samples_too(qtbot, tmp_path):
    """At scale 2 the legend's text is twice as tall and its line sample twice as thick, as the
    titles and ticks are (pyqtgraph's exporter scaled those only). Measured inside the legend's
    box, which lays out the same at both scales."""
    from margin_explorer.app.export import export_style, lay_out_figure, write_figure
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots

    ink = {}
    for scale in (1, 2):
        with export_style("print") as theme:
            figure = TrajectoryPlots()
            figure.pen_width = scale
            figure.set_visible_plots(["norm"])
            figure.set_sources([(_session(), "run")])
            lay_out_figure(figure, theme, (500, 300), scale)
            figure.refresh(force=True)
            legend = figure.plots["norm"].legend
            box = legend.sceneBoundingRect()
            write_figure(figure.view, tmp_path / f"x{scale}.png", scale, "#ffffff")
            figure.close()
        pixels = _pixels(tmp_path / f"x{scale}.png")
        top, left = int(box.top() * scale) + 1, int(box.left() * scale) + 1
        area = pixels[top: int(box.bottom() * scale) - 1, left: int(box.right() * scale) - 1]
        lum, grey = _grey_luminance(area)
        text_rows = np.flatnonzero((grey & (lum < 128)).any(axis=1))
        blue = (np.abs(area[..., :3].astype(int) - [0x00, 0x72, 0xB2]).max(axis=-1) < 40)  # the sample's colour
        sample_rows = np.flatnonzero(blue.any(axis=1))
        assert len(text_rows) and len(sample_rows)
        ink[scale] = (text_rows[-1] - text_rows[0] + 1, len(sample_rows), int(box.width()))
    (text1, line1, width1), (text2, line2, width2) = ink[1], ink[2]
    assert width1 == width2  # the same layout
    assert 1.7 <= text2 / text1 <= 2.3
    assert line2 >= 2 * line1


def test_a_figure_has_the_size_asked_for_not_the_docks(plots, dark_screen, tmp_path):
    from margin_explorer.app.export import export_plots

    plots.set_sources([(_session(), "run")])
    _dark_styled(plots)
    export_plots(plots, tmp_path / "fig.png", size=(640, 400), scale=2.5)
    pixels = _pixels(tmp_path / "fig.png")
    assert pixels.shape[:2] == (1000, 1600)  # 400 x 640 screen pixels at 2.5 (240 DPI)
    assert plots.width() == 900  # the window's own plots are untouched
    import xml.dom.minidom

    export_plots(plots, tmp_path / "fig.svg", size=(640, 400))
    svg = xml.dom.minidom.parse(str(tmp_path / "fig.svg"))
    assert svg.documentElement.tagName == "svg" and len(svg.getElementsByTagName("polyline")) > 10
    # print style: the dark theme's pale text (#dddddd) is not there; in the theme's style it is
    assert "#dddddd" not in (tmp_path / "fig.svg").read_text().lower()
    export_plots(plots, tmp_path / "theme.svg", size=(640, 400), style="theme")
    assert "#dddddd" in (tmp_path / "theme.svg").read_text().lower()


def test_the_export_dialog_turns_inches_and_dpi_into_a_figure(qtbot):
    from margin_explorer.app.file_actions import ImageOptions

    dialog = ImageOptions(None, (900, 700))
    qtbot.addWidget(dialog)
    dialog.size_mode.setCurrentIndex(dialog.size_mode.findData("in"))
    dialog.width_box.setValue(6.0)
    dialog.height_box.setValue(4.0)
    dialog.dpi.setValue(300)
    figure = dialog.figure()
    # 6 x 4 inches at 300 DPI: 1800 x 1200 pixels, type as at 300 DPI
    assert figure["scale"] * figure["size"][0] == pytest.approx(1800)
    assert figure["scale"] * figure["size"][1] == pytest.approx(1200)
    assert figure["style"] == "print"
    dialog.size_mode.setCurrentIndex(dialog.size_mode.findData("px"))
    dialog.width_box.setValue(1000)
    dialog.height_box.setValue(500)
    figure = dialog.figure()
    assert figure["scale"] * figure["size"][0] == pytest.approx(1000)


def test_the_boundary_exports_in_print_style_with_its_colour_bar(qtbot, dark_screen, tmp_path):
    from margin_explorer.app.export import export_boundary
    from margin_explorer.widgets.boundary_view import BoundaryView

    view = _dark_styled(shown(qtbot, BoundaryView(), 400, 400))
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    view.set_points(X, np.array([-1.0, 1.0, -1.0, 1.0]))
    xs = np.linspace(-2, 2, 40)
    grid = np.add.outer(xs, xs) * 3.0  # f = 3 (x + y), rows = y
    view.set_grid(grid, (-2, -2, 4, 4), 1.0)
    assert view.colour_bar.isVisible() and view.colour_bar.levels() == pytest.approx((-12.0, 12.0))
    export_boundary(view, tmp_path / "boundary.png", scale=2)
    pixels = _pixels(tmp_path / "boundary.png")
    assert pixels.shape[:2] == (800, 800)
    lum, grey = _grey_luminance(pixels)
    assert (grey & (lum < 90)).sum() > 500  # dark tick labels
    assert tuple(pixels[2, 2, :3]) == (255, 255, 255)


def test_render_draws_in_print_style_with_the_line_style_key(tmp_path, qtbot, dark_screen):
    """`main.py render` of two runs: white, dark text, and the legend names which line style is which."""
    from margin_explorer.app.export import render

    from margin_explorer.core.datasets import gaussian_blobs
    from margin_explorer.core.runner import run_to_file
    from tests.helpers import config_for, mlp

    data = gaussian_blobs(40, 2, separation=4.0, noise=0.5, seed=0)
    paths = []
    for lr in (0.5, 0.2):
        config = config_for(mlp(2, [8]), data, steps=600, lr=lr, rule="lyu_li")
        paths.append(str(tmp_path / f"lr{lr}.h5"))
        run_to_file(config, paths[-1])
    render(paths, ["margin"], str(tmp_path / "fig.png"), width=700, row_height=400)
    pixels = _pixels(tmp_path / "fig.png")
    lum, grey = _grey_luminance(pixels)
    assert (pixels[..., :3] == 255).all(axis=-1).mean() > 0.8
    assert (grey & (lum < 90)).sum() > 1000
    assert not _solid_dark_block(grey & (lum < 120))  # no dark legend boxes
    # the key: a line sample in the key's grey, a solid run of it at least 15 pixels long
    from margin_explorer.widgets.trajectory_plots import KEY_COLOUR

    key = (pixels[..., :3] == [int(KEY_COLOUR[i:i + 2], 16) for i in (1, 3, 5)]).all(axis=-1).astype(np.int32)
    runs = np.lib.stride_tricks.sliding_window_view(key, 15, axis=1).sum(axis=-1)
    assert (runs == 15).any()


def test_csv_of_several_runs_in_one_file_with_a_run_column_or_one_file_each(tmp_path):
    from margin_explorer.app.export import export_metrics_csv, export_runs_csv

    a, b = _session(50), _session(30)
    a.lead.append({"accuracy": np.full(50, 0.75)})  # a metric only the first run has
    written = export_runs_csv([("first run", a), ("second, run", b)], tmp_path / "runs.csv")
    assert written == [str(tmp_path / "runs.csv")]
    with open(tmp_path / "runs.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 80 and [r["run"] for r in rows[:1] + rows[-1:]] == ["first run", "second, run"]
    assert float(rows[49]["normalized_margin"]) == a.get("normalized_margin")[49]
    assert int(rows[50]["step"]) == 0 and float(rows[-1]["param_norm"]) == b.get("param_norm")[-1]
    assert float(rows[0]["accuracy"]) == 0.75 and rows[-1]["accuracy"] == ""  # empty where a run lacks it
    assert "q_min" not in rows[0]  # a metric neither run has is left out
    written = export_runs_csv([("first run", a), ("second, run", b)], tmp_path / "each.csv", "one file per run")
    assert [p.rsplit("/", 1)[-1] for p in written] == ["each-first-run.csv", "each-second-run.csv"]
    export_metrics_csv(b, tmp_path / "b.csv")
    assert (tmp_path / "each-second-run.csv").read_text() == (tmp_path / "b.csv").read_text()
