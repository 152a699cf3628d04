"""Exports for papers and talks: plots as PNG (chosen scale, white or transparent background)
and SVG, the whole window as PNG, metrics as CSV, and `main.py render` (the same figures,
headless)."""

from __future__ import annotations

import contextlib
import csv
import math
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QImage, QPainter

from core.errors import MarginExplorerError
from core.metrics import SCALAR_METRICS

# names accepted by `render --plots` -> plot keys of widgets/trajectory_plots.py
PLOT_NAMES = {"loss": "loss", "margin": "margin", "norm": "norm", "angle": "angles", "angles": "angles",
              "samples": "samples", "stable_rank": "stable_rank", "rank": "stable_rank", "kkt": "kkt",
              "ensemble": "ensemble"}


class ExportError(MarginExplorerError):
    pass


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
            writer.writerow([int(v) if isinstance(v, (np.integer,)) else repr(float(v)) for v in row])


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
    from app.main_window import make_application
    from app.session import RunSession
    from core.runfile import RunReader
    from widgets.trajectory_plots import TrajectoryPlots

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
    for p in paths:
        with RunReader(p) as reader:
            sessions.append((RunSession.from_reader(reader), Path(p).stem))
    widget = TrajectoryPlots(columns=columns)
    widget.set_visible_plots(keys)
    widget.set_log_x(log_x)
    widget.set_sources([(s, name, i) for i, (s, name) in enumerate(sessions)])
    rows = -(-len(keys) // columns)
    widget.resize(width, row_height * rows)
    widget.show()
    app.processEvents()
    widget.refresh(force=True)
    app.processEvents()
    export_scene(widget.view.scene(), out, scale=scale)
    widget.close()
