"""Serialize + upsert throughput of SqliteStore.commit_page on 2,500-event pages.

Run ``python bench/bench_store.py [--events N] [--repeat R]``. Prints events/s for: the first insert,
a re-upsert of unchanged events under the same mark (incremental replay), under a new mark (a full
listing that finds nothing changed: only ``mark`` is written), and a re-upsert where every event
changed. Two floors, measured in the same run (the machine is noisy): ``event_to_json`` alone, and
a raw ``sqlite3`` upsert of the same rows, already encoded, into a store file with the same schema
and indexes, 2,500 to a transaction. Each figure is given as a ratio to the raw upsert of its kind
(the all-changed one to a raw upsert over existing rows). The target is >= 30k events/s, within 2x raw.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from calbridge.export import event_to_json
from calbridge.model import Attendee, Event, Kind, Person, Response, ShowAs, Upsert, When
from calbridge.store._schema import UPSERT_EVENT, encode_row
from calbridge.store.base import CalendarState
from calbridge.store.sqlite import SqliteStore

PAGE = 2500
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
RESPONSES = list(Response)


def make_event(i: int) -> Event:
    """A meeting shaped like a busy work calendar's: ~1.5 KB of JSON with two to six attendees."""
    start = T0 + dt.timedelta(minutes=30 * i)
    people = [
        Attendee(
            email=f"person{(i + k) % 997}@example.com",
            name=f"Person Number {(i + k) % 997}",
            response=RESPONSES[(i + k) % len(RESPONSES)],
            organizer=k == 0,
        )
        for k in range(2 + i % 5)
    ]
    series = i % 10 == 0
    return Event(
        provider="google",
        account="work",
        calendar_id="primary",
        id=f"evt{i:08d}abcdefghijklmnop",
        kind=Kind.SERIES if series else Kind.SINGLE,
        start=When.at(start, "Europe/Berlin"),
        end=When.at(start + dt.timedelta(minutes=45), "Europe/Berlin"),
        title=f"Project sync #{i}: roadmap, hiring and the quarterly planning review",
        description="Agenda: status of workstreams, risks, decisions needed, next steps.",
        location="Building 4, Room 2.17 (Seattle) / https://meet.example.com/abc-defg-hij",
        recurrence=("RRULE:FREQ=WEEKLY;BYDAY=MO",) if series else (),
        organizer=Person(email="person0@example.com", name="Person Number 0"),
        attendees=people,
        show_as=ShowAs.BUSY,
        meeting_url="https://meet.example.com/abc-defg-hij",
        html_link=f"https://calendar.example.com/event?eid=evt{i:08d}",
        created=T0 - dt.timedelta(days=30),
        updated=T0 - dt.timedelta(days=1, seconds=i),
        etag=f'"3{i:015d}"',
        ical_uid=f"evt{i:08d}@example.com",
    )


async def commit_all(store: SqliteStore, pages: Sequence[Sequence[Event]], mark: int) -> tuple[float, int]:
    state = CalendarState(account="work", calendar_id="primary", mark=mark)
    applied = 0
    started = time.perf_counter()
    for page in pages:
        applied += len(await store.commit_page(state, [Upsert(event=e) for e in page]))
    return time.perf_counter() - started, applied


async def run(n: int, repeat: int) -> None:
    events = [make_event(i) for i in range(n)]
    changed = [attrs.evolve(e, title=(e.title or "") + " (moved)") for e in events]
    pages = [events[i : i + PAGE] for i in range(0, n, PAGE)]
    changed_pages = [changed[i : i + PAGE] for i in range(0, n, PAGE)]
    size = statistics.mean(len(event_to_json(e).encode()) for e in events[:500])
    print(f"{n} events in pages of {PAGE}; mean JSON {size:.0f} B; median of {repeat} runs\n")

    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}

    def note(name: str, seconds: float, floor: float) -> None:
        rates.setdefault(name, []).append(n / seconds)
        ratios.setdefault(name, []).append(seconds / floor)

    rows = [(*encode_row(e), 1) for e in events]
    changed_rows = [(*encode_row(e), 2) for e in changed]
    for _ in range(repeat):
        started = time.perf_counter()
        for e in events:
            event_to_json(e)
        note("event_to_json only", time.perf_counter() - started, 1.0)
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteStore(Path(tmp) / "raw.db"):  # the schema, then a connection of our own
                pass
            conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
            conn.execute("PRAGMA synchronous = NORMAL")  # as the store's (WAL persists in the file)
            started = time.perf_counter()
            for i in range(0, n, PAGE):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(UPSERT_EVENT, rows[i : i + PAGE])
                conn.execute("COMMIT")
            floor = time.perf_counter() - started
            note("raw sqlite3 upsert (floor)", floor, floor)
            started = time.perf_counter()  # the same upsert over the rows, every one changed
            for i in range(0, n, PAGE):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(UPSERT_EVENT, changed_rows[i : i + PAGE])
                conn.execute("COMMIT")
            floor_changed = time.perf_counter() - started
            conn.close()
            note("raw sqlite3 upsert, all changed", floor_changed, floor_changed)
            async with SqliteStore(Path(tmp) / "bench.db") as store:
                seconds, applied = await commit_all(store, pages, mark=1)
                assert applied == n
                note("first insert", seconds, floor)
                seconds, applied = await commit_all(store, pages, mark=1)
                assert applied == 0
                note("re-upsert unchanged, same mark", seconds, floor)
                seconds, applied = await commit_all(store, pages, mark=2)
                assert applied == 0
                note("re-upsert unchanged, new mark", seconds, floor)
                seconds, applied = await commit_all(store, changed_pages, mark=2)
                assert applied == n
                note("re-upsert all changed", seconds, floor_changed)

    print(f"{'':34} {'events/s':>10}  time / the raw sqlite3 upsert of its kind (same run)")
    for name, values in rates.items():
        ratio = "" if name == "event_to_json only" else f"{statistics.median(ratios[name]):.2f}x"
        print(f"{name:34} {statistics.median(values):>10,.0f}  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.repeat))


if __name__ == "__main__":
    main()
