"""The graph account's ``auth`` block → frozen attrs values (no network: msal is never built here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from calbridge.config import auth_fields
from calbridge.errors import ConfigError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_BASE_URL = "https://graph.microsoft.com/v1.0"


@attrs.frozen(kw_only=True)
class ClientCredentials:
    """App-only auth (client secret); reads the account's ``user`` mailbox through ``/users/{user}``."""

    tenant_id: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    authority: str = DEFAULT_AUTHORITY
    scope: str | None = None
    kind: str = "client_credentials"


@attrs.frozen(kw_only=True)
class RefreshTokenAuth:
    """Delegated auth from a refresh token (``/me``); Microsoft may rotate the token."""

    tenant_id: str
    client_id: str
    refresh_token: str = attrs.field(repr=False)
    client_secret: str | None = attrs.field(default=None, repr=False)
    authority: str = DEFAULT_AUTHORITY
    scopes: tuple[str, ...] = ()
    kind: str = "refresh_token"


@attrs.frozen(kw_only=True)
class StaticToken:
    """A bearer token the caller keeps fresh."""

    token: str = attrs.field(repr=False)
    kind: str = "token"


GraphAuth: TypeAlias = ClientCredentials | RefreshTokenAuth | StaticToken

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required, optional)
    "client_credentials": (("tenant_id", "client_id", "client_secret"), ("authority", "scope")),
    "refresh_token": (("tenant_id", "client_id", "refresh_token"), ("client_secret", "authority", "scopes")),
    "token": (("token",), ()),
}


def parse_auth(raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GraphAuth:
    """Structure a graph ``auth`` mapping.

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
        return ClientCredentials(**values)
    if kind == "refresh_token":
        scopes = raw.get("scopes")
        if scopes is not None:
            if isinstance(scopes, str):
                scopes = scopes.split()
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ConfigError("expected a list of scopes", where=f"{where}.scopes")
        return RefreshTokenAuth(**values, scopes=tuple(scopes or ()))
    return StaticToken(**values)
