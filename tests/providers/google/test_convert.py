"""Google payloads → normalized events under the contract's rules (pure: no server)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema

from calbridge.export import event_schema, event_to_dict
from calbridge.model import Attendee, Delete, Event, Kind, Person, Response, ShowAs, Status, Upsert, Visibility, When
from calbridge_providers.google._convert import decode_page

UTC = dt.UTC


def decode(*items: dict[str, Any], occurrences: bool = False) -> Any:
    body = json.dumps({"kind": "calendar#events", "timeZone": "Europe/Zurich", "items": list(items),
                       "nextSyncToken": "s"}).encode()  # fmt: skip
    return decode_page(body, provider="google", account="acc", calendar_id="primary", occurrences=occurrences)


def one(item: dict[str, Any]) -> Event:
    page = decode(item)
    assert not page.quarantined, page.quarantined
    (change,) = page.changes
    assert isinstance(change, Upsert)
    jsonschema.validate(event_to_dict(change.event), event_schema())
    return change.event


def test_timed_event_with_every_field() -> None:
    ev = one({
        "id": "e1", "etag": '"123"', "status": "tentative", "summary": "Lunch",
        "description": "<b>Menu</b><br>soup &amp; bread", "location": "Cafe",
        "start": {"dateTime": "2026-05-02T12:00:00+05:30", "timeZone": "Asia/Calcutta"},
        "end": {"dateTime": "2026-05-02T13:00:00.500+05:30", "timeZone": "Asia/Calcutta"},
        "created": "2026-04-30T10:00:00.123Z", "updated": "2026-05-01T08:55:11.144Z",
        "iCalUID": "e1@google.com", "htmlLink": "https://www.google.com/calendar/event?eid=ZTE",
        "organizer": {"email": "alice@example.com", "displayName": "Alice", "self": True},
        "attendees": [
            {"email": "alice@example.com", "organizer": True, "responseStatus": "accepted"},
            {"email": "bob@example.com", "displayName": "Bob", "responseStatus": "needsAction", "optional": True},
            {"email": "room@resource.calendar.google.com", "resource": True, "responseStatus": "declined"},
            {"email": "carol@example.com"},
        ],
        "conferenceData": {"entryPoints": [{"entryPointType": "phone", "uri": "tel:+1"},
                                           {"entryPointType": "video", "uri": "https://meet.google.com/x"}]},
        "hangoutLink": "https://meet.google.com/legacy", "transparency": "transparent", "visibility": "confidential",
    })  # fmt: skip
    assert ev.kind is Kind.SINGLE and ev.status is Status.TENTATIVE
    assert ev.start == When.at(dt.datetime(2026, 5, 2, 6, 30, tzinfo=UTC), "Asia/Kolkata")
    assert ev.end.instant == dt.datetime(2026, 5, 2, 7, 30, tzinfo=UTC)
    assert ev.description == "Menu\nsoup & bread"
    assert ev.created == dt.datetime(2026, 4, 30, 10, tzinfo=UTC)
    assert ev.organizer == Person(email="alice@example.com", name="Alice")
    assert ev.attendees == (
        Attendee(email="alice@example.com", response=Response.ACCEPTED, organizer=True, is_self=True),  # organizer.self
        Attendee(email="bob@example.com", name="Bob", response=Response.NEEDS_ACTION, optional=True),
        Attendee(email="room@resource.calendar.google.com", response=Response.DECLINED, resource=True),
        Attendee(email="carol@example.com"),
    )
    assert ev.meeting_url == "https://meet.google.com/x"
    assert (ev.show_as, ev.visibility) == (ShowAs.FREE, Visibility.CONFIDENTIAL)
    assert (ev.ical_uid, ev.etag, ev.account, ev.calendar_id, ev.provider) == (
        "e1@google.com", '"123"', "acc", "primary", "google",
    )  # fmt: skip


def test_all_day_multi_day_keeps_the_exclusive_end_and_defaults() -> None:
    ev = one({"id": "a", "start": {"date": "2026-07-01"}, "end": {"date": "2026-07-04"},
              "hangoutLink": "https://meet.google.com/h"})  # fmt: skip
    assert (ev.start, ev.end) == (When.on(dt.date(2026, 7, 1)), When.on(dt.date(2026, 7, 4)))
    assert (ev.show_as, ev.visibility, ev.status) == (ShowAs.BUSY, Visibility.DEFAULT, Status.CONFIRMED)
    assert ev.meeting_url == "https://meet.google.com/h"


def test_timed_event_without_zone_has_null_timezone_and_utc_zone_is_canonical() -> None:
    assert one({"id": "a", "start": {"dateTime": "2026-01-01T10:00:00+01:00"},
                "end": {"dateTime": "2026-01-01T11:00:00+01:00"}}).start.timezone is None  # fmt: skip
    utc = one({"id": "b", "start": {"dateTime": "2026-01-01T10:00:00Z", "timeZone": "Etc/GMT"},
               "end": {"dateTime": "2026-01-01T11:00:00Z", "timeZone": "Etc/GMT"}})  # fmt: skip
    assert utc.start.timezone == "UTC"


def test_series_recurrence_is_canonical_in_the_series_zone() -> None:
    ev = one({
        "id": "s", "start": {"dateTime": "2026-01-05T09:00:00-05:00", "timeZone": "US/Eastern"},
        "end": {"dateTime": "2026-01-05T10:00:00-05:00", "timeZone": "US/Eastern"},
        "recurrence": ["EXDATE;TZID=America/New_York:20260112T090000",
                       "RRULE:BYDAY=WE,MO;FREQ=WEEKLY;INTERVAL=1;UNTIL=20260301"],
    })  # fmt: skip
    assert ev.kind is Kind.SERIES and ev.start.timezone == "America/New_York"
    assert ev.recurrence == ("RRULE:FREQ=WEEKLY;UNTIL=20260302T045959Z;BYDAY=MO,WE", "EXDATE:20260112T140000Z")


def test_all_day_series_uses_date_forms() -> None:
    ev = one({"id": "s", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"},
              "recurrence": ["RRULE:FREQ=YEARLY;UNTIL=20300101T000000Z", "EXDATE;VALUE=DATE:20270101"]})  # fmt: skip
    assert ev.recurrence == ("RRULE:FREQ=YEARLY;UNTIL=20300101", "EXDATE:20270101")


def test_exception_gets_series_and_original_start_in_the_series_zone() -> None:
    ev = one({
        "id": "s_20260310T130000Z", "recurringEventId": "s",
        "originalStartTime": {"dateTime": "2026-03-10T09:00:00-04:00", "timeZone": "America/New_York"},
        "start": {"dateTime": "2026-03-10T15:00:00+01:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2026-03-10T16:00:00+01:00", "timeZone": "Europe/Paris"},
    })  # fmt: skip
    assert (ev.kind, ev.series_id) == (Kind.EXCEPTION, "s")
    assert ev.original_start == When.at(dt.datetime(2026, 3, 10, 13, tzinfo=UTC), "America/New_York")
    assert ev.start.timezone == "Europe/Paris"


def test_cancelled_stubs_occurrence_vs_deleted_event() -> None:
    page = decode(
        {"id": "gone", "status": "cancelled"},
        {"id": "s_20260310", "status": "cancelled", "recurringEventId": "s",
         "originalStartTime": {"date": "2026-03-10"}},
    )  # fmt: skip
    deleted, cancelled = page.changes
    assert isinstance(deleted, Delete) and deleted.key.id == "gone" and deleted.key.account == "acc"
    assert isinstance(cancelled, Upsert)
    ev = cancelled.event
    assert (ev.kind, ev.status, ev.series_id) == (Kind.EXCEPTION, Status.CANCELLED, "s")
    assert ev.original_start == ev.start == When.on(dt.date(2026, 3, 10))
    jsonschema.validate(event_to_dict(ev), event_schema())


def test_out_of_office_and_unknown_values() -> None:
    ev = one({"id": "o", "eventType": "outOfOffice", "visibility": "weird", "start": {"date": "2026-01-01"},
              "end": {"date": "2026-01-02"}, "attendees": [{"email": "x@y", "responseStatus": "maybe"}]})  # fmt: skip
    assert ev.show_as is ShowAs.OOF and ev.visibility is Visibility.DEFAULT
    assert ev.attendees[0].response is Response.NONE


def test_malformed_items_are_quarantined_with_their_exact_text() -> None:
    page = decode(
        {"id": "ok", "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}},
        {"id": "backwards", "start": {"date": "2026-01-05"}, "end": {"date": "2026-01-02"}},
        {"id": "mixed", "start": {"date": "2026-01-05"}, "end": {"dateTime": "2026-01-06T00:00:00Z"}},
        {"id": "badrule", "start": {"date": "2026-01-05"}, "end": {"date": "2026-01-06"}, "recurrence": ["RRULE:X=1"]},
        {"id": "badstatus", "status": "gone?", "start": {"date": "2026-01-05"}, "end": {"date": "2026-01-06"}},
        {"id": "wrongtype", "start": {"date": 20260101}, "end": {"date": "2026-01-06"}},
    )  # fmt: skip
    assert [c.event.id for c in page.changes] == ["ok"]
    assert [q.event_id for q in page.quarantined] == ["backwards", "mixed", "badrule", "badstatus", "wrongtype"]
    assert json.loads(page.quarantined[-1].payload)["start"] == {"date": 20260101}


def test_occurrences_mode_makes_occurrences_and_skips_cancelled() -> None:
    page = decode(
        {"id": "s_1", "recurringEventId": "s", "originalStartTime": {"date": "2026-01-01"},
         "start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}},
        {"id": "s_2", "recurringEventId": "s", "status": "cancelled", "originalStartTime": {"date": "2026-01-08"}},
        occurrences=True,
    )  # fmt: skip
    (change,) = page.changes
    assert change.event.kind is Kind.OCCURRENCE and change.event.series_id == "s"


def _timed(**fields: Any) -> dict[str, Any]:
    return {
        "id": "e9", "status": "confirmed", "summary": "x",
        "start": {"dateTime": "2026-05-02T12:00:00Z"}, "end": {"dateTime": "2026-05-02T13:00:00Z"}, **fields,
    }  # fmt: skip


def test_self_attendee_and_a_capped_list() -> None:
    ev = one(_timed(attendeesOmitted=True, attendees=[
        {"email": "me@example.com", "self": True, "responseStatus": "declined"},
    ]))  # fmt: skip
    assert [(a.email, a.is_self, a.response) for a in ev.attendees] == [("me@example.com", True, Response.DECLINED)]
    assert ev.attendees_omitted is True
    assert event_to_dict(ev)["attendees"][0]["self"] is True and event_to_dict(ev)["attendees_omitted"] is True
    plain = one(_timed(attendees=[{"email": "bob@example.com", "responseStatus": "accepted"}]))
    assert plain.attendees_omitted is False and plain.attendees[0].is_self is False


def test_organizer_self_marks_the_organizers_attendee_and_invents_none() -> None:
    org = {"email": "me@example.com", "self": True}
    ev = one(_timed(organizer=org, attendees=[
        {"email": "me@example.com", "organizer": True, "responseStatus": "accepted"},
        {"email": "bob@example.com", "responseStatus": "needsAction"},
    ]))  # fmt: skip
    assert [(a.email, a.is_self) for a in ev.attendees] == [("me@example.com", True), ("bob@example.com", False)]
    alone = one(_timed(organizer=org))
    assert alone.attendees == ()
