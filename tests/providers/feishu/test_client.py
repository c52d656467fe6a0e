"""The feishu error table and the HTTP behaviour around it: ``{code, msg, data}`` envelopes and
statuses → typed errors (an HTTP 200 with a non-zero code included), rate limits waiting
``x-ogw-ratelimit-reset``, server errors retried, a rejected token refreshed once, slow answers
waited for, and the emulator answering the codes the table reads."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TokenExpired,
    TransientError,
)
from calbridge.retry import Retrier, RetryPolicy
from calbridge.testing.server import ThreadedServer
from calbridge.toolkit import Response
from calbridge_providers.feishu._client import TooManyInstances, decode, decode_page, error_for
from calbridge_providers.feishu._wire import EVENTS, events_data
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import Factory, Mirror, at
from .test_sync import seed

RESET = "x-ogw-ratelimit-reset"


def _failure(status: int, code: int | None, *, reset: str = "2", what: str = "feishu event list") -> ProviderError:
    """The error the client raises for this answer: the table's for a non-200, the envelope's for a 200."""
    body = json.dumps({"code": code, "msg": "provider text"}).encode()
    response = Response(status=status, headers={RESET: reset}, body=body)
    if status != 200:
        err = error_for(response, what)
        assert err is not None
        return err
    with pytest.raises(ProviderError) as info:
        decode(response, what)
    return info.value


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
    err = _failure(status, code)
    assert type(err) is expected
    assert "feishu event list" in str(err) and (code is None or str(code) in str(err))


def test_rate_limit_reset_header_and_http200_errors() -> None:
    limited = error_for(Response(status=429, headers={RESET: "3"},
                                 body=b'{"code":99991400,"msg":"request trigger frequency limit"}'), "x")  # fmt: skip
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    # A rate-limit code on an HTTP 200 waits the header too.
    with pytest.raises(RateLimited) as info:
        decode(Response(status=200, headers={RESET: "4"}, body=b'{"code":190005,"msg":"busy"}'), "x")
    assert info.value.retry_after == 4.0
    with pytest.raises(CursorExpired):
        decode(Response(status=200, body=b'{"code":190008,"msg":"expired","data":{}}'), "x")
    assert isinstance(error_for(Response(status=503, body=b"<html>bad gateway</html>"), "x"), TransientError)
    assert decode(Response(status=200, body=b'{"code":0,"data":{"a":1}}'), "x") == {"a": 1}
    flat = decode(Response(status=200, body=b'{"code":0,"tenant_access_token":"t"}'), "x", flat=True)
    assert flat["tenant_access_token"] == "t"
    assert error_for(Response(status=200, body=b'{"code":190008}'), "x") is None  # judged where it is decoded


def _list_page(code: int = 0) -> bytes:
    data = '{"has_more": false, "page_token": "", "sync_token": "s2", "items": []}'
    return f'{{"code": {code}, "msg": "success", "data": {data}}}'.encode()


def test_decode_page_keeps_the_envelope_rules() -> None:
    def page(body: bytes, status: int = 200) -> object:
        return decode_page(EVENTS, Response(status=status, body=body), "x")

    with pytest.raises(CursorExpired):
        page(_list_page(code=190008))
    with pytest.raises(CursorExpired):  # a failure whose data does not fit is still the code's error
        page(b'{"code": 190008, "msg": "expired", "data": {"items": 5}}')
    with pytest.raises(CursorExpired):  # nor does a failure whose item does not fit land
        page(b'{"code": 190008, "msg": "expired", "data": {"items": [{"event_id": 5}]}}')
    with pytest.raises(InvalidResponse):
        page(b'{"code": false, "data": {}}')
    with pytest.raises(InvalidResponse, match="undecodable page"):
        page(b'{"code": 0, "data": {"items": 5}}')
    with pytest.raises(InvalidResponse, match="non-JSON"):
        page(b"<html>ok</html>")
    for body in (b'{"code": 0}', b'{"code": 0, "data": null}', b'{"code": 0, "data": [1]}', b'{"data": {}}'):
        got = decode_page(EVENTS, Response(status=200, body=body), "x")
        assert got.items == [] and got.items_missing and not events_data(got).has_more


async def test_rate_limit_waits_for_the_reset_header(emu: FeishuEmulator, make_provider: Factory) -> None:
    seed(emu)
    provider = make_provider(retry=Retrier(RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)))
    mirror = Mirror()
    await provider.client.calendar_list({"page_size": "50"})  # warm-up: the token is fetched
    emu.clear_log()
    emu.rate_limit(reset=1, code=190004, path="/events")
    await mirror.round(provider)
    hits = [r for r in emu.requests("/events") if r["path"].endswith("/events")]
    assert len(hits) >= 2 and hits[1]["time"] - hits[0]["time"] >= 0.95


async def test_server_errors_are_retried_and_token_rejection_refreshes_once(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    seed(emu)
    provider = make_provider()
    mirror = Mirror()
    emu.inject(503, 190003, path="/events", msg="internal service error", count=2)
    await mirror.round(provider)
    emu.revoke_access_tokens()
    emu.clear_log()
    emu.create_event(summary="after revoke", start=at(3), end=at(3, 1))
    await mirror.round(provider)
    assert len(emu.requests("tenant_access_token")) == 1
    assert any(e.title == "after revoke" for e in mirror.events.values())


async def test_the_request_counter_counts_each_api_attempt_and_no_token_fetch(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    seed(emu)
    provider = make_provider()
    emu.inject(503, 190003, path="/events", msg="internal service error", count=2)
    await Mirror().round(provider)
    api = [r for r in emu.requests() if r["path"].startswith("/open-apis/calendar/")]
    assert len(emu.requests("tenant_access_token")) == 1
    assert provider.client.requests == len(api) and len(api) > 3  # the two failed attempts included


async def test_a_token_refused_after_its_refresh_is_an_auth_error(emu: FeishuEmulator, make_provider: Factory) -> None:
    seed(emu)
    provider = make_provider()
    await provider.client.calendar_list({"page_size": "50"})
    emu.inject(400, 99991663, path="/calendars", msg="invalid access token", count=2)
    with pytest.raises(AuthError) as info:
        await provider.client.calendar_list({"page_size": "50"})
    assert info.value.code == "99991663" and not isinstance(info.value, TokenExpired)
    assert len(emu.requests("tenant_access_token")) == 2  # refreshed once, not again


async def test_slow_answers_are_waited_for(emu: FeishuEmulator, make_provider: Factory) -> None:
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
