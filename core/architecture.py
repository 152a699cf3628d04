"""Architecture specs: a JSON-serializable description of a scalar-output network.

A spec is an input dimension, a sequence of blocks and an initialization. Blocks:
``dense`` (width, bias), ``activation`` (kind and its parameter), ``residual`` (inner blocks
and a fixed scale on the branch: x -> x + scale * inner(x)) and ``ensemble`` (the sum of
sub-networks of different depths, Nacson et al. 2019). The last block must produce width 1.

Parameters are flattened in spec order: each dense layer's weight (out x in, row-major) then
its bias; residual inner blocks and ensemble members in order. Snapshots use this order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from . import activations
from .errors import ConfigError
from .schema import Serializable, convert, describe, require
from .schema import from_dict as schema_from_dict

# Refused before anything is allocated (core/budget.py has the limits that depend on the data)
MAX_PARAMETERS = 10**7

ActivationKind = Literal["identity", "relu", "leaky_relu", "abs", "relu_k", "gelu", "silu",
                         "softplus", "elu", "tanh", "sigmoid"]


@dataclass
class Dense(Serializable):
    """A fully connected layer h -> W h (+ b)."""

    width: int
    bias: bool = False
    type: Literal["dense"] = "dense"

    def validate(self, path):
        require(1 <= self.width <= 100_000, f"{path}.width", f"must be between 1 and 100000, got {self.width}")

    def to_dict(self) -> dict:
        return {"type": "dense", "width": self.width, "bias": self.bias}


@dataclass
class Activation(Serializable):
    """A pointwise activation; ``param`` is the slope, k, beta or alpha where one applies."""

    kind: ActivationKind
    param: Optional[float] = None
    type: Literal["activation"] = "activation"

    def validate(self, path):
        if self.kind in activations.PARAMETERS:
            name, default = activations.PARAMETERS[self.kind]
            if self.param is None:
                self.param = default
            if self.kind == "relu_k":
                require(self.param >= 1, f"{path}.param", f"k must be >= 1, got {self.param}")
            elif self.kind == "leaky_relu":
                require(self.param >= 0, f"{path}.param", f"the slope must be >= 0, got {self.param}")
            else:
                require(self.param > 0, f"{path}.param", f"{name} must be > 0, got {self.param}")
        else:
            require(self.param is None, f"{path}.param", f"{self.kind} takes no parameter")

    def to_dict(self) -> dict:
        out = {"type": "activation", "kind": self.kind}
        if self.param is not None:
            out["param"] = self.param
        return out

    @property
    def value(self) -> float:
        return 0.0 if self.param is None else float(self.param)


@dataclass
class Residual(Serializable):
    """x -> x + scale * inner(x); the inner blocks must map width w back to width w."""

    blocks: list = field(default_factory=list)
    scale: float = 1.0
    type: Literal["residual"] = "residual"

    @classmethod
    def from_dict(cls, data, path=""):
        data = dict(data)
        blocks = parse_blocks(data.pop("blocks", []), f"{path}.blocks")
        obj = schema_from_dict(cls, {**data, "blocks": []}, path)
        obj.blocks = blocks
        require(len(blocks) > 0, f"{path}.blocks", "a residual block needs at least one inner block")
        return obj

    def to_dict(self) -> dict:
        return {"type": "residual", "scale": self.scale, "blocks": [b.to_dict() for b in self.blocks]}


@dataclass
class Ensemble(Serializable):
    """The sum of sub-networks (members), each a sequence of blocks; all end at the same width."""

    members: list = field(default_factory=list)
    type: Literal["ensemble"] = "ensemble"

    @classmethod
    def from_dict(cls, data, path=""):
        data = dict(data)
        raw = data.pop("members", [])
        if not isinstance(raw, list):
            raise ConfigError(f"{path}.members: expected a list of block lists")
        members = [parse_blocks(m, f"{path}.members[{i}]") for i, m in enumerate(raw)]
        obj = schema_from_dict(cls, {**data, "members": []}, path)
        obj.members = members
        require(len(members) >= 1, f"{path}.members", "an ensemble needs at least one member")
        for i, m in enumerate(members):
            require(len(m) > 0, f"{path}.members[{i}]", "a member needs at least one block")
        return obj

    def to_dict(self) -> dict:
        return {"type": "ensemble", "members": [[b.to_dict() for b in m] for m in self.members]}


BLOCK_TYPES = {"dense": Dense, "activation": Activation, "residual": Residual, "ensemble": Ensemble}


def parse_blocks(data, path: str) -> list:
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of blocks")
    blocks = []
    for i, item in enumerate(data):
        sub = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{sub}: expected a block object with a 'type'")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in BLOCK_TYPES:
            raise ConfigError(f"{sub}.type: must be one of {', '.join(BLOCK_TYPES)}, got {describe(kind)}")
        blocks.append(BLOCK_TYPES[kind].from_dict(item, sub))
    return blocks


@dataclass
class Init(Serializable):
    """Initialization: ``scheme`` draws each weight matrix, then all parameters are multiplied
    by ``scale`` (small versus large initialization changes the regime). Biases start at 0.

    he: N(0, 2 / fan_in); lecun: N(0, 1 / fan_in); normal: N(0, std^2); zeros: all 0."""

    scheme: Literal["he", "lecun", "normal", "zeros"] = "he"
    scale: float = 1.0
    std: float = 1.0

    def validate(self, path):
        require(self.scale >= 0, f"{path}.scale", f"must be >= 0, got {self.scale}")
        require(self.std > 0, f"{path}.std", f"must be > 0, got {self.std}")


@dataclass
class ArchitectureSpec(Serializable):
    input_dim: int
    blocks: list
    init: Init = field(default_factory=Init)

    @classmethod
    def from_dict(cls, data, path="architecture"):
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected an object")
        allowed = {"input_dim", "blocks", "init"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
        if "input_dim" not in data:
            raise ConfigError(f"{path}.input_dim: missing required field")
        if "blocks" not in data:
            raise ConfigError(f"{path}.blocks: missing required field")
        spec = cls(
            input_dim=convert(int, data["input_dim"], f"{path}.input_dim"),
            blocks=parse_blocks(data["blocks"], f"{path}.blocks"),
            init=Init.from_dict(data.get("init", {}), f"{path}.init"),
        )
        spec.validate(path)
        return spec

    def validate(self, path="architecture"):
        require(self.input_dim >= 1, f"{path}.input_dim", f"must be >= 1, got {self.input_dim}")
        require(len(self.blocks) > 0, f"{path}.blocks", "the network has no blocks; a linear model is [dense width 1]")
        width = output_width(self.blocks, self.input_dim, f"{path}.blocks")
        size = parameter_count(self)
        require(size > 0, f"{path}.blocks", "the network has no trainable parameters: add a dense layer")
        require(size <= MAX_PARAMETERS, f"{path}.blocks",
                f"the network has {size:.2g} parameters; the limit is {MAX_PARAMETERS:.0e} (README, Limits)")
        require(width == 1, f"{path}.blocks",
                f"the network must end with a scalar output, but its last block has width {width}: add a dense layer of width 1")

    def to_dict(self) -> dict:
        return {"input_dim": self.input_dim, "blocks": [b.to_dict() for b in self.blocks], "init": self.init.to_dict()}


def output_width(blocks: list, width: int, path: str) -> int:
    """Propagate widths through ``blocks``; raise ConfigError where they do not fit."""
    for i, block in enumerate(blocks):
        sub = f"{path}[{i}]"
        if isinstance(block, Dense):
            width = block.width
        elif isinstance(block, Residual):
            inner = output_width(block.blocks, width, f"{sub}.blocks")
            require(inner == width, sub, f"the residual branch maps width {width} to {inner}; it must give back {width}")
        elif isinstance(block, Ensemble):
            widths = [output_width(m, width, f"{sub}.members[{k}]") for k, m in enumerate(block.members)]
            require(len(set(widths)) == 1, sub, f"the ensemble members end at different widths {widths}")
            width = widths[0]
    return width


def parameter_count(spec: ArchitectureSpec) -> int:
    return sum(size for _name, size, _shape in parameter_layout(spec))


def parameter_layout(spec: ArchitectureSpec) -> list[tuple[str, int, tuple]]:
    """(name, size, shape) of every parameter tensor in flattening order."""
    layout: list = []

    def walk(blocks, width, prefix):
        for i, block in enumerate(blocks):
            name = f"{prefix}{i}"
            if isinstance(block, Dense):
                layout.append((f"{name}.weight", block.width * width, (block.width, width)))
                if block.bias:
                    layout.append((f"{name}.bias", block.width, (block.width,)))
                width = block.width
            elif isinstance(block, Residual):
                walk(block.blocks, width, f"{name}.res.")
            elif isinstance(block, Ensemble):
                ends = [walk(m, width, f"{name}.m{k}.") for k, m in enumerate(block.members)]
                width = ends[0]
        return width

    walk(spec.blocks, spec.input_dim, "")
    return layout


def is_linear_model(spec: ArchitectureSpec) -> bool:
    """A single dense layer of width 1: f(x) = w.x (+ b), where the SVM direction is the reference."""
    return len(spec.blocks) == 1 and isinstance(spec.blocks[0], Dense)


def mlp(input_dim: int, widths: list[int], activation: str = "relu", param: float | None = None,
        bias: bool = False, init: Init | None = None) -> ArchitectureSpec:
    """Dense layers of ``widths`` with ``activation`` between them and a scalar output."""
    blocks: list = []
    for w in widths:
        blocks += [Dense(w, bias), Activation(activation, param)]
    blocks.append(Dense(1, False))
    spec = ArchitectureSpec(input_dim, blocks, init or Init())
    for b in spec.blocks:
        if isinstance(b, Activation):
            b.validate("")
    return spec
