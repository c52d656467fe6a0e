"""The ``service`` and ``feed`` sections: what ``calbridge run`` listens on, how often it polls, how
long it drains, and how long the change feed keeps changes. Every key is optional."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import attrs

from ..errors import ConfigError
from ._raw import RawFeed, RawService
from ._settings import parse_duration


@attrs.frozen(kw_only=True)
class Listen:
    """A ``host:port`` to bind (``[::1]:8765`` for IPv6); port 0 asks for any free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@attrs.frozen(kw_only=True)
class ServiceSettings:
    """``service``: the receiver's address, the public URL providers call, and the schedule's periods."""

    listen: Listen = attrs.field(factory=lambda: Listen(host="127.0.0.1", port=8765))
    public_url: str | None = None
    poll: dt.timedelta = dt.timedelta(minutes=15)
    lease: dt.timedelta = dt.timedelta(seconds=60)
    drain: dt.timedelta = dt.timedelta(seconds=30)


@attrs.frozen(kw_only=True)
class FeedSettings:
    """``feed``: how long the change feed keeps committed changes."""

    keep: dt.timedelta = dt.timedelta(days=30)


def parse_listen(text: str, where: str = "service.listen") -> Listen:
    """``host:port`` (``[::1]:8765`` for IPv6) → :class:`Listen`, or a :class:`ConfigError` naming ``where``."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # a bare IPv6 address is ambiguous: it needs brackets
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"expected host:port, got {text!r}", where=where)
    return Listen(host=host, port=int(port))


def _duration(text: str, where: str, *, positive: bool = True) -> dt.timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None
    if positive and value <= dt.timedelta(0):
        raise ConfigError("must be more than 0", where=where)
    return value


def _public_url(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"expected an http(s) URL without query, got {text!r}", where="service.public_url")
    return text.strip().rstrip("/")


def service_from_file(raw: RawService) -> ServiceSettings:
    """The file's ``service`` section; a bad value names its key (``service.listen: expected host:port``)."""
    return ServiceSettings(
        listen=parse_listen(raw.listen),
        public_url=_public_url(raw.public_url),
        poll=_duration(raw.poll, "service.poll"),
        lease=_duration(raw.lease, "service.lease"),
        drain=_duration(raw.drain, "service.drain", positive=False),
    )


def feed_from_file(raw: RawFeed) -> FeedSettings:
    """The file's ``feed`` section."""
    return FeedSettings(keep=_duration(raw.keep, "feed.keep"))
