"""docs/sweeps.md's Python example runs as written, against a LocalCluster of 2 worker processes
(the SLURM example, fenced ```py, needs a cluster and is not run)."""

import os
import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sweeps.md"


def test_the_python_example_runs_against_a_local_cluster(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    environment = dict(os.environ)  # the example's own LocalCluster sets OMP_NUM_THREADS=1 ... here
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(blocks[0], str(DOCS), "exec"), namespace)
    finally:  # later tests' subprocesses would inherit it
        os.environ.clear()
        os.environ.update(environment)
    sweep, again, wide = namespace["sweep"], namespace["again"], namespace["wide"]
    assert len(sweep) == 8 and list(sweep.table["status"]) == ["finished"] * 8
    assert sorted({r.config.architecture.blocks[0].width for r in wide}) == [8] and len(wide) == 4
    np.testing.assert_allclose(sorted(set(sweep.table["lr"])), [0.05, 0.2])
    np.testing.assert_array_equal(again.table["normalized_margin"], sweep.table["normalized_margin"])
    assert len(list((tmp_path / "phase" / "runs").iterdir())) == 8
