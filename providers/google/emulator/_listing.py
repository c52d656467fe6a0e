"""events.list, events.instances and calendarList as pure functions of the state: query → (status, body).

Paging follows Google: ``nextPageToken`` on every page but the last, ``nextSyncToken`` only on the
last. Page tokens carry the listing's snapshot sequence and the sync token they continue, so a
stored mid-round cursor resumes the same query exactly.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from ._answers import Result, error
from ._expand import instances, occurrences, parse_rfc3339
from ._state import CalendarData, GoogleState, decode_token, encode_token

UTC = dt.UTC
MAX_RESULTS = 2500
# Google: "all other query parameters should be the same as for the initial synchronization";
# these are refused outright next to a syncToken.
FORBIDDEN_WITH_SYNC = ("timeMin", "timeMax", "updatedMin", "orderBy", "q", "iCalUID",
                       "privateExtendedProperty", "sharedExtendedProperty")  # fmt: skip


def _bool(q: Mapping[str, str], name: str, default: bool) -> bool:
    value = q.get(name)
    return default if value is None else value.lower() == "true"


def _max_results(q: Mapping[str, str], default: int = 250, cap: int = MAX_RESULTS) -> int | Result:
    try:
        n = int(q.get("maxResults", default))
    except ValueError:
        return error(400, "invalid", "Invalid value for maxResults", location="maxResults")
    if n < 1:
        return error(400, "invalid", "Invalid value for maxResults", location="maxResults")
    return min(n, cap)


def _instant(q: Mapping[str, str], name: str) -> dt.datetime | Result | None:
    if name not in q:
        return None
    try:
        return parse_rfc3339(q[name])
    except ValueError:
        return error(400, "badRequest", f"Bad Request: {name} needs an RFC 3339 timestamp with offset", location=name)


def _query_hash(q: Mapping[str, str]) -> str:
    stable = sorted((k, v) for k, v in q.items() if k not in ("pageToken", "syncToken", "maxResults"))
    return hashlib.sha1(repr(stable).encode()).hexdigest()[:10]


def _envelope(cal: CalendarData, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "calendar#events", "etag": f'"{cal.seq}"', "summary": cal.summary, "description": "",
        "updated": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "timeZone": cal.time_zone,
        "accessRole": cal.access_role, "defaultReminders": [], "items": items,
    }  # fmt: skip


def _end_instant(when: Mapping[str, Any]) -> dt.datetime:
    if "date" in when:
        d = dt.date.fromisoformat(when["date"])
        return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
    return parse_rfc3339(when["dateTime"])


def _in_range(cal: CalendarData, event: Mapping[str, Any], lo: dt.datetime | None, hi: dt.datetime | None) -> bool:
    """events.list semantics: timeMin is an exclusive bound on the end, timeMax on the start."""
    if "start" not in event or "end" not in event:
        return True  # a cancelled stub: no times to filter on
    if event.get("recurrence"):
        if hi is not None and _end_instant(event["start"]) >= hi:
            return False
        if lo is None:
            return True
        return any(_end_instant(o["end"]) > lo for o in occurrences(event, cal.time_zone, until=None))
    if lo is not None and _end_instant(event["end"]) <= lo:
        return False
    return not (hi is not None and _end_instant(event["start"]) >= hi)


def list_events(state: GoogleState, calendar_id: str, q: Mapping[str, str]) -> Result:
    with state.lock:
        cal = state.calendar(calendar_id)
        if cal is None:
            return error(404, "notFound", "Not Found")
        size = _max_results(q, cap=state.max_results or MAX_RESULTS)
        if isinstance(size, tuple):
            return size
        if _bool(q, "singleEvents", False):
            return error(400, "invalid", "singleEvents=true is not supported by the calbridge emulator")
        sync = q.get("syncToken")
        page = decode_token(q["pageToken"]) if "pageToken" in q else {}
        if page is None or (page and (page.get("sync") != sync or page.get("q") != _query_hash(q))):
            return error(400, "invalid", "Invalid page token (it belongs to another query)", location="pageToken")
        if page and page.get("epoch", cal.epoch) != cal.epoch:  # a round in progress when tokens died
            return error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.",
                         domain="calendar", location="pageToken")  # fmt: skip
        if sync is not None:
            for name in FORBIDDEN_WITH_SYNC:
                if name in q:
                    return error(400, "invalid", f"Invalid parameter {name} with syncToken", location=name)
            if not _bool(q, "showDeleted", True):
                return error(400, "invalid", "showDeleted=false is not allowed with syncToken", location="showDeleted")
            tok = decode_token(sync)
            if tok is None or tok.get("cal") != cal.id or tok.get("epoch") != cal.epoch:
                return error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.",
                             domain="calendar", location="syncToken")  # fmt: skip
            return _incremental(cal, q, int(tok["seq"]), page, size)
        return _full(cal, q, page, size)


def _finish(cal: CalendarData, q: Mapping[str, str], items: list[dict[str, Any]], more: bool, next_page: dict[str, Any],
            upto: int) -> Result:  # fmt: skip
    body = _envelope(cal, items)
    if more:
        next_page.update(sync=q.get("syncToken"), q=_query_hash(q), upto=upto, epoch=cal.epoch)
        body["nextPageToken"] = encode_token(next_page)
    else:
        body["nextSyncToken"] = encode_token({"cal": cal.id, "seq": upto, "epoch": cal.epoch})
    return 200, body


def _incremental(cal: CalendarData, q: Mapping[str, str], since: int, page: Mapping[str, Any], size: int) -> Result:
    upto = int(page.get("upto", cal.seq))
    after = int(page.get("after", since))
    items: list[dict[str, Any]] = []
    i = bisect.bisect_right(cal.log, (after, "\uffff"))
    while i < len(cal.log) and len(items) < size:
        seq, eid = cal.log[i]
        i += 1
        if seq > upto:
            break
        if cal.stamps.get(eid) == seq:  # the latest change of that event, not a superseded one
            items.append(cal.events[eid])
            after = seq
    more = False
    while i < len(cal.log) and cal.log[i][0] <= upto:
        if cal.stamps.get(cal.log[i][1]) == cal.log[i][0]:
            more = True
            break
        i += 1
    return _finish(cal, q, items, more, {"after": after}, upto)


def _full(cal: CalendarData, q: Mapping[str, str], page: Mapping[str, Any], size: int) -> Result:
    lo = _instant(q, "timeMin")
    hi = _instant(q, "timeMax")
    if isinstance(lo, tuple):
        return lo
    if isinstance(hi, tuple):
        return hi
    if lo is not None and hi is not None and hi <= lo:
        return error(400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar", location="timeMax")
    show_deleted = _bool(q, "showDeleted", False)
    upto = int(page.get("upto", cal.seq))
    if cal.order[0] != cal.seq:
        cal.order = (cal.seq, sorted(cal.events))
    ids = cal.order[1]
    i = bisect.bisect_right(ids, page["after"]) if "after" in page else 0
    items: list[dict[str, Any]] = []
    last = None
    while i < len(ids) and len(items) < size:
        eid = ids[i]
        i += 1
        event = cal.events[eid]
        last = eid
        if event.get("status") == "cancelled" and not show_deleted and "recurringEventId" not in event:
            continue
        if (lo is not None or hi is not None) and not _in_range(cal, event, lo, hi):
            continue
        items.append(event)
    return _finish(cal, q, items, i < len(ids), {"after": last}, upto)


def list_instances(state: GoogleState, calendar_id: str, event_id: str, q: Mapping[str, str]) -> Result:
    with state.lock:
        cal = state.calendar(calendar_id)
        if cal is None:
            return error(404, "notFound", "Not Found")
        master = cal.events.get(event_id)
        if master is None:
            return error(404, "notFound", "Not Found")
        if event_id in cal.deleted:
            return error(410, "deleted", "Resource has been deleted")
        if not master.get("recurrence"):
            return error(400, "eventNotRecurring", "The event is not recurring.", domain="calendar")
        size = _max_results(q)
        lo = _instant(q, "timeMin")
        hi = _instant(q, "timeMax")
        for bad in (size, lo, hi):
            if isinstance(bad, tuple):
                return bad
        assert isinstance(size, int) and not isinstance(lo, tuple) and not isinstance(hi, tuple)
        page = decode_token(q["pageToken"]) if "pageToken" in q else {}
        if page is None:
            return error(400, "invalid", "Invalid page token", location="pageToken")
        found = instances(master, state.exceptions_of(cal, event_id), cal.time_zone, time_min=lo, time_max=hi,
                          show_deleted=_bool(q, "showDeleted", False))  # fmt: skip
        if "originalStart" in q:
            want = parse_rfc3339(q["originalStart"])
            found = [p for p in found if "dateTime" in p["originalStartTime"]
                     and parse_rfc3339(p["originalStartTime"]["dateTime"]) == want]  # fmt: skip
        offset = int(page.get("o", 0))
        body = _envelope(cal, found[offset : offset + size])
        if offset + size < len(found):
            body["nextPageToken"] = encode_token({"o": offset + size})
        return 200, body


def list_calendars(state: GoogleState, q: Mapping[str, str]) -> Result:
    with state.lock:
        size = _max_results(q, default=100, cap=250)
        if isinstance(size, tuple):
            return size
        page = decode_token(q["pageToken"]) if "pageToken" in q else {}
        if page is None:
            return error(400, "invalid", "Invalid page token", location="pageToken")
        offset = int(page.get("o", 0))
        cals = list(state.calendars.values())
        items = [
            {"kind": "calendar#calendarListEntry", "etag": f'"{c.seq}"', "id": c.id, "summary": c.summary,
             "timeZone": c.time_zone, "accessRole": c.access_role, **({"primary": True} if c.primary else {})}
            for c in cals[offset : offset + size]
        ]  # fmt: skip
        body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": '"1"', "items": items}
        if offset + size < len(cals):
            body["nextPageToken"] = encode_token({"o": offset + size})
        else:
            body["nextSyncToken"] = encode_token({"cl": 1})
        return 200, body
