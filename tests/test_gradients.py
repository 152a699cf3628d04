"""The hand-written numpy network against torch autograd and central finite differences, in
float64, for every block type and activation."""

import numpy as np
import pytest
import torch

from margin_explorer.core import activations
from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Ensemble, Residual
from margin_explorer.core import network
from margin_explorer.core.network import NumpyNetwork, Product, RankOne, _DenseNode, initial_parameters, per_sample_jacobian
from margin_explorer.core.torch_network import TorchNetwork
from tests.helpers import finite_difference_gradient

RNG = np.random.default_rng(7)
X = RNG.normal(size=(9, 3))
W = RNG.normal(size=9)


def _param(kind):
    return activations.PARAMETERS.get(kind, (None, None))[1]


def _specs():
    for kind in activations.HOMOGENEITY:
        yield f"activation-{kind}", ArchitectureSpec(3, [Dense(6, True), Activation(kind, _param(kind)), Dense(1)])
    yield "deep-linear", ArchitectureSpec(3, [Dense(4), Dense(4), Dense(1)])
    yield "residual", ArchitectureSpec(3, [Dense(5), Residual([Activation("gelu"), Dense(5, True)], 0.7), Dense(1)])
    yield "residual-first", ArchitectureSpec(3, [Residual([Dense(3), Activation("relu"), Dense(3)]), Dense(1)])
    yield "ensemble", ArchitectureSpec(3, [Ensemble([[Dense(1)], [Dense(4), Activation("silu"), Dense(1)],
                                                      [Dense(4), Activation("relu"), Dense(4), Activation("relu"), Dense(1)]])])
    yield "residual-stack", ArchitectureSpec(3, [Dense(5), Activation("gelu"),
                                                  Residual([Dense(5, True), Activation("gelu"), Dense(5, True)]),
                                                  Residual([Dense(5), Activation("relu"), Dense(5)], 0.5), Dense(1, True)])
    yield "ensemble-mid", ArchitectureSpec(3, [Dense(4), Activation("elu", 1.0),
                                                Ensemble([[Dense(2)], [Dense(3), Activation("abs"), Dense(2)]]), Dense(1)])


SPECS = dict(_specs())


def _theta(spec):
    net = NumpyNetwork(spec)
    # generic parameters: nonzero biases, no unit sitting exactly on a kink
    return net, initial_parameters(spec, 1) + 0.2 * RNG.normal(size=net.size)


@pytest.fixture(params=["eager", "deferred"])
def products(request, monkeypatch):
    """Each layer multiplied out at once, or branch ends kept as Products (core/network.py)
    whatever their size: these test networks are below the size where that starts."""
    if request.param == "deferred":
        monkeypatch.setattr(network, "DEFER_PRODUCTS_FROM", 0)
    return request.param


def _autograd(spec, theta):
    """(f(theta; X), sum_i W_i grad f(theta; x_i)) by torch autograd, the reference."""
    module = TorchNetwork(spec).load_flat(theta)
    ft = module(torch.tensor(X))
    (ft * torch.tensor(W)).sum().backward()
    return ft.detach().numpy(), torch.cat([p.grad.reshape(-1) for p in module.parameters()]).numpy()


@pytest.mark.parametrize("name", SPECS)
def test_numpy_matches_torch_autograd(name, products):
    spec = SPECS[name]
    net, theta = _theta(spec)
    f = net.outputs(theta, X)
    grad = net.backward(theta, W)
    ft, grad_t = _autograd(spec, theta)
    np.testing.assert_allclose(f, ft, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad, grad_t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", SPECS)
def test_numpy_gradient_matches_finite_differences(name, products):
    spec = SPECS[name]
    net, theta = _theta(spec)
    net.outputs(theta, X)
    grad = net.backward(theta, W)
    numeric = finite_difference_gradient(net, theta, X, W)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_jacobian_rows_are_per_sample_gradients(name, products):
    """The one-pass Jacobian against one backward pass per sample, and against the gradient."""
    spec = SPECS[name]
    net, theta = _theta(spec)
    jac = net.jacobian(theta, X)
    np.testing.assert_allclose(jac, per_sample_jacobian(net, theta, X), rtol=1e-12, atol=1e-13)
    net.outputs(theta, X)
    np.testing.assert_allclose(jac.T @ W, net.backward(theta, W), rtol=1e-12, atol=1e-13)
    net.outputs(theta, X[2:3])
    np.testing.assert_allclose(jac[2], net.backward(theta, np.ones(1)), rtol=1e-12, atol=1e-13)


# the layers whose incoming gradient is still rank one (core/network.py RankOne): those the output's
# gradient reaches on every path without passing an activation (a residual's skip path carries the
# branch's full gradient up to the block below)
RANK_ONE_LAYERS = {"deep-linear": 2, "residual": 1, "residual-first": 1, "residual-stack": 1, "ensemble": 0}


@pytest.mark.parametrize("name", RANK_ONE_LAYERS)
def test_the_rank_one_path_runs_where_the_gradient_is_rank_one(name, monkeypatch):
    """The tests above check its numbers; this checks that they exercise it."""
    calls = []
    original = _DenseNode._backward_rank_one
    monkeypatch.setattr(_DenseNode, "_backward_rank_one", lambda self, *a: calls.append(self) or original(self, *a))
    net, theta = _theta(SPECS[name])
    net.outputs(theta, X)
    net.backward(theta, W)
    assert len(calls) == RANK_ONE_LAYERS[name]


def test_rank_one_algebra_equals_the_full_matrices():
    a, b, b2, c = RNG.normal(size=(6, 1)), RNG.normal(size=(1, 4)), RNG.normal(size=(1, 4)), RNG.normal(size=(6, 1))
    dense, mask = RNG.normal(size=(6, 4)), RNG.normal(size=(6, 4)) > 0
    g = RankOne(a, b)
    full = a * b
    same = g + RankOne(a, b2)
    assert isinstance(same, RankOne)
    np.testing.assert_allclose(same.full(), full + a * b2, rtol=1e-15)
    np.testing.assert_allclose(g + RankOne(c, b2), full + c * b2, rtol=1e-15)  # another column: full
    np.testing.assert_allclose(g + dense, full + dense, rtol=1e-15)
    np.testing.assert_allclose(dense + g, full + dense, rtol=1e-15)  # numpy defers to RankOne
    np.testing.assert_allclose((0.7 * g).full(), 0.7 * full, rtol=1e-15)
    np.testing.assert_allclose(g * mask, full * mask, rtol=1e-15)  # a ReLU's boolean derivative
    np.testing.assert_allclose(g * dense, full * dense, rtol=1e-15)


def test_product_algebra_equals_the_full_matrices():
    A, W, B, V, D = (RNG.normal(size=shape) for shape in [(6, 4), (5, 4), (6, 3), (5, 3), (6, 5)])
    w, row = RNG.normal(size=(5, 1)), RNG.normal(size=(1, 6))
    p, q = Product(None, [(1.0, A, W)]), Product(None, [(1.0, B, V)])
    whole = A @ W.T + 0.7 * (B @ V.T) + D
    for mixed in (p + 0.7 * q + D, D + (p + q * 0.7), (0.7 * q + D) + p):
        assert isinstance(mixed, Product)
        np.testing.assert_allclose(mixed.times(w), whole @ w, rtol=1e-13)
        np.testing.assert_allclose(mixed.left(row), row @ whole, rtol=1e-13)
        np.testing.assert_allclose(mixed.full(), whole, rtol=1e-13)
        np.testing.assert_allclose(mixed.times(w), whole @ w, rtol=1e-13)  # from the kept full value
    assert p * 1.0 is p
    kept = p + D
    assert kept.full() is kept.full()  # computed once


# a residual branch's or an ensemble member's last layer feeds the scalar output through a sum only:
# its n x k x k product is never multiplied out (core/network.py Product)
BRANCH_ENDS = ["residual-stack", "residual-first", "ensemble-mid"]


@pytest.mark.parametrize("name", BRANCH_ENDS)
def test_a_branch_end_feeding_the_scalar_output_is_never_multiplied_out(name, monkeypatch):
    """What the tests run with ``products`` "deferred" exercise; they check its numbers."""
    multiplied, taken = [], []
    full, times = Product.full, Product.times
    monkeypatch.setattr(Product, "full", lambda self: multiplied.append(self) or full(self))
    monkeypatch.setattr(Product, "times", lambda self, Wt: taken.append(self) or times(self, Wt))
    monkeypatch.setattr(network, "DEFER_PRODUCTS_FROM", 0)  # these layers are small
    net, theta = _theta(SPECS[name])
    net.outputs(theta, X)
    net.backward(theta, W)
    assert len(taken) == 1  # the output layer took its input's vector products
    assert not multiplied


ERF_POINTS = np.concatenate([np.linspace(-8, 8, 20001), np.geomspace(1e-300, 30, 2000), -np.geomspace(1e-300, 30, 2000),
                             [0.0, -0.0, np.inf, -np.inf, 1e308, -1e308, 5e-324]])


def test_the_vectorized_erf_agrees_with_scipys_to_a_few_ulp_and_works_in_place():
    """The network's erf (torch's kernel) against scipy's Cephes one, its fallback."""
    from scipy import special

    z = ERF_POINTS.copy()
    out = activations.vectorized_erf(z)
    assert out is z  # in place: no new array a step
    expected = special.erf(ERF_POINTS)
    ulp = np.spacing(np.abs(expected))
    assert np.all(np.abs(out - expected) <= 4 * np.maximum(ulp, np.spacing(1e-300)))
    assert np.isnan(activations.vectorized_erf(np.array([np.nan])))[0]
    strided = np.linspace(-3, 3, 40).reshape(5, 8)[:, ::2].copy(order="F")  # any layout numpy hands it
    np.testing.assert_allclose(activations.vectorized_erf(strided.copy(order="F")), special.erf(strided), rtol=1e-15)
    single = np.linspace(-3, 3, 50, dtype=np.float32)
    assert activations.vectorized_erf(single.copy()).dtype == np.float32


def test_without_torch_the_vectorized_erf_is_scipys(monkeypatch):
    from scipy import special

    monkeypatch.setattr(activations, "_torch", False)  # what a failed import leaves
    np.testing.assert_array_equal(activations.vectorized_erf(ERF_POINTS.copy()), special.erf(ERF_POINTS))


@pytest.mark.parametrize("name", ["activation-gelu", "residual", "residual-stack"])
def test_gelu_with_scipys_erf_matches_torch_autograd(name):
    """The network without torch's erf (scipy's, the fallback) against autograd, as the default is above."""
    spec = SPECS[name]
    theta = _theta(spec)[1]
    net = NumpyNetwork(spec, erf=activations.scipy_erf)
    f = net.outputs(theta, X)
    grad = net.backward(theta, W)
    ft, grad_t = _autograd(spec, theta)
    np.testing.assert_allclose(f, ft, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad, grad_t, rtol=1e-12, atol=1e-13)
