"""A no-change polled round of 1,000 calendars through the service's round path: CPU per calendar and
requests per calendar (goal: one list request per calendar, no expansion request).

Run ``python bench/bench_polled_round.py [--calendars N] [--provider google|graph|feishu|all]``
(default 1,000 calendars of the Google emulator; ~20 s). The emulator runs in **another process**
(so this process's CPU time is calbridge's alone: the engine, its HTTP client, the store and its
worker thread), holding N calendars of one account, each with two single events and a weekly series
(so a round that expanded needlessly would show). A first round of every calendar mirrors them in
full; then the polled round is timed: :meth:`SyncEngine.sync_calendar` of every calendar, all at
once, as the service's scheduled rounds call it (the engine's per-account and global concurrency
bound them). Requests are counted from the emulator's own request log (token requests apart):
``list`` is the events listing (Google/Feishu ``…/events``, Graph ``…/delta``), ``expansion`` an
``instances``/``instance_view`` request. Feishu's first round takes about two minutes at 1,000
calendars: it fetches attendees within the app's quota (``attendee_qpm``, 1,000 a minute).
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
from calbridge.store.sqlite import SqliteStore

SERVER = textwrap.dedent(
    """
    import datetime as dt, json, sys, tempfile
    from pathlib import Path
    from calbridge.registry import default_registry
    from calbridge.testing.server import ThreadedServer
    from calbridge.testing.tls import make_test_ca

    name, n = sys.argv[1], int(sys.argv[2])
    emu = default_registry.emulator(name)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    ids = []
    for k in range(n):
        cal = emu.new_calendar(f"quiet-{k}")
        ids.append(cal)
        for d in (1, 2):
            start = now + dt.timedelta(days=d, hours=k % 8)
            emu.add_event(f"single {k}.{d}", start, start + dt.timedelta(hours=1), calendar=cal)
        start = now - dt.timedelta(days=7, hours=k % 5)
        emu.add_event(f"weekly {k}", start, start + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=WEEKLY")
    ca = make_test_ca(Path(tempfile.mkdtemp())) if emu.tls else None
    with ThreadedServer(emu.make_app(), ssl_context=ca.server_context if ca else None) as srv:
        account = emu.account_config(name="quiet", base_url=srv.url, ca_file=str(ca.ca_file) if ca else None)
        print(json.dumps({"account": account, "calendars": ids}), flush=True)
        seen = 0
        for line in sys.stdin:
            paths = emu.request_paths()
            print(json.dumps(paths[seen:]), flush=True)
            seen = len(paths)
    """
)


def kinds(paths: list[str]) -> dict[str, int]:
    """The requests by kind: ``list``, ``expansion``, ``other``."""
    out = {"list": 0, "expansion": 0, "other": 0}
    for path in paths:
        if path.endswith(("/instances", "/instance_view")):
            out["expansion"] += 1
        elif path.endswith(("/events", "/delta")):
            out["list"] += 1
        else:
            out["other"] += 1
    return out


async def run(name: str, calendars: int) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, name, str(calendars)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("{"):
            raise SystemExit(f"the {name} emulator process failed to start")
        where = json.loads(line)

        def requests() -> list[str]:
            assert proc.stdout is not None and proc.stdin is not None
            proc.stdin.write("paths\n")
            proc.stdin.flush()
            return list(json.loads(proc.stdout.readline()))

        with tempfile.TemporaryDirectory() as tmp:
            account = {**where["account"], "calendars": where["calendars"]}
            doc = {"store": "sqlite:///q.db", "window": {"past": "30d", "future": "180d"}, "accounts": [account]}
            cfg = Path(tmp) / "c.yaml"
            cfg.write_text(yaml.safe_dump(doc))
            config = load_config(cfg)
            acc = config.account("quiet")
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
                t = time.perf_counter()
                full = await asyncio.gather(*(engine.sync_calendar(acc.name, c) for c in where["calendars"]))
                full_wall = time.perf_counter() - t
                bad = [r for r in full if not r.ok]
                if bad:
                    raise SystemExit(f"{name}: the first round failed: {bad[0].error}")
                first = kinds(requests())
                cpu, t = time.process_time(), time.perf_counter()
                quiet = await asyncio.gather(*(engine.sync_calendar(acc.name, c) for c in where["calendars"]))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - t
                counted = kinds(requests())
            changed = sum(r.upserts + r.deletes + r.occurrences for r in quiet)
            failed = sum(1 for r in quiet if not r.ok)
            return {"cpu": cpu, "wall": wall, "requests": counted, "first": first, "full_wall": full_wall,
                    "changed": changed, "failed": failed, "upserts": sum(r.upserts for r in full)}  # fmt: skip
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calendars", type=int, default=1000)
    ap.add_argument("--provider", default="google", choices=["google", "graph", "feishu", "all"])
    args = ap.parse_args()
    names = ["google", "graph", "feishu"] if args.provider == "all" else [args.provider]
    summary = []
    for name in names:
        m = asyncio.run(run(name, args.calendars))
        n, req = args.calendars, m["requests"]
        cpu = m["cpu"] / n * 1e3
        print(f"{name:7s} first round of {n:,} calendars: {m['full_wall']:.1f} s wall, {m['upserts']:,} stored, "
              f"{m['first']['list']:,} list + {m['first']['expansion']:,} expansion requests")  # fmt: skip
        print(f"{name:7s} no-change polled round of {n:,} calendars: {cpu:.2f} ms CPU per calendar, "
              f"{req['list'] / n:.2f} list + {req['expansion'] / n:.2f} expansion + {req['other'] / n:.2f} other "
              f"requests per calendar ({m['wall']:.1f} s wall, {m['changed']} changes, "
              f"{m['failed']} failed)")  # fmt: skip
        summary.append(f"{name} {cpu:.2f} ms CPU, {req['list'] / n:.2f} list + {req['expansion'] / n:.2f} expansion")
    print(f"polled no-change round, {args.calendars:,} calendars, per calendar: " + "; ".join(summary))


if __name__ == "__main__":
    main()
