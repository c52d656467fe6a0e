"""Decode + normalize one 2,500-event Google events.list page, as a ratio to ``json.loads`` of it.

    python bench/bench_google.py [--events 2500] [--rounds 15]

Prints the median time of each and the ratio (target ≤ 1.25×), and gcal_sync's model parsing of the
same page when gcal_sync is installed (the ``bench`` extra). Ratios measured in one run are what to
quote: the machine is noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from calbridge_providers.google._convert import decode_page

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Europe/Zurich", "America/Los_Angeles", "UTC"]


def make_event(i: int) -> dict[str, Any]:
    """One realistic events resource (shape of the API reference's examples and the seeds)."""
    zone = ZONES[i % len(ZONES)]
    start = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
    end = start + dt.timedelta(minutes=30 + 15 * (i % 4))
    ev: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"34215873102{i:05d}"',
        "id": f"7cbh8rpc10lrc0ckih9t{i:06d}",
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid=N2NiaDhycGMxMGxyYzBja2loOXRh{i:06d}",
        "created": "2025-04-30T10:00:00.000Z",
        "updated": "2025-05-01T08:55:11.144Z",
        "summary": f"Planning meeting {i}",
        "description": "Agenda: roadmap review, hiring, Q3 budget. Please read the doc beforehand.",
        "location": "Building 4, Room 401",
        "creator": {"email": "alice@example.com", "self": True},
        "organizer": {"email": "alice@example.com", "displayName": "Alice Example", "self": True},
        "start": {"dateTime": start.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(), "timeZone": zone},
        "end": {"dateTime": end.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(), "timeZone": zone},
        "iCalUID": f"7cbh8rpc10lrc0ckih9t{i:06d}@google.com",
        "sequence": i % 3,
        "attendees": [
            {"email": "alice@example.com", "displayName": "Alice Example", "organizer": True, "self": True,
             "responseStatus": "accepted"},
            {"email": "bob@example.com", "displayName": "Bob", "responseStatus": "needsAction"},
            {"email": "carol@example.com", "responseStatus": "tentative", "optional": True},
        ],
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
        "conferenceData": {
            "entryPoints": [
                {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij",
                 "label": "meet.google.com/abc-defg-hij"},
                {"entryPointType": "phone", "uri": "tel:+1-555-0100", "label": "+1 555-0100", "pin": "123456789"},
            ],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet",
                                   "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png"},
            "conferenceId": "abc-defg-hij",
        },
        "reminders": {"useDefault": True},
        "eventType": "default",
    }  # fmt: skip
    if i % 10 == 0:
        ev["recurrence"] = ["RRULE:FREQ=WEEKLY;BYDAY=TU,MO;UNTIL=20270101T000000Z"]
    if i % 25 == 0:
        day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 300)
        ev["start"] = {"date": day.isoformat()}
        ev["end"] = {"date": (day + dt.timedelta(days=1)).isoformat()}
        ev.pop("recurrence", None)
    return ev


def make_page(n: int) -> bytes:
    page = {
        "kind": "calendar#events", "etag": '"p32ofplf5q4ugg0g"', "summary": "alice@example.com",
        "updated": "2026-05-01T09:00:00.123Z", "timeZone": "Europe/Zurich", "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}], "nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA",
        "items": [make_event(i) for i in range(n)],
    }  # fmt: skip
    return json.dumps(page).encode()


def median_time(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    body = make_page(args.events)

    def ours() -> object:
        return decode_page(body, provider="google", account="bench", calendar_id="primary")

    got = decode_page(body, provider="google", account="bench", calendar_id="primary")
    assert len(got.changes) == args.events and not got.quarantined, got.quarantined[:1]
    # Interleaved, so that load from other processes hits both sides alike; the ratio is per pair.
    pairs = [(median_time(lambda: json.loads(body), 1), median_time(ours, 1)) for _ in range(args.rounds)]
    base = statistics.median(b for b, _ in pairs)
    mine = statistics.median(m for _, m in pairs)
    ratio = statistics.median(m / b for b, m in pairs)
    print(f"page: {args.events} events, {len(body) / 1e6:.2f} MB")
    print(f"json.loads                      {base * 1e3:8.1f} ms   1.00x")
    print(f"calbridge decode+normalize      {mine * 1e3:8.1f} ms   {ratio:.2f}x   (target <= 1.25x)")
    try:
        from gcal_sync.model import Event as GcalEvent
    except ImportError:
        return

    def gcal() -> object:
        return [GcalEvent.model_validate(item) for item in json.loads(body)["items"]]

    theirs = median_time(gcal, max(3, args.rounds // 3))
    print(f"gcal_sync json.loads+model      {theirs * 1e3:8.1f} ms   {theirs / base:.2f}x")


if __name__ == "__main__":
    main()
