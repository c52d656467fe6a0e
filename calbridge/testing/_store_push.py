"""Store conformance, push: subscriptions with their secrets, per-calendar push state in ``status``,
and delivery keys seen once across handles."""

from __future__ import annotations

import asyncio

import attrs

from ..push import Subscription
from ..store.base import Store
from ._store_build import CAL, DAY, HOUR, T0, A, StoreOpener, state, with_store


def sub(id: str = "ch-1", *, provider: str = "google", cal: str = CAL, account: str = A, **kw: object) -> Subscription:
    fields: dict[str, object] = {"expires": T0 + DAY, "secret": f"secret-of-{id}", "created": T0}
    fields.update(kw)
    return Subscription(provider=provider, account=account, calendar_id=cal, id=id, **fields)  # type: ignore[arg-type]


class PushCases:
    """``SubscriptionStore``: subscriptions, ``set_push_state`` through ``status``, ``first_delivery``."""

    def test_subscriptions_read_back_with_their_secrets(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.subscription("google", "ch-1") is None and await store.subscriptions() == []
            first = sub("ch-1", resource="res-1")
            feishu = sub(CAL, provider="feishu", secret=None, expires=None, created=None)
            await store.save_subscription(first)
            await store.save_subscription(feishu)
            assert await store.subscription("google", "ch-1") == first
            assert (await store.subscription("google", "ch-1")).secret == "secret-of-ch-1"  # type: ignore[union-attr]
            assert await store.subscription("feishu", CAL) == feishu
            assert await store.subscription("graph", "ch-1") is None, "keyed by (provider, id)"
            renewed = attrs.evolve(first, expires=T0 + 2 * DAY, secret="rotated")
            await store.save_subscription(renewed)
            assert await store.subscription("google", "ch-1") == renewed
            assert await store.subscriptions() == [feishu, renewed]  # by (account, calendar, created)

        with_store(open_store, case)

    def test_subscriptions_by_account_calendar_and_creation(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            later = sub("ch-new", created=T0 + HOUR)
            older = sub("ch-old", created=T0)
            other_cal = sub("ch-a", cal="a-cal", created=T0 + DAY)
            other = sub("ch-x", account="other", provider="graph")
            for s in (later, other, older, other_cal):
                await store.save_subscription(s)
            assert await store.subscriptions() == [other_cal, older, later, other]
            assert await store.subscriptions(A) == [other_cal, older, later]
            assert await store.subscriptions("other") == [other]
            assert await store.subscriptions("nobody") == []
            assert await store.subscriptions(A, CAL) == [older, later]
            assert await store.subscriptions(A, "a-cal") == [other_cal]
            assert await store.subscriptions("other", CAL) == [other]

        with_store(open_store, case)

    def test_a_deleted_subscription_takes_its_secret(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.save_subscription(sub("ch-1"))
            await store.save_subscription(sub("ch-2"))
            await store.delete_subscription("google", "ch-1")
            await store.delete_subscription("google", "unknown")  # not an error
            assert await store.subscription("google", "ch-1") is None
            assert [s.id for s in await store.subscriptions()] == ["ch-2"]
            again = sub("ch-1", secret=None)
            await store.save_subscription(again)  # the old secret does not come back
            assert await store.subscription("google", "ch-1") == again
            assert (await store.subscription("google", "ch-2")).secret == "secret-of-ch-2"  # type: ignore[union-attr]

        with_store(open_store, case)

    def test_subscriptions_survive_a_reopen_and_show_on_another_handle(self, open_store: StoreOpener) -> None:
        saved = sub("ch-1", resource="r", expires=T0.replace(microsecond=250000) + DAY)

        async def main() -> None:
            async with open_store() as store, open_store() as other:
                await store.save_subscription(saved)
                assert await other.subscription("google", "ch-1") == saved
            async with open_store() as store:
                assert await store.subscriptions() == [saved]
                assert "secret-of" not in repr(await store.subscriptions())

        asyncio.run(main())

    def test_push_state_shows_in_status(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            await store.set_push_state(A, CAL, "polled: push: false")
            (only,) = await store.status()
            assert (only.account, only.calendar_id, only.push, only.events) == (A, CAL, "polled: push: false", 0)
            assert only.last_success is None
            await store.commit_page(state(), [])
            await store.record_result(A, CAL, at=T0, error=None)
            await store.set_push_state(A, CAL, "pushed until 2026-03-03T09:00:00Z")
            await store.record_result(A, "other", at=T0, error=None)
            mine, other = await store.status()
            assert (mine.push, mine.last_success, other.push) == ("pushed until 2026-03-03T09:00:00Z", T0, None)
            await store.set_push_state(A, CAL, None)
            assert [s.push for s in await store.status()] == [None, None]
            await store.set_push_state("fresh", CAL, "polled: no service.public_url")
            await store.set_push_state("fresh", CAL, None)
            assert [s.account for s in await store.status()] == [A, A], "a cleared push state alone is no entry"

        with_store(open_store, case)

    def test_a_delivery_key_counts_once_within_keep(self, open_store: StoreOpener) -> None:
        async def case(store: Store) -> None:
            assert await store.first_delivery("ev-1", now=T0, keep=DAY) is True
            assert await store.first_delivery("ev-1", now=T0 + HOUR, keep=DAY) is False
            assert await store.first_delivery("ev-2", now=T0 + HOUR, keep=DAY) is True
            assert await store.first_delivery("ev-1", now=T0 + DAY - HOUR, keep=DAY) is False
            assert await store.first_delivery("ev-1", now=T0 + DAY + HOUR, keep=DAY) is True, "older keys forgotten"
            assert await store.first_delivery("ev-2", now=T0 + DAY + HOUR, keep=DAY) is False

        with_store(open_store, case)

    def test_a_delivery_key_is_first_on_one_handle_only(self, open_store: StoreOpener) -> None:
        async def main() -> None:
            async with open_store() as one, open_store() as two:
                keys = [f"ev-{i}" for i in range(50)]
                firsts = await asyncio.gather(
                    *(h.first_delivery(k, now=T0, keep=DAY) for k in keys for h in (one, two, one))
                )
                assert sum(firsts) == len(keys)
                for i, k in enumerate(keys):
                    assert sum(firsts[3 * i : 3 * i + 3]) == 1, k

        asyncio.run(main())
