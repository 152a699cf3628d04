"""Convolutional blocks (conv2d, max/avg pooling, flatten): the spec's shapes and errors, the
flat parameter layout against hand-built torch modules, gradients against finite differences,
homogeneity found exactly and checked numerically, and the leaky softplus activation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from margin_explorer.core import activations
from margin_explorer.core.architecture import (ArchitectureSpec, check_image_input, needs_autograd, parameter_count,
                                               parameter_layout, weight_slices)
from margin_explorer.core.budget import activation_count
from margin_explorer.core.errors import ConfigError, TrainingError
from margin_explorer.core.homogeneity import analyze, numeric_check
from margin_explorer.core.network import NumpyNetwork, initial_parameters
from margin_explorer.core.torch_network import AutogradNetwork
from tests.helpers import finite_difference_gradient


def conv(channels, kernel=3, stride=1, padding=0, bias=False):
    return {"type": "conv2d", "channels": channels, "kernel": kernel, "stride": stride, "padding": padding, "bias": bias}


RELU = {"type": "activation", "kind": "relu"}
FLAT = {"type": "flatten"}


def dense(width, bias=False):
    return {"type": "dense", "width": width, "bias": bias}


def image_spec(blocks, shape=(2, 7, 6)):
    return ArchitectureSpec.from_dict({"input_dim": int(np.prod(shape)), "input_shape": list(shape), "blocks": blocks})


# a rectangular two-channel input, both poolings, a stride and a padding
NET = [conv(3, 3, 1, 1, bias=True), RELU, {"type": "max_pool", "kernel": 2}, conv(4, 2, stride=1, padding=0, bias=True),
       RELU, {"type": "avg_pool", "kernel": 2, "stride": 1}, FLAT, dense(5, bias=True), RELU, dense(1)]


def _reference(theta, X):
    """NET by hand from torch's functional ops, slicing theta in the documented order: each
    kernel (out, in, k, k) row-major, then its bias; dense weights (out, in) row-major."""
    t = torch.as_tensor(theta)
    sizes = [(3, 2, 3, 3), (3,), (4, 3, 2, 2), (4,), (5, 4), (5,), (1, 5)]
    parts, offset = [], 0
    for shape in sizes:
        n = int(np.prod(shape))
        parts.append(t[offset: offset + n].reshape(shape))
        offset += n
    assert offset == t.numel()
    w1, b1, w2, b2, w3, b3, w4 = parts
    h = torch.as_tensor(X).reshape(-1, 2, 7, 6)
    h = F.max_pool2d(torch.relu(F.conv2d(h, w1, b1, padding=1)), 2)  # 3 x 7 x 6 -> 3 x 3 x 3
    h = F.avg_pool2d(torch.relu(F.conv2d(h, w2, b2)), 2, stride=1)  # 4 x 2 x 2 -> 4 x 1 x 1
    h = torch.relu(h.flatten(1) @ w3.T + b3)
    return (h @ w4.T)[:, 0]


def test_shapes_layout_and_forward_match_torchs_own_conv_and_pooling():
    spec = image_spec(NET)
    # 7 x 6 -> conv k3 p1: 7 x 6 -> max pool 2: 3 x 3 -> conv k2: 2 x 2 -> avg pool 2 stride 1: 1 x 1
    assert parameter_count(spec) == 3 * 2 * 9 + 3 + 4 * 3 * 4 + 4 + 5 * 4 + 5 + 5
    names = [(name, shape) for name, _sl, shape in weight_slices(spec)]
    assert names == [("0.weight", (3, 18)), ("3.weight", (4, 12)), ("7.weight", (5, 4)), ("9.weight", (1, 5))]
    rng = np.random.default_rng(1)
    theta, X = rng.normal(size=parameter_count(spec)), rng.normal(size=(6, 84))
    net = AutogradNetwork(spec)
    np.testing.assert_allclose(net.outputs(theta, X), _reference(theta, X).numpy(), rtol=1e-12, atol=1e-13)


def test_a_conv_layers_slice_is_a_hand_built_conv2d_and_its_matrix_is_out_by_in_k_k():
    spec = image_spec([conv(5, 3, stride=2, padding=1, bias=True), FLAT, dense(1)], shape=(3, 6, 6))
    rng = np.random.default_rng(2)
    module = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=True).double()
    head = torch.nn.Linear(5 * 3 * 3, 1, bias=False).double()
    theta = torch.cat([module.weight.detach().reshape(-1), module.bias.detach(), head.weight.detach().reshape(-1)]).numpy()
    X = rng.normal(size=(4, 108))
    expected = head(module(torch.as_tensor(X).reshape(4, 3, 6, 6)).flatten(1))[:, 0].detach().numpy()
    np.testing.assert_allclose(AutogradNetwork(spec).outputs(theta, X), expected, rtol=1e-12)
    name, sl, shape = weight_slices(spec)[0]
    np.testing.assert_array_equal(theta[sl].reshape(shape), module.weight.detach().reshape(5, 27).numpy())


def test_the_gradient_in_theta_matches_finite_differences():
    spec = image_spec(NET)
    rng = np.random.default_rng(3)
    theta, X = rng.normal(size=parameter_count(spec)), rng.normal(size=(5, 84))
    weights = rng.normal(size=5)
    net = AutogradNetwork(spec)
    net.outputs(theta, X)
    grad = net.backward(theta, weights)
    numeric = finite_difference_gradient(net, theta, X, weights)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    jac = net.jacobian(theta, X)
    np.testing.assert_allclose(weights @ jac, grad, rtol=1e-12, atol=1e-14)


CNNS = [  # (blocks, order): L weight layers, ReLU and pooling keep the order
    ([conv(3), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)], 2),
    ([conv(3, bias=True), RELU, {"type": "max_pool", "kernel": 2}, conv(4, 2), RELU,
      {"type": "avg_pool", "kernel": 1}, FLAT, dense(6), RELU, dense(1)], 4),  # a first-layer bias keeps it
    ([conv(2, padding=1), {"type": "activation", "kind": "relu_k", "param": 2.0}, FLAT, dense(1)], 3),
    ([{"type": "avg_pool", "kernel": 2}, conv(2, 2), {"type": "activation", "kind": "leaky_relu"}, FLAT, dense(1)], 2),
]


@pytest.mark.parametrize("blocks, order", CNNS)
def test_bias_free_cnns_are_exactly_homogeneous_of_their_order(blocks, order):
    spec = image_spec(blocks)
    h = analyze(spec)
    assert (h.verdict, h.order) == ("exact", order)
    rng = np.random.default_rng(4)
    theta, X = initial_parameters(spec, 0), rng.normal(size=(7, 84))
    check = numeric_check(AutogradNetwork(spec), theta, X, order)
    assert check["scale_error_c2"] < 1e-12 and check["scale_error_c3"] < 1e-12 and check["euler_defect"] < 1e-12
    wrong = numeric_check(AutogradNetwork(spec), theta, X, order + 1)  # the check can fail
    assert wrong["scale_error_c2"] > 0.4


def test_a_bias_past_the_first_layer_makes_a_cnn_near_homogeneous():
    spec = image_spec([conv(3), RELU, conv(2, 2, bias=True), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)])
    h = analyze(spec)
    assert h.verdict == "near" and h.order == 3
    assert "bias past the first layer" in h.explanation
    rng = np.random.default_rng(5)
    theta, X = rng.normal(size=parameter_count(spec)), rng.normal(size=(7, 84))
    offset = 0
    for name, size, _shape in parameter_layout(spec):
        if name == "2.bias":
            theta[offset: offset + size] = 5.0  # a large bias: f(2 theta) is far from 8 f(theta)
        offset += size
    assert numeric_check(AutogradNetwork(spec), theta, X, 3)["scale_error_c2"] > 1e-3


@pytest.mark.parametrize("blocks, message", [
    ([conv(2, kernel=9), FLAT, dense(1)], "blocks[0].kernel: the kernel 9 is larger than the input 7 x 6"),
    ([conv(2, kernel=9, padding=1), FLAT, dense(1)],
     "blocks[0].kernel: the kernel 9 is larger than the padded input 9 x 8 (image 7 x 6, padding 1)"),
    ([conv(2), dense(1)], "blocks[1]: a dense layer needs a vector, but its input is an image of shape 2 x 5 x 4: "
                          "add a flatten block before it"),
    ([FLAT, conv(2), dense(1)], "blocks[1]: a conv2d layer needs an image, but its input is a vector of width 84"),
    ([conv(1, kernel=6)], "the network ends with an image of shape 1 x 2 x 1: add a flatten block and a dense layer"),
    ([{"type": "max_pool", "kernel": 8}, FLAT, dense(1)], "blocks[0].kernel: the kernel 8 is larger than the input 7 x 6"),
    ([conv(0), FLAT, dense(1)], "blocks[0].channels: must be between 1 and 10000, got 0"),
    ([conv(2, stride=0), FLAT, dense(1)], "blocks[0].stride: must be >= 1, got 0"),
    ([{"type": "avg_pool", "kernel": 2, "stride": 0}, FLAT, dense(1)], "blocks[0].stride: must be >= 1, got 0"),
])
def test_bad_conv_specs_name_the_field(blocks, message):
    with pytest.raises(ConfigError) as err:
        image_spec(blocks)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_input_shape_must_hold_input_dim_and_match_the_datasets_images():
    with pytest.raises(ConfigError, match=r"^architecture.input_shape: 1 x 8 x 7 = 56 does not equal input_dim 64$"):
        ArchitectureSpec.from_dict({"input_dim": 64, "input_shape": [1, 8, 7], "blocks": [FLAT, dense(1)]})
    with pytest.raises(ConfigError, match=r"^architecture.blocks\[0\]: a conv2d layer needs an image"):
        ArchitectureSpec.from_dict({"input_dim": 64, "blocks": [conv(2), FLAT, dense(1)]})
    spec = ArchitectureSpec.from_dict({"input_dim": 64, "input_shape": [1, 8, 8], "blocks": [conv(2), FLAT, dense(1)]})
    check_image_input(spec, (8, 8))
    check_image_input(spec, None)
    with pytest.raises(ConfigError, match="reads 8 x 8 images, but the dataset's images are 4 x 16"):
        check_image_input(spec, (4, 16))


def test_conv_specs_round_trip_and_the_numpy_network_builds_them():
    spec = image_spec(NET)
    again = ArchitectureSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict() and again.input_shape == [2, 7, 6]
    assert spec.to_dict()["blocks"][2] == {"type": "max_pool", "kernel": 2, "stride": 2}
    assert needs_autograd(spec) is None  # core/conv_nodes.py (tests/test_conv_numpy.py)
    assert NumpyNetwork(spec).size == parameter_count(spec)


def test_the_activation_budget_counts_whole_images():
    spec = image_spec([conv(3, padding=1), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)])
    # conv 3 x 7 x 6 = 126, relu 126, pool 3 x 3 x 3 = 27, flatten 27, dense 1
    assert activation_count(spec) == 126 + 126 + 27 + 27 + 1


@pytest.mark.parametrize("c", [0.5, 0.1, 0.0])
def test_leaky_softplus_value_and_derivative_match_torch_autograd(c):
    x = np.concatenate([np.linspace(-40, 40, 81), [-1e-3, 0.0, 1e-3, 700.0, -700.0]])
    t = torch.tensor(x, requires_grad=True)
    ref = c * t + (1 - c) * F.softplus(t, threshold=1e6)  # torch's softplus and its backward, no linear cut-off
    (ref_grad,) = torch.autograd.grad(ref.sum(), t)
    value, slope = activations.forward("leaky_softplus", c, x.copy())
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(slope, ref_grad.numpy(), rtol=1e-13, atol=1e-15)
    tv, ts = activations.torch_value_and_derivative("leaky_softplus", c, torch.tensor(x))
    np.testing.assert_allclose(tv.numpy(), ref.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ts.numpy(), ref_grad.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(activations.torch_forward("leaky_softplus", c, torch.tensor(x)).numpy(),
                               ref.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_leaky_softplus_is_near_homogeneous_and_its_parameter_is_checked():
    spec = ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [
        dense(4), {"type": "activation", "kind": "leaky_softplus"}, dense(1)]})
    assert spec.blocks[1].param == 0.5  # Cai et al. 2024's c
    h = analyze(spec)
    assert (h.verdict, h.order) == ("near", 2) and "leaky_softplus" in h.explanation
    with pytest.raises(ConfigError, match=r"blocks\[1\].param: c must be in \[0, 1\), got 1.5"):
        ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [
            dense(4), {"type": "activation", "kind": "leaky_softplus", "param": 1.5}, dense(1)]})


def test_outside_training_a_cnn_and_an_mlp_are_evaluated_by_numpy():
    from margin_explorer.core.network import evaluation_network

    spec = image_spec(NET)
    net = evaluation_network(spec)
    assert isinstance(net, NumpyNetwork) and net.size == parameter_count(spec)
    assert net.weight_slices == weight_slices(spec)
    mlp = ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [dense(4), RELU, dense(1)]})
    assert isinstance(evaluation_network(mlp), NumpyNetwork)


def test_a_small_cnn_trains_on_digits_through_the_numpy_network():
    """End to end: the trainer with the numpy network (its ``net``) on digits 0 against 1."""
    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.trainer import Trainer

    config = RunConfig.from_dict({
        "dataset": {"kind": "builtin", "builtin": "digits",
                    "params": {"classes": [0, 1], "subsample": 60, "test_fraction": 0, "standardize": "global"}},
        "architecture": {"input_dim": 64, "input_shape": [1, 8, 8], "blocks": [
            conv(2, 3, padding=1), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)]},
        "optimizer": {"lr": 0.05, "step_rule": "loss_normalized"},
        "run": {"steps": 150, "seed": 0}})
    dataset = config.dataset.build()
    check_image_input(config.architecture, dataset.image_shape)
    trainer = Trainer(config, dataset)  # the driver picks the numpy network and engine itself
    assert isinstance(trainer.net, NumpyNetwork)
    records = trainer.run(150).members[0].records
    assert trainer.order == 2.0
    assert records["log_loss"][-1] < records["log_loss"][0] - 1
    assert records["accuracy"][-1] == 1.0
    margins = records["normalized_margin"]
    assert margins[-1] > 0


# a small CNN on the 8 x 8 digits 0 vs 1: the compiled engine has no image blocks, so autograd trains it
CNN_RUN = {"architecture": {"input_dim": 64, "input_shape": [1, 8, 8],
                            "blocks": [conv(2, 3), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)]},
           "dataset": {"kind": "builtin", "builtin": "digits", "params": {"classes": [0, 1], "subsample": 60}},
           "run": {"steps": 12, "backend": "compiled"}}


def test_the_driver_trains_a_cnn_on_autograd_for_the_compiled_backend_and_the_cli_writes_it(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.engines.autograd_engine import AutogradEngine
    from margin_explorer.core.run_reader import RunReader
    from margin_explorer.core.trainer import Trainer

    trainer = Trainer(RunConfig.from_dict(CNN_RUN))
    assert isinstance(trainer.engine, AutogradEngine) and isinstance(trainer.net, NumpyNetwork)
    assert "run.backend compiled" in trainer.engine_note and "autograd" in trainer.engine_note
    # the engine's steps against a hand-made gradient step of the host network (gd, loss-normalized)
    theta0 = trainer.members[0].theta.copy()
    _f, _q, log_l0, grad = trainer.evaluate(theta0)
    trainer.run(1)
    lr = trainer.config.optimizer.lr
    np.testing.assert_allclose(trainer.members[0].theta, theta0 - lr * grad, rtol=1e-12, atol=1e-15)
    config_file, out = tmp_path / "cnn.json", tmp_path / "cnn.h5"
    config_file.write_text(json.dumps(CNN_RUN))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "main.py"), "run",
                           str(config_file), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "finished at step 12" in done.stdout
    with RunReader(out) as run:
        log_loss = run.metrics["log_loss"]
    assert len(log_loss) >= 12 and log_loss[-1] < log_loss[0]  # it trained


def test_a_cnn_whose_images_are_not_the_datasets_is_refused_with_the_reason():
    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.trainer import Trainer

    spec = dict(CNN_RUN, architecture=dict(CNN_RUN["architecture"], input_shape=[4, 4, 4]))
    with pytest.raises((ConfigError, TrainingError), match="8 x 8"):
        Trainer(RunConfig.from_dict(spec))
