"""Values a sync run produces: per-calendar results, the run's report, published change batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import attrs

from .model import Change, Delete, Kind


@attrs.frozen(kw_only=True)
class ChangeBatch:
    """Changes committed together for one calendar, published after the commit.

    Each key appears at most once in a batch. ``last`` marks the batch that ends a round which
    changed something (it carries no changes): the calendar's published views are consistent then.
    """

    account: str
    calendar_id: str
    changes: tuple[Change, ...]
    last: bool = False


@attrs.define(kw_only=True)
class CalendarResult:
    """How one calendar's round went."""

    account: str
    calendar_id: str
    error: str | None = None
    full: bool = False
    expired: bool = False
    pages: int = 0
    upserts: int = 0  # published upserts of singles, series and exceptions
    deletes: int = 0  # published deletes of singles, series and exceptions
    occurrences: int = 0  # published upserts of occurrences, whoever produced them
    occurrences_deleted: int = 0
    quarantined: int = 0
    # non-essential values replaced with the schema's neutral value, by field (see toolkit.Coercions)
    coerced: dict[str, int] = attrs.field(factory=dict)
    sweep_held: tuple[int, int] | None = None
    retry_at: dt.datetime | None = None  # rate-limited: when the provider said it may be asked again
    stopped: bool = False  # a stop came between pages: committed pages stay, the next round resumes
    held_by: str | None = None  # a store shared by workers: another live worker holds it; not synced here
    lease_lost: bool = False  # its lease was taken over mid-round: the write refused, nothing of it written

    @property
    def ok(self) -> bool:
        return self.error is None and self.sweep_held is None

    @property
    def coerced_total(self) -> int:
        return sum(self.coerced.values())

    def add_coerced(self, counts: Mapping[str, int]) -> list[str]:
        """Add a page's or an expansion's coerced counts; returns the fields first coerced in this round."""
        new = [field for field in counts if field not in self.coerced]
        for field, n in counts.items():
            self.coerced[field] = self.coerced.get(field, 0) + n
        return new

    def count(self, published: Sequence[Change]) -> None:
        """Add what was published to the counts (the summary and ``status`` report exactly this)."""
        for change in published:
            if isinstance(change, Delete):
                if change.kind is Kind.OCCURRENCE:
                    self.occurrences_deleted += 1
                else:
                    self.deletes += 1
            elif change.event.kind is Kind.OCCURRENCE:
                self.occurrences += 1
            else:
                self.upserts += 1


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
