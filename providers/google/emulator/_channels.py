"""The emulator's push channels (events.watch) and their delivery log: thread-safe, so tests read
and tune them from their own thread while the app's loop delivers.

``state.push`` is the Python API: ``max_lifetime`` (seconds a channel may live, default 7 days),
``retries``/``backoff``/``timeout`` (delivery on 5xx), ``channels()``, ``deliveries()``,
``expire(channel_id)`` and ``notify(calendar_id)``. A data change of a calendar (every stamp in
:class:`~._state.GoogleState`) calls :meth:`Channels.changed`; the app's deliverer, attached to its
loop, turns that into ``exists`` messages (``_delivery``).
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import attrs

from ._answers import Result, error

WEEK = 7 * 86400.0
MAX_ID = 64  # apis.md 3.F: a channel id is at most 64 characters
TYPES = frozenset({"web_hook", "webhook"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.define(kw_only=True)
class Channel:
    """One channel as the emulator holds it; ``number`` is the last message number it used."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str  # the calendar's own id ("primary" resolved)
    address: str
    expiration: int  # Unix ms
    token: str | None = attrs.field(default=None, repr=False)
    number: int = 0
    stopped: bool = False

    def live(self, at_ms: int) -> bool:
        return not self.stopped and at_ms < self.expiration


@attrs.define(kw_only=True)
class Delivery:
    """One message sent to a channel's address: every attempt's status (0: no answer), in order."""

    channel_id: str
    resource_id: str
    calendar_id: str
    state: str  # "sync" or "exists"
    number: int
    address: str
    started: float  # time.monotonic() of the first attempt
    statuses: list[int] = attrs.field(factory=list)
    finished: float | None = None

    @property
    def status(self) -> int | None:
        """The last attempt's status (None before the first answer)."""
        return self.statuses[-1] if self.statuses else None

    @property
    def acknowledged(self) -> bool:
        """Answered with a status Google takes as an acknowledgement (apis.md 3.F)."""
        return self.status in (102, 200, 201, 202, 204)


def _address_error(address: object) -> Result | None:
    """The real API refuses a non-HTTPS address; the emulator also takes http on loopback."""
    if not isinstance(address, str) or not address:
        return error(400, "required", "Required", location="address")
    parts = urlsplit(address)
    if parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK):
        return None
    return error(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address)


@attrs.frozen(kw_only=True)
class WatchRequest:
    """A Channel body that passed the checks, its expiration already capped."""

    id: str
    address: str
    expiration: int  # Unix ms
    token: str | None = attrs.field(default=None, repr=False)


def parse_watch(body: object, *, now: int, max_lifetime: float) -> WatchRequest | Result:
    """The events.watch body checked (apis.md 3.F), or the 400 it answers. The expiration asked for
    is capped at ``max_lifetime`` seconds from ``now`` (ms); none asked: the cap."""
    if not isinstance(body, Mapping):
        return error(400, "parseError", "Parse Error")
    cid, kind, token = body.get("id"), body.get("type"), body.get("token")
    if not isinstance(cid, str) or not cid:
        return error(400, "required", "Required", location="id")
    if len(cid) > MAX_ID:
        return error(400, "invalid", "Channel id must be at most 64 characters", location="id")
    if kind not in TYPES:
        return error(400, "invalid", "Invalid channel type", location="type")
    bad = _address_error(body.get("address"))
    if bad is not None:
        return bad
    if token is not None and not isinstance(token, str):
        return error(400, "invalid", "Invalid token", location="token")
    longest = now + int(max_lifetime * 1000)
    asked = body.get("expiration")
    try:
        expiration = longest if asked in (None, "") else min(int(str(asked)), longest)
    except ValueError:
        return error(400, "invalid", "Invalid expiration", location="expiration")
    if expiration <= now:
        return error(400, "invalid", "Expiration must be in the future", location="expiration")
    return WatchRequest(id=cid, address=str(body["address"]), expiration=expiration, token=token)


class Channels:
    """Every channel opened on this emulator, the delivery log and the delivery settings."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.max_lifetime = WEEK
        self.retries = 3  # further attempts after a 5xx or no answer
        self.backoff = 1.0  # seconds before the first retry, doubled for each next one
        self.timeout = 10.0  # seconds per attempt
        self.ssl: ssl.SSLContext | bool = True  # how https addresses are checked
        self._channels: dict[str, Channel] = {}
        self._resources: dict[str, str] = {}  # calendar id -> its stable resourceId
        self._log: list[Delivery] = []
        self._dirty: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush: Callable[[set[str]], None] | None = None
        self._flush_due = False

    # -- what the HTTP handlers call -----------------------------------------------------------

    def open(self, calendar_id: str, asked_as: str, body: object, *, base_url: str) -> tuple[Result, Channel | None]:
        """events.watch: the answer, and the channel when one was opened."""
        asked = parse_watch(body, now=now_ms(), max_lifetime=self.max_lifetime)
        if not isinstance(asked, WatchRequest):
            return asked, None
        with self.lock:
            if asked.id in self._channels:
                return error(400, "channelIdNotUnique", f"Channel id {asked.id} not unique"), None
            resource = self._resources.setdefault(calendar_id, secrets.token_urlsafe(18))
            channel = Channel(
                id=asked.id, resource_id=resource, calendar_id=calendar_id, address=asked.address,
                resource_uri=f"{base_url}/calendar/v3/calendars/{quote(asked_as, safe='@')}/events?alt=json",
                expiration=asked.expiration, token=asked.token,
            )  # fmt: skip
            self._channels[asked.id] = channel
        answer: dict[str, Any] = {
            "kind": "api#channel", "id": asked.id, "resourceId": resource, "resourceUri": channel.resource_uri,
            "expiration": str(asked.expiration),
        }  # fmt: skip
        if asked.token is not None:
            answer["token"] = asked.token
        return (200, answer), channel

    def stop(self, body: object) -> Result | None:
        """channels.stop: None when stopped (an empty answer), else the error (404 for a channel that
        is unknown, stopped or expired)."""
        if not isinstance(body, Mapping):
            return error(400, "parseError", "Parse Error")
        cid, resource = body.get("id"), body.get("resourceId")
        with self.lock:
            channel = self._channels.get(cid) if isinstance(cid, str) else None
            if channel is None or channel.resource_id != resource or not channel.live(now_ms()):
                return error(404, "notFound", f"Channel '{cid}' not found for project")
            channel.stopped = True
        return None

    # -- the deliverer's side ------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop, flush: Callable[[set[str]], None]) -> None:
        """Deliver from ``loop``: ``flush(calendar ids)`` runs there after data changes."""
        with self.lock:
            self._loop, self._flush = loop, flush

    def detach(self) -> None:
        with self.lock:
            self._loop = self._flush = None
            self._dirty.clear()
            self._flush_due = False

    def _run_flush(self) -> None:
        with self.lock:
            dirty, self._dirty, self._flush_due = self._dirty, set(), False
            flush = self._flush
        if flush is not None and dirty:
            flush(dirty)

    def next_message(self, channel_id: str, state: str) -> Delivery | None:
        """A new log entry for the channel's next message, or None when it no longer delivers."""
        with self.lock:
            ch = self._channels.get(channel_id)
            if ch is None or not ch.live(now_ms()):
                return None
            ch.number += 1
            entry = Delivery(channel_id=ch.id, resource_id=ch.resource_id, calendar_id=ch.calendar_id, state=state,
                             number=ch.number, address=ch.address, started=time.monotonic())  # fmt: skip
            self._log.append(entry)
            return entry

    def answered(self, entry: Delivery, status: int, *, last: bool) -> None:
        with self.lock:
            entry.statuses.append(status)
            if last:
                entry.finished = time.monotonic()

    def token_of(self, channel_id: str) -> str | None:
        with self.lock:
            ch = self._channels.get(channel_id)
            return None if ch is None else ch.token

    # -- the Python API --------------------------------------------------------------------------

    def changed(self, calendar_id: str) -> None:
        """A calendar's data changed: its live channels get an ``exists`` message (changes made before
        the loop gets to it are one message; one made during a delivery gets another)."""
        with self.lock:
            if self._loop is None:
                return
            self._dirty.add(calendar_id)
            if self._flush_due:
                return
            self._flush_due = True
            loop = self._loop
        try:
            loop.call_soon_threadsafe(self._run_flush)
        except RuntimeError:  # the loop closed under us: the server is stopping
            with self.lock:
                self._flush_due = False

    notify = changed

    def channel(self, channel_id: str) -> Channel | None:
        """A copy of the channel (stopped and expired ones included)."""
        with self.lock:
            ch = self._channels.get(channel_id)
            return None if ch is None else attrs.evolve(ch)

    def channels(self, calendar_id: str | None = None, *, live: bool = True) -> list[Channel]:
        """Copies of the channels (of one calendar; only those still delivering unless ``live=False``)."""
        at = now_ms()
        with self.lock:
            return [
                attrs.evolve(c) for c in self._channels.values()
                if (calendar_id is None or c.calendar_id == calendar_id) and (c.live(at) or not live)
            ]  # fmt: skip

    def deliveries(self, channel_id: str | None = None) -> list[Delivery]:
        """Copies of the delivery log, oldest first (of one channel)."""
        with self.lock:
            return [
                attrs.evolve(d, statuses=list(d.statuses)) for d in self._log
                if channel_id is None or d.channel_id == channel_id
            ]  # fmt: skip

    def expire(self, channel_id: str) -> None:
        """End a channel's life now, as if its expiration had passed."""
        with self.lock:
            ch = self._channels[channel_id]
            ch.expiration = min(ch.expiration, now_ms())

    def clear_log(self) -> None:
        with self.lock:
            self._log.clear()
