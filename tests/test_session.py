"""One session type for 1..S runs (app/session.py): a single run is a session of one, read as it
is (no copies, no band); a family a session of S, read as its median with a band. Both answer
the same protocol, so the plots and the window never ask which one they hold."""

import numpy as np

from margin_explorer.app.messages import ChunkArrived, MemberChunk
from margin_explorer.app.session import RunSession
from margin_explorer.core.presets import load_preset
from margin_explorer.core.run_status import RunStatus


def _part(values, status="running", events=()):
    n = len(values)
    return MemberChunk({"step": np.arange(n, dtype=np.int64), "log_loss": np.asarray(values, dtype=float)},
                       [], [], [], n, np.zeros(3), status, events=list(events))


def test_a_single_run_is_a_session_of_one_read_without_copies():
    config = load_preset("relu2-blobs")
    session = RunSession(config, config.dataset.build())
    assert session.size == 1 and session.lead is session.members[0] and session.name == config.name
    event = {"step": 2, "kind": "stuck", "message": "stuck at step 2"}
    session.append_chunk(ChunkArrived([_part([3.0, 2.0, 1.0], "finished", [event])], 3, "finished"))
    values = session.get("log_loss")
    assert np.shares_memory(values, session.lead.get("log_loss"))  # the run's own buffer, not a median of one
    np.testing.assert_array_equal(values, [3.0, 2.0, 1.0])
    assert session.band("log_loss") is None and session.n_records == 3 and session.events == [event]
    # its status is the window's (StatusChanged), not the chunk's: a prepared run stays "ready"
    assert session.status == RunStatus.READY
    session.status = "finished"
    assert session.lead.status is RunStatus.FINISHED and session.status.ended


def test_a_family_is_a_session_of_its_members_with_a_median_and_a_band():
    config = load_preset("relu2-blobs").with_family(seed=[0, 1, 2])
    session = RunSession(config, config.dataset.build())
    assert session.size == 3 and [m.config.run.seed for m in session.members] == [0, 1, 2]
    session.append_chunk(ChunkArrived([_part([1.0, 4.0]), _part([2.0, 6.0]), _part([9.0, 5.0], "diverged")], 2,
                                      "running"))
    assert [m.status for m in session.members] == ["running", "running", "diverged"]
    np.testing.assert_array_equal(session.get("log_loss"), [2.0, 5.0])  # the medians, row by row
    low, high = session.band("log_loss")
    np.testing.assert_array_equal(low, [1.5, 4.5])
    np.testing.assert_array_equal(high, [5.5, 5.5])
    assert session.events == []  # a median line shows no member's events
    assert session.status == RunStatus.READY  # the family's own, set by the window
