"""Full sync of N events and S daily series from the Google emulator running in another process.

Run: ``python bench/bench_google_sync.py [--events N] [--series S] [--days D]``. The window is
±``D`` days (default 30) so that every series is expanded. Prints wall time, the client's CPU time,
the HTTP requests the emulator logged (list pages, instances calls, the rest), events stored and
calbridge's peak RSS, which must follow the page size (2,500 events), not the calendar size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

from calbridge.config import load_config
from calbridge.engine import SyncEngine
from calbridge.registry import default_registry
from calbridge.store.sqlite import SqliteStore

SERVER = textwrap.dedent(
    """
    import datetime as dt, json, sys
    from calbridge.testing.server import ThreadedServer
    from calbridge_providers.google.emulator import GoogleEmulator

    n, series = int(sys.argv[1]), int(sys.argv[2])
    emu = GoogleEmulator()
    emu.state.add_calendar("alice@example.com", summary="Alice", time_zone="Europe/Zurich", primary=True)
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    t0 = now - dt.timedelta(hours=n // 2)
    def payload(i):
        s = t0 + dt.timedelta(hours=i)
        e = s + dt.timedelta(minutes=30)
        out = {"summary": f"Meeting {i}", "description": "Agenda " * 40, "location": "Room 1",
               "start": {"dateTime": s.isoformat(), "timeZone": "Europe/Zurich"},
               "end": {"dateTime": e.isoformat(), "timeZone": "Europe/Zurich"},
               "attendees": [{"email": f"p{(i * 7 + k) % 400}@example.com", "responseStatus": "accepted"}
                             for k in range(i % 6)]}
        if i < series:
            out["start"]["dateTime"] = (now - dt.timedelta(days=90, hours=i % 24)).isoformat()
            out["end"]["dateTime"] = (now - dt.timedelta(days=90, hours=i % 24) + dt.timedelta(minutes=30)).isoformat()
            out["recurrence"] = ["RRULE:FREQ=DAILY"]
        return out
    emu.state.bulk_insert("alice@example.com", (payload(i) for i in range(n)))
    with ThreadedServer(emu.make_app()) as srv:
        print(srv.url, flush=True)
        for line in sys.stdin:
            counts = {}
            for r in emu.state.requests:
                what = ("instances" if r.path.endswith("/instances") else "list" if r.path.endswith("/events")
                        else "token" if "token" in r.path else "other")
                counts[what] = counts.get(what, 0) + 1
            print(json.dumps(counts), flush=True)
    """
)


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM (ru_maxrss would carry a parent's peak across exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def run(events: int, series: int, days: int) -> dict[str, Any]:
    """One full sync against a fresh emulator process; the figures as a dict."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(events), str(series)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the emulator process failed to start")
        from calbridge_providers.google.emulator import GoogleEmulator

        with tempfile.TemporaryDirectory() as tmp:
            account = GoogleEmulator().account_config(name="bench", base_url=url, ca_file=None)
            cfg = Path(tmp) / "c.yaml"
            window = {"past": f"{days}d", "future": f"{days}d"}
            cfg.write_text(yaml.safe_dump({"store": "sqlite:///b.db", "window": window, "accounts": [account]}))
            config = load_config(cfg, registry=default_registry)
            rss0 = peak_rss_kib()
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
                t, cpu = time.perf_counter(), time.process_time()
                report = await engine.sync()
                wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            rss = peak_rss_kib()
            (result,) = report.calendars
            assert result.ok, result.error
            proc.stdin.write("count\n")
            proc.stdin.flush()
            counts = json.loads(proc.stdout.readline())
            return {"events": events, "series": series, "wall": wall, "cpu": cpu, "requests": counts,
                    "upserts": result.upserts, "rss_mib": rss / 1024, "rss0_mib": rss0 / 1024}  # fmt: skip
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line (bench/run.py)")
    args = ap.parse_args()
    m = asyncio.run(run(args.events, args.series, args.days))
    if args.json:
        print(json.dumps(m))
        return
    print(f"full sync of {m['events']:,} events ({m['series']} daily series, window ±{args.days} days): "
          f"{m['wall']:.1f} s wall, {m['cpu']:.1f} s client CPU")  # fmt: skip
    print(f"HTTP requests (emulator log): {m['requests']}; events stored: {m['upserts']:,}")
    print(f"calbridge peak RSS: {m['rss_mib']:.0f} MiB (before the sync: {m['rss0_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
