"""Claim checks: the results listed under "Claims" in THEORY.md, judged on a run with the number
behind each verdict. The same functions judge a run in the window, `main.py check RUN.h5` and
the tests. A preset names its checks (config field ``claims``); each check reads a RunData.

A verdict is ``supported`` True or False, or None while the run is too short to say.
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

    @classmethod
    def from_reader(cls, reader) -> "RunData":
        return cls(dict(reader.metrics), np.asarray(reader.snapshot_steps), dict(reader.snapshot_metrics), reader.config)

    @classmethod
    def from_chunks(cls, config, chunks) -> "RunData":
        metrics: dict = {}
        steps, snaps = [], []
        for chunk in chunks:
            for name, values in chunk.records.items():
                metrics.setdefault(name, []).append(values)
            steps += list(chunk.snapshot_steps)
            snaps += list(chunk.snapshot_metrics)
        metrics = {k: np.concatenate(v) for k, v in metrics.items()}
        names = snaps[0].keys() if snaps else ()
        return cls(metrics, np.asarray(steps), {n: np.array([s[n] for s in snaps]) for n in names}, config)

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

    def __post_init__(self):
        if self.supported is not None:
            self.supported = bool(self.supported)  # numpy bools are not `is True`
        self.value = float(self.value)

    @property
    def mark(self) -> str:
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


# ------------------------------------------------------------------------------------ checks
def angle_to_reference_below(run, statement, degrees=1.0):
    """The angle to the max-margin direction of the optimizer's norm ends below ``degrees``."""
    angle = run.get("angle_to_reference")
    if not len(angle) or not np.isfinite(angle[-1]):
        return _too_short("angle_to_reference_below", statement, "no reference direction (linear models only)")
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
    dips = (g[:-1] - g[1:]) / np.abs(g[:-1])
    worst = float(max(dips.max(), 0.0))
    return Verdict("smoothed_margin_monotone", statement, worst <= tolerance,
                   f"non-decreasing since step {_step(run, start)}: largest relative dip {worst:.2g} "
                   f"(tolerance {tolerance:g})", worst)


def margins_converge(run, statement, tolerance=1e-3):
    """gamma and gamma~ meet: |gamma - gamma~| / |gamma| at the end below ``tolerance``."""
    start = run.separated_from()
    if start is None:
        return _too_short("margins_converge", statement)
    gamma, smoothed = run.get("normalized_margin")[-1], run.get("smoothed_margin")[-1]
    gap = abs(gamma - smoothed) / abs(gamma)
    first = abs(run.get("normalized_margin")[start] - run.get("smoothed_margin")[start]) / abs(run.get("normalized_margin")[start])
    return Verdict("margins_converge", statement, bool(gap < tolerance and gap < first),
                   f"relative gap {first:.2g} at step {_step(run, start)}, {gap:.2g} at step {_step(run, -1)}", gap)


def kkt_decreasing(run, statement, factor=2.0, metric="kkt_eps"):
    """The KKT residual shrinks by ``factor`` between the first and last snapshot after separation."""
    values = np.asarray(run.snapshot_metrics.get(metric, []))
    steps = run.snapshot_steps
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 3:
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


def margin_nearly_monotone(run, statement, tolerance=1e-2, from_log_loss=None):
    """From a small risk (L < l(0), or log L < ``from_log_loss``) the normalized margin increases
    nearly monotonically: every dip is below ``tolerance`` relative, and it ends higher."""
    start = _small_risk_from(run, from_log_loss)
    if start is None or run.steps.size - start < 3:
        return _too_short("margin_nearly_monotone", statement, "the loss has not yet fallen below l(0)")
    g = run.get("normalized_margin")[start:]
    dips = (g[:-1] - g[1:]) / np.abs(g[:-1])
    n_dips = int(np.sum(dips > 0))
    worst = float(max(dips.max(), 0.0))
    return Verdict("margin_nearly_monotone", statement, bool(worst <= tolerance and g[-1] > g[0]),
                   f"since step {_step(run, start)}: {n_dips} dips, largest {worst:.2g} relative "
                   f"(allowed {tolerance:g}); {g[0]:.4g} -> {g[-1]:.4g}", worst)


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
        return _too_short("ensemble_share", statement, "the network has no ensemble")
    share = np.asarray(share)[:, member]
    final = float(share[-1])
    ok = (below is None or final < below) and (above is None or final > above)
    bar = f"below {below:g}" if below is not None else f"above {above:g}"
    return Verdict("ensemble_share", statement, bool(ok),
                   f"member {member + 1}'s share {share[0]:.3g} at step 0 -> {final:.3g} at step {_step(run, -1)} "
                   f"(bar: {bar})", final)


def margin_increasing_in(run, statement, norm="linf", from_fraction=0.25):
    """The margin in the optimizer's norm (q_min / ||theta||^M) is higher at the end than at
    ``from_fraction`` of the steps."""
    name = {"l2": "normalized_margin", "l1": "normalized_margin_l1", "linf": "normalized_margin_linf"}[norm]
    values, steps = run.get(name), run.steps
    i = int(np.searchsorted(steps, from_fraction * steps[-1]))
    return Verdict("margin_increasing_in", statement, bool(values[-1] > values[i]),
                   f"{name} {values[i]:.4g} at step {_step(run, i)} -> {values[-1]:.4g} at step {_step(run, -1)}",
                   values[-1])


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


def margin_rises_after_loss_settles(run, statement):
    """Once the loss falls monotonically, the normalized margin ends higher than where it was."""
    log_l, gamma = run.get("log_loss"), run.get("normalized_margin")
    rises = np.flatnonzero(np.diff(log_l) > 0)
    onset = int(rises[-1]) + 1 if len(rises) else 0
    start = max(onset, run.separated_from() or 0)
    if run.steps.size - start < 3:
        return _too_short("margin_rises_after_loss_settles", statement)
    return Verdict("margin_rises_after_loss_settles", statement, bool(gamma[-1] > gamma[start]),
                   f"gamma {gamma[start]:.4g} at step {_step(run, start)} -> {gamma[-1]:.4g} at step {_step(run, -1)}",
                   gamma[-1])


def _order(run) -> float:
    from .homogeneity import analyze

    return float(analyze(run.config.architecture).order)


def loss_rate(run, statement, from_step=1000, tolerance=0.15):
    """L = Theta(1 / (T (log T)^(2 - 2/M))) (Lyu and Li 2020): the slope of log L against log t
    after ``from_step`` is within ``tolerance`` of -1 - (2 - 2/M) / log t at the run's end."""
    steps, log_l = run.steps, run.get("log_loss")
    keep = steps >= from_step
    if keep.sum() < 20 or steps[-1] < 10 * from_step:
        return _too_short("loss_rate", statement, f"needs steps beyond {10 * from_step:,}")
    slope = np.polyfit(np.log(steps[keep]), log_l[keep], 1)[0]
    expected = -1.0 - (2.0 - 2.0 / _order(run)) / math.log(steps[-1])
    return Verdict("loss_rate", statement, abs(slope - expected) <= tolerance,
                   f"d log L / d log t = {slope:.3f} after step {from_step:,} (theory {expected:.3f}, tolerance {tolerance:g})",
                   slope)


def norm_rate(run, statement, from_step=1000, tolerance=0.1):
    """||theta|| = Theta((log T)^(1/M)): the slope of log ||theta|| against log log t after
    ``from_step`` is within ``tolerance`` of 1/M."""
    steps, norm = run.steps, run.get("param_norm")
    keep = steps >= from_step
    if keep.sum() < 20 or steps[-1] < 10 * from_step:
        return _too_short("norm_rate", statement, f"needs steps beyond {10 * from_step:,}")
    slope = np.polyfit(np.log(np.log(steps[keep])), np.log(norm[keep]), 1)[0]
    expected = 1.0 / _order(run)
    return Verdict("norm_rate", statement, abs(slope - expected) <= tolerance,
                   f"d log||theta|| / d log log t = {slope:.3f} after step {from_step:,} (theory 1/M = {expected:.3g}, "
                   f"tolerance {tolerance:g})", slope)


CHECKS = {f.__name__: f for f in (loss_rate, norm_rate, angle_to_reference_below, angle_decreasing, norm_log_growth,
                                  smoothed_margin_monotone, margins_converge, kkt_decreasing, norm_increasing,
                                  alignment_to_one, margin_nearly_monotone, euler_defect_vanishing, ensemble_share,
                                  margin_increasing_in, stable_rank, sample_margins_equalize,
                                  loss_oscillates_then_falls, margin_rises_after_loss_settles)}


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


def judge(run: RunData, claims: list[ClaimSpec]) -> list[Verdict]:
    """Every claim's verdict on ``run``; a check that cannot read the run says so, never raises."""
    verdicts = []
    for claim in claims:
        try:
            verdicts.append(CHECKS[claim.check](run, claim.statement, **claim.params))
        except (KeyError, IndexError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
            verdicts.append(Verdict(claim.check, claim.statement, None, f"cannot judge yet ({type(exc).__name__}: {exc})"))
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
        detail = f"holds in {held} of {len(per_member)} runs"
        if failed:
            detail += f"; fails in run {failed[0]}: {per_member[failed[0]].detail}"
        elif pending:
            detail += f"; {pending} cannot judge yet"
        else:
            detail += f" (run 0: {first.detail})"
        values = [v.value for v in per_member if v.value == v.value]
        out.append(Verdict(first.check, first.statement, supported, detail,
                           float(np.median(values)) if values else float("nan")))
    return out
