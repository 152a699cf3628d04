"""`main.py render` reads from each run file only what the requested plots draw (issue 16): a
figure of the margin need not read every sample's margin or every snapshot's parameters. The
figure it draws is the one drawn from the whole run."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from PySide6.QtGui import QImage

from margin_explorer.app.cli import main
from margin_explorer.app.session import RunSession
from margin_explorer.core.datasets import gaussian_blobs
from margin_explorer.core.runner import run_to_file
from tests.helpers import config_for, mlp, small_run_file


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    """A real run with snapshots: 100 points (sample_margins 100 wide), 40 steps."""
    return small_run_file(tmp_path_factory.mktemp("render") / "run.h5", steps=40)


@pytest.fixture(scope="module")
def sign_run(tmp_path_factory) -> Path:
    """A steepest-descent (sign) run: its margin plot adds the l_inf and l1 margins."""
    path = tmp_path_factory.mktemp("render") / "sign.h5"
    run_to_file(config_for(mlp(2, [4]), gaussian_blobs(60, 2, separation=4.0, noise=0.5, seed=1), steps=30, lr=0.05,
                           kind="sign"), path)
    return path


def _reads(monkeypatch, forbidden=()):
    """Every HDF5 dataset read (its path), recorded; a read of one in ``forbidden`` fails as a
    damaged chunk would, after the reader's layout checks (which read no data of it) passed."""
    seen = []
    original = h5py.Dataset.__getitem__

    def reading(self, key, *args, **kwargs):
        seen.append(self.name)
        if self.name in forbidden:
            raise OSError(f"Can't read data (a damaged chunk of {self.name})")
        return original(self, key, *args, **kwargs)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", reading)
    return seen


def _whole_run(monkeypatch):
    """The old path: every metric and snapshot read, whatever the plots."""
    original = RunSession.from_reader.__func__

    def whole(cls, reader, metrics=None, snapshots=True):
        return original(cls, reader)
    monkeypatch.setattr(RunSession, "from_reader", classmethod(whole))


def _render(args, capsys) -> None:
    code = main(["render", *map(str, args)])
    assert code == 0, capsys.readouterr().err


def _same_image(a: Path, b: Path) -> None:
    first, second = QImage(str(a)), QImage(str(b))
    assert not first.isNull() and first.size() == second.size()
    assert first == second  # pixel for pixel


def test_render_of_the_margin_never_reads_sample_margins_or_snapshot_params(run_file, tmp_path, monkeypatch, capsys):
    with h5py.File(run_file, "r") as f:  # the file holds what must not be read, and it is large
        assert f["metrics/sample_margins"].shape[1] == 100 and f["snapshots/params"].shape[0] > 0
    lean, whole = tmp_path / "lean.png", tmp_path / "whole.png"
    with monkeypatch.context() as m:
        seen = _reads(m, forbidden={"/metrics/sample_margins", "/snapshots/params", "/snapshots/final_params"})
        _render([run_file, "--plots", "margin", "--width", "600", "--out", lean], capsys)
    assert {"/metrics/step", "/metrics/normalized_margin", "/metrics/smoothed_margin"} <= set(seen)
    assert not {name for name in seen if name.startswith("/snapshots/") and name != "/snapshots/final_step"}
    assert "/metrics/param_norm" not in seen  # a metric of another plot
    with monkeypatch.context() as m:
        _whole_run(m)
        _render([run_file, "--plots", "margin", "--width", "600", "--out", whole], capsys)
    _same_image(lean, whole)


@pytest.mark.parametrize("plots", ["loss,norm", "angle", "samples", "rank", "ensemble", "kkt", "margin,kkt", "layers",
                                   "accuracy"])
def test_every_plot_draws_from_what_it_reads_the_figure_of_the_whole_run(run_file, tmp_path, monkeypatch, capsys,
                                                                        plots):
    lean, whole = tmp_path / "lean.png", tmp_path / "whole.png"
    with monkeypatch.context() as m:
        seen = _reads(m, forbidden={"/snapshots/params", "/snapshots/final_params"})
        _render([run_file, "--plots", plots, "--width", "600", "--out", lean], capsys)
    # the snapshots' metrics are read for the KKT plot only
    assert ("/snapshots/kkt_eps" in seen) == ("kkt" in plots)
    with monkeypatch.context() as m:
        _whole_run(m)
        _render([run_file, "--plots", plots, "--width", "600", "--out", whole], capsys)
    _same_image(lean, whole)


def test_a_steepest_descent_runs_margin_plot_reads_its_own_norms_margins(sign_run, tmp_path, monkeypatch, capsys):
    lean, whole = tmp_path / "lean.png", tmp_path / "whole.png"
    with monkeypatch.context() as m:
        seen = _reads(m, forbidden={"/metrics/sample_margins"})
        _render([sign_run, "--plots", "margin", "--width", "600", "--out", lean], capsys)
    assert {"/metrics/normalized_margin_linf", "/metrics/normalized_margin_l1"} <= set(seen)
    with monkeypatch.context() as m:
        _whole_run(m)
        _render([sign_run, "--plots", "margin", "--width", "600", "--out", whole], capsys)
    _same_image(lean, whole)
