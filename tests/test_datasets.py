import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_explorer.core import datasets as D
from margin_explorer.core.errors import DatasetError
from margin_explorer.core.reference import is_linearly_separable


@pytest.mark.parametrize("kind", list(D.GENERATORS))
def test_generators_are_seeded_balanced_and_valid(kind):
    a, b, c = D.generate(kind, seed=3), D.generate(kind, seed=3), D.generate(kind, seed=4)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    if kind in D.MULTICLASS_GENERATORS:  # labels 0..C-1, balanced to one sample
        assert a.classes == 3 and np.bincount(a.y.astype(int)).tolist() in ([34, 33, 33], [50, 50, 50])
    else:
        assert set(np.unique(a.y)) == {-1.0, 1.0} and a.classes == 2
    assert a.X.dtype == np.float64


def test_linearly_separable_generator_is_separable_and_xor_is_not():
    assert is_linearly_separable(*_xy(D.linearly_separable(200, 3, 0.1, seed=1)))
    assert not is_linearly_separable(*_xy(D.xor(200, seed=1)))


def test_nearly_orthogonal_data_are_nearly_orthogonal():
    ds = D.nearly_orthogonal(n=20, dim=2000, seed=0)
    G = ds.X @ ds.X.T
    off = G[~np.eye(20, dtype=bool)]
    assert np.allclose(np.diag(G), 1.0, atol=0.15)
    assert np.max(np.abs(off)) < 0.15


def _xy(ds):
    return ds.X, ds.y


def test_csv_and_npz_round_trip(tmp_path):
    ds = D.moons(30, seed=2)
    for name in ("d.csv", "d.npz"):
        D.save(ds, tmp_path / name)
        back = D.load(tmp_path / name)
        assert np.array_equal(back.X, ds.X) and np.array_equal(back.y, ds.y)


def test_csv_accepts_zero_one_labels_and_no_header():
    ds = D.parse_csv("0,0,0\n1,1,1\n2,0,1\n")
    assert list(ds.y) == [-1.0, 1.0, 1.0]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("x1,x2,label\n", "no data rows"),
    ("x1,x2,label\n0,0,1\n1,1,1\n", "only one class"),
    ("x1,x2,label\n0,nan,1\n1,1,-1\n", "row 2: coordinates must be finite"),
    ("x1,x2,label\n0,inf,1\n1,1,-1\n", "row 2: coordinates must be finite"),
    ("x1,x2,label\n0,0,1\n1,1,-1\n2,2,2\n", "row 4: label 2 is not -1 or +1"),
    ("x1,x2,label\n0,0,1\n1,1,2\n", "labels 0..2: class 0 has no sample"),
    ("x1,x2,label\n0,0,0\n1,1,1.5\n", "row 3: label 1.5 is not a class"),
    ("x1,x2,label\n0,0,0\n1,1,-2\n", "row 3: label -2 is not a class"),
    ("x1,x2,label\n0,0,1\n1,1\n", "row 3 has 2 columns, expected 3"),
    ("x1,x2,label\n0,0,1\n1,abc,-1\n", "row 3, column 2: 'abc' is not a number"),
    ("x1,x2,colour\n0,0,1\n1,1,-1\n", "the last column must be the label"),
    ("x1,x2,label\n0,0,1\n1,1,-1\n0,0,-1\n", "rows 2 and 4: the same point has both labels"),
])
def test_bad_csv_gets_a_clear_error(text, message):
    with pytest.raises(DatasetError) as info:
        D.parse_csv(text, name="data")
    assert message in str(info.value)


def test_missing_and_wrong_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        D.load(tmp_path / "nope.csv")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="bad.npz: not an .npz file: it is not a zip archive"):
        D.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "noy.npz", X=np.zeros((3, 2)))
    with pytest.raises(DatasetError, match="missing array 'y'"):
        D.load(tmp_path / "noy.npz")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        D.load(tmp_path / "data.xlsx")


def test_generator_parameters_are_checked():
    with pytest.raises(DatasetError, match="radius: unknown parameter of generator moons"):
        D.generate("moons", radius=2)
    with pytest.raises(DatasetError, match="unknown kind"):
        D.generate("galaxy")
    with pytest.raises(DatasetError, match="dim >= n"):
        D.nearly_orthogonal(n=50, dim=10)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.,-+eE\nnaifxlbyz \t", max_size=80))
def test_csv_parser_never_leaks_a_traceback(text):
    try:
        ds = D.parse_csv(text)
    except DatasetError:
        return
    assert np.isfinite(ds.X).all() and set(np.unique(ds.y)) == {-1.0, 1.0}


@pytest.mark.parametrize("kind", D.MULTICLASS_GENERATORS)
def test_multi_class_generators_make_c_separate_classes(kind):
    ds = D.generate(kind, classes=5, n=200, noise=0.01, seed=2)
    assert ds.classes == 5 and np.bincount(ds.y.astype(int)).tolist() == [40] * 5 and ds.dim == 2
    # with little noise each class is its own region: a point's nearest other point shares its class
    dist = np.linalg.norm(ds.X[:, None] - ds.X[None], axis=2) + np.diag(np.full(200, np.inf))
    assert np.mean(ds.y[np.argmin(dist, axis=1)] == ds.y) > 0.97
    with pytest.raises(DatasetError, match="classes: a multi-class generator makes 3 to 20 classes, got 2"):
        D.generate(kind, classes=2)
