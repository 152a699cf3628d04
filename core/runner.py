"""Drive a Trainer into a RunWriter chunk by chunk: the one loop behind `main.py run`, the
window's worker process and the tests. Chunks are sized by time (about ``chunk_seconds``
each) so that progress, pausing and stopping stay responsive whatever a step costs."""

from __future__ import annotations

from typing import Callable

from .config import RunConfig
from .datasets import Dataset
from .runfile import RunWriter
from .trainer import FAILED, RUNNING, STOPPED, Chunk, Trainer


def open_writer(trainer: Trainer, path, parent: str = "") -> RunWriter:
    return RunWriter(path, trainer.config, trainer.dataset, n_params=trainer.net.size,
                     layer_names=trainer.layer_names(), ensemble_size=trainer.ensemble_size(),
                     homogeneity=trainer.homogeneity.to_dict(), device=trainer.device_name(),
                     parent=parent, start_step=trainer.step)


def run_to_file(config: RunConfig, path, *, dataset: Dataset | None = None,
                on_chunk: Callable[[Trainer, Chunk], None] | None = None,
                should_stop: Callable[[], bool] = lambda: False, chunk_seconds: float = 0.1,
                trainer: Trainer | None = None, parent: str = "", stop_reason: str = "stopped by the user") -> Trainer:
    """Train ``config`` to the end (or until ``should_stop()``), writing ``path`` as it goes."""
    trainer = trainer or Trainer(config, dataset)
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


__all__ = ["run_to_file", "open_writer", "STOPPED"]
