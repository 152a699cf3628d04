"""A corpus of malformed run files, each made from a small real run (nothing committed): files
that point outside themselves, claim sizes they do not store, hold the wrong types, or are cut
short. ``corpus(base, folder)`` returns {kind: Malformed}; the tests run every reader on each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from margin_explorer.core.run_reader import COLUMN_AXES

PASSWD_BYTES = b"root:x:0:0:root:/root:/bin/bash\n" * 64  # a fake /etc/passwd with known bytes


@dataclass
class Malformed:
    path: Path
    message: str  # a fragment the one-line error must contain
    blocking: bool = False  # reading it the old way would block (a FIFO) or hang: child processes only


def _copy(base: Path, folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.h5"
    shutil.copyfile(base, path)
    return path


def _edit(base, folder, kind, edit) -> Path:
    path = _copy(base, folder, kind)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _replace(f, where, **create):
    del f[where]
    f.create_dataset(where, **create)


def _set_attr(where, name, value):
    def edit(f):
        f[where].attrs[name] = value
    return edit


def _truncated(base: Path, folder: Path, size: int) -> Path:
    path = folder / f"truncated-{size}.h5"
    path.write_bytes(base.read_bytes()[:size])
    return path


def flag_as_being_written(path: Path) -> None:
    """Leave ``path`` as a writer killed in SWMR mode leaves it (HDF5's 'open for write' flags
    set): open it for SWMR writing in a child that exits without closing."""
    script = ("import h5py, os, sys\nf = h5py.File(sys.argv[1], 'r+', libver='latest')\n"
              "f.swmr_mode = True\nf.flush()\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)


def corpus(base: Path, folder: Path) -> dict[str, Malformed]:
    """Every kind of malformed run file the readers must refuse with one clear line."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Malformed] = {}
    with h5py.File(base, "r") as f:
        records = f["metrics/step"].shape[0]
        n, dim = f["dataset/X"].shape
        n_params = f["snapshots/final_params"].shape[0]
        config = json.loads(f.attrs["config"])

    def add(kind, message, edit=None, blocking=False, path=None):
        out[kind] = Malformed(path if path is not None else _edit(base, folder, kind, edit), message, blocking)

    # ---- outside the file
    passwd = folder / "passwd"
    passwd.write_bytes(PASSWD_BYTES)
    add("external-storage-passwd", "metrics/log_loss is stored outside the file",
        lambda f: _replace(f, "metrics/log_loss", shape=(records,), dtype="f8",
                           external=[(str(passwd), 0, records * 8)]))
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    add("external-storage-fifo", "dataset/X is stored outside the file",
        lambda f: _replace(f, "dataset/X", shape=(n, dim), dtype="f8", external=[(str(fifo), 0, n * dim * 8)]),
        blocking=True)
    other = folder / "other-run.h5"
    shutil.copyfile(base, other)

    def external_link(where, target):
        def edit(f):
            del f[where]
            f[where] = h5py.ExternalLink(str(other), target)
        return edit
    add("external-link-metric", "metrics/step is stored outside the file", external_link("metrics/step", "/metrics/step"))
    add("external-link-group", "metrics is stored outside the file", external_link("metrics", "/metrics"))

    def soft_link(f):
        del f["metrics/alignment"]
        f["metrics/alignment"] = h5py.SoftLink("/metrics/log_loss")
    add("soft-link", "metrics/alignment is a soft link", soft_link)

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(n,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(other), "dataset/y", shape=(n,))
        del f["dataset/y"]
        f.create_virtual_dataset("dataset/y", layout)
    add("virtual-dataset", "dataset/y is stored outside the file (a virtual dataset)", virtual)

    # ---- claimed sizes
    def long_margins(f):
        f["metrics/sample_margins"].resize(10 ** 7, axis=0)
    add("one-metric-longer", "metrics/sample_margins has 10,000,000 records", long_margins)

    def all_long(f):
        for name in f["metrics"]:
            if name not in COLUMN_AXES.values():  # the columns' labels (dimension scales), not metrics
                f["metrics"][name].resize(10 ** 7, axis=0)
    add("every-metric-claims-1e7", "claims", all_long)

    def huge_dataset(f):
        _replace(f, "dataset/y", shape=(5 * 10 ** 8,), maxshape=(None,), chunks=(4096,), dtype="f8")
        _replace(f, "dataset/X", shape=(5 * 10 ** 8, dim), maxshape=(None, dim), chunks=(4096, dim), dtype="f8")
    add("dataset-claims-1e9", "dataset/X claims 8,000,000,000 bytes", huge_dataset)
    add("final-params-width", f"snapshots/final_params holds {n_params + 1:,} parameters but the network has {n_params:,}",
        lambda f: _replace(f, "snapshots/final_params", data=np.zeros(n_params + 1)))

    def params_width(f):
        k = f["snapshots/params"].shape[0]
        _replace(f, "snapshots/params", data=np.zeros((k, n_params + 3)))
    add("snapshot-params-width", f"snapshots/params holds {n_params + 3:,} parameters", params_width)

    # ---- the test set and the class count (docs/run-format.md, Groups)
    def test_set(columns, with_labels=True):
        def edit(f):
            f.create_dataset("dataset/X_test", data=np.zeros((3, columns)))
            if with_labels:
                f.create_dataset("dataset/y_test", data=np.ones(3))
        return edit
    add("test-set-columns", f"dataset/X_test has {dim + 1} columns but dataset/X {dim}", test_set(dim + 1))
    add("test-set-without-labels", "dataset/X_test has no y_test", test_set(dim, with_labels=False))
    add("classes-one", "dataset/classes is 1, not a whole number of classes", _set_attr("dataset", "classes", 1))
    add("classes-text", "dataset/classes is 'ten', not a whole number", _set_attr("dataset", "classes", "ten"))
    add("image-shape", f"dataset/image_shape is [3, 3], not (height, width) of the {dim} columns",
        _set_attr("dataset", "image_shape", np.array([3, 3])))

    # ---- wrong types
    for kind, attr, value, message in (
            ("format-version-minus-1", "format_version", -1, "format_version -1"),
            ("format-version-1.9", "format_version", 1.9, "'format_version' attribute should be a whole number"),
            ("format-version-2", "format_version", 2, "newer than this app reads"),
            ("format-version-text", "format_version", "1", "'format_version' attribute should be a whole number"),
            ("format-version-array", "format_version", np.array([1, 1]), "'format_version' attribute should be a whole"),
            ("config-integer", "config", 7, "'config' attribute should be text"),
            ("config-array", "config", np.arange(3), "'config' attribute should be text"),
            ("config-not-json", "config", "{nope", "'config' attribute is not valid JSON"),
            ("config-deep", "config", "[" * 100000 + "]" * 100000, "config"),
            ("homogeneity-integer", "homogeneity", 3, "'homogeneity' attribute should be text"),
            ("homogeneity-list", "homogeneity", "[1, 2]", "'homogeneity' attribute should be a JSON object"),
            ("status-integer", "status", 5, "'status' attribute should be text"),
            ("start-step-text", "start_step", "ten", "'start_step' attribute should be a whole number"),
            ("family-not-json", "family", "{", "'family' attribute is not valid JSON")):
        add(kind, message, _set_attr("/", attr, value))
    add("no-format", "not a Margin Explorer run", lambda f: f.attrs.__delitem__("format"))
    add("final-step-text", "snapshots/final_step holds text",
        lambda f: _replace(f, "snapshots/final_step", data="twelve"))
    add("final-step-float", "snapshots/final_step holds floating-point numbers, not whole numbers",
        lambda f: _replace(f, "snapshots/final_step", data=12.5))
    add("final-step-array", "snapshots/final_step has 1 dimensions",
        lambda f: _replace(f, "snapshots/final_step", data=np.arange(3)))
    add("step-strings", "metrics/step holds text",
        lambda f: _replace(f, "metrics/step", data=np.array([b"%d" % i for i in range(records)])))
    add("metric-strings", "metrics/log_loss holds text",
        lambda f: _replace(f, "metrics/log_loss", data=np.array([b"x"] * records)))
    add("step-float", "metrics/step holds floating-point numbers",
        lambda f: _replace(f, "metrics/step", data=np.arange(records, dtype=float)))

    def metric_group(f):
        del f["metrics/log_loss"]
        f.create_group("metrics/log_loss")
    add("metric-is-group", "metrics/log_loss is a group", metric_group)
    add("metric-is-scalar", "metrics/log_loss has 0 dimensions",
        lambda f: _replace(f, "metrics/log_loss", data=1.0))

    def metrics_dataset(f):
        del f["metrics"]
        f.create_dataset("metrics", data=np.zeros(3))
    add("metrics-is-dataset", "'metrics' is a dataset, not a group", metrics_dataset)
    add("extra-3d-metric", "metrics/curvature has 3 dimensions",
        lambda f: f.create_dataset("metrics/curvature", data=np.zeros((records, 2, 2))))
    add("no-snapshots", "no 'snapshots' group", lambda f: f.__delitem__("snapshots"))
    add("columns-integer", "'columns' attribute should be text", _set_attr("metrics/stable_rank", "columns", 4))
    add("x-columns", "dataset/X has 5 columns",
        lambda f: _replace(f, "dataset/X", data=np.zeros((n, 5))))

    def sample_width(f):
        _replace(f, "metrics/sample_margins", data=np.zeros((records, n + 1)))
    add("sample-margins-width", f"metrics/sample_margins has {n + 1:,} columns", sample_width)
    stored_config = dict(config, dataset={"kind": "generator", "generator": "nope"})
    add("config-invalid", "the stored config is not valid", _set_attr("/", "config", json.dumps(stored_config)))

    # ---- not a run file at all, cut short, damaged while flagged as being written
    text = folder / "notes.h5"
    text.write_text("not a run\n")
    out["text-file"] = Malformed(text, "not an HDF5 file")
    (folder / "a-folder.h5").mkdir()
    out["folder"] = Malformed(folder / "a-folder.h5", "is a folder")
    run_fifo = folder / "run-fifo.h5"
    os.mkfifo(run_fifo)
    out["fifo-as-run"] = Malformed(run_fifo, "not a regular file", blocking=True)
    size = base.stat().st_size
    for cut in (100, 1000, 4096, 16384, size // 2):
        out[f"truncated-{cut}"] = Malformed(_truncated(base, folder, cut), "truncated", blocking=True)
    damaged = _copy(base, folder, "damaged-while-written")
    flag_as_being_written(damaged)
    data = bytearray(damaged.read_bytes())
    data[4096:len(data) // 2] = bytes(len(data) // 2 - 4096)
    damaged.write_bytes(bytes(data))
    out["damaged-while-written"] = Malformed(damaged, "damaged", blocking=True)
    return out
