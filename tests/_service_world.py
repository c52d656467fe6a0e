"""The service running against the Google and Graph emulators over loopback, for the push end-to-end
tests: real emulators that push, a SQLite store, the real :class:`~calbridge.service.Service` with
``public_url`` pointing at its own ``listen`` address, its rounds and its listener's changes recorded."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from calbridge._run import CalendarResult, ChangeBatch
from calbridge.config import Config, parse_config
from calbridge.engine import SyncEngine
from calbridge.model import Delete, Upsert
from calbridge.push import Subscription
from calbridge.service import Policy, Service
from calbridge.service._subscriptions import SubscriptionManager
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.kit import Served
from calbridge.testing.tls import TestCA

from .stateful.handles import HANDLES

PUSH_WITHIN = 15.0  # five times and more the contract's "within seconds"
SOON = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)


def free_port() -> int:
    """A loopback port free a moment ago (the service binds it, and tells the providers to call it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(name: str, registry: Any, ca: TestCA) -> Served:
    """A fresh emulator of ``name`` on loopback (Graph over TLS with ``ca``)."""
    emulator: Any = registry.emulator(name)
    if getattr(emulator, "tls", False):
        return Served(name, emulator, ca_file=ca.ca_file, server_context=ca.server_context).start()
    return Served(name, emulator).start()


class Calendar:
    """One fresh calendar on a served emulator, and the config entry of an account syncing it."""

    def __init__(self, served: Served, account: str, events: int = 1) -> None:
        self.served = served
        self.handle = HANDLES[served.name](served)
        self.handle.reset()
        self.name = account
        self.ids = [self.create(f"{account} {i}", hours=i) for i in range(events)]
        self.entry = self.handle.account(account)
        self.calendar_id: str = self.entry["calendars"][0]

    def create(self, title: str, hours: int = 0) -> str:
        start = SOON + dt.timedelta(hours=hours)
        return self.handle.create_single(title, start, start + dt.timedelta(minutes=30))


def write_doc(tmp: Path, accounts: Sequence[dict[str, Any]], port: int, **service: str) -> dict[str, Any]:
    """The config document: poll an hour, ``public_url`` the service's own listen address."""
    return {
        "store": "sqlite:///mirror.db",
        "window": {"past": "30d", "future": "90d"},
        "service": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", "poll": "1h",
                    **service},
        "accounts": list(accounts),
    }  # fmt: skip


class World:
    """A running service: ``rounds`` (each finished one), ``changes`` (what its listener got)."""

    service: Service
    store: SqliteStore
    task: asyncio.Task[None]

    def __init__(self, config: Config, port: int) -> None:
        self.config, self.port = config, port
        self.url = f"http://127.0.0.1:{port}"
        self.rounds: list[CalendarResult] = []
        self.batches: list[ChangeBatch] = []

    def on_round(self, result: CalendarResult) -> None:
        self.rounds.append(result)

    def on_changes(self, batch: ChangeBatch) -> None:
        self.batches.append(batch)

    def rounds_of(self, account: str) -> list[CalendarResult]:
        return [r for r in self.rounds if r.account == account]

    def upserted(self, account: str, title: str) -> bool:
        return any(
            isinstance(c, Upsert) and c.event.title == title
            for b in self.batches if b.account == account for c in b.changes
        )  # fmt: skip

    def deleted(self, account: str, event_id: str) -> bool:
        return any(
            isinstance(c, Delete) and c.key.id == event_id
            for b in self.batches if b.account == account for c in b.changes
        )  # fmt: skip

    async def subscriptions(self, account: str) -> list[Subscription]:
        return await self.store.subscriptions(account)

    async def push_state(self, account: str) -> str | None:
        rows = [r for r in await self.store.status() if r.account == account]
        return rows[0].push if rows else None

    async def pushed(self, *accounts: str, timeout: float = PUSH_WITHIN) -> None:
        """Until every account's calendar has its first round done and a stored subscription."""

        async def ready() -> bool:
            for name in accounts:
                state = await self.push_state(name)
                if not self.rounds_of(name) or state is None or not state.startswith("pushed until"):
                    return False
            return True

        await until_async(ready, timeout, what=f"pushed: {accounts}")


async def until_async(check: Callable[[], Any], timeout: float = PUSH_WITHIN, *, what: str = "") -> None:
    """Poll ``check`` (sync or async) until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    tmp: Path,
    calendars: Sequence[Calendar],
    *,
    lifetime: dt.timedelta | None = None,
    policy: Policy | None = None,
    **service: str,
) -> AsyncIterator[World]:
    """The service over ``calendars`` until the block ends (then stopped and drained).

    ``lifetime``: what each subscription asks for (Graph refuses more than its emulator's maximum).
    """
    port = free_port()
    config = parse_config(write_doc(tmp, [c.entry for c in calendars], port, **service), base_dir=tmp)
    world = World(config, port)
    async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
        engine.add_listener(world.on_changes)
        subs = None
        if lifetime is not None:
            subs = SubscriptionManager(store, engine, world.url, lambda: dt.datetime.now(dt.UTC), lifetime,
                                       retry=dt.timedelta(seconds=1))  # fmt: skip
        async with Service(config, store, engine=engine, on_round=world.on_round, subscriptions=subs,
                           policy=policy) as svc:  # fmt: skip
            world.service, world.store = svc, store
            world.task = asyncio.create_task(svc.serve())
            try:
                yield world
            finally:
                svc.stop()
                await asyncio.wait_for(world.task, 15)


@contextlib.contextmanager
def served_pair(registry: Any, ca: TestCA) -> Iterator[tuple[Served, Served]]:
    """A fresh Google and a fresh Graph emulator, stopped afterwards."""
    google, graph = serve("google", registry, ca), serve("graph", registry, ca)
    try:
        yield google, graph
    finally:
        google.stop()
        graph.stop()
