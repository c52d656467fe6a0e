"""Store conformance, the store as a whole: a new store, what survives a reopen, status and round
results, the secret slot, one sync at a time, what another handle sees, a closed handle."""

from __future__ import annotations

import asyncio
import time

import attrs
import pytest

from ..errors import StoreBusy, StoreError
from ..model import Upsert
from ..provider import Quarantined
from ..store.base import CalendarState, PendingSweep, Round, RoundStart, Store
from ._store_build import (
    CAL,
    DAY,
    HOUR,
    T0,
    A,
    StoreOpener,
    cursor,
    day_event,
    ev,
    occ,
    series,
    state,
    ups,
    window,
    with_store,
)


class StateCases:
    """Creation and reopening, ``status`` and ``record_result``, secrets, ``sync_lock``, ``aclose``."""

    def test_a_new_store_is_empty(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.get_state(A, CAL) is None
            assert await store.status() == []
            assert await store.query() == [] and await store.query(expand=True, include_cancelled=True) == []
            assert await store.get_events(A, CAL, ["a"]) == {}
            assert await store.quarantined() == []
            assert await store.series_ids(A, CAL) == [] and await store.dirty_series(A, CAL) == []
            assert await store.sweep_count(A, CAL, PendingSweep(mark=1)) == (0, 0)
            assert await store.get_secret(A, "refresh_token") is None

        with_store(open_store, case)

    def test_what_is_saved_reads_back_after_reopening(self, open_store: StoreOpener) -> None:
        saved = CalendarState(
            account=A,
            calendar_id=CAL,
            cursor=attrs.evolve(cursor(1), state={"token": "abc", "page": [1, 2], "nested": {"k": None}}),
            round=Round.FULL,
            mark=7,
            sweep=PendingSweep(mark=7, scope=window(1), held=True, candidates=3, total=9),
            full_started=T0.replace(microsecond=123456) - DAY,
            expanded=window(31, T0 - DAY),
        )
        events = [series("s"), day_event("d", T0.date()), ev("e", T0 + HOUR, title="caf\u00e9 \u4f1a\u8bae")]

        async def main() -> None:
            async with open_store() as store:  # the first open creates (migrates) the store
                await store.commit_page(saved, ups(*events), [Quarantined(event_id="q", error="bad", payload="{")])
                await store.replace_occurrences(A, CAL, ["s"], window(1), [occ("s", T0)])
                await store.record_result(A, CAL, at=T0, error="TransientError: 503")
                await store.set_secret(A, "refresh_token", "rotated")
                before = (await store.query(), await store.query(expand=True), await store.status())
            async with open_store() as store:
                assert await store.get_state(A, CAL) == saved
                assert (await store.query(), await store.query(expand=True), await store.status()) == before
                assert (await store.get_events(A, CAL, ["e"]))["e"] == events[2]
                assert (await store.status())[0].sweep_held is True
                assert [k.id for k, _ in await store.quarantined()] == ["q"]
                assert await store.get_secret(A, "refresh_token") == "rotated"

        asyncio.run(main())

    def test_status_and_results(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            t1, t2, t3 = T0, T0 + HOUR, T0 + 2 * HOUR
            await store.record_result(A, CAL, at=t1, error=None)
            await store.record_result(A, CAL, at=t2, error="TransientError: 503")
            await store.record_result(A, "unsynced", at=t2, error="NotFound")
            await store.record_result("a_first", "z", at=t3, error=None)
            await store.commit_page(state(sweep=PendingSweep(mark=1, held=True)), ups(ev("a")))
            await store.replace_occurrences(A, CAL, ["s"], window(1), [occ("s", T0)])
            zeroth, first, second = await store.status()
            assert (zeroth.account, zeroth.calendar_id, zeroth.last_success, zeroth.events) == ("a_first", "z", t3, 0)
            assert (first.calendar_id, first.last_success, first.last_error, first.last_error_at) == (
                CAL,
                t1,
                "TransientError: 503",
                t2,
            )
            assert (first.events, first.occurrences, first.quarantined, first.sweep_held) == (1, 1, 0, True)
            assert (second.calendar_id, second.last_success, second.events) == ("unsynced", None, 0)
            assert not second.sweep_held
            await store.record_result(A, "unsynced", at=t3, error=None)  # a success keeps the last error
            (_, _, second) = await store.status()
            assert (second.last_success, second.last_error, second.last_error_at) == (t3, "NotFound", t2)

        with_store(open_store, case)

    def test_round_start_and_an_outcome_that_saves_the_state(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.round_start(A, CAL) == RoundStart(state=None, dirty=())
            await store.commit_page(state(cursor=cursor(1)), ups(series("s2"), series("s1")))
            start = await store.round_start(A, CAL)
            assert (start.state, start.dirty) == (state(cursor=cursor(1)), ("s1", "s2"))
            # A quiet round: its new cursor goes with the outcome, one write.
            await store.record_result(A, CAL, at=T0, error=None, state=state(cursor=cursor(2)))
            assert await store.get_state(A, CAL) == state(cursor=cursor(2))
            assert (await store.status())[0].last_success == T0
            # A state holding a sweep is saved, and the outcome is no success (as with a saved one).
            owed = state(mark=2, cursor=cursor(3), sweep=PendingSweep(mark=2))
            await store.record_result(A, CAL, at=T0 + HOUR, error=None, state=owed)
            assert await store.get_state(A, CAL) == owed
            assert (await store.status())[0].last_success == T0
            await store.record_result(A, CAL, at=T0 + DAY, error="TransientError: 503", state=state(mark=2))
            (st,) = await store.status()
            assert (st.last_success, st.last_error_at, await store.get_state(A, CAL)) == (T0, T0 + DAY, state(mark=2))

        with_store(open_store, case)

    def test_secrets_round_trip_per_account(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.get_secret(A, "refresh_token") is None
            await store.set_secret(A, "refresh_token", "s3cr3t-one")
            await store.set_secret(A, "refresh_token", "s3cr3t-two")
            await store.set_secret(A, "token_cache", '{"k": "v"}')
            await store.set_secret("other", "refresh_token", "x")
            assert await store.get_secret(A, "refresh_token") == "s3cr3t-two"
            assert await store.get_secret(A, "token_cache") == '{"k": "v"}'
            assert await store.get_secret("other", "refresh_token") == "x"
            assert await store.get_secret("other", "token_cache") is None
            assert "s3cr3t" not in repr(store)

        with_store(open_store, case)

    def test_one_sync_at_a_time(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as first, open_store() as second:
                async with first.sync_lock(wait=0):
                    with pytest.raises(StoreBusy):
                        async with second.sync_lock(wait=0):
                            pass
                    started = time.monotonic()
                    with pytest.raises(StoreBusy):
                        async with second.sync_lock(wait=0.3):
                            pass
                    assert 0.25 <= time.monotonic() - started < 2
                    assert await second.query() == []  # a sync in progress does not keep readers out
                    waiter = asyncio.create_task(_hold(second, wait=10))
                    await asyncio.sleep(0.2)
                    assert not waiter.done()
                assert await asyncio.wait_for(waiter, 5) is True  # released on exit, taken by the waiter
                async with first.sync_lock(wait=0):
                    pass

        asyncio.run(main())

    def test_a_commit_is_visible_to_another_handle_once_it_returns(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as writer, open_store() as reader:
                a = ev("a")
                assert await writer.commit_page(state(cursor=cursor(1)), ups(a)) == [Upsert(event=a, created=True)]
                assert await reader.get_events(A, CAL, ["a"]) == {"a": a}
                assert await reader.get_state(A, CAL) == state(cursor=cursor(1))
                await writer.set_secret(A, "refresh_token", "new")
                assert await reader.get_secret(A, "refresh_token") == "new"

        asyncio.run(main())

    def test_a_closed_store_refuses(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as store:
                pass
            await store.aclose()  # closing twice is fine
            with pytest.raises(StoreError, match="not open"):
                await store.get_state(A, CAL)

        asyncio.run(main())


async def _hold(store: Store, *, wait: float) -> bool:
    async with store.sync_lock(wait=wait):
        return True
