"""Exports for papers and talks: plots and the decision boundary as PNG or SVG, the whole window
as PNG, metrics as CSV, and `main.py render` (the same figures, headless).

A figure is drawn from a copy of the view, made for the export: at the figure's own size (not the
dock's), in print style by default (the light theme's dark text on white, whatever the screen
theme; or the theme's own colours), with text and lines scaled together (``scale``: pixels per
screen pixel, DPI / 96). Drawing the window's own view into a white image gave the dark theme's
pale text on white, dark legend boxes and black rectangles, and a scale that reached titles and
ticks but not legends or line samples."""

from __future__ import annotations

import contextlib
import csv
import math
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication

from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.metrics import SCALAR_METRICS

# names accepted by `render --plots` -> plot keys of widgets/trajectory_plots.py
PLOT_NAMES = {"loss": "loss", "margin": "margin", "norm": "norm", "angle": "angles", "angles": "angles",
              "samples": "samples", "stable_rank": "stable_rank", "rank": "stable_rank", "kkt": "kkt",
              "ensemble": "ensemble", "layers": "margin_layers", "margin_layers": "margin_layers",
              "distribution": "distribution", "accuracy": "accuracy"}


STYLES = {"print": "dark text on white, whatever the screen theme", "theme": "the screen theme's own colours"}
SCREEN_DPI = 96  # a scale of 1: one figure pixel per screen pixel
CSV_LAYOUTS = ("one file", "one file per run")


class ExportError(MarginExplorerError):
    pass


@contextlib.contextmanager
def export_style(style: str):
    """Within: the theme an export's copy of a view takes its colours from (widgets/palette.py
    ink and pyqtgraph's defaults), restored after. Yields the theme's name."""
    import pyqtgraph as pg

    from margin_explorer.widgets.palette import ink_theme, set_ink

    from .theme import THEMES

    if style not in STYLES:
        raise ExportError(f"unknown export style {style!r} (choose from {', '.join(STYLES)})")
    screen = ink_theme()
    theme = "light" if style == "print" else screen
    saved = {k: pg.getConfigOption(k) for k in ("background", "foreground")}
    set_ink(theme)
    pg.setConfigOptions(**THEMES[theme])
    try:
        yield theme
    finally:
        set_ink(screen)
        pg.setConfigOptions(**saved)


def lay_out_figure(copy, theme: str, size, scale: float):
    """Lay ``copy`` (a widget made for the export, never shown on screen) out at ``size`` (w, h in
    screen pixels) in ``theme``'s colours, with lines ``scale`` times as wide as on screen."""
    from .theme import style_views

    copy.setAttribute(Qt.WA_DontShowOnScreen, True)
    copy.resize(max(int(round(size[0])), 50), max(int(round(size[1])), 50))
    style_views(copy, theme, 1.0, line_width=max(1, round(scale)))
    copy.show()
    QApplication.processEvents()


def write_figure(view, path, scale: float, background) -> None:
    """Draw a pyqtgraph GraphicsView's scene into ``path`` (PNG at ``scale`` times its size, or SVG)."""
    import pyqtgraph.exporters as exporters

    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        with _closing_paths_tolerated():
            exporters.SVGExporter(view.scene()).export(path)
    elif suffix == ".png":
        source = view.sceneRect()
        image = QImage(QSize(int(round(source.width() * scale)), int(round(source.height() * scale))),
                       QImage.Format_ARGB32_Premultiplied)
        image.fill(Qt.transparent if background is None else QColor(background))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.TextAntialiasing)
        view.scene().render(painter, QRectF(0, 0, image.width(), image.height()), source)
        painter.end()
        if not image.save(path):
            raise ExportError(f"{path}: the image could not be written")
    else:
        raise ExportError(f"{path}: choose a .png or .svg file")
    if not Path(path).exists():
        raise ExportError(f"{path}: the figure could not be written")


def _background(theme: str, transparent: bool):
    from .theme import THEMES

    if transparent:
        return None
    colour = THEMES[theme]["background"]
    return "#ffffff" if colour == "w" else colour


def export_plots(plots, path, *, scale: float = 1.0, size=None, style: str = "print",
                 transparent: bool = False) -> None:
    """The trajectory plots as a figure: their runs, plots, axes and zoom, at ``size`` (w, h) in
    screen pixels (default: as on screen) times ``scale``, in ``style`` (STYLES)."""
    size = size or (plots.width(), plots.height())
    with export_style(style) as theme:
        copy = plots.copy_for_export(pen_width=max(1, round(scale)) * plots.pen_width)
        try:
            lay_out_figure(copy, theme, size, scale)
            copy.refresh(force=True)
            copy.apply_zoom_of(plots)
            QApplication.processEvents()
            write_figure(copy.view, path, scale, _background(theme, transparent))
        finally:
            copy.close()
            copy.deleteLater()


def export_boundary(boundary, path, *, scale: float = 1.0, size=None, style: str = "print",
                    transparent: bool = False) -> None:
    """The decision-boundary view as a figure, as ``export_plots`` makes the plots."""
    size = size or (boundary.width(), boundary.height())
    with export_style(style) as theme:
        copy = boundary.copy_for_export(pen_scale=max(1, round(scale)))
        try:
            lay_out_figure(copy, theme, size, scale)
            copy.setRange(boundary.viewRect(), padding=0)
            QApplication.processEvents()
            write_figure(copy, path, scale, _background(theme, transparent))
        finally:
            copy.close()
            copy.deleteLater()


MAX_IMAGE_PIXELS = 20000  # the widest or tallest figure `render` draws (a larger PNG Qt cannot read back)


def export_scene(scene, path: str | os.PathLike, scale: float = 1.0, transparent: bool = False) -> None:
    """Write a pyqtgraph scene (or one PlotItem) to PNG or SVG, chosen by the extension."""
    import pyqtgraph.exporters as exporters

    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".svg":
        with _closing_paths_tolerated():
            exporters.SVGExporter(scene).export(path)
    elif suffix == ".png":
        exporter = exporters.ImageExporter(scene)
        params = exporter.parameters()
        params["width"] = int(round(params["width"] * scale))
        params["background"] = (0, 0, 0, 0) if transparent else (255, 255, 255, 255)
        exporter.export(path)
    else:
        raise ExportError(f"{path}: choose a .png or .svg file")
    if not Path(path).exists():
        raise ExportError(f"{path}: the figure could not be written")


@contextlib.contextmanager
def _closing_paths_tolerated():
    """Qt 6.11 ends closed SVG paths with a lone 'Z', which pyqtgraph 0.14's SVG exporter reads
    as a coordinate pair and fails on. A 'Z' after a point equal to the first point changes
    nothing drawn, so drop it while our exports run."""
    import importlib

    module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = module.correctCoordinates

    def tolerant(node, defs, item, options):
        for path in node.getElementsByTagName("path"):
            data = path.getAttribute("d")
            if "Z" in data or "z" in data:
                path.setAttribute("d", " ".join(t for t in data.split() if t not in ("Z", "z")))
        return original(node, defs, item, options)

    module.correctCoordinates = tolerant
    try:
        yield
    finally:
        module.correctCoordinates = original


def export_widget_png(widget, path: str | os.PathLike, scale: float = 1.0) -> None:
    """The widget (e.g. the whole window) as it looks, at ``scale`` times its size."""
    size = widget.size()
    image = QImage(QSize(int(size.width() * scale), int(size.height() * scale)), QImage.Format_ARGB32)
    image.fill(Qt.white)
    painter = QPainter(image)
    painter.scale(scale, scale)
    widget.render(painter, QPoint(0, 0))
    painter.end()
    if not image.save(str(path)):
        raise ExportError(f"{path}: the image could not be written")


def _csv_value(v) -> str:
    return str(int(v)) if isinstance(v, (np.integer, int)) else repr(float(v))


def export_metrics_csv(session, path: str | os.PathLike) -> None:
    """Every scalar metric of a run, one row per record, with a header of metric names."""
    names = [n for n in SCALAR_METRICS if session.get(n) is not None]
    if not names or session.n_records == 0:
        raise ExportError("the run has no records to export")
    columns = [session.get(n) for n in names]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*columns):
            writer.writerow([_csv_value(v) for v in row])


def _slug(name: str) -> str:
    """A file-name-safe form of a run's name."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug or "run"


def export_runs_csv(runs, path: str | os.PathLike, layout: str = "one file") -> list[str]:
    """Several runs' scalar metrics: ``runs`` is a list of (name, session). "one file": one table,
    its first column ``run`` (the run's name), the union of the runs' metrics after it (empty where a
    run lacks one); "one file per run": PATH's stem, "-", the run's name, ".csv" beside PATH, each
    as export_metrics_csv writes one run. Returns the files written."""
    if layout not in CSV_LAYOUTS:
        raise ExportError(f"unknown CSV layout {layout!r} (choose from {', '.join(CSV_LAYOUTS)})")
    runs = [(name, session) for name, session in runs if session.n_records]
    if not runs:
        raise ExportError("the runs have no records to export")
    path = Path(path)
    if layout == "one file per run":
        written, used = [], set()
        for name, session in runs:
            stem = f"{path.stem}-{_slug(name)}"
            while stem in used:  # two runs of one name
                stem += "-2"
            used.add(stem)
            target = path.with_name(stem + ".csv")
            export_metrics_csv(session, target)
            written.append(str(target))
        return written
    names = [n for n in SCALAR_METRICS if any(session.get(n) is not None for _name, session in runs)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run"] + names)
        for name, session in runs:
            columns = [session.get(n) for n in names]
            for i in range(session.n_records):
                writer.writerow([name] + ["" if c is None else _csv_value(c[i]) for c in columns])
    return [str(path)]


def _check_figure_size(width: int, height: int, scale: float, columns: int) -> None:
    """Refuse sizes that are not a figure, before any window or file is made."""
    if not isinstance(columns, int) or columns < 1:
        raise ExportError(f"--columns: must be 1 or more, got {columns}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ExportError(f"--scale: must be a number above 0, got {scale}")
    if width < 100:
        raise ExportError(f"--width: must be at least 100 pixels, got {width}")
    for what, pixels in (("width", width * scale), ("height", height * scale)):
        if pixels > MAX_IMAGE_PIXELS:
            raise ExportError(f"--width/--scale: the figure would be {pixels:,.0f} pixels in {what}; "
                              f"the limit is {MAX_IMAGE_PIXELS:,}")


def render(paths: list[str], plots: list[str], out: str, width: int = 1400, row_height: int = 320,
           columns: int | None = None, scale: float = 1.0, log_x: bool = False) -> None:
    """Draw the given plots of one or more run files into ``out`` (PNG or SVG), headless."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from margin_explorer.app.launch import make_application
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.runfile import RunReader
    from margin_explorer.widgets.trajectory_plots import TrajectoryPlots, series_needed

    keys = []
    for name in plots:
        if name not in PLOT_NAMES:
            raise ExportError(f"--plots: unknown plot {name[:80]!r} (choose from {', '.join(sorted(PLOT_NAMES))})")
        keys.append(PLOT_NAMES[name])
    if not keys:
        raise ExportError(f"--plots: name at least one plot (choose from {', '.join(sorted(PLOT_NAMES))})")
    columns = columns or min(len(keys), 3)
    _check_figure_size(width, row_height * -(-len(keys) // columns) if columns >= 1 else 0, scale, columns)
    app = make_application(["render"])
    sessions = []
    names, snapshots = series_needed(keys)  # only what the plots draw is read from each file
    for p in paths:
        with RunReader(p) as reader:
            sessions.append((RunSession.from_reader(reader, metrics=names, snapshots=snapshots), Path(p).stem))
    rows = -(-len(keys) // columns)
    # the print style of File > Export (app/export.py): dark text on white, lines scaled with the type
    with export_style("print") as theme:
        widget = TrajectoryPlots(columns=columns)
        widget.pen_width = max(1, round(scale))
        widget.set_visible_plots(keys)
        widget.set_log_x(log_x)
        widget.set_sources([(s, name, i) for i, (s, name) in enumerate(sessions)])
        try:
            lay_out_figure(widget, theme, (width, row_height * rows), scale)
            widget.refresh(force=True)
            app.processEvents()
            write_figure(widget.view, out, scale, _background(theme, False))
        finally:
            widget.close()
