"""Values a sync run produces: per-calendar results, the run's report, published change batches."""

from __future__ import annotations

import datetime as dt

import attrs

from .model import Change


@attrs.frozen(kw_only=True)
class ChangeBatch:
    """Changes committed together for one calendar, published after the commit."""

    account: str
    calendar_id: str
    changes: tuple[Change, ...]


@attrs.define(kw_only=True)
class CalendarResult:
    """How one calendar's round went."""

    account: str
    calendar_id: str
    error: str | None = None
    full: bool = False
    expired: bool = False
    pages: int = 0
    upserts: int = 0
    deletes: int = 0
    occurrences: int = 0
    quarantined: int = 0
    sweep_held: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.sweep_held is None


@attrs.define(kw_only=True)
class SyncReport:
    """The outcome of :meth:`SyncEngine.sync`: one result per calendar."""

    started: dt.datetime
    finished: dt.datetime | None = None
    calendars: list[CalendarResult] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.calendars)

    @property
    def failures(self) -> list[CalendarResult]:
        return [c for c in self.calendars if not c.ok]
