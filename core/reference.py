"""Reference directions for linear models: max-margin separators in l2, l1 and l_inf
(THEORY.md, claims 1 and 5), and a linear-separability test.

l2: the hard-margin SVM without bias, min 1/2 ||w||^2 s.t. y_i <w, x_i> >= 1, solved in its
dual (a bound-constrained QP, L-BFGS-B) and polished. l1 and l_inf: linear programs (HiGHS).
A first-layer bias is handled by the caller appending a constant-1 coordinate.
"""

from __future__ import annotations

import numpy as np


def linprog(*args, **kwargs):
    """scipy.optimize.linprog, imported on first use (~0.3 s the window's start-up need not wait for)."""
    from scipy.optimize import linprog as solve

    return solve(*args, **kwargs)


def minimize(*args, **kwargs):
    """scipy.optimize.minimize, imported on first use."""
    from scipy.optimize import minimize as solve

    return solve(*args, **kwargs)


def svm_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Unit l2 max-margin direction w* (no bias), or None when the data are not separable
    through the origin."""
    Z = X * y[:, None]
    if not _separable_through_origin(Z):
        return None
    K = Z @ Z.T
    n = len(y)

    def dual(a):
        Ka = K @ a
        return 0.5 * a @ Ka - a.sum(), Ka - 1.0

    res = minimize(dual, np.full(n, 1.0 / n), jac=True, method="L-BFGS-B", bounds=[(0, None)] * n,
                   options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12})
    w = Z.T @ res.x
    return w / np.linalg.norm(w)


def _separable_through_origin(Z: np.ndarray) -> bool:
    """Is there w with <w, z_i> >= 1 for all i?  (An LP feasibility problem.)"""
    n, d = Z.shape
    res = linprog(np.zeros(d), A_ub=-Z, b_ub=-np.ones(n), bounds=[(None, None)] * d, method="highs")
    return res.status == 0


def is_linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """With a bias: is there (w, b) with y_i (<w, x_i> + b) >= 1?"""
    Xb = np.column_stack([X, np.ones(len(y))])
    return _separable_through_origin(Xb * y[:, None])


def svm_margin(X: np.ndarray, y: np.ndarray) -> float | None:
    """The geometric l2 margin of the best separating hyperplane with bias, or None."""
    Xb = np.column_stack([X, np.ones(len(y))])
    Z = Xb * y[:, None]
    if not _separable_through_origin(Z):
        return None
    # min 1/2 ||w||^2 (bias free of the penalty) s.t. y_i (w.x_i + b) >= 1, by SLSQP on the primal
    d = X.shape[1]
    cons = {"type": "ineq", "fun": lambda v: Z @ v - 1.0, "jac": lambda v: Z}
    start = linprog(np.zeros(d + 1), A_ub=-Z, b_ub=-np.ones(len(y)), bounds=[(None, None)] * (d + 1), method="highs").x
    res = minimize(lambda v: 0.5 * v[:d] @ v[:d], start, jac=lambda v: np.concatenate([v[:d], [0.0]]),
                   constraints=[cons], method="SLSQP", options={"maxiter": 500, "ftol": 1e-12})
    w = res.x[:d]
    return float(np.min(Z @ res.x) / np.linalg.norm(w))


RAY_DEGREES = 3.0  # opposite-label pairs this close to one ray from the origin are flagged


def dataset_geometry(X: np.ndarray, y: np.ndarray, max_margin_dim: int = 50, ray_degrees: float = RAY_DEGREES) -> dict:
    """What the dataset panel says about the data: linearly separable with a bias, and then the l2
    SVM margin when the dimension is at most ``max_margin_dim`` (None above: the QP gets slow);
    separable through the origin (what a bias-free linear model needs); and the opposite-label
    pairs within ``ray_degrees`` of one ray from the origin (or at it), which a bias-free network,
    f(c x) = c^k f(x) for c > 0, cannot separate or only with a huge norm. The window asks its
    worker process for this, so that scipy stays out of the window's memory."""
    separable = is_linearly_separable(X, y)
    margin = svm_margin(X, y) if separable and X.shape[1] <= max_margin_dim else None
    through_origin = bool(_separable_through_origin(X * y[:, None]))
    return {"separable": bool(separable), "margin": margin, "through_origin": through_origin,
            "ray_pairs": opposite_label_rays(X, y, ray_degrees)}


def opposite_label_rays(X: np.ndarray, y: np.ndarray, degrees: float = RAY_DEGREES, limit: int = 5) -> dict:
    """Pairs (i, j) with y_i != y_j whose directions from the origin are within ``degrees`` (a point
    at the origin is on every ray): ``count``, the closest ``pairs`` as (i, j, angle in degrees) up to
    ``limit``. Bias-free networks are positively homogeneous in x, so such a pair has f(x_i) and
    f(x_j) of nearly one sign relation: separating it needs a huge norm, or is impossible (0 degrees)."""
    norms = np.linalg.norm(X, axis=1)
    at_origin = norms == 0
    U = X / np.where(at_origin, 1.0, norms)[:, None]
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y <= 0)
    cos = np.clip(U[pos] @ U[neg].T, -1.0, 1.0)
    angles = np.degrees(np.arccos(cos))
    angles[at_origin[pos], :] = 0.0
    angles[:, at_origin[neg]] = 0.0
    close = np.argwhere(angles <= degrees)
    order = np.argsort(angles[close[:, 0], close[:, 1]], kind="stable")[:limit]
    pairs = [(int(pos[a]), int(neg[b]), float(angles[a, b])) for a, b in close[order]]
    return {"count": int(len(close)), "pairs": pairs, "degrees": degrees}


def linf_max_margin_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """argmax_{||w||_inf <= 1} min_i y_i <w, x_i>, normalized to unit l2 norm (for angles)."""
    Z = X * y[:, None]
    n, d = Z.shape
    # variables (w, t): maximize t s.t. z_i.w >= t, -1 <= w <= 1
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A = np.column_stack([-Z, np.ones(n)])
    res = linprog(c, A_ub=A, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, None)], method="highs")
    if res.status != 0 or res.x[-1] <= 1e-12:
        return None
    w = res.x[:d]
    return w / np.linalg.norm(w)


def l1_max_margin_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """argmin ||w||_1 s.t. y_i <w, x_i> >= 1 (w = u - v, u, v >= 0), unit l2 norm."""
    Z = X * y[:, None]
    n, d = Z.shape
    c = np.ones(2 * d)
    A = np.column_stack([-Z, Z])
    res = linprog(c, A_ub=A, b_ub=-np.ones(n), bounds=[(0, None)] * (2 * d), method="highs")
    if res.status != 0:
        return None
    w = res.x[:d] - res.x[d:]
    return w / np.linalg.norm(w)


def max_margin(X: np.ndarray, y: np.ndarray, norm: str) -> dict | None:
    """The max-margin problem of a linear model through the origin in ``norm`` ("l2", "linf", "l1"):
    ``margin`` gamma* = max_{||w|| <= 1} min_i y_i <w, x_i>, ``direction`` one maximizer (unit l2
    norm, for angles), and for the LPs ``face_degrees``: the largest angle between that maximizer and
    another point of the optimal face (0 when the optimum is unique; THEORY.md claim 5: on a face the
    claim is about the margin reaching gamma*, not an angle). None when not separable through 0."""
    direction = {"l2": svm_direction, "linf": linf_max_margin_direction, "l1": l1_max_margin_direction}[norm](X, y)
    if direction is None:
        return None
    Z = X * y[:, None]
    dual = {"l2": 2, "linf": np.inf, "l1": 1}[norm]
    margin = float(np.min(Z @ direction) / np.linalg.norm(direction, dual))
    face = 0.0 if norm == "l2" else _face_degrees(Z, direction, margin, norm)
    return {"margin": margin, "direction": direction, "face_degrees": face}


def _face_degrees(Z: np.ndarray, direction: np.ndarray, margin: float, norm: str, slack: float = 1e-7) -> float:
    """Largest angle from ``direction`` to the optimal face's extreme points along each coordinate:
    2d LPs that push one coordinate of w up or down while the margin stays within ``slack`` of the
    optimum (variables w = u - v, u, v >= 0; l_inf: |w_j| <= 1 and Z w >= margin; l1: Z w >= 1 and
    ||w||_1 <= 1 / margin)."""
    n, d = Z.shape
    A = np.column_stack([-Z, Z])
    if norm == "linf":
        A_ub, b_ub = A, -np.full(n, margin * (1 - slack))
        bounds = [(0, 1)] * (2 * d)
        base = direction / np.max(np.abs(direction))
    else:
        A_ub = np.vstack([A, np.ones(2 * d)])
        b_ub = np.append(-np.ones(n), (1 + slack) / margin)
        bounds = [(0, None)] * (2 * d)
        base = direction / (margin * np.linalg.norm(direction, 1))
    worst = 0.0
    for j in range(d):
        for sign in (1.0, -1.0):
            c = np.zeros(2 * d)
            c[j], c[d + j] = -sign, sign
            res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
            if res.status != 0:
                continue
            w = res.x[:d] - res.x[d:]
            cos = float(w @ base / (np.linalg.norm(w) * np.linalg.norm(base)))
            worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    return worst
