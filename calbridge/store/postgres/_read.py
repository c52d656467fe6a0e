"""The PostgreSQL store's read side: events by id, series and dirty flags, the two views, status and
quarantine (the same queries as ``calbridge.store._read``, in PostgreSQL's dialect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence

import attrs

from ...model import Event, EventKey, Kind, Window
from .._read import _series_reaches, status_rows
from .._schema import decode_event, overlap_args, state_from_json, ts
from ..base import CalendarStatus, RoundStart
from . import _leases, _push
from ._schema import Conn, by_ids, get_state
from ._visible import UNSHADOWED

_OVERLAP = "start_utc < ${} AND (end_utc > ${} OR start_utc = ${})"


async def get_events(conn: Conn, account: str, calendar_id: str, ids: Sequence[str]) -> dict[str, Event]:
    rows = await conn.fetch(by_ids("events", "o.id, o.json"), account, calendar_id, list(ids))
    return {r[0]: decode_event(r[1]) for r in rows}


async def exceptions_of(conn: Conn, account: str, calendar_id: str, series_ids: Sequence[str]) -> list[Event]:
    rows = await conn.fetch(
        "SELECT json FROM events WHERE account = $1 AND calendar_id = $2 AND series_id = ANY($3::text[])"
        " AND kind = 'exception' ORDER BY id",
        account,
        calendar_id,
        sorted(set(series_ids)),
    )
    return [decode_event(r[0]) for r in rows]


async def dirty_series(conn: Conn, account: str, calendar_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT series_id FROM dirty_series WHERE account = $1 AND calendar_id = $2 ORDER BY series_id",
        account,
        calendar_id,
    )
    return [r[0] for r in rows]


async def round_start(conn: Conn, account: str, calendar_id: str) -> RoundStart:
    async with conn.transaction(isolation="repeatable_read", readonly=True):  # one snapshot
        state = await get_state(conn, account, calendar_id)
        dirty = await dirty_series(conn, account, calendar_id)
    return RoundStart(state=state, dirty=tuple(dirty))


async def series_ids(conn: Conn, account: str, calendar_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM events WHERE account = $1 AND calendar_id = $2 AND kind = 'series' AND status != 'cancelled'"
        " ORDER BY id",
        account,
        calendar_id,
    )
    return [r[0] for r in rows]


def view_sql(
    account: str | None, calendar_id: str | None, window: Window | None, expand: bool, include_cancelled: bool
) -> tuple[str, list[object], bool]:
    """The SQL of a view, its arguments, and whether series rows must be checked against the window."""
    where: list[str] = []
    args: list[object] = []
    for column, value in (("account", account), ("calendar_id", calendar_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if not include_cancelled:
        where.append("status != 'cancelled'")
    common = " AND ".join(where) or "TRUE"
    n = len(args)
    if not expand:
        sql = f"SELECT json FROM events WHERE kind IN ('single', 'series', 'exception') AND {common}"
        if window is not None:
            over = _OVERLAP.format(n + 2, n + 3, n + 4)
            sql += f" AND CASE WHEN kind = 'series' THEN start_utc < ${n + 1} ELSE {over} END"
            args += [ts(window.end), *overlap_args(window)]
        return sql + " ORDER BY start_utc, id, account, calendar_id", args, window is not None
    overlap = "TRUE" if window is None else _OVERLAP.format(n + 1, n + 2, n + 3)
    if window is not None:
        args += list(overlap_args(window))
    # A stored exception (or synced occurrence) takes its slot from the expanded occurrence, once.
    cols = "json, start_utc, id, account, calendar_id"
    sql = (
        f"SELECT {cols} FROM events WHERE kind IN ('single', 'exception', 'occurrence') AND {common} AND {overlap}"
        f" UNION ALL SELECT {cols} FROM occurrences AS o WHERE {common} AND {overlap} AND {UNSHADOWED}"
        " ORDER BY 2, 3, 4, 5"
    )
    return sql, args, False


def _keep(events: list[Event], window: Window | None) -> list[Event]:
    if window is None:
        return events
    # A series overlaps the range unless its rule ended before it (few rows: checked here).
    return [e for e in events if e.kind is not Kind.SERIES or _series_reaches(e, window.start)]


async def query_batches(
    conn: Conn,
    account: str | None,
    calendar_id: str | None,
    window: Window | None,
    expand: bool,
    include_cancelled: bool,
    batch: int,
) -> AsyncIterator[list[Event]]:
    """The view in order, ``batch`` rows at a time, read through a server-side cursor (one snapshot)."""
    sql, args, check = view_sql(account, calendar_id, window, expand, include_cancelled)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(sql, *args)
        while rows := await cursor.fetch(batch):
            events = _keep([decode_event(r[0]) for r in rows], window if check else None)
            if events:
                yield events


async def status(conn: Conn) -> list[CalendarStatus]:
    async def counts(table: str) -> dict[tuple[str, str], int]:
        rows = await conn.fetch(f"SELECT account, calendar_id, count(*) FROM {table} GROUP BY account, calendar_id")
        return {(r[0], r[1]): r[2] for r in rows}

    async with conn.transaction(isolation="repeatable_read", readonly=True):  # one snapshot for every count
        events = await counts("events WHERE kind != 'occurrence'")
        quarantine = await counts("quarantine")
        occurrences = await counts("events WHERE kind = 'occurrence'")
        for (acct, cal), n in (await counts(f"occurrences AS o WHERE {UNSHADOWED}")).items():
            occurrences[acct, cal] = occurrences.get((acct, cal), 0) + n
        states = {
            (r[0], r[1]): state_from_json(r[0], r[1], r[2])
            for r in await conn.fetch("SELECT account, calendar_id, state FROM calendar_state")
        }
        results = {
            (r[0], r[1]): tuple(r[2:])
            for r in await conn.fetch(
                "SELECT account, calendar_id, last_success, last_error, last_error_at, failures, next_attempt,"
                " coerced FROM calendar_status"
            )
        }
        pushes = await _push.push_states(conn)
        held = await _leases.holders(conn)
    rows = status_rows(states, results, pushes, events=events, occurrences=occurrences, quarantine=quarantine)
    return [_with_holder(r, held.get((r.account, r.calendar_id))) for r in rows]


def _with_holder(row: CalendarStatus, held: tuple[str, dt.datetime] | None) -> CalendarStatus:
    return row if held is None else attrs.evolve(row, holder=held[0], lease_expires=held[1])


async def quarantined(conn: Conn, account: str | None) -> list[tuple[EventKey, str]]:
    sql = "SELECT account, calendar_id, qkey, error FROM quarantine"
    if account is not None:
        rows = await conn.fetch(sql + " WHERE account = $1 ORDER BY 1, 2, 3", account)
    else:
        rows = await conn.fetch(sql + " ORDER BY 1, 2, 3")
    return [(EventKey(account=r[0], calendar_id=r[1], id=r[2]), r[3]) for r in rows]
