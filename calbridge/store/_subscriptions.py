"""The SQLite store's push tables: subscription rows (their secrets live in the secret slot, see
:class:`~calbridge.store.sqlite.SqliteStore`), each calendar's push state, and delivery keys.
Functions run on the store's worker thread; instants are stored as UTC ISO text."""

from __future__ import annotations

import datetime as dt
import sqlite3

from ..errors import StoreError
from ..push import Subscription
from ._schema import transaction, ts

_COLUMNS = "provider, id, account, calendar_id, expires, resource, created"


def secret_name(provider: str, subscription_id: str) -> str:
    """The secret slot's name for a subscription's secret (under its account)."""
    return f"push:{provider}:{subscription_id}"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _instant(value: str | None) -> dt.datetime | None:
    try:
        return None if value is None else dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise StoreError(f"corrupt subscriptions time {value!r}") from None


def _row(r: tuple[str, str, str, str, str | None, str | None, str | None]) -> Subscription:
    return Subscription(provider=r[0], id=r[1], account=r[2], calendar_id=r[3], expires=_instant(r[4]),
                        resource=r[5], created=_instant(r[6]))  # fmt: skip


def get(conn: sqlite3.Connection, provider: str, subscription_id: str) -> Subscription | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE provider = ? AND id = ?", (provider, subscription_id)
    ).fetchone()
    return None if row is None else _row(row)


def list_all(conn: sqlite3.Connection, account: str | None, calendar_id: str | None) -> list[Subscription]:
    where = [(c, v) for c, v in (("account", account), ("calendar_id", calendar_id)) if v is not None]
    sql = f"SELECT {_COLUMNS} FROM subscriptions"
    if where:
        sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
    rows = conn.execute(sql + " ORDER BY account, calendar_id, created, provider, id", [v for _, v in where])
    return [_row(r) for r in rows]


def save(conn: sqlite3.Connection, sub: Subscription) -> None:
    with transaction(conn):
        conn.execute(
            f"INSERT INTO subscriptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (provider, id) DO UPDATE SET account = excluded.account,"
            " calendar_id = excluded.calendar_id, expires = excluded.expires, resource = excluded.resource,"
            " created = excluded.created",
            (sub.provider, sub.id, sub.account, sub.calendar_id, _iso(sub.expires), sub.resource, _iso(sub.created)),
        )


def delete(conn: sqlite3.Connection, provider: str, subscription_id: str) -> str | None:
    """Delete the row (and its secret); returns the account it belonged to, None when unknown."""
    with transaction(conn):
        row = conn.execute(
            "DELETE FROM subscriptions WHERE provider = ? AND id = ? RETURNING account", (provider, subscription_id)
        ).fetchone()
        # The slot has no delete: the row goes by its key, whatever the slot keeps in ``value``.
        account = None if row is None else str(row[0])
        if account is not None:
            conn.execute(
                "DELETE FROM secrets WHERE account = ? AND name = ?",
                (account, secret_name(provider, subscription_id)),
            )
        return account


def set_push_state(conn: sqlite3.Connection, account: str, calendar_id: str, state: str | None) -> None:
    with transaction(conn):
        if state is None:
            conn.execute("DELETE FROM push_state WHERE account = ? AND calendar_id = ?", (account, calendar_id))
        else:
            conn.execute(
                "INSERT INTO push_state (account, calendar_id, state) VALUES (?, ?, ?)"
                " ON CONFLICT (account, calendar_id) DO UPDATE SET state = excluded.state",
                (account, calendar_id, state),
            )


def push_states(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    """Every calendar's push state (for ``status``, inside its read snapshot)."""
    return {(r[0], r[1]): r[2] for r in conn.execute("SELECT account, calendar_id, state FROM push_state")}


def first_delivery(conn: sqlite3.Connection, key: str, now: dt.datetime, keep: dt.timedelta) -> bool:
    """Forget keys older than ``keep``, then record ``key``: True when it was not there (one transaction,
    so two processes cannot both see a delivery first)."""
    with transaction(conn):
        conn.execute("DELETE FROM deliveries WHERE at < ?", (ts(now - keep),))
        return conn.execute("INSERT OR IGNORE INTO deliveries (key, at) VALUES (?, ?)", (key, ts(now))).rowcount == 1
