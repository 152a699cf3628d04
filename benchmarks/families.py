"""Families against one plain PyTorch loop, same config, same process (issue #6, bars 2 and 3).

A family of S runs (seeds 0..S-1) trains together in the batched engine (core/engines/batched_engine.py); its
figure is the aggregate: S x steps / seconds, records and snapshots included. The plain loop is
engine_vs_plain.py's (an nn.Module, loss.backward(), optimizer.step(), metrics read with .item()
every step), on one run of the same config. Both use torch's default threads here.

Rows: the family with the default recording (every step to 1,000, then 200 per decade) over
--steps steps, and with every metric recorded every step. With a CUDA device, the same family
engine also runs there for S = 1 and S = --gpu-runs, against the CPU.

    python benchmarks/families.py [--runs 32] [--width 64] [--steps 20000] [--gpu-runs 1024] [--gpu-steps 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from margin_explorer.core.process import tune_process  # noqa: E402

from benchmarks.engine_vs_plain import make_config, plain_loop  # noqa: E402
from margin_explorer.core.config import FamilyConfig  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402


def family_rate(width: int, runs: int, steps: int, every_step: bool, device: str = "cpu") -> float:
    """Aggregate steps/s of a family of ``runs`` seeds trained ``steps`` steps to the end."""
    config = make_config(width, steps)
    config.recording.every_step_until = steps + 1 if every_step else 1000
    config.recording.snapshots_per_decade = 10
    config.run.device = device
    config.family = FamilyConfig("seed", list(range(runs)))
    family = Trainer(config)
    start = time.perf_counter()
    while family.status == "running":
        family.run(1 << 30, max_seconds=0.5)
    seconds = time.perf_counter() - start
    assert family.status == "finished", family.reason
    return runs * steps / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20000, help="steps of the family (default recording)")
    parser.add_argument("--plain-steps", type=int, default=2000)
    parser.add_argument("--every-step-steps", type=int, default=2000, help="steps of the every-step-recorded row")
    parser.add_argument("--gpu-runs", type=int, default=1024)
    parser.add_argument("--gpu-steps", type=int, default=5000, help="steps of the GPU-against-CPU rows")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    tune_process()  # as the command line does when training starts (core/process.py)
    plain = max(plain_loop(make_config(args.width, args.plain_steps), args.plain_steps) for _ in range(args.repeats))
    rows = [("plain torch loop, 1 run", plain)]
    rows.append((f"family of {args.runs}, default recording",
                 max(family_rate(args.width, args.runs, args.steps, False) for _ in range(args.repeats))))
    rows.append((f"family of {args.runs}, every step recorded",
                 max(family_rate(args.width, args.runs, args.every_step_steps, True) for _ in range(args.repeats))))
    if torch.cuda.is_available():
        for runs in (1, args.gpu_runs):
            for device in ("cpu", "cuda"):
                rows.append((f"family of {runs} on {device}, {args.gpu_steps} steps",
                             family_rate(args.width, runs, args.gpu_steps, False, device)))
    else:
        print("no CUDA device here: the GPU rows need one (the suite and this script run without)")
    print(f"width {args.width}, 100 points in 2-D, float64, torch threads {torch.get_num_threads()}")
    print(f"{'':>42} {'steps/s (all runs)':>19} {'x plain':>8}")
    for label, rate in rows:
        print(f"{label:>42} {rate:>19,.0f} {rate / plain:>7.1f}x")
    return rows


if __name__ == "__main__":
    main()
