"""What the engine's process settings are worth (issue #6), each measured with and without it.

A residual GELU network (benchmarks/engine_vs_plain.py's) trains in a fresh process per row, once
as the engine runs it and once with one setting switched off:

- one threaded BLAS pool (core/blas.py): numpy's and scipy's OpenBLAS pools otherwise both spin
  threads on the same cores; every metric recorded every step (the records use scipy's LAPACK);
- freed memory kept (core/allocator.py): glibc's default thresholds otherwise fault a large
  temporary's pages back in every step; every step recorded;
- one torch thread on the autograd path (core/engines/autograd_engine.py, TorchEvaluator.step_threads): torch's OpenMP
  threads otherwise fight numpy's BLAS; `run.backend` "torch" on the CPU, records log-spaced.

    python benchmarks/process_settings.py [--widths 64,128] [--steps 600] [--repeats 2] [--settings blas,allocator]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = {
    "blas": ("one threaded BLAS pool (core/blas.py)", "numpy", True),
    "allocator": ("freed memory kept (core/allocator.py)", "numpy", True),
    "torch_threads": ("one torch thread, autograd path", "torch", False),
}

CHILD = """
import json, sys, time
import numpy as np
from contextlib import nullcontext
import scipy.linalg  # scipy's own BLAS, loaded as in the worker
from margin_explorer.core import process, trainer as core_trainer
from margin_explorer.core.engines import autograd_engine
from benchmarks.engine_vs_plain import make_config
setting, backend, every_step, width, steps, off = sys.argv[1:7]
if off == "1":
    if setting == "blas":
        process.one_threaded_pool = lambda: None
    elif setting == "allocator":
        process.keep_freed_memory = lambda: False
    else:
        autograd_engine.TorchEvaluator.step_threads = lambda self: nullcontext()
process.tune_process()  # as the programs do (core/process.py), less the setting switched off
config = make_config(int(width), int(steps) + 200, "residual_gelu")
config.run.backend = backend
if every_step != "1":
    config.recording.every_step_until, config.recording.per_decade = 0, 10
trainer = core_trainer.Trainer(config)
trainer.snapshots.due_in = lambda start, end, limit: np.zeros(0, dtype=np.int64)  # no KKT solves: the steps and records alone
trainer.run(200)  # imports, the thread pools' first use, and the first steps' large moves (cold eigenvectors)
start = time.perf_counter()
trainer.run(int(steps))
print(json.dumps(int(steps) / (time.perf_counter() - start)))
"""


def rate(setting: str, width: int, steps: int, off: bool) -> float:
    _label, backend, every_step = SETTINGS[setting]
    args = [setting, backend, "1" if every_step else "0", str(width), str(steps), "1" if off else "0"]
    out = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="a subset of " + ", ".join(SETTINGS))
    args = parser.parse_args(argv)
    print(f"{'setting':>34} {'width':>6} {'without, steps/s':>17} {'with, steps/s':>14} {'gain':>6}")
    rows = []
    for setting in args.settings.split(","):
        label = SETTINGS[setting][0]
        for width in (int(w) for w in args.widths.split(",")):
            # alternating, best of each: the machine's load drifts
            pairs = [(rate(setting, width, args.steps, True), rate(setting, width, args.steps, False))
                     for _ in range(args.repeats)]
            without, with_ = max(p[0] for p in pairs), max(p[1] for p in pairs)
            rows.append((setting, width, without, with_))
            print(f"{label:>34} {width:>6} {without:>17.0f} {with_:>14.0f} {with_ / without:>5.1f}x", flush=True)
    return rows


if __name__ == "__main__":
    main()
