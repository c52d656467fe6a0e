"""Graph push over loopback: the provider subscribes against the emulator, whose deliveries reach a
real aiohttp receiver that answers through the plugin's verifier."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calbridge.errors import ConfigError, InvalidRequest, NotFound
from calbridge.push import Notice, NoticeKind, PushRequest, Subscription, push_plugin, push_provider
from calbridge_providers.graph import plugin
from calbridge_providers.graph._push import MAX_LIFETIME, parse_instant
from calbridge_providers.graph.emulator import GraphEmulator
from calbridge_providers.graph.emulator._delivery import Delivery

from .conftest import UTC, Harness, at

HOUR = dt.timedelta(hours=1)
SECRET = "s3cr3t-clientState-of-the-test-0123456789"


class Lookup:
    """An in-memory SubscriptionLookup of what ``subscribe`` returned."""

    def __init__(self) -> None:
        self.subs: dict[str, Subscription] = {}

    def add(self, sub: Subscription) -> Subscription:
        self.subs[sub.id] = sub
        return sub

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        return self.subs.get(subscription_id) if provider == "graph" else None


@attrs.define
class Receiver:
    """``POST /push/graph`` and ``/push/graph/lifecycle`` answered by the verifier; records answers."""

    lookup: Lookup
    url: str = ""
    answers: list[tuple[str, int, tuple[Notice, ...]]] = attrs.field(factory=list)
    handshake: Callable[[str], web.Response] | None = None  # replaces the verifier's handshake answer
    fail_with: list[int] = attrs.field(factory=list)  # statuses for the next notifications (0: no answer)
    handshake_delay: float = 0.0
    hold: asyncio.Event | None = None  # notifications wait for it
    held: int = 0
    changed: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        query = {k: v for k, v in request.query.items()}
        if "validationToken" in query:
            await asyncio.sleep(self.handshake_delay)
            if self.handshake is not None:
                return self.handshake(query["validationToken"])
        elif self.fail_with:
            status = self.fail_with.pop(0)
            if status == 0:
                await asyncio.sleep(1.0)  # past the emulator's push.timeout in the test
            return web.Response(status=status or 202)
        elif self.hold is not None:
            self.held += 1
            self.changed.set()
            await self.hold.wait()
        push = PushRequest(
            endpoint=endpoint, query=query, headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )  # fmt: skip
        answer = await plugin.push_verifier().handle(push, subscriptions=self.lookup, accounts=())
        if "validationToken" not in query:
            self.answers.append((endpoint, answer.status, answer.notices))
            self.changed.set()
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)

    def notices(self, endpoint: str = "graph") -> list[Notice]:
        return [n for e, s, ns in self.answers if e == endpoint for n in ns]

    async def wait(self, count: int, endpoint: str = "graph", timeout: float = 10.0) -> list[Notice]:
        """The notices at ``endpoint`` once there are ``count`` (or what came within ``timeout``)."""
        await self.until(lambda: len(self.notices(endpoint)) >= count, timeout)
        return self.notices(endpoint)

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    self.changed.clear()
                    await self.changed.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(Lookup())
    app = web.Application()
    app.router.add_post("/cb/push/{endpoint:graph(/lifecycle)?}", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rec.url = str(server.make_url("/cb"))
    try:
        yield rec
    finally:
        await server.close()


async def delivered(emu: GraphEmulator, kind: str, count: int) -> list[Delivery]:
    """The emulator's log of ``kind`` deliveries once it holds ``count`` (it logs after the answer)."""
    for _ in range(500):
        if len(emu.deliveries(kind)) >= count:
            break
        await asyncio.sleep(0.02)
    return emu.deliveries(kind)


def soon(seconds: float) -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(seconds=seconds)


async def subscribe(harness: Harness, receiver: Receiver, calendar: str = "primary", **kw: Any) -> Subscription:
    provider = harness.provider()
    expires = kw.pop("expires", soon(3600))
    sub = await provider.subscribe(calendar, public_url=receiver.url, secret=kw.pop("secret", SECRET), expires=expires)
    return receiver.lookup.add(sub)


async def test_plugin_and_provider_declare_push(harness: Harness) -> None:
    assert push_plugin(plugin) is plugin and plugin.push_verifier().endpoints == ("graph", "graph/lifecycle")
    provider = push_provider(harness.provider())
    assert provider is not None and provider.push_unavailable() is None


def test_parse_push_takes_no_settings() -> None:
    where = "accounts[2].push"
    assert plugin.parse_push(None, account={}, where=where) == plugin.parse_push({}, account={}, where=where)
    with pytest.raises(ConfigError) as info:
        plugin.parse_push({"client_state": "x"}, account={}, where=where)
    assert info.value.where == "accounts[2].push.client_state"


async def test_subscribe_passes_the_handshake_and_names_the_calendar(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    cal = emu.new_calendar("Team")
    sub = await subscribe(harness, receiver, cal)
    primary = await subscribe(harness, receiver)
    assert (sub.provider, sub.account, sub.calendar_id, sub.secret) == ("graph", "m365", cal, SECRET)
    assert sub.resource == f"/users/{emu.default_user}/calendars/{cal}/events"
    assert primary.resource == f"/users/{emu.default_user}/events"
    live = {s.id: s for s in emu.subscriptions()}
    assert live[sub.id].calendar_id == cal and live[primary.id].calendar_id == emu._default_calendar(emu.default_user)
    assert live[sub.id].change_types == {"created", "updated", "deleted"}
    assert live[sub.id].notification_url == f"{receiver.url}/push/graph"
    assert live[sub.id].lifecycle_url == f"{receiver.url}/push/graph/lifecycle"
    assert sub.expires is not None and abs((sub.expires - live[sub.id].expires).total_seconds()) < 1e-3
    validations = emu.deliveries("validation")
    assert len(validations) == 4 and all(v.status == 200 for v in validations)
    assert {v.url for v in validations} == {live[sub.id].notification_url, live[sub.id].lifecycle_url}
    assert "clientState" not in repr(emu.deliveries()) and SECRET not in repr(sub)


async def test_a_long_expiry_is_asked_within_both_documented_caps(harness: Harness, receiver: Receiver) -> None:
    before = dt.datetime.now(UTC)
    sub = await subscribe(harness, receiver, expires=before + dt.timedelta(days=30))
    assert sub.expires is not None
    assert (
        before + MAX_LIFETIME - dt.timedelta(seconds=5)
        <= sub.expires
        <= before + MAX_LIFETIME + dt.timedelta(seconds=5)
    )


async def test_the_emulator_refuses_an_expiry_beyond_its_maximum(harness: Harness, receiver: Receiver) -> None:
    harness.emulator.max_subscription_lifetime = dt.timedelta(seconds=30)
    with pytest.raises(InvalidRequest) as info:
        await subscribe(harness, receiver, expires=soon(60))
    assert info.value.status == 400 and SECRET not in str(info.value)
    assert harness.emulator.subscriptions() == []


async def test_create_update_delete_are_delivered_and_verified(
    harness: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = harness.emulator
    sub = await subscribe(harness, receiver)
    eid = emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]
    emu.update_event(eid, subject="Lunch with Bob")
    await receiver.wait(2)
    emu.delete_event(eid)
    notices = await receiver.wait(3)
    assert notices == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)] * 3
    assert [s for _, s, _ in receiver.answers] == [202, 202, 202]
    items = [i for d in await delivered(emu, "change", 3) for i in d.items]
    assert [i["changeType"] for i in items] == ["created", "updated", "deleted"]
    user_id = emu._users[emu.default_user]["id"]
    assert items[0]["resource"] == f"Users/{user_id}/Events/{eid}" and items[0]["tenantId"] == emu.tenant
    assert items[0]["resourceData"]["id"] == eid and items[0]["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert items[1]["resourceData"]["@odata.etag"] != items[0]["resourceData"]["@odata.etag"]
    assert parse_instant(items[0]["subscriptionExpirationDateTime"]) == sub.expires
    assert SECRET not in caplog.text


async def test_only_the_subscribed_calendar_is_notified(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    other = emu.new_calendar("Other")
    await subscribe(harness, receiver, other)
    emu.create_event("Elsewhere", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    eid = emu.create_event("Here", at(2026, 3, 2, 12), at(2026, 3, 2, 13), calendar=other)
    await receiver.wait(1)
    await asyncio.sleep(0.3)
    items = [i for d in emu.deliveries("change") for i in d.items]
    assert [i["resourceData"]["id"] for i in items] == [eid]


async def test_changes_of_two_subscriptions_are_batched_in_one_post(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    emu.push.batch_window = 0.5
    team = emu.new_calendar("Team")
    a, b = await subscribe(harness, receiver), await subscribe(harness, receiver, team)
    emu.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    emu.create_event("B", at(2026, 3, 2, 12), at(2026, 3, 2, 13), calendar=team)
    notices = await receiver.wait(2)
    assert len(await delivered(emu, "change", 1)) == 1 and len(receiver.answers) == 1
    assert sorted(str(n.subscription_id) for n in notices) == sorted([a.id, b.id])


async def test_a_wrong_client_state_is_refused_and_not_redelivered(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    sub = await subscribe(harness, receiver)
    receiver.lookup.add(attrs.evolve(sub, secret=SECRET + "-not"))
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    await receiver.until(lambda: bool(receiver.answers))
    await asyncio.sleep(0.5)  # a retry would come after 0.25 s
    assert receiver.answers == [("graph", 403, ())]
    assert [(d.attempt, d.status) for d in emu.deliveries("change")] == [(1, 403)]


async def test_a_mixed_batch_is_refused_but_keeps_its_valid_notices(
    harness: Harness, receiver: Receiver, session: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emu = harness.emulator
    sub = await subscribe(harness, receiver)
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    await receiver.wait(1)
    valid = (await delivered(emu, "change", 1))[0].items[0]
    forged = dict(valid, clientState="guessed")
    unknown = dict(valid, subscriptionId="00000000-0000-0000-0000-000000000000")
    caplog.set_level(logging.DEBUG)
    url = f"{receiver.url}/push/graph"
    for body, status in (([valid, forged], 403), ([unknown, valid], 403), ([valid, {"clientState": 1}], 400)):
        receiver.answers.clear()
        async with session.post(url, json={"value": body}) as resp:
            assert resp.status == status
        assert receiver.notices() == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]
    for garbage in (b"not json", b"[]", b'{"value": []}', b'{"value": "x"}'):
        receiver.answers.clear()
        async with session.post(url, data=garbage) as resp:
            assert resp.status == 400 and receiver.answers == [("graph", 400, ())]
    assert SECRET not in caplog.text and "guessed" not in caplog.text


async def test_the_handshake_is_answered_with_the_decoded_token(receiver: Receiver, session: Any) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: a+b/c?d&e=f ü"
    for endpoint in ("graph", "graph/lifecycle"):
        async with session.post(f"{receiver.url}/push/{endpoint}", params={"validationToken": token}) as resp:
            assert resp.status == 200 and resp.content_type == "text/plain" and await resp.text() == token
    assert receiver.answers == []


@pytest.mark.parametrize("answer", ["wrong token", "not found", "too slow"])
async def test_an_unanswered_handshake_creates_no_subscription(
    harness: Harness, receiver: Receiver, answer: str
) -> None:
    emu = harness.emulator
    emu.push.validation_timeout = 0.5
    if answer == "too slow":
        receiver.handshake_delay = 1.5
    else:
        receiver.handshake = (lambda t: web.Response(text=t + "x")) if answer == "wrong token" else (
            lambda t: web.Response(status=404))  # fmt: skip
    with pytest.raises(InvalidRequest) as info:
        await subscribe(harness, receiver)
    assert info.value.status == 400 and info.value.code == "ValidationError"
    assert emu.subscriptions() == []
    assert [v.status for v in emu.deliveries("validation")][:1] == [
        None if answer == "too slow" else 200 if answer == "wrong token" else 404
    ]


async def test_a_5xx_is_redelivered(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    emu.push.retry_delay = 0.05
    sub = await subscribe(harness, receiver)
    receiver.fail_with = [503, 500]
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]
    assert [(d.attempt, d.status) for d in await delivered(emu, "change", 3)] == [(1, 503), (2, 500), (3, 202)]


async def test_no_answer_is_redelivered(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    emu.push.timeout, emu.push.retry_delay = 0.3, 0.05
    sub = await subscribe(harness, receiver)
    receiver.fail_with = [0]
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]
    logged = await delivered(emu, "change", 2)
    assert [(d.attempt, d.status, d.error) for d in logged] == [(1, None, "TimeoutError"), (2, 202, None)]


async def test_a_held_delivery_does_not_hold_up_the_api(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    sub = await subscribe(harness, receiver)
    receiver.hold = asyncio.Event()
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    await receiver.until(lambda: receiver.held == 1)
    await harness.sync()
    assert receiver.held == 1 and receiver.answers == [] and len(harness.mirror) == 1
    receiver.hold.set()
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]


async def test_renew_extends_and_expiry_stops_deliveries(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    emu.max_subscription_lifetime = dt.timedelta(seconds=6)
    provider = harness.provider()
    short = receiver.lookup.add(
        await provider.subscribe("primary", public_url=receiver.url, secret=SECRET, expires=soon(2))
    )
    team = emu.new_calendar("Team")
    kept = receiver.lookup.add(await provider.subscribe(team, public_url=receiver.url, secret=SECRET, expires=soon(2)))
    renewed = await provider.renew(kept, public_url=receiver.url, secret=SECRET, expires=soon(5))
    assert renewed.id == kept.id and renewed.secret == SECRET
    assert renewed.expires is not None and kept.expires is not None and renewed.expires > kept.expires
    with pytest.raises(InvalidRequest):
        await provider.renew(kept, public_url=receiver.url, secret=SECRET, expires=soon(60))
    await asyncio.sleep(2.5)
    assert [s.id for s in emu.subscriptions()] == [kept.id]
    emu.create_event("Lost", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    emu.create_event("Kept", at(2026, 3, 2, 12), at(2026, 3, 2, 13), calendar=team)
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=kept.id)]
    await asyncio.sleep(0.3)
    assert len(receiver.notices()) == 1
    with pytest.raises(NotFound):
        await provider.renew(short, public_url=receiver.url, secret=SECRET, expires=soon(5))


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("subscriptionRemoved", NoticeKind.REMOVED),
        ("missed", NoticeKind.MISSED),
        ("reauthorizationRequired", NoticeKind.REAUTHORIZE),
    ],
)
async def test_lifecycle_events_are_delivered_and_mapped(
    harness: Harness, receiver: Receiver, event: str, kind: NoticeKind
) -> None:
    emu = harness.emulator
    provider = harness.provider()
    sub = await subscribe(harness, receiver)
    emu.lifecycle_event(sub.id, event)
    assert await receiver.wait(1, "graph/lifecycle") == [Notice(kind=kind, subscription_id=sub.id)]
    assert [s for e, s, _ in receiver.answers] == [202]
    item = (await delivered(emu, "lifecycle", 1))[0].items[0]
    assert item["lifecycleEvent"] == event and item["tenantId"] == emu.tenant
    if event == "subscriptionRemoved":
        assert emu.subscriptions() == []
        with pytest.raises(NotFound):
            await provider.renew(sub, public_url=receiver.url, secret=SECRET, expires=soon(60))
    else:
        assert [s.id for s in emu.subscriptions()] == [sub.id]
    if event == "reauthorizationRequired":
        assert emu.subscriptions()[0].reauthorization_required
        await provider.reauthorize(sub)
        assert not emu.subscriptions()[0].reauthorization_required


async def test_a_forged_lifecycle_notification_is_refused(receiver: Receiver, session: Any, harness: Harness) -> None:
    sub = await subscribe(harness, receiver)
    item = {"subscriptionId": sub.id, "clientState": "nope", "lifecycleEvent": "subscriptionRemoved"}
    odd = {"subscriptionId": sub.id, "clientState": SECRET, "lifecycleEvent": "somethingElse"}
    for body, status in (([item], 403), ([odd], 400)):
        async with session.post(f"{receiver.url}/push/graph/lifecycle", json={"value": body}) as resp:
            assert resp.status == status
    assert receiver.notices("graph/lifecycle") == []


async def test_unsubscribe_deletes_and_a_gone_one_is_fine(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    provider = harness.provider()
    sub = await subscribe(harness, receiver)
    await provider.unsubscribe(sub)
    assert emu.subscriptions() == []
    await provider.unsubscribe(sub)
    statuses = [r.status for r in emu.requests if r.method == "DELETE"]
    assert statuses == [204, 404]
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    await asyncio.sleep(0.3)
    assert emu.deliveries("change") == []


async def test_delegated_accounts_subscribe_under_me(harness: Harness, receiver: Receiver) -> None:
    emu = harness.emulator
    client_id, secret = next(iter(emu.clients.items()))
    entry = {k: v for k, v in harness.entry.items() if k != "user"}
    entry["auth"] = {"kind": "refresh_token", "tenant_id": emu.tenant, "client_id": client_id,
                     "client_secret": secret, "refresh_token": emu.issue_refresh_token(),
                     "authority": harness.server.url}  # fmt: skip
    provider = harness.provider(entry)
    cal = emu.new_calendar("Team")
    sub = receiver.lookup.add(await provider.subscribe(cal, public_url=receiver.url, secret=SECRET, expires=soon(600)))
    assert sub.resource == f"/me/calendars/{cal}/events"
    emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13), calendar=cal)
    assert await receiver.wait(1) == [Notice(kind=NoticeKind.CHANGE, subscription_id=sub.id)]


async def test_subscription_calls_are_authorized(harness: Harness, session: Any, receiver: Receiver) -> None:
    base = f"{harness.server.url}/v1.0/subscriptions"
    ssl = harness.provider()._ctx.ssl
    async with session.get(base, ssl=ssl) as resp:
        assert resp.status == 401
    body = {"changeType": "created", "notificationUrl": f"{receiver.url}/push/graph", "resource": "/me/events",
            "expirationDateTime": soon(60).isoformat()}  # fmt: skip
    async with session.post(base, json=body, ssl=ssl) as resp:
        assert resp.status == 401
    assert harness.emulator.deliveries() == []


def test_emulator_refuses_plain_http_off_loopback() -> None:
    from calbridge_providers.graph.emulator._subscriptions import RequestError, parse_create

    now = dt.datetime.now(UTC)
    body = {"changeType": "created", "resource": "/users/a/events", "clientState": "x" * 129,
            "notificationUrl": "https://hooks.example/g", "expirationDateTime": (now + HOUR).isoformat()}  # fmt: skip
    with pytest.raises(RequestError):
        parse_create(body, now=now, max_lifetime=dt.timedelta(days=1))
    body["clientState"] = "x" * 128
    assert parse_create(body, now=now, max_lifetime=dt.timedelta(days=1)).target.calendar is None
    for url in ("http://hooks.example/g", "ftp://127.0.0.1/g"):
        with pytest.raises(RequestError):
            parse_create(dict(body, notificationUrl=url), now=now, max_lifetime=dt.timedelta(days=1))
    assert parse_create(dict(body, notificationUrl="http://127.0.0.1:9/g"), now=now, max_lifetime=dt.timedelta(days=1))
