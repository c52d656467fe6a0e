"""The graph account's ``auth`` block and ``options`` → frozen attrs values (no network: msal is never
built here, no token).

Auth kinds: ``client_credentials`` (tenant_id, client_id, client_secret, authority, scope; app-only,
the account's ``user`` mailbox), ``refresh_token`` (tenant_id, client_id, refresh_token,
client_secret, authority, scopes; delegated, ``/me``) and ``token`` (token). Options:
``request_timeout`` (seconds, default 60; ``timeout`` is its deprecated alias), ``page_size``
(``odata.maxpagesize``, a positive integer, default 1000: Graph documents a default of 10 for
calendarView and no maximum, and a server may send fewer) and ``max_concurrency`` (requests at
once for the mailbox, at most and by default 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from calbridge.config import auth_fields
from calbridge.errors import ConfigError
from calbridge.toolkit import request_timeout

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_PAGE_SIZE = 1000  # asked with Prefer: odata.maxpagesize; Graph's own default is 10
MAX_MAILBOX_CONCURRENCY = 4  # Outlook's limit per app per mailbox


@attrs.frozen(kw_only=True)
class ClientCredentialsAuth:
    """``kind: client_credentials`` — app-only auth (client secret); reads the account's ``user``
    mailbox through ``/users/{user}``."""

    tenant_id: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    authority: str = DEFAULT_AUTHORITY
    scope: str | None = None
    kind: str = "client_credentials"


@attrs.frozen(kw_only=True)
class RefreshTokenAuth:
    """``kind: refresh_token`` — delegated auth from a refresh token (``/me``); Microsoft may rotate the token."""

    tenant_id: str
    client_id: str
    refresh_token: str = attrs.field(repr=False)
    client_secret: str | None = attrs.field(default=None, repr=False)
    authority: str = DEFAULT_AUTHORITY
    scopes: tuple[str, ...] = ()
    kind: str = "refresh_token"


@attrs.frozen(kw_only=True)
class TokenAuth:
    """``kind: token`` — a bearer token the caller keeps fresh."""

    token: str = attrs.field(repr=False)
    kind: str = "token"


GraphAuth: TypeAlias = ClientCredentialsAuth | RefreshTokenAuth | TokenAuth

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "client_credentials": (("tenant_id", "client_id", "client_secret"), ("authority", "scope")),
    "refresh_token": (("tenant_id", "client_id", "refresh_token"), ("client_secret", "authority", "scopes")),
    "token": (("token",), ()),
}


def parse_auth(raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GraphAuth:
    """Structure a graph ``auth`` mapping; no network.

    Raises:
        ConfigError: a missing or unknown key, an unknown kind, or client_credentials without ``user``.
    """
    # scopes may be a list: checked below, not as a string
    plain = {k: v for k, v in raw.items() if k != "scopes"} if isinstance(raw, Mapping) else raw
    kind, values = auth_fields(plain, where=where, provider="graph", kinds=_KEYS)
    if "scopes" in raw and kind != "refresh_token":
        raise ConfigError(f"unknown key for kind {kind}", where=f"{where}.scopes")
    if kind == "client_credentials":
        if not account.get("user"):
            account_where = where[: -len(".auth")] if where.endswith(".auth") else where
            raise ConfigError("required with client_credentials", where=f"{account_where}.user")
        return ClientCredentialsAuth(**values)
    if kind == "refresh_token":
        scopes = raw.get("scopes")
        if scopes is not None:
            if isinstance(scopes, str):
                scopes = scopes.split()
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ConfigError("expected a list of scopes", where=f"{where}.scopes")
        return RefreshTokenAuth(**values, scopes=tuple(scopes or ()))
    return TokenAuth(**values)


@attrs.frozen(kw_only=True)
class GraphOptions:
    """The graph account's ``options`` (read once, when the provider is built)."""

    request_timeout: float
    page_size: int = DEFAULT_PAGE_SIZE
    max_concurrency: int = MAX_MAILBOX_CONCURRENCY  # 1..MAX_MAILBOX_CONCURRENCY


def _page_size(options: Mapping[str, Any]) -> int:
    value = options.get("page_size", DEFAULT_PAGE_SIZE)
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if isinstance(value, bool | float) or size < 1:
        raise ConfigError(f"expected a positive whole number of items per page, got {value!r}",
                          where="options.page_size")  # fmt: skip
    return size


def parse_options(options: Mapping[str, Any], *, account: str | None = None) -> GraphOptions:
    """Raises: ConfigError: ``request_timeout`` not a positive number, ``page_size`` not a positive
    whole number. ValueError: ``max_concurrency`` not an integer."""
    page_size = _page_size(options)
    concurrency = min(int(options.get("max_concurrency", MAX_MAILBOX_CONCURRENCY)), MAX_MAILBOX_CONCURRENCY)
    return GraphOptions(
        request_timeout=request_timeout(options, provider="graph", account=account),
        page_size=page_size,
        max_concurrency=max(concurrency, 1),
    )
