"""The service in process, against the Google emulator over loopback HTTP: scheduled rounds, push
triggers that coalesce, a failing calendar backing off while the others stay fresh, the receiver app
served on ``listen`` or mounted, and a drain that stops between pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from calbridge._run import CalendarResult
from calbridge.config import Config, parse_config
from calbridge.engine import SyncEngine
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.service import Policy, Service, Trigger
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.kit import Served

from .stateful.handles import HANDLES

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


class Gate:
    """An emulator middleware over its listing requests (paths ending in ``/events``): ``delay``
    slows each; ``hold_after`` holds every one past that many until :attr:`release` is set (or for
    ``hold_for`` seconds)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.hold_after: int | None = None
        self.hold_for: float | None = None
        self.listings = 0
        self.held = threading.Event()
        self.release = threading.Event()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.endswith("/events"):
            self.listings += 1
            if self.hold_after is not None and self.listings > self.hold_after:
                self.held.set()
                await asyncio.to_thread(self.release.wait, self.hold_for)
            if self.delay:
                await asyncio.sleep(self.delay)
        return await handler(request)


def serve_gated(name: str, gate: Gate, ca: Any = None) -> Served:
    """A fresh emulator of ``name`` served with ``gate`` outermost."""
    emulator: Any = default_registry.emulator(name)
    make_app = emulator.make_app

    def gated_app() -> web.Application:
        app = make_app()
        app.middlewares.insert(0, gate.middleware)
        return app

    emulator.make_app = gated_app
    if ca is not None:
        return Served(name, emulator, ca_file=ca.ca_file, server_context=ca.server_context).start()
    return Served(name, emulator).start()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def google(gate: Gate) -> Iterator[Served]:
    served = serve_gated("google", gate)
    yield served
    gate.release.set()
    served.stop()


def calendar(served: Served, account: str, events: int = 2) -> dict[str, Any]:
    """A fresh calendar on ``served`` with ``events`` singles, as a config ``accounts`` entry."""
    handle = HANDLES[served.name](served)
    handle.reset()
    for i in range(events):
        start = NOW + dt.timedelta(hours=i)
        handle.create_single(f"{account} {i}", start, start + dt.timedelta(minutes=30))
    return handle.account(account)


def make_config(tmp_path: Path, accounts: list[dict[str, Any]], **service: str) -> Config:
    doc = {
        "store": "sqlite:///mirror.db",
        "window": {"past": "30d", "future": "90d"},
        "service": {"listen": "127.0.0.1:0", **service},
        "accounts": accounts,
    }
    return parse_config(doc, base_dir=tmp_path)


class Rounds:
    """Finished rounds, as ``on_round`` reports them."""

    def __init__(self) -> None:
        self.results: list[CalendarResult] = []
        self.changed = asyncio.Event()

    def __call__(self, result: CalendarResult) -> None:
        self.results.append(result)
        self.changed.set()

    def of(self, account: str) -> list[CalendarResult]:
        return [r for r in self.results if r.account == account]

    async def wait_for(self, account: str, n: int, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while len(self.of(account)) < n:
                self.changed.clear()
                await self.changed.wait()


def pinned(config: Config, store: SqliteStore, rounds: Rounds, **kw: Any) -> Service:
    """A service whose engine reads the window at ``NOW``, reporting its rounds to ``rounds``."""
    return Service(config, store, clock=lambda: NOW, on_round=rounds, **kw)


async def running(service: Service) -> asyncio.Task[None]:
    task = asyncio.create_task(service.serve())
    await asyncio.sleep(0)
    return task


async def test_rounds_happen_every_poll_and_healthz_answers(google: Served, tmp_path: Path) -> None:
    config = make_config(tmp_path, [calendar(google, "a"), calendar(google, "b")], poll="1s")
    rounds = Rounds()
    async with SqliteStore(config.store_path) as store, pinned(config, store, rounds) as svc:
        task = await running(svc)
        async with aiohttp.ClientSession() as http:
            resp = await http.get(f"http://127.0.0.1:{svc.port}/healthz")
            assert resp.status == 200
        await rounds.wait_for("a", 4)
        await rounds.wait_for("b", 4)
        svc.stop()
        await asyncio.wait_for(task, 10)
    a = rounds.of("a")
    assert a[0].full and not any(r.full for r in a[1:])  # a round at start, incremental after it
    assert all(r.error is None for r in rounds.results)
    async with SqliteStore(config.store_path) as store:
        assert sorted(e.title or "" for e in await store.query()) == ["a 0", "a 1", "b 0", "b 1"]


async def test_a_trigger_during_a_round_gives_exactly_one_more_round(
    google: Served, gate: Gate, tmp_path: Path
) -> None:
    account = calendar(google, "a")
    cal = account["calendars"][0]
    config = make_config(tmp_path, [account], poll="1h")
    rounds = Rounds()
    async with SqliteStore(config.store_path) as store, pinned(config, store, rounds) as svc:
        task = await running(svc)
        await rounds.wait_for("a", 1)
        gate.delay = 1.0
        svc.trigger(Trigger(account="a", calendar_id=cal))
        await asyncio.sleep(0.4)  # that round is waiting for its listing now
        assert len(rounds.of("a")) == 1
        for _ in range(3):
            svc.trigger(Trigger(account="a", calendar_id=cal))
        await rounds.wait_for("a", 3)
        await asyncio.sleep(2.5)  # time for a fourth, which must not come
        svc.stop()
        await asyncio.wait_for(task, 10)
    assert len(rounds.of("a")) == 3


async def test_thirty_triggers_within_200ms_give_at_most_two_rounds(google: Served, gate: Gate, tmp_path: Path) -> None:
    account = calendar(google, "a")
    cal = account["calendars"][0]
    config = make_config(tmp_path, [account], poll="1h")
    rounds = Rounds()
    async with SqliteStore(config.store_path) as store, pinned(config, store, rounds) as svc:
        task = await running(svc)
        await rounds.wait_for("a", 1)
        gate.delay = 0.1
        started = time.monotonic()
        for _ in range(30):
            svc.trigger(Trigger(account="a", calendar_id=cal))
            await asyncio.sleep(0.006)
        assert time.monotonic() - started < 1.0
        await rounds.wait_for("a", 2)
        await asyncio.sleep(2.0)
        svc.stop()
        await asyncio.wait_for(task, 10)
    assert 2 <= len(rounds.of("a")) <= 3  # the one at start, then at most two


async def test_a_revoked_calendar_backs_off_while_the_others_stay_fresh(google: Served, tmp_path: Path) -> None:
    bad = calendar(google, "bad")
    bad["auth"]["refresh_token"] = "1//revoked-refresh-token"
    config = make_config(tmp_path, [calendar(google, "good"), bad], poll="1s")
    rounds = Rounds()
    policy = Policy(poll=dt.timedelta(seconds=1), base=dt.timedelta(seconds=0.4))
    async with SqliteStore(config.store_path) as store, pinned(config, store, rounds, policy=policy) as svc:
        task = await running(svc)
        await rounds.wait_for("bad", 3)
        await rounds.wait_for("good", 4)
        assert not task.done()  # the service never exits because of one calendar
        status = {r.account: r for r in await store.status()}
        svc.stop()
        await asyncio.wait_for(task, 10)
    failures = rounds.of("bad")
    assert all(r.error is not None and "AuthError" in r.error for r in failures)
    assert all(r.error is None for r in rounds.of("good"))
    assert status["bad"].failures >= 2 and status["bad"].next_attempt is not None
    assert status["good"].failures == 0 and status["good"].next_attempt is None
    assert "1//revoked" not in " ".join(r.error or "" for r in failures)


async def test_the_receiver_app_mounts_in_a_users_own_server(google: Served, tmp_path: Path) -> None:
    config = make_config(tmp_path, [calendar(google, "a")], poll="1h")
    async with SqliteStore(config.store_path) as store, Service(config, store, serve_http=False) as svc:
        assert svc.port is None
        mine = web.Application()
        mine.add_subapp("/cb/", svc.app)
        runner = web.AppRunner(mine)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as http:
                assert (await http.get(f"http://127.0.0.1:{port}/cb/healthz")).status == 200
                svc.stop()
                assert (await http.get(f"http://127.0.0.1:{port}/cb/healthz")).status == 503
        finally:
            await runner.cleanup()


async def test_a_drain_stops_between_pages_and_the_next_round_resumes(
    google: Served, gate: Gate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    HANDLES["google"].small_pages(monkeypatch)  # type: ignore[attr-defined]
    config = make_config(tmp_path, [calendar(google, "a", events=8)], poll="1h", drain="1s")
    gate.hold_after = 1  # the second page is held
    async with SqliteStore(config.store_path) as store, Service(config, store, clock=lambda: NOW) as svc:
        task = await running(svc)
        await asyncio.to_thread(gate.held.wait, 20)
        async with aiohttp.ClientSession() as http:
            svc.stop()
            assert (await http.get(f"http://127.0.0.1:{svc.port}/healthz")).status == 503
        started = time.monotonic()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - started < 5  # five times the drain
        partial = await store.query()
    assert len(partial) == 3  # the first page, committed; nothing of the held one
    gate.release.set()
    gate.hold_after = None
    async with SqliteStore(config.store_path) as store, SyncEngine(config, store, clock=lambda: NOW) as engine:
        report = await engine.sync()
        assert report.ok, report
        titles = [e.title for e in await store.query()]
    assert sorted(titles) == [f"a {i}" for i in range(8)]


class Recorder:
    """A subscription manager that records what the service asks of it (the seam s2-recv fills)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.renewal: dt.datetime | None = None
        self.unsubscribed: list[str] | None = None

    async def ensure(self, account: Any, calendar_id: str) -> None:
        self.calls.append(("ensure", account.name, calendar_id))

    def next_renewal(self) -> dt.datetime | None:
        return self.renewal

    async def renew_due(self) -> None:
        self.calls.append(("renew_due",))
        self.renewal = None

    async def recreate(self, account_name: str, calendar_id: str) -> None:
        self.calls.append(("recreate", account_name, calendar_id))

    async def reauthorize(self, subscription_id: str) -> None:
        self.calls.append(("reauthorize", subscription_id))

    def release(self, account_name: str, calendar_id: str) -> None:
        self.calls.append(("release", account_name, calendar_id))

    async def unsubscribe_all(
        self, accounts: Collection[str] | None = None, *, calendars: Collection[tuple[str, str]] | None = None
    ) -> None:
        self.calls.append(("unsubscribe_all",))
        self.unsubscribed = None if accounts is None else sorted(accounts)


async def test_notices_are_routed_by_kind_and_subscriptions_kept(google: Served, tmp_path: Path) -> None:
    from calbridge.push import NoticeKind

    account = calendar(google, "a")
    cal = account["calendars"][0]
    config = make_config(tmp_path, [account], poll="1h", public_url="https://hooks.example/cb")
    rounds, subs = Rounds(), Recorder()
    subs.renewal = dt.datetime.now(dt.UTC)  # one due now
    async with (
        SqliteStore(config.store_path) as store,
        pinned(config, store, rounds, subscriptions=subs, unsubscribe=True) as svc,
    ):
        task = await running(svc)
        await rounds.wait_for("a", 1)
        for kind in (NoticeKind.SYNC, NoticeKind.REAUTHORIZE):
            svc.trigger(Trigger(account="a", calendar_id=cal, kind=kind, subscription_id="sub-1"))
        await asyncio.sleep(1.5)
        assert len(rounds.of("a")) == 1  # neither asks for a round
        svc.trigger(Trigger(account="a", calendar_id=cal, kind=NoticeKind.REMOVED, subscription_id="sub-1"))
        await rounds.wait_for("a", 2)
        svc.trigger(Trigger(account="a", calendar_id=cal, kind=NoticeKind.MISSED, subscription_id="sub-1"))
        await rounds.wait_for("a", 3)
        svc.trigger(Trigger(account="nobody", calendar_id=cal))  # unknown: nothing, no error
        svc.stop()
        await asyncio.wait_for(task, 10)
    assert subs.calls[0] == ("ensure", "a", cal)
    assert ("renew_due",) in subs.calls and ("reauthorize", "sub-1") in subs.calls
    assert ("recreate", "a", cal) in subs.calls
    assert subs.calls[-1] == ("unsubscribe_all",)
    assert subs.unsubscribed == ["a"]  # the accounts this service runs, not every configured one


async def test_a_rate_limited_round_says_when_it_may_retry(google: Served, tmp_path: Path) -> None:
    account = calendar(google, "a")
    config = make_config(tmp_path, [account])
    google.emulator.fail_next(429, count=50, retry_after=1)  # type: ignore[attr-defined]
    try:
        async with (
            SqliteStore(config.store_path) as store,
            SyncEngine(config, store, clock=lambda: NOW, retry_policy=RetryPolicy(attempts=2)) as engine,
        ):
            result = await engine.sync_calendar("a", account["calendars"][0])
    finally:
        google.emulator.clear_faults()  # type: ignore[attr-defined]
    assert result.error is not None and "RateLimited" in result.error
    assert result.retry_at == NOW + dt.timedelta(seconds=1)


async def test_calendars_all_takes_on_every_calendar_the_account_sees(google: Served, tmp_path: Path) -> None:
    first = calendar(google, "a")
    second = calendar(google, "a")
    wanted = {first.pop("calendars")[0], second["calendars"][0]}  # calendars: all
    config = make_config(tmp_path, [first], poll="1h")
    rounds = Rounds()
    async with SqliteStore(config.store_path) as store, pinned(config, store, rounds) as svc:
        task = await running(svc)
        await rounds.wait_for("a", 2)
        svc.stop()
        await asyncio.wait_for(task, 10)
    assert {r.calendar_id for r in rounds.of("a")} == wanted
