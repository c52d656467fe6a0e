"""events.list sync rounds: the real provider against the emulator over loopback HTTP."""

from __future__ import annotations

import datetime as dt

import aiohttp
import pytest

from calbridge.config import Settings
from calbridge.cursor import Cursor
from calbridge.errors import CursorExpired, InvalidRequest
from calbridge.provider import Provider
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google.emulator import GoogleEmulator

from .support import CAL, WINDOW, Mirror, NoView, make_provider, timed

T0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
LIST = f"/calendars/{CAL}/events"


def seed(emu: GoogleEmulator, n: int) -> list[str]:
    payloads = [timed(f"event {i}", T0 + dt.timedelta(hours=i)) for i in range(n)]
    emu.state.bulk_insert(CAL, payloads)
    with emu.state.lock:
        return sorted(emu.state.calendars[CAL].events)


def server_view(emu: GoogleEmulator) -> set[str]:
    with emu.state.lock:
        cal = emu.state.calendars[CAL]
        return {i for i, e in cal.events.items() if e.get("status") != "cancelled"}


async def test_full_sync_of_10000_events_is_4_requests_and_a_quiet_round_is_1(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed(emu, 10_000)
    mirror = Mirror()
    emu.state.clear_log()
    cursor = await mirror.round(provider, None)
    assert len(emu.state.requests_to(LIST)) == 4
    assert [p.last for p in mirror.pages] == [False, False, False, True]
    assert len(mirror.live()) == 10_000
    for req in emu.state.requests_to(LIST):
        assert req.query["maxResults"] == "2500" and req.query["showDeleted"] == "true"
        assert req.query["singleEvents"] == "false" and req.authorized

    emu.state.clear_log()
    mirror.pages.clear()
    await mirror.round(provider, cursor)
    (req,) = emu.state.requests_to(LIST)
    assert "syncToken" in req.query and "timeMin" not in req.query
    assert mirror.pages[0].changes == [] and mirror.pages[0].last


async def test_created_updated_deleted_show_up_incrementally(emu: GoogleEmulator, provider: Provider) -> None:
    ids = seed(emu, 5)
    mirror = Mirror()
    cursor = await mirror.round(provider, None)
    new = emu.state.put_event(CAL, timed("fresh", T0 + dt.timedelta(days=3)))
    emu.state.update_event(CAL, ids[0], summary="renamed")
    emu.state.delete_event(CAL, ids[1])
    cursor = await mirror.round(provider, cursor)
    assert mirror.live()[new["id"]].title == "fresh"
    assert mirror.live()[ids[0]].title == "renamed"
    assert ids[1] not in mirror.events
    assert set(mirror.live()) == server_view(emu)
    assert cursor.state["syncToken"] and cursor.state["pageToken"] is None


async def test_expired_sync_token_is_cursor_expired_and_a_full_listing_restores_the_server(
    emu: GoogleEmulator, provider: Provider
) -> None:
    ids = seed(emu, 30)
    mirror = Mirror()
    cursor = await mirror.round(provider, None)
    emu.state.delete_event(CAL, ids[3])
    emu.state.put_event(CAL, timed("added meanwhile", T0))
    emu.state.expire_sync_tokens()
    with pytest.raises(CursorExpired) as info:
        await mirror.round(provider, cursor)
    assert info.value.status == 410 and info.value.code == "fullSyncRequired"
    await mirror.round(provider, None)
    assert set(mirror.live()) == server_view(emu)
    assert ids[3] not in mirror.events


async def test_a_round_stopped_between_pages_resumes_from_its_cursor_without_duplicates(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    seed(emu, 6000)
    first = Mirror()
    mid = await first.round(make_provider(emu, server, session), None, stop_after=1)
    assert mid.state["pageToken"] and not first.pages[-1].last
    emu.state.clear_log()
    # A new process: a fresh provider from the stored cursor text.
    resumed = Mirror()
    resumed.events = dict(first.events)
    async for page in make_provider(emu, server, session).sync(
        CAL, Cursor.loads(mid.dumps()), window=WINDOW, view=NoView()
    ):
        resumed.apply(page)
    reqs = emu.state.requests_to(LIST)
    assert len(reqs) == 2 and reqs[0].query["pageToken"] == mid.state["pageToken"]
    seen = [c.event.id for p in first.pages + resumed.pages for c in p.changes]  # type: ignore[union-attr]
    assert len(seen) == len(set(seen)) == 6000
    assert set(resumed.live()) == server_view(emu)


async def test_a_dead_page_token_of_a_full_round_in_progress_is_cursor_expired(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    seed(emu, 3000)
    first = Mirror()
    mid = await first.round(make_provider(emu, server, session), None, stop_after=1)
    assert mid.state["pageToken"] and not mid.state["syncToken"]
    emu.state.expire_sync_tokens()
    with pytest.raises(CursorExpired) as info:
        await Mirror().round(make_provider(emu, server, session), mid)
    assert info.value.status == 410
    assert emu.state.requests_to(LIST)[-1].query["pageToken"] == mid.state["pageToken"]


async def test_history_floor_bounds_full_listings_only(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    old = emu.state.put_event(CAL, timed("long ago", now - dt.timedelta(days=800)))
    recent = emu.state.put_event(CAL, timed("recent", now - dt.timedelta(days=10)))
    prov = make_provider(emu, server, session, settings=Settings(history=dt.timedelta(days=730)), clock=lambda: now)
    mirror = Mirror()
    cursor = await mirror.round(prov, None)
    assert set(mirror.live()) == {recent["id"]} and old["id"] not in mirror.events
    scope = mirror.pages[-1].sweep_scope
    assert scope is not None and scope.start == now - dt.timedelta(days=730) and scope.end.year == 9999
    emu.state.clear_log()
    await mirror.round(prov, cursor)
    assert "timeMin" not in emu.state.requests_to(LIST)[0].query


async def test_malformed_event_is_quarantined_and_the_rest_of_the_page_lands(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed(emu, 4)
    emu.state.put_event(CAL, {"id": "broken1", "summary": "no start", "end": {"date": "2026-01-02"}}, raw=True)
    emu.state.put_event(CAL, {"id": "broken2", "start": "tomorrow", "end": {"date": "2026-01-02"}}, raw=True)
    mirror = Mirror()
    await mirror.round(provider, None)
    assert len(mirror.live()) == 4
    assert sorted(q.event_id for q in mirror.quarantined) == ["broken1", "broken2"]
    assert all('"id":"broken' in q.payload.replace(" ", "") for q in mirror.quarantined)


async def test_emulator_refuses_parameters_google_forbids_with_a_sync_token(
    emu: GoogleEmulator, provider: Provider, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    cursor = await Mirror().round(provider, None)
    token = emu.state.issue_token()
    params = {"syncToken": cursor.state["syncToken"], "timeMin": "2026-01-01T00:00:00Z"}
    async with session.get(f"{server.url}/calendar/v3/calendars/{CAL}/events", params=params,
                           headers={"Authorization": f"Bearer {token}"}) as resp:  # fmt: skip
        assert resp.status == 400
    from calbridge.toolkit import Response
    from calbridge_providers.google._client import error_for

    body = b'{"error":{"errors":[{"reason":"invalid"}],"code":400}}'
    assert isinstance(error_for(Response(status=400, body=body), "x"), InvalidRequest)


async def test_calendars_lists_the_calendar_list(
    emu: GoogleEmulator, server: ThreadedServer, session: aiohttp.ClientSession
) -> None:
    emu.state.add_calendar("team@group.calendar.google.com", summary="Team", time_zone="Asia/Calcutta")
    cals = await make_provider(emu, server, session).calendars()
    assert [(c.id, c.primary, c.timezone) for c in cals] == [
        (CAL, True, "Europe/Zurich"),
        ("team@group.calendar.google.com", False, "Asia/Kolkata"),
    ]
