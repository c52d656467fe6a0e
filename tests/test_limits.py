"""Retry policy, concurrency bounds, re-anchoring stagger and HTTPS_PROXY: the engine's limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web

from calbridge.config import AccountConfig, Config, parse_config
from calbridge.cursor import Cursor
from calbridge.engine import SyncEngine
from calbridge.errors import AuthError, RateLimited, TransientError
from calbridge.model import Calendar, Window
from calbridge.planner import reanchor_due
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, Provider, ProviderContext
from calbridge.registry import Registry, default_registry
from calbridge.retry import Retrier, RetryPolicy
from calbridge.store.base import CalendarState
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


class Failing:
    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_retry_after_is_waited_exactly_and_backoff_is_capped_and_jittered() -> None:
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    policy = RetryPolicy(attempts=8, base_backoff=1.0, max_backoff=4.0)
    call = Failing([RateLimited("slow down", retry_after=2.5), *[TransientError("503") for _ in range(5)]])
    assert await Retrier(policy, sleep=sleep).call(call) == "ok"
    assert waits[0] == 2.5  # the provider's own wait, not our backoff
    assert all(0 <= w <= 4.0 for w in waits[1:])  # capped
    jittered = []
    for _ in range(5):
        waits.clear()
        await Retrier(policy, sleep=sleep).call(Failing([TransientError("503") for _ in range(3)]))
        jittered.append(tuple(waits))
    assert len(set(jittered)) > 1  # random jitter, not a fixed schedule


async def test_auth_errors_are_not_retried_and_attempts_are_bounded() -> None:
    call = Failing([AuthError("no")])
    with pytest.raises(AuthError):
        await Retrier(RetryPolicy(attempts=5), sleep=lambda d: asyncio.sleep(0)).call(call)
    assert call.calls == 1
    call = Failing([TransientError("503") for _ in range(10)])
    with pytest.raises(TransientError):
        await Retrier(RetryPolicy(attempts=3), sleep=lambda d: asyncio.sleep(0)).call(call)
    assert call.calls == 3


class SlowProvider:
    """Each calendar's round takes a moment; records how many run at once, per account and overall."""

    capabilities = Capabilities(sync_yields_occurrences=True)
    running: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}

    def __init__(self, account: str) -> None:
        self.account = account

    async def calendars(self) -> Sequence[Calendar]:
        return [Calendar(id=f"c{i}") for i in range(4)]

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        for key in (self.account, "*"):
            self.running[key] = self.running.get(key, 0) + 1
            self.peak[key] = max(self.peak.get(key, 0), self.running[key])
        await asyncio.sleep(0.05)
        for key in (self.account, "*"):
            self.running[key] -= 1
        yield Page(changes=[], cursor=Cursor(scheme="slow", version=1), last=True)

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        if False:
            yield

    async def aclose(self) -> None:
        return None


class SlowPlugin:
    name = "slow"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return None

    def create(self, ctx: ProviderContext) -> Provider:
        return SlowProvider(ctx.account.name)


async def test_concurrency_is_bounded_globally_and_per_account(tmp_path: Path) -> None:
    registry = Registry(group="calbridge.none")
    registry.register("slow", SlowPlugin())
    accounts = tuple(AccountConfig(name=f"a{i}", provider="slow") for i in range(3))
    config = Config(store_path=tmp_path / "m.db", accounts=accounts)
    async with (
        SqliteStore(config.store_path) as store,
        SyncEngine(config, store, registry=registry, concurrency=4, per_account=2, clock=lambda: NOW) as engine,
    ):
        report = await engine.sync()
    assert report.ok and len(report.calendars) == 12
    assert max(SlowProvider.peak[f"a{i}"] for i in range(3)) == 2
    assert SlowProvider.peak["*"] == 4


def test_window_bound_cursors_are_reanchored_daily_with_a_per_calendar_stagger() -> None:
    bound = Capabilities(window_bound_cursor=True)
    due_after = []
    for cal in ("alice", "bob", "carol", "dave"):
        state = CalendarState(account="a", calendar_id=cal, full_started=NOW)
        minutes = next(m for m in range(24 * 60, 26 * 60) if reanchor_due(state, NOW + dt.timedelta(minutes=m), bound))
        due_after.append(minutes)
        assert not reanchor_due(state, NOW + dt.timedelta(hours=23), bound)
    assert all(24 * 60 <= m <= 25 * 60 for m in due_after)
    assert len(set(due_after)) > 1  # staggered: calendars do not all resync in the same minute


async def test_https_proxy_from_the_environment_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))  # an absolute-form request: the client went through the proxy
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        target = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there: only the proxy answers
    with ThreadedServer(app) as srv:
        monkeypatch.setenv("HTTP_PROXY", srv.url)
        monkeypatch.setenv("HTTPS_PROXY", srv.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        doc = {
            "store": "sqlite:///m.db",
            "accounts": [
                {"name": "g", "provider": "google", "base_url": target, "auth": {"kind": "token", "token": "t"}}
            ],
        }
        config = parse_config(
            {**doc, "accounts": [{**doc["accounts"][0], "calendars": ["primary"]}]},
            base_dir=tmp_path,
            env={},
            registry=default_registry,
        )
        fast = RetryPolicy(attempts=1)
        async with SqliteStore(config.store_path) as store, SyncEngine(config, store, retry_policy=fast) as engine:
            report = await engine.sync()
    assert not report.ok
    assert seen and seen[0].startswith(f"{target}/calendar/v3/calendars/primary/events")


@pytest.mark.parametrize("link", ["::not a url", "ftp://127.0.0.1/v1.0/x", ""])
async def test_a_malformed_graph_link_fails_the_round_with_a_clear_error(tmp_path: Path, link: str) -> None:
    async def delta(request: web.Request) -> web.Response:
        return web.json_response({"value": [], "@odata.nextLink": link})

    app = web.Application()
    app.router.add_get("/v1.0/me/calendar/calendarView/delta", delta)
    with ThreadedServer(app) as srv:
        account = {"name": "m", "provider": "graph", "base_url": f"{srv.url}/v1.0", "calendars": ["primary"],
                   "auth": {"kind": "token", "token": "t"}}  # fmt: skip
        config = parse_config({"accounts": [account]}, base_dir=tmp_path, env={}, registry=default_registry)
        async with SqliteStore(tmp_path / "m.db") as store, SyncEngine(config, store, clock=lambda: NOW) as engine:
            report = await engine.sync()
    (result,) = report.calendars
    assert result.error is not None and "InvalidResponse" in result.error and "link" in result.error.lower()
