"""A rule's end without enumerating it, and what a rule may expand to (issue 12, item 9); invalid
rules refused at conversion (item 11)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from calbridge.cursor import Cursor
from calbridge.errors import MalformedEvent
from calbridge.model import Event, Kind, Upsert, When
from calbridge.recurrence import MAX_OCCURRENCES, canonical_rrule, last_end
from calbridge.store.base import CalendarState
from calbridge.store.sqlite import SqliteStore
from calbridge.zones import zone

from .conftest import FakeEnv

UTC = dt.UTC
START = dt.datetime(2025, 1, 1, 8, tzinfo=UTC)


def series(rule: str, *, start: dt.datetime = START, tz: str | None = "Europe/Zurich", id: str = "s") -> Event:
    return Event(provider="fake", account="fake", calendar_id="cal1", id=id, kind=Kind.SERIES,
                 start=When.at(start, tz), end=When.at(start + dt.timedelta(minutes=30), tz), title=id,
                 recurrence=(rule,))  # fmt: skip


def enumerated_end(ev: Event) -> dt.datetime | None:
    """What last_end did before: every occurrence listed with dateutil, in the series' zone (None: none)."""
    tz = zone(ev.start.timezone) if ev.start.timezone else UTC
    local = ev.start.utc().astimezone(tz).replace(tzinfo=None)
    listed = list(rrulestr(ev.recurrence[0][6:], dtstart=local))
    if not listed:
        return None
    return listed[-1].replace(tzinfo=tz).astimezone(UTC) + (ev.end.utc() - ev.start.utc())


@settings(max_examples=150, deadline=None)
@given(
    freq=st.sampled_from(["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    interval=st.integers(min_value=1, max_value=5),
    count=st.integers(min_value=1, max_value=60),
    start=st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2060, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from([None, "Europe/Zurich", "America/New_York", "Australia/Lord_Howe"]),
    by=st.sampled_from(["", ";BYDAY=MO,TH", ";BYMONTHDAY=31", ";BYHOUR=9,17", ";BYMONTH=3,9"]),
)
def test_closed_form_and_bounded_enumeration_agree_with_listing_every_occurrence(
    freq: str, interval: int, count: int, start: dt.datetime, tz: str | None, by: str
) -> None:
    # A sub-daily rule on rare days listed in full costs seconds each; the bound on those is tested below.
    assume(not (freq in ("SECONDLY", "MINUTELY", "HOURLY") and "BYMONTH" in by))
    start = start.replace(microsecond=0)
    rule = canonical_rrule(f"FREQ={freq};COUNT={count};INTERVAL={interval}{by}", all_day=False, tz=None)
    ev = series(rule, start=start, tz=tz)
    found = last_end(ev)
    try:
        listed = enumerated_end(ev)
    except ValueError:  # dateutil: BYHOUR=9,17 every 2 hours from an even hour never matches
        assert found is None
        return
    assert found == listed  # None both: a rule that never matches (BYMONTH=3,9 every 2 months from May)


def test_a_huge_count_is_solved_without_enumerating_it() -> None:
    ev = series("RRULE:FREQ=SECONDLY;COUNT=50000000", tz="UTC")  # wall-clock steps: no DST in UTC
    began = time.monotonic()
    assert last_end(ev) == START + dt.timedelta(seconds=50_000_000 - 1, minutes=30)
    assert time.monotonic() - began < 1
    assert last_end(series("RRULE:FREQ=DAILY;COUNT=99999999999")) is None  # past year 9999: open-ended


@pytest.mark.parametrize(
    "rule",
    [
        f"RRULE:FREQ=SECONDLY;COUNT={MAX_OCCURRENCES + 1};BYSECOND=1",  # more than the cap, no closed form
        "RRULE:FREQ=SECONDLY;COUNT=5;BYMONTH=2;BYMONTHDAY=30",  # never: dateutil would scan to 9999
        "RRULE:FREQ=DAILY;COUNT=10000;BYMONTH=2;BYMONTHDAY=29",  # rarely: 40,000 years
    ],
)
def test_rules_past_the_bound_are_open_ended_and_answer_promptly(rule: str) -> None:
    began = time.monotonic()
    assert last_end(series(rule, id=rule)) is None
    assert time.monotonic() - began < 10  # generous: about a second on a loaded machine


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0,999", "FREQ=YEARLY;BYMONTH=13", "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=YEARLY;BYWEEKNO=54", "FREQ=DAILY;BYHOUR=24", "FREQ=WEEKLY;BYDAY=0MO", "FREQ=MONTHLY;BYDAY=54FR",
        "FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;COUNT=0", "FREQ=DAILY;COUNT=-1", "FREQ=DAILY;COUNT=x",
        "FREQ=WEEKLY;WKST=XX", "FREQ=DAILY;X-NAME=1", "FREQ=DAILY;BYSETPOS=", "FREQ=DAILY;BYDAY=",
    ],
)  # fmt: skip
def test_invalid_rules_cannot_be_read_faithfully(rule: str) -> None:
    with pytest.raises(MalformedEvent):
        canonical_rrule(rule, all_day=False, tz=None)


def test_valid_rules_keep_their_canonical_form() -> None:
    assert canonical_rrule("FREQ=MONTHLY;BYDAY=MO,FR;BYSETPOS=-1,1", all_day=False, tz=None) == (
        "RRULE:FREQ=MONTHLY;BYDAY=MO,FR;BYSETPOS=-1,1"
    )
    got = canonical_rrule("FREQ=MONTHLY;BYDAY=-1FR,+2MO", all_day=False, tz=None)
    assert got == "RRULE:FREQ=MONTHLY;BYDAY=+2MO,-1FR"


async def test_events_from_returns_promptly_with_a_50m_secondly_series_stored(fake_env: FakeEnv) -> None:
    stored = [
        series("RRULE:FREQ=SECONDLY;COUNT=50000000", id="secondly"),
        series(f"RRULE:FREQ=SECONDLY;COUNT={10 * MAX_OCCURRENCES};BYSECOND=1,2", id="capped"),
        series("RRULE:FREQ=DAILY;COUNT=3", start=dt.datetime(2020, 1, 1, tzinfo=UTC), id="ended"),
    ]
    async with SqliteStore(fake_env.store) as store:
        state = CalendarState(account="fake", calendar_id="cal1", cursor=Cursor(scheme="fake", version=1, state={}))
        await store.commit_page(state, [Upsert(event=e) for e in stored])
    began = time.monotonic()
    proc = fake_env.cli("events", "--from", "2025-01-01", "--format", "jsonl", check=True, timeout=60)
    assert time.monotonic() - began < 10  # a process start and one query; main ran past 90 s
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(e["id"] for e in got) == ["capped", "secondly"]  # the 2020 series ended before --from
    assert {e["recurrence"][0] for e in got} >= {"RRULE:FREQ=SECONDLY;COUNT=50000000"}
    proc = fake_env.cli("events", "--from", "2026-08-04", "--format", "jsonl", check=True, timeout=60)
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == ["capped"]  # 50M seconds end 2026-08-03
