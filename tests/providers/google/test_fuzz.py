"""Fuzzing Google's converter from its wire Structs: every item of a page becomes changes that satisfy
the model and the schema, or is quarantined; nothing raises out of the page (issue 12, item 5)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from calbridge.model import Upsert
from calbridge_providers.google._convert import clear_caches, decode_page
from calbridge_providers.google._wire import EventDateTime, EventsPage, GEvent

from ..fuzzing import DATES, DATETIMES, RULES, TEXT, ZONES, check_event, fuzz_settings, mostly, structs

OVERRIDES = {
    "time_zone": st.one_of(st.none(), ZONES),
    "recurrence": st.one_of(st.none(), st.lists(RULES, max_size=3)),
    "status": mostly(st.sampled_from([None, "confirmed", "tentative", "cancelled"]), TEXT),
    "recurring_event_id": st.one_of(st.none(), st.just("series1"), TEXT),
    "id": mostly(st.text(min_size=1, max_size=8), st.sampled_from([None, ""])),
    "visibility": st.one_of(st.none(), st.sampled_from(["default", "private", "junk"]), TEXT),
    "transparency": st.one_of(st.none(), st.sampled_from(["opaque", "transparent", "junk"]), TEXT),
    "response_status": st.one_of(st.none(), st.sampled_from(["accepted", "needsAction", "junk"]), TEXT),
}
# Times mostly whole (a date, or a dateTime with or without its zone), so conversion gets past them.
TIMES = mostly(
    st.one_of(st.builds(EventDateTime, date=DATES),
              st.builds(EventDateTime, date_time=DATETIMES, time_zone=OVERRIDES["time_zone"])),
    structs(EventDateTime, OVERRIDES),
)  # fmt: skip
EVENTS = structs(GEvent, {**OVERRIDES, "start": TIMES, "end": TIMES, "original_start_time": TIMES},
                 required=("id", "start", "end"))  # fmt: skip
PAGES = st.builds(EventsPage, items=st.lists(EVENTS, max_size=4), time_zone=st.one_of(st.none(), ZONES))


def test_any_page_converts_or_quarantines_item_by_item(calbridge_slow: bool) -> None:
    @fuzz_settings(calbridge_slow)
    @given(page=PAGES, occurrences=st.booleans())
    def check(page: EventsPage, occurrences: bool) -> None:
        clear_caches()
        out = decode_page(msgspec.json.encode(page), provider="google", account="a", calendar_id="c",
                          occurrences=occurrences)  # fmt: skip
        if not occurrences:  # every item is a change or a quarantined payload
            assert len(out.changes) + len(out.quarantined) == len(page.items)
        for change in out.changes:
            if isinstance(change, Upsert):
                check_event(change.event)
        assert all(isinstance(n, int) and n > 0 for n in out.coerced.values())

    check()
