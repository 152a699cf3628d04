"""The window's speed (issue #3), as ratios and percentiles measured in one run:

1. training throughput with the window open and plotting live, against the headless engine on
   the same config (bar: at least 80%); on a loaded machine the scheduler's share decides it, so
   also each process's CPU share and the steps per CPU second of the training process against
   headless, which the load does not change;
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
from margin_explorer.core.engines.compiled_engine import covers_platform, warm_cache  # noqa: E402
from margin_explorer.core.presets import load_preset  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402
from margin_explorer.widgets.trajectory_plots import TrajectoryPlots  # noqa: E402


def steady_rate(samples) -> float:
    """Steps/s over the samples' (time, step) after the first tenth of the steps: the rate once the
    engine is made (the compiled engine's first one in a process loads numba, ~1.5 s)."""
    samples = np.array(samples, dtype=np.float64)
    later = samples[samples[:, 1] >= 0.1 * samples[-1, 1]]
    return float((later[-1, 1] - later[0, 1]) / (later[-1, 0] - later[0, 0]))


def headless_rate(config, steps: int) -> tuple[float, float, str]:
    """(steps/s from making the trainer to the end, steps/s steady, the engine's name): the worker's
    loop without a window, its chunking included. Making the trainer counts, as in the window
    (the worker makes its trainer when Run is pressed); the compiled engine's first in a process
    loads numba and the kernels."""
    start, cpu = time.perf_counter(), cpu_seconds(os.getpid())
    trainer = Trainer(config)
    samples = [(time.perf_counter(), 0)]
    while trainer.status == "running":
        trainer.run(1 << 30, max_seconds=0.05)  # the same chunking as the worker
        samples.append((time.perf_counter(), trainer.step))
    elapsed = time.perf_counter() - start
    headless_rate.cpu = (cpu_seconds(os.getpid()) - cpu) / elapsed
    return steps / elapsed, steady_rate(samples), type(trainer.engine).__name__


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of process ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


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
    worker = window.controller.process_id
    cpu = (cpu_seconds(os.getpid()), cpu_seconds(worker))
    start = time.perf_counter()
    window.start_run()
    samples, sampled = [(start, 0)], start
    while not window.status.ended:
        app.processEvents()
        time.sleep(0.001)
        if window.session is not None and time.perf_counter() - sampled > 0.1:
            sampled = time.perf_counter()
            samples.append((sampled, window.session.step))
    elapsed = time.perf_counter() - start
    window_run.cpu = ((cpu_seconds(os.getpid()) - cpu[0]) / elapsed, (cpu_seconds(worker) - cpu[1]) / elapsed)
    samples.append((time.perf_counter(), window.session.step))
    window_run.steady = steady_rate(samples)
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
        session.lead.version += 1  # the session's version is its members' sum
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
    parser.add_argument("--backend", default="auto", help="run.backend for both (auto: the compiled engine once "
                        "its kernels are cached; give --steps 2000000 or more, it runs ~10x faster)")
    args = parser.parse_args(argv)
    app = make_application()
    config = load_preset(args.preset)
    config.run.steps = args.steps
    config.run.backend = args.backend
    if args.backend in ("auto", "compiled") and covers_platform() is True:  # in a child: no numba here
        started = time.perf_counter()
        warm_cache((config.run.dtype,), wait=True).wait()
        print(f"compiled kernels in numba's cache ({time.perf_counter() - started:.1f} s)")
    headless, headless_steady, engine = headless_rate(config, args.steps)
    print(f"engine (headless; the window's worker makes the same choice): {engine}")
    live, lateness = window_run(app, config, args.steps)
    p99 = float(np.percentile(lateness, 99)) * 1e3 if len(lateness) else float("nan")
    print(f"{'measure':<48} {'value':>12} {'bar':>10}")
    print(f"{'headless engine steps/s':<48} {headless:>12,.0f}")
    print(f"{'window open, plotting live, steps/s':<48} {live:>12,.0f}")
    print(f"{'throughput ratio window / headless':<48} {live / headless:>11.0%} {'>= 80%':>10}")
    print(f"{'the same, steady (after the first tenth)':<48} {window_run.steady / headless_steady:>11.0%} "
          f"{'>= 80%':>10}  ({window_run.steady:,.0f} / {headless_steady:,.0f} steps/s)")
    if headless_rate.cpu > 0 and window_run.cpu[1] > 0:  # what a loaded machine's scheduler does not change
        per_cpu = (live / window_run.cpu[1]) / (headless / headless_rate.cpu)
        print(f"{'steps per CPU second, training process / headless':<48} {per_cpu:>11.0%}")
    print(f"{'CPU of a core: headless; window / training process':<48} {headless_rate.cpu:>6.0%}; "
          f"{window_run.cpu[0]:.0%} / {window_run.cpu[1]:.0%} (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)")
    print(f"{'GUI timer lateness p99 during the run (ms)':<48} {p99:>12.1f} {'< 50':>10}")
    print(f"{'GUI timer lateness max (ms)':<48} {lateness.max() * 1e3:>12.1f}", flush=True)
    redraw = redraw_time(app)
    print(f"{'redraw of all plots, 10^6 records (ms)':<48} {redraw * 1e3:>12.1f} {'< 30':>10}")


if __name__ == "__main__":
    main()
