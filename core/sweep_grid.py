"""A sweep's grid: which config fields vary, over which values, and how the product of the axes
is cut into tasks (docs/sweeps.md).

An axis names a field of the config by a dotted path into its JSON (``optimizer.lr``,
``architecture.blocks.0.width``) or a short name (SHORT_NAMES); its values are a list
(``0.25,0.5,1``), log-spaced (``0.01..1/8``: 8 values, ends included) or a range of whole
numbers (``0:8``). Seeds are the last axis. Every value is applied to the config and validated
here, so a bad axis is refused, with the field named, before anything starts.

Runs that differ only in the seed, the step size or the initialization scale train together as a
family (core/trainer.py); a family varies one setting, so of those three the axis with the most
values is the family's, and the other axes (the rest of the three included) make separate tasks.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from .config import FAMILY_SETTINGS, RunConfig, parse_values
from .errors import ConfigError

SHORT_NAMES = {
    "lr": "optimizer.lr", "init_scale": "architecture.init.scale", "seed": "run.seed", "steps": "run.steps",
    "optimizer": "optimizer.kind", "step_rule": "optimizer.step_rule", "momentum": "optimizer.momentum",
    "loss": "loss.kind", "init": "architecture.init.scheme", "n": "dataset.params.n", "noise": "dataset.params.noise",
    # not one field: every hidden dense layer's width; the number of hidden layers of an MLP
    "width": "width", "depth": "depth",
}
FAMILY_PATHS = {path: vary for vary, path in FAMILY_SETTINGS.items()}  # run.seed -> seed, ...
MAX_RUNS = 10**6


@dataclass
class Axis:
    """One varied setting: ``path`` (a dotted path into the config's JSON, or width / depth),
    ``label`` (its short name where it has one: the table's column), ``values``, ``log`` (the
    values were asked log-spaced: the phase diagram draws them on a log axis)."""

    path: str
    label: str
    values: list
    log: bool = False

    def to_dict(self) -> dict:
        return {"path": self.path, "label": self.label, "values": list(self.values), "log": self.log}

    @classmethod
    def from_dict(cls, data: dict) -> "Axis":
        return cls(data["path"], data["label"], list(data["values"]), bool(data.get("log", False)))


@dataclass
class Task:
    """A family trained by one worker: ``config`` (a RunConfig dict with a family section) and
    the grid points of its members, in member order."""

    key: str
    config: dict
    points: list = field(default_factory=list)


# --- reading axes ---------------------------------------------------------------------------

def canonical(name: str) -> tuple[str, str]:
    """(path, label) of an axis name: a short name's path, or the dotted path itself."""
    name = name.strip()
    if name in SHORT_NAMES:
        return SHORT_NAMES[name], name
    short = next((s for s, p in SHORT_NAMES.items() if p == name), None)
    return name, short or name


def _lookup(data: dict, path: str, where: str):
    """(container, key) of ``path`` in the config's JSON, or a ConfigError naming the field."""
    parts = path.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[:i + 1]), where)
    last = parts[-1]
    done = ".".join(parts[:-1])
    if isinstance(node, list):
        _child(node, last, path, where)
        return node, int(last)
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: {done} is a value, not a section; {path} names no field of the config")
    if last not in node and not done:
        _child(node, last, last, where)  # says which short names there are
    if last not in node and not done.endswith("params"):  # a generator's parameters may be absent (defaults)
        raise ConfigError(f"{where}: names no field of the config ({done or 'the config'} has "
                          f"{', '.join(sorted(node)) or 'no fields'})")
    return node, last


def _child(node, part: str, sofar: str, where: str):
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(f"{where}: {sofar} is not an item of the config (the list has {len(node)} items, "
                              f"numbered from 0)")
        return node[int(part)]
    if not isinstance(node, dict) or part not in node:
        if "." not in sofar:
            raise ConfigError(f"{where}: names no field of the config (short names: {', '.join(SHORT_NAMES)}; "
                              f"or a dotted path such as optimizer.lr or architecture.blocks.0.width)")
        keys = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
        raise ConfigError(f"{where}: names no field of the config ({sofar} does not exist; there: {keys})")
    return node[part]


def _convert(text, like, where: str):
    """``text`` (a string from the command line, or a Python value) as the type of ``like``."""
    try:
        if isinstance(like, bool):
            if isinstance(text, str):
                if text.strip().lower() not in ("true", "false"):
                    raise ValueError
                return text.strip().lower() == "true"
            return bool(text)
        if isinstance(like, int):
            value = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(like, float) or like is None:
            value = float(text)
            return int(value) if like is None and value.is_integer() and "." not in str(text) else value
        return str(text).strip()
    except (TypeError, ValueError):
        kind = {bool: "true or false", int: "a whole number"}.get(type(like), "a number")
        raise ConfigError(f"{where}: {text!r} is not {kind}") from None


def parse_seeds(spec) -> list[int]:
    """``--seeds 0:8`` (0 to 7), ``0,3,5`` or a Python sequence of whole numbers >= 0."""
    values, _log = parse_values(spec, "--seeds")
    seeds = [_convert(v, 0, "--seeds") for v in values]
    bad = [s for s in seeds if not 0 <= s < 2**63]
    if bad:
        raise ConfigError(f"--seeds: a seed is a whole number from 0 to 2^63 - 1, got {bad[0]}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds: a seed is given twice")
    return seeds


def parse_grid_option(text: str) -> tuple[str, str]:
    """``NAME=VALUES`` of a --grid option."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--grid: expected NAME=VALUES (lr=0.01..1/8, init_scale=0.25,0.5,1,2, width=16,64,256), "
                          f"got {text!r}")
    return name.strip(), spec


# --- applying values ------------------------------------------------------------------------

def _hidden_dense(data: dict, where: str) -> list:
    blocks = data["architecture"]["blocks"]
    hidden = [b for b in blocks[:-1] if b.get("type") == "dense"]
    if not hidden:
        raise ConfigError(f"{where}: the architecture has no hidden dense layer whose width could vary "
                          "(name one by its path, e.g. architecture.blocks.0.width)")
    return hidden


def _mlp_layers(data: dict, where: str) -> tuple[dict, dict, dict]:
    """(hidden dense, activation, output) of an MLP [dense, activation]*k + [dense 1]."""
    blocks = data["architecture"]["blocks"]
    pairs, last = blocks[:-1], blocks[-1]
    shaped = (len(pairs) >= 2 and len(pairs) % 2 == 0 and last.get("type") == "dense"
              and all(b.get("type") == "dense" for b in pairs[0::2])
              and all(b.get("type") == "activation" for b in pairs[1::2])
              and all(b == pairs[0] for b in pairs[0::2]) and all(b == pairs[1] for b in pairs[1::2]))
    if not shaped:
        raise ConfigError(f"{where}: depth varies an MLP of equal hidden layers ([dense, activation] x k, "
                          "then dense 1); this architecture is not one")
    return pairs[0], pairs[1], last


def apply(data: dict, axis: Axis, value) -> None:
    """Set ``axis`` to ``value`` in the config JSON ``data`` (changed in place)."""
    where = f"--grid {axis.label}"
    if axis.path == "width":
        for block in _hidden_dense(data, where):
            block["width"] = value
    elif axis.path == "depth":
        dense, activation, last = _mlp_layers(data, where)
        data["architecture"]["blocks"] = [dict(b) for _ in range(value) for b in (dense, activation)] + [last]
    else:
        node, key = _lookup(data, axis.path, where)
        node[key] = value


def make_axis(name: str, spec, config: RunConfig) -> Axis:
    """An axis of ``config``: its field found, its values read, typed and each one validated."""
    path, label = canonical(name)
    where = f"--grid {label}"
    raw, log = parse_values(spec, where)
    data = config.to_dict()
    if path == "width":
        like = _hidden_dense(data, where)[0]["width"]
    elif path == "depth":
        _mlp_layers(data, where)
        like = 1
    else:
        node, key = _lookup(data, path, where)
        like = node.get(key) if isinstance(node, dict) else node[key]
        if isinstance(like, (dict, list)):
            raise ConfigError(f"{where}: {path} is a section, not a value; name a field inside it")
    values = [_convert(v, like, where) for v in raw]
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{where}: a value is given twice")
    if path == "depth" and any(v < 1 for v in values):
        raise ConfigError(f"{where}: an MLP has at least one hidden layer, got {min(values)}")
    axis = Axis(path, label, values, log)
    for value in values:  # each value alone must make a valid config: the field and the value named
        trial = config.to_dict()
        apply(trial, axis, value)
        try:
            RunConfig.from_dict(trial)
        except ConfigError as exc:
            raise ConfigError(f"{where}={value}: {exc}") from None
    return axis


# --- the plan -------------------------------------------------------------------------------

class SweepPlan:
    """The grid of a sweep: the base ``config`` (no family), its ``axes`` (the seeds last), the
    runs (grid points, numbered in row-major order over the axes) and the tasks that train them."""

    def __init__(self, config: RunConfig, axes: list[Axis]):
        self.config = config
        self.axes = axes
        self.shape = tuple(len(a.values) for a in axes)
        self.size = math.prod(self.shape)
        if self.size > MAX_RUNS:
            raise ConfigError(f"--grid: {self.size:,} runs; a sweep has at most {MAX_RUNS:,}")
        self.family_axis = self._family_axis()

    @classmethod
    def build(cls, config: RunConfig, grid, seeds=None, steps: int | None = None) -> "SweepPlan":
        """``grid``: {name: values} (values as the command line writes them, or a list) or a list of
        (name, values); ``seeds``: a spec or a sequence (default: the config's own seed)."""
        if not isinstance(config, RunConfig):
            raise ConfigError(f"config: expected a RunConfig (mx.preset(name), RunConfig.from_dict(...)), "
                              f"got {type(config).__name__}")
        if config.family is not None:
            raise ConfigError("family: a sweep makes its own families from the grid; give a config without one")
        config = config.copy()
        if steps is not None:
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ConfigError(f"--steps: a whole number of steps >= 1, got {steps!r}")
            config.run.steps = steps
        if not config.run.steps:
            raise ConfigError("run.steps: a sweep's runs must end (run.steps = 0 trains without end); give --steps N")
        items = list(grid.items()) if isinstance(grid, dict) else list(grid or [])
        axes, seen = [], {}
        for name, spec in items:
            if not isinstance(name, str):
                raise ConfigError(f"--grid: an axis is named by a string, got {name!r}")
            axis = make_axis(name, spec, config)
            if axis.path in seen:
                raise ConfigError(f"--grid {name}: the same field as --grid {seen[axis.path]}")
            if axis.path == "run.seed" and seeds is not None:
                raise ConfigError("--grid seed: give the seeds with --seeds (seeds=...) only")
            seen[axis.path] = name
            axes.append(axis)
        if "run.seed" not in seen:
            values = parse_seeds(seeds) if seeds is not None else [config.run.seed]
            axes.append(make_axis("seed", values, config))
        return cls(config, axes)

    def _family_axis(self) -> int | None:
        """The index of the axis the families vary: of seed, lr and init_scale, the one with the
        most values (the seeds on a tie)."""
        candidates = [(len(a.values), a.path == "run.seed", i) for i, a in enumerate(self.axes)
                      if a.path in FAMILY_PATHS]
        return max(candidates)[2] if candidates else None

    def coordinates(self, point: int) -> tuple:
        """The axis values of grid point ``point``."""
        index = []
        for n in reversed(self.shape):
            point, i = divmod(point, n)
            index.append(i)
        return tuple(axis.values[i] for axis, i in zip(self.axes, reversed(index)))

    def label(self, coords, skip: int | None = None) -> str:
        return ", ".join(f"{a.label}={_shown(v)}" for i, (a, v) in enumerate(zip(self.axes, coords)) if i != skip)

    def run_config(self, point: int) -> RunConfig:
        """The config of grid point ``point``, as it would be trained alone."""
        coords = self.coordinates(point)
        data = self.config.to_dict()
        for axis, value in zip(self.axes, coords):
            apply(data, axis, value)
        data["name"] = f"{self.config.name or 'run'} [{self.label(coords)}]"
        return RunConfig.from_dict(data)

    def tasks(self, wanted=None) -> list[Task]:
        """The families that train the points in ``wanted`` (all by default), each a Task with a
        family of the points that share every other axis value; all configs validated here."""
        wanted = set(range(self.size)) if wanted is None else set(wanted)
        f = self.family_axis
        others = [range(n) for i, n in enumerate(self.shape) if i != f]
        strides = [math.prod(self.shape[i + 1:]) for i in range(len(self.shape))]
        tasks = []
        for rest in itertools.product(*others):
            index = list(rest)
            if f is not None:
                index.insert(f, 0)
            first = sum(i * s for i, s in zip(index, strides))
            members = [first + k * strides[f] for k in range(self.shape[f])] if f is not None else [first]
            if not wanted.intersection(members):
                continue
            coords = self.coordinates(first)
            data = self.config.to_dict()
            for i, (axis, value) in enumerate(zip(self.axes, coords)):
                if i != f:
                    apply(data, axis, value)
            data["name"] = f"{self.config.name or 'run'} [{self.label(coords, skip=f)}]" if len(self.axes) > 1 \
                else self.config.name or "run"
            vary = FAMILY_PATHS[self.axes[f].path] if f is not None else "seed"
            values = list(self.axes[f].values) if f is not None else [data["run"]["seed"]]
            data["family"] = {"vary": vary, "values": values}
            try:
                RunConfig.from_dict(data)
            except ConfigError as exc:
                raise ConfigError(f"--grid {self.label(coords, skip=f)}: {exc}") from None
            tasks.append(Task(f"sweep-{first}", data, members))
        return tasks

    def grid_dict(self) -> dict:
        return {"axes": [a.to_dict() for a in self.axes], "family_axis": self.family_axis}

    @classmethod
    def from_stored(cls, config: RunConfig, grid: dict) -> "SweepPlan":
        return cls(config, [Axis.from_dict(a) for a in grid["axes"]])

    def same_grid(self, other: "SweepPlan") -> bool:
        return (self.grid_dict() == other.grid_dict()
                and self.config.to_dict() == other.config.to_dict())


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plan(config: RunConfig, grid, seeds=None, steps: int | None = None) -> SweepPlan:
    return SweepPlan.build(config, grid, seeds, steps)
