"""The same 64 runs three ways: one after another in one process, as families in one process, and
as a sweep on a LocalCluster of 2 worker processes (issue #22). Each writes one run file per run.

Runs: relu2-blobs on 40 points, lr in 4 log-spaced values x width 4, 8 x seeds 0..7, --steps
steps each. The sweep's families are its grid points' seeds (8 tasks of 8 runs), the same
families as the second row. Printed: runs per second of each, and for the sweep the client's own
time (writing the index, collecting results) per run against the runs' own training time per run.
Torch runs one intra-op thread in this process (--torch-threads), as in the Dask workers (whose
nanny sets OMP_NUM_THREADS=1): with torch's default (one per core) on a busy 2-core machine the
families' tiny tensor operations waited on each other's threads and the families row took 8x longer.

    python benchmarks/sweeps.py [--steps 300] [--workers 2]
    QT_QPA_PLATFORM=offscreen python benchmarks/sweeps.py --many 10000
    QT_QPA_PLATFORM=offscreen python benchmarks/sweeps.py --index-only 10000

--many N: a sweep of N tiny runs (20 points, width 4, 20 steps; N / 8 step sizes x 8 seeds) on the
LocalCluster (the families vary lr, the axis with the most values): runs/s, the client's time per
run and per index rewrite against the runs' own time,
then how long mx.load_sweep and the Sweep view take to open its index.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import margin_explorer as mx  # noqa: E402
from margin_explorer.core import sweep as sweep_module  # noqa: E402
from margin_explorer.core.process import tune_process  # noqa: E402
from margin_explorer.core.sweep_grid import SweepPlan  # noqa: E402
from margin_explorer.core.sweep_index import SweepIndex  # noqa: E402

GRID = {"lr": "0.05..0.4/4", "width": [4, 8]}


def base_config():
    config = mx.preset("relu2-blobs")
    config.dataset.params["n"] = 40
    return config


def sequential(plan: SweepPlan, folder: Path) -> float:
    start = time.perf_counter()
    for point in range(plan.size):
        mx.train(plan.run_config(point), out=folder / f"run-{point:04d}.h5")
    return time.perf_counter() - start


def families(plan: SweepPlan, folder: Path) -> float:
    from margin_explorer.core.config import RunConfig

    start = time.perf_counter()
    for k, task in enumerate(plan.tasks()):
        mx.train(RunConfig.from_dict(task.config), out=folder / f"family-{k:02d}.h5")
    return time.perf_counter() - start


def _warm_up() -> None:
    from margin_explorer.core.config import RunConfig

    task = SweepPlan.build(base_config(), {}, seeds="0:2", steps=5).tasks()[0]
    mx.train(RunConfig.from_dict(task.config))


def on_cluster(plan: SweepPlan, folder: Path, workers: int) -> dict:
    """The sweep's wall time with the cluster already up, and the client's own time in it."""
    from distributed import Client, LocalCluster

    spent = {"index": 0.0, "collect": 0.0}
    write, collect = SweepIndex.write, sweep_module._collect

    def timed_write(self):
        t = time.perf_counter()
        write(self)
        spent["index"] += time.perf_counter() - t

    def timed_collect(*args):
        t = time.perf_counter()
        out = collect(*args)
        spent["collect"] += time.perf_counter() - t
        return out

    started = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        up = time.perf_counter() - started
        client.run(tune_process)  # the workers are this program's: tuned as the others are
        client.run(_warm_up)  # torch's import and first calls, out of the timing as in the other rows
        SweepIndex.write, sweep_module._collect = timed_write, timed_collect
        try:
            start = time.perf_counter()
            result = sweep_module.run_sweep(plan, folder, client=client)
            seconds = time.perf_counter() - start
        finally:
            SweepIndex.write, sweep_module._collect = write, collect
    assert result.index.done == plan.size, result.index.counts()
    return {"seconds": seconds, "startup": up, "client": spent["index"] + spent["collect"],
            "index": spent["index"], "run_seconds": float(result.index.seconds.sum())}


def many(n: int, workers: int) -> None:
    config = base_config()
    config.dataset.params["n"] = 20
    config.architecture.blocks[0].width = 4
    seeds = 8
    points = max(n // seeds, 1)
    plan = SweepPlan.build(config, {"lr": f"0.01..1/{points}"} if points > 1 else {}, seeds=f"0:{seeds}", steps=20)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "phase"
        writes = []
        write = SweepIndex.write

        def timed_write(self):
            t = time.perf_counter()
            write(self)
            writes.append(time.perf_counter() - t)

        SweepIndex.write = timed_write
        try:
            swp = on_cluster(plan, folder, workers)
        finally:
            SweepIndex.write = write
        load, shown = open_and_show(folder)
    family = plan.axes[plan.family_axis]
    print(f"{plan.size} runs of 20 steps (width 4, 20 points; {len(plan.tasks())} families of "
          f"{len(family.values)} {family.label} values) on "
          f"{workers} workers, machine shared: {swp['seconds']:.1f} s, {plan.size / swp['seconds']:.0f} runs/s "
          f"(+{swp['startup']:.1f} s to start the cluster)")
    print(f"client: {1e3 * swp['client'] / plan.size:.2f} ms a run, {len(writes)} index rewrites of "
          f"{1e3 * np.median(writes):.0f} ms (median; largest {1e3 * max(writes):.0f} ms); "
          f"a run's own training on a worker: {1e3 * swp['run_seconds'] / plan.size:.1f} ms")
    print(f"mx.load_sweep: {1e3 * load:.0f} ms; the Sweep view open and drawn: {1e3 * shown:.0f} ms")


def open_and_show(folder) -> tuple[float, float]:
    """Seconds to read a sweep's index (mx.load_sweep), and to open and draw the Sweep view on it."""
    start = time.perf_counter()
    sweep = mx.load_sweep(folder)
    load = time.perf_counter() - start
    from PySide6.QtWidgets import QApplication

    from margin_explorer.widgets.sweep_view import SweepView

    app = QApplication.instance() or QApplication([])
    start = time.perf_counter()
    view = SweepView()
    view.set_index(sweep.index)
    view.resize(800, 600)
    view.show()
    app.processEvents()
    shown = time.perf_counter() - start
    view.close()
    return load, shown


def index_scale(n: int) -> None:
    """The index of an n-run sweep, every run finished with 22 final metrics, without training:
    one rewrite, one read, the Sweep view opened on it."""
    config = base_config()
    plan = SweepPlan.build(config, {"lr": f"0.01..1/{max(n // 8, 2)}"}, seeds="0:8", steps=20)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        index = SweepIndex(Path(tmp), plan)
        names = [f"metric_{k}" for k in range(21)] + ["normalized_margin"]
        for point in range(plan.size):
            index.record(point, "finished", "", 20, 0.01, dict(zip(names, rng.random(len(names)))))
        times = []
        for _ in range(5):
            start = time.perf_counter()
            index.write()
            times.append(time.perf_counter() - start)
        load, shown = open_and_show(tmp)
    print(f"an index of {plan.size} runs: a rewrite {1e3 * np.median(times):.0f} ms (median of 5), "
          f"mx.load_sweep {1e3 * load:.0f} ms, the Sweep view open and drawn {1e3 * shown:.0f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--many", type=int, help="a sweep of this many tiny runs instead (see above)")
    parser.add_argument("--index-only", type=int, help="only the index of this many runs: write, read, view")
    args = parser.parse_args(argv)
    tune_process()
    import torch

    torch.set_num_threads(args.torch_threads)
    if args.many:
        return many(args.many, args.workers)
    if args.index_only:
        return index_scale(args.index_only)
    plan = SweepPlan.build(base_config(), GRID, seeds="0:8", steps=args.steps)
    n = plan.size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("sequential", "families", "sweep"):
            (tmp / name).mkdir()
        mx.train(plan.run_config(0), steps=10)  # imports and first-call costs out of the first rows
        _warm_up()
        seq = sequential(plan, tmp / "sequential")
        fam = families(plan, tmp / "families")
        swp = on_cluster(plan, tmp / "sweep" / "phase", args.workers)
    print(f"{n} runs of {args.steps} steps (relu2-blobs, n = 40, widths 4 and 8), one run file each; "
          f"os.cpu_count() = {os.cpu_count()}, machine shared with other work: compare within this run; "
          f"torch threads here: {args.torch_threads}")
    print(f"{'how':46s} {'seconds':>8s} {'runs/s':>8s}")
    print(f"{'sequential, one process (single-run trainer)':46s} {seq:8.2f} {n / seq:8.2f}")
    print(f"{'families of 8 seeds, one process (batched)':46s} {fam:8.2f} {n / fam:8.2f}")
    label = f"sweep, LocalCluster of {args.workers} workers"
    print(f"{label:46s} {swp['seconds']:8.2f} {n / swp['seconds']:8.2f}   (+{swp['startup']:.1f} s to start "
          "the cluster)")
    per_run_client = swp["client"] / n
    per_run_training = swp["run_seconds"] / n
    print(f"sweep client's own time: {1e3 * per_run_client:.2f} ms a run (index rewrites {1e3 * swp['index']:.0f} ms "
          f"in all), against {1e3 * per_run_training:.1f} ms of training a run on a worker: "
          f"{100 * per_run_client / per_run_training:.1f}%")


if __name__ == "__main__":
    main()
