import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from margin_explorer.core.datasets import moons, save_csv

ROOT = Path(__file__).resolve().parent.parent


def _main(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_run_and_info(tmp_path):
    out = tmp_path / "lin.h5"
    result = _main("run", "resources/presets/linear-separable.json", "--out", str(out), "--steps", "2000", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "step 2000/2000" in result.stderr and "normalized margin" in result.stderr
    info = _main("info", str(out), "--json")
    data = json.loads(info.stdout)
    assert data["status"] == "finished" and data["final_metrics"]["step"] == 2000
    assert data["config"]["run"]["seed"] == 3
    text = _main("info", str(out)).stdout
    assert "status:     finished" in text and "normalized_margin" in text


def test_dataset_override_from_csv(tmp_path):
    save_csv(moons(30, seed=1), tmp_path / "moons.csv")
    out = tmp_path / "m.h5"
    result = _main("run", "relu2-blobs", "--out", str(out), "--steps", "50", "--dataset", str(tmp_path / "moons.csv"))
    assert result.returncode == 0, result.stderr
    data = json.loads(_main("info", str(out), "--json").stdout)
    assert data["config"]["dataset"]["kind"] == "inline" and len(data["config"]["dataset"]["y"]) == 30


def test_bad_config_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"architecture": {"input_dim": 2, "blocks": [{"type": "dense", "width": 1}]},
                               "optimizer": {"lr": "fast"}}))
    result = _main("run", str(bad), "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 2
    assert "optimizer.lr" in result.stderr and "Traceback" not in result.stderr
    wrong_dim = tmp_path / "dim.json"
    wrong_dim.write_text(json.dumps({"architecture": {"input_dim": 3, "blocks": [{"type": "dense", "width": 1}]}}))
    result = _main("run", str(wrong_dim), "--out", str(tmp_path / "x.h5"))
    assert result.returncode == 2 and "input_dim is 3" in result.stderr
    result = _main("info", str(tmp_path / "nothing.h5"))
    assert result.returncode == 2 and "no such file" in result.stderr
    (tmp_path / "broken.csv").write_text("x1,x2,label\n0,0,1\n")
    result = _main("run", "relu2-blobs", "--out", str(tmp_path / "x.h5"), "--dataset", str(tmp_path / "broken.csv"))
    assert result.returncode == 2 and "only one class" in result.stderr


def test_run_family_writes_one_file_per_member(tmp_path):
    out = tmp_path / "fam.h5"
    result = _main("run", "relu2-blobs", "--steps", "300", "--family", "lr=0.1..10/3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "a family of 3 (lr)" in result.stdout
    from margin_explorer.core.runfile import RunReader

    lrs = []
    for k in range(3):
        with RunReader(tmp_path / f"fam-0{k}.h5") as reader:
            assert reader.status == "finished" and reader.final_step == 300
            assert reader.family["index"] == k and reader.family["vary"] == "lr"
            lrs.append(reader.config.optimizer.lr)
    assert np.allclose(lrs, [0.1, 1.0, 10.0])
    bad = _main("run", "relu2-blobs", "--family", "depth=1,2", "--out", str(out))
    assert bad.returncode == 2 and "--family: expected seed=..., lr=... or init_scale=..." in bad.stderr
    bad = _main("run", "relu2-blobs", "--family", "lr=a,b", "--out", str(out))
    assert bad.returncode == 2 and "cannot read the values" in bad.stderr


def test_the_progress_line_counts_a_continued_runs_own_steps_and_says_the_time_left():
    import io
    import time
    from types import SimpleNamespace

    from margin_explorer.app.cli_progress import Progress

    stream = io.StringIO()
    progress = Progress(10000, stream=stream, start=4000)  # continued from step 4,000 to 10,000
    progress.start = time.perf_counter() - 2.0  # 2 s of training so far
    chunk = SimpleNamespace(n_records=1, records={"normalized_margin": [0.25], "log_loss": [-12.5]})
    progress.update(SimpleNamespace(step=6000), chunk, force=True)
    line = stream.getvalue()
    rate = float(line.split("  ")[1].split()[0].replace(",", ""))
    assert 900 < rate <= 1000  # 2,000 steps in 2 s (and however long this test took), not 6,000
    assert ("  4 s left" in line or "  5 s left" in line) and line.startswith("step 6000/10000")
    assert "normalized margin 0.25" in line and "log L -12.5" in line
