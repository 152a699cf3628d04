"""The command line behind main.py: `run`, `info` and `presets` are headless; `demo` and `open`
use the window, and no command opens it.

Exit codes: 0 done (the run file holds the status, including diverged); 2 bad input (config,
dataset, run file) with a message naming the field; 1 an unexpected failure. `check`: 0 every
claim holds, 1 a claim fails, 2 bad input, 3 no claim fails but some cannot be judged. 141: the
program reading the output closed it (`info RUN.h5 | head -1`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .cli_inspect import cmd_check, cmd_info, cmd_presets, cmd_render, shown
from .cli_train import cmd_continue, cmd_run

BAD_INPUT = 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl+C
OVERWRITE_HELP = ("replace an existing run file (a family's member files); anything else, the run's own "
                  "dataset or parent run is never replaced")
BROKEN_PIPE = 141  # as a Unix tool killed by SIGPIPE: the reader of our output (`| head`) went away


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Margin Explorer: watch gradient descent maximize margins. "
                                     "Without a command, opens the window.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="train a config headless and write a run file")
    run.add_argument("config", help="a config JSON file, or a preset name (see `presets`)")
    run.add_argument("--out", required=True, help="the run file to write (.h5); it must be new unless --overwrite")
    run.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    run.add_argument("--steps", type=int, help="number of steps (0: until Ctrl+C)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", help="cpu, cuda or mps")
    run.add_argument("--backend", choices=["auto", "numpy", "torch", "batched", "compiled"],
                     help="auto: numpy on the cpu (compiled once its kernels are cached), the batched engine on a GPU; "
                     "torch: autograd; compiled: numba (the first run compiles, 5-20 s)")
    run.add_argument("--dataset", help="a CSV (x1..xd,label) or NPZ file that replaces the config's dataset")
    run.add_argument("--family", help="train a family together, one file per member (OUT-00.h5, ...): "
                     "seed=0:32, lr=0.001..0.1/8 (log-spaced) or init_scale=0.5,1,2")
    run.set_defaults(func=cmd_run)
    info = sub.add_parser("info", help="print a run file's config, status and final metrics")
    info.add_argument("run")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=cmd_presets)
    demo = sub.add_parser("demo", help="open the window on a preset, run N steps, save a screenshot and exit")
    demo.add_argument("--preset", default="relu2-blobs")
    demo.add_argument("--steps", type=int, default=2000)
    demo.add_argument("--screenshot", required=True, help="the PNG file to write")
    demo.add_argument("--family", help="run the preset as a family: seed=0:16, lr=0.01..1/8 or init_scale=0.5,1,2")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check", help="judge a saved run against its preset's claims (exit 1 if one fails, "
                           "3 if none fails but one cannot be judged)")
    check.add_argument("run")
    check.add_argument("--preset", help="judge by this preset's claims instead of the run's own")
    check.set_defaults(func=cmd_check)
    render = sub.add_parser("render", help="draw plots of saved runs into a PNG or SVG, headless")
    render.add_argument("runs", nargs="+", help="run files (.h5); several are overlaid")
    render.add_argument("--plots", default="margin,norm,angle",
                        help="comma-separated: loss, margin, layers (margin by layer norms), norm, angle, samples, "
                        "rank, ensemble, kkt, accuracy, distribution")
    render.add_argument("--out", required=True, help="FIG.png or FIG.svg")
    render.add_argument("--width", type=int, default=1400, help="width in pixels")
    render.add_argument("--columns", type=int, help="plots per row (default: up to 3)")
    render.add_argument("--scale", type=float, default=1.0, help="PNG pixel scale")
    render.add_argument("--log-x", action="store_true", help="logarithmic step axis")
    render.set_defaults(func=cmd_render)
    cont = sub.add_parser("continue", help="train on from a run file's last snapshot into a new file")
    cont.add_argument("run")
    cont.add_argument("--steps", type=int, required=True, help="how many more steps (0: until Ctrl+C)")
    cont.add_argument("--out", required=True, help="the new run file (.h5); it must be new unless --overwrite")
    cont.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    cont.set_defaults(func=cmd_continue)
    open_ = sub.add_parser("open", help="open saved runs in the window")
    open_.add_argument("runs", nargs="+")
    open_.set_defaults(func=cmd_open)
    from .sweep_cli import add_parser as add_sweep_parser  # `sweep`: a grid of runs on Dask

    add_sweep_parser(sub)
    return parser


def _interrupted(signum, frame):
    """Ctrl+C outside a run (imports, set-up, the window): one line and 130 at once."""
    os.write(2, b"interrupted\n")
    os._exit(INTERRUPTED)


def main(argv=None) -> int:
    """Parse and dispatch; no command opens the window."""
    try:
        previous = signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # called from a thread other than the main one: signals are not ours to set
        return _main(argv)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGINT, previous)


def _main(argv) -> int:
    try:
        from margin_explorer.core.errors import MarginExplorerError

        args = build_parser().parse_args(argv)
        try:
            if args.command is None:
                return gui_entry(args)
            return args.func(args)
        except MarginExplorerError as exc:
            print(f"error: {shown(exc, 2000)}", file=sys.stderr)
            if getattr(exc, "hdf5_unusable", False):
                # HDF5 failed inside a write (a full disk): calling it again, even at exit, can crash
                # the interpreter, so the process ends here (core/runfile.py RunWriter._abandon)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(BAD_INPUT)
            return BAD_INPUT
        except BrokenPipeError:
            # the rest of the output has nowhere to go: send it to the null device (no file is created
            # or replaced: O_WRONLY without O_CREAT) so that the exit's flush does not fail again
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except OSError:
                pass
            return BROKEN_PIPE
    except KeyboardInterrupt:  # Ctrl+C before a run started (imports, set-up): one line, no traceback
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def gui_entry(args) -> int:
    from margin_explorer.app.launch import launch

    return launch()


def cmd_demo(args) -> int:
    from margin_explorer.app.launch import demo

    return demo(args.preset, args.steps, args.screenshot, family=args.family)


def cmd_open(args) -> int:
    from margin_explorer.app.launch import launch

    return launch(open_paths=args.runs)
