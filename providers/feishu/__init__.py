"""calbridge's Feishu / Lark provider plugin: the calendar v4 events list with sync tokens, attendee
lists, and expansion by ``instances`` or ``instance_view``, with tenant, user or fixed tokens.

Entry point ``feishu = "calbridge_providers.feishu:plugin"``. Base URLs, auth kinds and options:
``_config``. Modules by job: ``_config`` (auth and options), ``_auth`` (token sources), ``_client``
(endpoints and the error table), ``_wire`` (response Structs and page decoders), ``_convert`` (wire
→ model), ``_provider`` (the Provider), ``_expand`` (instances vs instance_view), ``_pushconfig``
(the ``push`` settings), ``_push`` (event subscriptions), ``_verify`` (deliveries at ``/push/feishu``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from calbridge.provider import Provider, ProviderContext
from calbridge.push import PushVerifier

from ._config import FEISHU_BASE_URL, LARK_BASE_URL, FeishuAuth, TenantAuth, TokenAuth, UserAuth, parse_auth
from ._pushconfig import FeishuPushSettings, PushNotConfigured, parse_push

__all__ = [
    "FEISHU_BASE_URL",
    "LARK_BASE_URL",
    "FeishuPlugin",
    "FeishuPushSettings",
    "PushNotConfigured",
    "TenantAuth",
    "TokenAuth",
    "UserAuth",
    "plugin",
]


class FeishuPlugin:
    """The ``feishu`` entry point: config parsing and provider construction (the emulator: ``calbridge.emulators``)."""

    name = "feishu"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> FeishuAuth:
        """Structure an account's ``auth`` mapping (see :func:`._config.parse_auth`); no network.

        Raises:
            ConfigError: naming the key, e.g. ``accounts[2].auth.app_secret: required``.
        """
        return parse_auth(raw, where=where)

    def parse_push(
        self, raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str
    ) -> FeishuPushSettings | PushNotConfigured:
        """Structure an account's ``push`` mapping (see :func:`._pushconfig.parse_push`); no network.

        Raises:
            ConfigError: naming the key, e.g. ``accounts[0].push.verification_token: required``.
        """
        return parse_push(raw, account=account, where=where)

    def push_verifier(self) -> PushVerifier:
        from ._verify import FeishuVerifier

        return FeishuVerifier()

    def create(self, ctx: ProviderContext) -> Provider:
        from ._provider import FeishuProvider

        return FeishuProvider(ctx)


plugin = FeishuPlugin()
