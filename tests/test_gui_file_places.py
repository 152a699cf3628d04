"""File dialogs open in the last folder used, then the documents folder, never the repository, and
propose names without spaces, commas or parentheses (issue 18)."""

from pathlib import Path

from margin_explorer.widgets.file_places import slug, start_folder

ROOT = Path(__file__).resolve().parent.parent


def test_names_are_safe_slugs():
    assert slug("Two-layer ReLU network, blobs (modified)") == "two-layer-relu-network-blobs-modified"
    assert slug("run [seed=3]") == "run-seed-3"
    assert slug("(((") == "run" and slug("", "plots") == "plots"


def test_save_dialogs_open_in_the_last_folder_with_a_slug(window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    asked = []
    chosen = tmp_path / "talk" / "mine.h5"
    chosen.parent.mkdir()

    def fake_save(parent, title, proposal, filters):
        asked.append(proposal)
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    first = Path(window.files.ask_save("Save run", "Two-layer ReLU network, blobs (modified)", ".h5", "Runs (*.h5)")[0])
    assert first == chosen
    proposed = Path(asked[0])
    assert proposed.name == "two-layer-relu-network-blobs-modified.h5"
    assert ROOT not in proposed.parents and proposed.parent != Path.cwd()
    window.files.ask_save("Export metrics", "relu (continued)", ".csv", "CSV (*.csv)")
    assert Path(asked[1]) == chosen.parent / "relu-continued.csv"  # the folder chosen last time
    assert start_folder(window.settings) == str(chosen.parent)
