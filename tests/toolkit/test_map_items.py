"""``DecodedPage.map_items`` quarantines an item whatever its converter raises (issue 12, item 5): a
plugin's converter that meets a value it cannot handle costs that item, never its page."""

from __future__ import annotations

import datetime as dt
import json

import msgspec

from calbridge.errors import MalformedEvent
from calbridge.toolkit import PageDecoder


class Item(msgspec.Struct):
    id: str | None = None
    at: dt.datetime | None = None


class Page(msgspec.Struct):
    items: list[Item] = []


PAGES = PageDecoder(Page, Item)


def convert(item: Item) -> str:
    if item.at is None:
        raise MalformedEvent("no time", event_id=item.id)
    return item.at.astimezone(dt.UTC).isoformat()  # year 1 at +05:00: OverflowError


def test_any_exception_quarantines_only_its_item() -> None:
    items = [{"id": "ok", "at": "2026-01-01T09:00:00+01:00"}, {"id": "year1", "at": "0001-01-01T00:00:00+05:00"},
             {"id": "none"}, {"id": "bad", "at": 7}, {"id": "ok2", "at": "2026-01-02T09:00:00Z"}]  # fmt: skip
    page = PAGES.decode(json.dumps({"items": items}).encode())
    out, quarantined = page.map_items(convert)
    assert out == ["2026-01-01T08:00:00+00:00", "2026-01-02T09:00:00+00:00"]
    # In page order: the one that did not decode ("bad") after the two that failed to convert.
    assert [q.event_id for q in quarantined] == ["year1", "none", "bad"]
    assert quarantined[0].error.startswith("OverflowError: ") and quarantined[1].error == "no time"
    assert json.loads(quarantined[0].payload) == items[1]
