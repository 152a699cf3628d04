"""A family's records: what share of its wall time goes to records, and steps per second per
member (issue #22, Scale). A family of S members of relu2-blobs (two-layer ReLU, width 32, 100
points; relu2-blobs-test adds 200 test points and the test metrics) trains with every metric
recorded every step, and again with records log-spaced (1 a decade: almost none); the share in
records is 1 - T(almost none) / T(every step). Snapshots (KKT residual etc.) are 1 a decade in both.

The batched engine makes a family's records on its device (core/batched_records.py); with
--host the recorder makes them from the parameters read back to the host, as it does for the
CPU engines (the path before issue #22's change). The device is auto-detected: with CUDA the
families of --gpu-runs (default 1,024 and 16,384) run there too.

    python benchmarks/family_records.py [--runs 256] [--steps 300] [--repeats 2] [--host] [--gpu-runs 1024,16384]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from margin_explorer.core.process import tune_process  # noqa: E402

import margin_explorer as mx  # noqa: E402
from margin_explorer.core.config import FamilyConfig  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402


def family_seconds(preset: str, runs: int, steps: int, every_step: bool, device: str, host: bool) -> float:
    """Wall seconds of a family of ``runs`` seeds trained ``steps`` steps to the end."""
    config = mx.preset(preset)
    config.run.steps = steps
    config.run.device = device
    config.recording.every_step_until = steps + 1 if every_step else 0
    config.recording.per_decade = 1
    config.recording.snapshots_per_decade = 1
    config.recording.kkt = False  # snapshots are per member on the host either way; keep them out of the ratio
    config.family = FamilyConfig("seed", list(range(runs)))
    family = Trainer(config)
    if host:
        family.engine.records_on_device = False
    start = time.perf_counter()
    while family.status == "running":
        family.run(1 << 30, max_seconds=0.5)
    seconds = time.perf_counter() - start
    assert family.status == "finished", family.reason
    return seconds


def measure(preset: str, runs: int, steps: int, device: str, host: bool, repeats: int) -> tuple:
    """(share of wall time in records, steps/s per member with every step recorded, and without)."""
    every = min(family_seconds(preset, runs, steps, True, device, host) for _ in range(repeats))
    sparse = min(family_seconds(preset, runs, steps, False, device, host) for _ in range(repeats))
    return max(0.0, 1.0 - sparse / every), steps / every, steps / sparse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--host", action="store_true", help="records made on the host (the path before)")
    parser.add_argument("--presets", default="relu2-blobs,relu2-blobs-test")
    parser.add_argument("--gpu-runs", default="1024,16384")
    parser.add_argument("--gpu-steps", type=int, default=1000)
    args = parser.parse_args(argv)
    tune_process()
    rows = []
    paths = [True] if args.host else [True, False]  # both paths when the device path exists
    for preset in args.presets.split(","):
        for host in paths:
            rows.append((preset, "cpu", args.runs, "host" if host else "device",
                         *measure(preset, args.runs, args.steps, "cpu", host, args.repeats)))
    if torch.cuda.is_available():
        for runs in (int(r) for r in args.gpu_runs.split(",")):
            for preset in args.presets.split(","):
                for host in paths:
                    rows.append((preset, "cuda", runs, "host" if host else "device",
                                 *measure(preset, runs, args.gpu_steps, "cuda", host, 1)))
    else:
        print("no CUDA device here: the GPU rows (S = " + args.gpu_runs + ") need one")
    print(f"float64, torch threads {torch.get_num_threads()}, {args.steps} steps on the CPU")
    print(f"{'preset':>18} {'device':>6} {'S':>6} {'records':>7} {'share in records':>17} "
          f"{'steps/s/member, every step':>28} {'records ~none':>14}")
    for preset, device, runs, where, share, rate, bare in rows:
        print(f"{preset:>18} {device:>6} {runs:>6} {where:>7} {share:>16.0%} {rate:>28,.1f} {bare:>14,.1f}")
    return rows


if __name__ == "__main__":
    main()
