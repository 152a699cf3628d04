"""Families in the window (issue #6): chosen in the Family tab, trained together, drawn as a
median with a quartile band, saved as one file per member and reopened as one family."""

import numpy as np
from PySide6.QtCore import Qt

from margin_explorer.core.runfile import RunReader


def test_a_seed_family_trains_shows_its_band_and_saves_one_file_per_run(window, qtbot, tmp_path):
    controls = window.controls
    controls.steps.setValue(1500)
    controls.seed.setValue(5)
    controls.family.setCurrentIndex(controls.family.findText("seed"))
    controls.family_runs.setValue(4)
    assert window.current_config().family.values == [5, 6, 7, 8]
    qtbot.keyClick(window, Qt.Key_Space)
    # generous: 4 x 1,500 steps take ~10 s on a quiet machine, minutes on a loaded one
    qtbot.waitUntil(lambda: window.status == "finished", timeout=240000)
    family = window.session
    assert len(family.members) == 4 and all(m.step == 1500 for m in family.members)
    qtbot.wait(200)
    window.plots.refresh(force=True)

    # the line is the median over the four runs, record by record; the band their quartiles
    margins = np.stack([m.get("normalized_margin") for m in family.members])
    np.testing.assert_allclose(family.get("normalized_margin"), np.median(margins, axis=0), rtol=1e-12)
    low, high = family.band("normalized_margin")
    np.testing.assert_allclose(low, np.percentile(margins, 25, axis=0), rtol=1e-12)
    assert np.all(high >= family.get("normalized_margin")) and np.all(low <= family.get("normalized_margin"))
    plot = window.plots.plots["margin"]
    assert (0, "normalized_margin", "band") in plot.bands
    x, y = plot.curves[(0, "normalized_margin", "band", "high")].getData()
    assert len(x) > 50 and x[-1] == 1500 and np.isclose(y[-1], high[-1])

    out = tmp_path / "seeds.h5"
    assert window.save_run(str(out))
    paths = sorted(tmp_path.glob("seeds-*.h5"))
    assert [p.name for p in paths] == ["seeds-00.h5", "seeds-01.h5", "seeds-02.h5", "seeds-03.h5"]
    for k, path in enumerate(paths):
        with RunReader(path) as reader:
            assert reader.config.run.seed == 5 + k and reader.config.family is None
            assert reader.family["index"] == k and reader.family["size"] == 4
            assert (reader.family["vary"], reader.family["value"]) == ("seed", 5 + k) and "config" not in reader.family
            np.testing.assert_array_equal(reader.metrics["normalized_margin"], family.members[k].get("normalized_margin"))

    # reopened together they are one family again; one alone is a run of its own
    window.runs.set_live(None)
    assert window.open_runs([str(p) for p in paths])
    entry = window.runs.entries[-1]
    assert entry.name.endswith("(family of 4)") and len(window.runs.entries) == 1
    np.testing.assert_allclose(entry.session.get("normalized_margin"), family.get("normalized_margin"), rtol=1e-12)
    assert window.open_runs([str(paths[2])])
    assert len(window.runs.entries) == 2 and window.runs.entries[-1].session.size == 1


def test_a_step_size_family_takes_log_spaced_values_and_rejects_bad_ends(window, qtbot):
    controls = window.controls
    controls.family.setCurrentIndex(controls.family.findText("step size η"))
    controls.family_runs.setValue(3)
    controls.family_from.clear()
    qtbot.keyClicks(controls.family_from, "1e-3")
    controls.family_to.clear()
    qtbot.keyClicks(controls.family_to, "1e-1")
    np.testing.assert_allclose(window.current_config().family.values, [1e-3, 1e-2, 1e-1])
    controls.family_to.clear()
    assert "family" in window.problem() and not controls.run_button.isEnabled()


def test_a_diverged_member_leaves_the_statistics_to_the_others():
    """Rows are final once every running member has them; past a diverged member's end the
    median is over the others."""
    from margin_explorer.app.messages import ChunkArrived, MemberChunk
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.architecture import mlp
    from margin_explorer.core.config import FamilyConfig
    from margin_explorer.core.datasets import generate
    from tests.helpers import config_for

    data = generate("blobs", n=10, seed=0)
    config = config_for(mlp(2, [4], "relu"), data)
    config.family = FamilyConfig("seed", [0, 1, 2])
    family = RunSession(config, data)

    def payload(values, status):
        n = len(values)
        return MemberChunk({"step": np.arange(n), "log_loss": np.asarray(values, dtype=float)}, [], [], [], n, None,
                           status)

    def chunk(*members):
        return ChunkArrived(list(members), max(m.step for m in members), "running")

    family.append_chunk(chunk(payload([1, 2], "running"), payload([3, 4, 5], "running"), payload([5], "diverged")))
    np.testing.assert_array_equal(family.get("log_loss"), [3, 3])  # row 2 waits for member 0
    assert list(family.get("step")) == [0, 1]
    family.append_chunk(chunk(payload([], "running"), payload([], "running"), payload([], "diverged")))
    family.members[0].append({"step": np.array([2]), "log_loss": np.array([7.0])})
    np.testing.assert_array_equal(family.get("log_loss"), [3, 3, 6])  # median of 7 and 5, member 2 gone
    low, high = family.band("log_loss")
    np.testing.assert_array_equal(low[-1:], [5.5])
    np.testing.assert_array_equal(high[-1:], [6.5])
