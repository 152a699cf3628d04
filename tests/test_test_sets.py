"""Test sets (issue 20): generators draw one from the same distribution with another seed and
leave the training arrays exactly as before; files bring their own; run files store and check
them; labels 0..C-1 make a C-class dataset."""

import h5py
import numpy as np
import pytest

from margin_explorer.core import datasets as D
from margin_explorer.core.architecture import mlp
from margin_explorer.core.config import DatasetConfig, RunConfig
from margin_explorer.core.errors import ConfigError, DatasetError
from margin_explorer.core.reference import is_linearly_separable
from margin_explorer.core.run_reader import RunReader
from margin_explorer.core.runfile import RunWriter


@pytest.mark.parametrize("kind", list(D.GENERATORS))
def test_a_generators_test_set_leaves_its_training_set_as_it_was(kind):
    plain, with_test = D.generate(kind, seed=7), D.generate(kind, seed=7, n_test=40)
    assert np.array_equal(plain.X, with_test.X) and np.array_equal(plain.y, with_test.y)
    assert plain.X_test is None and with_test.X_test.shape == (40, plain.dim) and with_test.classes == plain.classes
    labels = {-1.0, 1.0} if plain.classes == 2 else set(range(plain.classes))
    assert set(np.unique(with_test.y_test)) == labels
    # another seed's points: none of the test points is a training point
    assert not {r.tobytes() for r in with_test.X_test} & {r.tobytes() for r in with_test.X}
    assert np.array_equal(D.generate(kind, seed=7, n_test=40).X_test, with_test.X_test)


def test_the_test_set_comes_from_the_same_distribution():
    # the same random hyperplane: train and test together stay separable with the gap...
    ds = D.linearly_separable(100, 5, 0.2, seed=3, n_test=200)
    assert is_linearly_separable(np.vstack([ds.X, ds.X_test]), np.concatenate([ds.y, ds.y_test]))
    # ...which a draw of another seed (another hyperplane) is not
    other = D.linearly_separable(200, 5, 0.2, seed=4)
    assert not is_linearly_separable(np.vstack([ds.X, other.X]), np.concatenate([ds.y, other.y]))
    # blobs: the test cloud's class means lie along the training set's direction
    blobs = D.gaussian_blobs(400, 3, separation=6.0, noise=0.5, seed=1, n_test=400)
    train_dir = blobs.X[blobs.y > 0].mean(0) - blobs.X[blobs.y < 0].mean(0)
    test_dir = blobs.X_test[blobs.y_test > 0].mean(0) - blobs.X_test[blobs.y_test < 0].mean(0)
    assert np.dot(train_dir, test_dir) / np.linalg.norm(train_dir) / np.linalg.norm(test_dir) > 0.99


def test_n_test_is_checked_as_a_generator_parameter():
    with pytest.raises(ConfigError, match=r"^dataset.params.n_test: must be a whole number >= 0"):
        DatasetConfig.from_dict({"generator": "moons", "params": {"n_test": -5}}, "dataset")
    with pytest.raises(ConfigError, match=r"^dataset.params.n: .* the limit is 1e\+07"):
        DatasetConfig.from_dict({"generator": "blobs", "params": {"n": 10, "dim": 1000, "n_test": 10**4}}, "dataset")


def test_csv_and_npz_take_labels_zero_to_c_minus_one(tmp_path):
    ds = D.parse_csv("x1,x2,label\n0,0,0\n1,0,1\n0,1,2\n1,1,2\n")
    assert ds.classes == 3 and ds.y.tolist() == [0, 1, 2, 2]
    np.savez(tmp_path / "three.npz", X=np.eye(4), y=np.array([2, 0, 1, 1]),
             X_test=np.ones((2, 4)), y_test=np.array([1, 2]))
    back = D.load(tmp_path / "three.npz")
    assert back.classes == 3 and back.y.tolist() == [2, 0, 1, 1] and back.y_test.tolist() == [1, 2]
    D.save(back, tmp_path / "again.npz")
    again = D.load(tmp_path / "again.npz")
    assert np.array_equal(again.X_test, back.X_test) and again.classes == 3
    assert D.parse_csv("1,2,0\n3,4,1\n").y.tolist() == [-1, 1]  # 0/1 stays binary, as before


@pytest.mark.parametrize("text, message", [
    ("0,0,0\n1,1,1\n2,2,3\n", "labels 0..3: class 2 has no sample (the labels are 0, 1, 3)"),
    ("0,0,0\n1,1,1\n2,2,2\n3,3,1.5\n", "row 4: label 1.5 is not a class"),
    ("0,0,0\n1,1,1\n2,2,5000\n", "row 3: label 5000 is too large: at most 1000 classes"),
])
def test_bad_class_labels_get_a_clear_error(text, message):
    with pytest.raises(DatasetError) as info:
        D.parse_csv(text, name="data")
    assert str(info.value) == f"data: {message}" or str(info.value).startswith(f"data: {message}")


def test_a_file_brings_its_own_test_set(tmp_path):
    (tmp_path / "train.csv").write_text("x1,x2,label\n0,0,0\n1,0,1\n0,1,2\n")
    (tmp_path / "test.csv").write_text("x1,x2,label\n0.5,0.5,1\n2,2,0\n")
    config = DatasetConfig.from_dict({"kind": "file", "path": "train.csv", "test_path": "test.csv"}, "dataset")
    ds = config.build(tmp_path)
    assert ds.classes == 3 and ds.X_test.tolist() == [[0.5, 0.5], [2, 2]] and ds.y_test.tolist() == [1, 0]
    assert config.to_dict() == {"kind": "file", "path": "train.csv", "test_path": "test.csv"}
    # a binary 0/1 file's test labels are read the same way, even when only one class is there
    (tmp_path / "bin.csv").write_text("0,0,0\n1,1,1\n")
    (tmp_path / "bin-test.csv").write_text("3,3,0\n4,4,0\n")
    assert D.load(tmp_path / "bin.csv", tmp_path / "bin-test.csv").y_test.tolist() == [-1, -1]


@pytest.mark.parametrize("test_text, message", [
    ("x1,x2,label\n0.5,0.5,3\n", "test.csv (the test set): row 2: label 3 is not one of the training set's classes 0..2"),
    ("x1,x2,x3,label\n0.5,0.5,1,1\n", "test.csv (the test set): X_test has 3 columns but X has 2"),
    ("x1,x2,label\n0.5,nan,1\n", "test.csv (the test set): test row 2: coordinates must be finite"),
])
def test_a_bad_test_file_gets_a_clear_error(tmp_path, test_text, message):
    (tmp_path / "train.csv").write_text("x1,x2,label\n0,0,0\n1,0,1\n0,1,2\n")
    (tmp_path / "test.csv").write_text(test_text)
    with pytest.raises(DatasetError) as info:
        D.load(tmp_path / "train.csv", tmp_path / "test.csv")
    assert str(info.value).startswith(message)


def test_npz_test_arrays_come_in_pairs(tmp_path):
    np.savez(tmp_path / "half.npz", X=np.eye(2), y=np.array([1, -1]), X_test=np.eye(2))
    with pytest.raises(DatasetError, match=r"^half.npz: a test set needs both X_test and y_test \(found only X_test\)"):
        D.load(tmp_path / "half.npz")


def _write(path, dataset, input_dim):
    config = RunConfig(mlp(input_dim, [3]), dataset=DatasetConfig.inline(dataset))
    writer = RunWriter(path, config, dataset, n_params=3 * input_dim + 3, layer_names=["w1", "w2"], ensemble_size=0,
                       homogeneity={"verdict": "exact", "order": 2.0, "reasons": [], "explanation": ""}, device="cpu")
    writer.close("finished")


def test_a_run_file_stores_the_test_set_and_the_class_count(tmp_path):
    three = D.Dataset(np.eye(3), np.array([0.0, 1.0, 2.0]), "three", 3, np.ones((2, 3)), np.array([2.0, 2.0]),
                      image_shape=(1, 3))
    _write(tmp_path / "three.h5", three, 3)
    with h5py.File(tmp_path / "three.h5", "r") as f:
        assert f["dataset"].attrs["classes"] == 3
        assert f["dataset/X_test"].shape == (2, 3) and f["dataset/y_test"][()].tolist() == [2, 2]
    back = RunReader(tmp_path / "three.h5").dataset
    assert back.classes == 3 and np.array_equal(back.X_test, three.X_test) and np.array_equal(back.y, three.y)
    assert back.image_shape == (1, 3)
    # a binary dataset without a test set: the file has neither, as every file before them
    binary = D.moons(20, seed=1)
    _write(tmp_path / "binary.h5", binary, 2)
    with h5py.File(tmp_path / "binary.h5", "r") as f:
        assert "classes" not in f["dataset"].attrs and "X_test" not in f["dataset"]
    back = RunReader(tmp_path / "binary.h5").dataset
    assert back.classes == 2 and back.X_test is None and np.array_equal(back.X, binary.X)


def test_an_inline_config_carries_a_builtin_datasets_classes_test_set_and_image_shape():
    from margin_explorer.core.builtin_data import load_builtin

    digits = load_builtin("digits", subsample=40, test_fraction=0.1)
    back = DatasetConfig.from_dict(DatasetConfig.inline(digits).to_dict(), "dataset").build()
    assert back.classes == 10 and back.image_shape == (8, 8) and np.array_equal(back.X, digits.X)
    assert np.array_equal(back.y_test, digits.y_test) and back.n_test == 180


def test_a_multi_class_generators_classes_are_checked_with_the_config():
    with pytest.raises(ConfigError, match=r"^dataset.params.classes: a multi-class generator makes 3 to 20 classes, got 50"):
        DatasetConfig.from_dict({"generator": "class_blobs", "params": {"classes": 50}}, "dataset")


def test_an_inline_config_carries_the_test_set():
    ds = D.moons(20, seed=1, n_test=5)
    config = DatasetConfig.inline(ds)
    back = DatasetConfig.from_dict(config.to_dict(), "dataset").build()
    assert np.array_equal(back.X_test, ds.X_test) and np.array_equal(back.y_test, ds.y_test)
    with pytest.raises(ConfigError, match="^dataset: an inline test set needs both X_test and y_test"):
        DatasetConfig.from_dict({"kind": "inline", "X": [[0], [1]], "y": [1, -1], "X_test": [[2]]}, "dataset")
