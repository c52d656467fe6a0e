"""The ``service`` and ``feed`` sections: defaults, every key optional, a bad value names its place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from calbridge.config import Listen, parse_config, parse_listen
from calbridge.errors import ConfigError

ACCOUNT = {"name": "a", "provider": "google", "auth": {"kind": "access_token", "token": "x"}}


def load(**doc: Any) -> Any:
    return parse_config({**doc, "accounts": [ACCOUNT]}, base_dir=Path("."), resolve_auth=False)


def test_defaults() -> None:
    config = load()
    assert config.service.listen == Listen(host="127.0.0.1", port=8765)
    assert config.service.public_url is None
    assert config.service.poll == dt.timedelta(minutes=15)
    assert config.service.lease == dt.timedelta(seconds=60)
    assert config.service.drain == dt.timedelta(seconds=30)
    assert config.feed.keep == dt.timedelta(days=30)
    assert load(service=None, feed=None).service == config.service


def test_every_key() -> None:
    config = load(
        service={"listen": "0.0.0.0:9000", "public_url": "https://hooks.acme.example/cb/", "poll": "5m",
                 "lease": "2m", "drain": "10s"},
        feed={"keep": "7d"},
    )  # fmt: skip
    assert config.service.listen == Listen(host="0.0.0.0", port=9000)
    assert config.service.public_url == "https://hooks.acme.example/cb"
    assert (config.service.poll, config.service.lease, config.service.drain) == (
        dt.timedelta(minutes=5), dt.timedelta(minutes=2), dt.timedelta(seconds=10),
    )  # fmt: skip
    assert config.feed.keep == dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:0", "127.0.0.1", 0), ("[::1]:8765", "::1", 8765), ("h.local:80", "h.local", 80)],
)
def test_listen_forms(text: str, host: str, port: int) -> None:
    assert parse_listen(text) == Listen(host=host, port=port)
    assert str(parse_listen(text)) == text


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"service": {"listen": "8765"}}, "service.listen: expected host:port"),
        ({"service": {"listen": "::1:80"}}, "service.listen: expected host:port"),
        ({"service": {"listen": "h:99999"}}, "service.listen: expected host:port"),
        ({"service": {"poll": "0s"}}, "service.poll: must be more than 0"),
        ({"service": {"lease": "forever"}}, "service.lease: bad duration"),
        ({"service": {"public_url": "hooks.example"}}, "service.public_url: expected an http(s) URL"),
        ({"service": {"port": 1}}, "service.port: unknown key"),
        ({"service": "on"}, "service: expected a mapping"),
        ({"feed": {"keep": "a while"}}, "feed.keep: bad duration"),
        ({"feed": {"keep": "30d", "size": 1}}, "feed.size: unknown key"),
    ],
)
def test_a_bad_value_names_its_place(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**doc)
    assert str(info.value).startswith(message)
