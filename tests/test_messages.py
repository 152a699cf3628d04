"""The messages between the window and its training process (app/messages.py): every command and
every event crosses the process boundary (pickled, as a multiprocessing queue does) and arrives
equal, arrays included; and nothing else travels (no bare tuples or dicts)."""

import dataclasses
import pickle

import numpy as np
import pytest

from margin_explorer.app import messages as m
from margin_explorer.core.run_status import RunStatus

RNG = np.random.default_rng(0)


def _info():
    return m.RunInfo(layer_names=["0.weight", "2.weight"], n_params=12,
                     homogeneity={"verdict": "exact", "degree": 2.0, "explanation": "homogeneous of degree 2"},
                     reference_margin=0.31, reference_margin_steepest=None, params=RNG.normal(size=12), device="cpu",
                     family_size=4, engine_note="the batched engine")


def _member(status=RunStatus.RUNNING):
    return m.MemberChunk(records={"step": np.arange(5, dtype=np.int64), "log_loss": RNG.normal(size=5),
                                  "sample_margins": RNG.normal(size=(5, 3))},
                         snapshot_steps=[0, 4], snapshot_params=[RNG.normal(size=12), RNG.normal(size=12)],
                         snapshot_metrics=[{"kkt_eps": 0.5}, {"kkt_eps": 0.25}], step=4, params=RNG.normal(size=12),
                         status=status, reason="", events=[{"step": 3, "kind": "stuck", "message": "stuck at step 3"}],
                         optimizer_state={"velocity": RNG.normal(size=12), "t": 4})


EXAMPLES = {
    m.StartRun: m.StartRun('{"name": "x"}', False, RNG.normal(size=12), 300, {"velocity": RNG.normal(size=12)}),
    m.Pause: m.Pause(),
    m.Resume: m.Resume(),
    m.TakeSteps: m.TakeSteps(100),
    m.Stop: m.Stop(),
    m.SetPace: m.SetPace(40.0),
    m.AskGeometry: m.AskGeometry(7, RNG.normal(size=(10, 2)), np.sign(RNG.normal(size=10))),
    m.AskDevices: m.AskDevices(),
    m.Quit: m.Quit(),
    m.Started: m.Started(_info()),
    m.ChunkArrived: m.ChunkArrived([_member(), _member(RunStatus.DIVERGED)], 4, RunStatus.RUNNING),
    m.BoundaryGrid: m.BoundaryGrid(RNG.normal(size=(96, 96)).astype(np.float32), (-1.0, -1.5, 2.0, 3.0)),
    m.StatusChanged: m.StatusChanged(RunStatus.DIVERGED, "the loss is not finite at step 12"),
    m.GeometryFound: m.GeometryFound(7, {"separable": True, "margin": 0.4}),
    m.DevicesFound: m.DevicesFound(["cuda", "cuda:1"]),
    m.WorkerFailed: m.WorkerFailed("out of memory: try a smaller network, dataset or recording rate"),
}


def _same(a, b, where="message") -> None:
    """Equal values, arrays compared element by element with their dtypes and shapes."""
    assert type(a) is type(b), (where, type(a), type(b))
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def test_every_command_and_event_has_an_example_here():
    assert set(EXAMPLES) == set(m.COMMANDS) | set(m.EVENTS)
    assert not set(m.COMMANDS) & set(m.EVENTS)
    for kind in EXAMPLES:
        assert dataclasses.is_dataclass(kind), kind


@pytest.mark.parametrize("kind", list(EXAMPLES), ids=lambda kind: kind.__name__)
def test_a_message_crosses_the_process_boundary_unchanged(kind):
    message = EXAMPLES[kind]
    back = pickle.loads(pickle.dumps(message))
    _same(message, back)


def test_messages_cross_a_real_spawned_queue():
    """Through the queue and process kind the window uses (spawn): a child echoes what it reads."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_echo, args=(inbox, outbox), daemon=True)
    child.start()
    try:
        for message in EXAMPLES.values():
            inbox.put(message)
        inbox.put(None)
        for message in EXAMPLES.values():
            _same(message, outbox.get(timeout=60))
    finally:
        child.join(20)
        if child.is_alive():
            child.kill()
        for q in (inbox, outbox):
            q.cancel_join_thread()
            q.close()


def _echo(inbox, outbox):
    while (message := inbox.get()) is not None:
        outbox.put(message)


def test_a_status_is_its_text():
    """Run files, JSON and older callers hold plain strings: a RunStatus compares equal to its text
    and prints as it."""
    assert RunStatus.FINISHED == "finished" and f"{RunStatus.DIVERGED}" == "diverged"
    assert RunStatus.of("stopped") is RunStatus.STOPPED and RunStatus.of("a text from a crafted file") is RunStatus.UNKNOWN
    assert {s for s in RunStatus if s.ended} == {RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED,
                                                   RunStatus.FAILED}
    assert {s for s in RunStatus if s.going} == {RunStatus.RUNNING, RunStatus.PAUSED}
