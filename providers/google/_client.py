"""The google endpoints (calendarList, events.list, events.instances) and the error table: the one
place where HTTP statuses and Google error reasons become calbridge errors.

Everything else about a request (retries, the deadline, refresh-once on a 401, the account's TLS)
is the toolkit's :class:`~calbridge.toolkit.HttpClient`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from calbridge.errors import (
    CursorExpired,
    NotFound,
    ProviderError,
    RateLimited,
)  # fmt: skip
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

_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def error_for(response: Response, what: str, *, cursor: bool = True) -> ProviderError | None:
    """The calbridge error for a Google response (None: a 200, accepted).

    410 means two things (G3): on a request carrying a cursor (events.list with a syncToken or the
    pageToken of a round in progress) the cursor is dead, whatever the reason (``fullSyncRequired``,
    ``updatedMinTooLongAgo``): :class:`CursorExpired`. Without one (``cursor=False``:
    events.instances) it is ``deleted``, the resource is gone: :class:`NotFound`, like 404.
    """
    status = response.status
    if status == 200:
        return None
    reason = None
    message = f"HTTP {status}"
    try:
        err = json.loads(response.body).get("error", {})
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            errors = err.get("errors") or []
            if errors and isinstance(errors[0], dict):
                reason = errors[0].get("reason")
    except (ValueError, AttributeError):
        pass
    text = f"google: {message}" + (f" ({reason})" if reason else "")
    kw: dict[str, Any] = {"provider": "google", "status": status, "code": reason}
    if status == 410:
        return CursorExpired(text, **kw) if cursor else NotFound(text, **kw)
    if status == 429 or (status == 403 and reason in _RATE_REASONS):
        return RateLimited(text, retry_after=retry_after_seconds(response.headers.get("Retry-After")), **kw)
    return error_by_status(status, text, provider="google", code=reason)


_without_cursor = functools.partial(error_for, cursor=False)
_resuming = resuming(error_for)


def path_segment(value: str) -> str:
    return quote(value, safe="")


class GoogleClient:
    """GETs against ``{base_url}/calendar/v3``, each answer decoded into its ``_wire`` Structs."""

    def __init__(self, ctx: ProviderContext, tokens: TokenSource, *, base_url: str, request_timeout: float) -> None:
        self.http = HttpClient(
            ctx, provider="google", base_url=f"{base_url.rstrip('/')}/calendar/v3", errors=error_for, tokens=tokens,
            timeout=request_timeout, headers={"Accept": "application/json"},
        )  # fmt: skip

    async def calendar_list(self, params: Mapping[str, str]) -> CalendarList:
        """One calendarList page."""
        what = "calendarList"
        return await self.http.request_decoded("GET", "/users/me/calendarList", decode_calendar_list,
                                               params=params, what=what)  # fmt: skip

    async def events(self, calendar_id: str, params: Mapping[str, str]) -> DecodedPage[EventsPage, GEvent]:
        """One events.list page (a 410, or a 400 to the pageToken of a round in progress:
        :class:`CursorExpired`)."""
        what = f"events.list {calendar_id}"
        # A pageToken the server cannot take back (1 MB: "URL too long") would fail every later sync.
        table = _resuming if "pageToken" in params else error_for
        return await self.http.request_decoded("GET", f"/calendars/{path_segment(calendar_id)}/events", EVENTS.decode,
                                               params=params, what=what, errors=table)  # fmt: skip

    async def instances(
        self, calendar_id: str, series_id: str, params: Mapping[str, str]
    ) -> DecodedPage[EventsPage, GEvent]:
        """One events.instances page (a 404 or 410 ``deleted``: :class:`NotFound`)."""
        what = f"events.instances {series_id}"
        path = f"/calendars/{path_segment(calendar_id)}/events/{path_segment(series_id)}/instances"
        return await self.http.request_decoded("GET", path, EVENTS.decode, params=params, what=what,
                                               errors=_without_cursor)  # fmt: skip
