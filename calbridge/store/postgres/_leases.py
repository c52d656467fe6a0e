"""The PostgreSQL store's leases (``calbridge.lease``): the ``leases``, ``workers`` rows and the
``lease_tokens`` sequence of migration 3, the fence every write of a fenced handle passes, and the
NOTIFY channel of triggers. Every time is the database's ``now()``: the workers' clocks never meet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ...errors import LeaseLost
from ...lease import Census, Holding, Key, Lease, Worker
from ._schema import Conn

_T = TypeVar("_T")

FORGET_WORKERS = dt.timedelta(days=1)
"""How long after it stopped beating a worker's row is kept (``workers`` shows only live ones)."""

_LEASE_COLS = "l.account, l.calendar_id, l.holder, l.token, l.expires"


def channel(schema: str) -> str:
    """The NOTIFY channel of the store in ``schema``: two stores on one database never cross.

    A channel is an identifier: LISTEN cuts a longer one to 63 bytes and ``pg_notify`` refuses it, so
    a long schema name is digested rather than cut (two long names sharing a prefix would meet).
    """
    name = f"calbridge_trigger:{schema}"
    if len(name.encode()) <= 63:
        return name
    return "calbridge_trigger:" + hashlib.sha256(schema.encode()).hexdigest()[:40]


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[str]]:
    # Sorted and distinct: two workers inserting or deleting the same keys lock them in one order
    # (in any other a concurrent offer of overlapping lists can deadlock on the unique index).
    ordered = sorted(set(keys))
    return [k[0] for k in ordered], [k[1] for k in ordered]


def _lease(row: object) -> Lease:
    r: Sequence[object] = row  # type: ignore[assignment]  # an asyncpg Record
    return Lease(account=r[0], calendar_id=r[1], holder=r[2], token=r[3], expires=r[4])  # type: ignore[arg-type]


async def beat(conn: Conn, worker: str, ttl: dt.timedelta, accounts: Sequence[str] | None) -> Census:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO workers (name, seen, expires) VALUES ($1, now(), now() + $2::interval)"
            " ON CONFLICT (name) DO UPDATE SET seen = excluded.seen, expires = excluded.expires",
            worker,
            ttl,
        )
        await conn.execute("DELETE FROM workers WHERE expires < now() - $1::interval", FORGET_WORKERS)
        alive = await conn.fetchval("SELECT count(*) FROM workers WHERE expires > now()")
        if accounts is None:
            calendars = await conn.fetchval("SELECT count(*) FROM leases")
        else:
            calendars = await conn.fetchval(
                "SELECT count(*) FROM leases WHERE account = ANY($1::text[])", sorted(set(accounts))
            )
    return Census(workers=int(alive), calendars=int(calendars))


async def offer(conn: Conn, keys: Sequence[Key]) -> None:
    if keys:
        await conn.execute(
            "INSERT INTO leases (account, calendar_id) SELECT * FROM unnest($1::text[], $2::text[])"
            " ON CONFLICT (account, calendar_id) DO NOTHING",
            *_columns(keys),
        )


async def retire(conn: Conn, keys: Sequence[Key]) -> None:
    if keys:
        await conn.execute(
            "DELETE FROM leases AS l USING unnest($1::text[], $2::text[]) AS k(account, calendar_id)"
            " WHERE l.account = k.account AND l.calendar_id = k.calendar_id",
            *_columns(keys),
        )


async def claim(
    conn: Conn,
    worker: str,
    ttl: dt.timedelta,
    limit: int,
    accounts: Sequence[str] | None,
    keys: Sequence[Key] | None,
    schema: str,
) -> list[Lease]:
    if limit <= 0 or (accounts is not None and not accounts) or (keys is not None and not keys):
        return []
    args: list[object] = [worker, ttl, limit]
    where = ""
    if accounts is not None:
        args.append(sorted(set(accounts)))
        where += f" AND l.account = ANY(${len(args)}::text[])"
    if keys is not None:
        args += _columns(keys)
        where += (
            f" AND (l.account, l.calendar_id) IN (SELECT * FROM unnest(${len(args) - 1}::text[], ${len(args)}::text[]))"
        )
    # A lease ``worker`` itself holds unexpired is not free either: a second process started under
    # the same name must not take the first one's calendars. SKIP LOCKED: a row another claim is
    # taking, or that an in-flight fenced write holds FOR SHARE, is passed over, never waited for;
    # a row claimed and committed since this statement's snapshot is re-read under the lock and
    # fails ``expires < now()``, so two claims never return the same calendar.
    # A holder is alive while its session holds its name lock (``alive_key``): a process that died
    # (kill -9, a crash) let go of it with its connection, so its calendars are free at once rather
    # than once its leases lapse. A stalled one (SIGSTOP, a GC pause) keeps its session, and its
    # leases run out as usual; either way its writes are fenced.
    args.append(schema)
    dead = (
        " OR NOT EXISTS (SELECT 1 FROM pg_locks AS pl WHERE pl.locktype = 'advisory' AND pl.granted"
        " AND pl.objsubid = 1 AND pl.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((pl.classid::bigint << 32) | pl.objid::bigint)"
        f" = hashtextextended('calbridge:worker:' || ${len(args)}::text || ':' || l.holder, 0))"
    )
    rows = await conn.fetch(
        "WITH free AS (SELECT l.account, l.calendar_id FROM leases AS l"
        f" WHERE (l.holder IS NULL OR l.expires < now(){dead}){where}"
        " ORDER BY l.account, l.calendar_id LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " UPDATE leases AS l SET holder = $1, token = nextval('lease_tokens'), expires = now() + $2::interval"
        f" FROM free WHERE l.account = free.account AND l.calendar_id = free.calendar_id RETURNING {_LEASE_COLS}",
        *args,
    )
    return sorted((_lease(r) for r in rows), key=lambda lease: lease.key)


async def renew(conn: Conn, worker: str, ttl: dt.timedelta) -> list[Lease]:
    # An expired lease nobody took yet is revived: its token is still the calendar's, so nothing was
    # written by anyone else meanwhile. One a claim took has another holder and is not returned.
    rows = await conn.fetch(
        f"UPDATE leases AS l SET expires = now() + $2::interval WHERE l.holder = $1 RETURNING {_LEASE_COLS}",
        worker,
        ttl,
    )
    return sorted((_lease(r) for r in rows), key=lambda lease: lease.key)


async def release(conn: Conn, leases: Sequence[Lease]) -> None:
    if not leases:
        return
    ordered = sorted(leases, key=lambda lease: (lease.key, lease.token))
    await conn.execute(
        "UPDATE leases AS l SET holder = NULL, expires = NULL"
        " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(account, calendar_id, token)"
        " WHERE l.account = r.account AND l.calendar_id = r.calendar_id AND l.token = r.token",
        [x.account for x in ordered],
        [x.calendar_id for x in ordered],
        [x.token for x in ordered],
    )


async def holdings(conn: Conn) -> list[Holding]:
    rows = await conn.fetch("SELECT account, calendar_id, holder, expires FROM leases ORDER BY account, calendar_id")
    return [Holding(account=r[0], calendar_id=r[1], holder=r[2], expires=r[3]) for r in rows]


async def holders(conn: Conn) -> dict[Key, tuple[str, dt.datetime]]:
    """(holder, expires) of every calendar held (an expired lease included: its worker stopped)."""
    rows = await conn.fetch("SELECT account, calendar_id, holder, expires FROM leases WHERE holder IS NOT NULL")
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


async def workers(conn: Conn) -> list[Worker]:
    rows = await conn.fetch("SELECT name, seen, expires FROM workers WHERE expires > now() ORDER BY name")
    return [Worker(name=r[0], seen=r[1], expires=r[2]) for r in rows]


async def publish(conn: Conn, channel_name: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", channel_name, payload)


async def fenced(conn: Conn, lease: Lease, write: Callable[[Conn], Awaitable[_T]]) -> _T:
    """``write(conn)`` in one transaction that first checks ``lease``'s token is still its calendar's.

    The write functions open their own ``conn.transaction()``: inside this one asyncpg makes it a
    savepoint, so the check and the write commit (or roll back) together.

    FOR SHARE against the claim's FOR UPDATE SKIP LOCKED: while this transaction holds the row, a
    claim skips it (so no token changes under a write in flight); a write that comes while a claim
    holds the row waits for its commit and reads the new token, as does one after it. Either way a
    taken-over writer writes nothing.

    Raises:
        LeaseLost: the calendar is no longer known, another claim drew a new token, or the lease was
            released.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT token, holder FROM leases WHERE account = $1 AND calendar_id = $2 FOR SHARE",
            lease.account,
            lease.calendar_id,
        )
        if row is None or row[0] != lease.token or row[1] != lease.holder:
            why = "no longer known" if row is None else "taken over or released"
            raise LeaseLost(f"lease on {lease.account}/{lease.calendar_id} lost ({why}): nothing was written")
        return await write(conn)


def alive_key(schema: str, worker: str) -> str:
    """The session-level advisory lock a holder keeps while it lives (see :func:`claim`)."""
    return f"calbridge:worker:{schema}:{worker}"


async def hold_alive(conn: Conn, schema: str, worker: str) -> bool:
    """Take ``worker``'s name lock on ``conn``'s session; False when another live session has it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", alive_key(schema, worker)))
