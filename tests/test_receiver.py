"""The push receiver end to end: the example emulator delivers over HTTP to the real receiver, which
verifies each delivery before anything is triggered."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from calbridge.push import (
    Notice,
    NoticeKind,
    PushAccount,
    PushAnswer,
    PushRequest,
    Subscription,
    SubscriptionLookup,
)
from calbridge.service._receiver import add_receiver_routes, make_receiver_app
from calbridge.service._triggers import Trigger
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.push_rig import PushRig

from ._push_world import ACCOUNT, ExampleEmulator, account, served, world

START = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


async def until(done: Callable[[], object], timeout: float = 5) -> None:
    """Wait for state that another thread (the emulator's) changes."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - no event to wait on across threads
        await asyncio.sleep(0.02)


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers or {}) as r:
        await r.read()
        return r.status


async def test_a_change_on_the_emulator_reaches_trigger_verified(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            (sub,) = await w.store.subscriptions()
            assert emu.subscriptions_alive() == [sub.id]
            started = time.monotonic()
            await asyncio.to_thread(emu.add_event, "Late call", START, START + HOUR)
            got = await w.rig.wait_for(lambda t: True)
            assert got == Trigger(account=ACCOUNT, calendar_id="work", kind=NoticeKind.CHANGE, subscription_id=sub.id)
            assert time.monotonic() - started < 5
            await until(lambda: emu.push.deliveries)
            assert [d[1] for d in emu.push.deliveries] == [202]
            (status,) = await w.store.status()
            assert status.push is not None and status.push.startswith("pushed until ")


async def test_forged_unknown_garbage_and_oversized_deliveries_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            (sub,) = await w.store.subscriptions()
            assert sub.secret is not None
            url = f"{w.rig.url}/push/example"
            body = b'{"subscription": "%s", "calendar": "work", "change": "changed"}' % sub.id.encode()
            good = {"X-Example-Subscription": sub.id, "X-Example-Secret": sub.secret}
            forged = {**good, "X-Example-Secret": sub.secret[:-1] + ("A" if sub.secret[-1] != "A" else "B")}
            unknown = {**good, "X-Example-Subscription": "sub-999"}
            big = b"x" * (2 * 1024 * 1024)

            async def chunks() -> object:
                for _ in range(32):
                    yield b"y" * 65536

            async with aiohttp.ClientSession() as session, session.post(url, data=chunks(), headers=good) as r:
                chunked = r.status  # sent chunked: no Content-Length
            statuses = [
                await post(url, body, forged),
                await post(url, body, unknown),
                await post(url, b"\x00garbage{", good),
                await post(url, b"", {}),
                await post(url, big, good),
                chunked,
                await post(f"{w.rig.url}/push/nobody", body, good),
            ]
            assert statuses == [403, 404, 400, 400, 413, 413, 404]
            await w.rig.quiet()
            assert w.rig.triggers == []
            assert await post(url, body, good) == 202  # the genuine one still passes
            await w.rig.wait_for(lambda t: t.subscription_id == sub.id)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 7, [r.getMessage() for r in refused]
    assert sub.secret not in caplog.text and "garbage" not in caplog.text and "xxxx" not in caplog.text


async def test_healthz_answers_200_until_draining(tmp_path: Path) -> None:
    async with (
        SqliteStore(tmp_path / "s.db") as store,
        PushRig(None, store, verifiers={}) as rig,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{rig.url}/healthz") as r:
            assert r.status == 200
        rig.draining = True
        async with session.get(f"{rig.url}/healthz") as r:
            assert r.status == 503


async def test_a_thousand_calendars_notified_at_once_are_each_answered_within_a_second(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    calendars = [emu.new_calendar(f"c{i:04d}") for i in range(1000)]
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu, calendars=calendars)]) as w:
            gate = asyncio.Semaphore(50)

            async def ensure(cal: str) -> None:
                async with gate:
                    await w.manager.ensure(w.acct(), cal)

            await asyncio.gather(*(ensure(c) for c in calendars))
            assert len(emu.subscriptions_alive()) == 1000

            def change_all() -> None:
                for cal in calendars:
                    emu.add_event("burst", START, START + HOUR, calendar=cal)

            await asyncio.to_thread(change_all)
            await until(lambda: len(emu.push.deliveries) >= 1000, timeout=60)
            deliveries = list(emu.push.deliveries)
            assert len(deliveries) == 1000
            assert {d[1] for d in deliveries} == {202}
            slowest = max(d[2] for d in deliveries)
            assert slowest < 5, f"the slowest answer took {slowest:.2f}s"
            await until(lambda: len({t.calendar_id for t in w.rig.triggers}) >= 1000, timeout=30)
            assert {t.calendar_id for t in w.rig.triggers} == set(calendars)


class _SlowVerifier:
    endpoints: tuple[str, ...] = ("slow",)

    async def handle(self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: object) -> PushAnswer:
        await asyncio.sleep(10)
        return PushAnswer(status=200, notices=(Notice(kind=NoticeKind.CHANGE, subscription_id="x"),))


class _FeishuLike:
    """Names accounts and a calendar directly, with a delivery key, as Feishu's verifier does."""

    endpoints: tuple[str, ...] = ("direct",)

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: list[PushAccount]
    ) -> PushAnswer:
        key = request.headers.get("x-event-id")
        return PushAnswer(status=200, body=b'{"ok": true}', content_type="application/json",
                          notices=(Notice(kind=NoticeKind.CHANGE, accounts=tuple(a.name for a in accounts),
                                          calendar_id="cal-1", dedup_key=key),))  # fmt: skip


class _HalfValidBatch:
    """Answers 400 for a batch with one bad item, carrying the good item's notice (Graph's rule)."""

    endpoints: tuple[str, ...] = ("batch",)

    async def handle(self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: object) -> PushAnswer:
        return PushAnswer(status=400, notices=(Notice(kind=NoticeKind.CHANGE, subscription_id="good"),))


async def test_a_refused_batch_still_triggers_its_verified_items(tmp_path: Path) -> None:
    async with (
        SqliteStore(tmp_path / "s.db") as store,
        PushRig(None, store, verifiers={"batch": _HalfValidBatch()}) as rig,
    ):
        await store.save_subscription(Subscription(provider="batch", account="a", calendar_id="c", id="good",
                                                   expires=None, secret="s"))  # fmt: skip
        assert await post(f"{rig.url}/push/batch", b"{}") == 400
        got = await rig.wait_for(lambda t: True)
        assert (got.account, got.calendar_id, got.subscription_id) == ("a", "c", "good")


async def test_a_slow_verifier_is_answered_503_within_a_second(tmp_path: Path) -> None:
    async with (
        SqliteStore(tmp_path / "s.db") as store,
        PushRig(None, store, verifiers={"slow": _SlowVerifier()}) as rig,
    ):
        started = time.monotonic()
        assert await post(f"{rig.url}/push/slow", b"{}") == 503
        assert time.monotonic() - started < 5
        await rig.quiet()
        assert rig.triggers == []


async def test_direct_notices_trigger_each_account_once_per_delivery_key(tmp_path: Path) -> None:
    accounts = {"direct": [PushAccount(name="a1", settings=None), PushAccount(name="a2", settings=None)]}
    async with (
        SqliteStore(tmp_path / "s.db") as store,
        PushRig(None, store, verifiers={"direct": _FeishuLike()}, accounts=accounts) as rig,
    ):
        url = f"{rig.url}/push/direct"
        for _ in range(3):  # Feishu retries a delivery: the same event id
            assert await post(url, b"{}", {"X-Event-Id": "ev-1"}) == 200
        assert await post(url, b"{}", {"X-Event-Id": "ev-2"}) == 200
        await rig.wait_for(lambda t: len(rig.triggers) >= 4)
        await rig.quiet()
        got = sorted((t.account, t.calendar_id) for t in rig.triggers)
        assert got == [("a1", "cal-1"), ("a1", "cal-1"), ("a2", "cal-1"), ("a2", "cal-1")]
        assert all(t.subscription_id is None for t in rig.triggers)


async def test_the_receiver_mounts_in_your_own_app(tmp_path: Path) -> None:
    got: list[Trigger] = []
    accounts = {"direct": [PushAccount(name="a1", settings=None)]}
    async with SqliteStore(tmp_path / "s.db") as store:
        app = web.Application()
        add_receiver_routes(app, verifiers={"direct": _FeishuLike()}, accounts=accounts, store=store,
                            trigger=got.append, draining=lambda: False, prefix="/cb")  # fmt: skip
        outer = web.Application()
        sub_app = make_receiver_app(verifiers={"direct": _FeishuLike()}, accounts=accounts, store=store,
                                    trigger=got.append, draining=lambda: True)  # fmt: skip
        outer.add_subapp("/hooks", sub_app)
        runners = [web.AppRunner(a, access_log=None) for a in (app, outer)]
        urls = []
        for runner in runners:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
        try:
            assert await post(f"{urls[0]}/cb/push/direct", b"{}", {"X-Event-Id": "e1"}) == 200
            assert await post(f"{urls[1]}/hooks/push/direct", b"{}", {"X-Event-Id": "e2"}) == 200
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{urls[0]}/cb/healthz") as r:
                    assert r.status == 200
                async with session.get(f"{urls[1]}/hooks/healthz") as r:
                    assert r.status == 503
            await until(lambda: len(got) >= 2)
            assert len(got) == 2
        finally:
            for runner in runners:
                await runner.cleanup()
