"""End to end through SyncEngine and the SQLite store: window re-anchoring and resume after a kill."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from calbridge.config import Config, parse_config
from calbridge.engine import ChangeBatch, SyncEngine
from calbridge.planner import reanchor_due
from calbridge.provider import Capabilities
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.state import CalendarState
from calbridge.store.sqlite import SqliteStore
from calbridge.testing import tls
from calbridge.testing.server import ThreadedServer
from calbridge_providers.graph.emulator import GraphEmulator

from .conftest import UTC, at

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)


def config(emulator: GraphEmulator, server: ThreadedServer, ca: tls.TestCA, tmp: Path, **options: Any) -> Config:
    entry = emulator.account_config(name="m365", base_url=server.url, ca_file=str(ca.ca_file))
    entry["options"] = {"page_size": 2, **options}
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "1d", "future": "10d"}, "accounts": [entry]}
    return parse_config(doc, base_dir=tmp, env={}, registry=default_registry)


async def run(cfg: Config, now: dt.datetime, **kw: Any) -> Any:
    async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, clock=lambda: now, retry_policy=FAST,
                                                                **kw) as engine:  # fmt: skip
        return await engine.sync()


async def titles(cfg: Config) -> list[str]:
    async with SqliteStore(cfg.store_path) as store:
        return sorted(e.title or "" for e in await store.query())


async def test_reanchoring_picks_up_an_event_entering_the_window(
    emulator: GraphEmulator, server: ThreadedServer, test_ca: tls.TestCA, tmp_path: Path
) -> None:
    cfg = config(emulator, server, test_ca, tmp_path)
    slack = cfg.settings.slack  # the listing asks for the window plus this much: [Feb 28, Apr 11)
    emulator.create_event("Soon", at(2026, 3, 2, 10), at(2026, 3, 2, 11), time_zone="UTC")
    emulator.create_event("Far", at(2026, 4, 11, 10), at(2026, 4, 11, 11), time_zone="UTC")  # just beyond
    report = await run(cfg, T0)
    assert report.ok and report.calendars[0].full
    assert await titles(cfg) == ["Soon"]
    # an hour later: the delta link (frozen to the first window) is used, nothing new
    report = await run(cfg, T0 + dt.timedelta(hours=1))
    assert report.ok and not report.calendars[0].full and await titles(cfg) == ["Soon"]
    # Day by day the delta link lasts until the slack is used up (the calendar's own cycle day, within
    # slack days); that day a re-anchored full listing brings "Far" in and sweeps "Soon".
    state = CalendarState(account="m365", calendar_id=cfg.accounts[0].calendars[0], full_started=T0)
    caps = Capabilities(window_bound_cursor=True, sync_yields_occurrences=True)
    due = next(d for d in range(1, slack.days + 1) if reanchor_due(state, T0 + dt.timedelta(days=d), caps, slack))
    for d in range(1, due + 1):
        report = await run(cfg, T0 + dt.timedelta(days=d), allow_mass_delete=True)  # "Soon" is all it held
        assert report.ok and report.calendars[0].full is (d == due), d
    assert await titles(cfg) == ["Far"]
    delta = [r for r in emulator.requests if "calendarView/delta" in r.path and "startDateTime" in r.url]
    assert len(delta) == 2
    day = (T0 + dt.timedelta(days=due - 1)).strftime("%Y-%m-%d")
    assert f"startDateTime={day}T00:00:00Z" in delta[-1].url.replace("%3A", ":")


async def test_resume_after_a_kill_mid_round(
    emulator: GraphEmulator, server: ThreadedServer, test_ca: tls.TestCA, tmp_path: Path
) -> None:
    cfg = config(emulator, server, test_ca, tmp_path)
    for i in range(9):
        emulator.create_event(f"E{i}", at(2026, 3, 2, 8 + i), at(2026, 3, 2, 8 + i, 30), time_zone="UTC")
    emulator.delay = 0.05

    async def killed() -> None:
        task = asyncio.current_task()
        assert task is not None
        pages = 0

        def listener(batch: ChangeBatch) -> None:
            nonlocal pages
            pages += 1
            if pages == 2:
                task.cancel()  # the process dies after two committed pages

        async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, clock=lambda: T0,
                                                                    retry_policy=FAST) as engine:  # fmt: skip
            engine.add_listener(listener)
            await engine.sync()

    with pytest.raises(asyncio.CancelledError):
        await killed()
    partial = await titles(cfg)
    assert 0 < len(partial) < 9
    emulator.delay = 0.0
    before = len(emulator.requests)
    report = await run(cfg, T0)
    assert report.ok
    assert await titles(cfg) == [f"E{i}" for i in range(9)]
    resumed = [r for r in emulator.requests[before:] if "calendarView/delta" in r.path]
    assert "$skiptoken" in resumed[0].url and "startDateTime" not in resumed[0].url  # resumed, not restarted
