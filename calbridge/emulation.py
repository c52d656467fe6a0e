"""The seams of a shipped emulator, kept apart from the provider seam (:mod:`calbridge.provider`).

An emulator is found through the ``calbridge.emulators`` entry-point group, by the provider's name;
the entry point resolves to an :class:`EmulatorFactory` (usually the emulator class itself)::

    [project.entry-points."calbridge.emulators"]
    example = "calbridge_example.emulator:ExampleEmulator"

A provider plugin with no such entry point may still ship one through ``create_emulator()``
(:class:`EmulatedPlugin`), the older way, kept as a fallback. ``Registry.emulator(name)`` does the
lookup; ``calbridge emulate``, ``calbridge demo`` and the pytest kit all go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

GROUP = "calbridge.emulators"


class EmulatorApp(Protocol):
    """A provider's shipped emulator: an aiohttp app plus a Python API to change its data."""

    name: str
    tls: bool

    def make_app(self) -> Any:
        """The ``aiohttp.web.Application`` to serve."""
        ...

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        """A config ``accounts`` entry (auth included) that points calbridge at this emulator."""
        ...

    def seed_demo(self) -> None:
        """Fill the emulator with the demo's sample calendar."""
        ...

    def demo_changes(self) -> list[str]:
        """Make a few server-side changes for the demo and describe each in one line."""
        ...


EmulatorFactory = Callable[[], EmulatorApp]
"""What a ``calbridge.emulators`` entry point resolves to: a fresh emulator per call."""


@runtime_checkable
class EmulatedPlugin(Protocol):
    """A provider plugin that ships its emulator itself (the fallback to the entry-point group)."""

    def create_emulator(self) -> EmulatorApp: ...
