"""Engine CPU per calendar in a no-change fleet round (the issue's goal: <= 0.2 ms a request).

Run ``python bench/bench_round.py [--calendars N] [--rounds R]``. An in-memory provider answers each
calendar's incremental round with one empty last page whose cursor rotates (as Google's and Graph's
do), so what is timed is the engine and the store alone: the state read, the round, the outcome.
It prints CPU per calendar (median of the rounds) and the store calls and write transactions a
calendar cost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from calbridge.config import AccountConfig, Config
from calbridge.cursor import Cursor
from calbridge.engine import SyncEngine
from calbridge.model import Calendar, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, Provider, ProviderContext
from calbridge.registry import Registry
from calbridge.store.sqlite import SqliteStore

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class QuietProvider:
    capabilities = Capabilities()  # expands series: the engine decides whether a pass is owed

    def __init__(self, calendars: int) -> None:
        self._calendars, self._turn = calendars, 0

    async def calendars(self) -> Sequence[Calendar]:
        return [Calendar(id=f"c{i}") for i in range(self._calendars)]

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        self._turn += 1
        yield Page(changes=[], cursor=Cursor(scheme="quiet", version=1, state={"t": self._turn}), last=True)

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        for _ in ():
            yield _

    async def aclose(self) -> None:
        return None


class QuietPlugin:
    name = "quiet"

    def __init__(self, calendars: int) -> None:
        self.calendars = calendars

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return None

    def create(self, ctx: ProviderContext) -> Provider:
        return QuietProvider(self.calendars)


class Counting:
    """The real store, counting coroutine calls."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.calls = store, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name == "sync_lock" or not asyncio.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            return await attr(*args, **kw)

        return call


async def main(calendars: int, rounds: int) -> None:
    registry = Registry(group="calbridge.bench-none")
    registry.register("quiet", QuietPlugin(calendars))
    with tempfile.TemporaryDirectory() as tmp:
        account = AccountConfig(name="a", provider="quiet", calendars=tuple(f"c{i}" for i in range(calendars)))
        config = Config(store_path=Path(tmp) / "q.db", accounts=(account,))
        cpu: list[float] = []
        async with SqliteStore(config.store_path) as store:
            counting = Counting(store)
            async with SyncEngine(config, counting, registry=registry, clock=lambda: NOW) as engine:  # type: ignore[arg-type]
                await engine.sync()  # the first (full) round
                writes: list[str] = []
                assert store._conn is not None
                store._conn.set_trace_callback(lambda s: writes.append(s) if s == "BEGIN IMMEDIATE" else None)
                counting.calls = 0
                for _ in range(rounds):
                    started = time.process_time()
                    await engine.sync()
                    cpu.append(time.process_time() - started)
        per = statistics.median(cpu) / calendars * 1000
        calls, txns = counting.calls / rounds / calendars, len(writes) / rounds / calendars
        print(f"{calendars} calendars, {rounds} quiet rounds: {per:.3f} ms CPU per calendar,"
              f" {calls:.1f} store calls and {txns:.1f} write transactions per calendar")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calendars, args.rounds))
