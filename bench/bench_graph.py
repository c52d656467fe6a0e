"""Decode + normalize a Graph calendarView delta page (bytes in → Events out): events/s and the
ratio to ``json.loads`` of the same bytes (target ≤ 1.0×).

    python bench/bench_graph.py [--events 1000] [--repeat 15]

What is timed is the provider's own path: ``_wire.EVENTS.decode`` (typed msgspec decode of the body)
then ``_changes.changes_from`` (normalization, quarantine), exactly as ``GraphProvider.sync`` runs
them between two requests. The page follows the seed's shape with the fields a real delta page
carries (full events, Windows ``originalStartTimeZone``, UTC ``start``/``end`` as
``Prefer: outlook.timezone="UTC"`` asks, HTML and text bodies, attendee lists of 0–15 drawn from 400
colleagues with varied answers, series masters, exceptions, ``@removed`` entries), converted with the
people caches cold, plus the memory each converted Event holds (goal ≤ 3,000 B); a second page of
skeletal occurrences is hydrated from their master. msgraph-sdk's own model parsing of the same page
is measured when it is importable (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from typing import Any

from _common import alone, deep_size, html_body, paired, people, person_name, rng

from calbridge.model import Event, Upsert
from calbridge_providers.graph._changes import changes_from, master_ids
from calbridge_providers.graph._convert import clear_caches, convert_event
from calbridge_providers.graph._wire import EVENTS, decode_event

ZONES = ("Pacific Standard Time", "W. Europe Standard Time", "Tokyo Standard Time", "India Standard Time", "UTC")


def make_event(i: int, r: random.Random | None = None) -> dict[str, Any]:
    """One delta entry: every 10th a weekly series master, every 10th + 1 an exception of it, every
    50th + 2 an ``@removed`` entry; the rest singles."""
    r = r or rng(i)
    if i % 50 == 2:
        removed = {"reason": "deleted"}
        return {"@odata.type": "#microsoft.graph.event", "id": f"AAMkADNVxRAAA{i:08d}AAA=", "@removed": removed}
    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
    end = start + dt.timedelta(minutes=30 + 15 * (i % 4))
    zone = ZONES[i % len(ZONES)]
    answers = ("accepted", "tentativelyAccepted", "declined", "none", "notResponded")
    invited = [
        {"type": "optional" if r.random() < 0.1 else "required",
         "status": {"response": r.choice(answers), "time": "2026-02-01T10:00:00Z"},
         "emailAddress": {"name": person_name(k), "address": f"person{k}@contoso.example"}}
        for k in people(r)
    ]  # fmt: skip
    kind = ("seriesMaster" if i % 10 == 0 else "exception" if i % 10 == 1 else "singleInstance")
    html = i % 3 != 0
    ev = {
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
        "seriesMasterId": f"AAMkADNVxRAAA{i - 1:08d}AAA=" if kind == "exception" else None,
        "showAs": ("busy", "free", "tentative")[i % 3],
        "type": kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid=AAMkADNVxRAAA{i:08d}AAA%3D&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": i % 2 == 0,
        "onlineMeetingProvider": "teamsForBusiness",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": ({"contentType": "html",
                  "content": f"<html><head><style>p{{margin:0}}</style></head><body>{html_body(i)}</body></html>"}
                 if html else {"contentType": "text", "content": "Agenda:\n- review\n- planning\n- open questions\n"}),
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
        "location": {"displayName": f"Room {i % 40}", "locationType": "default", "uniqueId": f"Room {i % 40}",
                     "uniqueIdType": "private"},
        "locations": [{"displayName": f"Room {i % 40}", "locationType": "default"}],
        "recurrence": None,
        "attendees": invited,
        "organizer": {"emailAddress": {"name": person_name(o := r.randrange(40)),
                                       "address": f"person{o}@contoso.example"}},
        "onlineMeeting": {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/{i}"} if i % 2 == 0 else None,
    }  # fmt: skip
    if kind == "seriesMaster":
        ev["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"],
                                        "firstDayOfWeek": "sunday"},
                            "range": {"type": "endDate", "startDate": f"{start:%Y-%m-%d}", "endDate": "2027-01-01"}}
        ev["start"] = {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}
    elif kind == "exception":
        ev["originalStart"] = (start - dt.timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ev


def make_page(n: int, seed: int = 11) -> bytes:
    r = rng(seed)
    value = [make_event(i, r) for i in range(n)]
    return json.dumps(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
            "value": value,
        }
    ).encode()


def measure(events: int = 1000, repeat: int = 15, peers: bool = True) -> dict[str, Any]:
    """The figures: json.loads and decode+normalize times, their ratio (cold caches), the skeletal
    page's ratio, the peer's, bytes per held Event."""
    page = make_page(events)
    n = events

    def sync_page(body: bytes, masters: dict[str, Event | None]) -> list[Any]:
        decoded = EVENTS.decode(body)
        assert all(m in masters for m in master_ids(decoded))
        changes, quarantined = changes_from(decoded, account="acc", calendar_id="primary", masters=masters, errors={})
        assert len(changes) == n and not quarantined, quarantined[:1]
        return changes

    # The exceptions' masters, as the provider holds them (from the mirror or one GET each) before it converts.
    series = [ev for ev in EVENTS.decode(page).items if ev.type == "seriesMaster"]
    page_masters: dict[str, Event | None] = {
        ev.id: convert_event(ev, account="acc", calendar_id="primary") for ev in series if ev.id
    }

    earlier = make_page(events, seed=12)  # the same colleagues in other lists, with other answers

    def normalize() -> list[Any]:
        return sync_page(page, page_masters)

    def steady() -> None:  # a page of a sync after its first: the people of one earlier page seen
        clear_caches()
        changes_from(EVENTS.decode(earlier), account="acc", calendar_id="primary", masters=page_masters, errors={})

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

    held = [c.event for c in normalize() if isinstance(c, Upsert)]
    out: dict[str, Any] = {"events": n, "mb": len(page) / 1e6, "bytes_per_event": deep_size(held) / len(held),
                           "bytes_alone": alone(held)}
    out["json"], out["ours"], out["ratio"] = paired(lambda: json.loads(page), normalize, repeat, setup=steady)
    out["cold_ratio"] = paired(lambda: json.loads(page), normalize, repeat, setup=clear_caches)[2]  # a first page
    out["skeletal_ratio"] = paired(lambda: json.loads(skeletal), hydrate_page, repeat)[2]
    out["peer"] = None
    if peers:
        try:
            from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
            from msgraph.generated.models.event_collection_response import EventCollectionResponse
        except ImportError:
            return out

        def kiota() -> object:
            node = JsonParseNodeFactory().get_root_parse_node("application/json", page)
            return node.get_object_value(EventCollectionResponse)

        out["peer"] = paired(lambda: json.loads(page), kiota, max(3, repeat // 5))[2]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    m = measure(args.events, args.repeat)
    n = m["events"]
    print(f"graph delta page: {n} entries, {m['mb']:.2f} MB (medians of interleaved pairs)")
    print(f"  json.loads                 {n / m['json']:10.0f} ev/s   1.00x")
    print(f"  calbridge decode+normalize {n / m['ours']:10.0f} ev/s   {m['ratio']:.2f}x json.loads   (goal <= 1.0x; "
          f"a first page, no one seen yet: {m['cold_ratio']:.2f}x)")
    print(f"  skeletal occurrences       (decode + hydrate from the master) {m['skeletal_ratio']:.2f}x json.loads")
    if m["peer"] is None:
        print("  msgraph-sdk                 not installed (pip install 'calbridge[bench]')")
    else:
        print(f"  msgraph-sdk (Kiota) parse  {m['peer']:.1f}x json.loads")
    print(f"  memory per held Event      {m['bytes_per_event']:10,.0f} B   (goal <= 3,000 B)",
          f"({m['bytes_alone']:,.0f} B counted alone)")


if __name__ == "__main__":
    main()
