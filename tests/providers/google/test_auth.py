"""Auth against the emulator's token endpoint: refresh-token and JWT-bearer grants, refresh on 401,
config errors, and tokens kept out of every message."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from pathlib import Path

import aiohttp
import pytest

from calbridge.errors import AuthError, CalbridgeError
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google import plugin
from calbridge_providers.google.emulator import GoogleEmulator

from .support import CAL, Mirror, make_provider, timed

JWT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def test_service_account_jwt_grant_with_subject(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    key = emu.service_account_key(tmp_path / "key.json", token_uri=f"{server.url}/token")
    emu.state.put_event(CAL, timed("x", dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)))
    prov = make_provider(emu, server, session, auth={"kind": "service_account", "key_file": str(key),
                                                     "subject": "alice@example.com"})  # fmt: skip
    mirror = Mirror()
    await mirror.round(prov, None)
    assert len(mirror.live()) == 1
    assert emu.state.token_grants == [
        {"grant_type": JWT, "iss": "sync-bot@emulator.iam.gserviceaccount.com", "sub": "alice@example.com"}
    ]


async def test_service_account_key_the_server_does_not_know_is_refused(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    other = GoogleEmulator()
    key = other.service_account_key(tmp_path / "key.json", token_uri=f"{server.url}/token")
    prov = make_provider(emu, server, session, auth={"kind": "service_account", "key_file": str(key)})
    with pytest.raises(AuthError, match="invalid_grant"):
        await Mirror().round(prov, None)


async def test_authorized_user_refreshes_once_and_again_after_a_401(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    prov = make_provider(emu, server, session)
    mirror = Mirror()
    cursor = await mirror.round(prov, None)
    await mirror.round(prov, cursor)
    assert [g["grant_type"] for g in emu.state.token_grants] == ["refresh_token"]
    emu.state.revoke_access_tokens()
    await mirror.round(prov, cursor)
    assert [g["grant_type"] for g in emu.state.token_grants] == ["refresh_token", "refresh_token"]
    statuses = [r.status for r in emu.state.requests if r.path.startswith("/calendar")]
    assert statuses[-2:] == [401, 200]


async def test_static_token_refused_is_an_auth_error(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    emu.state.add_static_token("good-static-token")
    prov = make_provider(emu, server, session, auth={"kind": "token", "token": "good-static-token"})
    await Mirror().round(prov, None)
    emu.state.revoke_access_tokens()
    with pytest.raises(AuthError):
        await Mirror().round(prov, None)


async def test_tokens_and_secrets_never_appear_in_errors_reprs_or_logs(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "CANARY-7f3a9c"
    texts: list[str] = []
    for auth in (
        {"kind": "authorized_user", "client_id": "calbridge-emulator.apps.googleusercontent.com",
         "client_secret": "emulator-client-secret", "refresh_token": f"{canary}-refresh",
         "token_uri": f"{server.url}/token"},
        {"kind": "authorized_user", "client_id": "calbridge-emulator.apps.googleusercontent.com",
         "client_secret": f"{canary}-secret", "refresh_token": "x", "token_uri": f"{server.url}/token"},
        {"kind": "token", "token": f"{canary}-access"},
    ):  # fmt: skip
        prov = make_provider(emu, server, session, auth=auth)
        with pytest.raises(CalbridgeError) as info:
            await Mirror().round(prov, None)
        exc = info.value
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(prov)]
        texts.append(repr(plugin.parse_auth(auth, account={}, where="a")))
    texts.append(caplog.text)
    assert not [t for t in texts if canary in t]


async def test_the_access_token_outlives_the_provider_and_a_rejected_one_is_dropped(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    from calbridge.testing.context import MemorySecrets
    from calbridge_providers.google._auth import SECRET_ACCESS

    secrets = MemorySecrets()
    emu.state.put_event(CAL, timed("x", dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)))
    await Mirror().round(make_provider(emu, server, session, secrets=secrets), None)
    await Mirror().round(make_provider(emu, server, session, secrets=secrets), None)  # a new process
    assert len(emu.state.token_grants) == 1
    stored = secrets.values[("acme-google", SECRET_ACCESS)]
    assert all(token not in stored for token in ("client_secret", emu.state.clients[next(iter(emu.state.clients))][0]))
    emu.state.revoke_access_tokens()
    await Mirror().round(make_provider(emu, server, session, secrets=secrets), None)
    assert len(emu.state.token_grants) == 2 and secrets.values[("acme-google", SECRET_ACCESS)] != stored
    await Mirror().round(make_provider(emu, server, session, secrets=secrets), None)
    assert len(emu.state.token_grants) == 2
    # A service account on the same store does not take the user's token.
    key = emu.service_account_key(tmp_path / "key.json", token_uri=f"{server.url}/token")
    sa = make_provider(emu, server, session, secrets=secrets, auth={"kind": "service_account", "key_file": str(key)})
    await Mirror().round(sa, None)
    assert len(emu.state.token_grants) == 3
