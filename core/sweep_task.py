"""One task of a sweep, as a Dask worker runs it: train a family into temporary files, then move
each member's file to its place (docs/sweeps.md).

A member's file is written under DIR/.partial/ under a name no other attempt shares, and renamed
to DIR/runs/run-NNNN.h5 only once the whole family has finished: a worker killed mid-task (Dask
then runs the task again elsewhere) leaves only a partial file that nothing counts, and a file in
runs/ is always a complete run. Two attempts of one task (Dask may start a second when it
believes a worker lost) write identical files and the rename is atomic, so the run is there once.
This module only drives the public runner (core/runner.py); it runs wherever a worker runs, so it
imports nothing of the client's.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from .config import RunConfig
from .output_path import check_output
from .run_reader import RunReader
from .runner import member_paths, run_family_to_files, run_to_file

PARTIAL = ".partial"


def train_task(task: dict, folder: str) -> list[dict]:
    """Train ``task`` (a sweep_grid.Task as a dict: config, points, files, wanted) and return, for
    each wanted member, its point, status, reason, final step, final metrics and seconds."""
    folder = Path(folder)
    config = RunConfig.from_dict(task["config"])
    partial = folder / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    base = partial / f"{task['key']}-{uuid.uuid4().hex[:12]}.h5"
    started = time.perf_counter()
    try:
        if config.family_size == 1:  # a run alone: the single-run trainer, not a family of one
            run_to_file(config.member(0), base)
            paths = [base]
        else:
            _family, paths = run_family_to_files(config, base)
    except BaseException:
        if base.is_file():
            base.unlink()
        for path in member_paths(base, config.family_size):  # this attempt's own partial files
            if path.is_file():
                path.unlink()
        raise
    seconds = (time.perf_counter() - started) / len(paths)
    wanted = set(task["wanted"])
    results = []
    for point, path, file in zip(task["points"], paths, task["files"]):
        if point not in wanted:  # trained with its family, but already present
            path.unlink()
            continue
        with RunReader(path) as reader:
            result = {"point": point, "status": reader.status, "reason": reader.status_reason,
                      "final_step": int(reader.final_step), "metrics": reader.final_metrics(), "seconds": seconds}
        final = folder / file
        final.parent.mkdir(parents=True, exist_ok=True)
        check_output(final, overwrite=True)  # nothing there, or this run from an earlier attempt: never another file
        os.replace(path, final)
        results.append(result)
    return results
