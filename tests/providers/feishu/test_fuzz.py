"""Fuzzing Feishu's converter from its wire Structs: every item of a list page becomes a change that
satisfies the model and the schema, or is quarantined, and so does every item read as an expanded
occurrence; nothing raises out of the page (issue 12, item 5)."""

from __future__ import annotations

import datetime as dt

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from calbridge.errors import MalformedEvent
from calbridge.model import Upsert
from calbridge_providers.feishu._convert import changes_from, clear_caches, event_from
from calbridge_providers.feishu._wire import EVENTS, EventsData, EventsEnvelope, FEvent, FTime

from ..fuzzing import DATES, INTEGERS, RULES, TEXT, ZONES, check_event, fuzz_settings, mostly, structs

_SECONDS = st.one_of(
    st.integers(min_value=1_577_836_800, max_value=1_893_456_000),  # 2020-2030
    INTEGERS, st.sampled_from([-62135596800, 253402300799, 253402300800, 0, -1]),
)  # fmt: skip
OVERRIDES = {
    "timestamp": mostly(_SECONDS.map(str), st.one_of(_SECONDS, TEXT)),
    "date": st.one_of(st.none(), DATES.map(str), TEXT),
    "timezone": st.one_of(st.none(), ZONES),
    "recurrence": st.one_of(st.none(), RULES.map(lambda r: r.removeprefix("RRULE:"))),
    "status": mostly(st.sampled_from([None, "confirmed", "tentative", "cancelled"]), TEXT),
    "event_id": mostly(
        st.sampled_from(["u1_0", "u2_0", "u1_1767261600", "u3_99999999999999"]), st.one_of(st.none(), TEXT)
    ),
    "recurring_event_id": st.one_of(st.none(), st.sampled_from(["u1", "u1_0"]), TEXT),
    "free_busy_status": st.one_of(st.none(), st.sampled_from(["busy", "free", "junk"]), TEXT),
    "visibility": st.one_of(st.none(), st.sampled_from(["default", "private", "junk"]), TEXT),
    "rsvp_status": st.one_of(st.none(), st.sampled_from(["accept", "removed", "junk"]), TEXT),
    "create_time": st.one_of(st.none(), _SECONDS.map(str), TEXT),
}
TIMES = mostly(
    st.one_of(st.builds(FTime, timestamp=OVERRIDES["timestamp"], timezone=OVERRIDES["timezone"]),
              st.builds(FTime, date=DATES.map(str))),
    structs(FTime, OVERRIDES),
)  # fmt: skip
ITEMS = structs(FEvent, {**OVERRIDES, "start_time": TIMES, "end_time": TIMES},
                required=("event_id", "start_time", "end_time"))  # fmt: skip


def test_any_page_converts_or_quarantines_item_by_item(calbridge_slow: bool) -> None:
    @fuzz_settings(calbridge_slow)
    @given(items=st.lists(ITEMS, max_size=4))
    def check(items: list[FEvent]) -> None:
        clear_caches()
        page = EVENTS.decode(msgspec.json.encode(EventsEnvelope(code=0, data=EventsData(items=items))))
        changes, quarantined = changes_from(page, account="a", calendar_id="c")
        # A cancelled exception of a series deleted in the same page goes with its series.
        assert len(changes) + len(quarantined) <= len(items)
        assert len(quarantined) <= len(items)
        for change in changes:
            if isinstance(change, Upsert):
                check_event(change.event)
        for item in page.items:  # the expansion path (instances / instance_view)
            try:
                event = event_from(item, account="a", calendar_id="c", occurrence=True)
            except MalformedEvent:
                continue
            check_event(event)

    check()


def test_year_zero_and_far_timestamps_are_quarantined_not_raised() -> None:
    far = [FEvent(event_id=f"u{i}_0", start_time=FTime(timestamp=str(s)), end_time=FTime(timestamp=str(s)))
           for i, s in enumerate([-62135596801, 253402300800, 10**30])]  # fmt: skip
    good = FEvent(event_id="ok_0", start_time=FTime(timestamp="1767261600"), end_time=FTime(timestamp="1767265200"))
    page = EVENTS.decode(msgspec.json.encode(EventsEnvelope(code=0, data=EventsData(items=[*far, good]))))
    changes, quarantined = changes_from(page, account="a", calendar_id="c")
    assert [c.event.id for c in changes if isinstance(c, Upsert)] == ["ok_0"]
    assert [q.event_id for q in quarantined] == ["u0_0", "u1_0", "u2_0"]
    assert changes[0].event.start.instant == dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)  # type: ignore[union-attr]
