"""The emulator's in-memory data: calendars, events, a change log, tokens, faults, a request log and
the push channels (``push``, see ``_channels``).

Every public method takes the one lock, so tests and the demo can change data from another thread
while the aiohttp app serves. A change bumps the calendar's sequence number and stamps the event
with it; a sync token is the sequence at the start of the listing that produced it, so an
incremental listing returns exactly the events stamped later.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from calbridge.testing.rounds import RoundLog

from ._channels import Channels
from ._expand import series_zone, slot_key

UTC = dt.UTC


def encode_token(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def rfc3339_now() -> str:
    return dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@attrs.define(kw_only=True)
class RequestRecord:
    """One request the emulator answered: tests count these and check their timing."""

    method: str
    path: str
    query: dict[str, str]
    time: float  # time.monotonic() on arrival
    authorized: bool
    status: int = 0


@attrs.define(kw_only=True)
class Fault:
    """An injected failure for the next ``times`` API requests (the token endpoint is never faulted)."""

    status: int
    times: int
    reason: str | None = None
    retry_after: float | None = None
    delay: float = 0.0  # seconds to wait before answering (status 0: a slow success)
    path_contains: str = ""


@attrs.define(kw_only=True)
class CalendarData:
    id: str
    summary: str
    time_zone: str
    primary: bool = False
    access_role: str = "owner"
    seq: int = 0
    # Starts at a random value so a token from another emulator instance is refused (410) as
    # Google refuses a token it did not issue; bumped by expire_sync_tokens.
    epoch: int = attrs.field(factory=lambda: secrets.randbelow(1 << 30))
    events: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    stamps: dict[str, int] = attrs.field(factory=dict)  # event id -> seq of its last change
    deleted: set[str] = attrs.field(factory=set)
    log: list[tuple[int, str]] = attrs.field(factory=list)  # (seq, event id), superseded entries stay
    order: tuple[int, list[str]] = (-1, [])  # (seq it was built at, ids sorted) for full listings


class GoogleState:
    """Calendars and events plus auth, faults and the request log; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calendars: dict[str, CalendarData] = {}
        self.clients: dict[str, tuple[str, set[str]]] = {}  # client_id -> (secret, refresh tokens)
        self.service_accounts: dict[str, str] = {}  # client_email -> public key PEM
        self.access_tokens: dict[str, float] = {}  # token -> expiry (time.time)
        self.token_grants: list[dict[str, str]] = []  # what each token request asked for (no secrets)
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.expires_in = 3600
        self.push = Channels()  # events.watch channels and their delivery log
        self.round_log = RoundLog()  # the sync rounds served, per calendar (``calbridge.testing.rounds``)
        self.max_results: int | None = None  # fewer a page than asked (Google may), so rounds span pages
        self._ids = itertools.count(1)

    # -- calendars and events --------------------------------------------------------------

    def add_calendar(
        self, calendar_id: str, *, summary: str | None = None, time_zone: str = "UTC", primary: bool = False,
        access_role: str = "owner",
    ) -> None:  # fmt: skip
        with self.lock:
            self.calendars[calendar_id] = CalendarData(
                id=calendar_id, summary=summary or calendar_id, time_zone=time_zone, primary=primary,
                access_role=access_role,
            )  # fmt: skip

    def calendar(self, calendar_id: str) -> CalendarData | None:
        with self.lock:
            if calendar_id == "primary":
                return next((c for c in self.calendars.values() if c.primary), None)
            return self.calendars.get(calendar_id)

    def _cal(self, calendar_id: str) -> CalendarData:
        cal = self.calendar(calendar_id)
        if cal is None:
            raise KeyError(f"no calendar {calendar_id!r}")
        return cal

    def _stamp(self, cal: CalendarData, event_id: str) -> None:
        cal.seq += 1
        cal.stamps[event_id] = cal.seq
        cal.log.append((cal.seq, event_id))
        self.push.changed(cal.id)

    def new_id(self) -> str:
        return f"ev{next(self._ids):06d}{secrets.token_hex(3)}"

    def put_event(self, calendar_id: str, payload: Mapping[str, Any], *, raw: bool = False) -> dict[str, Any]:
        """Insert or replace an event. Server fields (etag, updated, iCalUID, htmlLink...) are filled in
        unless ``raw``, which stores the payload exactly (malformed events for tests)."""
        with self.lock:
            cal = self._cal(calendar_id)
            event = dict(payload)
            event.setdefault("id", self.new_id())
            if not raw:
                eid = event["id"]
                now = rfc3339_now()
                old = cal.events.get(eid)
                event.setdefault("kind", "calendar#event")
                event.setdefault("status", "confirmed")
                event["created"] = old.get("created", now) if old and eid not in cal.deleted else now
                event["updated"] = now
                event.setdefault("iCalUID", f"{event.get('recurringEventId', eid).split('_')[0]}@google.com")
                event.setdefault("htmlLink", f"https://www.google.com/calendar/event?eid={eid}")
                event.setdefault("sequence", 0)
            event["etag"] = f'"{cal.seq + 1}{secrets.token_hex(4)}"'
            cal.events[event["id"]] = event
            cal.deleted.discard(event["id"])
            self._stamp(cal, event["id"])
            return dict(event)

    def bulk_insert(self, calendar_id: str, payloads: Iterable[Mapping[str, Any]]) -> int:
        n = 0
        with self.lock:
            for payload in payloads:
                self.put_event(calendar_id, payload)
                n += 1
        return n

    def update_event(self, calendar_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            cal = self._cal(calendar_id)
            event = dict(cal.events[event_id])
            event.update(fields)
            return self.put_event(calendar_id, event)

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self.lock:
            cal = self._cal(calendar_id)
            event = cal.events.get(event_id)
            return None if event is None else dict(event)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event; a series takes its exceptions along. What stays is a cancelled stub."""
        with self.lock:
            cal = self._cal(calendar_id)
            targets = [event_id]
            if cal.events[event_id].get("recurrence"):
                targets += [i for i, e in cal.events.items() if e.get("recurringEventId") == event_id]
            for eid in targets:
                old = cal.events[eid]
                stub: dict[str, Any] = {"kind": "calendar#event", "id": eid, "status": "cancelled"}
                if eid == event_id and "recurringEventId" in old:  # deleting one occurrence cancels it
                    stub.update(recurringEventId=old["recurringEventId"], originalStartTime=old["originalStartTime"])
                stub["etag"] = f'"{cal.seq + 1}{secrets.token_hex(4)}"'
                cal.events[eid] = stub
                cal.deleted.add(eid)
                self._stamp(cal, eid)

    def _exception_id(self, cal: CalendarData, series_id: str, original: Mapping[str, Any]) -> str:
        master = cal.events[series_id]
        return f"{series_id}_{slot_key(original, series_zone(master, cal.time_zone))}"

    def cancel_occurrence(self, calendar_id: str, series_id: str, original_start: Mapping[str, Any]) -> str:
        """Cancel one occurrence (``original_start`` as Google writes it: {"dateTime", "timeZone"} or {"date"})."""
        with self.lock:
            cal = self._cal(calendar_id)
            eid = self._exception_id(cal, series_id, original_start)
            stub = {
                "kind": "calendar#event", "id": eid, "status": "cancelled", "recurringEventId": series_id,
                "originalStartTime": dict(original_start),
            }  # fmt: skip
            self.put_event(calendar_id, stub, raw=True)
            return eid

    def move_occurrence(
        self, calendar_id: str, series_id: str, original_start: Mapping[str, Any], **fields: Any
    ) -> dict[str, Any]:
        """Store an exception: the occurrence at ``original_start`` with ``fields`` changed (start, end...)."""
        with self.lock:
            cal = self._cal(calendar_id)
            master = cal.events[series_id]
            eid = self._exception_id(cal, series_id, original_start)
            event = {k: v for k, v in master.items() if k not in ("recurrence", "id", "etag", "created", "updated")}
            event.update(id=eid, recurringEventId=series_id, originalStartTime=dict(original_start))
            event.update(fields)
            return self.put_event(calendar_id, event)

    def exceptions_of(self, cal: CalendarData, series_id: str) -> dict[str, dict[str, Any]]:
        master = cal.events[series_id]
        tz = series_zone(master, cal.time_zone)
        return {
            slot_key(e["originalStartTime"], tz): e
            for e in cal.events.values()
            if e.get("recurringEventId") == series_id and "originalStartTime" in e
        }

    # -- sync tokens ---------------------------------------------------------------------------

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Every sync token issued so far, and the page token of every round in progress, gets 410
        fullSyncRequired."""
        with self.lock:
            for cal in self.calendars.values():
                if calendar_id is None or cal.id == calendar_id or (calendar_id == "primary" and cal.primary):
                    cal.epoch += 1

    # -- auth ------------------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        with self.lock:
            _secret, tokens = self.clients.setdefault(client_id, (client_secret, set()))
            tokens.add(refresh_token)

    def add_service_account(self, client_email: str, public_key_pem: str) -> None:
        with self.lock:
            self.service_accounts[client_email] = public_key_pem

    def issue_token(self) -> str:
        with self.lock:
            token = "ya29.emu-" + secrets.token_urlsafe(24)
            self.access_tokens[token] = time.time() + self.expires_in
            return token

    def add_static_token(self, token: str, lifetime: float = 86400.0) -> None:
        with self.lock:
            self.access_tokens[token] = time.time() + lifetime

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.access_tokens.get(token)
            return expiry is not None and expiry > time.time()

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is refused (401) from now on."""
        with self.lock:
            self.access_tokens.clear()

    # -- faults and the request log --------------------------------------------------------------

    def inject(
        self, status: int, *, times: int = 1, reason: str | None = None, retry_after: float | None = None,
        delay: float = 0.0, path_contains: str = "",
    ) -> None:  # fmt: skip
        """Fail the next ``times`` API requests with ``status`` (0: answer normally after ``delay``)."""
        with self.lock:
            self.faults.append(
                Fault(status=status, times=times, reason=reason, retry_after=retry_after, delay=delay,
                      path_contains=path_contains)
            )  # fmt: skip

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.path_contains in path:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def record(self, rec: RequestRecord) -> None:
        with self.lock:
            self.requests.append(rec)

    def requests_to(self, suffix: str, method: str = "GET") -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()
