"""A grid of image samples (digits' 8 x 8): one mosaic in one ImageItem, a caption under each tile.

``set_images(rows, shape, captions)`` shows rows of X as (height, width) images, row-major, each
in grey levels over its own range (largest black, smallest white); the Dataset panel shows the
first samples of image data with their classes, and a run's panel can show the samples of the
smallest normalized margins (the support vectors) the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

from .palette import ink, ink_theme

GAP = 1  # pixels of background between tiles (in image pixels)
CAPTION_ROOM = 3  # image pixels under a tile for a caption of one line, 4 more for each further line
MIN_CAPTION_PIXELS, MAX_CAPTION_PIXELS = 8, 18  # a caption's font size on screen, fitted to its cell
MAX_TILES = 64  # more would be too small to read in a dock; the caller picks which


class ImageGrid(pg.PlotWidget):
    def __init__(self, parent=None, columns: int = 8):
        super().__init__(parent)
        self.setObjectName("image-grid")
        self.columns = columns
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.getViewBox().invertY(True)  # image rows go down, as on paper
        self.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.captions: list[pg.TextItem] = []
        self.mosaic = np.zeros((0, 0), dtype=np.float32)
        self.rows = np.zeros((0, 0))  # the rows shown, tile by tile (a test reads them)
        self.tiles = 0
        self._tiles_mask = np.zeros((0, 0), dtype=bool)  # where the mosaic shows a tile (not the background)
        self._cell = (1, 1, 0, 1)  # cell width, caption room (image pixels), longest caption line, lines
        self.getViewBox().sigResized.connect(self._fit_captions)

    def set_images(self, rows, shape: tuple[int, int], captions=None, caption_lines: int = 1,
                   columns: int | None = None) -> None:
        """Show up to MAX_TILES rows of ``rows`` (k, height * width) as images of ``shape``,
        ``captions[i]`` (text, or None; ``caption_lines`` lines each) under tile i, ``columns``
        tiles a row (None: the grid's own)."""
        rows = np.asarray(rows, dtype=np.float64)[:MAX_TILES]
        self.rows = rows
        height, width = shape
        self.tiles = count = rows.shape[0]
        for item in self.captions:
            self.removeItem(item)
        self.captions = []
        if not count:
            self.mosaic = np.zeros((0, 0), dtype=np.float32)
            self.image.clear()
            return
        columns = min(columns or self.columns, count)
        grid_rows = math.ceil(count / columns)
        # image pixels under each tile for its caption
        caption_room = CAPTION_ROOM + 4 * (caption_lines - 1) if captions is not None else 0
        cell_h, cell_w = height + GAP + caption_room, width + GAP
        # ink on paper, each tile over its own range: its largest value black, its smallest white
        # (digits are dark strokes; any shift and scale of the data shows the same picture); the
        # gaps between tiles a grey the captions read on (_background)
        mosaic = np.full((grid_rows * cell_h, columns * cell_w), _background(), dtype=np.float32)
        self._tiles_mask = np.zeros(mosaic.shape, dtype=bool)
        for k, row in enumerate(rows):
            r, c = divmod(k, columns)
            low, high = float(row.min()), float(row.max())
            tile = (high - row.reshape(height, width)) / (high - low if high > low else 1.0)
            mosaic[r * cell_h:r * cell_h + height, c * cell_w:c * cell_w + width] = tile
            self._tiles_mask[r * cell_h:r * cell_h + height, c * cell_w:c * cell_w + width] = True
            if captions is not None and captions[k] is not None:
                text = pg.TextItem(str(captions[k]), color=ink("text"), anchor=(0.5, 0))
                text.setPos(c * cell_w + width / 2, r * cell_h + height)
                self.addItem(text)
                self.captions.append(text)
        longest = max((len(line) for c in captions or () if c is not None for line in str(c).splitlines()), default=0)
        self._cell = (cell_w, caption_room, longest, caption_lines)
        self.mosaic = np.ascontiguousarray(mosaic)
        self.image.setImage(self.mosaic, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(0, 0, self.mosaic.shape[1], self.mosaic.shape[0])
        self.setRange(xRange=(0, self.mosaic.shape[1]), yRange=(0, self.mosaic.shape[0]), padding=0.02)
        self._fit_captions()

    def _fit_captions(self) -> None:
        """Captions in a font that fits their cell at the grid's size on screen (a tile is a few
        dozen screen pixels in a dock: a caption in the window's font ran into its neighbours)."""
        if not self.captions or not self.mosaic.size:
            return
        cell_w, room, longest, lines = self._cell
        box = self.getViewBox()
        scale = min(box.width() / (1.04 * self.mosaic.shape[1]), box.height() / (1.04 * self.mosaic.shape[0]))
        if not scale > 0:
            return
        # a character is about 0.6 of the font's pixel size wide; a line about 1.25 of it tall
        size = min(MAX_CAPTION_PIXELS, cell_w * scale / (0.62 * max(longest, 1)), room * scale / (1.3 * lines))
        font = QFont(self.font())
        font.setPixelSize(max(MIN_CAPTION_PIXELS, int(size)))
        for item in self.captions:
            item.setFont(font)

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's caption ink, over a background it reads on."""
        for item in self.captions:
            item.setColor(ink("text"))
        if self.mosaic.size:
            self.mosaic[~self._tiles_mask] = _background()
            self.image.setImage(self.mosaic, levels=(0.0, 1.0), autoLevels=False)


def _background() -> float:
    """The grey between and under the tiles: light under the light theme's dark captions, dark
    under the dark theme's light ones (a light grey made them unreadable there)."""
    return 0.9 if ink_theme() == "light" else 0.2
