"""What an engine hands back from one ``advance`` call: the quantities of the steps due a record
or a snapshot, for S members at once (core/engines/). The driver (core/trainer.py) makes the
records from it with the recorder (core/recorder.py) and the snapshots itself. The batched engine
may leave the records' quantities on its device (``device``): the recorder makes them there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StepBlock:
    steps: np.ndarray        # int64 (K,): the kept steps (a record or a snapshot is due), ascending
    walls: np.ndarray        # float64 (K,): seconds since the advance call started, at each kept step
    record: np.ndarray       # bool (K,)
    snapshot: np.ndarray     # bool (K,)
    theta: np.ndarray        # (K, S, P): parameters at the step, before its update (with ``device``: the snapshot rows only)
    # (K, S, n): y * f there (C outputs: f_{y_i} - max_{j != y_i} f_j); None with ``device``
    q: np.ndarray | None
    log_l: np.ndarray | None  # (K, S): the SUMMED log loss there (None with ``device``)
    grad: np.ndarray | None  # (K, S, P): grad log L there (rows where record is False may be anything; None with ``device``)
    end_step: int            # the step reached (the next step to take)
    final_theta: np.ndarray  # (S, P) at end_step (diverged members: frozen where they failed)
    diverged_at: np.ndarray  # int64 (S,): -1 while alive, else the step at which the member failed
    overflowed: np.ndarray   # bool (S,): the constant rule's loss overflowed exp (recorded, then diverged)
    # the loss_based step rule's (core/step_rule.py LossBasedRate), else None: (K, S) each, on the host
    alpha: np.ndarray | None = field(default=None)  # alpha_t, the rate of the step from the kept step
    taken: np.ndarray | None = field(default=None)  # 1.0: the step into it was kept; 0.0: undone (theta restored)
    # theta, q, log_l and grad as tensors where the engine left them, on its device: the records are
    # made there (core/batched_records.py DeviceBlock); None: the arrays above hold them
    device: Any = None

    def last_valid(self) -> np.ndarray:
        """int64 (S,): the last step each member's records and snapshots reach: the one before it
        failed, or the one whose loss overflowed (recorded, then diverged); no limit while alive."""
        return np.where(self.diverged_at < 0, np.iinfo(np.int64).max, self.diverged_at - 1 + self.overflowed)
