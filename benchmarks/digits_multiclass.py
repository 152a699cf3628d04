"""A digits MLP step with ten outputs in the engine against a plain PyTorch loop (issue #20), in
the table style of benchmarks/engine_vs_plain.py.

scikit-learn's digits, all ten classes, all 1,797 images (1,797 x 64), a bias-free MLP 64 -> 128
-> 10, the summed cross-entropy, plain GD, float64. The plain loop is what a researcher writes:
nn.Sequential forward, F.cross_entropy(reduction="sum"), loss.backward(), optimizer.step(), and
the metrics (log L, q_min = min_i f_{y_i} - max_{j != y_i} f_j, ||theta||, the normalized
margin, accuracy) read with .item() every step. The engine (the numpy engine, as 'auto' picks
for ten outputs) records every metric every step, and then with its records log-spaced (10 a
decade, no snapshots) as in a long run after its first steps. The KKT residual is off: its pair
Jacobian, n (C - 1) x P = 1,797 x 9 x 9,472, is over the memory bound (core/budget.py).

    python benchmarks/digits_multiclass.py [--steps 300] [--repeats 3] [--width 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense  # noqa: E402
from margin_explorer.core.config import (DatasetConfig, LossConfig, OptimizerConfig, RecordingConfig,  # noqa: E402
                                         RunConfig, RunSettings)
from margin_explorer.core.process import tune_process  # noqa: E402

from engine_vs_plain import engine, engine_sparse  # noqa: E402


def make_config(width: int, steps: int) -> RunConfig:
    spec = ArchitectureSpec(64, [Dense(width), Activation("relu"), Dense(10)])
    dataset = DatasetConfig(kind="builtin", builtin="digits", params={"classes": "all", "test_fraction": 0})
    config = RunConfig(spec, dataset=dataset, loss=LossConfig(kind="logistic"),
                       optimizer=OptimizerConfig(kind="gd", lr=1e-3, step_rule="constant"),
                       run=RunSettings(steps=steps), recording=RecordingConfig(kkt=False))
    config.recording.every_step_until = steps + 1
    config.recording.snapshots_per_decade = 1
    return config


def plain_loop(config: RunConfig, steps: int) -> float:
    """steps/s of the loop a user would write, metrics read with .item() every step."""
    torch.manual_seed(0)
    data = config.dataset.build()
    X, y = torch.tensor(data.X), torch.tensor(data.y.astype("int64"))
    width = config.architecture.blocks[0].width
    model = torch.nn.Sequential(torch.nn.Linear(64, width, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(width, 10, bias=False)).double()
    opt = torch.optim.SGD(model.parameters(), lr=config.optimizer.lr)
    own = torch.nn.functional.one_hot(y, 10).bool()
    history = []
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        f = model(X)
        loss = torch.nn.functional.cross_entropy(f, y, reduction="sum")
        loss.backward()
        opt.step()
        with torch.no_grad():
            q = f[own] - f.masked_fill(own, -torch.inf).amax(dim=1)
            norm = torch.sqrt(sum((p * p).sum() for p in model.parameters()))
            history.append((torch.log(loss).item(), q.min().item(), norm.item(), (q.min() / norm ** 2).item(),
                            (q > 0).double().mean().item()))
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args(argv)
    tune_process()  # as the command line does when training starts (core/process.py)
    torch.set_num_threads(1)
    config = make_config(args.width, args.steps)
    # interleaved, best of each: the machine's load drifts, and all should see the same drift
    runs = [(plain_loop(config, args.steps), engine(config, args.steps), engine_sparse(config, args.steps))
            for _ in range(args.repeats)]
    plain, every, sparse = (max(run[i] for run in runs) for i in range(3))
    print(f"{'network':>22} {'plain torch steps/s':>20} {'engine steps/s':>15} {'ratio':>7} {'records log-spaced':>19}")
    print(f"{f'digits 64-{args.width}-10 MLP':>22} {plain:>20.0f} {every:>15.0f} {every / plain:>6.2f}x "
          f"{sparse:>10.0f} ({sparse / plain:.2f}x)")
    print(f"10,000 steps, records log-spaced: about {10000 / sparse:.0f} s")


if __name__ == "__main__":
    main()
