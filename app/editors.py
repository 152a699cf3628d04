"""The editors' side of the window: the config the dataset, architecture and run panels
describe, what changed since a preset or a run's setup was loaded, and loading one."""

from __future__ import annotations

import numpy as np

from margin_explorer.core.config import MODIFIABLE, RunConfig
from margin_explorer.core.errors import MarginExplorerError
from margin_explorer.core.presets import load_preset
from margin_explorer.core.run_status import RunStatus

DEMO_PRESET = "relu2-blobs"


class ConfigEditing:
    """The config in the editors (a part of MainWindow)."""

    def current_config(self) -> RunConfig:
        """The config the panels describe; raises MarginExplorerError naming what is wrong. A
        config loaded into the panels and then edited is named "... (modified)" and lists the
        sections that changed in ``modified``."""
        dataset = self.dataset_editor.model.dataset()
        data = {"architecture": self.builder.spec_dict(), "dataset": self.dataset_editor.dataset_config(dataset).to_dict(),
                **self.controls.sections(), "name": self._config_name(),
                "description": self._preset_description, "claims": self._preset_claims}
        config = RunConfig.from_dict(data)
        modified = self._modified_sections(config, dataset)
        if modified:
            config.modified = modified
            config.name = f"{config.name} (modified)"
            base = self._base
            if "dataset" in modified and base is not None and dataset.name == base[1].name:
                config.dataset.name = f"{dataset.name}, edited"  # hand edits keep the model's name
        return config

    def _modified_sections(self, config: RunConfig, dataset) -> list[str]:
        """The sections of ``config`` that differ from the config last loaded into the panels
        (a preset, a run's setup), plus what that config already listed as modified."""
        base = self._base
        if base is None:
            return []
        loaded, loaded_data = base
        changed = set(loaded.modified)
        if not (np.array_equal(dataset.X, loaded_data.X) and np.array_equal(dataset.y, loaded_data.y)):
            changed.add("dataset")
        ours, theirs = config.to_dict(), loaded.to_dict()
        for key in ("architecture", "loss", "optimizer", "family"):
            if ours.get(key) != theirs.get(key):
                changed.add(key)
        # the step count and the device change how long and where, not the trajectory
        if {k: v for k, v in ours["run"].items() if k not in ("steps", "device")} != \
                {k: v for k, v in theirs["run"].items() if k not in ("steps", "device")}:
            changed.add("run")
        return [key for key in MODIFIABLE if key in changed]

    def _config_name(self) -> str:
        return self._preset_title or "untitled run"

    def problem(self) -> str | None:
        for problem in (self.dataset_editor.problem(), self.builder.problem(), self.controls.problem()):
            if problem:
                return problem
        return None

    def _dataset_changed(self) -> None:
        """New points (Clear, Generate, an edit, a preset): a finished run's heatmap, contours and
        support-vector rings no longer describe them."""
        if not self.controller.state.going:
            self.boundary.clear_run()

    def _network_changed(self) -> None:
        """The "not homogeneous" message is taken back once the network is homogeneous again."""
        if self.builder.badge.property("verdict") != "none":
            self.banner.drop("homogeneity")

    def _inputs_changed(self) -> None:
        model = self.dataset_editor.model
        if model.n:
            self.builder.set_input_dim(model.dim, model.image_shape)  # a CNN reads the dataset's images
            self.builder.set_classes(model.classes)  # C classes: C outputs (a last dense layer follows)
        if self.status == RunStatus.IDLE or self.status.ended:
            self.boundary.set_points(model.X if model.n else model.X.reshape(0, 2), model.y, model.multiclass)
        if self.controller.state == RunStatus.PAUSED and self.session is not None and self.session.n_records <= 1:
            self._config_changed_during_run = True
        self._update_controls()

    def _update_controls(self) -> None:
        state = self.controller.state
        self.controls.set_state(RunStatus.IDLE if state.ended else state, self.problem())

    def load_config(self, config: RunConfig, dataset=None) -> None:
        """Show a config in the panels (dataset, architecture, training settings). A saved run
        passes its own ``dataset`` (the file's dataset/X and y): its config's dataset is never
        built, since a "file" dataset there names a path the run file chose."""
        if dataset is None:
            try:
                dataset = config.dataset.build()
            except MarginExplorerError as exc:
                self.show_error(str(exc))
                return
        self.dataset_editor.load(dataset)
        if config.dataset.kind == "generator":
            self.dataset_editor.show_generator(config.dataset.generator, config.dataset.params)
        elif config.dataset.kind == "builtin":  # a run of these points records them as this builtin dataset
            self.dataset_editor.show_builtin(config.dataset.builtin, config.dataset.params, dataset)
        self.builder.set_spec(config.architecture.to_dict())
        self.controls.set_sections(config)
        self._preset_title = config.name.removesuffix(" (modified)")
        self._preset_description, self._preset_claims = config.description, list(config.claims)
        self._base = (config, dataset)  # what "modified" is measured against
        self._inputs_changed()
        self.update_claims()

    def load_preset(self, name: str) -> None:
        if not self._may_discard("Load the preset and discard the current run?"):
            return
        try:
            config = load_preset(name)
        except MarginExplorerError as exc:
            self.show_error(str(exc))
            return
        self._stop_and_forget()
        self.banner.clear()  # the last preset's or run's message is about something else
        self.load_config(config)
        if config.description:
            self.banner.show_message(f"{config.name}: {config.description}", kind="info", topic="preset")
        self.apply_view(config)  # after the description: an unknown plot's error replaces it

    def _load_startup_config(self) -> None:
        text = self.settings.value("last_config", "")
        if text:
            try:
                self.load_config(RunConfig.from_json(str(text)))
                return
            except MarginExplorerError:
                pass  # a config from an older version: fall back to the demo
        self.load_config(load_preset(DEMO_PRESET))

    def use_setup(self, config: RunConfig, dataset=None) -> None:
        """Put a run's dataset, network and settings into the editors, ready for a new run."""
        self.load_config(config, dataset)
        self.statusBar().showMessage("The run's setup is in the editors: press Run to start a new run from it", 6000)
