"""The Example Calendar emulator: a real aiohttp server over in-memory calendars, plus a
thread-safe Python API to change them while it serves: calbridge's shared emulator API
(``add_event``, ``update_event``, ``delete_event``, ``expire_cursors``, ``fail_next``, ``seed``...;
:class:`calbridge.testing.emulator_api.EmulatorAPI`).

The HTTP API (all JSON, ``Authorization: Bearer <token>``):

- ``GET /calendars`` → ``{"calendars": [{"id", "name"}]}``
- ``GET /calendars/{cal}/events?limit=N[&sync_token=T][&page_token=P]`` → ``{"items": [...],
  "next_page_token": P | null, "next_sync_token": T | null}``. Without ``sync_token``: every live
  event; with it: what changed since (deleted events as ``{"id", "deleted": true}``). A page token
  continues the same listing; the last page carries the next sync token. ``410`` once
  :meth:`ExampleEmulator.expire_cursors` was called for a token issued before.

Push (``_push``): ``POST /calendars/{cal}/subscriptions`` ``{"address", "secret", "expires"}`` → 201
``{"id", "expires"}`` (at most :attr:`ExampleEmulator.push_lifetime` away); ``PATCH
/subscriptions/{id}`` ``{"expires"}`` extends it, ``DELETE /subscriptions/{id}`` stops it (404 for
one unknown or expired). While alive, every change of its calendar is POSTed to ``address`` (loopback
http is accepted) with ``X-Example-Subscription`` and ``X-Example-Secret`` headers and a body
``{"subscription", "calendar", "event", "change"}``; :meth:`~ExampleEmulator.remove_subscription` drops
one and delivers ``{"subscription", "calendar", "lifecycle": "removed"}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any

import attrs
from aiohttp import web

from calbridge.testing.emulator_api import apply_seed, seed_plan

from ._push import PushHub

TOKEN = "example-token"
UTC = dt.UTC
Instant = dt.datetime | dt.date


def _enc(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def _dec(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _stamp(value: Instant) -> str:
    if not isinstance(value, dt.datetime):
        raise ValueError("the Example Calendar has timed events only")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define
class _Calendar:
    name: str
    events: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # id -> payload; deleted ones kept
    stamps: dict[str, int] = attrs.field(factory=dict)  # id -> seq of its last change


class ExampleEmulator:
    """The ``example`` :class:`~calbridge.emulation.EmulatorApp` (its ``calbridge.emulators`` entry point)."""

    name = "example"
    tls = False

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calendars: dict[str, _Calendar] = {"work": _Calendar(name="Work")}
        self.seq = 0
        self.epoch = 0
        self.failures: list[tuple[int, float | None]] = []
        self._ids = itertools.count(1)
        self.push = PushHub(self.lock)

    # -- the Python API tests and the demo use ------------------------------------------------
    # calbridge's shared emulator API (calbridge.testing.emulator_api.EmulatorAPI): the same verbs
    # and conventions as the built-in emulators. The Example API has no recurring events.

    def new_calendar(self, name: str) -> str:
        """A fresh, empty calendar whose id is ``name`` (made unique)."""
        with self.lock:
            cid, n = name, 1
            while cid in self.calendars:
                n += 1
                cid = f"{name}-{n}"
            self.calendars[cid] = _Calendar(name=name)
            return cid

    def _cal(self, calendar: str | None) -> _Calendar:
        return self.calendars[calendar or "work"]

    def _touch(self, cal: _Calendar, event_id: str) -> None:
        self.seq += 1
        cal.stamps[event_id] = self.seq
        self.push.changed(next(k for k, c in self.calendars.items() if c is cal), event_id)

    @property
    def push_lifetime(self) -> dt.timedelta:
        """The longest a subscription lives (a few seconds in renewal tests)."""
        return self.push.lifetime

    @push_lifetime.setter
    def push_lifetime(self, value: dt.timedelta) -> None:
        self.push.lifetime = value

    def remove_subscription(self, subscription_id: str) -> None:
        """Drop a subscription as a server might, telling its address (``lifecycle: removed``)."""
        self.push.remove(subscription_id)

    def subscriptions_alive(self) -> list[str]:
        """Ids of the subscriptions alive now."""
        return self.push.alive()

    def add_event(
        self, title: str, start: Instant, end: Instant, *, calendar: str | None = None, rrule: str | None = None,
        time_zone: str = "UTC",
    ) -> str:  # fmt: skip
        """A timed single (the Example API stores UTC instants: ``time_zone`` changes nothing)."""
        if rrule is not None:
            raise ValueError("the Example Calendar has no recurring events")
        with self.lock:
            cal = self._cal(calendar)
            eid = f"evt-{next(self._ids)}"
            cal.events[eid] = {"id": eid, "title": title, "start": _stamp(start), "end": _stamp(end)}
            self._touch(cal, eid)
            return eid

    def update_event(self, event_id: str, *, calendar: str | None = None, title: str | None = None,
                     start: Instant | None = None, end: Instant | None = None) -> None:  # fmt: skip
        with self.lock:
            cal = self._cal(calendar)
            event = cal.events[event_id]
            if event.get("deleted"):
                raise KeyError(event_id)
            if title is not None:
                event["title"] = title
            if start is not None:
                event["start"] = _stamp(start)
            if end is not None:
                event["end"] = _stamp(end)
            self._touch(cal, event_id)

    def delete_event(self, event_id: str, *, calendar: str | None = None) -> None:
        with self.lock:
            cal = self._cal(calendar)
            if event_id not in cal.events:
                raise KeyError(event_id)
            cal.events[event_id] = {"id": event_id, "deleted": True}
            self._touch(cal, event_id)

    def expire_cursors(self) -> None:
        """Every page and sync token issued so far answers 410 Gone."""
        with self.lock:
            self.epoch += 1

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        """The next ``count`` API requests answer ``status`` (429: with ``Retry-After`` when given)."""
        with self.lock:
            self.failures.extend([(status, retry_after)] * count)

    def clear_faults(self) -> None:
        with self.lock:
            self.failures.clear()

    def seed(self, n_events: int, n_series: int = 0, *, calendar: str | None = None) -> Sequence[str]:
        """``n_events`` singles around now (``n_series`` must be 0: no recurring events here)."""
        return apply_seed(self, seed_plan(n_events, n_series), calendar=calendar)

    # -- EmulatorApp ---------------------------------------------------------------------------

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "provider": "example", "base_url": base_url,
                                 "auth": {"kind": "token", "token": TOKEN}, "calendars": ["work"]}  # fmt: skip
        if ca_file:
            entry["ca_file"] = ca_file
        return entry

    def seed_demo(self) -> None:
        today = dt.datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
        self.add_event("Planning", today + dt.timedelta(days=1), today + dt.timedelta(days=1, hours=1))
        self.add_event("Retro", today + dt.timedelta(days=3), today + dt.timedelta(days=3, hours=1))

    def demo_changes(self) -> list[str]:
        today = dt.datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
        self.add_event("Coffee", today + dt.timedelta(days=2), today + dt.timedelta(days=2, minutes=30))
        return ["created 'Coffee'"]

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/calendars", self._calendars)
        app.router.add_get("/calendars/{cal}/events", self._events)
        app.router.add_post("/calendars/{cal}/subscriptions", self._subscribe)
        self.push.add_routes(app)
        return app

    async def _subscribe(self, request: web.Request) -> web.Response:
        with self.lock:
            known = request.match_info["cal"] in self.calendars
        if not known:
            return web.json_response({"error": "no such calendar"}, status=404)
        return await self.push.subscribe(request)

    # -- HTTP ----------------------------------------------------------------------------------

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            status, retry_after = failure
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return web.json_response({"error": "injected"}, status=status, headers=headers)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _calendars(self, request: web.Request) -> web.Response:
        with self.lock:
            return web.json_response({"calendars": [{"id": k, "name": c.name} for k, c in self.calendars.items()]})

    async def _events(self, request: web.Request) -> web.Response:
        q = request.query
        limit = max(1, min(int(q.get("limit", "100")), 500))
        with self.lock:
            cal = self.calendars.get(request.match_info["cal"])
            if cal is None:
                return web.json_response({"error": "no such calendar"}, status=404)
            if "page_token" in q:
                pos = _dec(q["page_token"])
            elif "sync_token" in q:
                tok = _dec(q["sync_token"])
                pos = None if tok is None else {"e": tok.get("e"), "since": tok.get("seq"), "after": tok.get("seq"),
                                                "upto": self.seq}  # fmt: skip
            else:
                pos = {"e": self.epoch, "since": None, "after": "", "upto": self.seq}
            if pos is None or pos.get("e") != self.epoch:
                return web.json_response({"error": "sync state expired"}, status=410)
            if pos["since"] is None:  # a full listing: live events by id
                ids = sorted(i for i, e in cal.events.items() if not e.get("deleted") and i > pos["after"])
                chunk = ids[:limit]
                items = [dict(cal.events[i]) for i in chunk]
                more = len(ids) > limit
                after: Any = chunk[-1] if chunk else pos["after"]
            else:  # an incremental listing: what changed in (after, upto], in change order
                changed = sorted((s, i) for i, s in cal.stamps.items() if pos["after"] < s <= pos["upto"])
                chunk_seq = changed[:limit]
                items = [dict(cal.events[i]) for _, i in chunk_seq]
                more = len(changed) > limit
                after = chunk_seq[-1][0] if chunk_seq else pos["after"]
            body: dict[str, Any] = {"items": items, "next_page_token": None, "next_sync_token": None}
            if more:
                body["next_page_token"] = _enc({**pos, "after": after})
            else:
                body["next_sync_token"] = _enc({"e": self.epoch, "seq": pos["upto"]})
            return web.json_response(body)
