"""The numpy engine: a run's steps on the host, one member after another, with the hand-written
numpy network (core/network.py) or any network with its interface (the autograd engine's).

Each step at theta_t: f = net(theta_t), q = y f, (log L, w) from core/losses.py, grad log L by
one backward pass (a network with C >= 3 outputs: q_i = f_{y_i} - max_{j != y_i} f_j, log L and
its (n, C) weights from core/multiclass.py, labels 0..C-1); a kept step copies these into the block; then the update from the direction
source (core/step_rule.py, core/optimizers.py). L itself is never formed (THEORY.md, Numerics).
Several members (a family of sgd runs, whose minibatches are drawn per run) train one by one:
the first within its share of the time, the rest as many steps.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import losses, multiclass, step_rule
from ..architecture import output_classes
from ..config import RunConfig
from ..level1 import squared_norm
from ..network import NumpyNetwork
from ..optimizers import UpdateRule, rng_state, set_rng_state
from ..step_block import StepBlock

# Kept steps in one block: at most MAX_RECORD_BLOCK, their copies of theta, q and grad within
# RECORD_BLOCK_BYTES, and the recorder makes their records as array operations (one at a time, a
# record's ~40 small numpy calls cost more than a small network's step). Residual GELU width 64,
# every step recorded: blocks of 1 ran at half the speed of blocks of 7, and blocks of 31 (4 MB)
# ~10% faster than blocks of 7 (1 MB)
MAX_RECORD_BLOCK = 256
RECORD_BLOCK_BYTES = 4 << 20


class NumpyEngine:
    """See the module docstring and core/engines/__init__.py for the interface."""

    def __init__(self, config: RunConfig, X, y, thetas, lrs, seeds, order, net=None):
        self.net = net if net is not None else NumpyNetwork(config.architecture)
        self.X, self.y = X, y
        # C >= 3 outputs: the labels 0..C-1 as indices (None: binary, y of +-1, the path below unchanged)
        self.labels = np.asarray(y).astype(np.intp) if output_classes(config.architecture) > 1 else None
        self.theta = np.array(thetas)  # (S, P): each row updated in place by its rule
        S, P = self.theta.shape
        self.size = S
        opt = config.optimizer
        self.kind = opt.kind
        self.rules = [UpdateRule(opt.kind, lr, opt.momentum, opt.beta1, opt.beta2, opt.eps) for lr in lrs]
        self.batch_size = opt.batch_size if opt.kind == "sgd" else None
        self.rngs = [np.random.default_rng(seed + 1) for seed in seeds]
        self.loss_kind, self.mean = config.loss.kind, config.loss.reduction == "mean"
        self.log_n = math.log(len(y))
        self.step_rule, self.power = opt.step_rule, step_rule.lyu_li_power(order)
        # Lyu and Li's adaptive rate, one per member: each step judged after it is taken
        self.rates = [step_rule.LossBasedRate(lr) for lr in lrs] if opt.step_rule == "loss_based" else None
        self.norm_limit = step_rule.norm_limit(order, self.theta.dtype)
        self.diverged_at = np.full(S, -1, dtype=np.int64)
        self.overflowed = np.zeros(S, dtype=bool)
        self.grad = np.empty(P, dtype=self.theta.dtype)
        per_kept = (2 * P + len(y)) * self.theta.itemsize * S
        self.max_kept = max(1, min(MAX_RECORD_BLOCK, RECORD_BLOCK_BYTES // per_kept))
        self.note = (f"{opt.kind} draws minibatches per run: the members train one by one" if S > 1 else "")

    def step_threads(self):
        return self.net.step_threads()

    # ------------------------------------------------------------------ optimizer state
    def state(self) -> list[dict]:
        size = self.theta.shape[1]
        states = [rule.state(size) for rule in self.rules]
        if self.batch_size is not None:
            for state, rng in zip(states, self.rngs):
                state["minibatch_rng"] = rng_state(rng)
        for state, rate in zip(states, self.rates or ()):
            state.update(rate.state())
        return states

    def load_state(self, states: list[dict]) -> None:
        for rule, rng, state in zip(self.rules, self.rngs, states):
            rule.load_state(state, self.theta.dtype)
            if "minibatch_rng" in state:
                set_rng_state(rng, state["minibatch_rng"])
        for rate, state in zip(self.rates or (), states):
            rate.load_state(state)

    # ------------------------------------------------------------------ the steps
    def advance(self, start: int, end: int, record_steps, snapshot_steps, deadline: float | None) -> StepBlock:
        started = time.perf_counter()
        kept = np.union1d(record_steps, snapshot_steps).astype(np.int64)
        record, snapshot = np.isin(kept, record_steps), np.isin(kept, snapshot_steps)
        S, P = self.theta.shape
        K, n = len(kept), len(self.y)
        out = (np.empty((K, S, P), dtype=self.theta.dtype), np.empty((K, S, n), dtype=self.theta.dtype),
               np.full((K, S), np.nan), np.empty((K, S, P), dtype=self.theta.dtype),
               None if self.rates is None else np.full((K, S), np.nan),
               None if self.rates is None else np.full((K, S), np.nan))
        walls = np.zeros(K)
        alive = np.flatnonzero(self.diverged_at < 0)
        reached = start
        for i, s in enumerate(alive):
            if i == 0:
                share = None if deadline is None else started + (deadline - started) / len(alive)
                reached = self._member(s, start, end, kept, record, share, out, walls, started)
            else:
                self._member(s, start, reached, kept, record, None, out, None, started)
        # the rows reached: before ``reached``, and the step whose loss overflowed (recorded, then diverged)
        rows = int(np.searchsorted(kept, reached))
        if rows < K and kept[rows] == reached and np.any(self.overflowed & (self.diverged_at == reached)):
            rows += 1
        return StepBlock(steps=kept[:rows], walls=walls[:rows], record=record[:rows], snapshot=snapshot[:rows],
                         theta=out[0][:rows], q=out[1][:rows], log_l=out[2][:rows], grad=out[3][:rows],
                         end_step=reached, final_theta=self.theta.copy(), diverged_at=self.diverged_at.copy(),
                         overflowed=self.overflowed.copy(), alpha=None if out[4] is None else out[4][:rows],
                         taken=None if out[5] is None else out[5][:rows])

    def _member(self, s, start, end, kept, record, deadline, out, walls, started) -> int:
        """Member s from ``start`` to ``end`` (or the deadline, or its failure); the step reached."""
        theta, rule, grad_buffer = self.theta[s], self.rules[s], self.grad
        out_theta, out_q, out_log_l, out_grad, out_alpha, out_taken = out
        rate = None if self.rates is None else self.rates[s]
        ahead = None  # loss_based: (q, log L, grad) at theta, computed when the step into it was judged
        mean, log_n, rule_kind, power, limit = self.mean, self.log_n, self.step_rule, self.power, self.norm_limit
        kept_steps, records = kept.tolist(), record.tolist()
        k = int(np.searchsorted(kept, start))
        next_kept = kept_steps[k] if k < len(kept_steps) else -1
        step = start
        labels = self.labels
        while step < end:
            if ahead is None:
                q, log_l, grad = self._evaluate(theta, labels, grad_buffer)
                if rate is not None and rate.kept is None:
                    rate.start(theta, q, log_l, grad)
            else:
                (q, log_l, grad), ahead = ahead, None
            # a NaN or inf anywhere in the gradient makes its squared norm NaN or inf: one dot, not a scan
            norm = math.sqrt(squared_norm(theta))
            if not (math.isfinite(log_l) and math.isfinite(norm) and norm < limit
                    and math.isfinite(squared_norm(grad))):
                self.diverged_at[s] = step
                break
            if step == next_kept:
                if walls is not None:
                    walls[k] = time.perf_counter() - started
                out_theta[k, s], out_q[k, s], out_log_l[k, s] = theta, q, log_l
                if records[k]:
                    out_grad[k, s] = grad
                if rate is not None:
                    out_alpha[k, s], out_taken[k, s] = rate.alpha, float(rate.taken)
                k += 1
                next_kept = kept_steps[k] if k < len(kept_steps) else -1
            if self.batch_size is not None:
                grad, log_l = self._minibatch_gradient(s, theta)
            if rate is not None:
                factor = rate.factor()
            else:
                factor = step_rule.factor(rule_kind, log_l, log_l - log_n if mean else log_l, power)
            if factor is None:  # the constant rule's L overflowed: this step is recorded, then the run ends
                self.overflowed[s] = True
                self.diverged_at[s] = step
                break
            rule.apply(theta, grad, factor)
            step += 1
            if rate is not None:  # judged at once: the state between steps is always a kept one
                q, log_l, grad = self._evaluate(theta, labels, grad_buffer)
                ahead = (q, rate.judge(theta, q, log_l, grad), grad)
            if deadline is not None and time.perf_counter() > deadline:
                break
        return step

    def _evaluate(self, theta, labels, out):
        """(q, log L, grad log L) at ``theta``: q = y f for two classes (labels None), else the
        multi-class margins of the C outputs."""
        f = self.net.outputs(theta, self.X)
        if labels is not None:
            return self._multiclass_gradient(theta, f, labels, out)
        q = self.y * f
        log_l, weights = losses.log_loss_and_weights(self.loss_kind, q)
        return q, log_l, self.net.backward(theta, weights * self.y, out=out)

    def _multiclass_gradient(self, theta, f, labels, out):
        """(q, log L, grad log L) of C outputs f (n, C) from the last forward (core/multiclass.py)."""
        q = multiclass.sample_margins(f, labels)
        log_l, weights = multiclass.log_loss_and_weights(self.loss_kind, f, labels)
        return q, log_l, self.net.backward(theta, weights.astype(theta.dtype, copy=False), out=out)

    def _minibatch_gradient(self, s, theta):
        n = len(self.y)
        idx = self.rngs[s].choice(n, size=min(self.batch_size, n), replace=False)
        if self.labels is not None:
            _q, log_l, grad = self._multiclass_gradient(theta, self.net.outputs(theta, self.X[idx]), self.labels[idx], None)
            return grad, log_l
        yb = self.y[idx]
        qb = yb * self.net.outputs(theta, self.X[idx])
        log_l, weights = losses.log_loss_and_weights(self.loss_kind, qb)
        return self.net.backward(theta, weights * yb), log_l
