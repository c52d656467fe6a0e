"""Engine CPU per page: an in-memory provider feeds pre-built pages through SyncEngine into SQLite.

Run: ``python bench/bench_engine.py [pages] [page_size]``. Prints CPU per page for the engine and
store together (the provider's own cost is excluded: its pages are built before the clock starts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from calbridge.config import AccountConfig, Config
from calbridge.cursor import Cursor
from calbridge.engine import SyncEngine
from calbridge.model import Attendee, Calendar, Event, Kind, Person, Response, Upsert, When, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, Provider, ProviderContext
from calbridge.registry import Registry
from calbridge.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make_pages(n_pages: int, size: int) -> list[Page]:
    pages = []
    for p in range(n_pages):
        changes = []
        for i in range(size):
            start = T0 + dt.timedelta(minutes=37 * (p * size + i))
            changes.append(
                Upsert(
                    event=Event(
                        provider="bench",
                        account="bench",
                        calendar_id="c",
                        id=f"e{p}-{i}",
                        kind=Kind.SINGLE,
                        start=When.at(start, "Europe/Paris"),
                        end=When.at(start + dt.timedelta(minutes=30), "Europe/Paris"),
                        title=f"Meeting {i}",
                        description="Agenda: " + "x" * 400,
                        location="Room 4.01",
                        organizer=Person(email="boss@example.com", name="Boss"),
                        attendees=[Attendee(email=f"p{k}@example.com", response=Response.ACCEPTED) for k in range(4)],
                        etag=f'"{p}-{i}"',
                    )
                )
            )
        cursor = Cursor(scheme="bench", version=1, state={"page": p})
        pages.append(Page(changes=changes, cursor=cursor, last=p == n_pages - 1))
    return pages


class BenchProvider:
    capabilities = Capabilities(sync_yields_occurrences=True)

    def __init__(self, pages: list[Page]) -> None:
        self.pages = pages

    async def calendars(self) -> Sequence[Calendar]:
        return [Calendar(id="c")]

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        for page in self.pages:
            yield page

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        if False:
            yield

    async def aclose(self) -> None:
        return None


class BenchPlugin:
    name = "bench"

    def __init__(self, pages: list[Page]) -> None:
        self.pages = pages

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return None

    def create(self, ctx: ProviderContext) -> Provider:
        return BenchProvider(self.pages)


async def main(n_pages: int, size: int) -> None:
    pages = make_pages(n_pages, size)
    registry = Registry(group="calbridge.bench-none")
    registry.register("bench", BenchPlugin(pages))
    with tempfile.TemporaryDirectory() as tmp:
        account = AccountConfig(name="bench", provider="bench", calendars=("c",))
        config = Config(store_path=Path(tmp) / "b.db", accounts=(account,))
        for label in ("first sync (inserts)", "re-sync (unchanged, --full)"):
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store, registry=registry) as eng:
                cpu, wall = time.process_time(), time.perf_counter()
                await eng.sync(full=label.startswith("re"))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            n = n_pages * size
            print(
                f"{label:30} {n_pages} pages x {size}: {cpu / n_pages * 1000:7.1f} ms CPU/page, "
                f"{n / wall:9,.0f} events/s wall"
            )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(args[0] if args else 20, args[1] if len(args) > 1 else 2500))
