"""What the store conformance suite is made of: the opener a store implementation gives it, a runner
that opens the store for one test, and builders for the events, states and keys the tests write."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager

from .._run import ChangeBatch
from ..cursor import Cursor
from ..model import Change, Delete, Event, EventKey, Kind, Status, Upsert, When, Window
from ..store.base import CalendarState, MirrorReader, Store
from .replay import Replica

StoreOpener = Callable[[], AbstractAsyncContextManager[Store]]
"""Opens a new handle on the test's one store (a fresh, empty file or database the test owns): the
first call creates it, each later call is another connection to the same store (a reopen, a second
process)."""

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
A, CAL = "acct", "cal"


def with_store(open_store: StoreOpener, case: Callable[[Store], Awaitable[None]]) -> None:
    """Run ``case`` on a freshly opened store, on its own event loop (the suite's tests are synchronous)."""

    async def main() -> None:
        async with open_store() as store:
            await case(store)

    asyncio.run(main())


def ev(
    id: str,
    start: dt.datetime = T0,
    *,
    length: dt.timedelta = HOUR,
    kind: Kind = Kind.SINGLE,
    series_id: str | None = None,
    orig: dt.datetime | None = None,
    status: Status = Status.CONFIRMED,
    title: str = "t",
    cal: str = CAL,
    account: str = A,
) -> Event:
    """A timed event in UTC (a series, exception or synced occurrence by ``kind``)."""
    return Event(
        provider="fake",
        account=account,
        calendar_id=cal,
        id=id,
        kind=kind,
        start=When.at(start, "UTC"),
        end=When.at(start + length, "UTC"),
        status=status,
        series_id=series_id,
        original_start=None if orig is None else When.at(orig, "UTC"),
        title=title,
    )


def day_event(id: str, first: dt.date, days: int = 1) -> Event:
    """An all-day single over ``days`` days (the end date exclusive)."""
    return Event(
        provider="fake",
        account=A,
        calendar_id=CAL,
        id=id,
        kind=Kind.SINGLE,
        start=When.on(first),
        end=When.on(first + dt.timedelta(days=days)),
    )


def series(id: str, start: dt.datetime = T0, **kw: object) -> Event:
    return ev(id, start, kind=Kind.SERIES, **kw)  # type: ignore[arg-type]


def exc(
    series_id: str, slot: dt.datetime, start: dt.datetime | None = None, *, id: str | None = None, **kw: object
) -> Event:
    """An exception of ``series_id`` taking the occurrence at ``slot`` (at ``start``, default the slot)."""
    eid = id or f"{series_id}_x{slot:%Y%m%dT%H%M%S}"
    return ev(eid, start or slot, kind=Kind.EXCEPTION, series_id=series_id, orig=slot, **kw)  # type: ignore[arg-type]


def occ(series_id: str, slot: dt.datetime, **kw: object) -> Event:
    """The expanded occurrence of ``series_id`` at ``slot``, with the id an expansion gives it."""
    return ev(occ_id(series_id, slot), slot, kind=Kind.OCCURRENCE, series_id=series_id, orig=slot, **kw)  # type: ignore[arg-type]


def occ_id(series_id: str, slot: dt.datetime) -> str:
    return f"{series_id}_{slot:%Y%m%dT%H%M%S}"


def state(mark: int = 1, *, cal: str = CAL, **kw: object) -> CalendarState:
    return CalendarState(account=A, calendar_id=cal, mark=mark, **kw)  # type: ignore[arg-type]


def cursor(n: int) -> Cursor:
    return Cursor(scheme="conformance", version=1, state={"page": n, "token": f"t{n}"})


def key(id: str, cal: str = CAL) -> EventKey:
    return EventKey(account=A, calendar_id=cal, id=id)


def ups(*events: Event) -> list[Change]:
    return [Upsert(event=e) for e in events]


def dels(*ids: str) -> list[Change]:
    return [Delete(key=key(i)) for i in ids]


def ids(events: Iterable[Event]) -> list[str]:
    return [e.id for e in events]


def by_key(changes: Sequence[Change]) -> dict[str, Change]:
    """Published changes by id, asserting each id appears once (the order inside a write is free)."""
    out: dict[str, Change] = {}
    for c in changes:
        i = c.key.id if isinstance(c, Delete) else c.event.id
        assert i not in out, f"{i} changed twice in one write: {changes}"
        out[i] = c
    return out


def window(days: float, start: dt.datetime = T0) -> Window:
    return Window(start=start, end=start + days * DAY)


class Follower:
    """A consumer of what the store's writes return, as the engine publishes it (one batch per write),
    checked against the store's views: applied by key, the batches must reproduce both."""

    def __init__(self, store: MirrorReader) -> None:
        self.store = store
        self.replica = Replica()

    async def apply(self, changes: Awaitable[list[Change]], *, cal: str = CAL) -> list[Change]:
        applied = await changes
        self.replica.apply([ChangeBatch(account=A, calendar_id=cal, changes=tuple(applied))])
        problems = await self.replica.diff(self.store)
        assert not problems, "the published changes do not reproduce the store:\n" + "\n".join(problems[:20])
        # ``status`` counts what the stream's views hold: events (singles, series, exceptions), occurrences.
        held = [e.kind for k, e in self.replica.rows.items() if k.calendar_id == cal]
        for row in await self.store.status():
            if (row.account, row.calendar_id) == (A, cal):
                occurrences = sum(k is Kind.OCCURRENCE for k in held)
                assert (row.events, row.occurrences) == (len(held) - occurrences, occurrences)
        return applied
