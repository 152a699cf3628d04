"""Opening saved runs (issue #4): a run of 10^6 records opened and shown in the window, and
`main.py render` of one run including Python's start-up. Bars: under 1 s and under 3 s.

The 10^6-record file is synthetic (16 samples, so sample margins stay 128 MB) and written
through the app's own RunWriter, so it is a genuine run file.

    QT_QPA_PLATFORM=offscreen python benchmarks/open_speed.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from margin_explorer.core.architecture import mlp  # noqa: E402
from margin_explorer.core.config import DatasetConfig, RunConfig  # noqa: E402
from margin_explorer.core.datasets import gaussian_blobs  # noqa: E402
from margin_explorer.core.metrics import SCALAR_METRICS, SUPPORT_DECADES  # noqa: E402
from margin_explorer.core.runfile import RunWriter  # noqa: E402
from margin_explorer.core.trainer import Chunk  # noqa: E402


def write_big_run(path: Path, records: int = 1_000_000, n: int = 16) -> None:
    data = gaussian_blobs(n, 2, separation=4.0, noise=0.5, seed=0)
    config = RunConfig(mlp(2, [16]), dataset=DatasetConfig.inline(data))
    rng = np.random.default_rng(0)
    steps = np.arange(records, dtype=np.int64)
    walk = np.cumsum(rng.normal(size=records)) * 1e-4
    values = {name: 0.2 + walk for name in SCALAR_METRICS}
    values.update(step=steps, support_vectors=np.ones(records, dtype=np.int64), log_loss=-steps * 1e-2,
                  param_norm=1 + np.log1p(steps), wall_time=steps * 5e-5)
    values["sample_margins"] = 0.2 + rng.random((records, n)) * 0.05
    values["layer_norms"] = np.ones((records, 2))
    values["stable_rank"] = 1 + rng.random((records, 2)) * 0.1
    values["support_counts"] = np.tile(np.arange(1.0, SUPPORT_DECADES + 1), (records, 1))
    n_params = 16 * 2 + 16
    snaps = [0] + list(np.unique(np.logspace(0, 6, 60).astype(int)))
    chunk = Chunk(records=values, snapshot_steps=snaps,
                  snapshot_params=[rng.normal(size=n_params) * (1 + s) ** 0.5 for s in snaps],
                  snapshot_metrics=[{"kkt_eps": 0.1, "kkt_delta": 0.01, "euler_defect": 1e-16}] * len(snaps),
                  step=records - 1, params=rng.normal(size=n_params))
    writer = RunWriter(path, config, data, n_params=n_params, layer_names=["0.weight", "2.weight"], ensemble_size=0,
                       homogeneity={"verdict": "exact", "order": 2.0, "reasons": [], "explanation": "exact"},
                       device="cpu")
    writer.append(chunk)
    writer.close("finished")


def open_in_window(path: Path) -> float:
    from margin_explorer.app.main_window import MainWindow, make_application
    from margin_explorer.app.scratch_settings import scratch_settings

    app = make_application(["bench"])
    window = MainWindow(settings=scratch_settings(), load_demo=False)
    window.resize(1500, 920)
    window.show()
    app.processEvents()
    start = time.perf_counter()
    assert window.open_runs([str(path)])
    window.plots.view.viewport().repaint()
    app.processEvents()
    elapsed = time.perf_counter() - start
    assert window.runs.entries[-1].session.n_records == 1_000_000
    window.close()
    return elapsed


def render_time(path: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "main.py"), "render", str(path), "--plots", "margin,norm,angle",
                    "--out", str(out)], check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def main():
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "big.h5"
        start = time.perf_counter()
        write_big_run(big)
        written = time.perf_counter() - start
        opened = open_in_window(big)
        small = Path(folder) / "small.h5"
        subprocess.run([sys.executable, str(ROOT / "main.py"), "run", "relu2-blobs", "--out", str(small), "--steps",
                        "20000"], check=True, cwd=ROOT, capture_output=True)
        rendered = render_time(small, Path(folder) / "fig.png")
        size_mb = big.stat().st_size / 1e6
    print(f"{'measure':<56} {'value':>9} {'bar':>8}")
    print(f"{'write a 10^6-record run file (' + format(size_mb, '.0f') + ' MB)':<56} {written:>8.2f}s")
    print(f"{'open it in the window and show it':<56} {opened:>8.2f}s {'< 1 s':>8}")
    print(f"{'main.py render of one run (20,000 steps), with start-up':<56} {rendered:>8.2f}s {'< 3 s':>8}")


if __name__ == "__main__":
    main()
