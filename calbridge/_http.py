"""Small HTTP helpers shared by the engine and providers."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from .config import AccountConfig


def ssl_context_for(account: AccountConfig) -> ssl.SSLContext | None:
    """The default trust store plus the account's ``ca_file``, or None when it has none."""
    if account.ca_file is None:
        return None
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=str(account.ca_file))
    return ctx


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in, for same-origin checks on server links."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)
