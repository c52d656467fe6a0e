"""Store conformance, mark-and-sweep: what a sweep removes (in batches, within its scope, cascading, one
calendar only), a held sweep, and quarantined payloads (recorded, cleared, kept out of the sweep)."""

from __future__ import annotations

import datetime as dt

import attrs

from ..model import Change, Delete
from ..provider import Quarantined
from ..store.base import PendingSweep, Round, Store
from ._store_build import (
    CAL,
    DAY,
    HOUR,
    T0,
    A,
    StoreOpener,
    by_key,
    dels,
    ev,
    exc,
    key,
    occ,
    series,
    state,
    ups,
    window,
    with_store,
)


class SweepCases:
    """``sweep_count`` and ``sweep_batch``, held sweeps in ``status``, and the quarantine."""

    def test_sweep_without_scope_in_batches(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(mark=1), ups(*(ev(f"e{i}", T0 + i * HOUR) for i in range(5))))
            await store.commit_page(state(mark=2), ups(ev("e0")))
            sweep = PendingSweep(mark=2)
            assert await store.sweep_count(A, CAL, sweep) == (4, 5)

            removed: list[str] = []
            for n in range(1, 4):
                saved = state(mark=2, sweep=attrs.evolve(sweep, candidates=n))
                batch = await store.sweep_batch(saved, sweep, limit=2)
                assert len(batch) <= 2 and all(isinstance(c, Delete) for c in batch)
                removed += [c.key.id for c in batch if isinstance(c, Delete)]
                assert await store.get_state(A, CAL) == saved  # each batch saves its state
            assert sorted(removed) == ["e1", "e2", "e3", "e4"]
            assert batch == []
            assert await store.sweep_count(A, CAL, sweep) == (0, 1)

        with_store(open_store, case)

    def test_sweep_scope_rules(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            scope = window(7)
            rows = [
                ev("inside", T0 + DAY),
                ev("before", T0 - DAY),
                ev("ends_at_start", T0 - HOUR),  # [T0-1h, T0) does not overlap
                ev("straddles_start", T0 - HOUR, length=2 * HOUR),
                ev("zero_at_start", T0, length=dt.timedelta(0)),
                ev("zero_at_end", T0 + 7 * DAY, length=dt.timedelta(0)),
                ev("after", T0 + 8 * DAY),
                series("series_before", T0 - 30 * DAY),
                series("series_inside", T0 + DAY),
                series("series_after", T0 + 9 * DAY),
            ]
            await store.commit_page(state(mark=1), ups(*rows))
            await store.commit_page(state(mark=2), ups(ev("fresh", T0 + 2 * DAY)))
            sweep = PendingSweep(mark=2, scope=scope)
            # Series are always in scope: every unlisted series is gone, whenever it began.
            assert await store.sweep_count(A, CAL, sweep) == (6, 11)
            removed = await store.sweep_batch(state(mark=2), sweep, limit=100)
            assert sorted(by_key(removed)) == [
                "inside",
                "series_after",
                "series_before",
                "series_inside",
                "straddles_start",
                "zero_at_start",
            ]
            left = await store.get_events(A, CAL, [e.id for e in rows] + ["fresh"])
            assert sorted(left) == sorted(["before", "ends_at_start", "zero_at_end", "after", "fresh"])

        with_store(open_store, case)

    def test_a_swept_series_takes_its_exceptions_and_occurrences(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            s, x = series("s"), exc("s", T0 + DAY, T0 + DAY + HOUR)
            await store.commit_page(state(mark=1), ups(s, x))
            occurrences = [occ("s", T0), occ("s", T0 + 2 * DAY)]
            await store.replace_occurrences(A, CAL, ["s"], window(3), occurrences)
            removed = by_key(await store.sweep_batch(state(mark=2), PendingSweep(mark=2), limit=10))
            assert removed == {e.id: Delete(key=key(e.id), previous=e) for e in (s, x, *occurrences)}
            assert await store.get_events(A, CAL, ["s", x.id]) == {}
            assert await store.query(expand=True) == []
            assert (await store.status())[0].occurrences == 0

        with_store(open_store, case)

    def test_a_sweep_leaves_other_calendars_alone(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            # The other calendar's rows come first and are as old: a sweep must neither take them nor
            # stop at them (one row a batch).
            await store.commit_page(state(mark=1, cal="other"), ups(ev("theirs", cal="other"), ev("x", cal="other")))
            stale = Quarantined(event_id=None, error="unreadable once", payload="old")
            await store.commit_page(state(mark=1), ups(ev("mine"), ev("also mine", T0 + HOUR)), [stale])
            await store.commit_page(state(mark=1, cal="other"), [], [stale])
            sweep = PendingSweep(mark=2)
            assert await store.sweep_count(A, CAL, sweep) == (2, 2)
            swept: list[Change] = []
            while batch := await store.sweep_batch(state(mark=2), sweep, limit=1):
                swept += batch
            assert by_key(swept) == {
                e.id: Delete(key=key(e.id), previous=e) for e in (ev("mine"), ev("also mine", T0 + HOUR))
            }
            assert sorted(await store.get_events(A, "other", ["theirs", "x"])) == ["theirs", "x"]
            assert await store.sweep_count(A, "other", sweep) == (2, 2)
            assert [k.calendar_id for k, _ in await store.quarantined()] == ["other"]

        with_store(open_store, case)

    def test_a_held_sweep_keeps_the_mirror_and_the_last_success(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            t = [T0 + i * HOUR for i in range(5)]
            await store.commit_page(state(mark=1), ups(*(ev(f"e{i}", T0 + i * HOUR) for i in range(4))))
            await store.record_result(A, CAL, at=t[0], error=None)
            owed = PendingSweep(mark=2)
            await store.commit_page(state(mark=2, sweep=owed), ups(ev("e0")))
            (st,) = await store.status()
            assert (st.sweep_pending, st.sweep_held, st.round) == (True, False, None)
            await store.record_result(A, CAL, at=t[1], error=None)  # a sweep still owed is no success
            assert (await store.status())[0].last_success == t[0]

            held = attrs.evolve(owed, held=True, candidates=3, total=4)
            await store.save_state(state(mark=2, sweep=held))
            (st,) = await store.status()
            assert (st.sweep_pending, st.sweep_held, st.events) == (False, True, 4)
            await store.record_result(A, CAL, at=t[2], error=None)
            assert (await store.status())[0].last_success == t[0]
            assert await store.sweep_count(A, CAL, held) == (3, 4)  # nothing was removed meanwhile

            await store.save_state(state(mark=2))  # released and done
            await store.record_result(A, CAL, at=t[3], error=None)
            (st,) = await store.status()
            assert (st.last_success, st.sweep_held, st.sweep_pending) == (t[3], False, False)
            await store.save_state(state(mark=3, round=Round.FULL))
            assert (await store.status())[0].round is Round.FULL

        with_store(open_store, case)

    def test_quarantine_recorded_and_cleared(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            bad = [
                Quarantined(event_id="q1", error="bad start", payload="{}"),
                Quarantined(event_id=None, error="no id", payload="["),
                Quarantined(event_id="q2", error="bad end", payload="{}"),
            ]
            await store.commit_page(state(), [], bad)
            await store.commit_page(state(), [], bad)  # recorded once per id or payload
            listed = {k.id: err for k, err in await store.quarantined(A)}
            assert len(listed) == 3 and listed.pop("q1") == "bad start" and listed.pop("q2") == "bad end"
            (anonymous,) = listed
            assert anonymous.startswith("payload:") and listed[anonymous] == "no id"
            assert (await store.status())[0].quarantined == 3
            await store.commit_page(state(), ups(ev("q1")))  # readable again
            await store.commit_page(state(), dels("q2"))  # gone from the server
            assert [k.id for k, _ in await store.quarantined()] == [anonymous]
            assert await store.quarantined("nobody") == []

        with_store(open_store, case)

    def test_quarantine_outside_a_page_is_recorded_alone(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(mark=1), ups(series("s")))
            bad = Quarantined(event_id="s", error="bad instance", payload="{}")
            await store.record_quarantined(A, CAL, [bad], mark=2)
            assert [(k.id, err) for k, err in await store.quarantined(A)] == [("s", "bad instance")]
            assert await store.get_state(A, CAL) == state(mark=1)  # nothing else saved
            # Still on the server, just unreadable now: the stored copy is kept out of the sweep.
            assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (0, 1)

        with_store(open_store, case)

    def test_a_quarantined_event_keeps_its_last_good_copy(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            good = ev("q", title="last good")
            stale = Quarantined(event_id=None, error="unreadable once", payload="old")
            await store.commit_page(state(mark=1), ups(good, ev("gone")), [stale])
            # The next full listing (mark 2) cannot read ``q``: still on the server, so not swept.
            await store.commit_page(state(mark=2), [], [Quarantined(event_id="q", error="unreadable", payload="{")])
            sweep = PendingSweep(mark=2)
            assert await store.sweep_count(A, CAL, sweep) == (1, 2)
            while await store.sweep_batch(state(mark=2, sweep=sweep), sweep):
                pass
            assert await store.get_events(A, CAL, ["q", "gone"]) == {"q": good}
            # A finished sweep also drops the payloads that listing did not return again.
            assert [(k.id, err) for k, err in await store.quarantined()] == [("q", "unreadable")]

        with_store(open_store, case)
