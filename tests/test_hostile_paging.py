"""Runaway paging (issue 12, item 2): every mode a hostile server showed stops within its limit, with
RunawayPaging, the page count kept across runs and the mid-round cursor dropped."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from calbridge.cursor import Cursor
from calbridge.planner import Phase, phase
from calbridge.state import CalendarState, Round
from calbridge.store._schema import state_from_json, state_to_json
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA, make_test_ca
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

from ._hostile import Hostile, answer_json, config, saved, stamp, sync

GOOGLE_LIST = "/calendars/primary/events"


def gevent(n: int) -> dict[str, Any]:
    return {"id": f"ev{n}", "status": "confirmed", "summary": f"page {n}", "etag": f'"{n}"',
            "start": {"dateTime": stamp(n)}, "end": {"dateTime": stamp(n + 1)}}  # fmt: skip


@pytest.fixture
def google() -> GoogleEmulator:
    emu = GoogleEmulator()
    emu.state.add_calendar("alice@example.com", summary="Alice", time_zone="UTC", primary=True)
    return emu


def serve_google(emu: GoogleEmulator, hostile: Hostile) -> ThreadedServer:
    return ThreadedServer(hostile.wrap(emu.make_app()))


async def test_google_fresh_next_page_token_on_every_page_stops_at_the_page_limit(
    google: GoogleEmulator, tmp_path: Path
) -> None:
    hostile = Hostile(GOOGLE_LIST, answer_json(lambda r, n: {"items": [gevent(n)], "nextPageToken": f"fresh-{n}"}))
    with serve_google(google, hostile) as srv:
        cfg = config(google.account_config(name="g", base_url=srv.url, ca_file=None), tmp_path, round_pages=8)
        report = await sync(cfg)
    (result,) = report.calendars
    assert result.error is not None and result.error.startswith("RunawayPaging"), result.error
    assert "limit of 8 pages" in result.error
    assert hostile.hits == 8
    state, stored = await saved(cfg)
    assert state is not None and state.cursor is None and state.round is Round.FULL and state.pages == 0
    assert stored == 7  # the pages before the limit stayed committed; the next run lists in full


async def test_the_page_count_is_kept_across_runs(google: GoogleEmulator, tmp_path: Path) -> None:
    async def flaky(request: web.Request, n: int) -> web.StreamResponse:
        if n == 4:  # the first run ends here, its round in progress
            return web.json_response({"error": {"code": 400, "message": "bad"}}, status=403)
        return web.json_response({"items": [gevent(n)], "nextPageToken": f"fresh-{n}"})

    hostile = Hostile(GOOGLE_LIST, flaky)
    with serve_google(google, hostile) as srv:
        cfg = config(google.account_config(name="g", base_url=srv.url, ca_file=None), tmp_path, round_pages=6)
        first = await sync(cfg)
        assert first.calendars[0].error is not None and "RunawayPaging" not in first.calendars[0].error
        state, _ = await saved(cfg)
        assert state is not None and state.pages == 3 and phase(state) is Phase.LISTING
        second = await sync(cfg)
    assert second.calendars[0].error is not None and "limit of 6 pages" in second.calendars[0].error
    assert hostile.hits == 4 + 3  # the second run resumed at page 4 and stopped at the 6th page


async def test_google_repeated_page_token_is_a_repeat(google: GoogleEmulator, tmp_path: Path) -> None:
    hostile = Hostile(GOOGLE_LIST, answer_json(lambda r, n: {"items": [gevent(n)], "nextPageToken": "same"}))
    with serve_google(google, hostile) as srv:
        cfg = config(google.account_config(name="g", base_url=srv.url, ca_file=None), tmp_path)
        report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("RunawayPaging") and "repeated" in error
    assert hostile.hits == 2


async def test_a_round_past_its_deadline_stops_and_resumes_next_run(google: GoogleEmulator, tmp_path: Path) -> None:
    async def slow(request: web.Request, n: int) -> web.StreamResponse:
        await asyncio.sleep(0.4)
        return web.json_response({"items": [gevent(n)], "nextPageToken": f"fresh-{n}"})

    hostile = Hostile(GOOGLE_LIST, slow)
    with serve_google(google, hostile) as srv:
        cfg = config(google.account_config(name="g", base_url=srv.url, ca_file=None), tmp_path, round_deadline="1s")
        report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("RunawayPaging") and "deadline" in error
    assert 2 <= hostile.hits <= 10  # generous: about three pages fit in a second
    state, stored = await saved(cfg)
    assert state is not None and state.cursor is not None and state.round is Round.FULL  # resumes, not restarts
    assert state.pages == stored == hostile.hits - 1


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def graph_server(ca: TestCA) -> Iterator[tuple[GraphEmulator, Hostile, ThreadedServer]]:
    emu = GraphEmulator()

    def self_link(request: web.Request, n: int) -> dict[str, Any]:
        item = {"id": f"ev{n}", "subject": "x", "start": {"dateTime": stamp(n)[:19], "timeZone": "UTC"},
                "end": {"dateTime": stamp(n + 1)[:19], "timeZone": "UTC"}}  # fmt: skip
        return {"value": [item], "@odata.nextLink": str(request.url)}

    hostile = Hostile("/calendarView/delta", answer_json(self_link))
    with ThreadedServer(hostile.wrap(emu.make_app()), ssl_context=ca.server_context) as srv:
        yield emu, hostile, srv


async def test_graph_next_link_pointing_at_itself_is_a_repeat(
    graph_server: tuple[GraphEmulator, Hostile, ThreadedServer], ca: TestCA, tmp_path: Path
) -> None:
    emu, hostile, srv = graph_server
    cfg = config(emu.account_config(name="m365", base_url=srv.url, ca_file=str(ca.ca_file)), tmp_path)
    report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("RunawayPaging") and "repeated" in error
    assert hostile.hits == 2  # the first page links to itself; following it gives the same link again
    state, _ = await saved(cfg)
    assert state is not None and state.cursor is None and state.round is Round.FULL


@pytest.fixture
def feishu() -> FeishuEmulator:
    return FeishuEmulator()


def feishu_page(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": 0, "msg": "success", "data": data}


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(lambda n: {"items": [], "has_more": True, "sync_token": f"s{n}"}, id="sync-token-each-page"),
        pytest.param(lambda n: {"items": [], "has_more": True, "page_token": f"p{n}"}, id="page-token-empty-pages"),
    ],
)
async def test_feishu_tokens_changing_on_every_page_stop_at_the_page_limit(
    feishu: FeishuEmulator, tmp_path: Path, mode: Any
) -> None:
    hostile = Hostile("/events", answer_json(lambda r, n: feishu_page(mode(n))))
    with ThreadedServer(hostile.wrap(feishu.make_app())) as srv:
        cfg = config(feishu.account_config(name="fs", base_url=srv.url, ca_file=None), tmp_path, round_pages=12)
        report = await sync(cfg)
    error = report.calendars[0].error
    assert error is not None and error.startswith("RunawayPaging") and "limit of 12 pages" in error
    assert hostile.hits == 12


def test_state_json_keeps_the_page_count_and_old_rows_read_as_zero() -> None:
    cursor = Cursor(scheme="x", version=1, state={"t": "1"})
    state = CalendarState(account="a", calendar_id="c", cursor=cursor, round=Round.FULL, pages=41)
    text = state_to_json(state)
    assert state_from_json("a", "c", text) == state
    old = text.replace(',"pages":41', "")
    assert '"pages"' not in old and state_from_json("a", "c", old).pages == 0


def test_limits_config_section() -> None:
    from calbridge.config._settings import settings_from_file
    from calbridge.errors import ConfigError

    limits = {"round_pages": 5, "round_deadline": "10m", "body_bytes": "1MiB", "token_bytes": 100}
    s = settings_from_file(past="1d", future="1d", history=None, limits=limits)
    assert (s.round_pages, s.round_deadline, s.body_bytes, s.token_bytes) == (5, dt.timedelta(minutes=10), 2**20, 100)
    for bad in ({"round_pages": 0}, {"body_bytes": "lots"}, {"pagez": 1}):
        with pytest.raises(ConfigError):
            settings_from_file(past="1d", future="1d", history=None, limits=bad)
