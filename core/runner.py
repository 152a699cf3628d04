"""Drive a Trainer (core/trainer.py) into RunWriters chunk by chunk: the one loop behind `main.py run`, the
window's worker process and the tests. Chunks are sized by time (about ``chunk_seconds``
each) so that progress, pausing and stopping stay responsive whatever a step costs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

from .config import RunConfig
from .datasets import Dataset
from .errors import RunFileError, RunFileWriteError
from .output_path import check_output
from .runfile import RunWriter, check_space
from .trainer import FAILED, RUNNING, STOPPED, Chunk, Trainer


def open_writer(trainer: Trainer, path, parent: str = "", family: dict | None = None, *, member: int = 0,
                overwrite: bool = False, inputs: dict | None = None) -> RunWriter:
    """The run file of the trainer's member ``member`` (its own config and name)."""
    return RunWriter(path, trainer.members[member].config, trainer.dataset, n_params=trainer.net.size,
                     layer_names=trainer.layer_names(), ensemble_size=trainer.ensemble_size(),
                     homogeneity=trainer.homogeneity.to_dict(), device=trainer.device_name(),
                     parent=parent, start_step=trainer.step, family=family, overwrite=overwrite, inputs=inputs,
                     reference_margin=trainer.reference_margin(),
                     reference_margin_steepest=trainer.steepest_reference_margin())


def _stop_reason(should_stop: Callable[[], object], default: str) -> str | None:
    """should_stop() returns False, True (stop with ``default``) or its own reason (a signal's)."""
    wanted = should_stop()
    if not wanted:
        return None
    return wanted if isinstance(wanted, str) else default


def _writing_failed(writers: list[RunWriter], exc: RunFileWriteError, step: int, path) -> RunFileWriteError:
    """Close the writers after a failed write (each once; a broken one is not touched again) and
    say what stopped where: 'the disk is full: the run stopped at step k; the file holds ...'."""
    holds = sorted({w.holds() for w in writers})
    who = "the run" if len(writers) == 1 else f"the family of {len(writers)}"
    where = "the file holds" if len(writers) == 1 else "the member files hold"
    reason = f"{exc}: {who} stopped at step {step}; {where} {' or '.join(holds)}"
    unusable = exc.hdf5_unusable
    for writer in writers:
        try:
            writer.close(FAILED, reason)
        except RunFileError:
            unusable = unusable or writer.broken
    if unusable or any(w.broken for w in writers):
        reason += " (HDF5 failed inside a write, so the final status could not be written: the file may say " \
                  "'running' or not open)"
    error = RunFileWriteError(f"{path}: {reason}")
    error.hdf5_unusable = unusable or any(w.broken for w in writers)
    return error


def run_to_file(config: RunConfig, path, *, dataset: Dataset | None = None,
                on_chunk: Callable[[Trainer, Chunk], None] | None = None,
                should_stop: Callable[[], object] = lambda: False, chunk_seconds: float = 0.1,
                trainer: Trainer | None = None, parent: str = "", stop_reason: str = "stopped by the user",
                overwrite: bool = False, inputs: dict | None = None) -> Trainer:
    """Train ``config`` to the end (or until ``should_stop()``), writing ``path`` as it goes.
    ``path`` must be new, or with ``overwrite`` a run file that is not one of ``inputs``
    (core/output_path.py); it is checked before any set-up work."""
    check_output(path, overwrite=overwrite, inputs=inputs)
    trainer = trainer or Trainer(config, dataset)
    writer = open_writer(trainer, path, parent, overwrite=overwrite, inputs=inputs)
    try:
        while trainer.status == RUNNING:
            reason = _stop_reason(should_stop, stop_reason)
            chunk = (trainer.stop(reason) if reason else trainer.run(1 << 30, max_seconds=chunk_seconds)).members[0]
            writer.append(chunk)
            if on_chunk is not None:
                on_chunk(trainer, chunk)
    except RunFileWriteError as exc:
        raise _writing_failed([writer], exc, trainer.step, path) from None
    except KeyboardInterrupt:
        writer.append(trainer.stop("interrupted (Ctrl+C)").members[0])
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
    """The ``family`` attribute of member k's file: enough to regroup the members and, with
    their own configs, to rebuild the family's (family_config). Its size does not grow with the
    family: the whole config with all S values in each of S files made a family's disk O(S^2)."""
    return {"id": family_id, "index": k, "size": config.family_size, "vary": config.family.vary,
            "value": config.family.values[k], "name": config.name}


def family_config(members: list[tuple[RunConfig, dict]]) -> RunConfig:
    """The family's config rebuilt from the members present, each a (member's own config, its
    family attribute) pair: the first member's config with the family's name and a family
    section of the members' values in index order. Files of earlier versions hold the whole
    family config in the attribute (``config``, a RunConfig or its dict); only its name is taken,
    so that the family is the members present in both cases."""
    members = sorted(members, key=lambda m: m[1]["index"])
    config, first = members[0]
    stored = first.get("config")
    if stored is None:
        name = first.get("name", "")
    else:
        name = stored.name if isinstance(stored, RunConfig) else stored.get("name", "")
    out = config.with_family(**{first["vary"]: [attribute["value"] for _config, attribute in members]})
    out.name = name
    return out


def run_family_to_files(config: RunConfig, path, *, dataset: Dataset | None = None,
                        on_chunk: Callable | None = None, should_stop: Callable[[], object] = lambda: False,
                        chunk_seconds: float = 0.1, stop_reason: str = "stopped by the user",
                        overwrite: bool = False, inputs: dict | None = None):
    """Train the family ``config`` to the end, each member into its own run file (member_paths).
    Every member's path is checked (core/output_path.py) before anything is built or written."""
    paths = member_paths(path, config.family_size)
    for member_path in paths:
        check_output(member_path, overwrite=overwrite, inputs=inputs)
    family = Trainer(config, dataset)
    family_id = uuid.uuid4().hex
    writers = []
    try:
        for k, p in enumerate(paths):
            writers.append(open_writer(family, p, family=family_attribute(config, family_id, k), member=k,
                                       overwrite=overwrite, inputs=inputs))
    except BaseException as exc:
        for writer in writers:
            writer.close(FAILED, f"the family could not start: {exc}")
        raise

    def append(chunk):
        # room for every member's rows first, so that all member files stop at the same step
        check_space(writers[0].target, sum(w.space_needed(c) for w, c in zip(writers, chunk.members)))
        for writer, member_chunk in zip(writers, chunk.members):
            writer.append(member_chunk)

    try:
        while family.status == RUNNING:
            reason = _stop_reason(should_stop, stop_reason)
            chunk = family.stop(reason) if reason else family.run(1 << 30, max_seconds=chunk_seconds)
            append(chunk)
            if on_chunk is not None:
                on_chunk(family, chunk)
    except RunFileWriteError as exc:
        raise _writing_failed(writers, exc, family.step, f"{paths[0]} .. {paths[-1].name}") from None
    except KeyboardInterrupt:
        append(family.stop("interrupted (Ctrl+C)"))
    except BaseException as exc:
        for writer in writers:  # every member's file closed, whatever one of them says
            try:
                writer.close(FAILED, f"{type(exc).__name__}: {exc}")
            except RunFileError:
                pass
        raise
    for writer, member in zip(writers, family.members):
        writer.close(member.status, member.reason)
    return family, [w.path for w in writers]


__all__ = ["run_to_file", "run_family_to_files", "member_paths", "open_writer", "STOPPED"]
