"""Fixtures: the shipped Feishu emulator on loopback, a provider over a real aiohttp session, and a
dict mirror that applies pages the way the engine does (mark and sweep included)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import pytest

from calbridge.config import AccountConfig, Settings
from calbridge.cursor import Cursor
from calbridge.model import Delete, Event, Upsert, Window
from calbridge.provider import Page, Quarantined
from calbridge.retry import Retrier, RetryPolicy
from calbridge.testing.context import MemorySecrets, make_context
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu import TenantAuth, plugin
from calbridge_providers.feishu._provider import FeishuProvider
from calbridge_providers.feishu.emulator import FeishuEmulator

UTC = dt.UTC


class Mirror:
    """A dict mirror: ``events`` by id, the last cursor, quarantined payloads."""

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.cursor: Cursor | None = None
        self.quarantined: list[Quarantined] = []
        self.pages = 0
        self.seen: set[str] = set()

    async def get(self, ids: Sequence[str]) -> Mapping[str, Event]:
        return {i: self.events[i] for i in ids if i in self.events}

    async def exceptions_of(self, series_ids: Sequence[str]) -> list[Event]:
        return [e for e in self.events.values() if e.kind.value == "exception" and e.series_id in series_ids]

    def apply(self, page: Page, seen: set[str] | None = None) -> None:
        self.pages += 1
        for change in page.changes:
            if isinstance(change, Upsert):
                self.events[change.event.id] = change.event
                if seen is not None:
                    seen.add(change.event.id)
            elif isinstance(change, Delete):
                gone = change.key.id
                self.events.pop(gone, None)
                for key in [k for k, e in self.events.items() if e.series_id == gone]:
                    del self.events[key]
        self.quarantined.extend(page.quarantined)
        self.cursor = page.cursor

    async def round(
        self,
        provider: FeishuProvider,
        calendar: str = "primary",
        *,
        stop_after: int | None = None,
        window: Window | None = None,
    ) -> list[Page]:
        """One round from the stored cursor; a full listing sweeps what it did not see (in scope)."""
        state = self.cursor.state if self.cursor is not None else {}
        fresh_full = self.cursor is None or ("mid" not in state and not state.get("sync_token"))
        if fresh_full:
            self.seen = set()
        full = fresh_full or state.get("mid") == "full"
        pages = []
        async for page in provider.sync(calendar, self.cursor, window=window or WINDOW, view=self):
            self.apply(page, self.seen if full else None)
            pages.append(page)
            if stop_after is not None and len(pages) >= stop_after and not page.last:
                return pages
        if full and pages and pages[-1].last:
            scope = pages[-1].sweep_scope
            for key, event in list(self.events.items()):
                if key not in self.seen and (scope is None or scope.overlaps(event.start.utc(), event.end.utc())):
                    del self.events[key]
        return pages


NOW = dt.datetime.now(UTC).replace(microsecond=0)
WINDOW = Window(start=NOW - dt.timedelta(days=30), end=NOW + dt.timedelta(days=365))


@pytest.fixture
def emu() -> FeishuEmulator:
    return FeishuEmulator()


@pytest.fixture
def server(emu: FeishuEmulator) -> Iterator[ThreadedServer]:
    with ThreadedServer(emu.make_app) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


Factory = Callable[..., FeishuProvider]


@pytest.fixture
def make_provider(emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession) -> Factory:
    def make(
        *,
        auth: object | None = None,
        settings: Settings | None = None,
        secrets: MemorySecrets | None = None,
        retry: Retrier | None = None,
        base_url: str | None = None,
        name: str = "acme-feishu",
        options: dict[str, Any] | None = None,
    ) -> FeishuProvider:
        account = AccountConfig(
            name=name,
            provider="feishu",
            auth=auth or TenantAuth(app_id="cli_calbridge_demo", app_secret=emu.apps["cli_calbridge_demo"]),
            base_url=base_url or server.url,
            options=options or {},
        )
        ctx = make_context(
            account,
            session,
            settings=settings,
            secrets=secrets,
            retry=retry or Retrier(RetryPolicy(attempts=4, base_backoff=0.01, max_backoff=0.05)),
        )
        provider = plugin.create(ctx)
        assert isinstance(provider, FeishuProvider)
        return provider

    return make


def at(days: float = 0, hours: float = 0) -> dt.datetime:
    """An instant relative to the test's start, at a whole hour."""
    base = NOW.replace(minute=0, second=0)
    return base + dt.timedelta(days=days, hours=hours)


