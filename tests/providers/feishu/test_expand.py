"""Expansion through ``instances`` and ``instance_view`` against the emulator."""

from __future__ import annotations

import datetime as dt
import math

from calbridge.model import Event, Kind, Window
from calbridge.provider import Expansion
from calbridge_providers.feishu._provider import FeishuProvider
from calbridge_providers.feishu.emulator import FeishuEmulator, person, room

from .conftest import Factory, Mirror, at

UTC = dt.UTC
START = dt.datetime(2026, 3, 2, tzinfo=UTC)


async def _expand(provider: FeishuProvider, mirror: Mirror, series: list[str], window: Window) -> list[Expansion]:
    return [x async for x in provider.expand("primary", series, window=window, view=mirror)]


async def test_few_series_use_instances_with_open_interval_edges(emu: FeishuEmulator, make_provider: Factory) -> None:
    # Occurrences start exactly on the window's start: the open interval must not lose them.
    daily = emu.create_event(
        summary="daily",
        start=START + dt.timedelta(hours=9),
        end=START + dt.timedelta(hours=10),
        recurrence="FREQ=DAILY;COUNT=10",
        timezone="Europe/Berlin",
    )
    emu.cancel_occurrence(daily, START + dt.timedelta(days=2, hours=9))
    moved = emu.move_occurrence(
        daily,
        START + dt.timedelta(days=3, hours=9),
        start=START + dt.timedelta(days=3, hours=14),
        end=START + dt.timedelta(days=3, hours=15),
    )
    window = Window(start=START + dt.timedelta(hours=9), end=START + dt.timedelta(days=30))
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    emu.clear_log()
    out = await _expand(provider, mirror, [daily], window)
    assert provider._expander.last_method == "instances" and len(out) == 1
    occ = out[0].occurrences
    assert out[0].series_ids == (daily,)
    assert len(occ) == 9  # 10 minus the cancelled one
    assert occ[0].start.utc() == window.start  # on the edge, kept
    assert all(o.kind is Kind.OCCURRENCE and o.series_id == daily and o.original_start for o in occ)
    assert {o.id for o in occ} >= {moved}
    m = next(o for o in occ if o.id == moved)
    assert m.start.utc() == START + dt.timedelta(days=3, hours=14)
    assert m.original_start is not None and m.original_start.instant == START + dt.timedelta(days=3, hours=9)
    assert m.original_start.timezone == "Europe/Berlin"
    assert occ[0].attendees == mirror.events[daily].attendees and occ[0].organizer is not None  # filled from master


async def test_300_day_window_uses_instance_view_in_fewest_chunks(emu: FeishuEmulator, make_provider: Factory) -> None:
    series = [
        emu.create_event(
            summary=f"weekly {i}",
            start=START + dt.timedelta(days=i % 7, hours=i),
            end=START + dt.timedelta(days=i % 7, hours=i + 1),
            recurrence="FREQ=WEEKLY",
        )
        for i in range(15)
    ]
    single = emu.create_event(
        summary="single", start=START + dt.timedelta(days=3), end=START + dt.timedelta(days=3, hours=1)
    )
    window = Window(start=START, end=START + dt.timedelta(days=300))
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    emu.clear_log()
    out = await _expand(provider, mirror, series, window)
    views = emu.requests("instance_view")
    assert provider._expander.last_method == "instance_view"
    assert len(views) == math.ceil(300 / 39) == len(emu.requests())  # 8 requests, nothing else
    assert all(int(r["query"]["end_time"]) - int(r["query"]["start_time"]) < 40 * 86400 for r in views)
    assert len(out) == 1 and set(out[0].series_ids) == set(series)
    occ = out[0].occurrences
    ids = [o.id for o in occ]
    assert len(ids) == len(set(ids))
    assert single not in {o.series_id for o in occ} and all(o.kind is Kind.OCCURRENCE for o in occ)
    expected = sum(
        1
        for i in range(15)
        for w in range(60)
        if window.start <= START + dt.timedelta(days=i % 7 + 7 * w, hours=i) < window.end
    )
    assert len(occ) == expected


async def test_dense_calendar_is_split_on_193104(emu: FeishuEmulator, make_provider: Factory) -> None:
    # 30 daily series over 39 days: 1170 instances in one chunk, more than instance_view allows.
    series = [
        emu.create_event(
            summary=f"d{i}",
            start=START + dt.timedelta(minutes=10 * i),
            end=START + dt.timedelta(minutes=10 * i + 30),
            recurrence="FREQ=DAILY",
        )
        for i in range(30)
    ]
    # An occurrence straddling the 19.5-day split point comes back from both halves.
    long_series = emu.create_event(
        summary="long", start=START + dt.timedelta(hours=8), end=START + dt.timedelta(hours=18), recurrence="FREQ=DAILY"
    )
    series.append(long_series)
    window = Window(start=START, end=START + dt.timedelta(days=39))
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    emu.clear_log()
    out = await _expand(provider, mirror, series, window)
    codes = [r for r in emu.requests("instance_view")]
    assert len(codes) == 3  # the whole chunk (193104), then its two halves
    occ = out[0].occurrences
    ids = [o.id for o in occ]
    assert len(ids) == len(set(ids))
    assert len(occ) == 30 * 39 + 39
    straddling = START + dt.timedelta(days=19, hours=8)
    assert sum(1 for o in occ if o.start.utc() == straddling) == 1


async def test_instance_view_rooms_join_the_people_of_the_series_or_stored_exception(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    # instance_view returns only meeting rooms as attendees: people and RSVPs come from the mirror.
    alice, bob = person("ou_alice", "Alice", "accept"), person("ou_bob", "Bob", "decline")
    carol = person("ou_carol", "Carol")
    daily = emu.create_event(
        summary="daily",
        start=START + dt.timedelta(hours=9),
        end=START + dt.timedelta(hours=10),
        recurrence="FREQ=DAILY;COUNT=10",
        attendees=[alice, bob, room("omm_r1", "Room 1")],
    )
    other = emu.create_event(
        summary="other", start=START + dt.timedelta(hours=12), end=START + dt.timedelta(hours=13),
        recurrence="FREQ=DAILY",
    )  # fmt: skip
    moved = emu.move_occurrence(
        daily, START + dt.timedelta(days=3, hours=9),
        start=START + dt.timedelta(days=3, hours=14), end=START + dt.timedelta(days=3, hours=15),
    )  # fmt: skip
    emu.update_event(moved, attendees=[alice, carol, room("omm_r2", "Room 2")])
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    # The exception's room changes on the server after the sync: instance_view's room wins.
    emu.update_event(moved, attendees=[alice, carol, room("omm_r3", "Room 3")])
    window = Window(start=START, end=START + dt.timedelta(days=30))
    out = await _expand(provider, mirror, [daily, other], window)
    assert provider._expander.last_method == "instance_view"
    occ = {o.id: o for o in out[0].occurrences if o.series_id == daily}
    assert len(occ) == 10

    def who(o: Event) -> set[tuple[str | None, str, bool]]:
        return {(a.id, a.response.value, a.resource) for a in o.attendees}

    plain = occ[f"{daily[:-2]}_{int((START + dt.timedelta(days=1, hours=9)).timestamp())}"]
    people = {("ou_alice", "accepted", False), ("ou_bob", "declined", False)}
    assert who(plain) == people | {("omm_r1", "accepted", True)}
    assert who(plain) == who(mirror.events[daily])
    people = {("ou_alice", "accepted", False), ("ou_carol", "accepted", False)}
    assert who(occ[moved]) == people | {("omm_r3", "accepted", True)}


async def test_a_calendar_without_instance_view_falls_back_to_instances(
    emu: FeishuEmulator, make_provider: Factory
) -> None:
    series = [
        emu.create_event(summary=f"s{i}", start=at(1, i), end=at(1, i + 1), recurrence="FREQ=DAILY;COUNT=3")
        for i in range(12)
    ]
    provider = make_provider()
    mirror = Mirror()
    await mirror.round(provider)
    assert set(series) <= set(mirror.events)
    # A calendar type without instance_view (191004) falls back to per-series instances.
    emu.inject(403, 191004, path="instance_view", msg="invalid calendar type")
    window = Window(start=at(0), end=at(60))
    out = [x async for x in provider.expand("primary", series, window=window, view=mirror)]
    assert len(out) == 12 and sum(len(x.occurrences) for x in out) == 36
    assert provider._expander.last_method == "instances" and len(emu.requests("instance_view")) == 1
