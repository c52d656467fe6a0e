"""The normalized event model: frozen, slotted, keyword-only values every provider produces.

Instants are aware UTC datetimes to the second; all-day times are dates with an exclusive end.
Wire formats (provider payloads, the exported JSON) live elsewhere: see ``export.py`` and each
provider's ``_convert.py``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import TypeAlias

import attrs

UTC = dt.UTC


class Kind(enum.StrEnum):
    """What an event row is: a single, a series master, a stored exception or an expanded occurrence."""

    SINGLE = "single"
    SERIES = "series"
    EXCEPTION = "exception"
    OCCURRENCE = "occurrence"


class Status(enum.StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Response(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"
    NEEDS_ACTION = "needs_action"
    NONE = "none"


class ShowAs(enum.StrEnum):
    BUSY = "busy"
    FREE = "free"
    TENTATIVE = "tentative"
    OOF = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"
    UNKNOWN = "unknown"


class Visibility(enum.StrEnum):
    DEFAULT = "default"
    PUBLIC = "public"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


def _utc_second(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or (value.tzinfo is UTC and not value.microsecond):
        return value
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (calbridge instants are aware)")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
        if not value.microsecond:
            return value
    # The constructor, not replace(microsecond=0): replace costs 0.6 µs a call on CPython 3.11.
    return dt.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second, 0, UTC)


def _utc_second_required(value: dt.datetime) -> dt.datetime:
    out = _utc_second(value)
    assert out is not None
    return out


@attrs.frozen(kw_only=True)
class When:
    """A point in time: either an all-day ``date`` or a UTC ``instant`` with the IANA zone it was set in.

    Build with :meth:`at` or :meth:`on`; exactly one of ``date`` and ``instant`` is set.
    """

    date: dt.date | None = None
    instant: dt.datetime | None = None  # made UTC to the second on construction
    timezone: str | None = None

    def __attrs_post_init__(self) -> None:
        # Conversion and checks inline (no converter call): a page builds two or three of these per event.
        instant = self.instant
        if instant is not None and (instant.tzinfo is not UTC or instant.microsecond):
            object.__setattr__(self, "instant", _utc_second(instant))
        if (self.date is None) == (instant is None):
            raise ValueError("When needs exactly one of date and instant")
        if instant is None and self.timezone is not None:
            raise ValueError("an all-day When carries no timezone")

    @classmethod
    def at(cls, instant: dt.datetime, timezone: str | None = None) -> When:
        return cls(instant=instant, timezone=timezone)

    @classmethod
    def on(cls, date: dt.date) -> When:
        return cls(date=date)

    @property
    def all_day(self) -> bool:
        return self.date is not None

    def utc(self) -> dt.datetime:
        """The UTC instant used for overlap and sorting (an all-day date is its midnight UTC)."""
        if self.instant is not None:
            return self.instant
        assert self.date is not None
        return dt.datetime(self.date.year, self.date.month, self.date.day, tzinfo=UTC)

    # Written by hand (attrs sees them and generates no repr; eq and hash stay attrs'): one short
    # line instead of three keyword fields, each a datetime repr.
    def __str__(self) -> str:
        if self.instant is None:
            return str(self.date)
        text = self.instant.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{text} {self.timezone}" if self.timezone else text

    def __repr__(self) -> str:
        return f"When({self})"


@attrs.frozen(kw_only=True)
class Person:
    email: str | None = None
    name: str | None = None
    id: str | None = None


@attrs.frozen(kw_only=True)
class Attendee:
    email: str | None = None
    name: str | None = None
    id: str | None = None
    response: Response = Response.NONE
    optional: bool = False
    organizer: bool = False
    resource: bool = False
    is_self: bool = False  # exported as ``self``: the account's own identity (attrs' __init__ takes ``self``)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return value if type(value) is tuple else tuple(value)


def _attendee_tuple(value: Iterable[Attendee]) -> tuple[Attendee, ...]:
    return value if type(value) is tuple else tuple(value)


@attrs.frozen(kw_only=True)
class EventKey:
    """Where an event lives in the mirror: account, calendar and the provider's event id."""

    account: str
    calendar_id: str
    id: str


@attrs.frozen(kw_only=True)
class Event:
    """One normalized event, series master, exception or occurrence.

    ``series_id`` and ``original_start`` are set for exceptions and occurrences; together they
    identify the slot across providers.
    """

    provider: str
    account: str
    calendar_id: str
    id: str
    kind: Kind
    start: When
    end: When
    status: Status = Status.CONFIRMED
    series_id: str | None = None
    original_start: When | None = None
    title: str | None = None
    description: str | None = None
    location: str | None = None
    recurrence: tuple[str, ...] = ()  # any iterable of lines; kept as a tuple
    organizer: Person | None = None
    attendees: tuple[Attendee, ...] = ()  # any iterable; kept as a tuple
    attendees_omitted: bool = False  # the provider sent part of the list (Google attendeesOmitted)
    show_as: ShowAs = ShowAs.UNKNOWN
    visibility: Visibility = Visibility.DEFAULT
    meeting_url: str | None = None
    html_link: str | None = None
    created: dt.datetime | None = None  # made UTC to the second on construction
    updated: dt.datetime | None = None  # made UTC to the second on construction
    etag: str | None = None
    ical_uid: str | None = None

    def __attrs_post_init__(self) -> None:
        # Conversions inline, each skipped when the value already has its final form (the usual case):
        # normalizing a page builds thousands of these, and a converter is a function call per field.
        if type(self.recurrence) is not tuple:
            object.__setattr__(self, "recurrence", _str_tuple(self.recurrence))
        if type(self.attendees) is not tuple:
            object.__setattr__(self, "attendees", _attendee_tuple(self.attendees))
        created = self.created
        if created is not None and (created.tzinfo is not UTC or created.microsecond):
            object.__setattr__(self, "created", _utc_second(created))
        updated = self.updated
        if updated is not None and (updated.tzinfo is not UTC or updated.microsecond):
            object.__setattr__(self, "updated", _utc_second(updated))
        if not self.id:
            raise ValueError("an event needs an id")
        start = self.start.instant
        end = self.end.instant
        if start is not None and end is not None:
            if end < start:
                raise ValueError(f"event {self.id}: ends before it starts")
        elif (start is None) != (end is None):
            raise ValueError(f"event {self.id}: start and end mix all-day and timed")
        elif self.end.utc() < self.start.utc():
            raise ValueError(f"event {self.id}: ends before it starts")

    @property
    def key(self) -> EventKey:
        return EventKey(account=self.account, calendar_id=self.calendar_id, id=self.id)

    def __str__(self) -> str:
        series = f" of {self.series_id}" if self.series_id else ""
        flag = " [cancelled]" if self.status is Status.CANCELLED else ""
        return f"{self.title or '(no title)'!r} {self.start} – {self.end} ({self.kind.value}{series}){flag}"

    def __repr__(self) -> str:
        return f"Event({self.account}/{self.calendar_id}/{self.id}: {self})"


@attrs.frozen(kw_only=True)
class Upsert:
    """The provider holds this event now (created or changed).

    ``created`` is filled in by the store on what it publishes: ``True`` when the key was not in
    the mirror's views before, ``False`` when it replaced what the key held; ``None`` (unknown) on
    what a plugin yields.
    """

    event: Event
    created: bool | None = None


@attrs.frozen(kw_only=True)
class Delete:
    """The provider no longer holds this event; deleting a series removes its exceptions and occurrences.

    ``previous`` is filled in by the store on what it publishes: the row the key held (its kind,
    series, title and times); a plugin yields a bare ``Delete(key=...)``.
    """

    key: EventKey
    previous: Event | None = None

    @property
    def kind(self) -> Kind | None:
        """The kind of the row deleted, where known."""
        return None if self.previous is None else self.previous.kind


Change: TypeAlias = Upsert | Delete


@attrs.frozen(kw_only=True)
class Calendar:
    """A calendar an account can see."""

    id: str
    name: str | None = None
    primary: bool = False
    timezone: str | None = None
    access: str | None = None


@attrs.frozen(kw_only=True)
class Window:
    """A half-open UTC interval [start, end)."""

    start: dt.datetime = attrs.field(converter=_utc_second_required)
    end: dt.datetime = attrs.field(converter=_utc_second_required)

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("window ends before it starts")

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        """Half-open overlap; a zero-length event at ``start`` counts as inside."""
        if start == end:
            return self.start <= start < self.end
        return start < self.end and end > self.start

    def split(self, span: dt.timedelta) -> list[Window]:
        """Consecutive sub-windows no longer than ``span`` that tile this one exactly."""
        out: list[Window] = []
        cursor = self.start
        while cursor < self.end:
            nxt = min(cursor + span, self.end)
            out.append(Window(start=cursor, end=nxt))
            cursor = nxt
        return out
