"""Undo and redo for the architecture builder: each edit is one QUndoCommand holding the
builder's state before and after it (the blocks, the initialization, the input's image shape
and the selected block).

The builder makes an edit first and pushes its command after, so the command's first redo has
nothing to do. Consecutive edits of one field of one block (a width spin box's arrow presses,
the init scale) merge into one step, as a dataset point's drag does (widgets/dataset_model.py).
"""

from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

MERGING = 2  # this command type's id for QUndoStack's merging (the dataset's moves use 1)


class ArchitectureState:
    """What an undo step restores."""

    __slots__ = ("blocks", "init", "selected", "input_shape")

    def __init__(self, blocks, init, selected, input_shape=None):
        self.blocks, self.init, self.selected = copy.deepcopy(blocks), dict(init), selected
        self.input_shape = None if input_shape is None else list(input_shape)

    def __eq__(self, other):
        return (isinstance(other, ArchitectureState)
                and (self.blocks, self.init, self.input_shape) == (other.blocks, other.init, other.input_shape))


class ArchitectureEdit(QUndoCommand):
    def __init__(self, builder, text: str, before: ArchitectureState, after: ArchitectureState, merge_key=None):
        super().__init__(text)
        self.builder, self.before, self.after, self.merge_key = builder, before, after, merge_key
        self._made = True  # the builder made the edit already

    def redo(self):
        if self._made:
            self._made = False
            return
        self.builder.restore(self.after)

    def undo(self):
        self.builder.restore(self.before)

    def id(self):  # noqa: A003 (Qt's name)
        return MERGING if self.merge_key is not None else -1

    def mergeWith(self, other):  # noqa: N802 (Qt's name)
        if other.merge_key != self.merge_key:
            return False
        self.after = other.after
        if self.after == self.before:  # back where it started: no step left to undo
            self.setObsolete(True)
        return True
