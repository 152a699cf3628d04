"""A family's records made on the batched engine's device (core/batched_records.py, issue #22):
the same numbers as the records made member by member from the parameters read back to the host
(the engine's ``records_on_device = False``: the recorder's numpy path, every CPU engine's), for
every recorded column, on the CPU and on CUDA where there is one; and a family's files written
this way read back and pass their preset's claims."""

import numpy as np
import pytest
import torch

import margin_explorer as mx
from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Ensemble, mlp
from margin_explorer.core.config import FamilyConfig
from margin_explorer.core.datasets import generate
from margin_explorer.core.metrics import TEST_METRICS
from margin_explorer.core.trainer import Trainer
from tests.helpers import config_for

DATA = generate("blobs", n=24, seed=3)


def _records(config, on_device: bool, device="cpu"):
    """Each member's records over the whole run (name -> array), the trainer, and for each block
    with a record whether the engine left its quantities on its device."""
    config.run.device = device
    trainer = Trainer(config)
    trainer.engine.records_on_device = on_device
    blocks = []
    advance = trainer.engine.advance

    def counted(*args):
        block = advance(*args)
        if block.record.any():
            blocks.append(block.device is not None)
        return block

    trainer.engine.advance = counted
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(37))  # blocks end inside the every-step phase, and the direction changes cross them
    members = []
    for s in range(trainer.size):
        parts = [c.members[s].records for c in chunks if c.members[s].n_records]
        members.append({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})
    return members, trainer, blocks


def _assert_equal_records(config, device="cpu", rtol=1e-12):
    host, host_trainer, host_blocks = _records(config.copy(), False, device)
    made, trainer, blocks = _records(config.copy(), True, device)
    assert blocks and all(blocks) and not any(host_blocks)  # every block of one path on the device, none of the other
    assert [m.status for m in trainer.members] == [m.status for m in host_trainer.members]
    for s, (got, expected) in enumerate(zip(made, host)):
        assert set(got) == set(expected)
        np.testing.assert_array_equal(got["step"], expected["step"])
        for name in expected:
            if name == "wall_time":  # the clock's, not a quantity of the run
                continue
            a, b = got[name], expected[name]
            assert a.shape == b.shape and a.dtype == b.dtype, name
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"member {s}: {name}")
            # alignment = 1 - gap, a cosine: near 0 its absolute accuracy is gap's, P-term sums' ~P eps
            # whatever the library or order; relative to its range [-1, 1] it is held to 1e-12 too
            atol = rtol if name == "alignment" else 0.0
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"member {s}: {name}")
    return made, trainer


@pytest.mark.parametrize("vary,values", [("seed", [0, 1, 2, 3]), ("lr", [0.3, 0.6, 1.0, 2.0])])
def test_a_family_with_a_test_set_records_the_same_on_its_device(vary, values):
    """relu2-blobs-test (two-layer ReLU of width 32, 200 test points) recorded every step: the
    four test metrics and the quantiles too."""
    config = mx.preset("relu2-blobs-test")
    config.run.steps = 150
    config.recording.every_step_until = 100
    config.recording.per_decade = 30
    config.family = FamilyConfig(vary, values)
    made, trainer = _assert_equal_records(config)
    assert set(TEST_METRICS) <= set(made[0])
    # the members differ from each other: a test of the plumbing as much as of the numbers
    assert len({float(m["test_margin_min"][-1]) for m in made}) == 4
    assert len({float(m["normalized_margin"][-1]) for m in made}) == 4
    assert all(len(m["step"]) == len(made[0]["step"]) for m in made)


@pytest.mark.parametrize("spec,options", [
    # hidden layers of 8 and 32: stable ranks by the exact eigensolver (8 x 8 Gram matrices, in torch) and by
    # the warm solver (32 x 32, on the host)
    (mlp(2, [8, 32, 32], "relu"), {"loss": "logistic", "rule": "lyu_li"}),
    (ArchitectureSpec(2, [Dense(1)]), {"loss": "logistic", "rule": "loss_normalized"}),  # angle to the reference
    # the ensemble's shares: a host forward per record, from the parameters read back
    (ArchitectureSpec(2, [Ensemble([[Dense(4), Activation("relu"), Dense(1)], [Dense(1)]])]), {}),
], ids=["relu-8-32-32-logistic", "linear", "ensemble"])
def test_every_column_of_deeper_and_linear_families_is_the_same(spec, options):
    config = config_for(spec, DATA, steps=120, lr=0.05, every_step_until=80, per_decade=40, **options)
    config.family = FamilyConfig("seed", [0, 1, 2, 3])
    made, trainer = _assert_equal_records(config)
    assert np.isfinite(made[0]["stable_rank"]).all() and np.isfinite(made[0]["smoothed_margin"]).all()
    assert ("ensemble_share" in made[0]) == bool(trainer.ensemble_size())


def test_a_diverging_member_records_the_same_prefix():
    """Constant steps on the summed loss: the member with step 1e4 diverges in the first block; its
    records end where it failed, made on the device as on the host."""
    config = config_for(mlp(2, [8], "relu"), DATA, steps=200, rule="constant")
    config.family = FamilyConfig("lr", [0.01, 1e4, 0.02, 0.03])
    made, trainer = _assert_equal_records(config)
    assert [m.status for m in trainer.members] == ["finished", "diverged", "finished", "finished"]
    assert len(made[1]["step"]) < len(made[0]["step"])


def test_a_family_file_written_this_way_reads_back_and_its_claims_hold(tmp_path):
    """relu2-blobs-test as a family of 2 through the library face (the runner and the writer): each
    file reads back with the records the trainer made, and its preset's claims hold."""
    config = mx.preset("relu2-blobs-test").with_family(seed=[0, 1])
    config.run.steps = 1000  # both claims already hold here (20,000 in the preset)
    config.recording.kkt = False  # the snapshots' KKT residual: the host's, and no claim of this preset needs it
    runs = mx.train(config, out=tmp_path / "fam.h5")
    for k, run in enumerate(runs):
        loaded = mx.load(tmp_path / f"fam-{k:02d}.h5")
        assert loaded.status == "finished" and loaded.final_step == loaded.metrics["step"][-1] == 1000
        for name in ("normalized_margin", "test_accuracy", "test_margin_quantiles", "stable_rank"):
            np.testing.assert_array_equal(loaded.metrics[name], run.metrics[name])
        verdicts = mx.check(loaded)
        assert verdicts and all(v.supported is True for v in verdicts), [(v.check, v.detail) for v in verdicts]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on CI)")
@pytest.mark.parametrize("vary,values", [("seed", [0, 1, 2, 3]), ("lr", [0.3, 0.6, 1.0, 2.0])])
def test_on_cuda_the_records_made_there_equal_those_made_on_the_host(vary, values):
    config = mx.preset("relu2-blobs-test")
    config.run.steps = 150
    config.recording.every_step_until = 100
    config.recording.per_decade = 30
    config.family = FamilyConfig(vary, values)
    made, trainer = _assert_equal_records(config, device="cuda")
    assert trainer.engine.graph is not None and set(TEST_METRICS) <= set(made[0])
