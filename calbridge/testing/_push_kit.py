"""The plugin kit's push conformance, for any plugin that declares push (:class:`~calbridge.push.PushPlugin`):
subscribe the handle's calendar through the real :class:`~calbridge.service._subscriptions.SubscriptionManager`,
change the calendar on the emulator, and a verified notice for that calendar must reach the real
receiver; the genuine delivery replayed with its secret or subscription id forged, or with a
garbage body, must be refused with a 4xx and trigger nothing; after unsubscribing, nothing arrives.

A handle whose provider learns the receiver's address out of band (Feishu: one request URL per app,
set in its console) implements ``push_address(url)``; one whose deliveries carry no per-subscription
secret in the clear (verified per app, or signed and encrypted) implements ``forged_pushes(request)``
returning forged ``(headers, body)`` pairs of that genuine delivery (a wrong token, a bad signature),
each of which must be refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from ..config import parse_config
from ..engine import SyncEngine
from ..push import NoticeKind, PushAccount, PushAnswer, PushRequest, PushVerifier, SubscriptionLookup, push_plugin
from ..registry import Registry
from ..service._receiver import push_endpoints
from ..service._subscriptions import SubscriptionManager
from ..store.sqlite import SqliteStore
from ._handles import EmulatorHandle
from .harness import FAST_RETRY, run
from .push_rig import PushRig

_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
Forged = tuple[dict[str, str], bytes]


class _Recording:
    """A verifier that keeps the requests it accepted with notices (the genuine deliveries)."""

    def __init__(self, inner: PushVerifier) -> None:
        self.inner = inner
        self.endpoints = inner.endpoints
        self.accepted: list[PushRequest] = []

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer:
        answer = await self.inner.handle(request, subscriptions=subscriptions, accounts=accounts)
        if answer.status < 400 and answer.notices:
            self.accepted.append(request)
        return answer


def _swap(request: PushRequest, old: str, new: str) -> Forged | None:
    """The request with every occurrence of ``old`` replaced (None when it carries none)."""
    headers = {k: v for k, v in request.headers.items() if k not in _HOP}
    if not old or (old not in request.body.decode("utf-8", "replace") and not any(old in v for v in headers.values())):
        return None
    body = request.body.replace(old.encode(), new.encode())
    return {k: v.replace(old, new) for k, v in headers.items()}, body


def _other(secret: str) -> str:
    forged = secrets.token_urlsafe(len(secret))[: len(secret)]
    return forged if forged != secret else forged[::-1] + "x"


class PushCases:
    """Push, for plugins that declare it (skipped otherwise). Needs the suite's fixtures."""

    def test_push_a_change_reaches_the_receiver_verified_and_forgeries_are_refused(
        self, handle: EmulatorHandle, plugin_name: str, plugin_registry: Registry, tmp_path: Path
    ) -> None:
        if push_plugin(plugin_registry.get(plugin_name)) is None:
            pytest.skip(f"the {plugin_name} plugin does not push")
        (tmp_path / "push").mkdir(parents=True, exist_ok=True)
        run(self._push_case(handle, plugin_registry, tmp_path / "push"))

    async def _push_case(self, handle: EmulatorHandle, registry: Registry, directory: Path) -> None:
        doc = {"store": "sqlite:///push.db", "accounts": [handle.account("push")]}
        config = parse_config(doc, base_dir=directory, env={}, registry=registry)
        account = config.accounts[0]
        assert account.calendars, "the handle's account entry must name its calendar"
        calendar_id = account.calendars[0]
        verifiers, accounts = push_endpoints(config, registry)
        recording = {endpoint: _Recording(v) for endpoint, v in verifiers.items()}
        now = lambda: dt.datetime.now(dt.UTC)  # noqa: E731 - the manager's clock
        async with (
            SqliteStore(directory / "push.db") as store,
            SyncEngine(config, store, registry=registry, retry_policy=FAST_RETRY) as engine,
            PushRig(config, store, verifiers=recording, accounts=accounts) as rig,
        ):
            address = getattr(handle, "push_address", None)
            if callable(address):
                address(rig.url)
            manager = SubscriptionManager(store, engine, rig.url, now)
            await manager.ensure(account, calendar_id)
            state = next((s.push for s in await store.status() if s.calendar_id == calendar_id), None)
            assert state is not None, "the manager set no push state"
            if state.startswith("polled: ") and state != "polled: subscribing failed":
                pytest.skip(f"the handle's account cannot push ({state}); give it one that can")
            assert state.startswith("pushed"), f"the handle's account is {state!r}"
            (sub,) = await store.subscriptions(account.name, calendar_id)

            start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
            await asyncio.to_thread(handle.create_single, "pushed", start, start + dt.timedelta(hours=1))
            await rig.wait_for(lambda t: (t.account, t.calendar_id, t.kind) == (account.name, calendar_id,
                                                                                NoticeKind.CHANGE))  # fmt: skip
            genuine = next(r for v in recording.values() for r in v.accepted)
            forged: list[Forged] = []
            if sub.secret:  # verified per subscription: a wrong secret, an unknown id
                swaps = (_swap(genuine, sub.secret, _other(sub.secret)),
                         _swap(genuine, sub.id, f"kit-unknown-{secrets.token_hex(4)}"))  # fmt: skip
                forged += [f for f in swaps if f is not None]
            hook = getattr(handle, "forged_pushes", None)
            if callable(hook):
                forged += list(hook(genuine))
            assert forged, (
                "the kit cannot forge this delivery (no subscription secret shows in it; verified per app?):"
                " give the handle a forged_pushes(request) method"
            )
            headers = {k: v for k, v in genuine.headers.items() if k not in _HOP}
            if genuine.body.strip():  # a delivery with a body (Google's carry none: their headers are it)
                forged.append((headers, b"\x00 not a delivery {"))
            seen = len(rig.triggers)
            url = f"{rig.url}/push/{genuine.endpoint}"
            async with aiohttp.ClientSession() as session:
                for fake_headers, body in forged:
                    async with session.post(url, data=body, headers=fake_headers, params=genuine.query) as r:
                        assert 400 <= r.status < 500, f"a forged delivery was answered {r.status}"
                await rig.quiet()
                assert len(rig.triggers) == seen, f"a forged delivery triggered {rig.triggers[seen:]}"

            await manager.unsubscribe_all()
            assert await store.subscriptions() == []
            seen = len(rig.triggers)
            await asyncio.to_thread(handle.create_single, "after", start, start + dt.timedelta(hours=1))
            await rig.quiet(1.0)
            assert rig.triggers[seen:] == [], "a change after unsubscribing still arrived"


__all__ = ["PushCases"]
