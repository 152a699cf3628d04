"""Frozen dense layers (core/architecture.py Dense.frozen): fixed weights that are not part of
theta (THEORY.md, More blocks), in the spec, both networks, the homogeneity analysis and the engines."""

from __future__ import annotations

import numpy as np
import pytest

from margin_explorer.core.architecture import ArchitectureSpec, frozen_weight, parameter_count
from margin_explorer.core.config import RunConfig
from margin_explorer.core.datasets import nearly_orthogonal
from margin_explorer.core.errors import ConfigError, TrainingError
from margin_explorer.core.homogeneity import EXACT, analyze, numeric_check
from margin_explorer.core.network import NumpyNetwork, initial_parameters
from margin_explorer.core.torch_network import AutogradNetwork
from margin_explorer.core.trainer import Trainer

from .helpers import config_for


def two_layer(d, m, frozen="+-1/m", activation="leaky_relu"):
    out = {"type": "dense", "width": 1}
    if frozen is not None:
        out["frozen"] = frozen
    return ArchitectureSpec.from_dict({"input_dim": d, "blocks": [
        {"type": "dense", "width": m}, {"type": "activation", "kind": activation}, out]})


def test_pattern_is_plus_minus_one_over_m_by_halves():
    W = frozen_weight(two_layer(3, 6).blocks[2], 6)
    np.testing.assert_array_equal(W, [[1 / 6] * 3 + [-1 / 6] * 3])


def test_theta_and_order_exclude_frozen_weights():
    frozen, trained = two_layer(5, 4), two_layer(5, 4, frozen=None)
    assert parameter_count(frozen) == 5 * 4 and parameter_count(trained) == 5 * 4 + 4
    assert (analyze(frozen).verdict, analyze(frozen).order) == (EXACT, 1.0)  # 1-homogeneous in theta
    assert analyze(trained).order == 2.0
    net = NumpyNetwork(frozen)
    theta = initial_parameters(frozen, 0)
    X = np.random.default_rng(0).normal(size=(7, 5))
    check = numeric_check(net, theta, X, 1.0)
    assert check["scale_error_c2"] < 1e-14 and check["scale_error_c3"] < 1e-14 and check["euler_defect"] < 1e-14
    assert numeric_check(net, theta, X, 2.0)["scale_error_c2"] > 0.4  # order 2 would be wrong


def test_numpy_matches_autograd_and_the_unfrozen_network_with_those_values():
    """f, grad and the Jacobian of a network with a frozen hidden layer and a frozen output layer;
    and f equals the unfrozen network whose weights hold the frozen values."""
    rng = np.random.default_rng(1)
    values = list(rng.normal(size=2 * 4))
    spec = ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [
        {"type": "dense", "width": 4}, {"type": "activation", "kind": "gelu"},
        {"type": "dense", "width": 2, "frozen": values}, {"type": "activation", "kind": "leaky_softplus"},
        {"type": "dense", "width": 2}, {"type": "activation", "kind": "relu"},
        {"type": "dense", "width": 1, "frozen": "+-1/m"}]})
    X = rng.normal(size=(6, 3))
    theta = rng.normal(size=parameter_count(spec))
    net, ref = NumpyNetwork(spec), AutogradNetwork(spec)
    np.testing.assert_allclose(net.outputs(theta, X), ref.outputs(theta, X), rtol=0, atol=1e-13)
    w = rng.normal(size=6)
    np.testing.assert_allclose(net.backward(theta, w), ref.backward(theta, w), rtol=0, atol=1e-13)
    np.testing.assert_allclose(net.jacobian(theta, X), ref.jacobian(theta, X), rtol=0, atol=1e-13)
    plain = ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [
        {"type": "dense", "width": 4}, {"type": "activation", "kind": "gelu"},
        {"type": "dense", "width": 2}, {"type": "activation", "kind": "leaky_softplus"},
        {"type": "dense", "width": 2}, {"type": "activation", "kind": "relu"}, {"type": "dense", "width": 1}]})
    full = np.concatenate([theta[:12], values, theta[12:], [0.5, -0.5]])
    np.testing.assert_allclose(NumpyNetwork(plain).outputs(full, X), net.outputs(theta, X), rtol=0, atol=1e-13)


def test_frozen_weights_never_move_and_numpy_equals_autograd_over_1000_steps():
    data = nearly_orthogonal(n=10, dim=40, seed=0)
    spec = two_layer(40, 8)
    finals = {}
    for backend in ("numpy", "torch"):
        config = config_for(spec, data, steps=1000, lr=0.5, loss="logistic", rule="constant")
        config.run.backend = backend
        trainer = Trainer(config)
        while trainer.status == "running":
            trainer.run(1000)
        finals[backend] = trainer.members[0].theta.copy()
        if backend == "torch":  # the buffer holding the frozen layer is as it was built
            module = trainer.engine.net.module
            buffers = dict(module.named_buffers())
            assert len(buffers) == 1 and len(finals[backend]) == 40 * 8
            np.testing.assert_array_equal(next(iter(buffers.values())).numpy(), [[1 / 8] * 4 + [-1 / 8] * 4])
    np.testing.assert_allclose(finals["numpy"], finals["torch"], rtol=0, atol=1e-12)
    theta0 = initial_parameters(spec, 0)
    assert np.linalg.norm(finals["numpy"] - theta0) > 1.0  # it trained
    # the trained function is the two-layer net with the output weights still at +-1/8
    plain = two_layer(40, 8, frozen=None)
    full = np.concatenate([finals["numpy"], [1 / 8] * 4 + [-1 / 8] * 4])
    np.testing.assert_allclose(NumpyNetwork(plain).outputs(full, data.X),
                               NumpyNetwork(spec).outputs(finals["numpy"], data.X), rtol=0, atol=1e-13)


def test_batched_falls_back_and_compiled_refuses_with_one_line():
    data = nearly_orthogonal(n=10, dim=40, seed=0)
    config = config_for(two_layer(40, 8), data, steps=5)
    config.run.backend = "batched"
    assert "frozen dense layers: the batched engine has none" in Trainer(config).engine_note
    config.run.backend = "compiled"
    with pytest.raises(TrainingError, match="the compiled engine has no frozen dense layer"):
        Trainer(config)


@pytest.mark.parametrize("block, message", [
    ({"type": "dense", "width": 1, "frozen": [1.0, 2.0]}, r"blocks\[2\]\.frozen: needs 1 x 4 = 4 values"),
    ({"type": "dense", "width": 1, "bias": True, "frozen": "+-1/m"}, r"blocks\[2\]\.bias: a frozen layer has no bias"),
    ({"type": "dense", "width": 1, "frozen": "1/m"}, r"blocks\[2\]\.frozen"),
])
def test_bad_frozen_layers_are_refused_naming_the_field(block, message):
    with pytest.raises(ConfigError, match=message):
        ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [
            {"type": "dense", "width": 4}, {"type": "activation", "kind": "relu"}, block]})


def test_odd_width_cannot_split_in_halves():
    with pytest.raises(ConfigError, match=r"blocks\[2\]\.frozen: \+-1/m splits .* m = 3 \(odd\)"):
        two_layer(3, 3)


def test_round_trip_through_json():
    spec = two_layer(3, 4)
    again = ArchitectureSpec.from_dict(spec.to_dict())
    assert again.blocks[2].frozen == "+-1/m" and again.to_dict() == spec.to_dict()
    assert RunConfig.from_dict(config_for(spec).to_dict()).architecture.blocks[2].frozen == "+-1/m"
