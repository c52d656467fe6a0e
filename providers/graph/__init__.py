"""calbridge's Microsoft Graph provider plugin (Outlook / Exchange Online calendars): calendarView delta
over the configured window, series masters fetched to hydrate skeletal occurrences, instances for
expansion, with msal credentials.

Entry point ``graph = "calbridge_providers.graph:plugin"``. Auth kinds and options: ``_config``.
Modules by job: ``_config`` (auth and options), ``_auth`` (token sources), ``_client`` (endpoints and
the error table), ``_wire`` (response Structs and page decoders), ``_convert`` (wire → model, with
``_times`` and ``_recurrence``), ``_provider`` (the Provider), ``_push`` (its subscriptions) and
``_verify`` (what arrives at the push endpoints). The shipped emulator lives in
:mod:`calbridge_providers.graph.emulator`
(found through the ``calbridge.emulators`` group; this module never imports it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from calbridge.provider import ProviderContext

from ._config import ClientCredentialsAuth, GraphAuth, RefreshTokenAuth, TokenAuth, parse_auth
from ._verify import GraphPushSettings, GraphVerifier, parse_push

if TYPE_CHECKING:
    from ._provider import GraphProvider

__all__ = ["ClientCredentialsAuth", "GraphPlugin", "RefreshTokenAuth", "TokenAuth", "plugin"]

_RENAMED = {"ClientCredentials": "ClientCredentialsAuth", "StaticToken": "TokenAuth"}


def __getattr__(name: str) -> Any:
    """The auth config classes' former names, still importable (deprecated)."""
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(f"calbridge_providers.graph.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GraphPlugin:
    """The ``graph`` :class:`~calbridge.provider.ProviderPlugin` (and :class:`~calbridge.push.PushPlugin`)."""

    name = "graph"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> GraphAuth:
        """Structure an account's ``auth`` mapping (see :func:`._config.parse_auth`); no network.

        Raises:
            ConfigError: naming the key, e.g. ``accounts[0].auth.client_secret: required``.
        """
        return parse_auth(raw, account=account, where=where)

    def parse_push(self, raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str) -> GraphPushSettings:
        """An account's ``push``: absent or empty (Graph needs no settings; see :mod:`._verify`).

        Raises:
            ConfigError: any key, e.g. ``accounts[0].push.secret: unknown key``.
        """
        return parse_push(raw, where=where)

    def push_verifier(self) -> GraphVerifier:
        """The verifier of ``POST /push/graph`` and ``/push/graph/lifecycle``."""
        return GraphVerifier()

    def create(self, ctx: ProviderContext) -> GraphProvider:
        from ._provider import GraphProvider

        return GraphProvider(ctx)


plugin = GraphPlugin()
