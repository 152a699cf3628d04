"""Issue 16, bounds on what a config and a dataset file can ask for: every malformed field gets a
message naming it (exit 2 on the command line, never a traceback), NPZ headers are checked before
anything is read, and sizes past the documented limits are refused before anything is allocated."""

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from margin_explorer.core import datasets as D
from margin_explorer.core.config import FamilyConfig, RunConfig, load_config
from margin_explorer.core.errors import ConfigError, DatasetError

ROOT = Path(__file__).resolve().parent.parent
BASE = {"architecture": {"input_dim": 2, "blocks": [{"type": "dense", "width": 1}]}, "run": {"steps": 3}}


def _main(*args, **kwargs):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=kwargs.pop("cwd", ROOT),
                          capture_output=True, text=True, timeout=120, **kwargs)


def _with(path, value):
    data = copy.deepcopy(BASE)
    *parents, last = path
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return json.dumps(data)


BLOCK_TYPE_LIST = _with(("architecture", "blocks"), [{"type": ["dense"], "width": 1}])
HUGE_INLINE = json.dumps({**BASE, "dataset": {"kind": "inline", "X": [[10**400, 0], [0, 1]], "y": [1, -1]}})
DEEP = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"

# (config text, the field the message must name, words it must hold): each gave a traceback before
CASES = [
    (BLOCK_TYPE_LIST, "architecture.blocks[0].type", "got a list"),
    (_with(("run", "device"), "cpu:abc"), "run.device", "'cpu:abc'"),
    (_with(("dataset",), {"generator": "blobs", "params": {"n": [3]}}), "dataset.params.n", "whole number"),
    (_with(("dataset",), {"generator": "blobs", "params": {"seed": -1}}), "dataset.params.seed", "from 0 to 2^63 - 1, got -1"),
    (_with(("dataset",), {"generator": "circles", "params": {"factor": [0.5]}}), "dataset.params.factor", "a list"),
    (_with(("dataset",), {"generator": "blobs", "params": {"noise": None}}), "dataset.params.noise", "null"),
    (_with(("dataset",), {"generator": "blobs", "params": {"n": 10**12}}), "dataset.params.n", "limit is 1e+07"),
    (_with(("dataset",), {"generator": "blobs", "params": {"noise": 10**400}}), "dataset.params.noise", "too large"),
    (_with(("dataset",), {"generator": "blobs", "params": {"n": 10**400}}), "dataset.params.n", "about 10^400"),
    (HUGE_INLINE, "X", "too large for a float64"),
    (DEEP, "config", "nested too deeply"),
    ('{"name": 1' + "0" * 5000 + "}", "config", "not valid JSON"),
    (_with(("run", "seed"), 2**70), "run.seed", "too large"),
    (_with(("run", "steps"), 10**400), "run.steps", "401 digits"),
    (_with(("optimizer", "lr"), 10**400), "optimizer.lr", "too large for a float64"),
    (_with(("dataset",), {"kind": "file", "path": "a\x00b.csv"}), "dataset", "not a valid file name"),
    (_with(("family",), {"vary": "seed", "values": [1e300]}), "family.values[0]", "2^63 - 1"),
]


@pytest.mark.parametrize("text, field, words", CASES)
def test_malformed_config_fields_are_named(text, field, words):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_json(text).dataset.build()
    message = str(info.value)
    assert field in message and words in message, message


@pytest.mark.parametrize("text, field", [(BLOCK_TYPE_LIST, "architecture.blocks[0].type"),
                                         (_with(("run", "device"), "cpu:abc"), "run.device"),
                                         (_with(("dataset",), {"generator": "blobs", "params": {"seed": -1}}),
                                          "dataset.params.seed"),
                                         (HUGE_INLINE, "X:"), (DEEP, "nested too deeply")])
def test_cli_exits_2_with_one_line(tmp_path, text, field):
    config = tmp_path / "c.json"
    config.write_text(text)
    result = _main("run", str(config), "--out", str(tmp_path / "r.h5"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and field in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_config_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    config, _folder = load_config(path)
    assert config.run.steps == 3 and config.architecture.input_dim == 2
    assert RunConfig.from_json("\ufeff" + json.dumps(BASE)).run.steps == 3


def test_a_relative_dataset_path_is_the_config_folders(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    D.save_csv(D.moons(20, seed=4), folder / "points.csv")
    (folder / "c.json").write_text(json.dumps({**BASE, "dataset": {"kind": "file", "path": "points.csv"}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, _folder = load_config(Path("..") / "project" / "c.json")
    ds = config.dataset.build()
    assert ds.n == 20 and np.array_equal(ds.X, D.moons(20, seed=4).X)
    # and from the command line, started in another folder
    result = _main("run", str(folder / "c.json"), "--out", str(tmp_path / "r.h5"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def test_family_refusals_say_why():
    with pytest.raises(ConfigError, match="0 cannot be log-spaced"):
        FamilyConfig.parse("lr=0..1/4")
    with pytest.raises(ConfigError, match="/N must be from 2 to 4096, got 1"):
        FamilyConfig.parse("lr=0.1..1/1")
    with pytest.raises(ConfigError, match="0:100000000000 holds 100000000000 values; 1 to 4096 are allowed"):
        FamilyConfig.parse("seed=0:100000000000")


# --------------------------------------------------------------------------- NPZ files

def _npz_with_header(path, shape, dtype="<f8", payload=b""):
    """An .npz whose X.npy claims ``shape`` but holds ``payload``: what a crafted file does."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    text = repr(header).encode()
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", npy)
        buf = __import__("io").BytesIO()
        np.save(buf, np.array([1.0, -1.0]))
        zf.writestr("y.npy", buf.getvalue())


def test_an_npz_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    path = tmp_path / "claims.npz"
    _npz_with_header(path, (10**6, 10**6))
    assert path.stat().st_size < 1000
    with pytest.raises(DatasetError, match=r"claims.npz: X: 1000000 x 1000000 = about 10\^12 numbers is too large; "
                                           r"the limit is 1e\+07"):
        D.load(path)
    # a claim within the limit that the bytes do not back is a damaged file, not a MemoryError
    _npz_with_header(path, (1000, 2))
    with pytest.raises(DatasetError, match="claims shape .* holds only"):
        D.load(path)


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path):
    import resource

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fh:
            fh.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (40000000, 2), }"
                     .ljust(10 + 118) + b"\n")
            zero = bytes(1 << 20)
            for _ in range(610):  # 610 MiB of zeros: ~0.6 MB compressed
                fh.write(zero)
        zf.writestr("y.npy", b"")
    assert path.stat().st_size < 5 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetError, match="bomb.npz: X would inflate to 610 MB; the limit is 256 MB"):
        D.load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB: nothing inflated


def test_npz_refuses_complex_objects_and_says_what_a_non_zip_is(tmp_path):
    np.savez(tmp_path / "c.npz", X=np.array([[1 + 2j, 0], [0, 1]]), y=np.array([1, -1]))
    with pytest.raises(DatasetError, match="c.npz: X holds complex numbers"):
        D.load(tmp_path / "c.npz")
    np.savez(tmp_path / "o.npz", X=np.array([[1, 0], [0, 1]], dtype=object), y=np.array([1, -1]))
    with pytest.raises(DatasetError, match="o.npz: X holds Python objects .*never loaded"):
        D.load(tmp_path / "o.npz")
    np.save(tmp_path / "single.npy", np.zeros((2, 2)))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    with pytest.raises(DatasetError, match="single.npz: not an .npz file: it is a single .npy array"):
        D.load(tmp_path / "single.npz")
    (tmp_path / "p.npz").write_bytes(b"\x80\x04\x95" + bytes(20))
    with pytest.raises(DatasetError, match="p.npz: not an .npz file: it is a Python pickle") as info:
        D.load(tmp_path / "p.npz")
    assert "pickled data" not in str(info.value)
    with pytest.raises(DatasetError, match="holds complex numbers"):
        D.Dataset(np.array([[1j, 0], [0, 1]]), np.array([1, -1]))


def test_import_errors_name_the_file_and_the_row(tmp_path):
    (tmp_path / "labels.csv").write_text("x1,x2,label\n0,0,1\n1,1,3\n")
    with pytest.raises(DatasetError, match=r"^labels.csv: labels 0..3: class 0 has no sample \(the labels are 1, 3\)"):
        D.load(tmp_path / "labels.csv")
    np.savez(tmp_path / "labels.npz", X=np.eye(3), y=np.array([1, -1, 5]))
    with pytest.raises(DatasetError, match=r"^labels.npz: row 3: label 5 is not"):
        D.load(tmp_path / "labels.npz")
    (tmp_path / "cells.csv").write_text("x1,x2,label\n0,a,1\n")
    with pytest.raises(DatasetError, match=r"^cells.csv: row 2, column 2: 'a' is not a number"):
        D.load(tmp_path / "cells.csv")


def test_a_semicolon_separated_csv_gets_a_hint(tmp_path):
    (tmp_path / "semi.csv").write_text("x1;x2;label\n0;0;1\n1;1;-1\n")
    with pytest.raises(DatasetError, match="separated by semicolons: separate them with commas"):
        D.load(tmp_path / "semi.csv")
    (tmp_path / "euro.csv").write_text("0,5;1,5;1\n1,5;0,5;-1\n")
    with pytest.raises(DatasetError, match="separated by semicolons"):
        D.load(tmp_path / "euro.csv")


def test_a_fifo_or_a_folder_is_not_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DatasetError, match="not a regular file"):
        D.load(tmp_path / "pipe.csv")  # reading it would block forever
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(DatasetError, match="a folder"):
        D.load(tmp_path / "dir.npz")


# --------------------------------------------------------------------------- network size (README, Limits)

def _two_layers(width):
    return {"input_dim": 2, "blocks": [{"type": "dense", "width": width}, {"type": "activation", "kind": "relu"},
                                       {"type": "dense", "width": width}, {"type": "activation", "kind": "relu"},
                                       {"type": "dense", "width": 1}]}


@pytest.mark.parametrize("width, count", [(100_000, "1e+10"), (20_000, "4e+08")])
def test_a_huge_network_is_refused_before_anything_is_allocated(tmp_path, width, count):
    config = tmp_path / "big.json"
    config.write_text(json.dumps({"architecture": _two_layers(width), "run": {"steps": 10}}))
    # the peak from /proc (VmHWM, this process's own memory): ru_maxrss of a child started by vfork
    # includes the parent's peak, and the test process grows as the suite runs
    probe = ("import re, sys, time; from margin_explorer.app.cli import main; t = time.perf_counter(); "
             f"rc = main(['run', {str(config)!r}, '--out', {str(tmp_path / 'r.h5')!r}]); "
             "peak = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]; "
             "print(time.perf_counter() - t, peak); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert f"the network has {count} parameters; the limit is 1e+07" in result.stderr
    seconds, peak_kb = result.stdout.split()
    # the imports (torch, scipy, Qt-free app) take ~0.6 GB; the weights alone would be 3.2 GB (20,000) or 80 GB
    assert float(seconds) < 5 and int(peak_kb) < 1_500_000
    assert not (tmp_path / "r.h5").exists()


def test_activations_and_the_jacobian_are_bounded_by_the_data():
    from margin_explorer.core.architecture import ArchitectureSpec
    from margin_explorer.core.budget import MAX_ACTIVATIONS, MAX_JACOBIAN, activation_count, check_run_size
    from margin_explorer.core.trainer import Trainer
    from tests.helpers import config_for

    def one_hidden(width, activation="relu"):
        return ArchitectureSpec.from_dict({"input_dim": 2, "blocks": [
            {"type": "dense", "width": width}, {"type": "activation", "kind": activation}, {"type": "dense", "width": 1}]})

    spec = one_hidden(10000)
    assert activation_count(spec) == 10000 + 10000 + 1
    assert 6000 * 20001 > MAX_ACTIVATIONS
    with pytest.raises(ConfigError, match=r"the activations on 6000 points are 1.2e\+08 numbers; the limit is 1e\+08"):
        Trainer(config_for(spec, D.gaussian_blobs(6000, seed=1), steps=1))
    # 2,000 x 60,000 = 1.2e8 per-sample gradients for the KKT residual (a homogeneous network) ...
    wide = one_hidden(20000)
    assert 2000 * 40001 <= MAX_ACTIVATIONS and 2000 * 60000 > MAX_JACOBIAN
    with pytest.raises(ConfigError, match=r"per-sample Jacobian .* \(n x P = 2000 x 60000\) is 1.2e\+08 numbers"):
        Trainer(config_for(wide, D.gaussian_blobs(2000, seed=1), steps=1))
    # ... and for any network: the stuck-sample check (core/health.py) forms the rows of the
    # misclassified samples, up to all n of them, whatever the homogeneity
    with pytest.raises(ConfigError, match=r"per-sample Jacobian .* \(n x P = 2000 x 60000\)"):
        Trainer(config_for(one_hidden(20000, "tanh"), D.gaussian_blobs(2000, seed=1), steps=1))
    check_run_size(one_hidden(20000, "tanh"), 2000, jacobian=False)
    # and a realistic desktop run fits: width 256, two layers, 1,000 points
    realistic = ArchitectureSpec.from_dict({"input_dim": 2, "blocks": [
        {"type": "dense", "width": 256}, {"type": "activation", "kind": "relu"},
        {"type": "dense", "width": 256}, {"type": "activation", "kind": "relu"}, {"type": "dense", "width": 1}]})
    check_run_size(realistic, 1000, jacobian=True)


def test_every_preset_fits_the_budget():
    from margin_explorer.core.architecture import parameter_count
    from margin_explorer.core.budget import MAX_ACTIVATIONS, MAX_JACOBIAN, activation_count
    from margin_explorer.core.presets import load_preset, preset_names

    for name in preset_names():
        config = load_preset(name)
        n = config.dataset.build().n
        size = parameter_count(config.architecture)
        assert n * activation_count(config.architecture) < MAX_ACTIVATIONS / 100, name
        assert n * size < MAX_JACOBIAN / 10, name


# --------------------------------------------------------------------------- reference directions at any n

def _gram_dual_svm(X, y):
    """The solver the reference used before issue 16 (the dual QP on the n x n Gram matrix), kept
    here as an oracle for small n."""
    from scipy.optimize import minimize

    Z = X * y[:, None]
    K = Z @ Z.T
    n = len(y)
    res = minimize(lambda a: (0.5 * a @ K @ a - a.sum(), K @ a - 1.0), np.full(n, 1.0 / n), jac=True,
                   method="L-BFGS-B", bounds=[(0, None)] * n, options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12})
    w = Z.T @ res.x
    return w / np.linalg.norm(w)


@pytest.mark.parametrize("make", [lambda: D.linearly_separable(60, 3, margin=0.2, seed=2),
                                  lambda: D.gaussian_blobs(80, 5, separation=6, seed=3),
                                  lambda: D.nearly_orthogonal(20, 50, seed=4)])
def test_the_svm_direction_agrees_with_the_old_solver_and_with_sklearn(make):
    from sklearn.svm import SVC

    from margin_explorer.core import reference as R
    from tests.helpers import symmetric

    ds = make()
    w = R.svm_direction(ds.X, ds.y)
    old = _gram_dual_svm(ds.X, ds.y)
    sym = symmetric(ds)  # zero intercept: SVC (which fits one) solves the bias-free problem
    oracle = SVC(kernel="linear", C=1e10, tol=1e-10).fit(sym.X, sym.y).coef_[0].copy()
    oracle /= np.linalg.norm(oracle)
    assert np.arccos(min(1.0, w @ oracle)) < 1e-4
    assert np.arccos(min(1.0, w @ old)) < 1e-4
    margin = np.min(ds.y * (ds.X @ w))
    assert margin >= np.min(ds.y * (ds.X @ old)) - 1e-9  # never worse than the old answer
    assert margin >= np.min(ds.y * (ds.X @ oracle)) - 1e-9


def test_working_sets_give_the_full_problems_answer(monkeypatch):
    from margin_explorer.core import reference as R

    ds = D.linearly_separable(600, 4, margin=0.05, seed=7)
    full = {f: f(ds.X, ds.y) for f in (R.l1_max_margin_direction, R.linf_max_margin_direction)}
    assert all(w is not None for w in full.values())
    full_margin = R.svm_margin(ds.X, ds.y)
    monkeypatch.setattr(R, "WORKING_SET", 40)  # 600 rows in working sets of 40: several rounds
    calls = []
    original = R._cutting_planes
    monkeypatch.setattr(R, "_cutting_planes", lambda n, solve, violation, chunk=40: calls.append(n)
                        or original(n, solve, violation, chunk))
    for f, w in full.items():
        assert np.allclose(f(ds.X, ds.y), w, atol=1e-7)
    assert R.svm_margin(ds.X, ds.y) == pytest.approx(full_margin, rel=1e-6)
    assert not R.is_linearly_separable(*(lambda x: (x.X, x.y))(D.xor(600)))
    assert calls  # the working-set path ran


def test_a_linear_model_starts_promptly_on_many_points(tmp_path):
    """20,000 points: the Gram matrix alone was 3.2 GB and the solve over 3 minutes."""
    import resource
    import time

    from margin_explorer.core.architecture import ArchitectureSpec, Dense
    from margin_explorer.core.trainer import Trainer
    from tests.helpers import config_for

    ds = D.linearly_separable(20_000, 2, margin=0.05, seed=5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    trainer = Trainer(config_for(ArchitectureSpec(2, [Dense(1, False)]), ds, steps=5))
    trainer.run(5)
    assert time.perf_counter() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300_000  # kB
    assert np.min(ds.y * (ds.X @ trainer.reference)) >= 0.05 - 1e-9  # the generator's guaranteed margin


# --------------------------------------------------------------------------- families

def test_building_member_configs_is_linear_in_the_family_size():
    import time

    from margin_explorer.core.presets import load_preset

    config = load_preset("linear-separable")
    config.family = FamilyConfig.parse("seed=0:4096")
    started = time.perf_counter()
    members = [config.member(k) for k in range(4096)]
    assert time.perf_counter() - started < 2.0  # was 7 s at 1,024 and quadratic (about 110 s at 4,096)
    assert [m.run.seed for m in members[:3]] == [0, 1, 2] and members[4095].run.seed == 4095
    assert all(m.family is None for m in members) and config.family_size == 4096 and config.run.seed == 0
    expected = {**config.to_dict(), "run": {**config.run.to_dict(), "seed": 7}, "name": f"{config.name} [seed=7]"}
    del expected["family"]
    assert members[7].to_dict() == expected
    lr = load_preset("relu2-blobs")
    scale = lr.architecture.init.scale
    lr.family = FamilyConfig.parse("init_scale=0.25,2")
    assert [m.architecture.init.scale for m in (lr.member(0), lr.member(1))] == [0.25, 2.0]
    assert lr.architecture.init.scale == scale  # the family's own config is untouched


def test_a_family_too_large_for_memory_is_refused_up_front(tmp_path):
    import time

    from margin_explorer.core.budget import MAX_FAMILY_BYTES, member_bytes
    from margin_explorer.core.trainer import Trainer
    from margin_explorer.core.presets import load_preset

    config = load_preset("linear-separable")
    config.family = FamilyConfig.parse("seed=0:1500")  # died of SIGSEGV under a 5 GB limit, with no message
    each = member_bytes(config.architecture, 100)
    assert 1500 * each > MAX_FAMILY_BYTES > 1000 * each
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"family: 1500 members would need about 4\.\d GB \([23]\.\d MB each\); "
                                          r"the limit is 4 GB \(README, Limits\): use at most 1\d\d\d members"):
        Trainer(config)
    assert time.perf_counter() - started < 2.0
    result = _main("run", "linear-separable", "--family", "seed=0:1500", "--steps", "10", "--out", str(tmp_path / "f.h5"))
    assert result.returncode == 2 and "1500 members would need" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_members_file_costs_what_it_records(tmp_path):
    """A member's open file held 2.7 MB of memory (HDF5's default chunk cache slots) and took
    1.4 MB of disk for 200 records of 2 parameters (4,096-number chunks, 1 MB array chunks)."""
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.runner import run_family_to_files

    def rss_kb():
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4

    config = load_preset("linear-separable")
    config.run.steps = 200
    config.family = FamilyConfig.parse("seed=0:24")
    sizes = {}

    def on_chunk(family, chunk):
        sizes.setdefault("open", rss_kb())

    run_family_to_files(config, tmp_path / "warm.h5", on_chunk=lambda *a: None)  # imports, caches
    config.family = FamilyConfig.parse("seed=0:24")
    before = rss_kb()
    run_family_to_files(config, tmp_path / "f.h5", on_chunk=on_chunk)
    files = sorted(tmp_path.glob("f-*.h5"))
    assert len(files) == 24
    per_member_disk = sum(f.stat().st_size for f in files) / 24
    # what a member records: every array in its file (metrics, snapshots, dataset, axes, events), ~200 kB
    recorded = []
    with h5py.File(files[0], "r") as f:
        f.visititems(lambda name, obj: recorded.append(obj.nbytes) if isinstance(obj, h5py.Dataset) else None)
    assert per_member_disk < 2 * sum(recorded)  # was 1.4 MB
    assert (sizes["open"] - before) / 24 < 1800  # kB a member with its file open: was about 4.5 MB



# --------------------------------------------------------------------------- divergence messages

def _diverged(config):
    from margin_explorer.core.trainer import Trainer

    trainer = Trainer(config)
    while trainer.status == "running":
        trainer.run(5000)
    assert trainer.status == "diverged"
    return trainer.reason


def test_a_divergence_at_the_start_blames_the_data_or_the_initialization(recwarn):
    from margin_explorer.core.architecture import Init
    from tests.helpers import config_for, mlp

    data = D.moons(40, seed=1)
    huge_points = D.Dataset(data.X * 1e300, data.y)
    huge_init = mlp(2, [8])
    huge_init.init = Init(scale=1e308)
    for config in (config_for(mlp(2, [8]), huge_points, steps=10), config_for(huge_init, data, steps=10)):
        assert config.optimizer.step_rule == "loss_normalized"
        reason = _diverged(config)
        assert reason.startswith("diverged at step 0: ")
        assert "before any update" in reason and "architecture.init.scale" in reason
        assert "step size" not in reason and "loss-normalized" not in reason
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # no numpy noise before the message


def test_a_float32_relu_divergence_advises_one_rule_and_never_the_one_in_use():
    from margin_explorer.core.presets import load_preset

    config = load_preset("relu2-blobs")
    config.run.dtype, config.run.steps, config.optimizer.lr = "float32", 20000, 10.0
    assert config.optimizer.step_rule == "lyu_li"
    reason = _diverged(config)
    assert "overflows ||theta||^M" in reason and "run.dtype float64" in reason
    assert "lyu_li" not in reason and "loss-normalized" not in reason  # was: both, one of them already in use
    config.optimizer.step_rule = "loss_normalized"
    reason = _diverged(config)
    assert "lyu_li step rule" in reason and "loss-normalized rule" not in reason
