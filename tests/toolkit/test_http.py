"""HttpClient against real aiohttp servers on loopback: origin check, refresh-once, Retry-After
through the retrier, the deadline, the provider's error table (a 200 that failed included), TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidResponse,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    TokenExpired,
    TransientError,
)
from calbridge.toolkit import CachedToken, Response, StaticTokenSource, Token

from .conftest import MakeClient, Serve, Sleeps


class Recorder:
    """An app whose handler answers from a script of (status, headers, body) and records each request."""

    def __init__(self, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers),
                          "auth": request.headers.get("Authorization"), "body": await request.read()})  # fmt: skip
        status, headers, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return web.Response(status=status, headers=headers, body=json.dumps(body).encode())


class Counting:
    """A refreshable token source that hands out tok-1, tok-2, ... (one per fetch)."""

    def __init__(self) -> None:
        self.cache = CachedToken(self._fetch)

    async def _fetch(self) -> Token:
        return Token(value=f"tok-{self.cache.fetches}")


async def test_a_path_goes_below_base_url_with_params_token_and_default_headers(
    serve: Serve, make_client: MakeClient
) -> None:
    rec = Recorder((200, {}, {"ok": True}))
    base = await serve(rec.app()) + "/api/v1"
    client = make_client(base, tokens=StaticTokenSource("secret-1"), headers={"Accept": "application/json"})
    resp = await client.request("GET", "/things", params={"a": "1"}, what="things")
    assert resp.status == 200 and json.loads(resp.body) == {"ok": True}
    (seen,) = rec.seen
    assert seen["path"] == "/api/v1/things" and seen["query"] == {"a": "1"}
    assert seen["auth"] == "Bearer secret-1" and seen["headers"]["Accept"] == "application/json"
    await client.request("POST", "/token", json={"x": 1}, what="token", authorize=False)
    assert rec.seen[-1]["auth"] is None and json.loads(rec.seen[-1]["body"]) == {"x": 1}
    assert client.sent == 2


async def test_an_absolute_link_on_another_origin_is_refused_and_gets_no_token(
    serve: Serve, make_client: MakeClient
) -> None:
    home, elsewhere = Recorder((200, {}, {})), Recorder((200, {}, {}))
    base, other = await serve(home.app()), await serve(elsewhere.app())
    client = make_client(base, tokens=StaticTokenSource("secret-1"))
    with pytest.raises(InvalidResponse, match="another origin") as info:
        await client.request("GET", f"{other}/steal?token=x", what="next page")
    assert "secret-1" not in str(info.value) and "token=x" not in str(info.value)
    assert elsewhere.seen == [] and home.seen == []
    # The same origin, its scheme spelled in capitals, is followed.
    await client.request("GET", base.replace("http://", "HTTP://") + "/next?skip=1", what="next page")
    assert home.seen[0]["path"] == "/next" and home.seen[0]["auth"] == "Bearer secret-1"


async def test_redirects_are_not_followed_unless_asked(serve: Serve, make_client: MakeClient) -> None:
    elsewhere = Recorder((200, {}, {}))
    other = await serve(elsewhere.app())
    home = Recorder((302, {"Location": f"{other}/x"}, {}))
    client = make_client(await serve(home.app()), tokens=StaticTokenSource("secret-1"))
    with pytest.raises(ProviderError) as info:
        await client.request("GET", "/moved", what="moved")
    assert info.value.status == 302 and elsewhere.seen == []


async def test_a_rejected_token_is_refreshed_once_and_the_request_sent_again(
    serve: Serve, make_client: MakeClient
) -> None:
    rec = Recorder((401, {}, {}), (200, {}, {"n": 1}))
    tokens = Counting()
    client = make_client(await serve(rec.app()), tokens=tokens.cache)
    resp = await client.request("GET", "/x", what="x")
    assert json.loads(resp.body) == {"n": 1}
    assert [s["auth"] for s in rec.seen] == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_token_refused_after_the_refresh_is_an_auth_error(serve: Serve, make_client: MakeClient) -> None:
    rec = Recorder((401, {}, {}))
    tokens = Counting()
    client = make_client(await serve(rec.app()), tokens=tokens.cache)
    with pytest.raises(AuthError, match="after a refresh") as info:
        await client.request("GET", "/x", what="x")
    assert not isinstance(info.value, TokenExpired) and info.value.status == 401
    assert [s["auth"] for s in rec.seen] == ["Bearer tok-1", "Bearer tok-2"] and tokens.cache.fetches == 2


async def test_a_static_token_refused_is_an_auth_error_without_a_second_request(
    serve: Serve, make_client: MakeClient
) -> None:
    rec = Recorder((401, {}, {}))
    client = make_client(await serve(rec.app()), tokens=StaticTokenSource("fixed-secret"))
    with pytest.raises(AuthError, match="configured token was refused") as info:
        await client.request("GET", "/x", what="x")
    assert len(rec.seen) == 1 and "fixed-secret" not in repr(info.value)


@pytest.mark.parametrize("kind", ["seconds", "date"])
async def test_retry_after_is_waited_exactly_through_the_retrier(
    serve: Serve, make_client: MakeClient, sleeps: Sleeps, kind: str
) -> None:
    if kind == "seconds":
        value, expected = "1.5", 1.5
    else:
        value = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120), usegmt=True)
        expected = 120.0
    rec = Recorder((429, {"Retry-After": value}, {}), (200, {}, {}))
    client = make_client(await serve(rec.app()))
    await client.request("GET", "/x", what="x")
    assert len(rec.seen) == 2
    (wait,) = sleeps.waits
    assert expected - 2 <= wait <= expected


async def test_rate_limits_that_outlast_the_policy_surface_with_their_wait(
    serve: Serve, make_client: MakeClient, sleeps: Sleeps
) -> None:
    rec = Recorder((429, {"Retry-After": "2"}, {}))
    client = make_client(await serve(rec.app()), attempts=3)
    with pytest.raises(RateLimited) as info:
        await client.request("GET", "/x", what="x")
    assert info.value.retry_after == 2.0 and sleeps.waits == [2.0, 2.0] and len(rec.seen) == 3


async def test_the_deadline_is_a_provider_timeout_per_attempt(serve: Serve, make_client: MakeClient) -> None:
    calls = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return web.json_response({"n": calls})

    app = web.Application()
    app.router.add_get("/slow", slow)
    client = make_client(await serve(app), timeout=0.2)
    t0 = time.monotonic()
    resp = await client.request("GET", "/slow", what="slow")  # the second attempt answers at once
    assert json.loads(resp.body) == {"n": 2} and time.monotonic() - t0 < 2
    calls = 0
    with pytest.raises(ProviderTimeout, match=r"no answer within 0\.2s") as info:
        await client.request("GET", "/slow", what="slow", retry=False)
    assert isinstance(info.value, TransientError | TimeoutError)


async def test_a_dropped_connection_is_transient_and_retried(make_client: MakeClient, sleeps: Sleeps) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    client = make_client(f"http://127.0.0.1:{port}", attempts=3)
    with pytest.raises(TransientError, match="connection failed"):
        await client.request("GET", "/x", what="x")
    assert client.sent == 3 and len(sleeps.waits) == 2


def envelope_table(response: Response, what: str) -> ProviderError | None:
    """Feishu-like: the body's ``code`` decides, whatever the HTTP status."""
    code = json.loads(response.body).get("code")
    if response.status == 200 and code == 0:
        return None
    if code == 99991663:
        return TokenExpired(f"{what}: token rejected (code {code})", provider="t", status=response.status)
    if code == 190008:
        return CursorExpired(f"{what}: sync token expired", provider="t", status=response.status, code=str(code))
    return ProviderError(f"{what}: code {code}", provider="t", status=response.status)


async def test_the_error_table_sees_every_response_and_can_fail_a_200(serve: Serve, make_client: MakeClient) -> None:
    rec = Recorder((200, {}, {"code": 190008, "msg": "expired"}))
    client = make_client(await serve(rec.app()), errors=envelope_table)
    with pytest.raises(CursorExpired) as info:
        await client.request("GET", "/events", what="events")
    assert info.value.status == 200 and info.value.code == "190008" and len(rec.seen) == 1

    rec2 = Recorder((200, {}, {"code": 99991663}), (200, {}, {"code": 0, "data": {}}))
    tokens = Counting()
    client2 = make_client(await serve(rec2.app()), errors=envelope_table, tokens=tokens.cache)
    resp = await client2.request("GET", "/events", what="events")
    assert json.loads(resp.body)["code"] == 0 and [s["auth"] for s in rec2.seen] == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_per_call_table_and_a_parse_step_run_inside_the_attempt(serve: Serve, make_client: MakeClient) -> None:
    rec = Recorder((200, {}, {"code": 190008}))
    client = make_client(await serve(rec.app()))  # its own table accepts every 2xx
    assert (await client.request("GET", "/x", what="x")).status == 200
    with pytest.raises(CursorExpired):
        await client.request("GET", "/x", what="x", errors=envelope_table)

    rec2 = Recorder((200, {}, {"code": 503}), (200, {}, {"code": 0, "value": 7}))

    def parse(response: Response) -> int:
        body = json.loads(response.body)
        if body["code"]:
            raise TransientError("busy", provider="t")
        return int(body["value"])

    client2 = make_client(await serve(rec2.app()))
    assert await client2.request_parsed("GET", "/y", parse, what="y") == 7 and len(rec2.seen) == 2


async def test_the_semaphore_bounds_concurrent_requests(serve: Serve, make_client: MakeClient) -> None:
    active = peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    client = make_client(await serve(app), semaphore=asyncio.Semaphore(2), timeout=0.5)
    await asyncio.gather(*(client.request("GET", "/x", what="x") for _ in range(8)))
    assert peak == 2  # and waiting for the semaphore never counted against the 0.5s deadline


async def test_the_accounts_ca_file_is_the_tls_trust(serve: Serve, make_client: MakeClient, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"tls": True})

    app = web.Application()
    app.router.add_get("/x", hello)

    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ctx)
    try:
        base = f"https://127.0.0.1:{server.port}"
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        trusted = make_client(base, ca_file=ca_file)
        assert json.loads((await trusted.request("GET", "/x", what="x")).body) == {"tls": True}
        untrusted = make_client(base, attempts=1)
        with pytest.raises(TransientError, match="connection failed"):
            await untrusted.request("GET", "/x", what="x")
    finally:
        await server.close()


async def test_an_undecodable_answer_is_an_invalid_response_and_not_retried(
    serve: Serve, make_client: MakeClient
) -> None:
    import msgspec

    class Shape(msgspec.Struct):
        n: int

    rec = Recorder((200, {}, {"n": "not a number"}))
    client = make_client(await serve(rec.app()))
    decode = msgspec.json.Decoder(Shape).decode
    with pytest.raises(InvalidResponse, match=r"t shape: undecodable answer: Expected `int`") as info:
        await client.request_decoded("GET", "/x", decode, what="shape")
    assert "not a number" not in str(info.value) and len(rec.seen) == 1
    rec.answers = [(200, {}, {"n": 3})]
    assert await client.request_decoded("GET", "/x", decode, what="shape") == Shape(n=3)
