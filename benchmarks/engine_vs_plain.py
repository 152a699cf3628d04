"""Engine throughput against a plain PyTorch loop, same config, same process (issue #2, #6).

The plain loop is what a researcher writes today: an nn.Module forward, loss.backward(),
optimizer.step(), and the metrics read with .item() every step. The engine records every
metric every step (recording.every_step_until = steps). Printed as a table of steps/s and the
ratio; wall-clock figures are noisy on shared machines, ratios less so. Two more ratios beside
it: the engine with its records log-spaced (a long run's steps after the first 1,000), and for
the residual GELU network the arithmetic alone of its step.

A second table gives the compiled engine (core/engines/compiled_engine.py, issue #23) in the same
run, driven by the driver as every engine (core/trainer.py, backend "compiled"): every metric every
step and records log-spaced, against the plain loop and the numpy engine measured beside it, its
steps alone (its advance with nothing due), and the physical limit: the step's multiply-add
FLOPs against one core (numpy, one BLAS thread) on a plain matrix product of as many FLOPs of
the layer's shape. With --where, where a compiled residual GELU step's time goes.

    python benchmarks/engine_vs_plain.py [--steps 2000] [--widths 16,64,256] [--gelu-widths 16,64,128] [--repeats 5] [--where]
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


def with_backend(config: RunConfig, backend: str) -> RunConfig:
    config = RunConfig.from_dict(config.to_dict())
    config.run.backend = backend
    return config


def engine(config: RunConfig, steps: int, backend: str = "numpy") -> float:
    """steps/s of the driver on ``backend``'s engine, every metric recorded every step."""
    trainer = Trainer(with_backend(config, backend))
    start = time.perf_counter()
    chunk = trainer.run(steps).members[0]
    rate = steps / (time.perf_counter() - start)
    assert chunk.n_records >= steps, "the engine must record every step here"
    assert chunk.status == "finished", chunk.reason
    return rate


def engine_sparse(config: RunConfig, steps: int, backend: str = "numpy") -> float:
    """steps/s with the records log-spaced (10 a decade) and no snapshots, as in a long run
    after its first 1,000 steps: the steps themselves."""
    config = with_backend(config, backend)
    config.run.steps = 0
    config.recording.every_step_until, config.recording.per_decade = 0, 10
    trainer = Trainer(config)
    trainer.snapshots.due_in = lambda start, end, limit: np.zeros(0, dtype=np.int64)
    trainer.run(100)  # the first steps' records
    start = time.perf_counter()
    chunk = trainer.run(steps).members[0]
    assert chunk.status in ("running", "finished"), chunk.reason
    return steps / (time.perf_counter() - start)


def steps_alone(config: RunConfig, steps: int) -> float:
    """steps/s of the compiled engine's steps with nothing due (its advance, called directly)."""
    trainer = Trainer(with_backend(config, "compiled"))
    empty = np.zeros(0, np.int64)
    trainer.engine.advance(0, 100, empty, empty, None)
    start = time.perf_counter()
    block = trainer.engine.advance(100, 100 + steps, empty, empty, None)
    assert block.end_step == 100 + steps
    return steps / (time.perf_counter() - start)


def flops_per_step(config: RunConfig, n: int) -> tuple[int, int]:
    """(multiply-add FLOPs of one step, k): each dense layer's product forward, its weight gradient
    and, where a gradient flows below it, its input gradient, 2 n in out each; activations, loss and
    update are left out (a few n w). k: the columns of the plain (n x w) @ (w x k) product of as many
    FLOPs, w the first hidden width."""
    from margin_explorer.core.compiled_program import DENSE, IN, IN_MODE, OUT, compile_program

    program = compile_program(config.architecture)
    total = 0
    for row in program.ops:
        if row[0] != DENSE:
            continue
        product = 2 * n * int(program.buffers[row[IN], 1]) * int(program.buffers[row[OUT], 1])
        total += product * (3 if row[IN_MODE] else 2)
    width = config.architecture.blocks[0].width
    return total, max(1, round(total / (2 * n * width)))


def one_core_limit(config: RunConfig, n: int, repeats: int = 2000) -> float:
    """steps/s if a step cost what one core (numpy's BLAS at one thread) takes for a plain matrix
    product of as many FLOPs: (n x w) @ (w x k), best of ``repeats``."""
    from threadpoolctl import threadpool_limits

    _flops, k = flops_per_step(config, n)
    width = config.architecture.blocks[0].width
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, width)), rng.standard_normal((width, k))
    out = np.empty((n, k))
    best = float("inf")
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(A, B, out=out)
            best = min(best, time.perf_counter() - start)
    return 1.0 / best


def where_time_goes(config: RunConfig, repeats: int = 200) -> dict:
    """Microseconds a compiled step spends in its forward (of it, the activations), backward, and
    loss, update and the rest, each part timed alone in compiled loops."""
    import numba

    from margin_explorer.core import compiled_kernels as K
    from margin_explorer.core.compiled_program import ACT, EXTRA, IN, KIND, OUT, PARAM

    engine = Trainer(with_backend(config, "compiled")).engine
    k, p = engine._kernels, engine._kernels.program
    n = k.n

    @numba.njit
    def forwards(reps, ops, values, buffers, n, theta, work):
        for _ in range(reps):
            K.forward(ops, values, buffers, n, theta, work)

    @numba.njit
    def backwards(reps, ops, values, buffers, n, theta, work, gwork, grad, tmp, rank_one, uvec, output):
        for _ in range(reps):
            K.backward(ops, values, buffers, n, theta, work, gwork, grad, tmp, rank_one, uvec, output)

    @numba.njit
    def activations(reps, ops, values, buffers, n, work):
        for _ in range(reps):
            for r in range(ops.shape[0]):
                if ops[r, 0] == ACT:
                    K._activation(ops[r, KIND], values[r, PARAM], K._flat(work, buffers, ops[r, IN], n),
                                  K._flat(work, buffers, ops[r, OUT], n), K._flat(work, buffers, ops[r, EXTRA], n))

    def timed(fn, *args):  # best of five: the machine is shared
        fn(1, *args)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            fn(repeats, *args)
            best = min(best, time.perf_counter() - start)
        return best / repeats * 1e6

    theta = engine.theta[0]
    forward = timed(forwards, p.ops, p.values, p.buffers, n, theta, k.work)
    backward = timed(backwards, p.ops, p.values, p.buffers, n, theta, k.work, k.gwork, k.grad, k.tmp, p.rank_one,
                     k.uvec, int(p.output))
    act = timed(activations, p.ops, p.values, p.buffers, n, k.work.copy())
    empty = np.zeros(0, np.int64)
    engine.advance(0, 10, empty, empty, None)
    step = float("inf")
    for i in range(5):
        start = time.perf_counter()
        engine.advance(10 + i * repeats, 10 + (i + 1) * repeats, empty, empty, None)
        step = min(step, (time.perf_counter() - start) / repeats * 1e6)
    return {"step": step, "forward": forward, "activations": act, "backward": backward,
            "loss, update, rest": step - forward - backward}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--widths", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--networks", default="relu,residual_gelu", help="relu (two-layer), residual_gelu")
    parser.add_argument("--gelu-widths", default="16,64,128", help="widths of the residual GELU network")
    parser.add_argument("--no-compiled", action="store_true", help="leave the compiled engine's table out")
    parser.add_argument("--where", action="store_true", help="where a compiled residual GELU step's time goes")
    args = parser.parse_args(argv)
    tune_process()  # as the command line does when training starts (core/process.py)
    torch.set_num_threads(1)
    rows, compiled_rows = [], []
    if not args.no_compiled:
        from margin_explorer.core.engines.compiled_engine import prepare

        print(f"compiled kernels ready in {prepare():.2f} s (numba's cache, or a first compile)")
    for network in args.networks.split(","):
        widths = [int(w) for w in (args.widths if network == "relu" else args.gelu_widths).split(",")]
        for width in widths:
            config = make_config(width, args.steps, network)
            # long enough to time: the compiled engine takes 10-50 us a step
            more = args.steps * (10 if network == "relu" else 1)
            # interleaved, best of each: the machine's load drifts, and all should see the same drift
            runs = [(plain_loop(config, args.steps), engine(config, args.steps), engine_sparse(config, args.steps),
                     *((0.0, 0.0, 0.0) if args.no_compiled else
                       (engine(config, args.steps, "compiled"), engine_sparse(config, more, "compiled"),
                        steps_alone(config, more))))
                    for _ in range(args.repeats)]
            plain, fast, sparse, c_every, c_sparse, c_alone = (max(run[i] for run in runs) for i in range(6))
            if not args.no_compiled:
                n = config.dataset.build().n
                compiled_rows.append((network, width, plain, sparse, c_every, c_sparse, c_alone,
                                      flops_per_step(config, n)[0], one_core_limit(config, n)))
            floor = (max(residual_gelu_floor(width, args.steps) for _ in range(args.repeats))
                     if network == "residual_gelu" else None)
            rows.append((network, width, plain, fast, fast / plain, sparse / plain, floor))
    print(f"{'network':>14} {'width':>6} {'plain torch steps/s':>20} {'engine steps/s':>15} {'ratio':>7}"
          f" {'log-spaced records':>19} {'arithmetic alone':>17}")
    for network, width, plain, fast, ratio, sparse_ratio, floor in rows:
        tail = f" {floor / plain:>16.2f}x" if floor else ""
        print(f"{network:>14} {width:>6} {plain:>20.0f} {fast:>15.0f} {ratio:>7.2f}x {sparse_ratio:>18.2f}x{tail}")
    if compiled_rows:
        print("\ncompiled engine (same run): steps/s and ratio to the plain loop; log-spaced against today's"
              " engine log-spaced; steps alone against one core's plain product of the step's FLOPs")
        print(f"{'network':>14} {'width':>6} {'every step':>11} {'ratio':>7} {'log-spaced':>11} {'ratio':>7}"
              f" {'vs today':>9} {'steps alone':>12} {'kFLOP/step':>11} {'limit steps/s':>14} {'of limit':>9}")
        for network, width, plain, sparse, c_every, c_sparse, c_alone, flops, limit in compiled_rows:
            print(f"{network:>14} {width:>6} {c_every:>11.0f} {c_every / plain:>6.1f}x {c_sparse:>11.0f}"
                  f" {c_sparse / plain:>6.1f}x {c_sparse / sparse:>8.2f}x {c_alone:>12.0f} {flops / 1e3:>11.0f}"
                  f" {limit:>14.0f} {c_alone / limit:>8.0%}")
    if args.where:
        print("\nwhere a compiled residual GELU step's time goes (us, each part timed alone)")
        for width in [int(w) for w in args.gelu_widths.split(",")]:
            parts = where_time_goes(make_config(width, args.steps, "residual_gelu"))
            print(f"width {width:>4}: " + ", ".join(f"{name} {value:.1f}" for name, value in parts.items()))
    return rows, compiled_rows


if __name__ == "__main__":
    main()
