"""The SQLite store's change feed: each write's published changes appended in the write's own
transaction, read back by sequence number, consumers' offsets, retention.

Gap-free because SQLite has one writer: a row's ``seq`` (``AUTOINCREMENT``, never reused) is taken
inside a ``BEGIN IMMEDIATE`` transaction, so transactions commit in the order of their numbers and
no reader can see a number before every lower one is visible (see docs/design.md, "The change feed").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from ..errors import FeedBehind
from ..export import event_to_json_bytes
from ..feed import FeedEntry
from ..model import Change, Delete
from ._schema import transaction

_INSERT = "INSERT INTO feed (committed, account, calendar_id, id, op, created, event) VALUES (?, ?, ?, ?, ?, ?, ?)"
_PRUNED = "feed_pruned_through"


def append(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    changes: Sequence[Change],
    texts: dict[str, str] | None = None,
) -> None:
    """Record ``changes`` (what the open write transaction publishes); ``texts`` holds the stored JSON
    of events the write already encoded, so an upsert's JSON is encoded once for row and log."""
    if not changes:
        return
    now = int(time.time())
    rows: list[tuple[object, ...]] = []
    for change in changes:
        if isinstance(change, Delete):
            prev = change.previous
            text = None if prev is None else event_to_json_bytes(prev).decode()
            rows.append((now, account, calendar_id, change.key.id, "delete", None, text))
        else:
            ev = change.event
            text = texts.get(ev.id) if texts else None
            if text is None:
                text = event_to_json_bytes(ev).decode()
            created = None if change.created is None else int(change.created)
            rows.append((now, account, calendar_id, ev.id, "upsert", created, text))
    conn.executemany(_INSERT, rows)


def pruned_through(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_PRUNED,)).fetchone()
    return 0 if row is None else int(row[0])


def read(
    conn: sqlite3.Connection, after: int, limit: int, account: str | None = None, *, strict: bool = True
) -> list[FeedEntry]:
    """Up to ``limit`` entries with ``seq > after`` in order; with ``strict``, ``after`` (other than 0)
    below what retention dropped raises :class:`FeedBehind` instead of skipping silently."""
    with transaction(conn, write=False):
        if strict and after > 0:
            dropped = pruned_through(conn)
            if after < dropped:
                raise FeedBehind(after=after, oldest=_oldest(conn, dropped))
        sql = "SELECT seq, committed, account, calendar_id, id, op, created, event FROM feed WHERE seq > ?"
        args: tuple[object, ...] = (after,)
        if account is not None:
            sql += " AND account = ?"
            args += (account,)
        rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
    return [FeedEntry(seq=r[0], committed=r[1], account=r[2], calendar_id=r[3], id=r[4], op=r[5],
                      created=None if r[6] is None else bool(r[6]), event_json=r[7]) for r in rows]  # fmt: skip


def _oldest(conn: sqlite3.Connection, dropped: int) -> int:
    row = conn.execute("SELECT min(seq) FROM feed").fetchone()
    return int(row[0]) if row and row[0] is not None else dropped + 1


def oldest(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT min(seq) FROM feed").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def last(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM feed").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def get_offset(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT offset FROM feed_consumers WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def set_offset(conn: sqlite3.Connection, name: str, seq: int) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO feed_consumers (name, offset, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET offset = excluded.offset, updated = excluded.updated",
            (name, seq, int(time.time())),
        )


def prune(conn: sqlite3.Connection, before: int, limit: int) -> int:
    """Drop at most ``limit`` of the oldest entries committed before ``before`` (Unix seconds); returns
    how many went. Small batches keep each transaction short, off the writers' path; with nothing that
    old (the usual case) no write transaction is opened at all."""
    if conn.execute("SELECT 1 FROM feed WHERE committed < ? LIMIT 1", (before,)).fetchone() is None:
        return 0
    with transaction(conn):
        rows = conn.execute(
            "SELECT seq FROM feed WHERE seq <= (SELECT max(seq) FROM (SELECT seq FROM feed WHERE committed < ?"
            " ORDER BY seq LIMIT ?))",
            (before, limit),
        ).fetchall()
        if not rows:
            return 0
        top = max(r[0] for r in rows)
        conn.execute("DELETE FROM feed WHERE seq <= ?", (top,))
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_PRUNED, str(max(top, pruned_through(conn)))),
        )
        return len(rows)
