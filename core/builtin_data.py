"""Real datasets that ship offline: scikit-learn's bundled data (sklearn/datasets/data/), read
from its wheel; nothing here downloads (every fetch_* loader and torchvision's MNIST do, and fail
offline: DESIGN.md, Known traps).

``load_builtin(name, classes=..., standardize=..., subsample=..., test_fraction=..., seed=...)``
makes a Dataset with a seeded, stratified test split. A DatasetError's message starts with the
parameter it is about, so a config names the field (core/config.py).
"""

from __future__ import annotations

import numpy as np

from .datasets import Dataset
from .errors import DatasetError

# name -> (scikit-learn loader, description, (samples, features), classes, class names), as
# shipped in scikit-learn >= 1.4; tests/test_builtin_data.py holds them to it
BUILTIN = {
    "digits": ("load_digits", "handwritten digits, 8 x 8 images of 16 grey levels", (1797, 64), 10,
               tuple(str(k) for k in range(10))),
    "breast_cancer": ("load_breast_cancer", "Wisconsin breast cancer, 30 cell-nucleus features", (569, 30), 2,
                      ("malignant", "benign")),
    "iris": ("load_iris", "iris flowers, 4 measurements", (150, 4), 3, ("setosa", "versicolor", "virginica")),
    "wine": ("load_wine", "wines of three cultivars, 13 chemical measurements", (178, 13), 3,
             ("class_0", "class_1", "class_2")),
}
IMAGE_SHAPES = {"digits": (8, 8)}  # data whose rows are images (row-major), for the image grid


def builtin_parameters(name: str) -> dict:
    """The parameters of builtin dataset ``name`` and their defaults, for editors and checks:
    images are standardized as a whole ("global"), measurements feature by feature (true)."""
    return {"classes": "all", "standardize": "global" if name in IMAGE_SHAPES else True, "subsample": 0,
            "test_fraction": 0.2, "seed": 0}


def load_builtin(name: str, classes="all", standardize: bool | str | None = None, subsample: int = 0,
                 test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Builtin dataset ``name`` (BUILTIN).

    classes: ``"all"`` (every class: binary breast_cancer gives -1/+1, the others 0..C-1);
        ``"odd_even"`` (a binary task on the class number's parity: even -1, odd +1);
        a list ``[a, b]`` (a binary task: a -1, b +1, e.g. digits [0, 1]); a list of three or more
        (those classes, renumbered 0..k-1 in the list's order); an item may itself be a list of
        classes merged into one, e.g. [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]].
    test_fraction: the share of the chosen samples held out as the test set, stratified by class
        and seeded by ``seed`` (0: no test set).
    subsample: the number of training samples kept, stratified and seeded (0: all that remain).
    standardize: true: each feature shifted and scaled to mean 0 and standard deviation 1 over
        the training set (a constant feature, such as a corner pixel of the digits, is only
        shifted); "global": one shift and one scale for all the numbers, mean 0 and standard
        deviation 1 over the training set, so that images stay images (a rarely inked pixel,
        scaled on its own, would reach +-20); false: the numbers as shipped. The test set gets
        the training set's shift and scale. None: the dataset's default (builtin_parameters).
    """
    given = dict(classes=classes, subsample=subsample, test_fraction=test_fraction, seed=seed)
    if standardize is not None:
        given["standardize"] = standardize
    args = builtin_arguments(name, given)
    X, target = _raw(name)
    groups = _class_groups(name, args["classes"])
    chosen = np.isin(target, [c for group in groups for c in group])
    X, target = X[chosen], target[chosen]
    index = np.empty(int(target.max()) + 1, dtype=np.int64)
    for k, group in enumerate(groups):
        index[list(group)] = k
    label = index[target]  # 0..len(groups)-1
    rng = np.random.default_rng(args["seed"])
    order = _stratified_order(label, rng)
    n_test = round(args["test_fraction"] * label.size)
    test, train = order[:n_test], np.sort(order[n_test:])
    if args["subsample"]:
        if args["subsample"] > train.size:
            raise DatasetError(f"subsample: {args['subsample']} is more than the {train.size} training samples "
                               f"of {name} with these classes and test_fraction")
        if args["subsample"] < len(groups):
            raise DatasetError(f"subsample: {args['subsample']} samples cannot hold all {len(groups)} classes")
        train = np.sort(train[_stratified_order(label[train], rng)[:args["subsample"]]])
    test = np.sort(test)
    X_train, X_test = X[train], X[test]
    if args["standardize"]:
        axis = None if args["standardize"] == "global" else 0
        mean, std = X_train.mean(axis=axis), np.atleast_1d(X_train.std(axis=axis))
        std[std == 0] = 1.0  # a constant feature stays 0 after the shift
        X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    binary = len(groups) == 2
    y_train, y_test = (np.where(label[part] == 1, 1.0, -1.0) if binary else label[part].astype(np.float64)
                       for part in (train, test))
    return Dataset(X_train, y_train, _title(name, args["classes"], groups), 2 if binary else len(groups),
                   X_test if n_test else None, y_test if n_test else None, image_shape(name))


def builtin_arguments(name: str, params: dict) -> dict:
    """``params`` checked and completed with the defaults; a DatasetError starts with the field."""
    if name not in BUILTIN:
        raise DatasetError(f"builtin: unknown dataset {name!r} (choose from {', '.join(BUILTIN)})")
    defaults = builtin_parameters(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise DatasetError(f"{unknown[0]}: unknown parameter of a builtin dataset (allowed: {', '.join(defaults)})")
    args = {**defaults, **params}
    _class_groups(name, args["classes"])
    if not isinstance(args["standardize"], bool) and args["standardize"] != "global":
        raise DatasetError(f'standardize: expected true (each feature), "global" (all numbers together) or false, '
                           f"got {args['standardize']!r}")
    for key in ("subsample", "seed"):
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
            raise DatasetError(f"{key}: expected a whole number >= 0, got {value!r}")
        args[key] = int(value)
    if args["seed"] >= 2**63:
        raise DatasetError("seed: must be a whole number from 0 to 2^63 - 1")
    fraction = args["test_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise DatasetError(f"test_fraction: expected a number from 0 to below 1 (0: no test set), got {fraction!r}")
    args["test_fraction"] = float(fraction)
    return args


def _class_groups(name: str, classes) -> list[tuple[int, ...]]:
    """The classes of ``classes`` as groups of the dataset's class numbers; two groups make a
    binary task (the first -1, the second +1)."""
    count = BUILTIN[name][3]
    if classes == "all":
        return [(k,) for k in range(count)]
    if classes == "odd_even":
        return [tuple(range(0, count, 2)), tuple(range(1, count, 2))]
    usage = ('classes: expected "all", "odd_even" or a list of class numbers (e.g. [0, 1]; '
             'an item may be a list of classes merged into one)')
    if not isinstance(classes, (list, tuple)) or len(classes) < 2:
        raise DatasetError(f"{usage}, got {classes!r}"[:300])
    groups, seen = [], set()
    for item in classes:
        group = tuple(item) if isinstance(item, (list, tuple)) else (item,)
        for c in group:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or c != int(c) or not 0 <= c < count:
                raise DatasetError(f"classes: {c!r} is not a class of {name} (its classes are 0..{count - 1})")
            if int(c) in seen:
                raise DatasetError(f"classes: class {int(c)} is listed twice")
            seen.add(int(c))
        if not group:
            raise DatasetError("classes: an empty group has no samples")
        groups.append(tuple(int(c) for c in group))
    return groups


def _title(name: str, classes, groups) -> str:
    if classes == "all":
        return name
    if classes == "odd_even":
        return f"{name} odd vs even"
    words = ["+".join(BUILTIN[name][4][c] for c in group) for group in groups]
    return f"{name} {' vs '.join(words)}"


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The data as scikit-learn ships them (float64 features, integer classes 0..C-1)."""
    import sklearn.datasets  # here: ~1 s of imports, paid only by a run that uses builtin data

    X, target = getattr(sklearn.datasets, BUILTIN[name][0])(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(target, dtype=np.int64)


def _stratified_order(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the samples in which every prefix holds each class in proportion to its
    share (up to one sample): shuffle, then sort by each sample's position within its class as a
    fraction of the class. A prefix of at least C samples holds every class."""
    perm = rng.permutation(label.size)
    position = np.empty(label.size)
    for c in np.unique(label):
        members = perm[label[perm] == c]
        position[members] = (np.arange(members.size) + 0.5) / members.size
    return perm[np.argsort(position[perm], kind="stable")]


def image_shape(name: str) -> tuple[int, int] | None:
    """(height, width) of a builtin dataset whose samples are images, else None."""
    return IMAGE_SHAPES.get(name)
