"""SqliteStore: commits, cascades, mark-and-sweep, occurrences, the two views, the lock, persistence."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from calbridge.cursor import Cursor
from calbridge.errors import StoreBusy, StoreError
from calbridge.model import Delete, Event, EventKey, Kind, Status, Upsert, When, Window
from calbridge.provider import Quarantined
from calbridge.store import _schema
from calbridge.store.base import CalendarState, PendingSweep, Round, Store
from calbridge.store.sqlite import SqliteStore

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
A, CAL = "acct", "cal"


def ev(
    id: str,
    start: dt.datetime = T0,
    *,
    length: dt.timedelta = HOUR,
    kind: Kind = Kind.SINGLE,
    series_id: str | None = None,
    orig: dt.datetime | None = None,
    status: Status = Status.CONFIRMED,
    title: str = "t",
    cal: str = CAL,
) -> Event:
    return Event(
        provider="fake",
        account=A,
        calendar_id=cal,
        id=id,
        kind=kind,
        start=When.at(start, "UTC"),
        end=When.at(start + length, "UTC"),
        status=status,
        series_id=series_id,
        original_start=None if orig is None else When.at(orig, "UTC"),
        title=title,
    )


def day_event(id: str, first: dt.date, days: int = 1) -> Event:
    return Event(
        provider="fake",
        account=A,
        calendar_id=CAL,
        id=id,
        kind=Kind.SINGLE,
        start=When.on(first),
        end=When.on(first + dt.timedelta(days=days)),
    )


def occ(series: str, slot: dt.datetime, **kw: object) -> Event:
    return ev(f"{series}_{slot:%Y%m%dT%H%M%S}", slot, kind=Kind.OCCURRENCE, series_id=series, orig=slot, **kw)  # type: ignore[arg-type]


def state(mark: int = 1, **kw: object) -> CalendarState:
    return CalendarState(account=A, calendar_id=CAL, mark=mark, **kw)  # type: ignore[arg-type]


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def key(id: str) -> EventKey:
    return EventKey(account=A, calendar_id=CAL, id=id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "mirror.db") as s:
        yield s


def test_satisfies_protocol(tmp_path: Path) -> None:
    s: Store = SqliteStore(tmp_path / "x.db")
    assert repr(s) == f"SqliteStore({str(tmp_path / 'x.db')!r})"


async def test_upsert_and_noop_upsert(store: SqliteStore) -> None:
    a, b = ev("a"), ev("b", T0 + HOUR)
    created = [Upsert(event=a, created=True), Upsert(event=b, created=True)]
    assert await store.commit_page(state(), [Upsert(event=a), Upsert(event=b)]) == created
    b2 = attrs.evolve(b, title="renamed")
    applied = await store.commit_page(state(mark=2), [Upsert(event=a), Upsert(event=b2)])
    assert applied == [Upsert(event=b2, created=False)]
    assert await store.get_events(A, CAL, ["a", "b", "zz"]) == {"a": a, "b": b2}
    # The unchanged upsert still carried the new mark: nothing is left for a mark-2 sweep.
    assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (0, 2)
    assert await store.get_state(A, CAL) == state(mark=2)


async def test_duplicate_id_in_page_last_wins(store: SqliteStore) -> None:
    a1, a2 = ev("a", title="one"), ev("a", title="two")
    assert await store.commit_page(state(), [Upsert(event=a1), Upsert(event=a2)]) == [Upsert(event=a2, created=True)]
    assert (await store.get_events(A, CAL, ["a"]))["a"].title == "two"


async def test_delete_cascades_to_exceptions_and_occurrences(store: SqliteStore) -> None:
    series = ev("s", kind=Kind.SERIES)
    exc = ev("s_x", T0 + DAY + HOUR, kind=Kind.EXCEPTION, series_id="s", orig=T0 + DAY)
    other = ev("single")
    await store.commit_page(state(), [Upsert(event=series), Upsert(event=exc), Upsert(event=other)])
    window = Window(start=T0, end=T0 + 3 * DAY)
    await store.replace_occurrences(A, CAL, ["s"], window, [occ("s", T0), occ("s", T0 + 2 * DAY)])
    assert (await store.status())[0].occurrences == 2

    applied = await store.commit_page(state(), [Delete(key=key("s")), Delete(key=key("absent"))])
    # The series first, then everything it took with it (published so listeners' copies stay exact),
    # each carrying the row it removed.
    assert applied[0] == Delete(key=key("s"), previous=series)
    assert all(isinstance(c, Delete) for c in applied)
    assert sorted(c.key.id for c in applied[1:]) == sorted(["s_x", occ("s", T0).id, occ("s", T0 + 2 * DAY).id])
    previous = {c.key.id: c.previous for c in applied if isinstance(c, Delete)}
    assert previous["s_x"] == exc and previous[occ("s", T0).id] == occ("s", T0)
    assert await store.get_events(A, CAL, ["s", "s_x", "single"]) == {"single": other}
    assert (await store.status())[0].occurrences == 0
    assert ids(await store.query(window=window, expand=True)) == ["single"]


async def test_page_order_between_upsert_and_delete(store: SqliteStore) -> None:
    series = ev("s", kind=Kind.SERIES)
    exc = ev("s_x", T0 + DAY, kind=Kind.EXCEPTION, series_id="s", orig=T0 + DAY)
    await store.commit_page(state(), [Upsert(event=series), Upsert(event=exc), Delete(key=key("s"))])
    assert await store.get_events(A, CAL, ["s", "s_x"]) == {}
    await store.commit_page(state(), [Upsert(event=series), Delete(key=key("s")), Upsert(event=exc)])
    assert await store.get_events(A, CAL, ["s", "s_x"]) == {"s_x": exc}


async def test_failed_page_rolls_back_everything(store: SqliteStore) -> None:
    foreign = ev("f", cal="elsewhere")
    with pytest.raises(StoreError, match="elsewhere"):
        await store.commit_page(state(mark=3), [Upsert(event=ev("a")), Upsert(event=foreign)])
    assert await store.get_events(A, CAL, ["a"]) == {}
    assert await store.get_state(A, CAL) is None


async def test_sweep_without_scope_in_batches(store: SqliteStore) -> None:
    await store.commit_page(state(mark=1), [Upsert(event=ev(f"e{i}", T0 + i * HOUR)) for i in range(5)])
    await store.commit_page(state(mark=2), [Upsert(event=ev("e0"))])
    sweep = PendingSweep(mark=2)
    assert await store.sweep_count(A, CAL, sweep) == (4, 5)

    removed: list[str] = []
    for n in range(1, 4):
        saved = state(mark=2, sweep=attrs.evolve(sweep, candidates=n))
        batch = await store.sweep_batch(saved, sweep, limit=2)
        assert all(isinstance(c, Delete) for c in batch)
        removed += [c.key.id for c in batch if isinstance(c, Delete)]
        assert await store.get_state(A, CAL) == saved
    assert sorted(removed) == ["e1", "e2", "e3", "e4"]
    assert batch == []
    assert await store.sweep_count(A, CAL, sweep) == (0, 1)


async def test_sweep_scope_rules(store: SqliteStore) -> None:
    scope = Window(start=T0, end=T0 + 7 * DAY)
    rows = [
        ev("inside", T0 + DAY),
        ev("before", T0 - DAY),
        ev("ends_at_start", T0 - HOUR),  # [T0-1h, T0) does not overlap
        ev("straddles_start", T0 - HOUR, length=2 * HOUR),
        ev("zero_at_start", T0, length=dt.timedelta(0)),
        ev("zero_at_end", T0 + 7 * DAY, length=dt.timedelta(0)),
        ev("after", T0 + 8 * DAY),
        ev("series_before", T0 - 30 * DAY, kind=Kind.SERIES),
        ev("series_inside", T0 + DAY, kind=Kind.SERIES),
        ev("series_after", T0 + 9 * DAY, kind=Kind.SERIES),
    ]
    await store.commit_page(state(mark=1), [Upsert(event=e) for e in rows])
    await store.commit_page(state(mark=2), [Upsert(event=ev("fresh", T0 + 2 * DAY))])
    sweep = PendingSweep(mark=2, scope=scope)
    # Series are always in scope: every unlisted series is gone, whenever it began.
    assert await store.sweep_count(A, CAL, sweep) == (6, 11)
    removed = await store.sweep_batch(state(mark=2), sweep, limit=100)
    assert sorted(c.key.id for c in removed if isinstance(c, Delete)) == [
        "inside",
        "series_after",
        "series_before",
        "series_inside",
        "straddles_start",
        "zero_at_start",
    ]
    left = await store.get_events(A, CAL, [e.id for e in rows] + ["fresh"])
    assert sorted(left) == sorted(
        ["before", "ends_at_start", "zero_at_end", "after", "fresh"]
    )


async def test_sweep_of_series_cascades(store: SqliteStore) -> None:
    await store.commit_page(
        state(mark=1),
        [
            Upsert(event=ev("s", kind=Kind.SERIES)),
            Upsert(event=ev("s_x", T0 + DAY, kind=Kind.EXCEPTION, series_id="s", orig=T0 + DAY)),
        ],
    )
    removed = await store.sweep_batch(state(mark=2), PendingSweep(mark=2), limit=10)
    removed_ids = {c.key.id for c in removed if isinstance(c, Delete)}
    assert "s" in removed_ids and removed_ids <= {"s", "s_x"}
    assert await store.get_events(A, CAL, ["s", "s_x"]) == {}


async def test_replace_occurrences_effective_changes(store: SqliteStore) -> None:
    window = Window(start=T0, end=T0 + 3 * DAY)
    o1, o2, o3 = occ("s", T0), occ("s", T0 + DAY), occ("s", T0 + 2 * DAY)
    far = occ("s", T0 + 10 * DAY)
    other = occ("t", T0)
    first = await store.replace_occurrences(A, CAL, ["s", "t"], Window(start=T0, end=T0 + 11 * DAY), [o1, far, other])
    assert len(first) == 3
    applied = await store.replace_occurrences(A, CAL, ["s"], window, [o1, o2, o3])
    assert applied == [Upsert(event=o2, created=True), Upsert(event=o3, created=True)]
    o2b = attrs.evolve(o2, title="moved room")
    applied = await store.replace_occurrences(A, CAL, ["s"], window, [o1, o2b])
    assert applied == [Upsert(event=o2b, created=False), Delete(key=key(o3.id), previous=o3)]
    assert await store.replace_occurrences(A, CAL, ["s"], window, [o1, o2b]) == []
    everything = ids(await store.query(expand=True))
    assert sorted(everything) == sorted([o1.id, o2b.id, far.id, other.id])


async def test_instance_view_exception_wins_once(store: SqliteStore) -> None:
    window = Window(start=T0, end=T0 + 4 * DAY)
    slots = [T0 + i * DAY for i in range(4)]
    moved = ev("s_moved", slots[1] + 5 * HOUR, kind=Kind.EXCEPTION, series_id="s", orig=slots[1], title="moved")
    gone = ev("s_gone", slots[2], kind=Kind.EXCEPTION, series_id="s", orig=slots[2], status=Status.CANCELLED)
    # Moved out of the window: its slot inside the window must not reappear as an occurrence.
    away = ev("s_away", T0 + 30 * DAY, kind=Kind.EXCEPTION, series_id="s", orig=slots[3])
    other_cal = ev("s_other", slots[0], kind=Kind.EXCEPTION, series_id="s", orig=slots[0], cal="other")
    await store.commit_page(
        state(), [Upsert(event=e) for e in (ev("s", kind=Kind.SERIES), moved, gone, away, ev("lunch", slots[1]))]
    )
    await store.commit_page(CalendarState(account=A, calendar_id="other", mark=1), [Upsert(event=other_cal)])
    await store.replace_occurrences(A, CAL, ["s"], window, [occ("s", t) for t in slots])

    shown = await store.query(calendar_id=CAL, window=window, expand=True)
    assert ids(shown) == [occ("s", slots[0]).id, "lunch", "s_moved"]
    assert shown[2].start.utc() == slots[1] + 5 * HOUR

    with_cancelled = await store.query(calendar_id=CAL, window=window, expand=True, include_cancelled=True)
    assert ids(with_cancelled) == [occ("s", slots[0]).id, "lunch", "s_moved", "s_gone"]
    assert with_cancelled[3].status is Status.CANCELLED


async def test_series_view(store: SqliteStore) -> None:
    window = Window(start=T0, end=T0 + DAY)
    events = [
        ev("old_series", T0 - 100 * DAY, kind=Kind.SERIES),
        ev("late_series", T0 + 2 * DAY, kind=Kind.SERIES),
        ev("exc", T0 + HOUR, kind=Kind.EXCEPTION, series_id="old_series", orig=T0),
        ev("synced_occ", T0 + 2 * HOUR, kind=Kind.OCCURRENCE, series_id="old_series", orig=T0 + 2 * HOUR),
        ev("single", T0 + 3 * HOUR),
        ev("cancelled", T0 + 4 * HOUR, status=Status.CANCELLED),
        ev("yesterday", T0 - DAY),
    ]
    await store.commit_page(state(), [Upsert(event=e) for e in events])
    assert ids(await store.query(window=window)) == ["old_series", "exc", "single"]
    assert ids(await store.query(window=window, include_cancelled=True)) == ["old_series", "exc", "single", "cancelled"]
    assert ids(await store.query()) == ["old_series", "yesterday", "exc", "single", "late_series"]
    assert ids(await store.query(account="nobody")) == []
    assert await store.series_ids(A, CAL) == ["late_series", "old_series"]


async def test_all_day_overlap_and_sort(store: SqliteStore) -> None:
    day = T0.date()
    midnight = dt.datetime.combine(day, dt.time(), UTC)
    await store.commit_page(
        state(),
        [
            Upsert(event=day_event("allday", day)),
            Upsert(event=ev("b_at_midnight", midnight)),
            Upsert(event=ev("a_at_midnight", midnight)),
            Upsert(event=ev("late", midnight + 23 * HOUR)),
        ],
    )
    everything = ids(await store.query(expand=True))
    assert everything == ["a_at_midnight", "allday", "b_at_midnight", "late"]
    next_day = Window(start=midnight + DAY, end=midnight + 2 * DAY)
    assert ids(await store.query(window=next_day, expand=True)) == []
    last_hour = Window(start=midnight + 23 * HOUR + 30 * dt.timedelta(minutes=1), end=midnight + DAY)
    assert ids(await store.query(window=last_hour, expand=True)) == ["allday", "late"]
    day_before = Window(start=midnight - DAY, end=midnight)
    assert ids(await store.query(window=day_before)) == []


async def test_file_modes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.db"
    async with SqliteStore(path) as store:
        await store.commit_page(state(), [Upsert(event=ev("a"))])
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert p.exists()
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        async with store.sync_lock(wait=0):
            assert stat.S_IMODE(Path(f"{path}.lock").stat().st_mode) == 0o600


async def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="calbridge sync"):
        await SqliteStore(tmp_path / "none.db", create=False).open()
    assert not (tmp_path / "none.db").exists()


async def test_schema_version_and_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with SqliteStore(path):
        pass
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) == _schema.SCHEMA_VERSION >= 1
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreError, match="999"):
        await SqliteStore(path).open()


def test_migrations_apply_in_order(tmp_path: Path) -> None:
    n = len(_schema.MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert _schema.migrate(conn, "m", _schema.MIGRATIONS[:1]) == 1
    assert _schema.migrate(conn, "m", _schema.MIGRATIONS) == n == 2  # v1 → v2 on an existing file
    extra = (*_schema.MIGRATIONS, ("CREATE TABLE later (x INTEGER)", "INSERT INTO later VALUES (7)"))
    assert _schema.migrate(conn, "m", extra) == n + 1
    assert _schema.migrate(conn, "m", extra) == n + 1  # applied once
    assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)
    broken = (*extra, ("CREATE TABLE fine (x)", "NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        _schema.migrate(conn, "m", broken)
    assert conn.execute("SELECT value FROM meta").fetchone() == (str(n + 1),)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'fine'").fetchone() is None
    conn.close()


async def test_reopen_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    saved = CalendarState(
        account=A,
        calendar_id=CAL,
        cursor=Cursor(scheme="fake", version=2, state={"token": "abc", "page": [1, 2]}),
        round=Round.FULL,
        mark=7,
        sweep=PendingSweep(mark=7, scope=Window(start=T0, end=T0 + DAY), held=True, candidates=3, total=9),
        full_started=dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        expanded=Window(start=T0 - DAY, end=T0 + 30 * DAY),
    )
    events = [ev("s", kind=Kind.SERIES), day_event("d", T0.date()), ev("e", T0 + HOUR, title="caf\u00e9 \u4f1a\u8bae")]
    async with SqliteStore(path) as store:
        await store.commit_page(saved, [Upsert(event=e) for e in events])
        before = await store.query()
    async with SqliteStore(path, create=False) as store:
        assert await store.get_state(A, CAL) == saved
        assert await store.query() == before
        assert (await store.get_events(A, CAL, ["e"]))["e"] == events[2]
        assert (await store.status())[0].sweep_held is True


async def test_secrets(store: SqliteStore) -> None:
    assert await store.get_secret(A, "refresh_token") is None
    await store.set_secret(A, "refresh_token", "s3cr3t-one")
    await store.set_secret(A, "refresh_token", "s3cr3t-two")
    await store.set_secret("other", "refresh_token", "x")
    assert await store.get_secret(A, "refresh_token") == "s3cr3t-two"
    assert "s3cr3t" not in repr(store)


async def test_quarantine_recorded_and_cleared(store: SqliteStore) -> None:
    bad = [
        Quarantined(event_id="q1", error="bad start", payload="{}"),
        Quarantined(event_id=None, error="no id", payload="["),
    ]
    await store.commit_page(state(), [], bad)
    await store.commit_page(state(), [], bad)  # recorded once per id or payload
    listed = {k.id: err for k, err in await store.quarantined(A)}
    assert len(listed) == 2 and listed.pop("q1") == "bad start"
    (anonymous,) = listed
    assert anonymous.startswith("payload:") and listed[anonymous] == "no id"
    assert (await store.status())[0].quarantined == 2
    await store.commit_page(state(), [Upsert(event=ev("q1"))])
    assert [k.id for k, _ in await store.quarantined()] == [anonymous]
    assert await store.quarantined("nobody") == []


async def test_quarantine_outside_a_page_is_recorded_alone(store: SqliteStore) -> None:
    await store.commit_page(state(mark=1), [Upsert(event=ev("s", kind=Kind.SERIES))])
    await store.record_quarantined(A, CAL, [Quarantined(event_id="s", error="bad instance", payload="{}")], mark=2)
    assert [(k.id, err) for k, err in await store.quarantined(A)] == [("s", "bad instance")]
    assert await store.get_state(A, CAL) == state(mark=1)  # nothing else saved
    # Still on the server, just unreadable now: the stored copy is kept out of the sweep.
    assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (0, 1)


async def test_status_and_results(store: SqliteStore) -> None:
    t1, t2 = T0, T0 + HOUR
    await store.record_result(A, CAL, at=t1, error=None)
    await store.record_result(A, CAL, at=t2, error="TransientError: 503")
    await store.record_result(A, "unsynced", at=t2, error="NotFound")
    await store.commit_page(state(sweep=PendingSweep(mark=1, held=True)), [Upsert(event=ev("a"))])
    await store.replace_occurrences(A, CAL, ["s"], Window(start=T0, end=T0 + DAY), [occ("s", T0)])
    first, second = await store.status()
    assert (first.calendar_id, first.last_success, first.last_error, first.last_error_at) == (
        CAL,
        t1,
        "TransientError: 503",
        t2,
    )
    assert (first.events, first.occurrences, first.quarantined, first.sweep_held) == (1, 1, 0, True)
    assert (second.calendar_id, second.last_success, second.events, second.sweep_held) == ("unsynced", None, 0, False)


async def test_closed_store_refuses(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    await store.open()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError, match="not open"):
        await store.get_state(A, CAL)


async def test_concurrent_callers_are_serialized(store: SqliteStore) -> None:
    pages = [[Upsert(event=ev(f"p{p}_{i}", T0 + i * HOUR)) for i in range(50)] for p in range(8)]
    await asyncio.gather(*(store.commit_page(state(), page) for page in pages))
    assert len(await store.query()) == 400


_HOLDER = """
import asyncio, sys
from pathlib import Path
from calbridge.store.sqlite import SqliteStore

async def main():
    async with SqliteStore(Path(sys.argv[1])).sync_lock(wait=0):
        print("locked", flush=True)
        sys.stdin.read()

asyncio.run(main())
"""


async def test_sync_lock_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = SqliteStore(path)
        with pytest.raises(StoreBusy, match=rf"another calbridge sync \(pid {holder.pid}\) is using"):
            async with store.sync_lock(wait=0):
                pass
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            async with store.sync_lock(wait=0.3):
                pass
        assert 0.25 <= time.monotonic() - started < 2
        assert holder.stdin is not None
        holder.stdin.close()
        async with store.sync_lock(wait=10):
            assert Path(f"{path}.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait()
    async with store.sync_lock(wait=0):  # released on exit
        pass


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        await SqliteStore(path, create=False).open()


async def test_cancelled_caller_keeps_connection_serialized(store: SqliteStore) -> None:
    page = [Upsert(event=ev(f"c{i}", T0 + i * HOUR)) for i in range(3000)]
    task = asyncio.create_task(store.commit_page(state(), page))
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker thread finished the transaction before the lock was released: all or nothing.
    assert len(await store.query()) in (0, 3000)
    assert await store.commit_page(state(), [Upsert(event=ev("after"))]) == [Upsert(event=ev("after"), created=True)]
