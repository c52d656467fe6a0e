"""The harness under calbridge's plugin kit: serve any installed plugin's emulator on loopback (HTTPS
with a throwaway CA when it asks), inject dropped connections at the transport, and drive the real
engine and SQLite store against it (:class:`Mirror`). :mod:`calbridge.testing.kit` re-exports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs

from .._run import SyncReport
from ..config import Config, parse_config
from ..engine import ChangeBatch, SyncEngine
from ..export import event_to_dict
from ..model import Event, Window
from ..registry import Registry, default_registry
from ..retry import RetryPolicy
from ..store.sqlite import SqliteStore
from ._serve import Served
from .replay import Replica

T = TypeVar("T")

FAST_RETRY = RetryPolicy(attempts=5, base_backoff=0.001, max_backoff=0.01)
"""Retries fast enough for tests that inject many faults."""

FAULTS = ("rate_limit", "server_error", "drop")
"""Fault names a handle may support: 429 (with a zero wait), a 5xx, a connection dropped without an
answer. ``drop`` works for every emulator: :class:`Served` injects it at the transport."""


# -- the handle a plugin author writes ------------------------------------------------------------


@runtime_checkable
class EmulatorHandle(Protocol):
    """What the suite needs from a plugin's emulator: a thin adapter over its Python API.

    Instants are aware datetimes; ids are the provider's event ids as the mirror will hold them.
    """

    plugin_name: str
    served: Served
    page_size: int
    """Events per sync page with the options :meth:`account` sets (small, so paging is exercised)."""
    faults: frozenset[str]
    """The subset of :data:`FAULTS` :meth:`inject` supports."""

    def account(self, name: str) -> dict[str, Any]:
        """A config ``accounts`` entry for the calendar under test (auth, base_url, calendars, options)."""
        ...

    def reset(self) -> None:
        """Start over with an empty calendar and no pending faults (a fresh calendar is fine)."""
        ...

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str: ...

    def update(
        self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> None: ...  # fmt: skip

    def delete(self, event_id: str) -> None: ...

    def expire_cursor(self) -> None:
        """Make every cursor issued so far dead: the next round must get ``CursorExpired``."""
        ...

    def inject(self, fault: str) -> None:
        """Fail the next API request with ``fault`` (one of :attr:`faults`)."""
        ...

    def clear_faults(self) -> None: ...


@runtime_checkable
class SeriesHandle(EmulatorHandle, Protocol):
    """Optional: recurring events. Series are timed, in UTC, ``FREQ=DAILY|WEEKLY;COUNT=n``."""

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str: ...

    def rename_series(self, series_id: str, title: str) -> None: ...

    def delete_series(self, series_id: str) -> None: ...

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None: ...

    def move_occurrence(
        self, series_id: str, original_start: dt.datetime, start: dt.datetime, end: dt.datetime
    ) -> None: ...


class BaseHandle:
    """Defaults for an :class:`EmulatorHandle`: the emulator's own ``account_config`` (plus
    :attr:`options` and :attr:`calendar_id` when set) and connection drops for any emulator.

    Subclasses implement the mutations and, for more faults, override :meth:`inject`.
    """

    plugin_name: str = ""
    page_size: int = 2
    options: ClassVar[Mapping[str, Any]] = {}
    api_path: str = ""  # drops only hit requests whose path contains this (keep token endpoints out)

    def __init__(self, served: Served) -> None:
        self.served = served
        self.plugin_name = self.plugin_name or served.name
        self.calendar_id: str | None = None
        self.faults: frozenset[str] = frozenset({"drop"})

    @property
    def emulator(self) -> Any:
        return self.served.emulator

    def account(self, name: str) -> dict[str, Any]:
        entry = self.served.account_config(name)
        if self.calendar_id is not None:
            entry["calendars"] = [self.calendar_id]
        if self.options:
            entry["options"] = {**entry.get("options", {}), **self.options}
        return entry

    def reset(self) -> None:
        self.clear_faults()

    def inject(self, fault: str) -> None:
        if fault != "drop":
            raise NotImplementedError(f"{type(self).__name__} cannot inject {fault!r}")
        self.served.drop_next(1, path_contains=self.api_path)

    def clear_faults(self) -> None:
        self.served.clear_drops()


# -- the mirror under test ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Snapshot:
    """What a mirror holds, in the exported form: the series view by id and the instance view over
    the window keyed by slot (``series_id``/``original_start`` for occurrences and exceptions)."""

    series: Mapping[str, Mapping[str, Any]]
    instances: Mapping[tuple[str, str], Mapping[str, Any]]

    def diff(self, other: Snapshot) -> list[str]:
        """Human-readable differences (empty when equal)."""
        out: list[str] = []
        for label, mine, theirs in (("series", self.series, other.series),
                                    ("instance", self.instances, other.instances)):  # fmt: skip
            for key in sorted(set(mine) | set(theirs), key=repr):
                a, b = mine.get(key), theirs.get(key)  # type: ignore[call-overload]
                if a == b:
                    continue
                if a is None or b is None:
                    out.append(f"{label} {key}: only in {'second' if a is None else 'first'}")
                    continue
                fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                out.append(f"{label} {key}: " + "; ".join(f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in fields))
        return out


def slot_of(event: Event) -> tuple[str, str]:
    """An instance-view row's identity: (series id, original start) for occurrences and exceptions,
    ("", id) for singles."""
    if event.series_id is not None and event.original_start is not None:
        return event.series_id, event.original_start.utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    return "", event.id


class Mirror:
    """A config, a SQLite store and the real :class:`SyncEngine` for one account of a handle.

    Every :meth:`sync` opens the store and an engine afresh, like one ``calbridge sync`` process.
    """

    ACCOUNT = "conformance"

    def __init__(
        self,
        handle: EmulatorHandle,
        directory: Path,
        *,
        now: dt.datetime,
        past: str = "30d",
        future: str = "90d",
        retry: RetryPolicy = FAST_RETRY,
        registry: Registry | None = None,
    ) -> None:
        self.handle = handle
        self.directory = directory
        self.now = now
        self.retry = retry
        self.registry = registry or default_registry
        directory.mkdir(parents=True, exist_ok=True)
        doc = {"store": "sqlite:///mirror.db", "window": {"past": past, "future": future},
               "accounts": [handle.account(self.ACCOUNT)]}  # fmt: skip
        self.config: Config = parse_config(doc, base_dir=directory, env={}, registry=self.registry)
        self.window: Window = self.config.settings.window(now)
        self.batches: list[ChangeBatch] = []
        self.reports: list[SyncReport] = []

    def advance(self, delta: dt.timedelta) -> None:
        """Move this mirror's clock (and with it the instance window) by ``delta``."""
        self.now += delta
        self.window = self.config.settings.window(self.now)

    async def replica_problems(self, replica: Replica, since: int) -> list[str]:
        """Apply the batches published from ``self.batches[since]`` on to ``replica``; how it then
        differs from the store (empty: the change stream reproduced both views)."""
        replica.apply(self.batches[since:])
        async with SqliteStore(self.config.store_path) as store:
            return await replica.diff(store)

    @property
    def calendar_id(self) -> str:
        cals = self.config.accounts[0].calendars
        assert cals, "the account entry must name its calendar"
        return cals[0]

    async def sync(
        self,
        *,
        full: bool = False,
        allow_mass_delete: bool = False,
        kill_after_pages: int | None = None,
        kill_after: float | None = None,
    ) -> SyncReport | None:
        """One run. ``kill_after_pages``: cancel the run right after that many committed pages;
        ``kill_after``: cancel it after that many seconds. Returns None when the run was killed."""
        batches: list[ChangeBatch] = []
        task: asyncio.Task[SyncReport] | None = None
        pages = 0

        def progress(account: str, kind: str, info: dict[str, Any]) -> None:
            nonlocal pages
            if kind == "page":
                pages += 1
                if kill_after_pages is not None and pages >= kill_after_pages and task is not None:
                    task.cancel()

        async def run() -> SyncReport:
            async with SqliteStore(self.config.store_path) as store, SyncEngine(
                self.config, store, clock=lambda: self.now, retry_policy=self.retry, sleep=_fast_sleep,
                allow_mass_delete=allow_mass_delete, progress=progress,
            ) as engine:  # fmt: skip
                engine.add_listener(batches.append)
                return await engine.sync(full=full)

        task = asyncio.ensure_future(run())
        handle = None if kill_after is None else asyncio.get_running_loop().call_later(kill_after, task.cancel)
        try:
            report = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            self.batches += batches
            return None
        finally:
            if handle is not None:
                handle.cancel()
        self.batches += batches
        self.reports.append(report)
        return report

    async def converge(self) -> SyncReport:
        """Bring the mirror up to the server as it is now, the way an operator would.

        Two runs: the first may only finish a round a killed run left (a resumed round reports
        what changed up to *its* start, later changes belong to the next round); the second is a
        round that starts after the last server change. A held sweep is confirmed.
        """
        report: SyncReport | None = None
        for _ in range(2):
            report = await self.sync()
            assert report is not None
            if any(r.sweep_held for r in report.calendars):
                report = await self.sync(allow_mass_delete=True)
                assert report is not None
        assert report is not None
        return report

    async def events(self, *, expand: bool) -> list[Event]:
        async with SqliteStore(self.config.store_path) as store:
            if expand:
                return await store.query(window=self.window, expand=True, include_cancelled=True)
            return await store.query(include_cancelled=True)

    async def snapshot(self) -> Snapshot:
        series = {e.id: _comparable(e) for e in await self.events(expand=False)}
        instances: dict[tuple[str, str], dict[str, Any]] = {}
        for e in await self.events(expand=True):
            key = slot_of(e)
            assert key not in instances, f"two instance-view rows for {key}"
            instances[key] = _comparable(e)
        return Snapshot(series=series, instances=instances)

    async def state(self) -> Any:
        async with SqliteStore(self.config.store_path) as store:
            return await store.get_state(self.ACCOUNT, self.calendar_id)

    def fresh(self, suffix: str = "fresh") -> Mirror:
        """A mirror of the same account in a new, empty store (the oracle: one clean full sync)."""
        settings = self.config.settings
        return Mirror(self.handle, self.directory / suffix, now=self.now, retry=self.retry, registry=self.registry,
                      past=_days(settings.window_past), future=_days(settings.window_future))  # fmt: skip


async def _fast_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.01))


def _days(delta: dt.timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def _comparable(event: Event) -> dict[str, Any]:
    """The exported form, minus what differs between two stores by construction (nothing today)."""
    return event_to_dict(event)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a fresh event loop (the suite's tests are synchronous)."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())
