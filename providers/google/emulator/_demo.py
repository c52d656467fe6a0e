"""The demo's sample calendar and the server-side changes ``calbridge demo`` shows."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from ._state import GoogleState

DEMO_CALENDAR = "demo@calbridge.example"
TEAM_CALENDAR = "team@group.calendar.google.com"


def _local(day: dt.date, hour: int, minute: int, zone: str) -> dict[str, str]:
    value = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
    return {"dateTime": value.isoformat(timespec="seconds"), "timeZone": zone}


def _timed(title: str, day: dt.date, hour: int, minutes: int, zone: str, **extra: Any) -> dict[str, Any]:
    start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone))
    end = start + dt.timedelta(minutes=minutes)
    return {
        "summary": title,
        "start": {"dateTime": start.isoformat(timespec="seconds"), "timeZone": zone},
        "end": {"dateTime": end.isoformat(timespec="seconds"), "timeZone": zone},
        "organizer": {"email": "demo@calbridge.example", "displayName": "Demo User", "self": True},
        **extra,
    }


def seed(state: GoogleState, today: dt.date) -> None:
    """About fifty events around ``today``: series with a moved and a cancelled occurrence, all-day
    single and multi-day events, timed events in several zones, attendees and a Meet link."""
    state.add_calendar(DEMO_CALENDAR, summary="Demo", time_zone="America/New_York", primary=True)
    state.add_calendar(TEAM_CALENDAR, summary="Team", time_zone="Europe/Berlin")
    monday = today - dt.timedelta(days=today.weekday())
    standup = state.put_event(DEMO_CALENDAR, {
        "id": "standup", **_timed("Daily standup", monday - dt.timedelta(weeks=4), 9, 15, "America/New_York"),
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"],
        "conferenceData": {"entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}]},
        "attendees": [
            {"email": "demo@calbridge.example", "responseStatus": "accepted", "organizer": True, "self": True},
            {"email": "bob@calbridge.example", "displayName": "Bob", "responseStatus": "tentative"},
            {"email": "room-1@resource.calendar.google.com", "resource": True, "responseStatus": "accepted"},
        ],
    })  # fmt: skip
    tz = "America/New_York"
    state.move_occurrence(DEMO_CALENDAR, "standup", _local(monday + dt.timedelta(days=1), 9, 0, tz),
                          start=_local(monday + dt.timedelta(days=1), 10, 30, tz),
                          end=_local(monday + dt.timedelta(days=1), 10, 45, tz), summary="Standup (moved)")  # fmt: skip
    state.cancel_occurrence(DEMO_CALENDAR, "standup", _local(monday + dt.timedelta(days=3), 9, 0, tz))
    state.put_event(DEMO_CALENDAR, {
        "id": "retro", **_timed("Sprint retro", monday - dt.timedelta(weeks=2), 15, 60, "Europe/London"),
        "recurrence": ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;COUNT=12"], "transparency": "opaque",
    })  # fmt: skip
    state.put_event(DEMO_CALENDAR, {
        "id": "payday", "summary": "Payday", "start": {"date": monday.replace(day=1).isoformat()},
        "end": {"date": (monday.replace(day=1) + dt.timedelta(days=1)).isoformat()},
        "recurrence": ["RRULE:FREQ=MONTHLY;BYMONTHDAY=1"], "transparency": "transparent",
    })  # fmt: skip
    zones = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Calcutta", "Australia/Sydney", "UTC"]
    for i in range(30):
        day = monday + dt.timedelta(days=i - 10)
        zone = zones[i % len(zones)]
        visibility = "private" if i % 7 == 0 else "default"
        event = _timed(f"Meeting {i + 1:02d}", day, 8 + i % 9, 30 + 15 * (i % 3), zone, location=f"Room {100 + i}",
                       visibility=visibility)  # fmt: skip
        state.put_event(DEMO_CALENDAR, event)
    for i, (title, days) in enumerate([("Conference", 3), ("Holiday", 1), ("Offsite", 2), ("Company day off", 1)]):
        start = monday + dt.timedelta(days=7 * i + 2)
        state.put_event(DEMO_CALENDAR, {
            "summary": title, "start": {"date": start.isoformat()},
            "end": {"date": (start + dt.timedelta(days=days)).isoformat()}, "transparency": "transparent",
        })  # fmt: skip
    for i in range(8):
        state.put_event(
            TEAM_CALENDAR, _timed(f"Team sync {i + 1}", monday + dt.timedelta(days=i), 14, 30, "Europe/Berlin")
        )
    del standup


def changes(state: GoogleState, today: dt.date) -> list[str]:
    """Create, update, delete, and cancel one occurrence; one line for each."""
    monday = today - dt.timedelta(days=today.weekday())
    created = state.put_event(DEMO_CALENDAR, _timed("Lunch with Carol", today + dt.timedelta(days=1), 12, 60,
                                                   "America/Los_Angeles"))  # fmt: skip
    out = [f"created {created['id']} 'Lunch with Carol' tomorrow 12:00 America/Los_Angeles"]
    with state.lock:
        cal = state.calendar(DEMO_CALENDAR)
        assert cal is not None
        singles = sorted(i for i, e in cal.events.items() if e.get("summary", "").startswith("Meeting"))
    state.update_event(DEMO_CALENDAR, singles[0], summary="Meeting 01 (renamed)", location="Room 500")
    out.append(f"updated {singles[0]}: renamed to 'Meeting 01 (renamed)', moved to Room 500")
    state.delete_event(DEMO_CALENDAR, singles[1])
    out.append(f"deleted {singles[1]}")
    day = monday + dt.timedelta(days=9)
    state.cancel_occurrence(DEMO_CALENDAR, "standup", _local(day, 9, 0, "America/New_York"))
    out.append(f"cancelled the {day.isoformat()} occurrence of 'Daily standup'")
    return out
