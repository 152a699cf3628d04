"""RunConfig: everything that defines a run, as plain JSON (DESIGN.md, One path for data).

dataset + architecture + loss + optimizer + run settings + recording policy. Stored whole in
every run file, so a saved run can be reopened, compared, replayed or continued.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from . import builtin_data, datasets
from .architecture import ArchitectureSpec
from .errors import ConfigError, DatasetError
from .optimizers import KINDS as OPTIMIZER_KINDS
from .schema import Serializable, parse_json, require


@dataclass
class DatasetConfig(Serializable):
    """``generator`` (a named generator and its parameters; ``params.n_test`` > 0 adds a test set
    drawn from the same distribution with another seed), ``builtin`` (a real dataset shipped with
    scikit-learn, core/builtin_data.py, and its ``params``: classes, standardize, subsample,
    test_fraction, seed), ``inline`` (X and y in the config, optionally X_test and y_test) or
    ``file`` (a CSV or NPZ path, relative to the config file; ``test_path`` an optional second
    file holding the test set). Labels: -1/+1 (or 0/1) for two classes, 0..C-1 for C >= 3."""

    kind: Literal["generator", "builtin", "inline", "file"] = "generator"
    generator: str = "blobs"
    builtin: str = "digits"
    params: dict = field(default_factory=dict)
    X: Optional[list] = None
    y: Optional[list] = None
    X_test: Optional[list] = None
    y_test: Optional[list] = None
    path: Optional[str] = None
    test_path: Optional[str] = None
    image_shape: Optional[list[int]] = None  # inline: (height, width) when each row is an image
    name: str = ""

    def validate(self, path):
        if self.kind == "generator":
            require(self.generator in datasets.GENERATORS, f"{path}.generator",
                    f"unknown generator {self.generator!r} (choose from {', '.join(datasets.GENERATORS)})")
            try:
                datasets.generator_arguments(self.generator, self.params)
            except DatasetError as exc:  # its message starts with the parameter's name
                raise ConfigError(f"{path}.params.{exc}") from None
        elif self.kind == "builtin":
            require(self.builtin in builtin_data.BUILTIN, f"{path}.builtin",
                    f"unknown dataset {self.builtin!r} (choose from {', '.join(builtin_data.BUILTIN)})")
            try:
                builtin_data.builtin_arguments(self.builtin, self.params)
            except DatasetError as exc:  # its message starts with the parameter's name
                raise ConfigError(f"{path}.params.{exc}") from None
        elif self.kind == "inline":
            require(self.X is not None and self.y is not None, path, "an inline dataset needs X and y")
            require((self.X_test is None) == (self.y_test is None), path,
                    "an inline test set needs both X_test and y_test")
        else:
            require(bool(self.path), f"{path}.path", "a file dataset needs a path")

    def build(self, base_dir: Path | None = None) -> datasets.Dataset:
        """Make the dataset; DatasetErrors are re-raised as ConfigErrors naming this field."""
        try:
            if self.kind == "generator":
                ds = datasets.generate(self.generator, **self.params)
            elif self.kind == "builtin":
                ds = builtin_data.load_builtin(self.builtin, **self.params)
            elif self.kind == "inline":
                ds = datasets.Dataset.from_labels(self.X, self.y, self.name or "inline", self.X_test, self.y_test,
                                                  self.image_shape)
            else:
                ds = datasets.load(self._resolve(self.path, base_dir),
                                   None if self.test_path is None else self._resolve(self.test_path, base_dir))
        except DatasetError as exc:
            raise ConfigError(f"dataset: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"dataset.params: {exc}") from None
        return ds

    @staticmethod
    def _resolve(name: str, base_dir: Path | None) -> Path:
        p = Path(name)
        return p if p.is_absolute() or base_dir is None else base_dir / p

    @classmethod
    def inline(cls, ds: datasets.Dataset) -> "DatasetConfig":
        test = {} if ds.X_test is None else {"X_test": ds.X_test.tolist(), "y_test": ds.y_test.astype(int).tolist()}
        shape = None if ds.image_shape is None else list(ds.image_shape)
        return cls(kind="inline", X=ds.X.tolist(), y=ds.y.astype(int).tolist(), name=ds.name, image_shape=shape, **test)

    def to_dict(self) -> dict:
        if self.kind == "generator":
            out = {"kind": "generator", "generator": self.generator, "params": dict(self.params)}
        elif self.kind == "builtin":
            # every parameter, defaults included: the file says how its data were made
            out = {"kind": "builtin", "builtin": self.builtin,
                   "params": builtin_data.builtin_arguments(self.builtin, self.params)}
        elif self.kind == "inline":
            out = {"kind": "inline", "X": self.X, "y": self.y}
            if self.X_test is not None:
                out.update(X_test=self.X_test, y_test=self.y_test)
            if self.image_shape is not None:
                out["image_shape"] = self.image_shape
        else:
            out = {"kind": "file", "path": self.path}
            if self.test_path is not None:
                out["test_path"] = self.test_path
        if self.name:
            out["name"] = self.name
        return out


@dataclass
class LossConfig(Serializable):
    """L = sum_i l(q_i) (``sum``, as in the papers) or the mean; l exponential or logistic."""

    kind: Literal["exponential", "logistic"] = "exponential"
    reduction: Literal["sum", "mean"] = "sum"


@dataclass
class OptimizerConfig(Serializable):
    """``step_rule``: constant (eta); loss_normalized (eta / L, a fixed step on log L); lyu_li
    (eta / (L log(1/L)^(2 - 2/M)), Lyu and Li 2020's GD schedule: for M = 1 it is eta / L, for
    M > 1 it keeps the norm's growth polynomial where eta / L makes it exponential). In lyu_li's
    log factor L is the SUM of the losses even with ``loss.reduction`` mean (L_sum = n L_mean), as
    in the paper, so a mean-loss run follows the same trajectory as the summed one. loss_based:
    Lyu and Li's experiments' adaptive rate alpha_t / L with undone steps (core/step_rule.py
    LossBasedRate), alpha_0 = ``lr``; gradient descent only."""

    kind: Literal["gd", "normalized_gd", "sgd", "sign", "coordinate", "momentum", "adam"] = "gd"
    lr: float = 0.1
    step_rule: Literal["constant", "loss_normalized", "lyu_li", "loss_based"] = "loss_normalized"
    batch_size: Optional[int] = None
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def validate(self, path):
        require(self.kind in OPTIMIZER_KINDS, f"{path}.kind", f"unknown optimizer {self.kind!r}")
        require(self.lr > 0, f"{path}.lr", f"the step size must be > 0, got {self.lr}")
        require(self.step_rule != "loss_based" or self.kind == "gd", f"{path}.step_rule",
                f"loss_based (Lyu and Li's adaptive rate, which undoes steps) runs with gd only, not {self.kind}")
        if self.kind == "sgd":
            require(self.batch_size is not None and self.batch_size >= 1, f"{path}.batch_size",
                    "sgd needs a batch_size >= 1")
        require(0 <= self.momentum < 1, f"{path}.momentum", f"must be in [0, 1), got {self.momentum}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, f"{path}.beta1", "Adam's betas must be in [0, 1)")
        require(self.eps > 0, f"{path}.eps", "must be > 0")


@dataclass
class RecordingConfig(Serializable):
    """Which steps are recorded: every step up to ``every_step_until``, then ``per_decade``
    log-spaced steps per decade, at most ``max_per_second`` records a second in that phase
    (0: no cap). Snapshots of all parameters at ``snapshots_per_decade`` log-spaced steps, with
    the KKT residual and Euler defect computed there."""

    every_step_until: int = 1000
    per_decade: int = 200
    max_per_second: float = 0.0
    snapshots_per_decade: int = 10
    support_tolerance: float = 0.01
    kkt: bool = True

    def validate(self, path):
        require(self.every_step_until >= 0, f"{path}.every_step_until", "must be >= 0")
        require(self.per_decade >= 1, f"{path}.per_decade", "must be >= 1")
        require(self.max_per_second >= 0, f"{path}.max_per_second", "must be >= 0")
        require(self.snapshots_per_decade >= 1, f"{path}.snapshots_per_decade", "must be >= 1")
        require(self.support_tolerance >= 0, f"{path}.support_tolerance", "must be >= 0")


@dataclass
class RunSettings(Serializable):
    """``steps`` 0 means unlimited (until stopped). ``backend``: auto picks the hand-written numpy
    network on the CPU (the compiled one once its kernels are cached) and the batched engine
    (core/engines/) on a GPU; numpy, torch (autograd), batched or compiled ask for one."""

    steps: int = 10000
    seed: int = 0
    dtype: Literal["float64", "float32"] = "float64"
    device: str = "cpu"
    backend: Literal["auto", "numpy", "torch", "batched", "compiled"] = "auto"

    def validate(self, path):
        require(self.steps >= 0, f"{path}.steps", f"must be >= 0 (0 = unlimited), got {self.steps}")
        require(self.seed >= 0, f"{path}.seed", "must be >= 0")
        require(re.fullmatch(r"(cpu|cuda|mps)(:[0-9]+)?", self.device) is not None, f"{path}.device",
                f"must be cpu, cuda or mps, optionally with a device number (cuda:1), got {self.device!r}")
        if self.backend in ("numpy", "compiled"):
            require(self.device == "cpu", f"{path}.backend", f"the {self.backend} backend runs on the cpu only")


FAMILY_SETTINGS = {"seed": "run.seed", "lr": "optimizer.lr", "init_scale": "architecture.init.scale"}
MAX_FAMILY = 4096


@dataclass
class FamilyConfig(Serializable):
    """S runs that differ only in one setting, trained together (core/trainer.py): ``vary`` is
    seed, lr (the step size) or init_scale, and member k takes ``values[k]`` for it. Each
    member is saved as its own run file (docs/run-format.md, Families)."""

    vary: Literal["seed", "lr", "init_scale"] = "seed"
    values: list[float] = field(default_factory=list)

    def validate(self, path):
        require(1 <= len(self.values) <= MAX_FAMILY, f"{path}.values",
                f"a family has 1 to {MAX_FAMILY} members, got {len(self.values)}")
        for i, value in enumerate(self.values):
            where = f"{path}.values[{i}]"
            if self.vary == "seed":
                require(float(value).is_integer() and 0 <= value < 2**63, where,
                        f"a seed is a whole number from 0 to 2^63 - 1, got {value:g}")
            else:
                require(value > 0, where, f"{self.vary} must be > 0, got {value:g}")

    @classmethod
    def parse(cls, text: str) -> "FamilyConfig":
        """The command line's form: ``seed=0:32`` (seeds 0..31), ``lr=0.001..0.1/8`` (8 values,
        log-spaced, ends included) or ``init_scale=0.5,1,2`` (a list)."""
        vary, sep, spec = text.partition("=")
        vary = vary.strip()
        if not sep or vary not in FAMILY_SETTINGS:
            raise ConfigError(f"--family: expected seed=..., lr=... or init_scale=..., got {text!r}")
        values, _log = parse_values(spec, f"--family {vary}")
        try:
            values = [float(v) for v in values]
        except ValueError:
            raise ConfigError(f"--family: cannot read the values {spec!r} (try seed=0:32, lr=0.001..0.1/8 "
                              "or init_scale=0.5,1,2)") from None
        return cls.from_dict({"vary": vary, "values": values}, "family")

    def label(self, k: int) -> str:
        value = self.values[k]
        return f"{self.vary}={int(value)}" if self.vary == "seed" else f"{self.vary}={value:g}"


def parse_values(spec, where: str) -> tuple[list, bool]:
    """The values of ``spec`` (``a..b/N`` log-spaced, ``a:b`` whole numbers a..b-1, ``a,b,c``, or
    a Python sequence) and whether they are log-spaced; still untyped."""
    if not isinstance(spec, str):
        try:
            values = list(spec)
        except TypeError:
            values = [spec]
        if not values:
            raise ConfigError(f"{where}: no values")
        return values, False
    spec = spec.strip()
    try:
        if ".." in spec:
            ends, _slash, count = spec.partition("/")
            low, high = (float(v) for v in ends.split(".."))
            k = int(count) if count else 8
            if not (low > 0 and high > 0):
                raise ConfigError(f"{where}: log-spaced values need both ends > 0, got {spec!r} ({min(low, high):g} "
                                  "cannot be log-spaced; list the values instead, e.g. 0,0.5,1)")
            if not 2 <= k <= MAX_FAMILY:
                raise ConfigError(f"{where}: /N must be from 2 to {MAX_FAMILY}, got {k}")
            return [low * (high / low) ** (i / (k - 1)) for i in range(k)], True
        if ":" in spec:
            start, stop = (int(v) for v in spec.split(":"))
            if not 0 < stop - start <= MAX_FAMILY:
                raise ConfigError(f"{where}: {spec} holds {max(stop - start, 0)} values; 1 to {MAX_FAMILY} are allowed "
                                  "(start:stop with stop > start: 0:8 is 0 to 7)")
            return list(range(start, stop)), False
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{where}: cannot read the values {spec!r} (try 0.01..1/8, 0:8 or 16,64,256)") from None
    values = [v for v in spec.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"{where}: no values (try 0.01..1/8, 0:8 or 16,64,256)")
    return values, False


@dataclass
class ViewConfig(Serializable):
    """How the window first shows a run of this config: ``x_axis`` of the trajectory plots,
    ``log`` steps (the usual view of margin growth, which happens over decades) or ``linear``;
    ``plots``: the plots of the grid for this config, as if chosen in the View menu (by key, e.g.
    "distribution", which is off until chosen); empty: the window's current choice."""

    x_axis: Literal["log", "linear"] = "log"
    plots: list = field(default_factory=list)

    def validate(self, path):
        require(isinstance(self.plots, list) and all(isinstance(k, str) and 0 < len(k) <= 40 for k in self.plots),
                f"{path}.plots", "must be a list of plot names (the View menu's keys, e.g. \"distribution\")")


MODIFIABLE = ("dataset", "architecture", "loss", "optimizer", "run", "family")


@dataclass
class RunConfig(Serializable):
    architecture: ArchitectureSpec
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunSettings = field(default_factory=RunSettings)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    name: str = ""
    description: str = ""
    claims: list = field(default_factory=list)  # claim checks a preset makes (core/claims.py)
    family: Optional[FamilyConfig] = None  # several runs trained together; None: one run
    view: Optional[ViewConfig] = None  # a preset's first view (optional); None: the window's current one
    # the sections the user changed from the preset called ``name`` (the window fills it in and
    # adds " (modified)" to the name); empty: the preset as it is, or no preset
    modified: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, data, path=""):
        if not isinstance(data, dict):
            raise ConfigError("config: expected a JSON object")
        allowed = {"architecture", "dataset", "loss", "optimizer", "run", "recording", "name", "description", "claims",
                   "family", "view", "modified"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
        if "architecture" not in data:
            raise ConfigError("architecture: missing required field")
        from .schema import convert

        return cls(
            architecture=ArchitectureSpec.from_dict(data["architecture"], "architecture"),
            dataset=DatasetConfig.from_dict(data.get("dataset", {}), "dataset"),
            loss=LossConfig.from_dict(data.get("loss", {}), "loss"),
            optimizer=OptimizerConfig.from_dict(data.get("optimizer", {}), "optimizer"),
            run=RunSettings.from_dict(data.get("run", {}), "run"),
            recording=RecordingConfig.from_dict(data.get("recording", {}), "recording"),
            name=convert(str, data.get("name", ""), "name"),
            description=convert(str, data.get("description", ""), "description"),
            claims=_claims(data.get("claims", [])),
            family=None if data.get("family") is None else FamilyConfig.from_dict(data["family"], "family"),
            view=None if data.get("view") is None else ViewConfig.from_dict(data["view"], "view"),
            modified=_modified(data.get("modified", [])),
        )

    def to_dict(self) -> dict:
        out = super().to_dict()
        for key in ("family", "view", "modified"):
            if not out[key]:
                del out[key]  # a config without them has the JSON it had before they existed
        return out

    @property
    def family_size(self) -> int:
        return 0 if self.family is None else len(self.family.values)

    def member(self, k: int) -> "RunConfig":
        """The config of family member k: the varied setting replaced, no family. The parts a
        member does not change are shared with the family's config, not copied (an inline
        dataset can be large, and copying the whole config, family included, made building S
        members O(S^2)); nothing changes a config once its training has begun."""
        family = self.family
        value = family.values[k]
        changes = {"family": None, "name": f"{self.name or 'run'} [{family.label(k)}]"}
        if family.vary == "seed":
            changes["run"] = dataclasses.replace(self.run, seed=int(value))
        elif family.vary == "lr":
            changes["optimizer"] = dataclasses.replace(self.optimizer, lr=float(value))
        else:
            arch = self.architecture
            changes["architecture"] = dataclasses.replace(arch, init=dataclasses.replace(arch.init, scale=float(value)))
        return dataclasses.replace(self, **changes)

    def with_family(self, **vary) -> "RunConfig":
        """A copy that trains a family: exactly one of ``seed=``, ``lr=`` or ``init_scale=`` with
        the members' values, e.g. ``config.with_family(seed=range(8))``."""
        if len(vary) != 1 or next(iter(vary)) not in FAMILY_SETTINGS:
            raise ConfigError(f"family: give exactly one of {', '.join(f'{k}=' for k in FAMILY_SETTINGS)} "
                              f"with the members' values, got {', '.join(vary) or 'none'}")
        (name, values), = vary.items()
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ConfigError(f"family.values: {name}= takes a list of numbers, e.g. {name}=[...], "
                              f"got {values!r}"[:300]) from None
        out = self.copy()
        out.family = FamilyConfig(name, values)
        return out.copy()  # validated

    def claim_specs(self):
        from .claims import parse_claims

        return parse_claims(self.claims)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(parse_json(text, "config"))

    def copy(self) -> "RunConfig":
        return RunConfig.from_dict(self.to_dict())


def _modified(value) -> list:
    require(isinstance(value, list) and all(v in MODIFIABLE for v in value), "modified",
            f"a list of section names among {', '.join(MODIFIABLE)}")
    return list(value)


def _claims(raw) -> list:
    from .claims import parse_claims

    parse_claims(raw)  # validate; the JSON form is what is stored
    return [dict(c) for c in raw]


def load_config(path: str | Path) -> tuple[RunConfig, Path]:
    """Read a config JSON file (a UTF-8 byte order mark is accepted); returns the config and its
    folder. A relative ``dataset.path`` is made absolute against that folder here, so that the
    config means the same file whatever the current folder is (and wherever it is stored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    config = RunConfig.from_dict(parse_json(text, path.name))
    dataset = config.dataset
    if dataset.kind == "file" and not Path(dataset.path).is_absolute():
        dataset.path = str((path.parent / dataset.path).absolute())
    if dataset.kind == "file" and dataset.test_path is not None and not Path(dataset.test_path).is_absolute():
        dataset.test_path = str((path.parent / dataset.test_path).absolute())
    return config, path.parent
