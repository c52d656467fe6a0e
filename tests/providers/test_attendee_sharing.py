"""A page builds each distinct attendee once: lists differ from event to event, the people in them and
their answers mostly do not, so the converters share the values (a page's cost and the mirror's memory
follow the distinct people, not the seats)."""

from __future__ import annotations

import json
from typing import Any

from calbridge.model import Attendee, Response, Upsert
from calbridge_providers.google import _convert as google
from calbridge_providers.graph import _convert as graph
from calbridge_providers.graph._changes import changes_from
from calbridge_providers.graph._wire import EVENTS as GRAPH_EVENTS

LISTS = [[0, 1, 2], [1, 2, 3], [2, 3, 0], [3]]  # four different lists over four people


def google_page() -> bytes:
    items: list[dict[str, Any]] = [
        {"id": f"e{i}", "status": "confirmed", "summary": "m",
         "start": {"dateTime": f"2026-03-0{i + 1}T09:00:00Z"}, "end": {"dateTime": f"2026-03-0{i + 1}T10:00:00Z"},
         "attendees": [{"email": f"p{k}@example.com", "responseStatus": "accepted"} for k in people]}
        for i, people in enumerate(LISTS)
    ]  # fmt: skip
    return json.dumps({"items": items}).encode()


def graph_page() -> bytes:
    value: list[dict[str, Any]] = [
        {"id": f"e{i}", "type": "singleInstance", "subject": "m",
         "start": {"dateTime": f"2026-03-0{i + 1}T09:00:00.0000000", "timeZone": "UTC"},
         "end": {"dateTime": f"2026-03-0{i + 1}T10:00:00.0000000", "timeZone": "UTC"},
         "organizer": {"emailAddress": {"address": "boss@contoso.example"}},
         "attendees": [{"type": "required", "status": {"response": "accepted"},
                        "emailAddress": {"address": f"p{k}@contoso.example"}} for k in people]}
        for i, people in enumerate(LISTS)
    ]  # fmt: skip
    return json.dumps({"value": value, "@odata.deltaLink": "https://x/delta?$deltatoken=t"}).encode()


def distinct(attendees: list[Attendee]) -> int:
    return len({id(a) for a in attendees})


def test_google_shares_each_distinct_attendee_across_the_lists_of_a_page() -> None:
    google.clear_caches()
    page = google.decode_page(google_page(), provider="google", account="a", calendar_id="c")
    seats = [a for c in page.changes if isinstance(c, Upsert) for a in c.event.attendees]
    assert len(seats) == 10 and distinct(seats) == 4
    assert [a.email for a in seats[:3]] == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert all(a.response is Response.ACCEPTED for a in seats)


def test_graph_shares_each_distinct_attendee_across_the_lists_of_a_page() -> None:
    graph.clear_caches()
    changes, quarantined = changes_from(
        GRAPH_EVENTS.decode(graph_page()), account="a", calendar_id="c", masters={}, errors={}
    )
    assert not quarantined
    seats = [a for c in changes if isinstance(c, Upsert) for a in c.event.attendees]
    assert len(seats) == 10 and distinct(seats) == 4
    assert all(a.response is Response.ACCEPTED and not a.organizer for a in seats)
