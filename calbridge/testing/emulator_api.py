"""The one Python API every shipped emulator offers tests (and ``calbridge emulate``'s control endpoint).

Conventions, the same for every emulator:

- instants are aware datetimes (a ``date`` makes an all-day event, its ``end`` exclusive), written in
  ``time_zone`` (IANA, default UTC);
- ``calendar`` is a calendar id from :meth:`EmulatorAPI.new_calendar` (``None``: the emulator's
  default calendar, the one its ``account_config`` reads);
- ids are the provider's event ids, as the mirror will hold them;
- ``rrule`` is one bare RRULE (``FREQ=WEEKLY;COUNT=10``), written in the provider's native form;
- every method is thread-safe: the emulator serves on its own thread and loop while a test calls it.

An emulator without recurring events (the example plugin's) implements :class:`EmulatorAPI`; the
built-in ones implement :class:`SeriesEmulatorAPI`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

Instant = dt.datetime | dt.date


@attrs.frozen(kw_only=True)
class Answered:
    """One request an emulator answered: ``identity`` marks the token (and identity discovery)
    endpoints, the rest are API requests; ``query`` is the URL's query (which cursor a list carried)."""

    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    identity: bool = False


@runtime_checkable
class RequestLog(Protocol):
    """An emulator's log of what it answered, for tests that assert request counts (a shape, not a time)."""

    def request_paths(self) -> list[str]:
        """The paths of the API requests answered so far, in order; token endpoints left out."""
        ...

    def answered(self) -> list[Answered]:
        """Every request answered so far, in order, token endpoints included (``identity``)."""
        ...


@runtime_checkable
class EmulatorAPI(Protocol):
    """Change an emulator's data while it serves."""

    def new_calendar(self, name: str) -> str:
        """A fresh, empty calendar; returns its id."""
        ...

    def add_event(
        self, title: str, start: Instant, end: Instant, *, calendar: str | None = None, rrule: str | None = None,
        time_zone: str = "UTC",
    ) -> str:  # fmt: skip
        """A single (or, with ``rrule``, a series); returns its id."""
        ...

    def update_event(
        self, event_id: str, /, *, calendar: str | None = None, title: str | None = None, start: Instant | None = None,
        end: Instant | None = None,
    ) -> None:  # fmt: skip
        """Change the title or times of a single or a whole series (None: unchanged)."""
        ...

    def delete_event(self, event_id: str, /, *, calendar: str | None = None) -> None:
        """Delete a single, or a series with its exceptions."""
        ...

    def expire_cursors(self) -> None:
        """Every cursor (sync token, delta link, page token) issued so far is dead."""
        ...

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        """The next ``count`` API requests (never token endpoints) answer ``status`` in the provider's
        error form; a 429 carries the provider's retry hint of ``retry_after`` seconds."""
        ...

    def clear_faults(self) -> None:
        """Drop every pending :meth:`fail_next`."""
        ...

    def seed(self, n_events: int, n_series: int = 0, *, calendar: str | None = None) -> Sequence[str]:
        """Write ``n_events`` singles and ``n_series`` series (a few with an exception) around now."""
        ...


@runtime_checkable
class SeriesEmulatorAPI(EmulatorAPI, Protocol):
    """:class:`EmulatorAPI` plus one-occurrence changes of a series."""

    def cancel_occurrence(self, series_id: str, original_start: Instant, *, calendar: str | None = None) -> str:
        """Cancel the occurrence that starts (unmoved) at ``original_start``; returns its id."""
        ...

    def move_occurrence(
        self, series_id: str, original_start: Instant, start: Instant, end: Instant, *, calendar: str | None = None
    ) -> str:
        """Make that occurrence an exception at a new time; returns its id."""
        ...


@attrs.frozen(kw_only=True)
class SeedItem:
    """One event :func:`seed_plan` asks an emulator to write."""

    title: str
    start: dt.datetime
    end: dt.datetime
    rrule: str | None = None
    cancel: dt.datetime | None = None  # an occurrence to cancel (series only)
    move: dt.datetime | None = None  # an occurrence to move an hour later (series only)


def seed_plan(n_events: int, n_series: int, *, now: dt.datetime | None = None) -> list[SeedItem]:
    """The same deterministic calendar for every emulator: singles spread over [now − 20 d, now + 80 d),
    daily and weekly series (``COUNT``) from the last few days, every third with a cancelled and a
    moved occurrence."""
    if n_events < 0 or n_series < 0:
        raise ValueError("seed counts must be >= 0")
    base = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    day = base.replace(hour=0)
    out: list[SeedItem] = []
    for i in range(n_events):
        start = day + dt.timedelta(days=(i * 7) % 100 - 20, hours=8 + i % 9)
        out.append(SeedItem(title=f"event {i}", start=start, end=start + dt.timedelta(minutes=30 + 15 * (i % 4))))
    for i in range(n_series):
        start = day + dt.timedelta(days=-(i % 5), hours=7 + i % 10)
        daily = i % 2 == 0
        rrule = f"FREQ={'DAILY' if daily else 'WEEKLY'};COUNT={10 + i % 7}"
        step = dt.timedelta(days=1 if daily else 7)
        edits = i % 3 == 0
        out.append(SeedItem(title=f"series {i}", start=start, end=start + dt.timedelta(hours=1), rrule=rrule,
                            cancel=start + 2 * step if edits else None,
                            move=start + 3 * step if edits else None))  # fmt: skip
    return out


def apply_seed(api: EmulatorAPI, items: Sequence[SeedItem], *, calendar: str | None = None) -> list[str]:
    """Write :func:`seed_plan`'s items through ``api``; returns the ids of what it created."""
    ids: list[str] = []
    for item in items:
        eid = api.add_event(item.title, item.start, item.end, calendar=calendar, rrule=item.rrule)
        ids.append(eid)
        if item.rrule is None or not isinstance(api, SeriesEmulatorAPI):
            continue
        if item.cancel is not None:
            api.cancel_occurrence(eid, item.cancel, calendar=calendar)
        if item.move is not None:
            later = item.move + dt.timedelta(hours=1)
            api.move_occurrence(eid, item.move, later, later + (item.end - item.start), calendar=calendar)
    return ids
