"""Google push over real loopback HTTP: channels opened through the provider on the emulator, which
delivers to a receiver (an aiohttp server here) that answers with the plugin's verifier.

Covers the sync message, `exists` on create/update/delete, forged and unknown channels refused,
renewal as a new channel, unsubscribing, a channel's lifetime, delivery retries and config errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import attrs
import pytest
from aiohttp import web

from calbridge.config import parse_config
from calbridge.errors import ConfigError, InvalidRequest, ProviderError
from calbridge.provider import Provider
from calbridge.push import (
    Notice,
    NoticeKind,
    PushAnswer,
    PushProvider,
    PushRequest,
    Subscription,
    push_plugin,
    push_provider,
)
from calbridge.registry import default_registry
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google import GooglePushSettings, plugin
from calbridge_providers.google._push import WatchAnswer, granted_until
from calbridge_providers.google.emulator import Delivery, GoogleEmulator
from calbridge_providers.google.emulator._channels import WatchRequest, parse_watch

from .support import CAL, timed

SECRET = "chan-secret-CANARY-91c2"
HOUR = dt.timedelta(hours=1)


class Lookup:
    """The store's subscriptions as the verifier reads them (an in-memory SubscriptionLookup)."""

    def __init__(self) -> None:
        self.held: dict[str, Subscription] = {}

    def add(self, sub: Subscription) -> Subscription:
        self.held[sub.id] = sub
        return sub

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        return self.held.get(subscription_id) if provider == "google" else None


class Receiver:
    """``POST /push/google`` answered by the plugin's verifier; ``known`` holds deliveries until the
    lookup knows the channel just opened (the sync message may beat the watch answer)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.verifier = plugin.push_verifier()
        self.known = asyncio.Event()
        self.known.set()
        self.answers: list[tuple[PushRequest, PushAnswer]] = []
        self.fail_next: list[int] = []  # statuses to answer before verifying
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await self.known.wait()
        if self.fail_next:
            return web.Response(status=self.fail_next.pop(0))
        push = PushRequest(endpoint="google", query=dict(request.query), body=await request.read(),
                           headers={k.lower(): v for k, v in request.headers.items()})  # fmt: skip
        answer = await self.verifier.handle(push, subscriptions=self.lookup, accounts=())
        self.answers.append((push, answer))
        return web.Response(status=answer.status, body=answer.body)

    def notices(self, kind: NoticeKind | None = None) -> list[Notice]:
        return [n for _, a in self.answers for n in a.notices if kind is None or n.kind is kind]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(Lookup())
    app = web.Application()
    app.router.add_post("/push/google", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


@pytest.fixture(autouse=True)
def quick_retries(emu: GoogleEmulator) -> None:
    emu.state.push.backoff = 0.05


def pusher(provider: Provider) -> PushProvider:
    p = push_provider(provider)
    assert p is not None
    return p


async def subscribe(provider: Provider, receiver: Receiver, *, secret: str = SECRET) -> Subscription:
    """Subscribe the calendar and hold deliveries until the lookup knows the channel."""
    receiver.known.clear()
    try:
        sub = await pusher(provider).subscribe(
            CAL, public_url=receiver.url, secret=secret, expires=dt.datetime.now(dt.UTC) + HOUR
        )
        return receiver.lookup.add(sub)
    finally:
        receiver.known.set()


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def finished(emu: GoogleEmulator, channel_id: str, state: str = "exists") -> list[Delivery]:
    return [d for d in emu.state.push.deliveries(channel_id) if d.state == state and d.finished is not None]


async def next_exists(emu: GoogleEmulator, channel_id: str, seen: int) -> Delivery:
    """Wait for the channel's ``exists`` delivery number ``seen + 1`` to be answered."""
    await until(lambda: len(finished(emu, channel_id)) > seen)
    return finished(emu, channel_id)[seen]


def add(emu: GoogleEmulator, title: str) -> str:
    start = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC)
    return str(emu.state.put_event(CAL, timed(title, start))["id"])


async def test_subscribe_then_create_update_delete_each_deliver_exists_the_verifier_accepts(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    sub = await subscribe(provider, receiver)
    channel = emu.state.push.channel(sub.id)
    assert channel is not None and channel.live(int(time.time() * 1000))
    assert str(uuid.UUID(sub.id)) == sub.id and sub.provider == "google" and sub.calendar_id == CAL
    assert sub.resource == channel.resource_id and channel.address == f"{receiver.url}/push/google"
    assert sub.expires == dt.datetime.fromtimestamp(channel.expiration / 1000, dt.UTC)
    assert sub.secret == SECRET and SECRET not in repr(sub)
    await until(lambda: finished(emu, sub.id, "sync"))

    eid = add(emu, "Planning")
    first = await next_exists(emu, sub.id, 0)
    emu.state.update_event(CAL, eid, summary="Planning, moved")
    second = await next_exists(emu, sub.id, 1)
    emu.state.delete_event(CAL, eid)
    third = await next_exists(emu, sub.id, 2)

    assert [(d.number, d.statuses) for d in (first, second, third)] == [(2, [200]), (3, [200]), (4, [200])]
    changes = receiver.notices(NoticeKind.CHANGE)
    assert changes == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)] * 3
    request = receiver.answers[-1][0]
    assert request.headers["x-goog-resource-state"] == "exists" and request.body == b""
    assert request.headers["x-goog-resource-id"] == sub.resource
    assert request.headers["x-goog-message-number"] == "4"
    assert request.headers["x-goog-resource-uri"].endswith("/events?alt=json")
    sent = email.utils.parsedate_to_datetime(request.headers["x-goog-channel-expiration"])
    assert sub.expires is not None and abs(sent - sub.expires) < dt.timedelta(seconds=1)


async def test_the_first_sync_message_triggers_nothing(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    sub = await subscribe(provider, receiver)
    await until(lambda: finished(emu, sub.id, "sync"))
    (sync,) = emu.state.push.deliveries(sub.id)
    assert (sync.state, sync.number, sync.statuses) == ("sync", 1, [200])
    assert receiver.notices() == [Notice(kind=NoticeKind.SYNC, subscription_id=sub.id)]
    await asyncio.sleep(0.3)  # no data change: nothing else is sent
    assert len(emu.state.push.deliveries(sub.id)) == 1 and not receiver.notices(NoticeKind.CHANGE)


async def test_a_wrong_token_or_an_unknown_channel_is_refused_with_no_notice(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = await subscribe(provider, receiver, secret="not-what-the-store-holds")
    receiver.lookup.add(attrs.evolve(forged, secret=SECRET))  # the store holds another secret
    unknown = await subscribe(provider, receiver)
    del receiver.lookup.held[unknown.id]  # a channel this store did not create
    await until(lambda: finished(emu, forged.id, "sync") and finished(emu, unknown.id, "sync"))
    add(emu, "Forged")
    refused, missing = await next_exists(emu, forged.id, 0), await next_exists(emu, unknown.id, 0)
    assert refused.statuses == [403] and missing.statuses == [404]  # 4xx: never retried
    assert receiver.notices() == []

    exists = [p.headers for p, _ in receiver.answers if p.headers["x-goog-resource-state"] == "exists"]
    headers = next(h for h in exists if h["x-goog-channel-id"] == forged.id)
    async with aiohttp.ClientSession() as session:
        for change, status in (({"x-goog-channel-token": ""}, 403), ({"x-goog-resource-state": ""}, 400),
                               ({"x-goog-channel-id": str(uuid.uuid4())}, 404),
                               ({"x-goog-resource-id": "another-resource", "x-goog-channel-token": SECRET}, 403),
                               ({"x-goog-channel-token": SECRET}, 200)):  # fmt: skip
            sent = {k: v for k, v in {**headers, **change}.items() if k not in ("host", "content-length")}
            async with session.post(f"{receiver.url}/push/google", headers=sent) as resp:
                assert resp.status == status, change
    assert receiver.notices() == [Notice(kind=NoticeKind.CHANGE, subscription_id=forged.id)]  # the last only
    assert SECRET not in caplog.text and "not-what-the-store-holds" not in caplog.text


async def test_renew_opens_a_new_channel_and_the_old_one_stops_delivering_once_stopped(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    old = await subscribe(provider, receiver)
    receiver.known.clear()
    new = await pusher(provider).renew(old, public_url=receiver.url, secret=SECRET + "-2",
                                       expires=dt.datetime.now(dt.UTC) + HOUR)  # fmt: skip
    receiver.lookup.add(new)
    receiver.known.set()
    assert new.id != old.id and new.resource == old.resource and new.secret == SECRET + "-2"
    # both live until the caller stored the new one and stops the old
    assert sorted(c.id for c in emu.state.push.channels(CAL)) == sorted([old.id, new.id])
    await pusher(provider).unsubscribe(old)
    stopped = emu.state.push.channel(old.id)
    assert stopped is not None and stopped.stopped
    assert [c.id for c in emu.state.push.channels(CAL)] == [new.id]
    assert [r.status for r in emu.state.requests_to("/channels/stop", "POST")] == [204]

    add(emu, "After renewal")
    await next_exists(emu, new.id, 0)
    await asyncio.sleep(0.2)
    assert not finished(emu, old.id)
    assert receiver.notices(NoticeKind.CHANGE) == [Notice(kind=NoticeKind.CHANGE, subscription_id=new.id)]


async def test_unsubscribe_stops_deliveries_and_a_second_one_is_fine(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    gone = await subscribe(provider, receiver)
    witness = await subscribe(provider, receiver)
    await pusher(provider).unsubscribe(gone)
    await pusher(provider).unsubscribe(gone)  # 404 from channels/stop: already gone
    assert [r.status for r in emu.state.requests_to("/channels/stop", "POST")] == [204, 404]
    add(emu, "Unwatched")
    await next_exists(emu, witness.id, 0)
    await asyncio.sleep(0.2)
    assert not finished(emu, gone.id)


async def test_a_channel_stops_delivering_at_the_end_of_its_lifetime(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    lifetime = 2.5
    emu.state.push.max_lifetime = lifetime
    before = time.time()
    short = await subscribe(provider, receiver)  # an hour asked, 2.5 s granted
    after = time.time()
    emu.state.push.max_lifetime = 3600.0
    witness = await subscribe(provider, receiver)
    assert short.expires is not None and before + lifetime - 0.01 <= short.expires.timestamp() <= after + lifetime
    add(emu, "While alive")
    await next_exists(emu, short.id, 0)
    await next_exists(emu, witness.id, 0)

    await asyncio.sleep(max(0.0, short.expires.timestamp() - time.time()) + 0.2)
    assert [c.id for c in emu.state.push.channels(CAL)] == [witness.id]
    add(emu, "After the end")
    await next_exists(emu, witness.id, 1)
    await asyncio.sleep(0.2)
    assert len(finished(emu, short.id)) == 1
    await pusher(provider).unsubscribe(short)  # an expired channel is already gone


async def test_a_delivery_answered_5xx_is_retried_with_backoff(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver
) -> None:
    emu.state.push.backoff = 0.2
    sub = await subscribe(provider, receiver)
    await until(lambda: finished(emu, sub.id, "sync"))
    receiver.fail_next = [503, 500]
    start = time.monotonic()
    add(emu, "Retried")
    delivery = await next_exists(emu, sub.id, 0)
    assert delivery.statuses == [503, 500, 200] and delivery.number == 2
    assert delivery.finished is not None and delivery.finished - start >= 0.2 + 0.4  # 0.2 s, then doubled
    assert receiver.notices(NoticeKind.CHANGE) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]


async def test_watch_refuses_a_plain_http_address_off_loopback(provider: Provider) -> None:
    with pytest.raises(InvalidRequest) as info:
        await pusher(provider).subscribe(CAL, public_url="http://hooks.example.com/cb", secret=SECRET,
                                         expires=dt.datetime.now(dt.UTC) + HOUR)  # fmt: skip
    assert info.value.code == "push.webhookUrlNotHttps" and SECRET not in str(info.value)


async def test_watch_and_stop_need_the_bearer_token(server: ThreadedServer, session: aiohttp.ClientSession) -> None:
    body = {"id": "c1", "type": "web_hook", "address": "https://hooks.example.com/push/google"}
    async with session.post(f"{server.url}/calendar/v3/calendars/primary/events/watch", json=body) as resp:
        assert resp.status == 401
    async with session.post(f"{server.url}/calendar/v3/channels/stop", json={"id": "c1", "resourceId": "r"}) as resp:
        assert resp.status == 401


def test_the_plugin_and_provider_can_push(provider: Provider) -> None:
    assert push_plugin(plugin) is plugin and pusher(provider).push_unavailable() is None
    assert plugin.push_verifier().endpoints == ("google",)


def test_push_settings_are_empty_and_a_key_is_named_where_it_is(tmp_path: Path) -> None:
    assert plugin.parse_push(None, account={}, where="accounts[0].push") == GooglePushSettings()
    assert plugin.parse_push({}, account={}, where="accounts[0].push") == GooglePushSettings()
    with pytest.raises(ConfigError) as info:
        plugin.parse_push({"token": "x"}, account={}, where="accounts[3].push")
    assert info.value.where == "accounts[3].push.token"

    def config(push: object) -> dict[str, object]:
        account = {"name": "g", "provider": "google", "auth": {"kind": "token", "token": "t"}, "push": push}
        return {"accounts": [{**account, "name": "a", "push": False}, account]}

    loaded = parse_config(config({}), base_dir=tmp_path, env={}, registry=default_registry)
    assert [a.push for a in loaded.accounts] == [False, GooglePushSettings()]
    with pytest.raises(ConfigError) as info:
        parse_config(config({"verification_token": "v"}), base_dir=tmp_path, env={}, registry=default_registry)
    assert info.value.where == "accounts[1].push.verification_token"


async def test_a_renewal_leaves_the_old_channel_to_the_caller_and_a_failed_stop_raises(
    emu: GoogleEmulator, provider: Provider, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    old = await subscribe(provider, receiver)
    emu.state.inject(503, times=10, path_contains="/channels/stop")
    caplog.set_level(logging.WARNING)
    new = await pusher(provider).renew(old, public_url=receiver.url, secret=SECRET,
                                       expires=dt.datetime.now(dt.UTC) + HOUR)  # fmt: skip
    assert emu.state.requests_to("/channels/stop", "POST") == []  # stopped by the caller, once it stored the new
    with pytest.raises(ProviderError):
        await pusher(provider).unsubscribe(old)  # the manager keeps it and retries later
    assert sorted(c.id for c in emu.state.push.channels(CAL)) == sorted([old.id, new.id])  # the old one runs out
    assert SECRET not in caplog.text


def test_an_answer_without_expiration_is_taken_to_end_within_the_hour() -> None:
    now = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
    asked = now + dt.timedelta(days=7)
    assert granted_until(WatchAnswer(id="c", resource_id="r", expiration=None), asked=asked, now=now) == now + HOUR
    soon = now + dt.timedelta(minutes=5)
    assert granted_until(WatchAnswer(id="c", resource_id="r", expiration="x"), asked=soon, now=now) == soon
    stated = WatchAnswer(id="c", resource_id="r", expiration=str(int((now + HOUR * 2).timestamp() * 1000)))
    assert granted_until(stated, asked=asked, now=now) == now + HOUR * 2


def test_the_emulator_checks_the_channel_body() -> None:
    now = 1_800_000_000_000
    ok = {"id": "c1", "type": "webhook", "address": "https://hooks.example.com/push/google", "token": "tok-9z"}
    capped = parse_watch({**ok, "expiration": now + 10**9}, now=now, max_lifetime=60)
    assert isinstance(capped, WatchRequest) and capped.expiration == now + 60_000 and "tok-9z" not in repr(capped)
    unasked = parse_watch(ok, now=now, max_lifetime=60)
    assert isinstance(unasked, WatchRequest) and unasked.expiration == now + 60_000
    refused = [
        ({**ok, "type": "email"}, "invalid"),
        ({**ok, "id": "x" * 65}, "invalid"),
        ({**ok, "id": ""}, "required"),
        ({**ok, "address": "http://hooks.example.com/push/google"}, "push.webhookUrlNotHttps"),
        ({**ok, "expiration": now - 1}, "invalid"),
        ({**ok, "expiration": "soon"}, "invalid"),
        ([], "parseError"),
    ]
    for body, reason in refused:
        answer = parse_watch(body, now=now, max_lifetime=60)
        assert isinstance(answer, tuple) and answer[0] == 400, body
        assert answer[1]["error"]["errors"][0]["reason"] == reason, body
    assert isinstance(parse_watch({**ok, "address": "http://localhost:8080/p"}, now=now, max_lifetime=60), WatchRequest)
