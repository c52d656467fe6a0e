"""calbridge's Microsoft Graph provider plugin (Outlook / Exchange Online calendars).

Auth kinds: ``client_credentials`` (app-only, the account's ``user`` mailbox), ``refresh_token``
(delegated, ``/me``) and ``token``. Sync is calendarView delta over the configured window; see
``_provider.py``. The shipped emulator lives in :mod:`calbridge_providers.graph.emulator` (found
through the ``calbridge.emulators`` group; this module never imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from calbridge.provider import ProviderContext

from ._config import ClientCredentials, GraphAuth, RefreshTokenAuth, StaticToken
from ._config import parse_auth as _parse_auth

if TYPE_CHECKING:
    from ._provider import GraphProvider

__all__ = ["ClientCredentials", "GraphPlugin", "RefreshTokenAuth", "StaticToken", "plugin"]


class GraphPlugin:
    """The ``graph`` entry point."""

    name = "graph"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GraphAuth:
        """Structure the account's ``auth`` (no network). Raises ConfigError naming the key."""
        return _parse_auth(raw, account=account, where=where)

    def create(self, ctx: ProviderContext) -> GraphProvider:
        from ._provider import GraphProvider

        return GraphProvider(ctx)


plugin = GraphPlugin()
