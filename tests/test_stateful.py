"""Stateful property test: random interleavings of server mutations, incremental syncs, cursor expiry,
injected faults and killed syncs, per built-in provider, through the real SyncEngine and SqliteStore
against each emulator on loopback.

After every ``check`` step and at teardown (a final quiet sync), the mirror must equal:

- the model (what the machine told the server): the instance view over the window, slot by slot
  (singles by id, occurrences and exceptions by (series, original start)) with title, start and end;
  the series view's ids and titles (Graph mirrors only what its window shows, so for Graph only
  "everything in the window, nothing that is gone");
- a fresh full sync of the same server into an empty store, exactly (every exported field of both
  views; for Graph, whose mirror holds the window plus slack as of its last anchoring, both views
  over the window);

and a further quiet round must publish nothing.

A killed sync is an asyncio cancellation of the running ``engine.sync()`` task, either right after
its n-th committed page or after a random delay (mid-request or mid-commit); the next run opens the
store and an engine afresh, as a new process would. (A real SIGKILL per step is too slow for
thousands of steps; ``tests/providers/google/test_e2e.py`` covers the real kill once.)

Default profile: about 240 steps per provider, the three within a minute. ``--slow``: 3,200 per provider
(see PROFILES below).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from calbridge.model import Window
from calbridge.testing.kit import EmulatorPool, Mirror, SeriesHandle, Snapshot, run
from calbridge.testing.replay import Replica, run_problems

from .stateful.handles import HANDLES, GoogleHandle

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
DAY0 = NOW.replace(hour=0)
FMT = "%Y-%m-%dT%H:%M:%SZ"
WINDOWED_SERIES_VIEW = {"graph"}  # calendarView delta: the mirror holds only what the window shows

# (max_examples, steps per example): default / --slow
PROFILES = {"default": (8, 30), "slow": (40, 80)}  # default: the three providers within a minute


@attrs.define
class Stats:
    examples: int = 0
    steps: int = 0
    syncs: int = 0
    kills: int = 0
    expiries: int = 0
    faults: int = 0
    checks: int = 0
    rules: dict[str, int] = attrs.field(factory=dict)


STATS: dict[str, Stats] = {}


@attrs.define
class Single:
    title: str
    start: dt.datetime
    end: dt.datetime


@attrs.define
class Series:
    title: str
    start: dt.datetime
    duration: dt.timedelta
    step: dt.timedelta
    count: int
    cancelled: set[int] = attrs.field(factory=set)
    moved: dict[int, tuple[dt.datetime, dt.datetime]] = attrs.field(factory=dict)

    def slot(self, k: int) -> dt.datetime:
        return self.start + k * self.step

    def untouched(self) -> list[int]:
        return [k for k in range(self.count) if k not in self.cancelled and k not in self.moved]


titles = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs")), min_size=1, max_size=12
).map(lambda s: s.strip() or "untitled")
hours = st.integers(min_value=-36 * 24, max_value=96 * 24)  # the window is [-30d, +91d)
durations = st.sampled_from([30, 60, 90, 150]).map(lambda m: dt.timedelta(minutes=m))


def at_hour(h: int) -> dt.datetime:
    return DAY0 + dt.timedelta(hours=h)


class SyncMachine(RuleBasedStateMachine):
    """One example: a fresh calendar on the running emulator, a fresh store."""

    handle: SeriesHandle
    directory: Path
    stats: Stats
    _examples = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.handle.reset()
        self.mirror = Mirror(self.handle, self.directory / f"ex{next(self._examples)}", now=NOW)
        self.window: Window = self.mirror.window
        self.singles: dict[str, Single] = {}
        self.series: dict[str, Series] = {}
        self.pending_faults = 0
        self.n = 0
        self.stats.examples += 1
        self.replica = Replica()  # a consumer applying every published batch (docs/design.md)
        self.applied = 0

    def _count(self, name: str) -> None:
        self.stats.steps += 1
        self.stats.rules[name] = self.stats.rules.get(name, 0) + 1

    def _title(self, title: str) -> str:
        self.n += 1
        return f"{title} #{self.n}"  # unique, so a misplaced row never matches by accident

    # -- server mutations -------------------------------------------------------------------

    @initialize(n=st.integers(min_value=0, max_value=4), h=hours)
    def seed(self, n: int, h: int) -> None:
        """Start with a few events (enough for more than one page) and a first full sync."""
        for i in range(n):
            self.create_single_now(f"seed {i}", h + 7 * i, dt.timedelta(hours=1))
        self.sync()

    def create_single_now(self, title: str, h: int, duration: dt.timedelta) -> None:
        title = self._title(title)
        start = at_hour(h)
        eid = self.handle.create_single(title, start, start + duration)
        self.singles[eid] = Single(title, start, start + duration)

    @rule(title=titles, h=hours, duration=durations)
    def create_single(self, title: str, h: int, duration: dt.timedelta) -> None:
        self._count("create_single")
        self.create_single_now(title, h, duration)

    @precondition(lambda self: self.singles)
    @rule(data=st.data(), title=st.none() | titles, shift=st.none() | st.integers(-20 * 24, 20 * 24),
          duration=durations)  # fmt: skip
    def update_single(self, data: st.DataObject, title: str | None, shift: int | None, duration: dt.timedelta) -> None:
        self._count("update_single")
        eid = data.draw(st.sampled_from(list(self.singles)), label="single")
        ev = self.singles[eid]
        if title is None and shift is None:
            title = "renamed"
        kw: dict[str, Any] = {}
        if title is not None:
            ev.title = kw["title"] = self._title(title)
        if shift is not None:
            ev.start = kw["start"] = ev.start + dt.timedelta(hours=shift)
            ev.end = kw["end"] = ev.start + duration
        self.handle.update(eid, **kw)

    @precondition(lambda self: self.singles)
    @rule(data=st.data())
    def delete_single(self, data: st.DataObject) -> None:
        self._count("delete_single")
        eid = data.draw(st.sampled_from(list(self.singles)), label="single")
        del self.singles[eid]
        self.handle.delete(eid)

    @rule(title=titles, h=st.integers(min_value=-40 * 24, max_value=92 * 24), duration=durations,
          freq=st.sampled_from(["DAILY", "WEEKLY"]), count=st.integers(min_value=2, max_value=8))  # fmt: skip
    def create_series(self, title: str, h: int, duration: dt.timedelta, freq: str, count: int) -> None:
        self._count("create_series")
        title = self._title(title)
        start = at_hour(h)
        sid = self.handle.create_series(title, start, start + duration, freq=freq, count=count)
        step = dt.timedelta(days=1 if freq == "DAILY" else 7)
        self.series[sid] = Series(title, start, duration, step, count)

    @precondition(lambda self: any(not s.moved for s in self.series.values()))
    @rule(data=st.data(), title=titles)
    def rename_series(self, data: st.DataObject, title: str) -> None:
        # Only series without moved occurrences: whether an exception follows its master's new title
        # differs by provider (a copy at move time vs an override of start/end only).
        self._count("rename_series")
        sid = data.draw(st.sampled_from([k for k, s in self.series.items() if not s.moved]), label="series")
        self.series[sid].title = self._title(title)
        self.handle.rename_series(sid, self.series[sid].title)

    @precondition(lambda self: self.series)
    @rule(data=st.data())
    def delete_series(self, data: st.DataObject) -> None:
        self._count("delete_series")
        sid = data.draw(st.sampled_from(list(self.series)), label="series")
        del self.series[sid]
        self.handle.delete_series(sid)

    def _slot(self, data: st.DataObject) -> tuple[str, Series, int] | None:
        candidates = [k for k, s in self.series.items() if len(s.untouched()) > 1]
        if not candidates:
            return None
        sid = data.draw(st.sampled_from(candidates), label="series")
        s = self.series[sid]
        return sid, s, data.draw(st.sampled_from(s.untouched()), label="slot")

    @precondition(lambda self: any(len(s.untouched()) > 1 for s in self.series.values()))
    @rule(data=st.data())
    def cancel_occurrence(self, data: st.DataObject) -> None:
        self._count("cancel_occurrence")
        found = self._slot(data)
        assert found is not None
        sid, s, k = found
        s.cancelled.add(k)
        self.handle.cancel_occurrence(sid, s.slot(k))

    @precondition(lambda self: any(len(s.untouched()) > 1 for s in self.series.values()))
    @rule(data=st.data(), shift=st.integers(min_value=-30, max_value=30).filter(bool))
    def move_occurrence(self, data: st.DataObject, shift: int) -> None:
        self._count("move_occurrence")
        found = self._slot(data)
        assert found is not None
        sid, s, k = found
        start = s.slot(k) + dt.timedelta(hours=shift)
        s.moved[k] = (start, start + s.duration)
        self.handle.move_occurrence(sid, s.slot(k), start, start + s.duration)

    @rule()
    def expire_cursor(self) -> None:
        self._count("expire_cursor")
        self.stats.expiries += 1
        self.handle.expire_cursor()

    @precondition(lambda self: self.pending_faults < 3)  # the retry policy allows 4 failures per request
    @rule(fault=st.sampled_from(["rate_limit", "server_error", "drop"]))
    def inject_fault(self, fault: str) -> None:
        self._count("inject_fault")
        if fault not in self.handle.faults:
            return
        self.stats.faults += 1
        self.pending_faults += 1
        self.handle.inject(fault)

    # -- syncs --------------------------------------------------------------------------------

    @rule(days=st.integers(min_value=1, max_value=3))
    def advance_clock(self, days: int) -> None:
        """A day (or a few) passes: the window moves, and occurrences enter and leave it."""
        self._count("advance_clock")
        self.mirror.advance(dt.timedelta(days=days))
        self.window = self.mirror.window

    @rule()
    def sync(self) -> None:
        self._count("sync")
        self.stats.syncs += 1
        start = len(self.mirror.batches)
        report = run(self.mirror.sync())
        assert report is not None
        problems = run_problems(self.mirror.batches[start:])
        assert not problems, problems
        # A held sweep (cursor expiry after mass deletion) is the engine being careful, not a failure.
        assert all(r.error is None for r in report.calendars), [r.error for r in report.calendars]
        self.pending_faults = 0  # consumed: the first request retries through all of them

    @rule(pages=st.integers(min_value=1, max_value=3))
    def killed_after_pages(self, pages: int) -> None:
        self._count("killed_after_pages")
        if run(self.mirror.sync(kill_after_pages=pages)) is None:
            self.stats.kills += 1
        self._after_kill()

    @rule(delay=st.floats(min_value=0.0, max_value=0.04))
    def killed_after_delay(self, delay: float) -> None:
        self._count("killed_after_delay")
        if run(self.mirror.sync(kill_after=delay)) is None:
            self.stats.kills += 1
        self._after_kill()

    def _after_kill(self) -> None:
        # Faults may be left unconsumed by a killed run; drop them so the budget stays exact.
        self.handle.clear_faults()
        self.pending_faults = 0

    @rule()
    def check(self) -> None:
        self._count("check")
        self.converge_and_compare()

    def teardown(self) -> None:
        self.converge_and_compare()
        start = len(self.mirror.batches)
        report = run(self.mirror.sync())
        assert report is not None and report.ok
        spurious = self.mirror.batches[start:]
        assert not spurious, f"a quiet round published {len(spurious)} batches: {spurious[:3]}"

    @invariant()
    def stream_reproduces_the_store(self) -> None:
        """Every published batch applied in order, by key, gives exactly the store's two views."""
        if not self.mirror.config.store_path.exists():
            return
        problems = run(self.mirror.replica_problems(self.replica, self.applied))
        self.applied = len(self.mirror.batches)
        assert not problems, "the change stream != the store:\n" + "\n".join(problems[:30])

    # -- the invariant -----------------------------------------------------------------------------

    def converge_and_compare(self) -> None:
        self.stats.checks += 1
        self.handle.clear_faults()
        self.pending_faults = 0
        report = run(self.mirror.converge())
        assert report.ok, [(r.error, r.sweep_held) for r in report.calendars]
        snap = run(self.mirror.snapshot())
        self._compare_with_model(snap)
        oracle = self.mirror.fresh(f"oracle{self.stats.checks}")
        assert run(oracle.sync()) is not None
        # A window-bound cursor's mirror holds its window plus slack as of its anchoring: compared
        # with a fresh listing over the window the views show.
        windowed = self.handle.plugin_name in WINDOWED_SERIES_VIEW
        mine = run(self.mirror.snapshot(windowed=True)) if windowed else snap
        theirs = run(oracle.snapshot(windowed=windowed))
        problems = exempt(self.handle.plugin_name, mine).diff(exempt(self.handle.plugin_name, theirs))
        assert not problems, "incremental mirror != fresh full sync:\n" + "\n".join(problems[:30])

    def expected_instances(self) -> dict[tuple[str, str], tuple[str | None, str, str]]:
        w = self.window
        out: dict[tuple[str, str], tuple[str | None, str, str]] = {}
        for eid, ev in self.singles.items():
            if w.overlaps(ev.start, ev.end):
                out["", eid] = (ev.title, ev.start.strftime(FMT), ev.end.strftime(FMT))
        for sid, s in self.series.items():
            for k in range(s.count):
                if k in s.cancelled:
                    continue
                start, end = s.moved.get(k, (s.slot(k), s.slot(k) + s.duration))
                if w.overlaps(start, end):
                    out[sid, s.slot(k).strftime(FMT)] = (s.title, start.strftime(FMT), end.strftime(FMT))
        return out

    def _compare_with_model(self, snap: Any) -> None:
        snap = exempt(self.handle.plugin_name, snap)
        got = {
            k: (e["title"], e["start"]["datetime"], e["end"]["datetime"])
            for k, e in snap.instances.items()
            if e["status"] != "cancelled"
        }
        want = self.expected_instances()
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        assert not (missing or extra or wrong), (
            f"instance view != model: missing {missing[:5]}, extra {extra[:5]}, "
            f"wrong {[(k, got[k], want[k]) for k in wrong[:5]]}"
        )
        held = {
            i: e for i, e in snap.series.items() if e["kind"] in ("single", "series") and e["status"] != "cancelled"
        }
        live = {**{i: s.title for i, s in self.singles.items()}, **{i: s.title for i, s in self.series.items()}}
        visible = {k[1] if not k[0] else k[0] for k in want}
        assert set(held) <= set(live), f"series view holds what the server no longer has: {set(held) - set(live)}"
        assert visible <= set(held), f"series view misses {visible - set(held)}"
        if self.handle.plugin_name not in WINDOWED_SERIES_VIEW:
            assert set(held) == set(live), f"series view misses {set(live) - set(held)}"
        for i, e in held.items():
            assert e["title"] in (live[i], None), (i, e["title"], live[i])  # None: blanked by an exemption
            model = self.singles.get(i) or self.series[i]
            assert e["start"]["datetime"] == model.start.strftime(FMT), (i, e["start"], model.start)


@attrs.frozen
class Exemption:
    """A named, documented divergence the machine found in a provider (not in the engine or store):
    the listed fields of the listed kinds (and statuses) are not compared for that provider. Each
    has a strict-xfail reproducer below, so fixing the provider fails that test until the exemption
    goes."""

    name: str
    provider: str
    kinds: frozenset[str]
    fields: frozenset[str]
    cancelled_only: bool = False


EXEMPTIONS: tuple[Exemption, ...] = ()  # none left: each one found was a provider bug, now fixed


def exempt(provider: str, snap: Snapshot) -> Snapshot:
    """``snap`` with the fields its provider's named exemptions cover blanked out."""
    rules = [x for x in EXEMPTIONS if x.provider == provider]
    if not rules:
        return snap

    def blank(e: Mapping[str, Any]) -> Mapping[str, Any]:
        out = dict(e)
        for x in rules:
            if e["kind"] in x.kinds and (not x.cancelled_only or e["status"] == "cancelled"):
                out.update(dict.fromkeys(x.fields))
        return out

    return Snapshot(series={k: blank(e) for k, e in snap.series.items()},
                    instances={k: blank(e) for k, e in snap.instances.items()})  # fmt: skip


def summary_lines() -> list[str]:
    """One line per provider, printed at the end of the run by tests/conftest.py."""
    return [
        f"stateful {name}: {s.examples} examples, {s.steps} steps ({s.syncs} syncs, {s.kills} killed, "
        f"{s.expiries} expiries, {s.faults} faults, {s.checks} checks)"
        for name, s in STATS.items()
    ]


@pytest.fixture(scope="module")
def summary() -> Iterator[dict[str, Stats]]:
    yield STATS


@pytest.mark.parametrize("provider", ["google", "graph", "feishu"])
def test_mirror_converges_to_the_server(
    provider: str,
    calbridge_emulators: EmulatorPool,
    calbridge_slow: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    summary: dict[str, Stats],
) -> None:
    if provider == "google":
        GoogleHandle.small_pages(monkeypatch)
    handle = HANDLES[provider](calbridge_emulators.serve(provider))
    assert isinstance(handle, SeriesHandle)
    stats = summary.setdefault(provider, Stats())
    examples, steps = PROFILES["slow" if calbridge_slow else "default"]
    machine = type(f"{provider.title()}SyncMachine", (SyncMachine,),
                   {"handle": handle, "directory": tmp_path, "stats": stats})  # fmt: skip
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=not calbridge_slow,  # CI runs the same examples every time; --slow explores
            ),
        )
    finally:
        handle.clear_faults()


# -- reproducers of the named exemptions (strict xfail: a provider fix makes them fail until the
#    exemption is removed) -------------------------------------------------------------------------


def _titles_after_rename(provider: str, pool: EmulatorPool, tmp_path: Path, *, expire: bool) -> tuple[Any, Any]:
    handle = HANDLES[provider](pool.serve(provider))
    assert isinstance(handle, SeriesHandle)
    handle.reset()
    mirror = Mirror(handle, tmp_path / provider, now=NOW)
    first = DAY0 + dt.timedelta(days=1, hours=9)
    sid = handle.create_series("before", first, first + dt.timedelta(hours=1), freq="DAILY", count=3)
    handle.cancel_occurrence(sid, first + dt.timedelta(days=1))
    assert run(mirror.sync()) is not None
    if expire:
        handle.expire_cursor()
    handle.rename_series(sid, "after")
    run(mirror.converge())
    oracle = mirror.fresh()
    run(oracle.sync())
    return run(mirror.snapshot()), run(oracle.snapshot())


def test_google_cancelled_stub_follows_a_renamed_series(
    calbridge_emulators: EmulatorPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    GoogleHandle.small_pages(monkeypatch)
    got, want = _titles_after_rename("google", calbridge_emulators, tmp_path, expire=False)
    assert not got.diff(want)


def test_graph_full_listing_after_expiry_sees_a_renamed_series(calbridge_emulators: EmulatorPool,
                                                               tmp_path: Path) -> None:  # fmt: skip
    got, want = _titles_after_rename("graph", calbridge_emulators, tmp_path, expire=True)
    assert not got.diff(want)
