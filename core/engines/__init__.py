"""Engines: what takes the steps. Each advances S >= 1 members of one config from a step to an
end step in ONE call and hands back, as one StepBlock (core/step_block.py), the quantities of
the steps the driver said are due a record or a snapshot; the driver (core/trainer.py) makes
the records and snapshots from it. Engines never import the driver (pyproject.toml's
import-linter contract).

The interface (every engine has it):

- ``size``: S; ``max_kept``: the most kept steps one advance may hold (the driver ends a block
  there); ``note``: why the engine trains as it does, or "";
- ``advance(start, end, record_steps, snapshot_steps, deadline) -> StepBlock``: steps [start,
  end) or until ``time.perf_counter()`` passes ``deadline`` (None: no limit); every member stops
  where it fails (StepBlock.diverged_at) and stays frozen there;
- ``state() -> list[dict]`` and ``load_state(states)``: each member's optimizer state, named
  and shaped as core/optimizers.py's state_layout (the driver checks the shapes);
- ``step_threads()``: a context the steps run in (the torch thread settings they want).

``make_engine`` picks one by what the config needs: for image blocks (conv2d, pooling, flatten)
the numpy engine on the CPU, else torch autograd (the compiled and batched engines have none;
the note says so); the compiled
engine (numba, core/engines/compiled_engine.py) for 'compiled' (a family's members one by one), and
for 'auto' on the CPU for a single run once its kernels are in numba's on-disk cache, else numpy on the CPU ('auto' or
'numpy') for a single run; the batched torch engine for a family, for 'batched', or on a device other than the
CPU; torch autograd for 'torch' (the reference); and for sgd, whose minibatches are drawn per
run, the numpy (autograd off the CPU) engine with the members one by one. A network with C >= 3
outputs (multi-class) trains on the numpy or autograd engine ('auto' never picks another; the
compiled and batched engines, asked for by name, refuse it with one line).
"""

from __future__ import annotations

import numpy as np

from ..architecture import has_frozen, image_block, output_classes
from ..config import RunConfig
from ..errors import TrainingError

BATCHED_OPTIMIZERS = ("gd", "normalized_gd", "sign", "coordinate", "momentum", "adam")  # optimizers.BatchedRule


def check_device(device: str):
    """torch, once ``device`` is known to be there; a TrainingError saying what is missing otherwise."""
    try:
        import torch
    except ImportError:
        raise TrainingError("the torch backend needs PyTorch installed") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"run.device: {device} was asked for, but no CUDA GPU is available here")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TrainingError("run.device: mps was asked for, but it is not available here")
    return torch


def make_engine(config: RunConfig, X: np.ndarray, y: np.ndarray, thetas: np.ndarray, lrs, seeds,
                order: float | None):
    """The engine for ``config``'s S = len(thetas) members (see the module docstring): data X (n,
    d) and labels y in the run's dtype, theta_0 of each member (S, P), their step sizes and seeds,
    and the homogeneity order M (None: none)."""
    settings = config.run
    image = image_block(config.architecture)
    if image is not None:  # conv2d, pooling, flatten: the numpy and autograd engines have them
        return _image_engine(config, X, y, thetas, lrs, seeds, order, image)
    if settings.backend == "compiled" or (settings.backend == "auto" and compiled_by_default(config, len(thetas))):
        from .compiled_engine import CompiledEngine, covers

        reason = covers(config)
        if reason is not True:
            raise TrainingError(f"run.backend compiled: {reason}")
        return CompiledEngine(config, X, y, thetas, lrs, seeds, order)
    return _torch_or_numpy(config, X, y, thetas, lrs, seeds, order)


def compiled_by_default(config: RunConfig, size: int) -> bool:
    """'auto' on the CPU takes the compiled engine for a single run it covers once its kernels for
    the run's dtype are in numba's on-disk cache (a file look-up): a process never waits for a
    first compile (5-20 s) unless asked (backend 'compiled'); the numpy engine meanwhile."""
    if size != 1 or config.run.device != "cpu":
        return False
    from .compiled_engine import covers, kernels_ready

    return kernels_ready(config.run.dtype) and covers(config) is True


def _image_engine(config, X, y, thetas, lrs, seeds, order, where):
    """A network with image blocks: the numpy engine (core/conv_nodes.py) on the CPU for 'auto'
    and 'numpy', torch autograd for 'torch' and off the CPU; the compiled and batched engines have
    no image blocks, so those backends train on autograd and the note says so. A family's members
    train one by one (docs/performance.md, convolutional networks)."""
    settings = config.run
    if settings.backend == "numpy" or (settings.backend == "auto" and settings.device == "cpu"):
        from .numpy_engine import NumpyEngine

        engine = NumpyEngine(config, X, y, thetas, lrs, seeds, order)
    else:
        from .autograd_engine import AutogradEngine

        engine = AutogradEngine(config, X, y, thetas, lrs, seeds, order)
        if settings.backend not in ("auto", "torch"):
            engine.note = (f"run.backend {settings.backend}: {where}: the {settings.backend} engine has no conv2d, "
                           "pooling or flatten blocks; this run trains on autograd")
    if len(thetas) > 1 and not engine.note:
        engine.note = f"{where}: a network with image blocks trains a family's members one by one"
    return engine


def _torch_or_numpy(config, X, y, thetas, lrs, seeds, order):
    settings, kind = config.run, config.optimizer.kind
    S = len(thetas)
    host = settings.backend == "numpy" or (settings.backend == "auto" and settings.device == "cpu")
    classes = output_classes(config.architecture)
    if classes > 1:  # C outputs: the numpy or autograd engine (the batched one has a scalar output only)
        if settings.backend == "batched":
            raise TrainingError(f"run.backend batched: the batched engine trains a scalar output (two classes), "
                                f"not {classes} outputs: use run.backend numpy or torch")
        if host or S > 1:
            from .numpy_engine import NumpyEngine

            engine = NumpyEngine(config, X, y, thetas, lrs, seeds, order)
            if S > 1:
                engine.note = f"{classes} outputs: the batched engine has a scalar output only; the members train one by one"
            return engine
        from .autograd_engine import AutogradEngine

        return AutogradEngine(config, X, y, thetas, lrs, seeds, order)
    undoes = config.optimizer.step_rule == "loss_based"  # judged and undone step by step: the host loop's
    if kind not in BATCHED_OPTIMIZERS or undoes:
        if host or S > 1:
            from .numpy_engine import NumpyEngine

            engine = NumpyEngine(config, X, y, thetas, lrs, seeds, order)
        else:
            from .autograd_engine import AutogradEngine

            engine = AutogradEngine(config, X, y, thetas, lrs, seeds, order)
        if undoes and settings.backend == "batched":
            engine.note = ("run.backend batched: the loss_based step rule undoes steps one run at a time; "
                           f"this run trains on {'numpy' if host or S > 1 else 'autograd'}")
        return engine
    if S > 1 or settings.backend == "batched" or (settings.backend == "auto" and settings.device != "cpu"):
        if has_frozen(config.architecture.blocks):  # the batched network has no frozen layers
            if host or S > 1:
                from .numpy_engine import NumpyEngine as Engine
            else:
                from .autograd_engine import AutogradEngine as Engine
            engine = Engine(config, X, y, thetas, lrs, seeds, order)
            engine.note = ("frozen dense layers: the batched engine has none; "
                           + ("the members train one by one on numpy" if S > 1 else "this run trains on autograd"))
            return engine
        from .batched_engine import BatchedEngine

        return BatchedEngine(config, X, y, thetas, lrs, order)
    if host:
        from .numpy_engine import NumpyEngine

        return NumpyEngine(config, X, y, thetas, lrs, seeds, order)
    from .autograd_engine import AutogradEngine

    return AutogradEngine(config, X, y, thetas, lrs, seeds, order)
