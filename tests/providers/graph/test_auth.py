"""The token sources: msal against the emulator's HTTPS identity endpoints (the cache in the secret
slot, refresh-once on a 401, rotated refresh tokens), and the configured token."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from calbridge.config import parse_config
from calbridge.engine import SyncEngine
from calbridge.errors import AuthError, InvalidResponse, NotFound, PermissionDenied, TransientError
from calbridge.registry import default_registry
from calbridge.retry import Retrier, RetryPolicy
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.context import make_context
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA
from calbridge_providers.graph import plugin
from calbridge_providers.graph._auth import CACHE_SECRET, RT_HASH_SECRET
from calbridge_providers.graph.emulator import GraphEmulator

from .conftest import Harness, account_for, at

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)

CANARY = "secret-CANARY-51e0"


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machines' trap: REQUESTS_CA_BUNDLE points at the system bundle, which lacks the test CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    assert os.environ["REQUESTS_CA_BUNDLE"]


async def test_client_credentials_token_fetched_once_and_cache_persisted(harness: Harness, trap: None) -> None:
    harness.emulator.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    provider = harness.provider()
    await harness.sync(provider)
    await harness.sync(provider)
    assert harness.emulator.token_requests == 1
    stored = harness.secrets.values[("m365", CACHE_SECRET)]
    assert "AccessToken" in stored
    # a new process with the same store reuses the persisted token: still one token request
    await harness.sync(harness.provider())
    assert harness.emulator.token_requests == 1


async def test_401_refreshes_once_and_retries(harness: Harness, trap: None) -> None:
    provider = harness.provider()
    await harness.sync(provider)
    harness.emulator.revoke_access_tokens()
    await harness.sync(provider)
    assert harness.emulator.token_requests == 2
    statuses = [r.status for r in harness.emulator.requests if r.path.startswith("/v1.0/")]
    assert statuses[-2:] == [401, 200]


def delegated(h: Harness, token: str) -> dict[str, Any]:
    client_id, secret = next(iter(h.emulator.clients.items()))
    entry = dict(h.entry)
    entry.pop("user")
    entry["auth"] = {"kind": "refresh_token", "tenant_id": h.emulator.tenant, "client_id": client_id,
                     "client_secret": secret, "refresh_token": token, "authority": h.server.url}  # fmt: skip
    return entry


async def test_rotated_refresh_token_survives_and_configured_one_wins(harness: Harness, trap: None) -> None:
    emu = harness.emulator
    emu.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    first = emu.issue_refresh_token()
    await harness.sync(harness.provider(delegated(harness, first)))
    assert len(harness.mirror) == 1 and any(r.path.startswith("/v1.0/me/") for r in emu.requests)
    assert first not in emu._refresh  # consumed and rotated by the emulator
    # a new process: access tokens revoked, so only the rotated refresh token from the store can work
    emu.revoke_access_tokens()
    harness.cursor = None
    await harness.sync(harness.provider(delegated(harness, first)))
    assert emu.token_requests == 2
    # the configured refresh token changed: it wins over the stored cache
    second = emu.issue_refresh_token()
    emu.revoke_access_tokens()
    before = harness.secrets.values[("m365", RT_HASH_SECRET)]
    harness.cursor = None
    await harness.sync(harness.provider(delegated(harness, second)))
    assert second not in emu._refresh and harness.secrets.values[("m365", RT_HASH_SECRET)] != before
    refresh_posts = [r for r in emu.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert len(refresh_posts) == 3


async def test_token_canary_never_in_errors_or_logs(
    harness: Harness, trap: None, caplog: pytest.LogCaptureFixture
) -> None:
    emu = harness.emulator
    emu.clients = {"calbridge-client": CANARY}
    harness.entry = emu.account_config(name="m365", base_url=harness.server.url, ca_file=str(harness.ca.ca_file))
    eid = emu.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    messages: list[str] = []
    caplog.set_level(logging.DEBUG)
    provider = harness.provider()
    await harness.sync(provider)
    for status, error in ((403, PermissionDenied), (404, NotFound), (500, TransientError)):
        emu.fail_next(status, count=8)
        with pytest.raises(error) as info:
            await harness.sync(provider)
        messages.append(str(info.value))
        emu._failures.clear()
    emu.link_origin = "https://evil.example:8443"
    emu.update_event(eid, subject="B")
    with pytest.raises(InvalidResponse) as bad_link:
        await harness.sync(provider)
    messages.append(str(bad_link.value))
    emu.link_origin = None
    wrong = dict(harness.entry)
    wrong["auth"] = {**harness.entry["auth"], "client_secret": CANARY + "-wrong"}
    harness.secrets.values.clear()
    with pytest.raises(AuthError) as refused:
        await harness.sync(harness.provider(wrong))
    messages.append(str(refused.value))
    assert "invalid_client" in messages[-1]
    tokens = list(emu._access) + list(emu._refresh)
    assert tokens
    for text in [*messages, caplog.text]:
        assert CANARY not in text
        assert not any(t in text for t in tokens)


async def test_a_late_rejection_of_an_old_token_keeps_the_new_one(harness: Harness, trap: None) -> None:
    provider = harness.provider()
    tokens = provider.tokens
    first = await tokens.token()
    assert CANARY not in repr(tokens) and first not in repr(tokens)
    harness.emulator.revoke_access_tokens()
    # two requests refused with the same token: one new token, fetched once
    await asyncio.gather(tokens.invalidate(first), tokens.invalidate(first))
    second = await tokens.token()
    assert second != first and harness.emulator.token_requests == 2
    # a third refusal of the first token arrives late: neither our cache nor msal's loses the new one
    await tokens.invalidate(first)
    assert await tokens.token() == second and harness.emulator.token_requests == 2
    cache = tokens._cache  # type: ignore[attr-defined]
    assert [item.get("secret") for item in cache.search(cache.CredentialType.ACCESS_TOKEN)] == [second]
    await harness.sync(provider)
    assert harness.emulator.token_requests == 2


async def test_a_configured_token_the_api_refuses_is_an_auth_error_at_once(harness: Harness) -> None:
    entry = {**harness.entry, "auth": {"kind": "token", "token": CANARY}}
    with pytest.raises(AuthError, match="configured token was refused") as info:
        await harness.sync(harness.provider(entry))
    assert info.value.status == 401 and CANARY not in str(info.value)
    # nothing can refresh a configured token: one request, not a second with the same token
    assert [r.status for r in harness.emulator.requests if r.path.startswith("/v1.0/")] == [401]


async def test_token_endpoint_500_is_transient_retried_then_a_calendar_error(
    emulator: GraphEmulator, test_ca: TestCA, session: aiohttp.ClientSession, trap: None, tmp_path: Path
) -> None:
    @web.middleware
    async def failing_token_endpoint(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/oauth2/v2.0/token"):
            return web.json_response({"error": "server_error"}, status=500)
        return await handler(request)

    app = emulator.make_app()
    app.middlewares.insert(0, failing_token_endpoint)
    with ThreadedServer(app, ssl_context=test_ca.server_context) as server:
        harness = Harness(emulator, server, test_ca, session)
        waits: list[BaseException] = []
        retry = Retrier(FAST, on_wait=lambda what, delay, exc: waits.append(exc))
        provider = plugin.create(
            make_context(account_for(harness.entry), session, secrets=harness.secrets, retry=retry)
        )
        with pytest.raises(TransientError, match="identity provider error: HTTP Error: 500"):
            await harness.sync(provider)
        assert len(waits) == FAST.attempts - 1 and all(isinstance(e, TransientError) for e in waits)

        entry = {**harness.entry, "calendars": ["primary"]}
        doc = {"store": "sqlite:///m.db", "window": {"past": "1d", "future": "10d"}, "accounts": [entry]}
        cfg = parse_config(doc, base_dir=tmp_path, env={}, registry=default_registry)
        async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, retry_policy=FAST) as engine:
            report = await engine.sync()
    assert [r.error for r in report.calendars] == ["TransientError: identity provider error: HTTP Error: 500"]
