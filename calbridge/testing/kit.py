"""The provider-plugin conformance kit: serve any plugin's emulator, drive the real engine and SQLite
store against it, and a reusable suite of tests a plugin inherits (like fsspec's abstract tests).

A plugin author writes a small :class:`EmulatorHandle` over their emulator's Python API (usually by
subclassing :class:`BaseHandle`) and subclasses :class:`ProviderConformance`::

    from calbridge.testing.kit import BaseHandle, ProviderConformance

    class MyHandle(BaseHandle):
        def create_single(self, title, start, end): return self.emulator.add(title, start, end)
        ...

    class TestMyProvider(ProviderConformance):
        @pytest.fixture
        def plugin_name(self) -> str:
            return "mycal"

        @pytest.fixture
        def emulator_handle(self, calbridge_emulators):
            return MyHandle(calbridge_emulators.serve("mycal"))

The ``calbridge_emulators`` fixture comes from calbridge's pytest plugin (``calbridge.testing.plugin``,
loaded automatically once calbridge is installed). Every test here is a plain (synchronous) pytest
test that runs its own event loop, so no asyncio plugin or mode is needed.

This module imports no provider: the core never does (import contract).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs
import pytest
from aiohttp import web

from .._run import SyncReport
from ..config import Config, parse_config
from ..engine import ChangeBatch, SyncEngine
from ..export import event_schema, event_to_dict
from ..model import Event, Kind, Window
from ..provider import EmulatedPlugin, EmulatorApp
from ..registry import Registry, default_registry
from ..retry import RetryPolicy
from ..store.sqlite import SqliteStore
from .server import ThreadedServer

__all__ = [
    "FAST_RETRY",
    "FAULTS",
    "BaseHandle",
    "EmulatorHandle",
    "EmulatorPool",
    "Mirror",
    "ProviderConformance",
    "SeriesHandle",
    "Served",
    "Snapshot",
    "serve_emulator",
]

T = TypeVar("T")

FAST_RETRY = RetryPolicy(attempts=5, base_backoff=0.001, max_backoff=0.01)
"""Retries fast enough for tests that inject many faults."""

FAULTS = ("rate_limit", "server_error", "drop")
"""Fault names a handle may support: 429 (with a zero wait), a 5xx, a connection dropped without an
answer. ``drop`` works for every emulator: :class:`Served` injects it at the transport."""


# -- serving emulators --------------------------------------------------------------------------


class _Dropper:
    """aiohttp middleware state: abort the connection of the next ``n`` matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self.dropped = 0

    def add(self, count: int, path_contains: str) -> None:
        with self._lock:
            self._pending.extend([path_contains] * count)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self, path: str) -> bool:
        with self._lock:
            for i, part in enumerate(self._pending):
                if part in path:
                    del self._pending[i]
                    self.dropped += 1
                    return True
            return False

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.take(request.path):
            transport = request.transport
            if transport is not None:
                transport.abort()  # no status line, no body: the client sees a dropped connection
            raise web.HTTPServiceUnavailable()  # never reaches the client
        return await handler(request)


class Served:
    """One emulator served on loopback (HTTPS when it asks for TLS), with transport-level faults."""

    def __init__(self, name: str, emulator: EmulatorApp, *, ca_file: Path | None = None,
                 server_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.name = name
        self.emulator = emulator
        self.ca_file = ca_file
        self._dropper = _Dropper()

        def build() -> web.Application:
            app = emulator.make_app()
            if not isinstance(app, web.Application):
                raise TypeError(f"{name}: make_app() must return an aiohttp.web.Application")
            app.middlewares.insert(0, self._dropper.middleware)  # outermost: before the emulator sees it
            return app

        self.server = ThreadedServer(build, ssl_context=server_context)

    def start(self) -> Served:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def account_config(self, name: str) -> dict[str, Any]:
        """The emulator's own ``accounts`` entry pointing calbridge at this server."""
        return self.emulator.account_config(
            name=name, base_url=self.url, ca_file=None if self.ca_file is None else str(self.ca_file)
        )

    def drop_next(self, count: int = 1, *, path_contains: str = "") -> None:
        """Abort the connection of the next ``count`` requests whose path contains ``path_contains``."""
        self._dropper.add(count, path_contains)

    def clear_drops(self) -> None:
        self._dropper.clear()

    @property
    def dropped(self) -> int:
        """Connections dropped so far."""
        return self._dropper.dropped


def serve_emulator(
    name: str, *, registry: Registry | None = None, ca: Any = None
) -> Served:
    """Start the emulator a plugin ships (``create_emulator()``), found through its entry point.

    ``ca`` is a :class:`calbridge.testing.tls.TestCA`, needed only for emulators with ``tls = True``.
    """
    plugin = (registry or default_registry).get(name)
    if not isinstance(plugin, EmulatedPlugin):
        raise LookupError(f"provider plugin {name!r} ships no emulator (no create_emulator())")
    emulator = plugin.create_emulator()
    if getattr(emulator, "tls", False):
        if ca is None:
            raise ValueError(f"the {name} emulator serves HTTPS: pass a TestCA")
        return Served(name, emulator, ca_file=ca.ca_file, server_context=ca.server_context).start()
    return Served(name, emulator).start()


class EmulatorPool:
    """Emulators started on first use and kept for the session (the ``calbridge_emulators`` fixture)."""

    def __init__(self, ca_dir: Path, *, registry: Registry | None = None) -> None:
        self._ca_dir = ca_dir
        self._registry = registry or default_registry
        self._ca: Any = None
        self._served: dict[str, Served] = {}

    def names(self) -> list[str]:
        """Installed provider plugins that ship an emulator."""
        out = []
        for name in self._registry.names():
            try:
                plugin = self._registry.get(name)
            except Exception:
                continue
            if isinstance(plugin, EmulatedPlugin):
                out.append(name)
        return out

    @property
    def ca(self) -> Any:
        if self._ca is None:
            from .tls import make_test_ca

            self._ca = make_test_ca(self._ca_dir)
        return self._ca

    def serve(self, name: str) -> Served:
        """The running emulator of plugin ``name`` (started now if needed)."""
        if name not in self._served:
            plugin = self._registry.get(name)
            tls = isinstance(plugin, EmulatedPlugin) and bool(getattr(plugin.create_emulator(), "tls", False))
            self._served[name] = serve_emulator(name, registry=self._registry, ca=self.ca if tls else None)
        return self._served[name]

    def close(self) -> None:
        for served in self._served.values():
            served.stop()
        self._served.clear()


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


# -- the reusable suite -----------------------------------------------------------------------


def _base_now() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(hours=12)


def _schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="schema checks need jsonschema (calbridge[test])")
    cls = jsonschema.validators.validator_for(event_schema())
    return cls(event_schema())


class ProviderConformance:
    """Tests every provider plugin must pass against its own emulator.

    Subclass it (named ``Test...``) and provide two fixtures: ``plugin_name`` (the entry-point name)
    and ``emulator_handle`` (an :class:`EmulatorHandle`; usually built from
    ``calbridge_emulators.serve(name)``). Series tests run when the handle is a :class:`SeriesHandle`;
    fault tests cover the handle's :attr:`~EmulatorHandle.faults`.
    """

    now: dt.datetime = _base_now()

    @pytest.fixture
    def plugin_name(self) -> str:
        raise NotImplementedError("override the plugin_name fixture in your subclass")

    @pytest.fixture
    def emulator_handle(self) -> EmulatorHandle:
        raise NotImplementedError("override the emulator_handle fixture in your subclass")

    @pytest.fixture
    def handle(self, emulator_handle: EmulatorHandle, plugin_name: str) -> Iterator[EmulatorHandle]:
        assert emulator_handle.plugin_name == plugin_name, "the handle serves another plugin"
        emulator_handle.reset()
        yield emulator_handle
        emulator_handle.clear_faults()

    @pytest.fixture
    def mirror(self, handle: EmulatorHandle, tmp_path: Path) -> Mirror:
        return Mirror(handle, tmp_path / "mirror", now=self.now)

    # -- helpers ----------------------------------------------------------------------------

    def at(self, days: float, hours: float = 0) -> dt.datetime:
        return self.now.replace(hour=0) + dt.timedelta(days=days, hours=hours)

    def singles(self, handle: EmulatorHandle, n: int, *, prefix: str = "event") -> dict[str, str]:
        """Create ``n`` one-hour singles on consecutive days inside the window; id -> title."""
        out = {}
        for i in range(n):
            start = self.at(1 + i, 9)
            title = f"{prefix} {i}"
            out[handle.create_single(title, start, start + dt.timedelta(hours=1))] = title
        return out

    @staticmethod
    def titles(snapshot: Snapshot) -> dict[str, str | None]:
        return {i: e["title"] for i, e in snapshot.series.items() if e["status"] != "cancelled"}

    @staticmethod
    def assert_ok(report: SyncReport | None) -> SyncReport:
        assert report is not None, "the run was killed"
        assert report.ok, [(r.calendar_id, r.error, r.sweep_held) for r in report.failures]
        assert report.calendars, "the run synced no calendar"
        return report

    @staticmethod
    def assert_same(got: Snapshot, want: Snapshot) -> None:
        problems = got.diff(want)
        assert not problems, "the mirror diverged from a fresh full sync:\n" + "\n".join(problems[:40])

    def assert_matches_fresh(self, mirror: Mirror) -> None:
        oracle = mirror.fresh(f"fresh{len(mirror.reports)}")
        self.assert_ok(run(oracle.sync()))
        self.assert_same(run(mirror.snapshot()), run(oracle.snapshot()))

    # -- the tests --------------------------------------------------------------------------

    def test_full_sync_mirrors_the_server(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        want = self.singles(handle, 3)
        report = self.assert_ok(run(mirror.sync()))
        assert report.calendars[0].full
        assert self.titles(run(mirror.snapshot())) == want
        instances = run(mirror.snapshot()).instances
        assert {k[1] for k in instances} == set(want), "each single shows once in the instance view"

    def test_incremental_create_update_delete(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        want = self.singles(handle, 3)
        self.assert_ok(run(mirror.sync()))
        first, second, third = list(want)
        handle.update(first, title="renamed")
        moved = self.at(5, 14)
        handle.update(second, start=moved, end=moved + dt.timedelta(minutes=30))
        handle.delete(third)
        created = handle.create_single("created", self.at(2, 16), self.at(2, 17))
        before = len(mirror.batches)
        report = self.assert_ok(run(mirror.sync()))
        assert not report.calendars[0].full, "an incremental round was expected"
        snap = run(mirror.snapshot())
        assert self.titles(snap) == {first: "renamed", second: want[second], created: "created"}
        assert snap.series[second]["start"]["datetime"] == moved.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert len(mirror.batches) > before, "the changes were published"
        self.assert_matches_fresh(mirror)

    def test_cursor_expiry_recovers_with_a_full_listing_and_sweep(
        self, handle: EmulatorHandle, mirror: Mirror
    ) -> None:
        want = self.singles(handle, 4)
        self.assert_ok(run(mirror.sync()))
        doomed = next(iter(want))
        handle.expire_cursor()
        handle.delete(doomed)  # a full listing may never mention it: only the sweep removes it
        created = handle.create_single("after expiry", self.at(3, 8), self.at(3, 9))
        report = self.assert_ok(run(mirror.sync()))
        assert report.calendars[0].expired and report.calendars[0].full
        titles = self.titles(run(mirror.snapshot()))
        assert doomed not in titles and titles[created] == "after expiry"
        assert set(titles) == (set(want) - {doomed}) | {created}
        self.assert_matches_fresh(mirror)

    def test_resume_from_a_mid_round_cursor(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        want = self.singles(handle, 2 * handle.page_size + 1)
        assert run(mirror.sync(kill_after_pages=1)) is None, "the run should have been killed"
        state = run(mirror.state())
        assert state is not None and state.round is not None, "a round in progress was saved"
        held = self.titles(run(mirror.snapshot()))
        assert 0 < len(held) < len(want)
        before = len(mirror.batches)
        self.assert_ok(run(mirror.sync()))
        assert self.titles(run(mirror.snapshot())) == want
        again = {
            c.event.id for b in mirror.batches[before:] for c in b.changes if hasattr(c, "event")
        } & set(held)
        assert not again, f"resumed round re-published what the killed one committed: {sorted(again)}"
        self.assert_matches_fresh(mirror)

    def test_a_quiet_round_publishes_nothing(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        self.singles(handle, 3)
        if isinstance(handle, SeriesHandle):
            handle.create_series("quiet series", self.at(0, 7), self.at(0, 8), freq="DAILY", count=4)
        self.assert_ok(run(mirror.sync()))
        before = run(mirror.snapshot())
        for _ in range(2):
            start = len(mirror.batches)
            self.assert_ok(run(mirror.sync()))
            spurious = [c for b in mirror.batches[start:] for c in b.changes]
            assert not spurious, f"a quiet round published {len(spurious)} changes: {spurious[:3]}"
        self.assert_same(run(mirror.snapshot()), before)

    def test_exported_events_are_valid_against_the_schema(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        validator = _schema_validator()
        self.singles(handle, 2)
        if isinstance(handle, SeriesHandle):
            sid = handle.create_series("schema series", self.at(1, 10), self.at(1, 11), freq="WEEKLY", count=3)
            handle.cancel_occurrence(sid, self.at(8, 10))
        self.assert_ok(run(mirror.sync()))
        events = run(mirror.events(expand=False)) + run(mirror.events(expand=True))
        assert events
        for event in events:
            errors = sorted(str(e.message) for e in validator.iter_errors(event_to_dict(event)))
            assert not errors, f"{event.id}: {errors}"

    def test_injected_faults_are_retried(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        if not handle.faults:
            pytest.skip("the handle injects no faults")
        want = self.singles(handle, handle.page_size + 1)
        for fault in sorted(handle.faults):
            handle.inject(fault)
        self.assert_ok(run(mirror.sync()))
        assert self.titles(run(mirror.snapshot())) == want
        for fault in sorted(handle.faults):
            handle.inject(fault)
        handle.update(next(iter(want)), title="after faults")
        self.assert_ok(run(mirror.sync()))
        assert self.titles(run(mirror.snapshot()))[next(iter(want))] == "after faults"

    def test_series_expand_into_the_instance_view(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        if not isinstance(handle, SeriesHandle):
            pytest.skip("the handle implements no SeriesHandle methods (no recurring events)")
        first = self.at(1, 10)
        sid = handle.create_series("daily", first, first + dt.timedelta(hours=1), freq="DAILY", count=5)
        handle.cancel_occurrence(sid, first + dt.timedelta(days=1))
        moved = first + dt.timedelta(days=2, hours=3)
        handle.move_occurrence(sid, first + dt.timedelta(days=2), moved, moved + dt.timedelta(hours=1))
        self.assert_ok(run(mirror.sync()))
        live = {k: e for k, e in run(mirror.snapshot()).instances.items() if e["status"] != "cancelled"}
        starts = sorted(e["start"]["datetime"] for k, e in live.items() if k[0] == sid)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        expected = [first + dt.timedelta(days=d) for d in (0, 3, 4)] + [moved]
        assert starts == sorted(s.strftime(fmt) for s in expected)
        handle.delete_series(sid)
        self.assert_ok(run(mirror.sync()))
        snap = run(mirror.snapshot())
        assert not [k for k, e in snap.instances.items() if k[0] == sid and e["status"] != "cancelled"]
        assert sid not in self.titles(snap)
        self.assert_matches_fresh(mirror)


def kinds(events: Sequence[Event]) -> dict[Kind, int]:
    """How many events of each kind (diagnostics)."""
    out: dict[Kind, int] = {}
    for e in events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
