from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calbridge.config import AccountConfig
from calbridge.cursor import Cursor
from calbridge.model import Delete, Event, Upsert, Window
from calbridge.provider import Page
from calbridge.testing.context import MemorySecrets, make_context
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA, make_test_ca
from calbridge_providers.graph import plugin
from calbridge_providers.graph._provider import GraphProvider
from calbridge_providers.graph.emulator import GraphEmulator

UTC = dt.UTC
WINDOW = Window(start=dt.datetime(2026, 2, 1, tzinfo=UTC), end=dt.datetime(2026, 5, 1, tzinfo=UTC))


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("graph-ca"))


@pytest.fixture
def emulator() -> GraphEmulator:
    return GraphEmulator()


@pytest.fixture
def server(emulator: GraphEmulator, test_ca: TestCA) -> Iterator[ThreadedServer]:
    with ThreadedServer(emulator.make_app(), ssl_context=test_ca.server_context) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class MirrorView:
    def __init__(self, events: dict[str, Event]) -> None:
        self.events = events

    async def get(self, ids: Sequence[str]) -> Mapping[str, Event]:
        return {i: self.events[i] for i in ids if i in self.events}

    async def exceptions_of(self, series_ids: Sequence[str]) -> list[Event]:
        return [e for e in self.events.values() if e.kind.value == "exception" and e.series_id in series_ids]


def account_for(entry: Mapping[str, Any], **options: Any) -> AccountConfig:
    auth = plugin.parse_auth(entry["auth"], account=entry, where="accounts[0].auth")
    return AccountConfig(
        name=entry["name"],
        provider="graph",
        auth=auth,
        auth_kind=entry["auth"]["kind"],
        base_url=entry["base_url"].rstrip("/"),
        ca_file=Path(entry["ca_file"]) if entry.get("ca_file") else None,
        calendars=("primary",),
        user=entry.get("user"),
        options=options,
    )


class Harness:
    """A provider against the emulator plus a dict mirror the pages are applied to."""

    def __init__(self, emulator: GraphEmulator, server: ThreadedServer, ca: TestCA, session: aiohttp.ClientSession):
        self.emulator = emulator
        self.server = server
        self.ca = ca
        self.session = session
        self.secrets = MemorySecrets()
        self.mirror: dict[str, Event] = {}
        self.cursor: Cursor | None = None
        self.entry = emulator.account_config(name="m365", base_url=server.url, ca_file=str(ca.ca_file))

    def provider(self, entry: Mapping[str, Any] | None = None, **options: Any) -> GraphProvider:
        options.setdefault("page_size", 3)
        account = account_for(entry or self.entry, **options)
        return plugin.create(make_context(account, self.session, secrets=self.secrets))

    def apply(self, page: Page) -> None:
        for change in page.changes:
            if isinstance(change, Upsert):
                self.mirror[change.event.id] = change.event
            else:
                assert isinstance(change, Delete)
                gone = change.key.id
                self.mirror.pop(gone, None)
                for eid in [k for k, e in self.mirror.items() if e.series_id == gone]:
                    del self.mirror[eid]

    async def sync(
        self,
        provider: GraphProvider | None = None,
        *,
        full: bool = False,
        window: Window = WINDOW,
        calendar: str = "primary",
    ) -> list[Page]:
        """One round; a full listing replaces the mirror (mark and sweep of the whole window)."""
        provider = provider or self.provider()
        cursor = None if full else self.cursor
        pages = []
        seen: dict[str, Event] = {}
        async for page in provider.sync(calendar, cursor, window=window, view=MirrorView(self.mirror)):
            pages.append(page)
            self.apply(page)
            for change in page.changes:
                if isinstance(change, Upsert):
                    seen[change.event.id] = change.event
            self.cursor = page.cursor
        if cursor is None:
            self.mirror = seen
        return pages

    def titles(self) -> list[tuple[str, str]]:
        return sorted((e.kind.value, e.title or "") for e in self.mirror.values())

    def starts(self, series_id: str) -> list[dt.datetime]:
        return sorted(e.start.utc() for e in self.mirror.values() if e.series_id == series_id)


@pytest.fixture
def harness(
    emulator: GraphEmulator, server: ThreadedServer, test_ca: TestCA, session: aiohttp.ClientSession
) -> Harness:
    return Harness(emulator, server, test_ca, session)


def at(*parts: int) -> dt.datetime:
    """A naive wall time (the emulator reads it in the event's zone)."""
    return dt.datetime(*parts)  # type: ignore[arg-type]
