"""A digits CNN step on the CPU: the numpy engine (core/conv_nodes.py) and the autograd engine
against a plain PyTorch loop on the same network, same process (issue #21).

The network is Lyu and Li's Figure 1 CNN in small: conv 3x3 (8 channels, padding 1, the only
bias), ReLU, max-pool 2, conv 3x3 (16 channels, padding 1), ReLU, max-pool 2, flatten, dense 32,
ReLU, dense 1: 4-homogeneous, 3,312 parameters, on all 1,797 of scikit-learn's 8 x 8 digits (odd
against even), mean logistic loss, constant step. The plain loop and the engines' columns are
engine_vs_plain.py's (every metric every step; records log-spaced; the ratio to the plain loop);
the snapshot column times what a snapshot computes (per-sample Jacobian, Euler defect, KKT
residual) on each network at the same theta. With --trajectory STEPS it trains that long on the
numpy engine and extrapolates log L to 1e-300 with a constant step.

    python benchmarks/cnn_digits.py [--steps 60] [--repeats 3] [--no-snapshots] [--trajectory 3000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine_vs_plain import with_backend  # noqa: E402
from margin_explorer.core.config import RunConfig  # noqa: E402
from margin_explorer.core.homogeneity import euler_defect  # noqa: E402
from margin_explorer.core.metrics import kkt_residual  # noqa: E402
from margin_explorer.core.network import NumpyNetwork  # noqa: E402
from margin_explorer.core.process import tune_process  # noqa: E402
from margin_explorer.core.torch_network import AutogradNetwork  # noqa: E402
from margin_explorer.core.trainer import Trainer  # noqa: E402


def conv(channels: int, bias: bool = False) -> dict:
    return {"type": "conv2d", "channels": channels, "kernel": 3, "stride": 1, "padding": 1, "bias": bias}


RELU = {"type": "activation", "kind": "relu"}
POOL = {"type": "max_pool", "kernel": 2}
BLOCKS = [conv(8, bias=True), RELU, POOL, conv(16), RELU, POOL, {"type": "flatten"},
          {"type": "dense", "width": 32}, RELU, {"type": "dense", "width": 1}]


def make_config(steps: int, lr: float = 0.01) -> RunConfig:
    config = RunConfig.from_dict({
        "dataset": {"kind": "builtin", "builtin": "digits", "params": {"classes": "odd_even", "test_fraction": 0}},
        "architecture": {"input_dim": 64, "input_shape": [1, 8, 8], "blocks": BLOCKS},
        "loss": {"kind": "logistic", "reduction": "mean"},
        "optimizer": {"kind": "gd", "lr": lr, "step_rule": "constant"},
        "run": {"steps": steps}})
    config.recording.every_step_until = steps + 1
    config.recording.snapshots_per_decade = 1
    return config


class Clocks:
    """Steps per second by the wall clock and CPU milliseconds a step (this process's CPU time:
    steadier than the wall on a machine shared with other work, for these one-thread loops)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, steps: int) -> tuple[float, float]:
        return steps / (time.perf_counter() - self.wall), (time.process_time() - self.cpu) / steps * 1e3


def engine(config: RunConfig, steps: int, backend: str) -> tuple[float, float]:
    """(steps/s, CPU ms a step) of the driver on ``backend``'s engine, every metric every step."""
    trainer = Trainer(with_backend(config, backend))
    clocks = Clocks()
    chunk = trainer.run(steps).members[0]
    rates = clocks.rates(steps)
    assert chunk.n_records >= steps and chunk.status == "finished", chunk.reason
    return rates


def engine_sparse(config: RunConfig, steps: int, backend: str) -> tuple[float, float]:
    """The same with the records log-spaced (10 a decade) and no snapshots, after 20 steps: the steps themselves."""
    config = with_backend(config, backend)
    config.run.steps = 0
    config.recording.every_step_until, config.recording.per_decade = 0, 10
    trainer = Trainer(config)
    trainer.snapshots.due_in = lambda start, end, limit: np.zeros(0, dtype=np.int64)
    trainer.run(20)
    clocks = Clocks()
    chunk = trainer.run(steps).members[0]
    assert chunk.status == "running", chunk.reason
    return clocks.rates(steps)


def plain_loop(config: RunConfig, steps: int) -> tuple[float, float]:
    """steps/s of the loop a user would write on the same network, metrics read with .item() every step."""
    torch.manual_seed(0)
    data = config.dataset.build()
    X = torch.tensor(data.X).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.y)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Linear(32, 1, bias=False)).double()
    opt = torch.optim.SGD(model.parameters(), lr=config.optimizer.lr)
    history = []
    clocks = Clocks()
    for _ in range(steps):
        opt.zero_grad()
        q = y * model(X)[:, 0]
        loss = torch.nn.functional.softplus(-q).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            norm = torch.sqrt(sum((p * p).sum() for p in model.parameters()))
            history.append((loss.item(), q.min().item(), norm.item(), (q.min() / norm ** 4).item(),
                            (q > 0).double().mean().item()))
    return clocks.rates(steps)


def snapshot_seconds(net, theta, X, y, order: float) -> tuple[float, float]:
    """(seconds of the per-sample Jacobian alone, seconds of a snapshot's Euler defect and KKT
    residual together, as core/trainer.py's snapshot computes them) on ``net``."""
    start = time.perf_counter()
    net.jacobian(theta, X)
    jacobian = time.perf_counter() - start
    start = time.perf_counter()
    euler_defect(net, theta, X, order)
    kkt_residual(net, theta, X, y, order)
    return jacobian, time.perf_counter() - start


def trajectory(steps: int, lr: float) -> None:
    """Train ``steps`` on the numpy engine, records log-spaced; fit log L against log t over the
    last decade and say when log L would reach log(1e-300) at this constant step."""
    config = make_config(0, lr)
    config.recording.every_step_until, config.recording.per_decade = 10, 20
    config.recording.kkt = False
    trainer = Trainer(config)
    started = time.perf_counter()
    steps_seen, log_loss, accuracy = [], [], []
    while trainer.step < steps:
        chunk = trainer.run(min(500, steps - trainer.step)).members[0]
        records = chunk.records  # empty where the chunk held no record (log-spaced)
        steps_seen += list(records.get("step", []))
        log_loss += list(records.get("log_loss", []))
        accuracy += list(records.get("accuracy", []))
        if trainer.members[0].status not in ("running", "finished"):
            break
    wall = time.perf_counter() - started
    t, ll = np.asarray(steps_seen, float), np.asarray(log_loss)
    rate = trainer.step / wall
    print(f"\n{trainer.step} constant-step ({lr}) steps in {wall:.0f} s ({rate:.1f} steps/s, records log-spaced): "
          f"log L {ll[0]:.3g} -> {ll[-1]:.3g} (L = 10^{ll[-1] / math.log(10):.3g}), accuracy {accuracy[-1]:.4f}")
    late = t >= max(t[-1] / 10, 1)
    slope, intercept = np.polyfit(np.log(t[late]), ll[late], 1)
    target = math.log(1e-300)
    print(f"last decade: log L ~ {slope:.3f} log t + {intercept:.3g}")
    if slope < 0:
        log10_steps = (target - intercept) / slope / math.log(10)
        log10_years = log10_steps - math.log10(rate * 3600 * 24 * 365)  # as logarithms: 10^288 overflows nothing
        print(f"L < 1e-300 at t ~ 10^{log10_steps:.3g} steps: ~10^{log10_years:.3g} years at {rate:.1f} steps/s")
    np.save(os.path.join(os.environ.get("TMPDIR", "/tmp"), "cnn_digits_theta.npy"), trainer.members[0].theta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--trajectory", type=int, default=0, help="train this many steps and extrapolate to 1e-300")
    parser.add_argument("--theta", help="a .npy theta for the snapshot timing (default: theta_0)")
    parser.add_argument("--no-snapshots", action="store_true", help="leave the snapshot timing out (autograd's takes minutes)")
    args = parser.parse_args(argv)
    tune_process()
    torch.set_num_threads(1)
    config = make_config(args.steps, args.lr)
    # interleaved, best of each: the machine's load drifts, and all should see the same drift
    runs = [(plain_loop(config, args.steps), engine(config, args.steps, "numpy"), engine_sparse(config, args.steps, "numpy"),
             engine(config, args.steps, "torch"), engine_sparse(config, args.steps, "torch"))
            for _ in range(args.repeats)]
    plain, numpy_every, numpy_sparse, torch_every, torch_sparse = (
        (max(run[i][0] for run in runs), min(run[i][1] for run in runs)) for i in range(5))
    print(f"steps/s (best of {args.repeats}, wall clock) and CPU ms a step (best); ratio: the plain loop's CPU time "
          "over the engine's")
    print(f"{'engine':>9} {'plain torch':>18} {'every step':>18} {'ratio':>7} {'log-spaced':>18} {'ratio':>7}")

    def cell(rates):
        return f"{rates[0]:>6.1f}/s {rates[1]:>6.0f} ms"

    for name, every, sparse in (("numpy", numpy_every, numpy_sparse), ("autograd", torch_every, torch_sparse)):
        print(f"{name:>9} {cell(plain):>18} {cell(every):>18} {plain[1] / every[1]:>6.2f}x {cell(sparse):>18}"
              f" {plain[1] / sparse[1]:>6.2f}x")
    if not args.no_snapshots:
        snapshots(config, args)
    if args.trajectory:
        trajectory(args.trajectory, args.lr)


def snapshots(config: RunConfig, args) -> None:
    data = config.dataset.build()
    spec = config.architecture
    theta = np.load(args.theta) if args.theta else Trainer(config).members[0].theta
    X, y = np.ascontiguousarray(data.X), data.y.astype(float)
    q_min = float(np.min(y * NumpyNetwork(spec).outputs(theta, X)))
    print(f"\nsnapshot at {'the given theta' if args.theta else 'theta_0'} (q_min {q_min:.3g}: the KKT residual "
          f"{'is fitted' if q_min > 0 else 'is undefined and skipped'}), seconds (numpy: best of {args.repeats}; "
          "autograd: once, n backward passes a Jacobian)")
    print(f"{'network':>9} {'Jacobian n x P':>15} {'Euler defect + KKT':>19}")
    times = {}
    for name, net, repeats in (("numpy", NumpyNetwork(spec), args.repeats), ("autograd", AutogradNetwork(spec), 1)):
        best = [min(v) for v in zip(*(snapshot_seconds(net, theta, X, y, 4.0) for _ in range(repeats)))]
        times[name] = best
        print(f"{name:>9} {best[0]:>15.3f} {best[1]:>19.3f}")
    print(f"{'ratio':>9} {times['autograd'][0] / times['numpy'][0]:>14.1f}x"
          f" {times['autograd'][1] / times['numpy'][1]:>18.1f}x")


if __name__ == "__main__":
    main()
