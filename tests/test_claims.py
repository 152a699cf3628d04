"""The presets from the literature, scaled down, judged by the same claim checks as the window
and `main.py check`; and the checks themselves shown able to fail."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from margin_explorer.core.claims import RunData, judge, parse_claims
from margin_explorer.core.errors import ConfigError
from margin_explorer.core.presets import load_preset, preset_names
from margin_explorer.core.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent

# steps per preset in the suite (the full presets run 20,000-100,000; see scripts/make_figures.py)
STEPS = {"relu2-constant-step": 20000, "linear-constant-step": 10000, "linear-separable": 6000, "orthogonal-leaky-relu": 1500,
         "orthogonal-relu": 1500, "relu3-moons": 20000, "sign-descent-linf": 20000, "coordinate-descent-l1": 20000,
         "relu2-three-blobs": 60000, "digits-ten-classes-test": 10000, "linear-gap-test": 10000,
         "cai-figure4": 60000, "kou-frozen-leaky-relu": 1500, "kou-frozen-relu": 1500,
         "lyu-li-figure1-loss-based": 400, "lyu-li-figure1-constant": 400}
# a claim the suite's short run judges at a bar its steps reach (the preset keeps the full run's):
# log L < -690.8 takes the loss-based CNN ~22,000 steps (docs/papers.md); at 400 steps it is at
# about -11, the constant step 0.01 at about -2. Its margins dip more early on (full run: up to 6%
# from log L -10, 1.3% from -50, 0.4% from -100, none from -300): the short run from -10, dips
# under 10%. The constant step's summed loss falls below l(0), where its margin claim starts, at
# ~1,900 steps: here from log L (mean) < -1.5 (q_min > 0 from step ~300)
SHORT_BARS = {("lyu-li-figure1-loss-based", "loss_falls_below"): {"log_loss": -8.0},
              ("lyu-li-figure1-loss-based", "margin_nearly_monotone"): {"from_log_loss": -10.0, "tolerance": 0.1},
              ("lyu-li-figure1-constant", "margin_nearly_monotone"): {"from_log_loss": -1.5}}
# presets whose claims need more steps than the suite affords (each check is shown both ways on runs
# built by hand): the suite runs them to just past the loss threshold and asserts that every claim
# says how long a run it needs; scripts/make_figures.py judges them at full length (docs/figures/claims.md)
FULL_LENGTH_ONLY = {
    # 30,000 CNN steps (~1 min); L < l(0) at step 175, and both claims read two decades from there
    "ji-telgarsky-margin-distribution": (400, "needs steps up to 17,500"),
}

# claims a run does NOT support: findings, reported in the issue notes with these numbers.
# Each is asserted as it stands, so a change that makes it hold (or moves the numbers) shows up.
FINDINGS = {
    # Cai et al. 2024 Figure 4 as the issue reads it: each neuron's own margin stays negative. Both
    # end positive (0.0236, 0.0091 at 50,000 steps): w1 alone classifies the five points (docs/papers.md)
    ("cai-figure4", "neuron_margins_negative"): lambda v: v.supported is False and v.value > 0,
    # Kou et al.'s own setting (second layer frozen at +-1/m): the stable rank still settles near
    # the two-direction value 1.67 (1.77 at 20,000 steps), not 1; the margins are still spreading
    ("kou-frozen-leaky-relu", "stable_rank"): lambda v: 1.5 < v.value < 2.0,
    ("kou-frozen-leaky-relu", "sample_margins_equalize"): lambda v: v.supported is not True,
    # the first layer's stable rank settles at the two-direction value (below), 1.67 at the
    # preset's slope 0.1, instead of going to 1 (ReLU: ~2.4)
    ("orthogonal-leaky-relu", "stable_rank"): lambda v: abs(v.value / two_direction_stable_rank(0.1) - 1) < 0.02,
    # depth 3 with a small step: the KKT residual shrinks, but only x1.4 in 20,000 steps
    ("relu3-moons", "kkt_decreasing"): lambda v: 0.5 < v.value < 0.8,
    # near-homogeneous: with a step small enough for a monotone margin, ||theta|| grows too
    # little in 20,000 steps for the relative Euler defect to halve (x1.85 at 100,000)
    ("residual-gelu-moons", "euler_defect_vanishing"): lambda v: v.value > 1e-3,
    # ||theta|| grows with slope ~0.18-0.21 in log log t, not 1/M = 0.5, because the smoothed margin
    # still rises ~27-37% over the window (||theta||^M = l^-1(L) / gamma~): pre-asymptotic, n/a
    ("relu2-constant-step", "norm_rate"): lambda v: v.supported is None and v.settled and 0.1 < v.value < 0.35,
    # t L stays flat (x1.02 from 10^3 to 2 10^4) where Lyu and Li's rate has it fall x1.47: on this
    # horizon L ~ 1/t; the log-log slope of t L is near 0, not -(2 - 2/M) = -1
    ("relu2-constant-step", "loss_rate"): lambda v: v.supported is False and abs(v.value) < 0.2,
    # after the loss settles (step 248) gamma dips 12.7% (step 278) in a run of oscillations
    ("large-step-gelu", "margin_rises_after_loss_settles"):
        lambda v: v.supported is False and 0.12 < _dip(v) < 0.13,
}


def _dip(verdict) -> float:
    import re

    return float(re.search(r"largest relative dip ([0-9.e+-]+)", verdict.detail).group(1))


def two_direction_stable_rank(slope: float) -> float:
    """The stable rank of a leaky-ReLU layer whose hidden units' weights have turned to two
    directions of equal weight, u = P - a N and v = N - a P (P, N: each class's sum of its
    samples, weighted; nearly orthogonal samples make P and N orthogonal, of equal norm once
    the margins equalize). cos(u, v) = -2a / (1 + a^2), and W^T W = s (u u^T + v v^T) has
    largest eigenvalue s (1 + |cos|) and trace 2 s: 2 (1 + a^2) / (1 + a)^2, 1 only at a = 1."""
    return 2 * (1 + slope ** 2) / (1 + slope) ** 2


def _judge(name: str, slope: float | None = None):
    config, run = _short_run(name, slope)
    claims = config.claim_specs()
    for claim in claims:
        claim.params.update(SHORT_BARS.get((name, claim.check), {}))
    return judge(run, claims)


def _short_run(name: str, slope: float | None = None):
    if name in _KEPT_RUNS:  # the Lyu and Li ordering test reads the runs test_each_preset made
        return _KEPT_RUNS[name]
    config = load_preset(name)
    if slope is not None:
        config.architecture.blocks[1].param = slope
    config.run.steps = FULL_LENGTH_ONLY[name][0] if name in FULL_LENGTH_ONLY else STEPS.get(name, 3000)
    # the KKT fit at every snapshot (an n x P Jacobian, a joint NNLS) informs kkt_decreasing only
    config.recording.kkt = any(c["check"] == "kkt_decreasing" for c in config.claims)
    trainer = Trainer(config)
    chunks = []
    while trainer.status == "running":  # the numpy engine steps on one BLAS thread (core/blas.py)
        chunks.append(trainer.run(1 << 30).members[0])
    assert trainer.status == "finished", trainer.reason
    if name in KEPT and slope is None:
        _KEPT_RUNS[name] = config, RunData.from_chunks(config, chunks)
        return _KEPT_RUNS[name]
    return config, RunData.from_chunks(config, chunks)


KEPT = ("lyu-li-figure1-loss-based", "lyu-li-figure1-constant")
_KEPT_RUNS: dict = {}


@pytest.mark.parametrize("name", preset_names())
def test_each_preset_supports_its_claims(name):
    config = load_preset(name)
    assert config.description and config.claims, f"{name} states no claim"
    for verdict in _judge(name):
        if name in FULL_LENGTH_ONLY:
            assert verdict.mark == "n/a" and FULL_LENGTH_ONLY[name][1] in verdict.detail, verdict.line()
            continue
        finding = FINDINGS.get((name, verdict.check))
        if finding is not None:
            assert verdict.supported is not True, f"finding no longer holds: {verdict.line()}"
            assert finding(verdict), verdict.line()
        else:
            assert verdict.supported is True, verdict.line()


def test_lyu_and_lis_loss_based_rate_ends_with_the_larger_margin_both_ways():
    """Their Figure 1's ordering (MNIST: 1.2e-3 loss-based against 1.8e-4 constant, q_min over the
    product of the layer norms) on the suite's short runs of the two presets, at the same step: the
    loss-based run's loss far lower and both normalized margins larger (full runs: docs/papers.md)."""
    fast = _short_run("lyu-li-figure1-loss-based")[1]
    slow = _short_run("lyu-li-figure1-constant")[1]
    assert fast.steps[-1] == slow.steps[-1] == STEPS["lyu-li-figure1-loss-based"]
    assert fast.get("log_loss")[-1] < slow.get("log_loss")[-1] - 5
    for margin in ("normalized_margin", "normalized_margin_layers"):
        assert fast.get(margin)[-1] > 2 * slow.get(margin)[-1] > 0, margin
    # Lyu and Li's normalization from the recorded layer norms, independently: the network's four
    # weight matrices (the first conv's bias is not one of them)
    layers = np.prod(fast.get("layer_norms")[-1])
    assert fast.get("normalized_margin_layers")[-1] == pytest.approx(fast.get("q_min")[-1] / layers, rel=1e-12)


def test_the_leaky_relu_stable_rank_is_still_below_the_relu_one():
    leaky = next(v for v in _judge("orthogonal-leaky-relu") if v.check == "stable_rank")
    relu = next(v for v in _judge("orthogonal-relu") if v.check == "stable_rank")
    assert leaky.value < relu.value - 0.5


@pytest.mark.parametrize("slope", [0.3, 0.5, 0.8])
def test_the_leaky_relu_stable_rank_settles_at_the_two_direction_value(slope):
    """The finding above, explained: the stable rank follows the slope as the two-direction
    value does (1.29, 1.11, 1.01 here; measured 1.27, 1.10, 1.01, the same at 20,000 steps)."""
    verdict = next(v for v in _judge("orthogonal-leaky-relu", slope) if v.check == "stable_rank")
    assert verdict.value == pytest.approx(two_direction_stable_rank(slope), rel=0.02)
    assert (verdict.value < 1.1) is (slope == 0.8)  # the paper's "goes to 1" holds only as the slope nears 1


def _run(**series):
    steps = np.arange(len(next(iter(series.values()))))
    return RunData({"step": steps, **{k: np.asarray(v, float) for k, v in series.items()}}, np.array([]), {})


def test_checks_can_fail():
    claims = parse_claims([{"check": "smoothed_margin_monotone"}, {"check": "margin_nearly_monotone", "tolerance": 0.01}])
    rising = _run(smoothed_margin=[-1, 0.1, 0.2, 0.3], normalized_margin=[-1, 0.1, 0.2, 0.3], log_loss=[1, -1, -2, -3])
    dipping = _run(smoothed_margin=[-1, 0.1, 0.3, 0.2], normalized_margin=[-1, 0.1, 0.3, 0.2], log_loss=[1, -1, -2, -3])
    assert [v.supported for v in judge(rising, claims)] == [True, True]
    verdicts = judge(dipping, claims)
    assert [v.supported for v in verdicts] == [False, False]
    assert "largest relative dip 0.33" in verdicts[0].detail
    early = _run(smoothed_margin=[-2, -1, -0.5], normalized_margin=[-2, -1, -0.5], log_loss=[3, 2, 1])
    assert judge(early, claims)[0].supported is None  # the loss has not fallen below l(0): not yet


def test_the_loss_bar_check_tells_below_from_above_and_waits_while_running():
    below, above = parse_claims([{"check": "loss_falls_below"}]), parse_claims([{"check": "loss_falls_below", "never": True}])
    deep = _run(log_loss=[1.0, -300.0, -700.0, -800.0])
    shallow = _run(log_loss=[1.0, -3.0, -7.0, -7.5])
    verdict = judge(deep, below)[0]
    assert verdict.supported is True and verdict.value == -800.0 and "log L -700 at step 2" in verdict.detail
    assert judge(deep, above)[0].supported is False
    assert judge(shallow, below)[0].supported is None  # a running run may still get there
    assert judge(shallow, above)[0].supported is None  # so "never" is not yet known either
    shallow.finished = True
    assert judge(shallow, below)[0].supported is False and "lowest log L -7.5 at step 3" in judge(shallow, below)[0].detail
    assert judge(shallow, above)[0].supported is True


def test_a_check_that_cannot_read_the_run_says_so():
    verdict = judge(_run(step_only=[1, 2, 3]), parse_claims([{"check": "alignment_to_one"}]))[0]
    assert verdict.supported is None and "cannot judge yet" in verdict.detail


def test_bad_claims_are_config_errors():
    with pytest.raises(ConfigError, match="unknown check 'magic'"):
        parse_claims([{"check": "magic"}])
    with pytest.raises(ConfigError, match="unknown parameter of stable_rank"):
        parse_claims([{"check": "stable_rank", "colour": 1}])


def test_check_command_prints_the_verdicts(tmp_path):
    out = tmp_path / "relu.h5"
    subprocess.run([sys.executable, str(ROOT / "main.py"), "run", "relu2-blobs", "--out", str(out), "--steps", "3000"],
                   cwd=ROOT, check=True, capture_output=True)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "check", str(out)], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "[yes] the smoothed normalized margin never decreases" in result.stdout
    assert "largest relative dip" in result.stdout
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "check", str(out), "--preset", "ensemble-shallow-fades"],
                            cwd=ROOT, capture_output=True, text=True)
    assert "[n/a]" in result.stdout and "does not apply: the network has no ensemble" in result.stdout


def test_the_window_shows_the_claims_of_a_preset_run(window, qtbot):
    window.load_preset("relu2-blobs")
    # before the run: the preset's claims, waiting; no verdict yet
    text = window.claims_panel.text
    assert "never decreases after L &lt; l(0)" in text and "press Run" in text
    assert "✔" not in text and "✘" not in text
    window.controls.steps.setValue(2000)
    window.toggle_run()
    window.update_claims()  # running, before (or just after) the first records: no call to press Run
    assert "press Run" not in window.claims_panel.text
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    window.update_claims()
    text = window.claims_panel.text
    assert "never decreases after L &lt; l(0)" in text and "largest relative dip" in text and "✔" in text


def test_every_preset_is_valid_json_with_a_known_dataset():
    for name in preset_names():
        data = json.loads((ROOT / "resources" / "presets" / f"{name}.json").read_text())
        assert set(data) <= {"name", "description", "dataset", "architecture", "loss", "optimizer", "run", "recording",
                             "claims", "view"}


# ------------------------------------------------------------------ checks that can tell
def _steepest(kind, data, steps=20000, lr=None, bias=False):
    """A linear model trained from 0 by ``kind`` on ``data`` (a Dataset the test builds)."""
    from margin_explorer.core.architecture import ArchitectureSpec, Dense
    from tests.helpers import config_for

    lr = lr if lr is not None else {"sign": 0.01, "coordinate": 0.1, "gd": 1.0}[kind]
    config = config_for(ArchitectureSpec(data.dim, [Dense(1, bias)]), data, steps=steps, lr=lr, kind=kind)
    config.architecture.init.scheme = "zeros"
    trainer = Trainer(config)
    chunks = [trainer.run(steps).members[0]]
    return RunData.from_chunks(config, chunks)


def _discriminating():
    """6-D data on which the l2, l_inf and l1 max-margin directions are >= 10 degrees apart pairwise
    (measured here by three independent solves, not taken from the preset)."""
    from margin_explorer.core.datasets import linearly_separable
    from margin_explorer.core.reference import l1_max_margin_direction, linf_max_margin_direction, svm_direction
    from margin_explorer.core.metrics import unit_angle

    data = linearly_separable(20, 6, 0.1, seed=2)
    dirs = [f(data.X, data.y) for f in (svm_direction, linf_max_margin_direction, l1_max_margin_direction)]
    angles = [np.degrees(unit_angle(a, b)) for a, b in ((dirs[0], dirs[1]), (dirs[0], dirs[2]), (dirs[1], dirs[2]))]
    assert min(angles) >= 10, angles
    return data


def test_the_steepest_descent_presets_use_data_where_the_three_directions_differ():
    for name in ("sign-descent-linf", "coordinate-descent-l1"):
        data = load_preset(name).dataset.build()
        ref = _discriminating()
        np.testing.assert_array_equal(data.X, ref.X)


@pytest.mark.parametrize("norm, kind", [("linf", "sign"), ("l1", "coordinate")])
def test_steepest_descent_reaches_its_max_margin_and_gradient_descent_does_not(norm, kind):
    data = _discriminating()
    claim = parse_claims([{"check": "max_margin_reached", "norm": norm, "ratio": 0.99, "degrees": 1.0}])
    own = judge(_steepest(kind, data), claim)[0]
    assert own.supported is True, own.line()
    # an independent margin: the LP's optimum solved here, the run's final theta measured here
    from scipy.optimize import linprog

    Z = data.X * data.y[:, None]
    d = data.dim
    if norm == "linf":  # max t s.t. Z w >= t, |w_j| <= 1
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.column_stack([-Z, np.ones(len(Z))]), b_ub=np.zeros(len(Z)),
                      bounds=[(-1, 1)] * d + [(None, None)], method="highs")
        best = -res.fun
    else:  # 1 / min ||w||_1 s.t. Z w >= 1
        res = linprog(np.ones(2 * d), A_ub=np.column_stack([-Z, Z]), b_ub=-np.ones(len(Z)),
                      bounds=[(0, None)] * (2 * d), method="highs")
        best = 1.0 / res.fun
    assert own.value == pytest.approx(float(_steepest_margin(kind, data, norm)) / best, rel=1e-9)
    control = judge(_steepest("gd", data), claim)[0]  # the negative control: plain GD goes to the l2 SVM
    assert control.supported is False, control.line()
    assert control.value < 0.9, control.line()


def _steepest_margin(kind, data, norm):
    run = _steepest(kind, data)
    theta = run.final_params
    return np.min(data.y * (data.X @ theta)) / np.linalg.norm(theta, np.inf if norm == "linf" else 1)


def test_on_a_face_the_max_margin_claim_is_judged_by_the_margin_not_an_angle():
    # z = (1, 0), (2, 1), (2, -1) and their mirror images: with |w_j| <= 1 the margin min(w1, 2w1 + w2,
    # 2w1 - w2) is 1 for every w2 in [-1, 1]: the l_inf optimum is a face 90 degrees wide
    from margin_explorer.core.datasets import Dataset

    Z = np.array([[1.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    data = Dataset(np.vstack([Z, -Z]), np.array([1.0, 1, 1, -1, -1, -1]), "face")
    verdict = judge(_steepest("sign", data, steps=5000), parse_claims([{"check": "max_margin_reached", "norm": "linf"}]))[0]
    assert "the optimum is a face" in verdict.detail, verdict.line()
    assert verdict.supported is True and verdict.value > 0.99, verdict.line()


def _rate_run(log_l, order_preset="relu2-constant-step", smoothed=None, norm=None, end=100_000):
    config = load_preset(order_preset)  # a 2-homogeneous network: 2 - 2/M = 1
    steps = np.unique(np.geomspace(3, end, 400).astype(np.int64))
    log_l = log_l(steps.astype(float))
    metrics = {"step": steps, "log_loss": log_l,
               "smoothed_margin": smoothed(steps) if smoothed else np.full(len(steps), 0.2),
               "param_norm": norm(steps) if norm else np.sqrt(np.abs(log_l) / 0.2)}
    return RunData(metrics, np.array([]), {}, config, finished=True)


def test_loss_rate_tells_one_over_t_from_lyu_and_lis_rate():
    claim = parse_claims([{"check": "loss_rate"}])
    one_over_t = judge(_rate_run(lambda t: np.log(1.4 / t)), claim)[0]
    lyu_li = judge(_rate_run(lambda t: np.log(9.0 / (t * np.log(t)))), claim)[0]
    assert one_over_t.supported is False and "follows 1/t" in one_over_t.detail, one_over_t.line()
    assert lyu_li.supported is True, lyu_li.line()
    short = judge(_rate_run(lambda t: np.log(1.4 / t)), parse_claims([{"check": "loss_rate", "from_step": 5000}]))[0]
    # 5,000 .. 100,000: log t changes by x1.35 > 1.25: still decidable
    assert short.supported is False
    # 20,000 .. 300,000: the two laws differ by (log t1 / log t0) = x1.27 ... at 30,000: x1.22 < 1.25
    narrow = _rate_run(lambda t: np.log(1.4 / t), end=300_000)
    verdict = judge(narrow, parse_claims([{"check": "loss_rate", "from_step": 30000}]))[0]
    assert verdict.supported is None and verdict.mark == "n/a" and "this horizon cannot tell" in verdict.detail


def test_norm_rate_says_pre_asymptotic_while_the_smoothed_margin_still_rises():
    # ||theta||^2 = log(1/L) / gamma~ with gamma~ rising 40% over the window: the norm's slope misses 1/M
    rising = lambda t: 0.2 * (1 + 0.4 * np.log(t) / np.log(1e5))  # noqa: E731
    run = _rate_run(lambda t: np.log(1.0 / (t * np.log(t))), smoothed=rising,
                    norm=lambda t: np.sqrt(np.log(t * np.log(t)) / rising(t)))
    verdict = judge(run, parse_claims([{"check": "norm_rate"}]))[0]
    assert verdict.supported is None and verdict.settled and "pre-asymptotic" in verdict.detail, verdict.line()
    steady = _rate_run(lambda t: np.log(1.0 / (t * np.log(t))), norm=lambda t: np.log(t) ** 0.15)
    assert judge(steady, parse_claims([{"check": "norm_rate"}]))[0].supported is False  # a miss with a settled margin


def test_endpoint_checks_report_the_largest_dip_and_the_share_of_decreasing_records():
    gamma = np.array([0.1, 0.2, 0.15, 0.25, 0.19, 0.3, 0.31, 0.32])  # dips of 25% and 24%, then rising
    run = _run(normalized_margin=gamma, log_loss=-np.arange(8.0), smoothed_margin=gamma - 0.01)
    for check in ("margin_rises_after_loss_settles", "margin_increasing_in"):
        params = {"norm": "l2", "from_fraction": 0.0} if check == "margin_increasing_in" else {}
        verdict = judge(run, parse_claims([{"check": check, **params}]))[0]
        assert verdict.supported is False, verdict.line()
        assert "largest relative dip 0.25 at step 2, 2 of 7 records lower" in verdict.detail, verdict.line()
        assert "tolerance: dips up to 0.01" in verdict.detail
        loose = judge(run, parse_claims([{"check": check, "tolerance": 0.3, **params}]))[0]
        assert loose.supported is True, loose.line()


def test_wording_of_verdicts_that_cannot_hold_or_cannot_be_judged():
    import warnings

    # gamma = 0 at the end (a sample on the boundary): no division by zero, a gap of 1
    run = _run(normalized_margin=[-1, 0.1, 0.05, 0.0], smoothed_margin=[-1, 0.05, 0.02, -0.01], log_loss=[1, -1, -2, -3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = judge(run, parse_claims([{"check": "margins_converge"}]))[0]
    assert verdict.supported is False and "inf" not in verdict.detail and "gamma = 0" in verdict.detail, verdict.line()
    # a failing monotonicity verdict does not call the margin non-decreasing
    dipping = _run(smoothed_margin=[-1, 0.1, 0.3, 0.2], normalized_margin=[-1, 0.1, 0.3, 0.2], log_loss=[1, -1, -2, -3])
    verdict = judge(dipping, parse_claims([{"check": "smoothed_margin_monotone"}]))[0]
    assert "non-decreasing" not in verdict.detail and "decreased after step 1" in verdict.detail, verdict.line()
    # a finished run with too few KKT snapshots: never judgeable, and said so
    ended = _run(smoothed_margin=[-1, 0.1, 0.2], normalized_margin=[-1, 0.1, 0.2], log_loss=[1, -1, -2])
    ended.snapshot_metrics, ended.snapshot_steps = {"kkt_eps": np.array([np.nan, 0.3])}, np.array([0, 2])
    assert judge(ended, parse_claims([{"check": "kkt_decreasing"}]))[0].mark == "not yet"
    ended.finished = True
    verdict = judge(ended, parse_claims([{"check": "kkt_decreasing"}]))[0]
    assert verdict.mark == "n/a" and verdict.detail.startswith("cannot be judged:"), verdict.line()


def test_a_claim_about_margins_does_not_apply_to_a_tanh_network():
    from margin_explorer.core.architecture import mlp
    from tests.helpers import config_for

    config = config_for(mlp(2, [8], activation="tanh"), steps=300, lr=0.5)
    config.claims = [{"check": "smoothed_margin_monotone"}, {"check": "margins_converge"}]
    trainer = Trainer(config)
    data = RunData.from_chunks(config, [trainer.run(300).members[0]])
    for verdict in judge(data, config.claim_specs()):
        assert verdict.mark == "n/a" and "does not apply: the network is not homogeneous" in verdict.detail, verdict.line()
        assert "not yet fallen" not in verdict.detail


def test_the_window_shows_a_health_event_in_its_message_line_and_status_bar(window, qtbot):
    window.load_preset("relu2-blobs")
    window.controls.steps.setValue(300)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.status == "finished", timeout=30000)
    message = "stuck at step 300: sample #5 at (0.1, 0.2) with q = 0: q_i <= 0 with a zero gradient"
    from margin_explorer.app.messages import ChunkArrived, MemberChunk

    event = {"step": 300, "kind": "stuck", "message": message}
    part = MemberChunk({}, [], [], [], 300, None, "finished", events=[event])
    window.controller.chunkReceived.emit(ChunkArrived([part], 300, "finished"))
    assert window.banner.isVisible() and window.banner.label.text() == message
    assert window.run_status.fields["status"].text() == "finished, stuck at step 300"


def test_preset_descriptions_say_where_their_networks_have_biases():
    """relu3-moons has a first-layer bias: its description must not call it bias-free, and says why
    it stays homogeneous (a first-layer bias is a weight on a constant input coordinate)."""
    from margin_explorer.core.architecture import Dense
    from margin_explorer.core.homogeneity import EXACT, analyze

    for name in preset_names():
        config = load_preset(name)
        dense = [b for b in config.architecture.blocks if isinstance(b, Dense)]
        if any(b.bias for b in dense) and "bias-free" in config.description:
            raise AssertionError(f"{name}: has a bias but says bias-free")
    relu3 = load_preset("relu3-moons")
    assert relu3.architecture.blocks[0].bias and analyze(relu3.architecture).verdict == EXACT
    assert "first layer" in relu3.description and "homogeneous" in relu3.description


@pytest.mark.parametrize("seed, classes", [(1, 4), (3, 4)])
def test_the_multiclass_preset_holds_its_claims_on_data_it_was_not_tuned_on(seed, classes):
    """Lyu and Li's theorem for C classes on blobs drawn with other seeds and four classes: at the
    preset's step size 0.05 every claim holds (at 0.2, seeds 1 and 3 dipped right after L < l(0))."""
    config = load_preset("relu2-three-blobs")
    config.dataset.params.update(seed=seed, classes=classes)
    config.architecture.blocks[-1].width = classes
    config.run.seed = seed
    trainer = Trainer(config)
    assert trainer.dataset.classes == classes
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(1 << 30).members[0])
    assert trainer.status == "finished", trainer.reason
    for verdict in judge(RunData.from_chunks(config, chunks), config.claim_specs()):
        assert verdict.supported is True, verdict.line()


@pytest.mark.parametrize("seed", [22, 24])
def test_the_margin_buys_generalization_on_gap_data_it_was_not_tuned_on(seed):
    """linear-gap-test's claim on two of the six unseen draws (seeds 20-25 all hold; 22 is the
    closest, +0.053 against the bar 0.05, 24 typical, +0.163): the preset was chosen on seeds 0-5."""
    config = load_preset("linear-gap-test")
    config.dataset.params["seed"], config.run.seed, config.run.steps = seed, seed + 1, 2000
    config.claims = [c for c in config.claims if c["check"] == "margin_grows_test_rises"]
    trainer = Trainer(config)
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(1 << 30).members[0])
    [verdict] = judge(RunData.from_chunks(config, chunks), config.claim_specs())
    assert verdict.supported is True, verdict.line()
