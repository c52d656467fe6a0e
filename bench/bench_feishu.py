"""Decode + normalize a Feishu events page (bytes in → changes out): events/s and the ratio to
``json.loads`` of the same bytes (target ≤ 1.25×).

Run: ``python bench/bench_feishu.py [--events 1000] [--repeat 15]``. What is timed is the provider's
own path for one 200 response: ``_client.decode_page`` (the ``{code, msg, data}`` envelope and its
``data`` decoded into msgspec Structs in one pass by the toolkit's ``PageDecoder``, then ``code``
checked) and ``_convert.changes_from`` (normalization, quarantine), as ``FeishuProvider.sync`` runs
them. The
page follows the shapes of the seeds (list events, with singles, series masters, exceptions, all-day
and cancelled items). Ratios measured in one run are what to compare; the machine is noisy.
lark-oapi's own model parsing of the same page is measured too when it is installed
(``pip install lark-oapi``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from calbridge.toolkit import Response
from calbridge_providers.feishu._client import decode_page
from calbridge_providers.feishu._convert import changes_from
from calbridge_providers.feishu._wire import EVENTS

ZONES = ("Asia/Shanghai", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC")


def make_page(n: int) -> bytes:
    items: list[dict[str, Any]] = []
    base = 1_780_000_000
    for i in range(n):
        start = base + i * 3600
        tz = ZONES[i % len(ZONES)]
        item: dict[str, Any] = {
            "event_id": f"{i:08x}-7edf-4678-bc9d-1b77383ef08e_0",
            "organizer_calendar_id": "feishu.cn_xxx@group.calendar.feishu.cn",
            "summary": f"Weekly sync {i}",
            "description": "Agenda: status, risks, next steps. " * 3,
            "start_time": {"timestamp": str(start), "timezone": tz},
            "end_time": {"timestamp": str(start + 1800), "timezone": tz},
            "vchat": {"vc_type": "vc", "icon_type": "vc", "meeting_url": f"https://vc.feishu.cn/j/{152568231 + i}"},
            "visibility": "default",
            "attendee_ability": "can_see_others",
            "free_busy_status": "busy" if i % 3 else "free",
            "location": {"name": "Room 5", "address": "Building A", "latitude": 1.1, "longitude": 2.2},
            "color": -1,
            "reminders": [{"minutes": 5}],
            "recurrence": "",
            "status": "confirmed",
            "is_exception": False,
            "create_time": str(base - 86400),
            "event_organizer": {"user_id": "ou_xxx", "display_name": "Zhang San"},
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


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def normalize(raw: bytes) -> int:
    page = decode_page(EVENTS, Response(status=200, body=raw), "feishu event list")
    changes, quarantined = changes_from(page, account="bench", calendar_id="primary")
    assert not quarantined
    return len(changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    raw = make_page(args.events)
    assert normalize(raw) == args.events
    normalize(raw)  # warm caches (zones, recurrence) as a long-running sync would have them
    # Interleaved, so that load from other processes hits both sides of each ratio alike.
    pairs = [(best(lambda: json.loads(raw), 1), best(lambda: normalize(raw), 1)) for _ in range(args.repeat)]
    t_json = statistics.median(p[0] for p in pairs)
    t_norm = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[1] / p[0] for p in pairs)
    n = args.events
    print(f"page: {n} events, {len(raw) / 1024:.0f} KiB")
    print(f"json.loads            : {n / t_json:>9,.0f} ev/s  1.00x")
    print(f"calbridge feishu      : {n / t_norm:>9,.0f} ev/s  {ratio:.2f}x json.loads (decode + normalize)")
    try:
        import lark_oapi  # noqa: F401
        from lark_oapi.api.calendar.v4 import ListCalendarEventResponseBody
    except ImportError:
        print("lark-oapi             : not installed (pip install lark-oapi)")
        return
    import lark_oapi as lark

    def lark_parse() -> object:
        return lark.JSON.unmarshal(raw.decode(), ListCalendarEventResponseBody)

    t_lark = statistics.median(best(lark_parse, 1) / best(lambda: json.loads(raw), 1) for _ in range(args.repeat))
    print(f"lark-oapi models      : {n / (t_lark * t_json):>9,.0f} ev/s  {t_lark:.2f}x json.loads")


if __name__ == "__main__":
    main()
