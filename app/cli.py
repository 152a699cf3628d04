"""The command line behind main.py: `run`, `info` and `presets` are headless; `demo` and `open`
use the window, and no command opens it.

Exit codes: 0 done (the run file holds the status, including diverged); 2 bad input (config,
dataset, run file) with a message naming the field; 1 an unexpected failure. `check`: 0 every
claim holds, 1 a claim fails, 2 bad input, 3 no claim fails but some cannot be judged. 141: the
program reading the output closed it (`info RUN.h5 | head -1`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time

from .durations import time_left

CLAIM_FAILS = 1  # `check`: a claim does not hold
BAD_INPUT = 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl+C
OVERWRITE_HELP = ("replace an existing run file (a family's member files); anything else, the run's own "
                  "dataset or parent run is never replaced")
NOT_JUDGED = 3  # `check`: no claim fails, but some cannot be judged (the run is too short, or lacks the data)
BROKEN_PIPE = 141  # as a Unix tool killed by SIGPIPE: the reader of our output (`| head`) went away


def _format_number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class GracefulInterrupt:
    """Ctrl+C (SIGINT) and SIGTERM set a reason that the run checks between chunks, so the file is
    never interrupted in the middle of a write (a KeyboardInterrupt inside h5py can leave the final
    status unwritten); the run ends "stopped" with that reason. A second signal interrupts at once."""

    REASONS = {signal.SIGINT: "interrupted (Ctrl+C)", signal.SIGTERM: "terminated (SIGTERM)"}

    def __init__(self):
        self.reason = None

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def __enter__(self):
        self._previous = {signum: signal.signal(signum, self._handle) for signum in self.REASONS}
        return self

    def _handle(self, signum, frame):
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = self.REASONS[signum]

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Progress:
    """One status line: step, steps/s, the time left, normalized margin, log L. Rewritten in
    place on a terminal; a line every few seconds otherwise (logs, CI)."""

    def __init__(self, total: int, stream=None, members: int = 1, start: int = 0):
        self.total, self.members = total, members
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.start_step = start  # a continued run's first step
        # the rate and the time left count from the first chunk on: before it, imports and the
        # first chunk's set-up made a run's first line say "3 steps/s, 2 h left"
        self.base = None
        self.last_print = 0.0

    def update(self, trainer, chunk, force=False):
        now = time.perf_counter()
        if self.base is None:
            self.base = (now, trainer.step)
        if not force and now - self.last_print < (0.2 if self.tty else 5.0):
            return
        if trainer.step > self.base[1]:
            since, base_step = self.base
        elif force:  # a run of one chunk: its own average is all there is
            since, base_step = self.start, self.start_step
        else:  # the first chunk: no rate to tell yet
            since, base_step = now, trainer.step
        elapsed = now - since
        rate = f"{(trainer.step - base_step) * self.members / elapsed:,.0f} steps/s" if elapsed > 0 else "starting"
        left = time_left(self.total, trainer.step, base_step, elapsed)
        rec = chunk.records
        gamma = rec["normalized_margin"][-1] if chunk.n_records else float("nan")
        log_l = rec["log_loss"][-1] if chunk.n_records else float("nan")
        total = f"/{self.total}" if self.total else ""
        who = f"{self.members} runs, " if self.members > 1 else ""
        line = (f"step {trainer.step}{total}  {who}{rate}" + (f"  {left} left" if left else "")
                + f"  normalized margin {_format_number(float(gamma))}  log L {_format_number(float(log_l))}")
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_print = now

    def done(self):
        if self.tty:
            self.stream.write("\n")


def cmd_run(args) -> int:
    from margin_explorer.core.datasets import load as load_dataset
    from margin_explorer.core.presets import resolve_config

    config, _folder = resolve_config(args.config)
    inputs = {"config file": args.config if os.path.isfile(args.config) else None, "dataset file": args.dataset}
    if args.steps is not None:
        config.run.steps = args.steps
    if args.seed is not None:
        config.run.seed = args.seed
    if args.device is not None:
        config.run.device = args.device
    if args.backend is not None:
        config.run.backend = args.backend
    if args.family:
        from margin_explorer.core.config import FamilyConfig

        config.family = FamilyConfig.parse(args.family)
    config = config.copy()  # re-validate the overrides
    dataset = None
    if args.dataset:
        from margin_explorer.core.config import DatasetConfig

        dataset = load_dataset(args.dataset)
        config.dataset = DatasetConfig.inline(dataset)
    if config.family is not None:
        return _train_family(config, args.out, dataset, overwrite=args.overwrite, inputs=inputs)
    trainer = _train_to_file(config, args.out, dataset=dataset, overwrite=args.overwrite, inputs=inputs)
    print(f"{args.out}: {trainer.status} at step {trainer.step}" + (f" ({trainer.reason})" if trainer.reason else ""))
    return 0


def _train_to_file(config, out, **run_options):
    """run_to_file with the progress line and a graceful Ctrl+C: `run` and `continue` share it."""
    from margin_explorer.core.process import tune_process
    from margin_explorer.core.runner import run_to_file

    tune_process()  # the program's, not the library's: BLAS pools and malloc (core/process.py)
    trainer = run_options.get("trainer")
    progress = Progress(config.run.steps, start=trainer.step if trainer is not None else 0)
    last = {}

    def on_chunk(trainer, chunk):
        tune_process()  # a BLAS imported during the chunk (cheap otherwise)
        if chunk.n_records:
            last["chunk"] = chunk
        progress.update(trainer, last.get("chunk", chunk))

    with GracefulInterrupt() as interrupt:
        trainer = run_to_file(config, out, on_chunk=on_chunk, should_stop=lambda: interrupt.reason, **run_options)
    if "chunk" in last:
        progress.update(trainer, last["chunk"], force=True)
    progress.done()
    return trainer


def _train_family(config, out, dataset, **run_options) -> int:
    """A family: one run file per member (RUN-00.h5, ...), one progress line for all of them."""
    from margin_explorer.core.process import tune_process
    from margin_explorer.core.runner import run_family_to_files

    tune_process()
    progress = Progress(config.run.steps, members=config.family_size)
    last = {}

    def on_chunk(family, chunk):
        tune_process()
        lead = chunk.members[0]
        if lead.n_records:
            last["chunk"] = lead
        progress.update(family, last.get("chunk", lead))

    with GracefulInterrupt() as interrupt:
        family, paths = run_family_to_files(config, out, dataset=dataset, on_chunk=on_chunk,
                                            should_stop=lambda: interrupt.reason, **run_options)
    progress.done()
    print(f"{paths[0]} .. {paths[-1].name}: a family of {family.size} ({config.family.vary}), "
          f"{family.status} at step {family.step}" + (f" ({family.reason})" if family.reason else ""))
    if family.engine_note:
        print(f"note: {family.engine_note}")
    return 0


SHOWN_LIMIT = 300  # characters of one name or reason from a file that `info` prints


def _shown(text, limit: int = SHOWN_LIMIT) -> str:
    """Text from a file, safe to print: control characters (escape sequences) become spaces or
    go, and a long text is cut, saying so."""
    import unicodedata

    text = "".join(" " if ch in "\t\n\r" else ch for ch in str(text)
                   if ch in "\t\n\r" or unicodedata.category(ch) not in ("Cc", "Cf"))
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _finite_or_null(value):
    """JSON has no NaN or infinity: write null (json.dumps would write the non-JSON NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def cmd_info(args) -> int:
    from margin_explorer.core.runfile import RunReader

    with RunReader(args.run) as run:
        if args.json:
            print(json.dumps(_finite_or_null({
                "config": run.config.to_dict(), "status": run.status, "status_reason": run.status_reason,
                "homogeneity": run.homogeneity, "final_metrics": run.final_metrics(), "records": run.n_records,
                "snapshots": run.n_snapshots, "events": run.events}), indent=2, allow_nan=False))
            return 0
        config = run.config
        n, d = run.dataset_shape
        print(f"run:        {_shown(args.run)}")
        if config.name:
            print(f"name:       {_shown(config.name)}")
        print(f"status:     {_shown(run.status)}"
              + (f" ({_shown(run.status_reason)})" if run.status_reason and run.status != "finished" else ""))
        print(f"network:    {_shown(run.homogeneity.get('explanation', '?'))}")
        print(f"dataset:    {_shown(run.dataset_name)}, n = {n}, d = {d}")
        opt = config.optimizer
        print(f"training:   {config.loss.kind} loss ({config.loss.reduction}), {opt.kind}, lr {opt.lr:g}, "
              f"{opt.step_rule} step, {config.run.dtype} on {_shown(run.attrs.get('device', '?'))}, seed {config.run.seed}")
        print(f"records:    {run.n_records}, snapshots: {run.n_snapshots}")
        _print_events(run.events)
        print("final metrics:")
        for name, value in run.final_metrics().items():
            print(f"  {_shown(name, 60):24s} {_format_number(value)}")
        print("config:")
        print(json.dumps(config.to_dict(), indent=2)[:4000])
    return 0


def _print_events(events) -> None:
    """The run's health events (core/health.py): where it collapsed or got stuck."""
    print(f"events:     {len(events) or 'none'}")
    for event in events:
        print(f"  {_shown(event['message'])}")


def cmd_render(args) -> int:
    from margin_explorer.app.export import render

    render(args.runs, [p.strip() for p in args.plots.split(",") if p.strip()], args.out, width=args.width,
           scale=args.scale, columns=args.columns, log_x=args.log_x)  # render checks the sizes and names
    print(args.out)
    return 0


def cmd_continue(args) -> int:
    """Train on from a run file's last parameters into a new file that records its parent."""
    from margin_explorer.core.errors import ConfigError
    from margin_explorer.core.optimizers import state_layout
    from margin_explorer.core.runfile import RunReader
    from margin_explorer.core.trainer import Trainer

    if args.steps < 0:
        raise ConfigError(f"--steps: must be >= 0 (how many more steps; 0 = until Ctrl+C), got {args.steps}")
    with RunReader(args.run) as reader:
        config, dataset = reader.config, reader.dataset
        params, start, state = reader.final_params, reader.final_step, reader.final_optimizer_state
    config.run.steps = start + args.steps if args.steps else 0
    if state is None and state_layout(config.optimizer.kind, 1):  # a rule that keeps state has none here
        print(f"note: {args.run} holds no {config.optimizer.kind} optimizer state for step {start} (a file written "
              "before run files kept it, or saved without it): it starts afresh, so the continued run is not the one "
              "it would have been")
    trainer = Trainer(config, dataset, params=params, start_step=start, optimizer_state=state)
    trainer = _train_to_file(config, args.out, trainer=trainer,
                             parent=str(args.run), overwrite=args.overwrite, inputs={"parent run": args.run})
    print(f"{args.out}: {trainer.status} at step {trainer.step} (continued from {args.run} at step {start})")
    return 0


def cmd_check(args) -> int:
    """Print each claim's verdict for a saved run (the checks its preset names, or --claims)."""
    from margin_explorer.core.claims import RunData, judge
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.runfile import RunReader

    with RunReader(args.run) as reader:
        config = reader.config
        claims = config.claim_specs()
        if args.preset:
            claims = load_preset(args.preset).claim_specs()
        if not claims:
            print(f"{args.run}: its config names no claims; use --preset NAME to judge it by a preset's claims")
            return 0
        verdicts = judge(RunData.from_reader(reader), claims)
        events = reader.events
    count = f"{len(verdicts)} claim" + ("" if len(verdicts) == 1 else "s")
    print(f"{_shown(args.run)}: {_shown(config.name or 'run')} ({count})")
    for event in events:
        print(f"  [{_shown(event['kind'], 20)}] {_shown(event['message'])}")
    for verdict in verdicts:
        print("  " + verdict.line())
    if any(v.supported is False for v in verdicts):
        return CLAIM_FAILS
    return NOT_JUDGED if any(v.supported is None for v in verdicts) else 0


def cmd_presets(args) -> int:
    from margin_explorer.core.presets import load_preset, preset_names

    for name in preset_names():
        config = load_preset(name)
        print(f"{name:28s} {config.name}")
    return 0


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
    run.add_argument("--backend", choices=["auto", "numpy", "torch", "batched"],
                     help="auto: numpy on the cpu, the batched engine on a GPU; torch: autograd")
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
                        help="comma-separated: loss, margin, norm, angle, samples, rank, ensemble, kkt")
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
            print(f"error: {_shown(exc, 2000)}", file=sys.stderr)
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
    from margin_explorer.app.main_window import launch

    return launch()


def cmd_demo(args) -> int:
    from margin_explorer.app.main_window import demo

    return demo(args.preset, args.steps, args.screenshot, family=args.family)


def cmd_open(args) -> int:
    from margin_explorer.app.main_window import launch

    return launch(open_paths=args.runs)
