"""How a run is named and its state said, in one place: the title a run is listed under (run
list, legend, comparison table), the status bar's state, and the command line's result line."""

from __future__ import annotations

from margin_explorer.core.run_status import RunStatus


def run_title(session, live: bool = False) -> str:
    """The title of ``session`` (app/session.py): its name; a family reopened from its members'
    files says so, "NAME (family of S)". The window's own run keeps its name alone."""
    if live:
        return session.name or "live run"
    return session.name if session.size == 1 else f"{session.name} (family of {session.size})"


def status_text(status: RunStatus, events=()) -> str:
    """A run's state as the status bar says it; with the latest health event (core/health.py),
    a run that collapsed or got stuck says so beside its state."""
    if not events:
        return str(status)
    return f"{status}, {events[-1]['kind']} at step {events[-1]['step']:,}"


def result_line(where: str, status, step: int, reason: str = "", note: str = "", about: str = "") -> str:
    """The line a headless run ends with: "OUT: finished at step 5000", what the run is
    (``about``) before its state, its reason and a note in parentheses when there are."""
    return (f"{where}: {about + ', ' if about else ''}{status} at step {step}" + (f" ({reason})" if reason else "")
            + (f" ({note})" if note else ""))
