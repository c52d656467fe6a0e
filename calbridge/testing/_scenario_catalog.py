"""The built-in conformance scenarios (2026 dates; the conformance run's clock is :data:`NOW`).

Every event has an instance inside the window around :data:`NOW` (Graph only ever sees what its
calendarView window holds). Series start on their first occurrence (as Outlook masters do) and
use explicit BY* parts (Graph's patterns always state them).
"""

from __future__ import annotations

import datetime as dt

from ..model import Response, ShowAs, Status, Visibility
from .scenario import (
    CancelOccurrence,
    Create,
    Delete,
    EventSpec,
    Guest,
    Moved,
    MoveOccurrence,
    Scenario,
    Split,
    Update,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
WINDOW_PAST = dt.timedelta(days=60)
WINDOW_FUTURE = dt.timedelta(days=365)


def t(*parts: int) -> dt.datetime:
    """A naive local time."""
    return dt.datetime(*parts)  # type: ignore[arg-type]  # noqa: DTZ001


d = dt.date
NY, LON, LA, SH = "America/New_York", "Europe/London", "America/Los_Angeles", "Asia/Shanghai"

GUESTS = (
    Guest(email="ann@guests.example", name="Ann Accepts", response=Response.ACCEPTED),
    Guest(email="dan@guests.example", name="Dan Declines", response=Response.DECLINED),
    Guest(email="tia@guests.example", name="Tia Tentative", response=Response.TENTATIVE, optional=True),
    Guest(email="ned@guests.example", name="Ned Needs-Action", response=Response.NEEDS_ACTION),
)

LONG_TEXT = "\n".join(
    f"Line {i:03d}: Grüße aus Zürich — 会议纪要 — встреча — Ελληνικά — emoji 🚀✨ — ½ ≠ ∞" for i in range(1, 201)
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="weekly-dst-new-york",
        about="weekly Tuesday 09:00 New York across the 8 March DST change; one moved, one cancelled",
        events=[
            EventSpec(
                key="weekly", title="Weekly sync", zone=NY, start=t(2026, 2, 24, 9), end=t(2026, 2, 24, 9, 30),
                rrule="RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=TU", location="Room 12", description="Agenda in the doc.",
                attendees=GUESTS[:2],
                moved=[Moved(original=t(2026, 3, 10, 9), start=t(2026, 3, 11, 10), end=t(2026, 3, 11, 10, 30),
                             title="Weekly sync (moved)")],
                cancelled=[t(2026, 3, 17, 9)],
            ),
        ],
        steps=[
            [CancelOccurrence(key="weekly", original=t(2026, 3, 24, 9))],
            [MoveOccurrence(key="weekly", moved=Moved(
                original=t(2026, 3, 31, 9), start=t(2026, 3, 31, 15), end=t(2026, 3, 31, 15, 45),
                title="Weekly sync (afternoon)", location="Room 3"))],
            [Delete(key="weekly")],
        ],
    ),
    Scenario(
        name="weekly-dst-london",
        about="weekly Thursday 10:00 London across the 29 March DST change, until 30 April; one moved, one cancelled",
        events=[
            EventSpec(
                key="weekly", title="Thursday review", zone=LON, start=t(2026, 3, 5, 10), end=t(2026, 3, 5, 11),
                rrule="RRULE:FREQ=WEEKLY;UNTIL=20260430;BYDAY=TH",
                moved=[Moved(original=t(2026, 3, 26, 10), start=t(2026, 3, 27, 14), end=t(2026, 3, 27, 15),
                             title="Thursday review (Friday)")],
                cancelled=[t(2026, 4, 2, 10)],
            ),
        ],
        steps=[[CancelOccurrence(key="weekly", original=t(2026, 4, 16, 10))]],
    ),
    Scenario(
        name="monthly-second-tuesday",
        about="monthly on the second Tuesday, six times, New York",
        events=[
            EventSpec(key="monthly", title="Board prep", zone=NY, start=t(2026, 3, 10, 11), end=t(2026, 3, 10, 12),
                      rrule="RRULE:FREQ=MONTHLY;COUNT=6;BYDAY=2TU"),
        ],
        steps=[[Update(key="monthly", title="Board prep (renamed)", location="Boardroom")]],
    ),
    Scenario(
        name="monthly-last-friday",
        about="monthly on the last Friday until September, London",
        events=[
            EventSpec(key="monthly", title="Month-end drinks", zone=LON, start=t(2026, 1, 30, 17),
                      end=t(2026, 1, 30, 19), rrule="RRULE:FREQ=MONTHLY;UNTIL=20260930;BYDAY=-1FR"),
        ],
        steps=[[CancelOccurrence(key="monthly", original=t(2026, 4, 24, 17))]],
    ),
    Scenario(
        name="yearly-all-day",
        about="a yearly all-day event that began before the window",
        events=[
            EventSpec(key="yearly", title="Founders' day", start=d(2025, 1, 20), end=d(2025, 1, 21),
                      rrule="RRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=20", show_as=ShowAs.FREE),
        ],
    ),
    Scenario(
        name="weekly-all-day",
        about="an all-day series every other Friday, six times; one day cancelled, one moved a day later",
        events=[
            EventSpec(key="weekly", title="Remote day", start=d(2026, 3, 6), end=d(2026, 3, 7),
                      rrule="RRULE:FREQ=WEEKLY;COUNT=6;INTERVAL=2;BYDAY=FR", cancelled=[d(2026, 3, 20)],
                      moved=[Moved(original=d(2026, 4, 3), start=d(2026, 4, 4), end=d(2026, 4, 5))]),
        ],
        steps=[[CancelOccurrence(key="weekly", original=d(2026, 5, 1))]],
    ),
    Scenario(
        name="yearly-timed",
        about="yearly on 12 May 14:00 Shanghai, three times",
        events=[
            EventSpec(key="yearly", title="Anniversary review", zone=SH, start=t(2026, 5, 12, 14),
                      end=t(2026, 5, 12, 15), rrule="RRULE:FREQ=YEARLY;COUNT=3;BYMONTH=5;BYMONTHDAY=12"),
        ],
    ),
    Scenario(
        name="daily-count",
        about="daily 09:00 Shanghai, five times; then one cancelled",
        events=[
            EventSpec(key="daily", title="Stand-up", zone=SH, start=t(2026, 3, 2, 9), end=t(2026, 3, 2, 9, 15),
                      rrule="RRULE:FREQ=DAILY;COUNT=5"),
        ],
        steps=[[CancelOccurrence(key="daily", original=t(2026, 3, 4, 9))]],
    ),
    Scenario(
        name="daily-until",
        about="daily 08:00 Los Angeles through 12 March, across the 8 March DST change",
        events=[
            EventSpec(key="daily", title="Early check-in", zone=LA, start=t(2026, 3, 5, 8), end=t(2026, 3, 5, 8, 20),
                      rrule="RRULE:FREQ=DAILY;UNTIL=20260312"),
        ],
        steps=[[MoveOccurrence(key="daily", moved=Moved(original=t(2026, 3, 9, 8), start=t(2026, 3, 9, 9),
                                                        end=t(2026, 3, 9, 9, 20)))]],
    ),
    Scenario(
        name="split-this-and-following",
        about="a weekly Monday series edited 'this and following' from 16 March: new time and title",
        events=[
            EventSpec(key="planning", title="Planning", zone=LON, start=t(2026, 2, 2, 10), end=t(2026, 2, 2, 11),
                      rrule="RRULE:FREQ=WEEKLY;BYDAY=MO"),
        ],
        steps=[
            [Split(key="planning", last_day=d(2026, 3, 15), follow=EventSpec(
                key="planning-2", title="Planning (new slot)", zone=LON, start=t(2026, 3, 16, 11),
                end=t(2026, 3, 16, 12), rrule="RRULE:FREQ=WEEKLY;COUNT=8;BYDAY=MO"))],
        ],
    ),
    Scenario(
        name="all-day-single",
        about="one all-day event; then renamed; then deleted",
        events=[EventSpec(key="holiday", title="Company holiday", start=d(2026, 3, 20), end=d(2026, 3, 21))],
        steps=[[Update(key="holiday", title="Company holiday (confirmed)")], [Delete(key="holiday")]],
    ),
    Scenario(
        name="all-day-multi-day",
        about="a three-day all-day event; then extended by a day",
        events=[EventSpec(key="offsite", title="Offsite", start=d(2026, 4, 6), end=d(2026, 4, 9),
                          location="Lake house")],
        steps=[[Update(key="offsite", end=d(2026, 4, 10))]],
    ),
    Scenario(
        name="zone-asia-shanghai",
        about="a single in Asia/Shanghai; then moved an hour later",
        events=[EventSpec(key="call", title="Supplier call", zone=SH, start=t(2026, 3, 3, 9), end=t(2026, 3, 3, 10))],
        steps=[[Update(key="call", start=t(2026, 3, 3, 10), end=t(2026, 3, 3, 11))]],
    ),
    Scenario(
        name="zone-los-angeles",
        about="singles in America/Los_Angeles either side of the 8 March DST change; then one created",
        events=[
            EventSpec(key="before", title="Before DST", zone=LA, start=t(2026, 3, 6, 8), end=t(2026, 3, 6, 9)),
            EventSpec(key="after", title="After DST", zone=LA, start=t(2026, 3, 9, 8), end=t(2026, 3, 9, 9)),
        ],
        steps=[[Create(event=EventSpec(key="later", title="Created later", zone=LA, start=t(2026, 3, 12, 16),
                                       end=t(2026, 3, 12, 17)))]],
    ),
    Scenario(
        name="zone-utc",
        about="a single in UTC; then deleted",
        events=[EventSpec(key="utc", title="UTC sync", zone="UTC", start=t(2026, 3, 4, 12), end=t(2026, 3, 4, 13))],
        steps=[[Delete(key="utc")]],
    ),
    Scenario(
        name="attendee-responses",
        about="one guest per response (accepted, declined, tentative, needs action), one optional; then answers change",
        events=[EventSpec(key="meeting", title="Design review", zone=LON, start=t(2026, 3, 11, 14),
                          end=t(2026, 3, 11, 15), attendees=GUESTS)],
        steps=[[Update(key="meeting", attendees=(
            Guest(email="ann@guests.example", name="Ann Accepts", response=Response.DECLINED),
            *GUESTS[1:3],
            Guest(email="ned@guests.example", name="Ned Needs-Action", response=Response.ACCEPTED),
        ))]],
    ),
    Scenario(
        name="private",
        about="a private (busy) event",
        events=[EventSpec(key="private", title="Doctor", zone=LON, start=t(2026, 3, 12, 9), end=t(2026, 3, 12, 10),
                          visibility=Visibility.PRIVATE)],
    ),
    Scenario(
        name="free-busy",
        about="a free event and a busy one; then the free one becomes busy",
        events=[
            EventSpec(key="free", title="Optional reading", zone=NY, start=t(2026, 3, 13, 13),
                      end=t(2026, 3, 13, 14), show_as=ShowAs.FREE),
            EventSpec(key="busy", title="Deep work", zone=NY, start=t(2026, 3, 13, 9), end=t(2026, 3, 13, 12),
                      show_as=ShowAs.BUSY),
        ],
        steps=[[Update(key="free", show_as=ShowAs.BUSY)]],
    ),
    Scenario(
        name="online-meeting",
        about="an online meeting with a join URL; then a new URL",
        events=[EventSpec(key="online", title="Remote retro", zone=LA, start=t(2026, 3, 16, 10),
                          end=t(2026, 3, 16, 11), meeting_url="https://meet.example.com/abc-defg-hij")],
        steps=[[Update(key="online", meeting_url="https://meet.example.com/xyz-uvwx-rst")]],
    ),
    Scenario(
        name="unicode-long-text",
        about="unicode title and location, a 200-line description",
        events=[EventSpec(key="text", title="Réunion 会议 встреча 🎉 — ñandú", zone=SH, start=t(2026, 3, 18, 15),
                          end=t(2026, 3, 18, 16), location="Salle Ω, 東京", description=LONG_TEXT)],
        steps=[[Update(key="text", description=LONG_TEXT + "\nAddendum: ✓ 完成")]],
    ),
    Scenario(
        name="zero-duration",
        about="an event that ends when it starts",
        events=[EventSpec(key="zero", title="Deadline", zone=LON, start=t(2026, 3, 5, 15), end=t(2026, 3, 5, 15))],
    ),
    Scenario(
        name="tentative-status",
        about="an event whose status is tentative",
        events=[EventSpec(key="maybe", title="Maybe lunch", zone=LON, start=t(2026, 3, 19, 12),
                          end=t(2026, 3, 19, 13), status=Status.TENTATIVE)],
    ),
)  # fmt: skip

BY_NAME = {s.name: s for s in SCENARIOS}

__all__ = ["BY_NAME", "NOW", "SCENARIOS", "WINDOW_FUTURE", "WINDOW_PAST"]
