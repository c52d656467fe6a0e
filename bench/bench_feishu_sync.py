"""Feishu full sync of N events: list pages and attendee calls (the list carries no attendees), then
a re-listing of the unchanged calendar after its cursor expired, counted from the emulator's log.

Run: ``python bench/bench_feishu_sync.py [--events N]`` (default 500). The goal (issue 11): a first
sync asks per event, concurrently within the quota; a re-listing of an unchanged calendar asks the
list pages and **0** attendee calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from calbridge.testing.emulator_api import RequestLog
from calbridge.testing.kit import BaseHandle, EmulatorPool, Mirror, run

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        served = EmulatorPool(Path(tmp) / "ca").serve("feishu")
        emu = served.emulator
        assert isinstance(emu, RequestLog)
        handle = BaseHandle(served)
        cal = handle.calendar_id = emu.new_calendar("bench")
        emu.seed(args.events, calendar=cal)
        # The quota pacing is what a real tenant needs; the bench measures requests, not the quota's wait.
        mirror = Mirror(handle, Path(tmp) / "m", now=NOW, past="30d", future="365d")

        def sync(what: str) -> None:
            before = len(emu.request_paths())
            started = time.perf_counter()
            report = run(mirror.sync())
            assert report is not None and report.ok, [r.error for r in report.calendars]
            paths = emu.request_paths()[before:]
            pages = sum(1 for p in paths if p.endswith("/events"))
            attendees = sum(1 for p in paths if p.endswith("/attendees"))
            print(f"{what}: {pages} list pages, {attendees} attendee calls, {time.perf_counter() - started:.1f} s wall")

        sync(f"first sync of {args.events:,} events")
        emu.expire_cursors()
        sync("re-listing of the unchanged calendar (cursor expired)")


if __name__ == "__main__":
    main()
