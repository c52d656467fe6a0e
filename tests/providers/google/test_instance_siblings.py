"""An events.instances page converts each instance like its predecessor when only its id, times, link
and etag differ (the expansion's fast path): the result equals converting every instance on its own."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from calbridge.model import Kind, Upsert
from calbridge_providers.google import _convert
from calbridge_providers.google._convert import decode_page

ZURICH = dt.timezone(dt.timedelta(hours=1))


def _instance(i: int, **over: Any) -> dict[str, Any]:
    start = dt.datetime(2026, 1, 5, 9, tzinfo=ZURICH) + dt.timedelta(days=i)
    item: dict[str, Any] = {
        "id": f"s1_2026010{i}T080000Z", "etag": f'"{i}"', "status": "confirmed", "summary": "Standup",
        "description": "<b>notes</b>", "location": "Room", "recurringEventId": "s1",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Zurich"},
        "end": {"dateTime": (start + dt.timedelta(minutes=15)).isoformat(), "timeZone": "Europe/Zurich"},
        "originalStartTime": {"dateTime": start.isoformat(), "timeZone": "Europe/Zurich"},
        "organizer": {"email": "boss@example.com", "self": True},
        "attendees": [{"email": "boss@example.com", "organizer": True, "responseStatus": "accepted"},
                      {"email": "p@example.com", "responseStatus": "needsAction"}],
        "htmlLink": f"https://calendar.google.com/event?eid={i}", "iCalUID": "s1@google.com",
        "created": "2025-12-01T10:00:00.000Z", "updated": "2025-12-02T10:00:00.000Z",
    }  # fmt: skip
    item.update(over)
    return item


def _page(items: list[dict[str, Any]]) -> list[Any]:
    body = json.dumps({"timeZone": "Europe/Zurich", "items": items, "nextSyncToken": "t"}).encode()
    page = decode_page(body, provider="google", account="a", calendar_id="c", occurrences=True)
    assert not page.quarantined
    return [c.event for c in page.changes if isinstance(c, Upsert)]


def test_siblings_equal_instances_converted_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    moved = dt.datetime(2026, 1, 9, 11, tzinfo=ZURICH)
    later = dt.datetime(2026, 1, 15, 13, tzinfo=ZURICH)
    items = [
        _instance(0), _instance(1), _instance(2),
        _instance(3, summary="Standup (long)"),  # an edited instance: converted in full
        _instance(4, start={"dateTime": moved.isoformat(), "timeZone": "Europe/Zurich"},
                  end={"dateTime": (moved + dt.timedelta(hours=1)).isoformat(), "timeZone": "Europe/Zurich"}),
        _instance(5, originalStartTime={"dateTime": "2026-01-10T08:00:00Z", "timeZone": "UTC"}),  # its slot's zone
        _instance(6), _instance(7, status="cancelled"), _instance(8),
        _instance(10, start={"dateTime": later.isoformat(), "timeZone": "Europe/Zurich"},
                  end={"dateTime": (later + dt.timedelta(hours=1)).isoformat(), "timeZone": "Europe/Zurich"}),
        _instance(9, start={"dateTime": "2026-01-14T09:00:00", "timeZone": "Europe/Zurich"}),  # naive on the wire
    ]  # fmt: skip
    full: list[str] = []
    convert = _convert._convert  # what a page's loop calls for an item in full

    def counting(ev: Any, *args: Any) -> Any:
        full.append(ev.id)
        return convert(ev, *args)

    monkeypatch.setattr(_convert, "_convert", counting)
    together = _page(items)
    # In full: 0, 3 (edited), 4 (after the edited one), 5 (its slot's zone), 6 (after 5), 7 (cancelled), 9 (naive);
    # 1, 2, 8 (after 6: the cancelled one is no model) and 9 (moved: only its times differ) are siblings.
    assert [i for i, item in enumerate(items) if item["id"] in full] == [0, 3, 4, 5, 6, 7, 10], full
    alone = [e for item in items for e in _page([item])]
    assert together == alone
    assert len(together) == 10 and all(e.kind is Kind.OCCURRENCE for e in together)
    by_id = {e.id: e for e in together}
    for moved_one in (4, 9):  # a moved one keeps its slot
        assert by_id[items[moved_one]["id"]].original_start != by_id[items[moved_one]["id"]].start
    assert by_id[items[5]["id"]].original_start is not None
    assert by_id[items[5]["id"]].original_start.timezone == "UTC"
