"""The event model, its exported JSON form against the shipped schema, zones and recurrence lines."""

from __future__ import annotations

import datetime as dt

import jsonschema
import pytest

from calbridge.errors import MalformedEvent
from calbridge.export import event_from_dict, event_schema, event_to_dict
from calbridge.model import Attendee, Event, Kind, Person, Response, When, Window
from calbridge.recurrence import canonical_recurrence
from calbridge.zones import canonical_zone, zone

T = dt.datetime(2026, 3, 8, 14, 30, 15, 999, tzinfo=dt.UTC)


def sample(**kw: object) -> Event:
    base: dict[str, object] = dict(
        provider="google",
        account="a",
        calendar_id="primary",
        id="e1",
        kind=Kind.SINGLE,
        start=When.at(T, "America/New_York"),
        end=When.at(T + dt.timedelta(hours=1), "America/New_York"),
        organizer=Person(email="o@x"),
        attendees=[Attendee(email="a@x", response=Response.ACCEPTED)],
    )
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def test_export_has_every_property_and_validates() -> None:
    d = event_to_dict(sample())
    jsonschema.validate(d, event_schema())
    assert set(d) == set(event_schema()["required"])
    assert d["start"] == {"datetime": "2026-03-08T14:30:15Z", "timezone": "America/New_York"}
    assert event_from_dict(d) == sample()


def test_self_and_attendees_omitted_round_trip_and_default_for_old_rows() -> None:
    ev = sample(attendees=[Attendee(email="me@x", response=Response.DECLINED, is_self=True)], attendees_omitted=True)
    d = event_to_dict(ev)
    jsonschema.validate(d, event_schema())
    assert d["attendees"][0]["self"] is True and d["attendees_omitted"] is True
    assert list(d)[-1] == "attendees_omitted"  # schema order
    assert event_from_dict(d) == ev
    old = event_to_dict(sample())  # a row stored before the two keys existed
    del old["attendees_omitted"]
    del old["attendees"][0]["self"]
    back = event_from_dict(old)
    assert back.attendees_omitted is False and back.attendees[0].is_self is False


def test_all_day_roundtrip_and_validation() -> None:
    ev = sample(start=When.on(dt.date(2026, 1, 1)), end=When.on(dt.date(2026, 1, 2)))
    d = event_to_dict(ev)
    jsonschema.validate(d, event_schema())
    assert d["end"] == {"date": "2026-01-02"}


def test_model_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        When.at(dt.datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError):
        sample(end=When.on(dt.date(2026, 1, 2)))  # mixed
    with pytest.raises(ValueError):
        sample(end=When.at(T - dt.timedelta(hours=1)))


def test_window_split_tiles_exactly() -> None:
    w = Window(start=T, end=T + dt.timedelta(days=100))
    parts = w.split(dt.timedelta(days=39))
    assert [p.end - p.start for p in parts] == [dt.timedelta(days=39)] * 2 + [dt.timedelta(days=22)]
    assert parts[0].end == parts[1].start


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("Etc/UTC", "UTC"),
        ("GMT", "UTC"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("US/Eastern", "America/New_York"),
        ("tzone://Microsoft/Custom", None),
        ("Not/AZone", None),
        ("Europe/London", "Europe/London"),
    ],
)
def test_canonical_zone(name: str, want: str | None) -> None:
    assert canonical_zone(name) == want


def test_recurrence_lines_canonical() -> None:
    ny = zone("America/New_York")
    got = canonical_recurrence(
        [
            "EXDATE;TZID=America/New_York:20260316T090000,20260309T090000",
            "RRULE:BYDAY=TH,TU;FREQ=WEEKLY;INTERVAL=1;UNTIL=20260501T000000Z;WKST=SU",
        ],
        all_day=False,
        tz=ny,
    )
    assert got == (
        "RRULE:FREQ=WEEKLY;UNTIL=20260501T000000Z;BYDAY=TU,TH",
        "EXDATE:20260309T130000Z",  # after the DST change: EDT
        "EXDATE:20260316T130000Z",
    )
    assert canonical_recurrence(["FREQ=WEEKLY;INTERVAL=2;WKST=SU;COUNT=5"], all_day=False, tz=None) == (
        "RRULE:FREQ=WEEKLY;COUNT=5;INTERVAL=2;WKST=SU",
    )
    assert canonical_recurrence(["RRULE:FREQ=DAILY;UNTIL=20260110"], all_day=True, tz=None) == (
        "RRULE:FREQ=DAILY;UNTIL=20260110",
    )
    with pytest.raises(MalformedEvent):
        canonical_recurrence(["RRULE:FREQ=SOMETIMES"], all_day=False, tz=None)


def test_series_view_range_leaves_out_series_that_ended_before_it() -> None:
    from calbridge.recurrence import last_end

    start = When.at(T, "America/New_York")
    end = When.at(T + dt.timedelta(hours=1), "America/New_York")
    counted = sample(kind=Kind.SERIES, start=start, end=end, recurrence=("RRULE:FREQ=WEEKLY;COUNT=3",))
    # 2026-03-08 10:30 EDT (the DST day), +2 weeks: 2026-03-22 14:30:15Z, ending an hour later.
    assert last_end(counted) == dt.datetime(2026, 3, 22, 15, 30, 15, tzinfo=dt.UTC)
    until = sample(kind=Kind.SERIES, start=start, end=end, recurrence=("RRULE:FREQ=DAILY;UNTIL=20260401T000000Z",))
    assert last_end(until) == dt.datetime(2026, 4, 1, 1, 0, tzinfo=dt.UTC)
    assert last_end(sample(kind=Kind.SERIES, start=start, end=end, recurrence=("RRULE:FREQ=DAILY",))) is None
