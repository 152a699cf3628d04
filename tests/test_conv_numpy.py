"""The numpy network's image nodes (core/conv_nodes.py, issue #21): each node's forward and
backward against torch's own conv2d / max_pool2d / avg_pool2d and their autograd, in float64 and
float32; max-pooling's ties as torch breaks them; whole networks against finite differences and
torch.func's per-sample Jacobian; the numpy engine against the autograd engine over 1,000 steps
on digits; the engines the driver picks; snapshots (KKT residual, Euler defect) on both networks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from margin_explorer.core.architecture import ArchitectureSpec, Conv2d, Pool, image_block, parameter_count
from margin_explorer.core.config import RunConfig
from margin_explorer.core.conv_nodes import AvgPoolNode, ConvNode, FlattenNode, MaxPoolNode
from margin_explorer.core.homogeneity import analyze, numeric_check
from margin_explorer.core.metrics import kkt_residual
from margin_explorer.core.network import NumpyNetwork, initial_parameters
from margin_explorer.core.torch_network import AutogradNetwork, TorchNetwork
from tests.test_conv import FLAT, RELU, conv, dense, image_spec
from tests.helpers import finite_difference_gradient


def channel_last(x):
    """torch's (n, C, H, W) as the nodes' (n, H, W, C)."""
    return np.ascontiguousarray(x.detach().numpy().transpose(0, 2, 3, 1))


def channel_first(x):
    return torch.as_tensor(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


DTYPES = [(np.float64, torch.float64, 1e-12), (np.float32, torch.float32, 2e-5)]

# (in channels, out channels, kernel, stride, padding, bias, height, width)
CONVS = [(1, 3, 3, 1, 0, False, 8, 8), (2, 4, 3, 2, 1, True, 7, 6), (3, 2, 2, 1, 2, False, 5, 7),
         (2, 5, 1, 1, 0, True, 4, 4), (1, 2, 4, 3, 1, False, 9, 8), (2, 3, 5, 2, 2, True, 6, 6)]


@pytest.mark.parametrize("dtype, tdtype, tol", DTYPES)
@pytest.mark.parametrize("c_in, c_out, k, s, p, bias, h, w", CONVS)
def test_a_conv_node_is_torchs_conv2d_forward_and_backward(c_in, c_out, k, s, p, bias, h, w, dtype, tdtype, tol):
    rng = np.random.default_rng(k * 10 + s)
    n = 3
    weight = torch.tensor(rng.normal(size=(c_out, c_in, k, k)), dtype=tdtype, requires_grad=True)
    b = torch.tensor(rng.normal(size=c_out), dtype=tdtype, requires_grad=True) if bias else None
    x = torch.tensor(rng.normal(size=(n, c_in, h, w)), dtype=tdtype, requires_grad=True)
    out = F.conv2d(x, weight, b, stride=s, padding=p)
    upstream = torch.tensor(rng.normal(size=out.shape), dtype=tdtype)
    (out * upstream).sum().backward()
    theta = np.concatenate([weight.detach().numpy().reshape(-1)] + ([b.detach().numpy()] if bias else []))
    node = ConvNode(0, Conv2d(c_out, k, s, p, bias), (c_in, h, w), first=False)
    mine, cols = node.forward(theta, channel_last(x))
    assert mine.dtype == dtype
    np.testing.assert_allclose(mine, channel_last(out), rtol=tol, atol=tol)
    grad = np.full(theta.size, np.nan, dtype=dtype)
    dx = node.backward(theta, channel_last(upstream), cols, grad)
    np.testing.assert_allclose(grad[:weight.numel()], weight.grad.numpy().reshape(-1), rtol=tol, atol=tol * 10)
    if bias:
        np.testing.assert_allclose(grad[weight.numel():], b.grad.numpy(), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(np.asarray(dx), channel_last(x.grad), rtol=tol, atol=tol * 10)


POOLS = [(2, None, 8, 8), (3, 1, 7, 6), (2, 3, 7, 7), (3, 2, 9, 8), (1, 1, 3, 3), (4, 4, 9, 10)]


@pytest.mark.parametrize("dtype, tdtype, tol", DTYPES)
@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("k, s, h, w", POOLS)
def test_pool_nodes_are_torchs_pooling_forward_and_backward(kind, k, s, h, w, dtype, tdtype, tol):
    rng = np.random.default_rng(k + 7 * h)
    x = torch.tensor(rng.normal(size=(3, 2, h, w)), dtype=tdtype, requires_grad=True)
    block = Pool(kind, k, s)
    out = (F.max_pool2d if kind == "max_pool" else F.avg_pool2d)(x, k, block.step)
    upstream = torch.tensor(rng.normal(size=out.shape), dtype=tdtype)
    (out * upstream).sum().backward()
    node = (MaxPoolNode if kind == "max_pool" else AvgPoolNode)(block, (2, h, w))
    mine, cache = node.forward(None, channel_last(x))
    np.testing.assert_allclose(mine, channel_last(out), rtol=tol, atol=tol)
    np.testing.assert_allclose(node.backward(None, channel_last(upstream), cache, None), channel_last(x.grad),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("k, s", [(2, 2), (3, 1), (3, 2), (2, 3)])
def test_max_pool_ties_send_the_gradient_where_torch_sends_it(k, s):
    """Whole windows of equal values (digits' flat background after a conv with a bias gives
    them): the gradient goes to the window's first maximum in row-major order, as torch's."""
    rng = np.random.default_rng(11)
    values = rng.integers(0, 3, size=(4, 3, 9, 9)).astype(np.float64)  # many ties
    values[0] = 1.0  # one sample all equal
    x = torch.tensor(values, requires_grad=True)
    out = F.max_pool2d(x, k, s)
    upstream = torch.tensor(rng.normal(size=out.shape))
    (out * upstream).sum().backward()
    node = MaxPoolNode(Pool("max_pool", k, s), (3, 9, 9))
    mine, cache = node.forward(None, channel_last(x))
    np.testing.assert_array_equal(mine, channel_last(out))
    dx, expected = node.backward(None, channel_last(upstream), cache, None), channel_last(x.grad)
    np.testing.assert_array_equal(dx != 0, expected != 0)  # the same inputs take the gradient
    np.testing.assert_allclose(dx, expected, rtol=1e-14, atol=1e-15)  # overlapping windows add in another order
    # on the sample of equal values every window's gradient sits at its top-left input: the first
    first = np.zeros((9, 9), dtype=bool)
    first[:s * (out.shape[2] - 1) + 1:s, :s * (out.shape[3] - 1) + 1:s] = True
    np.testing.assert_array_equal(dx[0, :, :, 0] != 0, first)


def test_flatten_is_torchs_channel_by_channel_order_and_its_adjoint():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(3, 4, 2, 5)))
    flat, shape = FlattenNode().forward(None, channel_last(x))
    np.testing.assert_array_equal(flat, x.flatten(1).numpy())
    g = rng.normal(size=flat.shape)
    np.testing.assert_array_equal(channel_first(FlattenNode().backward(None, g, shape, None)).numpy(),
                                  g.reshape(3, 4, 2, 5))


# both poolings, stride, padding, biases, two channels in, a rectangular image (tests/test_conv.py's NET)
NET = [conv(3, 3, 1, 1, bias=True), RELU, {"type": "max_pool", "kernel": 2}, conv(4, 2, stride=1, padding=0, bias=True),
       RELU, {"type": "avg_pool", "kernel": 2, "stride": 1}, FLAT, dense(5, bias=True), RELU, dense(1)]
STRIDED = [conv(4, 3, stride=2, padding=2), {"type": "activation", "kind": "gelu"},
           {"type": "max_pool", "kernel": 3, "stride": 1}, FLAT, dense(1)]
NESTED = [conv(2, 3, padding=1), RELU, {"type": "residual", "blocks": [conv(2, 3, padding=1), RELU]},
          {"type": "ensemble", "members": [[{"type": "avg_pool", "kernel": 2}, FLAT, dense(3)],
                                           [{"type": "max_pool", "kernel": 2}, FLAT, dense(3)]]},
          RELU, dense(1)]


@pytest.mark.parametrize("blocks", [NET, STRIDED, NESTED], ids=["net", "strided", "nested"])
def test_whole_networks_match_autograd_and_finite_differences(blocks):
    spec = image_spec(blocks)
    rng = np.random.default_rng(3)
    theta, X = rng.normal(size=parameter_count(spec)), rng.normal(size=(5, 84))
    weights = rng.normal(size=5)
    net, reference = NumpyNetwork(spec), AutogradNetwork(spec)
    np.testing.assert_allclose(net.outputs(theta, X), reference.outputs(theta, X), rtol=1e-12, atol=1e-12)
    grad = net.backward(theta, weights)
    np.testing.assert_allclose(grad, reference.backward(theta, weights), rtol=1e-11, atol=1e-11)
    numeric = finite_difference_gradient(net, theta, X, weights)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def _torch_func_jacobian(spec, theta, X):
    """(n, P) per-sample gradients by torch.func.jacrev over the module's parameters."""
    module = TorchNetwork(spec).load_flat(theta)
    names = [name for name, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    sizes = [p.numel() for _, p in module.named_parameters()]

    def f(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return torch.func.functional_call(module, params, (torch.as_tensor(X),))

    return torch.func.jacrev(f)(torch.as_tensor(theta)).numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("blocks", [NET, NESTED], ids=["net", "nested"])
def test_the_per_sample_jacobian_in_one_pass_is_torch_funcs(blocks, dtype):
    spec = image_spec(blocks)
    rng = np.random.default_rng(4)
    theta, X = rng.normal(size=parameter_count(spec)), rng.normal(size=(6, 84))
    expected = _torch_func_jacobian(spec, theta, X)
    jac = NumpyNetwork(spec).jacobian(theta.astype(dtype), X.astype(dtype))
    assert jac.dtype == dtype and jac.shape == (6, parameter_count(spec))
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(jac, expected, rtol=tol, atol=tol * np.abs(expected).max())


CNNS = [  # (blocks, order) as tests/test_conv.py's: L weight layers, ReLU and pooling keep the order
    ([conv(3), RELU, {"type": "max_pool", "kernel": 2}, FLAT, dense(1)], 2),
    ([conv(3, bias=True), RELU, {"type": "max_pool", "kernel": 2}, conv(4, 2), RELU,
      {"type": "avg_pool", "kernel": 1}, FLAT, dense(6), RELU, dense(1)], 4),
    ([conv(2, padding=1), {"type": "activation", "kind": "relu_k", "param": 2.0}, FLAT, dense(1)], 3),
    ([{"type": "avg_pool", "kernel": 2}, conv(2, 2), {"type": "activation", "kind": "leaky_relu"}, FLAT, dense(1)], 2),
]


@pytest.mark.parametrize("blocks, order", CNNS)
def test_the_homogeneity_check_on_the_numpy_network_finds_the_same_order(blocks, order):
    spec = image_spec(blocks)
    assert (analyze(spec).verdict, analyze(spec).order) == ("exact", order)
    rng = np.random.default_rng(4)
    theta, X = initial_parameters(spec, 0), rng.normal(size=(7, 84))
    net = NumpyNetwork(spec)
    check = numeric_check(net, theta, X, order)
    assert check["scale_error_c2"] < 1e-12 and check["scale_error_c3"] < 1e-12 and check["euler_defect"] < 1e-12
    assert numeric_check(net, theta, X, order + 1)["scale_error_c2"] > 0.4  # the check can fail


# a small Lyu-Li-like CNN on 120 digits, 0 against 1 (flat backgrounds: max-pool ties happen)
DIGITS_CNN = {
    "dataset": {"kind": "builtin", "builtin": "digits",
                "params": {"classes": [0, 1], "subsample": 120, "test_fraction": 0, "standardize": "global"}},
    "architecture": {"input_dim": 64, "input_shape": [1, 8, 8], "blocks": [
        conv(3, 3, padding=1, bias=True), RELU, {"type": "max_pool", "kernel": 2}, conv(4, 3, padding=1), RELU,
        {"type": "max_pool", "kernel": 2}, FLAT, dense(8), RELU, dense(1)]},
    "loss": {"kind": "logistic", "reduction": "mean"},
    "optimizer": {"lr": 0.01, "step_rule": "constant"},  # the loss-normalized step kills this CNN's ReLUs
    "recording": {"snapshots_per_decade": 2},
    "run": {"steps": 1000, "seed": 0}}


def _config(backend, **run):
    config = RunConfig.from_dict(DIGITS_CNN)
    config.run.backend = backend
    for key, value in run.items():
        setattr(config.run, key, value)
    return config


def test_the_numpy_engine_trains_a_digits_cnn_as_the_autograd_engine_does_for_1000_steps():
    from margin_explorer.core.engines.autograd_engine import AutogradEngine
    from margin_explorer.core.engines.numpy_engine import NumpyEngine
    from margin_explorer.core.trainer import Trainer

    fast, reference = Trainer(_config("numpy")), Trainer(_config("torch"))
    assert type(fast.engine) is NumpyEngine and isinstance(reference.engine, AutogradEngine)
    a, b = fast.run(1000).members[0], reference.run(1000).members[0]
    assert a.status == b.status == "finished"
    theta_a, theta_b = fast.members[0].theta, reference.members[0].theta
    assert np.linalg.norm(theta_a - theta_b) <= 1e-12 * np.linalg.norm(theta_b)
    assert np.linalg.norm(theta_b - initial_parameters(fast.config.architecture, 0)) > 0.01 * np.linalg.norm(theta_b)
    for name in ("log_loss", "normalized_margin", "param_norm"):
        np.testing.assert_allclose(a.records[name], b.records[name], rtol=1e-12, atol=1e-13, err_msg=name)
    assert a.records["log_loss"][-1] < a.records["log_loss"][0] - 3  # it trained
    # snapshots: the one-pass Jacobian of the numpy network against autograd's n passes, at the trained theta
    spec, X, y = fast.config.architecture, fast.X, fast.y
    numpy_net, autograd_net = NumpyNetwork(spec), AutogradNetwork(spec)
    jac = numpy_net.jacobian(theta_a, X)
    np.testing.assert_allclose(jac, autograd_net.jacobian(theta_a, X), rtol=1e-12, atol=1e-12 * np.abs(jac).max())
    kkt = kkt_residual(numpy_net, theta_a, X, y, fast.order)
    assert np.all(np.isfinite(kkt)) and a.records["accuracy"][-1] == 1.0
    np.testing.assert_allclose(kkt, kkt_residual(autograd_net, theta_a, X, y, fast.order), rtol=1e-8)
    assert a.snapshot_steps == b.snapshot_steps and len(a.snapshot_steps) >= 6
    assert np.isfinite(a.snapshot_metrics[-1]["kkt_eps"])
    for name in ("kkt_eps", "euler_defect"):
        np.testing.assert_allclose([m[name] for m in a.snapshot_metrics], [m[name] for m in b.snapshot_metrics],
                                   rtol=1e-8, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("backend, engine, note", [
    ("auto", "NumpyEngine", ""), ("numpy", "NumpyEngine", ""), ("torch", "AutogradEngine", ""),
    ("compiled", "AutogradEngine", "run.backend compiled: architecture.blocks[0]: the compiled engine has no conv2d"),
    ("batched", "AutogradEngine", "run.backend batched: architecture.blocks[0]: the batched engine has no conv2d"),
])
def test_the_driver_picks_the_numpy_engine_for_a_cnn_on_the_cpu(backend, engine, note):
    from margin_explorer.core.trainer import Trainer

    trainer = Trainer(_config(backend, steps=3))
    assert type(trainer.engine).__name__ == engine and trainer.engine_note.startswith(note)
    assert isinstance(trainer.net, NumpyNetwork)  # records and snapshots: the numpy network
    assert trainer.run(3).members[0].status == "finished"


def test_a_family_of_cnns_trains_its_members_one_by_one_on_the_numpy_engine():
    from margin_explorer.core.trainer import Trainer

    trainer = Trainer(RunConfig.from_dict(dict(DIGITS_CNN, family={"vary": "lr", "values": [0.01, 0.005]},
                                              run={"steps": 20, "seed": 0})))
    assert type(trainer.engine).__name__ == "NumpyEngine"
    assert "one by one" in trainer.engine_note
    single = Trainer(_config("numpy", steps=20))
    single.run(20)
    family = trainer.run(20)
    assert all(m.status == "finished" for m in family.members)
    np.testing.assert_allclose(trainer.members[0].theta, single.members[0].theta, rtol=1e-13, atol=1e-15)


def test_image_block_says_where_the_first_image_block_is():
    assert image_block(image_spec(NESTED)) == "architecture.blocks[0]"
    nested = image_spec([{"type": "residual", "blocks": [conv(2, padding=1)]}, FLAT, dense(1)])
    assert image_block(nested) == "architecture.blocks[0].blocks[0]"
    assert image_block(ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [dense(2), RELU, dense(1)]})) is None


def test_the_numpy_engine_steps_with_one_blas_thread_and_gives_the_threads_back():
    """A CNN and an MLP alike (core/blas.py one_blas_thread: a second thread lost 3-20x under load)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def numpy_blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = numpy_blas_threads()
        assert max(before) == 2  # else the check below could not fail
        with NumpyNetwork(image_spec(NET)).step_threads():
            assert numpy_blas_threads() == [1] * len(before)
        assert numpy_blas_threads() == before
        mlp = ArchitectureSpec.from_dict({"input_dim": 3, "blocks": [dense(4), RELU, dense(1)]})
        with NumpyNetwork(mlp).step_threads():
            assert numpy_blas_threads() == [1] * len(before)
        assert numpy_blas_threads() == before
        from margin_explorer.core.engines.compiled_engine import CompiledEngine

        with CompiledEngine.step_threads(None):  # numba's products too (it reads nothing of the engine)
            assert numpy_blas_threads() == [1] * len(before)
        assert numpy_blas_threads() == before


def test_a_cnn_trains_in_float32_on_the_numpy_engine_as_on_autograd():
    from margin_explorer.core.trainer import Trainer

    fast, reference = Trainer(_config("numpy", steps=30, dtype="float32")), Trainer(_config("torch", steps=30, dtype="float32"))
    fast.run(30), reference.run(30)
    theta_a, theta_b = fast.members[0].theta, reference.members[0].theta
    assert theta_a.dtype == theta_b.dtype == np.float32
    assert np.linalg.norm(theta_a - theta_b) <= 1e-5 * np.linalg.norm(theta_b)


def test_the_batched_network_refuses_image_blocks_with_what_to_do():
    from margin_explorer.core.batched import BatchedNetwork
    from margin_explorer.core.errors import TrainingError

    with pytest.raises(TrainingError, match=r"^conv2d blocks do not train on the batched engine: use run.backend "
                                            r"'numpy' \(on the cpu\) or 'torch'$"):
        BatchedNetwork(image_spec(NET))


def test_flatten_of_a_vector_passes_it_on_even_an_ensembles_deferred_sum():
    """A flatten after an ensemble of dense members gets their sum unmultiplied (core/network.py's
    Product, below a scalar output): it passes it on unchanged."""
    spec = ArchitectureSpec.from_dict({"input_dim": 5, "blocks": [
        dense(64), RELU, {"type": "ensemble", "members": [[dense(64)], [dense(64), RELU, dense(64)]]}, FLAT, dense(1)]})
    rng = np.random.default_rng(9)
    theta, X, weights = rng.normal(size=parameter_count(spec)), rng.normal(size=(40, 5)), rng.normal(size=40)
    net, reference = NumpyNetwork(spec), AutogradNetwork(spec)
    np.testing.assert_allclose(net.outputs(theta, X), reference.outputs(theta, X), rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(net.backward(theta, weights), reference.backward(theta, weights), rtol=1e-10, atol=1e-9)
