"""The state of a run, one type for core, the CLI and the window.

A str enum: a status compares equal to its text ("finished"), so run files, JSON output and
older code that holds plain strings read the same, and ``str(status)`` is the text itself.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    IDLE = "idle"  # the window: no run yet
    READY = "ready"  # a run set up that has taken no step
    RUNNING = "running"
    PAUSED = "paused"  # the window's run, waiting for Run or Step
    FINISHED = "finished"  # took its steps
    STOPPED = "stopped"  # ended by the user (Stop, Ctrl+C) before its steps
    DIVERGED = "diverged"  # a non-finite loss or parameter ended it
    FAILED = "failed"  # an error ended it (the reason says which)
    UNKNOWN = "unknown"  # a file that names no status, or one this version does not know

    @property
    def ended(self) -> bool:
        """It will take no more steps."""
        return self in ENDED

    @property
    def going(self) -> bool:
        """Running or paused: a run under way."""
        return self in GOING

    @property
    def settled(self) -> bool:
        """It takes no more steps as far as anyone knows: neither set up, running nor paused (a
        file's unknown status counts as settled)."""
        return self not in GOING and self != RunStatus.READY

    @classmethod
    def of(cls, text: str) -> "RunStatus":
        """The status a file names; text this version does not know is UNKNOWN."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


ENDED = frozenset({RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED, RunStatus.FAILED})
GOING = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})

__all__ = ["RunStatus", "ENDED", "GOING"]
