"""Store conformance, page commits: what a page publishes, cascades, page order, and that a page and the
cursor that follows it are saved together or not at all."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from ..cursor import Cursor
from ..errors import StoreError
from ..model import Delete, Upsert
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
    cursor,
    dels,
    ev,
    exc,
    ids,
    key,
    occ,
    series,
    state,
    ups,
    window,
    with_store,
)


class PageCases:
    """``commit_page``: effective changes, idempotency, cascades, atomicity, the resume cursor."""

    def test_a_page_publishes_only_what_it_changed(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            a, b = ev("a"), ev("b", T0 + HOUR)
            created = {e.id: Upsert(event=e, created=True) for e in (a, b)}
            assert by_key(await store.commit_page(state(), ups(a, b))) == created
            b2 = attrs.evolve(b, title="renamed")
            applied = await store.commit_page(state(mark=2), ups(a, b2))
            assert applied == [Upsert(event=b2, created=False)]
            assert await store.get_events(A, CAL, ["a", "b", "zz"]) == {"a": a, "b": b2}
            # The unchanged upsert still carried the new mark: nothing is left for a mark-2 sweep.
            assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (0, 2)
            assert await store.get_state(A, CAL) == state(mark=2)

        with_store(open_store, case)

    def test_the_last_upsert_of_an_id_in_a_page_wins(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            a1, a2 = ev("a", title="one"), ev("a", title="two")
            assert await store.commit_page(state(), ups(a1, a2)) == [Upsert(event=a2, created=True)]
            assert (await store.get_events(A, CAL, ["a"]))["a"].title == "two"

        with_store(open_store, case)

    def test_deletes_are_idempotent_and_carry_what_they_removed(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            a = ev("a")
            await store.commit_page(state(), ups(a))
            assert await store.commit_page(state(), dels("a")) == [Delete(key=key("a"), previous=a)]
            assert await store.commit_page(state(), dels("a")) == []
            assert await store.commit_page(state(), dels("never")) == []
            # An id created and deleted within one page never reached the views: nothing to publish.
            assert await store.commit_page(state(), [*ups(ev("brief")), *dels("brief")]) == []
            assert await store.commit_page(state(), ups(a)) == [Upsert(event=a, created=True)]
            assert await store.commit_page(state(), ups(a)) == []
            assert ids(await store.query()) == ["a"]

        with_store(open_store, case)

    def test_a_delete_cascades_to_exceptions_and_occurrences(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            s = series("s")
            x = exc("s", T0 + DAY, T0 + DAY + HOUR)
            other = ev("single")
            await store.commit_page(state(), ups(s, x, other))
            w = window(3)
            await store.replace_occurrences(A, CAL, ["s"], w, [occ("s", T0), occ("s", T0 + 2 * DAY)])
            assert (await store.status())[0].occurrences == 2

            applied = await store.commit_page(state(), [*dels("s"), *dels("absent")])
            # The series first, then everything it took with it (published so listeners' copies stay
            # exact), each carrying the row it removed.
            assert applied[0] == Delete(key=key("s"), previous=s)
            assert all(isinstance(c, Delete) for c in applied)
            gone = by_key(applied[1:])
            assert sorted(gone) == sorted([x.id, occ("s", T0).id, occ("s", T0 + 2 * DAY).id])
            previous = {i: c.previous for i, c in gone.items() if isinstance(c, Delete)}
            assert previous[x.id] == x and previous[occ("s", T0).id] == occ("s", T0)
            assert await store.get_events(A, CAL, ["s", x.id, "single"]) == {"single": other}
            assert (await store.status())[0].occurrences == 0
            assert ids(await store.query(window=w, expand=True)) == ["single"]

        with_store(open_store, case)

    def test_page_order_between_upsert_and_delete(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            s = series("s")
            x = exc("s", T0 + DAY)
            await store.commit_page(state(), [*ups(s, x), *dels("s")])
            assert await store.get_events(A, CAL, ["s", x.id]) == {}
            await store.commit_page(state(), [*ups(s), *dels("s"), *ups(x)])
            assert await store.get_events(A, CAL, ["s", x.id]) == {x.id: x}

        with_store(open_store, case)

    def test_a_failed_page_leaves_neither_its_changes_nor_its_cursor(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            kept, doomed, same, s = ev("kept"), ev("doomed", T0 + HOUR), ev("same", T0 + 2 * HOUR), series("s")
            before = state(mark=1, cursor=cursor(1), round=Round.FULL)
            await store.commit_page(before, ups(kept, doomed, same, s))
            await store.replace_occurrences(A, CAL, ["s"], window(1), [])  # nothing stale now
            views = (await store.query(), await store.query(expand=True))
            new, changed = ev("new", T0 + 3 * HOUR), attrs.evolve(kept, title="changed")
            page = [*ups(new, changed, same, attrs.evolve(s, title="changed")), *dels("doomed")]
            bad = [Quarantined(event_id="q", error="unreadable", payload="{}")]
            after = state(mark=2, cursor=cursor(2), round=Round.FULL)
            # Refused: an event filed under another calendar would escape this one's mark-and-sweep.
            with pytest.raises(StoreError, match="elsewhere"):
                await store.commit_page(after, [*page, *ups(ev("f", cal="elsewhere"))], bad)
            # Failing last, after every change was written: a cursor that cannot be saved.
            unsaveable = attrs.evolve(after, cursor=Cursor(scheme="x", version=1, state={"x": object()}))
            with pytest.raises(Exception):  # noqa: B017 - whatever the store makes of it, it must not stay
                await store.commit_page(unsaveable, page, bad)
            assert await store.get_state(A, CAL) == before
            assert (await store.query(), await store.query(expand=True)) == views
            want = {"kept": kept, "doomed": doomed, "same": same, "s": s}
            assert await store.get_events(A, CAL, [*want, "new"]) == want
            assert await store.quarantined() == []
            assert await store.dirty_series(A, CAL) == []
            assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (4, 4)  # no row took mark 2
            # The store is still usable, and the page commits once it can.
            assert sorted(by_key(await store.commit_page(after, page, bad))) == ["doomed", "kept", "new", "s"]
            assert await store.get_state(A, CAL) == after
            assert await store.sweep_count(A, CAL, PendingSweep(mark=2)) == (0, 4)

        with_store(open_store, case)

    def test_each_page_saves_the_cursor_that_follows_it(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as store:
                for n in range(1, 4):
                    page_state = state(mark=2, cursor=cursor(n), round=Round.FULL)
                    await store.commit_page(page_state, ups(ev(f"p{n}", T0 + n * HOUR)))
                    assert await store.get_state(A, CAL) == page_state
                # A page without changes still moves the resume point.
                quiet = state(mark=2, cursor=cursor(4), round=Round.FULL)
                assert await store.commit_page(quiet, []) == []
            # A killed run: another process resumes from the last committed page, with what it held.
            async with open_store() as resumed:
                assert await resumed.get_state(A, CAL) == quiet
                assert ids(await resumed.query()) == ["p1", "p2", "p3"]
                durable = state(mark=2, cursor=cursor(5))
                await resumed.commit_page(durable, ups(ev("p5", T0 + 5 * HOUR)))
                assert await resumed.get_state(A, CAL) == durable
                started = attrs.evolve(durable, cursor=None, round=Round.FULL, mark=3)
                await resumed.save_state(started)
                assert await resumed.get_state(A, CAL) == started

        asyncio.run(main())

    def test_calendars_and_accounts_are_separate(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            here, there, theirs = ev("same"), ev("same", cal="other"), ev("same", account="other")
            assert await store.commit_page(state(), ups(here)) == [Upsert(event=here, created=True)]
            assert await store.commit_page(state(cal="other"), ups(there)) == [Upsert(event=there, created=True)]
            other_account = attrs.evolve(state(), account="other")
            assert await store.commit_page(other_account, ups(theirs)) == [Upsert(event=theirs, created=True)]
            assert await store.commit_page(state(), dels("same")) == [Delete(key=key("same"), previous=here)]
            assert await store.get_events(A, "other", ["same"]) == {"same": there}
            assert await store.query(calendar_id="other") == [there]
            assert await store.query(account="other") == [theirs]
            assert await store.get_state(A, "other") == state(cal="other")

        with_store(open_store, case)

    def test_a_cancelled_commit_is_all_or_nothing(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            page = ups(*(ev(f"c{i}", T0 + i * HOUR) for i in range(3000)))
            task = asyncio.create_task(store.commit_page(state(), page))
            await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Whatever the cancellation caught, the transaction finished or never was: all or nothing.
            assert len(await store.query()) in (0, 3000)
            after = ev("after")
            assert await store.commit_page(state(), ups(after)) == [Upsert(event=after, created=True)]

        with_store(open_store, case)

    def test_concurrent_commits_on_one_handle_all_land(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            pages = [ups(*(ev(f"p{p}_{i}", T0 + i * HOUR) for i in range(50))) for p in range(8)]
            published = await asyncio.gather(*(store.commit_page(state(), page) for page in pages))
            assert [len(p) for p in published] == [50] * 8
            assert len(await store.query()) == 400

        with_store(open_store, case)
