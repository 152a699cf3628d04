"""A run of data loaded from the Dataset panel's "Real data (offline)" tab records the dataset as
the builtin dataset it is (kind, name, every parameter), not as inline arrays (issue 20); edited
points are recorded inline, since no builtin config makes them."""

import json

import numpy as np

from margin_explorer.core import builtin_data
from margin_explorer.core.run_reader import RunReader


def _run_and_save(window, qtbot, path):
    window.controls.steps.setValue(50)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.status.ended, timeout=120000)
    assert window.save_run(str(path))
    with RunReader(path) as reader:
        return json.loads(reader.config.to_json())["dataset"], reader.dataset


def test_a_run_of_digits_loaded_from_the_real_data_tab_records_the_builtin_config(window, qtbot, tmp_path):
    editor = window.dataset_editor
    editor.sources.setCurrentIndex(1)
    editor.builtin.set_name("digits")
    editor.builtin_classes.set_name("odd_even")
    editor.builtin_subsample.setValue(120)
    editor.load_builtin()
    window.builder.set_spec({"input_dim": 64, "blocks": [{"type": "dense", "width": 1, "bias": False}]})
    recorded, dataset = _run_and_save(window, qtbot, tmp_path / "digits.h5")
    assert recorded == {"kind": "builtin", "builtin": "digits",
                        "params": {"classes": "odd_even", "standardize": "global", "subsample": 120,
                                   "test_fraction": 0.2, "seed": 0}}
    # the file's points are the ones the config makes
    made = builtin_data.load_builtin("digits", classes="odd_even", subsample=120)
    assert np.array_equal(dataset.X, made.X) and np.array_equal(dataset.y, made.y)
    assert np.array_equal(dataset.X_test, made.X_test)
    # one point removed: the config no longer makes these points, so they are recorded inline
    editor.model.remove([0])
    recorded, dataset = _run_and_save(window, qtbot, tmp_path / "edited.h5")
    assert recorded["kind"] == "inline" and len(recorded["y"]) == 119 and dataset.n == 119
    # undo: the loaded points again, recorded as the builtin dataset
    editor.model.undo_stack.undo()
    recorded, _ = _run_and_save(window, qtbot, tmp_path / "undone.h5")
    assert recorded["kind"] == "builtin" and recorded["params"]["subsample"] == 120
