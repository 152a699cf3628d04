"""Claim checks: the results listed under "Claims" in THEORY.md, judged on a run with the number
behind each verdict. The same functions judge a run in the window, `main.py check RUN.h5` and
the tests. A preset names its checks (config field ``claims``); each check reads a RunData.

A verdict is ``supported`` True or False, or None while the run is too short to say; None with
``settled`` (mark "n/a") when it never will be: the claim does not apply to the network, the run
ended before it could be judged, or the horizon cannot tell the claim from its alternative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError


@dataclass
class RunData:
    """What a check reads: per-record metrics, snapshot metrics and the config."""

    metrics: dict
    snapshot_steps: np.ndarray
    snapshot_metrics: dict
    config: object = None
    finished: bool = False  # the run has ended: a check that cannot judge it now never will
    final_params: np.ndarray | None = None  # theta at the last step, where known (angles to a reference)
    events: list = field(default_factory=list)  # core/health.py events (dicts step, kind, message)
    # the run's own points (a run file's dataset/X and y): never rebuilt from a path in the config
    dataset: object = None

    @classmethod
    def from_reader(cls, reader) -> "RunData":
        return cls(dict(reader.metrics), np.asarray(reader.snapshot_steps), dict(reader.snapshot_metrics), reader.config,
                   finished=reader.status != "running", final_params=reader.final_params,
                   events=list(getattr(reader, "events", [])), dataset=reader.dataset)

    @classmethod
    def from_chunks(cls, config, chunks, dataset=None) -> "RunData":
        metrics: dict = {}
        steps, snaps = [], []
        for chunk in chunks:
            for name, values in chunk.records.items():
                metrics.setdefault(name, []).append(values)
            steps += list(chunk.snapshot_steps)
            snaps += list(chunk.snapshot_metrics)
        metrics = {k: np.concatenate(v) for k, v in metrics.items()}
        names = snaps[0].keys() if snaps else ()
        return cls(metrics, np.asarray(steps), {n: np.array([s[n] for s in snaps]) for n in names}, config,
                   finished=bool(chunks) and chunks[-1].status != "running",
                   final_params=chunks[-1].params if chunks else None,
                   events=[e for chunk in chunks for e in getattr(chunk, "events", [])], dataset=dataset)

    def get(self, name: str) -> np.ndarray:
        if name not in self.metrics:
            raise KeyError(name)
        return np.asarray(self.metrics[name])

    @property
    def steps(self) -> np.ndarray:
        return self.get("step")

    def separated_from(self) -> int | None:
        """First record past the loss threshold L < l(0), where gamma~ > 0 (THEORY.md, claim 2)."""
        smoothed = self.get("smoothed_margin")
        idx = np.flatnonzero(smoothed > 0)
        return int(idx[0]) if len(idx) else None


@dataclass
class Verdict:
    check: str
    statement: str
    supported: bool | None
    detail: str
    value: float = float("nan")
    settled: bool = False  # supported None for good: the claim cannot be judged on this run, or does not apply

    def __post_init__(self):
        if self.supported is not None:
            self.supported = bool(self.supported)  # numpy bools are not `is True`
        self.value = float(self.value)

    @property
    def mark(self) -> str:
        if self.supported is None and self.settled:
            return "n/a"
        return {True: "yes", False: "NO", None: "not yet"}[self.supported]

    def line(self) -> str:
        return f"[{self.mark}] {self.statement}: {self.detail}"


@dataclass
class ClaimSpec:
    check: str
    statement: str = ""
    params: dict = field(default_factory=dict)


def _step(run: RunData, i: int) -> str:
    return f"{int(run.steps[i]):,}"


def _too_short(name, statement, why="the run is too short to judge yet") -> Verdict:
    return Verdict(name, statement, None, why)


def _cannot_tell(name, statement, why, value=float("nan")) -> Verdict:
    return Verdict(name, statement, None, why, value, settled=True)


def _dips(values: np.ndarray) -> tuple[float, int, int]:
    """(largest relative dip, index of the record after it, number of records lower than the one
    before) of a series that should rise."""
    if len(values) < 2:
        return 0.0, 0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dips = (values[:-1] - values[1:]) / np.abs(values[:-1])
    dips = np.where(np.isfinite(dips), dips, np.where(values[1:] < values[:-1], np.inf, 0.0))
    i = int(np.argmax(dips))
    return float(max(dips[i], 0.0)), i + 1, int(np.count_nonzero(values[1:] < values[:-1]))


def _dip_text(run, start, worst, at, count, total, tolerance) -> str:
    where = f" at step {_step(run, start + at)}" if worst > 0 else ""
    return (f"largest relative dip {worst:.3g}{where}, {count} of {total} records lower than the one before "
            f"(tolerance: dips up to {tolerance:g})")


# ------------------------------------------------------------------------------------ checks
def angle_to_reference_below(run, statement, degrees=1.0):
    """The angle to the max-margin direction of the optimizer's norm ends below ``degrees``."""
    angle = run.get("angle_to_reference")
    if not len(angle) or not np.isfinite(angle[-1]):
        return _cannot_tell("angle_to_reference_below", statement,
                            "does not apply: no reference direction (linear models on separable data only)")
    final = math.degrees(angle[-1])
    return Verdict("angle_to_reference_below", statement, final < degrees,
                   f"{final:.3g}° at step {_step(run, -1)} (bar {degrees:g}°)", final)


def angle_decreasing(run, statement, first_decade=2):
    """The angle to the max-margin direction falls from each decade of steps to the next."""
    angle, steps = run.get("angle_to_reference"), run.steps
    checkpoints = [10 ** k for k in range(first_decade, 12) if 10 ** k <= steps[-1]]
    if len(checkpoints) < 3:
        return _too_short("angle_decreasing", statement, "needs three decades of steps")
    values = [math.degrees(angle[int(np.searchsorted(steps, c))]) for c in checkpoints]
    falling = all(b < a for a, b in zip(values, values[1:]))
    text = ", ".join(f"{v:.3g}° at {c:,}" for v, c in zip(values, checkpoints))
    return Verdict("angle_decreasing", statement, falling, text, values[-1])


def norm_log_growth(run, statement, from_step=100, min_r2=0.98):
    """||theta|| grows like log t: a straight line in log(step) with R^2 >= min_r2."""
    steps, norm = run.steps, run.get("param_norm")
    keep = steps >= from_step
    if keep.sum() < 20 or steps[-1] < 10 * from_step:
        return _too_short("norm_log_growth", statement, f"needs steps beyond {10 * from_step:,}")
    x, y = np.log(steps[keep]), norm[keep]
    slope, intercept = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (slope * x + intercept)) ** 2) / np.sum((y - y.mean()) ** 2)
    return Verdict("norm_log_growth", statement, bool(slope > 0 and r2 >= min_r2),
                   f"||theta|| = {intercept:.3g} + {slope:.3g} log t, R² = {r2:.4f} (bar {min_r2})", r2)


def smoothed_margin_monotone(run, statement, tolerance=1e-9):
    """After L < l(0) the smoothed normalized margin never decreases (relative tolerance)."""
    start = run.separated_from()
    if start is None or run.steps.size - start < 3:
        return _too_short("smoothed_margin_monotone", statement, "the loss has not yet fallen below l(0)")
    g = run.get("smoothed_margin")[start:]
    worst, at, count = _dips(g)
    if worst <= tolerance:
        return Verdict("smoothed_margin_monotone", statement, True,
                       f"non-decreasing since step {_step(run, start)}: largest relative dip {worst:.2g} "
                       f"(tolerance {tolerance:g})", worst)
    return Verdict("smoothed_margin_monotone", statement, False,
                   f"it decreased after step {_step(run, start)}: largest relative dip {worst:.2g} at step "
                   f"{_step(run, start + at)}, {count} of {len(g) - 1} records lower than the one before "
                   f"(tolerance {tolerance:g})", worst)


def margins_converge(run, statement, tolerance=1e-3):
    """gamma and gamma~ meet: |gamma - gamma~| / |gamma| at the end below ``tolerance``."""
    start = run.separated_from()
    if start is None:
        return _too_short("margins_converge", statement)
    gamma, smoothed = run.get("normalized_margin"), run.get("smoothed_margin")

    def gap(i):  # relative to the larger of the two: gamma = 0 (a sample on the boundary) is a gap of 1, not inf
        scale = max(abs(gamma[i]), abs(smoothed[i]))
        return abs(gamma[i] - smoothed[i]) / scale if scale > 0 else float("nan")

    first, last = gap(start), gap(-1)
    if not math.isfinite(last):
        return _cannot_tell("margins_converge", statement, f"cannot be judged: gamma = gamma~ = 0 at step {_step(run, -1)}")
    text = f"relative gap {first:.2g} at step {_step(run, start)}, {last:.2g} at step {_step(run, -1)}"
    if gamma[-1] <= 0:
        text += f" (gamma = {gamma[-1]:.3g}: a sample's margin q_i is not positive)"
    return Verdict("margins_converge", statement, bool(last < tolerance and last < first), text, last)


def kkt_decreasing(run, statement, factor=2.0, metric="kkt_eps"):
    """The KKT residual shrinks by ``factor`` between the first and last snapshot after separation."""
    values = np.asarray(run.snapshot_metrics.get(metric, []))
    steps = run.snapshot_steps
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 3:
        if run.finished:
            return _cannot_tell("kkt_decreasing", statement,
                                f"cannot be judged: the run ended with {int(ok.sum())} snapshots where {metric} is "
                                "defined (q_min > 0); three are needed")
        return _too_short("kkt_decreasing", statement, "needs three snapshots after separation")
    first, last = values[ok][0], values[ok][-1]
    return Verdict("kkt_decreasing", statement, bool(first / last >= factor),
                   f"{metric} {first:.3g} at step {int(steps[ok][0]):,} -> {last:.3g} at step {int(steps[ok][-1]):,} "
                   f"(x{first / last:.3g}, bar x{factor:g})", last)


def norm_increasing(run, statement, factor=2.0):
    """||theta|| grows without pause after separation, by at least ``factor``."""
    start = run.separated_from()
    if start is None:
        return _too_short("norm_increasing", statement)
    norm = run.get("param_norm")[start:]
    monotone = bool(np.all(np.diff(norm) >= 0))
    growth = norm[-1] / norm[0]
    return Verdict("norm_increasing", statement, monotone and growth >= factor,
                   f"x{growth:.3g} since step {_step(run, start)}, " + ("never decreasing" if monotone else "it decreased"),
                   growth)


def alignment_to_one(run, statement, below=1e-3):
    """1 - cos(theta, -grad L) falls below ``below``."""
    gap = run.get("alignment_gap")
    start = run.separated_from() or 0
    final = gap[-1]
    return Verdict("alignment_to_one", statement, bool(final < below and final < gap[start]),
                   f"1 - cos = {gap[start]:.3g} at step {_step(run, start)}, {final:.3g} at step {_step(run, -1)} "
                   f"(bar {below:g})", final)


def _small_risk_from(run, from_log_loss):
    """First record with log L below ``from_log_loss`` (None: the threshold L < l(0))."""
    if from_log_loss is None:
        return run.separated_from()
    idx = np.flatnonzero(run.get("log_loss") < from_log_loss)
    return int(idx[0]) if len(idx) else None


def margin_nearly_monotone(run, statement, tolerance=1e-2, from_log_loss=None, margin="normalized_margin"):
    """From a small risk (L < l(0), or log L < ``from_log_loss``) the normalized margin increases
    nearly monotonically: every dip is below ``tolerance`` relative, and it ends higher. ``margin``:
    which normalization (normalized_margin, q_min / ||theta||^M; normalized_margin_layers, Lyu and
    Li's q_min / prod_l ||W_l||_F)."""
    start = _small_risk_from(run, from_log_loss)
    if start is None or run.steps.size - start < 3:
        return _too_short("margin_nearly_monotone", statement, "the loss has not yet fallen below l(0)")
    g = run.get(margin)[start:]
    worst, at, count = _dips(g)
    return Verdict("margin_nearly_monotone", statement, bool(worst <= tolerance and g[-1] > g[0]),
                   f"{'' if margin == 'normalized_margin' else margin + ' '}since step {_step(run, start)}: "
                   f"{g[0]:.4g} -> {g[-1]:.4g}; "
                   + _dip_text(run, start, worst, at, count, len(g) - 1, tolerance), worst)


def euler_defect_vanishing(run, statement, factor=10.0, from_log_loss=None):
    """The Euler defect relative to ||theta||^M shrinks by ``factor`` between the first snapshot
    at a small risk (log L < ``from_log_loss``, default L < l(0)) and the last."""
    values = np.asarray(run.snapshot_metrics.get("euler_defect", []))
    start = _small_risk_from(run, from_log_loss)
    if start is None:
        return _too_short("euler_defect_vanishing", statement, "the risk is not small yet")
    ok = np.isfinite(values) & (values > 0) & (np.asarray(run.snapshot_steps) >= run.steps[start])
    if ok.sum() < 3:
        return _too_short("euler_defect_vanishing", statement)
    first, last = values[ok][0], values[ok][-1]
    return Verdict("euler_defect_vanishing", statement, bool(first / last >= factor),
                   f"{first:.3g} -> {last:.3g} (x{first / last:.3g}, bar x{factor:g})", last)


def ensemble_share(run, statement, member=0, below=None, above=None):
    """The output share of ensemble member ``member`` ends below ``below`` (it fades) or stays
    above ``above`` (it persists)."""
    share = run.metrics.get("ensemble_share")
    if share is None or not len(share):
        return _cannot_tell("ensemble_share", statement, "does not apply: the network has no ensemble")
    share = np.asarray(share)[:, member]
    final = float(share[-1])
    ok = (below is None or final < below) and (above is None or final > above)
    bar = f"below {below:g}" if below is not None else f"above {above:g}"
    return Verdict("ensemble_share", statement, bool(ok),
                   f"member {member + 1}'s share {share[0]:.3g} at step 0 -> {final:.3g} at step {_step(run, -1)} "
                   f"(bar: {bar})", final)


def margin_increasing_in(run, statement, norm="linf", from_fraction=0.25, tolerance=0.01):
    """The margin in the optimizer's norm (q_min / ||theta||^M) is higher at the end than at
    ``from_fraction`` of the steps, and rises nearly monotonically in between: no record lower than
    the one before by more than ``tolerance`` relative (the largest dip and the share of records that
    fell are reported either way)."""
    name = {"l2": "normalized_margin", "l1": "normalized_margin_l1", "linf": "normalized_margin_linf"}[norm]
    values, steps = run.get(name), run.steps
    i = int(np.searchsorted(steps, from_fraction * steps[-1]))
    worst, at, count = _dips(values[i:])
    return Verdict("margin_increasing_in", statement, bool(values[-1] > values[i] and worst <= tolerance),
                   f"{name} {values[i]:.4g} at step {_step(run, i)} -> {values[-1]:.4g} at step {_step(run, -1)}; "
                   + _dip_text(run, i, worst, at, count, len(values) - 1 - i, tolerance), values[-1])


def stable_rank(run, statement, layer=0, below=None, above=None):
    """The stable rank of weight matrix ``layer`` ends below ``below`` or above ``above``."""
    ranks = np.asarray(run.get("stable_rank"))[:, layer]
    final = float(ranks[-1])
    ok = (below is None or final < below) and (above is None or final > above)
    bar = f"below {below:g}" if below is not None else f"above {above:g}"
    return Verdict("stable_rank", statement, bool(ok),
                   f"{ranks[0]:.3g} at step 0 -> {final:.3g} at step {_step(run, -1)} (bar: {bar})", final)


def sample_margins_equalize(run, statement, below=0.05):
    """All samples reach the same normalized margin: (max - min) / median at the end < ``below``."""
    margins = np.asarray(run.get("sample_margins"))
    start = run.separated_from()
    if start is None:
        return _too_short("sample_margins_equalize", statement)

    def spread(row):
        return float((row.max() - row.min()) / abs(np.median(row)))

    first, final = spread(margins[start]), spread(margins[-1])
    return Verdict("sample_margins_equalize", statement, bool(final < below and final < first),
                   f"relative spread {first:.3g} at step {_step(run, start)} -> {final:.3g} (bar {below:g})", final)


def loss_oscillates_then_falls(run, statement, min_increases=1):
    """The risk rises at least ``min_increases`` times early, then falls monotonically to the end."""
    log_l = run.get("log_loss")
    rises = np.flatnonzero(np.diff(log_l) > 0)
    if len(rises) < min_increases:
        return Verdict("loss_oscillates_then_falls", statement, False,
                       f"the loss rose {len(rises)} times (expected oscillations first)", 0)
    onset = int(rises[-1]) + 1
    tail = run.steps.size - onset
    ok = tail >= 0.5 * run.steps.size or run.steps[onset] <= 0.5 * run.steps[-1]
    return Verdict("loss_oscillates_then_falls", statement, bool(ok),
                   f"{len(rises)} rises, the last at step {_step(run, onset - 1)}; monotone from step "
                   f"{_step(run, onset)} to {_step(run, -1)} (log L {log_l[onset]:.3g} -> {log_l[-1]:.3g})",
                   float(run.steps[onset]))


def margin_rises_after_loss_settles(run, statement, tolerance=0.01):
    """Once the loss falls monotonically, the normalized margin ends higher than where it was and
    rises nearly monotonically: no record lower than the one before by more than ``tolerance``."""
    log_l, gamma = run.get("log_loss"), run.get("normalized_margin")
    rises = np.flatnonzero(np.diff(log_l) > 0)
    onset = int(rises[-1]) + 1 if len(rises) else 0
    start = max(onset, run.separated_from() or 0)
    if run.steps.size - start < 3:
        return _too_short("margin_rises_after_loss_settles", statement)
    worst, at, count = _dips(gamma[start:])
    return Verdict("margin_rises_after_loss_settles", statement, bool(gamma[-1] > gamma[start] and worst <= tolerance),
                   f"gamma {gamma[start]:.4g} at step {_step(run, start)} -> {gamma[-1]:.4g} at step {_step(run, -1)}; "
                   + _dip_text(run, start, worst, at, count, run.steps.size - 1 - start, tolerance), gamma[-1])


def _order(run) -> float:
    from .homogeneity import analyze

    return float(analyze(run.config.architecture).order)


def loss_rate(run, statement, from_step=1000, tolerance=0.15, contrast=1.25):
    """L = Theta(1 / (T (log T)^(2 - 2/M))) (Lyu and Li 2020), told apart from L ~ 1/T: over the
    window after ``from_step``, t L is flat under 1/t and falls like (log t)^-(2-2/M) under Lyu and
    Li's rate, so the slope b of log(t L) against log log t is 0 under one and -(2 - 2/M) under the
    other. The verdict names the law b is within a third of that gap of; where the two laws differ by
    less than ``contrast`` over the window (or b is near neither) it says this horizon cannot tell.
    M = 1: no log factor; the slope of log L against log t must be within ``tolerance`` of -1."""
    steps, log_l = run.steps, run.get("log_loss")
    keep = steps >= from_step
    if keep.sum() < 20 or steps[-1] < 10 * from_step:
        return _too_short("loss_rate", statement, f"needs steps beyond {10 * from_step:,}")
    t, log_l = steps[keep].astype(float), log_l[keep]
    power = 2.0 - 2.0 / _order(run)
    slope = np.polyfit(np.log(t), log_l, 1)[0]
    if power < 1e-9:
        return Verdict("loss_rate", statement, abs(slope + 1.0) <= tolerance,
                       f"d log L / d log t = {slope:.3f} after step {from_step:,} (theory -1, tolerance {tolerance:g})",
                       slope)
    x, tl = np.log(np.log(t)), log_l + np.log(t)  # log log t, log(t L)
    b = np.polyfit(x, tl, 1)[0]
    span = x[-1] - x[0]
    laws = (f"t L x{math.exp(tl[-1] - tl[0]):.3g} (flat under 1/t), t L (log t)^{power:.3g} "
            f"x{math.exp(tl[-1] - tl[0] + power * span):.3g} (flat under 1/(t (log t)^{power:.3g})) from step "
            f"{int(t[0]):,} to {int(t[-1]):,}; d log(t L) / d log log t = {b:.3f}")
    separation = math.exp(power * span)
    if separation < contrast:
        return _cannot_tell("loss_rate", statement, f"consistent with both 1/t and 1/(t (log t)^{power:.3g}); this horizon "
                            f"cannot tell (they differ by x{separation:.3g} over it, {contrast:g} needed): {laws}", b)
    near_lyu_li, near_one_over_t = abs(b + power) <= power / 3, abs(b) <= power / 3
    if near_lyu_li:
        return Verdict("loss_rate", statement, True, f"L follows 1/(t (log t)^{power:.3g}), not 1/t: {laws}", b)
    if near_one_over_t:
        return Verdict("loss_rate", statement, False,
                       f"on this horizon L follows 1/t, not 1/(t (log t)^{power:.3g}): {laws}", b)
    return _cannot_tell("loss_rate", statement, f"near neither 1/t (slope 0) nor 1/(t (log t)^{power:.3g}) "
                        f"(slope {-power:.3g}); this horizon cannot tell: {laws}", b)


def norm_rate(run, statement, from_step=1000, tolerance=0.1, still_rising=0.05):
    """||theta|| = Theta((log T)^(1/M)): the slope of log ||theta|| against log log t after
    ``from_step`` is within ``tolerance`` of 1/M. ||theta||^M = l^{-1}(L) / gamma~ exactly, so while
    the smoothed margin gamma~ still rises by more than ``still_rising`` over the window the norm
    lags the rate by that much: a missed slope is then pre-asymptotic, not a failure."""
    steps, norm = run.steps, run.get("param_norm")
    keep = steps >= from_step
    if keep.sum() < 20 or steps[-1] < 10 * from_step:
        return _too_short("norm_rate", statement, f"needs steps beyond {10 * from_step:,}")
    order = _order(run)
    x = np.log(np.log(steps[keep]))
    slope = np.polyfit(x, np.log(norm[keep]), 1)[0]
    expected = 1.0 / order
    text = (f"d log||theta|| / d log log t = {slope:.3f} after step {from_step:,} (theory 1/M = {expected:.3g}, "
            f"tolerance {tolerance:g})")
    if abs(slope - expected) <= tolerance:
        return Verdict("norm_rate", statement, True, text, slope)
    smoothed = run.get("smoothed_margin")[keep]
    rise = smoothed[-1] / smoothed[0] - 1.0 if smoothed[0] > 0 else float("inf")
    if rise > still_rising:
        inverse = np.log(smoothed) + order * np.log(norm[keep])  # log l^{-1}(L) = log(gamma~ ||theta||^M)
        lead = np.polyfit(x, inverse, 1)[0]
        return _cannot_tell("norm_rate", statement,
                            f"pre-asymptotic: the smoothed margin still rises {100 * rise:.3g}% over the fit window "
                            f"(||theta||^M = l^-1(L) / gamma~), while d log l^-1(L) / d log log t = {lead:.3f} "
                            f"(theory 1); {text}", slope)
    return Verdict("norm_rate", statement, False, text, slope)


def max_margin_reached(run, statement, norm="linf", ratio=0.99, degrees=1.0, face_degrees=0.5):
    """Steepest descent in ``norm`` on a linear model reaches the max margin in that norm (THEORY.md
    claim 5): gamma_norm / gamma_norm* at the end at least ``ratio``, gamma* by LP (l_inf, l1) or the
    SVM (l2). Where the optimum is one point, the direction must also end within ``degrees`` of it;
    where it is a face (points more than ``face_degrees`` apart), the claim is about the margin
    only, and the angle to the solver's point of the face is reported, not judged."""
    from .architecture import is_linear_model

    if not is_linear_model(run.config.architecture):
        return _cannot_tell("max_margin_reached", statement, "does not apply: the max-margin reference is for linear models")
    reference = _max_margin(run.config, norm, run.dataset)
    if reference is None:
        return _cannot_tell("max_margin_reached", statement, "does not apply: the data are not separable by this model")
    name = {"l2": "normalized_margin", "l1": "normalized_margin_l1", "linf": "normalized_margin_linf"}[norm]
    reached = float(run.get(name)[-1]) / reference["margin"]
    text = (f"gamma_{norm} / gamma_{norm}* = {reached:.4f} at step {_step(run, -1)} "
            f"(bar {ratio:g}; gamma* = {reference['margin']:.4g})")
    if reference["face_degrees"] > face_degrees:
        return Verdict("max_margin_reached", statement, reached >= ratio,
                       f"{text}; the optimum is a face (points {reference['face_degrees']:.3g}° apart): "
                       "judged by the margin",
                       reached)
    final = _angle_degrees(run, norm, reference["direction"])
    if final is None:
        return Verdict("max_margin_reached", statement, reached >= ratio, f"{text}; the optimum is unique (no final "
                       "parameters here to measure the angle to it)", reached)
    return Verdict("max_margin_reached", statement, bool(reached >= ratio and final < degrees),
                   f"{text}; the optimum is unique, angle to it {final:.3g}° (bar {degrees:g}°)", reached)


def _angle_degrees(run, norm, direction) -> float | None:
    """Angle between the run's final theta and ``direction``; the recorded angle to the reference
    where the run's optimizer is steepest in ``norm`` (the trainer's reference is the same solve)."""
    if run.final_params is not None and len(run.final_params) == len(direction):
        from .metrics import unit_angle

        theta = np.asarray(run.final_params, dtype=float)
        return math.degrees(unit_angle(theta / np.linalg.norm(theta), direction / np.linalg.norm(direction)))
    if run.config.optimizer.kind == {"l2": "gd", "linf": "sign", "l1": "coordinate"}[norm]:
        angle = run.metrics.get("angle_to_reference")
        if angle is not None and len(angle) and np.isfinite(angle[-1]):
            return math.degrees(float(angle[-1]))
    return None


_MAX_MARGINS: dict = {}


def _max_margin(config, norm, data=None):
    """core.reference.max_margin of the data as the linear model sees them (a bias is a coordinate
    1), cached per dataset and norm: the window judges a live run every second. ``data`` is the
    run's own points; only a run judged in memory without them (tests) builds its config's."""
    import hashlib

    from .reference import max_margin

    data = data if data is not None else config.dataset.build()
    X = data.X if not config.architecture.blocks[0].bias else np.column_stack([data.X, np.ones(data.n)])
    key = (hashlib.sha1(np.ascontiguousarray(X).tobytes() + np.ascontiguousarray(data.y).tobytes()).hexdigest(), norm)
    if key not in _MAX_MARGINS:
        _MAX_MARGINS[key] = max_margin(X, np.asarray(data.y, dtype=float), norm)
    return _MAX_MARGINS[key]


def margin_grows_test_flat(run, statement, growth=1.5, test_band=0.02, decades=1.0):
    """Lyu and Li's Figure 7: after training accuracy reaches 1 (and stays there), the normalized
    margin keeps growing, by at least ``growth`` times, over at least ``decades`` decades of steps,
    and is still rising over the last decade (higher at the end than at a tenth of the last step),
    while test accuracy barely moves: its range over those records is at most ``test_band``."""
    name = "margin_grows_test_flat"
    after = _after_training_accuracy_one(run, name, statement, growth, decades)
    if isinstance(after, Verdict):
        return after
    grows, text, ratio, test = after
    band = float(test.max() - test.min())
    return Verdict(name, statement, bool(grows and band <= test_band),
                   f"{text}; test accuracy {test[0]:.4g} -> {test[-1]:.4g}, range {band:.3g} over those records "
                   f"(bar {test_band:g})", ratio)


def margin_grows_test_rises(run, statement, growth=1.5, test_gain=0.05, decades=1.0):
    """Figure 7's opposite, where a larger margin does buy generalization: after training accuracy
    reaches 1 the normalized margin grows as margin_grows_test_flat asks, and test accuracy ends at
    least ``test_gain`` above its value at the first of those records."""
    name = "margin_grows_test_rises"
    after = _after_training_accuracy_one(run, name, statement, growth, decades)
    if isinstance(after, Verdict):
        return after
    grows, text, ratio, test = after
    gain = float(test[-1] - test[0])
    return Verdict(name, statement, bool(grows and gain >= test_gain),
                   f"{text}; test accuracy {test[0]:.4g} -> {test[-1]:.4g} ({gain:+.4g}, bar +{test_gain:g}; "
                   f"lowest {test.min():.4g}, highest {test.max():.4g} over those records)", gain)


def _after_training_accuracy_one(run, name, statement, growth, decades):
    """The records from where training accuracy is 1 to the end: (whether the normalized margin
    grew at least ``growth`` times over them and still rose over the last decade, the words for
    it, the growth, the test accuracies over them); a Verdict where that cannot be judged."""
    if "test_accuracy" not in run.metrics:
        return _cannot_tell(name, statement, "does not apply: the run's dataset has no test set")
    accuracy, steps = run.get("accuracy"), run.steps
    below = np.flatnonzero(accuracy < 1.0)
    start = 0 if not len(below) else int(below[-1]) + 1  # training accuracy 1 from here to the end
    if start >= len(steps):
        return _too_short(name, statement, f"training accuracy is {accuracy[-1]:.4g} at step {_step(run, -1)}, not 1")
    first = max(int(steps[start]), 1)
    if steps[-1] < first * 10 ** decades:
        return _too_short(name, statement, f"training accuracy is 1 from step {first:,}: needs steps up to "
                                           f"{first * 10 ** decades:,.0f} ({decades:g} decade(s) beyond)")
    gamma, test = run.get("normalized_margin")[start:], run.get("test_accuracy")[start:]
    ratio = gamma[-1] / gamma[0] if gamma[0] > 0 else float("nan")
    tenth = min(int(np.searchsorted(steps, steps[-1] / 10)), len(steps) - 1)  # the last decade starts here
    late = run.get("normalized_margin")[tenth]
    late_growth = gamma[-1] / late - 1 if late > 0 else float("nan")
    grows = bool(math.isfinite(ratio) and ratio >= growth and late_growth > 0)
    return (grows, f"training accuracy 1 from step {_step(run, start)}: normalized margin {gamma[0]:.4g} -> "
                   f"{gamma[-1]:.4g} at step {_step(run, -1)} (x{ratio:.3g}, bar x{growth:g}; "
                   f"{late_growth:+.2%} over the last decade, from step {_step(run, tenth)})", ratio, test)


def _points(run):
    """(X, y) the run trained on: its own dataset, or the config's rebuilt."""
    data = run.dataset if run.dataset is not None else run.config.dataset.build()
    return data.X, data.y


def margin_reaches_network_max(run, statement, ratio=0.95):
    """The normalized margin ends within ``ratio`` of the largest this network can have: for a small
    two-layer network with frozen output weights, core/network_margin.py's max over ||theta|| = 1 of
    the homogenized network's margin (the limit GD's margin tends to at a global optimum)."""
    from .network_margin import max_normalized_margin

    name = "margin_reaches_network_max"
    X, y = _points(run)
    best = max_normalized_margin(run.config.architecture, X, y)
    if best is None:
        return _cannot_tell(name, statement, "does not apply: not a small two-layer network with a frozen output layer")
    gamma = run.get("normalized_margin")
    final = float(gamma[-1])
    first_positive = np.flatnonzero(gamma > 0)
    turned = f"positive from step {_step(run, int(first_positive[0]))}, " if len(first_positive) else "never positive, "
    return Verdict(name, statement, bool(final >= ratio * best),
                   f"gamma {turned}{final:.5g} at step {_step(run, -1)} = {final / best:.1%} of the network's largest "
                   f"normalized margin {best:.5g} (bar {ratio:.0%})", final / best)


def neuron_margins_negative(run, statement):
    """Each hidden neuron alone (its frozen output weight a_j, its activation) misclassifies a sample
    at the end: min_i y_i a_j s(w_j . x_i) / ||w_j|| < 0 for every j, while the network's normalized
    margin is positive (the neurons separate the data only together)."""
    from .network_margin import neuron_margins

    name = "neuron_margins_negative"
    if run.final_params is None:
        return _too_short(name, statement, "the run's final parameters are not known yet")
    X, y = _points(run)
    margins = neuron_margins(run.config.architecture, run.final_params, X, y)
    if margins is None:
        return _cannot_tell(name, statement, "does not apply: not a two-layer network with a frozen output layer")
    gamma = float(run.get("normalized_margin")[-1])
    return Verdict(name, statement, bool(np.all(margins < 0) and gamma > 0),
                   "each neuron's own normalized margin at step " + _step(run, -1) + ": "
                   + ", ".join(f"{v:.4g}" for v in margins) + f"; the network's {gamma:.4g}", float(np.max(margins)))


def loss_falls_below(run, statement, log_loss=-690.7755, never=False):
    """log L falls below ``log_loss`` (default log(1e-300): Lyu and Li's loss-based rate takes the
    loss far past where a float64 L underflows); with ``never``, the opposite claim: it does not
    within the run (a constant step's L ~ 1/t), judged once the run has ended. The value is the
    lowest log L recorded."""
    name = "loss_falls_below"
    log_l = run.get("log_loss")
    finite = np.flatnonzero(np.isfinite(log_l))
    if not len(finite):
        return _too_short(name, statement, "no finite log L recorded yet")
    low = int(finite[np.argmin(log_l[finite])])
    below = np.flatnonzero(log_l[finite] < log_loss)
    bar = f"bar log L < {log_loss:.6g}, L < 10^{log_loss / math.log(10):.4g}"
    if len(below):
        first = int(finite[below[0]])
        text = (f"log L {log_l[first]:.5g} at step {_step(run, first)}, lowest {log_l[low]:.5g} at step "
                f"{_step(run, low)} ({bar})")
        return Verdict(name, statement, not never, text, log_l[low])
    text = f"lowest log L {log_l[low]:.5g} at step {_step(run, low)} (L = 10^{log_l[low] / math.log(10):.4g}; {bar})"
    # not there yet: a running run may still get there, so either claim waits for the run's end
    return Verdict(name, statement, (never if run.finished else None), text, log_l[low])


def margin_distribution_converges(run, statement, bar=0.05, factor=5.0, span=10.0, shape=False):
    """The distribution of the training samples' normalized margins converges (Ji and Telgarsky
    2020). Its quantiles (min, 5%, 25%, median, 75%, 95%, max: core/margin_distribution.py) are read
    over two windows of steps, each ``span`` times as long at its end as at its start: the first
    from the loss threshold L < l(0) (step s to span s) and the last (T / span to T). A window's
    movement is the largest, over the quantiles, of (max - min over its records) / |the quantile
    at step T|. Holds when the last window's movement is below ``bar`` and the first's at least
    ``factor`` times the last's (the distribution settled, after moving). With ``shape`` the
    quantiles are divided by the median first: the distribution's shape, whatever its scale."""
    from .margin_distribution import DISTRIBUTION_NAMES, margin_quantiles

    name = "margin_distribution_converges"
    start = run.separated_from()
    if start is None:
        return _too_short(name, statement, "the loss has not yet fallen below l(0)")
    steps = run.steps
    first, last = max(float(steps[start]), 1.0), float(steps[-1])
    if last < span * span * first:
        return _too_short(name, statement, f"needs steps up to {span * span * first:,.0f} (two windows of x{span:g} "
                                           f"from the loss threshold at step {_step(run, start)})")
    quantiles = margin_quantiles(run.get("sample_margins"))
    if shape:
        median = quantiles[:, [DISTRIBUTION_NAMES.index("median")]]
        with np.errstate(divide="ignore", invalid="ignore"):
            quantiles = np.where(median > 0, quantiles / median, np.nan)  # a shape only where the median is positive
    scale = np.abs(quantiles[-1])

    def movement(rows):
        window = quantiles[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = (window.max(axis=0) - window.min(axis=0)) / scale
        moved = np.where(np.isnan(moved), np.inf, moved)  # a quantile at 0 (or undefined) cannot settle
        k = int(np.argmax(moved))
        return float(moved[k]), DISTRIBUTION_NAMES[k]

    early, early_q = movement((steps >= first) & (steps <= span * first))
    late, late_q = movement(steps >= last / span)
    what = "quantiles / median" if shape else "quantiles"
    text = (f"steps {first:,.0f}-{span * first:,.0f} (from L < l(0)): {what} moved up to {early:.3g} ({early_q}); "
            f"steps {last / span:,.0f}-{last:,.0f}: up to {late:.3g} ({late_q}), relative to their values at step "
            f"{_step(run, -1)} (bar {bar:g}; the first window at least x{factor:g} the last: "
            + (f"x{early / late:.3g})" if late > 0 else "the last did not move)"))
    return Verdict(name, statement, bool(late < bar and early >= factor * late and early > late), text, late)


CHECKS = {f.__name__: f for f in (loss_rate, norm_rate, angle_to_reference_below, angle_decreasing, norm_log_growth,
                                  smoothed_margin_monotone, margins_converge, kkt_decreasing, norm_increasing,
                                  alignment_to_one, margin_nearly_monotone, euler_defect_vanishing, ensemble_share,
                                  margin_increasing_in, stable_rank, sample_margins_equalize,
                                  loss_oscillates_then_falls, margin_rises_after_loss_settles, max_margin_reached,
                                  margin_grows_test_flat, margin_grows_test_rises, margin_reaches_network_max,
                                  neuron_margins_negative, loss_falls_below, margin_distribution_converges)}


def parse_claims(raw, path: str = "claims") -> list[ClaimSpec]:
    """Validate a config's ``claims`` list: each an object with ``check``, ``statement`` and the
    check's parameters."""
    import inspect

    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list of claim objects")
    claims = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or "check" not in item:
            raise ConfigError(f"{where}: expected an object with a 'check'")
        name = item["check"]
        if name not in CHECKS:
            raise ConfigError(f"{where}.check: unknown check {name!r} (choose from {', '.join(CHECKS)})")
        params = {k: v for k, v in item.items() if k not in ("check", "statement")}
        allowed = [p for p in inspect.signature(CHECKS[name]).parameters if p not in ("run", "statement")]
        for key in params:
            if key not in allowed:
                raise ConfigError(f"{where}.{key}: unknown parameter of {name} (allowed: {', '.join(allowed) or 'none'})")
        claims.append(ClaimSpec(name, str(item.get("statement", name.replace("_", " "))), params))
    return claims


# checks that read no normalized margin: they apply to a network with no homogeneity order too
ORDER_FREE = {"ensemble_share", "stable_rank", "loss_oscillates_then_falls"}


def _not_homogeneous(run) -> str | None:
    """Why the run's network has no homogeneity order (bounded activations), or None."""
    if run.config is None:
        return None
    from .homogeneity import NONE, analyze

    result = analyze(run.config.architecture)
    return "; ".join(result.reasons) if result.verdict == NONE else None


def _unsettled(run) -> str | None:
    """The last health event (core/health.py) of a run that ends unsettled (L >= l(0) or a sample
    misclassified), or None: the claims are about the phase such a run never reached or left."""
    from .health import KINDS, settled_at_end

    events = [e for e in run.events if e.get("kind") in KINDS]
    if not events or settled_at_end(run.metrics):
        return None
    first = next((e for e in events if e["kind"] == "unstable"), events[0])  # a collapse is the cause, if any
    return first["message"] + (f"; later: {events[-1]['message']}" if events[-1] is not first else "")


def judge(run: RunData, claims: list[ClaimSpec]) -> list[Verdict]:
    """Every claim's verdict on ``run``; a check that cannot read the run says so, never raises.
    A claim about normalized margins does not apply to a network that is not homogeneous; a check
    that cannot judge a run that has ended never will, and says so."""
    verdicts = []
    why_not = _not_homogeneous(run)
    unsettled = _unsettled(run)
    last = f"{int(run.steps[-1]):,}" if "step" in run.metrics and len(run.metrics["step"]) else "0"
    for claim in claims:
        if why_not is not None and claim.check not in ORDER_FREE:
            verdicts.append(_cannot_tell(claim.check, claim.statement, "does not apply: the network is not homogeneous "
                                         f"({why_not}), so its normalized margins are undefined"))
            continue
        if unsettled is not None:
            verdicts.append(Verdict(claim.check, claim.statement, False,
                                    f"cannot hold: the run is not settled at its end ({unsettled})"))
            continue
        try:
            verdict = CHECKS[claim.check](run, claim.statement, **claim.params)
        except (KeyError, IndexError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
            verdict = Verdict(claim.check, claim.statement, None, f"cannot judge yet ({type(exc).__name__}: {exc})")
        if verdict.supported is None and not verdict.settled and run.finished:
            verdict.settled = True
            verdict.detail = f"cannot be judged: the run ended at step {last}; {verdict.detail}"
        verdicts.append(verdict)
    return verdicts


def judge_family(member_verdicts: list[list[Verdict]]) -> list[Verdict]:
    """One verdict per claim for a family, from each member's verdicts: it holds when it holds
    for every member, fails when it fails for any, and says in how many it holds."""
    out = []
    for per_member in zip(*member_verdicts):
        first = per_member[0]
        held = sum(v.supported is True for v in per_member)
        failed = [i for i, v in enumerate(per_member) if v.supported is False]
        pending = sum(v.supported is None for v in per_member)
        supported = False if failed else (None if pending else True)
        settled = bool(pending) and not failed and all(v.settled for v in per_member if v.supported is None)
        detail = f"holds in {held} of {len(per_member)} runs"
        if failed:
            detail += f"; fails in run {failed[0]}: {per_member[failed[0]].detail}"
        elif pending:
            detail += f"; {pending} cannot judge yet"
        else:
            detail += f" (run 0: {first.detail})"
        values = [v.value for v in per_member if v.value == v.value]
        out.append(Verdict(first.check, first.statement, supported, detail,
                           float(np.median(values)) if values else float("nan"), settled=settled))
    return out
