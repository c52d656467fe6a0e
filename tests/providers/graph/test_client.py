"""The graph error table and the HTTP behaviour around it: statuses and error codes → typed errors,
rate limits and server errors retried (Retry-After honoured, fractional too), at most four requests
at once per mailbox, an undecodable answer refused without a retry."""

from __future__ import annotations

import datetime as dt
import email.utils
import json

import aiohttp
import pytest
from aiohttp import web

from calbridge.errors import (
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TokenExpired,
    TransientError,
)  # fmt: skip
from calbridge.testing.context import make_context
from calbridge.testing.server import ThreadedServer
from calbridge.toolkit import Response
from calbridge_providers.graph import plugin
from calbridge_providers.graph._client import error_for

from .conftest import WINDOW, Harness, MirrorView, account_for, at

ONCE = {"pattern": {"type": "daily"}, "range": {"type": "numbered", "numberOfOccurrences": 1}}


def _error(status: int, code: str | None = None, *, inner: str | None = None, **headers: str) -> ProviderError | None:
    err: dict[str, object] = {"message": "m"}
    if code is not None:
        err["code"] = code
    if inner is not None:
        err["innerError"] = {"code": inner}
    return error_for(Response(status=status, headers=headers, body=json.dumps({"error": err}).encode()), "graph x")


def test_the_error_table() -> None:
    assert error_for(Response(status=200, body=b"{}"), "graph x") is None
    assert error_for(Response(status=204), "graph x") is None
    expired = _error(410, "syncStateNotFound")
    assert isinstance(expired, CursorExpired) and expired.status == 410 and expired.code == "syncStateNotFound"
    for code in ("syncStateNotFound", "resyncRequired", "SyncStateInvalid"):
        assert type(_error(400, code)) is CursorExpired
    assert type(_error(400, inner="resyncRequired")) is CursorExpired  # the innerError code when there is no code
    limited = _error(429, "TooManyRequests", **{"Retry-After": "0.35"})
    assert isinstance(limited, RateLimited) and limited.retry_after == 0.35
    assert isinstance(limited := _error(429), RateLimited) and limited.retry_after is None
    for status in (503, 504):
        busy = _error(status, **{"Retry-After": "2"})
        assert isinstance(busy, RateLimited) and busy.retry_after == 2.0
        assert type(_error(status)) is TransientError  # without Retry-After: only transient
    later = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    dated = _error(503, **{"Retry-After": later})
    assert isinstance(dated, RateLimited) and dated.retry_after is not None and 25 < dated.retry_after <= 30
    assert type(_error(500, "generalException")) is TransientError and type(_error(502)) is TransientError
    assert type(_error(401, "InvalidAuthenticationToken")) is TokenExpired
    assert type(_error(403, "ErrorAccessDenied")) is PermissionDenied
    assert type(_error(404, "ErrorItemNotFound")) is NotFound
    assert type(_error(400, "BadRequest")) is InvalidRequest and type(_error(302)) is InvalidRequest
    denied = _error(403, "ErrorAccessDenied")
    assert denied is not None and denied.code == "ErrorAccessDenied"
    assert str(denied) == "graph x: HTTP 403 ErrorAccessDenied: m"
    plain = error_for(Response(status=502, body=b"<html>bad gateway</html>"), "graph x")
    assert isinstance(plain, TransientError) and str(plain) == "graph x: HTTP 502" and plain.code is None


async def test_429_with_fractional_retry_after_is_honoured(harness: Harness) -> None:
    harness.emulator.create_event("A", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    harness.emulator.fail_next(429, retry_after=0.35)
    harness.emulator.fail_next(503, retry_after=0.1)
    harness.emulator.fail_next(503)
    await harness.sync()
    api = [r for r in harness.emulator.requests if r.path.startswith("/v1.0/")]
    assert [r.status for r in api[:4]] == [429, 503, 503, 200]
    assert api[1].time - api[0].time >= 0.35
    assert api[2].time - api[1].time >= 0.1
    assert len(harness.mirror) == 1


async def test_rate_limit_gives_up_after_the_policy(harness: Harness) -> None:
    harness.emulator.fail_next(429, retry_after=0.01, count=10)
    with pytest.raises(RateLimited) as info:
        await harness.sync()
    assert info.value.retry_after == pytest.approx(0.01)


async def test_at_most_four_concurrent_requests_per_mailbox(harness: Harness) -> None:
    emu = harness.emulator
    for i in range(8):
        emu.create_event(f"S{i}", at(2026, 3, 2, 9 + i), at(2026, 3, 2, 9 + i, 30),
                         recurrence=ONCE)  # fmt: skip
    emu.delay = 0.1
    await harness.sync(harness.provider(page_size=50))
    api = [r for r in emu.requests if r.path.startswith("/v1.0/") and r.end is not None]
    peak = max(sum(1 for o in api if o.time <= r.time < (o.end or 0.0)) for r in api)
    assert 2 <= peak <= 4


@pytest.mark.parametrize(
    ("delta", "master", "message"),
    [
        (b"<html>maintenance</html>", b"{}", "graph calendarView delta of primary: undecodable answer"),
        (b'{"value": {"id": "x"}}', b"{}", "graph calendarView delta of primary: undecodable answer"),
        (b'{"value": [{"id": "O", "type": "occurrence", "seriesMasterId": "M"}], "@odata.deltaLink": "%(base)s/d"}',
         b"not json", "series master M: the response is not JSON"),
    ],
)  # fmt: skip
async def test_an_undecodable_answer_fails_the_round_and_is_not_retried(
    session: aiohttp.ClientSession, delta: bytes, master: bytes, message: str
) -> None:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path)
        body = master if request.path.endswith("/events/M") else delta
        base = f"{request.scheme}://{request.host}/v1.0"
        return web.Response(body=body.replace(b"%(base)s", base.encode()), content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    with ThreadedServer(app) as srv:
        entry = {"name": "m", "base_url": f"{srv.url}/v1.0", "auth": {"kind": "token", "token": "t"}}
        provider = plugin.create(make_context(account_for(entry), session))
        with pytest.raises(InvalidResponse, match=message):
            async for _ in provider.sync("primary", None, window=WINDOW, view=MirrorView({})):
                pass
    assert len(seen) == len(set(seen))  # each asked once: a bad body is not retried


async def test_pages_ask_for_1000_items_by_default(harness: Harness) -> None:
    """Graph's calendarView default is 10 a page: without ``Prefer: odata.maxpagesize`` a 1,200-event
    calendar would be 120 delta pages; at the default 1000 it is two (page_size configures it)."""
    emu = harness.emulator
    for i in range(1200):
        emu.create_event(f"E{i}", at(2026, 3, 2 + i % 20, 8), at(2026, 3, 2 + i % 20, 9))
    provider = plugin.create(make_context(account_for(harness.entry), harness.session, secrets=harness.secrets))
    pages = await harness.sync(provider)
    delta = [r for r in emu.requests if "/delta" in r.path]
    assert len(delta) == len(pages) == 2
    assert all("odata.maxpagesize=1000" in r.headers.get("Prefer", "") for r in delta)
    assert len(harness.mirror) == 1200
    emu.requests.clear()
    await harness.sync(harness.provider(page_size=500), full=True)
    assert len([r for r in emu.requests if "/delta" in r.path]) == 3
