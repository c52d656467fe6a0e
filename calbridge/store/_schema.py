"""The SQLite store's schema: DDL and versioned migrations, the stored forms of events and states,
and the helpers both sides use (the read queries are in ``_read``, the writes in ``_write``).

Instants are stored as integer Unix seconds (UTC), so overlap and ordering are integer compares.
``MIGRATIONS[n]`` takes a file from schema version ``n`` to ``n + 1``; the pending steps run in one
transaction together with the version bump. Functions taking a connection run on the store's worker
thread (see :class:`~calbridge.store.sqlite.SqliteStore`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

from ..cursor import Cursor
from ..errors import StoreError
from ..export import event_from_dict, event_to_json_bytes, format_instant, parse_instant
from ..model import Event, Window
from ..toolkit.scrub import scrub
from .base import CalendarState, PendingSweep, Round

_EVENT_COLUMNS = """
    account TEXT NOT NULL,
    calendar_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    series_id TEXT,
    status TEXT NOT NULL,
    start_utc INTEGER NOT NULL,
    end_utc INTEGER NOT NULL,
    orig_utc INTEGER,
    hash INTEGER NOT NULL,
    json TEXT NOT NULL"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE calendar_state (account TEXT NOT NULL, calendar_id TEXT NOT NULL, state TEXT NOT NULL,"
        " PRIMARY KEY (account, calendar_id))",
        f"CREATE TABLE events ({_EVENT_COLUMNS}, mark INTEGER NOT NULL, UNIQUE (account, calendar_id, id))",
        "CREATE INDEX events_start ON events (account, calendar_id, start_utc)",
        "CREATE INDEX events_series ON events (account, calendar_id, series_id, orig_utc)",
        f"CREATE TABLE occurrences ({_EVENT_COLUMNS}, UNIQUE (account, calendar_id, id))",
        "CREATE INDEX occurrences_start ON occurrences (account, calendar_id, start_utc)",
        "CREATE INDEX occurrences_series ON occurrences (account, calendar_id, series_id, orig_utc)",
        # qkey is the event id, or a payload digest for a payload without a usable id.
        "CREATE TABLE quarantine (account TEXT NOT NULL, calendar_id TEXT NOT NULL, qkey TEXT NOT NULL,"
        " event_id TEXT, error TEXT NOT NULL, payload TEXT NOT NULL, at TEXT NOT NULL,"
        " PRIMARY KEY (account, calendar_id, qkey))",
        "CREATE TABLE calendar_status (account TEXT NOT NULL, calendar_id TEXT NOT NULL, last_success TEXT,"
        " last_error TEXT, last_error_at TEXT, PRIMARY KEY (account, calendar_id))",
        "CREATE TABLE secrets (account TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (account, name))",
    ),
    (
        # Series whose stored occurrences are stale, written with the page that changed them, so a
        # run killed before its expansion still refreshes them next time.
        "CREATE TABLE dirty_series (account TEXT NOT NULL, calendar_id TEXT NOT NULL, series_id TEXT NOT NULL,"
        " PRIMARY KEY (account, calendar_id, series_id))",
        # Quarantined payloads carry the full-listing mark too, so a sweep clears those not seen again.
        "ALTER TABLE quarantine ADD COLUMN mark INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Expansion ahead of the window (``_ahead``): occurrences past the shown window, stored hidden
        # until the window reaches them, and how far each series' occurrences answer for.
        f"CREATE TABLE occurrences_ahead ({_EVENT_COLUMNS}, UNIQUE (account, calendar_id, id))",
        "CREATE INDEX occurrences_ahead_start ON occurrences_ahead (account, calendar_id, start_utc)",
        "CREATE INDEX occurrences_ahead_series ON occurrences_ahead (account, calendar_id, series_id, start_utc)",
        "CREATE TABLE series_horizon (account TEXT NOT NULL, calendar_id TEXT NOT NULL, series_id TEXT NOT NULL,"
        " horizon INTEGER NOT NULL, PRIMARY KEY (account, calendar_id, series_id))",
    ),
    (
        # Indexes that fit the hot statements, so each costs its own rows, not its calendar's
        # (``tests/test_store_scaling.py`` pins each plan): a sweep's batches and count by mark; the
        # series masters (partial: an index on kind costs every insert, this one only a series'); the
        # views in start order across calendars, which lets ``events --expand`` stream instead of
        # sorting the whole mirror first.
        "CREATE INDEX events_mark ON events (account, calendar_id, mark)",
        "CREATE INDEX events_series_masters ON events (account, calendar_id, id) WHERE kind = 'series'",
        "CREATE INDEX events_start_all ON events (start_utc)",
        "CREATE INDEX occurrences_start_all ON occurrences (start_utc)",
    ),
    (
        # The change feed (``_feed``): every published change, numbered in its write's transaction;
        # ``event`` is the exported event of an upsert, or what a delete removed (NULL when unknown).
        "CREATE TABLE feed (seq INTEGER PRIMARY KEY AUTOINCREMENT, committed INTEGER NOT NULL,"
        " account TEXT NOT NULL, calendar_id TEXT NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL,"
        " created INTEGER, event TEXT)",
        "CREATE INDEX feed_committed ON feed (committed)",
        "CREATE TABLE feed_consumers (name TEXT PRIMARY KEY, offset INTEGER NOT NULL, updated INTEGER NOT NULL)",
    ),
    (
        # The service's backoff of a failing calendar (``calbridge run``), for ``status``.
        "ALTER TABLE calendar_status ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE calendar_status ADD COLUMN next_attempt TEXT",
    ),
    (
        # Push (``_subscriptions``): subscriptions by (provider, id), their secrets in ``secrets``; each
        # calendar's push state for ``status``; delivery keys seen (Feishu ``event_id``) for a day.
        "CREATE TABLE subscriptions (provider TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL,"
        " calendar_id TEXT NOT NULL, expires TEXT, resource TEXT, created TEXT, PRIMARY KEY (provider, id))",
        "CREATE INDEX subscriptions_calendar ON subscriptions (account, calendar_id)",
        "CREATE TABLE push_state (account TEXT NOT NULL, calendar_id TEXT NOT NULL, state TEXT NOT NULL,"
        " PRIMARY KEY (account, calendar_id))",
        "CREATE TABLE deliveries (key TEXT PRIMARY KEY, at INTEGER NOT NULL)",
        "CREATE INDEX deliveries_at ON deliveries (at)",
    ),
    (
        # What a calendar's rounds read as the schema's neutral value (a junk visibility, a cut
        # title), as a JSON object of counts by field, added to by each round.
        "ALTER TABLE calendar_status ADD COLUMN coerced TEXT NOT NULL DEFAULT '{}'",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, where: str, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS) -> int:
    """Bring the open database up to ``len(migrations)``; returns the version it ends at.

    Raises:
        StoreError: the file was written by a newer calbridge.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(migrations):
            raise StoreError(
                f"store {where} has schema version {version}; this calbridge knows up to {len(migrations)}"
                " (upgrade calbridge)"
            )
        for step in migrations[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(len(migrations)),),
        )
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL, ...) already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(migrations)


def _window_to(w: Window | None) -> list[str] | None:
    return None if w is None else [format_instant(w.start), format_instant(w.end)]


def _window_from(v: list[str] | None) -> Window | None:
    return None if v is None else Window(start=parse_instant(v[0]), end=parse_instant(v[1]))


def state_to_json(state: CalendarState) -> str:
    """The stored form of ``state`` (account and calendar live in the key columns)."""
    sweep = state.sweep
    data: dict[str, Any] = {
        "cursor": None if state.cursor is None else state.cursor.dumps(),
        "round": None if state.round is None else state.round.value,
        "mark": state.mark,
        "sweep": None
        if sweep is None
        else {
            "mark": sweep.mark,
            "scope": _window_to(sweep.scope),
            "held": sweep.held,
            "candidates": sweep.candidates,
            "total": sweep.total,
        },
        "full_started": None if state.full_started is None else state.full_started.isoformat(),
        "expanded": _window_to(state.expanded),
        "pages": state.pages,
    }
    return json.dumps(data, separators=(",", ":"))


def state_from_json(account: str, calendar_id: str, text: str) -> CalendarState:
    """Inverse of :func:`state_to_json`; a corrupt row raises :class:`StoreError`."""
    try:
        return _state_from_json(account, calendar_id, text)
    except Exception as exc:  # json, KeyError, ValueError, ...: whatever a damaged row makes of it
        raise StoreError(f"corrupt calendar_state row for {account}/{calendar_id}: {exc!r}") from None


def _state_from_json(account: str, calendar_id: str, text: str) -> CalendarState:
    d = json.loads(text)
    s = d.get("sweep")
    return CalendarState(
        account=account,
        calendar_id=calendar_id,
        cursor=None if d.get("cursor") is None else Cursor.loads(d["cursor"]),
        round=None if d.get("round") is None else Round(d["round"]),
        mark=int(d.get("mark", 0)),
        sweep=None
        if s is None
        else PendingSweep(
            mark=int(s["mark"]),
            scope=_window_from(s.get("scope")),
            held=bool(s.get("held", False)),
            candidates=int(s.get("candidates", 0)),
            total=int(s.get("total", 0)),
        ),
        full_started=None if d.get("full_started") is None else dt.datetime.fromisoformat(d["full_started"]),
        expanded=_window_from(d.get("expanded")),
        pages=int(d.get("pages", 0)),  # absent in states saved before the page limit
    )


Row = tuple[str, str, str, str, str | None, str, int, int, int | None, int, str]
HASH = 9  # the position of ``hash`` in a Row
JSON = 10  # the position of the stored JSON in a Row

COLS = "account, calendar_id, id, kind, series_id, status, start_utc, end_utc, orig_utc, hash, json"
_SET = ", ".join(f"{c} = excluded.{c}" for c in COLS.split(", ")[3:])
UPSERT_EVENT = (
    f"INSERT INTO events ({COLS}, mark) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}, mark = excluded.mark"
)
UPSERT_OCCURRENCE = (
    f"INSERT INTO occurrences ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    f" ON CONFLICT (account, calendar_id, id) DO UPDATE SET {_SET}"
)
IN_IDS = "id IN (SELECT value FROM json_each(?))"
# Half-open overlap of [start_utc, end_utc) with a window (arguments: overlap_args); a zero-length row
# at the window start counts, as in Window.overlaps.
OVERLAP = "start_utc < ? AND (end_utc > ? OR start_utc = ?)"
# An occurrences row (as ``o``) that no events row hides: not one of the same id, not an exception or a
# synced occurrence of the same slot. The change stream (``_visible``) and the instance view share it.
UNSHADOWED = (
    "NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account = o.account AND e.calendar_id = o.calendar_id"
    " AND e.id = o.id)"
    " AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.account = o.account AND e.calendar_id = o.calendar_id"
    " AND e.series_id = o.series_id AND e.orig_utc = o.orig_utc AND e.kind IN ('exception', 'occurrence'))"
)


def ts(value: dt.datetime) -> int:
    return int(value.timestamp())


def encode_row(e: Event) -> Row:
    """The column values of ``e``, its stored JSON last."""
    data = event_to_json_bytes(e)
    digest = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)
    text = data.decode()
    orig = None if e.original_start is None else ts(e.original_start.utc())
    return (e.account, e.calendar_id, e.id, e.kind.value, e.series_id, e.status.value,
            ts(e.start.utc()), ts(e.end.utc()), orig, digest, text)  # fmt: skip


def decode_event(text: str) -> Event:
    """The event stored as ``text``; a corrupt row raises :class:`StoreError`."""
    try:
        return event_from_dict(json.loads(text))
    except Exception as exc:  # json, KeyError, ValueError, ...: whatever a damaged row makes of it
        raise StoreError(f"corrupt events row {text[:60]!r}: {exc!r}") from None


def overlap_args(w: Window) -> tuple[int, int, int]:
    return ts(w.end), ts(w.start), ts(w.start)


def parse_iso(value: str | None) -> dt.datetime | None:
    try:
        return None if value is None else dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise StoreError(f"corrupt calendar_status time {value!r}") from None


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (or a deferred read snapshot) ... ``COMMIT``, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # some errors (SQLITE_FULL, ...) already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_state(conn: sqlite3.Connection, account: str, calendar_id: str) -> CalendarState | None:
    row = conn.execute(
        "SELECT state FROM calendar_state WHERE account = ? AND calendar_id = ?", (account, calendar_id)
    ).fetchone()
    return None if row is None else state_from_json(account, calendar_id, row[0])


def save_state(conn: sqlite3.Connection, state: CalendarState) -> None:
    conn.execute(
        "INSERT INTO calendar_state (account, calendar_id, state) VALUES (?, ?, ?)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET state = excluded.state",
        (state.account, state.calendar_id, state_to_json(state)),
    )


def record_result(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    at: dt.datetime,
    error: str | None,
    state: CalendarState | None = None,
    coerced: Mapping[str, int] | None = None,
) -> None:
    if state is not None:
        save_state(conn, state)
    if coerced:
        _add_coerced(conn, account, calendar_id, coerced)
    if error is None:
        if state is None:
            state = get_state(conn, account, calendar_id)
        if state is not None and state.sweep is not None:
            return  # a held (or unfinished) sweep is no success: keep the last real one
        sql = "INSERT INTO calendar_status (account, calendar_id, last_success) VALUES (?, ?, ?)"
        sql += " ON CONFLICT (account, calendar_id) DO UPDATE SET last_success = excluded.last_success"
        conn.execute(sql, (account, calendar_id, at.isoformat()))
    else:
        sql = "INSERT INTO calendar_status (account, calendar_id, last_error, last_error_at) VALUES (?, ?, ?, ?)"
        sql += " ON CONFLICT (account, calendar_id) DO UPDATE SET last_error = excluded.last_error,"
        sql += " last_error_at = excluded.last_error_at"
        conn.execute(sql, (account, calendar_id, scrub(error), at.isoformat()))  # the last guard before disk


def record_backoff(
    conn: sqlite3.Connection, account: str, calendar_id: str, failures: int, next_attempt: dt.datetime | None
) -> None:
    sql = "INSERT INTO calendar_status (account, calendar_id, failures, next_attempt) VALUES (?, ?, ?, ?)"
    sql += " ON CONFLICT (account, calendar_id) DO UPDATE SET failures = excluded.failures,"
    sql += " next_attempt = excluded.next_attempt"
    conn.execute(sql, (account, calendar_id, failures, None if next_attempt is None else next_attempt.isoformat()))


def _add_coerced(conn: sqlite3.Connection, account: str, calendar_id: str, coerced: Mapping[str, int]) -> None:
    row = conn.execute(
        "SELECT coerced FROM calendar_status WHERE account = ? AND calendar_id = ?", (account, calendar_id)
    ).fetchone()
    counts = coerced_from_json(None if row is None else row[0])
    for field, n in coerced.items():
        counts[field] = counts.get(field, 0) + n
    conn.execute(
        "INSERT INTO calendar_status (account, calendar_id, coerced) VALUES (?, ?, ?)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET coerced = excluded.coerced",
        (account, calendar_id, json.dumps(counts, sort_keys=True)),
    )


def coerced_from_json(text: str | None) -> dict[str, int]:
    """The stored counts by field ({} for none or a corrupt value: counts are advisory)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def set_secret(conn: sqlite3.Connection, account: str, name: str, value: str) -> None:
    conn.execute(
        "INSERT INTO secrets (account, name, value) VALUES (?, ?, ?)"
        " ON CONFLICT (account, name) DO UPDATE SET value = excluded.value",
        (account, name, value),
    )


def secret_values(conn: sqlite3.Connection) -> list[str]:
    """Every non-empty stored secret, as stored (for the key check at open)."""
    return [str(row[0]) for row in conn.execute("SELECT value FROM secrets WHERE value != ''")]
