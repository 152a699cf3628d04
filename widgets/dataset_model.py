"""The editable dataset behind the canvas: points and labels, changed only through undoable
commands on a QUndoStack (add, move, remove, relabel, replace)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from margin_explorer.core.datasets import Dataset
from margin_explorer.core.errors import DatasetError


class DatasetModel(QObject):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.X = np.zeros((0, 2))
        self.y = np.zeros(0)
        self.name = "drawn"
        self.undo_stack = QUndoStack(self)

    # --------------------------------------------------------------- reading
    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def editable(self) -> bool:
        return self.dim == 2

    def dataset(self) -> Dataset:
        """A validated core Dataset; raises DatasetError with the reason when it is not usable."""
        if self.n == 0:
            raise DatasetError("the dataset is empty: click to add points, or generate a dataset")
        return Dataset(self.X.copy(), self.y.copy(), self.name)

    def nearest(self, point, radius: float) -> int | None:
        if self.n == 0:
            return None
        d = np.hypot(self.X[:, 0] - point[0], self.X[:, 1] - point[1])
        i = int(np.argmin(d))
        return i if d[i] <= radius else None

    # --------------------------------------------------------------- raw setters (used by commands)
    def _set(self, X, y) -> None:
        self.X, self.y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        self.changed.emit()

    # --------------------------------------------------------------- undoable edits
    def add_point(self, x: float, y: float, label: int) -> None:
        self.undo_stack.push(_Replace(self, np.vstack([self.X, [[x, y]]]), np.append(self.y, label),
                                      f"add a point of class {label:+d}"))

    def move_point(self, index: int, x: float, y: float, merge_id: int | None = None) -> None:
        X = self.X.copy()
        X[index] = (x, y)
        self.undo_stack.push(_Replace(self, X, self.y.copy(), "move a point", merge_id))

    def remove(self, indices) -> None:
        indices = np.unique(np.asarray(list(indices), dtype=int))
        if not len(indices):
            return
        keep = np.ones(self.n, dtype=bool)
        keep[indices] = False
        self.undo_stack.push(_Replace(self, self.X[keep], self.y[keep], f"remove {len(indices)} point(s)"))

    def relabel(self, indices, label: int | None) -> None:
        """Set the label of ``indices`` to ``label``, or flip them when label is None."""
        indices = np.asarray(list(indices), dtype=int)
        if not len(indices):
            return
        y = self.y.copy()
        y[indices] = -y[indices] if label is None else label
        self.undo_stack.push(_Replace(self, self.X.copy(), y, "relabel points"))

    def replace(self, dataset: Dataset, text: str = "replace the dataset") -> None:
        self.undo_stack.push(_Replace(self, dataset.X.copy(), dataset.y.copy(), text))
        self.name = dataset.name

    def reset(self, dataset: Dataset) -> None:
        """Load without an undo entry (start-up, opening a run)."""
        self.name = dataset.name
        self._set(dataset.X.copy(), dataset.y.copy())
        self.undo_stack.clear()


class _Replace(QUndoCommand):
    """Every edit stores the arrays before and after: datasets are small and this keeps undo exact."""

    def __init__(self, model: DatasetModel, X, y, text: str, merge_id: int | None = None):
        super().__init__(text)
        self.model = model
        self.before = (model.X.copy(), model.y.copy())
        self.after = (np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        self.merge_id = merge_id

    def id(self):  # noqa: A003 (Qt's name): consecutive moves of one drag merge into one undo step
        return 1 if self.merge_id is not None else -1

    def mergeWith(self, other):  # noqa: N802
        if other.merge_id is None or other.merge_id != self.merge_id:
            return False
        self.after = other.after
        return True

    def redo(self):
        self.model._set(*self.after)

    def undo(self):
        self.model._set(*self.before)
