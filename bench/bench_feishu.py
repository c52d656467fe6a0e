"""Decode + normalize a Feishu events page (bytes in → changes out): events/s and the ratio to
``json.loads`` of the same bytes (goal ≤ 1.0×), and the memory each converted Event holds.

Run: ``python bench/bench_feishu.py [--events 1000] [--repeat 15]``. What is timed is the provider's
own path for one 200 response: ``_client.decode_page`` (the ``{code, msg, data}`` envelope and its
``data`` decoded into msgspec Structs in one pass by the toolkit's ``PageDecoder``, then ``code``
checked) and ``_convert.changes_from`` (normalization, quarantine), as ``FeishuProvider.sync`` runs
them, with the people caches cold. The page follows the shapes of the seeds (singles, series
masters, exceptions, all-day, cancelled stubs; HTML-ish descriptions; organizers drawn from many
colleagues; the list carries no attendees). lark-oapi's own parse of the same response into its
``ListCalendarEventResponse`` (its ``data.items`` filled: a parse that does the work) is measured
too when it is installed (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _common import alone, deep_size, html_body, paired, person_name, rng

from calbridge.model import Upsert
from calbridge.toolkit import Response
from calbridge_providers.feishu._client import decode_page
from calbridge_providers.feishu._convert import changes_from, clear_caches
from calbridge_providers.feishu._wire import EVENTS

ZONES = ("Asia/Shanghai", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC")


def make_page(n: int, seed: int = 11) -> bytes:
    items: list[dict[str, Any]] = []
    base = 1_780_000_000
    r = rng(seed)
    for i in range(n):
        start = base + i * 3600
        tz = ZONES[i % len(ZONES)]
        item: dict[str, Any] = {
            "event_id": f"{i:08x}-7edf-4678-bc9d-1b77383ef08e_0",
            "organizer_calendar_id": "feishu.cn_xxx@group.calendar.feishu.cn",
            "summary": f"Weekly sync {i}",
            "description": html_body(i) if i % 3 else "Agenda: status, risks, next steps.",
            "start_time": {"timestamp": str(start), "timezone": tz},
            "end_time": {"timestamp": str(start + 1800), "timezone": tz},
            "vchat": {"vc_type": "vc", "icon_type": "vc", "meeting_url": f"https://vc.feishu.cn/j/{152568231 + i}"},
            "visibility": "default",
            "attendee_ability": "can_see_others",
            "free_busy_status": "busy" if i % 3 else "free",
            "location": {"name": f"Room {i % 30}", "address": "Building A", "latitude": 1.1, "longitude": 2.2},
            "color": -1,
            "reminders": [{"minutes": 5}],
            "recurrence": "",
            "status": "confirmed",
            "is_exception": False,
            "create_time": str(base - 86400),
            "event_organizer": {"user_id": f"ou_{(k := r.randrange(400)):06x}", "display_name": person_name(k)},
            "app_link": f"https://applink.feishu.cn/client/calendar/event/detail?key={i}&originalTime=0",
            "schemas": [{"ui_name": "ForwardIcon", "ui_status": "hide", "app_link": ""}],
        }
        if i % 5 == 1:
            item["recurrence"] = "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE"
        elif i % 5 == 2:
            item["event_id"] = f"{i - 1:08x}-7edf-4678-bc9d-1b77383ef08e_{start}"
            item["is_exception"] = True
            item["recurring_event_id"] = f"{i - 1:08x}-7edf-4678-bc9d-1b77383ef08e_0"
        elif i % 5 == 3:
            day = time.strftime("%Y-%m-%d", time.gmtime(start))
            item["start_time"] = {"date": day, "timestamp": str(start - start % 86400), "timezone": "UTC"}
            item["end_time"] = {"date": day, "timestamp": str(start - start % 86400), "timezone": "UTC"}
        elif i % 50 == 4:
            item = {"event_id": item["event_id"], "status": "cancelled"}
        items.append(item)
    body = {
        "code": 0,
        "msg": "success",
        "data": {"has_more": False, "page_token": "", "sync_token": "s", "items": items},
    }
    return json.dumps(body, ensure_ascii=False).encode()


def normalize(raw: bytes) -> list[Any]:
    page = decode_page(EVENTS, Response(status=200, body=raw), "feishu event list")
    changes, quarantined = changes_from(page, account="bench", calendar_id="primary")
    assert not quarantined
    return changes


def measure(events: int = 1000, repeat: int = 15, peers: bool = True) -> dict[str, Any]:
    """The figures: json.loads and decode+normalize times, their ratio, the peer's, bytes per Event."""
    raw = make_page(events)
    changes = normalize(raw)
    assert len(changes) == events
    held = [c.event for c in changes if isinstance(c, Upsert)]
    out: dict[str, Any] = {"events": events, "kib": len(raw) / 1024, "bytes_per_event": deep_size(held) / len(held),
                           "bytes_alone": alone(held)}

    earlier = make_page(events, seed=12)  # the same colleagues as organizers, in another order

    def steady() -> None:  # a page of a sync after its first: one earlier page's organizers seen
        clear_caches()
        normalize(earlier)

    out["json"], out["ours"], out["ratio"] = paired(lambda: json.loads(raw), lambda: normalize(raw), repeat,
                                                    setup=steady)  # fmt: skip
    # a first page: no organizer seen yet (zones and rules stay warm, as in a sync)
    out["cold_ratio"] = paired(lambda: json.loads(raw), lambda: normalize(raw), repeat, setup=clear_caches)[2]
    out["peer"] = None
    if peers:
        try:
            import lark_oapi as lark
            from lark_oapi.api.calendar.v4 import ListCalendarEventResponse
        except ImportError:
            return out

        def lark_parse() -> object:
            parsed = lark.JSON.unmarshal(raw.decode(), ListCalendarEventResponse)
            assert len(parsed.data.items) == events  # the items were parsed, not skipped
            return parsed

        out["peer"] = paired(lambda: json.loads(raw), lark_parse, max(3, repeat // 3))[2]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    m = measure(args.events, args.repeat)
    n = m["events"]
    print(f"page: {n} events, {m['kib']:.0f} KiB (medians of interleaved pairs)")
    print(f"json.loads            : {n / m['json']:>9,.0f} ev/s  1.00x")
    print(f"calbridge feishu      : {n / m['ours']:>9,.0f} ev/s  {m['ratio']:.2f}x json.loads (decode + normalize; "
          f"a first page, no one seen yet: {m['cold_ratio']:.2f}x)")
    if m["peer"] is None:
        print("lark-oapi             : not installed (pip install 'calbridge[bench]')")
    else:
        print(f"lark-oapi models      : {m['peer']:.2f}x json.loads")
    print(f"memory per held Event : {m['bytes_per_event']:>9,.0f} B  (goal <= 3,000 B)",
          f"({m['bytes_alone']:,.0f} B counted alone)")


if __name__ == "__main__":
    main()
