"""A plugin wrapper the kit's :class:`~calbridge.testing.harness.Mirror` syncs through: it records
what the provider itself yielded (before the store drops upserts equal to what it holds), so the kit
can tell a quiet round from a provider that re-reads old changes because its cursor never advances."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..cursor import Cursor
from ..model import Calendar, Window
from ..provider import Expansion, MirrorView, Page, Provider, ProviderContext, ProviderPlugin
from ..registry import Registry


class RecordingProvider:
    """Delegates to a provider; appends ``len(page.changes)`` of every page to ``sink``."""

    def __init__(self, inner: Provider, sink: list[int]) -> None:
        self._inner = inner
        self._sink = sink
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def calendars(self) -> Sequence[Calendar]:
        return await self._inner.calendars()

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        pages = self._inner.sync(calendar_id, cursor, window=window, view=view)
        async with contextlib.aclosing(pages):  # type: ignore[type-var]
            async for page in pages:
                self._sink.append(len(page.changes))
                yield page

    def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        return self._inner.expand(calendar_id, series_ids, window=window, view=view)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingPlugin:
    """A :class:`ProviderPlugin` whose providers are :class:`RecordingProvider`\\ s."""

    def __init__(self, inner: ProviderPlugin, sink: list[int]) -> None:
        self._inner = inner
        self._sink = sink
        self.name = getattr(inner, "name", "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return self._inner.parse_auth(raw, account=account, where=where)

    def create(self, ctx: ProviderContext) -> Provider:
        return RecordingProvider(self._inner.create(ctx), self._sink)


def recording_registry(base: Registry, name: str, sink: list[int]) -> Registry:
    """A registry resolving ``name`` to ``base``'s plugin wrapped in a :class:`RecordingPlugin`."""
    registry = Registry()
    registry.register(name, RecordingPlugin(base.get(name), sink))
    return registry
