"""The store's and the export's JSON (``event_to_json``, encoded from the model without a dict) is
byte for byte the compact JSON of ``event_to_dict``: the stored rows' hashes, and so the change
stream after an upgrade, stay as they were, and ``event.schema.json`` still describes it."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest

from calbridge.export import event_from_dict, event_to_dict, event_to_json, event_to_json_bytes
from calbridge.model import Attendee, Event, Kind, Person, Response, ShowAs, Status, Visibility, When

T0 = dt.datetime(2026, 3, 2, 9, 30, 15, tzinfo=dt.UTC)
BERLIN = dt.timezone(dt.timedelta(hours=1))


def _events() -> list[Event]:
    base = Event(
        provider="google",
        account="a",
        calendar_id="c",
        id="x",
        kind=Kind.SINGLE,
        start=When.at(T0, "Europe/Berlin"),
        end=When.at(T0 + dt.timedelta(hours=1), "Europe/Berlin"),
    )
    people = tuple(
        Attendee(
            email=f"p{i}@example.com",
            name=None if i % 2 else f'Pé {i} "q"',
            id=str(i) if i % 3 else None,
            response=r,
            optional=i % 2 == 0,
            organizer=i == 0,
            resource=i == 3,
            is_self=i == 1,
        )
        for i, r in enumerate(Response)
    )
    return [
        base,
        Event(
            provider="graph",
            account="a",
            calendar_id="c",
            id="all-day",
            kind=Kind.SINGLE,
            start=When.on(dt.date(2026, 3, 2)),
            end=When.on(dt.date(2026, 3, 4)),
            status=Status.TENTATIVE,
        ),
        Event(
            provider="feishu",
            account="a",
            calendar_id="c",
            id="s",
            kind=Kind.SERIES,
            start=When.at(T0),
            end=When.at(T0 + dt.timedelta(minutes=5)),
            recurrence=("RRULE:FREQ=DAILY", "EXDATE:20260303T093015Z"),
            title='会议 \u2028 \\ " </script>',
            description="<p>html &amp; body</p>\n" * 20,
            location="",
            organizer=Person(email="o@example.com", name="O", id="ou_1"),
            attendees=people,
            attendees_omitted=True,
            show_as=ShowAs.WORKING_ELSEWHERE,
            visibility=Visibility.CONFIDENTIAL,
            meeting_url="https://m.example.com/x?a=1&b=2",
            html_link="https://h",
            etag='"e"',
            ical_uid="u@x",
            created=dt.datetime(2025, 1, 1, 0, 0, 0, 999, tzinfo=BERLIN),
            updated=T0,
        ),
        Event(
            provider="google",
            account="a",
            calendar_id="c",
            id="s_x",
            kind=Kind.EXCEPTION,
            series_id="s",
            original_start=When.at(T0 + dt.timedelta(days=1), "UTC"),
            start=When.at(T0 + dt.timedelta(days=1, hours=2)),
            end=When.at(T0 + dt.timedelta(days=1, hours=3)),
            status=Status.CANCELLED,
        ),
        Event(
            provider="google",
            account="a",
            calendar_id="c",
            id="d_x",
            kind=Kind.OCCURRENCE,
            series_id="d",
            original_start=When.on(dt.date(2026, 3, 9)),
            start=When.on(dt.date(2026, 3, 9)),
            end=When.on(dt.date(2026, 3, 10)),
            organizer=Person(),
        ),
    ]


@pytest.mark.parametrize("event", _events(), ids=lambda e: e.id)
def test_event_to_json_is_the_dict_form_byte_for_byte(event: Event) -> None:
    want = json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False)
    assert event_to_json(event) == want
    assert event_to_json_bytes(event) == want.encode() == msgspec.json.encode(event_to_dict(event))  # the old form
    assert event_from_dict(json.loads(event_to_json(event))) == event
