"""A family's records: what share of its wall time goes to records, and steps per second per
member (issue #22, Scale). A family of S members of relu2-blobs (two-layer ReLU, width 32, 100
points; relu2-blobs-test adds 200 test points and the test metrics) trains with every metric
recorded every step; the time inside the recorder (Recorder.record: the records' arithmetic and
the members' rows, wherever they are made) is summed against the run's wall time, in the same
run, so that the share holds on a machine shared with other work. Snapshots (1 a decade, no KKT
residual) are in the wall time and not in the records'.

The batched engine makes a family's records on its device (core/batched_records.py); with
--host the recorder makes them from the parameters read back to the host, as it does for the
CPU engines (the path before issue #22's change; run the script at an earlier commit with --host
for the code before it). The device is auto-detected: with CUDA the families of --gpu-runs
(default 1,024 and 16,384) run there too, on both paths.

    python benchmarks/family_records.py [--runs 256] [--steps 100] [--repeats 2] [--host] [--gpu-runs 1024,16384]
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


def family_run(preset: str, runs: int, steps: int, device: str, host: bool) -> tuple:
    """(seconds in records, wall seconds) of a family of ``runs`` seeds trained ``steps`` steps to
    the end with every metric recorded every step."""
    config = mx.preset(preset)
    config.run.steps = steps
    config.run.device = device
    config.recording.every_step_until = steps + 1
    config.recording.snapshots_per_decade = 1
    config.recording.kkt = False  # snapshots are per member on the host either way; keep them small
    config.family = FamilyConfig("seed", list(range(runs)))
    family = Trainer(config)
    family.engine.records_on_device = not host
    recorder, in_records = family.recorder, [0.0]
    record = recorder.record

    def timed(*args, **kwargs):
        started = time.perf_counter()
        record(*args, **kwargs)
        if device == "cuda":
            torch.cuda.synchronize()
        in_records[0] += time.perf_counter() - started

    recorder.record = timed
    start = time.perf_counter()
    while family.status == "running":
        family.run(1 << 30, max_seconds=0.5)
    seconds = time.perf_counter() - start
    assert family.status == "finished", family.reason
    return in_records[0], seconds


def measure(preset: str, runs: int, steps: int, device: str, host: bool, repeats: int) -> tuple:
    """(share of wall time in records, steps/s per member), of the repeat with the smallest wall time."""
    recording, wall = min((family_run(preset, runs, steps, device, host) for _ in range(repeats)), key=lambda r: r[1])
    return recording / wall, steps / wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--host", action="store_true", help="only the records made on the host (the path before)")
    parser.add_argument("--presets", default="relu2-blobs,relu2-blobs-test")
    parser.add_argument("--gpu-runs", default="1024,16384")
    parser.add_argument("--gpu-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's own)")
    args = parser.parse_args(argv)
    tune_process()
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = [True] if args.host else [True, False]
    cases = [(preset, "cpu", args.runs, args.steps) for preset in args.presets.split(",")]
    if torch.cuda.is_available():
        cases += [(preset, "cuda", int(runs), args.gpu_steps) for runs in args.gpu_runs.split(",")
                  for preset in args.presets.split(",")]
    else:
        print(f"no CUDA device here: the GPU rows (S = {args.gpu_runs}) need one")
    rows = []
    for preset, device, runs, steps in cases:
        for host in paths:
            rows.append((preset, device, runs, "host" if host else "device",
                         *measure(preset, runs, steps, device, host, args.repeats)))
    print(f"float64, torch threads {torch.get_num_threads()}, every metric recorded every step")
    print(f"{'preset':>18} {'device':>6} {'S':>6} {'records':>7} {'share in records':>17} {'steps/s/member':>15}")
    for preset, device, runs, where, share, rate in rows:
        print(f"{preset:>18} {device:>6} {runs:>6} {where:>7} {share:>16.0%} {rate:>15,.1f}")
    return rows


if __name__ == "__main__":
    main()
