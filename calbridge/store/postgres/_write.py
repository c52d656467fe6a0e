"""The PostgreSQL store's write side: page commits, cascading deletes, mark-and-sweep, occurrences.

Each function is one transaction on a pooled connection, with the same rules as the SQLite store's
``_write`` (the planner decides what a sweep covers and which series go stale). Every write ends
with its feed append (``_feed.append``): the counter row it locks is held to COMMIT.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from ... import planner
from ...errors import StoreError
from ...model import UTC, Change, Event, EventKey, Upsert, Window
from ...provider import Quarantined
from ...state import CalendarState, PendingSweep
from .. import _decide
from .. import _schema as rows_
from .._ahead import split as _split  # the overlap rule alone, no connection involved
from . import _ahead, _feed, _visible
from ._schema import Conn, by_ids, save_state

_UPSERT_EVENTS = _ahead.upsert_sql("events", with_mark=True)
_UPSERT_OCCURRENCES = _ahead.upsert_sql("occurrences")
_KEY = "account = $1 AND calendar_id = $2"


def _check(account: str, calendar_id: str, key: Event | EventKey) -> None:
    # A row filed under another calendar would escape that calendar's mark-and-sweep forever.
    if (key.account, key.calendar_id) != (account, calendar_id):
        raise StoreError(f"event {key.id} of {key.account}/{key.calendar_id} given for {account}/{calendar_id}")


async def _mark_dirty(conn: Conn, account: str, calendar_id: str, series_ids: set[str]) -> None:
    if series_ids:
        await conn.execute(
            "INSERT INTO dirty_series (account, calendar_id, series_id) SELECT $1, $2, s FROM unnest($3::text[]) AS s"
            " ON CONFLICT DO NOTHING",
            account,
            calendar_id,
            sorted(series_ids),
        )


async def _delete_cascade(conn: Conn, account: str, calendar_id: str, event_id: str) -> None:
    """Delete an event with its exceptions and occurrences (what went is published by ``_visible``)."""
    args = (account, calendar_id, event_id)
    own = await conn.fetchrow(f"SELECT series_id FROM events WHERE {_KEY} AND id = $3", *args)
    stale = None if own is None else planner.stale_after_delete(own[0])
    await conn.execute(f"DELETE FROM events WHERE {_KEY} AND (id = $3 OR series_id = $3)", *args)
    await conn.execute(f"DELETE FROM occurrences WHERE {_KEY} AND series_id = $3", *args)
    await conn.execute(f"DELETE FROM dirty_series WHERE {_KEY} AND series_id = $3", *args)
    if stale:
        await _mark_dirty(conn, account, calendar_id, {stale})


def _sweep_filter(sweep: PendingSweep, first: int) -> tuple[str, list[object]]:
    """SQL condition (parameters numbered from ``first``) for the rows ``sweep`` removes, as the
    planner's :func:`~calbridge.planner.sweep_target` draws them."""
    target = planner.sweep_target(sweep)
    if target.within is None:
        return f"mark < ${first}", [target.before_mark]
    kinds = sorted(k.value for k in target.anywhere)
    n = first
    cond = (
        f"mark < ${n} AND (kind = ANY(${n + 1}::text[])"
        f" OR (start_utc < ${n + 2} AND (end_utc > ${n + 3} OR start_utc = ${n + 4})))"
    )
    return cond, [target.before_mark, kinds, *rows_.overlap_args(target.within)]


async def _upsert_run(conn: Conn, state: CalendarState, run: dict[str, tuple[Upsert, rows_.Row]]) -> None:
    acct, cal, mark = state.account, state.calendar_id, state.mark
    found = await conn.fetch(by_ids("events", "o.id, o.hash, o.mark, o.kind"), acct, cal, list(run))
    stored = {r[0]: (r[1], r[2], r[3]) for r in found}
    plan = _decide.plan_upserts(run, stored, mark)
    await _ahead.upsert(conn, _UPSERT_EVENTS, plan.rows)
    if plan.remark:  # a full listing that finds a row unchanged: only its mark moves
        await conn.execute(
            f"UPDATE events SET mark = $3 WHERE {_KEY} AND id = ANY($4::text[])", acct, cal, mark, plan.remark
        )
    await _mark_dirty(conn, acct, cal, plan.dirty)


async def commit_page(
    conn: Conn, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined]
) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    final: dict[str, Event | None] = {}  # each id's last write: the event upserted, or None (deleted)
    deleted: set[str] = set()
    for change in changes:
        if isinstance(change, Upsert):
            _check(acct, cal, change.event)
            final[change.event.id] = change.event
        else:
            _check(acct, cal, change.key)
            final[change.key.id] = None
            deleted.add(change.key.id)
    seen: list[str] = []
    async with conn.transaction():
        ids = final.keys() | await _visible.cascade_ids(conn, acct, cal, deleted)
        known = {i: e for i, e in final.items() if e is not None}
        diff = await _visible.Diff.start(conn, acct, cal, ids, _decide.page_slots(changes), known=known, table="events")
        run: dict[str, tuple[Upsert, rows_.Row]] = {}
        texts: dict[str, str] = {}
        for change in changes:
            if isinstance(change, Upsert):
                run.pop(change.event.id, None)  # the last upsert of an id wins, in its position
                row = rows_.encode_row(change.event)
                run[change.event.id] = (change, row)
                texts[change.event.id] = str(row[rows_.JSON])
                seen.append(change.event.id)
                continue
            if run:  # a delete may cascade onto an exception upserted earlier in the page
                await _upsert_run(conn, state, run)
                run = {}
            await _delete_cascade(conn, acct, cal, change.key.id)
            seen.append(change.key.id)
        if run:
            await _upsert_run(conn, state, run)
        written = None if deleted else {i: (r[9], r[4], r[8]) for i, (_, r) in run.items()}  # hash, series, orig
        out = await diff.changes(order=final, written=written)
        if seen and await conn.fetchval(f"SELECT 1 FROM quarantine WHERE {_KEY} LIMIT 1", acct, cal) is not None:
            await conn.execute(f"DELETE FROM quarantine WHERE {_KEY} AND qkey = ANY($3::text[])", acct, cal, seen)
        await _quarantine(conn, acct, cal, quarantined, state.mark)
        await save_state(conn, state)
        await _feed.append(conn, acct, cal, out, texts)  # last: see _feed
    return out


async def _quarantine(
    conn: Conn, account: str, calendar_id: str, quarantined: Sequence[Quarantined], mark: int
) -> None:
    if not quarantined:
        return
    now = dt.datetime.now(UTC).isoformat()
    by_key: dict[str, Quarantined] = {}
    for q in quarantined:  # ON CONFLICT cannot touch a row twice in one statement: the last one wins
        by_key[q.event_id or "payload:" + hashlib.sha256(q.payload.encode()).hexdigest()[:16]] = q
    await conn.execute(
        "INSERT INTO quarantine (account, calendar_id, qkey, event_id, error, payload, at, mark)"
        " SELECT $1, $2, k, i, e, p, $3, $4"
        " FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) AS r(k, i, e, p)"
        " ON CONFLICT (account, calendar_id, qkey) DO UPDATE SET event_id = excluded.event_id,"
        " error = excluded.error, payload = excluded.payload, at = excluded.at, mark = excluded.mark",
        account,
        calendar_id,
        now,
        mark,
        list(by_key),
        [q.event_id for q in by_key.values()],
        [q.error for q in by_key.values()],
        [q.payload for q in by_key.values()],
    )
    bad_ids = [q.event_id for q in quarantined if q.event_id]
    if bad_ids:
        # Still on the server, just unreadable now: keep the last good copy out of the sweep.
        await conn.execute(
            f"UPDATE events SET mark = $3 WHERE {_KEY} AND id = ANY($4::text[])", account, calendar_id, mark, bad_ids
        )


async def record_quarantined(
    conn: Conn, account: str, calendar_id: str, quarantined: Sequence[Quarantined], mark: int
) -> None:
    async with conn.transaction():
        await _quarantine(conn, account, calendar_id, quarantined, mark)


async def sweep_count(conn: Conn, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
    cond, args = _sweep_filter(sweep, 3)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        candidates = await conn.fetchval(
            f"SELECT count(*) FROM events WHERE {_KEY} AND {cond}", account, calendar_id, *args
        )
        total = await conn.fetchval(f"SELECT count(*) FROM events WHERE {_KEY}", account, calendar_id)
    return int(candidates), int(total)


async def sweep_batch(conn: Conn, state: CalendarState, sweep: PendingSweep, limit: int) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    cond, args = _sweep_filter(sweep, 3)
    async with conn.transaction():
        found = await conn.fetch(
            f"SELECT id FROM events WHERE {_KEY} AND {cond} ORDER BY id LIMIT ${3 + len(args)}", acct, cal, *args, limit
        )
        ids = [r[0] for r in found]
        touched = set(ids) | await _visible.cascade_ids(conn, acct, cal, ids)
        diff = await _visible.Diff.start(conn, acct, cal, touched, (), known={}, table="events")
        for event_id in ids:
            # An earlier series in the batch may already have taken this exception with it.
            await _delete_cascade(conn, acct, cal, event_id)
        if not ids:  # the sweep is complete: payloads the listing did not return again are gone too
            await conn.execute(f"DELETE FROM quarantine WHERE {_KEY} AND mark < $3", acct, cal, sweep.mark)
        await save_state(conn, state)
        out = await diff.changes(order=ids)
        await _feed.append(conn, acct, cal, out)  # last: see _feed
    return out


async def replace_occurrences(
    conn: Conn,
    account: str,
    calendar_id: str,
    series_ids: Sequence[str],
    window: Window,
    occurrences: Sequence[Event],
    shown: Window | None = None,
    horizon: dt.datetime | None = None,
) -> list[Change]:
    new: dict[str, tuple[Event, rows_.Row]] = {}
    for o in occurrences:
        _check(account, calendar_id, o)
        new[o.id] = (o, rows_.encode_row(o))
    new, ahead = _split(new, shown)
    key = (account, calendar_id)
    async with conn.transaction():
        await _ahead.replace(conn, account, calendar_id, series_ids, window, ahead, new.keys())
        await _ahead.record(conn, account, calendar_id, series_ids, horizon)
        current = await conn.fetch(
            f"SELECT id FROM occurrences WHERE {_KEY} AND series_id = ANY($3::text[])"
            " AND start_utc < $4 AND (end_utc > $5 OR start_utc = $6)",
            *key,
            sorted(set(series_ids)),
            *rows_.overlap_args(window),
        )
        gone = [r[0] for r in current if r[0] not in new]
        known = {i: o for i, (o, _) in new.items()}
        diff = await _visible.Diff.start(conn, *key, known.keys() | set(gone), (), known=known, table="occurrences")
        if gone:
            await conn.execute(f"DELETE FROM occurrences WHERE {_KEY} AND id = ANY($3::text[])", *key, gone)
        found = await conn.fetch(by_ids("occurrences", "o.id, o.hash"), *key, list(new))
        stored = {r[0]: r[1] for r in found}
        await _ahead.upsert(
            conn, _UPSERT_OCCURRENCES, [row for _, row in new.values() if stored.get(row[2]) != row[rows_.HASH]]
        )
        if series_ids:
            await conn.execute(
                f"DELETE FROM dirty_series WHERE {_KEY} AND series_id = ANY($3::text[])", *key, list(series_ids)
            )
        out = await diff.changes(order=[*known, *gone])
        await _feed.append(conn, *key, out, {i: str(row[rows_.JSON]) for i, (_, row) in new.items()})  # last
    return out


async def prune_occurrences(
    conn: Conn, account: str, calendar_id: str, live: Sequence[str], window: Window
) -> list[Change]:
    key = (account, calendar_id)
    start, end = rows_.ts(window.start), rows_.ts(window.end)
    async with conn.transaction():
        found = await conn.fetch(
            f"SELECT id FROM occurrences WHERE {_KEY} AND (start_utc >= $3"
            " OR (start_utc <= $4 AND end_utc <= $4 AND start_utc != $4) OR NOT series_id = ANY($5::text[]))"
            " ORDER BY start_utc, id",
            *key,
            end,
            start,
            list(live),
        )
        gone = [r[0] for r in found]
        shown = await _ahead.to_reveal(conn, *key, live, window)  # hidden rows the window reached
        diff = await _visible.Diff.start(conn, *key, [*gone, *shown], (), known={}, table="occurrences")
        if gone:
            await conn.execute(f"DELETE FROM occurrences WHERE {_KEY} AND id = ANY($3::text[])", *key, gone)
        await _ahead.reveal(conn, *key, shown)
        await _ahead.drop(conn, *key, live, window)
        await conn.execute(
            f"DELETE FROM dirty_series WHERE {_KEY} AND NOT series_id = ANY($3::text[])", *key, list(live)
        )
        out = await diff.changes(order=[*gone, *shown])
        await _feed.append(conn, *key, out)  # last: see _feed
    return out
