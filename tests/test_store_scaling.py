"""The SQLite store's costs follow the rows a write touches, not the mirror (issue 11).

Two kinds of shape, no clock: every statement the hot writes run is checked with ``EXPLAIN QUERY
PLAN`` (no full scan of ``events``/``occurrences``, and no search that only narrows to the calendar,
which is what ``(id = ? OR series_id = ?)`` did), and SQLite's own count of virtual-machine steps
(``set_progress_handler``) for a delete, a re-listed page and a sweep stays flat as the mirror grows.
Default profile: mirrors of 1k and 3k rows; ``--slow``: 30k and 100k (the sizes of the issue).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from calbridge.model import Event, Kind
from calbridge.state import PendingSweep
from calbridge.store.sqlite import SqliteStore
from calbridge.testing._store_build import DAY, HOUR, T0, dels, ev, exc, occ, series, state, ups, window

# Statements allowed to read a whole calendar's index entries, each once per rare event, with why.
WHOLE_CALENDAR = (
    "SELECT count(*) FROM events WHERE account = ",  # a sweep's total, for the mass-delete guard: covering
    "SELECT DISTINCT series_id FROM occurrences",  # a prune (the window moved): covering, one entry a row
    "SELECT 1 FROM occurrences WHERE account = ",  # LIMIT 1: does the calendar hold expanded rows at all
    "SELECT series_id FROM dirty_series",  # the dirty table holds only what is owed
    "DELETE FROM dirty_series",  # idem
    "SELECT account, calendar_id, count(*)",  # ``status``: counts every calendar by design
)
_TABLE = r"(?:events|occurrences|e|o)"
_FULL_SCAN = re.compile(rf"^SCAN {_TABLE}\b")
# A partial index holds only the rows its query wants (the series masters), so its prefix is no scan.
_PARTIAL = "INDEX events_series_masters "
_PREFIX_ONLY = re.compile(rf"^SEARCH {_TABLE} USING (?!{_PARTIAL}).*\(account=\? AND calendar_id=\?\)$")


def _conn(store: SqliteStore) -> sqlite3.Connection:
    conn = store._conn
    assert conn is not None
    return conn


@contextmanager
def traced(store: SqliteStore) -> Iterator[list[str]]:
    """Every statement the store runs meanwhile (with its values bound)."""
    seen: list[str] = []
    conn = _conn(store)
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def _mirror(n: int) -> list[Event]:
    """``n`` rows: singles and, one in 20, a series with an exception."""
    out: list[Event] = []
    for i in range(n):
        start = T0 + i * HOUR
        if i % 20 == 0:
            out.append(series(f"s{i}", start))
        elif i % 20 == 1:
            out.append(exc(f"s{i - 1}", T0 + (i - 1) * HOUR + DAY))
        else:
            out.append(ev(f"e{i}", start))
    return out


async def _fill(store: SqliteStore, events: list[Event], mark: int = 1) -> None:
    for i in range(0, len(events), 500):
        await store.commit_page(state(mark), ups(*events[i : i + 500]))


async def _expand(store: SqliteStore, events: list[Event], days: int = 5) -> None:
    w = window(400, T0 - DAY)
    for e in events:
        if e.kind is Kind.SERIES:
            slots = [e.start.utc() + d * DAY for d in range(days)]
            await store.replace_occurrences("acct", "cal", [e.id], w, [occ(e.id, s) for s in slots])


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]


async def test_hot_statements_use_the_index_that_fits(tmp_path: Path) -> None:
    events = _mirror(200)
    async with SqliteStore(tmp_path / "m.db") as store:
        await _fill(store, events)
        await _expand(store, events)
        with traced(store) as statements:
            # A single, a series and an exception go; a single changes, an exception arrives.
            await store.commit_page(state(1), dels("e5", "s20", "s40_x20260304T0400"))
            await store.commit_page(state(1), ups(ev("e7", T0, title="moved"), exc("s60", T0 + 60 * HOUR + 2 * DAY)))
            await _expand(store, [e for e in events if e.id == "s80"], days=3)  # two occurrences fewer
            await store.prune_occurrences("acct", "cal", ["s100", "s120"], window(10, T0 + 90 * HOUR))
            await store.series_ids("acct", "cal")
            await store.dirty_series("acct", "cal")
            await store.exceptions_of("acct", "cal", ["s60"])
            await store.get_events("acct", "cal", ["e7", "e9"])
            await _fill(store, events[: len(events) // 2], mark=2)  # a re-listing that finds half
            sweep = PendingSweep(mark=2, scope=window(30, T0))
            await store.sweep_count("acct", "cal", sweep)
            while await store.sweep_batch(state(2, sweep=sweep), sweep, limit=20):
                pass
            await store.record_result("acct", "cal", at=T0, error=None)
            await store.get_state("acct", "cal")
        conn = _conn(store)
        bad: list[str] = []
        checked = 0
        for sql in dict.fromkeys(statements):
            if not sql.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE", "INSERT")):
                continue
            if sql.startswith(WHOLE_CALENDAR):
                continue
            checked += 1
            for line in _plan(conn, sql):
                if _FULL_SCAN.search(line) or _PREFIX_ONLY.search(line):
                    bad.append(f"{line}\n    in {sql[:300]}")
        assert checked > 20  # the trace saw the writes (it did not silently record nothing)
        assert not bad, "statements that read more than their rows:\n" + "\n".join(bad)


def _intended(conn: sqlite3.Connection, sql: str) -> str:
    return "\n".join(_plan(conn, sql))


async def test_named_plans(tmp_path: Path) -> None:
    """The statements the issue named, pinned to the index each should use."""
    async with SqliteStore(tmp_path / "m.db") as store:
        conn = _conn(store)
        cases = {
            "DELETE FROM events WHERE account = 'a' AND calendar_id = 'c' AND series_id = 's'": "events_series",
            "SELECT id FROM events WHERE account = 'a' AND calendar_id = 'c' AND mark < 2 LIMIT 10": "events_mark",
            "SELECT id FROM events WHERE account = 'a' AND calendar_id = 'c' AND kind = 'series'"
            " AND status != 'cancelled' ORDER BY id": "events_series_masters",
        }
        for sql, index in cases.items():
            assert f"USING INDEX {index}" in _intended(conn, sql), sql
        # replace_occurrences reads the series' own occurrences, not the window's.
        with traced(store) as statements:
            await store.replace_occurrences("acct", "cal", ["s"], window(3), [occ("s", T0)])
        current = next(s for s in statements if s.startswith("SELECT o.id FROM json_each"))
        assert "occurrences_series (account=? AND calendar_id=? AND series_id=?)" in _intended(conn, current)


class Steps:
    """SQLite virtual-machine steps (in tens) a store spends in a call: a cost with no clock."""

    def __init__(self, store: SqliteStore) -> None:
        self.count = 0
        self._conn = _conn(store)

    async def __call__(self, call: Callable[[], Awaitable[object]]) -> int:
        def tick() -> int:
            self.count += 1
            return 0

        self.count = 0
        self._conn.set_progress_handler(tick, 10)
        try:
            await call()
        finally:
            self._conn.set_progress_handler(None, 0)
        return self.count


async def _costs(tmp_path: Path, n: int) -> dict[str, float]:
    events = _mirror(n)
    async with SqliteStore(tmp_path / f"m{n}.db") as store:
        await _fill(store, events)
        await _expand(store, events)
        steps = Steps(store)
        out: dict[str, float] = {}
        out["one delete"] = await steps(lambda: store.commit_page(state(1), dels(f"e{n - 3}")))
        out["series delete"] = await steps(lambda: store.commit_page(state(1), dels(f"s{n - 20}")))
        out["replace one series"] = await steps(
            lambda: store.replace_occurrences("acct", "cal", ["s0"], window(400, T0 - DAY), [occ("s0", T0)])
        )
        # A re-listing (new mark) of the first 500 rows: one page of it, as a first listing's page.
        first = await steps(lambda: store.commit_page(state(2), ups(*events[:500])))
        out["re-listed page"] = first
        # The sweep of what the re-listing did not find (all but those 500), per row removed.
        sweep = PendingSweep(mark=2)
        removed = 0

        async def sweep_all() -> None:
            nonlocal removed
            while batch := await store.sweep_batch(state(2, sweep=sweep), sweep, limit=200):
                removed += len(batch)

        out["sweep per row"] = await steps(sweep_all) / max(1, removed)
    return out


async def test_costs_do_not_grow_with_the_mirror(tmp_path: Path, calbridge_slow: bool) -> None:
    small, large = (30_000, 100_000) if calbridge_slow else (1_000, 3_000)
    a, b = await _costs(tmp_path, small), await _costs(tmp_path, large)
    grown = {k: round(b[k] / max(a[k], 1), 2) for k in a}
    # 3x the mirror: a cost that follows the rows stays near 1x; one that reads the calendar is ~3x.
    assert all(g < 1.6 for g in grown.values()), (grown, a, b)


async def test_the_views_come_in_start_order_from_an_index(tmp_path: Path) -> None:
    """``events --format jsonl`` streams: neither view sorts the whole mirror before its first row (a
    sort of the rows sharing a start, "RIGHT PART OF ORDER BY", is all that is left)."""
    events = _mirror(100)
    async with SqliteStore(tmp_path / "m.db") as store:
        await _fill(store, events)
        await _expand(store, events)
        conn = _conn(store)
        views = ({}, {"account": "acct"}, {"account": "acct", "calendar_id": "cal"}, {"window": window(3)})
        for kw in (*views, {"include_cancelled": True}):
            for expand in (False, True):
                with traced(store) as statements:
                    first = [b async for b in store.query_batches(expand=expand, batch=10, **kw)][0]  # type: ignore[arg-type]
                assert len(first) == 10
                (sql,) = [s for s in statements if s.startswith("SELECT json")]
                plan = _plan(conn, sql)
                assert not any("TEMP B-TREE FOR ORDER BY" in line for line in plan), (kw, expand, plan)
