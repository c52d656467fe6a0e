"""Store conformance, the change feed: every published change recorded in its write's transaction and
numbered in order, consumers' offsets, retention that refuses a silent gap, and no gap ever seen by a
reader while several writers commit at once (the outbox trap of autoincrement under concurrency)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json

import pytest

from ..errors import FeedBehind
from ..feed import FeedEntry, feed
from ..model import Change, Delete, Upsert
from ..store.base import PendingSweep, Store
from ._store_build import CAL, DAY, HOUR, T0, A, StoreOpener, dels, ev, occ, series, state, ups, window, with_store


def _as_feed(changes: list[Change]) -> list[tuple[str, str]]:
    return [("delete", c.key.id) if isinstance(c, Delete) else ("upsert", c.event.id) for c in changes]


def _ops(entries: list[FeedEntry]) -> list[tuple[str, str]]:
    return [(e.op, e.id) for e in entries]


class FeedCases:
    """``read_changes``, ``last_change``, consumer offsets and ``prune_changes``."""

    def test_every_write_records_exactly_what_it_published(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            published: list[Change] = []
            published += await store.commit_page(state(mark=1), ups(ev("a"), ev("b"), series("s")))
            published += await store.commit_page(state(mark=1), ups(ev("a")))  # equal: no change, no entry
            published += await store.commit_page(state(mark=1), ups(ev("a", title="renamed")) + dels("b"))
            w = window(3)
            published += await store.replace_occurrences(A, CAL, ["s"], w, [occ("s", T0), occ("s", T0 + DAY)])
            published += await store.prune_occurrences(A, CAL, ["s"], window(1))
            published += await store.commit_page(state(mark=2), ups(ev("c")))
            published += await store.sweep_batch(state(mark=2), PendingSweep(mark=2), limit=100)
            entries = await store.read_changes(0, 1000)
            assert _ops(entries) == _as_feed(published)
            seqs = [e.seq for e in entries]
            assert seqs == sorted(set(seqs)) and seqs[-1] == await store.last_change()
            assert all(e.account == A and e.calendar_id == CAL for e in entries)

        with_store(open_store, case)

    def test_entries_carry_the_exported_event_or_what_was_deleted(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(mark=1), ups(ev("a", title="first")))
            await store.commit_page(state(mark=1), ups(ev("a", title="second")))
            await store.commit_page(state(mark=1), dels("a"))
            entries = await store.read_changes(0, 10)
            assert all(json.loads(e.to_line()) == e.to_dict() for e in entries)
            first, second, gone = (e.to_dict() for e in entries)
            assert (first["op"], first["created"], first["event"]["title"]) == ("upsert", True, "first")
            assert (second["created"], second["event"]["title"]) == (False, "second")
            assert gone["op"] == "delete" and gone["event"] is None and gone["deleted"]["title"] == "second"
            assert first["committed"].endswith("Z") and len(first["committed"]) == 20

        with_store(open_store, case)

    def test_reading_after_an_offset_and_by_account(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(mark=1), ups(*(ev(f"e{i}", T0 + i * HOUR) for i in range(5))))
            all_ = await store.read_changes(0, 100)
            assert _ops(await store.read_changes(all_[1].seq, 2)) == _ops(all_[2:4])
            assert await store.read_changes(0, 100, account="nobody") == []
            assert await store.read_changes(all_[-1].seq, 100) == []

        with_store(open_store, case)

    def test_consumer_offsets_persist_across_handles(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.consumer_offset("c1") is None
            await store.commit_page(state(mark=1), ups(ev("a"), ev("b"), ev("c")))
            got: list[str] = []
            async for batch in feed(store, "c1", limit=2):
                got += [e.id for e in batch.entries]
                await batch.ack()
            assert got == ["a", "b", "c"]
            assert await store.consumer_offset("c1") == await store.last_change()

        with_store(open_store, case)

        async def again(store: Store) -> None:
            assert [b async for b in feed(store, "c1")] == []  # nothing new for c1
            assert len([e async for b in feed(store, "c2") for e in b.entries]) == 3

        with_store(open_store, again)

    def test_retention_drops_old_entries_and_refuses_a_gap(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(mark=1), ups(*(ev(f"e{i}") for i in range(6))))
            first = (await store.read_changes(0, 1))[0].seq
            await store.set_consumer_offset("slow", first)
            future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
            assert await store.prune_changes(future, limit=4) == 4  # small batches
            assert await store.prune_changes(future, limit=4) == 2
            assert await store.prune_changes(future, limit=4) == 0
            await store.commit_page(state(mark=1), ups(ev("late")))
            with pytest.raises(FeedBehind) as info:
                await store.read_changes(first, 10)
            assert info.value.oldest > first + 5
            assert _ops(await store.read_changes(0, 10)) == [("upsert", "late")]  # --after 0: oldest kept
            with pytest.raises(FeedBehind):
                [b async for b in feed(store, "slow")]
            past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            assert await store.prune_changes(past) == 0  # nothing that old

        with_store(open_store, case)

    def test_no_gap_while_writers_commit_at_once(self, open_store: StoreOpener) -> None:
        """Several handles commit pages of different calendars concurrently while a reader polls: a
        number must never become readable after a higher one already was."""

        async def main() -> None:
            async with contextlib.AsyncExitStack() as stack:
                writers = [await stack.enter_async_context(open_store()) for _ in range(4)]
                reader = await stack.enter_async_context(open_store())
                done = asyncio.Event()
                seen: set[int] = set()
                gaps: list[tuple[int, int]] = []

                async def read() -> None:
                    high = 0
                    while not done.is_set() or high < await reader.last_change():
                        for e in await reader.read_changes(0, 100_000):
                            if e.seq not in seen:
                                if e.seq < high:
                                    gaps.append((e.seq, high))
                                seen.add(e.seq)
                                high = max(high, e.seq)
                        await asyncio.sleep(0)

                async def write(n: int, w: Store) -> None:
                    cal = f"cal{n}"
                    for page in range(15):
                        events = [ev(f"p{page}-{i}", cal=cal) for i in range(5)]
                        await w.commit_page(state(mark=1, cal=cal), [Upsert(event=e) for e in events])

                task = asyncio.create_task(read())
                await asyncio.gather(*(write(n, w) for n, w in enumerate(writers)))
                done.set()
                await task
                assert gaps == []
                assert len(seen) == 4 * 15 * 5

        asyncio.run(main())
