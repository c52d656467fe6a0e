"""Store conformance, occurrences and views: expansions replaced within a window, pruning, stale series,
exceptions shadowing occurrences, the series and instance views, the mirror view a provider reads, and
the published changes reproducing both views."""

from __future__ import annotations

import asyncio
import datetime as dt

import attrs

from ..model import UTC, Delete, Kind, Status, Upsert
from ..store.base import PendingSweep, Store
from ._store_build import (
    CAL,
    DAY,
    HOUR,
    T0,
    A,
    Follower,
    StoreOpener,
    by_key,
    day_event,
    dels,
    ev,
    exc,
    ids,
    key,
    occ,
    occ_id,
    series,
    state,
    ups,
    window,
    with_store,
)


class ExpansionCases:
    """``replace_occurrences``, ``prune_occurrences``, ``dirty_series``, ``query`` and the mirror view."""

    def test_replace_occurrences_within_a_window(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            w = window(3)
            o1, o2, o3 = occ("s", T0), occ("s", T0 + DAY), occ("s", T0 + 2 * DAY)
            far, other = occ("s", T0 + 10 * DAY), occ("t", T0)
            first = await store.replace_occurrences(A, CAL, ["s", "t"], window(11), [o1, far, other])
            assert by_key(first) == {e.id: Upsert(event=e, created=True) for e in (o1, far, other)}
            # Only the series named, only inside the window: ``far`` and ``t`` stay.
            applied = await store.replace_occurrences(A, CAL, ["s"], w, [o1, o2, o3])
            assert by_key(applied) == {e.id: Upsert(event=e, created=True) for e in (o2, o3)}
            o2b = attrs.evolve(o2, title="moved room")
            applied = await store.replace_occurrences(A, CAL, ["s"], w, [o1, o2b])
            assert by_key(applied) == {
                o2b.id: Upsert(event=o2b, created=False),
                o3.id: Delete(key=key(o3.id), previous=o3),
            }
            assert await store.replace_occurrences(A, CAL, ["s"], w, [o1, o2b]) == []
            assert sorted(ids(await store.query(expand=True))) == sorted([o1.id, o2b.id, far.id, other.id])
            assert ids(await store.query()) == []  # occurrences are not in the series view

        with_store(open_store, case)

    def test_prune_occurrences_outside_the_window_or_of_dead_series(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.commit_page(state(), ups(series("s"), series("dead")))
            early, inside, late = occ("s", T0 - DAY), occ("s", T0 + DAY), occ("s", T0 + 5 * DAY)
            orphan = occ("dead", T0 + DAY)
            await store.replace_occurrences(
                A, CAL, ["s", "dead"], window(10, T0 - 2 * DAY), [early, inside, late, orphan]
            )
            assert await store.dirty_series(A, CAL) == []
            await store.commit_page(state(), ups(attrs.evolve(series("dead"), title="changed")))
            assert await store.dirty_series(A, CAL) == ["dead"]
            pruned = await store.prune_occurrences(A, CAL, ["s"], window(3))
            assert by_key(pruned) == {o.id: Delete(key=key(o.id), previous=o) for o in (early, late, orphan)}
            assert ids(await store.query(expand=True)) == [inside.id]
            assert await store.dirty_series(A, CAL) == []  # a series not live has nothing left to expand
            assert await store.prune_occurrences(A, CAL, ["s"], window(3)) == []

        with_store(open_store, case)

    def test_stale_series_are_kept_until_expanded(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as store:
                s, t = series("s"), series("t", T0 + HOUR)
                await store.commit_page(state(), ups(s, t, ev("single")))
                assert await store.dirty_series(A, CAL) == ["s", "t"]
                await store.replace_occurrences(A, CAL, ["s", "t"], window(3), [occ("s", T0), occ("t", T0 + HOUR)])
                assert await store.dirty_series(A, CAL) == []
                await store.commit_page(state(), ups(s, t))  # unchanged: nothing is stale
                assert await store.dirty_series(A, CAL) == []
                await store.commit_page(state(), ups(exc("s", T0 + DAY, T0 + DAY + HOUR)))
                # A series that stops being one must lose its occurrences too.
                await store.commit_page(state(), ups(attrs.evolve(t, kind=Kind.SINGLE)))
                assert await store.dirty_series(A, CAL) == ["s", "t"]
            async with open_store() as store:  # a run killed before expanding loses nothing
                assert await store.dirty_series(A, CAL) == ["s", "t"]
                await store.replace_occurrences(A, CAL, ["s"], window(3), [occ("s", T0)])
                assert await store.dirty_series(A, CAL) == ["t"]
                await store.commit_page(state(), dels(exc("s", T0 + DAY).id))  # gives its slot back
                assert await store.dirty_series(A, CAL) == ["s", "t"]

        asyncio.run(main())

    def test_an_exception_takes_its_slot_once(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            slots = [T0 + i * DAY for i in range(4)]
            await store.commit_page(state(), ups(series("s")))
            await store.replace_occurrences(A, CAL, ["s"], window(4), [occ("s", t) for t in slots])
            # Taking the occurrence's id (Google, Feishu): one update of that key.
            same = exc("s", slots[1], slots[1] + 2 * HOUR, id=occ_id("s", slots[1]), title="moved")
            assert await store.commit_page(state(), ups(same)) == [Upsert(event=same, created=False)]
            # Under an id of its own: the exception appears, the occurrence it hides goes.
            own = exc("s", slots[2], slots[2] + 3 * HOUR, title="moved too")
            assert by_key(await store.commit_page(state(), ups(own))) == {
                own.id: Upsert(event=own, created=True),
                occ_id("s", slots[2]): Delete(key=key(occ_id("s", slots[2])), previous=occ("s", slots[2])),
            }
            # Expanding again under the exceptions changes nothing anyone can see, even their content.
            again = [occ("s", t, title="new title" if t in slots[1:3] else "t") for t in slots]
            assert await store.replace_occurrences(A, CAL, ["s"], window(4), again) == []
            shown = await store.query(expand=True)
            assert ids(shown) == [occ_id("s", slots[0]), same.id, own.id, occ_id("s", slots[3])]
            # Deleting an exception gives its slot back to the series' occurrence, as it stands now.
            assert by_key(await store.commit_page(state(), dels(own.id))) == {
                own.id: Delete(key=key(own.id), previous=own),
                occ_id("s", slots[2]): Upsert(event=again[2], created=True),
            }
            assert await store.commit_page(state(), dels(same.id)) == [Upsert(event=again[1], created=False)]
            assert (await store.status())[0].occurrences == 4

        with_store(open_store, case)

    def test_instance_view_exception_wins_once(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            w = window(4)
            slots = [T0 + i * DAY for i in range(4)]
            moved = exc("s", slots[1], slots[1] + 5 * HOUR, id="s_moved", title="moved")
            gone = exc("s", slots[2], id="s_gone", status=Status.CANCELLED)
            # Moved out of the window: its slot inside the window must not reappear as an occurrence.
            away = exc("s", slots[3], T0 + 30 * DAY, id="s_away")
            other_cal = exc("s", slots[0], id="s_other", cal="other")
            await store.commit_page(state(), ups(series("s"), moved, gone, away, ev("lunch", slots[1])))
            await store.commit_page(state(cal="other"), ups(other_cal))
            await store.replace_occurrences(A, CAL, ["s"], w, [occ("s", t) for t in slots])

            shown = await store.query(calendar_id=CAL, window=w, expand=True)
            assert ids(shown) == [occ("s", slots[0]).id, "lunch", "s_moved"]
            assert shown[2].start.utc() == slots[1] + 5 * HOUR

            with_cancelled = await store.query(calendar_id=CAL, window=w, expand=True, include_cancelled=True)
            assert ids(with_cancelled) == [occ("s", slots[0]).id, "lunch", "s_moved", "s_gone"]
            assert with_cancelled[3].status is Status.CANCELLED

        with_store(open_store, case)

    def test_a_synced_occurrence_shadows_the_expanded_one(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            synced = ev("graph_occ", T0 + DAY, kind=Kind.OCCURRENCE, series_id="s", orig=T0 + DAY, title="synced")
            await store.commit_page(state(), ups(series("s"), synced))
            applied = await store.replace_occurrences(A, CAL, ["s"], window(2), [occ("s", T0), occ("s", T0 + DAY)])
            assert applied == [Upsert(event=occ("s", T0), created=True)]
            assert ids(await store.query(expand=True)) == [occ_id("s", T0), "graph_occ"]
            (status,) = await store.status()
            assert (status.events, status.occurrences) == (1, 2)

        with_store(open_store, case)

    def test_series_view(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            w = window(1)
            events = [
                series("old_series", T0 - 100 * DAY),
                series("late_series", T0 + 2 * DAY),
                exc("old_series", T0, T0 + HOUR, id="exc"),
                ev("synced_occ", T0 + 2 * HOUR, kind=Kind.OCCURRENCE, series_id="old_series", orig=T0 + 2 * HOUR),
                ev("single", T0 + 3 * HOUR),
                ev("cancelled", T0 + 4 * HOUR, status=Status.CANCELLED),
                ev("yesterday", T0 - DAY),
            ]
            await store.commit_page(state(), ups(*events))
            assert ids(await store.query(window=w)) == ["old_series", "exc", "single"]
            with_cancelled = await store.query(window=w, include_cancelled=True)
            assert ids(with_cancelled) == ["old_series", "exc", "single", "cancelled"]
            assert ids(await store.query()) == ["old_series", "yesterday", "exc", "single", "late_series"]
            assert ids(await store.query(account="nobody")) == []
            assert await store.series_ids(A, CAL) == ["late_series", "old_series"]

        with_store(open_store, case)

    def test_query_batches_are_the_query_as_it_is_read(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            events = [ev(f"e{i:02d}", T0 + (i % 7) * HOUR) for i in range(23)]
            events += [series("s", T0 - DAY), exc("s", T0, T0 + HOUR), ev("c", T0, status=Status.CANCELLED)]
            await store.commit_page(state(), ups(*events))
            await store.replace_occurrences(
                A, CAL, ["s"], window(9, T0 - DAY), [occ("s", T0 + d * DAY) for d in range(8)]
            )
            for kw in (
                {},
                {"expand": True},
                {"expand": True, "window": window(2), "include_cancelled": True},
                {"window": window(1, T0 + 2 * HOUR), "account": A, "calendar_id": CAL},
                {"account": "nobody"},
            ):
                batches = [b async for b in store.query_batches(batch=4, **kw)]
                assert all(0 < len(b) <= 4 for b in batches), kw
                assert [e for b in batches for e in b] == await store.query(**kw), kw
            async for _ in store.query_batches(batch=2):  # left early: the store still answers
                break
            assert len(await store.query()) == 25

        with_store(open_store, case)

    def test_all_day_overlap_and_sort(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            day = T0.date()
            midnight = dt.datetime.combine(day, dt.time(), UTC)
            rows = [day_event("allday", day), ev("b_at_midnight", midnight), ev("a_at_midnight", midnight)]
            await store.commit_page(state(), ups(*rows, ev("late", midnight + 23 * HOUR)))
            assert ids(await store.query(expand=True)) == ["a_at_midnight", "allday", "b_at_midnight", "late"]
            assert ids(await store.query(window=window(1, midnight + DAY), expand=True)) == []
            last_half_hour = window(1 / 48, midnight + 23 * HOUR + 30 * dt.timedelta(minutes=1))
            assert ids(await store.query(window=last_half_hour, expand=True)) == ["allday", "late"]
            assert ids(await store.query(window=window(1, midnight - DAY))) == []

        with_store(open_store, case)

    def test_the_mirror_view_reads(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            x2, x1 = exc("s", T0 + DAY, id="x2"), exc("s", T0 + 2 * DAY, id="x1", status=Status.CANCELLED)
            synced = ev("so", T0 + 3 * DAY, kind=Kind.OCCURRENCE, series_id="s", orig=T0 + 3 * DAY)
            dropped = series("dropped", status=Status.CANCELLED)
            await store.commit_page(state(), ups(series("s"), x2, x1, synced, dropped, exc("t", T0, id="tx")))
            await store.commit_page(state(cal="other"), ups(exc("s", T0, id="x0", cal="other")))
            await store.replace_occurrences(A, CAL, ["s"], window(1), [occ("s", T0)])
            # The events the sync stored, not the expanded occurrences; and only this calendar's.
            got = await store.get_events(A, CAL, ["s", "so", "x0", occ_id("s", T0), "nope"])
            assert sorted(got) == ["s", "so"] and got["so"] == synced
            assert await store.exceptions_of(A, CAL, ["s"]) == [x1, x2]
            assert ids(await store.exceptions_of(A, CAL, ["s", "t"])) == ["tx", "x1", "x2"]
            assert await store.exceptions_of(A, CAL, []) == []
            assert await store.series_ids(A, CAL) == ["s"]
            assert await store.series_ids(A, "other") == []

        with_store(open_store, case)

    def test_published_changes_reproduce_the_views(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            # Every write, its return applied by key (docs/design.md, "The change stream"): the replica
            # must equal the store's series view and whole instance view after each one.
            f = Follower(store)
            slots = [T0 + i * DAY for i in range(5)]
            s = series("s")
            await f.apply(store.commit_page(state(), ups(s, ev("a"), ev("b", T0 + HOUR))))
            await f.apply(store.replace_occurrences(A, CAL, ["s"], window(5), [occ("s", t) for t in slots]))
            moved = exc("s", slots[1], slots[1] + HOUR, id=occ_id("s", slots[1]))
            cancelled = exc("s", slots[2], id="s_cancelled", status=Status.CANCELLED)
            await f.apply(store.commit_page(state(), [*ups(moved, cancelled), *dels("b")]))
            await f.apply(store.replace_occurrences(A, CAL, ["s"], window(5), [occ("s", t, title="v2") for t in slots]))
            await f.apply(store.commit_page(state(mark=2), [*dels(cancelled.id), *ups(ev("a", title="a2"))]))
            await f.apply(store.prune_occurrences(A, CAL, ["s"], window(3)))
            await f.apply(store.commit_page(state(mark=2), ups(ev("c", T0 + 2 * HOUR))))
            sweep = PendingSweep(mark=2)  # every row the mark-2 listing did not see goes, cascading
            while await f.apply(store.sweep_batch(state(mark=2, sweep=sweep), sweep, limit=1)):
                pass
            assert sorted(ids(await store.query(expand=True))) == ["a", "c"]
            assert f.replica.rows and not f.replica.problems

        with_store(open_store, case)

    def test_occurrences_past_the_shown_window_stay_hidden_until_it_reaches_them(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            # Expansion ahead of the window (slack): what lies outside ``shown`` is stored but in no
            # view and never published, until a prune to a later window shows it.
            f = Follower(store)
            slots = [T0 + i * DAY for i in range(10)]
            o = [occ("s", t) for t in slots]
            await f.apply(store.commit_page(state(), ups(series("s"))))
            applied = await f.apply(
                store.replace_occurrences(A, CAL, ["s"], window(10), o, shown=window(3), horizon=T0 + 10 * DAY)
            )
            assert by_key(applied) == {e.id: Upsert(event=e, created=True) for e in o[:3]}
            assert ids(await store.query(expand=True)) == ids(o[:3])
            assert await store.series_horizons(A, CAL) == {"s": T0 + 10 * DAY}
            # An exception taking a hidden slot holds it when the window gets there.
            moved = exc("s", slots[5], slots[5] + HOUR, id=o[5].id)
            await f.apply(store.commit_page(state(), ups(moved)))
            await f.apply(store.replace_occurrences(A, CAL, ["s"], window(10), o, shown=window(3), horizon=slots[9]))
            shifted = await f.apply(store.prune_occurrences(A, CAL, ["s"], window(5, slots[2])))
            assert by_key(shifted) == {
                **{e.id: Delete(key=key(e.id), previous=e) for e in o[:2]},
                **{e.id: Upsert(event=e, created=True) for e in (o[3], o[4], o[6])},
            }
            assert ids(await store.query(expand=True)) == [o[2].id, o[3].id, o[4].id, moved.id, o[6].id]
            assert await f.apply(store.prune_occurrences(A, CAL, ["s"], window(5, slots[2]))) == []
            # A re-expansion replaces the hidden rows too: a slot the series lost never shows.
            again = [e for e in o if e is not o[7]]
            shown = window(5, slots[2])
            await f.apply(store.replace_occurrences(A, CAL, ["s"], window(8, slots[2]), again[2:], shown=shown))
            later = await f.apply(store.prune_occurrences(A, CAL, ["s"], window(8, slots[2])))
            assert by_key(later) == {e.id: Upsert(event=e, created=True) for e in (o[8], o[9])}
            assert await store.series_horizons(A, CAL) == {"s": slots[9]}  # no horizon given: kept

        with_store(open_store, case)

    def test_a_series_gone_leaves_no_hidden_occurrences_nor_horizon(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            f = Follower(store)
            slots = [T0 + i * DAY for i in range(6)]
            await f.apply(store.commit_page(state(), ups(series("s"), series("t"))))
            for sid in ("s", "t"):
                await f.apply(store.replace_occurrences(A, CAL, [sid], window(6), [occ(sid, t) for t in slots],
                                                        shown=window(2), horizon=slots[5]))  # fmt: skip
            assert await store.series_horizons(A, CAL) == {"s": slots[5], "t": slots[5]}
            await f.apply(store.commit_page(state(), dels("t")))
            gone = await f.apply(store.prune_occurrences(A, CAL, ["s"], window(6)))
            assert {c.key.id for c in gone if isinstance(c, Delete)} == set()  # t's went with it, already
            assert sorted(ids(await store.query(expand=True))) == ids(occ("s", t) for t in slots)
            assert await store.series_horizons(A, CAL) == {"s": slots[5]}
            # t comes back under the same id: nothing of its old expansion shows before it is expanded.
            await f.apply(store.commit_page(state(), ups(series("t"))))
            assert await f.apply(store.prune_occurrences(A, CAL, ["s", "t"], window(6))) == []

        with_store(open_store, case)
