"""Provider plugins, found through the ``calbridge.providers`` entry-point group.

Built-in providers register exactly like third-party ones, in calbridge's own pyproject; the core
never imports them. Entry points are read lazily on the first lookup, and a plugin that fails to
load fails only when it is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from .errors import PluginError
from .provider import ProviderPlugin

GROUP = "calbridge.providers"


class Registry:
    """Name → plugin, from entry points plus anything registered in code."""

    def __init__(self, *, group: str = GROUP) -> None:
        self._group = group
        self._entry_points: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, ProviderPlugin] = {}

    def _eps(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in entry_points(group=self._group)}
        return self._entry_points

    def names(self) -> list[str]:
        return sorted(set(self._eps()) | set(self._loaded))

    def register(self, name: str, plugin: ProviderPlugin, *, clobber: bool = False) -> None:
        """Register a plugin in code (tests, embedding)."""
        if not clobber and name in self._loaded:
            raise PluginError(f"provider {name!r} is already registered")
        self._loaded[name] = plugin

    def get(self, name: str) -> ProviderPlugin:
        """The plugin named ``name``.

        Raises:
            PluginError: unknown name, or the entry point failed to load.
        """
        if name in self._loaded:
            return self._loaded[name]
        ep = self._eps().get(name)
        if ep is None:
            known = ", ".join(self.names()) or "none installed"
            raise PluginError(f"unknown provider {name!r}", hint=f"installed: {known}")
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"provider {name!r} failed to load: {type(exc).__name__}: {exc}",
                entry_point=ep.value,
                hint="reinstall the plugin package",
            ) from exc
        if getattr(plugin, "name", None) != name:
            raise PluginError(
                f"entry point {name!r} resolves to a plugin named {getattr(plugin, 'name', None)!r}",
                entry_point=ep.value,
            )
        self._loaded[name] = plugin
        return plugin  # type: ignore[no-any-return]

    def loaded(self) -> Mapping[str, ProviderPlugin]:
        return MappingProxyType(self._loaded)


default_registry = Registry()
