"""Multi-class margins, losses, smoothed margin, KKT residual and test metrics (core/multiclass.py,
THEORY.md Multi-class) against independent computations: torch autograd on a plain float64
cross-entropy, finite differences, mpmath at 50 digits, a hand-made KKT point, scipy's
bounded least squares, and today's binary functions where the two coincide."""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from margin_explorer.core import losses
from margin_explorer.core import multiclass as MC
from margin_explorer.core.architecture import mlp
from margin_explorer.core.metrics import kkt_residual as binary_kkt_residual
from margin_explorer.core.network import NumpyNetwork, initial_parameters


def _random(n=9, classes=4, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=(n, classes)), rng.integers(0, classes, size=n)


def _plain_log_loss(kind, outputs, labels):
    """log L by the textbook formulas in float64 torch: F.cross_entropy, or the pair sum of exps."""
    if kind == "logistic":
        return torch.log(torch.nn.functional.cross_entropy(outputs, labels, reduction="sum"))
    own = torch.nn.functional.one_hot(labels, outputs.shape[1]).bool()
    f_y = outputs.gather(1, labels[:, None])
    return torch.log(torch.exp(outputs - f_y)[~own].sum())


@pytest.mark.parametrize("kind", ["exponential", "logistic"])
@pytest.mark.parametrize("mean", [False, True])
def test_loss_and_weights_match_autograd_of_a_plain_loss(kind, mean):
    outputs, labels = _random()
    f = torch.tensor(outputs, requires_grad=True)
    want = _plain_log_loss(kind, f, torch.as_tensor(labels)) - (math.log(len(labels)) if mean else 0.0)
    want.backward()
    log_l, weights = MC.log_loss_and_weights(kind, outputs, labels, mean)
    assert log_l == pytest.approx(want.item(), rel=1e-13)
    assert weights.shape == outputs.shape
    assert np.allclose(weights, f.grad.numpy(), rtol=1e-11, atol=1e-15)
    # the torch form, with a batch of two runs (the second's outputs doubled)
    batch = torch.tensor(np.stack([outputs, 2 * outputs]))
    log_t, w_t = MC.log_loss_and_weights_torch(kind, batch, torch.as_tensor(labels), mean)
    other = MC.log_loss_and_weights(kind, 2 * outputs, labels, mean)
    assert log_t[0].item() == pytest.approx(log_l, rel=1e-13) and log_t[1].item() == pytest.approx(other[0], rel=1e-13)
    assert np.allclose(w_t[0].numpy(), weights, rtol=1e-11, atol=1e-15)
    assert np.allclose(w_t[1].numpy(), other[1], rtol=1e-11, atol=1e-15)


def test_margins_are_the_gap_to_the_runner_up_and_their_gradient_matches_finite_differences():
    outputs, labels = _random(n=12, classes=5, seed=2)
    q = MC.sample_margins(outputs, labels)
    for i in range(len(labels)):  # by the definition, one sample at a time
        others = [outputs[i, j] for j in range(5) if j != labels[i]]
        assert q[i] == outputs[i, labels[i]] - max(others)
    assert np.array_equal(MC.sample_margins_torch(torch.tensor(outputs), torch.as_tensor(labels)).numpy(), q)
    grad = MC.margin_gradient(outputs, labels)
    h = 1e-6
    for i in range(len(labels)):
        for j in range(5):
            up, down = outputs.copy(), outputs.copy()
            up[i, j] += h
            down[i, j] -= h
            fd = (MC.sample_margins(up, labels)[i] - MC.sample_margins(down, labels)[i]) / (2 * h)
            assert fd == pytest.approx(grad[i, j], abs=1e-8)


class TwoLayer:
    """f(x) = V relu(W x), C outputs, bias-free (2-homogeneous); theta = (W, V) row-major.
    The analytic Jacobian (n, C, P) that core/multiclass.kkt_residual expects of a network."""

    def __init__(self, d, h, c):
        self.d, self.h, self.c = d, h, c
        self.size = h * d + c * h

    def split(self, theta):
        return theta[:self.h * self.d].reshape(self.h, self.d), theta[self.h * self.d:].reshape(self.c, self.h)

    def outputs(self, theta, X):
        W, V = self.split(theta)
        return np.maximum(X @ W.T, 0) @ V.T

    def jacobian(self, theta, X):
        W, V = self.split(theta)
        pre = X @ W.T
        hidden, active = np.maximum(pre, 0), (pre > 0).astype(float)
        n = X.shape[0]
        dW = V[None, :, :, None] * active[:, None, :, None] * X[:, None, None, :]  # (n, C, h, d)
        dV = np.zeros((n, self.c, self.c, self.h))
        dV[:, np.arange(self.c), np.arange(self.c), :] = hidden[:, None, :]
        return np.concatenate([dW.reshape(n, self.c, -1), dV.reshape(n, self.c, -1)], axis=2)


def _network_and_data(seed=1, n=10, d=3, h=5, c=3):
    rng = np.random.default_rng(seed)
    net, X = TwoLayer(d, h, c), rng.normal(size=(n, d))
    theta = rng.normal(size=net.size)
    labels = np.argmax(net.outputs(theta, X), axis=1)  # the network's own classes: q_min > 0
    return net, theta, X, labels


def test_the_margin_gradient_in_theta_matches_finite_differences():
    net, theta, X, labels = _network_and_data()
    jac = net.jacobian(theta, X)
    grad_q = np.einsum("nc,ncp->np", MC.margin_gradient(net.outputs(theta, X), labels), jac)
    h = 1e-6
    for p in range(net.size):
        step = np.zeros(net.size)
        step[p] = h
        fd = (MC.sample_margins(net.outputs(theta + step, X), labels)
              - MC.sample_margins(net.outputs(theta - step, X), labels)) / (2 * h)
        assert np.allclose(fd, grad_q[:, p], atol=1e-7)
        fd_out = (net.outputs(theta + step, X) - net.outputs(theta - step, X)) / (2 * h)  # the helper's own Jacobian
        assert np.allclose(fd_out, jac[:, :, p], atol=1e-7)


@pytest.mark.parametrize("kind", ["exponential", "logistic"])
def test_log_loss_is_finite_far_below_1e_minus_308(kind):
    outputs, labels = _random(n=6, classes=3, seed=4, scale=0.3)
    outputs[np.arange(6), labels] += 2.0  # every sample correct by a margin
    outputs = 1e3 * outputs  # L ~ exp(-1000 q): far below the smallest double
    log_l, weights = MC.log_loss_and_weights(kind, outputs, labels)
    mpmath.mp.dps = 50
    total = mpmath.mpf(0)
    for i in range(6):
        s = sum(mpmath.exp(mpmath.mpf(outputs[i, j]) - mpmath.mpf(outputs[i, labels[i]])) for j in range(3) if j != labels[i])
        total += s if kind == "exponential" else mpmath.log1p(s)
    assert math.isfinite(log_l) and log_l < -700
    assert log_l == pytest.approx(float(mpmath.log(total)), rel=1e-13)
    assert np.all(np.isfinite(weights)) and weights.any()
    log_t, w_t = MC.log_loss_and_weights_torch(kind, torch.tensor(outputs), torch.as_tensor(labels))
    assert log_t.item() == pytest.approx(log_l, rel=1e-13) and np.allclose(w_t.numpy(), weights, rtol=1e-10)


@pytest.mark.parametrize("seed", range(20))
def test_the_sandwich_holds_on_random_outputs(seed):
    rng = np.random.default_rng(seed)
    n, classes = rng.integers(2, 30), rng.integers(3, 11)
    outputs, labels = _random(n, classes, seed, scale=float(rng.uniform(0.1, 50)))
    norm, order = float(rng.uniform(0.5, 5)), float(rng.integers(1, 4))
    gamma = MC.sample_margins(outputs, labels).min() / norm ** order
    smoothed = MC.smoothed_margin("exponential", MC.log_loss_and_weights("exponential", outputs, labels)[0], norm, order)
    slack = 1e-12 * max(1.0, abs(gamma))
    assert smoothed <= gamma + slack
    assert gamma <= smoothed + math.log(n * (classes - 1)) / norm ** order + slack
    cross = MC.smoothed_margin("logistic", MC.log_loss_and_weights("logistic", outputs, labels)[0], norm, order)
    assert cross <= gamma + slack  # the cross-entropy's lower side holds always


def test_binary_inputs_and_two_classes_give_todays_binary_quantities():
    outputs, labels = _random(n=15, classes=2, seed=6)
    f, y = outputs[:, 1] - outputs[:, 0], np.where(labels == 1, 1.0, -1.0)
    q = MC.sample_margins(outputs, labels)
    assert np.array_equal(q, y * f) and np.array_equal(MC.sample_margins(f, y), y * f)
    for kind in ("exponential", "logistic"):
        want_log, want_w = losses.log_loss_and_weights(kind, y * f)
        log_l, weights = MC.log_loss_and_weights(kind, outputs, labels)
        assert log_l == pytest.approx(want_log, rel=1e-15)
        assert np.allclose(weights[:, 1], want_w * y, rtol=1e-14) and np.allclose(weights[:, 0], -want_w * y, rtol=1e-14)
        log_b, w_b = MC.log_loss_and_weights(kind, f, y)  # binary inputs: today's functions exactly
        assert log_b == want_log and np.array_equal(w_b, want_w * y)
        assert MC.smoothed_margin(kind, log_l, 2.0, 2.0) == pytest.approx(losses.inverse_loss(kind, want_log) / 4.0, rel=1e-14)


class ZeroFirstOutput:
    """A binary network g as two outputs (0, g): class 1's margin is g, class 0's is -g."""

    def __init__(self, net):
        self.net = net

    def outputs(self, theta, X):
        g = self.net.outputs(theta, X)
        return np.column_stack([np.zeros_like(g), g])

    def jacobian(self, theta, X):
        jac = self.net.jacobian(theta, X)
        return np.stack([np.zeros_like(jac), jac], axis=1)


def test_the_kkt_residual_of_two_classes_is_the_binary_one():
    spec = mlp(2, [6], init=None)
    net = NumpyNetwork(spec)
    theta = initial_parameters(spec, seed=3)
    X = np.random.default_rng(3).normal(size=(12, 2))
    y = np.sign(net.outputs(theta, X))  # separable by the network itself
    want = binary_kkt_residual(net, theta, X, y, 2.0)
    got = MC.kkt_residual(ZeroFirstOutput(net), theta, X, (y > 0).astype(int), 2.0)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


class Linear:
    """f(x) = W x with W (C, d) row-major as theta (1-homogeneous)."""

    def __init__(self, d, c):
        self.d, self.c = d, c

    def outputs(self, theta, X):
        return X @ theta.reshape(self.c, self.d).T

    def jacobian(self, theta, X):
        jac = np.zeros((len(X), self.c, self.c, self.d))  # d f_c / d W_{c'k} = [c = c'] x_k
        for c in range(self.c):
            jac[:, c, c, :] = X
        return jac.reshape(len(X), self.c, -1)


def test_a_symmetric_three_class_max_margin_point_has_zero_kkt_residual():
    # three unit vectors at 120 degrees, one sample each; W with rows x_c is the max-margin
    # linear classifier: W = 3 lambda (x_c) with every pair's multiplier lambda = 1/3 (by hand)
    angles = np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    X = np.column_stack([np.cos(angles), np.sin(angles)])
    linear = Linear(2, 3)
    labels = np.arange(3)
    eps, delta = MC.kkt_residual(linear, 5.0 * X.ravel(), X, labels, 1.0)
    assert eps < 1e-10 and abs(delta) < 1e-10
    bent = X.copy()
    bent[0] = [math.cos(0.3), math.sin(0.3)]
    eps, delta = MC.kkt_residual(linear, 5.0 * bent.ravel(), X, labels, 1.0)
    assert eps > 1e-2  # off the max-margin point: stationarity fails


def test_the_kkt_residual_matches_an_independent_joint_fit():
    net, theta, X, labels = _network_and_data(seed=5, n=8)
    eps, delta = MC.kkt_residual(net, theta, X, labels, 2.0)
    q_min = MC.sample_margins(net.outputs(theta, X), labels).min()
    scaled = theta / math.sqrt(q_min)
    out, jac = net.outputs(scaled, X), net.jacobian(scaled, X)
    grads, slack = [], []
    for i in range(len(labels)):  # the pairs, one by one
        for j in range(3):
            if j != labels[i]:
                grads.append(jac[i, labels[i]] - jac[i, j])
                slack.append(out[i, labels[i]] - out[i, j] - 1.0)
    grads, slack = np.array(grads), np.array(slack)
    norm = np.linalg.norm(scaled)
    lam = lsq_linear(np.vstack([grads.T, slack / norm]), np.append(scaled, 0.0), bounds=(0, np.inf),
                     method="bvls", tol=1e-15).x
    assert eps == pytest.approx(np.linalg.norm(scaled - grads.T @ lam) / norm, rel=1e-6, abs=1e-12)
    assert delta == pytest.approx(lam @ slack, rel=1e-6, abs=1e-12)
    assert slack.min() == pytest.approx(0.0, abs=1e-12)  # theta~ is feasible and its closest pair is active


def test_test_metrics_for_multi_class_and_binary():
    outputs, labels = _random(n=40, classes=4, seed=8)
    m = MC.test_metrics(outputs, labels, norm=2.0, order=2.0, kind="exponential")
    assert m["test_accuracy"] == np.mean(np.argmax(outputs, axis=1) == labels)  # no ties in random floats
    ce = torch.nn.functional.cross_entropy(torch.tensor(outputs), torch.as_tensor(labels)).item()
    assert m["test_cross_entropy"] == pytest.approx(ce, rel=1e-13)
    pair_sum = sum(math.exp(outputs[i, j] - outputs[i, labels[i]]) for i in range(40) for j in range(4) if j != labels[i])
    assert m["test_log_loss"] == pytest.approx(math.log(pair_sum / 40), rel=1e-13)
    gaps = np.array([outputs[i, labels[i]] - max(outputs[i, j] for j in range(4) if j != labels[i]) for i in range(40)]) / 4.0
    assert m["test_margin_min"] == gaps.min() and m["test_margin_below_zero"] == np.mean(gaps < 0)
    assert np.allclose(m["test_margin_quantiles"], np.quantile(gaps, MC.TEST_QUANTILES))
    f, y = outputs[:, 0], np.where(labels % 2 == 0, 1.0, -1.0)
    b = MC.test_metrics(f, y, norm=3.0, order=1.0, kind="logistic")
    assert b["test_accuracy"] == np.mean(y * f > 0) and b["test_margin_min"] == np.min(y * f) / 3.0
    assert b["test_log_loss"] == pytest.approx(math.log(np.mean(np.log1p(np.exp(-y * f)))), rel=1e-13)
    nan = MC.test_metrics(f, y, norm=3.0, order=float("nan"))
    assert math.isnan(nan["test_margin_min"]) and np.isnan(nan["test_margin_quantiles"]).all()
    assert nan["test_accuracy"] == b["test_accuracy"]
