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

from calbridge.config import auth_fields
from calbridge.errors import ConfigError
from calbridge.provider import Provider, ProviderContext

from ._auth import DEFAULT_TOKEN_URI, AuthorizedUserAuth, GoogleAuth, ServiceAccountAuth, TokenAuth

__all__ = ["AuthorizedUserAuth", "GooglePlugin", "ServiceAccountAuth", "TokenAuth", "plugin"]

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "authorized_user": (("client_id", "client_secret", "refresh_token"), ("token_uri",)),
    "service_account": (("key_file",), ("subject",)),
    "token": (("token",), ()),
}


class GooglePlugin:
    """The ``google`` :class:`~calbridge.provider.ProviderPlugin` (its emulator: the ``calbridge.emulators`` group)."""

    name = "google"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GoogleAuth:
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
            subject = values.get("subject")
            return ServiceAccountAuth(key_file=key_file, subject=subject)
        return TokenAuth(token=values["token"])

    def create(self, ctx: ProviderContext) -> Provider:
        from ._provider import GoogleProvider

        return GoogleProvider(ctx)


plugin = GooglePlugin()
