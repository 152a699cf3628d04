"""The architecture builder produces the spec core expects, and its badge follows edits."""

import pytest
from PySide6.QtCore import Qt

from margin_explorer.core.architecture import ArchitectureSpec
from margin_explorer.widgets.architecture_builder import PRESETS, ArchitectureBuilder


@pytest.fixture
def builder(qtbot):
    b = ArchitectureBuilder()
    qtbot.addWidget(b)
    b.show()
    return b


def _select(builder, path):
    for item in builder._all_items():
        if item.data(0, Qt.UserRole) == tuple(path):
            builder.tree.setCurrentItem(item)
            return
    raise AssertionError(f"no item at {path}")


def _button(builder, text):
    from PySide6.QtWidgets import QPushButton

    return next(b for b in builder.findChildren(QPushButton) if b.text() == text)


def test_default_is_a_two_layer_relu_network_with_an_exact_badge(builder):
    spec = builder.spec()
    assert isinstance(spec, ArchitectureSpec)
    assert spec.to_dict()["blocks"] == [{"type": "dense", "width": 32, "bias": False},
                                        {"type": "activation", "kind": "relu"},
                                        {"type": "dense", "width": 1, "bias": False}]
    assert builder.badge.property("verdict") == "exact" and "M = 2" in builder.badge.text()
    assert "96 parameters" in builder.badge.text()


def test_adding_a_residual_block_turns_exact_into_near(builder, qtbot):
    _select(builder, (1,))
    qtbot.mouseClick(_button(builder, "+ Residual"), Qt.LeftButton)
    spec = builder.spec()
    assert spec.blocks[2].type == "residual" and spec.blocks[2].blocks[0].width == 32
    assert builder.badge.property("verdict") == "near"
    assert "residual" in builder.explanation.text()
    qtbot.mouseClick(_button(builder, "Remove"), Qt.LeftButton)
    assert builder.badge.property("verdict") == "exact"


def test_editing_fields_changes_the_spec_and_the_badge(builder, qtbot):
    _select(builder, (0,))
    builder.width_spin.setValue(8)
    assert builder.spec().blocks[0].width == 8
    _select(builder, (1,))
    builder.kind_combo.setCurrentText("relu_k")
    assert builder.spec().blocks[1].param == 2.0 and "M = 3" in builder.badge.text()
    builder.kind_combo.setCurrentText("tanh")
    assert builder.badge.property("verdict") == "none" and "tanh is bounded" in builder.explanation.text()
    builder.kind_combo.setCurrentText("gelu")
    assert builder.badge.property("verdict") == "near"
    _select(builder, (2,))
    builder.width_spin.setValue(2)  # two outputs fit no dataset (width 3 is a three-class output)
    assert builder.badge.property("verdict") == "invalid"
    assert builder.problem() == ("Architecture: the network has 2 outputs but the dataset has two classes (-1/+1): "
                                 "make the last dense layer 1 wide")


def test_reorder_and_ensemble_members(builder, qtbot):
    builder.set_spec({"input_dim": 2, "blocks": PRESETS["Ensemble: linear + two-layer"]()})
    assert builder.badge.property("verdict") == "near" and "ensemble" in builder.explanation.text()
    _select(builder, (0,))
    qtbot.mouseClick(_button(builder, "+ Member"), Qt.LeftButton)
    assert len(builder.spec().blocks[0].members) == 3
    _select(builder, (0, "members", 1, 0))
    qtbot.mouseClick(_button(builder, "Down"), Qt.LeftButton)
    member = builder.spec().to_dict()["blocks"][0]["members"][1]
    assert [b["type"] for b in member] == ["activation", "dense", "dense"]


def test_every_preset_is_a_valid_spec(builder):
    for name, make in PRESETS.items():
        image = "CNN" in name  # reads 8 x 8 images, as digits'
        builder.set_spec({"input_dim": 64 if image else 2, "blocks": make(), **({"input_shape": [1, 8, 8]} if image else {})})
        assert builder.problem() is None, name


def test_every_edit_undoes_and_redoes_back_to_the_same_spec(builder, qtbot):
    specs = [builder.spec_dict()]
    _select(builder, (0,))
    qtbot.mouseClick(_button(builder, "+ Residual"), Qt.LeftButton)
    specs.append(builder.spec_dict())
    _select(builder, (2,))
    qtbot.mouseClick(_button(builder, "Down"), Qt.LeftButton)
    specs.append(builder.spec_dict())
    qtbot.mouseClick(_button(builder, "Remove"), Qt.LeftButton)
    specs.append(builder.spec_dict())
    builder.scale.setValue(0.5)
    specs.append(builder.spec_dict())
    assert len({repr(s) for s in specs}) == len(specs)  # each edit changed the spec
    stack = builder.undo_stack
    assert stack.count() == 4 and stack.undoText() == "change the initialization"
    for expected in reversed(specs[:-1]):
        stack.undo()
        assert builder.spec_dict() == expected
    assert not stack.canUndo() and builder.scale.value() == 1.0  # the field shows the restored value
    for expected in specs[1:]:
        stack.redo()
        assert builder.spec_dict() == expected
    assert builder.badge.property("verdict") == "near"  # the badge follows an undo or redo too


def test_typing_a_width_is_one_undo_step(builder, qtbot):
    _select(builder, (0,))
    spin = builder.width_spin
    spin.selectAll()
    qtbot.keyClicks(spin, "128")  # 1, 12, 128: three values, one edit
    assert builder.spec_dict()["blocks"][0]["width"] == 128
    assert builder.undo_stack.count() == 1 and builder.undo_stack.undoText() == "change the width"
    builder.undo_stack.undo()
    assert builder.spec_dict()["blocks"][0]["width"] == 32 and spin.value() == 32


def test_a_loaded_network_starts_a_new_history(builder, qtbot):
    qtbot.mouseClick(_button(builder, "+ Dense"), Qt.LeftButton)
    assert builder.undo_stack.canUndo()
    builder.set_spec({"input_dim": 2, "blocks": PRESETS["Two-layer ReLU"]()})
    assert not builder.undo_stack.canUndo()


@pytest.mark.parametrize("preset", ["residual-gelu-moons", "ensemble-shallow-fades"])
def test_each_dense_layer_shows_the_name_the_stable_rank_plot_gives_it(builder, preset):
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.trainer import Trainer

    config = load_preset(preset)
    builder.set_spec(config.architecture.to_dict())
    shown = [item.text(1) for item in _tree_order(builder) if item.text(1)]
    assert shown == Trainer(config).layer_names()  # the legend's names, in the tree's order
    assert all(not item.text(1) for item in _tree_order(builder) if not item.text(0).startswith("Dense"))


def _tree_order(builder):
    """The tree's items top to bottom, as a user reads them."""
    items, stack = [], [builder.tree.topLevelItem(i) for i in reversed(range(builder.tree.topLevelItemCount()))]
    while stack:
        item = stack.pop()
        items.append(item)
        stack.extend(item.child(i) for i in reversed(range(item.childCount())))
    return items


def test_a_new_network_while_a_deep_block_is_selected_raises_nothing(builder):
    """Selecting the 4th block of the residual GELU network, then loading the linear model, raised
    IndexError in _selection_changed (the tree's old items were asked about the new blocks)."""
    import json
    from pathlib import Path

    presets = Path(__file__).resolve().parent.parent / "resources" / "presets"
    builder.set_spec(json.loads((presets / "residual-gelu-moons.json").read_text())["architecture"])
    _select(builder, (3,))
    assert builder.editor.currentIndex() == 1 and builder.width_spin.value() == 1  # the output layer's editor
    builder.set_spec(json.loads((presets / "linear-separable.json").read_text())["architecture"])
    assert builder.spec().to_dict()["blocks"] == [{"type": "dense", "width": 1, "bias": False}]


def test_a_conv_block_added_with_the_mouse_and_keyboard_makes_an_exact_cnn(builder, qtbot):
    builder.set_input_dim(64, image_shape=(8, 8))  # digits' 8 x 8 images
    _select(builder, (0,))
    builder.tree.setFocus()
    qtbot.keyClick(builder.tree, Qt.Key_Up)  # nothing above the first block: it stays selected
    assert builder.selected_path() == (0,)
    qtbot.mouseClick(_button(builder, "Remove"), Qt.LeftButton)  # the network is now [relu, dense 1]
    _select(builder, (0,))
    qtbot.mouseClick(_button(builder, "+ Conv"), Qt.LeftButton)
    assert builder.image_edit.text() == "1 x 8 x 8"  # the dataset's images, one channel
    assert builder.badge.property("verdict") == "invalid"  # a dense layer cannot read an image yet
    assert "add a flatten block before it" in builder.explanation.text()
    spin = builder.conv_spins["channels"]
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "4")
    qtbot.keyClick(spin, Qt.Key_Enter)
    qtbot.keyClick(builder.conv_spins["stride"], Qt.Key_Up)  # stride 2, padding 1: 8 x 8 becomes 4 x 4
    qtbot.mouseClick(_button(builder, "+ Pool"), Qt.LeftButton)
    qtbot.mouseClick(_button(builder, "+ Flatten"), Qt.LeftButton)
    spec = builder.spec()
    assert [b.type for b in spec.blocks] == ["activation", "conv2d", "max_pool", "flatten", "dense"]
    assert (spec.blocks[1].channels, spec.blocks[1].kernel, spec.blocks[1].stride, spec.blocks[1].padding) == (4, 3, 2, 1)
    assert spec.input_shape == [1, 8, 8]
    # conv 4 x 1 x 3 x 3 = 36; 4 x 4 x 4 after it, 4 x 2 x 2 = 16 after the pool, into the output layer
    assert builder.badge.property("verdict") == "exact" and "M = 2" in builder.badge.text()
    assert "52 parameters" in builder.badge.text()
    assert builder.conv_spins["kernel"].toolTip().startswith("Side of the square window")
    _select(builder, (2,))
    builder.pool_kind.setCurrentText("avg_pool")
    assert builder.spec().blocks[2].type == "avg_pool" and builder.badge.property("verdict") == "exact"
    _select(builder, (1,))
    builder.conv_spins["kernel"].setValue(12)
    assert builder.badge.property("verdict") == "invalid"
    assert "kernel 12 is larger than the padded input 10 x 10" in builder.explanation.text()
    builder.undo_stack.undo()
    assert builder.spec().blocks[1].kernel == 3


def test_a_bias_on_the_second_conv_layer_makes_the_badge_near(builder, qtbot):
    builder.set_spec({"input_dim": 64, "input_shape": [1, 8, 8], "blocks": PRESETS["Small CNN (image input)"]()})
    assert builder.badge.property("verdict") == "exact" and "M = 4" in builder.badge.text()
    _select(builder, (3,))
    builder.conv_bias.setFocus()
    qtbot.keyClick(builder.conv_bias, Qt.Key_Space)
    assert builder.spec().blocks[3].bias is True
    assert builder.badge.property("verdict") == "near" and "bias past the first layer" in builder.explanation.text()
    _select(builder, (0,))
    assert builder.tree.currentItem().text(1) == "0.weight"  # a conv layer's name in the stable-rank plot


def test_freezing_the_output_layer_leaves_a_one_homogeneous_network_of_the_first_layer(builder, qtbot):
    """Kou et al.'s setting from the builder: the output layer frozen at +-1/m; its weights leave
    theta (32 x 2 first-layer weights remain) and the order drops from 2 to 1; values typed in
    replace the pattern; undo brings the trained layer back."""
    _select(builder, (2,))
    builder.frozen_check.setChecked(True)
    assert builder.spec().blocks[2].frozen == "+-1/m"
    assert "exact, M = 1" in builder.badge.text() and "64 parameters" in builder.badge.text()
    assert "frozen +-1/m" in builder.tree.topLevelItem(2).text(0) and builder.tree.topLevelItem(2).text(1) == ""
    builder.frozen_edit.setText("1, 2, 3")  # 3 values for a 1 x 32 layer: the badge says what is wrong
    builder.frozen_edit.editingFinished.emit()
    assert builder.badge.property("verdict") == "invalid" and "needs 1 x 32 = 32 values" in builder.problem()
    builder.frozen_edit.setText(", ".join(["0.5"] * 16 + ["-0.5"] * 16))
    builder.frozen_edit.editingFinished.emit()
    assert builder.spec().blocks[2].frozen == [0.5] * 16 + [-0.5] * 16
    builder.undo_stack.undo()
    builder.undo_stack.undo()
    builder.undo_stack.undo()
    assert builder.spec().blocks[2].frozen is None and "M = 2" in builder.badge.text()
