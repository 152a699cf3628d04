"""Run files label their metrics' axes with HDF5 dimension scales (docs/run-format.md), so that
netCDF readers see labeled arrays: `xarray.open_dataset(path, group="metrics", engine="h5netcdf")`."""

import shutil

import h5py
import numpy as np
import pytest

from margin_explorer.core import api as mx
from margin_explorer.core.errors import RunFileError
from margin_explorer.core.runfile import RunReader


def _xarray():
    try:
        import h5netcdf  # noqa: F401
        import xarray
    except ImportError:
        pytest.skip("xarray and h5netcdf are not installed (pip install '.[test]')")
    return xarray


def test_xarray_opens_the_metrics_labeled_by_step_and_column(tmp_path):
    xr = _xarray()
    path = tmp_path / "run.h5"
    mx.train(mx.preset("relu2-blobs"), steps=40, out=path)
    with RunReader(path) as reader, xr.open_dataset(path, group="metrics", engine="h5netcdf") as ds:
        metrics = reader.metrics
        np.testing.assert_array_equal(ds["step"].values, metrics["step"])
        assert set(ds.data_vars) == set(metrics) - {"step"}
        for name, values in metrics.items():
            np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
            assert ds[name].dims[0] == "step", name
        assert ds["sample_margins"].dims == ("step", "sample")
        np.testing.assert_array_equal(ds["sample"].values, np.arange(reader.dataset_shape[0]))
        assert ds["stable_rank"].dims == ("step", "layer")
        assert list(ds["layer"].values) == reader.layer_names
        # labeled selection: the margins at step 30
        at = ds["normalized_margin"].sel(step=30).item()
        assert at == metrics["normalized_margin"][list(metrics["step"]).index(30)]


def test_an_ensembles_shares_are_labeled_by_member(tmp_path):
    xr = _xarray()
    path = tmp_path / "ensemble.h5"
    mx.train(mx.preset("ensemble-shallow-fades"), steps=5, out=path)
    with xr.open_dataset(path, group="metrics", engine="h5netcdf") as ds:
        assert ds["ensemble_share"].dims == ("step", "member")
        assert len(ds["member"]) == ds["ensemble_share"].shape[1] >= 2


def test_the_reader_refuses_an_axis_that_does_not_fit_the_data(tmp_path):
    path = tmp_path / "run.h5"
    mx.train(mx.preset("relu2-blobs"), steps=3, out=path)
    for axis, values, said in (("sample", np.arange(7), "labels 7 samples; the dataset has 100"),
                               ("layer", np.array(["a"], dtype=h5py.string_dtype()), "labels 1 layers"),
                               ("sample", np.linspace(0, 1, 100), "not whole numbers")):
        bad = tmp_path / f"bad-{axis}.h5"
        shutil.copy(path, bad)
        with h5py.File(bad, "r+") as f:
            del f["metrics"][axis]
            f["metrics"].create_dataset(axis, data=values)
        with pytest.raises(RunFileError, match=said):
            RunReader(bad)
