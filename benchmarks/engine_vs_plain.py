"""Engine throughput against a plain PyTorch loop, same config, same process (issue #2, #6).

The plain loop is what a researcher writes today: an nn.Module forward, loss.backward(),
optimizer.step(), and the metrics read with .item() every step. The engine records every
metric every step (recording.every_step_until = steps). Printed as a table of steps/s and the
ratio; wall-clock figures are noisy on shared machines, ratios less so. Two more ratios beside
it: the engine with its records log-spaced (a long run's steps after the first 1,000), and for
the residual GELU network the arithmetic alone of its step.

    python benchmarks/engine_vs_plain.py [--steps 2000] [--widths 16,64,256] [--gelu-widths 16,64,128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from margin_explorer.core.process import tune_process  # noqa: E402

from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Residual, mlp  # noqa: E402
from margin_explorer.core.config import DatasetConfig, LossConfig, OptimizerConfig, RunConfig, RunSettings  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402


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


def residual_gelu_floor(width: int, steps: int) -> float:
    """steps/s of the arithmetic alone of a residual GELU step at this width: the three
    (100 x width) x (width x width) products of forward and backward (the branch's last layer
    feeds the scalar output through the skip sum only, so the forward takes vector products
    there, core/network.py Product, and the backward sees the output's rank-one gradient,
    RankOne) and the two exact GELUs with their derivatives (core/activations.py, torch's
    vectorized erf), nothing else: no loss, update or record. No engine on this stack can step
    faster; the ratio it allows is printed beside the engine's."""
    import numpy as np

    from margin_explorer.core.activations import forward, vectorized_erf

    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 2))
    W0, W1, W2 = rng.standard_normal((width, 2)), rng.standard_normal((width, width)), rng.standard_normal((width, width))
    w_out = rng.standard_normal((1, width))
    W1 /= np.sqrt(width)
    W2 /= np.sqrt(width)
    start = time.perf_counter()
    for _ in range(steps):
        h0, d0 = forward("gelu", 0.0, X @ W0.T, vectorized_erf)
        h1, d1 = forward("gelu", 0.0, h0 @ W1.T, vectorized_erf)
        g = h0 @ w_out.T + h1 @ (W2.T @ w_out.T)  # the output; stands in for the loss weights
        _ = w_out.T * (g.T @ h1)  # the branch's last weight gradient: an outer product
        g1 = (g * (w_out @ W2)) * d1
        _ = g1.T @ h0
        g0 = (g1 @ W1 + g * w_out) * d0
        _ = g0.T @ X
    return steps / (time.perf_counter() - start)


def engine(config: RunConfig, steps: int) -> float:
    trainer = Trainer(config)
    start = time.perf_counter()
    chunk = trainer.run(steps).members[0]
    rate = steps / (time.perf_counter() - start)
    assert chunk.n_records >= steps, "the engine must record every step here"
    assert chunk.status == "finished", chunk.reason
    return rate


def engine_sparse(config: RunConfig, steps: int) -> float:
    """steps/s with the records log-spaced (10 a decade) and no snapshots, as in a long run
    after its first 1,000 steps: the steps themselves."""
    config = RunConfig.from_dict(config.to_dict())
    config.recording.every_step_until, config.recording.per_decade = 0, 10
    trainer = Trainer(config)
    trainer.snapshots.due_in = lambda start, end, limit: np.zeros(0, dtype=np.int64)
    trainer.run(100)  # the first steps' records
    start = time.perf_counter()
    chunk = trainer.run(steps).members[0]
    assert chunk.status in ("running", "finished"), chunk.reason
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--widths", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--networks", default="relu,residual_gelu", help="relu (two-layer), residual_gelu")
    parser.add_argument("--gelu-widths", default="16,64,128", help="widths of the residual GELU network")
    args = parser.parse_args(argv)
    tune_process()  # as the command line does when training starts (core/process.py)
    torch.set_num_threads(1)
    rows = []
    for network in args.networks.split(","):
        widths = [int(w) for w in (args.widths if network == "relu" else args.gelu_widths).split(",")]
        for width in widths:
            config = make_config(width, args.steps, network)
            # interleaved, best of each: the machine's load drifts, and all should see the same drift
            runs = [(plain_loop(config, args.steps), engine(config, args.steps), engine_sparse(config, args.steps))
                    for _ in range(args.repeats)]
            plain, fast, sparse = (max(run[i] for run in runs) for i in range(3))
            floor = (max(residual_gelu_floor(width, args.steps) for _ in range(args.repeats))
                     if network == "residual_gelu" else None)
            rows.append((network, width, plain, fast, fast / plain, sparse / plain, floor))
    print(f"{'network':>14} {'width':>6} {'plain torch steps/s':>20} {'engine steps/s':>15} {'ratio':>7}"
          f" {'log-spaced records':>19} {'arithmetic alone':>17}")
    for network, width, plain, fast, ratio, sparse_ratio, floor in rows:
        tail = f" {floor / plain:>16.2f}x" if floor else ""
        print(f"{network:>14} {width:>6} {plain:>20.0f} {fast:>15.0f} {ratio:>7.2f}x {sparse_ratio:>18.2f}x{tail}")
    return rows


if __name__ == "__main__":
    main()
