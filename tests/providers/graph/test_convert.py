"""Pure Graph JSON → Event conversion (the wire shapes the emulator cannot produce on its own)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from calbridge.errors import MalformedEvent
from calbridge.export import event_to_dict
from calbridge.model import Kind, Response, ShowAs, Visibility, When
from calbridge.toolkit import TEXT_LIMIT, Coercions
from calbridge_providers.graph._convert import convert_event, html_to_text
from calbridge_providers.graph._wire import GEvent, decode_event

UTC = dt.UTC


def graph(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "AAMk1", "type": "singleInstance", "subject": "S",
        "start": {"dateTime": "2026-07-01T16:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-07-01T17:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Pacific Standard Time",
    }  # fmt: skip
    base.update(fields)
    return base


def wire(item: dict[str, Any]) -> GEvent:
    """The Struct the provider decodes from this item's JSON bytes."""
    return decode_event(json.dumps(item).encode())


def conv(item: dict[str, Any]) -> Any:
    return convert_event(wire(item), account="a", calendar_id="primary")


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Pacific Standard Time", "2026-07-01T09:30:00.0000000", dt.datetime(2026, 7, 1, 16, 30, tzinfo=UTC)),
        ("Pacific Standard Time", "2026-01-05T09:30:00.0000000", dt.datetime(2026, 1, 5, 17, 30, tzinfo=UTC)),
        ("W. Europe Standard Time", "2026-03-29T03:30:00.0000000", dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("India Standard Time", "2026-07-01T22:00:00.0000000", dt.datetime(2026, 7, 1, 16, 30, tzinfo=UTC)),
        ("America/Los_Angeles", "2026-07-01T09:30:00.0000000", dt.datetime(2026, 7, 1, 16, 30, tzinfo=UTC)),
        ("Asia/Calcutta", "2026-07-01T22:00:00.0000000", dt.datetime(2026, 7, 1, 16, 30, tzinfo=UTC)),
    ],
)
def test_windows_and_iana_zone_names_give_utc_instants(zone: str, local: str, utc: dt.datetime) -> None:
    ev = conv(graph(start={"dateTime": local, "timeZone": zone}, end={"dateTime": local, "timeZone": zone}))
    assert ev.start.instant == utc
    assert ev.start.timezone == "America/Los_Angeles"  # from originalStartTimeZone, not the wire zone


def test_exported_zone_falls_back_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    custom = "tzone://Microsoft/Custom"
    with caplog.at_level(logging.INFO):
        assert conv(graph(originalStartTimeZone=custom)).start.timezone is None
        wired = {"dateTime": "2026-07-01T09:30:00", "timeZone": "Pacific Standard Time"}
        assert conv(graph(originalStartTimeZone=custom, start=wired, end=wired)).start.timezone == "America/Los_Angeles"
    assert "tzone://Microsoft/Custom" in caplog.text and "unknown" in caplog.text
    assert conv(graph(originalStartTimeZone="Asia/Calcutta")).start.timezone == "Asia/Kolkata"
    assert conv(graph(originalStartTimeZone="UTC")).start.timezone == "UTC"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": None}, "missing start"),
        ({"start": {"dateTime": "2026-07-01T09:30:00", "timeZone": "tzone://Microsoft/Custom"}}, "unknown time zone"),
        ({"start": {"dateTime": "yesterday", "timeZone": "UTC"}}, "bad start"),
        ({"type": "seriesMaster", "recurrence": {"pattern": {"type": "hebrew"}, "range": {}}}, "hebrew"),
        ({"type": "seriesMaster", "recurrence": {"pattern": {"type": "daily"}, "range": {"type": "sometimes"}}},
         "range type"),
        ({"type": "seriesMaster", "recurrence": {"pattern": {"type": "weekly"}, "range": {}}}, "daysOfWeek"),
        ({"type": "exception", "seriesMasterId": "M"}, "originalStart"),
        ({"type": "party"}, "unknown event type"),
    ],
)  # fmt: skip
def test_malformed_payloads_raise_malformed_event(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedEvent, match=message) as info:
        conv(graph(**change))
    assert info.value.event_id == "AAMk1"


def test_all_day_is_dates_with_exclusive_end_never_midnight_instants() -> None:
    ev = conv(graph(isAllDay=True, start={"dateTime": "2026-07-01T00:00:00.0000000", "timeZone": "UTC"},
                    end={"dateTime": "2026-07-03T00:00:00.0000000", "timeZone": "UTC"}))  # fmt: skip
    assert ev.start == When.on(dt.date(2026, 7, 1)) and ev.end == When.on(dt.date(2026, 7, 3))
    assert event_to_dict(ev)["start"] == {"date": "2026-07-01"}


def test_fields_map_per_the_contract() -> None:
    ev = conv(
        graph(
            body={"contentType": "html", "content": "<html><body><p>Hi&nbsp;<b>there</b></p><p>line 2</p></body>"},
            isCancelled=True, showAs="workingElsewhere", sensitivity="personal",
            location={"displayName": "Room 1"}, webLink="https://outlook/x", iCalUId="uid-1",
            onlineMeeting={"joinUrl": "https://teams/join"}, changeKey="ck", **{"@odata.etag": 'W/"ck"'},
            createdDateTime="2026-06-01T10:00:00.1234567Z", lastModifiedDateTime="2026-06-02T10:00:00Z",
            organizer={"emailAddress": {"name": "Ann", "address": "ann@x"}},
            attendees=[
                {"type": "required", "status": {"response": "organizer"}, "emailAddress": {"address": "ann@x"}},
                {"type": "optional", "status": {"response": "tentativelyAccepted"}, "emailAddress": {"address": "b@x"}},
                {"type": "resource", "status": {"response": "notResponded"}, "emailAddress": {"address": "room@x"}},
            ],
        )
    )  # fmt: skip
    assert ev.description == "Hi there\nline 2"
    assert ev.status.value == "cancelled" and ev.show_as is ShowAs.WORKING_ELSEWHERE
    assert ev.visibility is Visibility.PRIVATE and ev.location == "Room 1" and ev.meeting_url == "https://teams/join"
    assert ev.etag == 'W/"ck"' and ev.ical_uid == "uid-1" and ev.html_link == "https://outlook/x"
    assert ev.created == dt.datetime(2026, 6, 1, 10, tzinfo=UTC) and ev.updated == dt.datetime(
        2026, 6, 2, 10, tzinfo=UTC
    )
    a, b, room = ev.attendees
    assert a.organizer and a.response is Response.ACCEPTED
    assert b.optional and b.response is Response.TENTATIVE and room.resource and room.response is Response.NEEDS_ACTION


def test_exception_original_start_is_in_the_master_zone() -> None:
    master = conv(graph(id="M", type="seriesMaster",
                        recurrence={"pattern": {"type": "daily"}, "range": {"type": "noEnd"}}))  # fmt: skip
    exc = convert_event(
        wire(graph(id="E", type="exception", seriesMasterId="M", originalStart="2026-07-02T16:30:00Z",
              originalStartTimeZone="Pacific Standard Time")),
        account="a", calendar_id="primary", master=master,
    )  # fmt: skip
    assert exc.kind is Kind.EXCEPTION and exc.series_id == "M"
    assert exc.original_start == When.at(dt.datetime(2026, 7, 2, 16, 30, tzinfo=UTC), "America/Los_Angeles")


def test_html_to_text_drops_style_and_keeps_breaks() -> None:
    assert html_to_text("<style>p{}</style>a<br>b &amp; c") == "a\nb & c"


def test_page_quarantines_exactly_the_bad_items_with_their_own_json_text() -> None:
    from calbridge.model import Delete, Upsert
    from calbridge_providers.graph._changes import changes_from, master_ids
    from calbridge_providers.graph._wire import EVENTS

    good = json.dumps(graph(id="G1"))
    off_shape = '{ "id" : "BAD1", "subject": 5,  "type":"singleInstance" }'  # subject not a string
    no_start = json.dumps(graph(id="BAD2", subject="Café ☕", start=None), ensure_ascii=False)
    removed = '{"id": "R1", "@removed": {"reason": "deleted"}}'
    orphan = json.dumps(graph(id="O1", type="occurrence", seriesMasterId="M9"))
    no_id = '{"subject": "who am I"}'

    def run(*items: str) -> tuple[list[Any], list[Any]]:
        body = ('{"value": [' + ", ".join(items) + '], "@odata.deltaLink": "https://x/delta"}').encode()
        page = EVENTS.decode(body)
        assert master_ids(page) == (["M9"] if orphan in items else [])
        return changes_from(page, account="a", calendar_id="c", masters={"M9": None}, errors={"M9": "gone"})

    # The fast path (every item fits its Struct) and the item-by-item path give the same answer.
    for items in ((good, no_start, removed, orphan, no_id), (good, off_shape, no_start, removed, orphan, no_id)):
        changes, quarantined = run(*items)
        assert [c.event.id for c in changes if isinstance(c, Upsert)] == ["G1"]
        assert [c.key.id for c in changes if isinstance(c, Delete)] == ["R1"]
        got = {q.event_id: q for q in quarantined}
        assert got["BAD2"].payload == no_start and "missing start" in got["BAD2"].error
        assert got["O1"].payload == orphan and got["O1"].error == "series master M9: gone"
        assert got[None].payload == no_id and got[None].error == "item without an id"
        if off_shape in items:
            assert got["BAD1"].payload == off_shape and "subject" in got["BAD1"].error
        assert len(quarantined) == len(items) - 2


def test_removed_is_a_delete_even_when_null_and_skeletal_items_hydrate() -> None:
    from calbridge.model import Delete, Upsert
    from calbridge_providers.graph._changes import changes_from
    from calbridge_providers.graph._wire import EVENTS

    master = conv(graph(id="M", type="seriesMaster", subject="Standup",
                        recurrence={"pattern": {"type": "daily"}, "range": {"type": "noEnd"}}))  # fmt: skip
    skeletal = {"id": "M_1", "type": "occurrence", "seriesMasterId": "M",
                "start": {"dateTime": "2026-07-02T16:30:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": "2026-07-02T17:00:00.0000000", "timeZone": "UTC"}}  # fmt: skip
    body = json.dumps({"value": [{"id": "X", "@removed": None}, skeletal]}).encode()
    changes, quarantined = changes_from(EVENTS.decode(body), account="a", calendar_id="primary",
                                        masters={"M": master}, errors={})  # fmt: skip
    assert not quarantined and isinstance(changes[0], Delete) and isinstance(changes[1], Upsert)
    occ = changes[1].event
    assert occ.kind is Kind.OCCURRENCE and occ.title == "Standup" and occ.series_id == "M"
    assert occ.start == When.at(dt.datetime(2026, 7, 2, 16, 30, tzinfo=UTC), "America/Los_Angeles")


def test_seven_fractional_digits_are_truncated_not_rounded() -> None:
    late = {"dateTime": "2026-07-01T16:59:59.9999999", "timeZone": "UTC"}
    ev = conv(graph(end=late, createdDateTime="2026-06-01T10:00:00.9999999Z"))
    assert ev.end.instant == dt.datetime(2026, 7, 1, 16, 59, 59, tzinfo=UTC)
    assert ev.created == dt.datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
    assert conv(graph(createdDateTime="garbage")).created is None  # a bad stamp is dropped, not fatal


def test_all_day_exception_slot_falls_back_to_the_patterns_recurrence_zone() -> None:
    from calbridge_providers.graph._times import series_zone_of

    day = {"dateTime": "2026-03-09T00:00:00.0000000", "timeZone": "UTC"}
    master_item = graph(
        id="M", type="seriesMaster", isAllDay=True, start=day, end={**day, "dateTime": "2026-03-10T00:00:00.0000000"},
        originalStartTimeZone="tzone://Microsoft/Custom",
        recurrence={"pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "noEnd", "startDate": "2026-03-09", "recurrenceTimeZone": "Tokyo Standard Time"}},
    )  # fmt: skip
    zone_name = series_zone_of(wire(master_item))
    assert zone_name == "Tokyo Standard Time"
    master = conv(master_item)
    exc = graph(
        id="X", type="exception", seriesMasterId="M", isAllDay=True, originalStartTimeZone="tzone://Microsoft/Custom",
        start={**day, "dateTime": "2026-03-20T00:00:00.0000000"},
        end={**day, "dateTime": "2026-03-21T00:00:00.0000000"}, originalStart="2026-03-09T15:00:00Z",
    )  # fmt: skip
    got = convert_event(wire(exc), account="a", calendar_id="primary", master=master, series_zone=zone_name)
    assert got.original_start == When.on(dt.date(2026, 3, 10))


def test_junk_non_essential_values_are_neutral_and_counted() -> None:
    co = Coercions()
    ev = convert_event(wire(graph(showAs="translucent", sensitivity="galactic", subject="é" * TEXT_LIMIT,
                                  attendees=[{"emailAddress": {"address": "b@x"}, "status": {"response": "maybe"}}],
                                  originalStartTimeZone="Mars Standard Time")),
                       account="a", calendar_id="primary", coerced=co)  # fmt: skip
    assert (ev.show_as, ev.visibility, ev.attendees[0].response) == (ShowAs.UNKNOWN, Visibility.DEFAULT, Response.NONE)
    assert ev.start.timezone is None
    assert len((ev.title or "").encode()) == TEXT_LIMIT
    assert co.counts == {"show_as": 1, "visibility": 1, "title": 1, "response": 1, "timezone": 1}
    plain = Coercions()
    convert_event(wire(graph(showAs="unknown", sensitivity="normal")), account="a", calendar_id="p", coerced=plain)
    assert plain.counts == {}  # Graph's own "unknown" is the neutral value, not a coercion


def test_any_error_converting_an_item_is_a_malformed_event() -> None:
    with pytest.raises(MalformedEvent) as caught:
        conv(graph(start={"dateTime": "9999-12-31T23:00:00", "timeZone": "Pacific Standard Time"}))
    assert caught.value.event_id == "AAMk1"
