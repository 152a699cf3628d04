"""The presets that redraw the papers' figures (docs/papers.md), each against a number computed
here independently of the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import differential_evolution, minimize

import margin_explorer as mx
from margin_explorer.core.network_margin import max_normalized_margin

FIVE_X = np.array([[0.05, 1, 2], [0.05, -2, 1], [-1, 0, 2], [0.05, -2, -2], [0.05, 1, -2]])
FIVE_Y = np.array([1, 1, -1, 1, 1.0])


def largest_margin_of_two_neurons():
    """max over ||(w1, w2)||_2 = 1 of min_i y_i (h(w1.x_i) - h(w2.x_i)) / 2, h(z) = z above 0 and
    z / 2 below, by differential evolution over the cube [-1, 1]^6 (the margin is scale-free),
    polished by Nelder-Mead (not the code's SLSQP on the epigraph form)."""
    def h(z):
        return np.where(z > 0, z, z / 2)

    def negative_margin(t):
        return -np.min(FIVE_Y * (h(FIVE_X @ t[:3]) - h(FIVE_X @ t[3:])) / 2) / np.linalg.norm(t)

    found = differential_evolution(negative_margin, [(-1, 1)] * 6, seed=7, tol=1e-12, maxiter=3000, polish=False)
    return -minimize(negative_margin, found.x, method="Nelder-Mead",
                     options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000}).fun


def test_the_five_point_networks_largest_margin_is_one_over_16_sqrt5():
    """w1 = 2 e1 / sqrt 5, w2 = -e1 / sqrt 5: the four +1 points (x . e1 = 0.05) get
    (0.1 + 0.025) / (2 sqrt 5) = 1 / (16 sqrt 5); the -1 point more. No direction does better."""
    closed_form = 1 / (16 * math.sqrt(5))
    assert largest_margin_of_two_neurons() == pytest.approx(closed_form, rel=1e-4)
    spec = mx.preset("cai-figure4").architecture
    assert max_normalized_margin(spec, FIVE_X, FIVE_Y) == pytest.approx(closed_form, rel=1e-6)


def test_cai_figure4_reaches_within_5_percent_of_the_largest_margin():
    run = mx.train(mx.preset("cai-figure4"))
    best = 1 / (16 * math.sqrt(5))
    gamma = run.metrics["normalized_margin"]
    assert run.status == "finished" and run.final_params.shape == (6,)  # the frozen +-1/2 are not in theta
    assert gamma[0] < 0 < gamma[-1]
    assert 0.95 * best <= gamma[-1] <= best
    assert run.reference_margin == pytest.approx(best, rel=1e-6)  # the plot's dashed line
    assert [v.supported for v in mx.check(run)][:2] == [True, True]
