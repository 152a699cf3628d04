"""The warm-started, certified top eigenvalue behind every recorded stable rank (core/spectral.py),
against LAPACK's full symmetric eigensolver."""

import numpy as np

from benchmarks.engine_vs_plain import make_config
from margin_explorer.core.spectral import TopEigenvalue
from margin_explorer.core.trainer import Trainer


def _exact(W):
    return np.linalg.eigvalsh(W.T @ W)[-1]


def _weights(Q, values):
    """A symmetric W with W'W = Q diag(values) Q' (the symmetric square root)."""
    W = (Q * np.sqrt(values)) @ Q.T
    return 0.5 * (W + W.T)


def test_along_a_training_run_it_is_warm_and_agrees_with_the_full_solver():
    config = make_config(64, 400, "residual_gelu")  # two 64 x 64 hidden layers, every step recorded
    warm = Trainer(config)
    ranks = warm.run(400).members[0].records["stable_rank"]
    exact = Trainer(config)
    exact.recorder.use_exact_ranks()  # the full symmetric eigensolver at every record
    expected = exact.run(400).members[0].records["stable_rank"]
    assert ranks.shape == expected.shape == (401, 4)
    np.testing.assert_allclose(ranks, expected, rtol=1e-12, atol=0)
    for (_name, _sl, shape), top in zip(warm.net.weight_slices, warm.recorder.top_eigenvalues(0)):
        if min(shape) >= 24:  # the two hidden layers: the warm path nearly always, most often from the guess alone
            assert top.warm_hits >= 0.95 * 401 and top.cold <= 0.05 * 401, (top.warm_hits, top.cold)
            assert top.guessed >= 0.4 * 401, top.guessed


def test_every_value_is_within_1e_12_whatever_the_spectrum_does():
    rng = np.random.default_rng(0)
    top = TopEigenvalue()
    Q, _ = np.linalg.qr(rng.standard_normal((48, 48)))
    base = np.sort(rng.uniform(0.1, 1.0, 48))
    cases = []
    for t in np.linspace(0, 1, 60):  # the top two eigenvalues cross at t = 0.5, their vectors swapping
        values = base.copy()
        values[-1], values[-2] = 2.0 - t, 1.5 + t
        cases.append(_weights(Q, values))
    for _ in range(10):  # a degenerate top pair, slowly rotating
        values = base.copy()
        values[-2:] = 3.0
        R, _ = np.linalg.qr(np.eye(48) + 1e-3 * rng.standard_normal((48, 48)))
        Q = R @ Q
        cases.append(_weights(Q, values))
    for _ in range(10):  # unrelated matrices, one after another, wide and tall
        W = rng.standard_normal((48, 30))
        cases += [W, W.T]
    for step, W in enumerate(cases):
        np.testing.assert_allclose(top(W, step), _exact(W), rtol=1e-12)
    assert top.warm_hits > 20 and top.cold > 5  # both paths were taken


def test_the_certificate_refuses_a_second_eigenvalue():
    """A kept vector that is exactly the second eigenvector is an eigenvector too (no residual):
    Temple's bound must refuse it, since its value is not above every other eigenvalue, and the
    full solver answer."""
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    values = np.linspace(0.5, 5.0, 32)
    W = _weights(Q, values)
    top = TopEigenvalue()
    assert abs(top(W, 0) - 5.0) < 1e-12 * 5.0 and top.cold == 1  # the first call anchors
    top.vectors, top.steps, top.stacked = [Q[:, -2].copy()], [0], None
    assert abs(top(W, 1) - 5.0) < 1e-12 * 5.0
    assert top.cold == 2 and top.warm_hits == 0
    assert abs(top(W, 2) - 5.0) < 1e-12 * 5.0 and top.warm_hits == 1  # and then warm on the right vector


def test_a_second_eigenvalue_rising_past_the_anchor_is_caught():
    """Weyl's bound on lambda_2 follows the drift from the anchor: a second eigenvalue that
    climbs to the top between full solves must never let the old vector's value through."""
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    top = TopEigenvalue()
    for step, t in enumerate(np.linspace(0, 1, 200)):
        values = np.linspace(0.1, 1.0, 40)
        values[-1], values[-2] = 2.0, 1.0 + 1.5 * t  # crosses 2.0 at t = 2/3
        np.testing.assert_allclose(top(_weights(Q, values), step), max(2.0, 1.0 + 1.5 * t), rtol=1e-12)
    assert top.warm_hits > 50 and top.cold > 1


def test_the_bound_on_the_second_eigenvalue_holds_after_any_move():
    """_second_bound (interlacing, from the anchor, without forming G) against eigvalsh, for
    anchors from the full solver and from _reanchor, after moves from 1e-7 to the weights' own
    size, random or along the top direction, and for guesses good and bad."""
    rng = np.random.default_rng(3)
    useful = 0
    for trial in range(300):
        k = int(rng.integers(24, 48))
        W_a = rng.standard_normal((k + int(rng.integers(0, 16)), k))
        top = TopEigenvalue()
        top(W_a, 0)  # the full solver anchors
        values, vectors = np.linalg.eigh(W_a.T @ W_a)
        if trial % 2:  # anchored by a factorization instead, as a run does between full solves
            beta = values[-2] + rng.uniform(0.05, 0.9) * (values[-1] - values[-2])
            assert top._reanchor(W_a, W_a.T @ W_a, float(np.vdot(W_a, W_a)), vectors[:, -1], values[-1], beta)
        size = 10 ** rng.uniform(-7, 0)
        v = vectors[:, -1] + 10 ** rng.uniform(-9, 0.5) * rng.standard_normal(k)  # a guess, good or bad
        if trial % 6 == 1:
            v = vectors[:, -2] + 1e-3 * rng.standard_normal(k)  # the wrong vector: the second
        v /= np.linalg.norm(v)
        D = size * rng.standard_normal(W_a.shape)
        if trial % 3 == 0:  # mostly along the top direction, as training moves the weights
            D += 10 * size * np.outer(W_a @ vectors[:, -1], vectors[:, -1])
        elif trial % 3 == 1:  # along the guess: only the guess's distance from v_a bounds what it adds
            D += 10 * size * np.outer(W_a @ v, v)
        W = W_a + D
        exact = np.linalg.eigvalsh(W.T @ W)
        bound = top._second_bound(W, float(np.vdot(W, W)), v, W @ v)
        assert bound >= exact[-2], (trial, bound, exact[-2])
        useful += bound < exact[-1]
    assert useful > 100  # and it is tight enough to certify with, often


def test_a_reanchor_is_refused_below_the_second_eigenvalue():
    """_reanchor proves lambda_2 <= beta by a factorization: it must fail where beta < lambda_2,
    whatever vector it is given, and leave the anchor as it was."""
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    values = np.append(np.linspace(0.2, 2.0, 29), 4.0)
    W = _weights(Q, values)
    top = TopEigenvalue()
    top(W, 0)
    anchor, second = top.anchor, top.second
    G = W.T @ W
    sq = float(np.vdot(W, W))
    for v in (Q[:, -1], Q[:, -2], rng.standard_normal(30)):
        v = v / np.linalg.norm(v)
        assert not top._reanchor(W, G, sq, v, 4.0, 1.99)  # lambda_2 = 2.0
    assert top.anchor is anchor and top.second == second and top.reanchored == 0
    assert not top._reanchor(W, G, sq, Q[:, -2], 4.0, 2.5)  # the wrong vector: 4.0 is still above beta
    assert top._reanchor(W, G, sq, Q[:, -1], 4.0, 2.01)
    assert top.second >= 2.0 and top.reanchored == 1


def test_a_guess_that_misses_by_far_waits_for_a_retry(monkeypatch):
    """Weights whose top vector jumps at random (~5e-3 a step, as a ReLU network's can): every
    value still exact, and after a hopeless miss neither the cubic nor its bound is tried again
    until every RETRY-th record."""
    from margin_explorer.core import spectral

    bounds = []
    original = TopEigenvalue._second_bound
    monkeypatch.setattr(TopEigenvalue, "_second_bound", lambda self, *a: bounds.append(1) or original(self, *a))
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    values = np.append(np.linspace(0.1, 1.0, 31), 2.0)
    top = TopEigenvalue()
    for step in range(300):
        R, upper = np.linalg.qr(np.eye(32) + 1e-3 * rng.standard_normal((32, 32)))
        Q = (R * np.sign(np.diag(upper))) @ Q  # a rotation near the identity (QR's own signs flip columns)
        np.testing.assert_allclose(top(_weights(Q, values), step), 2.0, rtol=1e-12)
    assert len(bounds) <= 300 / spectral.RETRY + 10, len(bounds)
    assert top.guessed == 0 and top.cold <= 3  # the last vector and inverse iteration do it
