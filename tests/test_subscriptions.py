"""The subscription manager against the example emulator: subscribe, reuse after a restart, renew at
half-life with lifetimes of seconds (in place, and by replacement), recreate, reauthorize,
unsubscribe, and why a calendar is polled."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from calbridge_example import ExamplePlugin
from calbridge_example.provider import ExampleProvider

from calbridge.cursor import Cursor
from calbridge.model import Calendar, Window
from calbridge.provider import MirrorView, Page, Provider, ProviderContext
from calbridge.push import NoticeKind, Subscription
from calbridge.registry import Registry
from calbridge.service._subscriptions import SubscriptionManager, renewal_due

from ._push_world import ACCOUNT, ExampleEmulator, World, account, served, world

T0 = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


async def until(done: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - the emulator's thread changes it
        await asyncio.sleep(0.02)


async def keep_renewing(manager: SubscriptionManager, seconds: float) -> None:
    """What the service's loop does: sleep until the next renewal, then renew what is due."""
    stop = time.monotonic() + seconds
    while (left := stop - time.monotonic()) > 0:
        due = manager.next_renewal()
        wait = left if due is None else max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds())
        await asyncio.sleep(min(wait, left) + 0.01)
        await manager.renew_due()


async def push_state(w: World, calendar_id: str = "work") -> str | None:
    return next((s.push for s in await w.store.status() if s.calendar_id == calendar_id), None)


def test_renewal_is_due_at_half_life() -> None:
    sub = Subscription(provider="p", account="a", calendar_id="c", id="1", expires=T0 + 4 * HOUR, created=T0)
    assert renewal_due(sub) == T0 + 2 * HOUR
    assert renewal_due(attrs.evolve(sub, expires=None)) is None
    assert renewal_due(attrs.evolve(sub, created=None)) < T0  # type: ignore[operator]  # unknown age: at once
    assert renewal_due(attrs.evolve(sub, created=T0 + 5 * HOUR)) == T0 + 5 * HOUR


async def test_subscriptions_stay_alive_across_lifetimes_and_a_late_change_arrives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = ExampleEmulator()
    emu.push_lifetime = dt.timedelta(seconds=2)
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            (first,) = await w.store.subscriptions()
            assert first.expires is not None and first.expires - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=3)
            await keep_renewing(w.manager, 6)  # three lifetimes
            (now,) = await w.store.subscriptions()
            assert now.id == first.id and now.expires > first.expires + dt.timedelta(seconds=3)  # type: ignore[operator]
            assert emu.subscriptions_alive() == [first.id]
            assert await push_state(w) == f"pushed until {now.expires:%Y-%m-%dT%H:%M:%SZ}"  # type: ignore[union-attr]
            await asyncio.to_thread(emu.add_event, "late", START, START + HOUR)
            await w.rig.wait_for(lambda t: t.kind is NoticeKind.CHANGE and t.calendar_id == "work")
    assert first.secret is not None and first.secret not in caplog.text


class _ReplacingProvider(ExampleProvider):
    """Renews as Google does: a new subscription; the caller stops the old one."""

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        return await self.subscribe(subscription.calendar_id, public_url=public_url, secret=secret, expires=expires)


class _Plugin(ExamplePlugin):
    def __init__(self, provider: Callable[[ProviderContext], Provider]) -> None:
        self._make = provider

    def create(self, ctx: ProviderContext) -> Provider:
        return self._make(ctx)


def _registry(provider: Callable[[ProviderContext], Provider]) -> Registry:
    registry = Registry()
    registry.register("example", _Plugin(provider))
    return registry


async def test_a_replacing_renewal_keeps_both_rows_until_the_old_one_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = ExampleEmulator()
    emu.push_lifetime = dt.timedelta(seconds=4)
    retry = dt.timedelta(seconds=0.3)
    registry = _registry(_ReplacingProvider)
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)], registry=registry, retry=retry) as w:
            await w.manager.ensure(w.acct(), "work")
            (old,) = await w.store.subscriptions()
            await asyncio.sleep(2.1)  # past half-life
            emu.fail_next(500, count=1)  # the new subscription's request
            await w.manager.renew_due()
            assert [s.id for s in await w.store.subscriptions()] == [old.id], "a failed renewal keeps the old"
            retried = w.manager.next_renewal()
            assert retried is not None and retried > dt.datetime.now(dt.UTC) + retry / 2, "no retry at once"
            await asyncio.sleep(0.4)
            emu.push_lifetime = dt.timedelta(hours=1)  # the replacement will not come due in this test
            stop = ExampleProvider.unsubscribe

            async def failing_stop(self: ExampleProvider, sub: Subscription) -> None:
                emu.fail_next(500, count=10)  # every attempt of the real DELETE fails
                await stop(self, sub)

            monkeypatch.setattr(_ReplacingProvider, "unsubscribe", failing_stop)
            await w.manager.renew_due()
            emu.clear_faults()
            monkeypatch.undo()
            rows = await w.store.subscriptions()
            assert len(rows) == 2, "the old row stays until its stop succeeded"
            new = next(s for s in rows if s.id != old.id)
            assert sorted(emu.subscriptions_alive()) == sorted([old.id, new.id])
            assert new.secret != old.secret
            assert old.expires is not None and old.expires > dt.datetime.now(dt.UTC) + retry
            await asyncio.sleep(0.4)  # the stop is retried while the old one is still alive
            await w.manager.renew_due()
            assert emu.subscriptions_alive() == [new.id]
            assert [s.id for s in await w.store.subscriptions()] == [new.id]
            assert await push_state(w) == f"pushed until {new.expires:%Y-%m-%dT%H:%M:%SZ}"


async def test_removed_recreated_reauthorized_and_unsubscribed(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            (old,) = await w.store.subscriptions()
            await asyncio.to_thread(emu.remove_subscription, old.id)
            removed = await w.rig.wait_for(lambda t: t.kind is NoticeKind.REMOVED)
            assert (removed.account, removed.calendar_id, removed.subscription_id) == (ACCOUNT, "work", old.id)
            await w.manager.recreate(removed.account, removed.calendar_id)
            (new,) = await w.store.subscriptions()
            assert new.id != old.id and emu.subscriptions_alive() == [new.id]
            await asyncio.sleep(1.1)
            await w.manager.reauthorize(new.id)
            (renewed,) = await w.store.subscriptions()
            assert renewed.id == new.id and renewed.expires > new.expires  # type: ignore[operator]
            await w.manager.reauthorize("unknown")  # ignored
            await w.manager.unsubscribe_all()
            assert emu.subscriptions_alive() == []
            assert await w.store.subscriptions() == []
            assert await push_state(w) is None


async def test_a_restart_reuses_the_alive_subscription(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            (sub,) = await w.store.subscriptions()
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            assert await w.store.subscriptions() == [sub]
            assert emu.subscriptions_alive() == [sub.id]
            assert w.manager.next_renewal() == renewal_due(sub)


async def test_a_failed_subscribe_is_polled_then_retried(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            emu.fail_next(503, count=1)
            await w.manager.ensure(w.acct(), "work")
            assert await push_state(w) == "polled: subscribing failed"
            assert await w.store.subscriptions() == []
            due = w.manager.next_renewal()
            assert due is not None and due - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=2)
            await asyncio.sleep(1.1)
            await w.manager.renew_due()
            (sub,) = await w.store.subscriptions()
            assert emu.subscriptions_alive() == [sub.id]
            assert (await push_state(w) or "").startswith("pushed until ")


class _CannotPush:
    """A provider without the push half (the example's sync, delegated)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self._inner = ExampleProvider(ctx)
        self.capabilities = self._inner.capabilities

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def calendars(self) -> Sequence[Calendar]:
        return await self._inner.calendars()

    def sync(self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView) -> AsyncIterator[Page]:
        return self._inner.sync(calendar_id, cursor, window=window, view=view)

    def expand(self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView) -> Any:
        return self._inner.expand(calendar_id, series_ids, window=window, view=view)


class _NeedsUser(ExampleProvider):
    def push_unavailable(self) -> str | None:
        return "push needs a user token (this account has a tenant token)"


@pytest.mark.parametrize(
    ("extra", "provider", "public_url", "why"),
    [
        ({"push": False}, ExampleProvider, True, "polled: push: false"),
        ({}, ExampleProvider, False, "polled: no service.public_url"),
        ({}, _CannotPush, True, "polled: provider cannot push"),
        ({}, _NeedsUser, True, "polled: push needs a user token (this account has a tenant token)"),
    ],
)
async def test_why_a_calendar_is_polled(
    tmp_path: Path, extra: dict[str, Any], provider: Callable[[ProviderContext], Provider], public_url: bool, why: str
) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu, **extra)], registry=_registry(provider),
                         public_url=public_url) as w:  # fmt: skip
            await w.manager.ensure(w.acct(), "work")
            assert await push_state(w) == why
            assert emu.subscriptions_alive() == [] and await w.store.subscriptions() == []
            assert w.manager.next_renewal() is None


async def test_turning_push_off_stops_what_was_subscribed(tmp_path: Path) -> None:
    emu = ExampleEmulator()
    with served(emu) as server:
        async with world(tmp_path, [account(server, emu)]) as w:
            await w.manager.ensure(w.acct(), "work")
            assert len(emu.subscriptions_alive()) == 1
        async with world(tmp_path, [account(server, emu, push=False)]) as w:
            await w.manager.ensure(w.acct(), "work")
            assert emu.subscriptions_alive() == [] and await w.store.subscriptions() == []
            assert await push_state(w) == "polled: push: false"


async def test_unsubscribing_some_accounts_leaves_the_others_subscribed(tmp_path: Path) -> None:
    """``run --account alice --unsubscribe`` removes alice's subscriptions, never bob's."""
    emu = ExampleEmulator()
    with served(emu) as server:
        both = [account(server, emu, name="alice"), account(server, emu, name="bob")]
        async with world(tmp_path, both) as w:
            await w.manager.ensure(w.acct("alice"), "work")
            await w.manager.ensure(w.acct("bob"), "work")
            assert len(emu.subscriptions_alive()) == 2
            await w.manager.unsubscribe_all(["alice"])
            (left,) = await w.store.subscriptions()
            assert left.account == "bob" and emu.subscriptions_alive() == [left.id]
