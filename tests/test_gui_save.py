"""The window's Save run follows the command line's rule (core/output_path.py, issue 16 item 2):
it asks before replacing, replaces only a run file, and a refusal reaches the message banner."""

import hashlib

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from margin_explorer.core.runfile import RunReader


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finish(window, qtbot, steps=400):
    window.controls.steps.setValue(steps)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=60000)


def test_save_refuses_what_is_not_a_run_and_replaces_a_run_only_when_told(window, qtbot, tmp_path):
    tmp_path = tmp_path / "saves"  # the window's settings file lives in tmp_path itself
    tmp_path.mkdir()
    _finish(window, qtbot)
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes\n")
    assert not window.save_run(str(notes), overwrite=True)
    assert "is not a Margin Explorer run file" in window.banner.text and "\n" not in window.banner.text
    assert notes.read_text() == "my notes\n"
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    assert not window.save_run(str(folder), overwrite=True) and "is a folder" in window.banner.text

    run = tmp_path / "run.h5"
    assert window.save_run(str(run))
    before = _digest(run)
    assert not window.save_run(str(run)) and "already exists" in window.banner.text
    assert _digest(run) == before
    assert window.save_run(str(run), overwrite=True)  # the user confirmed the dialog's question
    with RunReader(run) as reader:
        assert reader.status == "finished" and reader.final_step == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.h5", "notes.h5", "run.h5"]


def test_the_save_dialog_confirms_and_asks_about_a_familys_member_files(window, qtbot, tmp_path, monkeypatch):
    tmp_path = tmp_path / "saves"
    tmp_path.mkdir()
    asked = []
    window.confirm = lambda title, text: asked.append(text) or False  # the user says No
    controls = window.controls
    controls.family.setCurrentIndex(controls.family.findText("seed"))
    controls.steps.setValue(400)
    controls.family_runs.setValue(2)
    qtbot.keyClick(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.status == "finished", timeout=60000)
    calls = []

    def dialog(parent, caption, name, filters, *rest):
        calls.append(rest)  # no options: QFileDialog then asks before replacing the chosen file
        return str(tmp_path / "fam.h5"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    member = tmp_path / "fam-01.h5"
    member.write_text("someone else's\n")
    window.files.save_dialog()
    assert calls == [()] and len(asked) == 1 and "fam-01.h5" in asked[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fam-01.h5"]  # declined: nothing written
    window.confirm = lambda title, text: True  # Yes: but a file that is not a run is still refused
    window.files.save_dialog()
    assert "fam-01.h5: is not a Margin Explorer run file" in window.banner.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fam-01.h5"] and member.read_text() == "someone else's\n"
    member.unlink()
    window.files.save_dialog()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fam-00.h5", "fam-01.h5"]
    window.files.save_dialog()  # again, over the family's own files: confirmed and replaced
    for k in range(2):
        with RunReader(tmp_path / f"fam-{k:02d}.h5") as reader:
            assert reader.family["index"] == k and reader.status == "finished"
