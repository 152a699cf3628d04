"""The architecture builder: a structured editor of a core ArchitectureSpec.

The spec is kept as its JSON form (nested lists of block dicts); the tree shows it, each item
holding the path of its block, and every edit rewrites the spec and rebuilds the tree. A badge
shows the homogeneity verdict from core with its one-line explanation and the parameter count.
Every edit is undoable (``undo_stack``, widgets/architecture_history.py).
"""

from __future__ import annotations

import copy
import math
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox,
                               QHeaderView, QLabel, QLineEdit, QPushButton, QSpinBox, QStackedWidget, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from margin_explorer.core import activations
from margin_explorer.core.architecture import (IMAGE_BLOCKS, ArchitectureSpec, output_shape, output_width,
                                               parameter_count, parameter_layout, parse_blocks)
from margin_explorer.core.errors import ConfigError
from margin_explorer.core.homogeneity import analyze

from .architecture_history import ArchitectureEdit, ArchitectureState


def outputs_for(classes: int) -> int:
    """The network's outputs for a dataset of ``classes``: 1 for two (-1/+1; a binary run is never
    a run of two outputs), C for C >= 3."""
    return 1 if classes <= 2 else classes


def _dense(width, bias=False):
    return {"type": "dense", "width": width, "bias": bias}


def _act(kind, param=None):
    out = {"type": "activation", "kind": kind}
    if param is not None:
        out["param"] = param
    return out


def _conv(channels, kernel=3, padding=1):
    return {"type": "conv2d", "channels": channels, "kernel": kernel, "stride": 1, "padding": padding, "bias": False}


def _pool(kind="max_pool", kernel=2):
    return {"type": kind, "kernel": kernel, "stride": kernel}


IMAGE_TYPES = {cls.__dataclass_fields__["type"].default for cls in IMAGE_BLOCKS} | {"avg_pool"}

PRESETS = {
    "Linear model": lambda: [_dense(1)],
    "Deep linear (3 layers)": lambda: [_dense(16), _dense(16), _dense(1)],
    "Two-layer ReLU": lambda: [_dense(32), _act("relu"), _dense(1)],
    "Three-layer ReLU": lambda: [_dense(32), _act("relu"), _dense(32), _act("relu"), _dense(1)],
    "Two-layer leaky ReLU": lambda: [_dense(32), _act("leaky_relu", 0.1), _dense(1)],
    "Two-layer ReLU² (k = 2)": lambda: [_dense(32), _act("relu_k", 2.0), _dense(1)],
    "Residual GELU": lambda: [_dense(32, True), _act("gelu"),
                              {"type": "residual", "scale": 1.0, "blocks": [_dense(32), _act("gelu"), _dense(32)]},
                              _dense(1)],
    "Ensemble: linear + two-layer": lambda: [{"type": "ensemble", "members": [[_dense(1)],
                                                                              [_dense(16), _act("relu"), _dense(1)]]}],
    "Two-layer tanh (not homogeneous)": lambda: [_dense(32), _act("tanh"), _dense(1)],
    "Small CNN (image input)": lambda: [_conv(8), _act("relu"), _pool(), _conv(16), _act("relu"), _pool(),
                                        {"type": "flatten"}, _dense(32), _act("relu"), _dense(1)],
}

# what each image block's field means, shown as the field's tooltip
CONV_TIPS = {
    "channels": "Output channels: the number of filters, each a kernel x kernel window over all input channels",
    "kernel": "Side of the square window each filter sees (pixels); at most the padded input's side",
    "stride": "Pixels the window moves between two outputs (1: every position)",
    "padding": "Zeros added on each side of the image before the window moves (1 with kernel 3 keeps the size)",
    "bias": "One bias per output channel; past the first weight layer it makes the network only near-homogeneous",
}
POOL_TIPS = {
    "type": "max_pool: the largest value in each window; avg_pool: their mean (both 1-homogeneous: they add no order)",
    "kernel": "Side of the square window pooled into one value (pixels)",
    "stride": "Pixels the window moves between two outputs (equal to the kernel: windows side by side)",
}

FROZEN_DEFAULT = "+-1/m"


def parse_frozen(text: str):
    """A frozen layer's field from the builder's text: the pattern, a list of numbers, or the text itself."""
    text = text.strip() or FROZEN_DEFAULT
    if text in ("+-1/m", "±1/m"):
        return FROZEN_DEFAULT
    try:
        return [float(v) for v in re.split(r"[,\s]+", text) if v]
    except ValueError:
        return text


BADGE_COLORS = {"exact": "#1b7f3b", "near": "#b07300", "none": "#6b6b6b", "invalid": "#b00020"}


def _describe(block: dict) -> str:
    kind = block["type"]
    if kind == "dense":
        frozen = block.get("frozen")
        if frozen is not None:
            return f"Dense {block['width']}, frozen " + (frozen if isinstance(frozen, str) else f"({len(frozen)} values)")
        return f"Dense {block['width']}" + (" + bias" if block.get("bias") else "")
    if kind == "activation":
        name = block["kind"]
        if name in activations.PARAMETERS:
            pname, default = activations.PARAMETERS[name]
            return f"{name} ({pname} {block.get('param', default):g})"
        return name
    if kind == "residual":
        return f"Residual  x + {block.get('scale', 1.0):g}·branch(x)"
    if kind == "conv2d":
        k, stride, padding = block.get("kernel", 3), block.get("stride", 1), block.get("padding", 0)
        return (f"Conv {block['channels']} × {k}×{k}" + (f", stride {stride}" if stride != 1 else "")
                + (f", padding {padding}" if padding else "") + (" + bias" if block.get("bias") else ""))
    if kind in ("max_pool", "avg_pool"):
        k = block.get("kernel", 2)
        stride = block.get("stride") or k
        return f"{'Max' if kind == 'max_pool' else 'Average'} pool {k}×{k}" + (f", stride {stride}" if stride != k else "")
    if kind == "flatten":
        return "Flatten (image to vector)"
    return f"Ensemble of {len(block['members'])} sub-networks (summed)"


class ArchitectureBuilder(QWidget):
    specChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.input_dim = 2
        self.input_shape = None  # [channels, height, width] when the network reads its input as an image
        self.image_shape = None  # the dataset's (height, width), when its rows are images
        self.classes = 2  # the dataset's: one output for two classes (-1/+1), C outputs for C >= 3
        self.blocks: list = PRESETS["Two-layer ReLU"]()
        self.init = {"scheme": "he", "scale": 1.0, "std": 1.0}
        self._updating = False
        self.undo_stack = QUndoStack(self)

        self.badge = QLabel()
        self.badge.setObjectName("homogeneity-badge")
        self.badge.setAlignment(Qt.AlignCenter)
        self.badge.setToolTip("Homogeneity order M of f in theta: f(c theta) = c^M f(theta). It normalizes every margin "
                              "(gamma = q_min / ||theta||^M). Near-homogeneous: holds up to lower-order terms "
                              "(Cai et al. 2025). Not homogeneous: normalized margins are undefined.")
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setObjectName("homogeneity-explanation")

        self.preset = QComboBox()
        self.preset.addItem("Presets…")
        self.preset.addItems(list(PRESETS))
        self.preset.activated.connect(self._apply_preset)

        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(2)  # the block, and a dense layer's weight name (the stable-rank legend's)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.tree.setObjectName("architecture-tree")
        self.tree.currentItemChanged.connect(self._selection_changed)

        buttons = QGridLayout()
        self.add_buttons = {}
        for i, (label, kind) in enumerate([("+ Dense", "dense"), ("+ Activation", "activation"),
                                           ("+ Residual", "residual"), ("+ Ensemble", "ensemble"),
                                           ("+ Conv", "conv2d"), ("+ Pool", "max_pool"), ("+ Flatten", "flatten")]):
            b = QPushButton(label)
            b.setToolTip(f"Insert a {kind} block after the selected one (into a selected ensemble member)"
                         + ("; image blocks read the input as the image of 'Input image'" if kind in IMAGE_TYPES else ""))
            b.clicked.connect(lambda _=False, k=kind: self.add_block(k))
            buttons.addWidget(b, 2 * (i // 4), i % 4)
            self.add_buttons[kind] = b
        for i, (label, slot, tip) in enumerate([("Remove", self.remove_selected, "Remove the selected block"),
                                                ("Up", lambda: self.move_selected(-1), "Move the block up"),
                                                ("Down", lambda: self.move_selected(1), "Move the block down"),
                                                ("+ Member", self.add_member, "Add a sub-network to the selected ensemble")]):
            b = QPushButton(label)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.addWidget(b, 1, i)
        self.add_buttons["conv2d"].setToolTip(self.add_buttons["conv2d"].toolTip()
                                              + ". A 2-D convolution: linear in its weights like a dense layer")

        self.editor = QStackedWidget()
        self.editor.addWidget(QLabel("Select a block to edit it."))
        self.editor.addWidget(self._dense_editor())
        self.editor.addWidget(self._activation_editor())
        self.editor.addWidget(self._residual_editor())
        self.editor.addWidget(self._conv_editor())
        self.editor.addWidget(self._pool_editor())

        self.scheme = QComboBox()
        self.scheme.addItems(["he", "lecun", "normal", "zeros"])
        self.scheme.setToolTip("he: N(0, 2/fan_in); lecun: N(0, 1/fan_in); normal: N(0, 1); zeros: all 0 "
                               "(a ReLU network then never moves)")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0, 1000)
        self.scale.setDecimals(4)
        self.scale.setSingleStep(0.1)
        self.scale.setValue(1.0)
        self.scale.setToolTip("Every initial parameter is multiplied by this: small versus large initialization "
                              "changes the regime (rich versus lazy)")
        self.scheme.currentTextChanged.connect(self._init_changed)
        self.scale.valueChanged.connect(self._init_changed)
        self.image_edit = QLineEdit()
        self.image_edit.setObjectName("input-image")
        self.image_edit.setPlaceholderText("vector input")
        self.image_edit.setToolTip("The input as an image: channels x height x width (e.g. 1 x 8 x 8 for digits), "
                                   "each row of the data holding one image channel by channel, row-major; their "
                                   "product must be the input dimension. Empty: a vector input. Conv and pooling "
                                   "blocks need an image.")
        self.image_edit.editingFinished.connect(self._image_edited)
        init_form = QFormLayout()
        init_form.addRow("Input image", self.image_edit)
        init_form.addRow("Initialization", self.scheme)
        init_form.addRow("Init scale", self.scale)

        layout = QVBoxLayout(self)
        layout.addWidget(self.badge)
        layout.addWidget(self.explanation)
        layout.addWidget(self.preset)
        layout.addWidget(self.tree, stretch=1)
        layout.addLayout(buttons)
        edit_box = QGroupBox("Selected block")
        QVBoxLayout(edit_box).addWidget(self.editor)
        layout.addWidget(edit_box)
        layout.addLayout(init_form)
        self._rebuild()

    # --------------------------------------------------------------- property editors
    def _dense_editor(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.width_spin = QSpinBox()
        self.width_spin.setRange(1, 100000)
        self.width_spin.setToolTip("Number of output units")
        self.bias_check = QCheckBox("bias")
        self.bias_check.setToolTip("A bias past the first layer makes the network only near-homogeneous")
        self.width_spin.valueChanged.connect(lambda v: self._edit("width", v))
        self.bias_check.toggled.connect(lambda v: self._edit("bias", v))
        self.frozen_check = QCheckBox("frozen")
        self.frozen_check.setObjectName("dense-frozen")
        self.frozen_check.setToolTip("Fixed weights, not trained and not part of theta: the norm, the order M and "
                                     "the margins count the trained weights only (a frozen output layer adds no order)")
        self.frozen_edit = QLineEdit()
        self.frozen_edit.setObjectName("dense-frozen-values")
        self.frozen_edit.setPlaceholderText(FROZEN_DEFAULT)
        self.frozen_edit.setToolTip("+-1/m: each row +1/m on the first half of its m inputs, -1/m on the second "
                                    "(Kou et al. 2023); or the weights out x in, row-major, separated by commas")
        self.frozen_check.toggled.connect(lambda _v: self._frozen_changed())
        self.frozen_edit.editingFinished.connect(self._frozen_changed)
        form.addRow("Width", self.width_spin)
        form.addRow("", self.bias_check)
        form.addRow(self.frozen_check, self.frozen_edit)
        return w

    def _frozen_changed(self) -> None:
        """The frozen checkbox or its pattern: "+-1/m", or numbers (core/architecture.py Dense.frozen);
        text that is neither stays as typed, and the badge names the problem."""
        selected = self._editable_block()
        if selected is None:
            return
        path, block = selected
        value = parse_frozen(self.frozen_edit.text()) if self.frozen_check.isChecked() else None
        if block.get("frozen") == value:
            return
        before = self.state()
        if value is None:
            block.pop("frozen", None)
        else:
            block["frozen"], block["bias"] = value, False
        self._rebuild(select=tuple(path))
        self._commit("freeze the layer" if value is not None else "train the layer", before)

    def _activation_editor(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.kind_combo = QComboBox()
        for kind in activations.HOMOGENEITY:
            self.kind_combo.addItem(kind)
            self.kind_combo.setItemData(self.kind_combo.count() - 1,
                                        f"{activations.DESCRIPTIONS[kind]} ({activations.HOMOGENEITY[kind]})",
                                        Qt.ToolTipRole)
        self.param_spin = QDoubleSpinBox()
        self.param_spin.setRange(0, 100)
        self.param_spin.setDecimals(3)
        self.param_spin.setSingleStep(0.1)
        self.param_label = QLabel("Parameter")
        self.kind_combo.currentTextChanged.connect(self._activation_kind_changed)
        self.param_spin.valueChanged.connect(lambda v: self._edit("param", v))
        form.addRow("Activation", self.kind_combo)
        form.addRow(self.param_label, self.param_spin)
        return w

    def _residual_editor(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.res_scale = QDoubleSpinBox()
        self.res_scale.setRange(-100, 100)
        self.res_scale.setDecimals(3)
        self.res_scale.setSingleStep(0.1)
        self.res_scale.setToolTip("Fixed (not trained) factor on the residual branch")
        self.res_scale.valueChanged.connect(lambda v: self._edit("scale", v))
        form.addRow("Branch scale", self.res_scale)
        return w

    def _conv_editor(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.conv_spins = {}
        for key, label, low, high in [("channels", "Channels", 1, 10000), ("kernel", "Kernel", 1, 1000),
                                      ("stride", "Stride", 1, 1000), ("padding", "Padding", 0, 1000)]:
            spin = QSpinBox()
            spin.setRange(low, high)
            spin.setToolTip(CONV_TIPS[key])
            spin.setObjectName(f"conv-{key}")
            spin.valueChanged.connect(lambda v, k=key: self._edit(k, v))
            form.addRow(label, spin)
            self.conv_spins[key] = spin
        self.conv_bias = QCheckBox("bias")
        self.conv_bias.setToolTip(CONV_TIPS["bias"])
        self.conv_bias.toggled.connect(lambda v: self._edit("bias", v))
        form.addRow("", self.conv_bias)
        return w

    def _pool_editor(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.pool_kind = QComboBox()
        self.pool_kind.addItems(["max_pool", "avg_pool"])
        self.pool_kind.setToolTip(POOL_TIPS["type"])
        self.pool_kind.currentTextChanged.connect(lambda v: self._edit("type", v))
        self.pool_spins = {}
        form.addRow("Pooling", self.pool_kind)
        for key, label in [("kernel", "Kernel"), ("stride", "Stride")]:
            spin = QSpinBox()
            spin.setRange(1, 1000)
            spin.setToolTip(POOL_TIPS[key])
            spin.setObjectName(f"pool-{key}")
            spin.valueChanged.connect(lambda v, k=key: self._edit(k, v))
            form.addRow(label, spin)
            self.pool_spins[key] = spin
        return w

    # --------------------------------------------------------------- paths
    def _get(self, path):
        obj = self.blocks
        for key in path:
            obj = obj[key]
        return obj

    def _container(self, path):
        """(list holding the block at ``path``, its index)."""
        return self._get(path[:-1]), path[-1]

    def selected_path(self):
        item = self.tree.currentItem()
        return None if item is None else item.data(0, Qt.UserRole)

    def _is_member(self, path) -> bool:
        return path is not None and len(path) >= 2 and path[-2] == "members"

    # --------------------------------------------------------------- edits
    def _in_shape(self) -> tuple:
        return (self.input_dim,) if self.input_shape is None else tuple(self.input_shape)

    def _width_before(self, index: int) -> int:
        """The width entering top-level block ``index`` (16 if the blocks before it are invalid)."""
        try:
            return output_width(parse_blocks(self.blocks[:index], ""), self._in_shape(), "")
        except ConfigError:
            return 16

    def add_block(self, kind: str) -> None:
        before = self.state()
        path = self.selected_path()
        if path is None:
            container, index = self.blocks, max(len(self.blocks) - 1, 0)
            new_path_prefix = ()
        elif self._is_member(path):
            container = self._get(path)
            index = len(container)
            new_path_prefix = tuple(path)
        else:
            container, i = self._container(path)
            index = i + 1
            new_path_prefix = tuple(path[:-1])
        width = self._width_before(index) if not new_path_prefix else 16
        block = {"dense": lambda: _dense(16),
                 "activation": lambda: _act("relu"),
                 "residual": lambda: {"type": "residual", "scale": 1.0,
                                      "blocks": [_dense(width), _act("relu"), _dense(width)]},
                 "ensemble": lambda: {"type": "ensemble", "members": [[_dense(1)], [_dense(16), _act("relu"), _dense(1)]]},
                 "conv2d": lambda: _conv(8),
                 "max_pool": _pool,
                 "flatten": lambda: {"type": "flatten"},
                 }[kind]()
        container.insert(index, block)
        if kind in IMAGE_TYPES:
            self._ensure_image_input()
        self._rebuild(select=new_path_prefix + (index,))
        self._commit(f"add a {kind} block", before)

    def add_member(self) -> None:
        path = self.selected_path()
        if path is None or self._is_member(path):
            return
        block = self._get(path)
        if block.get("type") == "ensemble":
            before = self.state()
            block["members"].append([_dense(1)])
            self._rebuild(select=tuple(path) + ("members", len(block["members"]) - 1))
            self._commit("add an ensemble member", before)

    def remove_selected(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        before = self.state()
        container, index = self._container(path)
        removed = container[index]
        del container[index]
        remaining = len(container)
        select = None if remaining == 0 else tuple(path[:-1]) + (min(index, remaining - 1),)
        self._rebuild(select=select)
        self._commit("remove a member" if self._is_member(path) else f"remove a {removed['type']} block", before)

    def move_selected(self, delta: int) -> None:
        path = self.selected_path()
        if path is None:
            return
        container, index = self._container(path)
        target = index + delta
        if 0 <= target < len(container):
            before = self.state()
            container[index], container[target] = container[target], container[index]
            self._rebuild(select=tuple(path[:-1]) + (target,))
            self._commit("move a block " + ("up" if delta < 0 else "down"), before)

    def _editable_block(self):
        """(path, block) of the selected block the editors may change, or None: while the editors
        are being filled, with nothing selected, or with an ensemble's member selected."""
        if self._updating:
            return None
        path = self.selected_path()
        if path is None or self._is_member(path):
            return None
        return path, self._get(path)

    def _edit(self, key, value) -> None:
        selected = self._editable_block()
        if selected is None:
            return
        path, block = selected
        if block.get(key) == value:
            return
        before = self.state()
        block[key] = value
        self._rebuild(select=tuple(path))
        self._commit(f"change the {key}", before, merge_key=(tuple(path), key))

    def _activation_kind_changed(self, kind: str) -> None:
        if self._updating:
            return
        path = self.selected_path()
        if path is None:
            return
        block = self._get(path)
        before = self.state()
        block["kind"] = kind
        if kind in activations.PARAMETERS:
            block["param"] = activations.PARAMETERS[kind][1]
        else:
            block.pop("param", None)
        self._rebuild(select=tuple(path))
        self._commit(f"make the activation {kind}", before)

    def _init_changed(self, *_args) -> None:
        if self._updating:
            return
        before = self.state()
        self.init["scheme"] = self.scheme.currentText()
        self.init["scale"] = self.scale.value()
        self._update_badge()
        self.specChanged.emit()
        self._commit("change the initialization", before, merge_key=("init",))

    def _apply_preset(self, index: int) -> None:
        if index <= 0:
            return
        before = self.state()
        name = self.preset.itemText(index)
        self.blocks = PRESETS[name]()
        self.preset.setCurrentIndex(0)
        self._ensure_image_input()
        self._rebuild()
        self._commit(f"use the {name} network", before)

    def _uses_images(self) -> bool:
        def walk(blocks):
            for b in blocks:
                if b.get("type") in IMAGE_TYPES:
                    return True
                inner = [b.get("blocks", [])] + list(b.get("members", []))
                if any(walk(m) for m in inner):
                    return True
            return False

        return walk(self.blocks)

    def _ensure_image_input(self) -> None:
        """Image blocks need the input's image shape: the dataset's (one channel), or a square of
        the input dimension, unless one is set already."""
        if self.input_shape is not None:
            return
        if self.image_shape is not None and math.prod(self.image_shape) == self.input_dim:
            self.input_shape = [1, *self.image_shape]
        else:
            side = math.isqrt(self.input_dim)
            if side * side == self.input_dim and side > 1:
                self.input_shape = [1, side, side]
        self._show_image()

    def _image_edited(self) -> None:
        text = self.image_edit.text().strip()
        shape = [int(v) for v in re.findall(r"\d+", text)] or None
        if shape != self.input_shape:
            before = self.state()
            self.input_shape = shape
            self._show_image()
            self._update_badge()
            self.specChanged.emit()
            self._commit("change the input image", before)

    def _show_image(self) -> None:
        self.image_edit.setText("" if self.input_shape is None else " x ".join(str(v) for v in self.input_shape))

    # --------------------------------------------------------------- spec in and out
    def set_input_dim(self, dim: int, image_shape=None) -> None:
        """The dataset's input dimension and, when its rows are images, their (height, width):
        a network reading images then reads the new ones (one channel)."""
        self.image_shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        changed = dim != self.input_dim
        self.input_dim = dim
        if self.input_shape is not None and math.prod(self.input_shape) != dim and self.image_shape is not None \
                and math.prod(self.image_shape) == dim:
            self.input_shape = [1, *self.image_shape]
            self._show_image()
            changed = True
        if changed:
            self._update_badge()
            self.specChanged.emit()

    def set_classes(self, classes: int) -> None:
        """The dataset's class count: the network needs one output for two classes (-1/+1) and
        one per class for C >= 3. A last dense layer as wide as the old count needed follows the
        new one (an undo step); any other end is left to the user, and ``problem`` says why."""
        old, new = outputs_for(self.classes), outputs_for(classes)
        self.classes = classes
        if old == new:
            return
        last = self.blocks[-1] if self.blocks else None
        if last is not None and last.get("type") == "dense" and last.get("width") == old:
            before = self.state()
            last["width"] = new
            self._rebuild()
            self._commit(f"one output per class ({classes} classes)" if new > 1 else "one output (two classes)", before)
        self._update_badge()
        self.specChanged.emit()

    def output_problem(self) -> str | None:
        """Why the network's outputs do not fit the dataset's classes, or None (also when the
        blocks are invalid: ``spec`` names that)."""
        try:
            end = output_shape(parse_blocks(self.blocks, ""), self._in_shape(), "")
        except ConfigError:
            return None
        want = outputs_for(self.classes)
        if len(end) != 1 or end[0] == want:
            return None
        if want == 1:
            return (f"Architecture: the network has {end[0]} outputs but the dataset has two classes (-1/+1): "
                    "make the last dense layer 1 wide")
        return (f"Architecture: the network has {end[0]} output{'s' if end[0] != 1 else ''} but the dataset has "
                f"{self.classes} classes: make the last dense layer {want} wide (one output per class)")

    def set_spec(self, spec: dict) -> None:
        self.input_dim = int(spec["input_dim"])
        self.input_shape = None if spec.get("input_shape") is None else list(spec["input_shape"])
        self._show_image()
        self.blocks = copy.deepcopy(spec["blocks"])
        self.init = {"scheme": "he", "scale": 1.0, "std": 1.0, **spec.get("init", {})}
        self._show_init()
        self._rebuild()
        self.undo_stack.clear()  # a new network, as a loaded dataset is a new dataset

    # --------------------------------------------------------------- undo
    def state(self) -> ArchitectureState:
        return ArchitectureState(self.blocks, self.init, self.selected_path(), self.input_shape)

    def restore(self, state: ArchitectureState) -> None:
        """Put the builder back in ``state`` (an undo or a redo step)."""
        self.blocks, self.init = copy.deepcopy(state.blocks), dict(state.init)
        self.input_shape = None if state.input_shape is None else list(state.input_shape)
        self._show_image()
        self._show_init()
        self._rebuild(select=state.selected)

    def _commit(self, text: str, before: ArchitectureState, merge_key=None) -> None:
        """Make the edit just made, from ``before``, one undo step."""
        self.undo_stack.push(ArchitectureEdit(self, text, before, self.state(), merge_key))

    def _show_init(self) -> None:
        self._updating = True
        self.scheme.setCurrentText(self.init["scheme"])
        self.scale.setValue(self.init["scale"])
        self._updating = False

    def spec_dict(self) -> dict:
        out = {"input_dim": self.input_dim, "blocks": copy.deepcopy(self.blocks), "init": dict(self.init)}
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        return out

    def spec(self) -> ArchitectureSpec:
        """The validated spec; raises ConfigError naming what is wrong."""
        return ArchitectureSpec.from_dict(self.spec_dict())

    def problem(self) -> str | None:
        mismatch = self.output_problem()
        if mismatch:
            return mismatch
        try:
            self.spec()
        except ConfigError as exc:
            return f"Architecture: {exc}"
        return None

    # --------------------------------------------------------------- view
    def _rebuild(self, select=None) -> None:
        self._updating = True
        self.tree.clear()

        weights = iter(self._weight_names())

        def add_items(parent, blocks, prefix):
            for i, block in enumerate(blocks):
                path = prefix + (i,)
                trained = block["type"] in ("dense", "conv2d") and block.get("frozen") is None
                name = next(weights, "") if trained else ""
                item = QTreeWidgetItem([_describe(block), name])
                item.setData(0, Qt.UserRole, path)
                item.setToolTip(0, _describe(block))
                if name:
                    item.setForeground(1, self.palette().placeholderText())
                    item.setToolTip(1, f"{name}: this layer's name in the stable-rank plot and the run file")
                (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
                if block["type"] == "residual":
                    add_items(item, block["blocks"], path + ("blocks",))
                elif block["type"] == "ensemble":
                    for m, member in enumerate(block["members"]):
                        member_item = QTreeWidgetItem([f"member {m + 1}"])
                        member_item.setData(0, Qt.UserRole, path + ("members", m))
                        item.addChild(member_item)
                        add_items(member_item, member, path + ("members", m))
                if select is not None and tuple(select) == path:
                    self.tree.setCurrentItem(item)

        add_items(None, self.blocks, ())
        self.tree.expandAll()
        if select is not None and self._is_member(select):
            for item in self._all_items():
                if item.data(0, Qt.UserRole) == tuple(select):
                    self.tree.setCurrentItem(item)
        self._updating = False
        self._selection_changed(self.tree.currentItem(), None)
        self._update_badge()
        self.specChanged.emit()

    def _weight_names(self) -> list[str]:
        """Each dense layer's weight name, in the order the tree lists the layers (core's parameter
        layout walks the blocks the same way); none while the network is invalid."""
        try:
            return [name for name, _size, _shape in parameter_layout(self.spec()) if name.endswith(".weight")]
        except ConfigError:
            return []

    def _all_items(self):
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            yield item
            stack.extend(item.child(i) for i in range(item.childCount()))

    def _selection_changed(self, current, _previous) -> None:
        if self._updating:
            # mid-rebuild the tree still holds the old network's items, whose paths may not exist in
            # the new blocks; _rebuild shows the selection itself once the tree is rebuilt
            return
        if current is None:
            self.editor.setCurrentIndex(0)
            return
        path = current.data(0, Qt.UserRole)
        if self._is_member(path):
            self.editor.setCurrentIndex(0)
            return
        block = self._get(path)
        was = self._updating
        self._updating = True
        if block["type"] == "dense":
            self.width_spin.setValue(block["width"])
            self.bias_check.setChecked(bool(block.get("bias")))
            frozen = block.get("frozen")
            self.frozen_check.setChecked(frozen is not None)
            self.bias_check.setEnabled(frozen is None)
            self.frozen_edit.setText("" if frozen is None else frozen if isinstance(frozen, str)
                                     else ", ".join(f"{v:g}" for v in frozen))
            self.editor.setCurrentIndex(1)
        elif block["type"] == "activation":
            self.kind_combo.setCurrentText(block["kind"])
            has_param = block["kind"] in activations.PARAMETERS
            self.param_spin.setEnabled(has_param)
            self.param_label.setText(activations.PARAMETERS[block["kind"]][0] if has_param else "Parameter")
            if has_param:
                self.param_spin.setValue(block.get("param", activations.PARAMETERS[block["kind"]][1]))
            self.editor.setCurrentIndex(2)
        elif block["type"] == "residual":
            self.res_scale.setValue(block.get("scale", 1.0))
            self.editor.setCurrentIndex(3)
        elif block["type"] == "conv2d":
            for key, spin in self.conv_spins.items():
                spin.setValue(block.get(key, {"kernel": 3, "stride": 1, "padding": 0}.get(key, 1)))
            self.conv_bias.setChecked(bool(block.get("bias")))
            self.editor.setCurrentIndex(4)
        elif block["type"] in ("max_pool", "avg_pool"):
            self.pool_kind.setCurrentText(block["type"])
            self.pool_spins["kernel"].setValue(block.get("kernel", 2))
            self.pool_spins["stride"].setValue(block.get("stride") or block.get("kernel", 2))
            self.editor.setCurrentIndex(5)
        else:
            self.editor.setCurrentIndex(0)
        self._updating = was

    def _update_badge(self) -> None:
        try:
            spec = self.spec()
        except ConfigError as exc:
            self._set_badge("invalid", "invalid architecture", str(exc))
            return
        h = analyze(spec)
        count = parameter_count(spec)
        self._set_badge(h.verdict, f"{h.badge}  ·  {count:,} parameters", h.explanation)

    def _set_badge(self, verdict: str, text: str, explanation: str) -> None:
        self.badge.setText(text)
        self.badge.setProperty("verdict", verdict)
        self.badge.setStyleSheet(f"QLabel {{ background: {BADGE_COLORS[verdict]}; color: white; padding: 4px;"
                                 f" border-radius: 4px; font-weight: bold; }}")
        self.explanation.setText(explanation)
