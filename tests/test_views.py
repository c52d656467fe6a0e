"""`events` through the CLI: every line validates, the instance view follows the contract's rules,
expansion follows the window, secrets never show, and a cancelled sync leaves a resumable store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import jsonschema

from calbridge.config import load_config
from calbridge.engine import SyncEngine
from calbridge.export import event_schema
from calbridge.model import Kind, Status, When
from calbridge.registry import default_registry

from .conftest import CANARY, NOW, FakeEnv, fake_event

NY = "America/New_York"


def weekly_series(env: FakeEnv) -> None:
    """Weekly Monday 09:00 New York from 2026-02-23, ten times: crosses the 2026-03-08 DST change."""
    first = dt.datetime(2026, 2, 23, 14, 0, tzinfo=dt.UTC)  # 09:00 EST
    series = fake_event("wk", start=first, kind=Kind.SERIES, recurrence=("RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO",))
    series["start"]["timezone"] = series["end"]["timezone"] = NY
    env.server.put("cal1", series)
    moved = fake_event(
        "wk_moved",
        start=dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC),
        kind=Kind.EXCEPTION,
        series_id="wk",
        original_start=When.at(dt.datetime(2026, 3, 9, 13, 0, tzinfo=dt.UTC), NY),
    )
    cancelled = fake_event(
        "wk_cancel",
        start=dt.datetime(2026, 3, 16, 13, 0, tzinfo=dt.UTC),
        kind=Kind.EXCEPTION,
        series_id="wk",
        status=Status.CANCELLED,
        original_start=When.at(dt.datetime(2026, 3, 16, 13, 0, tzinfo=dt.UTC), NY),
    )
    env.server.put("cal1", moved)
    env.server.put("cal1", cancelled)
    env.server.put(
        "cal1", fake_event("allday", start=NOW) | {"start": {"date": "2026-03-03"}, "end": {"date": "2026-03-05"}}
    )


def lines(env: FakeEnv, *args: str) -> list[dict[str, object]]:
    out = env.cli("events", "--format", "jsonl", *args, check=True).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    for row in rows:
        jsonschema.validate(row, event_schema())
    return rows


def test_instance_view_follows_the_contract(store_env: FakeEnv) -> None:
    weekly_series(store_env)
    store_env.cli("sync", check=True)
    rows = lines(store_env, "--expand", "--from", "2026-02-01", "--to", "2026-06-01")
    got = [(r["kind"], r["start"]) for r in rows]  # type: ignore[index]
    want_occ = ["2026-02-23T14:00:00Z", "2026-03-02T14:00:00Z", "2026-03-23T13:00:00Z", "2026-03-30T13:00:00Z"]
    want_occ += ["2026-04-06T13:00:00Z", "2026-04-13T13:00:00Z", "2026-04-20T13:00:00Z", "2026-04-27T13:00:00Z"]
    occ = [s["datetime"] for k, s in got if k == "occurrence"]  # type: ignore[index]
    assert occ == want_occ  # DST-correct; moved and cancelled slots not repeated
    assert ("exception", {"datetime": "2026-03-10T18:00:00Z", "timezone": "Europe/London"}) in got
    assert ("single", {"date": "2026-03-03"}) in got
    assert all(k != "series" for k, _ in got)
    starts = [(r["start"].get("datetime") or r["start"]["date"] + "T00:00:00Z", r["id"]) for r in rows]  # type: ignore[union-attr,index]
    assert starts == sorted(starts)
    with_cancelled = lines(store_env, "--expand", "--include-cancelled", "--from", "2026-02-01", "--to", "2026-06-01")
    assert [r["id"] for r in with_cancelled if r["status"] == "cancelled"] == ["wk_cancel"]
    series_view = lines(store_env)
    assert sorted(r["kind"] for r in series_view) == ["exception", "series", "single"]  # type: ignore[type-var]


def test_occurrence_entering_the_window_appears(store_env: FakeEnv) -> None:
    start = NOW + dt.timedelta(days=60)
    series = fake_event("daily", start=start, kind=Kind.SERIES, recurrence=("RRULE:FREQ=WEEKLY;COUNT=40",))
    store_env.server.put("cal1", series)
    store_env.cli("sync", check=True)
    before = [r["id"] for r in lines(store_env, "--expand") if r["kind"] == "occurrence"]
    # 90 days of future window from NOW: weeks 60..90 → 5 occurrences.
    assert len(before) == 5
    later = store_env.env() | {"CALBRIDGE_NOW": "2026-03-21T12:00:00Z"}
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(store_env.config), "sync"],
        env=later,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(store_env.config), "events", "--expand"],
        env=later,
        capture_output=True,
        text=True,
    )
    after = [json.loads(x)["id"] for x in proc.stdout.splitlines()]
    assert set(before) < set(after) and len(after) == 8


def test_secrets_never_appear(store_env: FakeEnv) -> None:
    store_env.server.put("cal1", fake_event(1))
    store_env.server.add_fault("auth")
    for args in (("-v", "sync"), ("status",), ("check-config",), ("events",), ("-v", "sync", "--full")):
        proc = store_env.cli(*args)  # FakeEnv.cli asserts the canary is absent from stdout and stderr
        assert proc.returncode in (0, 1)
    cfg = load_config(store_env.config, registry=default_registry)
    assert CANARY not in repr(cfg)


async def test_cancelled_sync_leaves_a_resumable_store(store_env: FakeEnv) -> None:
    for i in range(30):
        store_env.server.put("cal1", fake_event(i))
    store_env.server.add_fault("rate_limit", retry_after=5)
    config = load_config(store_env.config, registry=default_registry)
    async with store_env.open() as store, SyncEngine(config, store, clock=lambda: NOW) as engine:
        task = asyncio.create_task(engine.sync())
        await asyncio.sleep(0.3)  # inside the Retry-After wait
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert task.cancelled()
    store_env.cli("sync", check=True)  # the lock was released; resumes cleanly
    assert [r["id"] for r in lines(store_env)] == sorted(store_env.server.events("cal1"))
