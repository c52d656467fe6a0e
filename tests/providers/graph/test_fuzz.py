"""Fuzzing Graph's converter from its wire Structs: every item of a delta or instances page becomes a
change that satisfies the model and the schema, or is quarantined; nothing raises out of the page
(issue 12, item 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from calbridge.model import Event, Kind, Upsert, When
from calbridge_providers.graph._changes import changes_from
from calbridge_providers.graph._convert import clear_caches
from calbridge_providers.graph._wire import EVENTS, DateTimeTimeZone, EventsPage, GEvent

from ..fuzzing import DATES, DATETIMES, INTEGERS, TEXT, ZONES, check_event, fuzz_settings, mostly, structs


def _graph_text(value: dt.datetime | dt.date) -> str:
    """A dateTime as Graph writes it: seven fractional digits, no offset (the zone is beside it)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "0"
    return value.isoformat()


STAMPS = mostly(st.one_of(DATETIMES, DATES).map(_graph_text), TEXT)
OFFSET_STAMPS = mostly(DATETIMES.map(lambda d: d.isoformat() if d.tzinfo else d.isoformat() + "Z"), TEXT)
PATTERNS = st.fixed_dictionaries({}, optional={
    "type": mostly(st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly",
                                    "relativeYearly"]), TEXT),
    "interval": st.one_of(st.integers(min_value=-2, max_value=5), INTEGERS, TEXT),
    "daysOfWeek": st.lists(mostly(st.sampled_from(["monday", "friday", "Sunday"]), TEXT), max_size=3),
    "dayOfMonth": st.one_of(st.integers(min_value=-1, max_value=32), TEXT),
    "month": st.one_of(st.integers(min_value=0, max_value=13), TEXT),
    "index": mostly(st.sampled_from(["first", "last", "fourth"]), TEXT),
    "firstDayOfWeek": mostly(st.sampled_from(["sunday", "monday"]), TEXT),
})  # fmt: skip
RANGES = st.fixed_dictionaries({}, optional={
    "type": mostly(st.sampled_from(["noEnd", "endDate", "numbered", "EndDate"]), TEXT),
    "endDate": st.one_of(DATES.map(str), TEXT),
    "numberOfOccurrences": st.one_of(st.integers(min_value=-1, max_value=50_000_000), INTEGERS, TEXT),
    "recurrenceTimeZone": ZONES,
})  # fmt: skip
RECURRENCE: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.fixed_dictionaries({"pattern": PATTERNS, "range": RANGES}), TEXT, st.integers()
)
OVERRIDES = {
    "date_time": STAMPS,
    "time_zone": mostly(st.sampled_from(["UTC", "Pacific Standard Time", "Europe/Zurich"]), ZONES),
    "original_start_time_zone": st.one_of(st.none(), ZONES),
    "original_start": st.one_of(st.none(), OFFSET_STAMPS),
    "created_date_time": st.one_of(st.none(), OFFSET_STAMPS),
    "last_modified_date_time": st.one_of(st.none(), OFFSET_STAMPS),
    "recurrence": RECURRENCE,
    "type": mostly(st.sampled_from(["singleInstance", "occurrence", "exception", "seriesMaster"]), TEXT),
    "series_master_id": st.one_of(st.none(), st.just("M1")),
    "id": mostly(st.text(min_size=1, max_size=8), st.sampled_from([None, ""])),
    "show_as": st.one_of(st.none(), st.sampled_from(["busy", "unknown", "junk"]), TEXT),
    "sensitivity": st.one_of(st.none(), st.sampled_from(["normal", "private", "junk"]), TEXT),
    "response": st.one_of(st.none(), st.sampled_from(["accepted", "organizer", "junk"]), TEXT),
}
TIMES = structs(DateTimeTimeZone, OVERRIDES, required=("date_time",))
EVENTS_S = structs(GEvent, {**OVERRIDES, "start": TIMES, "end": TIMES}, required=("id", "type", "start", "end"))
# Items whose id, type and times are whole (in the zone Graph is asked to write), so that
# conversion reaches the recurrence, the slot and the non-essential fields.
_NEAR = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)).map(_graph_text)
WHOLE = structs(GEvent, {
    **OVERRIDES,
    "id": st.text(min_size=1, max_size=8),
    "type": st.sampled_from(["singleInstance", "occurrence", "exception", "seriesMaster"]),
    "series_master_id": st.just("M1"),
    "start": st.builds(DateTimeTimeZone, date_time=_NEAR, time_zone=st.just("UTC")),
    "end": st.builds(DateTimeTimeZone, date_time=_NEAR, time_zone=st.just("UTC")),
}, required=("id", "type", "start", "end", "series_master_id"))  # fmt: skip
ITEMS = st.one_of(EVENTS_S, WHOLE)
START = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
MASTERS = {
    "timed": Event(provider="graph", account="a", calendar_id="c", id="M1", kind=Kind.SERIES,
                   start=When.at(START, "Europe/Zurich"), end=When.at(START + dt.timedelta(hours=1), "Europe/Zurich"),
                   recurrence=("RRULE:FREQ=DAILY",)),
    "all-day": Event(provider="graph", account="a", calendar_id="c", id="M1", kind=Kind.SERIES,
                     start=When.on(START.date()), end=When.on(START.date() + dt.timedelta(days=1)),
                     recurrence=("RRULE:FREQ=DAILY",)),
}  # fmt: skip


def test_any_page_converts_or_quarantines_item_by_item(calbridge_slow: bool) -> None:
    @fuzz_settings(calbridge_slow)
    @given(items=st.lists(ITEMS, max_size=4), master=st.sampled_from(sorted(MASTERS)), me=st.booleans(),
           zone=st.one_of(st.none(), ZONES))  # fmt: skip
    def check(items: list[GEvent], master: str, me: bool, zone: str | None) -> None:
        clear_caches()
        body = msgspec.json.encode(EventsPage(value=items, delta_link="https://graph.example/delta"))
        changes, quarantined = changes_from(
            EVENTS.decode(body), account="a", calendar_id="c", masters={"M1": MASTERS[master]}, errors={},
            me="alice@example.com" if me else None, zones={"M1": zone},
        )  # fmt: skip
        assert len(changes) + len(quarantined) == len(items)
        for change in changes:
            if isinstance(change, Upsert):
                check_event(change.event)

    check()
