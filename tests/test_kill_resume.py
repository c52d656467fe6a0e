"""A sync *process* killed (SIGKILL) between pages resumes from its last committed page, for the
Graph and Feishu emulators (Google: tests/providers/google/test_e2e.py, fake: tests/test_engine.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from calbridge.testing.kit import EmulatorPool

from .stateful.handles import HANDLES

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
KILL_AFTER_FIRST_COMMIT = textwrap.dedent(
    """
    import asyncio, datetime as dt, os, signal, sys
    from calbridge.config import load_config
    from calbridge.engine import SyncEngine
    from calbridge.store.sqlite import SqliteStore

    def die(batch):
        os.kill(os.getpid(), signal.SIGKILL)  # published after the commit of the first page

    async def main():
        config = load_config(sys.argv[1])
        now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
        async with SqliteStore(config.store_path) as store, SyncEngine(config, store, clock=lambda: now) as e:
            e.add_listener(die)
            await e.sync()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(("provider", "events", "pages"), [("graph", 9, 5), ("feishu", 130, 3)])
def test_a_killed_sync_process_resumes_from_its_last_committed_page(
    provider: str, events: int, pages: int, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    handle = HANDLES[provider](calbridge_emulators.serve(provider))
    handle.reset()
    titles = {f"E{i:03d}" for i in range(events)}
    for i, title in enumerate(sorted(titles)):
        start = NOW + dt.timedelta(hours=i)
        handle.create_single(title, start, start + dt.timedelta(minutes=30))
    config = tmp_path / "calbridge.yaml"
    doc = {
        "store": "sqlite:///mirror.db",
        "window": {"past": "30d", "future": "90d"},
        "accounts": [handle.account("a")],
    }
    config.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}

    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_COMMIT, str(config)], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    partial = [json.loads(line)["title"] for line in cli("events", "--format", "jsonl").splitlines()]
    assert 0 < len(partial) < events
    summary = cli("sync")
    resumed_pages = int(re.search(r"full, (\d+) pages", summary).group(1))  # type: ignore[union-attr]
    assert resumed_pages == pages - 1  # from the second page on, not from the start
    rows = [json.loads(line) for line in cli("events", "--format", "jsonl").splitlines()]
    assert sorted(r["title"] for r in rows) == sorted(titles)
    assert len({r["id"] for r in rows}) == events  # no duplicates


@pytest.mark.parametrize("provider", ["google", "graph", "feishu"])
def test_an_occurrence_entering_the_window_as_time_passes_appears(
    provider: str, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    from calbridge.testing.kit import Mirror, run

    handle = HANDLES[provider](calbridge_emulators.serve(provider))
    handle.reset()
    first = NOW + dt.timedelta(days=80)  # the window reaches 91 days ahead: 80 and 87 are inside
    series = handle.create_series("weekly", first, first + dt.timedelta(hours=1), freq="WEEKLY", count=30)

    def occurrences(now: dt.datetime) -> list[str]:
        mirror = Mirror(handle, tmp_path, now=now, past="30d", future="90d")  # one store, a later clock
        report = run(mirror.sync())
        assert report is not None and report.ok, report
        events = run(mirror.events(expand=True))
        starts = [e.start.utc() for e in events if e.series_id == series or e.id == series]
        return [s.strftime("%Y-%m-%d") for s in starts]

    assert occurrences(NOW) == ["2026-05-20", "2026-05-27"]
    later = NOW + dt.timedelta(days=10)  # the window moved: 2026-06-03 entered it
    assert occurrences(later) == ["2026-05-20", "2026-05-27", "2026-06-03"]
