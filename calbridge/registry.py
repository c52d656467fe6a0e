"""Provider plugins, found through the ``calbridge.providers`` entry-point group, and their emulators,
found through ``calbridge.emulators`` (or a plugin's ``create_emulator()``, the fallback).

Built-in providers register exactly like third-party ones, in calbridge's own pyproject; the core
never imports them. Entry points are read lazily on the first lookup, and a plugin that fails to
load fails only when it is asked for.

Test doubles (the testing kit's ``fake`` provider) sit in a group of their own,
``calbridge.testing.providers``, which a registry consults only while the environment variable
``CALBRIDGE_TEST_PROVIDERS`` is set (the kit's ``calbridge_test_providers`` fixture sets it, so a
``calbridge`` subprocess a test starts finds them too); production never lists or loads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

from .emulation import GROUP as EMULATOR_GROUP
from .emulation import EmulatedPlugin, EmulatorApp
from .errors import PluginError
from .provider import ProviderPlugin

GROUP = "calbridge.providers"
TEST_GROUP = "calbridge.testing.providers"
TEST_PROVIDERS_ENV = "CALBRIDGE_TEST_PROVIDERS"

__all__ = ["EMULATOR_GROUP", "GROUP", "TEST_GROUP", "TEST_PROVIDERS_ENV", "Registry", "default_registry"]


def _test_providers_enabled() -> bool:
    """Whether ``CALBRIDGE_TEST_PROVIDERS`` asks for the test doubles' group (any value but ``""``/``0``)."""
    return os.environ.get(TEST_PROVIDERS_ENV, "") not in ("", "0")


def _load(ep: EntryPoint, what: str, name: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:
        raise PluginError(
            f"{what} {name!r} failed to load: {type(exc).__name__}: {exc}",
            entry_point=ep.value,
            hint="reinstall the plugin package",
        ) from exc


class Registry:
    """Name → plugin, from entry points plus anything registered in code; name → emulator."""

    def __init__(
        self, *, group: str = GROUP, emulator_group: str = EMULATOR_GROUP, test_group: str | None = TEST_GROUP
    ) -> None:
        self._group = group
        self._emulator_group = emulator_group
        self._test_group = test_group
        self._entry_points: tuple[tuple[str, ...], dict[str, EntryPoint]] | None = None
        self._emulator_eps: dict[str, EntryPoint] | None = None
        self._registered: dict[str, ProviderPlugin] = {}
        self._from_eps: dict[str, ProviderPlugin] = {}  # by entry-point value

    def _groups(self) -> tuple[str, ...]:
        if self._test_group is not None and _test_providers_enabled():
            return (self._group, self._test_group)
        return (self._group,)

    def _eps(self) -> dict[str, EntryPoint]:
        groups = self._groups()
        if self._entry_points is None or self._entry_points[0] != groups:
            found: dict[str, EntryPoint] = {}
            for group in reversed(groups):  # a production plugin wins a name a test double also takes
                found.update({ep.name: ep for ep in entry_points(group=group)})
            self._entry_points = (groups, found)
        return self._entry_points[1]

    def names(self) -> list[str]:
        return sorted(set(self._eps()) | set(self._registered))

    def register(self, name: str, plugin: ProviderPlugin, *, clobber: bool = False) -> None:
        """Register a plugin in code (tests, embedding)."""
        if not clobber and name in self._registered:
            raise PluginError(f"provider {name!r} is already registered")
        self._registered[name] = plugin

    def get(self, name: str) -> ProviderPlugin:
        """The plugin named ``name``.

        Raises:
            PluginError: unknown name, or the entry point failed to load.
        """
        if name in self._registered:
            return self._registered[name]
        ep = self._eps().get(name)
        if ep is None:
            known = ", ".join(self.names()) or "none installed"
            raise PluginError(f"unknown provider {name!r}", hint=f"installed: {known}")
        if ep.value not in self._from_eps:
            plugin = _load(ep, "provider", name)
            if getattr(plugin, "name", None) != name:
                raise PluginError(
                    f"entry point {name!r} resolves to a plugin named {getattr(plugin, 'name', None)!r}",
                    entry_point=ep.value,
                )
            self._from_eps[ep.value] = plugin
        return self._from_eps[ep.value]

    def loaded(self) -> Mapping[str, ProviderPlugin]:
        """The plugins resolved so far (registered in code or loaded from visible entry points)."""
        eps = self._eps()
        out = {name: self._from_eps[ep.value] for name, ep in eps.items() if ep.value in self._from_eps}
        return MappingProxyType({**out, **self._registered})

    # -- emulators ---------------------------------------------------------------------------

    def _emulator_entry_points(self) -> dict[str, EntryPoint]:
        if self._emulator_eps is None:
            self._emulator_eps = {ep.name: ep for ep in entry_points(group=self._emulator_group)}
        return self._emulator_eps

    def emulator_names(self) -> list[str]:
        """Providers with an emulator: an entry point in the emulator group (for a provider this registry
        knows), or a plugin (one that loads) with ``create_emulator()``."""
        names = self.names()
        out = set(self._emulator_entry_points()) & set(names)
        for name in names:
            if name in out:
                continue
            try:
                plugin = self.get(name)
            except PluginError:
                continue
            if isinstance(plugin, EmulatedPlugin):
                out.add(name)
        return sorted(out)

    def emulator(self, name: str) -> EmulatorApp:
        """A fresh emulator of provider ``name``: from its ``calbridge.emulators`` entry point, else
        from the plugin's ``create_emulator()``.

        Raises:
            PluginError: neither exists, or the entry point failed to load.
        """
        ep = self._emulator_entry_points().get(name)
        if ep is not None:
            factory = _load(ep, "emulator", name)
            emulator: EmulatorApp = factory()
            if getattr(emulator, "name", None) != name:
                raise PluginError(
                    f"emulator entry point {name!r} makes an emulator named {getattr(emulator, 'name', None)!r}",
                    entry_point=ep.value,
                )
            return emulator
        plugin = self.get(name)
        if not isinstance(plugin, EmulatedPlugin):
            raise PluginError(
                f"provider {name!r} ships no emulator",
                hint=f"no {self._emulator_group!r} entry point and no create_emulator()",
            )
        return plugin.create_emulator()


default_registry = Registry()
