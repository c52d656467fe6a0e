"""calendarView delta rounds against the emulator over loopback HTTPS."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiohttp import web

from calbridge.cursor import Cursor
from calbridge.errors import CursorExpired, InvalidResponse
from calbridge.model import Delete, Kind, Response, Status, Upsert, When
from calbridge.testing.server import ThreadedServer

from .conftest import UTC, WINDOW, Harness, MirrorView, at

WEEKLY = {
    "pattern": {"type": "weekly", "daysOfWeek": ["monday"]},
    "range": {"type": "endDate", "endDate": "2026-03-31"},
}


def seed(h: Harness) -> dict[str, str]:
    emu = h.emulator
    return {
        "lunch": emu.create_event("Lunch", at(2026, 3, 2, 12), at(2026, 3, 2, 13), body="<b>hi</b>", location="Cafe",
                                  attendees=["bob@contoso.example"], time_zone="Tokyo Standard Time"),
        "offsite": emu.create_event("Offsite", dt.date(2026, 3, 10), dt.date(2026, 3, 12)),
        "standup": emu.create_event("Standup", at(2026, 3, 2, 9), at(2026, 3, 2, 9, 15), recurrence=WEEKLY),
        "outside": emu.create_event("Later", at(2026, 9, 1, 9), at(2026, 9, 1, 10)),
    }  # fmt: skip


async def test_full_sync_lands_singles_all_day_series_and_hydrated_occurrences(harness: Harness) -> None:
    ids = seed(harness)
    pages = await harness.sync()
    assert pages[-1].last and all(not p.last for p in pages[:-1]) and len(pages) > 2
    assert pages[-1].sweep_scope is None and pages[-1].cursor.scheme == "graph.delta"
    assert "$deltatoken" in pages[-1].cursor.state["link"]
    m = harness.mirror
    assert ids["outside"] not in m
    lunch = m[ids["lunch"]]
    assert lunch.kind is Kind.SINGLE and lunch.start == When.at(dt.datetime(2026, 3, 2, 3, tzinfo=UTC), "Asia/Tokyo")
    assert lunch.description == "hi" or lunch.description == "<b>hi</b>"
    assert lunch.location == "Cafe" and lunch.attendees[0].email == "bob@contoso.example"
    assert lunch.etag and lunch.ical_uid and lunch.html_link and lunch.organizer is not None
    offsite = m[ids["offsite"]]
    assert offsite.start == When.on(dt.date(2026, 3, 10)) and offsite.end == When.on(dt.date(2026, 3, 12))
    master = m[ids["standup"]]
    assert master.kind is Kind.SERIES and master.recurrence == ("RRULE:FREQ=WEEKLY;UNTIL=20260401T065959Z;BYDAY=MO",)
    occ = [e for e in m.values() if e.series_id == ids["standup"]]
    assert len(occ) == 5 and all(e.kind is Kind.OCCURRENCE and e.title == "Standup" for e in occ)
    assert all(e.original_start == e.start and e.start.timezone == "America/Los_Angeles" for e in occ)
    # exactly one master fetch for five skeletal occurrences
    fetches = [r for r in harness.emulator.requests if r.path.endswith(f"/events/{ids['standup']}")]
    assert len(fetches) == 1
    # every API request carried the Prefer headers
    api = [r for r in harness.emulator.requests if r.path.startswith("/v1.0/")]
    assert all("odata.maxpagesize=3" in r.headers.get("Prefer", "") for r in api)
    assert all('outlook.timezone="UTC"' in r.headers.get("Prefer", "") for r in api)


async def test_incremental_create_update_delete_cancel_and_move(harness: Harness) -> None:
    ids = seed(harness)
    await harness.sync()
    emu = harness.emulator
    new = emu.create_event("New one", at(2026, 3, 20, 10), at(2026, 3, 20, 11))
    emu.update_event(ids["lunch"], subject="Lunch with Eli")
    emu.delete_event(ids["offsite"])
    slot = dt.datetime(2026, 3, 9, 16, tzinfo=UTC)  # Monday 09:00 PDT
    cancelled = emu.cancel_occurrence(ids["standup"], slot)
    moved_slot = dt.datetime(2026, 3, 16, 16, tzinfo=UTC)
    moved = emu.move_occurrence(ids["standup"], moved_slot, moved_slot + dt.timedelta(hours=2),
                                moved_slot + dt.timedelta(hours=2, minutes=15))  # fmt: skip
    before = len(emu.requests)
    pages = await harness.sync()
    changes = [c for p in pages for c in p.changes]
    assert any(isinstance(c, Delete) and c.key.id == cancelled for c in changes)
    m = harness.mirror
    assert m[new].title == "New one" and m[ids["lunch"]].title == "Lunch with Eli"
    assert ids["offsite"] not in m and cancelled not in m
    exc = m[moved]
    assert exc.kind is Kind.EXCEPTION and exc.series_id == ids["standup"]
    assert exc.start.utc() == moved_slot + dt.timedelta(hours=2)
    assert exc.original_start == When.at(moved_slot, "America/Los_Angeles")
    assert len(harness.starts(ids["standup"])) == 4
    # A delta round, not a relisting: the changed series re-reports its occurrences (as Graph does)
    # at page size 3, plus one master fetch; nothing else is asked again.
    assert len(emu.requests) - before <= 6

    # a round without changes is one request with no changes
    provider = harness.provider()
    await provider.tokens.token()  # msal's discovery is per process; count API requests only
    before = len(emu.requests)
    pages = await harness.sync(provider)
    assert len(pages) == 1 and not pages[0].changes and len(emu.requests) - before == 1


async def test_series_update_rehydrates_and_series_delete_removes_master(harness: Harness) -> None:
    ids = seed(harness)
    await harness.sync()
    harness.emulator.update_event(ids["standup"], subject="Standup (new name)")
    await harness.sync()
    titles = {e.title for e in harness.mirror.values() if e.series_id == ids["standup"] or e.id == ids["standup"]}
    assert titles == {"Standup (new name)"}
    harness.emulator.delete_event(ids["standup"])
    await harness.sync()
    assert ids["standup"] not in harness.mirror and not harness.starts(ids["standup"])


@pytest.mark.parametrize("status", [410, 400])
async def test_expired_delta_link_raises_cursor_expired_then_full_listing_sweeps(harness: Harness, status: int) -> None:
    ids = seed(harness)
    await harness.sync()
    harness.emulator.expire_delta_tokens(status=status)
    harness.emulator.delete_event(ids["lunch"])  # deleted while the token is dead: never reported
    with pytest.raises(CursorExpired) as info:
        await harness.sync()
    assert info.value.code == "syncStateNotFound"
    await harness.sync(full=True)
    assert ids["lunch"] not in harness.mirror and ids["offsite"] in harness.mirror and ids["standup"] in harness.mirror


async def test_resume_mid_round_from_a_stored_next_link(harness: Harness) -> None:
    seed(harness)
    harness.emulator.empty_first_page = True  # an empty page with a nextLink must just be followed
    provider = harness.provider()
    first = None
    async for page in provider.sync("primary", None, window=WINDOW, view=MirrorView({})):
        if page.changes:
            first = page
            break
    assert first is not None and "$skiptoken" in first.cursor.state["link"]
    stored = Cursor.loads(first.cursor.dumps())  # as the store would keep it
    harness.apply(first)
    harness.cursor = stored
    rest = await harness.sync(harness.provider())  # a new process resumes after the killed one
    assert rest[-1].last
    resumed = dict(harness.mirror)
    harness.mirror = {}
    await harness.sync(full=True)
    assert sorted(resumed) == sorted(harness.mirror)


def attacker_app(seen: list[dict[str, Any]]) -> web.Application:
    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"value": [], "@odata.deltaLink": str(request.url)})

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    return app


async def test_a_next_link_to_another_origin_never_receives_the_token(harness: Harness) -> None:
    seed(harness)
    seen: list[dict[str, Any]] = []
    with ThreadedServer(attacker_app(seen)) as attacker:
        harness.emulator.link_origin = attacker.url
        with pytest.raises(InvalidResponse, match="another origin"):
            await harness.sync()
        # the links of the first page pointed at the attacker: nothing was sent there
        assert seen == []
        # a stored link whose origin no longer matches base_url is an expired cursor, not a request
        harness.cursor = Cursor(scheme="graph.delta", version=1, state={"link": f"{attacker.url}/v1.0/me/x"})
        with pytest.raises(CursorExpired):
            await harness.sync()
        assert seen == []


async def test_unknown_pattern_and_missing_start_are_quarantined_rest_lands(harness: Harness) -> None:
    emu = harness.emulator
    good = emu.create_event("Good", at(2026, 3, 2, 12), at(2026, 3, 2, 13))
    bad = emu.create_event("Bad", at(2026, 3, 3, 12), at(2026, 3, 3, 13))
    weird = emu.create_event("Weird", at(2026, 3, 2, 9), at(2026, 3, 2, 10), recurrence=WEEKLY)
    emu.override_payload(bad, {"start": None})
    emu.override_payload(weird, {"recurrence": {"pattern": {"type": "lunarMonthly", "interval": 1},
                                                "range": {"type": "noEnd"}}})  # fmt: skip
    pages = await harness.sync()
    quarantined = [q for p in pages for q in p.quarantined]
    assert good in harness.mirror and bad not in harness.mirror and weird not in harness.mirror
    assert not harness.starts(weird)
    errors = {q.event_id: q.error for q in quarantined}
    assert "missing start" in errors[bad]
    assert any("lunarMonthly" in e for e in errors.values())
    assert len([q for q in quarantined if q.error.startswith(f"series master {weird}")]) == 5


async def test_cancelled_meeting_is_status_cancelled_and_calendars_lists(harness: Harness) -> None:
    eid = harness.emulator.create_event("Called off", at(2026, 3, 4, 10), at(2026, 3, 4, 11), is_cancelled=True)
    other = harness.emulator.add_calendar(harness.emulator.default_user, "Projects")
    harness.emulator.create_event("In projects", at(2026, 3, 5, 10), at(2026, 3, 5, 11), calendar=other)
    await harness.sync()
    assert harness.mirror[eid].status is Status.CANCELLED
    provider = harness.provider()
    cals = await provider.calendars()
    assert [c.name for c in cals] == ["Calendar", "Projects"] and cals[0].primary
    harness.mirror, harness.cursor = {}, None
    pages = await harness.sync(provider, calendar=other)
    assert [c.event.title for p in pages for c in p.changes if isinstance(c, Upsert)] == ["In projects"]


async def test_the_mailboxs_own_answer_is_its_self_attendee(harness: Harness) -> None:
    emu = harness.emulator
    me = emu.default_user
    invited = emu.create_event("Invited", at(2026, 3, 3, 10), at(2026, 3, 3, 11),
                               attendees=[me.upper(), "bob@contoso.example"])  # fmt: skip
    # Another mailbox organizes it; the attendee list still shows "none" for the mailbox, its own
    # responseStatus says tentativelyAccepted.
    emu.update_event(invited, organizer={"emailAddress": {"name": "Bob", "address": "bob@contoso.example"}},
                     is_organizer=False, response="tentativelyAccepted")  # fmt: skip
    mine = emu.create_event("Mine", at(2026, 3, 4, 10), at(2026, 3, 4, 11), attendees=["carol@contoso.example"])
    await harness.sync()
    got = harness.mirror[invited]
    assert [(a.email, a.is_self, a.response, a.organizer) for a in got.attendees] == [
        (me.upper(), True, Response.TENTATIVE, False),
        ("bob@contoso.example", False, Response.NONE, True),
    ]
    # The organizer's own copy lists only the others: no attendee is invented for the mailbox.
    assert [(a.email, a.is_self) for a in harness.mirror[mine].attendees] == [("carol@contoso.example", False)]


async def test_occurrences_and_exceptions_carry_the_series_ical_uid(harness: Harness) -> None:
    ids = seed(harness)
    emu = harness.emulator
    slot = dt.datetime(2026, 3, 16, 16, tzinfo=UTC)
    moved = emu.move_occurrence(ids["standup"], slot, slot + dt.timedelta(hours=2), slot + dt.timedelta(hours=3))
    await harness.sync()
    master = harness.mirror[ids["standup"]]
    assert master.ical_uid
    occ = [e for e in harness.mirror.values() if e.series_id == ids["standup"]]
    assert len(occ) == 5 and moved in {e.id for e in occ}
    assert {e.ical_uid for e in occ} == {master.ical_uid}  # Graph's own iCalUId differs per occurrence
    provider = harness.provider()
    out = [x async for x in provider.expand("primary", [ids["standup"]], window=WINDOW,
                                             view=MirrorView(harness.mirror))]  # fmt: skip
    assert out[0].occurrences and {e.ical_uid for e in out[0].occurrences} == {master.ical_uid}


async def test_all_day_original_start_is_the_date_in_the_series_zone(harness: Harness) -> None:
    # Tokyo is UTC+9: the slot of 10 March is originalStart 2026-03-09T15:00:00Z.
    emu = harness.emulator
    daily = {"pattern": {"type": "daily"}, "range": {"type": "numbered", "numberOfOccurrences": 5}}
    sid = emu.create_event("Holiday", dt.date(2026, 3, 9), dt.date(2026, 3, 10), time_zone="Tokyo Standard Time",
                           recurrence=daily)  # fmt: skip
    moved = emu.move_occurrence(sid, dt.datetime(2026, 3, 10, tzinfo=UTC), dt.date(2026, 3, 20), dt.date(2026, 3, 21))
    await harness.sync()
    exc = harness.mirror[moved]
    assert exc.kind is Kind.EXCEPTION and exc.start == When.on(dt.date(2026, 3, 20))
    assert exc.original_start == When.on(dt.date(2026, 3, 10))
    occ = sorted((e for e in harness.mirror.values() if e.kind is Kind.OCCURRENCE and e.series_id == sid),
                 key=lambda e: e.start.utc())  # fmt: skip
    assert [e.original_start for e in occ] == [When.on(dt.date(2026, 3, d)) for d in (9, 11, 12, 13)]
    provider = harness.provider()
    out = [x async for x in provider.expand("primary", [sid], window=WINDOW, view=MirrorView(harness.mirror))]
    got = {e.id: e.original_start for e in out[0].occurrences}
    assert got[moved] == When.on(dt.date(2026, 3, 10))


async def test_skeletal_occurrences_carry_their_etag(harness: Harness) -> None:
    ids = seed(harness)
    await harness.sync()
    occ = [e for e in harness.mirror.values() if e.series_id == ids["standup"]]
    assert len(occ) == 5 and all(e.etag and e.etag.startswith('W/"') for e in occ)
