"""Hostile bodies, links and waits (issue 12, items 3, 4, 6, 7, 10): a gzip bomb, a giant token, a
page token or link too long to keep, JSON nested too deeply, a link with credentials and a wait of an
hour each fail one calendar clearly and quickly, in bounded memory, with the store intact."""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from calbridge.cursor import Cursor
from calbridge.errors import RateLimited
from calbridge.retry import Retrier, RetryPolicy
from calbridge.state import CalendarState, Round
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA, make_test_ca
from calbridge.toolkit import PageDecoder, has_userinfo, same_origin
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google._provider import SCHEME, VERSION
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

from ._hostile import Hostile, answer_json, config, peak_rss_mib, raw_states, saved, sync

CAL = "alice@example.com"
LIST = "/calendars/primary/events"
MiB = 1024 * 1024
DEEP = b"[" * 200_000 + b"]" * 200_000


def seeded() -> GoogleEmulator:
    emu = GoogleEmulator()
    emu.state.add_calendar(CAL, summary="Alice", time_zone="UTC", primary=True)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    emu.state.bulk_insert(CAL, [
        {"summary": f"event {i}", "start": {"dateTime": (now + dt.timedelta(hours=i)).isoformat()},
         "end": {"dateTime": (now + dt.timedelta(hours=i, minutes=30)).isoformat()}}
        for i in range(5)
    ])  # fmt: skip
    return emu


@pytest.fixture
def google(tmp_path: Path) -> Iterator[tuple[Hostile, Any]]:
    """The seeded emulator behind a hostile middleware (off at first) and the config pointing at it;
    the hostile ``answer`` is set by the test."""

    async def unset(request: web.Request, n: int) -> web.StreamResponse:
        raise AssertionError("no hostile answer set")

    emu = seeded()
    hostile = Hostile(LIST, unset)
    hostile.on = False
    with ThreadedServer(hostile.wrap(emu.make_app())) as srv:
        yield hostile, config(emu.account_config(name="g", base_url=srv.url, ca_file=None), tmp_path)


async def stream(request: web.Request, head: bytes, filler: bytes, count: int, tail: bytes, *,
                 gzip: bool) -> web.StreamResponse:  # fmt: skip
    """``head`` + ``count`` × ``filler`` + ``tail``, generated as it is sent (gzip-compressed when asked)."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json", **({"Content-Encoding": "gzip"} if gzip
                                                                              else {})})  # fmt: skip
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    pack = zlib.compressobj(wbits=31) if gzip else None
    try:
        for part in (head, *([filler] * count), tail):
            await resp.write(part if pack is None else pack.compress(part))
        if pack is not None:
            await resp.write(pack.flush())
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client stopped reading at its cap
    return resp


async def test_a_gzip_bomb_is_read_only_up_to_the_body_cap(google: tuple[Hostile, Any]) -> None:
    hostile, cfg = google
    assert (await sync(cfg)).ok
    before = await saved(cfg)

    async def bomb(request: web.Request, n: int) -> web.StreamResponse:
        # 1 GiB of JSON whitespace, so only the cap, not the decoder, can refuse it.
        return await stream(request, b'{"items": [', b" " * MiB, 1024, b'], "nextSyncToken": "t"}', gzip=True)

    hostile.answer, hostile.on = bomb, True
    rss = peak_rss_mib()
    started = time.monotonic()
    report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("InvalidResponse") and f"over {64 * MiB} bytes" in error, error
    assert peak_rss_mib() - rss < 512  # it was 2.17 GB: the cap (64 MiB) and aiohttp's bounded inflation
    assert time.monotonic() - started < 60
    assert await saved(cfg) == before  # the store intact


async def test_a_giant_next_sync_token_is_never_read_whole(google: tuple[Hostile, Any]) -> None:
    hostile, cfg = google

    async def giant(request: web.Request, n: int) -> web.StreamResponse:
        return await stream(request, b'{"items": [], "nextSyncToken": "', b"a" * MiB, 200, b'"}', gzip=False)

    hostile.answer, hostile.on = giant, True
    rss = peak_rss_mib()
    report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("InvalidResponse") and "bytes; not read" in error, error
    assert peak_rss_mib() - rss < 512  # it was 8.3 GB for 1.5 GB
    assert all(len(text) < 16 * 1024 for text in raw_states(cfg))


async def test_an_oversized_page_token_is_a_dead_cursor_never_saved(google: tuple[Hostile, Any]) -> None:
    hostile, cfg = google
    hostile.answer = answer_json(lambda r, n: {"items": [], "nextPageToken": "p" * MiB})
    hostile.on = True
    report = await sync(cfg)
    (result,) = report.calendars
    assert result.error is not None and result.error.startswith("CursorExpired") and "over 16384 bytes" in result.error
    assert result.expired and hostile.hits == 2  # dead: listed in full once more, refused again
    assert all(len(text) < 16 * 1024 for text in raw_states(cfg))
    hostile.on = False
    report = await sync(cfg)
    assert report.ok and (await saved(cfg))[1] == 5


async def test_a_saved_resume_cursor_the_server_refuses_lists_in_full(google: tuple[Hostile, Any]) -> None:
    _, cfg = google
    # A 1 MB pageToken saved by an older calbridge: the server refuses its URL (aiohttp: 400, line too long).
    cursor = Cursor(scheme=SCHEME, version=VERSION, state={"syncToken": None, "pageToken": "p" * MiB, "timeMin": None})
    async with SqliteStore(cfg.store_path) as store:
        await store.save_state(CalendarState(account="g", calendar_id="primary", cursor=cursor, round=Round.FULL,
                                             mark=1, pages=1))  # fmt: skip
    report = await sync(cfg)
    (result,) = report.calendars
    assert result.ok and result.expired and result.full, result.error
    state, stored = await saved(cfg)
    assert stored == 5 and state is not None and state.round is None and state.cursor is not None


@pytest.mark.parametrize("status", [200, 500])
async def test_json_nested_too_deeply_is_an_invalid_response(google: tuple[Hostile, Any], status: int) -> None:
    hostile, cfg = google

    async def deep(request: web.Request, n: int) -> web.StreamResponse:
        body = b'{"items": [], "skipped": ' + DEEP + b', "nextSyncToken": "t", "error": ' + DEEP + b"}"
        return web.Response(body=body, status=status, content_type="application/json")

    hostile.answer, hostile.on = deep, True
    report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("InvalidResponse") and "nested too deeply" in error, error


async def test_feishu_json_nested_too_deeply_is_an_invalid_response(tmp_path: Path) -> None:
    emu = FeishuEmulator()

    async def deep(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(body=b'{"code": 0, "data": {"items": [], "x": ' + DEEP + b"}}",
                            content_type="application/json")  # fmt: skip

    hostile = Hostile("/events", deep)
    with ThreadedServer(hostile.wrap(emu.make_app())) as srv:
        report = await sync(config(emu.account_config(name="fs", base_url=srv.url, ca_file=None), tmp_path))
    error = report.calendars[0].error
    assert error is not None and error.startswith("InvalidResponse") and "nested too deeply" in error, error


class Item(msgspec.Struct):
    id: str


class Page(msgspec.Struct):
    items: list[Item] | None = None


def test_the_page_decoder_reads_deep_nesting_as_a_decode_error() -> None:
    decoder = PageDecoder(Page, Item)
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        decoder.decode(b'{"skipped": ' + DEEP + b', "items": [{"id": "a"}]}')
    with pytest.raises(msgspec.DecodeError):
        decoder.decode(b'{"items": [{"id": "a", "x": ' + DEEP + b"}]}")
    assert decoder.id_of(DEEP) is None


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


async def test_a_graph_link_with_credentials_is_refused_and_never_saved(ca: TestCA, tmp_path: Path) -> None:
    emu = GraphEmulator()

    def evil(request: web.Request, n: int) -> dict[str, Any]:
        return {"value": [], "@odata.nextLink": f"https://evil:pw@{request.host}/v1.0/me/calendar/calendarView/delta"}

    hostile = Hostile("/calendarView/delta", answer_json(evil))
    with ThreadedServer(hostile.wrap(emu.make_app()), ssl_context=ca.server_context) as srv:
        cfg = config(emu.account_config(name="m365", base_url=srv.url, ca_file=str(ca.ca_file)), tmp_path)
        report = await sync(cfg)
        error = report.calendars[0].error
        assert error is not None and error.startswith("InvalidResponse"), error
        assert "pw" not in error and all("evil" not in text for text in raw_states(cfg))
        hostile.on = False
        assert (await sync(cfg)).ok  # nothing poisoned: the next run lists normally


def test_userinfo_never_passes_the_origin_check() -> None:
    assert has_userinfo("https://evil:pw@graph.example/x") and has_userinfo("https://evil@graph.example/x")
    assert not same_origin("https://evil:pw@graph.example/x", "https://graph.example")
    assert same_origin("https://graph.example/x?y=1", "https://GRAPH.example:443")


async def test_retry_after_an_hour_fails_at_once_with_when_to_retry(google: tuple[Hostile, Any]) -> None:
    hostile, cfg = google

    async def hour(request: web.Request, n: int) -> web.StreamResponse:
        return web.json_response({"error": {"code": 429, "message": "slow down"}}, status=429,
                                 headers={"Retry-After": "3600"})  # fmt: skip

    hostile.answer, hostile.on = hour, True
    started = time.monotonic()
    before = dt.datetime.now(dt.UTC)
    report = await sync(cfg)
    (result,) = report.calendars
    assert time.monotonic() - started < 30  # it parked for 600 s
    assert result.error is not None and result.error.startswith("RateLimited") and "retry after" in result.error
    assert hostile.hits == 1
    assert result.retry_at is not None and result.retry_at.tzinfo is not None
    assert before + dt.timedelta(seconds=3590) <= result.retry_at <= before + dt.timedelta(seconds=3700)


async def test_the_retrier_waits_what_fits_its_budget_and_no_longer() -> None:
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    calls = 0

    async def limited(after: float) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimited("slow down", retry_after=after)
        return "ok"

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    retrier = Retrier(RetryPolicy(total_seconds=60, max_retry_after=30), sleep=sleep, clock=lambda: at)
    assert await retrier.call(lambda: limited(20)) == "ok" and waits == [20]
    calls, waits = 0, []
    for after in (31, 3600):  # over max_retry_after, over the budget
        calls = 0
        with pytest.raises(RateLimited) as caught:
            await retrier.call(lambda: limited(after))  # noqa: B023
        assert waits == [] and calls == 1
        assert caught.value.retry_at == at + dt.timedelta(seconds=after)
        assert "2026-01-01" in str(caught.value)
