"""The numerics behind the plots: decimation keeps every extreme, cached block ranges are exact,
contours lie on the level set."""

import numpy as np
import pytest

from margin_explorer.widgets.contours import level_segments
from margin_explorer.widgets.decimate import BLOCK, BlockCache, bin_starts, peaks, range_from


@pytest.mark.parametrize("log_x", [False, True])
@pytest.mark.parametrize("n", [500, 100_003])
def test_peak_decimation_keeps_the_extremes_of_every_screen_bin(n, log_x):
    rng = np.random.default_rng(0)
    x = np.arange(n, dtype=np.int64)
    y = np.cumsum(rng.normal(size=n))
    y[n // 3] = np.nan
    lo, hi = (0.0, np.log10(n - 1)) if log_x else (0.0, float(n - 1))
    window = bin_starts(x, lo, hi, 300, log_x)
    cache = BlockCache()
    for c in (None, cache, cache):  # raw, cache filled, cache reused
        px, py = peaks(x, y, *window, c, "y")
        assert len(px) <= 2 * 300 + 2 or window[2] is None
        assert np.nanmin(py) == np.nanmin(y) and np.nanmax(py) == np.nanmax(y)
        assert np.all(np.diff(px) >= 0)
        assert px[-1] == x[-1] and (py[-1] == y[-1])  # the curve ends on the last record


def test_zoomed_window_covers_only_the_visible_range():
    x = np.arange(10_000, dtype=np.int64)
    i0, i1, starts = bin_starts(x, 2000.0, 3000.0, 100, False)
    assert i0 == 1999 and i1 == 3002 and starts is not None
    y = np.sin(x / 50.0)
    px, _py = peaks(x, y, i0, i1, starts)
    assert px.min() >= 1999 and px.max() <= 3001


def test_block_cache_grows_with_an_appended_series():
    cache = BlockCache()
    y = np.arange(10 * BLOCK, dtype=float)
    low, high = cache.blocks("k", y[: 3 * BLOCK + 5])
    assert len(low) == 3 and high[2] == 3 * BLOCK - 1
    low, high = cache.blocks("k", y)
    assert len(low) == 10 and low[9] == 9 * BLOCK
    for start in (0, 1, BLOCK - 1, BLOCK, 7 * BLOCK + 3):
        assert range_from(cache, "k", y, start) == (float(start), float(len(y) - 1))


def test_contours_of_a_circle_lie_on_the_circle():
    xs = np.linspace(-2, 2, 96)
    X, Y = np.meshgrid(xs, xs)
    segments = level_segments(X ** 2 + Y ** 2, 1.0, (-2, -2, 4, 4))
    radius = np.hypot(segments[:, 0], segments[:, 1])
    assert len(segments) > 100 and np.all(np.abs(radius - 1) < 1e-3)
    angles = np.arctan2(segments[:, 1], segments[:, 0])
    assert np.ptp(angles) > 6.0  # the whole way round
    assert len(level_segments(X, 10.0, (-2, -2, 4, 4))) == 0  # a level the data never reach


def test_two_dimensional_block_cache_matches_each_column():
    rng = np.random.default_rng(2)
    n = 50_000
    x = np.arange(n, dtype=np.int64)
    y2d = np.cumsum(rng.normal(size=(n, 5)), axis=0)
    window = bin_starts(x, 0.0, float(n - 1), 200, False)
    low, high = BlockCache().blocks("samples", y2d)
    assert low.shape == (n // BLOCK, 5)
    for col in range(5):
        px, py = peaks(x, y2d[:, col], *window, blocks=(low[:, col], high[:, col]))
        assert py.min() == y2d[:, col].min() and py.max() == y2d[:, col].max()
