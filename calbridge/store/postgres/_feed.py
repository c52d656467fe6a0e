"""The PostgreSQL store's change feed: each write's published changes appended as its transaction's
**last** statement, read back by number, consumers' offsets, retention.

Gap-free by the counter row (docs/design.md, "The change feed"): a ``bigserial`` would let 11 commit
before 10. The append bumps the one ``feed_counter`` row and inserts its entries in one statement;
the row lock it takes is held to COMMIT, so the next writer draws its numbers only once this one is
visible. Keep it last: anything after it would hold every other writer behind this transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ...errors import FeedBehind
from ...export import event_to_json_bytes
from ...feed import FeedEntry
from ...model import Change, Delete
from ._schema import Conn

_APPEND = (
    "WITH c AS (UPDATE feed_counter SET seq = seq + $1 RETURNING seq)"
    " INSERT INTO feed (seq, committed, account, calendar_id, id, op, created, event)"
    " SELECT c.seq - $1 + r.n, $2, $3, $4, r.id, r.op, r.created, r.event"
    " FROM c, unnest($5::text[], $6::text[], $7::boolean[], $8::text[]) WITH ORDINALITY AS r(id, op, created, event, n)"
)
_PRUNED = "feed_pruned_through"


async def append(
    conn: Conn, account: str, calendar_id: str, changes: Sequence[Change], texts: dict[str, str] | None = None
) -> None:
    """Number and record ``changes`` (what the open write transaction publishes); call it last."""
    if not changes:
        return
    ids: list[str] = []
    ops: list[str] = []
    created: list[bool | None] = []
    events: list[str | None] = []
    for change in changes:
        if isinstance(change, Delete):
            prev = change.previous
            ids.append(change.key.id)
            ops.append("delete")
            created.append(None)
            events.append(None if prev is None else event_to_json_bytes(prev).decode())
        else:
            ev = change.event
            text = texts.get(ev.id) if texts else None
            ids.append(ev.id)
            ops.append("upsert")
            created.append(change.created)
            events.append(text if text is not None else event_to_json_bytes(ev).decode())
    await conn.execute(_APPEND, len(ids), int(time.time()), account, calendar_id, ids, ops, created, events)


async def _pruned_through(conn: Conn) -> int:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", _PRUNED)
    return 0 if value is None else int(value)


async def read(conn: Conn, after: int, limit: int, account: str | None = None) -> list[FeedEntry]:
    """Up to ``limit`` entries with ``seq > after`` in order; ``after`` (other than 0) below what
    retention dropped raises :class:`FeedBehind`."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if after > 0:
            dropped = await _pruned_through(conn)
            if after < dropped:
                low = await conn.fetchval("SELECT min(seq) FROM feed")
                raise FeedBehind(after=after, oldest=dropped + 1 if low is None else int(low))
        sql = "SELECT seq, committed, account, calendar_id, id, op, created, event FROM feed WHERE seq > $1"
        args: list[object] = [after]
        if account is not None:
            sql += " AND account = $2"
            args.append(account)
        rows = await conn.fetch(sql + f" ORDER BY seq LIMIT ${len(args) + 1}", *args, limit)
    return [FeedEntry(seq=r[0], committed=r[1], account=r[2], calendar_id=r[3], id=r[4], op=r[5],
                      created=r[6], event_json=r[7]) for r in rows]  # fmt: skip


async def last(conn: Conn) -> int:
    value = await conn.fetchval("SELECT max(seq) FROM feed")
    return 0 if value is None else int(value)


async def get_offset(conn: Conn, name: str) -> int | None:
    value = await conn.fetchval('SELECT "offset" FROM feed_consumers WHERE name = $1', name)
    return None if value is None else int(value)


async def set_offset(conn: Conn, name: str, seq: int) -> None:
    await conn.execute(
        'INSERT INTO feed_consumers (name, "offset", updated) VALUES ($1, $2, $3)'
        ' ON CONFLICT (name) DO UPDATE SET "offset" = excluded."offset", updated = excluded.updated',
        name,
        seq,
        int(time.time()),
    )


async def prune(conn: Conn, before: int, limit: int) -> int:
    """Drop at most ``limit`` of the oldest entries committed before ``before`` (Unix seconds), in one
    short transaction; returns how many went."""
    if await conn.fetchval("SELECT 1 FROM feed WHERE committed < $1 LIMIT 1", before) is None:
        return 0
    async with conn.transaction():
        top = await conn.fetchval(
            "SELECT max(seq) FROM (SELECT seq FROM feed WHERE committed < $1 ORDER BY seq LIMIT $2) AS old",
            before,
            limit,
        )
        if top is None:
            return 0
        gone = await conn.fetchval(
            "WITH d AS (DELETE FROM feed WHERE seq <= $1 RETURNING 1) SELECT count(*) FROM d", top
        )
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE"
            " SET value = greatest(meta.value::bigint, excluded.value::bigint)::text",
            _PRUNED,
            str(top),
        )
        return int(gone)
