"""The harness under calbridge's plugin kit: serve any installed plugin's emulator on loopback (HTTPS
with a throwaway CA when it asks), inject dropped connections at the transport, and drive the real
engine and SQLite store against it (:class:`Mirror`). :mod:`calbridge.testing.kit` re-exports it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .._run import SyncReport
from ..config import Config, parse_config
from ..engine import ChangeBatch, SyncEngine
from ..export import event_to_dict
from ..model import Event, Window
from ..registry import Registry, default_registry
from ..retry import RetryPolicy
from ..store.sqlite import SqliteStore
from ._handles import FAULTS, BaseHandle, EmulatorHandle, SeriesBaseHandle, SeriesHandle
from ._recording import recording_registry
from .replay import Replica

T = TypeVar("T")

__all__ = ["FAST_RETRY", "FAULTS", "BaseHandle", "EmulatorHandle", "Mirror", "SeriesBaseHandle", "SeriesHandle",
           "Snapshot", "run"]  # fmt: skip

FAST_RETRY = RetryPolicy(attempts=5, base_backoff=0.001, max_backoff=0.01)
"""Retries fast enough for tests that inject many faults."""

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
        slack: str | None = None,
        retry: RetryPolicy = FAST_RETRY,
        registry: Registry | None = None,
    ) -> None:
        self.handle = handle
        self.directory = directory
        self.now = now
        self.retry = retry
        self.registry = registry or default_registry
        self._pages: list[int] = []  # changes the provider yielded, per page
        self._recording = recording_registry(self.registry, handle.plugin_name, self._pages)
        directory.mkdir(parents=True, exist_ok=True)
        window = {"past": past, "future": future} | ({} if slack is None else {"slack": slack})
        doc = {"store": "sqlite:///mirror.db", "window": window, "accounts": [handle.account(self.ACCOUNT)]}
        self.config: Config = parse_config(doc, base_dir=directory, env={}, registry=self._recording)
        self.window: Window = self.config.settings.window(now)
        self.batches: list[ChangeBatch] = []
        self.reports: list[SyncReport] = []
        self.yielded: list[int] = []
        """Per finished run: how many changes the provider yielded (before the store drops no-ops)."""

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
                allow_mass_delete=allow_mass_delete, progress=progress, registry=self._recording,
            ) as engine:  # fmt: skip
                engine.add_listener(batches.append)
                return await engine.sync(full=full)

        first_page = len(self._pages)
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
        self.yielded.append(sum(self._pages[first_page:]))
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

    async def events(self, *, expand: bool, windowed: bool = False) -> list[Event]:
        async with SqliteStore(self.config.store_path) as store:
            if expand:
                return await store.query(window=self.window, expand=True, include_cancelled=True)
            return await store.query(window=self.window if windowed else None, include_cancelled=True)

    async def snapshot(self, *, windowed: bool = False) -> Snapshot:
        """``windowed``: the series view too only over the window (a window-bound cursor's mirror
        holds up to its slack around the window, depending on when it was anchored)."""
        series = {e.id: _comparable(e) for e in await self.events(expand=False, windowed=windowed)}
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
                      past=_days(settings.window_past), future=_days(settings.window_future),
                      slack=_days(settings.slack))  # fmt: skip


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
