"""End to end: the google emulator on loopback, the engine and SQLite store, and the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.testing.server import ThreadedServer
from calbridge_providers.google.emulator import GoogleEmulator

from .support import CAL
from .test_expand import seed_series
from .test_sync import seed

LIST = "/calendars/primary/events"  # the config names the primary calendar


def write_config(tmp_path: Path, emu: GoogleEmulator, srv: ThreadedServer) -> Path:
    account = emu.account_config(name="acme-google", base_url=srv.url, ca_file=None)
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "400d", "future": "400d"}, "accounts": [account]}
    path = tmp_path / "calbridge.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}
    return subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def jsonl(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def server_ids(emu: GoogleEmulator) -> list[str]:
    with emu.state.lock:
        cal = emu.state.calendars[CAL]
        return sorted(i for i, e in cal.events.items() if e.get("status") != "cancelled")


@pytest.fixture
def config(tmp_path: Path, emu: GoogleEmulator, server: ThreadedServer) -> Path:
    return write_config(tmp_path, emu, server)


def test_sync_killed_between_pages_resumes_and_ends_equal_to_the_server(emu: GoogleEmulator, config: Path) -> None:
    seed(emu, 6000)  # three pages of 2,500
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from calbridge.config import load_config
        from calbridge.engine import SyncEngine
        from calbridge.registry import default_registry
        from calbridge.store.sqlite import SqliteStore

        def die(batch):
            os.kill(os.getpid(), signal.SIGKILL)  # right after the first page is committed

        async def main():
            config = load_config({str(config)!r}, registry=default_registry)
            async with SqliteStore(config.store_path) as store, SyncEngine(config, store) as engine:
                engine.add_listener(die)
                await engine.sync()

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    emu.state.clear_log()
    done = cli(config, "sync")
    assert done.returncode == 0, done.stderr + done.stdout
    lists = emu.state.requests_to(LIST)
    assert len(lists) == 2 and "pageToken" in lists[0].query  # resumed at page 2 of 3
    ids = [e["id"] for e in jsonl(cli(config, "events", "--format", "jsonl"))]
    assert sorted(ids) == server_ids(emu) and len(ids) == len(set(ids)) == 6000


def test_events_expand_shows_the_dst_series_exactly(emu: GoogleEmulator, config: Path) -> None:
    seed_series(emu)
    assert cli(config, "sync").returncode == 0
    lines = jsonl(cli(config, "events", "--expand", "--from", "2026-02-01", "--to", "2026-05-01", "--format", "jsonl"))
    got = [(e["kind"], e["start"]["datetime"], e["title"]) for e in lines]
    assert got == [
        ("occurrence", "2026-02-24T14:00:00Z", "Weekly sync"),
        ("occurrence", "2026-03-03T14:00:00Z", "Weekly sync"),
        ("exception", "2026-03-18T14:00:00Z", "Weekly sync (moved)"),
        ("occurrence", "2026-03-31T13:00:00Z", "Weekly sync"),
        ("occurrence", "2026-04-07T13:00:00Z", "Weekly sync"),
    ]
    cancelled = jsonl(cli(config, "events", "--expand", "--include-cancelled", "--from", "2026-03-10",
                          "--to", "2026-03-11", "--format", "jsonl"))  # fmt: skip
    assert [(e["kind"], e["status"], e["original_start"]["datetime"]) for e in cancelled] == [
        ("exception", "cancelled", "2026-03-10T13:00:00Z")
    ]


def test_incremental_sync_through_the_cli_applies_changes(emu: GoogleEmulator, config: Path) -> None:
    seed(emu, 10)
    assert cli(config, "sync").returncode == 0
    ids = server_ids(emu)
    emu.state.delete_event(CAL, ids[0])
    emu.state.update_event(CAL, ids[1], summary="renamed")
    emu.state.clear_log()
    assert cli(config, "sync").returncode == 0
    assert len(emu.state.requests_to(LIST)) == 1
    events = {e["id"]: e for e in jsonl(cli(config, "events", "--format", "jsonl"))}
    assert sorted(events) == server_ids(emu) and events[ids[1]]["title"] == "renamed"
    cals = cli(config, "calendars")
    assert cals.returncode == 0 and CAL in cals.stdout
