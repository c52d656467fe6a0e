"""The Feishu emulator's data and its thread-safe Python API.

Events are kept in wire form per calendar, each stamped with the position of its last change in
a per-emulator change log (``seq``). Deleting a single or a series leaves a ``cancelled``
tombstone (and tombstones for its exceptions), so sync tokens, which are change-log positions,
report it. Faults (429 with ``x-ogw-ratelimit-reset``, 5xx, any code, slow answers) are queued
and consumed by matching requests.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from calbridge.testing.rounds import RoundLog

from ._push import PushHub
from ._recur import Wire, span, time_info

UTC = dt.UTC


@attrs.define
class Fault:
    """One injected answer: ``status``/``code`` (or only ``delay`` seconds when ``status`` is 0)."""

    path: str | None
    status: int
    code: int
    msg: str
    headers: dict[str, str]
    delay: float
    count: int


@attrs.define
class Cal:
    id: str
    summary: str
    type: str
    role: str
    events: dict[str, Wire] = attrs.field(factory=dict)
    seqs: dict[str, int] = attrs.field(factory=dict)
    attendees: dict[str, list[Wire]] = attrs.field(factory=dict)
    dead: set[str] = attrs.field(factory=set)


class FeishuState:
    """Calendars, events, tokens and faults behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, str] = {"cli_calbridge_demo": "demo-app-secret"}
        self.tenant_tokens: dict[str, tuple[str, float]] = {}  # token → (app_id, expires_at)
        self.user_tokens: dict[str, float] = {}  # access token → expires_at
        self.user_apps: dict[str, str] = {}  # access token → the app_id it was issued to
        self.refresh_tokens: dict[str, tuple[str, bool]] = {}  # refresh token → (app_id, alive)
        self.refresh_spends: list[str] = []  # every issued refresh token presented to the refresh grant, in order
        self.refresh_reuses = 0  # of those, the ones already spent (refused with 20073)
        self.revoked: set[str] = set()
        self.tenant_errors_http200 = True
        self.seq = 0
        self.generation = 0
        self.empty_pages = 0
        # Which fields a cancelled item carries is UNCONFIRMED (apis.md 1.A.4): with this set the list
        # sends a cancelled exception as only its id, status and series, the least a client can get.
        self.bare_cancelled = False
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self.calendars: dict[str, Cal] = {}
        self.primary_id = "feishu.cn_primary_app@group.calendar.feishu.cn"
        self.user_open_id = "ou_user"  # the user behind every user_access_token (one user per emulator)
        self.add_calendar(self.primary_id, summary="App calendar", type="primary")
        self.push = PushHub(self)  # event subscriptions and deliveries (``_push``)
        self.round_log = RoundLog()  # the sync rounds served, per calendar (``calbridge.testing.rounds``)
        self.page_cap: int | None = None  # fewer events a sync page than asked, so rounds span pages

    # -- calendars and events ---------------------------------------------------------------

    def add_calendar(self, calendar_id: str, *, summary: str = "", type: str = "shared", role: str = "owner") -> str:
        with self.lock:
            self.calendars[calendar_id] = Cal(id=calendar_id, summary=summary or calendar_id, type=type, role=role)
        return calendar_id

    def _cal(self, calendar_id: str | None) -> Cal:
        return self.calendars[calendar_id or self.primary_id]

    def _touch(self, cal: Cal, event_id: str, change: str | None = None) -> None:
        """Log a change of ``event_id`` (its ``change_type`` for push: ``change``, else from the log)."""
        if change is None:
            change = "delete" if event_id in cal.dead else "update" if event_id in cal.seqs else "create"
        self.seq += 1
        cal.seqs[event_id] = self.seq
        self.push.changed(cal.id, event_id, change)

    def create_event(
        self,
        *,
        summary: str = "",
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        timezone: str = "Asia/Shanghai",
        recurrence: str = "",
        attendees: Sequence[Wire] = (),
        calendar_id: str | None = None,
        uid: str | None = None,
        **extra: Any,
    ) -> str:
        """A single or (with a bare RRULE ``recurrence``) a series. All-day when ``start`` is a date;
        ``end`` is then Feishu's inclusive last day. Returns the event id ``{uid}_0``."""
        with self.lock:
            cal = self._cal(calendar_id)
            eid = f"{uid or uuid.uuid4()}_0"
            event: Wire = {
                "event_id": eid,
                "organizer_calendar_id": cal.id,
                "summary": summary,
                "description": extra.pop("description", ""),
                "start_time": _info(start, timezone),
                "end_time": _info(end, timezone),
                "vchat": {"vc_type": "vc", "meeting_url": f"https://vc.feishu.cn/j/{abs(hash(eid)) % 10**9}"},
                "visibility": "default",
                "attendee_ability": "can_see_others",
                "free_busy_status": "busy",
                "color": -1,
                "recurrence": recurrence,
                "status": "confirmed",
                "is_exception": False,
                "create_time": str(int(time.time())),
                "event_organizer": {"user_id": "ou_organizer", "display_name": "Organizer"},
                "app_link": f"https://applink.feishu.cn/client/calendar/event/detail?key={eid}",
            }
            event.update(extra)
            cal.events[eid] = event
            cal.attendees[eid] = [dict(a) for a in attendees]
            self._touch(cal, eid)
            return eid

    def update_event(
        self, event_id: str, *, calendar: str | None = None, title: str | None = None,
        start: dt.datetime | dt.date | None = None, end: dt.datetime | dt.date | None = None, **fields: Any,
    ) -> None:  # fmt: skip
        """Change ``title``, ``start``/``end`` (an all-day ``end`` is exclusive) or Feishu's own fields
        (``summary``, ``attendees``, ``recurrence``...)."""
        fields.update({k: v for k, v in (("summary", title), ("start", start), ("end", _last_day(end)))
                       if v is not None})  # fmt: skip
        with self.lock:
            cal = self._cal(calendar)
            event = cal.events[event_id]
            tz = event["start_time"].get("timezone") or "UTC"
            if "start" in fields:
                event["start_time"] = _info(fields.pop("start"), tz)
            if "end" in fields:
                event["end_time"] = _info(fields.pop("end"), tz)
            if "attendees" in fields:
                cal.attendees[event_id] = [dict(a) for a in fields.pop("attendees")]
            event.update(fields)
            self._touch(cal, event_id)

    def set_rsvp(self, event_id: str, user_id: str, rsvp: str, *, calendar_id: str | None = None) -> None:
        """An attendee answers: only the attendee list changes (the event reappears in sync)."""
        with self.lock:
            cal = self._cal(calendar_id)
            for a in cal.attendees.get(event_id, []):
                if a.get("user_id") == user_id:
                    a["rsvp_status"] = rsvp
            self._touch(cal, event_id, "rsvp")

    def delete_event(self, event_id: str, *, calendar: str | None = None) -> None:
        """Delete a single or a whole series (its exceptions go too)."""
        with self.lock:
            cal = self._cal(calendar)
            uid = event_id.rsplit("_", 1)[0]
            ids = [event_id] + [k for k in cal.events if k.startswith(uid + "_") and k != event_id]
            for eid in ids:
                cal.events[eid] = {"event_id": eid, "status": "cancelled"}
                cal.dead.add(eid)
            self._touch(cal, event_id)  # only the deleted event is reported; its exceptions go with it

    def _exception(self, cal: Cal, series_id: str, original: dt.datetime | dt.date) -> Wire:
        master = cal.events[series_id]
        uid = series_id.rsplit("_", 1)[0]
        if isinstance(original, dt.datetime):
            orig = int(original.timestamp())
        else:
            orig = int(dt.datetime(original.year, original.month, original.day, tzinfo=UTC).timestamp())
        eid = f"{uid}_{orig}"
        if eid in cal.events:
            return cal.events[eid]
        s0, e0 = span(master)
        all_day = bool(master["start_time"].get("date"))
        tz = master["start_time"].get("timezone") or "UTC"
        exc = {k: v for k, v in master.items() if k != "recurrence"}
        exc.update(
            event_id=eid,
            is_exception=True,
            recurring_event_id=series_id,
            recurrence="",
            start_time=time_info(orig, all_day=all_day, timezone=tz),
            end_time=time_info(orig + e0 - s0, all_day=all_day, timezone=tz, end=True),
        )
        cal.events[eid] = exc
        cal.attendees[eid] = [dict(a) for a in cal.attendees.get(series_id, [])]
        return exc

    def cancel_occurrence(
        self, series_id: str, original_start: dt.datetime | dt.date, *, calendar: str | None = None
    ) -> str:
        """Cancel one occurrence: a cancelled exception ``{uid}_{original seconds}``."""
        with self.lock:
            cal = self._cal(calendar)
            exc = self._exception(cal, series_id, original_start)
            exc["status"] = "cancelled"
            self._touch(cal, exc["event_id"], "delete")  # the occurrence leaves the calendar
            return str(exc["event_id"])

    def move_occurrence(
        self,
        series_id: str,
        original_start: dt.datetime | dt.date,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        *,
        calendar: str | None = None,
        **fields: Any,
    ) -> str:
        """Move (and optionally edit) one occurrence: a confirmed exception (an all-day ``end`` is exclusive)."""
        with self.lock:
            cal = self._cal(calendar)
            exc = self._exception(cal, series_id, original_start)
            tz = exc["start_time"].get("timezone") or "UTC"
            exc.update(start_time=_info(start, tz), end_time=_info(_last_day(end), tz), **fields)
            self._touch(cal, exc["event_id"], "update")
            return str(exc["event_id"])

    def live(self, cal: Cal) -> list[Wire]:
        return [e for k, e in cal.events.items() if k not in cal.dead]

    # -- tokens and faults ---------------------------------------------------------------------

    def issue_refresh_token(self, app_id: str = "cli_calbridge_demo") -> str:
        """A user's refresh token for ``app_id`` (what an OAuth consent would hand out)."""
        with self.lock:
            token = "ur-" + secrets.token_urlsafe(24)
            self.refresh_tokens[token] = (app_id, True)
            return token

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is rejected from now on (99991663 / 99991668)."""
        with self.lock:
            self.revoked.update(self.tenant_tokens)
            self.revoked.update(self.user_tokens)
            self.tenant_tokens.clear()

    def expire_sync_tokens(self) -> None:
        """Every page_token and sync_token handed out so far answers 190008."""
        with self.lock:
            self.generation += 1

    def inject(
        self,
        status: int,
        code: int,
        *,
        path: str | None = None,
        msg: str = "injected error",
        headers: dict[str, str] | None = None,
        count: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The next ``count`` requests whose path contains ``path`` get this answer."""
        with self.lock:
            self.faults.append(Fault(path, status, code, msg, dict(headers or {}), delay, count))

    def rate_limit(self, *, reset: float = 1.0, code: int = 99991400, path: str | None = None, count: int = 1) -> None:
        """HTTP 429 with ``x-ogw-ratelimit-reset`` (seconds)."""
        reset_text = str(int(reset)) if float(reset).is_integer() else str(reset)
        headers = {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": reset_text}
        self.inject(429, code, path=path, msg="request trigger frequency limit", headers=headers, count=count)

    def slow(self, seconds: float, *, path: str | None = None, count: int = 1) -> None:
        """The next ``count`` matching requests answer normally after ``seconds``."""
        self.inject(0, 0, path=path, delay=seconds, count=count)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path is None or fault.path in path:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def requests(self, path_contains: str = "") -> list[dict[str, Any]]:
        """The request log (method, path, query, time, and end once answered), optionally filtered by path."""
        with self.lock:
            return [dict(r) for r in self.log if path_contains in r["path"]]

    def max_in_flight(self, path_contains: str = "") -> int:
        """The most matching requests the emulator was serving at one moment (from the log's times)."""
        spans = [(r["time"], r["end"]) for r in self.requests(path_contains) if r["end"] is not None]
        return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()


def _last_day(end: Any) -> Any:
    """Feishu's all-day end is the last day itself: an exclusive end date minus one day."""
    if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
        return end - dt.timedelta(days=1)
    return end


def _info(value: dt.datetime | dt.date, tz: str) -> Wire:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("emulator times must be aware")
        return {"timestamp": str(int(value.timestamp())), "timezone": tz}
    midnight = int(dt.datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    return {"date": value.isoformat(), "timestamp": str(midnight), "timezone": "UTC"}
