"""The change feed's cost: commit with the log vs without it (same pages), and reading a large log.

Run ``python bench/bench_feed.py [--pages N] [--log M]`` (``--full``: a 1M-change log). Prints the
per-page commit time of 2,500-event pages with and without the feed append (interleaved, medians;
target <= 25 % more), then changes/s read through ``read_changes(after, 1000)`` with each entry
decoded to a dict (target >= 100k/s) and the peak RSS growth while reading (it should follow the
batch, not the log).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import attrs
from bench_store import PAGE, make_event

from calbridge.export import event_to_json
from calbridge.model import Upsert
from calbridge.store import _feed, _write
from calbridge.store.base import CalendarState
from calbridge.store.sqlite import SqliteStore


async def commit_cost(pages: int) -> tuple[float, float]:
    """Median seconds per page (with the log, without it), fresh pages each time (all inserts)."""
    with_log: list[float] = []
    without: list[float] = []
    real = _feed.append
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteStore(Path(tmp) / "m.db") as store:
            n = 0
            for p in range(pages * 2):
                events = [attrs.evolve(make_event(i), id=f"p{p}-{i}") for i in range(PAGE)]
                changes = [Upsert(event=e) for e in events]
                state = CalendarState(account="work", calendar_id="primary", mark=1)
                logged = p % 2 == 0
                _write._feed.append = real if logged else (lambda *a, **k: None)  # type: ignore[assignment]
                t0 = time.perf_counter()
                await store.commit_page(state, changes)
                (with_log if logged else without).append(time.perf_counter() - t0)
                n += PAGE
    _write._feed.append = real  # type: ignore[assignment]
    return statistics.median(with_log), statistics.median(without)


async def read_rate(size: int) -> tuple[float, float]:
    """(changes/s through read_changes + to_dict, peak RSS growth in MiB) over a ``size``-change log."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.db"
        async with SqliteStore(path):
            pass
        text = event_to_json(make_event(7))
        conn = sqlite3.connect(path)
        conn.executemany(
            "INSERT INTO feed (committed, account, calendar_id, id, op, created, event) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((1_700_000_000, "work", "primary", f"e{i}", "upsert", 1, text) for i in range(size)),
        )
        conn.commit()
        conn.close()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        async with SqliteStore(path) as store:
            t0 = time.perf_counter()
            after, count = 0, 0
            while True:
                batch = await store.read_changes(after, 1000)
                if not batch:
                    break
                for entry in batch:
                    entry.to_dict()
                count += len(batch)
                after = batch[-1].seq
            rate = count / (time.perf_counter() - t0)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        return rate, grown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--log", type=int, default=200_000)
    ap.add_argument("--full", action="store_true", help="a 1M-change log")
    args = ap.parse_args()
    logged, plain = asyncio.run(commit_cost(args.pages))
    print(f"commit of a {PAGE:,}-event page: {logged * 1e3:.0f} ms with the feed, {plain * 1e3:.0f} ms without"
          f" (+{(logged / plain - 1) * 100:.0f} %; goal <= 25 %)")  # fmt: skip
    size = 1_000_000 if args.full else args.log
    rate, grown = asyncio.run(read_rate(size))
    print(f"feed read of a {size:,}-change log: {rate:,.0f} changes/s decoded to dicts (goal >= 100k/s),"
          f" peak RSS +{grown:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
