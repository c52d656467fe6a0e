"""The change feed end to end: a sync process killed between its commits and their publication loses
nothing from the feed; consumers catch up after downtime, resume by offset, follow new commits; an
offset behind retention is refused by name (``calbridge changes``, ``service.md``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.testing.kit import EmulatorPool

from .stateful.handles import HANDLES

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
ENV = {**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}

# The listener sees each batch only after its page committed: dying there is the lost-publication case.
KILL_AT_BATCH = textwrap.dedent(
    """
    import asyncio, datetime as dt, os, signal, sys
    from calbridge.config import load_config
    from calbridge.engine import SyncEngine
    from calbridge.store.sqlite import SqliteStore

    seen = 0
    def die(batch):
        global seen
        seen += 1
        if seen == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        config = load_config(sys.argv[1])
        now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
        async with SqliteStore(config.store_path) as store, SyncEngine(config, store, clock=lambda: now) as e:
            e.add_listener(die)
            await e.sync()

    asyncio.run(main())
    """
)


def _setup(pool: EmulatorPool, tmp_path: Path, provider: str, events: int) -> tuple[Any, Path]:
    handle = HANDLES[provider](pool.serve(provider))
    handle.reset()
    for i in range(events):
        start = NOW + dt.timedelta(hours=i)
        handle.create_single(f"E{i:03d}", start, start + dt.timedelta(minutes=30))
    config = tmp_path / "calbridge.yaml"
    doc = {
        "store": "sqlite:///mirror.db",
        "window": {"past": "30d", "future": "90d"},
        "accounts": [handle.account("a")],
    }
    config.write_text(yaml.safe_dump(doc))
    return handle, config


def _cli(config: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def _lines(config: Path, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _cli(config, "changes", *args).stdout.splitlines()]


def _apply(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A consumer's copy: dedupe by seq, apply in order."""
    mirror: dict[str, dict[str, Any]] = {}
    done: set[int] = set()
    for line in sorted(lines, key=lambda x: x["seq"]):
        if line["seq"] in done:
            continue
        done.add(line["seq"])
        if line["op"] == "delete":
            mirror.pop(line["id"], None)
        else:
            mirror[line["id"]] = line["event"]
    return mirror


def _store_rows(config: Path) -> dict[str, dict[str, Any]]:
    rows = [
        json.loads(x) for x in _cli(config, "events", "--format", "jsonl", "--include-cancelled").stdout.splitlines()
    ]
    return {r["id"]: r for r in rows}


@pytest.mark.parametrize(
    "kill_at", [1, pytest.param(2, marks=pytest.mark.slow), 3, pytest.param(4, marks=pytest.mark.slow), 5]
)
def test_killed_between_commit_and_publish_the_feed_has_every_change_once(
    kill_at: int, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    handle, config = _setup(calbridge_emulators, tmp_path, "graph", 9)  # 5 pages of 2
    killed = subprocess.run([sys.executable, "-c", KILL_AT_BATCH, str(config), str(kill_at)], env=ENV,
                            capture_output=True)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    before = _lines(config, "--consumer", "c")  # what was committed before the kill, read at once
    _cli(config, "sync")
    handle.update(handle_ids(config)[0], title="changed after the kill")
    _cli(config, "sync")
    after = _lines(config, "--consumer", "c")
    assert {x["seq"] for x in before}.isdisjoint(x["seq"] for x in after)  # the offset moved past them
    lines = before + after
    upserted = [x["id"] for x in lines if x["op"] == "upsert"]
    assert len(upserted) == len(set(upserted)) + 1  # each event once, and the one change after the kill
    assert _apply(lines) == _store_rows(config)


def handle_ids(config: Path) -> list[str]:
    return sorted(_store_rows(config))


def test_a_consumer_catches_up_after_rounds_it_missed_then_follows(
    calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    handle, config = _setup(calbridge_emulators, tmp_path, "google", 3)
    _cli(config, "sync")
    first = _lines(config, "--consumer", "c1")
    assert [x["event"]["title"] for x in first] == ["E000", "E001", "E002"]
    assert _lines(config, "--consumer", "c1") == []  # run twice: nothing the second time
    assert [x["event"]["title"] for x in _lines(config, "--limit", "2")] == ["E000", "E001"]
    assert len(_lines(config, "--account", "a")) == 3
    assert "unknown account" in _cli(config, "changes", "--account", "nobody", code=2).stderr
    ids = sorted(_store_rows(config), key=lambda i: _store_rows(config)[i]["title"])
    handle.update(ids[0], title="one")  # three rounds while c1 is down
    _cli(config, "sync")
    handle.delete(ids[1])
    _cli(config, "sync")
    handle.create_single("E003", NOW, NOW + dt.timedelta(hours=1))
    _cli(config, "sync")
    missed = _lines(config, "--consumer", "c1")
    assert [(x["op"], (x["event"] or {}).get("title")) for x in missed] == [
        ("upsert", "one"),
        ("delete", None),
        ("upsert", "E003"),
    ]
    assert missed[1]["deleted"]["title"] == "E001" and missed[1]["id"] == ids[1]
    assert [x["seq"] for x in missed] == sorted(x["seq"] for x in missed)
    assert _apply(first + missed) == _store_rows(config)

    follow = subprocess.Popen(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "changes", "--consumer", "c1", "--follow"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # it is waiting now, with nothing to print
        handle.create_single("E004", NOW, NOW + dt.timedelta(hours=1))
        _cli(config, "sync")
        committed = time.monotonic()
        assert follow.stdout is not None
        line = json.loads(follow.stdout.readline())
        assert time.monotonic() - committed < 5.0  # the contract's second, five times over
        assert line["event"]["title"] == "E004"
    finally:
        follow.send_signal(2)  # SIGINT: a clean stop
        assert follow.wait(timeout=30) == 0, follow.stderr.read() if follow.stderr else ""


def test_an_offset_behind_retention_exits_1_naming_the_oldest_kept(
    calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    import asyncio

    from calbridge.store.sqlite import SqliteStore

    handle, config = _setup(calbridge_emulators, tmp_path, "google", 4)
    _cli(config, "sync")
    one = _lines(config, "--consumer", "slow", "--limit", "1")
    assert len(one) == 1

    async def prune() -> None:
        async with SqliteStore(tmp_path / "mirror.db") as store:
            assert await store.prune_changes(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)) == 4

    asyncio.run(prune())
    handle.create_single("late", NOW, NOW + dt.timedelta(hours=1))
    _cli(config, "sync")
    behind = _cli(config, "changes", "--consumer", "slow", code=1)
    oldest = _lines(config, "--after", "0")[0]["seq"]
    assert f"the oldest kept is {oldest}" in behind.stderr and behind.stdout == ""
    _cli(config, "changes", "--after", str(one[0]["seq"]), code=1)
    assert [x["event"]["title"] for x in _lines(config, "--after", "0")] == ["late"]
