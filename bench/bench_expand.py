"""``calbridge events --expand --format jsonl`` on a large mirror: time to the first line, the whole
run, and the process's peak memory (the issue's goal: the first line within 1 s on a 100k mirror,
memory that follows the output, not the mirror).

Run ``python bench/bench_expand.py [--events 100000]``. Builds a store of that many rows (half
singles, half the occurrences of daily series, all inside the default window), then runs the real
CLI in a subprocess reading its stdout, as a pipe consumer would, ``--format jsonl`` and ``table``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from calbridge.model import Event, Kind, Upsert, When, Window
from calbridge.state import CalendarState
from calbridge.store.sqlite import SqliteStore

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CONFIG = """store: sqlite:///{store}
window: {{past: 30d, future: 90d}}
accounts:
  - name: work
    provider: google
    auth: {{kind: authorized_user, client_id: x, client_secret: y, refresh_token: z}}
    calendars: [primary]
"""


def _ev(id: str, start: dt.datetime, kind: Kind = Kind.SINGLE, **kw: object) -> Event:
    return Event(provider="google", account="work", calendar_id="primary", id=id, kind=kind,
                 start=When.at(start, "Europe/Berlin"), end=When.at(start + dt.timedelta(minutes=30), "Europe/Berlin"),
                 title=f"Meeting {id}", description="Agenda: " + "x" * 300, **kw)  # type: ignore[arg-type]  # fmt: skip


async def build(path: Path, n: int) -> None:
    half, series = n // 2, max(1, n // 200)  # each series 100 daily occurrences
    start = NOW - dt.timedelta(days=29)
    singles = [_ev(f"e{i:07d}", start + dt.timedelta(minutes=(i * 7919) % (110 * 1440))) for i in range(half)]
    masters = [_ev(f"s{k:05d}", start + dt.timedelta(minutes=k), Kind.SERIES, recurrence=("RRULE:FREQ=DAILY",))
               for k in range(series)]  # fmt: skip
    window = Window(start=NOW - dt.timedelta(days=30), end=NOW + dt.timedelta(days=90))
    async with SqliteStore(path) as store:
        rows = singles + masters
        for i in range(0, len(rows), 2500):
            await store.commit_page(CalendarState(account="work", calendar_id="primary", mark=1),
                                    [Upsert(event=e) for e in rows[i : i + 2500]])  # fmt: skip
        for m in masters:
            slots = [m.start.utc() + dt.timedelta(days=d) for d in range((n - half) // series)]
            occ = [_ev(f"{m.id}_{s:%Y%m%d}", s, Kind.OCCURRENCE, series_id=m.id, original_start=When.at(s, "UTC"))
                   for s in slots]  # fmt: skip
            await store.replace_occurrences("work", "primary", [m.id], window, occ)


def run_cli(config: Path, fmt: str) -> tuple[float, float, int, float]:
    """(seconds to the first line, seconds in all, lines, peak RSS of the CLI in MB)."""
    env = {**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "events", "--expand", "--format", fmt]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    t_first = time.perf_counter() - started
    lines = 1 if first else 0
    for _ in proc.stdout:
        lines += 1
    proc.wait()
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB; the largest child so far
    assert proc.returncode == 0, proc.returncode
    return t_first, total, lines, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, config = Path(tmp) / "mirror.db", Path(tmp) / "calbridge.yaml"
        config.write_text(CONFIG.format(store=store))
        asyncio.run(build(store, args.events))
        for fmt in ("jsonl", "table"):
            t_first, total, lines, peak = run_cli(config, fmt)
            print(f"events --expand --format {fmt:5} on {args.events:,} rows: first line {t_first:5.2f} s,"
                  f" all {total:5.2f} s, {lines:,} lines, peak RSS {peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
