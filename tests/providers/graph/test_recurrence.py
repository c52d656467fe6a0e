"""patternedRecurrence → RRULE, checked by expansion: the emulator's occurrences (dateutil over the
Graph pattern in the series zone) against dateutil's rrule over the provider's canonical RRULE."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from calbridge.model import Kind, Window

from .conftest import UTC, Harness, at

SPAN = Window(start=dt.datetime(2026, 1, 1, tzinfo=UTC), end=dt.datetime(2028, 1, 1, tzinfo=UTC))

CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, Any]] = [
    # id, pattern, range, zone, first start (naive wall time or date)
    ("daily-numbered", {"type": "daily", "interval": 3}, {"type": "numbered", "numberOfOccurrences": 12},
     "Pacific Standard Time", at(2026, 3, 1, 9)),
    ("weekly-enddate", {"type": "weekly", "daysOfWeek": ["monday", "wednesday"]},
     {"type": "endDate", "endDate": "2026-04-15"}, "W. Europe Standard Time", at(2026, 3, 2, 8, 30)),
    ("weekly-interval2-sunday-wkst", {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "tuesday"],
                                      "firstDayOfWeek": "sunday"}, {"type": "numbered", "numberOfOccurrences": 10},
     "Eastern Standard Time", at(2026, 3, 3, 18)),
    ("weekly-interval2-monday-wkst", {"type": "weekly", "interval": 2, "daysOfWeek": ["sunday", "tuesday"],
                                      "firstDayOfWeek": "monday"}, {"type": "numbered", "numberOfOccurrences": 10},
     "Eastern Standard Time", at(2026, 3, 3, 18)),
    ("weekly-noend", {"type": "weekly", "interval": 3, "daysOfWeek": ["friday"], "firstDayOfWeek": "sunday"},
     {"type": "noEnd"}, "Tokyo Standard Time", at(2026, 1, 9, 7)),
    ("absolute-monthly", {"type": "absoluteMonthly", "dayOfMonth": 15}, {"type": "NoEnd"},
     "AUS Eastern Standard Time", at(2026, 1, 15, 10)),
    ("absolute-monthly-31", {"type": "absoluteMonthly", "dayOfMonth": 31, "interval": 1},
     {"type": "numbered", "numberOfOccurrences": 7}, "UTC", at(2026, 1, 31, 10)),
    ("relative-monthly-last", {"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
     {"type": "Numbered", "numberOfOccurrences": 9}, "GMT Standard Time", at(2026, 1, 30, 16)),
    ("relative-monthly-weekend-first", {"type": "relativeMonthly", "daysOfWeek": ["saturday", "sunday"],
                                        "index": "first"}, {"type": "EndDate", "endDate": "2026-12-31"},
     "America/New_York", at(2026, 1, 3, 11)),
    ("relative-monthly-second-interval2", {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["monday"],
                                           "index": "second"}, {"type": "noEnd"},
     "India Standard Time", at(2026, 1, 12, 9)),
    ("absolute-yearly", {"type": "absoluteYearly", "month": 3, "dayOfMonth": 10},
     {"type": "numbered", "numberOfOccurrences": 2}, "Pacific Standard Time", at(2026, 3, 10, 12)),
    ("relative-yearly-fourth", {"type": "relativeYearly", "month": 11, "daysOfWeek": ["thursday"], "index": "fourth"},
     {"type": "noEnd"}, "Central Standard Time", at(2026, 11, 26, 15)),
    ("relative-yearly-third", {"type": "relativeYearly", "month": 5, "daysOfWeek": ["monday", "tuesday"],
                               "index": "third", "interval": 1}, {"type": "endDate", "endDate": "2027-12-31"},
     "W. Europe Standard Time", at(2026, 5, 11, 9)),
    ("all-day-daily-enddate", {"type": "daily", "interval": 2}, {"type": "endDate", "endDate": "2026-02-20"},
     "Pacific Standard Time", dt.date(2026, 2, 1)),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "rng", "zone", "first"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_pattern_to_rrule_expands_like_the_emulator(
    harness: Harness, pattern: dict[str, Any], rng: dict[str, Any], zone: str, first: Any
) -> None:
    emu = harness.emulator
    end = first + (dt.timedelta(days=1) if isinstance(first, dt.date) and not isinstance(first, dt.datetime)
                   else dt.timedelta(minutes=45))  # fmt: skip
    sid = emu.create_event("Series", first, end, time_zone=zone, recurrence={"pattern": pattern, "range": rng})
    await harness.sync(harness.provider(page_size=200), window=SPAN)
    master = harness.mirror[sid]
    assert master.kind is Kind.SERIES and len(master.recurrence) == 1
    rule = master.recurrence[0]
    assert rule.startswith("RRULE:FREQ=")
    emulated = sorted(start for _, start in emu.occurrences(sid, SPAN.start, SPAN.end))
    assert harness.starts(sid) == emulated  # what delta delivered is what the emulator expands
    if master.start.all_day:
        assert master.start.date is not None
        dtstart = dt.datetime.combine(master.start.date, dt.time())
        ours = [d.replace(tzinfo=UTC) for d in rrulestr(rule, dtstart=dtstart).between(
            SPAN.start.replace(tzinfo=None), SPAN.end.replace(tzinfo=None), inc=True)]  # fmt: skip
    else:
        assert master.start.instant is not None and master.start.timezone is not None
        dtstart = master.start.instant.astimezone(ZoneInfo(master.start.timezone))
        ours = [d.astimezone(UTC) for d in rrulestr(rule, dtstart=dtstart).between(SPAN.start, SPAN.end, inc=True)]
    assert ours == emulated, rule
    assert len(emulated) >= 2


def test_wkst_appears_only_where_it_changes_the_expansion() -> None:
    from calbridge_providers.graph._recurrence import pattern_to_rrule

    def rule(**pattern: Any) -> str:
        return pattern_to_rrule({"pattern": pattern, "range": {"type": "noEnd"}}, all_day=False, series_zone=None)

    assert rule(type="weekly", interval=2, daysOfWeek=["sunday"], firstDayOfWeek="sunday").endswith(";WKST=SU")
    assert "WKST" not in rule(type="weekly", interval=2, daysOfWeek=["sunday"], firstDayOfWeek="monday")
    assert "WKST" not in rule(type="weekly", interval=1, daysOfWeek=["sunday"], firstDayOfWeek="sunday")
    assert rule(type="relativeMonthly", daysOfWeek=["friday"], index="last") == "RRULE:FREQ=MONTHLY;BYDAY=-1FR"
    assert rule(type="relativeYearly", month=5, daysOfWeek=["tuesday", "monday"], index="third") == (
        "RRULE:FREQ=YEARLY;BYDAY=MO,TU;BYMONTH=5;BYSETPOS=3"
    )


@pytest.mark.parametrize("windows_names_on_the_wire", [True, False])
async def test_windows_zone_dst_crossing_weekly_series(harness: Harness, windows_names_on_the_wire: bool) -> None:
    # Monday 09:00 in Pacific time across the US switch to DST on 2026-03-08: 17:00Z, then 16:00Z.
    emu = harness.emulator
    emu.ignore_timezone_preference = windows_names_on_the_wire  # the wire then says "Pacific Standard Time"
    sid = emu.create_event("Weekly", at(2026, 2, 23, 9), at(2026, 2, 23, 10), time_zone="Pacific Standard Time",
                           recurrence={"pattern": {"type": "weekly", "daysOfWeek": ["monday"]},
                                       "range": {"type": "numbered", "numberOfOccurrences": 4}})  # fmt: skip
    await harness.sync()
    if windows_names_on_the_wire:
        delta = [r for r in emu.requests if "calendarView" in r.path]
        assert delta  # the payloads carried Windows names (see the emulator's render)
    assert harness.starts(sid) == [
        dt.datetime(2026, 2, 23, 17, tzinfo=UTC),
        dt.datetime(2026, 3, 2, 17, tzinfo=UTC),
        dt.datetime(2026, 3, 9, 16, tzinfo=UTC),
        dt.datetime(2026, 3, 16, 16, tzinfo=UTC),
    ]
    master = harness.mirror[sid]
    assert master.start.timezone == "America/Los_Angeles"
    assert master.end.utc() == dt.datetime(2026, 2, 23, 18, tzinfo=UTC)
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=4;BYDAY=MO",)
