"""Occurrences expanded ahead of the shown window and each series' horizon, for the PostgreSQL store
(the rules are ``calbridge.store._ahead``'s). Functions run inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from ...model import UTC, Window
from .._schema import COLS, Row, overlap_args, ts
from ._schema import Conn

_SET = ", ".join(f"{c} = excluded.{c}" for c in COLS.split(", ")[3:])
# Rows as column arrays through unnest: one statement, one round trip, whatever the batch size.
_UNNEST = (
    "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],"
    " $9::bigint[], $10::bigint[], $11::text[]"
)


def columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """``rows`` as one list per column (what :data:`_UNNEST` takes); ``width`` columns even when empty."""
    width = len(rows[0]) if rows else 0
    return [[r[c] for r in rows] for c in range(width)]


def upsert_sql(table: str, *, with_mark: bool = False) -> str:
    """INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE into ``table`` (events take a mark, $12)."""
    cols = f"{COLS}, mark" if with_mark else COLS
    source = _UNNEST + (", $12::bigint[])" if with_mark else ")")
    mark = ", mark = excluded.mark" if with_mark else ""
    return (
        f"INSERT INTO {table} ({cols}) SELECT * FROM {source}"
        f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}{mark}"
    )


_UPSERT = upsert_sql("occurrences_ahead")
_REVEAL = (
    f"INSERT INTO occurrences ({COLS}) SELECT {COLS} FROM occurrences_ahead"
    " WHERE account = $1 AND calendar_id = $2 AND id = ANY($3::text[])"
    f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}"
)


async def upsert(conn: Conn, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
    if rows:
        await conn.execute(sql, *columns(rows))


async def replace(
    conn: Conn,
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
    await conn.execute(
        "DELETE FROM occurrences_ahead WHERE account = $1 AND calendar_id = $2 AND series_id = ANY($3::text[])"
        " AND (end_utc > $4 OR start_utc >= $4)",
        account,
        calendar_id,
        list(series_ids),
        since,
    )
    if shown_ids:
        await conn.execute(
            "DELETE FROM occurrences_ahead WHERE account = $1 AND calendar_id = $2 AND id = ANY($3::text[])",
            account,
            calendar_id,
            list(shown_ids),
        )
    await upsert(conn, _UPSERT, ahead)


async def record(
    conn: Conn, account: str, calendar_id: str, series_ids: Sequence[str], horizon: dt.datetime | None
) -> None:
    """``series_ids``' stored occurrences answer for everything up to ``horizon`` now."""
    if horizon is None or not series_ids:
        return
    await conn.execute(
        "INSERT INTO series_horizon (account, calendar_id, series_id, horizon)"
        " SELECT $1, $2, s, $4 FROM unnest($3::text[]) AS s"
        " ON CONFLICT (account, calendar_id, series_id) DO UPDATE SET horizon = excluded.horizon",
        account,
        calendar_id,
        sorted(set(series_ids)),
        ts(horizon),
    )


async def horizons(conn: Conn, account: str, calendar_id: str) -> dict[str, dt.datetime]:
    rows = await conn.fetch(
        "SELECT series_id, horizon FROM series_horizon WHERE account = $1 AND calendar_id = $2", account, calendar_id
    )
    return {r[0]: dt.datetime.fromtimestamp(r[1], UTC) for r in rows}


async def to_reveal(conn: Conn, account: str, calendar_id: str, live: Sequence[str], window: Window) -> list[str]:
    """Ids of the hidden rows of ``live`` series that ``window`` overlaps."""
    rows = await conn.fetch(
        "SELECT id FROM occurrences_ahead WHERE account = $1 AND calendar_id = $2 AND series_id = ANY($3::text[])"
        " AND start_utc < $4 AND (end_utc > $5 OR start_utc = $6) ORDER BY start_utc, id",
        account,
        calendar_id,
        list(live),
        *overlap_args(window),
    )
    return [r[0] for r in rows]


async def reveal(conn: Conn, account: str, calendar_id: str, ids: Sequence[str]) -> None:
    """Move the hidden rows ``ids`` into ``occurrences`` (the caller's ``Diff`` publishes them)."""
    if ids:
        args = (account, calendar_id, list(ids))
        await conn.execute(_REVEAL, *args)
        await conn.execute(
            "DELETE FROM occurrences_ahead WHERE account = $1 AND calendar_id = $2 AND id = ANY($3::text[])", *args
        )


async def drop(conn: Conn, account: str, calendar_id: str, live: Sequence[str], window: Window) -> None:
    """Forget hidden rows and horizons of series not in ``live``, and hidden rows the window left."""
    args = (account, calendar_id, list(live))
    await conn.execute(
        "DELETE FROM occurrences_ahead WHERE account = $1 AND calendar_id = $2 AND (NOT series_id = ANY($3::text[])"
        " OR (start_utc < $4 AND end_utc <= $4))",
        *args,
        ts(window.start),
    )
    await conn.execute(
        "DELETE FROM series_horizon WHERE account = $1 AND calendar_id = $2 AND NOT series_id = ANY($3::text[])", *args
    )
