"""Requests when a day passes: 30 quiet days, the clock moved a day at a time, counted from the
emulators' request logs, against one full expansion (Google, Feishu) or one full listing (Graph).

Run: ``python bench/bench_days.py [--series S]`` (default 100 weekly series). The goal (issue 11):
30 quiet days together cost under 1.5 full expansions, and no quiet day more than 10 % of one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from calbridge.testing.emulator_api import RequestLog, SeriesEmulatorAPI
from calbridge.testing.kit import BaseHandle, EmulatorPool, Mirror, run

NOW = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
DAY = dt.timedelta(days=1)
COUNTED = {"google": ("/instances",), "feishu": ("/instances", "/instance_view"), "graph": ("/delta",)}


def measure(pool: EmulatorPool, name: str, series: int, folder: Path) -> tuple[int, list[int], int]:
    served = pool.serve(name)
    emu = served.emulator
    assert isinstance(emu, SeriesEmulatorAPI) and isinstance(emu, RequestLog)
    handle = BaseHandle(served)
    cal = handle.calendar_id = emu.new_calendar(f"days-{name}")
    for i in range(series):
        start = NOW - dt.timedelta(days=i % 7, hours=i % 5)
        emu.add_event(f"weekly {i}", start, start + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=WEEKLY")
    mirror = Mirror(handle, folder / name, now=NOW, past="30d", future="365d")

    def counted() -> int:
        before = len(emu.request_paths())
        report = run(mirror.sync())
        assert report is not None and report.ok
        return sum(1 for p in emu.request_paths()[before:] if p.endswith(COUNTED[name]))

    full = counted()
    days = []
    for _ in range(30):
        mirror.advance(DAY)
        days.append(counted())
    relistings = sum(1 for r in mirror.reports[1:] if r.calendars[0].full)
    return full, days, relistings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pool = EmulatorPool(Path(tmp) / "ca")
        for name in ("google", "feishu", "graph"):
            full, days, relistings = measure(pool, name, args.series, Path(tmp))
            if name == "graph":  # a quiet day is one delta request; what used to recur daily is the re-listing
                print(f"graph   {args.series} series: a full listing {full} delta pages; 30 quiet days: "
                      f"{relistings} re-listing(s), {sum(days)} delta requests in all (was a re-listing a day)")
                continue
            print(f"{name:7s} {args.series} series: a full expansion {full} requests; 30 quiet days {sum(days)} "
                  f"({sum(days) / full:.2f} x), at most {max(days)} a day ({max(days) / full:.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
