"""The KKT residual (THEORY.md, Quantities): lambda from ONE joint nonnegative least-squares fit of
the stationarity rows and the complementary-slackness row, checked against an independent solver
(scipy's bounded least squares on a Jacobian the test makes itself) and on runs that approach a
KKT point, where both eps and delta must shrink."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from margin_explorer.core.architecture import mlp
from margin_explorer.core.datasets import gaussian_blobs, linearly_separable
from margin_explorer.core.metrics import kkt_residual
from margin_explorer.core.network import NumpyNetwork
from margin_explorer.core.reference import svm_direction
from margin_explorer.core.torch_network import TorchNetwork
from margin_explorer.core.trainer import Trainer
from tests.helpers import config_for, linear_spec


def _oracle(theta, grads, margins, order):
    """(eps, delta) by the definition, solved with lsq_linear (a bounded-variable solver, not
    Lawson-Hanson's NNLS); ``grads[i]`` = grad q_i and ``margins[i]`` = q_i, both at theta."""
    q_min = margins.min()
    c = q_min ** (1.0 / order)
    scaled = theta / c
    # q_i is M-homogeneous, grad q_i (M-1)-homogeneous: both at theta~ from their values at theta
    g = grads / c ** (order - 1.0)
    slack = margins / c ** order - 1.0
    norm = np.linalg.norm(scaled)
    A = np.vstack([g.T, slack / norm])
    b = np.append(scaled, 0.0)
    lam = lsq_linear(A, b, bounds=(0.0, np.inf), method="bvls", tol=1e-15).x
    return np.linalg.norm(scaled - g.T @ lam) / norm, float(lam @ slack)


def test_linear_model_matches_an_independent_joint_fit():
    data = linearly_separable(40, 3, 0.2, seed=4)
    w = svm_direction(data.X, data.y)
    theta = 3.0 * (w + np.array([0.05, -0.03, 0.02]))
    net = NumpyNetwork(linear_spec(3))
    eps, delta = kkt_residual(net, theta, data.X, data.y, 1.0)
    want_eps, want_delta = _oracle(theta, data.X * data.y[:, None], data.y * (data.X @ theta), 1.0)
    assert eps == pytest.approx(want_eps, rel=1e-6, abs=1e-12)
    assert delta == pytest.approx(want_delta, rel=1e-6, abs=1e-12)
    assert delta > 1e-3  # off the SVM direction: complementary slackness is visibly violated


def test_relu_network_matches_an_independent_joint_fit_on_an_autograd_jacobian():
    data = gaussian_blobs(30, 2, separation=4.0, noise=0.6, seed=3)
    spec = mlp(2, [6], init=None)
    net = NumpyNetwork(spec)
    trainer = Trainer(config_for(spec, data, steps=300, lr=1.0, rule="lyu_li"))
    trainer.run(300)  # a point part-way: every sample classified, not yet a KKT point
    theta = trainer.members[0].theta
    model = TorchNetwork(spec).load_flat(theta)
    X = torch.as_tensor(data.X)
    rows = []
    for x in X:
        model.zero_grad()
        model(x[None, :])[0].backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy().copy())
    f = model(X).detach().numpy()
    margins = data.y * f
    assert margins.min() > 0
    eps, delta = kkt_residual(net, theta, data.X, data.y, 2.0)
    want_eps, want_delta = _oracle(theta, np.array(rows) * data.y[:, None], margins, 2.0)
    assert eps == pytest.approx(want_eps, rel=1e-6)
    assert delta == pytest.approx(want_delta, rel=1e-6, abs=1e-12)
    assert eps > 1e-4 and delta > 1e-6  # not a trivial point


def _rotated(w, degrees):
    """w turned by ``degrees`` towards a fixed unit vector orthogonal to it."""
    other = np.array([1.0, -2.0, 0.5])
    other -= (other @ w) * w
    other /= np.linalg.norm(other)
    a = math.radians(degrees)
    return math.cos(a) * w + math.sin(a) * other


def test_linear_model_delta_vanishes_as_the_direction_reaches_the_svm():
    """With few parameters the stationarity rows alone fit exactly for many lambda (eps = 0 and
    delta arbitrary: 16.5 at 0.016 degrees on linear-separable); the joint fit makes delta -> 0."""
    data = linearly_separable(60, 3, 0.1, seed=5)
    w = svm_direction(data.X, data.y)
    net = NumpyNetwork(linear_spec(3))
    results = [kkt_residual(net, 7.0 * _rotated(w, a), data.X, data.y, 1.0) for a in (5.0, 1.0, 0.1, 0.01)]
    deltas = [d for _e, d in results]
    epss = [e for e, _d in results]
    assert all(d >= 0 for d in deltas)
    assert all(b < a for a, b in zip(deltas, deltas[1:])), deltas
    assert deltas[-1] < 1e-3 * deltas[0], deltas
    assert all(b <= a for a, b in zip(epss, epss[1:])), epss
    eps0, delta0 = kkt_residual(net, 7.0 * w, data.X, data.y, 1.0)
    assert eps0 < 1e-12 and abs(delta0) < 1e-5


def test_both_parts_shrink_on_a_two_layer_relu_run():
    data = gaussian_blobs(60, 2, separation=4.0, noise=0.6, seed=1)
    config = config_for(mlp(2, [16], init=None), data, steps=4000, lr=1.0, rule="lyu_li",
                        per_decade=20, snapshots_per_decade=4)
    config.architecture.init.scale = 0.5
    chunk = Trainer(config).run(4000).members[0]
    pairs = [(m["kkt_eps"], m["kkt_delta"]) for m in chunk.snapshot_metrics if np.isfinite(m["kkt_eps"])]
    assert len(pairs) >= 8
    (eps_first, delta_first), (eps_last, delta_last) = pairs[0], pairs[-1]
    assert eps_last < eps_first / 5 and abs(delta_last) < abs(delta_first) / 100, pairs
    # late half: both keep shrinking (old fit: delta stayed put while eps fell)
    late = pairs[len(pairs) // 2:]
    assert abs(late[-1][1]) < abs(late[0][1]) / 2 and late[-1][0] < late[0][0], late
