"""The library face (core/api.py, docs/python-api.md): train, save, load, check and iterate
from Python, against the command line's files as the oracle."""

import re
from pathlib import Path

import numpy as np
import pytest

from margin_explorer.app.cli import main
from margin_explorer.core import api as mx
from margin_explorer.core.errors import ConfigError, RunFileError
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.runner import open_writer
from margin_explorer.core.trainer import Trainer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def test_the_documentation_examples_run_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(DOCS), "exec"), namespace)
    run, runs = namespace["run"], namespace["runs"]
    assert run.status == "finished" and run.final_step == 500 and run.path == "relu.h5"
    assert (tmp_path / "relu.h5").is_file()
    assert [r.config.run.seed for r in runs] == [0, 1, 2, 3]
    assert all(r.final_step == 300 for r in runs)
    for block in blocks[1:]:
        exec(compile(block, str(DOCS), "exec"), namespace)
    assert namespace["step"][-1] == 300  # the live loop ran to its end


def test_train_gives_the_command_lines_run_as_plain_arrays(tmp_path):
    out = tmp_path / "cli.h5"
    assert main(["run", "relu2-blobs", "--steps", "120", "--out", str(out)]) == 0
    run = mx.train(mx.preset("relu2-blobs"), steps=120)
    with RunReader(out) as reader:
        metrics = reader.metrics
        assert run.status == reader.status == "finished"
        assert set(run.metrics) == set(metrics)
        for name, values in metrics.items():
            assert type(run.metrics[name]) is np.ndarray
            if name != "wall_time":
                np.testing.assert_array_equal(run.metrics[name], values, err_msg=name)
        np.testing.assert_array_equal(run.snapshots.steps, reader.snapshot_steps)
        np.testing.assert_array_equal(run.snapshots.params, reader.snapshot_params(slice(None)))
        np.testing.assert_array_equal(run.final_params, reader.final_params)
        np.testing.assert_array_equal(run.dataset.X, reader.dataset.X)


def test_a_saved_run_loads_back_the_same_and_checks_the_same(tmp_path):
    config = mx.preset("relu2-blobs")
    config.optimizer.kind, config.optimizer.lr = "adam", 0.01
    run = mx.train(config, steps=80)
    run.save(tmp_path / "a.h5")
    back = mx.load(tmp_path / "a.h5")
    assert (back.status, back.final_step, back.config.to_dict()) == (run.status, run.final_step, run.config.to_dict())
    for name, values in run.metrics.items():
        np.testing.assert_array_equal(back.metrics[name], values, err_msg=name)
    for name, values in run.optimizer_state.items():
        np.testing.assert_array_equal(back.optimizer_state[name], values, err_msg=name)
    assert int(back.optimizer_state["t"]) == 80
    verdicts, again = mx.check(run), mx.check(back)
    assert verdicts and [(v.check, v.supported, v.value) for v in verdicts] == [(v.check, v.supported, v.value)
                                                                                for v in again]
    assert all(isinstance(v.value, float) for v in verdicts)


def test_save_replaces_nothing_but_a_run_file(tmp_path):
    run = mx.train(mx.preset("relu2-blobs"), steps=5)
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    with pytest.raises(RunFileError):
        run.save(notes, overwrite=True)
    assert notes.read_text() == "my notes"
    run.save(tmp_path / "run.h5")
    with pytest.raises(RunFileError, match="exists"):
        run.save(tmp_path / "run.h5")
    run.save(tmp_path / "run.h5", overwrite=True)


def test_load_reads_a_file_still_being_written(tmp_path):
    trainer = Trainer(mx.preset("relu2-blobs"))
    writer = open_writer(trainer, tmp_path / "live.h5")
    try:
        writer.append(trainer.run(30).members[0])
        live = mx.load(tmp_path / "live.h5")
        assert live.status == "running"
        assert list(live.metrics["step"]) == list(range(30))
    finally:
        writer.close("stopped")
    assert mx.load(tmp_path / "live.h5").status == "stopped"


def test_a_family_trains_together_as_its_members_would_alone():
    config = mx.preset("relu2-blobs")
    runs = mx.train(config.with_family(seed=range(3)), steps=60)
    assert len(runs) == 3
    config.run.seed = 2
    alone = mx.train(config, steps=60)
    np.testing.assert_allclose(runs[2].final_params, alone.final_params, rtol=1e-10, atol=1e-12)
    assert runs[2].family["index"] == 2 and runs[2].family["size"] == 3
    verdicts = mx.check(runs)
    assert all("runs" in v.detail for v in verdicts)


def test_with_family_takes_one_setting_by_keyword():
    config = mx.preset("relu2-blobs")
    family = config.with_family(lr=[0.1, 0.2])
    assert (family.family.vary, family.family.values) == ("lr", [0.1, 0.2]) and config.family is None
    with pytest.raises(ConfigError, match="exactly one of seed=, lr=, init_scale="):
        config.with_family(seed=[1], lr=[0.1])
    with pytest.raises(ConfigError, match="family.values"):
        config.with_family(seed=3)
    with pytest.raises(ConfigError, match=r"family.values\[0\]"):
        config.with_family(lr=[-1])


def test_leaving_iter_train_early_stops_the_run_there():
    seen = []
    for run in mx.iter_train(mx.preset("relu2-blobs"), steps=10**6, chunk_seconds=0.05):
        seen.append(run.final_step)
        if len(seen) == 2:
            break
    assert run.status == "stopped" and run.final_step >= seen[-1] and run.final_step < 10**6
    assert run.metrics["step"][-1] == run.final_step


def test_user_mistakes_are_the_projects_errors():
    config = mx.preset("relu2-blobs")
    with pytest.raises(ConfigError, match="expected a RunConfig"):
        mx.train("relu2-blobs")
    with pytest.raises(ConfigError, match="steps"):
        mx.train(config, steps=0)
    with pytest.raises(ConfigError, match="dataset"):
        mx.train(config, steps=3, dataset=[1, 2])
    with pytest.raises(RunFileError, match="no such file"):
        mx.load("/nonexistent/run.h5")
    with pytest.raises(ConfigError, match="expected a Run"):
        mx.check("run.h5")
