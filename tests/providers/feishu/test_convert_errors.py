"""Pure conversion and the envelope → error mapping; plus emulator contract checks over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp
import msgspec
import pytest

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    MalformedEvent,
    NotFound,
    PermissionDenied,
    RateLimited,
    TokenExpired,
    TransientError,
)
from calbridge.model import Delete, Kind, Status, Upsert, When
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu._client import TooManyInstances, decode, error_for
from calbridge_providers.feishu._convert import change_from as _change_from
from calbridge_providers.feishu._convert import event_from as _event_from
from calbridge_providers.feishu._convert import series_id_of
from calbridge_providers.feishu._wire import FEvent
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import Factory

UTC = dt.UTC
KW = {"account": "a", "calendar_id": "c"}


def wire(item: dict[str, Any]) -> FEvent:
    """The Struct the provider decodes from this item's JSON bytes."""
    return msgspec.json.decode(json.dumps(item).encode(), type=FEvent)


def event_from(item: dict[str, Any], **kw: Any) -> Any:
    return _event_from(wire(item), **kw)


def change_from(item: dict[str, Any], **kw: Any) -> Any:
    return _change_from(wire(item), **kw)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 190008, CursorExpired),
        (429, 99991400, RateLimited),
        (429, 190004, RateLimited),
        (429, 190005, RateLimited),
        (429, 190010, RateLimited),
        (500, 190003, TransientError),
        (502, None, TransientError),
        (404, 191000, NotFound),
        (400, 191001, NotFound),
        (403, 191002, PermissionDenied),
        (403, 191003, NotFound),
        (403, 191004, InvalidRequest),
        (400, 190002, InvalidRequest),
        (400, 190009, InvalidRequest),
        (400, 193103, InvalidRequest),
        (400, 193104, TooManyInstances),
        (404, 193001, NotFound),
        (403, 193002, PermissionDenied),
        (403, 193003, NotFound),
        (403, 190006, AuthError),
        (404, 190007, PermissionDenied),
        (403, 190011, PermissionDenied),
        (403, 190012, PermissionDenied),
        (400, 193000, InvalidRequest),
        (404, 195100, AuthError),
        (400, 99991663, TokenExpired),
        (400, 99991668, TokenExpired),
        (401, 99991677, TokenExpired),
        (200, 10014, AuthError),
        (400, 20026, AuthError),
        (200, 123456, InvalidResponse),
    ],
)
def test_error_codes_map_to_typed_errors(status: int, code: int | None, expected: type[Exception]) -> None:
    err = error_for(status, code, "provider text", "2", "event list")
    assert type(err) is expected
    assert "feishu event list" in str(err) and (code is None or str(code) in str(err))


def test_rate_limit_reset_header_and_http200_errors() -> None:
    with pytest.raises(RateLimited) as info:
        decode(429, b'{"code":99991400,"msg":"request trigger frequency limit"}', "3", "x")
    assert info.value.retry_after == 3.0
    with pytest.raises(CursorExpired):
        decode(200, b'{"code":190008,"msg":"expired","data":{}}', None, "x")
    with pytest.raises(TransientError):
        decode(503, b"<html>bad gateway</html>", None, "x")
    assert decode(200, b'{"code":0,"data":{"a":1}}', None, "x") == {"a": 1}
    assert decode(200, b'{"code":0,"tenant_access_token":"t"}', None, "x", flat=True)["tenant_access_token"] == "t"


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


async def test_calendars_and_primary(emu: FeishuEmulator, make_provider: Factory) -> None:
    emu.add_calendar("feishu.cn_team@group.calendar.feishu.cn", summary="Team", role="reader")
    provider = make_provider()
    cals = await provider.calendars()
    assert [(c.id, c.primary, c.access) for c in cals] == [
        (emu.primary_id, True, "owner"),
        ("feishu.cn_team@group.calendar.feishu.cn", False, "reader"),
    ]
    with pytest.raises(NotFound, match="calendar not found"):
        async for _ in provider.sync("feishu.cn_nope", None, window=_window(), view=_Empty()):
            pass


async def test_emulator_contract(emu: FeishuEmulator, server: ThreadedServer) -> None:
    async with aiohttp.ClientSession() as s:
        # JSON accepted without a Content-Type header (the official SDK sends none).
        body = json.dumps({"app_id": "cli_calbridge_demo", "app_secret": emu.apps["cli_calbridge_demo"]}).encode()
        async with s.post(server.url + "/open-apis/auth/v3/tenant_access_token/internal", data=body) as r:
            token = (await r.json())["tenant_access_token"]
        async with s.post(server.url + "/open-apis/auth/v3/tenant_access_token/internal", data=body) as r:
            assert (await r.json())["tenant_access_token"] == token  # ≥ 30 min left: the same token
        h = {"Authorization": f"Bearer {token}"}
        base = f"{server.url}/open-apis/calendar/v4/calendars/{emu.primary_id}/events"
        cases = [
            (base + "/instance_view?start_time=0&end_time=3456000", 193103),
            (base + "?sync_token=abc&start_time=0&end_time=10", 190009),
            (base + "?page_size=20", 190002),
            (base + "?sync_token=bogus", 190008),
        ]
        for url, code in cases:
            async with s.get(url, headers=h) as r:
                assert r.status == 400 and (await r.json())["code"] == code
        async with s.get(base, headers={"Authorization": "Bearer nope"}) as r:
            assert (await r.json())["code"] == 99991663


class _Empty:
    async def get(self, ids: object) -> dict[str, object]:
        return {}

    async def exceptions_of(self, series_ids: object) -> list[object]:
        return []


def _window() -> object:
    from .conftest import WINDOW

    return WINDOW


async def test_slow_answers_and_instance_view_fallback(emu: FeishuEmulator, make_provider: Factory) -> None:
    import time

    from calbridge.model import Window

    from .conftest import Mirror, at

    series = [
        emu.create_event(summary=f"s{i}", start=at(1, i), end=at(1, i + 1), recurrence="FREQ=DAILY;COUNT=3")
        for i in range(12)
    ]
    provider = make_provider()
    mirror = Mirror()
    emu.slow(0.3, path="/events")
    t0 = time.monotonic()
    await mirror.round(provider)
    assert time.monotonic() - t0 >= 0.3 and set(series) <= set(mirror.events)
    # A calendar type without instance_view (191004) falls back to per-series instances.
    emu.inject(403, 191004, path="instance_view", msg="invalid calendar type")
    window = Window(start=at(0), end=at(60))
    out = [x async for x in provider.expand("primary", series, window=window, view=mirror)]
    assert len(out) == 12 and sum(len(x.occurrences) for x in out) == 36


def _list_page(*items: str, code: int = 0) -> bytes:
    data = '{"has_more": false, "page_token": "", "sync_token": "s2", "items": [' + ", ".join(items) + "]}"
    return f'{{"code": {code}, "msg": "success", "data": {data}}}'.encode()


def test_page_quarantines_exactly_the_bad_items_with_their_own_json_text() -> None:
    from calbridge_providers.feishu._client import decode_data
    from calbridge_providers.feishu._convert import changes_from
    from calbridge_providers.feishu._wire import EVENTS, decode_events

    good = json.dumps({"event_id": "g_0", "summary": "ok", "start_time": {"timestamp": "1777593600"},
                       "end_time": {"timestamp": "1777597200"}})  # fmt: skip
    bad_rule = json.dumps({"event_id": "r_0", "summary": "会议", "recurrence": "BOGUS",
                           "start_time": {"timestamp": "1777593600"}, "end_time": {"timestamp": "1777597200"}},
                          ensure_ascii=False)  # fmt: skip
    off_shape = '{"event_id":"o_0",  "start_time": [1, 2]}'  # start_time not an object
    gone = '{"event_id": "d_0", "status": "cancelled"}'
    for items in ((good, bad_rule, gone), (good, off_shape, bad_rule, gone)):
        body = _list_page(*items)
        data = decode_data(200, body, None, "event list", EVENTS)
        assert (data is None) == (off_shape in items)  # None: an item did not fit, go item by item
        page = decode_events(body, data)
        assert page.sync_token == "s2" and not page.has_more
        changes, quarantined = changes_from(page, account="a", calendar_id="c")
        assert [c.event.id if isinstance(c, Upsert) else c.key.id for c in changes] == ["g_0", "d_0"]
        got = {q.event_id: q for q in quarantined}
        assert got["r_0"].payload == bad_rule and got["r_0"].error
        if off_shape in items:
            assert got["o_0"].payload == off_shape and "start_time" in got["o_0"].error
        assert len(quarantined) == len(items) - 2


def test_decode_data_keeps_the_envelope_rules() -> None:
    from calbridge_providers.feishu._client import decode_data
    from calbridge_providers.feishu._wire import EVENTS

    with pytest.raises(CursorExpired):
        decode_data(200, _list_page(code=190008), None, "event list", EVENTS)
    with pytest.raises(CursorExpired):  # a failure whose data does not fit is still the code's error
        decode_data(200, b'{"code": 190008, "msg": "expired", "data": {"items": 5}}', None, "x", EVENTS)
    with pytest.raises(InvalidResponse):
        decode_data(200, b'{"code": false, "data": {}}', None, "x", EVENTS)
    with pytest.raises(TransientError):
        decode_data(503, b"<html>bad gateway</html>", None, "x", EVENTS)
    for body in (b'{"code": 0}', b'{"code": 0, "data": null}', b'{"code": 0, "data": [1]}', b'{"data": {}}'):
        data = decode_data(200, body, None, "x", EVENTS)
        assert data is not None and data.items is None and not data.has_more
