"""The embedded SQLite implementation of :class:`~calbridge.store.base.Store`.

One connection (WAL, ``synchronous=NORMAL``) runs every statement in a worker thread through
``asyncio.to_thread``, serialized by an :class:`asyncio.Lock`. An event is stored as its exported
JSON (:func:`~calbridge.export.event_to_json`) next to the columns queries filter on; instants are
Unix seconds in UTC. ``sync_lock`` is an ``flock`` on ``<path>.lock``, so it holds across processes::

    async with SqliteStore(Path("calbridge.db")) as store, store.sync_lock(wait=0):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, Self, TypeVar

from ..errors import StoreBusy, StoreError
from ..model import UTC, Change, Delete, Event, EventKey, Kind, Upsert, Window
from ..provider import Quarantined
from . import _schema
from .base import CalendarState, CalendarStatus, PendingSweep

_P = ParamSpec("_P")
_T = TypeVar("_T")
_POLL = 0.1


def _check(account: str, calendar_id: str, key: Event | EventKey) -> None:
    # A row filed under another calendar would escape that calendar's mark-and-sweep forever.
    if (key.account, key.calendar_id) != (account, calendar_id):
        raise StoreError(f"event {key.id} of {key.account}/{key.calendar_id} given for {account}/{calendar_id}")


def _mark_dirty(conn: sqlite3.Connection, account: str, calendar_id: str, series_ids: set[str]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO dirty_series (account, calendar_id, series_id) VALUES (?, ?, ?)",
        [(account, calendar_id, sid) for sid in series_ids],
    )


def _delete_cascade(conn: sqlite3.Connection, account: str, calendar_id: str, event_id: str) -> list[str]:
    """Delete an event with its exceptions and occurrences; returns every id removed, its own first."""
    args = (account, calendar_id, event_id)
    rows = conn.execute(
        "SELECT id, series_id FROM events WHERE account = ? AND calendar_id = ? AND (id = ? OR series_id = ?)"
        " ORDER BY id != ?",
        (*args, event_id, event_id),
    ).fetchall()
    occ = conn.execute(
        "SELECT id FROM occurrences WHERE account = ? AND calendar_id = ? AND series_id = ?", args
    ).fetchall()
    if not rows and not occ:
        return []
    conn.execute(
        "DELETE FROM events WHERE account = ? AND calendar_id = ? AND (id = ? OR series_id = ?)", (*args, event_id)
    )
    conn.execute("DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND series_id = ?", args)
    conn.execute("DELETE FROM dirty_series WHERE account = ? AND calendar_id = ? AND series_id = ?", args)
    if rows and rows[0][0] == event_id and rows[0][1]:
        # A deleted exception gives its slot back to the series: expand it again.
        _mark_dirty(conn, account, calendar_id, {rows[0][1]})
    return [r[0] for r in rows] + [r[0] for r in occ]


def _sweep_filter(sweep: PendingSweep) -> tuple[str, tuple[int, ...]]:
    """SQL condition (and its arguments) for the rows of a calendar that ``sweep`` removes."""
    if sweep.scope is None:
        return "mark < ?", (sweep.mark,)
    s, e = _schema.ts(sweep.scope.start), _schema.ts(sweep.scope.end)
    # Series are always in scope: Feishu's anchor_time lists every series whatever its age, and
    # Google's timeMin lists every series with an instance after it; one not listed is gone (or
    # ended before the history floor, which a fresh full sync would not hold either).
    cond = f"mark < ? AND CASE WHEN kind = 'series' THEN 1 ELSE {_schema.OVERLAP} END"
    return cond, (sweep.mark, e, s, s)


class SqliteStore:
    """The mirror in one SQLite file; see the module docstring.

    Args:
        path: the database file; ``<path>.lock`` next to it is the sync lock.
        create: create the file (mode 0600) when missing; otherwise opening a missing file fails.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self._path = Path(path)
        self._create = create
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open (creating and migrating as needed).

        Raises:
            StoreError: no file and ``create`` is False, not a calbridge store, or a newer schema.
        """
        async with self._lock:
            if self._conn is None:
                self._conn = await asyncio.to_thread(self._connect)

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await asyncio.to_thread(conn.close)

    def _connect(self) -> sqlite3.Connection:
        path = self._path
        if not path.exists():
            if not self._create:
                raise StoreError(f"no store at {path}: run `calbridge sync` first")
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                # SQLite gives -wal and -shm the mode of the database file.
                os.chmod(path, 0o600)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            # Only takes effect on a new file; rows of 1-3 KB pack badly into the default 4 KiB pages.
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _schema.migrate(conn, str(path))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def _run(
        self, fn: Callable[Concatenate[sqlite3.Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        async with self._lock:
            if self._conn is None:
                raise StoreError(f"store {self._path} is not open")
            task = asyncio.ensure_future(asyncio.to_thread(fn, self._conn, *args, **kwargs))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                # The thread cannot be stopped: keep the connection locked until it is done with it.
                while not task.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([task])
                if not task.cancelled():
                    task.exception()
                raise
            except sqlite3.Error as exc:
                raise StoreError(f"store {self._path}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def sync_lock(self, *, wait: float | None) -> AsyncIterator[None]:
        """Hold an exclusive ``flock`` on ``<path>.lock`` while syncing.

        Raises:
            StoreBusy: another process held it for ``wait`` seconds (None: wait forever).
        """
        lock_path = self._path.with_name(self._path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            loop = asyncio.get_running_loop()
            deadline = None if wait is None else loop.time() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and loop.time() >= deadline:
                        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                        raise StoreBusy(f"another calbridge sync (pid {holder}) is using {self._path}") from None
                    await asyncio.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - loop.time())))
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    async def get_state(self, account: str, calendar_id: str) -> CalendarState | None:
        """The saved state of a calendar, None when never saved."""
        return await self._run(_schema.get_state, account, calendar_id)

    async def save_state(self, state: CalendarState) -> None:
        """Save ``state`` alone."""
        await self._run(_transactional(_schema.save_state), state)

    async def commit_page(
        self, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined] = ()
    ) -> list[Change]:
        """Apply a page and save ``state`` in one transaction; returns the effective changes."""
        return await self._run(_commit_page, state, changes, quarantined)

    async def sweep_count(self, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
        """(rows ``sweep`` would remove, rows the calendar holds in ``events``)."""
        return await self._run(_sweep_count, account, calendar_id, sweep)

    async def sweep_batch(self, state: CalendarState, sweep: PendingSweep, *, limit: int = 1000) -> list[Change]:
        """Delete up to ``limit`` swept rows (cascading) and save ``state``; returns the deletes."""
        return await self._run(_sweep_batch, state, sweep, limit)

    async def get_events(self, account: str, calendar_id: str, ids: Sequence[str]) -> dict[str, Event]:
        """The stored ``events`` rows among ``ids``."""
        return await self._run(_schema.get_events, account, calendar_id, ids)

    async def series_ids(self, account: str, calendar_id: str) -> list[str]:
        """Ids of the calendar's series masters that are not cancelled."""
        return await self._run(_schema.series_ids, account, calendar_id)

    async def replace_occurrences(
        self, account: str, calendar_id: str, series_ids: Sequence[str], window: Window, occurrences: Sequence[Event]
    ) -> list[Change]:
        """Make ``occurrences`` the stored occurrences of ``series_ids`` overlapping ``window``."""
        return await self._run(_replace_occurrences, account, calendar_id, series_ids, window, occurrences)

    async def exceptions_of(self, account: str, calendar_id: str, series_ids: Sequence[str]) -> list[Event]:
        return await self._run(_schema.exceptions_of, account, calendar_id, series_ids)

    async def dirty_series(self, account: str, calendar_id: str) -> list[str]:
        return await self._run(_schema.dirty_series, account, calendar_id)

    async def prune_occurrences(
        self, account: str, calendar_id: str, live_series: Sequence[str], window: Window
    ) -> list[Change]:
        return await self._run(_prune_occurrences, account, calendar_id, live_series, window)

    async def query(
        self,
        *,
        account: str | None = None,
        calendar_id: str | None = None,
        window: Window | None = None,
        expand: bool = False,
        include_cancelled: bool = False,
    ) -> list[Event]:
        """The series view or (``expand``) the instance view, sorted by UTC start then id."""
        return await self._run(_schema.query, account, calendar_id, window, expand, include_cancelled)

    async def record_result(self, account: str, calendar_id: str, *, at: dt.datetime, error: str | None) -> None:
        """Record a round's outcome; a success keeps the last error (and its time) for ``status``."""
        await self._run(_transactional(_schema.record_result), account, calendar_id, at, error)

    async def status(self) -> list[CalendarStatus]:
        """One entry per calendar with a saved state or a recorded result."""
        return await self._run(_schema.status)

    async def quarantined(self, account: str | None = None) -> list[tuple[EventKey, str]]:
        """Quarantined payloads as (key, error); a payload without an id is keyed ``payload:<digest>``."""
        return await self._run(_schema.quarantined, account)

    async def get_secret(self, account: str, name: str) -> str | None:
        """A stored secret, None when absent."""
        return await self._run(_schema.get_secret, account, name)

    async def set_secret(self, account: str, name: str, value: str) -> None:
        """Store (replace) a secret."""
        await self._run(_transactional(_schema.set_secret), account, name, value)


def _transactional(
    fn: Callable[Concatenate[sqlite3.Connection, _P], None],
) -> Callable[Concatenate[sqlite3.Connection, _P], None]:
    def run(conn: sqlite3.Connection, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        with _schema.transaction(conn):
            fn(conn, *args, **kwargs)

    return run


def _upsert_run(
    conn: sqlite3.Connection, state: CalendarState, run: dict[str, tuple[Upsert, _schema.Row]]
) -> list[Change]:
    acct, cal, mark = state.account, state.calendar_id, state.mark
    stored = {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            f"SELECT id, hash, mark, kind FROM events WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
            (acct, cal, json.dumps(list(run))),
        )
    }
    out: list[Change] = []
    rows: list[tuple[object, ...]] = []
    remark: list[tuple[int, str, str, str]] = []
    dirty: set[str] = set()
    for event_id, (change, row) in run.items():
        old = stored.get(event_id)
        if old is None or old[0] != row[_schema.HASH]:
            rows.append((*row, mark))
            out.append(change)
            ev = change.event
            if ev.kind is Kind.SERIES or (old is not None and old[2] == Kind.SERIES.value):
                dirty.add(ev.id)  # a changed series, or one that stopped being a series
            elif ev.series_id is not None:
                dirty.add(ev.series_id)
        elif old[1] != mark:
            remark.append((mark, acct, cal, event_id))
    conn.executemany(_schema.UPSERT_EVENT, rows)
    conn.executemany("UPDATE events SET mark = ? WHERE account = ? AND calendar_id = ? AND id = ?", remark)
    _mark_dirty(conn, acct, cal, dirty)
    return out


def _quarantine_row(account: str, calendar_id: str, q: Quarantined, at: str) -> tuple[str | None, ...]:
    qkey = q.event_id or "payload:" + hashlib.sha256(q.payload.encode()).hexdigest()[:16]
    return (account, calendar_id, qkey, q.event_id, q.error, q.payload, at)


def _commit_page(
    conn: sqlite3.Connection, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined]
) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    out: list[Change] = []
    seen: list[str] = []
    with _schema.transaction(conn):
        run: dict[str, tuple[Upsert, _schema.Row]] = {}
        for change in changes:
            if isinstance(change, Upsert):
                _check(acct, cal, change.event)
                run.pop(change.event.id, None)  # the last upsert of an id wins, in its position
                run[change.event.id] = (change, _schema.encode_row(change.event))
                seen.append(change.event.id)
                continue
            _check(acct, cal, change.key)
            if run:  # a delete may cascade onto an exception upserted earlier in the page
                out += _upsert_run(conn, state, run)
                run = {}
            removed = _delete_cascade(conn, acct, cal, change.key.id)
            if removed:
                out.append(change)
                out += [Delete(key=EventKey(account=acct, calendar_id=cal, id=i)) for i in removed[1:]]
            seen.append(change.key.id)
        if run:
            out += _upsert_run(conn, state, run)
        if seen:
            conn.execute(
                "DELETE FROM quarantine WHERE account = ? AND calendar_id = ? AND qkey IN"
                " (SELECT value FROM json_each(?))",
                (acct, cal, json.dumps(seen)),
            )
        now = dt.datetime.now(UTC).isoformat()
        conn.executemany(
            "INSERT INTO quarantine (account, calendar_id, qkey, event_id, error, payload, at, mark)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, calendar_id, qkey) DO UPDATE SET"
            " event_id = excluded.event_id, error = excluded.error, payload = excluded.payload, at = excluded.at,"
            " mark = excluded.mark",
            [(*_quarantine_row(acct, cal, q, now), state.mark) for q in quarantined],
        )
        bad_ids = [q.event_id for q in quarantined if q.event_id]
        if bad_ids:
            # Still on the server, just unreadable now: keep the last good copy out of the sweep.
            conn.execute(
                f"UPDATE events SET mark = ? WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
                (state.mark, acct, cal, json.dumps(bad_ids)),
            )
        _schema.save_state(conn, state)
    return out


def _sweep_count(conn: sqlite3.Connection, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
    cond, args = _sweep_filter(sweep)
    row = conn.execute(
        f"SELECT coalesce(sum({cond}), 0), count(*) FROM events WHERE account = ? AND calendar_id = ?",
        (*args, account, calendar_id),
    ).fetchone()
    return int(row[0]), int(row[1])


def _sweep_batch(conn: sqlite3.Connection, state: CalendarState, sweep: PendingSweep, limit: int) -> list[Change]:
    acct, cal = state.account, state.calendar_id
    cond, args = _sweep_filter(sweep)
    out: list[Change] = []
    with _schema.transaction(conn):
        ids = conn.execute(
            f"SELECT id FROM events WHERE account = ? AND calendar_id = ? AND {cond} LIMIT ?",
            (acct, cal, *args, limit),
        ).fetchall()
        for (event_id,) in ids:
            # An earlier series in the batch may already have taken this exception with it.
            for removed in _delete_cascade(conn, acct, cal, event_id):
                out.append(Delete(key=EventKey(account=acct, calendar_id=cal, id=removed)))
        if not ids:  # the sweep is complete: payloads the listing did not return again are gone too
            conn.execute(
                "DELETE FROM quarantine WHERE account = ? AND calendar_id = ? AND mark < ?", (acct, cal, sweep.mark)
            )
        _schema.save_state(conn, state)
    return out


def _replace_occurrences(
    conn: sqlite3.Connection,
    account: str,
    calendar_id: str,
    series_ids: Sequence[str],
    window: Window,
    occurrences: Sequence[Event],
) -> list[Change]:
    new: dict[str, tuple[Event, _schema.Row]] = {}
    for o in occurrences:
        _check(account, calendar_id, o)
        new[o.id] = (o, _schema.encode_row(o))
    out: list[Change] = []
    with _schema.transaction(conn):
        current = conn.execute(
            "SELECT id FROM occurrences WHERE account = ? AND calendar_id = ?"
            f" AND series_id IN (SELECT value FROM json_each(?)) AND {_schema.OVERLAP}",
            (account, calendar_id, json.dumps(list(series_ids)), *_schema.overlap_args(window)),
        ).fetchall()
        gone = [(account, calendar_id, r[0]) for r in current if r[0] not in new]
        conn.executemany("DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND id = ?", gone)
        out += [Delete(key=EventKey(account=account, calendar_id=calendar_id, id=g[2])) for g in gone]
        stored = dict(
            conn.execute(
                f"SELECT id, hash FROM occurrences WHERE account = ? AND calendar_id = ? AND {_schema.IN_IDS}",
                (account, calendar_id, json.dumps(list(new))),
            ).fetchall()
        )
        changed = [(o, row) for o, row in new.values() if stored.get(o.id) != row[_schema.HASH]]
        conn.executemany(_schema.UPSERT_OCCURRENCE, [row for _, row in changed])
        out += [Upsert(event=o) for o, _ in changed]
        conn.executemany(
            "DELETE FROM dirty_series WHERE account = ? AND calendar_id = ? AND series_id = ?",
            [(account, calendar_id, sid) for sid in series_ids],
        )
    return out


def _prune_occurrences(
    conn: sqlite3.Connection, account: str, calendar_id: str, live: Sequence[str], window: Window
) -> list[Change]:
    with _schema.transaction(conn):
        gone = conn.execute(
            "SELECT id FROM occurrences WHERE account = ? AND calendar_id = ? AND"
            f" (series_id NOT IN (SELECT value FROM json_each(?)) OR NOT ({_schema.OVERLAP}))",
            (account, calendar_id, json.dumps(list(live)), *_schema.overlap_args(window)),
        ).fetchall()
        conn.executemany(
            "DELETE FROM occurrences WHERE account = ? AND calendar_id = ? AND id = ?",
            [(account, calendar_id, g[0]) for g in gone],
        )
        conn.execute(
            "DELETE FROM dirty_series WHERE account = ? AND calendar_id = ?"
            " AND series_id NOT IN (SELECT value FROM json_each(?))",
            (account, calendar_id, json.dumps(list(live))),
        )
    return [Delete(key=EventKey(account=account, calendar_id=calendar_id, id=g[0])) for g in gone]


__all__ = ["SqliteStore"]
