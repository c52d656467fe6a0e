"""The embedded SQLite implementation of :class:`~calbridge.store.base.Store` (every role of the seam).

One connection (WAL, ``synchronous=NORMAL``) runs every statement in the store's one worker thread
(``_worker``), in the order the calls were made. An event is stored as its exported
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
import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Self, TypeVar

import attrs

from ..errors import StoreBusy, StoreError
from ..feed import FeedEntry
from ..model import Change, Event, EventKey, Window
from ..provider import Quarantined
from ..push import Subscription
from . import _ahead, _feed, _read, _schema, _subscriptions, _write
from ._secrets import SealedSecrets, SecretCodec
from ._worker import Worker
from .base import CalendarState, CalendarStatus, PendingSweep, RoundStart, Store

_P = ParamSpec("_P")
_T = TypeVar("_T")
_POLL = 0.1


class SqliteStore:
    """The mirror in one SQLite file; see the module docstring.

    Args:
        path: the database file; ``<path>.lock`` next to it is the sync lock.
        create: create the file (mode 0600) when missing; otherwise opening a missing file fails.
        read_only: only read (``events``, ``status`` on a store they may not write): no migration,
            SQLite's ``mode=ro``, or ``immutable=1`` on a read-only medium without its -wal/-shm files.
        secret_codec: how the secret slot is sealed (default: from ``CALBRIDGE_SECRET_KEY``, read at
            open; a writable store checks then that every stored secret opens).
    """

    def __init__(
        self, path: Path, *, create: bool = True, read_only: bool = False, secret_codec: SecretCodec | None = None
    ) -> None:
        self._path = Path(path)
        self._codec = secret_codec
        self._secrets: SealedSecrets | None = None
        self._create = create and not read_only
        self._read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._worker: Worker | None = None
        self._lock = asyncio.Lock()  # open and aclose; calls are ordered by the worker's queue

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
            SecretKeyError: a malformed key; a writable store's secret slot that the key cannot open.
        """
        async with self._lock:
            if self._conn is None:
                codec = self._codec if self._codec is not None else SecretCodec.from_env()
                worker = Worker(f"calbridge-store {self._path.name}")
                try:
                    self._conn = await worker.submit(self._connect)
                    self._worker = worker
                    if not self._read_only:  # fail here, in one line, rather than per calendar mid-sync
                        codec.check(await self._run(_schema.secret_values))
                except BaseException:
                    if self._conn is not None:
                        await worker.submit(self._conn.close)
                    self._conn = self._worker = None
                    worker.stop()
                    raise
                self._secrets = SealedSecrets(_SqliteSecretRows(self), codec)

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        async with self._lock:
            conn, worker, self._conn, self._worker = self._conn, self._worker, None, None
            if conn is not None and worker is not None:
                try:
                    await asyncio.shield(worker.submit(conn.close))  # after every call made before it
                finally:
                    worker.stop()

    def _connect(self) -> sqlite3.Connection:
        path = self._path
        try:
            exists = path.exists()
            readable = not exists or os.access(path, os.R_OK)
        except OSError as exc:  # a folder we may not enter
            raise StoreError(f"cannot reach store {path}: {exc.strerror}") from None
        if not readable:
            raise StoreError(f"cannot read store {path}: permission denied")
        if not exists:
            if not self._create:
                raise StoreError(f"no store at {path}: run `calbridge sync` first")
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                # SQLite gives -wal and -shm the mode of the database file.
                os.chmod(path, 0o600)
        if self._read_only:
            return self._connect_read_only()
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            # Only takes effect on a new file; rows of 1-3 KB pack badly into the default 4 KiB pages.
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _schema.migrate(conn, str(path))
        except sqlite3.DatabaseError as exc:
            conn.close()
            hint = "" if os.access(path, os.W_OK) else " (it is not writable; `events` and `status` can still read it)"
            raise StoreError(f"cannot open store {path}: {exc}{hint}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that never writes (not even a migration), for a store this process may not write."""
        uri = self._path.resolve().as_uri()
        problem: Exception | None = None
        # mode=ro still needs the -shm file (or a writable folder to make it) for a WAL database;
        # immutable=1 does not, and is right only where nothing can write (a read-only medium).
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{flags}", uri=True, isolation_level=None, check_same_thread=False)
            except sqlite3.DatabaseError as exc:
                problem = exc
                continue
            try:
                conn.execute("PRAGMA busy_timeout = 10000")
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except sqlite3.DatabaseError as exc:
                conn.close()
                problem = exc
                continue
            if row is None or int(row[0]) != _schema.SCHEMA_VERSION:
                conn.close()
                raise StoreError(
                    f"store {self._path} has schema version {row[0] if row else 0}, this calbridge reads"
                    f" {_schema.SCHEMA_VERSION}; it is read-only here, so it cannot be migrated"
                )
            return conn
        raise StoreError(f"cannot read store {self._path}: {problem}")

    def sync_holder(self) -> str | None:
        """The pid (as text) of the process syncing into this store right now, None when none is.

        Reads ``<path>.lock`` without taking it for longer than a probe, so ``status`` can tell a
        round in progress from one a kill left behind.
        """
        lock_path = self._path.with_name(self._path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except OSError:
            return None  # never synced here, or not ours to read: nothing to say
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    async def _run(
        self, fn: Callable[Concatenate[sqlite3.Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        if self._conn is None or self._worker is None:
            raise StoreError(f"store {self._path} is not open")
        job = self._worker.submit(functools.partial(fn, **kwargs) if kwargs else fn, self._conn, *args)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            # The thread cannot be stopped: the caller learns of its cancellation once the call is done.
            while not job.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([job])
            if not job.cancelled():
                job.exception()
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
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot lock {lock_path}: {exc.strerror}") from None
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

    async def round_start(self, account: str, calendar_id: str) -> RoundStart:
        """The saved state and the series flagged stale, in one read."""
        return await self._run(_read.round_start, account, calendar_id)

    async def save_state(self, state: CalendarState) -> None:
        """Save ``state`` alone."""
        await self._run(_write.transactional(_schema.save_state), state)

    async def commit_page(
        self, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined] = ()
    ) -> list[Change]:
        """Apply a page and save ``state`` in one transaction; returns the effective changes."""
        return await self._run(_write.commit_page, state, changes, quarantined)

    async def record_quarantined(
        self, account: str, calendar_id: str, quarantined: Sequence[Quarantined], *, mark: int
    ) -> None:
        """Record payloads read outside a page (an expansion's) under ``mark``, in one transaction."""
        await self._run(_write.record_quarantined, account, calendar_id, quarantined, mark)

    async def sweep_count(self, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
        """(rows ``sweep`` would remove, rows the calendar holds in ``events``)."""
        return await self._run(_write.sweep_count, account, calendar_id, sweep)

    async def sweep_batch(self, state: CalendarState, sweep: PendingSweep, *, limit: int = 1000) -> list[Change]:
        """Delete up to ``limit`` swept rows (cascading) and save ``state``; returns the deletes."""
        return await self._run(_write.sweep_batch, state, sweep, limit)

    async def get_events(self, account: str, calendar_id: str, ids: Sequence[str]) -> dict[str, Event]:
        """The stored ``events`` rows among ``ids``."""
        return await self._run(_read.get_events, account, calendar_id, ids)

    async def series_ids(self, account: str, calendar_id: str) -> list[str]:
        """Ids of the calendar's series masters that are not cancelled."""
        return await self._run(_read.series_ids, account, calendar_id)

    async def replace_occurrences(
        self,
        account: str,
        calendar_id: str,
        series_ids: Sequence[str],
        window: Window,
        occurrences: Sequence[Event],
        *,
        shown: Window | None = None,
        horizon: dt.datetime | None = None,
    ) -> list[Change]:
        """Make ``occurrences`` the stored occurrences of ``series_ids`` overlapping ``window`` (those
        outside ``shown`` hidden) and record their ``horizon``."""
        return await self._run(
            _write.replace_occurrences, account, calendar_id, series_ids, window, occurrences, shown, horizon
        )

    async def series_horizons(self, account: str, calendar_id: str) -> dict[str, dt.datetime]:
        """How far each series' stored occurrences answer for, by series id."""
        return await self._run(_ahead.horizons, account, calendar_id)

    async def exceptions_of(self, account: str, calendar_id: str, series_ids: Sequence[str]) -> list[Event]:
        return await self._run(_read.exceptions_of, account, calendar_id, series_ids)

    async def dirty_series(self, account: str, calendar_id: str) -> list[str]:
        return await self._run(_read.dirty_series, account, calendar_id)

    async def prune_occurrences(
        self, account: str, calendar_id: str, live_series: Sequence[str], window: Window
    ) -> list[Change]:
        return await self._run(_write.prune_occurrences, account, calendar_id, live_series, window)

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
        return await self._run(_read.query, account, calendar_id, window, expand, include_cancelled)

    async def query_batches(
        self,
        *,
        account: str | None = None,
        calendar_id: str | None = None,
        window: Window | None = None,
        expand: bool = False,
        include_cancelled: bool = False,
        batch: int = 500,
    ) -> AsyncIterator[list[Event]]:
        """What :meth:`query` returns, in order, as it is read: lists of up to ``batch`` events."""
        rows = await self._run(_read.open_query, account, calendar_id, window, expand, include_cancelled)
        try:
            while events := await self._run(lambda _conn: _read.fetch(rows, batch)):
                yield events
        finally:
            if self._conn is not None:
                await self._run(lambda _conn: rows.cursor.close())

    async def record_result(
        self, account: str, calendar_id: str, *, at: dt.datetime, error: str | None, state: CalendarState | None = None,
        coerced: Mapping[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Record a round's outcome (and save ``state`` with it); a success keeps the last error for ``status``."""
        await self._run(_write.transactional(_schema.record_result), account, calendar_id, at, error, state, coerced)

    async def record_backoff(
        self, account: str, calendar_id: str, *, failures: int, next_attempt: dt.datetime | None
    ) -> None:
        """The service's backoff of a calendar (rounds failed in a row, the next attempt), for ``status``."""
        await self._run(_write.transactional(_schema.record_backoff), account, calendar_id, failures, next_attempt)

    async def status(self) -> list[CalendarStatus]:
        """One entry per calendar with a saved state or a recorded result."""
        return await self._run(_read.status)

    async def quarantined(self, account: str | None = None) -> list[tuple[EventKey, str]]:
        """Quarantined payloads as (key, error); a payload without an id is keyed ``payload:<digest>``."""
        return await self._run(_read.quarantined, account)

    async def get_secret(self, account: str, name: str) -> str | None:
        """A stored secret, None when absent (decrypted with ``CALBRIDGE_SECRET_KEY``; see ``_secrets``)."""
        return await self._sealed().get_secret(account, name)

    async def set_secret(self, account: str, name: str, value: str) -> None:
        """Store (replace) a secret (encrypted when ``CALBRIDGE_SECRET_KEY`` is set)."""
        await self._sealed().set_secret(account, name, value)

    def _sealed(self) -> SealedSecrets:
        if self._secrets is None:
            raise StoreError(f"store {self._path} is not open")
        return self._secrets

    # -- the change feed (calbridge.feed.FeedStore) -------------------------------------------

    async def read_changes(self, after: int, limit: int, *, account: str | None = None) -> list[FeedEntry]:
        """Up to ``limit`` feed entries after ``after``, in order (one snapshot)."""
        return await self._run(_feed.read, after, limit, account)

    async def last_change(self) -> int:
        """The highest committed sequence number (0 when none)."""
        return await self._run(_feed.last)

    async def consumer_offset(self, name: str) -> int | None:
        """Consumer ``name``'s acknowledged offset, ``None`` when new."""
        return await self._run(_feed.get_offset, name)

    async def set_consumer_offset(self, name: str, seq: int) -> None:
        """Store consumer ``name``'s offset."""
        await self._run(_feed.set_offset, name, seq)

    async def prune_changes(self, before: dt.datetime, *, limit: int = 1000) -> int:
        """Drop at most ``limit`` of the oldest entries committed before ``before``."""
        return await self._run(_feed.prune, int(before.timestamp()), limit)

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        """The subscription with this id, its secret (from the secret slot) included, or None."""
        sub = await self._run(_subscriptions.get, provider, subscription_id)
        return None if sub is None else await self._with_secret(sub)

    async def subscriptions(self, account: str | None = None, calendar_id: str | None = None) -> list[Subscription]:
        """Every stored subscription (of ``account``, of its ``calendar_id``), secrets included, by
        (account, calendar, created)."""
        rows = await self._run(_subscriptions.list_all, account, calendar_id)
        return [await self._with_secret(s) for s in rows]

    async def _with_secret(self, sub: Subscription) -> Subscription:
        secret = await self.get_secret(sub.account, _subscriptions.secret_name(sub.provider, sub.id))
        return attrs.evolve(sub, secret=secret or None)

    async def save_subscription(self, subscription: Subscription) -> None:
        """Insert or replace the row and its secret (the secret first: a row never lacks the one it had)."""
        name = _subscriptions.secret_name(subscription.provider, subscription.id)
        if subscription.secret is not None:
            await self.set_secret(subscription.account, name, subscription.secret)
        else:
            await self._run(_subscriptions.delete, subscription.provider, subscription.id)
        await self._run(_subscriptions.save, subscription)

    async def delete_subscription(self, provider: str, subscription_id: str) -> None:
        """Forget the subscription and its secret; an unknown id is not an error."""
        await self._run(_subscriptions.delete, provider, subscription_id)

    async def set_push_state(self, account: str, calendar_id: str, state: str | None) -> None:
        """What ``status`` shows as the calendar's push (None: nothing)."""
        await self._run(_subscriptions.set_push_state, account, calendar_id, state)

    async def first_delivery(self, key: str, *, now: dt.datetime, keep: dt.timedelta) -> bool:
        """Record a delivery key; True the first time within ``keep`` (atomic across processes)."""
        return await self._run(_subscriptions.first_delivery, key, now, keep)


class _SqliteSecretRows:
    """The ``secrets`` table as :class:`~calbridge.store._secrets.SecretRows`, under the codec."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def read_secret(self, account: str, name: str) -> str | None:
        return await self._store._run(_read.get_secret, account, name)

    async def write_secret(self, account: str, name: str, value: str) -> None:
        await self._store._run(_write.transactional(_schema.set_secret), account, name, value)


if TYPE_CHECKING:  # mypy checks here that the class implements every role (StateStore, PageCommitter, ...)
    _implements: type[Store] = SqliteStore

__all__ = ["SqliteStore"]
