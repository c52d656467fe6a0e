"""The SQLite store's write side: page commits, cascading deletes, mark-and-sweep, occurrences.

Each function runs on the store's worker thread with its connection (see
:class:`~calbridge.store.sqlite.SqliteStore`) and does its work in one transaction. What a sweep
covers and which series a change makes stale are the planner's rules (:mod:`calbridge.planner`);
this module writes what they say.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec

from .. import planner
from ..errors import StoreError
from ..model import UTC, Change, Event, EventKey, Upsert, Window
from ..provider import Quarantined
from ..state import CalendarState, PendingSweep
from . import _ahead, _decide, _feed, _schema, _visible

_P = ParamSpec("_P")


def _check(account: str, calendar_id: str, key: Event | EventKey) -> None:
    # A row filed under another calendar would escape that calendar's mark-and-sweep forever.
    if (key.account, key.calendar_id) != (account, calendar_id):
        raise StoreError(f"event {key.id} of {key.account}/{key.calendar_id} given for {account}/{calendar_id}")


def _mark_dirty(conn: sqlite3.Connection, account: str, calendar_id: str, series_ids: set[str]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO dirty_series (account, calendar_id, series_id) VALUES (?, ?, ?)",
        [(account, calendar_id, sid) for sid in series_ids],
    )


def _delete_cascade(conn: sqlite3.Connection, account: str, calendar_id: str, event_id: str) -> None:
    """Delete an event with its exceptions and occurrences (what went is published by ``_visible``)."""
    args = (account, calendar_id, event_id)
    own = conn.execute("SELECT series_id FROM events WHERE account = ? AND calendar_id = ? AND id = ?", args).fetchone()
    stale = None if own is None else planner.stale_after_delete(own[0])
    # Two statements, not ``(id = ? OR series_id = ?)``: an OR only uses the (account, calendar_id)
    # prefix of an index, so each delete read the whole calendar (twice).
    conn.execute("DELETE FROM events WHERE account = ? AND calendar_id = ? AND id = ?", args)
    conn.execute("DELETE FROM events WHERE account = ? AND calendar_id = ? AND series_id = ?", args)
    conn.execute("DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND series_id = ?", args)
    conn.execute("DELETE FROM dirty_series WHERE account = ? AND calendar_id = ? AND series_id = ?", args)
    if stale:
        _mark_dirty(conn, account, calendar_id, {stale})


def _sweep_filter(sweep: PendingSweep) -> tuple[str, tuple[int | str, ...]]:
    """SQL condition (and its arguments) for the rows of a calendar that ``sweep`` removes, as the
    planner's :func:`~calbridge.planner.sweep_target` draws them."""
    target = planner.sweep_target(sweep)
    if target.within is None:
        return "mark < ?", (target.before_mark,)
    kinds = sorted(k.value for k in target.anywhere)
    cond = f"mark < ? AND CASE WHEN kind IN ({', '.join('?' * len(kinds))}) THEN 1 ELSE {_schema.OVERLAP} END"
    return cond, (target.before_mark, *kinds, *_schema.overlap_args(target.within))


def transactional(
    fn: Callable[Concatenate[sqlite3.Connection, _P], None],
) -> Callable[Concatenate[sqlite3.Connection, _P], None]:
    def run(conn: sqlite3.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        with _schema.transaction(conn):
            fn(conn, *args, **kwargs)

    return run


def _upsert_run(conn: sqlite3.Connection, state: CalendarState, run: dict[str, tuple[Upsert, _schema.Row]]) -> None:
    acct, cal, mark = state.account, state.calendar_id, state.mark
    stored = {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            f"SELECT id, hash, mark, kind FROM events WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
            (acct, cal, json.dumps(list(run))),
        )
    }
    plan = _decide.plan_upserts(run, stored, mark)
    conn.executemany(_schema.UPSERT_EVENT, plan.rows)
    if plan.remark:  # a full listing that finds a row unchanged: only its mark moves
        conn.execute(
            f"UPDATE events SET mark = ? WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
            (mark, acct, cal, json.dumps(plan.remark)),
        )
    _mark_dirty(conn, acct, cal, plan.dirty)


def _quarantine_row(account: str, calendar_id: str, q: Quarantined, at: str) -> tuple[str | None, ...]:
    qkey = q.event_id or "payload:" + hashlib.sha256(q.payload.encode()).hexdigest()[:16]
    return (account, calendar_id, qkey, q.event_id, q.error, q.payload, at)


def commit_page(
    conn: sqlite3.Connection, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined]
) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    seen: list[str] = []
    with _schema.transaction(conn):
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
        ids = final.keys() | _visible.cascade_ids(conn, acct, cal, deleted)
        known = {i: e for i, e in final.items() if e is not None}
        diff = _visible.Diff(conn, acct, cal, ids, _decide.page_slots(changes), known=known, table="events")
        run: dict[str, tuple[Upsert, _schema.Row]] = {}
        texts: dict[str, str] = {}  # each upserted id's stored JSON, for the feed
        for change in changes:
            if isinstance(change, Upsert):
                run.pop(change.event.id, None)  # the last upsert of an id wins, in its position
                row = _schema.encode_row(change.event)
                run[change.event.id] = (change, row)
                texts[change.event.id] = str(row[_schema.JSON])
                seen.append(change.event.id)
                continue
            if run:  # a delete may cascade onto an exception upserted earlier in the page
                _upsert_run(conn, state, run)
                run = {}
            _delete_cascade(conn, acct, cal, change.key.id)
            seen.append(change.key.id)
        if run:
            _upsert_run(conn, state, run)
        # Without a delete nothing took an upserted row away: the rows written need not be read again.
        written = None if deleted else {i: (r[9], r[4], r[8]) for i, (_, r) in run.items()}  # hash, series, orig
        out = diff.changes(order=final, written=written)
        _feed.append(conn, acct, cal, out, texts)
        if seen and _has_quarantine(conn, acct, cal):
            conn.execute(
                "DELETE FROM quarantine WHERE account = ? AND calendar_id = ? AND qkey IN"
                " (SELECT value FROM json_each(?))",
                (acct, cal, json.dumps(seen)),
            )
        _quarantine(conn, acct, cal, quarantined, state.mark)
        _schema.save_state(conn, state)
    return out


def _has_quarantine(conn: sqlite3.Connection, account: str, calendar_id: str) -> bool:
    """Whether the calendar holds quarantined payloads (most hold none: a page need not clear its ids)."""
    sql = "SELECT 1 FROM quarantine WHERE account = ? AND calendar_id = ? LIMIT 1"
    return conn.execute(sql, (account, calendar_id)).fetchone() is not None


def _quarantine(
    conn: sqlite3.Connection, account: str, calendar_id: str, quarantined: Sequence[Quarantined], mark: int
) -> None:
    now = dt.datetime.now(UTC).isoformat()
    conn.executemany(
        "INSERT INTO quarantine (account, calendar_id, qkey, event_id, error, payload, at, mark)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, calendar_id, qkey) DO UPDATE SET"
        " event_id = excluded.event_id, error = excluded.error, payload = excluded.payload, at = excluded.at,"
        " mark = excluded.mark",
        [(*_quarantine_row(account, calendar_id, q, now), mark) for q in quarantined],
    )
    bad_ids = [q.event_id for q in quarantined if q.event_id]
    if bad_ids:
        # Still on the server, just unreadable now: keep the last good copy out of the sweep.
        conn.execute(
            f"UPDATE events SET mark = ? WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
            (mark, account, calendar_id, json.dumps(bad_ids)),
        )


def record_quarantined(
    conn: sqlite3.Connection, account: str, calendar_id: str, quarantined: Sequence[Quarantined], mark: int
) -> None:
    with _schema.transaction(conn):
        _quarantine(conn, account, calendar_id, quarantined, mark)


def sweep_count(conn: sqlite3.Connection, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
    cond, args = _sweep_filter(sweep)
    key = (account, calendar_id)
    (candidates,) = conn.execute(
        f"SELECT count(*) FROM events WHERE account = ? AND calendar_id = ? AND {cond}", (*key, *args)
    ).fetchone()
    (total,) = conn.execute("SELECT count(*) FROM events WHERE account = ? AND calendar_id = ?", key).fetchone()
    return int(candidates), int(total)


def sweep_batch(conn: sqlite3.Connection, state: CalendarState, sweep: PendingSweep, limit: int) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    cond, args = _sweep_filter(sweep)
    with _schema.transaction(conn):
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM events WHERE account = ? AND calendar_id = ? AND {cond} LIMIT ?",
                (acct, cal, *args, limit),
            )
        ]
        touched = set(ids) | _visible.cascade_ids(conn, acct, cal, ids)
        diff = _visible.Diff(conn, acct, cal, touched, (), known={}, table="events")
        for event_id in ids:
            # An earlier series in the batch may already have taken this exception with it.
            _delete_cascade(conn, acct, cal, event_id)
        if not ids:  # the sweep is complete: payloads the listing did not return again are gone too
            conn.execute(
                "DELETE FROM quarantine WHERE account = ? AND calendar_id = ? AND mark < ?", (acct, cal, sweep.mark)
            )
        _schema.save_state(conn, state)
        out = diff.changes(order=ids)
        _feed.append(conn, acct, cal, out)
        return out


def replace_occurrences(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    series_ids: Sequence[str],
    window: Window,
    occurrences: Sequence[Event],
    shown: Window | None = None,
    horizon: dt.datetime | None = None,
) -> list[Change]:
    new: dict[str, tuple[Event, _schema.Row]] = {}
    for o in occurrences:
        _check(account, calendar_id, o)
        new[o.id] = (o, _schema.encode_row(o))
    new, ahead = _ahead.split(new, shown)  # what lies outside the shown window is stored hidden
    with _schema.transaction(conn):
        _ahead.replace(conn, account, calendar_id, series_ids, window, ahead, new.keys())
        _ahead.record(conn, account, calendar_id, series_ids, horizon)
        # The series' own occurrences (occurrences_series), not every occurrence of the window.
        current = conn.execute(
            "SELECT o.id FROM json_each(?) AS j CROSS JOIN occurrences AS o INDEXED BY occurrences_series"
            f" WHERE o.account = ? AND o.calendar_id = ? AND o.series_id = j.value AND {_schema.OVERLAP}",
            (json.dumps(sorted(set(series_ids))), account, calendar_id, *_schema.overlap_args(window)),
        ).fetchall()
        gone = [(account, calendar_id, r[0]) for r in current if r[0] not in new]
        known = {i: o for i, (o, _) in new.items()}
        diff = _visible.Diff(conn, account, calendar_id, known.keys() | {g[2] for g in gone}, (), known=known,
                             table="occurrences")  # fmt: skip
        conn.executemany("DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND id = ?", gone)
        stored = dict(
            conn.execute(
                f"SELECT id, hash FROM occurrences WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
                (account, calendar_id, json.dumps(list(new))),
            ).fetchall()
        )
        changed = [row for _, row in new.values() if stored.get(row[2]) != row[_schema.HASH]]
        conn.executemany(_schema.UPSERT_OCCURRENCE, changed)
        conn.executemany(
            "DELETE FROM dirty_series WHERE account = ? AND calendar_id = ? AND series_id = ?",
            [(account, calendar_id, sid) for sid in series_ids],
        )
        out = diff.changes(order=[*known, *(g[2] for g in gone)])
        _feed.append(conn, account, calendar_id, out, {i: str(row[_schema.JSON]) for i, (_, row) in new.items()})
        return out


def prune_occurrences(
    conn: sqlite3.Connection, account: str, calendar_id: str, live: Sequence[str], window: Window
) -> list[Change]:
    with _schema.transaction(conn):
        gone = _prunable(conn, account, calendar_id, live, window)
        shown = _ahead.to_reveal(conn, account, calendar_id, live, window)  # hidden rows the window reached
        diff = _visible.Diff(conn, account, calendar_id, [*gone, *shown], (), known={}, table="occurrences")
        conn.executemany(
            "DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND id = ?",
            [(account, calendar_id, g) for g in gone],
        )
        _ahead.reveal(conn, account, calendar_id, shown)
        _ahead.drop(conn, account, calendar_id, live, window)
        conn.execute(
            "DELETE FROM dirty_series WHERE account = ? AND calendar_id = ?"
            " AND series_id NOT IN (SELECT value FROM json_each(?))",
            (account, calendar_id, json.dumps(list(live))),
        )
        out = diff.changes(order=[*gone, *shown])
        _feed.append(conn, account, calendar_id, out)
        return out


def _prunable(
    conn: sqlite3.Connection, account: str, calendar_id: str, live: Sequence[str], window: Window
) -> list[str]:
    """Ids of the stored occurrences outside ``window`` or of series not in ``live``, each part read
    through an index (an OR of the two would read every occurrence of the calendar)."""
    key = (account, calendar_id)
    start, end = _schema.ts(window.start), _schema.ts(window.end)
    out: dict[str, None] = {}
    # Outside the window: starting at or after its end, or ending by its start (an occurrence ends
    # at or after it starts, so those start by the window's start too: two ranges of occurrences_start).
    select = "SELECT id FROM occurrences WHERE account = ? AND calendar_id = ? AND "
    for cond, args in (
        ("start_utc >= ?", (end,)),
        ("start_utc <= ? AND end_utc <= ? AND start_utc != ?", (start, start, start)),
    ):
        out.update((r[0], None) for r in conn.execute(select + cond, (*key, *args)))
    held = conn.execute("SELECT DISTINCT series_id FROM occurrences WHERE account = ? AND calendar_id = ?", key)
    gone_series = {r[0] for r in held} - set(live)
    if gone_series:
        rows = conn.execute(
            "SELECT o.id FROM json_each(?) AS j CROSS JOIN occurrences AS o INDEXED BY occurrences_series"
            " WHERE o.account = ? AND o.calendar_id = ? AND o.series_id = j.value",
            (json.dumps(sorted(gone_series)), *key),
        )
        out.update((r[0], None) for r in rows)
    return list(out)
