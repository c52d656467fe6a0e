"""The PostgreSQL store's schema: versioned migrations run under a transaction-level advisory lock,
and the small helpers every side shares (transactions, the state and result rows, secrets).

The tables mirror the SQLite store's (``calbridge.store._schema``), so the stored forms of events
and states are the same functions: instants are Unix seconds, events their exported JSON. Key
columns sort as bytes (``COLLATE "C"``) so both stores order the views alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ...errors import StoreError
from ...state import CalendarState
from ...toolkit.scrub import scrub
from .._schema import coerced_from_json, state_from_json, state_to_json
from . import _push

Conn = Any  # an asyncpg.Connection (asyncpg ships no type information)

_K = 'TEXT COLLATE "C" NOT NULL'
_EVENT_COLUMNS = f"""
    account {_K}, calendar_id {_K}, id {_K}, kind TEXT NOT NULL, series_id TEXT COLLATE "C",
    status TEXT NOT NULL, start_utc BIGINT NOT NULL, end_utc BIGINT NOT NULL, orig_utc BIGINT,
    hash BIGINT NOT NULL, json TEXT NOT NULL"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE TABLE calendar_state (account {_K}, calendar_id {_K}, state TEXT NOT NULL,"
        " PRIMARY KEY (account, calendar_id))",
        f"CREATE TABLE events ({_EVENT_COLUMNS}, mark BIGINT NOT NULL, PRIMARY KEY (account, calendar_id, id))",
        "CREATE INDEX events_start ON events (account, calendar_id, start_utc)",
        "CREATE INDEX events_series ON events (account, calendar_id, series_id, orig_utc)",
        "CREATE INDEX events_mark ON events (account, calendar_id, mark)",
        "CREATE INDEX events_series_masters ON events (account, calendar_id, id) WHERE kind = 'series'",
        "CREATE INDEX events_start_all ON events (start_utc)",
        f"CREATE TABLE occurrences ({_EVENT_COLUMNS}, PRIMARY KEY (account, calendar_id, id))",
        "CREATE INDEX occurrences_start ON occurrences (account, calendar_id, start_utc)",
        "CREATE INDEX occurrences_series ON occurrences (account, calendar_id, series_id, orig_utc)",
        "CREATE INDEX occurrences_start_all ON occurrences (start_utc)",
        f"CREATE TABLE occurrences_ahead ({_EVENT_COLUMNS}, PRIMARY KEY (account, calendar_id, id))",
        "CREATE INDEX occurrences_ahead_series ON occurrences_ahead (account, calendar_id, series_id, start_utc)",
        f"CREATE TABLE series_horizon (account {_K}, calendar_id {_K}, series_id {_K}, horizon BIGINT NOT NULL,"
        " PRIMARY KEY (account, calendar_id, series_id))",
        f"CREATE TABLE dirty_series (account {_K}, calendar_id {_K}, series_id {_K},"
        " PRIMARY KEY (account, calendar_id, series_id))",
        # qkey is the event id, or a payload digest for a payload without a usable id.
        f"CREATE TABLE quarantine (account {_K}, calendar_id {_K}, qkey {_K}, event_id TEXT, error TEXT NOT NULL,"
        " payload TEXT NOT NULL, at TEXT NOT NULL, mark BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (account, calendar_id, qkey))",
        f"CREATE TABLE calendar_status (account {_K}, calendar_id {_K}, last_success TEXT, last_error TEXT,"
        " last_error_at TEXT, PRIMARY KEY (account, calendar_id))",
        f"CREATE TABLE secrets (account {_K}, name {_K}, value TEXT NOT NULL, PRIMARY KEY (account, name))",
        # The change feed: numbers come from feed_counter as each write's last statement (``_feed``).
        f"CREATE TABLE feed (seq BIGINT PRIMARY KEY, committed BIGINT NOT NULL, account {_K},"
        f" calendar_id {_K}, id {_K}, op TEXT NOT NULL, created BOOLEAN, event TEXT)",
        "CREATE INDEX feed_committed ON feed (committed)",
        "CREATE TABLE feed_counter (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), seq BIGINT NOT NULL)",
        "INSERT INTO feed_counter (seq) VALUES (0)",
        f'CREATE TABLE feed_consumers (name {_K} PRIMARY KEY, "offset" BIGINT NOT NULL, updated BIGINT NOT NULL)',
    ),
    # The service's rows: backoff and coerced counts in calendar_status, push subscriptions, push
    # states, delivery keys (``_push``).
    _push.MIGRATION,
    # Many workers (``_leases``): a row per calendar known to the workers, its holder, the token of
    # its last claim and until when (the database's clock); the workers alive; the tokens drawn.
    (
        f"CREATE TABLE leases (account {_K}, calendar_id {_K}, holder TEXT, token BIGINT NOT NULL DEFAULT 0,"
        " expires TIMESTAMPTZ, PRIMARY KEY (account, calendar_id))",
        "CREATE INDEX leases_holder ON leases (holder) WHERE holder IS NOT NULL",
        f"CREATE TABLE workers (name {_K} PRIMARY KEY, seen TIMESTAMPTZ NOT NULL, expires TIMESTAMPTZ NOT NULL)",
        "CREATE SEQUENCE lease_tokens",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def by_ids(table: str, cols: str, where: str = "") -> str:
    """Rows of ``table`` (as ``o``) of calendar ($1, $2) whose ids are in the array $3, with ``cols``.

    One index probe per id (a lateral join), never ``id = ANY($3)``: on a table whose statistics lag
    (a fresh one filling up) the planner scans the calendar and tests each row against the array.
    """
    return (
        f"SELECT x.* FROM unnest($3::text[]) AS j(id) CROSS JOIN LATERAL (SELECT {cols} FROM {table} AS o"
        f" WHERE o.account = $1 AND o.calendar_id = $2 AND o.id = j.id{where}) AS x"
    )


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: Conn, where: str, schema: str, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS) -> int:
    """Bring ``schema`` up to ``len(migrations)`` once, however many processes open it at once: the
    check and the steps run under an advisory lock taken in the same transaction.

    Raises:
        StoreError: the schema was written by a newer calbridge.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"calbridge:migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # One row per step applied, by whom: a step that ran twice would be a key violation here.
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " applied TIMESTAMPTZ NOT NULL DEFAULT now(),"
            " by_client TEXT NOT NULL DEFAULT current_setting('application_name'))"
        )
        row = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
        version = 0 if row is None else int(row)
        if version > len(migrations):
            raise StoreError(
                f"store {where} has schema version {version}; this calbridge knows up to {len(migrations)}"
                " (upgrade calbridge)"
            )
        for n, step in enumerate(migrations[version:], start=version + 1):
            for statement in step:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", n)
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            str(len(migrations)),
        )
    return len(migrations)


async def get_state(conn: Conn, account: str, calendar_id: str) -> CalendarState | None:
    text = await conn.fetchval(
        "SELECT state FROM calendar_state WHERE account = $1 AND calendar_id = $2", account, calendar_id
    )
    return None if text is None else state_from_json(account, calendar_id, text)


async def save_state(conn: Conn, state: CalendarState) -> None:
    await conn.execute(
        "INSERT INTO calendar_state (account, calendar_id, state) VALUES ($1, $2, $3)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET state = excluded.state",
        state.account,
        state.calendar_id,
        state_to_json(state),
    )


async def record_result(
    conn: Conn,
    account: str,
    calendar_id: str,
    at: dt.datetime,
    error: str | None,
    state: CalendarState | None,
    coerced: Mapping[str, int] | None = None,
) -> None:
    async with conn.transaction():
        if state is not None:
            await save_state(conn, state)
        if coerced:
            await _add_coerced(conn, account, calendar_id, coerced)
        if error is None:
            if state is None:
                state = await get_state(conn, account, calendar_id)
            if state is not None and state.sweep is not None:
                return  # a held (or unfinished) sweep is no success: keep the last real one
            await conn.execute(
                "INSERT INTO calendar_status (account, calendar_id, last_success) VALUES ($1, $2, $3)"
                " ON CONFLICT (account, calendar_id) DO UPDATE SET last_success = excluded.last_success",
                account,
                calendar_id,
                at.isoformat(),
            )
        else:
            await conn.execute(
                "INSERT INTO calendar_status (account, calendar_id, last_error, last_error_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (account, calendar_id) DO UPDATE SET last_error = excluded.last_error,"
                " last_error_at = excluded.last_error_at",
                account,
                calendar_id,
                scrub(error),  # the last guard before disk
                at.isoformat(),
            )


async def _add_coerced(conn: Conn, account: str, calendar_id: str, coerced: Mapping[str, int]) -> None:
    text = await conn.fetchval(
        "SELECT coerced FROM calendar_status WHERE account = $1 AND calendar_id = $2 FOR UPDATE", account, calendar_id
    )
    counts = coerced_from_json(text)
    for field, n in coerced.items():
        counts[field] = counts.get(field, 0) + n
    await conn.execute(
        "INSERT INTO calendar_status (account, calendar_id, coerced) VALUES ($1, $2, $3)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET coerced = excluded.coerced",
        account, calendar_id, json.dumps(counts, sort_keys=True),
    )  # fmt: skip


async def get_secret(conn: Conn, account: str, name: str) -> str | None:
    value = await conn.fetchval("SELECT value FROM secrets WHERE account = $1 AND name = $2", account, name)
    return None if value is None else str(value)


async def set_secret(conn: Conn, account: str, name: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO secrets (account, name, value) VALUES ($1, $2, $3)"
        " ON CONFLICT (account, name) DO UPDATE SET value = excluded.value",
        account,
        name,
        value,
    )
