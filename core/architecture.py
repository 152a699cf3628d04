"""Architecture specs: a JSON-serializable description of a network with a scalar output (two
classes, labels -1/+1) or C >= 3 outputs (C classes, labels 0..C-1: THEORY.md, Multi-class).

A spec is an input dimension, a sequence of blocks and an initialization. Blocks:
``dense`` (width, bias), ``activation`` (kind and its parameter), ``residual`` (inner blocks
and a fixed scale on the branch: x -> x + scale * inner(x)) and ``ensemble`` (the sum of
sub-networks of different depths, Nacson et al. 2019); for image inputs (``input_shape`` =
[channels, height, width], each row of X holding one image channel by channel, row-major)
``conv2d`` (channels, kernel, stride, padding, bias), ``max_pool`` and ``avg_pool`` (kernel,
stride) and ``flatten``. The last block must produce width 1 or C >= 3 (a vector, not an
image); which of them a dataset needs is check_output_width's (core/trainer.py calls it).

Parameters are flattened in spec order: each dense layer's weight (out x in, row-major) then
its bias; a conv layer's kernel (out x in x k x k, row-major: the matrix out x (in k k) that
stable ranks read) then its bias; residual inner blocks and ensemble members in order.
Snapshots use this order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

import numpy as np

from . import activations
from .errors import ConfigError
from .schema import Serializable, convert, describe, require
from .schema import from_dict as schema_from_dict

# Refused before anything is allocated (core/budget.py has the limits that depend on the data)
MAX_PARAMETERS = 10**7

ActivationKind = Literal["identity", "relu", "leaky_relu", "abs", "relu_k", "gelu", "silu",
                         "softplus", "leaky_softplus", "elu", "tanh", "sigmoid"]


FROZEN_PATTERNS = ("+-1/m",)


@dataclass
class Dense(Serializable):
    """A fully connected layer h -> W h (+ b).

    ``frozen`` fixes W instead of training it: "+-1/m" (each row: +1/m on the first half of its
    m inputs, -1/m on the second half, Kou, Chen and Gu 2023; Cai et al. 2024's +-1/2 for m = 2)
    or the values of W (out x in, row-major). Frozen weights are not parameters: theta, its norm,
    the order M, margins and KKT are over the trained weights only (THEORY.md, More blocks)."""

    width: int
    bias: bool = False
    frozen: Optional[Union[Literal["+-1/m"], list[float]]] = None
    type: Literal["dense"] = "dense"

    def validate(self, path):
        require(1 <= self.width <= 100_000, f"{path}.width", f"must be between 1 and 100000, got {self.width}")
        if self.frozen is not None:
            require(not self.bias, f"{path}.bias", "a frozen layer has no bias (its weights are fixed, not trained)")
            if not isinstance(self.frozen, str):
                require(all(np.isfinite(v) for v in self.frozen), f"{path}.frozen", "the frozen values must be finite")

    def to_dict(self) -> dict:
        out = {"type": "dense", "width": self.width, "bias": self.bias}
        if self.frozen is not None:
            out["frozen"] = self.frozen if isinstance(self.frozen, str) else [float(v) for v in self.frozen]
        return out


def frozen_weight(block: Dense, fan_in: int) -> np.ndarray:
    """The fixed matrix W (out x in) of a frozen dense layer (Dense.frozen)."""
    if isinstance(block.frozen, str):  # "+-1/m"
        row = np.full(fan_in, 1.0 / fan_in)
        row[fan_in // 2:] *= -1.0
        return np.tile(row, (block.width, 1))
    return np.asarray(block.frozen, dtype=np.float64).reshape(block.width, fan_in)


def is_frozen(block) -> bool:
    return isinstance(block, Dense) and block.frozen is not None


def has_frozen(blocks) -> bool:
    """Whether any block (nested ones too) is a frozen dense layer."""
    return _find(blocks, Dense, "", lambda b: b.frozen is not None) is not None


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
            elif self.kind == "leaky_softplus":
                require(0 <= self.param < 1, f"{path}.param", f"c must be in [0, 1), got {self.param}")
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


@dataclass
class Conv2d(Serializable):
    """A 2-D convolution of an image (channels x height x width): ``channels`` output channels,
    a square ``kernel`` x ``kernel`` window moved by ``stride``, ``padding`` zeros on each side."""

    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    bias: bool = False
    type: Literal["conv2d"] = "conv2d"

    def validate(self, path):
        require(1 <= self.channels <= 10_000, f"{path}.channels", f"must be between 1 and 10000, got {self.channels}")
        require(self.kernel >= 1, f"{path}.kernel", f"must be >= 1, got {self.kernel}")
        require(self.stride >= 1, f"{path}.stride", f"must be >= 1, got {self.stride}")
        require(self.padding >= 0, f"{path}.padding", f"must be >= 0, got {self.padding}")

    def to_dict(self) -> dict:
        return {"type": "conv2d", "channels": self.channels, "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "bias": self.bias}


@dataclass
class Pool(Serializable):
    """Max- or average-pooling over ``kernel`` x ``kernel`` windows moved by ``stride`` (default:
    the kernel, windows side by side), channel by channel."""

    type: Literal["max_pool", "avg_pool"] = "max_pool"
    kernel: int = 2
    stride: Optional[int] = None

    def validate(self, path):
        require(self.kernel >= 1, f"{path}.kernel", f"must be >= 1, got {self.kernel}")
        require(self.stride is None or self.stride >= 1, f"{path}.stride", f"must be >= 1, got {self.stride}")

    @property
    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def to_dict(self) -> dict:
        return {"type": self.type, "kernel": self.kernel, "stride": self.step}


@dataclass
class Flatten(Serializable):
    """An image (channels x height x width) as a vector, channel by channel, row-major."""

    type: Literal["flatten"] = "flatten"

    def to_dict(self) -> dict:
        return {"type": "flatten"}


IMAGE_BLOCKS = (Conv2d, Pool, Flatten)
WEIGHT_BLOCKS = (Dense, Conv2d)

BLOCK_TYPES = {"dense": Dense, "activation": Activation, "residual": Residual, "ensemble": Ensemble,
               "conv2d": Conv2d, "max_pool": Pool, "avg_pool": Pool, "flatten": Flatten}


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
    input_shape: Optional[list] = None  # [channels, height, width] when the input is an image

    @classmethod
    def from_dict(cls, data, path="architecture"):
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected an object")
        allowed = {"input_dim", "blocks", "init", "input_shape"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
        if "input_dim" not in data:
            raise ConfigError(f"{path}.input_dim: missing required field")
        if "blocks" not in data:
            raise ConfigError(f"{path}.blocks: missing required field")
        shape = data.get("input_shape")
        spec = cls(
            input_dim=convert(int, data["input_dim"], f"{path}.input_dim"),
            blocks=parse_blocks(data["blocks"], f"{path}.blocks"),
            init=Init.from_dict(data.get("init", {}), f"{path}.init"),
            input_shape=None if shape is None else convert(list[int], shape, f"{path}.input_shape"),
        )
        spec.validate(path)
        return spec

    def validate(self, path="architecture"):
        require(self.input_dim >= 1, f"{path}.input_dim", f"must be >= 1, got {self.input_dim}")
        if self.input_shape is not None:
            shape = list(self.input_shape)
            require(len(shape) == 3 and all(v >= 1 for v in shape), f"{path}.input_shape",
                    f"must be [channels, height, width] of whole numbers >= 1, got {shape}")
            require(shape[0] * shape[1] * shape[2] == self.input_dim, f"{path}.input_shape",
                    f"{shape[0]} x {shape[1]} x {shape[2]} = {shape[0] * shape[1] * shape[2]} does not equal "
                    f"input_dim {self.input_dim}")
        require(len(self.blocks) > 0, f"{path}.blocks", "the network has no blocks; a linear model is [dense width 1]")
        end = output_shape(self.blocks, self.in_shape, f"{path}.blocks")
        size = parameter_count(self)
        require(size > 0, f"{path}.blocks", "the network has no trainable parameters: add a dense layer")
        require(size <= MAX_PARAMETERS, f"{path}.blocks",
                f"the network has {size:.2g} parameters; the limit is {MAX_PARAMETERS:.0e} (README, Limits)")
        require(len(end) == 1, f"{path}.blocks",
                f"the network ends with an image of shape {_image(end)}: add a flatten block and a dense layer of width 1")
        # width 2 is neither: a two-class network has ONE output (a binary run is never C = 2)
        require(end[0] != 2, f"{path}.blocks",
                "the network ends with width 2: two classes need a scalar output (a dense layer of width 1), "
                "C >= 3 classes a dense layer of width C")

    @property
    def in_shape(self) -> tuple:
        """The input's shape: (input_dim,) for a vector, (channels, height, width) for an image."""
        return (self.input_dim,) if self.input_shape is None else tuple(int(v) for v in self.input_shape)

    def to_dict(self) -> dict:
        out = {"input_dim": self.input_dim, "blocks": [b.to_dict() for b in self.blocks], "init": self.init.to_dict()}
        if self.input_shape is not None:
            out["input_shape"] = [int(v) for v in self.input_shape]
        return out


def _image(shape: tuple) -> str:
    return " x ".join(str(v) for v in shape)


def _window(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions of a window along one side: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def block_shape(block, shape: tuple, path: str) -> tuple:
    """The shape a (non-nesting) block makes of ``shape``; ConfigError naming the field where it does not fit."""
    if isinstance(block, Dense):
        require(len(shape) == 1, path, f"a dense layer needs a vector, but its input is an image of shape "
                f"{_image(shape)}: add a flatten block before it")
        if block.frozen == "+-1/m":
            require(shape[0] % 2 == 0, f"{path}.frozen",
                    f"+-1/m splits the layer's m inputs in two halves, but it has m = {shape[0]} (odd)")
        elif block.frozen is not None:
            require(len(block.frozen) == block.width * shape[0], f"{path}.frozen",
                    f"needs {block.width} x {shape[0]} = {block.width * shape[0]} values (out x in, row-major), "
                    f"got {len(block.frozen)}")
        return (block.width,)
    if isinstance(block, (Conv2d, Pool)):
        name = "a conv2d layer" if isinstance(block, Conv2d) else f"a {block.type} block"
        require(len(shape) == 3, path, f"{name} needs an image, but its input is a vector of width {shape[0]} "
                "(set architecture.input_shape = [channels, height, width] and put image blocks before any flatten)")
        channels, height, width = shape
        padding = block.padding if isinstance(block, Conv2d) else 0
        stride = block.stride if isinstance(block, Conv2d) else block.step
        padded = f"{height + 2 * padding} x {width + 2 * padding}"
        require(block.kernel <= min(height, width) + 2 * padding, f"{path}.kernel",
                f"the kernel {block.kernel} is larger than the "
                + (f"padded input {padded} (image {height} x {width}, padding {padding})" if padding else f"input {padded}"))
        out = (_window(height, block.kernel, stride, padding), _window(width, block.kernel, stride, padding))
        return ((block.channels if isinstance(block, Conv2d) else channels),) + out
    if isinstance(block, Flatten):
        return (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
    return shape  # an activation keeps the shape


def output_shape(blocks: list, shape: tuple, path: str) -> tuple:
    """Propagate shapes ((width,) or (channels, height, width)) through ``blocks``; raise
    ConfigError where they do not fit."""
    for i, block in enumerate(blocks):
        sub = f"{path}[{i}]"
        if isinstance(block, Residual):
            inner = output_shape(block.blocks, shape, f"{sub}.blocks")
            if len(shape) == len(inner) == 1:
                require(inner == shape, sub, f"the residual branch maps width {shape[0]} to {inner[0]}; "
                        f"it must give back {shape[0]}")
            require(inner == shape, sub, f"the residual branch maps shape {_image(shape)} to {_image(inner)}; "
                    f"it must give back {_image(shape)}")
        elif isinstance(block, Ensemble):
            ends = [output_shape(m, shape, f"{sub}.members[{k}]") for k, m in enumerate(block.members)]
            require(len(set(ends)) == 1, sub, "the ensemble members end at different "
                    + ("widths " + str([e[0] for e in ends]) if all(len(e) == 1 for e in ends)
                       else "shapes " + ", ".join(_image(e) for e in ends)))
            shape = ends[0]
        else:
            shape = block_shape(block, shape, sub)
    return shape


def output_width(blocks: list, width, path: str) -> int:
    """The number of values ``blocks`` make of an input of ``width`` (a number or a shape tuple)."""
    shape = output_shape(blocks, (width,) if isinstance(width, int) else tuple(width), path)
    return int(np.prod(shape))


def output_classes(spec: ArchitectureSpec) -> int:
    """The network's number of outputs: 1 (a scalar: two classes) or C >= 3 (C classes)."""
    return output_width(spec.blocks, spec.in_shape, "architecture.blocks")


def check_output_width(spec: ArchitectureSpec, classes: int) -> None:
    """ConfigError unless the network's outputs fit a dataset of ``classes`` classes: width 1 for
    two classes (labels -1/+1), width C for C >= 3."""
    width, needed = output_classes(spec), 1 if classes == 2 else classes
    if width != needed:
        what = "is binary (two classes)" if classes == 2 else f"has {classes} classes"
        raise ConfigError(f"architecture: the network ends with width {width} but the dataset {what}: "
                          f"the last dense layer needs width {needed}")


def parameter_count(spec: ArchitectureSpec) -> int:
    return sum(size for _name, size, _shape in parameter_layout(spec))


def parameter_layout(spec: ArchitectureSpec) -> list[tuple[str, int, tuple]]:
    """(name, size, shape) of every parameter tensor in flattening order; a conv kernel's shape is
    the matrix (out, in k k) whose rows are its flattened filters."""
    layout: list = []

    def walk(blocks, shape, prefix):
        for i, block in enumerate(blocks):
            name = f"{prefix}{i}"
            if isinstance(block, Residual):
                walk(block.blocks, shape, f"{name}.res.")
                continue
            if isinstance(block, Ensemble):
                ends = [walk(m, shape, f"{name}.m{k}.") for k, m in enumerate(block.members)]
                shape = ends[0]
                continue
            end = block_shape(block, shape, name)
            if isinstance(block, WEIGHT_BLOCKS) and not is_frozen(block):  # frozen weights are not in theta
                fan_in = shape[0] if isinstance(block, Dense) else shape[0] * block.kernel ** 2
                layout.append((f"{name}.weight", end[0] * fan_in, (end[0], fan_in)))
                if block.bias:
                    layout.append((f"{name}.bias", end[0], (end[0],)))
            shape = end
        return shape

    walk(spec.blocks, spec.in_shape, "")
    return layout


def weight_slices(spec: ArchitectureSpec) -> list[tuple[str, slice, tuple]]:
    """(name, slice of theta, matrix shape) of every weight matrix (a conv kernel as out x (in k k)),
    for stable ranks and layer norms."""
    out, offset = [], 0
    for name, size, shape in parameter_layout(spec):
        if name.endswith(".weight"):
            out.append((name, slice(offset, offset + size), shape))
        offset += size
    return out


def check_image_input(spec: ArchitectureSpec, image_shape) -> None:
    """Refuse a network whose input_shape reads the dataset's rows as images of another size:
    ``image_shape`` is the dataset's (height, width) or None (core/datasets.py Dataset.image_shape)."""
    if spec.input_shape is None or image_shape is None:
        return
    channels, height, width = (int(v) for v in spec.input_shape)
    h, w = (int(v) for v in image_shape)
    require((height, width) == (h, w), "architecture.input_shape",
            f"the network reads {height} x {width} images, but the dataset's images are {h} x {w}")


def _find(blocks, kinds, path, where=None):
    """The path of the first block of ``kinds`` in ``blocks`` (nested ones too) for which
    ``where(block)`` holds (every one when None), or None."""
    for i, block in enumerate(blocks):
        sub = f"{path}[{i}]"
        if isinstance(block, kinds) and (where is None or where(block)):
            return sub
        inner = ([block.blocks] if isinstance(block, Residual) else block.members if isinstance(block, Ensemble) else [])
        for k, b in enumerate(inner):
            found = _find(b, kinds, f"{sub}.blocks" if isinstance(block, Residual) else f"{sub}.members[{k}]", where)
            if found:
                return found
    return None


def needs_autograd(spec: ArchitectureSpec) -> str | None:
    """Why ``spec`` trains only on the autograd engine (core/torch_network.py), or None: every
    block has a hand-written numpy node today (conv2d, pooling and flatten in core/conv_nodes.py),
    so None."""
    return None


def image_block(spec: ArchitectureSpec) -> str | None:
    """The path of ``spec``'s first conv2d, pooling or flatten block, or None: the engines that
    have them are the numpy and autograd ones (core/engines/__init__.py)."""
    return _find(spec.blocks, IMAGE_BLOCKS, "architecture.blocks")


def is_linear_model(spec: ArchitectureSpec) -> bool:
    """A single dense layer of width 1: f(x) = w.x (+ b), where the SVM direction is the reference."""
    block = spec.blocks[0]
    return len(spec.blocks) == 1 and isinstance(block, Dense) and block.width == 1 and block.frozen is None


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
