"""The editable dataset behind the canvas: points and labels, changed only through undoable
commands on a QUndoStack (add, move, remove, relabel, replace)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from margin_explorer.core.datasets import Dataset
from margin_explorer.core.errors import DatasetError


class DatasetModel(QObject):
    """Points ``X`` (n, 2 or d) and labels ``y``: -1/+1 (clicks), or class numbers 0..8 once
    ``multiclass`` (drawn with the class keys, or a loaded C-class dataset). A loaded dataset's
    test set and image shape (``carried``) stay with the points through edits."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.X = np.zeros((0, 2))
        self.y = np.zeros(0)
        self.multiclass = False
        self.carried: dict = {}  # X_test, y_test, image_shape of the dataset last loaded
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

    @property
    def classes(self) -> int:
        """How many classes the labels hold: 2 for -1/+1 (or classes 0 and 1), else the largest
        class number + 1 (the C of a C-class dataset, whose checks say when a class is empty)."""
        if not self.multiclass or self.n == 0:
            return 2
        return max(2, int(np.max(self.y)) + 1)

    @property
    def image_shape(self) -> tuple | None:
        return self.carried.get("image_shape")

    def dataset(self) -> Dataset:
        """A validated core Dataset; raises DatasetError with the reason when it is not usable.
        Class numbers make a C-class dataset, or a binary one when only 0 and 1 are drawn."""
        if self.n == 0:
            raise DatasetError("the dataset is empty: click to add points, or generate a dataset")
        test = {k: self.carried[k].copy() for k in ("X_test", "y_test") if k in self.carried}
        if not self.multiclass:
            return Dataset(self.X.copy(), self.y.copy(), self.name, image_shape=self.image_shape, **test)
        return Dataset.from_labels(self.X.copy(), self.y.copy(), self.name, image_shape=self.image_shape, **test)

    def nearest(self, point, radius: float) -> int | None:
        if self.n == 0:
            return None
        d = np.hypot(self.X[:, 0] - point[0], self.X[:, 1] - point[1])
        i = int(np.argmin(d))
        return i if d[i] <= radius else None

    # --------------------------------------------------------------- raw setters (used by commands)
    def _state(self) -> tuple:
        return self.X.copy(), self.y.copy(), self.multiclass, dict(self.carried)

    def _set(self, X, y, multiclass=None, carried=None) -> None:
        self.X, self.y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        if multiclass is not None:
            self.multiclass = multiclass
        if carried is not None:
            self.carried = carried
        self.changed.emit()

    def _push(self, X, y, text: str, merge_id: int | None = None, multiclass=None, carried=None) -> None:
        after = (X, y, self.multiclass if multiclass is None else multiclass,
                 dict(self.carried) if carried is None else carried)
        self.undo_stack.push(_Replace(self, after, text, merge_id))

    # --------------------------------------------------------------- undoable edits
    def add_point(self, x: float, y: float, label: int) -> None:
        what = f"class {label}" if self.multiclass else f"class {label:+d}"
        self._push(np.vstack([self.X, [[x, y]]]), np.append(self.y, label), f"add a point of {what}")

    def move_point(self, index: int, x: float, y: float, merge_id: int | None = None) -> None:
        X = self.X.copy()
        X[index] = (x, y)
        self._push(X, self.y.copy(), "move a point", merge_id)

    def remove(self, indices) -> None:
        indices = np.unique(np.asarray(list(indices), dtype=int))
        if not len(indices):
            return
        keep = np.ones(self.n, dtype=bool)
        keep[indices] = False
        self._push(self.X[keep], self.y[keep], f"remove {len(indices)} point(s)")

    def relabel(self, indices, label: int | None) -> None:
        """Set the label of ``indices`` to ``label``, or flip them (-1/+1 only) when label is None."""
        indices = np.asarray(list(indices), dtype=int)
        if not len(indices) or (label is None and self.multiclass):
            return
        y = self.y.copy()
        y[indices] = -y[indices] if label is None else label
        self._push(self.X.copy(), y, "relabel points")

    def set_multiclass(self, multiclass: bool) -> bool:
        """Switch the labels between -1/+1 and class numbers, as one undoable step: -1 is class 0
        and +1 class 1 (as in a file's 0/1 labels). Back to -1/+1 only while no point is of a
        class past 1; returns whether the labels are now as asked."""
        if multiclass == self.multiclass:
            return True
        if not multiclass and np.any(self.y > 1):
            return False
        carried = dict(self.carried)
        if multiclass:
            convert = lambda labels: np.where(labels > 0, 1.0, 0.0)  # noqa: E731
        else:
            convert = lambda labels: np.where(labels > 0, 1.0, -1.0)  # noqa: E731
        if "y_test" in carried:
            carried["y_test"] = convert(carried["y_test"])
        self._push(self.X.copy(), convert(self.y), "draw classes" if multiclass else "draw -1/+1",
                   multiclass=multiclass, carried=carried)
        return True

    def replace(self, dataset: Dataset, text: str = "replace the dataset") -> None:
        self._push(dataset.X.copy(), dataset.y.copy(), text, multiclass=dataset.multiclass, carried=_carried(dataset))
        self.name = dataset.name

    def reset(self, dataset: Dataset) -> None:
        """Load without an undo entry (start-up, opening a run)."""
        self.name = dataset.name
        self._set(dataset.X.copy(), dataset.y.copy(), dataset.multiclass, _carried(dataset))
        self.undo_stack.clear()


def _carried(dataset: Dataset) -> dict:
    out = {} if dataset.X_test is None else {"X_test": dataset.X_test.copy(), "y_test": dataset.y_test.copy()}
    if dataset.image_shape is not None:
        out["image_shape"] = dataset.image_shape
    return out


class _Replace(QUndoCommand):
    """Every edit stores the state before and after: datasets are small and this keeps undo exact."""

    def __init__(self, model: DatasetModel, after: tuple, text: str, merge_id: int | None = None):
        super().__init__(text)
        self.model = model
        self.before = model._state()
        X, y, multiclass, carried = after
        self.after = (np.asarray(X, dtype=float), np.asarray(y, dtype=float), multiclass, carried)
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
