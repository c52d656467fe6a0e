"""The PostgreSQL store's leases (``calbridge.lease.LeaseStore``) on a real server, two handles on one
database acting as two workers: claims never overlap, a takeover draws a higher token, a write fenced
by a lease taken over is refused and changes nothing, renewals return what is still held, triggers
reach the other handle (and survive their connection being cut), and the account lock excludes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from calbridge.errors import LeaseLost, StoreError
from calbridge.model import Event, Kind, Upsert, When
from calbridge.state import CalendarState
from calbridge.store.postgres import PostgresStore

MINUTE = dt.timedelta(minutes=1)
KEYS = [("acc", f"c{i:03}") for i in range(200)]
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


def upsert(calendar_id: str, id: str, title: str) -> Upsert:
    at = When.at(NOW)
    return Upsert(event=Event(provider="t", account="acc", calendar_id=calendar_id, id=id, kind=Kind.SINGLE,
                        start=at, end=at, title=title))  # fmt: skip


@pytest.fixture
async def pair(postgres_database: str, postgres_schema: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = PostgresStore(postgres_database, schema=postgres_schema, pool=3)
    b = PostgresStore(postgres_database, schema=postgres_schema, pool=3)
    async with a, b:
        await a.offer(KEYS)
        yield a, b


async def test_concurrent_claims_never_overlap_and_cover_everything(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    la, lb = await asyncio.gather(a.claim("w1", MINUTE, limit=150), b.claim("w2", MINUTE, limit=150))
    ka, kb = {lease.key for lease in la}, {lease.key for lease in lb}
    assert not ka & kb
    assert ka | kb == set(KEYS)
    # A worker never claims again what it holds (a second process of the same name gets nothing).
    assert await a.claim("w1", MINUTE, limit=500) == []


async def test_a_write_fenced_by_a_lease_taken_over_is_refused_and_changes_nothing(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = pair
    [mine] = await a.claim("w1", dt.timedelta(seconds=1), limit=1, keys=[KEYS[0]])
    fenced = a.fenced(mine)
    state = CalendarState(account="acc", calendar_id=mine.calendar_id, mark=1)
    assert await fenced.commit_page(state, [upsert(mine.calendar_id, "e1", "before")])
    with pytest.raises(StoreError):  # a fenced handle writes only its own calendar
        await fenced.save_state(CalendarState(account="acc", calendar_id=KEYS[1][1]))
    await asyncio.sleep(1.5)  # the lease lapses; another worker takes it
    [theirs] = await b.claim("w2", MINUTE, limit=1, keys=[KEYS[0]])
    assert theirs.token > mine.token
    feed_before = await a.last_change()
    with pytest.raises(LeaseLost):
        await fenced.commit_page(state, [upsert(mine.calendar_id, "e1", "after"), upsert(mine.calendar_id, "e2", "x")])
    with pytest.raises(LeaseLost):
        await fenced.record_result("acc", mine.calendar_id, at=NOW, error=None)
    events = await a.get_events("acc", mine.calendar_id, ["e1", "e2"])
    assert {k: e.title for k, e in events.items()} == {"e1": "before"}
    assert await a.last_change() == feed_before
    # The new holder writes through its own lease.
    assert await b.fenced(theirs).commit_page(state, [upsert(mine.calendar_id, "e1", "after")])
    await fenced.aclose()  # a fenced handle closes nothing
    assert (await a.get_events("acc", mine.calendar_id, ["e1"]))["e1"].title == "after"


async def test_renew_returns_what_is_still_held_and_release_frees(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    held = await a.claim("w1", MINUTE, limit=10)
    await a.release(held[:3])
    renewed = await a.renew("w1", MINUTE)
    assert {lease.key for lease in renewed} == {lease.key for lease in held[3:]}
    assert all(r.token == h.token for r, h in zip(sorted(renewed, key=lambda x: x.key), held[3:], strict=True))
    got = await b.claim("w2", MINUTE, limit=3, keys=[lease.key for lease in held])
    assert {lease.key for lease in got} == {lease.key for lease in held[:3]}


async def test_beat_census_holdings_workers_and_status(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    await a.beat("w1", MINUTE)
    census = await b.beat("w2", MINUTE, accounts=["acc"])
    assert (census.workers, census.calendars) == (2, len(KEYS))
    assert [w.name for w in await a.workers()] == ["w1", "w2"]
    [lease] = await a.claim("w1", MINUTE, limit=1)
    holders = {(h.account, h.calendar_id): h.holder for h in await b.holdings()}
    assert holders[lease.key] == "w1" and sum(1 for h in holders.values() if h) == 1
    await a.fenced(lease).record_result("acc", lease.calendar_id, at=NOW, error=None)
    [row] = [r for r in await b.status() if r.calendar_id == lease.calendar_id]
    assert row.holder == "w1" and row.lease_expires is not None and row.lease_expires > dt.datetime.now(dt.UTC)


async def test_a_trigger_reaches_the_other_handle_and_survives_a_cut_connection(
    pair: tuple[PostgresStore, PostgresStore], postgres_database: str
) -> None:
    a, b = pair
    got: list[str] = []
    async with b.listen_triggers(got.append):
        await a.publish_trigger("one")
        for _ in range(50):
            if "one" in got:
                break
            await asyncio.sleep(0.05)
        assert got == ["one"]
        conn = await asyncpg.connect(postgres_database)
        try:
            cut = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
            )
        finally:
            await conn.close()
        assert cut >= 1
        for _ in range(150):  # reconnects with a backoff of seconds at most
            await a.publish_trigger("two")
            await asyncio.sleep(0.1)
            if "two" in got:
                break
        assert "two" in got


async def test_the_account_lock_excludes_across_handles(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    order: list[str] = []

    async def hold(store: PostgresStore, name: str) -> None:
        async with store.account_lock("acme"):
            order.append(f"{name} in")
            await asyncio.sleep(0.3)
            order.append(f"{name} out")

    await asyncio.gather(hold(a, "a"), hold(b, "b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
