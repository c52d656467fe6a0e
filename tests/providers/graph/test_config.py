"""The graph account's config: ``auth`` kinds parsed with errors naming the key (no network), and
``options`` (``request_timeout``, with ``timeout`` as a deprecated alias; ``page_size``;
``max_concurrency``)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest

from calbridge.errors import ConfigError, ProviderTimeout
from calbridge_providers.graph import plugin
from calbridge_providers.graph._config import ClientCredentialsAuth, TokenAuth, parse_options

from .conftest import Harness, at

CANARY = "secret-CANARY-51e0"


@pytest.mark.parametrize(
    ("raw", "account", "where", "message"),
    [
        ({"kind": "client_credentials", "tenant_id": "t", "client_id": "c"}, {"user": "u"},
         "accounts[1].auth.client_secret", "required"),
        ({"kind": "client_credentials", "tenant_id": "t", "client_id": "c", "client_secret": "s"}, {},
         "accounts[1].user", "required with client_credentials"),
        ({"kind": "password"}, {}, "accounts[1].auth.kind", "unknown kind"),
        ({"tenant_id": "t"}, {}, "accounts[1].auth.kind", "required"),
        ({"kind": "refresh_token", "tenant_id": "t", "client_id": "c"}, {}, "accounts[1].auth.refresh_token",
         "required"),
        ({"kind": "token", "token": "x", "tenant": "t"}, {}, "accounts[1].auth.tenant", "unknown key"),
    ],
)  # fmt: skip
def test_parse_auth_errors_name_the_place(
    raw: dict[str, Any], account: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        plugin.parse_auth(raw, account=account, where="accounts[1].auth")
    assert info.value.where == where and message in info.value.message


def test_parse_auth_structures_without_network_and_hides_secrets() -> None:
    auth = plugin.parse_auth(
        {"kind": "client_credentials", "tenant_id": "t", "client_id": "c", "client_secret": CANARY},
        account={"user": "u@x"},
        where="accounts[0].auth",
    )
    assert auth.kind == "client_credentials" and CANARY not in repr(auth)
    rt = plugin.parse_auth({"kind": "refresh_token", "tenant_id": "t", "client_id": "c", "refresh_token": CANARY},
                           account={}, where="a")  # fmt: skip
    assert CANARY not in repr(rt) and rt.client_secret is None


def test_the_auth_configs_are_named_like_every_providers_and_the_old_names_still_import() -> None:
    token = plugin.parse_auth({"kind": "token", "token": CANARY}, account={}, where="a")
    assert type(token) is TokenAuth and token.kind == "token" and CANARY not in repr(token)
    import calbridge_providers.graph as graph

    for old, new in (("StaticToken", TokenAuth), ("ClientCredentials", ClientCredentialsAuth)):
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
            assert getattr(graph, old) is new
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert graph.TokenAuth is TokenAuth  # the new names do not warn
    with pytest.raises(AttributeError):
        graph.NoSuchName  # noqa: B018


def test_request_timeout_option_and_its_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert parse_options({}).request_timeout == 60.0
    assert parse_options({"request_timeout": 5}).request_timeout == 5.0
    assert not caplog.records
    assert parse_options({"timeout": 7}, account="acme-m365").request_timeout == 7.0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "graph account acme-m365: options.timeout is deprecated; use options.request_timeout" in record.getMessage()
    assert parse_options({"timeout": 7, "request_timeout": 3}).request_timeout == 3.0  # the new name wins
    for bad in ("soon", 0, -1, True):
        with pytest.raises(ConfigError) as info:
            parse_options({"request_timeout": bad})
        assert info.value.where == "options.request_timeout"


@pytest.mark.parametrize(
    ("options", "page_size", "concurrency"),
    [({}, 1000, 4), ({"page_size": "50", "max_concurrency": 2}, 50, 2), ({"max_concurrency": 9}, 1000, 4),
     ({"max_concurrency": 0}, 1000, 1), ({"page_size": 5000}, 5000, 4)],
)  # fmt: skip
def test_page_size_and_max_concurrency(options: dict[str, Any], page_size: int, concurrency: int) -> None:
    parsed = parse_options(options)
    assert (parsed.page_size, parsed.max_concurrency) == (page_size, concurrency)
    for bad in ("many", 0, -5, 2.5, True, None):
        with pytest.raises(ConfigError) as info:
            parse_options({"page_size": bad})
        assert info.value.where == "options.page_size" and repr(bad) in str(info.value)


@pytest.mark.parametrize("key", ["request_timeout", "timeout"])
async def test_the_request_timeout_bounds_each_request(
    harness: Harness, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    harness.emulator.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    provider = harness.provider(**{key: 0.2})
    await provider.tokens.token()  # the identity endpoint is not delayed; only the API is
    harness.emulator.delay = 1.0
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.2s"):
        await harness.sync(provider)
    assert ("options.timeout is deprecated" in caplog.text) is (key == "timeout")
