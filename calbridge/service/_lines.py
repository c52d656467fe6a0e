"""The one log line each finished round writes: the calendar, full or incremental, the counts or the error."""

from __future__ import annotations

import datetime as dt

from .._run import CalendarResult
from ._schedule import Slot


def _at(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def round_line(result: CalendarResult, slot: Slot, now: dt.datetime) -> str:
    """``acme/primary: incremental round, 1 pages; events 2 upserted, 0 deleted; occurrences 0 upserted,
    0 deleted`` — or the error with the backoff (``FAILED: …; failure 3, next attempt …``)."""
    kind = "full" if result.full else "incremental"
    head = f"{result.account}/{result.calendar_id}: {kind} round"
    if result.stopped:
        return f"{head} stopped after {result.pages} pages (committed; the next start resumes)"
    if result.error is not None:
        wait = max(int((slot.due - now).total_seconds()), 0)
        return f"{head} FAILED: {result.error}; failure {slot.failures}, next attempt {_at(slot.due)} (in {wait}s)"
    line = (
        f"{head}, {result.pages} pages; events {result.upserts} upserted, {result.deletes} deleted;"
        f" occurrences {result.occurrences} upserted, {result.occurrences_deleted} deleted"
    )
    if result.expired:
        line += " (cursor expired: full listing and sweep)"
    if result.quarantined:
        line += f", {result.quarantined} quarantined"
    if result.sweep_held is not None:
        line += f"; SWEEP HELD: it would remove {result.sweep_held[0]} of {result.sweep_held[1]} events"
    return line
