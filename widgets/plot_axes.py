"""Axes of the trajectory plots: log axes labeled sparsely enough to read, and y labels that fit
beside their plot."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics


NICER = {1: 2, 2: 5, 5: 10}  # the next wider tick spacing after 1, 2 or 5 x 10^k


class SparseLogAxis(pg.AxisItem):
    """On a log axis, label only 1, 2 and 5 x 10^k: pyqtgraph labels every minor tick when a range
    spans about a decade, and the labels overlap. On a vertical axis, major ticks no closer than
    their labels are tall: pyqtgraph spaces them by the axis length alone, and presentation mode's
    large type piled the labels on each other in a short plot."""

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph's names)
        levels = super().tickSpacing(minVal, maxVal, size)
        if self.orientation not in ("left", "right") or not levels or size <= 0:
            return levels
        label_px = 1.15 * QFontMetrics(self.style["tickFont"] or QFont()).height()
        span = abs(maxVal - minVal)
        major = levels[0][0]
        widened = major
        while span / widened * label_px > size:  # more labels than fit
            exponent = math.floor(math.log10(widened) + 1e-9)
            mantissa = round(widened / 10 ** exponent)
            widened = NICER.get(mantissa, 10) * 10 ** exponent
        if widened == major:
            return levels
        return [(widened, 0)] + [level for level in levels if level[0] < widened]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        strings = super().logTickStrings(values, scale, spacing)
        low, high = self.range
        if high - low < 1.0:  # under a decade pyqtgraph places plain ticks: keep all their labels
            return strings
        keep = []
        for value, text in zip(values, strings):
            mantissa = round(10 ** (value - np.floor(value + 1e-9)), 6)
            keep.append(text if mantissa in (1.0, 2.0, 5.0) else "")
        return keep


def fit_y_label(plot) -> None:
    """The y label in the longest of its forms that fits beside the plot (with "(log)", the
    short name with and without it, then cut): a label longer than its plot is tall ran
    into the labels of the plots above and below ("normalized marg" into "angle (rad)")."""
    y_label = plot.spec.extra.get("y_label")
    if not y_label:
        return
    short = plot.spec.extra.get("y_short", y_label)
    log = " (log)" if plot.log_y else ""
    label = plot.item.getAxis("left").label
    room = plot.item.vb.height() - 2 * label.document().documentMargin() - 2  # the text's box has margins
    metrics = QFontMetrics(label.font())
    forms = [y_label + log, short + log, short]
    text = next((f for f in forms if room <= 0 or metrics.horizontalAdvance(f) <= room), None)
    if text is None:
        text = metrics.elidedText(short, Qt.ElideRight, int(room))
    if text != plot.y_label_text:
        plot.y_label_text = text
        plot.item.setLabel("left", text)
        plot.item.getAxis("left").resizeEvent()  # centred again: pyqtgraph centres it only on a resize

