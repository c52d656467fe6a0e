"""Decode + normalize a Graph calendarView delta page (bytes in → Events out): events/s and the
ratio to ``json.loads`` of the same bytes (target ≤ 1.0×).

    python bench/bench_graph.py [--events 1000] [--repeat 15]

What is timed is the provider's own path: ``_wire.EVENTS.decode`` (typed msgspec decode of the body)
then ``_changes.changes_from`` (normalization, quarantine), exactly as ``GraphProvider.sync`` runs
them between two requests. The page follows the seed's shape with the fields a real delta page
carries (full events, Windows ``originalStartTimeZone``, UTC ``start``/``end`` as
``Prefer: outlook.timezone="UTC"`` asks, text bodies, attendees, locations); a second page of
skeletal occurrences is hydrated from their master. msgraph-sdk's own model parsing of the same page
is measured when it is importable (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from calbridge.model import Event
from calbridge_providers.graph._changes import changes_from, master_ids
from calbridge_providers.graph._convert import convert_event
from calbridge_providers.graph._wire import EVENTS, decode_event

ZONES = ("Pacific Standard Time", "W. Europe Standard Time", "Tokyo Standard Time", "India Standard Time", "UTC")


def make_event(i: int) -> dict[str, Any]:
    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
    end = start + dt.timedelta(minutes=30 + 15 * (i % 4))
    zone = ZONES[i % len(ZONES)]
    people = [
        {"type": ("required", "optional", "resource")[k % 3],
         "status": {"response": ("accepted", "tentativelyAccepted", "none")[k % 3], "time": "2026-02-01T10:00:00Z"},
         "emailAddress": {"name": f"Person {k}", "address": f"person{k}@contoso.example"}}
        for k in range(i % 5)
    ]  # fmt: skip
    return {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": f'W/"EZ9r3czxY0m2jz8c45czkwAAFXcv{i:06d}=="',
        "id": f"AAMkADNVxRAAA{i:08d}AAA=",
        "createdDateTime": "2026-02-01T10:00:00.1234567Z",
        "lastModifiedDateTime": "2026-02-02T11:30:00.7654321Z",
        "changeKey": f"EZ9r3czxY0m2jz8c45czkwAAFXcv{i:06d}==",
        "categories": [],
        "transactionId": None,
        "originalStartTimeZone": zone,
        "originalEndTimeZone": zone,
        "iCalUId": f"040000008200E00074C5B7101A82E00800000000{i:016d}",
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "hasAttachments": False,
        "subject": f"Meeting number {i} about the quarterly plan",
        "bodyPreview": "Agenda: review, planning, open questions.",
        "importance": "normal",
        "sensitivity": ("normal", "private")[i % 2],
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": i % 3 == 0,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": ("busy", "free", "tentative")[i % 3],
        "type": "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid=AAMkADNVxRAAA{i:08d}AAA%3D&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": i % 2 == 0,
        "onlineMeetingProvider": "teamsForBusiness",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "text", "content": "Agenda:\n- review\n- planning\n- open questions\n" * 3},
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "location": {"displayName": f"Room {i % 40}", "locationType": "default", "uniqueId": f"Room {i % 40}",
                     "uniqueIdType": "private"},
        "locations": [{"displayName": f"Room {i % 40}", "locationType": "default"}],
        "recurrence": None,
        "attendees": people,
        "organizer": {"emailAddress": {"name": "Samantha Booth", "address": "samanthab@contoso.example"}},
        "onlineMeeting": {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/{i}"} if i % 2 == 0 else None,
    }  # fmt: skip


def make_page(n: int) -> bytes:
    value = [make_event(i) for i in range(n)]
    return json.dumps(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
            "value": value,
        }
    ).encode()


def paired(base: Callable[[], object], fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(min base time, min fn time, median of per-pair fn/base ratios), timed interleaved so that a
    noisy machine slows both sides of each pair alike."""
    bases, fns, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        bases.append(t1 - t0)
        fns.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return min(bases), min(fns), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    page = make_page(args.events)
    n = args.events

    def sync_page(body: bytes, masters: dict[str, Event | None]) -> list[Any]:
        decoded = EVENTS.decode(body)
        assert all(m in masters for m in master_ids(decoded))
        changes, quarantined = changes_from(decoded, account="acc", calendar_id="primary", masters=masters, errors={})
        assert len(changes) == n and not quarantined
        return changes

    def normalize() -> list[Any]:
        return sync_page(page, {})

    weekly = {"pattern": {"type": "weekly", "daysOfWeek": ["monday"]}, "range": {"type": "noEnd"}}
    master_body = json.dumps({**make_event(0), "type": "seriesMaster", "recurrence": weekly}).encode()
    master = convert_event(decode_event(master_body), account="acc", calendar_id="primary")
    skeletal = json.dumps({"value": [{"id": f"occ{i}", "type": "occurrence", "seriesMasterId": master.id,
                                      "start": {"dateTime": "2026-03-02T16:00:00.0000000", "timeZone": "UTC"},
                                      "end": {"dateTime": "2026-03-02T16:30:00.0000000", "timeZone": "UTC"}}
                                     for i in range(n)],
                           "@odata.deltaLink": "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=x"}
                          ).encode()  # fmt: skip

    def hydrate_page() -> list[Any]:
        return sync_page(skeletal, {master.id: master})

    normalize()  # warm the zone caches
    t_json, t_norm, ratio = paired(lambda: json.loads(page), normalize, args.repeat)
    _, t_hyd, ratio_sk = paired(lambda: json.loads(skeletal), hydrate_page, args.repeat)
    size = len(page) / n
    print(f"graph delta page: {n} full events, {size / 1024:.1f} KiB/event, {len(page) / 1e6:.2f} MB "
          "(best times; ratios are medians of interleaved pairs)")  # fmt: skip
    print(f"  json.loads                 {n / t_json:10.0f} ev/s   {len(page) / t_json / 1e6:6.1f} MB/s   1.00x")
    print(f"  calbridge decode+normalize {n / t_norm:10.0f} ev/s   {len(page) / t_norm / 1e6:6.1f} MB/s   "
          f"{ratio:.2f}x json.loads   (target <= 1.0x)")  # fmt: skip
    print(f"  skeletal occurrences       {n / t_hyd:10.0f} ev/s   (decode + hydrate from the master; "
          f"{ratio_sk:.2f}x json.loads of the skeletal page)")  # fmt: skip
    try:
        from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
        from msgraph.generated.models.event_collection_response import EventCollectionResponse
    except ImportError:
        print("  msgraph-sdk                 not installed (pip install 'calbridge[bench]')")
        return

    def kiota() -> object:
        node = JsonParseNodeFactory().get_root_parse_node("application/json", page)
        return node.get_object_value(EventCollectionResponse)

    _, t_sdk, ratio_sdk = paired(lambda: json.loads(page), kiota, max(3, args.repeat // 5))
    print(f"  msgraph-sdk (Kiota) parse  {n / t_sdk:10.0f} ev/s   {ratio_sdk:.1f}x json.loads")


if __name__ == "__main__":
    main()
