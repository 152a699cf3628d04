"""The run controls: an optimizer's own fields appear only with it, the settings keep their
values across tabs, and what the form says is what a run gets."""

from PySide6.QtCore import Qt

from margin_explorer.widgets.run_controls import RunControls


def _choose(qtbot, combo, name):
    """Pick the item named ``name`` (in the config) in ``combo`` with the keyboard, as a user tabbing
    through the form would."""
    combo.setFocus()
    while combo.name() != name:
        before = combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key_Down)
        if combo.currentIndex() == before:  # at the end: start again from the top
            qtbot.keyClick(combo, Qt.Key_Home)


def test_only_the_chosen_optimizers_own_fields_are_shown(qtbot):
    controls = RunControls()
    qtbot.addWidget(controls)
    controls.show()
    qtbot.waitExposed(controls)
    form = controls._training_form
    assert controls.optimizer.name() == "gd"
    assert not form.isRowVisible(controls.batch) and not form.isRowVisible(controls.momentum)
    _choose(qtbot, controls.optimizer, "sgd")
    assert form.isRowVisible(controls.batch) and not form.isRowVisible(controls.momentum)
    assert controls.sections()["optimizer"]["batch_size"] == 16
    _choose(qtbot, controls.optimizer, "momentum")
    assert form.isRowVisible(controls.momentum) and not form.isRowVisible(controls.batch)
    assert "batch_size" not in controls.sections()["optimizer"]
    # the hidden rows take no height: the Training page is shorter than with both shown
    _choose(qtbot, controls.optimizer, "gd")
    short = controls.settings_tabs.widget(0).sizeHint().height()
    form.setRowVisible(controls.batch, True)
    form.setRowVisible(controls.momentum, True)
    assert controls.settings_tabs.widget(0).sizeHint().height() > short + 30


def test_the_advanced_tab_holds_precision_device_and_recording(qtbot):
    controls = RunControls()
    qtbot.addWidget(controls)
    tabs = controls.settings_tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Training", "Family", "Advanced"]
    advanced = tabs.widget(2)
    for widget in (controls.dtype, controls.device, controls.dense, controls.per_decade):
        assert advanced.isAncestorOf(widget)
    controls.dense.setValue(5000)
    controls.per_decade.setValue(50)
    _choose(qtbot, controls.dtype, "float32")
    sections = controls.sections()
    assert sections["recording"] == {"every_step_until": 5000, "per_decade": 50}
    assert sections["run"]["dtype"] == "float32"


def test_drop_downs_show_words_and_the_config_keeps_the_names(qtbot):
    from margin_explorer.core.presets import load_preset

    controls = RunControls()
    qtbot.addWidget(controls)
    config = load_preset("relu2-blobs")
    config.optimizer.kind, config.optimizer.step_rule = "normalized_gd", "lyu_li"
    controls.set_sections(config)
    assert (controls.optimizer.currentText(), controls.rule.currentText()) == ("normalized GD", "Lyu and Li")
    assert controls.sections()["optimizer"]["kind"] == "normalized_gd"
    assert controls.sections()["optimizer"]["step_rule"] == "lyu_li"
    shown = [controls.rule.itemText(i) for i in range(controls.rule.count())]
    assert shown == ["loss-normalized", "Lyu and Li", "constant", "loss-based α / L (adaptive)"]
    assert not any("_" in controls.optimizer.itemText(i) for i in range(controls.optimizer.count()))
