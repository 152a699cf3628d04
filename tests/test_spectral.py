"""The warm-started, certified top eigenvalue behind every recorded stable rank (core/spectral.py),
against LAPACK's full symmetric eigensolver."""

import numpy as np

from benchmarks.engine_vs_plain import make_config
from core.spectral import TopEigenvalue
from core.trainer import Trainer


def _exact(G):
    return np.linalg.eigvalsh(G)[-1]


def test_along_a_training_run_it_is_warm_and_agrees_with_the_full_solver():
    config = make_config(64, 400, "residual_gelu")  # two 64 x 64 hidden layers, every step recorded
    warm = Trainer(config)
    ranks = warm.run(400).records["stable_rank"]
    exact = Trainer(config)
    exact._top_eigenvalues = [None] * len(exact._top_eigenvalues)  # metrics.stable_rank's eigvalsh
    expected = exact.run(400).records["stable_rank"]
    assert ranks.shape == expected.shape == (401, 4)
    np.testing.assert_allclose(ranks, expected, rtol=1e-12, atol=0)
    for (_name, _sl, shape), top in zip(warm.net.weight_slices, warm._top_eigenvalues):
        if min(shape) >= 24:  # the two hidden layers: the warm path nearly always
            assert top.warm_hits >= 0.95 * 401 and top.cold <= 0.05 * 401, (top.warm_hits, top.cold)


def test_every_value_is_within_1e_12_whatever_the_spectrum_does():
    rng = np.random.default_rng(0)
    top = TopEigenvalue()
    Q, _ = np.linalg.qr(rng.standard_normal((48, 48)))
    base = np.sort(rng.uniform(0.1, 1.0, 48))
    cases = []
    for t in np.linspace(0, 1, 60):  # the top two eigenvalues cross at t = 0.5, their vectors swapping
        values = base.copy()
        values[-1], values[-2] = 2.0 - t, 1.5 + t
        cases.append((Q * values) @ Q.T)
    for _ in range(10):  # a degenerate top pair, slowly rotating
        values = base.copy()
        values[-2:] = 3.0
        R, _ = np.linalg.qr(np.eye(48) + 1e-3 * rng.standard_normal((48, 48)))
        Q = R @ Q
        cases.append((Q * values) @ Q.T)
    for _ in range(10):  # unrelated matrices, one after another
        W = rng.standard_normal((48, 30))
        cases.append(W @ W.T)
    for G in cases:
        G = 0.5 * (G + G.T)
        np.testing.assert_allclose(top(G), _exact(G), rtol=1e-12)
    assert top.warm_hits > 20 and top.cold > 5  # both paths were taken


def test_the_certificate_refuses_a_second_eigenvalue():
    """A kept vector that is exactly the second eigenvector is an eigenvector too (no residual):
    Temple's bound must refuse it, since its value is not above every other eigenvalue, and the
    full solver answer."""
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    values = np.linspace(0.5, 5.0, 32)
    G = (Q * values) @ Q.T
    G = 0.5 * (G + G.T)
    top = TopEigenvalue()
    assert abs(top(G) - 5.0) < 1e-12 * 5.0 and top.cold == 1  # the first call anchors
    top.vector = Q[:, -2].copy()
    assert abs(top(G) - 5.0) < 1e-12 * 5.0
    assert top.cold == 2 and top.warm_hits == 0
    assert abs(top(G) - 5.0) < 1e-12 * 5.0 and top.warm_hits == 1  # and then warm on the right vector


def test_a_second_eigenvalue_rising_past_the_anchor_is_caught():
    """Weyl's bound on lambda_2 follows the drift from the anchor: a second eigenvalue that
    climbs to the top between full solves must never let the old vector's value through."""
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    top = TopEigenvalue()
    for t in np.linspace(0, 1, 200):
        values = np.linspace(0.1, 1.0, 40)
        values[-1], values[-2] = 2.0, 1.0 + 1.5 * t  # crosses 2.0 at t = 2/3
        G = (Q * values) @ Q.T
        G = 0.5 * (G + G.T)
        np.testing.assert_allclose(top(G), max(2.0, 1.0 + 1.5 * t), rtol=1e-12)
    assert top.warm_hits > 50 and top.cold > 1
