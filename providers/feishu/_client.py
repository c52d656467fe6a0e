"""The Feishu endpoints (calendar list, primary calendar, events list, attendees, instances,
instance_view, the two token endpoints) and the error table: the one place where ``{code, msg,
data}`` envelopes, HTTP statuses and Feishu error codes become calbridge errors.

Business APIs answer ``{"code": 0, "msg": "success", "data": {...}}``; failures come as 4xx/5xx and
sometimes as HTTP 200 with a non-zero ``code``, so the code decides, not the status. Token endpoints
answer flat bodies (no ``data``). A non-200 answer is judged by the error table (:func:`error_for`);
a 200 by its envelope where it is decoded, inside the same attempt (:func:`decode`,
:func:`decode_page`: an events page is decoded once, its ``code`` read from the Struct), so a 200
that says it failed is retried, or refreshes the token, like any other failure. Rate limits (HTTP
429, codes 99991400/190004/190005/190010) wait ``x-ogw-ratelimit-reset`` seconds; the gateway's
token codes refresh the token once. Messages carry status, code and the provider's text, never a token.

Everything else about a request (retries, the deadline, refresh-once, the account's TLS) is the
toolkit's :class:`~calbridge.toolkit.HttpClient`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import msgspec

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TokenExpired,
    TransientError,
)  # fmt: skip
from calbridge.provider import ProviderContext
from calbridge.toolkit import (
    DecodedPage,
    HttpClient,
    PageDecoder,
    Response,
    TokenSource,
    error_by_status,
    reset_seconds,
    resuming,
)

from ._wire import ATTENDEES, EVENTS, AttendeesPage, EventsPage


class _Envelope(Protocol):
    @property
    def code(self) -> Any: ...


E = TypeVar("E", bound=_Envelope)
I = TypeVar("I")  # noqa: E741

CALENDARS = "/open-apis/calendar/v4/calendars"
TENANT_TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
USER_TOKEN_PATH = "/open-apis/authen/v2/oauth/token"
HEADERS = {"Content-Type": "application/json; charset=utf-8"}
RESET_HEADER = "x-ogw-ratelimit-reset"
RATE_LIMIT_CODES = frozenset({99991400, 190004, 190005, 190010})
# Gateway codes for a missing, invalid or expired access token: refresh once and resend.
TOKEN_CODES = frozenset({99991661, 99991663, 99991664, 99991665, 99991668, 99991677})


class TooManyInstances(InvalidRequest):
    """instance_view code 193104: more than 1000 instances in the range; shrink it."""


# code → (error type, what it means for a calbridge user). Codes from the seeds (list events,
# instances, instance_view), the gateway table and the token endpoints (apis.md 1.D, 1.E).
_CODES: dict[int, tuple[type[ProviderError], str]] = {
    190002: (InvalidRequest, "invalid parameters in request"),
    190003: (TransientError, "internal service error"),
    190006: (AuthError, "wrong unit for app tenant: check app_id and app_secret"),
    190007: (PermissionDenied, "the app's bot_id was not found: enable the app's bot ability"),
    190008: (CursorExpired, "page_token or sync_token expired: a full listing is needed"),
    190009: (InvalidRequest, "sync_token cannot be used with other request restrictions"),
    190011: (PermissionDenied, "the tenant's encryption key was deleted: the data is unavailable"),
    190012: (PermissionDenied, "the tenant's decryption key was deleted: the data is unavailable"),
    191000: (NotFound, "calendar not found"),
    191001: (NotFound, "invalid calendar_id"),
    191002: (PermissionDenied, "no access to this calendar"),
    191003: (NotFound, "the calendar was deleted"),
    191004: (InvalidRequest, "invalid calendar type: only primary, shared and resource calendars can be read"),
    193000: (InvalidRequest, "invalid event_id"),
    193001: (NotFound, "event not found"),
    193002: (PermissionDenied, "no permission to read this event"),
    193003: (NotFound, "the event was deleted"),
    193103: (InvalidRequest, "instance_view range must be shorter than 40 days"),
    193104: (TooManyInstances, "more than 1000 instances in the range"),
    195100: (AuthError, "the user left the tenant or does not exist in it"),
    99991401: (PermissionDenied, "the caller's IP is not in the app's allow-list"),
    99991403: (PermissionDenied, "the app's monthly API quota is used up"),
    99991671: (AuthError, "malformed access token"),
    99991672: (PermissionDenied, "the app lacks the scope this API needs"),
    99991676: (PermissionDenied, "the token lacks the scope this API needs"),
    10003: (AuthError, "invalid app credentials parameters"),
    10014: (AuthError, "app id or app secret invalid"),
    10015: (AuthError, "wrong app secret"),
    20001: (AuthError, "refresh request missing a parameter"),
    20002: (AuthError, "wrong client secret"),
    20024: (AuthError, "the refresh token belongs to another app"),
    20026: (AuthError, "invalid refresh token: re-authorise the user"),
    20036: (AuthError, "unsupported grant_type"),
    20037: (AuthError, "the refresh token expired: re-authorise the user"),
    20050: (TransientError, "token service error"),
    20064: (AuthError, "the refresh token was revoked: re-authorise the user"),
    20070: (AuthError, "both Basic auth and a body secret were sent"),
    20072: (TransientError, "token service unavailable"),
    20073: (AuthError, "the refresh token was already used: re-authorise the user"),
    20074: (AuthError, "the app may not refresh user tokens"),
}


def code_error(status: int, code: int | None, msg: str, reset: str | None, what: str) -> ProviderError:
    """The typed error for one failed answer: its ``code`` decides, then its HTTP ``status``.

    ``what`` names the call (``"feishu event list"``); ``reset`` is the ``x-ogw-ratelimit-reset`` header.
    """
    text = f"{what}: {msg or 'error'} (code {code}, HTTP {status})"
    kw: dict[str, Any] = {"provider": "feishu", "status": status, "code": None if code is None else str(code)}
    if status == 429 or code in RATE_LIMIT_CODES:
        return RateLimited(text, retry_after=reset_seconds(reset), **kw)
    if code in TOKEN_CODES:
        return TokenExpired(f"{what}: access token rejected ({msg}; code {code})", **kw)
    if code is not None and code in _CODES:
        cls, meaning = _CODES[code]
        return cls(f"{what}: {meaning} (code {code}, HTTP {status}: {msg})", **kw)
    # A 401 without a token code is the app's credentials, not a stale token: no refresh helps.
    return error_by_status(status, text, provider="feishu", code=kw["code"], unauthorized=AuthError)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: its type, and a short string's text (never a long one)."""
    if isinstance(value, str):
        return f"the string {value[:20]!r}" if len(value) <= 20 else f"a string of {len(value)} characters"
    names = {bool: "a boolean", float: "a number with a fraction", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def failure(status: int, body: Any, reset: str | None, what: str) -> ProviderError | None:
    """The envelope rule: the typed error of an answer whose parsed JSON is ``body``, or None for a
    success (HTTP 200 with ``code`` 0, or none at all)."""
    if not isinstance(body, dict):
        if status >= 500 or status == 429:
            return code_error(status, None, "non-JSON response", reset, what)
        return InvalidResponse(f"{what}: non-JSON response (HTTP {status})", provider="feishu", status=status)
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        if status == 200 and code is not None:
            # A 200 whose code is no integer ("zero", true, 0.0) says neither success nor which failure.
            return InvalidResponse(f"{what}: invalid response: code is {_kind(code)}, not an integer (HTTP 200)",
                                   provider="feishu", status=status)  # fmt: skip
        code = 0 if status == 200 and code is None else None
    if status == 200 and code == 0:
        return None
    msg = body.get("msg") or body.get("error_description") or body.get("error") or ""
    return code_error(status, code, str(msg)[:300], reset, what)


def error_for(response: Response, what: str) -> ProviderError | None:
    """The error table: the typed error of a non-200 answer (its ``code`` when it has one, else its
    status). A 200 passes: its envelope is judged where it is decoded, in the same attempt
    (:func:`decode`, :func:`decode_page`), so that a page is parsed once."""
    if response.status == 200:
        return None
    return failure(response.status, _json(response.body), response.headers.get(RESET_HEADER), what)


_resuming = resuming(error_for)


def decode(response: Response, what: str, *, flat: bool = False) -> dict[str, Any]:
    """``data`` of a successful envelope (``{}`` when it is missing or not an object; the whole body
    when ``flat``: the token endpoints).

    Raises:
        ProviderError: the typed error of a failed one (a 200 with a non-zero code included).
    """
    body = _json(response.body)
    error = failure(response.status, body, response.headers.get(RESET_HEADER), what)
    if error is not None:
        raise error
    if flat:
        return body  # type: ignore[no-any-return]
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def decode_page(decoder: PageDecoder[E, I], response: Response, what: str) -> DecodedPage[E, I]:
    """An events or attendee page: the envelope and its ``data`` in one typed pass (item by item with
    quarantine when an item does not fit), then its ``code`` checked as :func:`decode` does. ``data``
    missing or not an object reads as an empty page.

    Raises:
        ProviderError: the typed error of a failed envelope. InvalidResponse: ``data`` is no page.
    """
    try:
        page = decoder.decode(response.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        data = decode(response, what)  # a failure's own error first: its data need not fit
        if data:
            raise InvalidResponse(f"{what}: undecodable page: {exc}", provider="feishu") from None
        return decoder.decode(b'{"data":{}}')
    code = page.page.code
    if code is not None and not (type(code) is int and code == 0):
        decode(response, what)  # raises: a non-zero (or non-integer) code is a failure
    return page


class FeishuClient:
    """Business calls below ``{base_url}/open-apis`` with the account's token, each answer decoded
    into its ``_wire`` Structs (or a dict, for the small calls). ``requests`` counts the requests
    sent (each attempt is one; token fetches are not counted)."""

    def __init__(self, ctx: ProviderContext, tokens: TokenSource, *, base_url: str, request_timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HttpClient(ctx, provider="feishu", base_url=self.base_url, errors=error_for, tokens=tokens,
                               timeout=request_timeout, headers=HEADERS)  # fmt: skip

    @property
    def requests(self) -> int:
        return self.http.sent

    async def _dict(self, method: str, path: str, what: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self.http.request_parsed(method, path, lambda r: decode(r, f"feishu {what}"), params=params,
                                              what=what)  # fmt: skip

    async def _page(
        self, decoder: PageDecoder[E, I], path: str, params: Mapping[str, str], what: str
    ) -> DecodedPage[E, I]:
        # A page_token or sync_token the server answers 400 to is dead: list in full (not fail forever).
        table = _resuming if "page_token" in params or "sync_token" in params else error_for
        return await self.http.request_parsed("GET", path, lambda r: decode_page(decoder, r, f"feishu {what}"),
                                              params=params, what=what, errors=table)  # fmt: skip

    async def calendar_list(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One page of the calendar list (``data``: ``calendar_list``, ``has_more``, ``page_token``)."""
        return await self._dict("GET", CALENDARS, "calendar list", params)

    async def primary(self) -> dict[str, Any]:
        """``POST calendars/primary`` (``data.calendars[]``: ``calendar``, ``user_id``)."""
        return await self._dict("POST", f"{CALENDARS}/primary", "primary calendar")

    async def events(self, calendar_id: str, params: Mapping[str, str]) -> EventsPage:
        """One events list page (code 190008: :class:`CursorExpired`)."""
        return await self._page(EVENTS, f"{CALENDARS}/{calendar_id}/events", params, "event list")

    async def attendees(self, calendar_id: str, event_id: str, params: Mapping[str, str]) -> AttendeesPage:
        """One page of an event's attendee list."""
        return await self._page(ATTENDEES, f"{CALENDARS}/{calendar_id}/events/{event_id}/attendees", params,
                                "attendees")  # fmt: skip

    async def instances(self, calendar_id: str, event_id: str, params: Mapping[str, str]) -> EventsPage:
        """One page of a series' instances (the series gone: :class:`NotFound`)."""
        return await self._page(EVENTS, f"{CALENDARS}/{calendar_id}/events/{event_id}/instances", params, "instances")

    async def instance_view(self, calendar_id: str, params: Mapping[str, str]) -> EventsPage:
        """A calendar's instances over a range under 40 days (too many: :class:`TooManyInstances`)."""
        return await self._page(EVENTS, f"{CALENDARS}/{calendar_id}/events/instance_view", params, "instance_view")


class TokenEndpoints:
    """The token endpoints: POSTs without a token answering flat bodies. One attempt each: a token is
    fetched inside the attempt of the call that needs it, whose retry policy covers the fetch."""

    def __init__(self, ctx: ProviderContext, *, base_url: str, request_timeout: float) -> None:
        self.http = HttpClient(ctx, provider="feishu", base_url=base_url, errors=error_for, timeout=request_timeout,
                               headers=HEADERS)  # fmt: skip

    async def _post(self, path: str, body: Mapping[str, str], what: str) -> dict[str, Any]:
        return await self.http.request_parsed("POST", path, lambda r: decode(r, f"feishu {what}", flat=True),
                                              json=body, what=what, authorize=False, retry=False)  # fmt: skip

    async def tenant(self, app_id: str, app_secret: str) -> dict[str, Any]:
        """``tenant_access_token/internal``: ``tenant_access_token`` and ``expire`` (seconds)."""
        return await self._post(TENANT_TOKEN_PATH, {"app_id": app_id, "app_secret": app_secret},
                                "tenant_access_token")  # fmt: skip

    async def user(self, app_id: str, app_secret: str, refresh_token: str) -> dict[str, Any]:
        """``oauth/token`` with ``grant_type=refresh_token``: ``access_token``, ``expires_in`` and
        the rotated ``refresh_token``."""
        body = {"grant_type": "refresh_token", "client_id": app_id, "client_secret": app_secret,
                "refresh_token": refresh_token}  # fmt: skip
        return await self._post(USER_TOKEN_PATH, body, "user_access_token refresh")
