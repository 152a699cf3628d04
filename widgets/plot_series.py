"""The series a trajectory plot draws from a source: the x values of the chosen horizontal axis,
round-off values dropped and per-step angles (PlotSpec extra), computed once for new records."""

from __future__ import annotations

import numpy as np

from margin_explorer.core.margin_distribution import margin_quantiles

from .plot_item import Plot
from .plot_specs import ROUND_OFF, PlotSpec


class DerivedSeries:
    """TrajectoryPlots' series (a mixin: it reads ``sources``, ``x_mode`` and its caches)."""

    def _x_of(self, source):
        """(x values of every record, whether they are sorted) for the current x mode."""
        steps = source.get("step")
        if steps is None:
            return None, True
        key = (id(source), self.x_mode, len(steps))
        if key not in self._xcache:
            if self.x_mode == "step":
                self._xcache[key] = (steps, True)
            else:
                values = source.get("wall_time") if self.x_mode == "wall_time" else -source.get("log_loss")
                ordered = bool(np.all(np.diff(values) >= 0)) if len(values) > 1 else True
                self._xcache[key] = (values, ordered)
        return self._xcache[key]

    def _step_to_x(self, source, step_values):
        steps = source.get("step")
        x, _ordered = self._x_of(source)
        if self.x_mode == "step" or steps is None or not len(steps):
            return np.asarray(step_values, dtype=np.float64)
        return np.interp(step_values, steps, x)

    def curves_of(self, plot: Plot, source) -> list:
        """(series name, label) of the curves ``plot`` draws for ``source``: its spec's, and for a
        steepest-descent run the margins in that optimizer's norm (PlotSpec extra "steepest")."""
        steepest = plot.spec.extra.get("steepest")
        if steepest:
            return plot.spec.curves + steepest.get(source.config.optimizer.kind, [])
        return plot.spec.curves

    def _series(self, plot: Plot, source, name: str, band: bool = False):
        """What ``plot`` draws of ``source``'s series ``name`` (its band's (low, high) with ``band``):
        round-off values dropped and per-step angles where the spec says (ROUND_OFF, "per_step")."""
        extra = plot.spec.extra
        if extra.get("derived_from") and not band:
            return self._quantiles(source, name, extra["derived_from"])
        if band:
            values = source.band(name)
        else:
            values = source.get(name)
        if values is None or (name not in extra.get("per_step", ()) and name not in extra.get("round_off", ())):
            return values
        # series only grow (DESIGN.md): the records seen before are kept, only new ones transformed
        key = (id(source), name, band)
        arrays = values if band else (values,)
        n = len(arrays[0])
        done, parts, dropped = self._derived.get(key, (0, None, False))
        if parts is None or done > n:  # new, or a different, shorter series under the same key
            done, parts, dropped = 0, [np.empty(0)] * len(arrays), False
        if n > done:
            steps = source.get("step")
            new = [self._transform(plot.spec, steps, name, a, done) for a in arrays]
            parts = [np.concatenate([old, fresh]) for old, (fresh, _d) in zip(parts, new)]
            dropped = dropped or any(d for _fresh, d in new)
            self._derived[key] = (n, parts, dropped)
        plot.dropped_round_off |= dropped
        return tuple(parts) if band else parts[0]

    def _quantiles(self, source, name: str, base: str):
        """The quantiles of ``source``'s 2-D series ``base`` row by row (core/margin_distribution.py),
        computed for new records only: series only grow (DESIGN.md)."""
        values = source.get(base)
        if values is None or values.ndim != 2:
            return None
        key = (id(source), name, "derived")
        done, rows = self._derived.get(key, (0, None))
        n = len(values)
        if rows is None or done > n:  # new, or a different, shorter series under the same key
            done, rows = 0, margin_quantiles(values[:0])
        if n > done:
            rows = np.concatenate([rows, margin_quantiles(values[done:n])])
            self._derived[key] = (n, rows)
        return rows

    @staticmethod
    def _transform(spec: PlotSpec, steps, name: str, values, start: int = 0):
        """(values[start:] as drawn, whether round-off values were dropped) of one series."""
        out = np.asarray(values[start:], dtype=np.float64)
        dropped = False
        if name in spec.extra.get("round_off", ()):
            with np.errstate(invalid="ignore"):
                small = out < ROUND_OFF  # NaN compares False
            dropped = bool(small.any())
            out = np.where(small, np.nan, out)
        if name in spec.extra.get("per_step", ()) and steps is not None:
            index = np.arange(start, start + len(out))
            known = (index >= 1) & (index < len(steps))  # record 0 has no interval before it
            gaps = np.full(len(out), np.nan)
            gaps[known] = steps[index[known]] - steps[index[known] - 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                out = out / np.where(gaps > 0, gaps, np.nan)
        return out, dropped

    def _drawable(self, source, name: str, values) -> bool:
        """Whether a series has a finite value yet: a curve that cannot exist (the angle to the
        max-margin direction of a network) gets no curve and no legend entry."""
        key = (id(source), name)
        if key not in self._has_values and values is not None and np.isfinite(values).any():
            self._has_values.add(key)
        return key in self._has_values
