"""Sweeps on a real LocalCluster of 2 worker processes (core/sweep.py, docs/sweeps.md): each run
as it trains alone, the index against the files, a worker killed mid-task, a client killed and
resumed, a diverging run, and bad input refused before anything starts."""

import functools
import importlib
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

import margin_explorer as mx
from margin_explorer.app.cli import main
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.sweep import sweep as run_sweep

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
LRS, WIDTHS, SEEDS = [0.05, 0.2], [4, 8], [0, 1]


def tiny():
    config = mx.preset("relu2-blobs")
    config.dataset.params["n"] = 24
    return config


def alone(lr, width, seed, steps):
    """The run as trained by itself, its config made here (not by the sweep's planner)."""
    config = tiny()
    config.optimizer.lr, config.architecture.blocks[0].width, config.run.seed = lr, width, seed
    return mx.train(config, steps=steps)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    environment = dict(os.environ)  # Dask's nannies set OMP_NUM_THREADS=1 ... here: later tests' subprocesses would inherit it
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.CRITICAL)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            client.run(functools.partial(importlib.import_module, "margin_explorer.core.engines.batched_engine"))  # torch, once
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
        os.environ.clear()
        os.environ.update(environment)


def test_a_sweep_on_its_own_local_cluster_leaves_no_process_thread_or_environment_change(tmp_path):
    import threading as threads

    environment = dict(os.environ)
    before = {t.ident for t in threads.enumerate()}
    sweep = mx.sweep(tiny(), grid={"lr": [0.05, 0.2]}, steps=20, out=tmp_path / "phase", workers=1)
    assert list(sweep.table["status"]) == ["finished", "finished"]
    assert dict(os.environ) == environment  # no OMP_NUM_THREADS=1 left for the caller's later programs
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and [p for p in psutil.Process().children(recursive=True)
                                           if "resource_tracker" not in " ".join(p.cmdline())]:
        time.sleep(0.1)
    left = [p.cmdline() for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())]
    assert not left, left
    # the only thread left is distributed's own daemon pool (Dask-Offload), shared by every client
    extra = [t.name for t in threads.enumerate() if t.ident not in before and t.is_alive()
             and not (t.daemon and t.name.startswith("Dask-Offload"))]
    assert not extra, extra


def _same(got, expected, what):
    for name, values in expected.metrics.items():
        if "wall" in name:
            continue
        values = np.asarray(values, dtype=np.float64)
        scale = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
        np.testing.assert_allclose(got.metrics[name], values, rtol=1e-12, atol=1e-12 * scale, equal_nan=True,
                                   err_msg=f"{what}: {name}")
    np.testing.assert_allclose(got.final_params, expected.final_params, rtol=1e-12, err_msg=what)
    assert got.status == expected.status and got.final_step == expected.final_step, what


def test_a_grid_trains_every_run_as_it_trains_alone_and_the_index_matches_the_files(client, tmp_path):
    out = tmp_path / "phase"
    sweep = mx.sweep(tiny(), grid={"lr": LRS, "width": WIDTHS}, seeds=range(2), steps=300, out=out, client=client)
    files = sorted((out / "runs").iterdir())
    assert len(files) == 8
    assert not list((out / ".partial").glob("*")) if (out / ".partial").exists() else True
    with h5py.File(out / "sweep.h5", "r") as f:  # plain h5py, as docs/run-format.md says
        assert f.attrs["state"] == "finished" and f.attrs["done"] == 8
        status, names = f["runs/status"].asstr()[:], f["runs/file"].asstr()[:]
        coords = {label: f[f"runs/coords/{label}"][:] for label in ("lr", "width", "seed")}
        final = {name: f[f"runs/final/{name}"][:] for name in f["runs/final"]}
    assert sorted(out / n for n in names) == files  # every file once
    expected_points = list(itertools.product(LRS, WIDTHS, SEEDS))  # row-major, seeds last
    for i, (lr, width, seed) in enumerate(expected_points):
        assert (coords["lr"][i], coords["width"][i], coords["seed"][i]) == (lr, width, seed)
        run = mx.load(out / names[i])
        assert (run.config.optimizer.lr, run.config.architecture.blocks[0].width, run.config.run.seed) == \
            (lr, width, seed)
        _same(run, alone(lr, width, seed, 300), f"run {i} (lr={lr}, width={width}, seed={seed})")
        with RunReader(out / names[i]) as reader:
            assert reader.status == status[i] == "finished"
            for name, value in reader.final_metrics().items():
                np.testing.assert_equal(final[name][i], value, err_msg=name)
    table = mx.load_sweep(out).table
    assert list(table["status"]) == ["finished"] * 8
    np.testing.assert_array_equal(table["normalized_margin"], final["normalized_margin"])
    assert [r.config.run.seed for r in sweep.runs({"lr": 0.2, "width": 8})] == [0, 1]


def test_a_diverging_run_is_recorded_as_diverged_and_the_others_finish(client, tmp_path):
    config = tiny()
    config.optimizer.step_rule = "constant"
    sweep = mx.sweep(config, grid={"lr": [0.05, 1e8]}, out=tmp_path / "phase", steps=200, client=client)
    assert list(sweep.table["status"]) == ["finished", "diverged"]
    assert "overflowed" in sweep.table["reason"][1]
    assert sweep.table["final_step"][0] == 200 and sweep.table["final_step"][1] < 200
    assert len(list((tmp_path / "phase" / "runs").iterdir())) == 2


def _executing(dask_worker):
    return os.getpid(), [str(ts.key) for ts in dask_worker.state.executing]


def test_a_worker_killed_mid_task_reruns_it_and_counts_every_run_once(client, tmp_path):
    out = tmp_path / "phase"
    progress, result, killed = [], {}, {}

    def go():
        result["sweep"] = run_sweep(tiny(), {"lr": LRS, "width": WIDTHS}, seeds=range(2), steps=1000, out=out,
                                    client=client, on_progress=progress.append)

    thread = threading.Thread(target=go)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline and thread.is_alive():
            partial = [p.name for p in (out / ".partial").glob("*.h5")] if (out / ".partial").is_dir() else []
            for _address, (pid, keys) in client.run(_executing).items():
                writing = [k for k in keys if any(p.startswith(k.rsplit("-", 1)[0] + "-") for p in partial)]
                if writing:  # this worker is training a task whose partial files exist: mid-task
                    os.kill(pid, signal.SIGKILL)
                    killed.update(pid=pid, key=writing[0])
                    break
            time.sleep(0.02)
    finally:
        thread.join(timeout=300)
    assert killed, "no task was caught mid-way"
    assert not thread.is_alive()
    sweep = result["sweep"]
    assert list(sweep.table["status"]) == ["finished"] * 8
    files = sorted((out / "runs").iterdir())
    assert [f.name for f in files] == sorted(str(Path(n).name) for n in sweep.index.file)
    assert all(mx.load(f).final_step == 1000 for f in files)
    assert not (out / ".partial").exists()  # the killed attempt's partial files removed
    assert progress[-1].trained == 8 and progress[-1].done == 8  # counted once each, none twice
    assert killed["pid"] not in client.run(os.getpid).values()  # the worker died (the nanny started another)


def _tiny_config_file(tmp_path) -> str:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny().to_dict()))
    return str(path)


def test_resume_after_the_client_is_killed_trains_only_the_missing_runs(tmp_path):
    out = tmp_path / "phase"
    command = [sys.executable, MAIN, "sweep", _tiny_config_file(tmp_path), "--grid", "lr=0.05,0.2",
               "--grid", "width=4,8", "--seeds", "0:2", "--steps", "600", "--out", str(out), "--workers", "2"]
    log = open(tmp_path / "first.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "runs").is_dir() and any((out / "runs").iterdir()):
                break
            time.sleep(0.02)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        # the local cluster's workers notice their scheduler is gone and end: nothing is left behind
        _gone, alive = psutil.wait_procs(children, timeout=60)
        for child in alive:
            child.kill()
        assert not alive, f"processes left behind after the client was killed: {alive}"
    finally:
        log.close()
        if process.poll() is None:
            process.kill()
    present = {p.name: p.stat() for p in (out / "runs").iterdir()}
    assert 0 < len(present) < 8, open(tmp_path / "first.log").read()
    resumed = subprocess.run([sys.executable, MAIN, "sweep", "--resume", "--out", str(out), "--workers", "2"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    missing = 8 - len(present)
    assert re.search(rf"^{missing} of 8 runs to train", resumed.stderr, re.M), resumed.stderr
    sweep = mx.load_sweep(out)
    assert list(sweep.table["status"]) == ["finished"] * 8
    for name, before in present.items():  # not trained again
        after = (out / "runs" / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name
    session = dict(zip([Path(f).name for f in sweep.table["file"]], sweep.table["session"]))
    assert sorted(n for n, s in session.items() if s == 2) == sorted(set(session) - set(present))
    assert sum(1 for s in session.values() if s == 2) == missing


@pytest.mark.parametrize("options,message", [
    (["--grid", "optimizer.lrr=0.1,0.2"], "error: --grid optimizer.lrr: names no field of the config"),
    (["--grid", "lrr=0.1"], "error: --grid lrr: names no field of the config (short names: lr,"),
    (["--grid", "width=0,4"], "error: --grid width=0: architecture.blocks[0].width: must be between 1"),
    (["--grid", "architecture.blocks.5.width=3"], "error: --grid architecture.blocks.5.width: architecture.blocks.5"),
    (["--grid", "optimizer.kind=gd,nope"], "error: --grid optimizer=nope: optimizer.kind: must be one of"),
    (["--grid", "lr=0..1/4"], "error: --grid lr: log-spaced values need both ends > 0"),
    (["--grid", "lr"], "error: --grid: expected NAME=VALUES"),
    (["--seeds", "4:2"], "error: --seeds: 4:2 holds 0 values"),
    (["--scheduler", "tcp://127.0.0.1:1"], "error: --scheduler tcp://127.0.0.1:1: no Dask scheduler answers there"),
    (["--workers", "0"], "error: --workers: a whole number >= 1, got 0"),
])
def test_bad_input_is_refused_before_anything_starts(tmp_path, capsys, options, message):
    out = tmp_path / "phase"
    assert main(["sweep", "relu2-blobs", "--steps", "10", "--out", str(out), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not out.exists()


def test_a_folder_that_is_not_new_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["sweep", "relu2-blobs", "--steps", "10", "--out", str(tmp_path)]) == 2
    assert "is not empty and holds no sweep" in capsys.readouterr().err
    assert main(["sweep", "--resume", "--out", str(tmp_path)]) == 2
    assert "holds no sweep to resume" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
