"""The store's costs at scale: one delete, a sweep after an expired cursor, a re-listing's pages.

Run ``python bench/bench_sweep.py [--slow | --full | --sizes N,.. --series-sizes N,..]`` (default
10k and 30k, ``--slow`` adds 100k, ``--full`` the 200-series re-listing at 20k and 200k). For each mirror size (singles,
plus 1 % series with an exception and 30 expanded occurrences each) it prints: the cost of one
delete in a page of its own; the sweep of 40 % of the mirror after a full listing that found only
the other 60 % (the issue's goal: the 40k deletes of a 100k mirror in under 10 s); and the mean
page cost (2,500 events) of that re-listing next to the first listing's; then the same for a
mirror of 200 daily series and their exceptions (the issue's ``sync --full`` of 200k). Goals: a
delete and a page that do not grow with the mirror, a sweep linear in what it removes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from calbridge.model import Delete, Event, EventKey, Kind, Upsert, When, Window
from calbridge.state import CalendarState, PendingSweep
from calbridge.store.sqlite import SqliteStore

PAGE = 2500
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
ACCT, CAL = "work", "primary"


def _ev(id: str, start: dt.datetime, kind: Kind = Kind.SINGLE, **kw: object) -> Event:
    return Event(provider="google", account=ACCT, calendar_id=CAL, id=id, kind=kind, start=When.at(start, "UTC"),
                 end=When.at(start + dt.timedelta(minutes=30), "UTC"), title=f"event {id}", **kw)  # type: ignore[arg-type]  # fmt: skip


def mirror(n: int) -> tuple[list[Event], dict[str, list[Event]]]:
    """``n`` events to list (1 % series, each with one exception) and each series' occurrences."""
    events: list[Event] = []
    occurrences: dict[str, list[Event]] = {}
    for i in range(n):
        start = T0 + dt.timedelta(minutes=30 * i)
        if i % 100 == 0:
            sid = f"s{i:07d}"
            events.append(_ev(sid, start, Kind.SERIES, recurrence=("RRULE:FREQ=DAILY",)))
            slots = [start + dt.timedelta(days=d) for d in range(30)]
            occurrences[sid] = [_ev(f"{sid}_{k}", s, Kind.OCCURRENCE, series_id=sid, original_start=When.at(s, "UTC"))
                                for k, s in enumerate(slots)]  # fmt: skip
        elif i % 100 == 1:
            sid = f"s{i - 1:07d}"
            slot = T0 + dt.timedelta(minutes=30 * (i - 1), days=3)
            events.append(_ev(f"{sid}_3", slot + dt.timedelta(hours=1), Kind.EXCEPTION, series_id=sid,
                              original_start=When.at(slot, "UTC")))  # fmt: skip
        else:
            events.append(_ev(f"e{i:07d}", start))
    return events, occurrences


async def _list(store: SqliteStore, events: list[Event], mark: int) -> list[float]:
    state = CalendarState(account=ACCT, calendar_id=CAL, mark=mark)
    times = []
    for i in range(0, len(events), PAGE):
        started = time.perf_counter()
        await store.commit_page(state, [Upsert(event=e) for e in events[i : i + PAGE]])
        times.append(time.perf_counter() - started)
    return times


async def one_size(n: int, tmp: Path) -> None:
    events, occurrences = mirror(n)
    window = Window(start=T0 - dt.timedelta(days=1), end=T0 + dt.timedelta(days=400))
    async with SqliteStore(tmp / f"m{n}.db") as store:
        first = await _list(store, events, mark=1)
        for sid, occ in occurrences.items():
            await store.replace_occurrences(ACCT, CAL, [sid], window, occ)
        # One delete, in a page of its own (the issue measured 9.7 / 36 / 75.5 ms at 10k / 30k / 100k).
        state = CalendarState(account=ACCT, calendar_id=CAL, mark=1)
        singles = [e.id for e in events if e.kind is Kind.SINGLE]
        started = time.perf_counter()
        for event_id in singles[-20:]:
            await store.commit_page(state, [Delete(key=EventKey(account=ACCT, calendar_id=CAL, id=event_id))])
        one_delete = (time.perf_counter() - started) / 20
        # A full listing that finds 60 % of the rest (every series kept), then the sweep of the other 40 %.
        rest = [e for e in events if e.id not in set(singles[-20:])]
        keep = [e for i, e in enumerate(rest) if e.kind is not Kind.SINGLE or i % 5 < 3]
        relist = await _list(store, keep, mark=2)
        sweep = PendingSweep(mark=2)
        started = time.perf_counter()
        swept = 0
        swept_state = CalendarState(account=ACCT, calendar_id=CAL, mark=2, sweep=sweep)
        while batch := await store.sweep_batch(swept_state, sweep):
            swept += len(batch)
        sweep_s = time.perf_counter() - started
    ms = 1000
    print(f"{n:>8,} {one_delete * ms:>10.2f} ms {swept:>8,} {sweep_s:>9.2f} s"
          f" {sum(first) / len(first) * ms:>10.0f} ms {sum(relist) / len(relist) * ms:>10.0f} ms")  # fmt: skip


async def series_relisting(n: int, tmp: Path) -> None:
    """200 daily series holding ``n`` rows in all (exceptions, with a year of expanded occurrences
    each): the mean page of a first listing, then of a re-listing that finds half the exceptions."""
    per = max(1, n // 200 - 1)
    rows: list[Event] = []
    occurrences: dict[str, list[Event]] = {}
    for k in range(200):
        sid, first = f"s{k:03d}", T0 + dt.timedelta(minutes=7 * k)
        rows.append(_ev(sid, first, Kind.SERIES, recurrence=("RRULE:FREQ=DAILY",)))
        slots = [first + dt.timedelta(days=d) for d in range(max(per, 365))]
        rows += [_ev(f"{sid}_x{d}", s + dt.timedelta(hours=1), Kind.EXCEPTION, series_id=sid,
                     original_start=When.at(s, "UTC")) for d, s in enumerate(slots[:per])]  # fmt: skip
        occurrences[sid] = [_ev(f"{sid}_{d}", s, Kind.OCCURRENCE, series_id=sid, original_start=When.at(s, "UTC"))
                            for d, s in enumerate(slots)]  # fmt: skip
    window = Window(start=T0 - dt.timedelta(days=1), end=T0 + dt.timedelta(days=max(per, 365) + 1))
    async with SqliteStore(tmp / f"series{n}.db") as store:
        first = await _list(store, rows, mark=1)
        for sid, occ in occurrences.items():
            await store.replace_occurrences(ACCT, CAL, [sid], window, occ)
        half = [e for i, e in enumerate(rows) if e.kind is Kind.SERIES or i % 2]
        relist = await _list(store, half, mark=2)
    ms = 1000
    print(f"{len(rows):>8,} rows of 200 series, {sum(map(len, occurrences.values())):,} occurrences:"
          f" first listing {sum(first) / len(first) * ms:.0f} ms a page,"
          f" re-listing {sum(relist) / len(relist) * ms:.0f} ms a page ({len(relist)} pages)")  # fmt: skip


async def run(sizes: list[int], series_sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if sizes:
            head = ("one delete", "swept", "sweep", "first page", "re-list page")
            print(f"{'mirror':>8} {head[0]:>13} {head[1]:>8} {head[2]:>11} {head[3]:>13} {head[4]:>13}")
        for n in sizes:
            await one_size(n, Path(tmp))
        for n in series_sizes:
            await series_relisting(n, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="mirror sizes for the sweep, comma-separated")
    parser.add_argument("--series-sizes", help="mirror sizes for the 200-series re-listing")
    parser.add_argument("--slow", action="store_true", help="the sweep up to the issue's 100k")
    parser.add_argument("--full", action="store_true", help="only the re-listing, up to the issue's 200k")
    args = parser.parse_args()
    sizes = args.sizes or ("" if args.full else "10000,30000,100000" if args.slow else "10000,30000")
    series = args.series_sizes or ("20000,200000" if args.full else "" if args.slow else "20000")
    asyncio.run(run([int(s) for s in sizes.split(",") if s], [int(s) for s in series.split(",") if s]))


if __name__ == "__main__":
    main()
