"""Claims from THEORY.md checked on real runs, against independent solvers where one exists."""

import math

import numpy as np
import pytest
from sklearn.svm import SVC

from margin_explorer.core import network
from margin_explorer.core.architecture import Activation, ArchitectureSpec, Dense, Ensemble, Residual, mlp
from margin_explorer.core.datasets import gaussian_blobs, linearly_separable, xor
from margin_explorer.core.metrics import unit_angle
from margin_explorer.core.recording import LogSchedule
from margin_explorer.core.reference import l1_max_margin_direction, linf_max_margin_direction
from margin_explorer.core.trainer import Trainer
from tests.helpers import config_for, linear_spec, symmetric


def _svc_direction(ds):
    svc = SVC(kernel="linear", C=1e10, tol=1e-10).fit(ds.X, ds.y)
    assert abs(svc.intercept_[0]) < 1e-6  # symmetric data: the bias-free and biased SVMs agree
    w = svc.coef_[0]
    return w / np.linalg.norm(w)


def _direction(theta):
    return theta / np.linalg.norm(theta)


@pytest.fixture(scope="module")
def separable():
    return symmetric(linearly_separable(60, 3, 0.1, seed=5))


def test_linear_model_reaches_the_svm_direction_with_the_loss_normalized_step(separable):
    trainer = Trainer(config_for(linear_spec(3), separable, steps=20000, lr=0.2))
    chunk = trainer.run(20000).members[0]
    assert chunk.status == "finished"
    angle = math.degrees(unit_angle(_direction(trainer.members[0].theta), _svc_direction(separable)))
    assert angle < 1.0, angle
    # the engine's own reference (its dual solver) agrees with the oracle, so the plotted angle is right
    assert math.degrees(chunk.records["angle_to_reference"][-1]) == pytest.approx(angle, abs=0.01)


def test_linear_model_with_constant_step_keeps_approaching_the_svm_direction(separable):
    config = config_for(linear_spec(3), separable, steps=30000, lr=0.05, rule="constant", loss="logistic")
    trainer = Trainer(config)
    oracle = _svc_direction(separable)
    angles = []
    for checkpoint in (100, 1000, 10000, 30000):
        trainer.run(checkpoint - trainer.step)
        angles.append(unit_angle(_direction(trainer.members[0].theta), oracle))
    assert all(b < a for a, b in zip(angles, angles[1:])), angles
    assert angles[-1] > math.radians(0.1)  # slow (~1/log t): still visibly short of the limit


@pytest.fixture(scope="module")
def relu_run():
    data = gaussian_blobs(60, 2, separation=4.0, noise=0.6, seed=1)
    config = config_for(mlp(2, [16], init=None), data, steps=4000, lr=1.0, rule="lyu_li",
                        every_step_until=500, per_decade=300, snapshots_per_decade=4)
    config.architecture.init.scale = 0.5
    trainer = Trainer(config)
    chunk = trainer.run(4000).members[0]
    assert chunk.status == "finished", chunk.reason
    return trainer, chunk


def test_smoothed_margin_never_decreases_after_the_loss_threshold(relu_run):
    _trainer, chunk = relu_run
    r = chunk.records
    below = np.flatnonzero(r["log_loss"] < 0.0)  # L < l(0) = 1 for the exponential loss
    assert below.size > 100
    smoothed = r["smoothed_margin"][below[0]:]
    drops = smoothed[:-1] - smoothed[1:]
    assert np.all(drops <= 1e-9 * np.abs(smoothed[:-1])), drops.max()
    assert smoothed[-1] > smoothed[0]


def test_margin_sandwich_holds_at_every_record(relu_run):
    trainer, chunk = relu_run
    r = chunk.records
    gamma, smoothed = r["normalized_margin"], r["smoothed_margin"]
    slack = math.log(trainer.n) / r["param_norm"] ** 2
    assert np.all(smoothed <= gamma * (1 + 1e-12) + 1e-15)
    assert np.all(gamma <= smoothed + slack * (1 + 1e-12))


def test_norm_diverges_margins_converge_together_and_alignment_goes_to_one(relu_run):
    _trainer, chunk = relu_run
    r = chunk.records
    assert r["param_norm"][-1] > 10 * r["param_norm"][0]
    assert abs(r["normalized_margin"][-1] - r["smoothed_margin"][-1]) < 1e-3 * r["normalized_margin"][-1]
    assert r["alignment"][-1] > 0.999
    assert r["alignment_gap"][-1] < r["alignment_gap"][len(r["alignment_gap"]) // 4]


def test_kkt_residual_shrinks_and_euler_defect_vanishes(relu_run):
    _trainer, chunk = relu_run
    eps = [m["kkt_eps"] for m in chunk.snapshot_metrics if np.isfinite(m["kkt_eps"])]
    assert len(eps) >= 4 and eps[-1] < eps[0] and eps[-1] < 0.1
    assert max(m["euler_defect"] for m in chunk.snapshot_metrics) < 1e-12


def test_hundred_thousand_loss_normalized_steps_without_nan():
    data = linearly_separable(50, 2, 0.2, seed=2)
    trainer = Trainer(config_for(linear_spec(), data, steps=100_000, lr=1.0, per_decade=50))
    chunk = trainer.run(100_000).members[0]
    assert chunk.status == "finished"
    r = chunk.records
    assert r["log_loss"][-1] < -1000  # L = exp(log L) underflowed long ago; log L did not
    for name, values in r.items():
        if name not in ("direction_change", "angle_to_reference"):
            assert np.all(np.isfinite(values)), name
    assert np.all(np.isfinite(r["direction_change"][1:]))


def test_huge_learning_rate_ends_diverged_with_a_reason():
    data = xor(40, seed=0)
    trainer = Trainer(config_for(mlp(2, [8]), data, steps=1000, lr=1e6, rule="constant"))
    chunk = trainer.run(1000).members[0]
    assert chunk.status == "diverged"
    assert "diverged at step" in chunk.reason and "step size" in chunk.reason
    for name, values in chunk.records.items():
        if values.ndim == 1 and name not in ("direction_change", "angle_to_reference"):
            assert np.all(np.isfinite(values)), f"{name} recorded a non-finite value before the divergence"


def test_same_seed_gives_a_bit_identical_trajectory():
    data = gaussian_blobs(40, 2, seed=3)
    runs = []
    for _ in range(2):
        trainer = Trainer(config_for(mlp(2, [8]), data, steps=300, lr=0.5, rule="lyu_li", seed=11))
        chunk = trainer.run(300).members[0]
        runs.append((trainer.members[0].theta.copy(), chunk.records))
    assert np.array_equal(runs[0][0], runs[1][0])
    for name in runs[0][1]:
        if name != "wall_time":
            assert np.array_equal(runs[0][1][name], runs[1][1][name], equal_nan=True), name
    other = Trainer(config_for(mlp(2, [8]), data, steps=300, lr=0.5, rule="lyu_li", seed=12))
    other.run(300)
    assert not np.array_equal(other.members[0].theta, runs[0][0])


RESIDUAL_GELU = ArchitectureSpec(2, [Dense(8), Activation("gelu"), Residual([Dense(8), Activation("gelu"), Dense(8)]),
                                     Dense(1)])


@pytest.mark.parametrize("spec, deferred", [
    (mlp(2, [16]), False),
    (ArchitectureSpec(2, [Dense(6, True), *mlp(2, [6], "gelu").blocks[1:]]), False),
    (RESIDUAL_GELU, False),
    (RESIDUAL_GELU, True),
], ids=["relu", "gelu-bias", "residual-gelu", "residual-gelu-deferred"])
def test_torch_autograd_backend_follows_the_same_1000_step_trajectory(spec, deferred, monkeypatch):
    # separable data and a moderate step: on chaotic runs (non-separable data, large normalized
    # steps) any two float orders of summation drift apart ~10x every few steps, by design
    if deferred:  # the branch's last layer kept as a Product (core/network.py), as at width 64 and above
        monkeypatch.setattr(network, "DEFER_PRODUCTS_FROM", 0)
    data = gaussian_blobs(30, 2, separation=4.0, noise=0.5, seed=4)
    thetas, records = [], []
    for backend in ("numpy", "torch"):
        config = config_for(spec, data, steps=1000, lr=0.1, rule="lyu_li", snapshots_per_decade=1)
        config.run.backend = backend
        config.recording.every_step_until = 1001  # every metric at every step, as in the benchmark
        trainer = Trainer(config)
        chunk = trainer.run(1000).members[0]
        assert chunk.status == "finished"
        thetas.append(trainer.members[0].theta)
        records.append(chunk.records)
    assert np.max(np.abs(thetas[0] - thetas[1])) <= 1e-12 * np.max(np.abs(thetas[0]))
    assert len(records[0]["step"]) == 1001
    for name, fast in records[0].items():
        if name != "wall_time":
            reference = records[1][name]
            scale = np.nanmax(np.abs(reference)) if np.isfinite(reference).any() else 0.0
            np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=1e-12 * scale, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("case", ["relu", "residual-gelu", "diverging", "float32", "ensemble"])
def test_records_made_in_blocks_equal_records_made_one_by_one(case):
    """The driver asks the engine for blocks of steps and the recorder makes their records as
    array operations; with blocks of one kept step each record is made alone. Chunk ends cut
    blocks anywhere."""
    data = gaussian_blobs(30, 2, separation=4.0, noise=0.5, seed=4)
    spec = {"relu": mlp(2, [16]), "diverging": mlp(2, [16]), "float32": mlp(2, [16]),
            "residual-gelu": ArchitectureSpec(2, [Dense(24), Activation("gelu"),
                                                  Residual([Dense(24), Activation("gelu"), Dense(24)]), Dense(1)]),
            "ensemble": ArchitectureSpec(2, [Ensemble([mlp(2, [4]).blocks, mlp(2, [6]).blocks])])}[case]
    options = {"lr": 1e4, "rule": "constant"} if case == "diverging" else {"lr": 0.1, "rule": "lyu_li"}
    results = []
    for block in (None, 1):
        config = config_for(spec, data, steps=700, **options)
        config.recording.every_step_until = 300  # every step, then log-spaced
        if case == "float32":
            config.run.dtype = "float32"
        trainer = Trainer(config)
        if block is not None:
            trainer.record_block = block
        chunks = []
        while trainer.status == "running":
            chunks.append(trainer.run(97).members[0])
        results.append((trainer, chunks))
    (blocks, a), (single, b) = results
    assert blocks.status == single.status and blocks.step == single.step
    assert blocks.record_block > 1
    for name in a[0].records:
        if name == "wall_time":
            continue
        got = np.concatenate([c.records[name] for c in a if name in c.records])
        expected = np.concatenate([c.records[name] for c in b if name in c.records])
        scale = np.nanmax(np.abs(expected)) if np.isfinite(expected).any() else 0.0
        rtol = 1e-5 if case == "float32" else 1e-12
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=name)
    assert [len(c.records.get("step", ())) for c in a] == [len(c.records.get("step", ())) for c in b]


@pytest.mark.parametrize("kind", ["gd", "normalized_gd", "sgd", "sign", "coordinate", "momentum", "adam"])
def test_every_optimizer_separates_blobs(kind):
    data = gaussian_blobs(40, 2, separation=4.0, noise=0.5, seed=0)
    lr = {"sign": 0.01, "coordinate": 0.1, "adam": 0.01, "momentum": 0.05}.get(kind, 0.2)
    trainer = Trainer(config_for(mlp(2, [8]), data, steps=600, lr=lr, kind=kind))
    chunk = trainer.run(600).members[0]
    r = chunk.records
    assert chunk.status == "finished", chunk.reason
    assert r["accuracy"][-1] == 1.0 and r["log_loss"][-1] < r["log_loss"][0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_update_subtracts_in_place_as_numpy_would(dtype):
    from margin_explorer.core.level1 import subtract_scaled
    from margin_explorer.core.optimizers import UpdateRule

    rng = np.random.default_rng(3)
    theta, d = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    expected = theta - dtype(0.37) * d
    same = theta
    subtract_scaled(theta, 0.37, d)
    assert same is theta and theta.dtype == dtype  # in place: the trainer's theta is a view others hold
    np.testing.assert_allclose(theta, expected, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    every_other = np.arange(20.0)[::2]  # not contiguous: numpy's way, the same numbers
    subtract_scaled(every_other, 2.0, np.ones(10))
    np.testing.assert_array_equal(every_other, np.arange(0.0, 20.0, 2.0) - 2.0)
    velocity_rule, theta = UpdateRule("momentum", 0.1, momentum=0.5), np.ones(3)
    for _ in range(2):
        velocity_rule.apply(theta, np.full(3, 2.0))
    np.testing.assert_allclose(theta, 1.0 - 0.1 * 2.0 - 0.1 * (0.5 * 2.0 + 2.0), rtol=1e-15)


def test_l1_and_linf_norms_without_a_temporary_equal_numpys():
    from margin_explorer.core.level1 import abs_sum_and_max

    rng = np.random.default_rng(4)
    for dtype, rtol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        theta = rng.standard_normal(33_000).astype(dtype)
        theta[1234] = -9.0  # the largest entry is negative
        l1, linf = abs_sum_and_max(theta)
        assert l1 == pytest.approx(float(np.abs(theta.astype(np.float64)).sum()), rel=rtol) and linf == 9.0
    assert abs_sum_and_max(np.arange(-6.0, 4.0)[::3]) == (12.0, 6.0)  # a strided view: numpy's way
    for bad in (np.nan, np.inf):
        values = abs_sum_and_max(np.array([1.0, bad, -3.0]))
        assert all(np.isnan(v) for v in values) if np.isnan(bad) else values == (np.inf, np.inf)


def test_level_one_calls_stay_below_openblass_threaded_size(monkeypatch):
    """OpenBLAS runs a level-1 call of more than 10,000 entries on its thread pool, which made a
    16,000-parameter numpy step take 50-67 ms instead of 0.3-0.5 ms on the shared machine
    (core/level1.py): every call gets a slice of at most 10,000, and the numbers stay numpy's."""
    from margin_explorer.core import level1

    sizes = []

    def counted(routine):
        def call(*args, **kwargs):
            sizes.append(len(args[0]))
            return routine(*args, **kwargs)
        return call

    rng = np.random.default_rng(5)
    for dtype, rtol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        level1._routines(np.dtype(dtype))
        monkeypatch.setitem(level1._ROUTINES, np.dtype(dtype),
                            tuple(map(counted, level1._ROUTINES[np.dtype(dtype)])))
        theta, d = rng.standard_normal(33_001).astype(dtype), rng.standard_normal(33_001).astype(dtype)
        theta[30_000] = 11.0  # the largest entry in the last slice
        expected, same = theta - dtype(0.37) * d, theta
        level1.subtract_scaled(theta, 0.37, d)
        assert same is theta
        np.testing.assert_allclose(theta, expected, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
        wide = theta.astype(np.float64)
        assert level1.squared_norm(theta) == pytest.approx(float(np.dot(wide, wide)), rel=rtol)
        assert level1.abs_sum_and_max(theta) == pytest.approx((float(np.abs(wide).sum()), abs(wide).max()), rel=rtol)
    assert sizes and max(sizes) <= 10_000
    theta[20_000] = np.nan
    assert np.isnan(level1.squared_norm(theta))


@pytest.mark.parametrize("kind, solver, margin", [
    ("sign", linf_max_margin_direction, "normalized_margin_linf"),
    ("coordinate", l1_max_margin_direction, "normalized_margin_l1"),
])
def test_steepest_descent_flavors_approach_their_max_margin_direction(kind, solver, margin):
    data = linearly_separable(40, 3, 0.2, seed=8)
    trainer = Trainer(config_for(linear_spec(3), data, steps=6000, lr=0.01, kind=kind))
    chunk = trainer.run(6000).members[0]
    target = solver(data.X, data.y)
    r = chunk.records
    assert r["angle_to_reference"][-1] < r["angle_to_reference"][200]
    assert unit_angle(_direction(trainer.members[0].theta), target) < math.radians(3)
    assert r[margin][-1] > r[margin][200]


def test_float32_runs_in_log_space_without_nan():
    data = linearly_separable(50, 2, 0.2, seed=2)
    trainer = Trainer(config_for(linear_spec(), data, steps=3000, lr=1.0, dtype="float32"))
    chunk = trainer.run(3000).members[0]
    assert trainer.members[0].theta.dtype == np.float32 and chunk.status == "finished"
    assert chunk.records["log_loss"][-1] < -88  # exp(-q) would have underflowed float32 here
    assert np.all(np.isfinite(chunk.records["smoothed_margin"]))


def test_recording_stays_bounded_over_ten_million_steps():
    schedule = LogSchedule(1000, 200)
    count = schedule.count_until(10**7)
    assert count < 1000 + 4 * 200 + 10  # every decade after the dense phase gets ~per_decade records
    probe = LogSchedule(1000, 200)
    due = [s for s in range(10**5) if probe.due(s)]
    decade = [s for s in due if 10**4 <= s < 10**5]
    assert 190 <= len(decade) <= 210


def test_due_steps_listed_ahead_are_the_steps_due_one_by_one():
    """The driver lists a range's due steps ahead (due_in, at most ``limit``), the engine may stop
    early, and only the steps taken are consumed (commit): the same steps as asking step by step,
    from step 0 or from a continued run's first step."""
    rng = np.random.default_rng(7)
    for dense, per_decade, start in [(0, 3, 0), (1, 10, 0), (50, 20, 0), (5, 1, 1234), (1000, 200, 0)]:
        probe = LogSchedule(dense, per_decade)
        expected = [s for s in range(start, 20_000) if probe.due(s)]
        schedule, got, step = LogSchedule(dense, per_decade), [], start
        while step < 20_000:
            limit, end = int(rng.choice([1, 3, 256])), min(20_000, step + int(rng.choice([1, 50, 5000])))
            due = schedule.due_in(step, end, limit)
            if len(due) == limit:
                end = int(due[-1]) + 1
            if end - step > 1 and rng.random() < 0.3:  # a deadline stops the block early
                end = int(rng.integers(step + 1, end))
            got += [int(s) for s in due if s < end]
            schedule.commit(step, end)
            step = end
        assert got == expected, (dense, per_decade, start)


def test_chunks_can_be_paused_and_resumed_without_changing_the_trajectory():
    data = gaussian_blobs(30, 2, seed=9)
    whole = Trainer(config_for(mlp(2, [8]), data, steps=500, lr=0.3))
    whole.run(500)
    pieces = Trainer(config_for(mlp(2, [8]), data, steps=500, lr=0.3))
    collected = []
    while pieces.status == "running":
        collected.append(pieces.run(37).members[0].records["step"])
    assert np.array_equal(whole.members[0].theta, pieces.members[0].theta)
    steps = np.concatenate([c for c in collected if len(c)])
    assert np.array_equal(steps, np.unique(steps))


def test_stable_rank_matches_the_svd():
    from margin_explorer.core.metrics import stable_rank

    rng = np.random.default_rng(5)
    for shape in ((64, 64), (64, 2), (2, 64), (1, 64), (7, 3), (3, 7)):
        M = rng.normal(size=shape)
        s = np.linalg.svd(M, compute_uv=False)
        assert stable_rank(M) == pytest.approx(np.sum(s * s) / s[0] ** 2, rel=1e-10), shape


def test_unit_angle_is_accurate_from_tiny_angles_to_nearly_opposite():
    from margin_explorer.core.batched_records import angles  # the records' (numpy and torch)
    from margin_explorer.core.metrics import unit_angle

    rng = np.random.default_rng(2)
    a, b = np.linalg.qr(rng.normal(size=(6, 2)))[0].T  # orthonormal
    for angle in (1e-12, 1e-6, 0.3, 1.5, np.pi / 2 - 1e-9, np.pi / 2 + 1e-9, 3.0, np.pi - 1e-6):
        v = np.cos(angle) * a + np.sin(angle) * b
        assert unit_angle(a, v) == pytest.approx(angle, rel=1e-9, abs=1e-15), angle
        assert angles(a[None], v[None])[0] == pytest.approx(unit_angle(a, v), rel=1e-14), angle
    # a record's vectors: 33,000 coordinates, each normalized in floating point (|u| = 1 to a few
    # ulp), against both norms formed in long double where the platform has one
    theta = rng.normal(size=33_000)
    u = theta / np.linalg.norm(theta)
    for scale in (1e-9, 1e-4, 0.1, 1.0, 3.0):
        w = theta + scale * rng.normal(size=theta.size) * np.linalg.norm(theta) / np.sqrt(theta.size)
        v = w / np.linalg.norm(w)
        d, s = u.astype(np.longdouble) - v, u.astype(np.longdouble) + v
        exact = 2 * np.arctan2(np.sqrt(np.dot(d, d)), np.sqrt(np.dot(s, s)))
        assert unit_angle(u, v) == pytest.approx(float(exact), rel=1e-14), scale


def test_lyu_li_rule_uses_the_summed_loss_with_a_mean_reduction():
    """THEORY.md: the schedule's log(1/L) is of the SUM (L_sum = n L_mean). grad L / L is the same
    for the sum and the mean, so with the sum's log factor a mean run follows the summed run's
    trajectory exactly; with the mean's it took larger steps (log(1/L_mean) = log(1/L_sum) + log n)."""
    data = gaussian_blobs(40, 2, separation=4.0, noise=0.6, seed=2)
    thetas, losses = [], []
    for reduction in ("sum", "mean"):
        config = config_for(mlp(2, [8], init=None), data, steps=600, lr=0.5, rule="lyu_li")
        config.loss.reduction = reduction
        trainer = Trainer(config)
        chunk = trainer.run(600).members[0]
        thetas.append(trainer.members[0].theta.copy())
        losses.append(chunk.records["log_loss"])
    assert losses[0][-1] < -2  # past L_sum = 1/e, where the log factor acts
    np.testing.assert_allclose(losses[1], losses[0] - math.log(40), rtol=0, atol=1e-10)
    np.testing.assert_allclose(thetas[1], thetas[0], rtol=1e-12)


def test_lyu_and_lis_normalization_and_support_counts_match_their_definitions(relu_run):
    """q_min / prod_l ||W_l||_F and n_k = #{i : q_i < q_min + log 10^k}, k = 1..7 (Lyu and Li's
    get_stats), recomputed here with torch from the snapshot parameters at record steps."""
    import torch

    from margin_explorer.core.torch_network import TorchNetwork

    trainer, chunk = relu_run
    r = chunk.records
    model = TorchNetwork(trainer.config.architecture)
    X, y = torch.as_tensor(trainer.X), trainer.y
    checked = 0
    for step, theta in zip(chunk.snapshot_steps, chunk.snapshot_params):
        i = int(np.searchsorted(r["step"], step))
        if i >= len(r["step"]) or r["step"][i] != step:
            continue
        model.load_flat(theta)
        q = y * model(X).detach().numpy()
        weights = [p.detach().numpy() for name, p in model.named_parameters() if name.endswith("weight")]
        product = np.prod([np.linalg.norm(w) for w in weights])
        assert r["normalized_margin_layers"][i] == pytest.approx(q.min() / product, rel=1e-10)
        counts = [int(np.sum(q < q.min() + k * np.log(10))) for k in range(1, 8)]
        assert list(r["support_counts"][i]) == counts
        # AM-GM: prod ||W_l|| <= (||theta|| / sqrt(L))^L, so this margin is at least gamma L^(L/2)
        assert r["normalized_margin_layers"][i] >= r["normalized_margin"][i] * 2.0 * (1 - 1e-12) or q.min() <= 0
        checked += 1
    assert checked >= 5
    assert np.all(np.diff(r["support_counts"], axis=1) >= 0) and np.all(r["support_counts"] <= trainer.n)  # n_1 <= ... <= n_7
