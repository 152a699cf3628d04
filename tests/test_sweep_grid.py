"""A sweep's grid (core/sweep_grid.py) and index (core/sweep_index.py), without a cluster."""

import itertools

import h5py
import numpy as np
import pytest

import margin_explorer as mx
from margin_explorer.core.errors import ConfigError, RunFileError
from margin_explorer.core.sweep_grid import SweepPlan, parse_seeds
from margin_explorer.core.sweep_index import SweepIndex


def test_log_spaced_listed_and_ranged_values():
    config = mx.preset("relu2-blobs")
    plan = SweepPlan.build(config, {"lr": "0.01..1/8", "init_scale": "0.25,0.5,1,2", "width": "16,64,256"},
                           seeds="0:8")
    lr, scale, width, seed = plan.axes
    np.testing.assert_allclose(lr.values, np.geomspace(0.01, 1, 8), rtol=1e-14)
    assert lr.log and not scale.log
    assert scale.values == [0.25, 0.5, 1.0, 2.0] and width.values == [16, 64, 256] and seed.values == list(range(8))
    assert isinstance(width.values[0], int)
    assert plan.size == 8 * 4 * 3 * 8 and [a.path for a in plan.axes] == [
        "optimizer.lr", "architecture.init.scale", "width", "run.seed"]


def test_short_names_and_dotted_paths_reach_the_same_fields():
    config = mx.preset("relu3-moons")  # two hidden layers of 32
    plan = SweepPlan.build(config, {"width": [5, 7], "architecture.blocks.0.bias": "false",
                                    "dataset.params.noise": "0.05"}, seeds=[3])
    run = plan.run_config(1)
    widths = [b.width for b in run.architecture.blocks if getattr(b, "type", "") == "dense"]
    assert widths == [7, 7, 1]  # every hidden layer, never the output
    assert run.architecture.blocks[0].bias is False and run.dataset.params["noise"] == 0.05 and run.run.seed == 3
    deep = SweepPlan.build(mx.preset("relu2-blobs"), {"depth": "1,3"}).run_config(1)
    assert [b.type for b in deep.architecture.blocks] == ["dense", "activation"] * 3 + ["dense"]


def test_seed_step_size_and_init_scale_points_train_together_as_families():
    plan = SweepPlan.build(mx.preset("relu2-blobs"), {"lr": [0.1, 0.2, 0.4], "init_scale": [0.5, 1], "width": [4, 8]},
                           seeds=range(2))
    tasks = plan.tasks()
    assert len(tasks) == 2 * 2 * 2  # lr (3 values, the most) varies within a family; the rest are tasks
    points = [p for t in tasks for p in t.points]
    assert sorted(points) == list(range(plan.size))  # every run once
    for task in tasks:
        assert task.config["family"]["vary"] == "lr" and task.config["family"]["values"] == [0.1, 0.2, 0.4]
        coords = [plan.coordinates(p) for p in task.points]
        assert [c[0] for c in coords] == [0.1, 0.2, 0.4]
        assert len({c[1:] for c in coords}) == 1  # the members differ only in lr
    expected = list(itertools.product([0.1, 0.2, 0.4], [0.5, 1.0], [4, 8], [0, 1]))
    assert [plan.coordinates(p) for p in range(plan.size)] == expected
    seeds = SweepPlan.build(mx.preset("relu2-blobs"), {"width": [4, 8]}, seeds="0:4").tasks()
    assert [t.config["family"] for t in seeds] == [{"vary": "seed", "values": [0, 1, 2, 3]}] * 2


@pytest.mark.parametrize("grid,seeds,message", [
    ({"lr": "0.1", "optimizer.lr": "0.2"}, None, "--grid optimizer.lr: the same field as --grid lr"),
    ({"seed": "0,1"}, "0:2", "--grid seed: give the seeds with --seeds"),
    ({"optimizer": "sgd"}, None, "--grid optimizer=sgd: optimizer.batch_size: sgd needs a batch_size"),
    ({"width": "4,4"}, None, "--grid width: a value is given twice"),
    ({"depth": "0,1"}, None, "--grid depth: an MLP has at least one hidden layer"),
    ({"architecture.blocks.0.width.x": "1"}, None, "--grid architecture.blocks.0.width.x:"),
    ({}, "-1,2", "--seeds: a seed is a whole number"),
])
def test_bad_axes_name_the_field(grid, seeds, message):
    with pytest.raises(ConfigError) as caught:
        SweepPlan.build(mx.preset("relu2-blobs"), grid, seeds)
    assert str(caught.value).startswith(message), caught.value


def test_a_family_config_and_an_endless_run_are_refused():
    with pytest.raises(ConfigError, match="family: a sweep makes its own families"):
        SweepPlan.build(mx.preset("relu2-blobs").with_family(seed=[0, 1]), {})
    endless = mx.preset("relu2-blobs")
    endless.run.steps = 0
    with pytest.raises(ConfigError, match="run.steps"):
        SweepPlan.build(endless, {})
    assert parse_seeds(range(3)) == [0, 1, 2]


def _index(tmp_path):
    plan = SweepPlan.build(mx.preset("relu2-blobs"), {"lr": [0.1, 0.2]}, seeds=range(2))
    index = SweepIndex(tmp_path, plan)
    index.record(1, "finished", "", 100, 0.5, {"normalized_margin": 0.25, "q_min": 1.5})
    index.record(2, "diverged", "the loss overflowed", 7, 0.5, {"normalized_margin": -1.0})
    index.write()
    return index


def test_the_index_reads_back_with_plain_h5py_and_load_sweep(tmp_path):
    _index(tmp_path)
    with h5py.File(tmp_path / "sweep.h5", "r") as f:
        assert list(f["runs/status"].asstr()[:]) == ["pending", "finished", "diverged", "pending"]
        np.testing.assert_array_equal(f["runs/coords/lr"][:], [0.1, 0.1, 0.2, 0.2])
        np.testing.assert_array_equal(f["runs/coords/seed"][:], [0, 1, 0, 1])
        np.testing.assert_array_equal(f["runs/final/normalized_margin"][:], [np.nan, 0.25, -1.0, np.nan])
        np.testing.assert_array_equal(f["runs/final/q_min"][:], [np.nan, 1.5, np.nan, np.nan])
    sweep = mx.load_sweep(tmp_path)
    assert list(sweep.table["reason"]) == ["", "", "the loss overflowed", ""]
    np.testing.assert_array_equal(sweep.select({"lr": 0.2}), [2, 3])
    np.testing.assert_array_equal(sweep.select(lambda row: row["status"] == "finished"), [1])


def test_a_writer_killed_while_rewriting_leaves_the_previous_index(tmp_path, monkeypatch):
    index = _index(tmp_path)
    index.record(3, "finished", "", 100, 0.5, {"normalized_margin": 0.5})
    calls = {"n": 0}
    real = h5py.Group.create_dataset

    def dies_half_way(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # the client interrupted in the middle of the rewrite
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        index.write()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.h5"]  # the temporary file removed
    assert list(mx.load_sweep(tmp_path).table["status"]) == ["pending", "finished", "diverged", "pending"]
    # a temporary left by a client killed with SIGKILL (no chance to remove it) is a half HDF5 file:
    # sweep.h5 is untouched by it, and the next client removes it
    (tmp_path / ".sweep.h5.tmp-123-abcdef01").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    assert mx.load_sweep(tmp_path).index.done == 2
    SweepIndex.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.h5"]


def test_a_damaged_or_foreign_index_is_one_line(tmp_path):
    with pytest.raises(RunFileError, match="holds no sweep"):
        mx.load_sweep(tmp_path)
    (tmp_path / "sweep.h5").write_bytes(b"not hdf5")
    with pytest.raises(RunFileError, match="cannot be read as a sweep index"):
        mx.load_sweep(tmp_path)
    (tmp_path / "sweep.h5").unlink()
    with h5py.File(tmp_path / "sweep.h5", "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(RunFileError, match="is not a Margin Explorer sweep index"):
        mx.load_sweep(tmp_path)
    _index(tmp_path / "x") if (tmp_path / "x").mkdir() is None else None
    with h5py.File(tmp_path / "x" / "sweep.h5", "a") as f:
        del f["runs/status"]
        f["runs/status"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(RunFileError, match="is not stored in the index itself"):
        mx.load_sweep(tmp_path / "x")


def test_a_phase_grid_takes_each_cells_median_over_the_other_axes_or_holds_one(tmp_path):
    from margin_explorer.core.sweep_phase import DIVERGED, phase_grid

    plan = SweepPlan.build(mx.preset("relu2-blobs"), {"lr": [0.1, 0.2, 0.4], "width": [4, 8], "init_scale": [1, 2]},
                           seeds=range(3))
    index = SweepIndex(tmp_path, plan)
    value = {}
    for point in range(plan.size):
        lr, width, scale, seed = plan.coordinates(point)
        value[lr, width, scale, seed] = lr * 100 + width + scale * seed ** 2  # a different spread per cell
        status = "diverged" if (lr, seed) == (0.4, 2) else "finished"
        index.record(point, status, metrics={"m": value[lr, width, scale, seed]})
    grid = phase_grid(index, "m", x=1, y=0)  # x: width, y: lr; init_scale and seeds aggregated
    assert grid.values.shape == (3, 2) and grid.x == [4, 8] and grid.y == [0.1, 0.2, 0.4]
    for j, lr in enumerate([0.1, 0.2, 0.4]):
        for i, width in enumerate([4, 8]):
            cell = [value[lr, width, s, seed] for s in (1.0, 2.0) for seed in range(3)]
            assert grid.values[j, i] == np.median(cell)
            assert (grid.low[j, i], grid.high[j, i]) == tuple(np.percentile(cell, [25, 75]))
            assert (grid.least[j, i], grid.most[j, i], grid.counts[j, i]) == (min(cell), max(cell), 6)
            runs = sorted(int(r) for r in grid.runs[j, i])
            assert sorted(p for p in range(plan.size) if plan.coordinates(p)[:2] == (lr, width)) == runs
    held = phase_grid(index, "m", x=1, y=0, fixed={2: 1, 3: 0})  # init_scale 2, seed 0
    assert held.values[2, 1] == value[0.4, 8, 2.0, 0] and held.counts[2, 1] == 1
    share = phase_grid(index, DIVERGED, x=1, y=0)
    np.testing.assert_allclose(share.values[:, 0], [0, 0, 2 / 6])


@pytest.mark.parametrize("name", ["/etc/passwd", "runs/../../secret.h5", "C:\\\\x.h5"])
def test_an_index_naming_a_file_outside_its_folder_is_refused(tmp_path, name):
    _index(tmp_path)
    with h5py.File(tmp_path / "sweep.h5", "a") as f:
        files = f["runs/file"].asstr()[:]
        files[1] = name
        del f["runs/file"]
        f.create_dataset("runs/file", data=list(files), dtype=h5py.string_dtype())
    with pytest.raises(RunFileError, match="names a run file outside its folder"):
        mx.load_sweep(tmp_path)
