"""The PostgreSQL store's push tables and the service's per-calendar rows: subscriptions (their
secrets live in the secret slot), push states, delivery keys, backoff; the SQLite ``_subscriptions``
twin, in SQL PostgreSQL speaks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...push import Subscription
from .._subscriptions import secret_name

Conn = Any  # an asyncpg connection

_COLUMNS = "provider, id, account, calendar_id, expires, resource, created"

MIGRATION: tuple[str, ...] = (
    "ALTER TABLE calendar_status ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE calendar_status ADD COLUMN next_attempt TEXT",
    "ALTER TABLE calendar_status ADD COLUMN coerced TEXT NOT NULL DEFAULT '{}'",
    'CREATE TABLE subscriptions (provider TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL,'
    ' account TEXT COLLATE "C" NOT NULL, calendar_id TEXT COLLATE "C" NOT NULL, expires TIMESTAMPTZ,'
    " resource TEXT, created TIMESTAMPTZ, PRIMARY KEY (provider, id))",
    "CREATE INDEX subscriptions_calendar ON subscriptions (account, calendar_id)",
    'CREATE TABLE push_state (account TEXT COLLATE "C" NOT NULL, calendar_id TEXT COLLATE "C" NOT NULL,'
    " state TEXT NOT NULL, PRIMARY KEY (account, calendar_id))",
    'CREATE TABLE deliveries (key TEXT COLLATE "C" PRIMARY KEY, at BIGINT NOT NULL)',
    "CREATE INDEX deliveries_at ON deliveries (at)",
)


def _row(r: Any) -> Subscription:
    return Subscription(provider=r[0], id=r[1], account=r[2], calendar_id=r[3], expires=r[4], resource=r[5],
                        created=r[6])  # fmt: skip


async def get(conn: Conn, provider: str, subscription_id: str) -> Subscription | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE provider = $1 AND id = $2", provider, subscription_id
    )
    return None if row is None else _row(row)


async def list_all(conn: Conn, account: str | None, calendar_id: str | None) -> list[Subscription]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE ($1::text IS NULL OR account = $1)"
        " AND ($2::text IS NULL OR calendar_id = $2) ORDER BY account, calendar_id, created NULLS FIRST, provider, id",
        account,
        calendar_id,
    )
    return [_row(r) for r in rows]


async def save(conn: Conn, sub: Subscription) -> None:
    await conn.execute(
        f"INSERT INTO subscriptions ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (provider, id) DO UPDATE SET account = excluded.account, calendar_id = excluded.calendar_id,"
        " expires = excluded.expires, resource = excluded.resource, created = excluded.created",
        sub.provider, sub.id, sub.account, sub.calendar_id, sub.expires, sub.resource, sub.created,
    )  # fmt: skip


async def delete(conn: Conn, provider: str, subscription_id: str) -> None:
    """The row and its secret, in one transaction (the slot has no delete of its own)."""
    async with conn.transaction():
        account = await conn.fetchval(
            "DELETE FROM subscriptions WHERE provider = $1 AND id = $2 RETURNING account", provider, subscription_id
        )
        if account is not None:
            await conn.execute(
                "DELETE FROM secrets WHERE account = $1 AND name = $2", account, secret_name(provider, subscription_id)
            )


async def set_push_state(conn: Conn, account: str, calendar_id: str, state: str | None) -> None:
    if state is None:
        await conn.execute("DELETE FROM push_state WHERE account = $1 AND calendar_id = $2", account, calendar_id)
        return
    await conn.execute(
        "INSERT INTO push_state (account, calendar_id, state) VALUES ($1, $2, $3)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET state = excluded.state",
        account, calendar_id, state,
    )  # fmt: skip


async def push_states(conn: Conn) -> dict[tuple[str, str], str]:
    return {(r[0], r[1]): r[2] for r in await conn.fetch("SELECT account, calendar_id, state FROM push_state")}


async def first_delivery(conn: Conn, key: str, now: dt.datetime, keep: dt.timedelta) -> bool:
    """Forget keys older than ``keep``, then record ``key``: True when it was not there; the primary
    key makes two workers' inserts of one key agree on who was first."""
    async with conn.transaction():
        await conn.execute("DELETE FROM deliveries WHERE at < $1", int((now - keep).timestamp()))
        added = await conn.fetchval(
            "INSERT INTO deliveries (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING 1",
            key,
            int(now.timestamp()),
        )
        return added is not None


async def record_backoff(
    conn: Conn, account: str, calendar_id: str, failures: int, next_attempt: dt.datetime | None
) -> None:
    await conn.execute(
        "INSERT INTO calendar_status (account, calendar_id, failures, next_attempt) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (account, calendar_id) DO UPDATE SET failures = excluded.failures,"
        " next_attempt = excluded.next_attempt",
        account, calendar_id, failures, None if next_attempt is None else next_attempt.isoformat(),
    )  # fmt: skip
