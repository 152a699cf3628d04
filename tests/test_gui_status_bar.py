"""The status bar: step of how many, progress and time left while a run goes on, and a rate that
counts only the steps this run took (a continued run starts at its parent's last step)."""

import numpy as np
import pytest
from PySide6.QtWidgets import QStatusBar

from margin_explorer.app.durations import duration
from margin_explorer.app.status_bar import StatusFields


@pytest.mark.parametrize("seconds, text", [(0.2, "< 1 s"), (8.4, "8 s"), (59.4, "59 s"), (185, "3 min"),
                                            (3600, "1 h"), (4830, "1 h 20 min")])
def test_time_left_is_as_precise_as_an_estimate_deserves(seconds, text):
    assert duration(seconds) == text


def _session(steps: int, wall: float, total: int, start: int = 0):
    from margin_explorer.app.session import RunSession
    from margin_explorer.core.presets import load_preset

    config = load_preset("relu2-blobs")
    config.run.steps = total
    session = RunSession(config, config.dataset.build())
    session.start_step = start
    records = np.arange(start, steps + 1, dtype=np.int64)
    session.lead.append({"step": records, "wall_time": np.linspace(0.0, wall, len(records)),
                    "normalized_margin": np.full(len(records), 0.25), "log_loss": np.full(len(records), -12.5)},
                   step=steps)
    return session


@pytest.fixture
def status(qtbot):
    bar = QStatusBar()
    qtbot.addWidget(bar)
    run_status = StatusFields(bar)
    run_status.bar = bar  # the fields live as long as their bar
    bar.show()
    return run_status


def test_a_running_run_shows_its_progress_and_time_left(status):
    session = _session(5000, 2.0, 20000)  # 2,500 steps/s: 15,000 steps are 6 s away
    status.show("running", session)
    fields = status.fields
    assert fields["step"].text() == "step 5,000 of 20,000"
    assert status.progress.isVisible() and status.progress.value() == 250
    assert fields["rate"].text() == "2,500 steps/s"
    assert fields["elapsed"].text() == "2.0 s, 6 s left"
    assert fields["margin"].text() == "γ 0.25" and fields["loss"].text() == "log L -12.5"
    status.show("paused", session)  # no time runs out while paused; the progress stays
    assert fields["elapsed"].text() == "2.0 s" and status.progress.isVisible()
    status.show("finished", session)
    assert not status.progress.isVisible()


def test_an_unlimited_run_has_no_progress_and_no_run_none_at_all(status):
    status.show("running", _session(5000, 2.0, 0))
    assert status.fields["step"].text() == "step 5,000" and not status.progress.isVisible()
    assert "left" not in status.fields["elapsed"].text()
    status.show("idle", None)
    assert all(status.fields[k].text() == "-" for k in ("step", "rate", "elapsed", "margin", "loss"))


def test_a_continued_run_counts_only_its_own_steps(status):
    # continued from step 100,000 for 10,000 more: 4,000 taken in 2 s
    session = _session(104000, 2.0, 110000, start=100000)
    status.show("running", session)
    assert status.fields["rate"].text() == "2,000 steps/s"  # not 104,000 / 2
    assert status.progress.value() == 400
    assert status.fields["elapsed"].text() == "2.0 s, 3 s left"


def test_a_run_that_collapsed_says_so_beside_its_state(status):
    session = _session(400, 2.0, 400)
    message = "unstable at step 312: log L rose from -2.1e+11 (step 300) to 95.5, past l(0); accuracy 1.0 -> 0.5"
    session.lead.append({}, events=[{"step": 312, "kind": "unstable", "message": message}])
    status.show("finished", session)
    assert status.fields["status"].text() == "finished, unstable at step 312"
    assert status.fields["status"].toolTip() == message
    status.show("finished", _session(400, 2.0, 400))  # a healthy run: the state alone
    assert status.fields["status"].text() == "finished"
