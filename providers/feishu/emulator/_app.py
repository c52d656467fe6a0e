"""The Feishu emulator's aiohttp application (routes below ``/open-apis``)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from aiohttp import web

from ._recur import Wire, occurrences, span, start_seconds
from ._state import Cal
from ._subscribe import SubscriptionRoutes
from ._tokens import TokenRoutes, fail

CAL = "/open-apis/calendar/v4/calendars"
TWO_YEARS = 730 * 86400
FORTY_DAYS = 40 * 86400
INSTANCE_FIELDS = ("event_id", "summary", "description", "start_time", "end_time", "status", "is_exception",
                   "app_link", "location")  # fmt: skip


def ok(data: Any) -> web.Response:
    return web.json_response({"code": 0, "msg": "success", "data": data})


def _enc(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _dec(text: str) -> dict[str, Any] | None:
    try:
        out = json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def _int(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    return int(raw)


class App(TokenRoutes):
    """Request handlers over a :class:`FeishuState`."""

    def make(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_post("/open-apis/auth/v3/tenant_access_token/internal", self.tenant_token)
        r.add_post("/open-apis/authen/v2/oauth/token", self.user_token)
        r.add_post(f"{CAL}/primary", self.primary)
        r.add_get(CAL, self.calendar_list)
        r.add_get(CAL + "/{cal}/events", self.events)
        r.add_get(CAL + "/{cal}/events/instance_view", self.instance_view)
        subscriptions = SubscriptionRoutes(self.s)
        r.add_post(CAL + "/{cal}/events/subscription", subscriptions.subscribe)
        r.add_post(CAL + "/{cal}/events/unsubscription", subscriptions.unsubscribe)
        r.add_get(CAL + "/{cal}/events/{eid}", self.event_get)
        r.add_get(CAL + "/{cal}/events/{eid}/attendees", self.attendees)
        r.add_get(CAL + "/{cal}/events/{eid}/instances", self.instances)
        r.add_route("*", "/{tail:.*}", self.unknown)
        app.on_startup.append(self.s.push.start)  # deliveries go out from the serving loop
        app.on_cleanup.append(self.s.push.stop)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        entry = {"method": request.method, "path": request.path, "query": dict(request.query), "time": time.monotonic(),
                 "end": None}  # fmt: skip
        with self.s.lock:
            self.s.log.append(entry)
        try:
            return await self._serve(request, handler)
        finally:
            with self.s.lock:
                entry["end"] = time.monotonic()  # with ``time``: how many requests were in flight at once

    async def _serve(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = self.s.take_fault(request.path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                return fail(fault.status, fault.code, fault.msg, fault.headers)
        if CAL in request.path:
            bad = self._check_token(request.headers.get("Authorization", ""))
            if bad is not None:
                return bad
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except (ValueError, KeyError):
            return fail(400, 190002, "invalid parameters in request")

    async def unknown(self, request: web.Request) -> web.Response:
        return fail(404, 404, f"no such emulated API: {request.method} {request.path}")

    # -- calendars ----------------------------------------------------------------------------

    def _find(self, request: web.Request) -> Cal | web.Response:
        cal = self.s.calendars.get(request.match_info["cal"])
        if cal is None:
            return fail(404, 191000, "calendar not found")
        return cal

    async def primary(self, request: web.Request) -> web.Response:
        cal = self.s.calendars[self.s.primary_id]
        token = request.headers.get("Authorization", "")[7:]
        with self.s.lock:
            owner = self.s.user_open_id if token in self.s.user_tokens else "ou_app"
        return ok(
            {
                "calendars": [
                    {
                        "calendar": {"calendar_id": cal.id, "summary": cal.summary, "type": "primary", "role": "owner"},
                        "user_id": owner,
                    }
                ]
            }
        )

    async def calendar_list(self, request: web.Request) -> web.Response:
        size = _int(request, "page_size", 500) or 500
        offset = int(request.query.get("page_token") or 0)
        with self.s.lock:
            cals = list(self.s.calendars.values())
        page = cals[offset : offset + size]
        more = offset + size < len(cals)
        return ok(
            {
                "has_more": more,
                "page_token": str(offset + size) if more else "",
                "sync_token": "" if more else _enc({"calendars": len(cals), "g": self.s.generation}),
                "calendar_list": [
                    {"calendar_id": c.id, "summary": c.summary, "type": c.type, "role": c.role, "is_deleted": False}
                    for c in page
                ],
            }
        )

    # -- events list (sync) ---------------------------------------------------------------------

    @staticmethod
    def _after_anchor(event: Wire, anchor: int) -> bool:
        if event.get("recurrence"):
            return True  # every series, whatever its age
        _, end = span(event)
        if event.get("is_exception"):
            return int(event["event_id"].rsplit("_", 1)[1]) >= anchor or end >= anchor
        return end >= anchor

    async def events(self, request: web.Request) -> web.Response:
        cal = self._find(request)
        if isinstance(cal, web.Response):
            return cal
        q = request.query
        size = _int(request, "page_size", 500) or 500
        if not 50 <= size <= 1000:
            return fail(400, 190002, "invalid parameters in request: page_size must be 50-1000")
        size = min(size, self.s.page_cap or size)
        token_text = q.get("page_token") or q.get("sync_token") or ""
        if q.get("start_time") or q.get("end_time"):
            if q.get("sync_token"):
                return fail(400, 190009, "sync token cannot be used with other request restrictions")
            if token_text or q.get("anchor_time"):
                return fail(400, 190002, "invalid parameters in request")
            lo, hi = int(q.get("start_time") or 0), int(q.get("end_time") or 2**40)
            with self.s.lock:
                found = [e for e in self.s.live(cal) if span(e)[1] >= lo and span(e)[0] <= hi][:size]
            return ok({"has_more": False, "items": found})
        anchor = _int(request, "anchor_time")
        with self.s.lock:
            if token_text:
                pos = _dec(token_text)
                if pos is None or pos.get("g") != self.s.generation or pos.get("c") != cal.id:
                    return fail(400, 190008, "page_token or sync_token expired")
            else:
                pos = {"g": self.s.generation, "c": cal.id, "s": self.s.seq, "p": 0, "f": True}
            sent, full = token_text or None, not token_text
            if self.s.empty_pages > 0:
                self.s.empty_pages -= 1
                again = _enc({**pos, "n": self.s.empty_pages})
                self.s.round_log.page(cal.id, sent=sent, full=full, more=again)
                return ok(
                    {
                        "has_more": True,
                        "items": [],
                        "page_token": again if anchor is not None else "",
                        "sync_token": "" if anchor is not None else again,
                    }
                )
            order = sorted(cal.seqs.items(), key=lambda kv: kv[1])
            items: list[Wire] = []
            last = pos["p"]
            more = False
            for eid, seq in order:
                if seq <= pos["p"]:
                    continue
                if len(items) >= size:
                    more = True
                    break
                last = seq
                event = cal.events[eid]
                dead = eid in cal.dead
                if dead and (not eid.endswith("_0") or (pos["f"] and seq <= pos["s"])):
                    continue  # deleted before this full listing began: simply absent
                if not dead and anchor is not None and not self._after_anchor(event, anchor):
                    continue
                if self.s.bare_cancelled and event.get("status") == "cancelled" and event.get("is_exception"):
                    keep = ("event_id", "status", "is_exception", "recurring_event_id")
                    event = {k: event[k] for k in keep if k in event}
                items.append(dict(event))
            if more:
                nxt = _enc({**pos, "p": last})
                self.s.round_log.page(cal.id, sent=sent, full=full, more=nxt)
                return ok(
                    {
                        "has_more": True,
                        "items": items,
                        "page_token": nxt if anchor is not None else "",
                        "sync_token": "" if anchor is not None else nxt,
                    }
                )
            done = _enc({"g": self.s.generation, "c": cal.id, "s": self.s.seq, "p": self.s.seq, "f": False})
            self.s.round_log.page(cal.id, sent=sent, full=full, more=None)
            return ok({"has_more": False, "items": items, "page_token": "", "sync_token": done})

    # -- single event, attendees ------------------------------------------------------------------

    def _event(self, cal: Cal, eid: str) -> Wire | web.Response:
        if eid not in cal.events:
            return fail(404, 193001, "event not found")
        if eid in cal.dead:
            return fail(403, 193003, "event is deleted")
        return cal.events[eid]

    async def event_get(self, request: web.Request) -> web.Response:
        cal = self._find(request)
        if isinstance(cal, web.Response):
            return cal
        with self.s.lock:
            event = self._event(cal, request.match_info["eid"])
            if isinstance(event, web.Response):
                return event
            out = dict(event)
            if request.query.get("need_attendee") == "true":
                limit = min(_int(request, "max_attendee_num", 10) or 10, 100)
                people = cal.attendees.get(out["event_id"], [])
                out["attendees"] = [dict(a) for a in people[:limit]]
                out["has_more_attendee"] = len(people) > limit
        return ok({"event": out})

    async def attendees(self, request: web.Request) -> web.Response:
        cal = self._find(request)
        if isinstance(cal, web.Response):
            return cal
        size = max(_int(request, "page_size", 20) or 20, 10)
        if size > 100:
            return fail(400, 190002, "invalid parameters in request: page_size must be at most 100")
        offset = int(request.query.get("page_token") or 0)
        with self.s.lock:
            event = self._event(cal, request.match_info["eid"])
            if isinstance(event, web.Response):
                return event
            people = [dict(a) for a in cal.attendees.get(event["event_id"], [])]
        more = offset + size < len(people)
        return ok(
            {
                "items": people[offset : offset + size],
                "has_more": more,
                "page_token": str(offset + size) if more else "",
            }
        )

    # -- expansion ----------------------------------------------------------------------------

    def _series_instances(self, cal: Cal, master: Wire, lo: int, hi: int, keep: Any) -> list[Wire]:
        uid = master["event_id"].rsplit("_", 1)[0]
        excs = [e for k, e in cal.events.items() if k.startswith(uid + "_") and k != master["event_id"]]
        return occurrences(master, excs, lo, hi, keep)

    async def instances(self, request: web.Request) -> web.Response:
        cal = self._find(request)
        if isinstance(cal, web.Response):
            return cal
        lo, hi = int(request.query["start_time"]), int(request.query["end_time"])
        if hi - lo > TWO_YEARS or hi <= lo:
            return fail(400, 190002, "invalid parameters in request: the range must be within 2 years")
        size = _int(request, "page_size", 50) or 50
        if not 10 <= size <= 500:
            return fail(400, 190002, "invalid parameters in request: page_size must be 10-500")
        offset = int(request.query.get("page_token") or 0)
        with self.s.lock:
            master = self._event(cal, request.match_info["eid"])
            if isinstance(master, web.Response):
                return master

            def keep(s: int, e: int) -> bool:
                return lo < s < hi  # the open interval (start_time, end_time)

            if master.get("recurrence"):
                found = self._series_instances(cal, master, lo, hi, keep)
            else:
                found = [dict(master)] if keep(*span(master)) else []
        found.sort(key=lambda e: (start_seconds(e["start_time"]), e["event_id"]))
        page = [{k: e[k] for k in INSTANCE_FIELDS if k in e} for e in found[offset : offset + size]]
        more = offset + size < len(found)
        return ok({"items": page, "has_more": more, "page_token": str(offset + size) if more else ""})

    async def instance_view(self, request: web.Request) -> web.Response:
        cal = self._find(request)
        if isinstance(cal, web.Response):
            return cal
        lo, hi = int(request.query["start_time"]), int(request.query["end_time"])
        if hi - lo >= FORTY_DAYS:
            return fail(400, 193103, "requested time exceeds the allowed range")
        if hi <= lo:
            return fail(400, 190002, "invalid parameters in request")

        def keep(s: int, e: int) -> bool:
            return lo <= s < hi if s == e else s < hi and e > lo

        with self.s.lock:
            found: list[Wire] = []
            for event in self.s.live(cal):
                if event.get("is_exception"):
                    continue  # through its series
                if event.get("recurrence"):
                    found.extend(self._series_instances(cal, event, lo, hi, keep))
                elif keep(*span(event)):
                    found.append(dict(event))
            if len(found) >= 1000:
                return fail(400, 193104, "exceeded the maximum instance number")
            for e in found:
                people = cal.attendees.get(e["event_id"]) or cal.attendees.get(e.get("recurring_event_id") or "", [])
                # Only meeting rooms, as the real call (its field table: attendees … 当前只返回会议室).
                e["attendees"] = [dict(a) for a in people if a.get("type") == "resource"]
        found.sort(key=lambda e: (start_seconds(e["start_time"]), e["event_id"]))
        return ok({"items": found})
