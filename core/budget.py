"""How large a run may be, checked before anything is allocated (README, Limits).

A run holds a few copies of the parameters (theta, its gradient, the optimizer's state, the
records' blocks), the activations of every block for the whole dataset, and at each snapshot the
per-sample Jacobian (n x P) that the KKT residual and the Euler defect use (scipy's NNLS copies
it once more). Each limit is a count of float64 numbers, so that the message can name it:

  parameters               P              <= architecture.MAX_PARAMETERS (80 MB a copy)
  activations              n x (widths)   <= MAX_ACTIVATIONS (800 MB)
  per-sample Jacobian      n x P          <= MAX_JACOBIAN    (800 MB a copy; homogeneous networks)
  multi-class KKT pairs    n (C - 1) x P  <= MAX_JACOBIAN    (C >= 3 outputs, recording.kkt on)

A network with C >= 3 outputs forms its Jacobian (n x C x P) for the Euler defect and the
stuck-sample check in blocks of samples (core/trainer.py), within the n x P above; its KKT
residual needs one row per pair (i, j != y_i) at once, hence the pairs' own limit.

Every preset needs under 1% of each. A two-layer ReLU network of width 256 on 1,000 points fits
(P = 66,304: a Jacobian of 6.6e7 numbers); a width-1,000 three-layer network on 10,000 points
does not (its per-sample Jacobian alone would be 2e10 numbers, 160 GB).

A family of S members holds S open run files and S members' state and records: S times
member_bytes, at most MAX_FAMILY_BYTES in all (4 GB: about 1,300 members of a small model on
100 points; a 2-parameter member measured 1.6 MB at peak, 200 steps).
"""

from __future__ import annotations

from math import prod

from .architecture import ArchitectureSpec, Ensemble, Residual, block_shape, parameter_count, parameter_layout
from .errors import ConfigError
from .metrics import SCALAR_METRICS, SUPPORT_DECADES

MAX_ACTIVATIONS = 10**8
MAX_JACOBIAN = 10**8
MAX_FAMILY_BYTES = 4 << 30
FILE_BYTES = 2 << 20  # a member's open run file: HDF5's own structures and chunk caches (1.1 MB measured)
RECORD_ROWS = 1024  # records a member may hold between two writes (every step is recorded up to step 1,000)
# numbers a record holds besides the sample margins and the layer metrics: the scalar metrics and
# support_counts' columns
RECORD_SCALARS = len(SCALAR_METRICS) + SUPPORT_DECADES


def activation_count(spec: ArchitectureSpec) -> int:
    """Numbers one forward pass keeps per sample: every block's output size, summed (a residual
    adds its branch's, an ensemble its members'; a conv or pooling block its whole image)."""

    def walk(blocks, shape):
        total = 0
        for block in blocks:
            if isinstance(block, Residual):
                inner, _end = walk(block.blocks, shape)
                total += inner + prod(shape)
            elif isinstance(block, Ensemble):
                ends = [walk(m, shape) for m in block.members]
                shape = ends[0][1]
                total += sum(t for t, _s in ends) + prod(shape)
            else:
                shape = block_shape(block, shape, "architecture.blocks")
                total += prod(shape)
        return total, shape

    return walk(spec.blocks, spec.in_shape)[0]


def check_run_size(spec: ArchitectureSpec, n: int, jacobian: bool) -> None:
    """Refuse, before allocating, a network whose activations on ``n`` points, or (``jacobian``:
    snapshots form per-sample gradients: the KKT residual, the Euler defect, the stuck-sample
    check) whose per-sample Jacobian, exceeds its limit."""
    spec.validate()  # P <= MAX_PARAMETERS, among the rest
    size = parameter_count(spec)
    activations = n * activation_count(spec)
    if activations > MAX_ACTIVATIONS:
        raise ConfigError(f"architecture.blocks: the activations on {n} points are {activations:.3g} numbers; "
                          f"the limit is {MAX_ACTIVATIONS:.0e} (README, Limits): use fewer points or narrower layers")
    if jacobian and n * size > MAX_JACOBIAN:
        raise ConfigError(f"architecture.blocks: the per-sample Jacobian (KKT residual, stuck-sample check) "
                          f"(n x P = {n} x {size}) is {n * size:.3g} numbers; the limit is {MAX_JACOBIAN:.0e} "
                          "(README, Limits): use fewer points or a smaller network")


def member_bytes(spec: ArchitectureSpec, n: int) -> int:
    """What one family member may hold at once: its open run file, its parameters, gradient and
    optimizer state (and the batched engine's copies of them), and a chunk's records."""
    size = parameter_count(spec)
    layers = sum(1 for _name, _size, shape in parameter_layout(spec) if len(shape) == 2)
    state = 8 * (8 * size + 2 * n)
    records = RECORD_ROWS * 8 * (RECORD_SCALARS + n + 2 * layers)
    return FILE_BYTES + state + records


def check_family_size(spec: ArchitectureSpec, n: int, members: int) -> None:
    """Refuse, before any member is built, a family that would not fit in MAX_FAMILY_BYTES."""
    each = member_bytes(spec, n)
    if members * each > MAX_FAMILY_BYTES:
        raise ConfigError(f"family: {members} members would need about {members * each / 2**30:.1f} GB "
                          f"({each / 2**20:.1f} MB each); the limit is {MAX_FAMILY_BYTES >> 30} GB (README, Limits): "
                          f"use at most {MAX_FAMILY_BYTES // each} members")


def check_kkt_pairs(spec: ArchitectureSpec, n: int, classes: int) -> None:
    """Refuse, before training, a C-class run whose KKT residual (one Jacobian row per pair
    (i, j != y_i): core/multiclass.kkt_residual) would exceed MAX_JACOBIAN."""
    size, pairs = parameter_count(spec), n * (classes - 1)
    if pairs * size > MAX_JACOBIAN:
        raise ConfigError(f"recording.kkt: the multi-class KKT residual's pair Jacobian (n (C - 1) x P = {n} x "
                          f"{classes - 1} x {size}) is {pairs * size:.3g} numbers; the limit is {MAX_JACOBIAN:.0e} "
                          "(README, Limits): turn recording.kkt off, or use fewer points or a smaller network")
