"""Expansion bookkeeping and publishing: what an independent review of the engine found, pinned."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from calbridge.config import load_config
from calbridge.engine import ChangeBatch, SyncEngine
from calbridge.model import Delete, Kind, Status, Upsert
from calbridge.retry import RetryPolicy
from calbridge.store.sqlite import SqliteStore

from .conftest import NOW, FakeEnv, fake_event

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)


async def sync(env: FakeEnv, now: dt.datetime = NOW, **kw: Any) -> tuple[Any, list[ChangeBatch]]:
    published: list[ChangeBatch] = []
    async with (
        env.open() as store,
        SyncEngine(load_config(env.config), store, clock=lambda: now, retry_policy=FAST, **kw) as engine,
    ):
        engine.add_listener(published.append)
        report = await engine.sync()
    return report, published


async def happenings(env: FakeEnv, now: dt.datetime = NOW) -> list[tuple[str, str | None]]:
    window = load_config(env.config).settings.window(now)
    async with env.open() as store:
        return [(e.id, e.title) for e in await store.query(window=window, expand=True)]


def weekly(count: int, title: str = "weekly", **kw: Any) -> dict[str, Any]:
    rule = (f"RRULE:FREQ=WEEKLY;COUNT={count}",)
    return fake_event("s1", start=NOW + dt.timedelta(days=1), kind=Kind.SERIES, recurrence=rule, title=title, **kw)


async def test_a_changed_series_is_expanded_even_if_the_run_failed_before_expansion(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", weekly(5))
    await sync(store_env)
    assert len(await happenings(store_env)) == 5
    store_env.server.put("cal1", weekly(2, title="renamed"))
    store_env.server.add_fault("ok")  # the listing goes through...
    for _ in range(3):
        store_env.server.add_fault("transient")  # ...the expansion does not
    report, _ = await sync(store_env)
    assert not report.ok
    report, _ = await sync(store_env)  # nothing new on the server: only the stored dirty flag knows
    assert report.ok
    assert [t for _, t in await happenings(store_env)] == ["renamed", "renamed"]


async def test_a_series_turned_single_leaves_no_occurrences(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", weekly(5))
    await sync(store_env)
    store_env.server.put("cal1", fake_event("s1", start=NOW + dt.timedelta(days=1), title="now single"))
    await sync(store_env)
    assert await happenings(store_env) == [("s1", "now single")]


async def test_a_cancelled_series_leaves_nothing_when_the_window_moves_in_the_same_run(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", weekly(10))
    await sync(store_env)
    store_env.server.put("cal1", weekly(10, status=Status.CANCELLED))
    later = NOW + dt.timedelta(days=3)
    await sync(store_env, now=later)
    assert await happenings(store_env, later) == []


async def test_occurrences_leaving_the_window_are_pruned(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", weekly(30))
    await sync(store_env)
    later = NOW + dt.timedelta(days=60)  # the first weeks fall out of the 30-day past
    await sync(store_env, now=later)
    async with store_env.open() as store:
        (row,) = await store.status()
    assert row.occurrences == len(await happenings(store_env, later))


async def test_deleting_a_series_publishes_what_it_took_with_it(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", weekly(3))
    exc = fake_event("s1_x", start=NOW + dt.timedelta(days=9), kind=Kind.EXCEPTION, series_id="s1")
    store_env.server.put("cal1", exc)
    _, published = await sync(store_env)
    held = {c.event.id for b in published for c in b.changes if isinstance(c, Upsert)}
    store_env.server.delete("cal1", "s1")
    _, published = await sync(store_env)
    gone = {c.key.id for b in published for c in b.changes if isinstance(c, Delete)}
    assert gone == held  # a listener's copy ends exactly as the mirror: empty


async def test_a_failing_listener_does_not_fail_the_sync(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", fake_event(1))

    def broken(batch: ChangeBatch) -> None:
        raise RuntimeError("listener bug")

    async with store_env.open() as store, SyncEngine(load_config(store_env.config), store) as engine:
        engine.add_listener(broken)
        report = await engine.sync()
    assert report.ok


async def test_a_held_sweep_resolved_in_the_same_run_is_not_reported(store_env: FakeEnv) -> None:
    events = [fake_event(i) for i in range(10)]
    for e in events:
        store_env.server.put("cal1", e)
    await sync(store_env)
    for i in range(6):
        store_env.server.delete("cal1", f"ev{i:05d}")
    store_env.server.expire_cursors()
    report, _ = await sync(store_env)
    assert report.calendars[0].sweep_held == (6, 10)
    for e in events[:6]:  # the access came back: the server holds them again
        store_env.server.put("cal1", e)
    report, _ = await sync(store_env)
    assert report.ok and report.calendars[0].sweep_held is None
    assert len(await happenings(store_env)) == 10


class _CountingStore(SqliteStore):
    """The SQLite store, counting its expansion writes (what one write held). SQLite-only: a subclass
    of one store's class; the batching it checks is the engine's, the same for both stores."""

    writes: list[int]

    async def replace_occurrences(self, *args: Any, **kw: Any) -> Any:
        self.writes.append(len(args[2]))
        return await super().replace_occurrences(*args, **kw)


async def test_one_series_expansions_are_written_together_up_to_the_batch(fake_env: FakeEnv, monkeypatch: Any) -> None:
    import calbridge._calendar_sync as calendar_sync

    monkeypatch.setattr(calendar_sync, "EXPANSION_BATCH", 10)  # 12 series of 4 occurrences: 3 per write
    raw = yaml.safe_load(fake_env.config.read_text())
    raw["window"]["slack"] = "0d"  # no slack: one expansion step (slack spreads series over steps)
    fake_env.config.write_text(yaml.safe_dump(raw))
    for i in range(12):
        rule = ("RRULE:FREQ=WEEKLY;COUNT=4",)
        fake_env.server.put(
            "cal1", fake_event(f"s{i}", start=NOW + dt.timedelta(days=1, hours=i), kind=Kind.SERIES, recurrence=rule)
        )
    async with _CountingStore(fake_env.store) as store:
        store.writes = []
        async with SyncEngine(load_config(fake_env.config), store, clock=lambda: NOW, retry_policy=FAST) as engine:
            assert (await engine.sync()).ok
        assert store.writes == [3, 3, 3, 3]  # series per write, each write reaching the batch of 10 occurrences
    assert len(await happenings(fake_env)) == 48
