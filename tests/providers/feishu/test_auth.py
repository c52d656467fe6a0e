"""Feishu token sources against the emulator: tenant token reuse, rotating user refresh tokens, secret hygiene."""

from __future__ import annotations

import logging

import pytest

from calbridge.errors import AuthError
from calbridge.testing.context import MemorySecrets
from calbridge_providers.feishu import TenantAuth, UserAuth
from calbridge_providers.feishu._auth import SECRET_REFRESH, SECRET_TENANT, UserTokens
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import Factory, Mirror, at

APP = "cli_calbridge_demo"


async def test_tenant_token_is_reused(emu: FeishuEmulator, make_provider: Factory) -> None:
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    await mirror.round(provider)
    assert len(emu.requests("tenant_access_token")) == 1


async def test_tenant_token_outlives_the_provider_and_a_rejected_one_is_dropped(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    secrets = MemorySecrets()
    await Mirror().round(make_provider(secrets=secrets))
    await Mirror().round(make_provider(secrets=secrets))  # a new process on the same store
    assert len(emu.requests("tenant_access_token")) == 1
    stored = secrets.values[("acme-feishu", SECRET_TENANT)]
    emu.revoke_access_tokens()
    await Mirror().round(make_provider(secrets=secrets))  # refused once, fetched anew, stored
    assert len(emu.requests("tenant_access_token")) == 2 and secrets.values[("acme-feishu", SECRET_TENANT)] != stored
    await Mirror().round(make_provider(secrets=secrets))
    assert len(emu.requests("tenant_access_token")) == 2
    # Other credentials (here: another app secret the emulator knows) never take the stored token.
    emu.apps[APP + "2"] = "second-secret"
    await Mirror().round(make_provider(secrets=secrets, auth=TenantAuth(app_id=APP + "2", app_secret="second-secret")))
    assert len(emu.requests("tenant_access_token")) == 3


async def test_wrong_app_secret_is_a_clear_auth_error(emu: FeishuEmulator, make_provider: Factory) -> None:
    provider = make_provider(auth=TenantAuth(app_id=APP, app_secret="wrong-secret-canary"))
    with pytest.raises(AuthError) as info:
        await Mirror().round(provider)
    assert info.value.code == "10014" and "wrong-secret-canary" not in str(info.value)


async def test_two_user_refreshes_rotate_and_persist(
    emu: FeishuEmulator, make_provider: Factory, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    configured = emu.issue_refresh_token(APP)
    secrets = MemorySecrets()
    auth = UserAuth(app_id=APP, app_secret=emu.apps[APP], refresh_token=configured)
    provider = make_provider(auth=auth, secrets=secrets)
    mirror = Mirror()
    await mirror.round(provider)
    first = secrets.values[("acme-feishu", SECRET_REFRESH)]
    assert first != configured

    emu.revoke_access_tokens()  # the access token dies mid-life: refresh #2 must use the rotated token
    emu.create_event(summary="y", start=at(2), end=at(2, 1))
    await mirror.round(provider)
    second = secrets.values[("acme-feishu", SECRET_REFRESH)]
    assert second not in (first, configured)
    assert isinstance(provider.tokens, UserTokens) and provider.tokens.refreshes == 2
    assert len(emu.requests("/authen/v2/oauth/token")) == 2  # the dead configured token was never sent again

    # A new process with the same store: the stored (newest) refresh token is used, not the configured one.
    emu.revoke_access_tokens()
    again = make_provider(auth=auth, secrets=secrets)
    await Mirror().round(again)
    assert secrets.values[("acme-feishu", SECRET_REFRESH)] not in (second, first, configured)

    out = capsys.readouterr()
    reprs = repr(provider) + repr(provider.tokens) + repr(provider.client.http) + repr(auth)
    for token in (configured, first, second, emu.apps[APP]):
        assert token not in caplog.text and token not in out.out and token not in out.err and token not in reprs


async def test_user_reauthorised_configured_token_wins(emu: FeishuEmulator, make_provider: Factory) -> None:
    secrets = MemorySecrets()
    old = emu.issue_refresh_token(APP)
    await Mirror().round(
        make_provider(auth=UserAuth(app_id=APP, app_secret=emu.apps[APP], refresh_token=old), secrets=secrets)
    )
    fresh = emu.issue_refresh_token(APP)  # the user re-authorised; the config now holds the new token
    provider = make_provider(auth=UserAuth(app_id=APP, app_secret=emu.apps[APP], refresh_token=fresh), secrets=secrets)
    provider_tokens = provider.tokens
    await Mirror().round(provider)
    assert isinstance(provider_tokens, UserTokens) and provider_tokens.refreshes == 1
    sent = [r for r in emu.requests("/authen/v2/oauth/token")]
    assert len(sent) == 2


async def test_stale_stored_token_falls_back_to_configured_once(emu: FeishuEmulator, make_provider: Factory) -> None:
    import hashlib

    secrets = MemorySecrets()
    configured = emu.issue_refresh_token(APP)
    digest = hashlib.sha256(configured.encode()).hexdigest()
    secrets.values[("acme-feishu", SECRET_REFRESH)] = "ur-stale-and-dead"
    secrets.values[("acme-feishu", "feishu.refresh_token.configured_sha256")] = digest
    provider = make_provider(
        auth=UserAuth(app_id=APP, app_secret=emu.apps[APP], refresh_token=configured), secrets=secrets
    )
    await Mirror().round(provider)
    assert len(emu.requests("/authen/v2/oauth/token")) == 2


async def test_dead_refresh_token_never_leaks_into_the_error(emu: FeishuEmulator, make_provider: Factory) -> None:
    canary = "ur-CANARY-7f3a9c"
    provider = make_provider(auth=UserAuth(app_id=APP, app_secret="s3cr3t-canary", refresh_token=canary))
    with pytest.raises(AuthError) as info:
        await Mirror().round(provider)
    text = str(info.value) + repr(info.value) + str(info.value.__cause__)
    assert canary not in text and "s3cr3t-canary" not in text
    assert "re-authorise" in str(info.value)
