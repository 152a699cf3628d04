"""The window's speed (issue #3), as ratios and percentiles measured in one run:

1. training throughput with the window open and plotting live, against the headless engine on
   the same config (bar: at least 80%);
2. GUI responsiveness during that run: lateness of a 10 ms QTimer probe, 99th percentile
   (bar: under 50 ms);
3. one redraw of all plots with 10^6 records (bar: under 30 ms).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_speed.py [--steps 60000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402

from margin_explorer.app.main_window import MainWindow, make_application  # noqa: E402
from margin_explorer.app.scratch_settings import scratch_settings  # noqa: E402
from margin_explorer.app.session import RunSession  # noqa: E402
from margin_explorer.core.presets import load_preset  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402
from margin_explorer.widgets.trajectory_plots import TrajectoryPlots  # noqa: E402


def headless_rate(config, steps: int) -> float:
    trainer = Trainer(config)
    start = time.perf_counter()
    while trainer.status == "running":
        trainer.run(1 << 30, max_seconds=0.05)  # the same chunking as the worker
    return steps / (time.perf_counter() - start)


def window_run(app, config, steps: int):
    window = MainWindow(settings=scratch_settings(), load_demo=False)
    window.confirm = lambda *_: True
    window.load_config(config)
    window.resize(1500, 920)
    window.show()
    window.controller.warm_up()
    # let the worker process import before timing (the first run pays ~1 s of start-up)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
        if time.monotonic() > deadline - 28:
            break
    lateness, when = [], []
    probe = QTimer()
    probe.setInterval(10)
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - 0.010))
        when.append(now - start)
        last[0] = now

    probe.timeout.connect(tick)
    probe.start()
    start = time.perf_counter()
    window.start_run()
    while not window.status.ended:
        app.processEvents()
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    probe.stop()
    trained = window.session.step
    window.session = None
    window.close()
    window_run.when = np.array(when)
    return trained / elapsed, np.array(lateness)


def redraw_time(app, records: int = 1_000_000, repeats: int = 5) -> float:
    config = load_preset("relu2-blobs")
    trainer = Trainer(config)
    session = RunSession(config, trainer.dataset)
    rng = np.random.default_rng(0)
    steps = np.arange(records, dtype=np.int64)
    walk = np.cumsum(rng.normal(size=records)) * 1e-3
    records_dict = {"step": steps, "wall_time": steps * 1e-4, "log_loss": -steps * 1e-3 + walk,
                    "normalized_margin": 0.2 + walk * 1e-2, "smoothed_margin": 0.19 + walk * 1e-2,
                    "param_norm": 1 + np.log1p(steps), "alignment_gap": 1 / (1 + steps) + 1e-9,
                    "direction_change": 1 / (1 + steps), "angle_to_reference": np.full(records, np.nan),
                    "accuracy": np.ones(records), "q_min": np.ones(records),
                    "sample_margins": 0.2 + rng.random((records, 8)).astype(np.float64) * 0.01,
                    "stable_rank": 1 + rng.random((records, 2)) * 0.1}
    session.lead.append(records_dict)
    plots = TrajectoryPlots()
    plots.resize(1100, 850)
    plots.show()
    plots.set_sources([(session, "bench")])
    app.processEvents()
    times = []
    plots.refresh(force=True)  # fills the block cache once, as the first frame of a loaded run does
    app.processEvents()
    for _ in range(repeats):
        session.version += 1
        start = time.perf_counter()
        plots.refresh(force=True)  # every plot, no time budget
        plots.view.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - start)
    plots.close()
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200000, help="long enough (~10 s) that start-up is not the run")
    parser.add_argument("--preset", default="relu2-blobs")
    args = parser.parse_args(argv)
    app = make_application()
    config = load_preset(args.preset)
    config.run.steps = args.steps
    headless = headless_rate(config, args.steps)
    live, lateness = window_run(app, config, args.steps)
    redraw = redraw_time(app)
    p99 = float(np.percentile(lateness, 99)) * 1e3 if len(lateness) else float("nan")
    print(f"{'measure':<48} {'value':>12} {'bar':>10}")
    print(f"{'headless engine steps/s':<48} {headless:>12,.0f}")
    print(f"{'window open, plotting live, steps/s':<48} {live:>12,.0f}")
    print(f"{'throughput ratio window / headless':<48} {live / headless:>11.0%} {'>= 80%':>10}")
    print(f"{'GUI timer lateness p99 during the run (ms)':<48} {p99:>12.1f} {'< 50':>10}")
    print(f"{'GUI timer lateness max (ms)':<48} {lateness.max() * 1e3:>12.1f}")
    print(f"{'redraw of all plots, 10^6 records (ms)':<48} {redraw * 1e3:>12.1f} {'< 30':>10}")


if __name__ == "__main__":
    main()
