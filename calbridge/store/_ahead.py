"""Occurrences expanded ahead of the shown window, and how far each series' expansion reaches.

The engine expands past the window's end (the slack, ``calbridge.planner.plan_expansion``), so a
day's move costs no request until a series' horizon is reached. What lies outside the window the
views show is kept in ``occurrences_ahead``: in no view and never published, until
:func:`reveal` moves the rows the window now overlaps into ``occurrences`` (published then, like
any expansion). ``series_horizon`` records, per series, how far its stored occurrences answer for.
Functions run inside the caller's transaction (``_write``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence

from ..model import UTC, Event, Window
from ._schema import COLS, IN_IDS, OVERLAP, Row, overlap_args, ts

_SET = ", ".join(f"{c} = excluded.{c}" for c in COLS.split(", ")[3:])
_UPSERT = (
    f"INSERT INTO occurrences_ahead ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}"
)
_REVEAL = (
    f"INSERT INTO occurrences ({COLS}) SELECT {COLS} FROM occurrences_ahead"
    f" WHERE account = ? AND calendar_id = ? AND {IN_IDS}"
    f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}"
)
_IN_SERIES = "series_id IN (SELECT value FROM json_each(?))"


def split(
    rows: Mapping[str, tuple[Event, Row]], shown: Window | None
) -> tuple[dict[str, tuple[Event, Row]], list[Row]]:
    """(the rows ``shown`` overlaps, the rest), by the store's overlap rule (``_schema.OVERLAP``)."""
    if shown is None:
        return dict(rows), []
    end, start, _ = overlap_args(shown)
    inside: dict[str, tuple[Event, Row]] = {}
    ahead: list[Row] = []
    for i, (event, row) in rows.items():
        s, e = row[6], row[7]  # start_utc, end_utc as encode_row computed them
        if s < end and (e > start or s == start):
            inside[i] = (event, row)
        else:
            ahead.append(row)
    return inside, ahead


def replace(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    series_ids: Sequence[str],
    window: Window,
    ahead: Sequence[Row],
    shown_ids: Collection[str],
) -> None:
    """The hidden rows of ``series_ids`` from ``window.start`` on (and any copy of a row now shown)
    give way to ``ahead``."""
    since = ts(window.start)
    conn.execute(
        f"DELETE FROM occurrences_ahead WHERE account = ? AND calendar_id = ? AND {_IN_SERIES}"
        " AND (end_utc > ? OR start_utc >= ?)",
        (account, calendar_id, json.dumps(list(series_ids)), since, since),
    )
    if shown_ids:
        conn.execute(
            f"DELETE FROM occurrences_ahead WHERE account = ? AND calendar_id = ? AND {IN_IDS}",
            (account, calendar_id, json.dumps(list(shown_ids))),
        )
    conn.executemany(_UPSERT, ahead)


def record(
    conn: sqlite3.Connection, account: str, calendar_id: str, series_ids: Sequence[str], horizon: dt.datetime | None
) -> None:
    """``series_ids``' stored occurrences answer for everything up to ``horizon`` now."""
    if horizon is None:
        return
    conn.executemany(
        "INSERT INTO series_horizon (account, calendar_id, series_id, horizon) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account, calendar_id, series_id) DO UPDATE SET horizon = excluded.horizon",
        [(account, calendar_id, sid, ts(horizon)) for sid in series_ids],
    )


def horizons(conn: sqlite3.Connection, account: str, calendar_id: str) -> dict[str, dt.datetime]:
    rows = conn.execute(
        "SELECT series_id, horizon FROM series_horizon WHERE account = ? AND calendar_id = ?", (account, calendar_id)
    )
    return {r[0]: dt.datetime.fromtimestamp(r[1], UTC) for r in rows}


def to_reveal(
    conn: sqlite3.Connection, account: str, calendar_id: str, live: Sequence[str], window: Window
) -> list[str]:
    """Ids of the hidden rows of ``live`` series that ``window`` overlaps."""
    rows = conn.execute(
        f"SELECT id FROM occurrences_ahead WHERE account = ? AND calendar_id = ? AND {_IN_SERIES} AND {OVERLAP}"
        " ORDER BY start_utc, id",
        (account, calendar_id, json.dumps(list(live)), *overlap_args(window)),
    )
    return [r[0] for r in rows]


def reveal(conn: sqlite3.Connection, account: str, calendar_id: str, ids: Sequence[str]) -> None:
    """Move the hidden rows ``ids`` into ``occurrences`` (the caller's ``Diff`` publishes them)."""
    if ids:
        args = (account, calendar_id, json.dumps(list(ids)))
        conn.execute(_REVEAL, args)
        conn.execute(f"DELETE FROM occurrences_ahead WHERE account = ? AND calendar_id = ? AND {IN_IDS}", args)


def drop(conn: sqlite3.Connection, account: str, calendar_id: str, live: Sequence[str], window: Window) -> None:
    """Forget hidden rows and horizons of series not in ``live``, and hidden rows the window left."""
    args = (account, calendar_id, json.dumps(list(live)))
    since = ts(window.start)
    conn.execute(
        f"DELETE FROM occurrences_ahead WHERE account = ? AND calendar_id = ? AND (NOT {_IN_SERIES}"
        " OR (start_utc < ? AND end_utc <= ?))",
        (*args, since, since),
    )
    conn.execute(f"DELETE FROM series_horizon WHERE account = ? AND calendar_id = ? AND NOT {_IN_SERIES}", args)
