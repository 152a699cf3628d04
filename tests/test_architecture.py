import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Ensemble, Residual, mlp, parameter_count
from margin_explorer.core.config import RunConfig
from margin_explorer.core.errors import ConfigError
from margin_explorer.core.homogeneity import analyze, numeric_check
from margin_explorer.core.network import NumpyNetwork, initial_parameters

X = np.random.default_rng(0).normal(size=(25, 3))


def _check(spec, seed=0):
    net = NumpyNetwork(spec)
    # generic parameters (initialization leaves biases at 0, which would hide their effect)
    theta = initial_parameters(spec, seed) + 0.3 * np.random.default_rng(seed).normal(size=net.size)
    return analyze(spec), numeric_check(net, theta, X, analyze(spec).order or 1.0)


@pytest.mark.parametrize("widths, act, param, order", [
    ([16], "relu", None, 2), ([16, 8], "relu", None, 3), ([16], "leaky_relu", 0.2, 2), ([16], "abs", None, 2),
    ([8], "relu_k", 2.0, 3), ([8, 8], "relu_k", 2.0, 7), ([4], "identity", None, 2),
])
def test_exact_homogeneity_order_is_found_and_holds_numerically(widths, act, param, order):
    h, check = _check(mlp(3, widths, act, param))
    assert h.verdict == "exact" and h.order == order
    assert check["scale_error_c2"] < 1e-12 and check["scale_error_c3"] < 1e-12
    assert check["euler_defect"] < 1e-12


def test_first_layer_bias_keeps_exact_homogeneity():
    spec = ArchitectureSpec(3, [Dense(8, True), Activation("relu"), Dense(1)])
    h, check = _check(spec)
    assert h.verdict == "exact" and h.order == 2
    assert check["scale_error_c2"] < 1e-12


@pytest.mark.parametrize("spec, reason", [
    (mlp(3, [16], "gelu"), "gelu"),
    (mlp(3, [16], "softplus", 2.0), "softplus"),
    (ArchitectureSpec(3, [Dense(8), Residual([Activation("relu"), Dense(8)]), Dense(1)]), "residual"),
    (ArchitectureSpec(3, [Dense(8), Activation("relu"), Dense(1, True)]), "bias past the first layer"),
    (ArchitectureSpec(3, [Ensemble([[Dense(1)], [Dense(8), Activation("relu"), Dense(1)]])]), "ensemble"),
])
def test_near_homogeneous_networks_are_reported_with_the_reason(spec, reason):
    h, check = _check(spec)
    assert h.verdict == "near" and reason in h.explanation
    assert check["scale_error_c2"] > 1e-8  # and indeed not exactly homogeneous


def test_bounded_activation_is_not_homogeneous():
    h = analyze(mlp(3, [16], "tanh"))
    assert h.verdict == "none" and h.order is None and "tanh is bounded" in h.explanation
    # a bounded map of the raw input is a fixed feature map and keeps homogeneity
    assert analyze(ArchitectureSpec(3, [Activation("tanh"), Dense(4), Activation("relu"), Dense(1)])).verdict == "exact"


def test_residual_changes_exact_to_near():
    base = [Dense(8), Activation("relu"), Dense(1)]
    assert analyze(ArchitectureSpec(3, list(base))).verdict == "exact"
    with_res = ArchitectureSpec(3, base[:2] + [Residual([Dense(8), Activation("relu"), Dense(8)])] + base[2:])
    assert analyze(with_res).verdict == "near"


def test_spec_json_round_trip_and_parameter_count():
    spec = ArchitectureSpec(3, [Dense(8, True), Activation("leaky_relu", 0.1),
                                Residual([Dense(8), Activation("gelu"), Dense(8)], 0.5),
                                Ensemble([[Dense(1)], [Dense(4), Activation("relu"), Dense(1)]])])
    spec.validate()
    data = json.loads(json.dumps(spec.to_dict()))
    assert ArchitectureSpec.from_dict(data).to_dict() == data
    assert parameter_count(spec) == 8 * 3 + 8 + 64 + 64 + 8 + 32 + 4


@pytest.mark.parametrize("blocks, message", [
    ([{"type": "dense", "width": 2}], "ends with width 2: two classes need a scalar output"),
    ([{"type": "dense", "width": 1, "biass": True}], "blocks[0].biass: unknown key"),
    ([{"type": "conv", "width": 1}], "blocks[0].type: must be one of"),
    ([{"type": "activation", "kind": "swish"}, {"type": "dense", "width": 1}], "blocks[0].kind"),
    ([{"type": "dense", "width": 0}, {"type": "dense", "width": 1}], "blocks[0].width"),
    ([{"type": "activation", "kind": "relu", "param": 2}, {"type": "dense", "width": 1}], "takes no parameter"),
    ([{"type": "residual", "blocks": [{"type": "dense", "width": 3}]}, {"type": "dense", "width": 1}],
     "maps width 2 to 3"),
    ([{"type": "activation", "kind": "relu"}], "no trainable parameters"),
])
def test_bad_specs_name_the_field(blocks, message):
    with pytest.raises(ConfigError) as info:
        ArchitectureSpec.from_dict({"input_dim": 2, "blocks": blocks})
    assert message in str(info.value)


@pytest.mark.parametrize("patch, message", [
    ({"optimizer": {"lr": "fast"}}, "optimizer.lr: expected a number"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr: the step size must be > 0"),
    ({"optimizer": {"kind": "sgd"}}, "optimizer.batch_size"),
    ({"loss": {"kind": "hinge"}}, "loss.kind: must be one of"),
    ({"run": {"steps": -5}}, "run.steps"),
    ({"run": {"device": "tpu"}}, "run.device"),
    ({"run": {"dtype": "float16"}}, "run.dtype"),
    ({"optimiser": {}}, "optimiser: unknown key"),
    ({"dataset": {"generator": "galaxy"}}, "dataset.generator"),
    ({"recording": {"per_decade": 0}}, "recording.per_decade"),
])
def test_bad_configs_name_the_field(patch, message):
    data = {"architecture": {"input_dim": 2, "blocks": [{"type": "dense", "width": 1}]}, **patch}
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(data)
    assert message in str(info.value)


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["architecture", "dataset", "loss", "optimizer", "run", "recording", "name", "x"]),
                       json_values, max_size=6))
def test_config_loader_fuzz_raises_only_config_errors(data):
    try:
        RunConfig.from_dict(data)
    except ConfigError:
        pass
