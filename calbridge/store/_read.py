"""The SQLite store's read side: events by id, series and dirty flags, the two views, status and
quarantine, secrets. Functions run on the store's worker thread (see
:class:`~calbridge.store.sqlite.SqliteStore`).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..model import Event, EventKey, Kind, Window
from ..recurrence import last_end
from ._schema import (
    IN_IDS,
    OVERLAP,
    UNSHADOWED,
    coerced_from_json,
    decode_event,
    get_state,
    overlap_args,
    parse_iso,
    state_from_json,
    transaction,
    ts,
)
from ._subscriptions import push_states
from .base import CalendarState, CalendarStatus, RoundStart


def get_events(conn: sqlite3.Connection, account: str, calendar_id: str, ids: Sequence[str]) -> dict[str, Event]:
    rows = conn.execute(
        f"SELECT id, json FROM events WHERE account = ? AND calendar_id = ? AND {IN_IDS}",
        (account, calendar_id, json.dumps(list(ids))),
    )
    return {r[0]: decode_event(r[1]) for r in rows}


def exceptions_of(conn: sqlite3.Connection, account: str, calendar_id: str, series_ids: Sequence[str]) -> list[Event]:
    # The series' own rows (events_series), sorted after: ordering by id would walk the calendar.
    rows = conn.execute(
        "SELECT e.json FROM json_each(?) AS j CROSS JOIN events AS e WHERE e.account = ? AND e.calendar_id = ?"
        " AND e.series_id = j.value AND e.kind = 'exception' ORDER BY e.id",
        (json.dumps(sorted(set(series_ids))), account, calendar_id),
    )
    return [decode_event(r[0]) for r in rows]


def dirty_series(conn: sqlite3.Connection, account: str, calendar_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT series_id FROM dirty_series WHERE account = ? AND calendar_id = ? ORDER BY series_id",
        (account, calendar_id),
    )
    return [r[0] for r in rows]


def round_start(conn: sqlite3.Connection, account: str, calendar_id: str) -> RoundStart:
    with transaction(conn, write=False):  # one snapshot: the dirty flags the saved state left
        state = get_state(conn, account, calendar_id)
        dirty = dirty_series(conn, account, calendar_id)
    return RoundStart(state=state, dirty=tuple(dirty))


def series_ids(conn: sqlite3.Connection, account: str, calendar_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM events WHERE account = ? AND calendar_id = ? AND kind = 'series' AND status != 'cancelled'"
        " ORDER BY id",
        (account, calendar_id),
    )
    return [r[0] for r in rows]


def query(
    conn: sqlite3.Connection,
    account: str | None,
    calendar_id: str | None,
    window: Window | None,
    expand: bool,
    include_cancelled: bool,
) -> list[Event]:
    """See :meth:`~calbridge.store.base.Store.query`."""
    rows = open_query(conn, account, calendar_id, window, expand, include_cancelled)
    return [e for batch in iter(lambda: fetch(rows, 1000), []) for e in batch]


class Rows:
    """An open query of a view: its cursor, and the window a series view's rules are checked against."""

    def __init__(self, cursor: sqlite3.Cursor, reaches: dt.datetime | None) -> None:
        self.cursor, self.reaches = cursor, reaches


def fetch(rows: Rows, n: int) -> list[Event]:
    """The next events of an open query, from up to ``n`` rows; [] once it is exhausted."""
    while batch := rows.cursor.fetchmany(n):
        events = [decode_event(r[0]) for r in batch]
        if rows.reaches is not None:
            # A series overlaps the range unless its rule ended before it (few rows: checked here).
            start = rows.reaches
            events = [e for e in events if e.kind is not Kind.SERIES or _series_reaches(e, start)]
        if events:
            return events
    rows.cursor.close()
    return []


def open_query(
    conn: sqlite3.Connection,
    account: str | None,
    calendar_id: str | None,
    window: Window | None,
    expand: bool,
    include_cancelled: bool,
) -> Rows:
    """Start a query of a view; :func:`fetch` reads it. Both views come in start order from an index
    (a sort of rows of the same start at most), so the first rows arrive before the last are read."""
    where: list[str] = []
    args: list[object] = []
    # An account without its calendar is no prefix of a start-ordered index: "+account" keeps SQLite
    # from choosing an (account, ...) index and sorting everything, so the rows stay in start order.
    account_term = "account" if calendar_id is not None else "+account"
    for column, value in ((account_term, account), ("calendar_id", calendar_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if not include_cancelled:
        where.append("status != 'cancelled'")
    common = " AND ".join(where) or "1"
    if not expand:
        sql = f"SELECT json FROM events WHERE kind IN ('single', 'series', 'exception') AND {common}"
        if window is not None:
            sql += f" AND CASE WHEN kind = 'series' THEN start_utc < ? ELSE {OVERLAP} END"
            args += [ts(window.end), *overlap_args(window)]
        order = " ORDER BY start_utc, id, account, calendar_id"
        return Rows(conn.execute(sql + order, args), None if window is None else window.start)
    overlap = "1" if window is None else OVERLAP
    wargs = [] if window is None else list(overlap_args(window))
    # A stored exception (or synced occurrence) takes its slot from the expanded occurrence, once,
    # at its own time; a cancelled one hides the slot unless cancelled rows are asked for.
    cols = "json, start_utc, id, account, calendar_id"
    sql = (
        f"SELECT {cols} FROM events WHERE kind IN ('single', 'exception', 'occurrence') AND {common} AND {overlap}"
        f" UNION ALL SELECT {cols} FROM occurrences AS o WHERE {common} AND {overlap} AND {UNSHADOWED}"
        " ORDER BY 2, 3, 4, 5"
    )
    return Rows(conn.execute(sql, [*args, *wargs, *args, *wargs]), None)


def _series_reaches(series: Event, start: dt.datetime) -> bool:
    try:
        end = last_end(series)
    except (ValueError, TypeError, OverflowError):
        return True  # an unreadable rule: keep it rather than hide it
    return end is None or end > start


def status(conn: sqlite3.Connection) -> list[CalendarStatus]:
    def counts(table: str) -> dict[tuple[str, str], int]:
        rows = conn.execute(f"SELECT account, calendar_id, count(*) FROM {table} GROUP BY account, calendar_id")
        return {(r[0], r[1]): r[2] for r in rows}

    def visible_occurrences() -> dict[tuple[str, str], int]:
        out = counts("events WHERE kind = 'occurrence'")
        rows = conn.execute(
            f"SELECT account, calendar_id, count(*) FROM occurrences AS o WHERE {UNSHADOWED}"
            " GROUP BY account, calendar_id"
        )
        for r in rows:
            out[r[0], r[1]] = out.get((r[0], r[1]), 0) + r[2]
        return out

    # The counts of the change stream's views: events are singles, series and exceptions; occurrences
    # every occurrence the instance view holds, expanded or carried by a sync stream (Graph).
    with transaction(conn, write=False):  # one snapshot for every count
        events, quarantine = counts("events WHERE kind != 'occurrence'"), counts("quarantine")
        occurrences = visible_occurrences()
        states = {(r[0], r[1]): state_from_json(*r) for r in conn.execute("SELECT * FROM calendar_state")}
        results = {
            (r[0], r[1]): r[2:]
            for r in conn.execute(
                "SELECT account, calendar_id, last_success, last_error, last_error_at, failures, next_attempt,"
                " coerced FROM calendar_status"
            )
        }
        pushes = push_states(conn)
    return status_rows(states, results, pushes, events=events, occurrences=occurrences, quarantine=quarantine)


Counts = dict[tuple[str, str], int]


def status_rows(
    states: dict[tuple[str, str], CalendarState],
    results: dict[tuple[str, str], tuple[Any, ...]],
    pushes: dict[tuple[str, str], str],
    *,
    events: Counts,
    occurrences: Counts,
    quarantine: Counts,
) -> list[CalendarStatus]:
    """``status`` from what either store read in one snapshot: saved states, ``calendar_status`` rows
    (last_success, last_error, last_error_at, failures, next_attempt, coerced), push states, counts."""
    out: list[CalendarStatus] = []
    for acct, cal in sorted(states.keys() | results.keys() | pushes.keys()):
        state = states.get((acct, cal))
        success, error, error_at, failures, next_attempt, coerced = results.get(
            (acct, cal), (None, None, None, 0, None, None)
        )
        sweep = None if state is None else state.sweep
        out.append(
            CalendarStatus(
                account=acct,
                calendar_id=cal,
                last_success=parse_iso(success),
                last_error=error,
                last_error_at=parse_iso(error_at),
                events=events.get((acct, cal), 0),
                occurrences=occurrences.get((acct, cal), 0),
                quarantined=quarantine.get((acct, cal), 0),
                sweep_held=bool(sweep is not None and sweep.held),
                round=None if state is None else state.round,
                sweep_pending=bool(sweep is not None and not sweep.held),
                failures=failures,
                next_attempt=parse_iso(next_attempt),
                push=pushes.get((acct, cal)),
                coerced=coerced_from_json(coerced),
            )
        )
    return out


def quarantined(conn: sqlite3.Connection, account: str | None) -> list[tuple[EventKey, str]]:
    sql = "SELECT account, calendar_id, qkey, error FROM quarantine"
    if account is not None:
        rows = conn.execute(sql + " WHERE account = ? ORDER BY 1, 2, 3", (account,))
    else:
        rows = conn.execute(sql + " ORDER BY 1, 2, 3")
    return [(EventKey(account=r[0], calendar_id=r[1], id=r[2]), r[3]) for r in rows]


def get_secret(conn: sqlite3.Connection, account: str, name: str) -> str | None:
    row = conn.execute("SELECT value FROM secrets WHERE account = ? AND name = ?", (account, name)).fetchone()
    return None if row is None else str(row[0])
