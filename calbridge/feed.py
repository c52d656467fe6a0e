"""The durable change feed: every change a commit made to the mirror, numbered in that commit's own
transaction, read by offset (``calbridge changes``, :func:`feed`).

Listeners and ``SyncEngine.changes()`` are in-process and best effort (a crash between a commit and
its publication loses what they would have received); the feed is the durable path: a consumer that
keeps its offset (``consumer=``) reads every committed change at least once, in order, after its own
downtime too. Sequence numbers only grow; they need not be contiguous.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import attrs
import msgspec

__all__ = ["FeedBatch", "FeedEntry", "FeedStore", "feed"]

_decode = msgspec.json.decode


@functools.lru_cache(maxsize=64)
def _stamp(committed: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; a commit's entries share their second, so this is mostly a hit."""
    return dt.datetime.fromtimestamp(committed, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen(kw_only=True)
class FeedEntry:
    """One committed change. ``event_json`` is the exported event of an upsert, or for a delete what
    was deleted (``None`` when unknown); ``created`` says whether an upsert added its key."""

    seq: int
    committed: int  # Unix seconds, UTC
    account: str
    calendar_id: str
    id: str
    op: str  # "upsert" | "delete"
    created: bool | None = None
    event_json: str | None = attrs.field(default=None, repr=False)

    @property
    def committed_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.committed, dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of ``service.md``: ``event`` null for a delete, what it removed under ``deleted``."""
        event = None if self.event_json is None else _decode(self.event_json)
        out: dict[str, Any] = {
            "seq": self.seq,
            "op": self.op,
            "account": self.account,
            "calendar_id": self.calendar_id,
            "id": self.id,
            "committed": _stamp(self.committed),
        }
        if self.op == "delete":
            out["event"] = None
            out["deleted"] = event
        else:
            out["event"] = event
            out["created"] = self.created
        return out

    def to_line(self) -> str:
        """:meth:`to_dict` as one compact JSON line, the stored event JSON spliced in, not re-encoded."""
        head = json.dumps(
            {
                "seq": self.seq,
                "op": self.op,
                "account": self.account,
                "calendar_id": self.calendar_id,
                "id": self.id,
                "committed": _stamp(self.committed),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )[:-1]
        body = "null" if self.event_json is None else self.event_json
        if self.op == "delete":
            return f'{head},"event":null,"deleted":{body}}}'
        created = "null" if self.created is None else ("true" if self.created else "false")
        return f'{head},"event":{body},"created":{created}}}'


class FeedStore(Protocol):
    """The store role behind the feed (every store implements it; the conformance suite holds it)."""

    async def read_changes(self, after: int, limit: int, *, account: str | None = None) -> list[FeedEntry]:
        """Up to ``limit`` entries with ``seq > after``, in order. ``after`` (other than 0) below what
        retention dropped raises :class:`~calbridge.errors.FeedBehind`."""
        ...

    async def last_change(self) -> int:
        """The highest committed sequence number (0 when none)."""
        ...

    async def consumer_offset(self, name: str) -> int | None:
        """The last ``seq`` consumer ``name`` acknowledged, or ``None`` for a new consumer."""
        ...

    async def set_consumer_offset(self, name: str, seq: int) -> None: ...

    async def prune_changes(self, before: dt.datetime, *, limit: int = 1000) -> int:
        """Drop at most ``limit`` of the oldest entries committed before ``before``; returns how many."""
        ...


@attrs.define
class FeedBatch:
    """Entries read together; :meth:`ack` stores the consumer's offset past them (at-least-once)."""

    entries: Sequence[FeedEntry]
    _store: FeedStore
    _consumer: str | None

    async def ack(self) -> None:
        if self._consumer is not None and self.entries:
            await self._store.set_consumer_offset(self._consumer, self.entries[-1].seq)


async def feed(
    store: FeedStore,
    consumer: str | None = None,
    *,
    after: int | None = None,
    account: str | None = None,
    limit: int = 500,
    follow: bool = False,
    poll: float = 0.2,
) -> AsyncIterator[FeedBatch]:
    """``async for batch in feed(store, "c1"): ...; await batch.ack()``.

    Starts after ``after``, else after the consumer's stored offset, else from the oldest kept. With
    ``follow`` it waits for new commits (checking every ``poll`` seconds, one indexed ``max(seq)``)
    instead of ending. An un-acked batch is read again by the consumer's next run.
    """
    if after is None and consumer is not None:
        after = await store.consumer_offset(consumer)
    position = after or 0
    while True:
        top = await store.last_change()
        entries = await store.read_changes(position, limit, account=account)
        if entries:
            position = entries[-1].seq
            yield FeedBatch(entries, store, consumer)
            continue
        if not follow:
            return
        # Gap-free: with ``top`` visible, so is every lower number, and none of them matched.
        position = max(position, top)
        # Another process commits: nothing here to wait on but the store itself.
        while await store.last_change() <= position:  # noqa: ASYNC110
            await asyncio.sleep(poll)
