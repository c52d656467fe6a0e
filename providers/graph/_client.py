"""The graph endpoints (a mailbox's calendars, calendarView delta, an event, its instances) and the
error table: the one place where HTTP statuses and Graph error codes become calbridge errors.

- 410, or ``error.code`` syncStateNotFound / resyncRequired / syncStateInvalid → CursorExpired;
- 429, and 503/504 with ``Retry-After`` (seconds, possibly fractional, or a date) → RateLimited;
- other 5xx → TransientError;
- 401 → TokenExpired (the client refreshes once and retries; refused again: AuthError);
- 403 → PermissionDenied; 404 → NotFound; other 3xx and 4xx → InvalidRequest.

Everything else about a request (retries, the deadline, refresh-once, the account's TLS, the origin
check that keeps the bearer token on base_url's origin when following nextLink/deltaLink) is the
toolkit's :class:`~calbridge.toolkit.HttpClient`, which also holds the mailbox's semaphore (Outlook
allows 4 concurrent requests per mailbox) and puts the Prefer headers on every request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any
from urllib.parse import quote, urlencode

from calbridge.errors import (
    CursorExpired,
    ProviderError,
    RateLimited,
)  # fmt: skip
from calbridge.model import Window
from calbridge.provider import ProviderContext
from calbridge.toolkit import (
    DecodedPage,
    HttpClient,
    Response,
    TokenSource,
    error_by_status,
    resuming,
    retry_after_seconds,
)

from ._wire import EVENTS, CalendarList, EventsPage, GEvent, decode_calendar_list

_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


def _graph_error(body: bytes) -> tuple[str | None, str]:
    """``{error: {code, message, innerError}}`` → (code, message); tolerant of anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, ""
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return None, ""
    code = err.get("code")
    inner = err.get("innerError") or err.get("innererror")
    if isinstance(inner, dict) and isinstance(inner.get("code"), str) and not code:
        code = inner["code"]
    message = str(err.get("message") or "")[:300]
    return (str(code) if code else None), message


def error_for(response: Response, what: str) -> ProviderError | None:
    """The typed error for a Graph response (None: a 2xx, accepted); ``what`` names the call."""
    status = response.status
    if status < 300:
        return None
    code, message = _graph_error(response.body)
    text = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    kw: dict[str, Any] = {"provider": "graph", "status": status, "code": code}
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 410 or (code or "").lower() in _EXPIRED_CODES:
        return CursorExpired(text, **kw)
    if status == 429 or (status in (503, 504) and wait is not None):
        return RateLimited(text, retry_after=wait, **kw)
    return error_by_status(status, text, provider="graph", code=code)


_resuming = resuming(error_for)


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_query(window: Window) -> str:
    return urlencode({"startDateTime": _stamp(window.start), "endDateTime": _stamp(window.end)})


class GraphClient:
    """GETs against one mailbox (``{base_url}/users/{user}`` or ``{base_url}/me``), each answer
    decoded into its ``_wire`` Structs.

    A ``url`` argument is a path below ``base_url`` or a link taken from a response (on base_url's
    origin, else :class:`~calbridge.errors.InvalidResponse`).
    """

    def __init__(
        self,
        ctx: ProviderContext,
        tokens: TokenSource,
        *,
        base_url: str,
        user: str | None,
        semaphore: asyncio.Semaphore,
        prefer: str,
        request_timeout: float,
    ) -> None:
        self.http = HttpClient(
            ctx, provider="graph", base_url=base_url, errors=error_for, tokens=tokens, timeout=request_timeout,
            semaphore=semaphore, headers={"Accept": "application/json", "Prefer": prefer},
        )  # fmt: skip
        self.root = "/me" if user is None else f"/users/{quote(user, safe='@')}"

    def same_origin(self, url: str) -> bool:
        return self.http.same_origin(url)

    def calendars_url(self) -> str:
        return f"{self.root}/calendars"

    def delta_url(self, calendar_id: str, window: Window) -> str:
        """The first request of a full calendarView delta round over ``window``."""
        return f"{self._calendar_path(calendar_id)}/calendarView/delta?{_window_query(window)}"

    def instances_url(self, series_id: str, window: Window) -> str:
        return f"{self._event_path(series_id)}/instances?{_window_query(window)}"

    def _calendar_path(self, calendar_id: str) -> str:
        if calendar_id == "primary":
            return f"{self.root}/calendar"
        return f"{self.root}/calendars/{quote(calendar_id, safe='')}"

    def _event_path(self, event_id: str) -> str:
        return f"{self.root}/events/{quote(event_id, safe='')}"

    async def calendars(self, url: str) -> CalendarList:
        """One page of the mailbox's calendars."""
        return await self.http.request_decoded("GET", url, decode_calendar_list, what="list calendars")

    async def events(self, url: str, *, what: str) -> DecodedPage[EventsPage, GEvent]:
        """One calendarView delta or instances page (CursorExpired: the delta link is dead, or a link
        taken from a page is answered 400)."""
        table = _resuming if "://" in url else error_for
        return await self.http.request_decoded("GET", url, EVENTS.decode, what=what, errors=table)

    async def event(self, event_id: str, *, what: str) -> bytes:
        """``GET /events/{id}``, undecoded (the caller decides what an off-shape one means).

        Raises:
            NotFound: no such event (any more).
        """
        return (await self.http.request("GET", self._event_path(event_id), what=what)).body
