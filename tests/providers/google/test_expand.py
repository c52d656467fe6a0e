"""A weekly series across the March DST change, with a moved and a cancelled occurrence and an EXDATE:
what sync stores and what events.instances expansion yields."""

from __future__ import annotations

import datetime as dt

from calbridge.model import Kind, Status, When, Window
from calbridge.provider import Provider
from calbridge_providers.google.emulator import GoogleEmulator

from .support import CAL, Mirror, NoView

NY = "America/New_York"
UTC = dt.UTC


def z(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def seed_series(emu: GoogleEmulator) -> None:
    # Tuesdays 09:00 New York from 24 Feb 2026; DST starts Sunday 8 March (14:00Z becomes 13:00Z).
    emu.state.put_event(CAL, {
        "id": "weekly", "summary": "Weekly sync",
        "start": {"dateTime": "2026-02-24T09:00:00-05:00", "timeZone": NY},
        "end": {"dateTime": "2026-02-24T09:30:00-05:00", "timeZone": NY},
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=7", "EXDATE;TZID=America/New_York:20260324T090000"],
    })  # fmt: skip
    emu.state.cancel_occurrence(CAL, "weekly", {"dateTime": "2026-03-10T09:00:00-04:00", "timeZone": NY})
    emu.state.move_occurrence(
        CAL, "weekly", {"dateTime": "2026-03-17T09:00:00-04:00", "timeZone": NY},
        start={"dateTime": "2026-03-18T10:00:00-04:00", "timeZone": NY},
        end={"dateTime": "2026-03-18T10:30:00-04:00", "timeZone": NY}, summary="Weekly sync (moved)",
    )  # fmt: skip


async def test_sync_stores_the_series_its_moved_and_its_cancelled_occurrence(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed_series(emu)
    mirror = Mirror()
    await mirror.round(provider, None)
    master = mirror.events["weekly"]
    assert master.kind is Kind.SERIES
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=7;BYDAY=TU", "EXDATE:20260324T130000Z")
    assert master.start == When.at(z(2026, 2, 24, 14), NY)
    moved = mirror.events["weekly_20260317T130000Z"]
    assert (moved.kind, moved.series_id, moved.status) == (Kind.EXCEPTION, "weekly", Status.CONFIRMED)
    assert moved.original_start == When.at(z(2026, 3, 17, 13), NY)
    assert moved.start == When.at(z(2026, 3, 18, 14), NY)
    cancelled = mirror.events["weekly_20260310T130000Z"]
    assert (cancelled.kind, cancelled.status, cancelled.series_id) == (Kind.EXCEPTION, Status.CANCELLED, "weekly")
    assert cancelled.original_start == When.at(z(2026, 3, 10, 13), NY)
    # the stub carries only its slot; the provider describes it from its series
    assert cancelled.title == "Weekly sync" and cancelled.end.utc() - cancelled.start.utc() == dt.timedelta(minutes=30)


async def test_exceptions_and_cancelled_stubs_carry_their_series_ical_uid(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed_series(emu)
    mirror = Mirror()
    await mirror.round(provider, None)
    uid = mirror.events["weekly"].ical_uid
    assert uid == "weekly@google.com"
    assert mirror.events["weekly_20260317T130000Z"].ical_uid == uid
    assert mirror.events["weekly_20260310T130000Z"].ical_uid == uid  # the stub names only its id and slot


async def _expand(provider: Provider, window: Window) -> list[tuple[dt.datetime, dt.datetime, str | None]]:
    out = []
    async for exp in provider.expand(CAL, ["weekly"], window=window, view=NoView()):
        assert exp.series_ids == ("weekly",) and exp.window == window
        for occ in exp.occurrences:
            assert occ.kind is Kind.OCCURRENCE and occ.series_id == "weekly"
            assert occ.start.timezone == NY and occ.original_start is not None
            assert occ.original_start.timezone == NY
            out.append((occ.start.utc(), occ.original_start.utc(), occ.title))
    return out


async def test_expand_across_dst_gives_exactly_the_right_occurrences(emu: GoogleEmulator, provider: Provider) -> None:
    seed_series(emu)
    got = await _expand(provider, Window(start=z(2026, 2, 1), end=z(2026, 5, 1)))
    assert got == [
        (z(2026, 2, 24, 14), z(2026, 2, 24, 14), "Weekly sync"),
        (z(2026, 3, 3, 14), z(2026, 3, 3, 14), "Weekly sync"),
        # 10 March cancelled; 17 March moved to the 18th, 10:00 EDT
        (z(2026, 3, 18, 14), z(2026, 3, 17, 13), "Weekly sync (moved)"),
        # 24 March excluded by EXDATE
        (z(2026, 3, 31, 13), z(2026, 3, 31, 13), "Weekly sync"),
        (z(2026, 4, 7, 13), z(2026, 4, 7, 13), "Weekly sync"),
    ]


async def test_an_occurrence_entering_the_window_as_time_passes_appears(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed_series(emu)
    before = await _expand(provider, Window(start=z(2026, 2, 1), end=z(2026, 4, 1)))
    later = await _expand(provider, Window(start=z(2026, 2, 8), end=z(2026, 4, 8)))
    assert z(2026, 4, 7, 13) not in [s for s, _, _ in before]
    assert later[-1][0] == z(2026, 4, 7, 13)


async def test_expanding_a_deleted_series_yields_nothing(emu: GoogleEmulator, provider: Provider) -> None:
    seed_series(emu)
    emu.state.delete_event(CAL, "weekly")
    assert await _expand(provider, Window(start=z(2026, 2, 1), end=z(2026, 5, 1))) == []


async def test_instances_are_paged(emu: GoogleEmulator, provider: Provider) -> None:
    emu.state.put_event(CAL, {
        "id": "daily", "summary": "Daily",
        "start": {"dateTime": "2026-01-01T08:00:00+01:00", "timeZone": "Europe/Zurich"},
        "end": {"dateTime": "2026-01-01T08:15:00+01:00", "timeZone": "Europe/Zurich"},
        "recurrence": ["RRULE:FREQ=HOURLY;COUNT=3000"],
    })  # fmt: skip
    window = Window(start=z(2025, 12, 1), end=z(2026, 12, 1))
    total = 0
    async for exp in provider.expand(CAL, ["daily"], window=window, view=NoView()):
        total += len(exp.occurrences)
    assert total == 3000
    assert len(emu.state.requests_to("/daily/instances")) == 2


async def test_a_series_deleted_on_the_server_answers_410_deleted_and_expands_to_nothing(
    emu: GoogleEmulator, provider: Provider
) -> None:
    seed_series(emu)
    emu.state.delete_event(CAL, "weekly")
    emu.state.clear_log()
    out = [x async for x in provider.expand(CAL, ["weekly"], window=Window(start=z(2026, 2, 1), end=z(2026, 5, 1)),
                                            view=NoView())]  # fmt: skip
    assert [r.status for r in emu.state.requests_to("/instances")] == [410]
    assert len(out) == 1 and out[0].series_ids == ("weekly",) and out[0].occurrences == []


async def test_instances_answers_carry_the_calendars_time_zone(emu: GoogleEmulator, provider: Provider) -> None:
    from calbridge_providers.google.emulator._listing import list_instances

    seed_series(emu)
    status, body = list_instances(emu.state, CAL, "weekly", {"timeMin": "2026-02-01T00:00:00Z"})
    assert status == 200 and body["timeZone"] == emu.state.calendars[CAL].time_zone != NY
    got = await _expand(provider, Window(start=z(2026, 2, 1), end=z(2026, 5, 1)))  # zones from the items
    assert len(got) == 5
