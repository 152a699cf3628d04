"""The builtin real datasets (core/builtin_data.py): scikit-learn's bundled data, loaded with no
network, of their documented shapes and class counts, with the class choices, standardization,
subsample and seeded stratified test split the config records."""

import socket

import numpy as np
import pytest

from margin_explorer.core import builtin_data as B
from margin_explorer.core.config import DatasetConfig, RunConfig
from margin_explorer.core.errors import ConfigError, DatasetError

# the published sizes (scikit-learn's docs, UCI): samples, features, samples per class
DOCUMENTED = {
    "digits": ((1797, 64), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]),
    "breast_cancer": ((569, 30), [212, 357]),
    "iris": ((150, 4), [50, 50, 50]),
    "wine": ((178, 13), [59, 71, 48]),
}


@pytest.fixture
def no_network(monkeypatch):
    """Every connection and name lookup raises: a loader that downloads fails loudly. (Replacing
    socket.socket itself breaks ssl's subclass of it, which scikit-learn imports.)"""
    def refuse(*args, **kwargs):
        raise OSError("the network is unreachable in this test")
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(OSError, match="unreachable"):  # the guard itself works
        socket.create_connection(("example.org", 80))


@pytest.mark.parametrize("name", list(DOCUMENTED))
def test_builtin_data_load_offline_with_their_documented_shapes_and_classes(no_network, name):
    (n, d), counts = DOCUMENTED[name]
    ds = B.load_builtin(name, test_fraction=0, standardize=False)
    assert ds.X.shape == (n, d) and ds.n_test == 0
    assert B.BUILTIN[name][2] == (n, d) and B.BUILTIN[name][3] == len(counts)
    if len(counts) == 2:  # breast cancer: binary, malignant -1, benign +1
        assert ds.classes == 2 and [np.sum(ds.y == -1), np.sum(ds.y == 1)] == counts
    else:
        assert ds.classes == len(counts) and np.bincount(ds.y.astype(int)).tolist() == counts
    if name == "digits":  # 16 grey levels, an 8 x 8 image per row
        assert set(np.unique(ds.X)) <= set(range(17)) and B.image_shape(name) == (8, 8)


def test_the_split_is_stratified_disjoint_seeded_and_standardized_on_the_training_set():
    ds = B.load_builtin("digits", test_fraction=0.2, seed=5, standardize=True)
    raw = B.load_builtin("digits", test_fraction=0.2, seed=5, standardize=False)
    assert ds.n + ds.n_test == 1797 and ds.n_test == round(0.2 * 1797)
    # every class keeps its share (up to one sample) in both parts
    full = np.array(DOCUMENTED["digits"][1])
    assert np.all(np.abs(np.bincount(raw.y_test.astype(int)) - 0.2 * full) <= 1)
    # no test image is a training image (digits has no duplicates), and train + test is all of it
    train_rows, test_rows = {r.tobytes() for r in raw.X}, {r.tobytes() for r in raw.X_test}
    assert not train_rows & test_rows and len(train_rows | test_rows) == 1797
    # standardized with the training set's mean and std: the test set uses the same transform
    mean, std = raw.X.mean(0), raw.X.std(0)
    std[std == 0] = 1
    assert np.allclose(ds.X, (raw.X - mean) / std) and np.allclose(ds.X_test, (raw.X_test - mean) / std)
    assert np.allclose(ds.X.mean(0), 0, atol=1e-12)
    assert np.allclose(ds.X.std(0)[raw.X.std(0) > 0], 1)
    # digits' default: one shift and scale for all pixels, so that images stay images
    whole = B.load_builtin("digits", test_fraction=0.2, seed=5)
    assert np.allclose(whole.X, (raw.X - raw.X.mean()) / raw.X.std())
    assert np.allclose(whole.X_test, (raw.X_test - raw.X.mean()) / raw.X.std())
    again, other = B.load_builtin("digits", seed=5, standardize=True), B.load_builtin("digits", seed=6, standardize=True)
    assert np.array_equal(again.X, ds.X) and np.array_equal(again.y_test, ds.y_test)
    assert not np.array_equal(other.X, ds.X)


@pytest.mark.parametrize("classes, expect_classes, expect_n, title", [
    ([0, 1], 2, 178 + 182, "digits 0 vs 1"),
    ("odd_even", 2, 1797, "digits odd vs even"),
    ([3, 5, 8], 3, 183 + 182 + 174, "digits 3 vs 5 vs 8"),
    ([[0, 6], [1, 7], 9], 3, 178 + 181 + 182 + 179 + 180, "digits 0+6 vs 1+7 vs 9"),
])
def test_class_choices(classes, expect_classes, expect_n, title):
    ds = B.load_builtin("digits", classes=classes, test_fraction=0, standardize=False)
    raw = B.load_builtin("digits", test_fraction=0, standardize=False)
    assert ds.classes == expect_classes and ds.n == expect_n and ds.name == title
    if classes == [0, 1]:  # the first listed class is -1, the second +1: the same images
        assert np.array_equal(ds.X[ds.y == -1], raw.X[raw.y == 0]) and np.array_equal(ds.X[ds.y == 1], raw.X[raw.y == 1])
    if classes == "odd_even":
        assert np.array_equal(ds.y, np.where(raw.y % 2 == 1, 1.0, -1.0))
    if classes == [3, 5, 8]:  # renumbered 0, 1, 2 in the list's order
        assert np.array_equal(ds.X[ds.y == 2], raw.X[raw.y == 8])


def test_subsample_keeps_every_class_in_proportion():
    ds = B.load_builtin("digits", subsample=50, seed=1)
    counts = np.bincount(ds.y.astype(int), minlength=10)
    assert ds.n == 50 and counts.min() >= 4 and counts.max() <= 6
    assert ds.n_test == 359  # the test set does not shrink with the training set


@pytest.mark.parametrize("params, message", [
    ({"classes": [0, 10]}, "dataset.params.classes: 10 is not a class of digits (its classes are 0..9)"),
    ({"classes": [0, 0]}, "dataset.params.classes: class 0 is listed twice"),
    ({"classes": "odd"}, 'dataset.params.classes: expected "all", "odd_even" or a list'),
    ({"classes": [4]}, "dataset.params.classes: expected"),
    ({"test_fraction": 1}, "dataset.params.test_fraction: expected a number from 0 to below 1"),
    ({"subsample": -3}, "dataset.params.subsample: expected a whole number >= 0"),
    ({"standardize": "yes"}, 'dataset.params.standardize: expected true (each feature), "global" (all numbers together) or false'),
    ({"sub_sample": 3}, "dataset.params.sub_sample: unknown parameter of a builtin dataset"),
])
def test_bad_builtin_configs_name_the_field(params, message):
    with pytest.raises(ConfigError) as info:
        DatasetConfig.from_dict({"kind": "builtin", "builtin": "digits", "params": params}, "dataset")
    assert str(info.value).startswith(message)


def test_unknown_builtin_and_an_impossible_subsample():
    with pytest.raises(ConfigError, match=r"^dataset.builtin: unknown dataset 'mnist' \(choose from digits"):
        DatasetConfig.from_dict({"kind": "builtin", "builtin": "mnist"}, "dataset")
    config = DatasetConfig.from_dict({"kind": "builtin", "builtin": "iris", "params": {"subsample": 500}}, "dataset")
    with pytest.raises(ConfigError, match=r"^dataset: subsample: 500 is more than the 120 training samples of iris"):
        config.build()
    with pytest.raises(DatasetError, match="subsample: 2 samples cannot hold all 3 classes"):
        B.load_builtin("iris", subsample=2)


def test_the_config_records_every_builtin_parameter():
    config = RunConfig.from_dict({"architecture": {"input_dim": 64, "blocks": [{"type": "dense", "width": 1}]},
                                  "dataset": {"kind": "builtin", "builtin": "digits", "params": {"classes": [0, 1]}}})
    stored = config.to_dict()["dataset"]
    assert stored == {"kind": "builtin", "builtin": "digits",
                      "params": {"classes": [0, 1], "standardize": "global", "subsample": 0, "test_fraction": 0.2,
                                 "seed": 0}}
    again = RunConfig.from_dict(config.to_dict()).dataset.build()
    assert again.name == "digits 0 vs 1" and again.X.shape == (288, 64) and again.n_test == 72


def test_a_scalar_output_is_refused_for_more_than_two_classes_rather_than_trained_as_signs():
    """Labels 0..C-1 in q = y f would train and record wrong numbers silently: a width-1 network
    on three classes is refused with the width it needs (and a width-3 one on two classes)."""
    from margin_explorer.core.config import DatasetConfig
    from margin_explorer.core.errors import ConfigError
    from margin_explorer.core.presets import load_preset
    from margin_explorer.core.trainer import Trainer

    config = load_preset("relu2-blobs")
    config.dataset = DatasetConfig.from_dict({"kind": "builtin", "builtin": "iris", "params": {"classes": "all"}})
    config.architecture.input_dim = 4
    with pytest.raises(ConfigError, match="^architecture: the network ends with width 1 but the dataset has 3 classes: "
                                          "the last dense layer needs width 3$"):
        Trainer(config.copy())
    binary = load_preset("relu2-blobs")
    binary.architecture.blocks[-1].width = 3
    with pytest.raises(ConfigError, match="width 3 but the dataset is binary .*needs width 1$"):
        Trainer(binary.copy())
