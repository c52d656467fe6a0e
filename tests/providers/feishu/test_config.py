"""The feishu account's config: ``auth`` kinds parsed with errors naming the key, secrets kept out
of reprs, and ``options`` (``request_timeout``, with ``timeout`` as a deprecated alias; ``page_size``;
the attendee scope and quota)."""

from __future__ import annotations

import logging

import pytest

from calbridge.errors import ConfigError, ProviderTimeout
from calbridge_providers.feishu import TokenAuth, UserAuth, plugin
from calbridge_providers.feishu._config import parse_options
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import Factory, Mirror, at


def test_parse_auth_kinds_and_errors() -> None:
    assert plugin.parse_auth({"kind": "token", "token": "t-1"}, account={}, where="accounts[0].auth") == TokenAuth(
        token="t-1"
    )
    user = plugin.parse_auth(
        {"kind": "user", "app_id": "cli_a", "app_secret": "APP-SECRET", "refresh_token": "RT-SECRET"},
        account={},
        where="x",
    )
    assert isinstance(user, UserAuth) and "RT-SECRET" not in repr(user) and "APP-SECRET" not in repr(user)
    with pytest.raises(ConfigError) as info:
        plugin.parse_auth({"kind": "tenant", "app_id": "cli_a"}, account={}, where="accounts[2].auth")
    assert str(info.value) == "accounts[2].auth.app_secret: required"
    with pytest.raises(ConfigError, match=r"accounts\[0\].auth.kind: unknown kind"):
        plugin.parse_auth({"kind": "oauth"}, account={}, where="accounts[0].auth")
    with pytest.raises(ConfigError, match=r"auth.refresh_token: unknown key"):
        plugin.parse_auth(
            {"kind": "tenant", "app_id": "a", "app_secret": "b", "refresh_token": "c"}, account={}, where="auth"
        )
    with pytest.raises(ConfigError, match=r"auth.app_id: expected a string"):
        plugin.parse_auth({"kind": "tenant", "app_id": ["a"], "app_secret": "b"}, account={}, where="auth")


def test_request_timeout_option_and_its_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert parse_options({}).request_timeout == 60.0
    assert parse_options({"request_timeout": 5}).request_timeout == 5.0
    assert parse_options({"request_timeout": 5, "timeout": 9}).request_timeout == 5.0
    assert not caplog.records
    assert parse_options({"timeout": 7}, account="acme-feishu").request_timeout == 7.0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "acme-feishu" in record.getMessage()
    assert "options.timeout is deprecated; use options.request_timeout" in record.getMessage()
    for bad in ("soon", 0, -1, True):
        with pytest.raises(ConfigError) as info:
            parse_options({"request_timeout": bad})
        assert info.value.where == "options.request_timeout"


def test_page_size_is_clamped_to_what_the_list_api_takes() -> None:
    assert parse_options({}).page_size == 1000
    assert [parse_options({"page_size": n}).page_size for n in (10, 50, "200", 1000, 5000)] == [50, 50, 200, 1000, 1000]


def test_attendee_options_default_to_every_event_within_feishus_tier_4_quota() -> None:
    parsed = parse_options({})
    assert (parsed.attendees, parsed.attendee_concurrency, parsed.attendee_qps, parsed.attendee_qpm) == (
        "all", 10, 50, 1000)  # fmt: skip
    parsed = parse_options({"attendees": "window", "attendee_concurrency": "3", "attendee_qps": 5, "attendee_qpm": 60})
    assert (parsed.attendees, parsed.attendee_concurrency, parsed.attendee_qps, parsed.attendee_qpm) == (
        "window", 3, 5, 60)  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_options({"attendees": "some"})
    assert info.value.where == "options.attendees" and "all, window" in str(info.value)
    for key in ("attendee_concurrency", "attendee_qps", "attendee_qpm"):
        for bad in (0, -1, "many", 2.5, True, None):
            with pytest.raises(ConfigError) as info:
                parse_options({key: bad})
            assert info.value.where == f"options.{key}"


@pytest.mark.parametrize("key", ["request_timeout", "timeout"])
@pytest.mark.parametrize("path", ["/events", "tenant_access_token"])
async def test_the_request_timeout_bounds_each_request(
    emu: FeishuEmulator, make_provider: Factory, caplog: pytest.LogCaptureFixture, key: str, path: str
) -> None:
    caplog.set_level(logging.WARNING)
    emu.create_event(summary="x", start=at(1), end=at(1, 1))
    emu.slow(1.0, path=path, count=10)
    provider = make_provider(options={key: 0.2})
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.2s"):
        await Mirror().round(provider)
    assert ("deprecated" in caplog.text) is (key == "timeout")
