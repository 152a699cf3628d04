"""Margin metrics, each exactly as defined in THEORY.md (Quantities).

``SCALAR_METRICS`` and ``ARRAY_METRICS`` name what every record holds, with the definition a
tooltip shows; ``SNAPSHOT_METRICS`` are computed at snapshot steps only (they need the
per-sample Jacobian). M is the homogeneity order; ||.|| is l2 unless stated.
"""

from __future__ import annotations

import math

import numpy as np


SCALAR_METRICS = {
    "step": "gradient steps taken",
    "wall_time": "seconds since the run started (training time only)",
    "log_loss": "log L, L = sum_i l(q_i) (or the mean, as configured); computed by log-sum-exp",
    "accuracy": "fraction of samples with q_i = y_i f(x_i) > 0",
    "q_min": "q_min = min_i y_i f(theta; x_i), the unnormalized margin",
    "param_norm": "||theta||_2 over all parameters",
    "param_norm_l1": "||theta||_1",
    "param_norm_linf": "||theta||_inf",
    "normalized_margin": "gamma = q_min / ||theta||_2^M",
    "smoothed_margin": "gamma~ = l^{-1}(L) / ||theta||_2^M with L the summed loss (log(1/L) for exp)",
    "normalized_margin_l1": "q_min / ||theta||_1^M, the margin steepest descent in l1 maximizes",
    "normalized_margin_linf": "q_min / ||theta||_inf^M, the margin sign descent (l_inf) maximizes",
    "alignment": "cos angle(theta, -grad L) = <theta, -grad L> / (||theta|| ||grad L||)",
    "alignment_gap": "1 - cos angle(theta, -grad L), computed as ||u - v||^2 / 2 for unit u, v (no cancellation)",
    "direction_change": ("angle (radians) between theta/||theta|| now and at the previous record: per record, "
                         "not per step, so it steps up where the records thin out after the every-step phase"),
    "angle_to_reference": "angle (radians) between theta/||theta|| and the reference direction (max-margin separator of the matching norm, linear models)",
    "support_vectors": "#{i : q_i <= q_min + tol |q_min|}, tol = recording.support_tolerance",
    "normalized_margin_layers": ("q_min / prod_l ||W_l||_F over the weight matrices (biases not included): Lyu and Li's "
                                 "figures' normalization (their code's norm_prod); by AM-GM at least gamma L^(L/2) for L "
                                 "weight layers of a bias-free network, with equality for balanced layers"),
}
ARRAY_METRICS = {
    "sample_margins": "q_i / ||theta||_2^M for every sample i (records x n)",
    "layer_norms": "||W||_F of each weight matrix (records x layers)",
    "stable_rank": "||W||_F^2 / ||W||_2^2 of each weight matrix (records x layers)",
    "ensemble_share": "||f_k(X)||_2 / sum_j ||f_j(X)||_2 for each member k of the first ensemble",
    "support_counts": ("Lyu and Li's support-vector counts n_k = #{i : q_i < q_min + log 10^k} for k = 1..7 "
                       "(records x 7; unnormalized margins, as in their code)"),
}
# Generalization (issue 20): recorded only for runs whose dataset has a test set (X_test, y_test,
# never trained on); a run without one has none of these columns. q_i here is y_i f(x_i) of
# test sample i (m of them).
TEST_SCALARS = {
    "test_accuracy": "fraction of TEST samples with q_i = y_i f(x_i) > 0 (a tie counts as an error)",
    "test_log_loss": "log of the MEAN test loss (1/m) sum_i l(q_i) over the m test samples, l the run's loss",
    "test_margin_min": "min_i q_i / ||theta||_2^M over the test samples (negative: a test sample is misclassified)",
    "test_margin_below_zero": "fraction of TEST samples with q_i < 0 (misclassified, ties not counted)",
}
# Lyu and Li's loss-based step rule (core/step_rule.py LossBasedRate): recorded only for runs with
# optimizer.step_rule loss_based
RATE_SCALARS = {
    "step_alpha": "alpha_t of the loss_based step rule: the step from this record is alpha_t grad log L (eta_t = alpha_t / L)",
    "step_taken": ("1 where the step into this record lowered the loss (or tied) and was kept, 0 where it raised it "
                   "and was undone (theta here equals theta before it, exactly)"),
}
TEST_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)  # core/multiclass.py's, the test_margin_quantiles' columns
TEST_ARRAYS = {
    "test_margin_quantiles": ("the 10%, 25%, 50%, 75% and 90% quantiles of the test samples' normalized margins "
                              "q_i / ||theta||_2^M (records x 5; numpy's linear interpolation)"),
}
TEST_METRICS = {**TEST_SCALARS, **TEST_ARRAYS}
SUPPORT_DECADES = 7  # support_counts' k = 1..7
SUPPORT_STEPS = math.log(10.0) * np.arange(1, SUPPORT_DECADES + 1)  # their thresholds above q_min: log 10^k
SNAPSHOT_METRICS = {
    "kkt_eps": ("KKT stationarity: ||theta~ - sum_i lambda_i grad q_i(theta~)|| / ||theta~||, theta~ = theta / q_min^(1/M), "
                "lambda >= 0 from one joint NNLS fit of this residual and the slackness row delta / ||theta~||"),
    "kkt_delta": "complementary slackness: sum_i lambda_i (q_i(theta~) - 1), for the same jointly fitted lambda",
    "euler_defect": "max_i |<grad f(x_i), theta> - M f(x_i)| / ||theta||^M",
}
DEFINITIONS = {**SCALAR_METRICS, **ARRAY_METRICS, **TEST_METRICS, **RATE_SCALARS, **SNAPSHOT_METRICS}


def unit_angle(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between unit vectors, 2 atan2(||u - v||, ||u + v||): accurate for tiny angles,
    where arccos(<u, v>) loses everything below ~1e-8 rad. Up to pi/2, ||u + v||^2 is
    4 - ||u - v||^2, at least 2, so the rounding of |u| and |v| to 1 costs ~1e-16 of it and u + v
    need not be formed (a record's direction change is parameter-sized); beyond,
    that difference cancels and u + v is formed."""
    d = u - v
    d2 = float(np.dot(d, d))
    if d2 <= 2.0:
        s2 = 4.0 - d2
    else:
        np.add(u, v, out=d)
        s2 = float(np.dot(d, d))
    return 2.0 * math.atan2(math.sqrt(d2), math.sqrt(s2))


def stable_rank(W: np.ndarray, top_eigenvalue=None, step: int | None = None,
                squared_norm: float | None = None) -> float:
    """||W||_F^2 / ||W||_2^2 (Kou, Chen and Gu 2023): ||W||_2^2 is the top eigenvalue of the
    smaller Gram matrix, in closed form when that is 2 x 2 (an SVD per record was costly), else
    by eigvalsh or by ``top_eigenvalue``, a spectral.TopEigenvalue that a run keeps per layer and
    calls with the record's ``step`` (certified to ~1e-13, and quicker: docs/performance.md);
    ``squared_norm``: ||W||_F^2 where the caller has it."""
    rows, cols = W.shape
    if min(rows, cols) == 1:
        return 1.0
    if top_eigenvalue is not None and min(rows, cols) > 2:
        frobenius = float(np.vdot(W, W)) if squared_norm is None else squared_norm
        top = top_eigenvalue(W, step, frobenius) if math.isfinite(frobenius) else float("nan")  # nan: diverged
        return frobenius / top if top > 0 else float("nan")
    G = W.T @ W if cols <= rows else W @ W.T
    if G.shape[0] == 2:
        a, b, _, d = G.ravel().tolist()
        frobenius = a + d  # ||W||_F^2 is the trace of the Gram matrix
        top = 0.5 * frobenius + math.sqrt(0.25 * (a - d) ** 2 + b * b)
    else:
        frobenius = float(np.trace(G))
        if not math.isfinite(frobenius):  # a diverged run's weights (|G_ij| <= the trace: all finite otherwise)
            return float("nan")
        top = float(np.linalg.eigvalsh(G)[-1])
    return frobenius / top if top > 0 else float("nan")


def kkt_residual(network, theta: np.ndarray, X: np.ndarray, y: np.ndarray, order: float) -> tuple[float, float]:
    """(eps, delta) of the max-margin problem min 1/2 ||theta||^2 s.t. q_i >= 1 (Lyu and Li 2020),
    with lambda from ONE joint nonnegative least-squares fit (THEORY.md, KKT residual).

    theta is rescaled to the feasible point theta~ = theta / q_min^(1/M); lambda >= 0 minimizes
    ||theta~ - sum_i lambda_i grad q_i(theta~)||^2 + (sum_i lambda_i (q_i(theta~) - 1) / ||theta~||)^2:
    the stationarity rows plus one complementary-slackness row, scaled into the units of theta. Fitting
    the stationarity rows alone leaves lambda free wherever they fit exactly (few parameters), and delta
    then means nothing. eps = ||theta~ - sum_i lambda_i grad q_i(theta~)|| / ||theta~||,
    delta = sum_i lambda_i (q_i(theta~) - 1) for that lambda. Undefined (nan) while q_min <= 0."""
    from scipy.optimize import nnls  # here, not at the top: off the window's start-up

    q = y * network.outputs(theta, X)
    q_min = float(np.min(q))
    if not q_min > 0:
        return float("nan"), float("nan")
    scaled = theta / q_min ** (1.0 / order)
    scale = float(np.linalg.norm(scaled))
    jac = network.jacobian(scaled, X) * y[:, None]  # row i: grad q_i(theta~)
    slack = y * network.outputs(scaled, X) - 1.0  # q_i(theta~) - 1 >= 0
    rows = np.vstack([jac.T, slack[None, :] / scale])
    lam, _joint = nnls(rows, np.append(scaled, 0.0), maxiter=50 * jac.shape[0])
    eps = float(np.linalg.norm(scaled - jac.T @ lam)) / scale
    delta = float(np.dot(lam, slack))
    return eps, delta
