"""The PostgreSQL implementation of :class:`~calbridge.store.base.Store` (every role but subscriptions).

A pool of asyncpg connections; each call takes one for its transaction. The tables and stored forms
are the SQLite store's (``_schema``); the feed is gap-free by its counter row (``_feed``)::

    async with PostgresStore("postgresql://calbridge@db/calbridge") as store, store.sync_lock(wait=0):
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

import attrs

from ...errors import MissingDependency, StoreBusy, StoreError
from ...feed import FeedEntry
from ...lease import Census, Holding, Key, Lease, LeaseStore, TriggerCallback, Worker
from ...model import Change, Event, EventKey, Window
from ...provider import Quarantined
from ...push import Subscription
from .._secrets import SealedSecrets, SecretCodec
from .._subscriptions import secret_name
from ..base import CalendarState, CalendarStatus, PendingSweep, RoundStart, Store
from . import _ahead, _feed, _leases, _locks, _push, _read, _schema, _write
from ._dsn import redact
from ._triggers import TriggerListener

_P = ParamSpec("_P")
_T = TypeVar("_T")
_POLL = 0.1
logger = logging.getLogger(__name__)


def _asyncpg() -> Any:
    try:
        import asyncpg  # only this store needs it: the `postgres` extra
    except ImportError:
        raise MissingDependency("the PostgreSQL store", module="asyncpg", extra="postgres") from None
    return asyncpg


class PostgresStore:
    """The mirror in a PostgreSQL database; see the module docstring.

    Args:
        url: a ``postgresql://`` (or ``postgres://``) DSN; TLS and other libpq options in its query
            (``?sslmode=verify-full&sslrootcert=…``) pass through to asyncpg.
        pool: the most connections this handle opens.
        statement_timeout: seconds a statement may run before the server cancels it (None: the server's).
        schema: the schema holding the tables (None: ``public``); created when missing.
        create: create (migrate) the tables when missing; otherwise a database without them fails.
        read_only: only read (``events``, ``status``): no migration, read-only transactions.
    """

    def __init__(
        self,
        url: str,
        *,
        pool: int = 10,
        statement_timeout: float | None = None,
        schema: str | None = None,
        create: bool = True,
        read_only: bool = False,
        secret_codec: SecretCodec | None = None,
    ) -> None:
        self._url = url
        self._where = redact(url) + ("" if schema is None else f" (schema {schema})")
        self._size = pool
        self._timeout = statement_timeout
        self._schema = schema or "public"
        self._create = create and not read_only
        self._read_only = read_only
        self._pool: Any = None
        self._alive: dict[str, Any] = {}  # worker name -> the connection holding its name lock
        self._holder: str | None = None  # who held the sync lock at the last status()
        self._lock = asyncio.Lock()  # open and aclose
        self._codec = secret_codec
        self._slot: SealedSecrets | None = None
        self._settings: dict[str, str] = {}
        self._fence: Lease | None = None  # set on a handle from fenced(): its calendar's writes check it
        self._owner = True  # False on a fenced handle: the pool is another handle's to close

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    @property
    def where(self) -> str:
        """The store as it may be shown: the DSN without its password (and the schema, when not public)."""
        return self._where

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect (creating and migrating as needed).

        Raises:
            MissingDependency: asyncpg is not installed.
            StoreError: no server, no tables and ``create`` is False, or a newer schema.
        """
        asyncpg = _asyncpg()
        async with self._lock:
            if self._pool is not None:
                return
            # The pid in application_name is what sync_holder reports of a sync holding the lock.
            settings = {"search_path": self._schema, "application_name": f"calbridge {os.getpid()}"}
            if self._timeout is not None:
                settings["statement_timeout"] = str(int(self._timeout * 1000))
            if self._read_only:
                settings["default_transaction_read_only"] = "on"
            self._settings = settings
            try:
                pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._size, server_settings=settings)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
                raise StoreError(f"cannot open store {self._where}: {_reason(exc)}") from None
            try:
                async with pool.acquire() as conn:
                    await self._prepare(conn)
            except BaseException:
                await pool.close()
                raise
            self._slot = SealedSecrets(self, self._codec or SecretCodec.from_env())
            self._pool = pool

    async def _prepare(self, conn: Any) -> None:
        asyncpg = _asyncpg()
        try:
            if self._create:
                await _schema.migrate(conn, self._where, self._schema)
                return
            exists = await conn.fetchval("SELECT to_regclass('meta') IS NOT NULL")
            version = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'") if exists else None
        except asyncpg.PostgresError as exc:
            raise StoreError(f"cannot open store {self._where}: {_reason(exc)}") from None
        if version is None:
            raise StoreError(f"no store at {self._where}: run `calbridge sync` first")
        if int(version) != _schema.SCHEMA_VERSION:
            raise StoreError(
                f"store {self._where} has schema version {version}, this calbridge reads {_schema.SCHEMA_VERSION}"
            )

    async def aclose(self) -> None:
        """Close the pool; idempotent (a fenced handle closes nothing)."""
        if not self._owner:
            return
        async with self._lock:
            pool, self._pool = self._pool, None
            alive, self._alive = dict(self._alive), {}
            if pool is not None:
                for conn in alive.values():  # the name locks go with their sessions
                    with contextlib.suppress(Exception):
                        await pool.release(conn, timeout=5)
                await asyncio.shield(pool.close())

    async def _run(self, fn: Callable[Concatenate[Any, _P], Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self._where} is not open")
        asyncpg = _asyncpg()
        try:
            async with pool.acquire() as conn:
                return await fn(conn, *args, **kwargs)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreError(f"store {self._where}: {_reason(exc)}") from exc

    async def _write_for(
        self,
        account: str,
        calendar_id: str,
        fn: Callable[Concatenate[Any, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``fn`` as a write for (``account``, ``calendar_id``): on a fenced handle, behind its lease's check."""
        fence = self._fence
        if fence is None:
            return await self._run(fn, *args, **kwargs)
        if fence.key != (account, calendar_id):
            raise StoreError(
                f"a handle fenced for {fence.account}/{fence.calendar_id} cannot write {account}/{calendar_id}"
            )
        return await self._run(_leases.fenced, fence, lambda conn: fn(conn, *args, **kwargs))

    @contextlib.asynccontextmanager
    async def sync_lock(self, *, wait: float | None) -> AsyncIterator[None]:
        """Hold a session-level advisory lock (on a connection kept for it) while syncing.

        One sync per store, as SQLite's ``flock``; leases per calendar, for many workers at once,
        are a later step (issue 15).

        Raises:
            StoreBusy: another session held it for ``wait`` seconds (None: wait forever).
        """
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self._where} is not open")
        key = self._sync_key
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        async with pool.acquire() as conn:
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
                if deadline is not None and loop.time() >= deadline:
                    holder = await self._probe_holder(conn) or "unknown"
                    raise StoreBusy(f"another calbridge sync (pid {holder}) is using {self._where}")
                await asyncio.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - loop.time())))
            try:
                yield
            finally:
                # A broken connection dropped the lock with its session; the pool discards it.
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)

    @property
    def _sync_key(self) -> str:
        return f"calbridge:sync:{self._schema}"

    def sync_holder(self) -> str | None:
        """The pid (as text) of the process that held the sync lock when :meth:`status` last read,
        None when none did: ``status`` tells a round in progress from one a kill left behind."""
        return self._holder

    async def _probe_holder(self, conn: Any) -> str | None:
        # An advisory lock on a bigint key shows in pg_locks as (classid, objid) = its high, low halves.
        name = await conn.fetchval(
            "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)",
            self._sync_key,
        )
        if name is None:
            return None
        return str(name).removeprefix("calbridge ").strip() or "unknown"

    # -- many workers (calbridge.lease.LeaseStore) ------------------------------------------------

    async def beat(self, worker: str, ttl: dt.timedelta, *, accounts: Sequence[str] | None = None) -> Census:
        """Record ``worker`` alive until now + ``ttl`` (forgetting workers gone a day); the census of
        live workers and known calendars of ``accounts`` (None: all; :data:`~calbridge.lease.LISTING`
        rows count: they are shared like calendars)."""
        return await self._run(_leases.beat, worker, ttl, accounts)

    async def offer(self, keys: Sequence[Key]) -> None:
        """Make these calendars known (claimable); known ones are left as they are."""
        await self._run(_leases.offer, keys)

    async def retire(self, keys: Sequence[Key]) -> None:
        """Forget these calendars (no longer configured) and their leases."""
        await self._run(_leases.retire, keys)

    async def claim(
        self, worker: str, ttl: dt.timedelta, *, limit: int, accounts: Sequence[str] | None = None,
        keys: Sequence[Key] | None = None,
    ) -> list[Lease]:  # fmt: skip
        """Take up to ``limit`` known calendars no live lease holds (``worker``'s own included), in
        (account, calendar) order; one statement, never waiting on another claim."""
        await self._alive_as(worker)
        return await self._run(_leases.claim, worker, ttl, limit, accounts, keys, self._schema)

    async def _alive_as(self, worker: str) -> None:
        """Keep ``worker``'s name lock on a connection of its own while this store is open, so a claim
        elsewhere tells this process alive (a dead one's calendars are free at once)."""
        if worker in self._alive:
            return
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self._where} is not open")
        conn = await pool.acquire()
        try:
            taken = await _leases.hold_alive(conn, self._schema, worker)
        except BaseException:
            await pool.release(conn)
            raise
        if not taken:  # another live process runs under this name: its leases stay its own
            await pool.release(conn)
            logger.warning("worker %s: another live process uses this name", worker)
            return
        self._alive[worker] = conn

    async def renew(self, worker: str, ttl: dt.timedelta) -> list[Lease]:
        """Extend every lease ``worker`` holds to now + ``ttl`` (tokens unchanged); returns them."""
        return await self._run(_leases.renew, worker, ttl)

    async def release(self, leases: Sequence[Lease]) -> None:
        """Free these (each only if its token is still the calendar's)."""
        await self._run(_leases.release, leases)

    async def holdings(self) -> list[Holding]:
        """Every known calendar and who holds it, by (account, calendar)."""
        return await self._run(_leases.holdings)

    async def workers(self) -> list[Worker]:
        """The workers alive now, by name."""
        return await self._run(_leases.workers)

    def fenced(self, lease: Lease) -> PostgresStore:
        """This store sharing its pool, with every write for ``lease``'s calendar checked against its
        token in the write's transaction (:class:`~calbridge.errors.LeaseLost`); a write for another
        calendar is refused (StoreError); reads are unfenced; closing it closes nothing."""
        if self._pool is None:
            raise StoreError(f"store {self._where} is not open")
        handle = copy.copy(self)
        handle._fence, handle._owner = lease, False
        return handle

    @property
    def _channel(self) -> str:
        return _leases.channel(self._schema)

    async def publish_trigger(self, payload: str) -> None:
        """NOTIFY every listener on this store (its schema's channel) of ``payload`` (at most 7,000 bytes)."""
        if len(payload.encode()) > 7000:
            raise ValueError(f"a trigger payload is at most 7000 bytes, not {len(payload.encode())}")
        await self._run(_leases.publish, self._channel, payload)

    @contextlib.asynccontextmanager
    async def listen_triggers(self, callback: TriggerCallback) -> AsyncIterator[None]:
        """While entered, ``callback(payload)`` runs on this loop for every trigger published on the
        store, on a connection of its own that is reconnected in the background when lost.

        Raises:
            StoreError: the store is not open, or the connection cannot be made.
        """
        if self._pool is None:
            raise StoreError(f"store {self._where} is not open")
        asyncpg = _asyncpg()
        url, settings = self._url, dict(self._settings)

        async def connect() -> Any:
            return await asyncpg.connect(url, server_settings=settings, timeout=30)

        listener = TriggerListener(connect, self._channel, callback, self._where)
        try:
            await listener.__aenter__()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreError(f"store {self._where}: cannot listen: {_reason(exc)}") from None
        try:
            yield
        finally:
            await listener.__aexit__(None, None, None)

    async def get_state(self, account: str, calendar_id: str) -> CalendarState | None:
        """The saved state of a calendar, None when never saved."""
        return await self._run(_schema.get_state, account, calendar_id)

    async def round_start(self, account: str, calendar_id: str) -> RoundStart:
        """The saved state and the series flagged stale, in one snapshot."""
        return await self._run(_read.round_start, account, calendar_id)

    async def save_state(self, state: CalendarState) -> None:
        """Save ``state`` alone."""
        await self._write_for(state.account, state.calendar_id, _schema.save_state, state)

    async def commit_page(
        self, state: CalendarState, changes: Sequence[Change], quarantined: Sequence[Quarantined] = ()
    ) -> list[Change]:
        """Apply a page and save ``state`` in one transaction; returns the effective changes."""
        return await self._write_for(state.account, state.calendar_id, _write.commit_page, state, changes, quarantined)

    async def record_quarantined(
        self, account: str, calendar_id: str, quarantined: Sequence[Quarantined], *, mark: int
    ) -> None:
        """Record payloads read outside a page (an expansion's) under ``mark``, in one transaction."""
        await self._write_for(account, calendar_id, _write.record_quarantined, account, calendar_id, quarantined, mark)

    async def sweep_count(self, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
        """(rows ``sweep`` would remove, rows the calendar holds in ``events``)."""
        return await self._run(_write.sweep_count, account, calendar_id, sweep)

    async def sweep_batch(self, state: CalendarState, sweep: PendingSweep, *, limit: int = 1000) -> list[Change]:
        """Delete up to ``limit`` swept rows (cascading) and save ``state``; returns the deletes."""
        return await self._write_for(state.account, state.calendar_id, _write.sweep_batch, state, sweep, limit)

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
        """Make ``occurrences`` the stored occurrences of ``series_ids`` overlapping ``window``."""
        return await self._write_for(
            account, calendar_id,
            _write.replace_occurrences, account, calendar_id, series_ids, window, occurrences, shown, horizon,
        )  # fmt: skip

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
        return await self._write_for(
            account, calendar_id, _write.prune_occurrences, account, calendar_id, live_series, window
        )

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
        out: list[Event] = []
        batches = self.query_batches(
            account=account, calendar_id=calendar_id, window=window, expand=expand,
            include_cancelled=include_cancelled, batch=2000,
        )  # fmt: skip
        async for batch in batches:
            out += batch
        return out

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
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self._where} is not open")
        asyncpg = _asyncpg()
        try:
            async with pool.acquire() as conn:
                rows = _read.query_batches(conn, account, calendar_id, window, expand, include_cancelled, batch)
                async for events in rows:
                    yield events
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreError(f"store {self._where}: {_reason(exc)}") from exc

    async def record_result(
        self,
        account: str,
        calendar_id: str,
        *,
        at: dt.datetime,
        error: str | None,
        state: CalendarState | None = None,
        coerced: Mapping[str, int] | None = None,
    ) -> None:
        """Record a round's outcome (and save ``state`` with it); a success keeps the last error for ``status``."""
        await self._write_for(
            account, calendar_id, _schema.record_result, account, calendar_id, at, error, state, coerced
        )

    async def record_backoff(
        self, account: str, calendar_id: str, *, failures: int, next_attempt: dt.datetime | None
    ) -> None:
        """The service's backoff of a calendar (rounds failed in a row, the next attempt), for ``status``."""
        await self._write_for(account, calendar_id, _push.record_backoff, account, calendar_id, failures, next_attempt)

    async def status(self) -> list[CalendarStatus]:
        """One entry per calendar with a saved state or a recorded result (and who syncs, for
        :meth:`sync_holder`)."""
        rows = await self._run(_read.status)  # with each calendar's lease holder and expiry
        self._holder = await self._run(self._probe_holder)
        return rows

    async def quarantined(self, account: str | None = None) -> list[tuple[EventKey, str]]:
        """Quarantined payloads as (key, error); a payload without an id is keyed ``payload:<digest>``."""
        return await self._run(_read.quarantined, account)

    async def get_secret(self, account: str, name: str) -> str | None:
        """A stored secret, None when absent (decrypted with ``CALBRIDGE_SECRET_KEY``; see ``_secrets``)."""
        return await self._sealed.get_secret(account, name)

    async def set_secret(self, account: str, name: str, value: str) -> None:
        """Store (replace) a secret (encrypted when ``CALBRIDGE_SECRET_KEY`` is set)."""
        await self._sealed.set_secret(account, name, value)

    @property
    def _sealed(self) -> SealedSecrets:
        if self._slot is None:
            raise StoreError(f"store {self._where} is not open")
        return self._slot

    async def read_secret(self, account: str, name: str) -> str | None:
        """The slot's raw row (:class:`~calbridge.store._secrets.SecretRows`, under the codec)."""
        return await self._run(_schema.get_secret, account, name)

    async def write_secret(self, account: str, name: str, value: str) -> None:
        await self._run(_schema.set_secret, account, name, value)

    # -- push (calbridge.store.base.SubscriptionStore) ------------------------------------------

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        """The subscription with this id, its secret (from the secret slot) included, or None."""
        sub = await self._run(_push.get, provider, subscription_id)
        return None if sub is None else await self._with_secret(sub)

    async def subscriptions(self, account: str | None = None, calendar_id: str | None = None) -> list[Subscription]:
        """Every stored subscription (of ``account``, of its ``calendar_id``), secrets included."""
        return [await self._with_secret(s) for s in await self._run(_push.list_all, account, calendar_id)]

    async def _with_secret(self, sub: Subscription) -> Subscription:
        secret = await self.get_secret(sub.account, secret_name(sub.provider, sub.id))
        return attrs.evolve(sub, secret=secret or None)

    async def save_subscription(self, subscription: Subscription) -> None:
        """Insert or replace the row and its secret (the secret first: a row never lacks the one it had)."""
        if subscription.secret is not None:
            name = secret_name(subscription.provider, subscription.id)
            await self.set_secret(subscription.account, name, subscription.secret)
        else:
            await self._run(_push.delete, subscription.provider, subscription.id)
        await self._run(_push.save, subscription)

    async def delete_subscription(self, provider: str, subscription_id: str) -> None:
        """Forget the subscription and its secret; an unknown id is not an error."""
        await self._run(_push.delete, provider, subscription_id)

    async def set_push_state(self, account: str, calendar_id: str, state: str | None) -> None:
        """What ``status`` shows as the calendar's push (None: nothing)."""
        await self._run(_push.set_push_state, account, calendar_id, state)

    async def first_delivery(self, key: str, *, now: dt.datetime, keep: dt.timedelta) -> bool:
        """Record a delivery key; True the first time within ``keep`` (atomic across workers)."""
        return await self._run(_push.first_delivery, key, now, keep)

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

    # -- account locks (calbridge.lease.AccountLocks) -------------------------------------------

    def account_lock(self, account: str, *, timeout: float = _locks.TIMEOUT) -> AbstractAsyncContextManager[None]:
        """Exclusive across every handle on this schema while held (an advisory lock), for an
        account's token refresh; waits up to ``timeout`` seconds, then raises TransientError."""
        if self._pool is None:
            raise StoreError(f"store {self._where} is not open")
        key = _locks.account_key(self._schema, account)
        what = f"the token lock of account {account!r}"
        return _locks.advisory_lock(self._pool, key, timeout=timeout, what=what, where=self._where)


def _reason(exc: BaseException) -> str:
    """What went wrong, without the DSN (asyncpg's messages never carry the password; a DSN parse error may)."""
    if isinstance(exc, ValueError):
        return "the DSN is not valid"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


if TYPE_CHECKING:  # mypy checks here that the class implements every role (StateStore, PageCommitter, ...)
    _implements: type[Store] = PostgresStore
    _leases_too: type[LeaseStore] = PostgresStore

__all__ = ["PostgresStore"]
