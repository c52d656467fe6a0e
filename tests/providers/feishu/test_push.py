"""Feishu push over loopback: the provider subscribes with the user's token, the emulator delivers
every change to a real aiohttp receiver running the plugin's verifier, plain and encrypted; the
url_verification challenge, forged deliveries, duplicates, retries, unsubscription, tenant accounts,
and the ``push`` settings' errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from calbridge.config import AccountConfig, parse_config, structure_auth
from calbridge.errors import AuthError, ConfigError
from calbridge.push import Notice, NoticeKind, PushAccount, PushAnswer, PushRequest, Subscription, push_provider
from calbridge.registry import default_registry
from calbridge.testing.context import make_context
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu import FeishuPushSettings, PushNotConfigured, plugin
from calbridge_providers.feishu._provider import FeishuProvider
from calbridge_providers.feishu._verify import decrypt
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.feishu.emulator._pushwire import body_of, event_doc, headers_for

from .conftest import at

APP = "cli_calbridge_demo"
OTHER_APP = "cli_other_app"
TOKEN = "vt-canary-verification-0042"
KEY = "ek-canary-encrypt-0042"
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class NoSubscriptions:
    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        return None


class Receiver:
    """``POST /push/feishu`` on the test's loop: the plugin's verifier answers. Each entry of
    ``plan`` is (delay, status) for the next request: answered ``status`` after ``delay`` seconds
    instead, its notices dropped (the service down or stalled)."""

    def __init__(self) -> None:
        self.accounts: list[PushAccount] = []
        self.notices: list[Notice] = []
        self.answers: list[PushAnswer] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.plan: list[tuple[float, int]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append((headers, body))
        push = PushRequest(endpoint="feishu", query=dict(request.query), headers=headers, body=body)
        answer = await plugin.push_verifier().handle(push, subscriptions=NoSubscriptions(), accounts=self.accounts)
        self.answers.append(answer)
        if self.plan:
            delay, status = self.plan.pop(0)
            await asyncio.sleep(delay)
            return web.Response(status=status)
        self.notices.extend(answer.notices)
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/push/feishu", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/push/feishu"
    yield rec
    await runner.cleanup()


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` (a generous bound: a loaded machine must not flake)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "not within the bound"
        await asyncio.sleep(0.01)


def account(
    emu: FeishuEmulator, server: ThreadedServer, *, name: str = "acme-feishu", kind: str = "user",
    push: dict[str, Any] | None = None, app_id: str = APP,
) -> AccountConfig:  # fmt: skip
    """An account structured as a config file's would be (``auth`` and ``push`` through the plugin)."""
    auth: dict[str, Any] = {"kind": kind, "app_id": app_id, "app_secret": emu.apps[app_id]}
    if kind == "user":
        auth["refresh_token"] = emu.issue_refresh_token(app_id)
    raw = AccountConfig(name=name, provider="feishu", auth=auth, base_url=server.url, push=push)
    return structure_auth(plugin, raw, base_dir=Path("."), where="accounts[0].auth")


def provider_for(acc: AccountConfig, session: aiohttp.ClientSession) -> FeishuProvider:
    provider = plugin.create(make_context(acc, session))
    assert isinstance(provider, FeishuProvider) and push_provider(provider) is provider
    return provider


def settings(token: str = TOKEN, key: str | None = None) -> dict[str, str]:
    return {"verification_token": token, **({"encrypt_key": key} if key else {})}


async def configured(emu: FeishuEmulator, url: str, *, token: str = TOKEN, key: str | None = None) -> None:
    outcome = await asyncio.wrap_future(emu.push.configure(APP, verification_token=token, encrypt_key=key,
                                                           request_url=url))  # fmt: skip
    assert outcome is not None and outcome.ok, outcome


async def subscribed(acc: AccountConfig, session: aiohttp.ClientSession, calendar: str = "primary") -> Subscription:
    return await provider_for(acc, session).subscribe(calendar, public_url="https://unused.example", secret="unused",
                                                      expires=LATER)  # fmt: skip


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
async def test_create_update_delete_arrive_verified(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver, key: str | None,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    acc = account(emu, server, push=settings(key=key))
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    await configured(emu, receiver.url, key=key)
    provider = provider_for(acc, session)
    assert provider.push_unavailable() is None
    sub = await provider.subscribe("primary", public_url="https://unused.example", secret="unused", expires=LATER)
    assert (sub.provider, sub.account, sub.calendar_id) == ("feishu", "acme-feishu", "primary")
    assert sub.resource == emu.primary_id
    assert sub.id == f"acme-feishu/{emu.primary_id}"  # unique per provider: accounts may share a calendar
    assert sub.expires is None and sub.secret is None
    assert await provider.renew(sub, public_url="https://unused.example", secret="unused", expires=LATER) == sub
    assert emu.push.subscriptions() == [(APP, emu.primary_id)]

    eid = emu.create_event(summary="Standup", start=at(1), end=at(1, 1))
    emu.update_event(eid, summary="Standup (moved)")
    emu.delete_event(eid)
    await eventually(lambda: len(receiver.notices) == 3 and emu.push.pending() == 0)  # answered and logged

    log = emu.push.deliveries()
    assert sorted((d.change_type, d.status, d.encrypted, d.calendar_event_id) for d in log) == [
        (change, 200, key is not None, eid) for change in ("create", "delete", "update")
    ]
    assert {n.kind for n in receiver.notices} == {NoticeKind.CHANGE}
    assert {n.calendar_id for n in receiver.notices} == {emu.primary_id}
    assert {n.accounts for n in receiver.notices} == {("acme-feishu",)}
    assert sorted(n.dedup_key or "" for n in receiver.notices) == sorted(d.event_id for d in log)
    assert len({d.event_id for d in log}) == 3
    headers, body = receiver.received[-1]
    wire = json.loads(body)
    if key is None:
        assert wire["schema"] == "2.0" and wire["header"]["token"] == TOKEN and wire["header"]["app_id"] == APP
        assert "x-lark-signature" not in headers
    else:
        assert list(wire) == ["encrypt"] and TOKEN.encode() not in body
        assert {"x-lark-request-timestamp", "x-lark-request-nonce", "x-lark-signature"} <= set(headers)
    out = capsys.readouterr()
    for secret in (TOKEN, KEY):
        assert secret not in caplog.text and secret not in out.out + out.err


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
async def test_url_verification_is_answered_exactly(
    emu: FeishuEmulator, server: ThreadedServer, receiver: Receiver, key: str | None
) -> None:
    receiver.accounts = [PushAccount(name="acme-feishu", settings=account(emu, server, push=settings(key=key)).push)]
    outcome = await asyncio.wrap_future(emu.push.configure(APP, verification_token=TOKEN, encrypt_key=key,
                                                           request_url=receiver.url))  # fmt: skip
    assert outcome is not None and outcome.ok and outcome.status == 200 and outcome.encrypted == (key is not None)
    headers, body = receiver.received[0]
    sent = json.loads(body)
    if key is not None:
        assert list(sent) == ["encrypt"] and "x-lark-signature" not in headers  # unsigned, as the SDK expects
        plain = decrypt(key, sent["encrypt"])
        assert plain is not None
        sent = json.loads(plain)
    assert sent["type"] == "url_verification" and sent["token"] == TOKEN
    answer = receiver.answers[0]
    assert (answer.status, answer.content_type, answer.notices) == (200, "application/json", ())
    assert json.loads(answer.body) == {"challenge": sent["challenge"]}
    assert emu.push.consoles[APP].request_url == receiver.url


@pytest.mark.parametrize(
    ("console", "configured_key"),
    [({"verification_token": "vt-wrong"}, None),
     ({"verification_token": "vt-wrong", "encrypt_key": KEY}, KEY),
     ({"verification_token": TOKEN, "encrypt_key": "ek-wrong"}, KEY)],
    ids=["wrong-token", "wrong-token-encrypted", "wrong-key"],
)  # fmt: skip
async def test_url_verification_that_does_not_verify_is_refused(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver,
    console: dict[str, str], configured_key: str | None,
) -> None:  # fmt: skip
    acc = account(emu, server, push=settings(key=configured_key))
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    outcome = await asyncio.wrap_future(emu.push.configure(APP, request_url=receiver.url, **console))
    assert outcome is not None and not outcome.ok and outcome.status == 401
    assert receiver.answers[0].notices == () and b"challenge" not in receiver.answers[0].body
    # The console did not keep the URL, so nothing is delivered there.
    await subscribed(acc, session)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    assert emu.push.consoles[APP].request_url is None and emu.push.deliveries() == [] and emu.push.pending() == 0


def _forged(doc: dict[str, Any], key: str | None, *, sign_with: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = body_of(doc, key)
    return body, headers_for(body, sign_with, signed=True)


async def test_forged_deliveries_are_refused_without_a_notice(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    plain = account(emu, server, name="plain", push=settings())
    sealed = account(emu, server, name="sealed", push=settings(token="vt-sealed", key=KEY))
    receiver.accounts = [PushAccount(name=a.name, settings=a.push) for a in (plain, sealed)]

    def doc(token: str, app_id: str = APP) -> dict[str, Any]:
        return event_doc(event_id="ev-1", app_id=app_id, token=token, tenant_key="tk", calendar_id=emu.primary_id,
                         user_open_id="ou_user", calendar_event_id=None, change_type=None)  # fmt: skip

    tampered_body, tampered_headers = _forged(doc("vt-sealed"), KEY, sign_with=KEY)
    unsigned = _forged(doc("vt-sealed"), KEY)
    forged: dict[str, tuple[bytes, dict[str, str], int]] = {
        "wrong token": (*_forged(doc("vt-wrong"), None), 401),
        "another app": (*_forged(doc(TOKEN, app_id=OTHER_APP), None), 401),
        "plain body for the sealed account": (*_forged(doc("vt-sealed"), None), 401),
        "signed with another key": (*_forged(doc("vt-sealed"), KEY, sign_with="ek-wrong"), 401),
        "another nonce": (tampered_body, {**tampered_headers, "X-Lark-Request-Nonce": "0000"}, 401),
        "tampered body": (tampered_body.replace(b'"}', b'A"}'), tampered_headers, 401),
        "unsigned": (*unsigned, 401),
        "wrong encrypt key": (*_forged(doc("vt-sealed"), "ek-wrong", sign_with="ek-wrong"), 401),
        "right key, wrong token": (*_forged(doc("vt-wrong"), KEY, sign_with=KEY), 401),
        "garbage": (b"\x00not json{", {}, 400),
        "a list": (b"[1, 2]", {}, 400),
        "encrypt not a string": (b'{"encrypt": 5}', {}, 400),
        "encrypt not base64": (b'{"encrypt": "***"}', {}, 401),
        "url_verification, wrong token": (b'{"challenge":"c","token":"vt-wrong","type":"url_verification"}', {}, 401),
    }
    for reason, (body, headers, status) in forged.items():
        async with session.post(receiver.url, data=body, headers=headers) as resp:
            assert resp.status == status, reason
    assert receiver.notices == []
    # The same shapes made right are accepted: the refusals above are for the reasons named.
    for body, headers in (_forged(doc(TOKEN), None), _forged(doc("vt-sealed"), KEY, sign_with=KEY)):
        async with session.post(receiver.url, data=body, headers=headers) as resp:
            assert resp.status == 200
    assert [n.accounts for n in receiver.notices] == [("plain",), ("sealed",)]


async def test_deliveries_under_a_wrong_encrypt_key_are_refused_and_retried(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    acc = account(emu, server, push=settings(key=KEY))
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    emu.push.configure(APP, verification_token=TOKEN, encrypt_key="ek-wrong", request_url=receiver.url, challenge=False)
    emu.push.retry_delays = (0.05, 0.05)
    await subscribed(acc, session)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    await eventually(lambda: len(emu.push.deliveries()) == 3 and emu.push.pending() == 0)
    assert [(d.attempt, d.status) for d in emu.push.deliveries()] == [(1, 401), (2, 401), (3, 401)]
    assert len({d.event_id for d in emu.push.deliveries()}) == 1 and receiver.notices == []


async def test_duplicates_carry_the_same_dedup_key(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    acc = account(emu, server, push=settings(key=KEY))
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    await configured(emu, receiver.url, key=KEY)
    emu.push.duplicates = 1
    emu.push.grey_release = False  # many tenants get only calendar_id and user_id_list (F6)
    await subscribed(acc, session)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    await eventually(lambda: len(receiver.notices) == 2 and emu.push.pending() == 0)
    first, again = receiver.notices
    assert first == again and first.dedup_key and first.calendar_id == emu.primary_id
    assert [d.copy for d in emu.push.deliveries()] == [0, 1]
    sent = decrypt(KEY, json.loads(receiver.received[-1][1])["encrypt"])
    assert sent is not None and set(json.loads(sent)["event"]) == {"calendar_id", "user_id_list"}


async def test_an_unanswered_delivery_is_retried_with_the_same_event_id(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    acc = account(emu, server, push=settings())
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    await configured(emu, receiver.url)
    emu.push.answer_timeout, emu.push.retry_delays = 0.3, (0.05, 0.05, 0.05)
    receiver.plan = [(0.6, 200), (0.0, 503)]  # answered too late, then an error, then answered
    await subscribed(acc, session)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    await eventually(lambda: emu.push.pending() == 0 and len(emu.push.deliveries()) == 3)
    log = emu.push.deliveries()
    assert [(d.attempt, d.status) for d in log] == [(1, None), (2, 503), (3, 200)]
    assert log[0].error == "no answer within 0.3s" and len({d.event_id for d in log}) == 1
    await eventually(lambda: len(receiver.notices) == 1)
    assert receiver.notices[0].dedup_key == log[0].event_id


async def test_unsubscribe_stops_deliveries(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    acc = account(emu, server, push=settings())
    receiver.accounts = [PushAccount(name=acc.name, settings=acc.push)]
    await configured(emu, receiver.url)
    other = emu.new_calendar("team")
    provider = provider_for(acc, session)
    primary = await provider.subscribe("primary", public_url="u", secret="s", expires=LATER)
    await provider.subscribe(other, public_url="u", secret="s", expires=LATER)
    await provider.unsubscribe(primary)
    await provider.unsubscribe(primary)  # already gone: not an error
    assert emu.push.subscriptions() == [(APP, other)]
    emu.create_event(summary="unheard", start=at(1), end=at(1, 1))
    emu.create_event(summary="heard", start=at(2), end=at(2, 1), calendar_id=other)
    await eventually(lambda: len(receiver.notices) == 1 and emu.push.pending() == 0)
    assert [n.calendar_id for n in receiver.notices] == [other]
    assert emu.push.deliveries(calendar_id=emu.primary_id) == []


async def test_every_account_of_the_app_is_named(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    emu.apps[OTHER_APP] = "other-secret"
    mine = [account(emu, server, name=n, push=settings()) for n in ("alice", "bob")]
    theirs = account(emu, server, name="carol", push=settings(), app_id=OTHER_APP)
    receiver.accounts = [PushAccount(name=a.name, settings=a.push) for a in (*mine, theirs)]
    # A `kind: token` account names no app: its verification token alone matches it.
    bearer = plugin.parse_push(settings(), account={"auth": {"kind": "token", "token": "u-x"}}, where="push")
    receiver.accounts.append(PushAccount(name="dave", settings=bearer))
    await configured(emu, receiver.url)
    await subscribed(mine[0], session)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    await eventually(lambda: len(receiver.notices) == 1)
    assert receiver.notices[0].accounts == ("alice", "bob", "dave")


async def test_a_tenant_account_is_polled_and_its_subscription_refused(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    acc = account(emu, server, kind="tenant", push=settings())
    provider = provider_for(acc, session)
    reason = provider.push_unavailable()
    assert reason is not None and "user_access_token" in reason
    async with session.post(f"{server.url}/open-apis/auth/v3/tenant_access_token/internal",
                            json={"app_id": APP, "app_secret": emu.apps[APP]}) as resp:  # fmt: skip
        tenant = (await resp.json())["tenant_access_token"]
    path = f"{server.url}/open-apis/calendar/v4/calendars/{emu.primary_id}/events/subscription"
    async with session.post(path, headers={"Authorization": f"Bearer {tenant}"}) as resp:
        assert resp.status == 400 and (await resp.json())["code"] == 99991663
    with pytest.raises(AuthError) as info:
        await provider.subscribe("primary", public_url="u", secret="s", expires=LATER)
    assert info.value.code == "99991663"
    assert emu.push.subscriptions() == []


def test_push_settings_and_why_an_account_is_polled(emu: FeishuEmulator, server: ThreadedServer) -> None:
    acc = account(emu, server, push=settings(key=KEY))
    assert acc.push == FeishuPushSettings(app_id=APP, verification_token=TOKEN, encrypt_key=KEY)
    assert TOKEN not in repr(acc.push) and KEY not in repr(acc.push)
    token = plugin.parse_push(settings(), account={"auth": {"kind": "token", "token": "t-x"}}, where="accounts[0].push")
    assert isinstance(token, FeishuPushSettings) and token.app_id is None and token.encrypt_key is None
    unset = account(emu, server)
    assert isinstance(unset.push, PushNotConfigured)


async def test_an_account_without_push_settings_is_polled(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    assert provider_for(account(emu, server), session).push_unavailable() == "no push settings (verification_token)"
    off = AccountConfig(name="off", provider="feishu", auth=account(emu, server).auth, base_url=server.url, push=False)
    assert provider_for(off, session).push_unavailable() == "push is off (push: false)"


@pytest.mark.parametrize(
    ("push", "message"),
    [({"encrypt_key": KEY}, "accounts[0].push.verification_token: required"),
     ({"verification_token": ""}, "accounts[0].push.verification_token: required"),
     ({"verification_token": TOKEN, "encrypt": KEY}, "accounts[0].push.encrypt: unknown key"),
     ({"verification_token": TOKEN, "encrypt_key": ["x"]}, "accounts[0].push.encrypt_key: expected a string, got list"),
     ({"verification_token": True}, "accounts[0].push.verification_token: expected a string, got bool")],
)  # fmt: skip
def test_push_config_errors_name_the_place(push: dict[str, Any], message: str) -> None:
    auth = {"kind": "user", "app_id": APP, "app_secret": "s", "refresh_token": "r"}
    data = {"accounts": [{"name": "acme", "provider": "feishu", "push": push, "auth": auth}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir=Path("."), env={}, registry=default_registry)
    assert str(info.value).startswith(message)
    assert TOKEN not in str(info.value) and KEY not in str(info.value)
