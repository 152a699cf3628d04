"""Saving the live run and opening saved runs beside it."""

from __future__ import annotations

from pathlib import Path

from margin_explorer.core.errors import MarginExplorerError


class RunFiles:
    """Save and open runs (a part of MainWindow)."""

    def save_run(self, path: str, overwrite: bool = False) -> bool:
        """Save the live run; ``overwrite`` (the user confirmed) may replace run files, nothing
        else (core/output_path.py): a refusal goes to the banner."""
        if self.session is None or self.session.n_records == 0:
            self.show_error("Nothing to save yet: run first.")
            return False
        try:
            written = self.session.save(path, device=self.session.info.get("device", "cpu"), overwrite=overwrite)
        except (MarginExplorerError, OSError) as exc:
            self.show_error(f"Could not save: {exc}")  # the message names the file
            return False
        live = self.runs.live_entry()
        if live is not None:
            live.path = str(written[0])
        self.files.remember(written)
        more = f" .. {Path(written[-1]).name} ({len(written)} runs of the family)" if len(written) > 1 else ""
        self.statusBar().showMessage(f"Saved {written[0]}{more}", 5000)
        return True

    def open_runs(self, paths: list[str]) -> bool:
        """Add saved runs to the plots, beside whatever is there. The first run's setup fills the
        editors unless a live run is using them; a bad file gets its message and costs nothing."""
        try:
            return self._open_runs(paths)
        except Exception as exc:  # a bug, not the user's file: the window says so, not only stderr
            import traceback

            traceback.print_exc()
            self.show_error(f"Could not open {', '.join(map(str, paths))[:500]}: unexpected {type(exc).__name__}: {exc}")
            return False

    def _open_runs(self, paths: list[str]) -> bool:
        opened = self.runs.open([str(p) for p in paths])
        if not opened:
            return False
        self.files.remember([e.path for e in opened])
        if not self.controller.state.going:
            self.load_config(opened[0].session.config, opened[0].session.dataset)
            self.runs.show_final(opened[0])  # loading its points cleared the boundary's run picture
            if not self.banner.text.startswith(opened[0].name):
                self.banner.clear()
        self.plots.set_live(False)
        self.plots.refresh(force=True)
        self._update_controls()
        return True
