"""Pure conversion: Feishu items (the ``_wire`` Structs) → events and changes, and a page's
quarantine of exactly the items that cannot be decoded or normalized."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec
import pytest

from calbridge.errors import MalformedEvent
from calbridge.model import Delete, Kind, Status, Upsert, When
from calbridge.toolkit import Response
from calbridge_providers.feishu._client import decode_page
from calbridge_providers.feishu._convert import change_from as _change_from
from calbridge_providers.feishu._convert import changes_from, series_id_of
from calbridge_providers.feishu._convert import event_from as _event_from
from calbridge_providers.feishu._wire import EVENTS, FEvent, events_data

UTC = dt.UTC
KW = {"account": "a", "calendar_id": "c"}


def wire(item: dict[str, Any]) -> FEvent:
    """The Struct the provider decodes from this item's JSON bytes."""
    return msgspec.json.decode(json.dumps(item).encode(), type=FEvent)


def event_from(item: dict[str, Any], **kw: Any) -> Any:
    return _event_from(wire(item), **kw)


def change_from(item: dict[str, Any], **kw: Any) -> Any:
    return _change_from(wire(item), **kw)


def test_ids_all_day_and_exceptions() -> None:
    allday = event_from(
        {
            "event_id": "u1_0",
            "start_time": {"date": "2026-05-01", "timestamp": "1777593600", "timezone": "UTC"},
            "end_time": {"date": "2026-05-02"},
        },
        **KW,
    )
    assert allday.start == When.on(dt.date(2026, 5, 1)) and allday.end == When.on(dt.date(2026, 5, 3))
    # recurring_event_id without the ``_0`` suffix (as in the list docs) still names the master.
    exc = event_from(
        {
            "event_id": "u2_1777626000",
            "is_exception": True,
            "recurring_event_id": "u2",
            "start_time": {"timestamp": "1777629600", "timezone": "Asia/Shanghai"},
            "end_time": {"timestamp": "1777633200", "timezone": "Asia/Shanghai"},
        },
        **KW,
    )
    assert exc.kind is Kind.EXCEPTION and exc.series_id == "u2_0" and series_id_of("u2") == "u2_0"
    assert exc.original_start == When.at(dt.datetime.fromtimestamp(1777626000, UTC), "Asia/Shanghai")
    master = event_from(
        {
            "event_id": "u3_0",
            "recurrence": "FREQ=WEEKLY;BYDAY=FR,MO;UNTIL=20260601T000000Z",
            "start_time": {"timestamp": "1777593600", "timezone": "Asia/Shanghai"},
            "end_time": {"timestamp": "1777597200", "timezone": "Asia/Shanghai"},
        },
        **KW,
    )
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;UNTIL=20260601T000000Z;BYDAY=MO,FR",)


def test_cancelled_items() -> None:
    gone = change_from({"event_id": "u4_0", "status": "cancelled"}, **KW)
    assert isinstance(gone, Delete) and gone.key.id == "u4_0"
    slot = change_from({"event_id": "u5_1777626000", "status": "cancelled", "is_exception": True}, **KW)
    assert isinstance(slot, Upsert) and slot.event.status is Status.CANCELLED and slot.event.series_id == "u5_0"
    assert slot.event.original_start is not None and slot.event.original_start.instant is not None
    with pytest.raises(MalformedEvent):
        change_from({"event_id": "u6_0", "start_time": {"timestamp": "5"}, "end_time": {"date": "2026-01-01"}}, **KW)


def _list_page(*items: str, code: int = 0) -> bytes:
    data = '{"has_more": false, "page_token": "", "sync_token": "s2", "items": [' + ", ".join(items) + "]}"
    return f'{{"code": {code}, "msg": "success", "data": {data}}}'.encode()


def test_page_quarantines_exactly_the_bad_items_with_their_own_json_text() -> None:
    good = json.dumps({"event_id": "g_0", "summary": "ok", "start_time": {"timestamp": "1777593600"},
                       "end_time": {"timestamp": "1777597200"}})  # fmt: skip
    bad_rule = json.dumps({"event_id": "r_0", "summary": "会议", "recurrence": "BOGUS",
                           "start_time": {"timestamp": "1777593600"}, "end_time": {"timestamp": "1777597200"}},
                          ensure_ascii=False)  # fmt: skip
    off_shape = '{"event_id":"o_0",  "start_time": [1, 2]}'  # start_time not an object
    gone = '{"event_id": "d_0", "status": "cancelled"}'
    for items in ((good, bad_rule, gone), (good, off_shape, bad_rule, gone)):
        body = _list_page(*items)
        page = decode_page(EVENTS, Response(status=200, body=body), "feishu event list")
        # Only a page with an item that does not fit is decoded again, item by item.
        assert bool(page.quarantined) == (off_shape in items)
        assert events_data(page).sync_token == "s2" and not events_data(page).has_more
        changes, quarantined = changes_from(page, account="a", calendar_id="c")
        assert [c.event.id if isinstance(c, Upsert) else c.key.id for c in changes] == ["g_0", "d_0"]
        got = {q.event_id: q for q in quarantined}
        assert got["r_0"].payload == bad_rule and got["r_0"].error
        if off_shape in items:
            assert got["o_0"].payload == off_shape and "start_time" in got["o_0"].error
        assert len(quarantined) == len(items) - 2
