import math

import numpy as np
import pytest

from margin_explorer.core.losses import inverse_loss, log_loss_and_weights

Q = np.array([0.3, -0.2, 1.5, 4.0, 2.2])


@pytest.mark.parametrize("kind, direct", [
    ("exponential", lambda q: np.exp(-q)),
    ("logistic", lambda q: np.log1p(np.exp(-q))),
])
def test_log_loss_and_weights_match_direct_formulas(kind, direct):
    log_l, w = log_loss_and_weights(kind, Q)
    assert log_l == pytest.approx(math.log(direct(Q).sum()), rel=1e-13)
    h = 1e-6
    for i in range(len(Q)):
        e = np.zeros_like(Q)
        e[i] = h
        numeric = (log_loss_and_weights(kind, Q + e)[0] - log_loss_and_weights(kind, Q - e)[0]) / (2 * h)
        assert w[i] == pytest.approx(numeric, rel=1e-6, abs=1e-12)
    log_mean, w_mean = log_loss_and_weights(kind, Q, mean=True)
    assert log_mean == pytest.approx(log_l - math.log(len(Q)))
    np.testing.assert_array_equal(w, w_mean)


@pytest.mark.parametrize("kind", ["exponential", "logistic"])
def test_no_underflow_far_below_the_smallest_double(kind):
    q = np.array([2000.0, 2001.0, 5000.0])  # L ~ exp(-2000), far below 1e-308
    log_l, w = log_loss_and_weights(kind, q)
    assert log_l == pytest.approx(-2000.0 + math.log1p(math.exp(-1.0)), rel=1e-12)
    assert np.all(np.isfinite(w)) and w.sum() == pytest.approx(-1.0, rel=1e-12)


def test_inverse_loss_inverts_the_summed_loss():
    for log_l in (-50.0, -5.0, -0.5, 0.0, 1.0, 3.5, 4.0):
        L = math.exp(log_l)
        # logistic: l^{-1}(L) = q with log(1 + exp(-q)) = L
        q = inverse_loss("logistic", log_l)
        assert math.log1p(math.exp(-q)) == pytest.approx(L, rel=1e-10)
        assert inverse_loss("exponential", log_l) == -log_l
    assert inverse_loss("logistic", -800.0) == pytest.approx(800.0)
