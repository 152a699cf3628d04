"""One numpy BLAS thread against two for a training step of the numpy engine (issue #20): the
digits preset and a wide residual GELU network, interleaved in one process so that both see the
same load; wall and CPU time a step, and the load average.

    python benchmarks/blas_threads.py [--steps 500] [--repeats 2]

The process is tuned as the programs tune it (core/process.py tune_process), the numpy engine
trains (backend "numpy"), and each measurement sets numpy's pool to 1 or 2 threads with
threadpoolctl around ``Trainer.run``, the engine's own limit (NumpyNetwork.step_threads) switched
off for it; ``--engine`` adds a row with the engine as it stands (its own choice).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from contextlib import nullcontext  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from margin_explorer.core import network  # noqa: E402
from margin_explorer.core.presets import load_preset  # noqa: E402
from margin_explorer.core.process import tune_process  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402

from engine_vs_plain import make_config  # noqa: E402


def cases():
    digits = load_preset("digits-ten-classes-test")
    digits.recording.kkt = False  # as `main.py run` (the preset's recording) but the KKT fit off
    wide = make_config(256, 10 ** 6, "residual_gelu")  # 100 x 256 by 256 x 256 products
    wide.recording.every_step_until, wide.recording.per_decade = 0, 10
    for config in (digits, wide):
        config.run.backend = "numpy"
    return {"digits-ten-classes-test (1,437 x 64 x 64 x 10)": digits, "residual GELU width 256 (100 x 256 x 256)": wide}


def measure(config, threads: int | None, steps: int, warmup: int = 100) -> tuple[float, float]:
    """(wall ms, CPU ms) a step over ``steps`` steps after ``warmup``, numpy's BLAS at ``threads``
    (None: as the engine sets it)."""
    config.run.steps = warmup + steps
    trainer = Trainer(config)
    own = network.one_blas_thread
    if threads:
        network.one_blas_thread = nullcontext  # the engine's own limit off: the one set here counts
    try:
        trainer.run(warmup)
        with threadpool_limits(threads, user_api="blas") if threads else nullcontext():
            wall, cpu = time.perf_counter(), time.process_time()
            trainer.run(steps)
            return (time.perf_counter() - wall) * 1e3 / steps, (time.process_time() - cpu) * 1e3 / steps
    finally:
        network.one_blas_thread = own


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--engine", action="store_true", help="also the engine's own choice")
    args = parser.parse_args(argv)
    tune_process()
    settings = (1, 2, None) if args.engine else (1, 2)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'network':>48} {'BLAS threads':>13} {'wall ms/step':>13} {'CPU ms/step':>12}")
    for name, config in cases().items():
        for _ in range(args.repeats):
            for threads in settings:
                wall, cpu = measure(config, threads, args.steps)
                label = "engine's" if threads is None else str(threads)
                print(f"{name:>48} {label:>13} {wall:>13.2f} {cpu:>12.2f}   load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
