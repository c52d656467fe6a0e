"""Services sharing one PostgreSQL store, in one process (the multi-process claims are proved with real
processes in ``tests/test_workers_*.py``): calendars spread over the workers and converge, a worker
that stops hands its calendars over at once, a notice reaching a worker that does not hold the
calendar is run by the one that does, and ``sync`` skips what a live worker holds."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from calbridge._run import CalendarResult
from calbridge.config import Config, parse_config
from calbridge.engine import SyncEngine
from calbridge.lease import LeaseStore
from calbridge.push import NoticeKind
from calbridge.registry import default_registry
from calbridge.service import Policy, Service
from calbridge.service._triggers import Trigger
from calbridge.store.postgres import PostgresStore
from calbridge.testing.kit import Served
from calbridge.testing.tls import make_test_ca

from ._service_world import SOON, serve, until_async
from .stateful.handles import HANDLES

LEASE = 2  # seconds: short, so takeovers are quick; bounds below are five times it and more
WITHIN = 5 * LEASE + 10


@pytest.fixture
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve("google", default_registry, make_test_ca(tmp_path_factory.mktemp("ca")))
    try:
        yield served
    finally:
        served.stop()


class Worker:
    """One Service on its own store handle, its finished rounds recorded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rounds: list[CalendarResult] = []
        self.service: Service | None = None
        self.store: PostgresStore | None = None

    def held(self) -> int:
        assert self.service is not None and self.service._fleet is not None
        return len(self.service._fleet.held)

    def rounds_of(self, calendar_id: str) -> list[CalendarResult]:
        return [r for r in self.rounds if r.calendar_id == calendar_id]


def make_config(tmp: Path, dsn: str, schema: str, google: Served, calendars: int) -> tuple[Config, list[str]]:
    handle = HANDLES["google"](google)
    ids: list[str] = []
    for n in range(calendars):  # each reset is a fresh calendar of the emulator
        handle.reset()
        start = SOON + dt.timedelta(hours=n)
        handle.create_single(f"event {n}", start, start + dt.timedelta(minutes=30))
        assert handle.calendar_id is not None
        ids.append(handle.calendar_id)
    entry = handle.account("acme")
    entry["calendars"] = ids
    doc: dict[str, Any] = {
        "store": {"url": dsn},
        "window": {"past": "30d", "future": "90d"},
        "service": {"poll": "1h", "lease": f"{LEASE}s", "drain": "5s"},
        "accounts": [entry],
    }
    return parse_config(doc, base_dir=tmp), ids


@contextlib.asynccontextmanager
async def worker(config: Config, dsn: str, schema: str, name: str) -> AsyncIterator[Worker]:
    w = Worker(name)
    async with PostgresStore(dsn, schema=schema, pool=4) as store:
        assert isinstance(store, LeaseStore)
        policy = Policy(poll=dt.timedelta(hours=1))
        async with Service(config, store, worker=name, on_round=w.rounds.append, serve_http=False,
                           policy=policy) as svc:  # fmt: skip
            w.service, w.store = svc, store
            task = asyncio.create_task(svc.serve())
            try:
                yield w
            finally:
                svc.stop()
                await asyncio.wait_for(task, 15)


async def mirrored(store: PostgresStore, ids: list[str]) -> bool:
    titles = {e.calendar_id: e.title for e in await store.query(account="acme")}
    return all(titles.get(cal) == f"event {n}" for n, cal in enumerate(ids))


async def test_calendars_spread_over_the_workers_and_each_is_listed_once(
    google: Served, tmp_path: Path, postgres_database: str, postgres_schema: str
) -> None:
    config, ids = make_config(tmp_path, postgres_database, postgres_schema, google, calendars=12)
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(worker(config, postgres_database, postgres_schema, f"w{i}"))
                   for i in range(3)]  # fmt: skip
        await until_async(lambda: mirrored(workers[0].store, ids), WITHIN, what="all 12 calendars mirrored")  # type: ignore[arg-type]
        await until_async(lambda: all(w.held() == 4 for w in workers), WITHIN, what="4 calendars each")
        await until_async(lambda: sum(len(w.rounds) for w in workers) >= 12, WITHIN, what="12 rounds recorded")
        rounds = [r for w in workers for r in w.rounds]
        assert not [r for r in rounds if r.error], rounds
        for cal in ids:  # the first full listing of each calendar happened once, by whichever held it
            assert sum(1 for r in rounds if r.calendar_id == cal and r.full) == 1, (cal, rounds)


async def test_a_worker_that_stops_hands_its_calendars_over(
    google: Served, tmp_path: Path, postgres_database: str, postgres_schema: str
) -> None:
    config, _ = make_config(tmp_path, postgres_database, postgres_schema, google, calendars=6)
    async with worker(config, postgres_database, postgres_schema, "stays") as stays:
        async with worker(config, postgres_database, postgres_schema, "leaves") as leaves:
            await until_async(lambda: stays.held() == 3 and leaves.held() == 3, WITHIN, what="3 each")
        # Its clean stop released its leases: taken within a beat, not after `lease`.
        await until_async(lambda: stays.held() == 6, WITHIN, what="all six held by the one left")
        assert stays.store is not None
        holders = {h.holder for h in await stays.store.holdings()}
        assert holders == {"stays"}


async def test_a_notice_reaching_a_worker_that_does_not_hold_the_calendar_is_run_by_the_holder(
    google: Served, tmp_path: Path, postgres_database: str, postgres_schema: str
) -> None:
    config, ids = make_config(tmp_path, postgres_database, postgres_schema, google, calendars=2)
    async with (
        worker(config, postgres_database, postgres_schema, "a") as a,
        worker(config, postgres_database, postgres_schema, "b") as b,
    ):
        await until_async(lambda: a.held() == 1 and b.held() == 1 and len(a.rounds) + len(b.rounds) == 2, WITHIN,
                          what="one calendar each, synced")  # fmt: skip
        assert a.service is not None and a.service._fleet is not None
        mine = a.service._fleet.held.calendars()[0][1]
        other = next(c for c in ids if c != mine)
        before_a, before_b = len(a.rounds_of(other)), len(b.rounds_of(other))
        a.service.trigger(Trigger(account="acme", calendar_id=other, kind=NoticeKind.CHANGE))
        await until_async(lambda: len(b.rounds_of(other)) == before_b + 1, WITHIN, what="the holder's round")
        await asyncio.sleep(1.0)  # nothing more comes of it, here or there
        assert len(b.rounds_of(other)) == before_b + 1
        assert len(a.rounds_of(other)) == before_a


async def test_sync_skips_what_a_live_worker_holds(
    google: Served, tmp_path: Path, postgres_database: str, postgres_schema: str
) -> None:
    config, ids = make_config(tmp_path, postgres_database, postgres_schema, google, calendars=2)
    async with worker(config, postgres_database, postgres_schema, "w") as w:
        await until_async(lambda: len(w.rounds) == 2, WITHIN, what="both synced by the worker")
        async with (
            PostgresStore(postgres_database, schema=postgres_schema, pool=2) as store,
            SyncEngine(config, store, worker="cli") as engine,
        ):
            report = await engine.sync()
        assert report.ok
        assert sorted((r.calendar_id, r.held_by) for r in report.calendars) == sorted((c, "w") for c in ids)
    # With the worker gone (its leases released), sync claims and syncs them itself.
    async with PostgresStore(postgres_database, schema=postgres_schema, pool=2) as store:
        async with SyncEngine(config, store, worker="cli") as engine:
            report = await engine.sync()
        assert report.ok and all(r.held_by is None for r in report.calendars)
        assert {h.holder for h in await store.holdings()} == {None}
