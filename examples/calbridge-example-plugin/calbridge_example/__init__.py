"""An example calbridge provider plugin: a tiny "Example Calendar" HTTP API, its provider and its emulator.

Registered under the ``calbridge.providers`` entry-point group as ``example`` (and its emulator under
``calbridge.emulators``)::

    accounts:
      - name: demo
        provider: example
        base_url: http://127.0.0.1:8080
        auth: {kind: token, token: ${EXAMPLE_TOKEN}}
        calendars: [work]

It can push (:mod:`calbridge.push`): ``calbridge run`` with a ``service.public_url`` subscribes each
calendar, and the emulator delivers changes to ``{public_url}/push/example`` (``push.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from calbridge.emulation import EmulatorApp
from calbridge.errors import ConfigError
from calbridge.provider import Provider, ProviderContext
from calbridge.push import PushVerifier

__all__ = ["ExampleAuth", "ExamplePlugin", "plugin"]


@attrs.frozen(kw_only=True)
class ExampleAuth:
    token: str = attrs.field(repr=False)  # never in reprs, logs or errors


class ExamplePlugin:
    """The ``example`` :class:`~calbridge.provider.ProviderPlugin` (and an ``EmulatedPlugin``)."""

    name = "example"

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> ExampleAuth:
        """Structure the account's ``auth`` (no network); errors name the key."""
        if not isinstance(raw, Mapping):
            raise ConfigError("expected a mapping", where=where)
        if raw.get("kind") != "token":
            raise ConfigError("the example provider takes kind: token", where=f"{where}.kind")
        for key in raw:
            if key not in ("kind", "token"):
                raise ConfigError("unknown key for kind token", where=f"{where}.{key}")
        token = raw.get("token")
        if not isinstance(token, str) or not token:
            raise ConfigError("required", where=f"{where}.token")
        if not account.get("base_url"):
            raise ConfigError("required (the Example Calendar server)", where=where.removesuffix(".auth") + ".base_url")
        return ExampleAuth(token=token)

    def parse_push(self, raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str) -> object:
        """Structure the account's ``push`` (:class:`~calbridge.push.PushPlugin`): no settings needed."""
        from .push import parse_push

        return parse_push(raw, where=where)

    def push_verifier(self) -> PushVerifier:
        """The verifier of ``POST /push/example``."""
        from .push import ExampleVerifier

        return ExampleVerifier()

    def create(self, ctx: ProviderContext) -> Provider:
        from .provider import ExampleProvider

        return ExampleProvider(ctx)

    def create_emulator(self) -> EmulatorApp:
        """The fallback for a calbridge that predates the ``calbridge.emulators`` group (this package
        registers the emulator there too); calbridge's tests keep it working."""
        from .emulator import ExampleEmulator

        return ExampleEmulator()


plugin = ExamplePlugin()
