"""Recording a widget (the window or one panel) to MP4 or GIF while a run or a replay plays.

Frames are grabbed on the GUI thread by a timer (QWidget.grab), padded to even sizes (H.264's
yuv420p needs them) and written with imageio: imageio-ffmpeg's bundled ffmpeg for MP4,
Pillow for GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from margin_explorer.core.errors import MarginExplorerError


class RecordingError(MarginExplorerError):
    pass


def qimage_to_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height).reshape(height, stride)
    return buffer[:, : width * 3].reshape(height, width, 3).copy()


def pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if (h % 2 or w % 2) else frame


class Recorder(QObject):
    frameWritten = Signal(int)
    finished = Signal(str)

    def __init__(self, widget, path: str, fps: int = 12, parent=None):
        super().__init__(parent)
        self.widget, self.path, self.fps = widget, str(path), fps
        self.frames = 0
        self._size = None
        suffix = Path(self.path).suffix.lower()
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise RecordingError("recording needs imageio (pip install imageio imageio-ffmpeg)") from None
        try:
            if suffix == ".mp4":
                self._writer = imageio.get_writer(self.path, format="FFMPEG", fps=fps, codec="libx264",
                                                  macro_block_size=1, quality=8, pixelformat="yuv420p")
            elif suffix == ".gif":
                self._writer = imageio.get_writer(self.path, format="GIF", mode="I", duration=1000 / fps, loop=0)
            else:
                raise RecordingError(f"{self.path}: record to .mp4 or .gif")
        except RecordingError:
            raise
        except Exception as exc:  # no ffmpeg, unwritable folder...
            raise RecordingError(f"cannot record to {self.path}: {exc}") from None
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.capture)

    def start(self) -> None:
        self.capture()
        self._timer.start()

    def capture(self) -> None:
        frame = pad_even(qimage_to_rgb(self.widget.grab().toImage()))
        if self._size is None:
            self._size = frame.shape
        elif frame.shape != self._size:  # the widget was resized: keep the first size
            h, w = self._size[:2]
            fitted = np.full(self._size, 255, dtype=np.uint8)
            fitted[: min(h, frame.shape[0]), : min(w, frame.shape[1])] = frame[:h, :w]
            frame = fitted
        self._writer.append_data(frame)
        self.frames += 1
        self.frameWritten.emit(self.frames)

    def stop(self) -> str:
        self._timer.stop()
        self._writer.close()
        self.finished.emit(self.path)
        return self.path

    @property
    def active(self) -> bool:
        return self._timer.isActive()
