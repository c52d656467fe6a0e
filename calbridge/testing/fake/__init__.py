"""A scriptable fake provider for tests: a test double, so it is no production plugin. It is registered
in the kit's own entry-point group, ``calbridge.testing.providers``, which a registry consults only
while ``CALBRIDGE_TEST_PROVIDERS`` is set (the ``calbridge_test_providers`` fixture sets it, and a
``calbridge`` subprocess started with that environment finds ``fake`` too). Its "server" is a JSON
file (see :class:`FakeServer`), named by the account's ``options.state``; it can SIGKILL its host
(``kill_after_pages``), which is why production never loads it.

Config::

    accounts:
      - name: fake
        provider: fake
        auth: {kind: token, token: ${FAKE_TOKEN}}
        options: {state: ./fake-server.json}
        calendars: [cal1]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ...errors import ConfigError
from ...provider import Provider, ProviderContext
from ._provider import FakeProvider
from ._server import FakeServer


@attrs.frozen(kw_only=True)
class FakeAuth:
    token: str = attrs.field(repr=False)


class FakePlugin:
    name = "fake"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> FakeAuth:
        if raw.get("kind") != "token":
            raise ConfigError("the fake provider takes kind: token", where=f"{where}.kind")
        token = raw.get("token")
        if not isinstance(token, str) or not token:
            raise ConfigError("required", where=f"{where}.token")
        if not (account.get("options") or {}).get("state"):
            raise ConfigError("required (the fake server's state file)", where=where.replace(".auth", ".options.state"))
        return FakeAuth(token=token)

    def create(self, ctx: ProviderContext) -> Provider:
        return FakeProvider(ctx)


plugin = FakePlugin()

__all__ = ["FakeServer", "plugin"]
