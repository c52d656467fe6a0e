"""End to end: the Feishu plugin (loaded by its entry point) through SyncEngine into SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from calbridge.config import Config, parse_config
from calbridge.engine import SyncEngine
from calbridge.model import Kind
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import at

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)


def config(emu: FeishuEmulator, server: ThreadedServer, tmp: Path, **options: Any) -> Config:
    account = emu.account_config(name="acme-feishu", base_url=server.url, ca_file=None)
    if options:
        account["options"] = options
    data = {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"}, "accounts": [account]}
    return parse_config(data, base_dir=tmp, registry=default_registry, env={})


async def run(cfg: Config, **kw: Any) -> Any:
    async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, retry_policy=FAST, **kw) as engine:
        return await engine.sync()


async def stored(cfg: Config, *, expand: bool = False) -> dict[str, Any]:
    async with SqliteStore(cfg.store_path) as store:
        return {e.id: e for e in await store.query(expand=expand, include_cancelled=True)}


async def test_expired_token_recovers_with_full_listing_and_sweep(
    emu: FeishuEmulator, server: ThreadedServer, tmp_path: Path
) -> None:
    keep = emu.create_event(summary="keep", start=at(1), end=at(1, 1))
    doomed = emu.create_event(summary="doomed", start=at(2), end=at(2, 1))
    series = emu.create_event(summary="daily", start=at(0, 1), end=at(0, 2), recurrence="FREQ=DAILY;COUNT=5")
    cfg = config(emu, server, tmp_path)
    report = await run(cfg)
    assert report.ok, report
    assert {keep, doomed, series} <= set(await stored(cfg))
    occurrences = [e for e in (await stored(cfg, expand=True)).values() if e.kind is Kind.OCCURRENCE]
    assert len(occurrences) == 5

    emu.expire_sync_tokens()
    emu.delete_event(doomed)  # a full listing never reports it: only the sweep can remove it
    report = await run(cfg)
    assert report.ok and report.calendars[0].expired and report.calendars[0].full
    held = await stored(cfg)
    assert keep in held and series in held and doomed not in held


async def test_resume_after_kill_mid_round(emu: FeishuEmulator, server: ThreadedServer, tmp_path: Path) -> None:
    ids = [emu.create_event(summary=f"e{i}", start=at(1, i % 24), end=at(1, i % 24 + 1)) for i in range(130)]
    cfg = config(emu, server, tmp_path, page_size=50)
    outer: list[asyncio.Task[Any]] = []

    def progress(account: str, kind: str, info: dict[str, Any]) -> None:
        if kind == "page":
            outer[0].cancel()  # killed right after the first page was committed

    task = asyncio.ensure_future(run(cfg, progress=progress))
    outer.append(task)
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert 0 < len(await stored(cfg)) < 130
    emu.clear_log()
    report = await run(cfg)
    assert report.ok
    listed = [r for r in emu.requests("/events") if r["path"].endswith("/events")]
    assert listed[0]["query"].get("sync_token") or listed[0]["query"].get("page_token")
    assert len(listed) == 2  # only the pages not yet committed
    assert set(ids) <= set(await stored(cfg))


async def test_a_relisting_through_the_store_reuses_every_stored_attendee_list(
    emu: FeishuEmulator, server: ThreadedServer, tmp_path: Path
) -> None:
    from calbridge_providers.feishu.emulator import person

    ids = [emu.create_event(summary=f"m{i}", start=at(i % 20, 1), end=at(i % 20, 2),
                            attendees=[person("ou_a", "Ann"), person(f"ou_{i}", f"P{i}")])
           for i in range(60)]  # fmt: skip
    cfg = config(emu, server, tmp_path, page_size=50, attendee_qps=1000)
    assert (await run(cfg)).ok
    assert len(emu.requests("/attendees")) == 60
    emu.clear_log()
    emu.expire_sync_tokens()
    emu.update_event(ids[5], summary="renamed")
    report = await run(cfg)
    assert report.ok and report.calendars[0].expired and report.calendars[0].full
    assert [r["path"].split("/events/")[1].split("/")[0] for r in emu.requests("/attendees")] == [ids[5]]
    held = await stored(cfg)
    assert all(len(held[i].attendees) == 2 for i in ids)
