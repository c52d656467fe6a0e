"""Full sync of N events from the Graph emulator running in another process (over TLS), then one
quiet incremental round.

Run: ``python bench/bench_graph_sync.py [--events N] [--series S] [--days D]``. Prints wall time,
the delta pages and other requests the emulator logged, and the emulator's own CPU time in total
and per delta page: a page must cost the emulator what the page holds, not the calendar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    import json, sys, tempfile, time
    from pathlib import Path
    from calbridge.testing.server import ThreadedServer
    from calbridge.testing.tls import make_test_ca
    from calbridge_providers.graph.emulator import GraphEmulator

    n, series = int(sys.argv[1]), int(sys.argv[2])
    emu = GraphEmulator()
    emu.seed(n, series)
    ca = make_test_ca(Path(tempfile.mkdtemp()))
    with ThreadedServer(emu.make_app(), ssl_context=ca.server_context) as srv:
        print(json.dumps({"url": srv.url, "ca": str(ca.ca_file)}), flush=True)
        cpu = time.process_time()
        for line in sys.stdin:
            delta = sum(1 for r in emu.requests if "/delta" in r.path.lower())
            print(json.dumps({"delta": delta, "all": len(emu.requests), "cpu": time.process_time() - cpu}),
                  flush=True)
    """
)


async def run(events: int, series: int, days: int) -> dict[str, Any]:
    """A full sync and a quiet round against a fresh emulator process; the figures as a dict."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(events), str(series)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().strip()
        if not first.startswith("{"):
            raise SystemExit("the emulator process failed to start")
        where = json.loads(first)

        def counts() -> dict[str, Any]:
            assert proc.stdout is not None and proc.stdin is not None
            proc.stdin.write("count\n")
            proc.stdin.flush()
            return dict(json.loads(proc.stdout.readline()))

        from calbridge_providers.graph.emulator import GraphEmulator

        with tempfile.TemporaryDirectory() as tmp:
            account = GraphEmulator().account_config(name="bench", base_url=where["url"], ca_file=where["ca"])
            cfg = Path(tmp) / "c.yaml"
            window = {"past": f"{days}d", "future": f"{days}d"}
            cfg.write_text(yaml.safe_dump({"store": "sqlite:///b.db", "window": window, "accounts": [account]}))
            config = load_config(cfg, registry=default_registry)
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
                before = counts()
                t = time.perf_counter()
                report = await engine.sync()
                wall = time.perf_counter() - t
                full = counts()
                await engine.sync()
                quiet = counts()
            (result,) = report.calendars
            assert result.ok, result.error
            pages = full["delta"] - before["delta"]
            emu_cpu = full["cpu"] - before["cpu"]
            return {"events": events, "series": series, "wall": wall, "pages": pages, "upserts": result.upserts,
                    "requests": full["all"] - before["all"], "emulator_cpu": emu_cpu,
                    "emulator_ms_per_page": emu_cpu / max(1, pages) * 1e3,
                    "quiet_requests": quiet["all"] - full["all"]}  # fmt: skip
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=15_000)
    ap.add_argument("--series", type=int, default=0)
    ap.add_argument("--days", type=int, default=400)
    args = ap.parse_args()
    m = asyncio.run(run(args.events, args.series, args.days))
    print(f"graph full sync of {m['events']:,} events ({m['series']} series, ±{args.days} d): {m['wall']:.1f} s wall, "
          f"{m['upserts']:,} stored")  # fmt: skip
    print(f"delta pages (emulator log): {m['pages']}; all requests: {m['requests']}; quiet round: "
          f"{m['quiet_requests']} requests")  # fmt: skip
    print(f"emulator CPU: {m['emulator_cpu']:.1f} s, {m['emulator_ms_per_page']:.1f} ms per delta page "
          f"({m['emulator_cpu'] / m['wall']:.0%} of the sync's wall time)")  # fmt: skip


if __name__ == "__main__":
    main()
