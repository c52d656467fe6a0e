"""calbridge's google provider plugin: Google Calendar API v3 through events.list sync tokens,
events.instances expansion and calendarList discovery, with google-auth credentials.

Entry point ``google = "calbridge_providers.google:plugin"``. Auth kinds (see the contract):
``authorized_user`` (client_id, client_secret, refresh_token, token_uri), ``service_account``
(key_file, subject) and ``token`` (token).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calbridge.errors import ConfigError
from calbridge.provider import EmulatorApp, Provider, ProviderContext

from ._auth import DEFAULT_TOKEN_URI, AuthorizedUserAuth, GoogleAuth, ServiceAccountAuth, TokenAuth

__all__ = ["AuthorizedUserAuth", "GooglePlugin", "ServiceAccountAuth", "TokenAuth", "plugin"]

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "authorized_user": (("client_id", "client_secret", "refresh_token"), ("token_uri",)),
    "service_account": (("key_file",), ("subject",)),
    "token": (("token",), ()),
}


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        raise ConfigError("required", where=f"{where}.{key}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"expected a string, got {type(value).__name__}", where=f"{where}.{key}")
    return str(value)


class GooglePlugin:
    """The ``google`` :class:`~calbridge.provider.ProviderPlugin` (and EmulatedPlugin)."""

    name = "google"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GoogleAuth:
        """Structure an account's ``auth`` mapping; no network, no file reads (key_file must exist).

        Raises:
            ConfigError: naming the key, e.g. ``accounts[0].auth.client_secret: required``.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError("expected a mapping", where=where)
        kind = raw.get("kind")
        if kind is None:
            raise ConfigError("required (authorized_user, service_account or token)", where=f"{where}.kind")
        if kind not in _KEYS:
            raise ConfigError(f"unknown kind {kind!r} for google (use authorized_user, service_account or token)",
                              where=f"{where}.kind")  # fmt: skip
        required, optional = _KEYS[kind]
        for key in raw:
            if key != "kind" and key not in required and key not in optional:
                raise ConfigError(f"unknown key for kind {kind}", where=f"{where}.{key}")
        if kind == "authorized_user":
            return AuthorizedUserAuth(
                client_id=_text(raw, "client_id", where), client_secret=_text(raw, "client_secret", where),
                refresh_token=_text(raw, "refresh_token", where),
                token_uri=_text(raw, "token_uri", where) if raw.get("token_uri") else DEFAULT_TOKEN_URI,
            )  # fmt: skip
        if kind == "service_account":
            key_file = Path(_text(raw, "key_file", where)).expanduser()
            if not key_file.is_file():
                raise ConfigError(f"no such file: {key_file}", where=f"{where}.key_file")
            subject = _text(raw, "subject", where) if raw.get("subject") else None
            return ServiceAccountAuth(key_file=key_file, subject=subject)
        return TokenAuth(token=_text(raw, "token", where))

    def create(self, ctx: ProviderContext) -> Provider:
        from ._provider import GoogleProvider

        return GoogleProvider(ctx)

    def create_emulator(self) -> EmulatorApp:
        from .emulator import GoogleEmulator

        return GoogleEmulator()


plugin = GooglePlugin()
