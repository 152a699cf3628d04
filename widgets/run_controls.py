"""The run controller panel: loss, optimizer and its parameters, step rule, steps, seed, dtype,
device, recording policy; and the Run / Pause, Step, Stop, Reset buttons."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from margin_explorer.core.config import FamilyConfig, LossConfig, OptimizerConfig, RecordingConfig, RunSettings
from margin_explorer.core.errors import ConfigError
from margin_explorer.core.run_status import RunStatus

from .named_combo import NamedCombo
from .palette import ink

RUN_BUTTON = {RunStatus.RUNNING: "Pause", RunStatus.PAUSED: "Resume"}  # else "Run"
TIPS = {
    "loss": "exponential: l(q) = exp(-q); logistic: l(q) = log(1 + exp(-q)); q = y f(x)",
    "reduction": "L = sum_i l(q_i) as in the papers, or the mean (rescales the step and thresholds)",
    "optimizer": ("gd: full-batch gradient descent; normalized_gd: step along grad/||grad||; sgd: minibatches; "
                  "sign: steepest descent in l_inf; coordinate: steepest descent in l1; momentum: heavy ball; adam"),
    "lr": "Step size eta (scientific notation accepted, e.g. 1e-3)",
    "rule": ("constant: eta; loss_normalized: eta / L (a fixed step on log L); lyu_li: eta / (L log(1/L)^(2-2/M)), "
             "Lyu and Li's schedule, which keeps the norm's growth polynomial for M > 1; loss-based: alpha / L "
             "with alpha from the step size, grown x2^(1/5) after a step that lowers the loss, and a step that "
             "raises it undone with alpha /2^(1/10) (Lyu and Li's experiments; gradient descent only)"),
    "steps": "Number of gradient steps; 0 runs until you stop it",
    "seed": "Seeds the initialization and the minibatches: the same seed gives the same trajectory",
    "batch": "Samples per minibatch (sgd only), drawn without replacement each step",
    "momentum": ("Heavy-ball coefficient beta (momentum only): v <- beta v + g, theta <- theta - eta v, with g the "
                 "gradient as the step rule scales it"),
    "advanced": "Precision, device and how densely the run is recorded",
    "dtype": "float64 by default: the margin differences that matter are tiny",
    "device": "cpu always; cuda or mps when PyTorch sees one",
    "dense": "Record every step up to this step, then log-spaced",
    "per_decade": "Records per decade of steps after the dense phase",
    "family": ("Train several runs together that differ only in this setting; the plots show their median with "
               "the band from the 25th to the 75th percentile, and saving writes one file per run"),
    "runs": "How many runs the family has (seeds: Seed, Seed + 1, ...)",
    "range": "The family's values, log-spaced from the first to the last",
    "pace": ("How fast the run goes: slow enough to talk over (10 steps per second) up to full speed. A setting "
             "of the window, not of the run: the results are the same at any pace"),
}

# the names stay in the config; the drop-downs show the words
OPTIMIZERS = [("gd", "gradient descent"), ("normalized_gd", "normalized GD"), ("sgd", "SGD"),
              ("sign", "sign descent (l∞)"), ("coordinate", "coordinate descent (l1)"), ("momentum", "momentum"),
              ("adam", "Adam")]
STEP_RULES = [("loss_normalized", "loss-normalized"), ("lyu_li", "Lyu and Li"), ("constant", "constant"),
              ("loss_based", "loss-based α / L (adaptive)")]

PACES = [("full speed", 0.0), ("3,000 steps/s", 3000.0), ("1,000 steps/s", 1000.0), ("300 steps/s", 300.0),
         ("100 steps/s", 100.0), ("30 steps/s", 30.0), ("10 steps/s", 10.0)]


class ScientificEdit(QLineEdit):
    """A number field that takes and shows scientific notation (1e-3), for step sizes."""

    def __init__(self, value: float, parent=None):
        super().__init__(parent)
        validator = QDoubleValidator(0.0, 1e12, 12, self)
        validator.setNotation(QDoubleValidator.ScientificNotation)
        self.setValidator(validator)
        self.set_value(value)

    def set_value(self, value: float) -> None:
        self.setText(f"{value:g}")

    def value(self) -> float:
        try:
            return float(self.text())
        except ValueError:
            return float("nan")


class RunControls(QWidget):
    runToggled = Signal()
    stepRequested = Signal(int)
    stopRequested = Signal()
    resetRequested = Signal()
    settingsChanged = Signal()
    paceChanged = Signal(float)  # steps per second; 0: full speed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss = NamedCombo(["exponential", "logistic"])
        self.reduction = NamedCombo(["sum", "mean"])
        self.optimizer = NamedCombo(OPTIMIZERS)
        self.lr = ScientificEdit(0.1)
        self.rule = NamedCombo(STEP_RULES)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1_000_000)
        self.batch.setValue(16)
        self.momentum = QDoubleSpinBox()
        self.momentum.setRange(0, 0.999)
        self.momentum.setDecimals(3)
        self.momentum.setValue(0.9)
        self.steps = QSpinBox()
        self.steps.setRange(0, 2_000_000_000)
        self.steps.setValue(20000)
        self.steps.setSpecialValueText("unlimited")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.dtype = NamedCombo(["float64", "float32"])
        self.device = QComboBox()
        self.device.addItem("cpu")
        self.dense = QSpinBox()
        self.dense.setRange(0, 10_000_000)
        self.dense.setValue(1000)
        self.per_decade = QSpinBox()
        self.per_decade.setRange(1, 100_000)
        self.per_decade.setValue(200)
        self.family = QComboBox()
        for label, vary in [("one run", ""), ("seed", "seed"), ("step size η", "lr"), ("init scale", "init_scale")]:
            self.family.addItem(label, vary)
        self.family_runs = QSpinBox()
        self.family_runs.setRange(2, 4096)
        self.family_runs.setValue(8)
        self.family_from = ScientificEdit(0.01)
        self.family_to = ScientificEdit(1.0)
        self.step_size = QSpinBox()
        self.step_size.setRange(1, 1_000_000)
        self.step_size.setValue(100)
        self.step_size.setToolTip("Steps taken by Step (S)")
        self.pace = QComboBox()
        self.pace.setObjectName("pace")
        for label, rate in PACES:
            self.pace.addItem(label, rate)
        self.pace.setToolTip(TIPS["pace"])
        self.pace.currentIndexChanged.connect(lambda _i: self.paceChanged.emit(float(self.pace.currentData())))

        def page(rows) -> tuple[QWidget, QFormLayout]:
            form = QFormLayout()
            for label, widget, tip in rows:
                widget.setToolTip(TIPS[tip])
                form.addRow(label, widget)
            widget = QWidget()
            widget.setLayout(form)
            return widget, form

        training, self._training_form = page([
            ("Loss", self.loss, "loss"), ("Reduction", self.reduction, "reduction"),
            ("Optimizer", self.optimizer, "optimizer"), ("Step size η", self.lr, "lr"),
            ("Step rule", self.rule, "rule"), ("Batch size", self.batch, "batch"),
            ("Momentum β", self.momentum, "momentum"),
            ("Steps", self.steps, "steps"), ("Seed", self.seed, "seed")])
        family, _form = page([("Vary", self.family, "family"), ("Runs", self.family_runs, "runs"),
                              ("From", self.family_from, "range"), ("To", self.family_to, "range")])
        advanced, _form = page([("Precision", self.dtype, "dtype"), ("Device", self.device, "device"),
                                ("Record every step until", self.dense, "dense"),
                                ("Records per decade", self.per_decade, "per_decade")])
        # tabs, and only the optimizer's own fields shown, keep the dock short enough to leave
        # room below for the claims, the reason a preset is run
        settings = QTabWidget()
        settings.setObjectName("run-settings")
        settings.addTab(training, "Training")
        settings.addTab(family, "Family")
        settings.addTab(advanced, "Advanced")
        settings.setTabToolTip(1, TIPS["family"])
        settings.setTabToolTip(2, TIPS["advanced"])
        self.settings_tabs = settings

        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("run-button")
        self.run_button.setToolTip("Run / Pause (Space)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Take the given number of steps (S)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the run; its results stay for saving")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Discard the run and go back to the initialization (R)")
        self.run_button.clicked.connect(self.runToggled)
        self.step_button.clicked.connect(lambda: self.stepRequested.emit(self.step_size.value()))
        self.stop_button.clicked.connect(self.stopRequested)
        self.reset_button.clicked.connect(self.resetRequested)
        buttons = QGridLayout()
        buttons.addWidget(self.run_button, 0, 0)
        buttons.addWidget(self.step_button, 0, 1)
        buttons.addWidget(self.step_size, 0, 2)
        buttons.addWidget(self.stop_button, 1, 0)
        buttons.addWidget(self.reset_button, 1, 1)
        buttons.addWidget(self.pace, 1, 2)  # changes a run as it goes: beside the buttons, not in the tabs
        self.problem_label = QLabel()
        self.problem_label.setObjectName("run-problem")
        self.problem_label.setWordWrap(True)
        self.restyle()

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.problem_label)
        layout.addWidget(settings)
        layout.addStretch(1)
        for w in (self.loss, self.reduction, self.optimizer, self.rule, self.dtype, self.device, self.family):
            w.currentTextChanged.connect(self._changed)
        for w in (self.batch, self.steps, self.seed, self.dense, self.per_decade, self.family_runs):
            w.valueChanged.connect(self._changed)
        self.momentum.valueChanged.connect(self._changed)
        for w in (self.lr, self.family_from, self.family_to):
            w.textChanged.connect(self._changed)
        self._changed()

    def restyle(self, font_scale: float = 1.0) -> None:
        """The theme's colours (widgets/palette.py ink)."""
        self.problem_label.setStyleSheet(f"color: {ink('bad')};")

    def _changed(self, *_args) -> None:
        self._enable_optimizer_fields()
        self.settingsChanged.emit()

    def _enable_optimizer_fields(self) -> None:
        kind = self.optimizer.name()
        self.batch.setEnabled(kind == "sgd")
        self.momentum.setEnabled(kind == "momentum")
        # a field that does not apply is not shown at all: two rows less for the claims below
        self._training_form.setRowVisible(self.batch, kind == "sgd")
        self._training_form.setRowVisible(self.momentum, kind == "momentum")
        vary = self.family.currentData()
        self.family_runs.setEnabled(bool(vary))
        for w in (self.family_from, self.family_to):
            w.setEnabled(vary in ("lr", "init_scale"))

    def add_devices(self, devices: list[str]) -> None:
        for d in devices:
            if self.device.findText(d) < 0:
                self.device.addItem(d)

    def set_state(self, state: RunStatus, problem: str | None) -> None:
        """Enable the buttons for a controller state (idle, running, paused)."""
        state = RunStatus(state)
        self.problem_label.setText(problem or "")
        can_run = problem is None
        self.run_button.setText(RUN_BUTTON.get(state, "Run"))
        self.run_button.setEnabled(can_run or state.going)
        self.run_button.setToolTip(problem or "Run / Pause (Space)")
        self.step_button.setEnabled(can_run and state != RunStatus.RUNNING)
        self.stop_button.setEnabled(state.going)
        for w in (self.loss, self.reduction, self.optimizer, self.lr, self.rule, self.batch, self.momentum, self.steps,
                  self.seed, self.dtype, self.device, self.dense, self.per_decade, self.family, self.family_runs,
                  self.family_from, self.family_to):
            w.setEnabled(not state.going)
        if not state.going:
            self._enable_optimizer_fields()

    # --------------------------------------------------------------- config in and out
    def sections(self) -> dict:
        """The loss, optimizer, run and recording sections of a RunConfig, validated."""
        lr = self.lr.value()
        if not lr > 0:
            raise ConfigError("optimizer.lr: the step size must be a number > 0")
        kind = self.optimizer.name()
        optimizer = {"kind": kind, "lr": lr, "step_rule": self.rule.name(), "momentum": self.momentum.value()}
        if kind == "sgd":
            optimizer["batch_size"] = self.batch.value()
        sections = {
            "loss": {"kind": self.loss.name(), "reduction": self.reduction.name()},
            "optimizer": optimizer,
            "run": {"steps": self.steps.value(), "seed": self.seed.value(), "dtype": self.dtype.name(),
                    "device": self.device.currentText()},
            "recording": {"every_step_until": self.dense.value(), "per_decade": self.per_decade.value()},
        }
        family = self.family_section()
        if family is not None:
            sections["family"] = family
        LossConfig.from_dict(sections["loss"], "loss")
        OptimizerConfig.from_dict(sections["optimizer"], "optimizer")
        RunSettings.from_dict(sections["run"], "run")
        RecordingConfig.from_dict(sections["recording"], "recording")
        return sections

    def family_section(self) -> dict | None:
        """The family section: seeds Seed .. Seed + S - 1, or S log-spaced values From .. To."""
        vary, runs = self.family.currentData(), self.family_runs.value()
        if not vary:
            return None
        if vary == "seed":
            values = [self.seed.value() + k for k in range(runs)]
        else:
            low, high = self.family_from.value(), self.family_to.value()
            if not (low > 0 and high > 0):
                raise ConfigError(f"family: the values of {self.family.currentText()} must be numbers > 0")
            values = [low * (high / low) ** (k / (runs - 1)) for k in range(runs)]
        FamilyConfig.from_dict({"vary": vary, "values": values}, "family")
        return {"vary": vary, "values": values}

    def problem(self) -> str | None:
        try:
            self.sections()
        except ConfigError as exc:
            return f"Training: {exc}"
        return None

    def set_sections(self, config) -> None:
        """Show a RunConfig's loss, optimizer, run and recording settings."""
        self.loss.set_name(config.loss.kind)
        self.reduction.set_name(config.loss.reduction)
        self.optimizer.set_name(config.optimizer.kind)
        self.lr.set_value(config.optimizer.lr)
        self.rule.set_name(config.optimizer.step_rule)
        if config.optimizer.batch_size:
            self.batch.setValue(config.optimizer.batch_size)
        self.momentum.setValue(config.optimizer.momentum)
        self.steps.setValue(config.run.steps)
        self.seed.setValue(config.run.seed)
        self.dtype.set_name(config.run.dtype)
        self.add_devices([config.run.device])
        self.device.setCurrentText(config.run.device)
        self.dense.setValue(config.recording.every_step_until)
        self.per_decade.setValue(config.recording.per_decade)
        family = config.family
        self.family.setCurrentIndex(self.family.findData(family.vary) if family is not None else 0)
        if family is not None:
            self.family_runs.setValue(max(2, len(family.values)))
            if family.vary != "seed":
                self.family_from.set_value(min(family.values))
                self.family_to.set_value(max(family.values))
