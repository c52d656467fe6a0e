"""Decode + normalize one 2,500-event Google events.list page, as a ratio to ``json.loads`` of it,
and the memory each converted Event holds.

    python bench/bench_google.py [--events 2500] [--rounds 15]

The page is a work calendar's (``_common``): attendee lists of 0–15 drawn from 400 colleagues with
varied answers, weekly series with moved exceptions and cancelled stubs, HTML descriptions, all-day
events. Prints the median time of each side of interleaved pairs and the median ratio (goal ≤ 1.0×),
gcal_sync's model parsing of the same page when it is installed (the ``bench`` extra), and the deep
size per held Event (goal ≤ 3,000 B).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from typing import Any

from _common import RESPONSES, alone, deep_size, html_body, paired, people, person_name, rng

from calbridge.model import Upsert
from calbridge_providers.google._convert import clear_caches, decode_page

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Europe/Zurich", "America/Los_Angeles", "UTC"]


def _attendees(r: random.Random, organizer: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in people(r):
        a: dict[str, Any] = {"email": f"person{k}@example.com", "responseStatus": r.choice(RESPONSES)}
        if k % 3:
            a["displayName"] = person_name(k)
        if k == organizer:
            a.update(organizer=True, responseStatus="accepted")
        if k == 0:
            a["self"] = True
        if r.random() < 0.1:
            a["optional"] = True
        out.append(a)
    if out and r.random() < 0.05:
        out.append({"email": "room-4-401@resource.calendar.google.com", "displayName": "Room 401", "resource": True,
                    "responseStatus": "accepted"})  # fmt: skip
    return out


def make_event(i: int, r: random.Random | None = None) -> dict[str, Any]:
    """One events resource with the API reference's fields; every 10th a weekly series, every 10th + 1
    a moved exception of the one before, every 50th + 2 a cancelled stub, every 25th all-day."""
    r = r or rng(i)
    zone = ZONES[i % len(ZONES)]
    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
    end = start + dt.timedelta(minutes=30 + 15 * (i % 4))
    organizer = r.randrange(40)
    eid = f"7cbh8rpc10lrc0ckih9t{i:06d}"
    offset = dt.timezone(dt.timedelta(hours=2))
    if i % 50 == 2:  # a cancelled occurrence: the stub carries the slot only
        series = f"7cbh8rpc10lrc0ckih9t{i - 2:06d}"
        slot = start - dt.timedelta(hours=14)
        return {"kind": "calendar#event", "etag": f'"34215873102{i:05d}"', "id": f"{series}_{slot:%Y%m%dT%H%M%SZ}",
                "status": "cancelled", "recurringEventId": series,
                "originalStartTime": {"dateTime": slot.astimezone(offset).isoformat(), "timeZone": zone}}  # fmt: skip
    ev: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"34215873102{i:05d}"',
        "id": eid,
        "status": "confirmed" if i % 17 else "tentative",
        "htmlLink": f"https://www.google.com/calendar/event?eid=N2NiaDhycGMxMGxyYzBja2loOXRh{i:06d}",
        "created": "2025-04-30T10:00:00.000Z",
        "updated": f"2025-05-01T08:{i % 60:02d}:11.144Z",
        "summary": f"Planning meeting {i}",
        "description": html_body(i) if i % 3 else "Agenda: roadmap review, hiring, Q3 budget.",
        "location": f"Building 4, Room {400 + i % 30}",
        "creator": {"email": f"person{organizer}@example.com"},
        "organizer": {"email": f"person{organizer}@example.com", "displayName": person_name(organizer),
                      **({"self": True} if organizer == 0 else {})},
        "start": {"dateTime": start.astimezone(offset).isoformat(), "timeZone": zone},
        "end": {"dateTime": end.astimezone(offset).isoformat(), "timeZone": zone},
        "iCalUID": f"{eid}@google.com",
        "sequence": i % 3,
        "attendees": _attendees(r, organizer),
        "reminders": {"useDefault": True},
        "eventType": "default",
    }  # fmt: skip
    if i % 2:
        ev["hangoutLink"] = "https://meet.google.com/abc-defg-hij"
        ev["conferenceData"] = {
            "entryPoints": [
                {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij",
                 "label": "meet.google.com/abc-defg-hij"},
                {"entryPointType": "phone", "uri": "tel:+1-555-0100", "label": "+1 555-0100", "pin": "123456789"},
            ],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": "abc-defg-hij",
        }  # fmt: skip
    if not ev["attendees"]:
        del ev["attendees"]
    if i % 10 == 0:
        ev["recurrence"] = ["RRULE:FREQ=WEEKLY;BYDAY=TU,MO;UNTIL=20270101T000000Z"]
    elif i % 10 == 1:  # a moved occurrence of the series before
        series = f"7cbh8rpc10lrc0ckih9t{i - 1:06d}"
        slot = start - dt.timedelta(hours=7)
        ev["id"] = f"{series}_{slot:%Y%m%dT%H%M%SZ}"
        ev["recurringEventId"] = series
        ev["originalStartTime"] = {"dateTime": slot.astimezone(offset).isoformat(), "timeZone": zone}
        ev["iCalUID"] = f"{series}@google.com"
    if i % 25 == 0:
        day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 300)
        ev["start"] = {"date": day.isoformat()}
        ev["end"] = {"date": (day + dt.timedelta(days=1)).isoformat()}
        ev.pop("recurrence", None)
    return ev


def make_page(n: int, seed: int = 11) -> bytes:
    page = {
        "kind": "calendar#events", "etag": '"p32ofplf5q4ugg0g"', "summary": "alice@example.com",
        "updated": "2026-05-01T09:00:00.123Z", "timeZone": "Europe/Zurich", "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}], "nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA",
        "items": [make_event(i, r) for r in [rng(seed)] for i in range(n)],
    }  # fmt: skip
    return json.dumps(page).encode()


def measure(events: int = 2500, rounds: int = 15, peers: bool = True) -> dict[str, Any]:
    """The figures: json.loads and decode+normalize times, their ratio, the peer's, bytes per Event."""
    body = make_page(events)

    earlier = make_page(events, seed=12)  # the same colleagues in other lists, with other answers

    def ours() -> object:
        return decode_page(body, provider="google", account="bench", calendar_id="primary")

    def steady() -> None:  # a page of a sync after its first: the people of one earlier page seen
        clear_caches()
        decode_page(earlier, provider="google", account="bench", calendar_id="primary")

    got = decode_page(body, provider="google", account="bench", calendar_id="primary")
    assert len(got.changes) == events and not got.quarantined, got.quarantined[:1]
    held = [c.event for c in got.changes if isinstance(c, Upsert)]
    out: dict[str, Any] = {"events": events, "mb": len(body) / 1e6, "bytes_per_event": deep_size(held) / len(held),
                           "bytes_alone": alone(held)}
    out["json"], out["ours"], out["ratio"] = paired(lambda: json.loads(body), ours, rounds, setup=steady)
    out["cold_ratio"] = paired(lambda: json.loads(body), ours, rounds, setup=clear_caches)[2]  # a first page
    out["peer"] = None
    if peers:
        try:
            from gcal_sync.model import Event as GcalEvent
        except ImportError:
            return out

        def gcal() -> object:
            return [GcalEvent.model_validate(item) for item in json.loads(body)["items"]]

        out["peer"] = paired(lambda: json.loads(body), gcal, max(3, rounds // 3))[2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    m = measure(args.events, args.rounds)
    print(f"page: {m['events']} events, {m['mb']:.2f} MB (medians of interleaved pairs)")
    print(f"json.loads                      {m['json'] * 1e3:8.1f} ms   1.00x")
    print(f"calbridge decode+normalize      {m['ours'] * 1e3:8.1f} ms   {m['ratio']:.2f}x   (goal <= 1.0x; "
          f"a first page, no one seen yet: {m['cold_ratio']:.2f}x)")
    if m["peer"] is None:
        print("gcal_sync                       not installed (pip install 'calbridge[bench]')")
    else:
        print(f"gcal_sync json.loads+model                  {m['peer']:.2f}x")
    print(f"memory per held Event           {m['bytes_per_event']:8,.0f} B   (goal <= 3,000 B)",
          f"({m['bytes_alone']:,.0f} B counted alone)")


if __name__ == "__main__":
    main()
