"""Datasets: X (n x d, float64) and labels y in {-1, +1} (THEORY.md, Setting), or, for C >= 3
classes, labels y in {0, ..., C-1} (THEORY.md, Multi-class); optionally a test set drawn from the
same distribution (X_test, y_test), which training never sees.

Seeded generators, CSV and NPZ loading and saving. Every check on the way in raises
DatasetError naming the row or field, so no numpy traceback reaches a user.
"""

from __future__ import annotations

import csv
import io
import math
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

# What a dataset may hold, checked before anything is allocated or read (README, Limits):
# X at most 10^7 numbers (n x d; 80 MB in float64), and no file or NPZ array that declares
# more than 256 MB. Ten million coordinates is far beyond what the window can draw or the
# trainer step quickly; a claimed size past these is a mistake or a crafted file.
MAX_DATASET_ELEMENTS = 10**7
MAX_FILE_BYTES = 256 << 20
# Labels 0..C-1 beyond this many classes are a mistake (a column of ids, not classes); the
# network's C outputs and the n (C - 1) margin pairs grow with it.
MAX_CLASSES = 1000


@dataclass(frozen=True)
class Dataset:
    """A validated classification dataset. ``X`` is (n, d) float64. ``classes`` 2 (binary):
    ``y`` (n,) of +-1, as in every run before multi-class; ``classes`` C >= 3: ``y`` (n,) of
    whole numbers 0..C-1 (stored as float64), each class present. ``X_test``, ``y_test``: an
    optional test set of the same columns and labels (None: none), never trained on."""

    X: np.ndarray
    y: np.ndarray
    name: str = "dataset"
    classes: int = 2
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    image_shape: tuple | None = None  # (height, width) when each row is an image (row-major), e.g. digits' 8 x 8

    def __post_init__(self):
        X, y = validate_arrays(self.X, self.y, self.classes)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if (self.X_test is None) != (self.y_test is None):
            raise DatasetError("a test set needs both X_test and y_test")
        if self.X_test is not None:
            X_test, y_test = validate_test_arrays(self.X_test, self.y_test, X.shape[1], self.classes)
            if X.size + X_test.size > MAX_DATASET_ELEMENTS:
                raise DatasetError(f"X and X_test: {_big(X.size + X_test.size)} numbers together are too many; "
                                   f"the limit is {MAX_DATASET_ELEMENTS:.0e} (README, Limits)")
            object.__setattr__(self, "X_test", X_test)
            object.__setattr__(self, "y_test", y_test)
        if self.image_shape is not None:
            shape = tuple(int(v) for v in self.image_shape)
            if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != X.shape[1]:
                raise DatasetError(f"image_shape: {shape} does not hold the {X.shape[1]} coordinates of a row")
            object.__setattr__(self, "image_shape", shape)

    @classmethod
    def from_labels(cls, X, y, name: str = "dataset", X_test=None, y_test=None, image_shape=None) -> "Dataset":
        """A dataset whose labels say what it is (decode_labels): -1/+1 or 0/1 make it binary,
        0..C-1 with C >= 3 make it C-class; the test labels are read the same way."""
        labels, classes = decode_labels(_real_array(y, "y", "not a list of numbers"))
        if y_test is not None:
            y_test, _ = decode_labels(_real_array(y_test, "y_test", "not a list of numbers"), classes=classes,
                                      what="y_test")
        return cls(X, labels, name, classes, X_test, y_test, image_shape)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def multiclass(self) -> bool:
        """True for C >= 3 classes (labels 0..C-1); a binary dataset is never treated as C = 2."""
        return self.classes > 2

    @property
    def n_test(self) -> int:
        return 0 if self.X_test is None else self.X_test.shape[0]

    def to_dict(self) -> dict:
        out = {"kind": "inline", "X": self.X.tolist(), "y": self.y.astype(int).tolist(), "name": self.name}
        if self.X_test is not None:
            out.update(X_test=self.X_test.tolist(), y_test=self.y_test.astype(int).tolist())
        return out


def validate_arrays(X, y, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness, labels and contradictions; return float64 X and y (+-1 when
    ``classes`` is 2, else 0..classes-1 with every class present)."""
    X, y = _real_array(X, "X", "not a rectangular table of numbers"), _real_array(y, "y", "not a list of numbers")
    if X.size > MAX_DATASET_ELEMENTS:
        raise DatasetError(_too_many(X.shape))
    if X.ndim != 2:
        raise DatasetError(f"X: expected a 2-D table (n x d), got {X.ndim} dimension(s)")
    if y.ndim != 1:
        raise DatasetError(f"y: expected one label per row, got an array of shape {y.shape}")
    if X.shape[0] == 0:
        raise DatasetError("the dataset is empty: it needs at least one point of each class")
    if X.shape[1] == 0:
        raise DatasetError("X: the points have no coordinates")
    if X.shape[0] != y.shape[0]:
        raise DatasetError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        raise DatasetError(f"row {bad_rows[0] + 1}: coordinates must be finite numbers (found NaN or inf)")
    _check_labels(y, classes)
    if classes == 2 and np.all(y == y[0]):
        raise DatasetError(f"only one class (label {int(y[0]):+d}) is present: both -1 and +1 are needed")
    if classes > 2:
        counts = np.bincount(y.astype(np.int64), minlength=classes)
        if not counts.all():
            raise DatasetError(f"class {int(np.flatnonzero(counts == 0)[0])} has no sample: each of the "
                               f"{classes} classes 0..{classes - 1} needs at least one")
    _check_contradictions(X, y)
    X = np.ascontiguousarray(X)
    return X, y


def validate_test_arrays(X_test, y_test, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The test set's checks: a table of ``dim`` finite columns and valid labels, one per row. A
    class may be missing from it, and a point may repeat a training point (both happen in samples)."""
    X = _real_array(X_test, "X_test", "not a rectangular table of numbers")
    y = _real_array(y_test, "y_test", "not a list of numbers")
    if X.size > MAX_DATASET_ELEMENTS:
        raise DatasetError(_too_many(X.shape, "X_test"))
    if X.ndim != 2 or X.shape[0] == 0:
        raise DatasetError("X_test: expected a 2-D table with at least one row (or no test set at all)")
    if X.shape[1] != dim:
        raise DatasetError(f"X_test has {X.shape[1]} columns but X has {dim}: the test points need the same coordinates")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DatasetError(f"X_test has {X.shape[0]} rows but y_test has {y.size} labels")
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        raise DatasetError(f"test row {bad_rows[0] + 1}: coordinates must be finite numbers (found NaN or inf)")
    _check_labels(y, classes, "test row")
    return np.ascontiguousarray(X), y


def _check_labels(y: np.ndarray, classes: int, row: str = "row") -> None:
    if int(classes) != classes or not 2 <= classes <= MAX_CLASSES:
        raise DatasetError(f"classes: must be a whole number from 2 to {MAX_CLASSES}, got {classes!r}")
    if classes == 2:
        bad = np.flatnonzero((y != 1) & (y != -1))
        if bad.size:
            raise DatasetError(f"{row} {bad[0] + 1}: label {y[bad[0]]:g} is not -1 or +1")
    else:
        bad = np.flatnonzero((y != np.round(y)) | (y < 0) | (y > classes - 1))
        if bad.size:
            raise DatasetError(f"{row} {bad[0] + 1}: label {y[bad[0]]:g} is not one of the classes 0..{classes - 1}")


def _check_contradictions(X: np.ndarray, y: np.ndarray) -> None:
    """The same point with both labels makes every margin <= 0: no network can separate it."""
    order = np.lexsort(X.T[::-1])
    Xs, ys = X[order], y[order]
    same = np.all(Xs[1:] == Xs[:-1], axis=1) & (ys[1:] != ys[:-1])
    if same.any():
        k = int(np.flatnonzero(same)[0])
        a, b = sorted((int(order[k]) + 1, int(order[k + 1]) + 1))
        raise DatasetError(f"rows {a} and {b}: the same point has both labels, so no classifier can separate the data")


def _real_array(values, name: str, what: str) -> np.ndarray:
    """``values`` as float64; complex numbers are refused (float64 would drop the imaginary part)."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise DatasetError(f"{name}: {what} ({exc})") from None
    if np.iscomplexobj(array):
        raise DatasetError(f"{name}: holds complex numbers; coordinates and labels must be real")
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{name}: {what} ({exc})") from None
    except OverflowError:  # an integer beyond float64 (JSON allows 10**400)
        raise DatasetError(f"{name}: a number is too large for a float64") from None


def _big(count: int) -> str:
    """A whole number for a message: as is up to 12 digits, else its power of ten (10**400 has no float)."""
    digits = len(str(abs(count)))
    return str(count) if digits <= 12 else f"{'-' if count < 0 else ''}about 10^{digits - 1}"


def _too_many(shape, name: str = "X") -> str:
    count = math.prod(int(v) for v in shape)
    return (f"{name}: {' x '.join(map(str, shape))} = {_big(count)} numbers is too large; "
            f"the limit is {MAX_DATASET_ELEMENTS:.0e} (README, Limits)")


def decode_labels(values: np.ndarray, first_row: int = 1, classes: int | None = None,
                  what: str = "label") -> tuple[np.ndarray, int]:
    """(labels, classes) from a file's or a config's label column. Without ``classes`` the
    column decides: -1/+1 is binary; 0/1 is binary with 0 -> -1; whole numbers 0..C-1 with
    C >= 3 are C classes (each must appear). With ``classes`` (a test set's labels, read as
    its training set's) the labels must fit it: -1/+1 or 0/1 for binary, 0..C-1 otherwise.
    Rows are counted from ``first_row`` in messages."""
    values = np.asarray(values, dtype=np.float64)
    row = "row" if what == "label" else f"{what} row"

    def bad(index, why):
        return DatasetError(f"{row} {int(index) + first_row}: label {values[index]:g} {why}")

    if values.size == 0:
        return values, 2 if classes is None else classes
    fraction = np.flatnonzero(values != np.round(values))
    if fraction.size:
        raise bad(fraction[0], "is not a class: labels are -1/+1, or whole numbers 0..C-1 for C classes")
    uniq = np.unique(values)
    if classes is None:
        if uniq[0] < 0:  # a -1 makes it a -1/+1 file
            negative = np.flatnonzero(values < -1)
            if negative.size:
                raise bad(negative[0], "is not a class: labels are -1/+1, or whole numbers 0..C-1 for C classes")
            wrong = np.flatnonzero((values != 1) & (values != -1))
            if wrong.size:
                raise bad(wrong[0], "is not -1 or +1 (the other labels are -1/+1)")
            return values, 2
        top = int(uniq[-1])
        if top > MAX_CLASSES - 1:
            raise bad(int(np.argmax(values)), f"is too large: at most {MAX_CLASSES} classes, 0..{MAX_CLASSES - 1}")
        if top <= 1:
            return (np.where(values == 0, -1.0, 1.0) if uniq[0] == 0 else values), 2
        missing = sorted(set(range(top + 1)) - set(uniq.astype(int).tolist()))
        if missing:
            found = ", ".join(f"{v:g}" for v in uniq[:10]) + (", ..." if uniq.size > 10 else "")
            raise DatasetError(f"labels 0..{top}: class {missing[0]} has no sample (the labels are {found}); "
                               "number the classes 0..C-1 without gaps, or use -1/+1 for two")
        return values, top + 1
    if classes == 2:
        if uniq[0] >= 0 and uniq[-1] <= 1:
            return np.where(values == 0, -1.0, 1.0), 2
        wrong = np.flatnonzero((values != 1) & (values != -1))
        if wrong.size:
            raise bad(wrong[0], "is not -1/+1 or 0/1, the labels of a two-class dataset")
        return values, 2
    wrong = np.flatnonzero((values < 0) | (values > classes - 1))
    if wrong.size:
        raise bad(wrong[0], f"is not one of the training set's classes 0..{classes - 1}")
    return values, classes


# --------------------------------------------------------------------------- generators

def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# A generator's test set: the same distribution (the same hyperplane, direction or spiral, drawn
# first from ``seed``), its samples from another stream, SeedSequence((seed, TEST_STREAM)).
TEST_STREAM = 1


def _with_test(train: tuple, draw, n_test: int, seed: int, name: str, classes: int = 2) -> Dataset:
    """The Dataset of the training draw ``train`` (X, y) and, when ``n_test`` > 0, ``n_test``
    test samples by ``draw(rng, n)`` from the test stream. The training arrays are exactly those
    of a generator without a test set: the test draw only follows them."""
    if int(n_test) != n_test or n_test < 0:
        raise DatasetError(f"n_test: must be a whole number >= 0, got {n_test!r}")
    X, y = train
    if not n_test:
        return Dataset(X, y, name, classes)
    X_test, y_test = draw(np.random.default_rng([seed, TEST_STREAM]), int(n_test))
    return Dataset(X, y, name, classes, X_test, y_test)


def _balanced_labels(n: int) -> np.ndarray:
    y = np.ones(n)
    y[n // 2:] = -1.0
    return y


def linearly_separable(n: int = 100, dim: int = 2, margin: float = 0.5, seed: int = 0, n_test: int = 0) -> Dataset:
    """Uniform points in [-1, 1]^d labelled by a random hyperplane through 0, with a gap of
    ``margin`` (distance from the plane) cleared of points. The gap makes the l2 SVM margin
    at least ``margin``. ``n_test``: test points from the same distribution (another seed)."""
    _positive(n, "n"), _positive(dim, "dim")
    if margin < 0:
        raise DatasetError("margin: must be >= 0")
    rng = _rng(seed)
    w = rng.normal(size=dim)
    w /= np.linalg.norm(w)

    def draw(rng, n):
        X = rng.uniform(-1, 1, size=(n, dim))
        y = _balanced_labels(n)
        signed = X @ w
        # keep each point's component along the plane, move it to its class's side past the gap
        return X - np.outer(signed, w) + np.outer(y * (margin + np.abs(signed)), w), y

    return _with_test(draw(rng, n), draw, n_test, seed, "linearly separable")


def gaussian_blobs(n: int = 100, dim: int = 2, separation: float = 3.0, noise: float = 1.0, seed: int = 0,
                   n_test: int = 0) -> Dataset:
    """Two Gaussian clouds of std ``noise`` centred at +-separation/2 along a random direction."""
    _positive(n, "n"), _positive(dim, "dim")
    rng = _rng(seed)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)

    def draw(rng, n):
        y = _balanced_labels(n)
        return np.outer(y * separation / 2, direction) + noise * rng.normal(size=(n, dim)), y

    return _with_test(draw(rng, n), draw, n_test, seed, "two blobs")


_XOR_CORNERS = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)


def xor(n: int = 100, noise: float = 0.15, seed: int = 0, n_test: int = 0) -> Dataset:
    """Four clusters at (+-1, +-1); label = sign(x1 * x2). Not linearly separable."""
    _positive(n, "n")

    def draw(rng, n):
        centers = rng.integers(0, 4, size=n)
        return _XOR_CORNERS[centers] + noise * rng.normal(size=(n, 2)), np.where(centers < 2, 1.0, -1.0)

    X, y = draw(_rng(seed), n)
    y[0], X[0] = 1.0, _XOR_CORNERS[0]  # both classes in the training set, whatever the draw
    y[1], X[1] = -1.0, _XOR_CORNERS[2]
    return _with_test((X, y), draw, n_test, seed, "XOR")


def circles(n: int = 100, factor: float = 0.5, noise: float = 0.05, seed: int = 0, n_test: int = 0) -> Dataset:
    """Two concentric circles: the inner one (radius ``factor``) is +1, the outer one -1."""
    _positive(n, "n")
    if not 0 < factor < 1:
        raise DatasetError("factor: the inner radius must lie strictly between 0 and 1")

    def draw(rng, n):
        y = _balanced_labels(n)
        angle = rng.uniform(0, 2 * math.pi, size=n)
        radius = np.where(y > 0, factor, 1.0)
        return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]) + noise * rng.normal(size=(n, 2)), y

    return _with_test(draw(_rng(seed), n), draw, n_test, seed, "circles")


def moons(n: int = 100, noise: float = 0.1, seed: int = 0, n_test: int = 0) -> Dataset:
    """Two interleaving half circles (as scikit-learn's make_moons), centred at the origin."""
    _positive(n, "n")

    def draw(rng, n):
        y = _balanced_labels(n)
        t = rng.uniform(0, math.pi, size=n)
        upper = np.column_stack([np.cos(t), np.sin(t)])
        lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
        X = np.where((y > 0)[:, None], upper, lower) - np.array([0.5, 0.25])
        return X + noise * rng.normal(size=(n, 2)), y

    return _with_test(draw(_rng(seed), n), draw, n_test, seed, "two moons")


def spirals(n: int = 100, turns: float = 1.5, noise: float = 0.05, seed: int = 0, n_test: int = 0) -> Dataset:
    """Two interleaved Archimedean spirals of ``turns`` turns."""
    _positive(n, "n")

    def draw(rng, n):
        y = _balanced_labels(n)
        t = np.sqrt(rng.uniform(0.02, 1, size=n)) * turns * 2 * math.pi
        r = t / (turns * 2 * math.pi)
        phase = np.where(y > 0, 0.0, math.pi)
        return np.column_stack([r * np.cos(t + phase), r * np.sin(t + phase)]) + noise * rng.normal(size=(n, 2)), y

    return _with_test(draw(_rng(seed), n), draw, n_test, seed, "two spirals")


def nearly_orthogonal(n: int = 20, dim: int = 500, signal: float = 0.0, seed: int = 0, n_test: int = 0) -> Dataset:
    """n Gaussian points in d >> n dimensions (Kou, Chen and Gu 2023): x_i ~ N(0, I/d) so that
    ||x_i|| ~ 1 and |<x_i, x_j>| ~ 1/sqrt(d). Labels are random signs; ``signal`` adds
    y_i * signal * e_1 (0 gives pure noise data, which is still separable when d >= n, and on
    which no test accuracy beats chance)."""
    _positive(n, "n"), _positive(dim, "dim")
    if dim < n:
        raise DatasetError(f"dim: nearly orthogonal data need dim >= n (got dim {dim} < n {n})")

    def draw(rng, n):
        y = _balanced_labels(n)
        rng.shuffle(y)
        X = rng.normal(size=(n, dim)) / math.sqrt(dim)
        X[:, 0] += signal * y
        return X, y

    return _with_test(draw(_rng(seed), n), draw, n_test, seed, "nearly orthogonal")


def _class_count(classes: int) -> int:
    if int(classes) != classes or not 3 <= classes <= MAX_GENERATED_CLASSES:
        raise DatasetError(f"classes: a multi-class generator makes 3 to {MAX_GENERATED_CLASSES} classes, got {classes!r} "
                           "(for two, use the two-class generator)")
    return int(classes)


MAX_GENERATED_CLASSES = 20


def _cyclic_labels(n: int, classes: int) -> np.ndarray:
    """0, 1, ..., C-1, 0, 1, ...: balanced to one sample, every class present once n >= C."""
    return (np.arange(n) % classes).astype(np.float64)


def class_blobs(n: int = 150, classes: int = 3, separation: float = 3.0, noise: float = 0.7, seed: int = 0,
                n_test: int = 0) -> Dataset:
    """C Gaussian clouds of std ``noise`` in 2-D, labels 0..C-1, their centres evenly spaced on a
    circle (at a random rotation) with neighbouring centres ``separation`` apart."""
    _positive(n, "n")
    classes = _class_count(classes)
    if n < classes:
        raise DatasetError(f"n: {n} points cannot hold {classes} classes")
    rng = _rng(seed)
    angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(classes) / classes
    radius = separation / (2 * math.sin(math.pi / classes))
    centers = radius * np.column_stack([np.cos(angles), np.sin(angles)])

    def draw(rng, n):
        y = _cyclic_labels(n, classes)
        return centers[y.astype(int)] + noise * rng.normal(size=(n, 2)), y

    return _with_test(draw(rng, n), draw, n_test, seed, f"{classes} blobs", classes)


def class_spirals(n: int = 150, classes: int = 3, turns: float = 1.0, noise: float = 0.05, seed: int = 0,
                  n_test: int = 0) -> Dataset:
    """C interleaved Archimedean spirals of ``turns`` turns in 2-D, arm k (label k) turned by
    2 pi k / C."""
    _positive(n, "n")
    classes = _class_count(classes)
    if n < classes:
        raise DatasetError(f"n: {n} points cannot hold {classes} classes")

    def draw(rng, n):
        y = _cyclic_labels(n, classes)
        t = np.sqrt(rng.uniform(0.02, 1, size=n)) * turns * 2 * math.pi
        r = t / (turns * 2 * math.pi)
        phase = 2 * math.pi * y / classes
        return np.column_stack([r * np.cos(t + phase), r * np.sin(t + phase)]) + noise * rng.normal(size=(n, 2)), y

    return _with_test(draw(_rng(seed), n), draw, n_test, seed, f"{classes} spirals", classes)


def _positive(value: int, name: str) -> None:
    if int(value) != value or value < 1:
        raise DatasetError(f"{name}: must be a whole number >= 1, got {value!r}")
    if name == "n" and value < 2:
        raise DatasetError("n: at least two points are needed (one of each class)")


GENERATORS = {
    "linearly_separable": linearly_separable,
    "blobs": gaussian_blobs,
    "xor": xor,
    "circles": circles,
    "moons": moons,
    "spirals": spirals,
    "nearly_orthogonal": nearly_orthogonal,
    "class_blobs": class_blobs,  # labels 0..C-1 from here on
    "class_spirals": class_spirals,
}
MULTICLASS_GENERATORS = ("class_blobs", "class_spirals")


def generate(kind: str, **params) -> Dataset:
    """Run generator ``kind`` with ``params``; unknown kinds and parameters are DatasetErrors."""
    if kind not in GENERATORS:
        raise DatasetError(f"generator: unknown kind {kind!r} (choose from {', '.join(GENERATORS)})")
    return GENERATORS[kind](**generator_arguments(kind, params))


def generator_arguments(kind: str, params: dict) -> dict:
    """``params`` checked against generator ``kind``'s signature before it runs: whole numbers
    where the default is one (n, dim, seed; a seed >= 0), finite numbers elsewhere, and at most
    MAX_DATASET_ELEMENTS coordinates. A DatasetError's message starts with the parameter's name."""
    defaults = generator_parameters(kind)
    checked = {}
    for key, value in params.items():
        if key not in defaults:
            raise DatasetError(f"{key}: unknown parameter of generator {kind} (allowed: {', '.join(defaults)})")
        whole = isinstance(defaults[key], int)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (whole and isinstance(value, float) and not value.is_integer())):
            shown = {type(None): "null", list: "a list", dict: "an object"}.get(type(value), repr(value))
            raise DatasetError(f"{key}: expected {'a whole number' if whole else 'a number'}, got {shown}")
        if whole:
            value = int(value)
            if key == "classes":
                _class_count(value)
            if key == "n_test" and value < 0:
                raise DatasetError(f"n_test: must be a whole number >= 0 (0: no test set), got {_big(value)}")
            if key == "seed" and not 0 <= value < 2**63:
                raise DatasetError(f"seed: must be a whole number from 0 to 2^63 - 1, got {_big(value)}")
        else:
            try:
                value = float(value)
            except OverflowError:
                raise DatasetError(f"{key}: the number is too large for a float64") from None
            if not math.isfinite(value):
                raise DatasetError(f"{key}: must be a finite number, got {value!r}")
        checked[key] = value
    n, dim = checked.get("n", defaults["n"]), checked.get("dim", defaults.get("dim", 2))
    n += checked.get("n_test", 0)  # the test set counts towards the limit
    if n * dim > MAX_DATASET_ELEMENTS:
        raise DatasetError(f"{'dim' if dim > n else 'n'}: {_big(n)} points of {_big(dim)} coordinates are "
                           f"{_big(n * dim)} numbers; the limit is {MAX_DATASET_ELEMENTS:.0e} (README, Limits)")
    return checked


def generator_parameters(kind: str) -> dict:
    """The default parameters of a generator, for editors."""
    import inspect

    return {k: p.default for k, p in inspect.signature(GENERATORS[kind]).parameters.items()}


# --------------------------------------------------------------------------- files

def load_csv(path: str | Path) -> Dataset:
    """Read columns x1..xd,label (a header row is optional); labels -1/+1, 0/1 or 0..C-1."""
    path = _regular_file(path)
    return parse_csv(_csv_text(path), name=path.stem, source=path.name)


def _csv_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path.name}: not a text (CSV) file") from None
    except OSError as exc:
        raise DatasetError(f"{path.name}: cannot be read ({exc.strerror})") from None


def parse_csv(text: str, name: str = "csv", source: str | None = None) -> Dataset:
    """A dataset from CSV text; errors start with ``source`` (the file's name), then the row."""
    source = source or name

    def build(values, offset):
        try:
            return Dataset.from_labels(values[:, :-1], values[:, -1], name)
        except DatasetError as exc:
            raise DatasetError(f"{source}: {_shift_rows(str(exc), offset - 1)}") from None

    return _with_separator_hint(text, lambda: build(*_csv_table(text, source)))


def _with_separator_hint(text: str, parse):
    """``parse()``; a DatasetError on text whose first line holds semicolons or tabs says so."""
    try:
        return parse()
    except DatasetError as exc:
        first = next((line for line in text.splitlines() if line.strip()), "")
        for sep, word in ((";", "semicolons"), ("\t", "tabs")):
            if sep in first:
                raise DatasetError(f"{exc} (the columns seem to be separated by {word}: "
                                   "separate them with commas)") from None
        raise


def _csv_table(text: str, source: str) -> tuple[np.ndarray, int]:
    """The numbers of CSV text, (rows, columns), and the file row of the first data row."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise DatasetError(f"{source}: the file is empty")
    header = None
    first = rows[0]
    if not all(_is_number(c) for c in first):
        header = [c.strip() for c in first]
        rows = rows[1:]
        if len(header) < 2:
            raise DatasetError(f"{source}: header {','.join(header)!r} must name at least one coordinate and a label")
        if header[-1].lower() not in ("label", "y", "class", "target"):
            raise DatasetError(f"{source}: header: the last column must be the label (named label), got {header[-1]!r}")
    if not rows:
        raise DatasetError(f"{source}: the file has a header but no data rows")
    width = len(header) if header else len(rows[0])
    if width < 2:
        raise DatasetError(f"{source}: row 1 has one column; expected x1..xd,label")
    if len(rows) * (width - 1) > MAX_DATASET_ELEMENTS:
        raise DatasetError(f"{source}: {_too_many((len(rows), width - 1))}")
    offset = 2 if header else 1
    values = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        if len(row) != width:
            raise DatasetError(f"{source}: row {i + offset} has {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise DatasetError(f"{source}: row {i + offset}, column {j + 1}: {cell.strip()!r} is not a number") from None
    return values, offset


def _shift_rows(message: str, by: int) -> str:
    """Dataset errors count data rows from 1; in a file with a header, rows start at 2."""
    import re

    return re.sub(r"\brow(s?) (\d+)(?: and (\d+))?", lambda m: "row" + m.group(1) + " " + str(int(m.group(2)) + by)
                  + (f" and {int(m.group(3)) + by}" if m.group(3) else ""), message)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def save_csv(dataset: Dataset, path: str | Path) -> None:
    header = [f"x{j + 1}" for j in range(dataset.dim)] + ["label"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row, label in zip(dataset.X, dataset.y):
            writer.writerow([repr(float(v)) for v in row] + [int(label)])


def load_npz(path: str | Path) -> Dataset:
    """Read arrays ``X`` and ``y`` (labels -1/+1, 0/1 or 0..C-1), and optionally a test set
    ``X_test`` and ``y_test``, from an .npz file. Each array's header (shape and dtype) and
    the archive's declared sizes are checked before anything is read: numbers only (no pickled
    objects, no complex numbers), at most MAX_DATASET_ELEMENTS in X and MAX_FILE_BYTES per array,
    so a header that claims (10^6, 10^6) or a zip bomb is refused without inflating it."""
    path = _regular_file(path)
    where = path.name
    arrays = _npz_arrays(path)
    X, y = arrays["X"], arrays["y"]
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{where}: a test set needs both X_test and y_test (found only "
                           f"{'X_test' if 'X_test' in arrays else 'y_test'})")
    try:
        if y.ndim == 1 and y.size and X.ndim == 2 and X.shape[0] == y.size:
            y_test = arrays.get("y_test")
            if y_test is not None and y_test.ndim != 1:
                raise DatasetError(f"y_test: expected one label per row, got an array of shape {y_test.shape}")
            return Dataset.from_labels(X, y, path.stem, arrays.get("X_test"), y_test)
        return Dataset(X, y, path.stem)  # its message names the shapes
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def _npz_arrays(path: Path) -> dict:
    """X and y of an .npz (a DatasetError when either is missing), and X_test, y_test if there."""
    where = path.name
    try:
        if not zipfile.is_zipfile(path):
            raise DatasetError(f"{where}: not an .npz file: it is {_what_it_is(path)} (an .npz is a zip "
                               "archive of .npy arrays, as numpy.savez writes)")
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [k for k in ("X", "y") if k not in members]
            if missing:
                raise DatasetError(f"{where}: missing array {missing[0]!r} (found {', '.join(members) or 'none'})")
            return {key: _read_npy(archive, members[key], key, where)
                    for key in ("X", "y", "X_test", "y_test") if key in members}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
        raise DatasetError(f"{where}: not a readable .npz file ({exc})") from None


def _read_npy(archive: zipfile.ZipFile, member: str, key: str, where: str) -> np.ndarray:
    """One array of an .npz, read only after its declared sizes and header pass the limits."""
    info = archive.getinfo(member)
    if info.file_size > MAX_FILE_BYTES:
        raise DatasetError(f"{where}: {key} would inflate to {info.file_size / 2**20:,.0f} MB; the limit is "
                           f"{MAX_FILE_BYTES >> 20} MB (README, Limits)")
    fmt = np.lib.format
    with archive.open(info) as fh:
        try:
            version = fmt.read_magic(fh)
            shape, fortran, dtype = (fmt.read_array_header_1_0(fh) if version == (1, 0)
                                     else fmt.read_array_header_2_0(fh))
        except ValueError as exc:
            raise DatasetError(f"{where}: {key} is not a .npy array ({exc})") from None
        if dtype.hasobject:
            raise DatasetError(f"{where}: {key} holds Python objects (pickled data), which are never loaded; "
                               "save plain numbers")
        if dtype.kind == "c":
            raise DatasetError(f"{where}: {key} holds complex numbers; coordinates and labels must be real")
        if dtype.kind not in "biuf":
            raise DatasetError(f"{where}: {key} holds {dtype} values, not numbers")
        count = math.prod(shape)
        if count > MAX_DATASET_ELEMENTS:
            raise DatasetError(f"{where}: {_too_many(shape) if key == 'X' else f'y has {count:.3g} labels, too many'}")
        if count * dtype.itemsize > info.file_size:
            raise DatasetError(f"{where}: {key} claims shape {shape} but holds only {info.file_size} bytes: "
                               "the file is truncated or damaged")
        array = np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _what_it_is(path: Path) -> str:
    """What a file that is not a zip archive looks like, for the message."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file"
    if not head:
        return "empty"
    if head[:1] == b"\x80":
        return "a Python pickle (never loaded)"
    return "not a zip archive"


def _regular_file(path: str | Path) -> Path:
    """``path`` if it is a regular file of at most MAX_FILE_BYTES: a FIFO or a device would block
    or never end, a folder cannot be read."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except ValueError:  # a NUL byte in the name
        raise DatasetError(f"{path!r}: not a valid file name") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise DatasetError(f"{path}: {kind}; a dataset is a .csv or .npz file")
    if info.st_size > MAX_FILE_BYTES:
        raise DatasetError(f"{path.name}: {info.st_size / 2**20:,.0f} MB is too large; the limit is "
                           f"{MAX_FILE_BYTES >> 20} MB (README, Limits)")
    return path


def save_npz(dataset: Dataset, path: str | Path) -> None:
    """X and y, and X_test and y_test when the dataset has a test set (CSV keeps only X and y)."""
    test = {} if dataset.X_test is None else {"X_test": dataset.X_test, "y_test": dataset.y_test}
    np.savez(path, X=dataset.X, y=dataset.y, **test)


def load(path: str | Path, test_path: str | Path | None = None) -> Dataset:
    """Load by extension: .csv or .npz. ``test_path``: a second file (.csv or .npz, its X and y)
    holding the test set, its labels read as the training file's."""
    dataset = _load_one(path)
    if test_path is None:
        return dataset
    test_path = Path(test_path)
    if dataset.X_test is not None:
        raise DatasetError(f"{Path(path).name} holds its own test set (X_test, y_test): drop the test file "
                           f"{test_path.name}, or the arrays")
    if test_path.suffix.lower() == ".npz":
        arrays = _npz_arrays(_regular_file(test_path))
        X_test, labels, offset = arrays["X"], arrays["y"], 1
    elif test_path.suffix.lower() in (".csv", ".txt"):
        text = _csv_text(_regular_file(test_path))
        values, offset = _with_separator_hint(text, lambda: _csv_table(text, test_path.name))
        X_test, labels = values[:, :-1], values[:, -1]
    else:
        raise DatasetError(f"{test_path}: unknown test set format {test_path.suffix!r} (use .csv or .npz)")
    try:
        if labels.ndim != 1:
            raise DatasetError(f"y: expected one label per row, got an array of shape {labels.shape}")
        y_test, _ = decode_labels(labels, classes=dataset.classes)  # rows from 1, shifted below
        return Dataset(dataset.X, dataset.y, dataset.name, dataset.classes, X_test, y_test)
    except DatasetError as exc:
        raise DatasetError(f"{test_path.name} (the test set): {_shift_rows(str(exc), offset - 1)}") from None


def _load_one(path: str | Path) -> Dataset:
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix in (".csv", ".txt"):
        return load_csv(path)
    raise DatasetError(f"{path}: unknown dataset format {suffix!r} (use .csv or .npz)")


def save(dataset: Dataset, path: str | Path) -> None:
    if Path(path).suffix.lower() == ".npz":
        save_npz(dataset, path)
    else:
        save_csv(dataset, path)
