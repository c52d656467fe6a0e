"""Sync rounds of the real Feishu provider against the shipped emulator over loopback HTTP."""

from __future__ import annotations

import datetime as dt

import aiohttp
import attrs
import pytest

from calbridge.config import Settings
from calbridge.errors import CursorExpired, NotFound
from calbridge.model import Event, Kind, Response, ShowAs, Status, When, Window
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu import UserAuth
from calbridge_providers.feishu.emulator import FeishuEmulator, person

from .conftest import WINDOW, Factory, Mirror, at

UTC = dt.UTC


def seed(emu: FeishuEmulator) -> dict[str, str]:
    ids = {
        "single": emu.create_event(
            summary="Design review",
            start=at(1, 2),
            end=at(1, 3),
            timezone="Asia/Calcutta",
            location={"name": "Room 1", "address": "Tower B"},
            description="notes",
            attendees=[person("ou_a", "Ann"), person("ou_b", "Ben", "decline"), person("ou_c", "Cy", "removed")],
        ),
        "series": emu.create_event(
            summary="Stand-up",
            start=at(-2, 1),
            end=at(-2, 1.5),
            recurrence="FREQ=DAILY;INTERVAL=1;COUNT=20",
            attendees=[person("ou_a", "Ann", "tentative")],
        ),
        "allday": emu.create_event(summary="Holiday", start=at(5).date(), end=at(6).date()),
    }
    ids["moved"] = emu.move_occurrence(ids["series"], at(0, 1), start=at(0, 3), end=at(0, 4), summary="Late stand-up")
    return ids


async def test_full_sync_without_anchor_normalizes_everything(emu: FeishuEmulator, make_provider: Factory) -> None:
    ids = seed(emu)
    provider = make_provider()
    mirror = Mirror()
    pages = await mirror.round(provider)
    assert pages[-1].last and pages[-1].sweep_scope is None
    assert pages[-1].cursor.state.get("sync_token")
    assert "anchor_time" not in [r for r in emu.requests("/events") if r["path"].endswith("/events")][0]["query"]
    single = mirror.events[ids["single"]]
    assert single.kind is Kind.SINGLE and single.calendar_id == "primary"
    assert single.start.timezone == "Asia/Kolkata"  # canonical IANA
    assert single.location == "Room 1, Tower B" and single.show_as is ShowAs.BUSY
    assert single.meeting_url and single.html_link and single.organizer is not None
    assert [(a.name, a.response) for a in single.attendees] == [("Ann", Response.ACCEPTED), ("Ben", Response.DECLINED)]
    series = mirror.events[ids["series"]]
    assert series.kind is Kind.SERIES and series.recurrence == ("RRULE:FREQ=DAILY;COUNT=20",)
    allday = mirror.events[ids["allday"]]
    assert allday.start == When.on(at(5).date()) and allday.end == When.on(at(7).date())  # inclusive → exclusive
    moved = mirror.events[ids["moved"]]
    assert moved.kind is Kind.EXCEPTION and moved.series_id == ids["series"]
    assert moved.original_start == When.at(at(0, 1), "Asia/Shanghai") and moved.start.utc() == at(0, 3)


async def test_full_sync_with_anchor_pages_and_scopes_the_sweep(emu: FeishuEmulator, make_provider: Factory) -> None:
    old = emu.create_event(summary="Long ago", start=at(-100), end=at(-100, 1))
    old_series = emu.create_event(summary="Old series", start=at(-400), end=at(-400, 1), recurrence="FREQ=WEEKLY")
    recent = [emu.create_event(summary=f"e{i}", start=at(i % 20, 1), end=at(i % 20, 2)) for i in range(120)]
    provider = make_provider(settings=Settings(history=dt.timedelta(days=30)), options={"page_size": 50})
    mirror = Mirror()
    mirror.events["kept-outside"] = Event(
        provider="feishu",
        account="acme-feishu",
        calendar_id="primary",
        id="kept-outside",
        kind=Kind.SINGLE,
        start=When.at(at(-200)),
        end=When.at(at(-200, 1)),
    )
    mirror.cursor = None
    emu.clear_log()
    pages = await mirror.round(provider)
    listed = [r for r in emu.requests("/events") if r["path"].endswith("/events")]
    assert len(pages) == 3 and len(listed) == 3
    assert all("anchor_time" in r["query"] for r in listed)
    assert "page_token" in listed[1]["query"]  # with anchor_time Feishu pages with page_token
    assert old not in mirror.events and old_series in mirror.events
    assert all(r in mirror.events for r in recent)
    scope = pages[-1].sweep_scope
    assert (
        scope is not None and abs((scope.start - (dt.datetime.now(UTC) - dt.timedelta(days=30))).total_seconds()) < 60
    )
    assert "kept-outside" in mirror.events  # older than the anchor: not swept


async def test_incremental_create_update_delete_cancel(emu: FeishuEmulator, make_provider: Factory) -> None:
    ids = seed(emu)
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    emu.clear_log()
    pages = await mirror.round(provider)  # nothing changed: one request, no changes
    assert len(emu.requests()) == 1 and not pages[0].changes
    assert "sync_token" in [r for r in emu.requests("/events") if r["path"].endswith("/events")][0]["query"]

    new = emu.create_event(summary="New", start=at(2), end=at(2, 1))
    emu.update_event(ids["single"], summary="Design review v2")
    emu.delete_event(ids["allday"])
    cancelled = emu.cancel_occurrence(ids["series"], at(1, 1))
    await mirror.round(provider)
    assert mirror.events[new].title == "New"
    assert mirror.events[ids["single"]].title == "Design review v2"
    assert ids["allday"] not in mirror.events
    exc = mirror.events[cancelled]
    assert exc.kind is Kind.EXCEPTION and exc.status is Status.CANCELLED and exc.series_id == ids["series"]
    assert exc.original_start == When.at(at(1, 1), "Asia/Shanghai")

    emu.delete_event(ids["series"])  # the series and its exceptions
    await mirror.round(provider)
    assert ids["series"] not in mirror.events and cancelled not in mirror.events and ids["moved"] not in mirror.events


async def test_expired_sync_token_raises_and_full_resync_sweeps(emu: FeishuEmulator, make_provider: Factory) -> None:
    ids = seed(emu)
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    emu.expire_sync_tokens()
    emu.delete_event(ids["single"])
    with pytest.raises(CursorExpired) as info:
        await mirror.round(provider)
    assert info.value.code == "190008" and info.value.status == 400
    mirror.cursor = None  # what the engine does on CursorExpired: a full listing, then the sweep
    await mirror.round(provider)
    assert ids["single"] not in mirror.events and ids["series"] in mirror.events


async def test_resume_from_a_mid_round_cursor(emu: FeishuEmulator, make_provider: Factory) -> None:
    ids = [emu.create_event(summary=f"e{i}", start=at(1, i % 24), end=at(1, i % 24 + 1)) for i in range(130)]
    emu.empty_pages = 1  # an empty page with has_more true comes first
    mirror = Mirror()
    pages = await mirror.round(make_provider(options={"page_size": 50}), stop_after=2)
    assert not pages[-1].last and pages[-1].cursor.state["mid"] == "full"
    assert not pages[0].changes
    emu.clear_log()
    # A new process: a fresh provider resumes from the persisted cursor.
    await mirror.round(make_provider(options={"page_size": 50}))
    first = [r for r in emu.requests("/events") if r["path"].endswith("/events")][0]["query"]
    assert first.get("sync_token") or first.get("page_token")
    assert set(ids) <= set(mirror.events) and len(mirror.events) == 130
    assert "mid" not in mirror.cursor.state  # type: ignore[union-attr]


async def test_malformed_event_is_quarantined_and_the_rest_lands(emu: FeishuEmulator, make_provider: Factory) -> None:
    good = emu.create_event(summary="fine", start=at(1), end=at(1, 1))
    bad = emu.create_event(summary="broken", start=at(2), end=at(2, 1), recurrence="BOGUS")
    worse = emu.create_event(summary="no times", start=at(2), end=at(2, 1))
    emu.update_event(worse, start_time={"timestamp": "not-a-number", "timezone": "UTC"})
    mirror = Mirror()
    await mirror.round(make_provider())
    assert good in mirror.events and bad not in mirror.events and worse not in mirror.events
    assert sorted(q.event_id or "" for q in mirror.quarantined) == sorted([bad, worse])
    assert all(q.error and q.payload for q in mirror.quarantined)


async def test_attendees_fetched_for_new_and_changed_reused_for_unchanged(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    ids = [
        emu.create_event(summary=f"m{i}", start=at(1, i), end=at(1, i + 1), attendees=[person("ou_a", "Ann")])
        for i in range(5)
    ]
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    assert provider.attendee_requests == 5
    assert all(mirror.events[i].attendees[0].name == "Ann" for i in ids)

    emu.update_event(ids[0], summary="m0 renamed")
    emu.set_rsvp(ids[1], "ou_a", "decline")  # only the attendee list changed
    await mirror.round(provider)
    assert provider.attendee_requests == 7
    assert mirror.events[ids[1]].attendees[0].response is Response.DECLINED

    mirror.cursor = None  # a full resync: unchanged content → stored attendees reused, no request
    emu.clear_log()
    await mirror.round(provider)
    assert provider.attendee_requests == 7 and not emu.requests("/attendees")
    assert all(mirror.events[i].attendees for i in ids)


async def test_lark_base_url_is_honoured(emu: FeishuEmulator, make_provider: Factory) -> None:
    from aiohttp import web

    from calbridge.testing.server import ThreadedServer
    from calbridge_providers.feishu import LARK_BASE_URL, TenantAuth, plugin

    seed(emu)

    def prefixed() -> web.Application:
        outer = web.Application()
        outer.add_subapp("/lark", emu.make_app())
        return outer

    with ThreadedServer(prefixed) as lark:
        provider = make_provider(base_url=lark.url + "/lark")
        mirror = Mirror()
        await mirror.round(provider)
        assert mirror.events and all(r["path"].startswith("/lark/") for r in emu.requests())
    parsed = plugin.parse_auth({"kind": "tenant", "app_id": "cli_x", "app_secret": "s"}, account={}, where="a")
    assert isinstance(parsed, TenantAuth)
    lark_provider = make_provider(base_url=LARK_BASE_URL)
    assert lark_provider.client.http.base_url == "https://open.larksuite.com"


async def test_tentative_is_confirmed_with_the_users_own_attendee_needing_action(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    # status tentative is the identity's missing answer (日程暂未回应), whatever the list says.
    people = [person(emu.user_open_id, "Me", "accept"), person("ou_bob", "Bob", "accept")]
    eid = emu.create_event(summary="Maybe", start=at(1), end=at(1, 1), status="tentative", attendees=people)
    series = emu.create_event(
        summary="Maybe daily", start=at(1, 3), end=at(1, 4), recurrence="FREQ=DAILY;COUNT=3", status="tentative",
        attendees=people,
    )  # fmt: skip
    plain = emu.create_event(summary="Sure", start=at(2), end=at(2, 1), attendees=people)
    auth = UserAuth(app_id="cli_calbridge_demo", app_secret=emu.apps["cli_calbridge_demo"],
                    refresh_token=emu.issue_refresh_token())  # fmt: skip
    provider = make_provider(auth=auth)
    mirror = Mirror()
    await mirror.round(provider)
    for key in (eid, series):
        event = mirror.events[key]
        assert event.status is Status.CONFIRMED
        assert [(a.id, a.is_self, a.response) for a in event.attendees] == [
            (emu.user_open_id, True, Response.NEEDS_ACTION), ("ou_bob", False, Response.ACCEPTED)
        ]
    assert [(a.is_self, a.response) for a in mirror.events[plain].attendees] == [
        (True, Response.ACCEPTED), (False, Response.ACCEPTED)
    ]
    window = Window(start=at(0), end=at(10))
    out = [x async for x in provider.expand("primary", [series], window=window, view=mirror)]
    assert [a.response for o in out[0].occurrences for a in o.attendees if a.is_self] == [Response.NEEDS_ACTION] * 3


async def test_tenant_token_claims_no_attendee_and_tentative_is_confirmed(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    people = [person(emu.user_open_id, "Me", "accept")]
    eid = emu.create_event(summary="Maybe", start=at(1), end=at(1, 1), status="tentative", attendees=people)
    mirror = Mirror()
    await mirror.round(make_provider())  # the app's identity: no attendee is the token's user
    event = mirror.events[eid]
    assert event.status is Status.CONFIRMED
    assert [(a.is_self, a.response) for a in event.attendees] == [(False, Response.ACCEPTED)]


async def test_a_bare_cancelled_stub_of_an_all_day_series_gets_a_date_slot(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    emu.bare_cancelled = True  # cancelled items carry only their id, status and series
    day = at(3).date()
    series = emu.create_event(summary="Leave", start=day, end=day + dt.timedelta(days=1), recurrence="FREQ=WEEKLY")
    timed = emu.create_event(summary="Sync", start=at(3, 2), end=at(3, 3), recurrence="FREQ=WEEKLY")
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    gone = emu.cancel_occurrence(series, day + dt.timedelta(days=7))
    gone_timed = emu.cancel_occurrence(timed, at(10, 2))
    await mirror.round(provider)  # the series is in the mirror only
    stub = mirror.events[gone]
    assert stub.status is Status.CANCELLED and stub.series_id == series
    slot = When.on(day + dt.timedelta(days=7))
    assert stub.original_start == slot and stub.start == slot and stub.end == When.on(day + dt.timedelta(days=9))
    timed_stub = mirror.events[gone_timed]
    assert timed_stub.original_start is not None and timed_stub.original_start.instant == at(10, 2)
    # The same on a full listing, the series on the same page.
    fresh = Mirror()
    await fresh.round(make_provider())
    assert fresh.events[gone].original_start == slot


async def test_the_calendar_list_ends_with_a_sync_token(
    emu: FeishuEmulator, server: ThreadedServer, session: aiohttp.ClientSession, make_provider: Factory
) -> None:
    for n in range(3):
        emu.add_calendar(f"feishu.cn_c{n}@group.calendar.feishu.cn")
    app = {"app_id": "cli_calbridge_demo", "app_secret": emu.apps["cli_calbridge_demo"]}
    async with session.post(server.url + "/open-apis/auth/v3/tenant_access_token/internal", json=app) as resp:
        token = (await resp.json())["tenant_access_token"]
    pages = []
    page_token = ""
    while True:
        params = {"page_size": "2", **({"page_token": page_token} if page_token else {})}
        async with session.get(server.url + "/open-apis/calendar/v4/calendars", params=params,
                               headers={"Authorization": f"Bearer {token}"}) as resp:  # fmt: skip
            pages.append((await resp.json())["data"])
        page_token = pages[-1]["page_token"]
        if not pages[-1]["has_more"]:
            break
    assert len(pages) == 2 and not pages[0]["sync_token"] and pages[-1]["sync_token"]
    assert len(await make_provider().calendars()) == 4


async def test_a_full_listing_marks_self_on_attendees_it_reuses_from_older_rows(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    eid = emu.create_event(summary="x", start=at(1), end=at(1, 1), attendees=[person(emu.user_open_id, "Me")])
    auth = UserAuth(app_id="cli_calbridge_demo", app_secret=emu.apps["cli_calbridge_demo"],
                    refresh_token=emu.issue_refresh_token())  # fmt: skip
    provider = make_provider(auth=auth)
    mirror = Mirror()
    await mirror.round(provider)
    old = mirror.events[eid]
    mirror.events[eid] = attrs.evolve(old, attendees=tuple(attrs.evolve(a, is_self=False) for a in old.attendees))
    mirror.cursor = None
    emu.clear_log()
    await mirror.round(provider)
    assert not emu.requests("/attendees")  # reused, not fetched again
    assert [a.is_self for a in mirror.events[eid].attendees] == [True]


class _Empty:
    async def get(self, ids: object) -> dict[str, object]:
        return {}

    async def exceptions_of(self, series_ids: object) -> list[object]:
        return []


async def test_calendars_and_primary(emu: FeishuEmulator, make_provider: Factory) -> None:
    emu.add_calendar("feishu.cn_team@group.calendar.feishu.cn", summary="Team", role="reader")
    provider = make_provider()
    cals = await provider.calendars()
    assert [(c.id, c.primary, c.access) for c in cals] == [
        (emu.primary_id, True, "owner"),
        ("feishu.cn_team@group.calendar.feishu.cn", False, "reader"),
    ]
    with pytest.raises(NotFound, match="calendar not found"):
        async for _ in provider.sync("feishu.cn_nope", None, window=WINDOW, view=_Empty()):
            pass
