"""`run` and `continue`: train headless into run files, with a progress line and a graceful Ctrl+C."""

from __future__ import annotations

import os

from .cli_progress import GracefulInterrupt, Progress
from .run_header import result_line


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
    _compile_for_a_long_run(config)
    trainer = _train_to_file(config, args.out, dataset=dataset, overwrite=args.overwrite, inputs=inputs)
    print(result_line(args.out, trainer.status, trainer.step, trainer.reason))
    return 0


def _compile_for_a_long_run(config) -> None:
    """A long run on 'auto' compiles the compiled engine's kernels first (once per install; later
    runs find them in numba's cache and take that engine anyway), in a child process: the run's
    own process then only loads them, ~70 MB less at its peak than compiling there. Where the
    cache cannot be written the run trains on the numpy engine."""
    from margin_explorer.core.engines.compiled_engine import warm_cache, worth_compiling

    if worth_compiling(config):
        print("compiling the compiled engine's kernels (once per install, 5-20 s) ...", flush=True)
        warm_cache((config.run.dtype,), wait=True).wait()


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
    print(result_line(f"{paths[0]} .. {paths[-1].name}", family.status, family.step, family.reason,
                      about=f"a family of {family.size} ({config.family.vary})"))
    if family.engine_note:
        print(f"note: {family.engine_note}")
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
    opt = config.optimizer
    if state is None and state_layout(opt.kind, 1, opt.step_rule):  # a rule that keeps state has none here
        what = "loss_based step rule" if opt.step_rule == "loss_based" else f"{opt.kind} optimizer"
        print(f"note: {args.run} holds no {what} state for step {start} (a file written "
              "before run files kept it, or saved without it): it starts afresh, so the continued run is not the one "
              "it would have been")
    trainer = Trainer(config, dataset, params=params, start_step=start, optimizer_state=state)
    trainer = _train_to_file(config, args.out, trainer=trainer,
                             parent=str(args.run), overwrite=args.overwrite, inputs={"parent run": args.run})
    print(result_line(args.out, trainer.status, trainer.step, note=f"continued from {args.run} at step {start}"))
    return 0
