"""calbridge.build's fast constructors give exactly what the attrs constructors give, and stay frozen."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from calbridge.build import new_event, new_upsert, when_at
from calbridge.model import Attendee, Event, Kind, Person, ShowAs, Status, Upsert, Visibility, When

PLUS2 = dt.timezone(dt.timedelta(hours=2))


def test_when_at_is_when() -> None:
    local = dt.datetime(2026, 3, 1, 9, 30, 15, 999, tzinfo=PLUS2)
    built = when_at(local, "Europe/Berlin")
    assert type(built) is When
    assert built == When(instant=local, timezone="Europe/Berlin")
    assert built.instant == dt.datetime(2026, 3, 1, 7, 30, 15, tzinfo=dt.UTC) and built.instant.tzinfo is dt.UTC
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.timezone = "UTC"  # type: ignore[misc]
    with pytest.raises(ValueError, match="naive"):
        when_at(dt.datetime(2026, 3, 1), None)


def test_new_event_is_event_field_for_field() -> None:
    start = When(instant=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC), timezone="UTC")
    end = When(instant=dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC), timezone="UTC")
    values = {
        a.name: f"v-{a.name}" for a in attrs.fields(Event) if a.type in ("str", "str | None")
    } | dict(
        kind=Kind.EXCEPTION, start=start, end=end, status=Status.TENTATIVE, original_start=start,
        recurrence=("RRULE:FREQ=DAILY",), organizer=Person(email="o@x"), attendees=(Attendee(email="a@x"),),
        attendees_omitted=True, show_as=ShowAs.FREE, visibility=Visibility.PRIVATE,
        created=dt.datetime(2026, 1, 1, 1, 2, 3, 456, tzinfo=PLUS2), updated=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )  # fmt: skip
    built = new_event(*(values[a.name] for a in attrs.fields(Event)))
    assert type(built) is Event
    assert built == Event(**values)
    assert attrs.asdict(built, recurse=False) == attrs.asdict(Event(**values), recurse=False)
    assert built.created == dt.datetime(2025, 12, 31, 23, 2, 3, tzinfo=dt.UTC)  # made UTC to the second
    assert hash(built) == hash(Event(**values))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.title = "changed"  # type: ignore[misc]
    upsert = new_upsert(built)
    assert type(upsert) is Upsert and upsert == Upsert(event=built) and upsert.created is None
    with pytest.raises(ValueError, match="ends before it starts"):
        new_event(*(values[a.name] if a.name != "end" else When(instant=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
                    for a in attrs.fields(Event)))  # fmt: skip
