"""The google account's config: ``auth`` kinds parsed with errors naming the key, and ``options``
(``request_timeout``, with ``timeout`` as a deprecated alias)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from calbridge.errors import ConfigError, ProviderTimeout
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google import plugin
from calbridge_providers.google._config import parse_options
from calbridge_providers.google.emulator import GoogleEmulator

from .support import Mirror, make_provider


def test_parse_auth_names_the_missing_or_unknown_key(tmp_path: Path) -> None:
    where = "accounts[1].auth"
    cases = [
        ({"kind": "authorized_user", "client_id": "c", "refresh_token": "r"}, "accounts[1].auth.client_secret"),
        ({"client_id": "c"}, "accounts[1].auth.kind"),
        ({"kind": "oauth"}, "accounts[1].auth.kind"),
        ({"kind": "token", "token": "t", "tokne": "x"}, "accounts[1].auth.tokne"),
        ({"kind": "service_account", "key_file": str(tmp_path / "missing.json")}, "accounts[1].auth.key_file"),
        ({"kind": "service_account"}, "accounts[1].auth.key_file"),
    ]
    for raw, expected in cases:
        with pytest.raises(ConfigError) as info:
            plugin.parse_auth(raw, account={}, where=where)
        assert info.value.where == expected, raw


def test_parse_auth_defaults_token_uri() -> None:
    auth = plugin.parse_auth(
        {"kind": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}, account={}, where="a"
    )
    assert auth.token_uri == "https://oauth2.googleapis.com/token"  # type: ignore[attr-defined]
    assert repr(auth) == "AuthorizedUserAuth(client_id='c', token_uri='https://oauth2.googleapis.com/token')"


def test_request_timeout_option_and_its_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert parse_options({}).request_timeout == 60.0
    assert parse_options({"request_timeout": 5}).request_timeout == 5.0
    assert not caplog.records
    assert parse_options({"timeout": 7}, account="acme-google").request_timeout == 7.0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "options.timeout is deprecated; use options.request_timeout" in record.getMessage()
    with pytest.raises(ConfigError) as info:
        parse_options({"request_timeout": "soon"})
    assert info.value.where == "options.request_timeout"


@pytest.mark.parametrize("key", ["request_timeout", "timeout"])
async def test_the_request_timeout_bounds_each_request(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession, key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING)
    emu.state.inject(0, delay=1.0, times=10, path_contains="/events")
    prov = make_provider(emu, server, session, options={key: 0.2})
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.2s"):
        await Mirror().round(prov, None)
    assert ("deprecated" in caplog.text) is (key == "timeout")
