"""Small builders shared by the tests."""

from __future__ import annotations

import numpy as np

from core.architecture import ArchitectureSpec, Dense, mlp
from core.config import DatasetConfig, LossConfig, OptimizerConfig, RecordingConfig, RunConfig, RunSettings
from core.datasets import Dataset


def config_for(spec: ArchitectureSpec, dataset: Dataset | None = None, *, steps=1000, lr=0.1, rule="loss_normalized",
               kind="gd", loss="exponential", seed=0, dtype="float64", **recording) -> RunConfig:
    ds = DatasetConfig.inline(dataset) if dataset is not None else DatasetConfig(generator="blobs")
    return RunConfig(spec, dataset=ds, loss=LossConfig(kind=loss),
                     optimizer=OptimizerConfig(kind=kind, lr=lr, step_rule=rule,
                                               batch_size=10 if kind == "sgd" else None),
                     run=RunSettings(steps=steps, seed=seed, dtype=dtype),
                     recording=RecordingConfig(**recording))


def symmetric(dataset: Dataset) -> Dataset:
    """Add (-x_i, -y_i) for every point: the l2 SVM of symmetric data has zero intercept, so
    scikit-learn's SVC (which always fits one) solves the bias-free problem exactly."""
    return Dataset(np.vstack([dataset.X, -dataset.X]), np.concatenate([dataset.y, -dataset.y]), dataset.name)


def linear_spec(dim=2) -> ArchitectureSpec:
    return ArchitectureSpec(dim, [Dense(1, False)])


__all__ = ["config_for", "symmetric", "linear_spec", "mlp"]
