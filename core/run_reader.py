"""Reading a run file (schema in docs/run-format.md), with the checks that make it safe to open a
file someone sent you.

A run file is self-contained: a reader refuses, before reading any data, a file in which an
object it touches is an external or soft link, a virtual dataset or a dataset with external raw
storage (h5py follows all of them silently: a crafted file could read /etc/passwd or block on a
FIFO). It checks every shape, type and claimed size against the rest of the file before reading,
and reads lazily: `info` reads the attributes and the last record, not the whole history.

Opening is bounded: a plain open that fails is retried in SWMR mode only when a writer holds
the file (HDF5 says "already open for write" or cannot lock it), and then with few metadata
read attempts, because HDF5's SWMR retry loop on a damaged file sleeps for minutes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import re
import stat
from pathlib import Path

import h5py
import numpy as np

from .architecture import parameter_count
from .config import FAMILY_SETTINGS, MAX_FAMILY, FamilyConfig, RunConfig
from .datasets import MAX_CLASSES, Dataset
from .errors import ConfigError, DatasetError, RunFileError
from .metrics import (ARRAY_METRICS, RATE_SCALARS, SCALAR_METRICS, SNAPSHOT_METRICS, SUPPORT_DECADES, TEST_ARRAYS, TEST_QUANTILES,
                      TEST_SCALARS)
from .output_path import FORMAT

FORMAT_VERSION = 1
INT_METRICS = ("step", "support_vectors")
GROUPS = ("dataset", "metrics", "snapshots")
# the array metrics' column axes (dimension scales in metrics/, docs/run-format.md): metric -> axis
COLUMN_AXES = {"sample_margins": "sample", "layer_norms": "layer", "stable_rank": "layer",
               "ensemble_share": "member", "support_counts": "decade", "test_margin_quantiles": "quantile"}
OPTIONAL_GROUPS = ("events",)  # files written before runs recorded events lack it

# SWMR read re-reads metadata whose checksum fails (a writer may be mid-flush), sleeping longer
# each time: HDF5's default of 100 attempts takes minutes on a damaged file; 16 take milliseconds
SWMR_READ_ATTEMPTS = 16
MAX_MEMBERS = 256  # objects in one of the groups a reader walks; a run file has about 30
TEXT_LIMIT = 1 << 20  # bytes of a text attribute (status, reason, names)
JSON_LIMIT = 1 << 30  # bytes of the config (an inline dataset can make it large)
# a compressed dataset may claim more bytes than it stores, but not more than the best ratio
# of the filters HDF5 ships (gzip: about 1,030 to 1)
COMPRESSION_RATIO_LIMIT = 1100
CHUNK_SLACK_LIMIT = 16 << 20
NUMERIC_KINDS = "iuf"


def _where(path: Path, text: str) -> RunFileError:
    return RunFileError(f"{path}: {text}")


# ------------------------------------------------------------------------------------ opening
@functools.cache
def _read_attempts_setter():
    """HDF5's H5Pset_metadata_read_attempts from the library h5py uses (h5py does not wrap it),
    or None where it cannot be found; then SWMR opens are not bounded (docs/run-format.md)."""
    wanted = tuple(h5py.version.hdf5_version_tuple[:3])
    for candidate in _hdf5_libraries():
        try:
            lib = ctypes.CDLL(candidate)
            setter = lib.H5Pset_metadata_read_attempts
            version = [ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()]
            if lib.H5get_libversion(*(ctypes.byref(v) for v in version)) < 0:
                continue
        except (OSError, AttributeError):
            continue
        if tuple(v.value for v in version) != wanted:
            continue
        setter.argtypes = [ctypes.c_int64, ctypes.c_uint]
        setter.restype = ctypes.c_int
        probe = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        if setter(probe.id, SWMR_READ_ATTEMPTS) >= 0:  # the id is valid here: h5py's own copy
            return setter
    return None


def _hdf5_libraries() -> list[str]:
    """Paths of the HDF5 libraries loaded into this process (Linux), else those h5py ships."""
    found = []
    maps = Path("/proc/self/maps")
    if maps.exists():
        for line in maps.read_text(errors="replace").splitlines():
            name = line.rsplit(" ", 1)[-1]
            base = os.path.basename(name)
            if base.startswith("libhdf5") and not base.startswith("libhdf5_hl") and ".so" in base:
                found.append(name)
    here = Path(h5py.__file__).resolve().parent
    for pattern in ("../h5py.libs/libhdf5-*.so*", ".dylibs/libhdf5.*dylib", "hdf5.dll"):
        found += [str(p) for p in here.glob(pattern)]
    return list(dict.fromkeys(found))


def _open_swmr(path: Path) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)  # as h5py.File does
    setter = _read_attempts_setter()
    if setter is not None:
        setter(fapl.id, SWMR_READ_ATTEMPTS)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _damaged(path: Path, exc: Exception) -> RunFileError:
    text = str(exc)
    truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if truncated:
        return _where(path, f"the file is truncated: it has {int(truncated[1]):,} of its {int(truncated[2]):,} bytes "
                            "(a partial copy or download?)")
    return _where(path, f"the file is damaged and cannot be opened ({text})")


def open_run_file(path: Path) -> tuple[h5py.File, bool]:
    """Open read-only; returns (file, swmr). A file whose SWMR writer is alive or was killed
    needs SWMR read; anything else that fails a plain open gets its message at once."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise _where(path, "no such file") from None
    except OSError as exc:
        raise _where(path, f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise _where(path, "is a folder, not a run file")
    if not stat.S_ISREG(mode):  # a FIFO would block the first read; a device is never a run
        raise _where(path, "is not a regular file (a pipe, socket or device); a run is an .h5 file")
    if not h5py.is_hdf5(path):
        raise _where(path, "not an HDF5 file (a Margin Explorer run is an .h5 file written by this app)")
    try:
        return h5py.File(path, "r"), False
    except (OSError, RuntimeError) as first:
        plain_error = first
    locked = "unable to lock file" in str(plain_error)
    if not locked and "already open for" not in str(plain_error):
        raise _damaged(path, plain_error)
    try:
        return _open_swmr(path), True
    except (OSError, RuntimeError):
        if locked:  # a writer is creating it, before SWMR starts
            raise _where(path, "another program is creating this file right now; open it again in a moment") from None
        raise _damaged(path, plain_error) from None


# ------------------------------------------------------------------------------------ checks
def _link_check(path: Path, group: h5py.Group, name: str, where: str) -> None:
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.HardLink):
        return
    if isinstance(link, h5py.ExternalLink):
        raise _where(path, f"{where} is stored outside the file (a link to {link.filename!r}): refused; "
                           "a run file holds its own data")
    if isinstance(link, h5py.SoftLink):
        raise _where(path, f"{where} is a soft link to {link.path!r}: refused; a run file holds its own data")
    raise _where(path, f"{where} is not an object stored in the file: refused")


def _storage_check(path: Path, ds: h5py.Dataset, where: str) -> None:
    if ds.is_virtual:
        raise _where(path, f"{where} is stored outside the file (a virtual dataset): refused; "
                           "a run file holds its own data")
    if ds.external:
        raise _where(path, f"{where} is stored outside the file (external storage in "
                           f"{ds.external[0][0]!r}): refused; a run file holds its own data")


def check_self_contained(path: Path, f: h5py.File) -> None:
    """Refuse links, virtual datasets and external storage in every group a reader walks."""
    for group_name in GROUPS + OPTIONAL_GROUPS:
        if group_name not in f.keys():  # keys() lists names without following links
            if group_name in OPTIONAL_GROUPS:
                continue
            raise _where(path, f"the run file has no '{group_name}' group; it is incomplete")
        _link_check(path, f, group_name, group_name)
        group = f[group_name]
        if not isinstance(group, h5py.Group):
            raise _where(path, f"'{group_name}' is a dataset, not a group: the file is damaged")
        if len(group) > MAX_MEMBERS:
            raise _where(path, f"'{group_name}' holds {len(group):,} objects (a run file has a few dozen): refused")
        for name in group.keys():
            where = f"{group_name}/{name}"
            _link_check(path, group, name, where)
            obj = group[name]
            if isinstance(obj, h5py.Dataset):
                _storage_check(path, obj, where)


def _claim_check(path: Path, ds: h5py.Dataset, where: str, rows: int | None = None) -> None:
    """The bytes a read of ``rows`` rows would return must be stored in the file: HDF5 returns
    unwritten chunks as zeros, so a 1 MB file can claim terabytes."""
    shape = ds.shape or ()
    count = int(np.prod([rows if rows is not None else shape[0], *shape[1:]], dtype=object)) if shape else 1
    claimed = count * ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    # a live writer's last chunk may be resized before it is stored: allow two chunks of slack
    chunk = int(np.prod(ds.chunks, dtype=object)) * ds.dtype.itemsize if ds.chunks else 0
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    allowed = stored * (COMPRESSION_RATIO_LIMIT if filtered else 1) + min(2 * chunk, CHUNK_SLACK_LIMIT)
    if claimed > allowed and claimed > 4096:
        raise _where(path, f"{where} claims {claimed:,} bytes of data ({' x '.join(map(str, shape))}) but the file "
                           f"stores {stored:,}: refused (a damaged or crafted file)")


def _dataset(path: Path, group: h5py.Group, name: str, where: str, ndim: int | tuple, kinds: str = NUMERIC_KINDS) -> h5py.Dataset:
    if name not in group.keys():
        raise _where(path, f"{where} is missing; the file is incomplete")
    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise _where(path, f"{where} is a group, not a dataset: the file is damaged")
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if obj.ndim not in ndims:
        what = {0: "a single value", 1: "a series", 2: "a table (records x columns)"}
        raise _where(path, f"{where} has {obj.ndim} dimensions {obj.shape}; expected "
                           f"{' or '.join(what.get(n, f'{n} dimensions') for n in ndims)}")
    if obj.dtype.kind not in kinds:
        wanted = "whole numbers" if kinds == "iu" else "numbers"
        raise _where(path, f"{where} holds {_dtype_words(obj.dtype)}, not {wanted}: the file is damaged")
    return obj


def _dtype_words(dtype) -> str:
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SU":
        return "text"
    return {"f": "floating-point numbers", "c": "complex numbers", "b": "booleans", "V": "records",
            "O": "objects"}.get(dtype.kind, str(dtype))


def _attribute(path: Path, attrs, name: str, where: str, limit: int):
    """The raw value of an attribute after its size has been checked (None if absent)."""
    if name not in attrs:
        return None
    aid = attrs.get_id(name)
    if aid.get_storage_size() > limit:
        raise _where(path, f"the '{where}' attribute holds {aid.get_storage_size():,} bytes: refused")
    return attrs[name]


def _text(path: Path, attrs, name: str, where: str | None = None, default: str = "", limit: int = TEXT_LIMIT) -> str:
    where = where or name
    value = _attribute(path, attrs, name, where, limit)
    if value is None:
        return default
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise _where(path, f"the '{where}' attribute should be text, got {_value_words(value)}: the file is damaged")
    return value


def _integer(path: Path, attrs, name: str, default: int | None = None) -> int:
    value = _attribute(path, attrs, name, name, 64)
    if value is None:
        if default is None:
            raise _where(path, f"the '{name}' attribute is missing; the file is incomplete")
        return default
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _where(path, f"the '{name}' attribute should be a whole number, got {_value_words(value)}: "
                           "the file is damaged")
    return int(value)


def _float(path: Path, attrs, name: str) -> float | None:
    """A real-number attribute; None when it is absent (an older file) or NaN (the run has none)."""
    value = _attribute(path, attrs, name, name, 64)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (float, int, np.floating, np.integer)):
        raise _where(path, f"the '{name}' attribute should be a number, got {_value_words(value)}: the file is damaged")
    value = float(value)
    if math.isinf(value):
        raise _where(path, f"the '{name}' attribute is {value}; it should be finite or NaN: the file is damaged")
    return None if math.isnan(value) else value


def _value_words(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (float, np.floating)):
        return f"the number {float(value)!r}"
    if isinstance(value, (int, np.integer)):
        return f"the number {int(value)}"
    return type(value).__name__


def _json(path: Path, attrs, name: str, limit: int = JSON_LIMIT):
    text = _text(path, attrs, name, limit=limit)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _where(path, f"the '{name}' attribute is not valid JSON ({str(exc)[:200]})") from None


def _check_family(family) -> None:
    """The keys that regrouping a family's members reads (docs/run-format.md, Families); a
    ValueError says which is wrong."""
    if not isinstance(family, dict):
        raise ValueError("not a JSON object")
    whole = {key: family.get(key) for key in ("index", "size")}
    for key, value in whole.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"'{key}' should be a whole number, got {value!r}"[:200])
    if not (0 <= whole["index"] < whole["size"] <= MAX_FAMILY):
        raise ValueError(f"index {whole['index']} of a family of {whole['size']}")
    if not isinstance(family.get("id"), str):
        raise ValueError("'id' should be text")
    if family.get("vary") not in FAMILY_SETTINGS:
        raise ValueError(f"'vary' should be one of {', '.join(FAMILY_SETTINGS)}, got {family.get('vary')!r}"[:200])
    value = family.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'value' should be a number, got {value!r}"[:200])
    FamilyConfig(family["vary"], [value]).validate("family")  # a seed is whole, a step size > 0


@contextlib.contextmanager
def _reading(path: Path):
    """h5py's errors while reading data that passed the checks (a bad checksum, a missing
    filter) become one message."""
    try:
        yield
    except RunFileError:
        raise
    except (KeyError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise _where(path, f"the run file is incomplete or damaged ({str(exc)[:300]})") from None


# ------------------------------------------------------------------------------------ reader
def _check_state_values(path: Path, state: dict) -> None:
    """Values an optimizer state can hold (core/optimizers.py): finite moments, Adam's step count
    from 0 to 2^53, a PCG64 generator's flags (has_uint32 0 or 1, a 32-bit uinteger), and the
    loss_based rule's alpha above 0 and verdict 0 or 1."""
    for name in ("velocity", "m", "v"):
        if name in state and not np.all(np.isfinite(state[name])):
            raise _where(path, f"snapshots/optimizer_state/{name} holds values that are not finite: the file is damaged")
    if "t" in state and not 0 <= int(state["t"]) <= 2 ** 53:
        raise _where(path, f"snapshots/optimizer_state/t is {int(state['t'])}; Adam's step count is from 0 to 2^53: "
                           "the file is damaged")
    if "step_alpha" in state and not (np.isfinite(state["step_alpha"]) and state["step_alpha"] > 0):
        raise _where(path, f"snapshots/optimizer_state/step_alpha is {float(state['step_alpha'])}; the loss_based "
                           "rule's alpha is a finite number above 0: the file is damaged")
    if "step_taken" in state and state["step_taken"] not in (0.0, 1.0):
        raise _where(path, f"snapshots/optimizer_state/step_taken is {float(state['step_taken'])}, not 0 or 1: "
                           "the file is damaged")
    if "minibatch_rng" in state:
        words = [int(w) for w in state["minibatch_rng"]]
        if words[4] not in (0, 1) or words[5] >= 2 ** 32:
            raise _where(path, "snapshots/optimizer_state/minibatch_rng is not a PCG64 generator's state: "
                               "the file is damaged")


class RunReader:
    """Read a run file: ``config``, ``dataset``, ``metrics`` (name -> array), ``snapshots``,
    ``status``. Arrays are read on first use, after every shape was checked; ``refresh()``
    picks up what a live writer has flushed since."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.file, self.swmr = open_run_file(self.path)
        try:
            with _reading(self.path):
                self._check_header()
                self._load_attributes()
                self._check_layout()
        except BaseException:
            self.file.close()
            raise

    # --------------------------------------------------------------- checks (no data read)
    def _check_header(self) -> None:
        attrs, path = self.file.attrs, self.path
        if _text(path, attrs, "format", limit=4096) != FORMAT:
            raise _where(path, f"an HDF5 file, but not a Margin Explorer run (no format attribute '{FORMAT}')")
        version = _integer(path, attrs, "format_version")
        if version > FORMAT_VERSION:
            raise _where(path, f"written in run-format version {version}, newer than this app reads "
                               f"({FORMAT_VERSION}); update Margin Explorer to open it")
        if version < 1:
            raise _where(path, f"format_version {version} is not a run-format version (1 and up): the file is damaged")

    def _load_attributes(self) -> None:
        attrs, path = self.file.attrs, self.path
        data = _json(path, attrs, "config")
        try:
            self.config = RunConfig.from_dict(data)
        except ConfigError as exc:
            raise _where(path, f"the stored config is not valid ({exc})") from None
        except RecursionError:
            raise _where(path, "the stored config is not valid (nested too deeply)") from None
        homogeneity = _json(path, attrs, "homogeneity", TEXT_LIMIT) if "homogeneity" in attrs else {}
        if not isinstance(homogeneity, dict):
            raise _where(path, "the 'homogeneity' attribute should be a JSON object: the file is damaged")
        self.homogeneity = homogeneity
        self.family = None
        if "family" in attrs:
            try:
                family = _json(path, attrs, "family")
                _check_family(family)
                if "config" in family:  # earlier versions stored the whole family config (family_config)
                    family["config"] = RunConfig.from_dict(family["config"])
                self.family = family
            except (ValueError, KeyError, TypeError, ConfigError, RecursionError) as exc:
                raise _where(path, f"the family attribute is not valid ({str(exc)[:200]})") from None
        self.status, self.status_reason  # noqa: B018 (checked here, read again where shown)
        self.parent = _text(path, attrs, "parent")
        self.start_step = _integer(path, attrs, "start_step", 0)
        if self.start_step < 0:
            raise _where(path, f"start_step is {self.start_step}; a step count is >= 0: the file is damaged")
        # the max-margin lines of the Normalized margin plot (absent in files from before they were stored)
        self.reference_margin = _float(path, attrs, "reference_margin")
        self.reference_margin_steepest = _float(path, attrs, "reference_margin_steepest")
        # the small scalar attributes, for display (device, created, versions...)
        self.attrs = {}
        for key in attrs.keys():
            if key in ("config", "family"):
                continue
            aid = attrs.get_id(key)
            if aid.shape != () or aid.get_storage_size() > TEXT_LIMIT:
                continue
            try:  # an attribute of a type no reader needs is left out, not refused
                value = attrs[key]
                value = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
                self.attrs[key] = value.item() if hasattr(value, "item") else value
            except (OSError, ValueError, TypeError):
                continue
        self.attrs["parent"], self.attrs["start_step"] = self.parent, self.start_step

    def _check_layout(self) -> None:
        """Every link, shape, type and claimed size, before any array is read (again at each
        refresh); sets the lengths."""
        path, f = self.path, self.file
        self._cache = {}
        check_self_contained(path, f)
        X = _dataset(path, f["dataset"], "X", "dataset/X", 2)
        y = _dataset(path, f["dataset"], "y", "dataset/y", 1)
        n = y.shape[0]
        if X.shape[0] != n:
            raise _where(path, f"dataset/X has {X.shape[0]:,} rows and dataset/y {n:,} labels: the file is damaged")
        if X.shape[1] != self.config.architecture.input_dim:
            raise _where(path, f"dataset/X has {X.shape[1]} columns but the network takes "
                               f"{self.config.architecture.input_dim} inputs: the file is damaged")
        _claim_check(path, X, "dataset/X")
        _claim_check(path, y, "dataset/y")
        self.dataset_name = _text(path, f["dataset"].attrs, "name", "dataset/name", "dataset")
        self.classes = self._classes(f["dataset"].attrs)
        self.image_shape = self._image_shape(f["dataset"].attrs, X.shape[1])
        self._check_test_set(f["dataset"], X.shape[1])

        metrics = f["metrics"]
        self.layer_names = self._layer_names(metrics)
        widths = {"sample_margins": n, "support_counts": SUPPORT_DECADES, "test_margin_quantiles": len(TEST_QUANTILES)}
        if self.layer_names is not None:
            widths["layer_norms"] = widths["stable_rank"] = len(self.layer_names)
        datasets = {}
        axes = self._check_axes(metrics, n)
        for name in metrics.keys():
            if name in axes:
                continue
            where = f"metrics/{name}"
            ndim = (1 if name in SCALAR_METRICS or name in TEST_SCALARS or name in RATE_SCALARS else 2 if name in ARRAY_METRICS or name in TEST_ARRAYS
                    else (1, 2))
            ds = _dataset(path, metrics, name, where, ndim)
            if name in widths and ds.shape[1] != widths[name]:
                raise _where(path, f"{where} has {ds.shape[1]:,} columns; expected {widths[name]:,}: the file is damaged")
            datasets[name] = ds
        if "step" not in datasets:
            raise _where(path, "metrics/step is missing; the file is incomplete")
        for name, width in (("layer_norms", axes.get("layer")), ("ensemble_share", axes.get("member"))):
            if width is not None and name in datasets and datasets[name].shape[1] != width:
                raise _where(path, f"metrics/{name} has {datasets[name].shape[1]:,} columns but its axis "
                                   f"has {width:,} labels: the file is damaged")
        if datasets["step"].dtype.kind not in "iu":
            raise _where(path, "metrics/step holds floating-point numbers, not whole numbers: the file is damaged")
        self.n_records = self._common_length(datasets, "metrics")
        for name, ds in datasets.items():
            _claim_check(path, ds, f"metrics/{name}", self.n_records)
        self._metric_names = list(datasets)

        snaps = f["snapshots"]
        n_params = parameter_count(self.config.architecture)
        sets = {"step": _dataset(path, snaps, "step", "snapshots/step", 1, "iu"),
                "params": _dataset(path, snaps, "params", "snapshots/params", 2)}
        sets.update({m: _dataset(path, snaps, m, f"snapshots/{m}", 1) for m in SNAPSHOT_METRICS})
        final = _dataset(path, snaps, "final_params", "snapshots/final_params", 1)
        final_step = _dataset(path, snaps, "final_step", "snapshots/final_step", 0, "iu")
        for where, width in (("snapshots/params", sets["params"].shape[1]), ("snapshots/final_params", final.shape[0])):
            if width != n_params:
                raise _where(path, f"{where} holds {width:,} parameters but the network has {n_params:,}: "
                                   "the file is damaged")
        self.n_snapshots = self._common_length(sets, "snapshots")
        for name, ds in sets.items():
            _claim_check(path, ds, f"snapshots/{name}", self.n_snapshots)
        _claim_check(path, final, "snapshots/final_params")
        self.final_step = int(final_step[()])
        self._optimizer_state = self._check_optimizer_state(snaps, n_params)
        self.n_events = self._check_events()

    def _check_optimizer_state(self, snaps, n_params: int) -> dict | None:
        """The optional ``snapshots/optimizer_state`` group (files written before it lack it):
        self-contained, exactly the datasets the run's optimizer keeps (core/optimizers.py
        state_layout), of their shapes and types. Returns name -> dataset, or None."""
        if "optimizer_state" not in snaps.keys():
            return None
        from .optimizers import state_layout
        from .step_rule import rate_layout

        path, where = self.path, "snapshots/optimizer_state"
        group = snaps["optimizer_state"]
        if not isinstance(group, h5py.Group):
            raise _where(path, f"{where} is a dataset, not a group: the file is damaged")
        optimizer = self.config.optimizer
        layout = {"step": ((), np.int64), **state_layout(optimizer.kind, n_params, optimizer.step_rule)}
        rate = rate_layout(optimizer.step_rule)
        if rate and not set(rate) & set(group.keys()):
            return None  # written before run files kept the loss_based rule's alpha: no state to continue from
        for name in group.keys():
            _link_check(path, group, name, f"{where}/{name}")
            if name not in layout:
                raise _where(path, f"{where}/{name} is not part of the state of the run's optimizer "
                                   f"({self.config.optimizer.kind}): the file is damaged")
        sets = {}
        for name, (shape, dtype) in layout.items():
            kinds = "iu" if np.dtype(dtype).kind in "iu" else NUMERIC_KINDS
            ds = _dataset(path, group, name, f"{where}/{name}", len(shape), kinds)
            _storage_check(path, ds, f"{where}/{name}")
            if ds.shape != shape:
                raise _where(path, f"{where}/{name} has shape {ds.shape}; expected {shape}: the file is damaged")
            _claim_check(path, ds, f"{where}/{name}")
            sets[name] = ds
        return sets

    @property
    def final_optimizer_state(self) -> dict | None:
        """The optimizer state saved with final_params (name -> array, for Trainer's
        ``optimizer_state``), or None when the file has none for its final step (written before
        files kept it, or saved by the window without it)."""
        sets = self._optimizer_state
        if sets is None:
            return None

        def read():
            if int(sets["step"][()]) != self.final_step:
                return None
            state = {name: ds[()] for name, ds in sets.items() if name != "step"}
            _check_state_values(self.path, state)
            return state
        return self._read("optimizer_state", read)

    def _check_axes(self, metrics, n: int) -> dict:
        """The array metrics' column labels (dimension scales, docs/run-format.md), in files that
        have them: ``sample`` (n whole numbers), ``layer`` (the layer names, text), ``member``
        and ``decade`` (support_counts' k = 1..7; whole numbers). Returns name -> length of those present."""
        path, found = self.path, {}
        for name, kinds in (("sample", "iu"), ("layer", "OS"), ("member", "iu"), ("decade", "iu"), ("quantile", "f")):
            if name not in metrics.keys():
                continue
            ds = _dataset(path, metrics, name, f"metrics/{name}", 1, kinds)
            _claim_check(path, ds, f"metrics/{name}")
            found[name] = ds.shape[0]
        if "sample" in found and found["sample"] != n:
            raise _where(path, f"metrics/sample labels {found['sample']:,} samples; the dataset has {n:,}: "
                               "the file is damaged")
        if "decade" in found and found["decade"] != SUPPORT_DECADES:
            raise _where(path, f"metrics/decade labels {found['decade']:,} decades; support_counts has "
                               f"{SUPPORT_DECADES}: the file is damaged")
        if "quantile" in found and found["quantile"] != len(TEST_QUANTILES):
            raise _where(path, f"metrics/quantile labels {found['quantile']:,} quantiles; test_margin_quantiles has "
                               f"{len(TEST_QUANTILES)}: the file is damaged")
        if "layer" in found and self.layer_names is not None and found["layer"] != len(self.layer_names):
            raise _where(path, f"metrics/layer labels {found['layer']:,} layers; stable_rank's columns name "
                               f"{len(self.layer_names):,}: the file is damaged")
        return found

    def _check_events(self) -> int:
        """The optional ``events`` group (core/health.py): its three columns' types and length."""
        if "events" not in self.file.keys():
            return 0
        group, path = self.file["events"], self.path
        if not isinstance(group, h5py.Group):
            raise _where(path, "'events' is a dataset, not a group: the file is damaged")
        columns = {"step": _dataset(path, group, "step", "events/step", 1, "iu"),
                   "kind": _dataset(path, group, "kind", "events/kind", 1, "S"),
                   "message": _dataset(path, group, "message", "events/message", 1, "S")}
        k = self._common_length(columns, "events")
        for name, ds in columns.items():
            _claim_check(path, ds, f"events/{name}", k)
        return k

    def _layer_names(self, metrics) -> list[str] | None:
        if "stable_rank" not in metrics.keys():
            return None
        names = _json(self.path, metrics["stable_rank"].attrs, "columns", TEXT_LIMIT) \
            if "columns" in metrics["stable_rank"].attrs else None
        if names is not None and not (isinstance(names, list) and all(isinstance(v, str) for v in names)):
            raise _where(self.path, "metrics/stable_rank's 'columns' attribute should be a list of names")
        return names

    def _common_length(self, datasets: dict, group: str) -> int:
        """A finished file's series have one length; a live writer's may differ while it is
        between two resizes, so a SWMR reader cuts them to the shortest."""
        lengths = {name: ds.shape[0] for name, ds in datasets.items()}
        shortest, longest = min(lengths.values()), max(lengths.values())
        if longest != shortest and not self.swmr:
            name = max(lengths, key=lengths.get)
            raise _where(self.path, f"{group}/{name} has {longest:,} records but others have {shortest:,}: "
                                    "the file is damaged")
        return shortest

    def _classes(self, attrs) -> int:
        """dataset/classes: 2 when absent (binary, -1/+1), else a whole number from 3 up."""
        if "classes" not in attrs:
            return 2
        value = attrs["classes"]
        if not (isinstance(value, (int, np.integer)) and 3 <= value <= MAX_CLASSES):
            shown = value.item() if isinstance(value, np.generic) else value
            raise _where(self.path, f"dataset/classes is {shown!r}, not a whole number of classes from 3 to "
                                    f"{MAX_CLASSES}: the file is damaged")
        return int(value)

    def _image_shape(self, attrs, dim: int) -> tuple | None:
        """dataset/image_shape: (height, width) whose product is the number of columns, or absent."""
        if "image_shape" not in attrs:
            return None
        value = np.asarray(attrs["image_shape"])
        if value.shape != (2,) or value.dtype.kind not in "iu" or value.min() < 1 or int(value.prod()) != dim:
            raise _where(self.path, f"dataset/image_shape is {value.tolist()!r}, not (height, width) of the "
                                    f"{dim} columns of dataset/X: the file is damaged")
        return int(value[0]), int(value[1])

    def _check_test_set(self, group, dim: int) -> None:
        """dataset/X_test and dataset/y_test: both or neither, of X's columns, one label a row."""
        present = [name for name in ("X_test", "y_test") if name in group]
        if not present:
            return
        if len(present) == 1:
            raise _where(self.path, f"dataset/{present[0]} has no {'y_test' if present[0] == 'X_test' else 'X_test'}"
                                    ": the file is damaged")
        X = _dataset(self.path, group, "X_test", "dataset/X_test", 2)
        y = _dataset(self.path, group, "y_test", "dataset/y_test", 1)
        if X.shape[0] != y.shape[0]:
            raise _where(self.path, f"dataset/X_test has {X.shape[0]:,} rows and dataset/y_test {y.shape[0]:,} "
                                    "labels: the file is damaged")
        if X.shape[1] != dim:
            raise _where(self.path, f"dataset/X_test has {X.shape[1]} columns but dataset/X {dim}: the file is damaged")
        _claim_check(self.path, X, "dataset/X_test")
        _claim_check(self.path, y, "dataset/y_test")

    # --------------------------------------------------------------- data, read on first use
    def _read(self, key, read):
        if key not in self._cache:
            with _reading(self.path):
                self._cache[key] = read()
        return self._cache[key]

    @property
    def dataset(self) -> Dataset:
        def read():
            try:
                group = self.file["dataset"]
                test = [group[name][()] for name in ("X_test", "y_test")] if "X_test" in group else [None, None]
                return Dataset(group["X"][()], group["y"][()], self.dataset_name, self.classes, *test,
                               image_shape=self.image_shape)
            except DatasetError as exc:
                raise _where(self.path, f"the stored dataset is not valid ({exc})") from None
        return self._read("dataset", read)

    @property
    def test_size(self) -> int | None:
        """The number of test points (dataset/X_test), None without a test set."""
        group = self.file["dataset"]
        return int(group["X_test"].shape[0]) if "X_test" in group else None

    @property
    def dataset_shape(self) -> tuple[int, int]:
        """(n, d) without reading the points."""
        return tuple(self.file["dataset/X"].shape)

    @property
    def metrics(self) -> dict:
        k = self.n_records
        return self._read("metrics", lambda: {name: self.file["metrics"][name][:k] for name in self._metric_names})

    def metrics_named(self, names) -> dict:
        """Those of the metrics ``names`` the file holds, read without the others (a figure of
        two plots need not read a 10^5 x n sample_margins)."""
        if "metrics" in self._cache:
            return {name: v for name, v in self.metrics.items() if name in names}
        k, wanted = self.n_records, tuple(name for name in self._metric_names if name in names)
        return self._read(("metrics", wanted), lambda: {name: self.file["metrics"][name][:k] for name in wanted})

    @property
    def snapshot_steps(self) -> np.ndarray:
        return self._read("snapshot_steps", lambda: self.file["snapshots/step"][:self.n_snapshots])

    @property
    def snapshot_metrics(self) -> dict:
        k = self.n_snapshots
        return self._read("snapshot_metrics", lambda: {m: self.file["snapshots"][m][:k] for m in SNAPSHOT_METRICS})

    @property
    def events(self) -> list:
        """The run's events (dicts step, kind, message; docs/run-format.md); [] for files written
        before events were recorded."""
        def read():
            group, k = self.file["events"], self.n_events
            return [{"step": int(step), "kind": kind.decode("ascii", "replace"),
                     "message": message.decode("utf-8", "replace")}
                    for step, kind, message in zip(group["step"][:k], group["kind"][:k], group["message"][:k])]
        return self._read("events", read) if self.n_events else []

    @property
    def final_params(self) -> np.ndarray:
        return self._read("final_params", lambda: self.file["snapshots/final_params"][()])

    def snapshot_params(self, index: int | slice = slice(None)) -> np.ndarray:
        """Rows of snapshots/params: one (an int) or several (a slice), within the snapshots."""
        ds, k = self.file["snapshots/params"], self.n_snapshots
        with _reading(self.path):
            if isinstance(index, slice):
                start, stop, step = index.indices(k)
                if step < 0:
                    return ds[:k][index]
                return ds[start:stop:step] if start < stop else np.empty((0, ds.shape[1]))
            i = int(index) + (k if int(index) < 0 else 0)
            if not 0 <= i < k:
                raise IndexError(f"snapshot {index} of {k}")
            return ds[i]

    def read_arrays(self) -> None:
        """(Re)check the layout and read every metric and snapshot array."""
        with _reading(self.path):
            self._check_layout()
        for name in ("metrics", "snapshot_steps", "snapshot_metrics", "final_params"):
            getattr(self, name)

    @property
    def status(self) -> str:
        return _text(self.path, self.file.attrs, "status", default="unknown")

    @property
    def status_reason(self) -> str:
        return _text(self.path, self.file.attrs, "status_reason")

    def refresh(self) -> int:
        """Pick up records a live SWMR writer has flushed; returns the new record count."""
        if self.swmr:
            with _reading(self.path):
                check_self_contained(self.path, self.file)  # before following any name again
                for group in ("metrics", "snapshots") + (("events",) if "events" in self.file.keys() else ()):
                    for name in self.file[group].keys():
                        obj = self.file[group][name]
                        for ds in (obj.values() if isinstance(obj, h5py.Group) else (obj,)):  # optimizer_state
                            ds.refresh()
        self.read_arrays()
        return self.n_records

    def final_metrics(self) -> dict:
        """The last record's scalar metrics (read alone when the history is not loaded)."""
        if not self.n_records:
            return {}
        if "metrics" in self._cache:
            return {name: v[-1].item() for name, v in self.metrics.items() if v.ndim == 1}
        group, last = self.file["metrics"], self.n_records - 1
        with _reading(self.path):
            return {name: group[name][last].item() for name in self._metric_names if group[name].ndim == 1}

    def final_row(self, name: str) -> np.ndarray | None:
        """The last record's row of the 2-D metric ``name`` (read alone when the history is not
        loaded: a 10^5 x n sample_margins is not read for its last row), or None without it."""
        if not self.n_records or name not in self._metric_names:
            return None
        if "metrics" in self._cache:
            return np.asarray(self.metrics[name][-1])
        with _reading(self.path):
            return np.asarray(self.file["metrics"][name][self.n_records - 1])

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
