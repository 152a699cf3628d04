"""Reference directions for linear models: max-margin separators in l2, l1 and l_inf
(THEORY.md, claims 1 and 5), and a linear-separability test.

l2: the hard-margin SVM without bias, min ||w|| s.t. y_i <w, x_i> >= 1, is a least distance
program, solved exactly by one nonnegative least squares problem in n variables with a
(d + 1) x n matrix (Lawson and Hanson 1974, ch. 23): memory grows with n d, never n^2 as the
dual QP on the n x n Gram matrix it replaces did (figures: docs/performance.md). l1 and l_inf: linear programs (HiGHS), on a
working set of rows grown by cutting planes when n is large. A first-layer bias is handled by
the caller appending a constant-1 coordinate.
"""

from __future__ import annotations

import numpy as np

# Past this many rows, the LPs (and the dataset panel's with-bias margin) are solved on a working set
# of rows: solve, add the rows the answer violates (at most this many at a time), solve again. The
# answer is the full problem's (every row is checked), at a fraction of the time (docs/performance.md).
WORKING_SET = 2000
FEASIBLE = 1e-9  # a row whose constraint is violated by less (relative) counts as met


def linprog(*args, **kwargs):
    """scipy.optimize.linprog, imported on first use: the window's start-up need not wait for it."""
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
    w = _least_distance(Z)
    if w is None:
        return None
    return w / np.linalg.norm(w)


def _least_distance(Z: np.ndarray) -> np.ndarray | None:
    """The direction of argmin ||w|| s.t. Z w >= 1, or None when no w satisfies it. Lawson and
    Hanson's LDP by NNLS: with E = [Z^T; 1^T] and f = (0, ..., 0, 1), u = argmin_{u >= 0} ||E u - f||
    and r = E u - f, the problem is infeasible iff r = 0, else w = -r[:d] / r[d]; ||r||^2 =
    gamma^2 / (1 + gamma^2) for the margin gamma of the rows scaled to at most 1."""
    from scipy.optimize import nnls

    n, d = Z.shape
    scale = float(np.max(np.abs(Z)))
    if not scale > 0:
        return None
    E = np.empty((d + 1, n))
    E[:d] = Z.T / scale
    E[d] = 1.0
    f = np.zeros(d + 1)
    f[d] = 1.0
    u, _residual = nnls(E, f)
    r = E @ u - f
    w = -r[:d] / r[d] if r[d] < 0 else np.full(d, np.nan)
    if np.all(np.isfinite(w)) and np.min(Z @ w) / scale >= 1.0 - 1e-7:  # the certificate: w separates every row
        return w
    # a margin within rounding of 0 (||r|| ~ gamma): the LP decides whether there is one at all
    if not _separable_through_origin(Z):
        return None
    return w if np.all(np.isfinite(w)) and np.any(w) else _feasible_point(Z)


def _separable_through_origin(Z: np.ndarray) -> bool:
    """Is there w with <w, z_i> >= 1 for all i?  (An LP feasibility problem.)"""
    return _feasible_point(Z) is not None


def _feasible_point(Z: np.ndarray) -> np.ndarray | None:
    """Some w with Z w >= 1, or None; an LP on a working set of rows (cutting planes)."""
    n, d = Z.shape

    def solve(rows):
        res = linprog(np.zeros(d), A_ub=-Z[rows], b_ub=-np.ones(len(rows)), bounds=[(None, None)] * d,
                      method="highs")
        return res.x if res.status == 0 else None

    return _cutting_planes(n, solve, lambda w: 1.0 - Z @ w)


def _cutting_planes(n: int, solve, violation, chunk: int = WORKING_SET):
    """The answer of a problem with n row constraints, from problems on subsets of rows:
    ``solve(rows)`` gives an answer for those rows (None: infeasible, and so is the whole),
    ``violation(answer)`` how far each of the n rows is from being met (> 0: violated, relative).
    Rows are added, most violated first, until the answer meets every row: then it is the full
    problem's answer, since a relaxation's optimum that is feasible is optimal."""
    if n <= chunk:
        return solve(np.arange(n))
    rows = np.sort(np.random.default_rng(0).choice(n, chunk, replace=False))
    while True:
        answer = solve(rows)
        if answer is None:
            return None
        bad = violation(answer)
        bad[rows] = -np.inf  # rows already in: their tolerance is the solver's
        new = np.flatnonzero(bad > FEASIBLE)
        if not new.size:
            return answer
        if new.size > chunk:
            new = new[np.argpartition(-bad[new], chunk)[:chunk]]
        rows = np.union1d(rows, new)


def is_linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """With a bias: is there (w, b) with y_i (<w, x_i> + b) >= 1?"""
    Xb = np.column_stack([X, np.ones(len(y))])
    return _separable_through_origin(Xb * y[:, None])


def svm_margin(X: np.ndarray, y: np.ndarray) -> float | None:
    """The geometric l2 margin of the best separating hyperplane with bias, or None."""
    Xb = np.column_stack([X, np.ones(len(y))])
    Z = Xb * y[:, None]
    n, d = X.shape

    # min 1/2 ||w||^2 (bias free of the penalty) s.t. y_i (w.x_i + b) >= 1, by SLSQP on the primal,
    # from an LP's feasible point, on a working set of rows
    def solve(rows):
        Zr = Z[rows]
        start = linprog(np.zeros(d + 1), A_ub=-Zr, b_ub=-np.ones(len(rows)), bounds=[(None, None)] * (d + 1),
                        method="highs")
        if start.status != 0:
            return None
        cons = {"type": "ineq", "fun": lambda v: Zr @ v - 1.0, "jac": lambda v: Zr}
        res = minimize(lambda v: 0.5 * v[:d] @ v[:d], start.x, jac=lambda v: np.concatenate([v[:d], [0.0]]),
                       constraints=[cons], method="SLSQP", options={"maxiter": 500, "ftol": 1e-12})
        return res.x

    v = _cutting_planes(n, solve, lambda v: 1.0 - Z @ v)
    if v is None:
        return None
    return float(np.min(Z @ v) / np.linalg.norm(v[:d]))


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

    def solve(rows):
        A = np.column_stack([-Z[rows], np.ones(len(rows))])
        res = linprog(c, A_ub=A, b_ub=np.zeros(len(rows)), bounds=[(-1, 1)] * d + [(None, None)], method="highs")
        return res.x if res.status == 0 and res.x[-1] > 1e-12 else None

    v = _cutting_planes(n, solve, lambda v: (v[-1] - Z @ v[:d]) / v[-1])
    if v is None:
        return None
    w = v[:d]
    return w / np.linalg.norm(w)


def l1_max_margin_direction(X: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """argmin ||w||_1 s.t. y_i <w, x_i> >= 1 (w = u - v, u, v >= 0), unit l2 norm."""
    Z = X * y[:, None]
    n, d = Z.shape
    c = np.ones(2 * d)

    def solve(rows):
        A = np.column_stack([-Z[rows], Z[rows]])
        res = linprog(c, A_ub=A, b_ub=-np.ones(len(rows)), bounds=[(0, None)] * (2 * d), method="highs")
        return res.x[:d] - res.x[d:] if res.status == 0 else None

    w = _cutting_planes(n, solve, lambda w: 1.0 - Z @ w)
    if w is None:
        return None
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
