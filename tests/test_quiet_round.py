"""A quiet round costs the engine two store calls per calendar: read the state, write the outcome.

The store is the real SQLite store behind a proxy that records each call; SQLite's own trace counts
the write transactions. A calendar whose cursor rotated with nothing in it (the fake's cursor follows
a global sequence, so a change elsewhere moves it) saves the new cursor with its outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calbridge.config import load_config
from calbridge.engine import SyncEngine
from calbridge.model import Kind
from calbridge.registry import default_registry
from calbridge.store.sqlite import SqliteStore

from .conftest import CANARY, NOW, FakeEnv, fake_event

pytestmark = pytest.mark.usefixtures("calbridge_test_providers")


class Counting:
    """The real store; every coroutine call is recorded as (method, calendar)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name in ("sync_lock", "path") or not callable(attr):
            return attr

        async def call(*args: Any, **kw: Any) -> Any:
            first = args[0] if args else None
            cal = getattr(first, "calendar_id", None) or (args[1] if len(args) > 1 else "")
            self.calls.append((name, str(cal)))
            return await attr(*args, **kw)

        return call


async def _sync(env: FakeEnv, clock: Callable[[], dt.datetime] = lambda: NOW) -> tuple[list[tuple[str, str]], int]:
    config = load_config(env.config, registry=default_registry)
    # SQLite-only: the write transactions are counted by SQLite's trace callback (BEGIN IMMEDIATE).
    async with SqliteStore(env.store) as store:
        writes: list[str] = []
        assert store._conn is not None
        store._conn.set_trace_callback(lambda sql: writes.append(sql) if sql == "BEGIN IMMEDIATE" else None)
        counting = Counting(store)
        async with SyncEngine(config, counting, clock=clock) as engine:  # type: ignore[arg-type]
            report = await engine.sync()
        assert report.ok, report
        return counting.calls, len(writes)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calbridge_test_providers: list[str]) -> FakeEnv:
    monkeypatch.setenv("FAKE_TOKEN", CANARY)
    env = FakeEnv(tmp_path, calendars=("cal1", "cal2"))
    for cal in ("cal1", "cal2"):
        for i in range(4):
            env.server.put(cal, fake_event(i))
        env.server.put(cal, fake_event("s", kind=Kind.SERIES, recurrence=("RRULE:FREQ=DAILY;COUNT=5",)))
    return env


async def test_a_quiet_round_is_one_read_and_one_write_per_calendar(env: FakeEnv) -> None:
    first, _ = await _sync(env)
    assert ("replace_occurrences", "cal1") in first  # the series was expanded

    calls, writes = await _sync(env)
    for cal in ("cal1", "cal2"):
        assert [name for name, c in calls if c == cal] == ["round_start", "record_result"]
    assert writes == 2  # one write transaction per calendar: no empty page transaction


async def test_a_rotated_cursor_is_saved_with_the_outcome(env: FakeEnv) -> None:
    await _sync(env)
    env.server.put("cal2", fake_event(9))  # the sequence moves: cal1's next cursor differs, with no change
    calls, _ = await _sync(env)
    assert [name for name, c in calls if c == "cal1"] == ["round_start", "record_result"]
    assert ("commit_page", "cal2") in calls
    async with SqliteStore(env.store) as store:
        saved = await store.get_state("fake", "cal1")
        assert saved is not None and saved.cursor is not None
        assert saved.cursor.state["seq"] == env.server.read()["seq"]
    calls, _ = await _sync(env)  # and the next round starts from it: quiet again
    assert [name for name, c in calls if c == "cal1"] == ["round_start", "record_result"]


async def test_a_moved_window_still_expands_after_a_quiet_round(env: FakeEnv) -> None:
    await _sync(env)
    calls, _ = await _sync(env, clock=lambda: NOW + dt.timedelta(days=1))
    # The pass runs (the series are read, the window shown anew), though with slack no series is due yet.
    assert ("series_ids", "cal1") in calls and ("prune_occurrences", "cal1") in calls
