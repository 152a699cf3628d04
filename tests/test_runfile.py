import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from margin_explorer.core.datasets import gaussian_blobs
from margin_explorer.core.errors import RunFileError
from margin_explorer.core.metrics import SCALAR_METRICS
from margin_explorer.core.runfile import FORMAT_VERSION, RunReader
from margin_explorer.core.runner import run_to_file
from tests.helpers import config_for, mlp, open_when_it_has_records, start_headless_run

ROOT = Path(__file__).resolve().parent.parent


def _config(steps=600):
    return config_for(mlp(2, [8]), gaussian_blobs(40, 2, separation=4.0, noise=0.5, seed=0), steps=steps, lr=0.5,
                      rule="lyu_li")


def test_round_trip_holds_every_record_snapshot_and_the_config(tmp_path):
    config = _config()
    records = {}

    def keep(trainer, chunk):
        for name, values in chunk.records.items():
            records.setdefault(name, []).append(values)

    trainer = run_to_file(config, tmp_path / "run.h5", on_chunk=keep, chunk_seconds=0.01)
    with RunReader(tmp_path / "run.h5") as run:
        assert run.status == "finished" and run.config.to_dict() == config.to_dict()
        assert np.array_equal(run.dataset.X, trainer.dataset.X)
        for name, parts in records.items():
            np.testing.assert_array_equal(run.metrics[name], np.concatenate(parts), err_msg=name)
        assert set(SCALAR_METRICS) <= set(run.metrics)
        assert run.metrics["sample_margins"].shape == (run.n_records, 40)
        assert run.snapshot_steps[0] == 0 and run.snapshot_steps[-1] == 600
        np.testing.assert_array_equal(run.final_params, trainer.members[0].theta)
        np.testing.assert_array_equal(run.snapshot_params(-1), trainer.members[0].theta)
        assert run.attrs["margin_order"] == 2.0 and run.attrs["loss_reduction"] == "sum"
    # the documented names, readable with plain h5py in a notebook
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["format"] == "margin-explorer-run"
        assert json.loads(f.attrs["config"])["optimizer"]["step_rule"] == "lyu_li"
        for name in ("step", "log_loss", "normalized_margin", "smoothed_margin", "param_norm", "alignment",
                     "direction_change"):
            assert f["metrics"][name].shape == (run.n_records,)
        assert f["snapshots/params"].shape[1] == trainer.net.size


@pytest.mark.parametrize("delay", [0.0, 0.6, 1.4])
def test_a_writer_killed_with_sigkill_leaves_a_readable_file(tmp_path, delay):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "relu2-blobs", "--out", str(path),
                             "--steps", "0"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill at a moment measured from the first flush, not from the file's creation: on a loaded
        # machine the first chunk can take longer than any fixed delay
        first = open_when_it_has_records(path)
        assert first is not None, "the writer flushed no records within a minute"
        first.close()
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with RunReader(path) as run:
        assert run.status == "running"  # it never got to write its end
        assert run.n_records > 0
        lengths = {name: len(v) for name, v in run.metrics.items()}
        assert len(set(lengths.values())) == 1, lengths
        steps = run.metrics["step"]
        assert np.all(np.diff(steps) > 0)
        assert np.all(np.isfinite(run.metrics["log_loss"]))
        assert run.final_step >= steps[-1] - 1


def test_a_file_being_written_can_be_read_and_grows(tmp_path):
    path = tmp_path / "live.h5"
    proc = start_headless_run(path)
    try:
        run = open_when_it_has_records(path)
        first = run.n_records
        deadline = time.time() + 30  # a poll, not a fixed wait: CI machines are loaded
        while run.refresh() <= first and time.time() < deadline:
            time.sleep(0.1)
        assert run.n_records > first
        run.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    with RunReader(path) as run:
        assert run.status == "stopped"


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(RunFileError, match="no such file"):
        RunReader(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(RunFileError, match="not an HDF5 file"):
        RunReader(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(RunFileError, match="not a Margin Explorer run"):
        RunReader(tmp_path / "other.h5")
    run_to_file(_config(50), tmp_path / "good.h5")
    with h5py.File(tmp_path / "good.h5", "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(RunFileError, match="newer than this app reads"):
        RunReader(tmp_path / "good.h5")
    run_to_file(_config(50), tmp_path / "whole.h5")
    data = (tmp_path / "whole.h5").read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFileError):
        RunReader(tmp_path / "truncated.h5")


def test_diverged_runs_are_saved_with_their_reason(tmp_path):
    config = config_for(mlp(2, [8]), gaussian_blobs(30, 2, seed=0), steps=500, lr=1e6, rule="constant")
    trainer = run_to_file(config, tmp_path / "div.h5")
    assert trainer.status == "diverged"
    with RunReader(tmp_path / "div.h5") as run:
        assert run.status == "diverged" and "diverged at step" in run.status_reason
        assert np.all(np.isfinite(run.metrics["log_loss"]))


def test_a_writer_finishes_cleanly_while_another_process_reads_its_file(tmp_path):
    """A reader's shared lock once made the writer crash while writing its final status."""
    path = tmp_path / "shared.h5"
    proc = start_headless_run(path, stderr=subprocess.PIPE, text=True)
    reader = None
    try:
        reader = open_when_it_has_records(path)
        assert reader is not None and reader.swmr
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    try:
        assert proc.returncode == 0, err
    finally:
        reader.close()
    with RunReader(path) as run:
        assert run.status == "stopped"
