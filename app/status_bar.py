"""The status bar's run fields: state, step of how many, progress with the time left, training
rate and time, and the latest normalized margin and log L."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from margin_explorer.core.run_status import RunStatus

from .durations import time_left
from .run_header import status_text

FIELDS = [("status", "Run state"), ("step", "Steps taken (of the run's steps, when it has a number)"),
          ("rate", "Training steps per second (a family: all its runs' steps together)"),
          ("elapsed", "Training time, and while a run with a number of steps goes on, about how long it has left"),
          ("margin", "Normalized margin gamma = q_min / ||theta||^M"),
          ("loss", "log L (the loss itself underflows; its log does not)")]


def _format(value, digits=5) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if value != value else f"{value:.{digits}g}"


class StatusFields:
    """The fields, added to ``bar`` as permanent widgets; ``show`` fills them."""

    def __init__(self, bar: QStatusBar):
        self.fields: dict[str, QLabel] = {}
        self.progress = QProgressBar()
        self.progress.setObjectName("status-progress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.progress.setMaximumWidth(110)
        self.progress.setToolTip("How much of the run's steps are taken")
        self.progress.setVisible(False)
        for key, tip in FIELDS:
            label = QLabel("-")
            label.setObjectName(f"status-{key}")
            label.setToolTip(tip)
            label.setMinimumWidth(90)
            bar.addPermanentWidget(label)
            self.fields[key] = label
            if key == "step":
                bar.addPermanentWidget(self.progress)

    def show(self, status: RunStatus, session) -> None:
        """The fields for the run ``session`` (None: no run) in state ``status``."""
        status, fields = RunStatus(status), self.fields
        events = list(session.events) if session is not None else []
        # a run that collapsed or got stuck says so beside its state, the sentence in the tip
        fields["status"].setText(status_text(status, events))
        fields["status"].setToolTip(events[-1]["message"] if events else FIELDS[0][1])
        if session is None:
            for key in ("step", "rate", "elapsed", "margin", "loss"):
                fields[key].setText("-")
            self.progress.setVisible(False)
            return
        elapsed = float(session.last("wall_time", 0.0))
        start = session.start_step  # a continued run's clock starts at its parent's last step
        taken = session.step - start
        total = session.config.run.steps  # 0: until stopped
        fields["step"].setText(f"step {session.step:,} of {total:,}" if total else f"step {session.step:,}")
        runs = session.size  # a family: steps of all its runs together
        fields["rate"].setText(f"{taken * runs / elapsed:,.0f} steps/s" if elapsed > 0 and taken > 0 else "-")
        left = time_left(total, session.step, start, elapsed) if status == RunStatus.RUNNING else None
        fields["elapsed"].setText(f"{elapsed:.1f} s" + (f", {left} left" if left else ""))
        going = bool(total) and status.going and total > start
        self.progress.setVisible(going)
        if going:
            self.progress.setValue(round(1000 * min(max(taken / (total - start), 0.0), 1.0)))
        fields["margin"].setText(f"γ {_format(session.last('normalized_margin'))}")
        fields["loss"].setText(f"log L {_format(session.last('log_loss'))}")
