"""The engine, driven through the testing kit's fake provider (loaded by its entry point in the kit's
``calbridge.testing.providers`` group, which ``calbridge_test_providers`` makes visible)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from calbridge.config import load_config
from calbridge.engine import ChangeBatch, SyncEngine
from calbridge.model import Delete, Upsert
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy

from ._postgres import AnyStore
from .conftest import NOW, FakeEnv, fake_event

pytestmark = pytest.mark.usefixtures("calbridge_test_providers")

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)


async def run_sync(env: FakeEnv, **kw: Any) -> tuple[Any, list[ChangeBatch]]:
    config = load_config(env.config, registry=default_registry)
    published: list[ChangeBatch] = []
    async with (
        env.open() as store,
        SyncEngine(config, store, clock=lambda: NOW, retry_policy=kw.pop("retry_policy", FAST), **kw) as engine,
    ):
        engine.add_listener(published.append)
        report = await engine.sync()
    return report, published


async def mirror_ids(env: FakeEnv) -> list[str]:
    async with env.open() as store:
        return [e.id for e in await store.query()]


def server_ids(env: FakeEnv, cal: str = "cal1") -> list[str]:
    return sorted(env.server.events(cal))


async def test_full_then_incremental_changes_and_nothing_published_when_quiet(store_env: FakeEnv) -> None:
    for i in range(7):
        store_env.server.put("cal1", fake_event(i))
    report, published = await run_sync(store_env)
    assert report.ok and report.calendars[0].full and report.calendars[0].pages == 3
    assert await mirror_ids(store_env) == server_ids(store_env)
    assert sum(len(b.changes) for b in published) == 7

    report, published = await run_sync(store_env)
    assert report.ok and not report.calendars[0].full
    assert published == []  # a round that changed nothing publishes nothing

    store_env.server.put("cal1", fake_event(2, title="renamed"))
    store_env.server.delete("cal1", "ev00004")
    store_env.server.put("cal1", fake_event(50))
    report, published = await run_sync(store_env)
    changes = [c for b in published for c in b.changes]
    assert sorted(c.event.id for c in changes if isinstance(c, Upsert)) == ["ev00002", "ev00050"]
    assert [c.key.id for c in changes if isinstance(c, Delete)] == ["ev00004"]
    assert await mirror_ids(store_env) == server_ids(store_env)


async def test_changes_are_published_once_and_only_after_commit(store_env: FakeEnv) -> None:
    for i in range(5):
        store_env.server.put("cal1", fake_event(i))
    config = load_config(store_env.config, registry=default_registry)
    seen: list[str] = []
    # A second connection sees only committed rows: what a listener is told is already durable.
    async with (
        store_env.open() as store,
        SyncEngine(config, store, clock=lambda: NOW) as engine,
        store_env.open() as other,
    ):

        async def check(batch: ChangeBatch) -> None:
            for change in batch.changes:
                assert isinstance(change, Upsert)
                stored = await other.get_events("fake", "cal1", [change.event.id])
                assert stored[change.event.id] == change.event  # committed before published
                seen.append(change.event.id)

        engine.add_listener(check)
        await engine.sync()
        await engine.sync()
    assert sorted(seen) == server_ids(store_env)  # each once


async def test_cursor_expiry_full_listing_then_sweep_exact(store_env: FakeEnv) -> None:
    for i in range(10):
        store_env.server.put("cal1", fake_event(i))
    await run_sync(store_env)
    # Deleted while the cursor was dying: a full listing will not report these.
    store_env.server.delete("cal1", "ev00003")
    store_env.server.delete("cal1", "ev00007")
    store_env.server.put("cal1", fake_event(11))
    store_env.server.expire_cursors()
    report, published = await run_sync(store_env)
    result = report.calendars[0]
    assert report.ok and result.expired and result.full
    assert await mirror_ids(store_env) == server_ids(store_env)
    deletes = sorted(c.key.id for b in published for c in b.changes if isinstance(c, Delete))
    assert deletes == ["ev00003", "ev00007"]
    # Unchanged events re-listed by the full listing are not re-published.
    upserts = [c.event.id for b in published for c in b.changes if isinstance(c, Upsert)]
    assert upserts == ["ev00011"]


async def test_mass_sweep_is_held_and_reported_then_allowed(store_env: FakeEnv) -> None:
    for i in range(10):
        store_env.server.put("cal1", fake_event(i))
    await run_sync(store_env)
    for i in range(6):
        store_env.server.delete("cal1", f"ev{i:05d}")
    store_env.server.expire_cursors()
    report, _ = await run_sync(store_env)
    assert not report.ok and report.calendars[0].sweep_held == (6, 10)
    assert len(await mirror_ids(store_env)) == 10  # nothing wiped
    async with store_env.open() as store:
        assert [s.sweep_held for s in await store.status()] == [True]
    report, _ = await run_sync(store_env, allow_mass_delete=True)
    assert report.ok
    assert await mirror_ids(store_env) == server_ids(store_env)


async def test_wait_signal_honoured_and_transient_failures_retried(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", fake_event(1))
    store_env.server.add_fault("rate_limit", retry_after=0.4)
    store_env.server.add_fault("transient")
    report, _ = await run_sync(store_env)
    assert report.ok
    reqs = store_env.server.requests()
    assert len(reqs) == 3
    assert reqs[1]["at"] - reqs[0]["at"] >= 0.4  # no request before the wait passed


async def test_transient_failures_exhausted_are_reported_per_calendar(
    tmp_path: Any, monkeypatch: Any, any_store: AnyStore
) -> None:
    env = FakeEnv(tmp_path, calendars=("cal1", "cal2"))
    env.use(any_store)
    monkeypatch.setenv("FAKE_TOKEN", "x")
    env.server.put("cal2", fake_event(1))
    for _ in range(3):
        env.server.add_fault("transient")
    report, _ = await run_sync(env, concurrency=1)
    by_cal = {r.calendar_id: r for r in report.calendars}
    assert by_cal["cal1"].error is not None and "TransientError" in by_cal["cal1"].error
    assert by_cal["cal2"].ok
    proc = env.cli("status", check=True)
    assert "TransientError" in proc.stdout


async def test_malformed_payload_quarantined_rest_of_page_lands(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", fake_event(1))
    store_env.server.put("cal1", {"id": "broken", "malformed": True})
    store_env.server.put("cal1", fake_event(2))
    report, _ = await run_sync(store_env)
    assert report.ok and report.calendars[0].quarantined == 1
    assert await mirror_ids(store_env) == ["ev00001", "ev00002"]
    async with store_env.open() as store:
        (row,) = await store.status()
        assert row.quarantined == 1
        ((key, error),) = await store.quarantined()
        assert key.id == "broken" and "malformed" in error
    store_env.server.put("cal1", fake_event(3))
    summary = store_env.cli("sync", "--full", check=True).stdout
    assert "1 quarantined" in summary  # the summary counts it, and so does `status`
    status_row = next(line for line in store_env.cli("status", check=True).stdout.splitlines() if "fake/cal1" in line)
    assert status_row.split("│")[-2].strip() == "1"


def test_killed_between_pages_resumes_exact_without_duplicates(store_env: FakeEnv) -> None:
    for i in range(10):
        store_env.server.put("cal1", fake_event(i))
    store_env.server.set(kill_after_pages=2)
    proc = store_env.cli("sync")
    assert proc.returncode == -9  # SIGKILL between pages
    store_env.server.set(kill_after_pages=None)
    before = len(store_env.server.requests())
    proc = store_env.cli("sync", check=True)
    assert len(store_env.server.requests()) - before == 2  # resumed at page 3 of 4, not from the start
    lines = store_env.cli("events", "--format", "jsonl", check=True).stdout.splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert ids == server_ids(store_env) and len(set(ids)) == len(ids)


def test_killed_mid_sweep_still_ends_exact(store_env: FakeEnv) -> None:
    for i in range(12):
        store_env.server.put("cal1", fake_event(i))
    store_env.cli("sync", check=True)
    for i in (1, 3, 5, 7):
        store_env.server.delete("cal1", f"ev{i:05d}")
    store_env.server.expire_cursors()
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from calbridge.config import load_config
        from calbridge.engine import SyncEngine
        from calbridge.model import Delete
        from calbridge.registry import default_registry
        from calbridge.store import open_store

        def die(batch):
            if any(isinstance(c, Delete) for c in batch.changes):
                os.kill(os.getpid(), signal.SIGKILL)  # after the first committed sweep batch

        async def main():
            config = load_config({str(store_env.config)!r}, registry=default_registry)
            async with open_store(config) as store, SyncEngine(config, store, sweep_batch=1) as e:
                e.add_listener(die)
                await e.sync()

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=store_env.env(), capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    ids = [json.loads(x)["id"] for x in store_env.cli("events", "--format", "jsonl").stdout.splitlines()]
    assert len(ids) == 11  # exactly one sweep batch landed before the kill
    store_env.cli("sync", check=True)
    ids = [json.loads(x)["id"] for x in store_env.cli("events", "--format", "jsonl").stdout.splitlines()]
    assert ids == server_ids(store_env)


def test_second_sync_waits_or_says_it_is_running(fake_env: FakeEnv) -> None:
    # SQLite only: on PostgreSQL a second sync does not wait, it skips what a live holder holds
    # (tests/test_fleet.py::test_sync_skips_what_a_live_worker_holds).
    store_env = fake_env
    store_env.server.put("cal1", fake_event(1))
    store_env.cli("sync", check=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import asyncio, sys
                from calbridge.config import load_config
                from calbridge.registry import default_registry
                from calbridge.store import open_store
                async def main():
                    config = load_config({str(store_env.config)!r}, registry=default_registry)
                    async with open_store(config) as s:
                        async with s.sync_lock(wait=0):
                            print("held", flush=True)
                            await asyncio.sleep(6)  # room for two CLI starts on a loaded machine
                asyncio.run(main())
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    proc = store_env.cli("sync", "--no-wait")
    assert proc.returncode == 1 and "another calbridge sync" in proc.stderr
    start = time.monotonic()
    proc = store_env.cli("sync")
    assert proc.returncode == 0 and "waiting" in proc.stderr
    assert time.monotonic() - start > 0.5
    holder.wait(10)
    ids = [json.loads(x)["id"] for x in store_env.cli("events", "--format", "jsonl").stdout.splitlines()]
    assert ids == ["ev00001"]
