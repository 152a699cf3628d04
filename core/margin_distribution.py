"""The distribution of the training samples' normalized margins over a run (Ji and Telgarsky
2020: directional convergence of theta makes the margin distribution converge): quantiles of the
recorded ``sample_margins`` row by row. A derived series, never recorded: the one data path is
the sample margins a run file already holds (docs/run-format.md)."""

from __future__ import annotations

import warnings

import numpy as np

# min, 5%, quartiles, 95%, max: the tails show where the distribution still moves
DISTRIBUTION_LEVELS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DISTRIBUTION_SERIES = "sample_margin_quantiles"
DISTRIBUTION_NAMES = ["min", "5%", "25%", "median", "75%", "95%", "max"]
DISTRIBUTION_DEFINITION = ("the 0% (min), 5%, 25%, 50%, 75%, 95% and 100% (max) quantiles over the training samples "
                           "of q_i / ||theta||_2^M, row by row of the recorded sample_margins (numpy's linear "
                           "interpolation; derived, not recorded); the min is the normalized margin gamma")


def margin_quantiles(sample_margins, levels=DISTRIBUTION_LEVELS) -> np.ndarray:
    """(records x levels) quantiles of each record's sample margins (records x n); a record whose
    margins are undefined (theta = 0: NaN) gives NaN, NaN samples are left out of the others."""
    values = np.asarray(sample_margins, dtype=np.float64)
    if values.ndim != 2 or not values.shape[0]:
        return np.empty((0, len(levels)))
    if values.shape[1] == 0:
        return np.full((values.shape[0], len(levels)), np.nan)
    with warnings.catch_warnings():  # an all-NaN record stays NaN without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(values, levels, axis=1).T
