"""How long a run has left, as the window's status bar and the command line's progress line say
it (Qt-free: the headless commands import it)."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """A time left, as precise as an estimate deserves: 8 s, 40 s, 3 min, 1 h 20 min."""
    if seconds < 1:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def time_left(total: int, step: int, start: int, elapsed: float) -> str | None:
    """About how long until step ``total``, at the rate of the steps taken since ``start`` in
    ``elapsed`` seconds; None when there is no telling (no total, nothing taken yet, done)."""
    taken = step - start
    if not total or total <= step or taken <= 0 or elapsed <= 0:
        return None
    return duration((total - step) * elapsed / taken)
