"""`main.py sweep`: a grid of runs on Dask (docs/sweeps.md), with a progress line and a clean
Ctrl+C. Registered in app/cli.py's parser by add_parser."""

from __future__ import annotations

import sys
import time

from .durations import duration

EPILOG = """axes: a short name (lr, init_scale, width, depth, seed, steps, optimizer, step_rule, momentum, loss,
init, n, noise) or a dotted path into the config (optimizer.lr, architecture.blocks.0.width); values
a list (16,64,256), log-spaced (0.01..1/8: 8 values, ends included) or whole numbers (0:8 is 0..7).
Runs that differ only in seed, lr or init_scale train together as one family (the axis with the
most values). Without --scheduler, a local cluster of --workers processes; a Dask scheduler's
address runs the same sweep on a cluster."""


class SweepProgressLine:
    """done/total, runs/s, the time left and the dashboard, rewritten in place on a terminal, a
    line every few seconds otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.shown_dashboard = False

    def __call__(self, p) -> None:
        now = time.perf_counter()
        final = p.trained + p.failed >= p.to_train
        if not self.shown_dashboard:
            self.shown_dashboard = True
            where = f"dashboard {p.dashboard}" if p.dashboard else "no dashboard (pip install bokeh for one)"
            self._line(f"{p.to_train} of {p.total} runs to train; {where}", keep=True)
        if not final and 0 <= now - self.last < (0.2 if self.tty else 5.0):
            return
        if final and self.last < 0:
            return  # the last line is out already
        self.last = -1.0 if final else now
        rate = f"{p.rate:.3g} runs/s" if p.rate > 0 else "starting"
        left = f"  {duration(p.left)} left" if p.left is not None and not final else ""
        failed = f"  {p.failed} failed" if p.failed else ""
        self._line(f"{p.done}/{p.total} runs done  {rate}{left}{failed}", keep=False)

    def _line(self, text: str, keep: bool) -> None:
        if self.tty and not keep:
            self.stream.write("\r" + text.ljust(79))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def cmd_sweep(args) -> int:
    from margin_explorer.core.errors import ConfigError
    from margin_explorer.core.presets import resolve_config
    from margin_explorer.core.sweep import run_sweep
    from margin_explorer.core.sweep_grid import SweepPlan, parse_grid_option

    from .cli_progress import GracefulInterrupt

    plan = None
    if args.config is not None:
        config, _folder = resolve_config(args.config)
        grid = [parse_grid_option(text) for text in args.grid or []]
        plan = SweepPlan.build(config, grid, args.seeds, args.steps)
    elif not args.resume:
        raise ConfigError("sweep: give a CONFIG (a preset name or a config file), or --resume with --out DIR")
    elif args.grid or args.seeds or args.steps is not None:
        raise ConfigError("--grid: with --resume and no CONFIG the sweep's own grid is used; give the CONFIG too")
    progress = SweepProgressLine()
    with GracefulInterrupt() as interrupt:
        sweep = run_sweep(plan, args.out, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                          on_progress=progress, should_stop=lambda: interrupt.reason)
    progress.done()
    counts = sweep.index.counts()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if sweep.stopped:
        print(f"{args.out}: stopped ({summary}); the finished runs are kept: --resume trains the rest")
    else:
        print(f"{args.out}: {sweep.index.size} runs ({summary})")
    return 0


def add_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="train a grid of runs on Dask (a local cluster or a scheduler)",
                           epilog=EPILOG)
    sweep.add_argument("config", nargs="?", help="a config JSON file, or a preset name (see `presets`)")
    sweep.add_argument("--grid", action="append", metavar="NAME=VALUES",
                       help="an axis: lr=0.01..1/8, init_scale=0.25,0.5,1,2, width=16,64,256 (repeatable)")
    sweep.add_argument("--seeds", help="the seeds of every grid point: 0:8 (0 to 7) or 0,3,5")
    sweep.add_argument("--steps", type=int, help="steps of every run (replaces the config's)")
    sweep.add_argument("--out", required=True, help="the sweep's folder: new or empty (or a sweep with --resume)")
    sweep.add_argument("--scheduler", help="a Dask scheduler's address (tcp://HOST:8786); default: a local cluster")
    sweep.add_argument("--workers", type=int, help="worker processes of the local cluster (default: one per core)")
    sweep.add_argument("--resume", action="store_true", help="train only the runs DIR lacks or did not finish")
    sweep.set_defaults(func=cmd_sweep)
