"""Drive a Trainer into a RunWriter chunk by chunk: the one loop behind `main.py run`, the
window's worker process and the tests. Chunks are sized by time (about ``chunk_seconds``
each) so that progress, pausing and stopping stay responsive whatever a step costs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

from .config import RunConfig
from .datasets import Dataset
from .family import FamilyTrainer, make_trainer
from .runfile import RunWriter
from .trainer import FAILED, RUNNING, STOPPED, Chunk, Trainer


def open_writer(trainer: Trainer, path, parent: str = "", family: dict | None = None) -> RunWriter:
    return RunWriter(path, trainer.config, trainer.dataset, n_params=trainer.net.size,
                     layer_names=trainer.layer_names(), ensemble_size=trainer.ensemble_size(),
                     homogeneity=trainer.homogeneity.to_dict(), device=trainer.device_name(),
                     parent=parent, start_step=trainer.step, family=family)


def run_to_file(config: RunConfig, path, *, dataset: Dataset | None = None,
                on_chunk: Callable[[Trainer, Chunk], None] | None = None,
                should_stop: Callable[[], bool] = lambda: False, chunk_seconds: float = 0.1,
                trainer: Trainer | None = None, parent: str = "", stop_reason: str = "stopped by the user") -> Trainer:
    """Train ``config`` to the end (or until ``should_stop()``), writing ``path`` as it goes."""
    trainer = trainer or make_trainer(config, dataset)
    writer = open_writer(trainer, path, parent)
    try:
        while trainer.status == RUNNING:
            if should_stop():
                chunk = trainer.stop(stop_reason)
            else:
                chunk = trainer.run(1 << 30, max_seconds=chunk_seconds)
            writer.append(chunk)
            if on_chunk is not None:
                on_chunk(trainer, chunk)
    except KeyboardInterrupt:
        writer.append(trainer.stop("interrupted (Ctrl+C)"))
    except BaseException as exc:
        writer.close(FAILED, f"{type(exc).__name__}: {exc}")
        raise
    writer.close(trainer.status, trainer.reason)
    return trainer


def member_paths(path, size: int) -> list[Path]:
    """Where a family's members go: RUN.h5 -> RUN-00.h5, RUN-01.h5, ... (docs/run-format.md)."""
    path = Path(path)
    digits = max(2, len(str(size - 1)))
    return [path.with_name(f"{path.stem}-{k:0{digits}d}{path.suffix or '.h5'}") for k in range(size)]


def family_attribute(config: RunConfig, family_id: str, k: int) -> dict:
    """The ``family`` attribute of member k's file: enough to regroup and to rerun the family."""
    return {"id": family_id, "index": k, "size": config.family_size, "vary": config.family.vary,
            "value": config.family.values[k], "config": config.to_dict()}


def run_family_to_files(config: RunConfig, path, *, dataset: Dataset | None = None,
                        on_chunk: Callable | None = None, should_stop: Callable[[], bool] = lambda: False,
                        chunk_seconds: float = 0.1, stop_reason: str = "stopped by the user"):
    """Train the family ``config`` to the end, each member into its own run file (member_paths)."""
    family = FamilyTrainer(config, dataset)
    family_id = uuid.uuid4().hex
    writers = [open_writer(member, p, family=family_attribute(config, family_id, k))
               for k, (member, p) in enumerate(zip(family.members, member_paths(path, family.size)))]

    def append(chunk):
        for writer, member_chunk in zip(writers, chunk.members):
            writer.append(member_chunk)

    try:
        while family.status == RUNNING:
            chunk = family.stop(stop_reason) if should_stop() else family.run(1 << 30, max_seconds=chunk_seconds)
            append(chunk)
            if on_chunk is not None:
                on_chunk(family, chunk)
    except KeyboardInterrupt:
        append(family.stop("interrupted (Ctrl+C)"))
    except BaseException as exc:
        for writer in writers:
            writer.close(FAILED, f"{type(exc).__name__}: {exc}")
        raise
    for writer, member in zip(writers, family.members):
        writer.close(member.status, member.reason)
    return family, [w.path for w in writers]


__all__ = ["run_to_file", "run_family_to_files", "member_paths", "open_writer", "STOPPED"]
