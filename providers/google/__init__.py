"""calbridge's google provider plugin: Google Calendar API v3 through events.list sync tokens,
events.instances expansion and calendarList discovery, with google-auth credentials.

Entry point ``google = "calbridge_providers.google:plugin"``. Auth kinds and options: ``_config``.
Modules by job: ``_config`` (auth, options and push settings), ``_auth`` (token sources), ``_client``
(endpoints and the error table), ``_wire`` (response Structs and page decoders), ``_convert`` (wire →
model), ``_provider`` (the Provider), ``_push`` (watch channels), ``_verify`` (``POST /push/google``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calbridge.provider import Provider, ProviderContext
from calbridge.push import PushVerifier

from ._config import (
    AuthorizedUserAuth,
    GoogleAuth,
    GooglePushSettings,
    ServiceAccountAuth,
    TokenAuth,
    parse_auth,
    parse_push,
)

__all__ = ["AuthorizedUserAuth", "GooglePlugin", "GooglePushSettings", "ServiceAccountAuth", "TokenAuth", "plugin"]


class GooglePlugin:
    """The ``google`` :class:`~calbridge.provider.ProviderPlugin` (its emulator: the ``calbridge.emulators`` group)."""

    name = "google"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GoogleAuth:
        """Structure an account's ``auth`` mapping (see :func:`._config.parse_auth`); no network.

        Raises:
            ConfigError: naming the key, e.g. ``accounts[0].auth.client_secret: required``.
        """
        return parse_auth(raw, account=account, where=where)

    def parse_push(
        self, raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str
    ) -> GooglePushSettings:
        """Structure an account's ``push`` mapping: Google takes no settings (``None`` or ``{}``).

        Raises:
            ConfigError: any key, naming it, e.g. ``accounts[0].push.token: unknown key ...``.
        """
        return parse_push(raw, where=where)

    def push_verifier(self) -> PushVerifier:
        """Verifies ``POST /push/google`` (channel id and token against the store's channels)."""
        from ._verify import GoogleVerifier

        return GoogleVerifier()

    def create(self, ctx: ProviderContext) -> Provider:
        from ._provider import GoogleProvider

        return GoogleProvider(ctx)


plugin = GooglePlugin()
