"""The presets from the literature, scaled down, judged by the same claim checks as the window
and `main.py check`; and the checks themselves shown able to fail."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.claims import RunData, judge, parse_claims
from core.errors import ConfigError
from core.presets import load_preset, preset_names
from core.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent

# steps per preset in the suite (the full presets run 20,000-100,000; see scripts/make_figures.py)
STEPS = {"relu2-constant-step": 20000, "linear-constant-step": 10000, "linear-separable": 6000, "orthogonal-leaky-relu": 1500,
         "orthogonal-relu": 1500, "relu3-moons": 20000, "sign-descent-linf": 20000, "coordinate-descent-l1": 20000}

# claims a run does NOT support: findings, reported in the issue notes with these numbers.
# Each is asserted as it stands, so a change that makes it hold (or moves the numbers) shows up.
FINDINGS = {
    # the first layer's stable rank settles at the two-direction value (below), 1.67 at the
    # preset's slope 0.1, instead of going to 1 (ReLU: ~2.4)
    ("orthogonal-leaky-relu", "stable_rank"): lambda v: abs(v.value / two_direction_stable_rank(0.1) - 1) < 0.02,
    # depth 3 with a small step: the KKT residual shrinks, but only x1.4 in 20,000 steps
    ("relu3-moons", "kkt_decreasing"): lambda v: 0.5 < v.value < 0.8,
    # near-homogeneous: with a step small enough for a monotone margin, ||theta|| grows too
    # little in 20,000 steps for the relative Euler defect to halve (x1.85 at 100,000)
    ("residual-gelu-moons", "euler_defect_vanishing"): lambda v: v.value > 1e-3,
    # within 10^5 steps ||theta|| grows with slope ~0.2-0.26 in log log t, not 1/M = 0.5 (the
    # loss rate does match): (log t)^(1/M) needs a far longer horizon, if it shows at all
    ("relu2-constant-step", "norm_rate"): lambda v: 0.1 < v.value < 0.35,
}


def two_direction_stable_rank(slope: float) -> float:
    """The stable rank of a leaky-ReLU layer whose hidden units' weights have turned to two
    directions of equal weight, u = P - a N and v = N - a P (P, N: each class's sum of its
    samples, weighted; nearly orthogonal samples make P and N orthogonal, of equal norm once
    the margins equalize). cos(u, v) = -2a / (1 + a^2), and W^T W = s (u u^T + v v^T) has
    largest eigenvalue s (1 + |cos|) and trace 2 s: 2 (1 + a^2) / (1 + a)^2, 1 only at a = 1."""
    return 2 * (1 + slope ** 2) / (1 + slope) ** 2


def _judge(name: str, slope: float | None = None):
    config = load_preset(name)
    if slope is not None:
        config.architecture.blocks[1].param = slope
    config.run.steps = STEPS.get(name, 3000)
    trainer = Trainer(config)
    chunks = []
    while trainer.status == "running":
        chunks.append(trainer.run(1 << 30))
    assert trainer.status == "finished", trainer.reason
    return judge(RunData.from_chunks(config, chunks), config.claim_specs())


@pytest.mark.parametrize("name", preset_names())
def test_each_preset_supports_its_claims(name):
    config = load_preset(name)
    assert config.description and config.claims, f"{name} states no claim"
    for verdict in _judge(name):
        finding = FINDINGS.get((name, verdict.check))
        if finding is not None:
            assert verdict.supported is False, f"finding no longer holds: {verdict.line()}"
            assert finding(verdict), verdict.line()
        else:
            assert verdict.supported is True, verdict.line()


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
    assert "not yet" in result.stdout or "cannot judge" in result.stdout  # no ensemble in this run


def test_the_window_shows_the_claims_of_a_preset_run(window, qtbot):
    window.load_preset("relu2-blobs")
    # before the run: the preset's claims, waiting; no verdict yet
    text = window.claims_panel.text
    assert "never decreases after L &lt; l(0)" in text and "press Run" in text
    assert "✔" not in text and "✘" not in text
    window.controls.steps.setValue(2000)
    window.toggle_run()
    qtbot.waitUntil(lambda: window._status == "finished", timeout=30000)
    window.update_claims()
    text = window.claims_panel.text
    assert "never decreases after L &lt; l(0)" in text and "largest relative dip" in text and "✔" in text


def test_every_preset_is_valid_json_with_a_known_dataset():
    for name in preset_names():
        data = json.loads((ROOT / "resources" / "presets" / f"{name}.json").read_text())
        assert set(data) <= {"name", "description", "dataset", "architecture", "loss", "optimizer", "run", "recording",
                             "claims"}
