"""Feishu attendee calls (the list carries none): fetched only where they can differ from the mirror,
concurrently within the quota, and by option only for events that touch the window. Counts come from
the emulator's request log."""

from __future__ import annotations

import datetime as dt

import pytest

from calbridge.errors import CursorExpired
from calbridge.model import Response, Window
from calbridge_providers.feishu._provider import FeishuProvider
from calbridge_providers.feishu.emulator import FeishuEmulator, person

from .conftest import NOW, WINDOW, Factory, Mirror, at


def calls(emu: FeishuEmulator) -> list[str]:
    """The event ids of the attendee calls since the log was cleared."""
    return [r["path"].split("/events/")[1].split("/")[0] for r in emu.requests("/attendees")]


def list_pages(emu: FeishuEmulator) -> int:
    return len([r for r in emu.requests("/events") if r["path"].endswith("/events")])


async def relist(mirror: Mirror, provider: FeishuProvider, **kw: object) -> None:
    """A round from a dead cursor: CursorExpired, then the full listing the engine would make."""
    with pytest.raises(CursorExpired):
        await mirror.round(provider, **kw)  # type: ignore[arg-type]
    mirror.cursor = None
    await mirror.round(provider, **kw)  # type: ignore[arg-type]


async def test_a_relisting_of_an_unchanged_calendar_makes_no_attendee_call(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    ids = [emu.create_event(summary=f"m{i}", start=at(i % 30, 1), end=at(i % 30, 2),
                            attendees=[person("ou_a", "Ann"), person(f"ou_{i}", f"P{i}", "needs_action")])
           for i in range(120)]  # fmt: skip
    provider = make_provider(options={"page_size": 50, "attendee_qps": 1000})  # the quota is not this test's
    mirror = Mirror()
    await mirror.round(provider)
    assert sorted(calls(emu)) == sorted(ids)  # a first sync asks per event: the list has no attendees

    emu.clear_log()
    emu.expire_cursors()
    await relist(mirror, provider)
    assert list_pages(emu) == 1 + 3 and calls(emu) == []  # the dead cursor, the three list pages; no attendees
    assert all(len(mirror.events[i].attendees) == 2 for i in ids)

    emu.update_event(ids[7], summary="m7 renamed")
    emu.clear_log()
    emu.expire_cursors()
    await relist(mirror, provider)
    assert calls(emu) == [ids[7]]  # a changed event refetches only its own

    emu.set_rsvp(ids[3], "ou_a", "decline")  # only the attendee list changed: the incremental round says so
    emu.clear_log()
    await mirror.round(provider)
    assert calls(emu) == [ids[3]] and mirror.events[ids[3]].attendees[0].response is Response.DECLINED


async def test_attendee_calls_run_concurrently_within_the_limit(emu: FeishuEmulator, make_provider: Factory) -> None:
    for i in range(24):
        emu.create_event(summary=f"m{i}", start=at(1, i), end=at(1, i + 1), attendees=[person("ou_a", "Ann")])
    emu.slow(0.05, path="/attendees", count=24)
    provider = make_provider(options={"attendee_concurrency": 4})
    await Mirror().round(provider)
    assert len(calls(emu)) == 24
    assert 2 <= emu.max_in_flight("/attendees") <= 4


async def test_attendee_calls_wait_for_the_quota(emu: FeishuEmulator, make_provider: Factory) -> None:
    for i in range(7):
        emu.create_event(summary=f"m{i}", start=at(1, i), end=at(1, i + 1), attendees=[person("ou_a", "Ann")])
    provider = make_provider(options={"attendee_qps": 5})
    await Mirror().round(provider)
    assert len(calls(emu)) == 7 and provider.attendee_limit.waited > 0.5  # the sixth waited for the next second


async def test_attendees_window_skips_events_outside_it_until_they_are_inside(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    people = [person("ou_a", "Ann")]
    inside = emu.create_event(summary="in", start=at(2), end=at(2, 1), attendees=people)
    later = emu.create_event(summary="later", start=at(400), end=at(400, 1), attendees=people)
    series = emu.create_event(summary="weekly", start=at(-400), end=at(-400, 1), recurrence="FREQ=WEEKLY",
                              attendees=people)  # fmt: skip
    provider = make_provider(options={"attendees": "window"})
    mirror = Mirror()
    await mirror.round(provider)
    assert sorted(calls(emu)) == sorted([inside, series])  # a series reaches the window from its start
    assert mirror.events[later].attendees == () and mirror.events[later].attendees_omitted
    assert not mirror.events[inside].attendees_omitted and mirror.events[inside].attendees

    emu.clear_log()
    emu.expire_cursors()
    await relist(mirror, provider)
    assert calls(emu) == [] and mirror.events[later].attendees_omitted  # still outside: still skipped

    wider = Window(start=WINDOW.start, end=NOW + dt.timedelta(days=500))
    emu.clear_log()
    emu.expire_cursors()
    await relist(mirror, provider, window=wider)
    assert calls(emu) == [later]  # inside now: fetched, the others reused
    assert mirror.events[later].attendees and not mirror.events[later].attendees_omitted
