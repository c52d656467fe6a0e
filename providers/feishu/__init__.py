"""calbridge's Feishu / Lark provider plugin.

``base_url`` picks the product: ``https://open.feishu.cn`` (Feishu, the default) or
``https://open.larksuite.com`` (Lark); every path below ``/open-apis`` is the same on both. Auth kinds:

- ``tenant``: ``app_id`` + ``app_secret`` → a tenant_access_token (the app's own identity);
- ``user``: ``app_id`` + ``app_secret`` + ``refresh_token`` → a user_access_token kept fresh; the
  refresh token rotates on every use and the newest one is kept in the store's secret slot;
- ``token``: a bearer ``token`` the caller keeps fresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from calbridge.config import auth_fields

if TYPE_CHECKING:
    from calbridge.provider import Provider, ProviderContext

FEISHU_BASE_URL = "https://open.feishu.cn"
LARK_BASE_URL = "https://open.larksuite.com"

__all__ = ["FEISHU_BASE_URL", "LARK_BASE_URL", "FeishuPlugin", "TenantAuth", "TokenAuth", "UserAuth", "plugin"]


@attrs.frozen(kw_only=True)
class TenantAuth:
    """App identity: the tenant_access_token of a self-built app."""

    app_id: str
    app_secret: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class UserAuth:
    """User identity: a user_access_token refreshed from a (rotating, single-use) refresh token."""

    app_id: str
    app_secret: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class TokenAuth:
    """A bearer token (tenant or user access token) that the caller keeps fresh."""

    token: str = attrs.field(repr=False)


FeishuAuth = TenantAuth | UserAuth | TokenAuth

_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional)
    "tenant": (("app_id", "app_secret"), ()),
    "user": (("app_id", "app_secret", "refresh_token"), ()),
    "token": (("token",), ()),
}


def _parse_auth(raw: Mapping[str, Any], where: str) -> FeishuAuth:
    kind, values = auth_fields(raw, where=where, provider="feishu", kinds=_KINDS)
    if kind == "tenant":
        return TenantAuth(**values)
    if kind == "user":
        return UserAuth(**values)
    return TokenAuth(**values)


class FeishuPlugin:
    """The ``feishu`` entry point: config parsing and provider construction (the emulator: ``calbridge.emulators``)."""

    name = "feishu"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> FeishuAuth:
        """Structure an account's ``auth`` mapping (no network).

        Raises:
            ConfigError: naming the key, e.g. ``accounts[2].auth.app_secret: required``.
        """
        return _parse_auth(raw, where)

    def create(self, ctx: ProviderContext) -> Provider:
        from ._provider import FeishuProvider

        return FeishuProvider(ctx)


plugin = FeishuPlugin()
