"""The google account's ``auth`` block and ``options`` → frozen attrs values (no network, no token).

Auth kinds: ``authorized_user`` (client_id, client_secret, refresh_token, token_uri),
``service_account`` (key_file, subject) and ``token`` (token). Options: ``request_timeout``
(seconds, default 60; ``timeout`` is its deprecated alias). ``push``: no settings (an empty mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from calbridge.config import auth_fields
from calbridge.errors import ConfigError
from calbridge.toolkit import request_timeout

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_BASE_URL = "https://www.googleapis.com"


@attrs.frozen(kw_only=True)
class AuthorizedUserAuth:
    """``kind: authorized_user`` — an OAuth client plus a user's refresh token."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI


@attrs.frozen(kw_only=True)
class ServiceAccountAuth:
    """``kind: service_account`` — a JSON key file (its token_uri is honoured), optionally acting as ``subject``."""

    key_file: Path
    subject: str | None = None


@attrs.frozen(kw_only=True)
class TokenAuth:
    """``kind: token`` — a bearer token the caller keeps fresh."""

    token: str = attrs.field(repr=False)


GoogleAuth: TypeAlias = AuthorizedUserAuth | ServiceAccountAuth | TokenAuth

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "authorized_user": (("client_id", "client_secret", "refresh_token"), ("token_uri",)),
    "service_account": (("key_file",), ("subject",)),
    "token": (("token",), ()),
}


def parse_auth(raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GoogleAuth:
    """Structure an account's ``auth`` mapping; no network, no file reads (key_file must exist).

    Raises:
        ConfigError: naming the key, e.g. ``accounts[0].auth.client_secret: required``.
    """
    kind, values = auth_fields(raw, where=where, provider="google", kinds=_KEYS)
    if kind == "authorized_user":
        return AuthorizedUserAuth(
            client_id=values["client_id"], client_secret=values["client_secret"],
            refresh_token=values["refresh_token"], token_uri=values.get("token_uri", DEFAULT_TOKEN_URI),
        )  # fmt: skip
    if kind == "service_account":
        key_file = Path(values["key_file"]).expanduser()
        if not key_file.is_absolute() and account.get("config_dir"):
            key_file = Path(str(account["config_dir"])) / key_file  # relative to the config file
        if not key_file.is_file():
            raise ConfigError(f"no such file: {key_file}", where=f"{where}.key_file")
        return ServiceAccountAuth(key_file=key_file, subject=values.get("subject"))
    return TokenAuth(token=values["token"])


@attrs.frozen(kw_only=True)
class GoogleOptions:
    """The google account's ``options`` (read once, when the provider is built)."""

    request_timeout: float


def parse_options(options: Mapping[str, Any], *, account: str | None = None) -> GoogleOptions:
    """Raises: ConfigError: an option of the wrong type."""
    return GoogleOptions(request_timeout=request_timeout(options, provider="google", account=account))


@attrs.frozen(kw_only=True)
class GooglePushSettings:
    """The google account's ``push`` settings: none. A channel's secret is its token, chosen per
    channel when it is created, so nothing is configured."""


def parse_push(raw: Mapping[str, Any] | None, *, where: str) -> GooglePushSettings:
    """Structure an account's ``push`` mapping (``None``: the key is absent).

    Raises:
        ConfigError: any key, e.g. ``accounts[0].push.verification_token: unknown key``.
    """
    if raw is None:
        return GooglePushSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError("expected a mapping of push settings, or false", where=where)
    if raw:
        key = sorted(str(k) for k in raw)[0]
        raise ConfigError("unknown key (google takes no push settings)", where=f"{where}.{key}")
    return GooglePushSettings()
