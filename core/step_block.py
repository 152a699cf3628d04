"""What an engine hands the driver for a block of steps (issue #23): the steps due a record or a
snapshot, with the quantities the recorder needs there, and where the block ended.

Every array has a leading S axis for the runs stepped together (a single run is S = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepBlock:
    steps: np.ndarray  # int64 (K,): the kept steps (a record or a snapshot is due), ascending
    walls: np.ndarray  # float64 (K,): seconds since the advance call started, at each kept step
    record: np.ndarray  # bool (K,)
    snapshot: np.ndarray  # bool (K,)
    theta: np.ndarray  # (K, S, P): parameters at the step, before its update
    q: np.ndarray  # (K, S, n): y * f there
    log_l: np.ndarray  # (K, S): the SUMMED log loss there
    grad: np.ndarray  # (K, S, P): grad log L there
    end_step: int  # the step reached (the next step to take)
    final_theta: np.ndarray  # (S, P) at end_step (a diverged member: frozen where it failed)
    diverged_at: np.ndarray  # int64 (S,): -1 while alive, else the step at which it failed
    overflowed: np.ndarray  # bool (S,): the constant rule's loss overflowed exp (recorded, then diverged)
