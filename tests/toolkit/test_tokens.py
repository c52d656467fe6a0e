"""CachedToken (single flight, expiry margin, invalidation of the rejected token only, its token kept
in a secret slot across processes), the static source, the requests session with the account's CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from calbridge.errors import StoreError, TransientError
from calbridge.testing.context import MemorySecrets
from calbridge.toolkit import (
    CachedToken,
    StaticTokenSource,
    Token,
    TokenSlot,
    TokenSource,
    binding,
    ca_requests_session,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Fetcher:
    def __init__(self, lifetime: dt.timedelta | None = dt.timedelta(hours=1)) -> None:
        self.now = T0
        self.lifetime = lifetime
        self.calls = 0
        self.fail = False

    async def __call__(self) -> Token:
        self.calls += 1
        await asyncio.sleep(0.01)  # long enough for every concurrent caller to pile up
        if self.fail:
            raise TransientError("token endpoint down", provider="t")
        expires = None if self.lifetime is None else self.now + self.lifetime
        return Token(value=f"secret-{self.calls}", expires_at=expires)


async def test_concurrent_callers_share_one_fetch() -> None:
    fetch = Fetcher()
    cache = CachedToken(fetch, clock=lambda: fetch.now)
    got = await asyncio.gather(*(cache.token() for _ in range(20)))
    assert set(got) == {"secret-1"} and fetch.calls == 1 == cache.fetches
    assert isinstance(cache, TokenSource) and cache.refreshable


async def test_a_token_is_fetched_again_within_the_margin_of_its_expiry() -> None:
    fetch = Fetcher()
    cache = CachedToken(fetch, margin=dt.timedelta(minutes=5), clock=lambda: fetch.now)
    assert await cache.token() == "secret-1"
    fetch.now = T0 + dt.timedelta(minutes=54, seconds=59)
    assert await cache.token() == "secret-1"
    fetch.now = T0 + dt.timedelta(minutes=55, seconds=1)
    assert await cache.token() == "secret-2"
    forever = Fetcher(lifetime=None)
    cache2 = CachedToken(forever, clock=lambda: T0 + dt.timedelta(days=999))
    assert await cache2.token() == await cache2.token() == "secret-1"


async def test_only_the_rejected_token_is_dropped_and_rejections_together_cost_one_fetch() -> None:
    fetch = Fetcher()
    cache = CachedToken(fetch, clock=lambda: fetch.now)
    first = await cache.token()

    async def rejected_then_retry() -> str:
        await cache.invalidate(first)
        return await cache.token()

    got = await asyncio.gather(*(rejected_then_retry() for _ in range(5)))
    # The first invalidation drops it; the others find it gone or replaced: one new fetch in all.
    assert got == ["secret-2"] * 5 and fetch.calls == 2
    await cache.invalidate("not-the-current-one")
    assert await cache.token() == got[-1]


async def test_a_failed_fetch_caches_nothing() -> None:
    fetch = Fetcher()
    cache = CachedToken(fetch, clock=lambda: fetch.now, name="tenant")
    fetch.fail = True
    with pytest.raises(TransientError):
        await cache.token()
    fetch.fail = False
    assert await cache.token() == "secret-2" and cache.peek() is not None
    assert repr(cache) == "CachedToken(tenant)" and "secret" not in repr(cache.peek())


async def test_the_static_source_cannot_refresh_and_hides_its_token() -> None:
    source = StaticTokenSource("very-secret")
    assert await source.token() == "very-secret" and not source.refreshable
    await source.invalidate("very-secret")
    assert await source.token() == "very-secret" and "very-secret" not in repr(source)


def test_the_requests_session_trusts_the_accounts_ca_over_the_environment_and_keeps_proxies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_bundle = tmp_path / "env-bundle.pem"
    env_bundle.write_text("", encoding="utf-8")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(env_bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    ca = tmp_path / "ca.pem"
    session = ca_requests_session(ca, timeout=7)
    settings = session.merge_environment_settings("https://login.example.com/t", {}, None, None, None)
    assert settings["verify"] == str(ca) and settings["proxies"]["https"] == "http://proxy.invalid:3128"
    plain = ca_requests_session(None)
    assert plain.merge_environment_settings("https://x.example/", {}, None, None, None)["verify"] == str(env_bundle)
    assert session.default_timeout == 7


def _slot(secrets: MemorySecrets, bound: str = "creds-1") -> TokenSlot:
    return TokenSlot(secrets=secrets, account="acct", name="t.access_token", binding=binding(bound))


async def test_a_stored_token_is_reused_by_the_next_process_until_its_margin() -> None:
    secrets, fetch = MemorySecrets(), Fetcher()
    first = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    assert await first.token() == "secret-1" and fetch.calls == 1
    stored = json.loads(secrets.values[("acct", "t.access_token")])
    assert stored == {"value": "secret-1", "expires_at": (T0 + dt.timedelta(hours=1)).isoformat(),
                      "binding": binding("creds-1")}  # fmt: skip
    # A new process: a new cache on the same store reuses it, no fetch.
    second = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    assert await second.token() == "secret-1" and fetch.calls == 1 and second.fetches == 0
    # Within the margin of its expiry a stored token is not used: fetched anew and stored.
    fetch.now = T0 + dt.timedelta(minutes=56)
    third = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    assert await third.token() == "secret-2" and fetch.calls == 2
    assert json.loads(secrets.values[("acct", "t.access_token")])["value"] == "secret-2"
    assert "secret" not in repr(_slot(secrets)) and binding("creds-1") not in repr(_slot(secrets))


async def test_a_stored_token_of_other_credentials_or_unreadable_is_not_used() -> None:
    secrets, fetch = MemorySecrets(), Fetcher()
    await CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets)).token()
    other = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets, "creds-2"))
    assert await other.token() == "secret-2" and fetch.calls == 2
    naive = json.dumps({"value": "x", "expires_at": "2026-01-01T09:00", "binding": binding("creds-1")})
    for junk in ("not json", "{}", '{"value": "", "expires_at": null}', naive):
        secrets.values[("acct", "t.access_token")] = junk
        assert await CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets)).token() != "x"
    assert fetch.calls == 6


async def test_a_rejected_token_is_dropped_from_the_slot_too() -> None:
    secrets, fetch = MemorySecrets(), Fetcher()
    cache = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    rejected = await cache.token()
    await cache.invalidate(rejected)
    assert secrets.values[("acct", "t.access_token")] == ""
    assert await cache.token() == "secret-2"
    # Another process finds the new one; an invalidation of an older token leaves it in place.
    later = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    await later.invalidate(rejected)
    assert await later.token() == "secret-2" and fetch.calls == 2
    # A token this process saw rejected is never taken back from the slot.
    secrets.values[("acct", "t.access_token")] = json.dumps({"value": rejected, "expires_at": None,
                                                              "binding": binding("creds-1")})  # fmt: skip
    fresh = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(secrets))
    await fresh.invalidate(rejected)
    assert await fresh.token() == "secret-3"


class BrokenSecrets(MemorySecrets):
    async def get_secret(self, account: str, name: str) -> str | None:
        raise StoreError("database is locked")

    async def set_secret(self, account: str, name: str, value: str) -> None:
        raise StoreError("database is locked")


async def test_a_failing_secret_store_costs_a_fetch_not_the_token(caplog: pytest.LogCaptureFixture) -> None:
    fetch = Fetcher()
    cache = CachedToken(fetch, clock=lambda: fetch.now, slot=_slot(BrokenSecrets()), name="t")
    assert await cache.token() == "secret-1"
    await cache.invalidate("secret-1")
    assert await cache.token() == "secret-2"
    assert "StoreError" in caplog.text and "secret-" not in caplog.text
