"""Full sync of N events (default 100,000) from the Google emulator running in another process.

Run: ``python bench/bench_google_sync.py [N]``. Prints wall time, list requests (pages) and
calbridge's peak RSS, which must follow the page size (2,500 events), not the calendar size.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from calbridge.config import load_config
from calbridge.engine import SyncEngine
from calbridge.registry import default_registry
from calbridge.store.sqlite import SqliteStore

SERVER = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from calbridge.testing.server import ThreadedServer
    from calbridge_providers.google.emulator import GoogleEmulator

    n = int(sys.argv[1])
    emu = GoogleEmulator()
    emu.state.add_calendar("alice@example.com", summary="Alice", time_zone="Europe/Zurich", primary=True)
    t0 = dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone.utc)
    def payload(i):
        s = t0 + dt.timedelta(hours=i)
        e = s + dt.timedelta(minutes=30)
        return {"summary": f"Meeting {i}", "description": "Agenda " * 40, "location": "Room 1",
                "start": {"dateTime": s.isoformat(), "timeZone": "Europe/Zurich"},
                "end": {"dateTime": e.isoformat(), "timeZone": "Europe/Zurich"},
                "attendees": [{"email": f"p{k}@example.com", "responseStatus": "accepted"} for k in range(3)]}
    emu.state.bulk_insert("alice@example.com", (payload(i) for i in range(n)))
    with ThreadedServer(emu.make_app()) as srv:
        print(srv.url, flush=True)
        sys.stdin.read()
    """
)


async def main(n: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the emulator process failed to start")
        from calbridge_providers.google.emulator import GoogleEmulator

        with tempfile.TemporaryDirectory() as tmp:
            account = GoogleEmulator().account_config(name="bench", base_url=url, ca_file=None)
            cfg = Path(tmp) / "c.yaml"
            doc = {"store": "sqlite:///b.db", "window": {"past": "1d", "future": "1d"}, "accounts": [account]}
            cfg.write_text(yaml.safe_dump(doc))
            config = load_config(cfg, registry=default_registry)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
                t = time.perf_counter()
                report = await engine.sync()
                wall = time.perf_counter() - t
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            (result,) = report.calendars
            assert result.ok, result.error
            print(f"full sync of {n:,} events: {wall:.1f} s wall, {n / wall:,.0f} events/s")
            print(f"list requests (pages): {result.pages}; events stored: {result.upserts:,}")
            print(f"calbridge peak RSS: {rss / 1024:.0f} MiB (before the sync: {rss0 / 1024:.0f} MiB)")
    finally:
        proc.kill()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
