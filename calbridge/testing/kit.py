"""The provider-plugin conformance kit: serve any plugin's emulator, drive the real engine and SQLite
store against it, and a reusable suite of tests a plugin inherits (like fsspec's abstract tests).

A plugin author gives the suite an :class:`EmulatorHandle`. When the emulator has calbridge's
shared API (:mod:`calbridge.testing.emulator_api`), :class:`BaseHandle` (or, with recurring events,
:class:`SeriesBaseHandle`) is the whole handle; otherwise subclass it and implement the mutations.
Then subclass :class:`ProviderConformance`::

    from calbridge.testing.kit import BaseHandle, ProviderConformance

    class MyHandle(BaseHandle):
        page_size = 2
        options = {"page_size": 2}

    class TestMyProvider(ProviderConformance):
        @pytest.fixture
        def plugin_name(self) -> str:
            return "mycal"

        @pytest.fixture
        def emulator_handle(self, calbridge_emulators):
            return MyHandle(calbridge_emulators.serve("mycal"))

A plugin that pushes (:class:`~calbridge.push.PushPlugin`) is also checked end to end through the
receiver; see :mod:`calbridge.testing._push_kit` for the two optional handle hooks it may need.

The ``calbridge_emulators`` fixture comes from calbridge's pytest plugin (``calbridge.testing.plugin``,
loaded automatically once calbridge is installed). Every test here is a plain (synchronous) pytest
test that runs its own event loop, so no asyncio plugin or mode is needed.

This module imports no provider: the core never does (import contract).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .._run import SyncReport
from ..export import event_schema, event_to_dict
from ..model import Event, Kind
from ..registry import Registry, default_registry
from ._push_kit import PushCases
from ._serve import EmulatorPool, Served, serve_emulator
from .harness import (
    FAST_RETRY,
    FAULTS,
    BaseHandle,
    EmulatorHandle,
    Mirror,
    SeriesBaseHandle,
    SeriesHandle,
    Snapshot,
    run,
)
from .replay import Replica

__all__ = [
    "FAST_RETRY",
    "FAULTS",
    "BaseHandle",
    "EmulatorHandle",
    "EmulatorPool",
    "Mirror",
    "ProviderConformance",
    "SeriesBaseHandle",
    "SeriesHandle",
    "Served",
    "Snapshot",
    "serve_emulator",
]

# -- the reusable suite -----------------------------------------------------------------------


def _base_now() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(hours=12)


def _schema_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="schema checks need jsonschema (calbridge[test])")
    cls = jsonschema.validators.validator_for(event_schema())
    return cls(event_schema())


class ProviderConformance(PushCases):
    """Tests every provider plugin must pass against its own emulator.

    Subclass it (named ``Test...``) and provide two fixtures: ``plugin_name`` (the entry-point name)
    and ``emulator_handle`` (an :class:`EmulatorHandle`; usually built from
    ``calbridge_emulators.serve(name)``). Each series test runs when the handle has the
    :class:`SeriesHandle` methods it uses (and skips naming the missing one); fault tests cover the
    handle's :attr:`~EmulatorHandle.faults`. Every test ends comparing the mirror with a fresh full
    sync, and every incremental test ends with a quiet round in which the provider must yield
    nothing (a cursor that never advances re-reads old changes there). Override ``plugin_registry``
    to resolve ``plugin_name`` through a registry of your own (a plugin registered in code). A
    plugin that pushes is checked end to end through the receiver (``_push_kit``), others skip it.
    """

    now: dt.datetime = _base_now()

    @pytest.fixture
    def plugin_name(self) -> str:
        raise NotImplementedError("override the plugin_name fixture in your subclass")

    @pytest.fixture
    def emulator_handle(self) -> EmulatorHandle:
        raise NotImplementedError("override the emulator_handle fixture in your subclass")

    @pytest.fixture
    def plugin_registry(self) -> Registry:
        return default_registry

    @pytest.fixture
    def handle(self, emulator_handle: EmulatorHandle, plugin_name: str) -> Iterator[EmulatorHandle]:
        assert emulator_handle.plugin_name == plugin_name, "the handle serves another plugin"
        emulator_handle.reset()
        yield emulator_handle
        emulator_handle.clear_faults()

    @pytest.fixture
    def mirror(self, handle: EmulatorHandle, tmp_path: Path, plugin_registry: Registry) -> Mirror:
        return Mirror(handle, tmp_path / "mirror", now=self.now, registry=plugin_registry)

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
        """The mirror equals a fresh full sync, and the change stream it published reproduces it."""
        oracle = mirror.fresh(f"fresh{len(mirror.reports)}")
        self.assert_ok(run(oracle.sync()))
        self.assert_same(run(mirror.snapshot()), run(oracle.snapshot()))
        self.assert_stream_reproduces(mirror)

    @staticmethod
    def assert_stream_reproduces(mirror: Mirror) -> None:
        """Every batch the mirror's runs published, applied by key (``docs/design.md``, "The change
        stream"), gives exactly the store's series view and whole instance view."""
        problems = run(mirror.replica_problems(Replica(), 0))
        assert not problems, "the change stream does not reproduce the store:\n" + "\n".join(problems[:40])

    def assert_quiet(self, mirror: Mirror) -> None:
        """A round right after the last one: nothing published, and nothing even yielded by the
        provider (re-reading changes a round already committed means its cursor did not advance)."""
        start = len(mirror.batches)
        self.assert_ok(run(mirror.sync()))
        spurious = [c for b in mirror.batches[start:] for c in b.changes]
        assert not spurious, f"a quiet round published {len(spurious)} changes: {spurious[:3]}"
        assert mirror.yielded[-1] == 0, (
            f"a quiet round: the provider yielded {mirror.yielded[-1]} changes the previous round had already "
            "committed (does its cursor advance to the last page's sync token?)"
        )

    @staticmethod
    def require(handle: EmulatorHandle, *methods: str) -> Any:
        """``handle`` when it has the :class:`SeriesHandle` ``methods``; otherwise skip, naming them."""
        missing = [m for m in methods if not callable(getattr(handle, m, None))]
        if missing:
            pytest.skip(f"the handle has no {' and no '.join(missing)} (optional SeriesHandle methods)")
        return handle

    @staticmethod
    def has(handle: EmulatorHandle, *methods: str) -> bool:
        return all(callable(getattr(handle, m, None)) for m in methods)

    # -- the tests --------------------------------------------------------------------------

    def test_full_sync_mirrors_the_server(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        want = self.singles(handle, 3)
        report = self.assert_ok(run(mirror.sync()))
        assert report.calendars[0].full
        assert self.titles(run(mirror.snapshot())) == want
        instances = run(mirror.snapshot()).instances
        assert {k[1] for k in instances} == set(want), "each single shows once in the instance view"
        self.assert_matches_fresh(mirror)

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
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_cursor_expiry_recovers_with_a_full_listing_and_sweep(self, handle: EmulatorHandle, mirror: Mirror) -> None:
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
        self.assert_quiet(mirror)
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
        again = {c.event.id for b in mirror.batches[before:] for c in b.changes if hasattr(c, "event")} & set(held)
        assert not again, f"resumed round re-published what the killed one committed: {sorted(again)}"
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_a_quiet_round_publishes_nothing(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        ids = list(self.singles(handle, 3))
        if self.has(handle, "create_series"):
            handle.create_series("quiet series", self.at(0, 7), self.at(0, 8), freq="DAILY", count=4)  # type: ignore[attr-defined]
        self.assert_ok(run(mirror.sync()))
        self.assert_quiet(mirror)
        handle.update(ids[0], title="changed once")
        self.assert_ok(run(mirror.sync()))
        before = run(mirror.snapshot())
        for _ in range(2):
            self.assert_quiet(mirror)
        self.assert_same(run(mirror.snapshot()), before)
        self.assert_matches_fresh(mirror)

    def test_exported_events_are_valid_against_the_schema(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        validator = _schema_validator()
        self.singles(handle, 2)
        if self.has(handle, "create_series"):
            series: Any = handle
            sid = series.create_series("schema series", self.at(1, 10), self.at(1, 11), freq="WEEKLY", count=3)
            if self.has(handle, "cancel_occurrence"):
                series.cancel_occurrence(sid, self.at(8, 10))
        self.assert_ok(run(mirror.sync()))
        events = run(mirror.events(expand=False)) + run(mirror.events(expand=True))
        assert events
        for event in events:
            errors = sorted(str(e.message) for e in validator.iter_errors(event_to_dict(event)))
            assert not errors, f"{event.id}: {errors}"
        self.assert_matches_fresh(mirror)

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
        handle.clear_faults()
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    # -- series: each test needs only the SeriesHandle methods it names ---------------------

    def _daily(self, handle: Any, count: int = 5) -> tuple[str, dt.datetime]:
        first = self.at(1, 10)
        return handle.create_series("daily", first, first + dt.timedelta(hours=1), freq="DAILY", count=count), first

    def _starts(self, mirror: Mirror, sid: str) -> list[str]:
        live = [e for k, e in run(mirror.snapshot()).instances.items() if k[0] == sid and e["status"] != "cancelled"]
        return sorted(e["start"]["datetime"] for e in live)

    @staticmethod
    def _fmt(*instants: dt.datetime) -> list[str]:
        return sorted(s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in instants)

    def test_series_expand_into_the_instance_view(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        series = self.require(handle, "create_series")
        sid, first = self._daily(series)
        self.assert_ok(run(mirror.sync()))
        assert self._starts(mirror, sid) == self._fmt(*(first + dt.timedelta(days=d) for d in range(5)))
        assert run(mirror.snapshot()).series[sid]["kind"] == "series"
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_a_cancelled_occurrence_leaves_the_instance_view(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        series = self.require(handle, "create_series", "cancel_occurrence")
        sid, first = self._daily(series)
        self.assert_ok(run(mirror.sync()))
        series.cancel_occurrence(sid, first + dt.timedelta(days=1))
        self.assert_ok(run(mirror.sync()))
        assert self._starts(mirror, sid) == self._fmt(*(first + dt.timedelta(days=d) for d in (0, 2, 3, 4)))
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_a_moved_occurrence_shows_at_its_new_time(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        series = self.require(handle, "create_series", "move_occurrence")
        sid, first = self._daily(series)
        self.assert_ok(run(mirror.sync()))
        moved = first + dt.timedelta(days=2, hours=3)
        series.move_occurrence(sid, first + dt.timedelta(days=2), moved, moved + dt.timedelta(hours=1))
        self.assert_ok(run(mirror.sync()))
        want = [first + dt.timedelta(days=d) for d in (0, 1, 3, 4)] + [moved]
        assert self._starts(mirror, sid) == self._fmt(*want)
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_a_renamed_series_renames_its_occurrences(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        series = self.require(handle, "create_series", "rename_series")
        sid, _ = self._daily(series, count=3)
        self.assert_ok(run(mirror.sync()))
        series.rename_series(sid, "renamed series")
        self.assert_ok(run(mirror.sync()))
        snap = run(mirror.snapshot())
        assert snap.series[sid]["title"] == "renamed series"
        assert {e["title"] for k, e in snap.instances.items() if k[0] == sid} == {"renamed series"}
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)

    def test_a_deleted_series_leaves_both_views(self, handle: EmulatorHandle, mirror: Mirror) -> None:
        series = self.require(handle, "create_series", "delete_series")
        sid, _ = self._daily(series)
        self.assert_ok(run(mirror.sync()))
        series.delete_series(sid)
        self.assert_ok(run(mirror.sync()))
        snap = run(mirror.snapshot())
        assert not [k for k, e in snap.instances.items() if k[0] == sid and e["status"] != "cancelled"]
        assert sid not in self.titles(snap)
        self.assert_quiet(mirror)
        self.assert_matches_fresh(mirror)


def kinds(events: Sequence[Event]) -> dict[Kind, int]:
    """How many events of each kind (diagnostics)."""
    out: dict[Kind, int] = {}
    for e in events:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
