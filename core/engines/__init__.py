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

``make_engine`` picks one by what the config needs: numpy on the CPU ('auto' or 'numpy') for a
single run; the batched torch engine for a family, for 'batched', or on a device other than the
CPU; torch autograd for 'torch' (the reference); and for sgd, whose minibatches are drawn per
run, the numpy (autograd off the CPU) engine with the members one by one.
"""

from __future__ import annotations

import numpy as np

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
    settings, kind = config.run, config.optimizer.kind
    S = len(thetas)
    host = settings.backend == "numpy" or (settings.backend == "auto" and settings.device == "cpu")
    if kind not in BATCHED_OPTIMIZERS:
        if host or S > 1:
            from .numpy_engine import NumpyEngine

            return NumpyEngine(config, X, y, thetas, lrs, seeds, order)
        from .autograd_engine import AutogradEngine

        return AutogradEngine(config, X, y, thetas, lrs, seeds, order)
    if S > 1 or settings.backend == "batched" or (settings.backend == "auto" and settings.device != "cpu"):
        from .batched_engine import BatchedEngine

        return BatchedEngine(config, X, y, thetas, lrs, order)
    if host:
        from .numpy_engine import NumpyEngine

        return NumpyEngine(config, X, y, thetas, lrs, seeds, order)
    from .autograd_engine import AutogradEngine

    return AutogradEngine(config, X, y, thetas, lrs, seeds, order)
