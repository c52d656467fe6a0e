"""Expansion amortized over time (issue 11): as the clock moves a day at a time over 30 quiet days,
the expansion requests (counted from the emulators' request logs) stay under 1.5 full expansions in
all and under 10 % of one on any day; Graph's window-bound delta link is re-listed once, not daily.

Default profile: 20 weekly series; ``--slow``: 100.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from calbridge.testing.emulator_api import RequestLog, SeriesEmulatorAPI
from calbridge.testing.kit import BaseHandle, EmulatorPool, Mirror, run

NOW = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
DAY = dt.timedelta(days=1)
EXPANSION = {"google": ("/instances",), "feishu": ("/instances", "/instance_view")}
_n = itertools.count(1)


def _mirror(pool: EmulatorPool, name: str, tmp_path: Path, series: int, **kw: str) -> tuple[RequestLog, Mirror]:
    served = pool.serve(name)
    emu = served.emulator
    assert isinstance(emu, SeriesEmulatorAPI) and isinstance(emu, RequestLog)
    handle = BaseHandle(served)
    cal = handle.calendar_id = emu.new_calendar(f"amortized{next(_n)}")
    for i in range(series):  # weekly, starting over the past days, endless: every window holds some
        start = NOW - dt.timedelta(days=i % 7, hours=i % 5)
        emu.add_event(f"weekly {i}", start, start + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=WEEKLY")
    mirror = Mirror(handle, tmp_path / f"{name}{next(_n)}", now=NOW, past="30d", future="365d", **kw)  # type: ignore[arg-type]
    return emu, mirror


def _sync_counting(emu: RequestLog, mirror: Mirror, wanted: tuple[str, ...]) -> int:
    before = len(emu.request_paths())
    report = run(mirror.sync())
    assert report is not None and report.ok, [r.error for r in report.calendars]
    return sum(1 for p in emu.request_paths()[before:] if p.endswith(wanted))


def _series(slow: bool) -> int:
    return 100 if slow else 20


@pytest.mark.parametrize("name", ["google", "feishu"])
def test_thirty_quiet_days_cost_under_one_and_a_half_expansions(
    name: str, calbridge_emulators: EmulatorPool, calbridge_slow: bool, tmp_path: Path
) -> None:
    emu, mirror = _mirror(calbridge_emulators, name, tmp_path, _series(calbridge_slow))
    full = _sync_counting(emu, mirror, EXPANSION[name])  # the first sync expands every series
    assert full > 0
    days = []
    for _ in range(30):
        mirror.advance(DAY)
        days.append(_sync_counting(emu, mirror, EXPANSION[name]))
    assert sum(days) < 1.5 * full, (full, days)
    assert max(days) <= 0.1 * full, (full, days)
    print(f"{name}: a full expansion {full} requests; 30 quiet days {sum(days)} (at most {max(days)} a day)")
    # Nothing was lost: a fresh full sync today shows exactly what the amortized mirror shows.
    oracle = mirror.fresh()
    assert run(oracle.sync()) is not None
    assert not run(mirror.snapshot()).diff(run(oracle.snapshot()))


@pytest.mark.parametrize("name", ["google", "feishu"])
def test_without_slack_every_day_expands_again(name: str, calbridge_emulators: EmulatorPool, tmp_path: Path) -> None:
    """The counter sees the rule without slack (``window.slack: 0d``): each day Google expands every
    series again; Feishu (one instance_view call serves every series) asks for the day that entered."""
    emu, mirror = _mirror(calbridge_emulators, name, tmp_path, 12, slack="0d")
    full = _sync_counting(emu, mirror, EXPANSION[name])
    for _ in range(2):
        mirror.advance(DAY)
        assert _sync_counting(emu, mirror, EXPANSION[name]) == (full if name == "google" else 1)


def test_graph_relists_its_window_once_in_thirty_quiet_days(
    calbridge_emulators: EmulatorPool, calbridge_slow: bool, tmp_path: Path
) -> None:
    emu, mirror = _mirror(calbridge_emulators, "graph", tmp_path, _series(calbridge_slow))
    first = _sync_counting(emu, mirror, ("/delta",))  # the full listing's pages
    days = []
    for _ in range(30):
        mirror.advance(DAY)
        report_before = len(mirror.reports)
        days.append(_sync_counting(emu, mirror, ("/delta",)))
        assert len(mirror.reports) == report_before + 1
    fulls = [r.calendars[0].full for r in mirror.reports[1:]]
    assert fulls.count(True) == 1, fulls  # one re-anchoring in 30 days (it was daily)
    # A quiet day is one delta request; the re-anchor day re-lists the window (plus slack).
    assert sorted(days)[:-1] == [1] * 29 and sum(days) < 1.5 * first + 29, (first, days)
    print(f"graph: a full listing {first} delta requests; 30 quiet days {sum(days)} (one re-listing: {max(days)})")
    oracle = mirror.fresh()
    assert run(oracle.sync()) is not None
    assert not run(mirror.snapshot(windowed=True)).diff(run(oracle.snapshot(windowed=True)))
