"""The change stream, against every built-in emulator: what a cancelled or moved occurrence, a deleted
series and a moved window publish, the round's last batch, and the summary counting exactly that.

The property test in ``tests/test_stateful.py`` checks the general claim (the stream reproduces the
store after every step); these pin the cases that were wrong, one by one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from calbridge._run import CalendarResult, ChangeBatch
from calbridge.model import Change, Delete, Kind, Status, Upsert
from calbridge.store.base import CalendarStatus
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.kit import EmulatorPool, Mirror, SeriesHandle, run
from calbridge.testing.replay import Replica, run_problems

from .stateful.handles import HANDLES, GoogleHandle

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
FIRST = NOW.replace(hour=9) + dt.timedelta(days=2)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
PROVIDERS = ["google", "graph", "feishu"]


class Scene:
    """One provider's emulator, a fresh calendar, a mirror and a consumer replaying its stream."""

    def __init__(self, provider: str, pool: EmulatorPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        if provider == "google":
            GoogleHandle.small_pages(monkeypatch)
        handle = HANDLES[provider](pool.serve(provider))
        assert isinstance(handle, SeriesHandle)
        handle.reset()
        self.provider = provider
        self.handle = handle
        self.mirror = Mirror(handle, tmp_path / provider, now=NOW)
        self.replica = Replica()
        self.seen = 0

    def sync(self) -> tuple[CalendarResult, list[Change]]:
        """One run; returns its result and every change it published, after checking the replica."""
        start = len(self.mirror.batches)
        report = run(self.mirror.sync())
        assert report is not None and report.ok, [r.error for r in report.calendars]
        batches: list[ChangeBatch] = self.mirror.batches[start:]
        assert not run_problems(batches), run_problems(batches)
        problems = run(self.mirror.replica_problems(self.replica, self.seen))
        self.seen = len(self.mirror.batches)
        assert not problems, problems
        # ``status`` counts what the stream's views hold: events (singles, series, exceptions), occurrences.
        (status,) = run(self._status())
        held = [e.kind for e in self.replica.rows.values()]
        assert (status.events, status.occurrences) == (
            sum(k is not Kind.OCCURRENCE for k in held),
            sum(k is Kind.OCCURRENCE for k in held),
        )
        (result,) = report.calendars
        return result, [c for b in batches for c in b.changes]


    async def _status(self) -> list[CalendarStatus]:
        async with SqliteStore(self.mirror.config.store_path) as store:
            return await store.status()


def _key(change: Change) -> str:
    return change.key.id if isinstance(change, Delete) else change.event.id


def _slot_changes(changes: list[Change], series_id: str, original: dt.datetime) -> list[Change]:
    """The published changes that concern one slot of a series (by what they carry or carried)."""
    out = []
    for c in changes:
        ev = c.previous if isinstance(c, Delete) else c.event
        assert ev is not None, "a published delete carries what it deleted"
        if ev.series_id == series_id and ev.original_start is not None and ev.original_start.utc() == original:
            out.append(c)
    return out


def _assert_counts(result: CalendarResult, changes: list[Change]) -> None:
    """The summary counts exactly what was published, by the kind of what changed."""
    occ = [c for c in changes if (c.kind if isinstance(c, Delete) else c.event.kind) is Kind.OCCURRENCE]
    rest = [c for c in changes if c not in occ]
    assert result.upserts == sum(isinstance(c, Upsert) for c in rest)
    assert result.deletes == sum(isinstance(c, Delete) for c in rest)
    assert result.occurrences == sum(isinstance(c, Upsert) for c in occ)
    assert result.occurrences_deleted == sum(isinstance(c, Delete) for c in occ)


@pytest.fixture(params=PROVIDERS)
def scene(
    request: pytest.FixtureRequest, calbridge_emulators: EmulatorPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Scene:
    return Scene(request.param, calbridge_emulators, tmp_path, monkeypatch)


def test_first_sync_creates_and_counts_occurrences_as_occurrences(scene: Scene) -> None:
    scene.handle.create_series("standup", FIRST, FIRST + HOUR, freq="DAILY", count=5)
    result, changes = scene.sync()
    assert all(isinstance(c, Upsert) and c.created for c in changes)
    kinds = sorted(c.event.kind.value for c in changes if isinstance(c, Upsert))
    # Graph's delta carries the series master and its occurrences; the others' expansion gives them.
    assert kinds == ["occurrence"] * 5 + ["series"]
    assert (result.upserts, result.occurrences) == (1, 5)
    _assert_counts(result, changes)
    quiet_result, quiet = scene.sync()
    assert quiet == [] and (quiet_result.upserts, quiet_result.occurrences) == (0, 0)


def test_cancelling_an_occurrence_is_one_change_of_its_slot(scene: Scene) -> None:
    sid = scene.handle.create_series("standup", FIRST, FIRST + HOUR, freq="DAILY", count=5)
    scene.sync()
    slot = FIRST + 2 * DAY
    scene.handle.cancel_occurrence(sid, slot)
    result, changes = scene.sync()
    (only,) = _slot_changes(changes, sid, slot)
    if scene.provider == "graph":
        # Graph reports a cancelled occurrence as removed: it simply is not there.
        assert isinstance(only, Delete) and only.kind is Kind.OCCURRENCE
    else:
        # The exception takes the occurrence's place (and, on Google, its id): an update, not a delete.
        assert isinstance(only, Upsert) and only.event.kind is Kind.EXCEPTION
        assert only.event.status is Status.CANCELLED
    assert len({_key(c) for c in changes}) == len(changes)
    _assert_counts(result, changes)


def test_moving_an_occurrence_publishes_the_exception_once(scene: Scene) -> None:
    sid = scene.handle.create_series("standup", FIRST, FIRST + HOUR, freq="DAILY", count=5)
    scene.sync()
    slot = FIRST + DAY
    scene.handle.move_occurrence(sid, slot, slot + 3 * HOUR, slot + 4 * HOUR)
    result, changes = scene.sync()
    mine = _slot_changes(changes, sid, slot)
    upserts = [c for c in mine if isinstance(c, Upsert)]
    assert [c.event.kind for c in upserts] == [Kind.EXCEPTION]
    assert upserts[0].event.start.utc() == slot + 3 * HOUR
    assert all(c.previous is not None and c.previous.kind is Kind.OCCURRENCE for c in mine if isinstance(c, Delete))
    _assert_counts(result, changes)


def test_deleting_a_series_deletes_what_it_held_with_what_each_was(scene: Scene) -> None:
    sid = scene.handle.create_series("standup", FIRST, FIRST + HOUR, freq="DAILY", count=4)
    scene.sync()
    scene.handle.move_occurrence(sid, FIRST + DAY, FIRST + DAY + 2 * HOUR, FIRST + DAY + 3 * HOUR)
    scene.sync()
    scene.handle.delete_series(sid)
    result, changes = scene.sync()
    assert changes and all(isinstance(c, Delete) and c.previous is not None for c in changes)
    kinds = sorted(c.kind.value for c in changes if isinstance(c, Delete) and c.kind is not None)
    assert kinds == ["exception"] + ["occurrence"] * 3 + ["series"]
    assert all(c.previous.title == "standup" for c in changes if isinstance(c, Delete) and c.previous)
    _assert_counts(result, changes)
    assert (result.deletes, result.occurrences_deleted) == (2, 3)


def test_a_moved_window_publishes_what_left_and_what_entered(scene: Scene) -> None:
    start = NOW.replace(hour=9) - dt.timedelta(days=31)  # the window reaches back 30 days
    scene.handle.create_series("daily", start, start + HOUR, freq="DAILY", count=40)  # still held a month on
    if scene.provider == "graph":  # so that its re-anchor's sweep below is not a mass deletion
        for i in range(40):
            scene.handle.create_single(f"stays {i}", FIRST + i * HOUR, FIRST + (i + 1) * HOUR)
    scene.sync()
    scene.mirror.advance(2 * DAY)
    result, changes = scene.sync()
    if scene.provider == "graph" and not result.full:
        # Its window-bound cursor keeps what it listed (the window plus slack) until it re-anchors:
        # on the first day of the calendar's own slack-long cycle (its phase a hash of the calendar's
        # name, so within these two days for some names), at the latest when the slack is used up;
        # the re-anchoring full listing's sweep then publishes what left.
        assert not [c for c in changes if isinstance(c, Delete)]
        scene.mirror.advance(28 * DAY)  # 30 days in all: the slack
        result, changes = scene.sync()
    gone = [c for c in changes if isinstance(c, Delete)]
    assert gone and all(c.kind is Kind.OCCURRENCE for c in gone)
    _assert_counts(result, changes)


def test_the_last_batch_ends_a_round_that_changed_something(scene: Scene) -> None:
    scene.handle.create_single("one", FIRST, FIRST + HOUR)
    start = len(scene.mirror.batches)
    scene.sync()
    batches = scene.mirror.batches[start:]
    assert batches[-1].last and batches[-1].changes == ()
    assert not any(b.last for b in batches[:-1])
    start = len(scene.mirror.batches)
    scene.sync()
    assert scene.mirror.batches[start:] == []  # a quiet round publishes nothing, not even the marker
