"""Engine throughput against a plain PyTorch loop, same config, same process (issue #2, #6).

The plain loop is what a researcher writes today: an nn.Module forward, loss.backward(),
optimizer.step(), and the metrics read with .item() every step. The engine records every
metric every step (recording.every_step_until = steps). Printed as a table of steps/s and the
ratio; wall-clock figures are noisy on shared machines, ratios less so.

    python benchmarks/engine_vs_plain.py [--steps 2000] [--widths 16,64,256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from core.architecture import Activation, ArchitectureSpec, Dense, Residual, mlp  # noqa: E402
from core.config import DatasetConfig, LossConfig, OptimizerConfig, RunConfig, RunSettings  # noqa: E402
from core.trainer import Trainer  # noqa: E402


def residual_gelu(width: int) -> ArchitectureSpec:
    """x -> dense(width) -> gelu -> x + dense(gelu(dense(x))) -> dense(1), bias-free."""
    return ArchitectureSpec(2, [Dense(width), Activation("gelu"),
                                Residual([Dense(width), Activation("gelu"), Dense(width)]), Dense(1)])


def make_config(width: int, steps: int, network: str = "relu") -> RunConfig:
    spec = mlp(2, [width]) if network == "relu" else residual_gelu(width)
    config = RunConfig(spec, dataset=DatasetConfig(generator="blobs", params={"n": 100, "seed": 0}),
                       loss=LossConfig(kind="logistic"),
                       optimizer=OptimizerConfig(kind="gd", lr=0.01 if network == "relu" else 0.002,
                                                 step_rule="constant"),
                       run=RunSettings(steps=steps))
    config.recording.every_step_until = steps + 1
    config.recording.snapshots_per_decade = 1
    return config


def plain_loop(config: RunConfig, steps: int) -> float:
    """steps/s of the loop a user would write, metrics read with .item() every step."""
    torch.manual_seed(0)
    data = config.dataset.build()
    X = torch.tensor(data.X)
    y = torch.tensor(data.y)
    width = config.architecture.blocks[0].width
    if isinstance(config.architecture.blocks[1], Activation) and config.architecture.blocks[1].kind == "gelu":
        class ResidualGelu(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.first = torch.nn.Linear(2, width, bias=False)
                self.inner1 = torch.nn.Linear(width, width, bias=False)
                self.inner2 = torch.nn.Linear(width, width, bias=False)
                self.out = torch.nn.Linear(width, 1, bias=False)

            def forward(self, x):
                h = torch.nn.functional.gelu(self.first(x))
                h = h + self.inner2(torch.nn.functional.gelu(self.inner1(h)))
                return self.out(h)

        model = ResidualGelu().double()
    else:
        model = torch.nn.Sequential(torch.nn.Linear(2, width, bias=False), torch.nn.ReLU(),
                                    torch.nn.Linear(width, 1, bias=False)).double()
    opt = torch.optim.SGD(model.parameters(), lr=config.optimizer.lr)
    history = []
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        q = y * model(X)[:, 0]
        loss = torch.nn.functional.softplus(-q).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            norm = torch.sqrt(sum((p * p).sum() for p in model.parameters()))
            history.append((loss.item(), q.min().item(), norm.item(), (q.min() / norm ** 2).item(),
                            (q > 0).double().mean().item()))
    return steps / (time.perf_counter() - start)


def engine(config: RunConfig, steps: int) -> float:
    trainer = Trainer(config)
    start = time.perf_counter()
    chunk = trainer.run(steps)
    rate = steps / (time.perf_counter() - start)
    assert chunk.n_records >= steps, "the engine must record every step here"
    assert chunk.status == "finished", chunk.reason
    return rate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--widths", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--networks", default="relu,residual_gelu", help="relu (two-layer), residual_gelu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for network in args.networks.split(","):
        widths = [int(w) for w in args.widths.split(",")] if network == "relu" else [64]
        for width in widths:
            config = make_config(width, args.steps, network)
            # interleaved, best of each: the machine's load drifts, and both should see the same drift
            pairs = [(plain_loop(config, args.steps), engine(config, args.steps)) for _ in range(args.repeats)]
            plain, fast = max(p for p, _ in pairs), max(e for _, e in pairs)
            rows.append((network, width, plain, fast, fast / plain))
    print(f"{'network':>14} {'width':>6} {'plain torch steps/s':>20} {'engine steps/s':>15} {'ratio':>7}")
    for network, width, plain, fast, ratio in rows:
        print(f"{network:>14} {width:>6} {plain:>20.0f} {fast:>15.0f} {ratio:>7.2f}x")
    return rows


if __name__ == "__main__":
    main()
