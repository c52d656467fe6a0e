"""Serialize + upsert throughput of PostgresStore.commit_page on 2,500-event pages, beside raw asyncpg.

Run ``python bench/bench_pg_store.py [--events N] [--repeat R]`` with a PostgreSQL server at
``CALBRIDGE_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``); it works
in a throwaway database it drops at the end. Prints events/s for the store's first insert and an
all-changed re-upsert (encode, diff, upsert, feed, state: one transaction a page), and, in the same
run, raw asyncpg loads of the same rows already encoded: ``COPY`` into an empty table, ``COPY`` into
a temp table + ``INSERT … SELECT … ON CONFLICT``, and the store's own form (``INSERT … SELECT FROM
unnest(arrays) ON CONFLICT``). The target is >= 15k events/s through ``commit_page``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import urllib.parse
import uuid

import asyncpg
import attrs
from bench_store import PAGE, make_event

from calbridge.model import Event, Upsert
from calbridge.store._schema import COLS, encode_row
from calbridge.store.base import CalendarState
from calbridge.store.postgres import PostgresStore
from calbridge.store.postgres._ahead import columns, upsert_sql
from calbridge.store.postgres._schema import MIGRATIONS

DSN = os.environ.get("CALBRIDGE_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/postgres"
_NAMES = COLS.split(", ")


def _db(dsn: str, name: str) -> str:
    p = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def through_store(url: str, schema: str, events: list[Event], changed: list[Event]) -> tuple[float, float]:
    async with PostgresStore(url, schema=schema, pool=2) as store:
        state = CalendarState(account="work", calendar_id="primary", mark=1)
        pages = [events[i : i + PAGE] for i in range(0, len(events), PAGE)]
        t = time.perf_counter()
        for page in pages:
            await store.commit_page(state, [Upsert(event=e) for e in page])
        first = time.perf_counter() - t
        pages = [changed[i : i + PAGE] for i in range(0, len(changed), PAGE)]
        t = time.perf_counter()
        for page in pages:
            await store.commit_page(state, [Upsert(event=e) for e in page])
        return first, time.perf_counter() - t


async def raw(url: str, schema: str, rows: list[tuple[object, ...]]) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema}")
        ddl = next(s for s in MIGRATIONS[0] if s.startswith("CREATE TABLE events"))
        await conn.execute(ddl)
        for s in MIGRATIONS[0]:
            if s.startswith("CREATE INDEX events_"):
                await conn.execute(s)
        marked = [(*r, 1) for r in rows]
        pages = [marked[i : i + PAGE] for i in range(0, len(marked), PAGE)]
        out: dict[str, float] = {}
        t = time.perf_counter()
        for page in pages:
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=page, columns=[*_NAMES, "mark"])
        out["COPY into the table"] = time.perf_counter() - t
        assign = ", ".join(f"{c} = excluded.{c}" for c in [*_NAMES[3:], "mark"])
        upsert = f"INSERT INTO events SELECT * FROM tmp ON CONFLICT (account, calendar_id, id) DO UPDATE SET {assign}"
        t = time.perf_counter()
        for page in pages:
            async with conn.transaction():
                await conn.execute("CREATE TEMP TABLE tmp (LIKE events) ON COMMIT DROP")
                await conn.copy_records_to_table("tmp", records=page)
                await conn.execute(upsert)
        out["COPY temp + INSERT ON CONFLICT"] = time.perf_counter() - t
        sql = upsert_sql("events", with_mark=True)
        t = time.perf_counter()
        for page in pages:
            async with conn.transaction():
                await conn.execute(sql, *columns(page))
        out["INSERT FROM unnest ON CONFLICT"] = time.perf_counter() - t
        return out
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.events
    events = [make_event(i) for i in range(n)]
    changed = [attrs.evolve(e, title=e.title + " (moved)") for e in events]
    name = f"calbridge_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f"CREATE DATABASE {name}")
    url = _db(DSN, name)
    figures: dict[str, list[float]] = {}
    try:
        for r in range(args.repeat):
            first, again = await through_store(url, f"s{r}", events, changed)
            figures.setdefault("commit_page, first insert", []).append(n / first)
            figures.setdefault("commit_page, every event changed", []).append(n / again)
            rows = [encode_row(e) for e in events]
            for k, v in (await raw(url, f"r{r}", rows)).items():
                figures.setdefault(f"raw {k}", []).append(n / v)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    print(f"{n} events, pages of {PAGE}, median of {args.repeat} (events/s)")
    for k, v in figures.items():
        print(f"  {k:<40} {statistics.median(v):>10,.0f}")
    print("target: >= 15,000 events/s through commit_page")


if __name__ == "__main__":
    asyncio.run(main())
