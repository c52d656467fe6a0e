"""HTTP for the Feishu open platform: the one place where ``{code, msg, data}`` envelopes and
transport failures become calbridge's typed errors.

Business APIs answer ``{"code": 0, "msg": "success", "data": {...}}``; failures come as 4xx/5xx and
sometimes as HTTP 200 with a non-zero ``code``, so the code decides, not the status. Token
endpoints answer flat bodies (no ``data``). Every request runs under ``ctx.retry.call``: rate limits
(HTTP 429, codes 99991400/190004/190005/190010) wait ``x-ogw-ratelimit-reset`` seconds, 5xx and
dropped connections back off. A token the gateway rejects mid-round is refreshed once and the
request sent again. Messages carry status, code and the provider's text, never a token.

Event and attendee pages are decoded here in one typed pass (:func:`decode_data`, ``{code, msg,
data}`` with ``data`` straight into the caller's msgspec Struct); everything else, and every failed
response, goes through :func:`decode`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import aiohttp
import msgspec

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    TokenExpired,
    TransientError,
)

if TYPE_CHECKING:
    from calbridge.provider import ProviderContext

T = TypeVar("T")
R = TypeVar("R")
TIMEOUT = 60.0
RATE_LIMIT_CODES = frozenset({99991400, 190004, 190005, 190010})
# Gateway codes for a missing, invalid or expired access token: refresh once and resend.
TOKEN_CODES = frozenset({99991661, 99991663, 99991664, 99991665, 99991668, 99991677})


class TooManyInstances(InvalidRequest):
    """instance_view code 193104: more than 1000 instances in the range; shrink it."""


class Envelope(msgspec.Struct, Generic[T], gc=False):
    """A business response, ``data`` typed by the caller (see :func:`decode_data`)."""

    code: Any = None
    msg: Any = None
    data: T | None = None


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


def error_for(status: int, code: int | None, msg: str, reset: str | None, what: str) -> ProviderError:
    """The typed error for one failed response."""
    text = f"feishu {what}: {msg or 'error'} (code {code}, HTTP {status})"
    kw: dict[str, Any] = {"provider": "feishu", "status": status, "code": None if code is None else str(code)}
    if status == 429 or code in RATE_LIMIT_CODES:
        retry_after: float | None = None
        if reset:
            try:
                retry_after = max(float(reset), 0.0)
            except ValueError:
                retry_after = None
        return RateLimited(text, retry_after=retry_after, **kw)
    if code in TOKEN_CODES:
        return TokenExpired(f"feishu {what}: access token rejected ({msg}; code {code})", **kw)
    if code is not None and code in _CODES:
        cls, meaning = _CODES[code]
        return cls(f"feishu {what}: {meaning} (code {code}, HTTP {status}: {msg})", **kw)
    if status >= 500:
        return TransientError(text, **kw)
    if status in (401,):
        return AuthError(text, **kw)
    if status == 403:
        return PermissionDenied(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    if status >= 400:
        return InvalidRequest(text, **kw)
    return InvalidResponse(text, **kw)


def decode(status: int, raw: bytes, reset: str | None, what: str, *, flat: bool = False) -> dict[str, Any]:
    """``data`` of a successful envelope (the whole body when ``flat``), else the typed error."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if status >= 500 or status == 429:
            raise error_for(status, None, "non-JSON response", reset, what)
        raise InvalidResponse(f"feishu {what}: non-JSON response (HTTP {status})", provider="feishu", status=status)
    code = body.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = 0 if status == 200 and code is None else None
    if status == 200 and code == 0:
        if flat:
            return body
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    msg = body.get("msg") or body.get("error_description") or body.get("error") or ""
    raise error_for(status, code, str(msg)[:300], reset, what)


def decode_data(
    status: int, raw: bytes, reset: str | None, what: str, decoder: msgspec.json.Decoder[Envelope[T]]
) -> T | None:
    """``data`` of a successful envelope decoded by ``decoder`` in one pass (an empty one when ``data``
    is missing or not an object, as :func:`decode` reads it); the typed error of a failed one.

    Returns None when the envelope succeeded but ``data`` does not fit the Struct (an off-shape item):
    the caller decodes ``raw`` again item by item.
    """
    if status == 200:
        try:
            env = decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # the slow path below tells a failure from an off-shape item
        else:
            code = env.code
            if code is None or (type(code) is int and code == 0):
                return env.data if env.data is not None else _empty(decoder)
    data = decode(status, raw, reset, what)  # raises the typed error of a failed response
    return None if data else _empty(decoder)


def _empty(decoder: msgspec.json.Decoder[Envelope[T]]) -> T:
    data = decoder.decode(b'{"data":{}}').data
    assert data is not None
    return data


async def send(
    ctx: ProviderContext,
    method: str,
    url: str,
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
    flat: bool = False,
) -> dict[str, Any]:
    """One HTTP exchange (no retry) decoded by :func:`decode`."""

    def parse(status: int, raw: bytes, reset: str | None) -> dict[str, Any]:
        return decode(status, raw, reset, what, flat=flat)

    return await exchange(ctx, method, url, what=what, parse=parse, params=params, body=body, token=token)


async def exchange(
    ctx: ProviderContext,
    method: str,
    url: str,
    *,
    what: str,
    parse: Callable[[int, bytes, str | None], R],
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> R:
    """One HTTP exchange (no retry); ``parse(status, body, rate-limit reset)`` reads the answer."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ssl: Any = ctx.ssl if ctx.ssl is not None else True
    try:
        async with asyncio.timeout(TIMEOUT):
            async with ctx.session.request(method, url, params=params, json=body, headers=headers, ssl=ssl) as resp:
                raw = await resp.read()
                return parse(resp.status, raw, resp.headers.get("x-ogw-ratelimit-reset"))
    except TimeoutError as exc:
        if isinstance(exc, ProviderError):
            raise
        raise ProviderTimeout(f"feishu {what}: no answer within {TIMEOUT:.0f}s", provider="feishu") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"feishu {what}: connection failed ({type(exc).__name__})", provider="feishu") from exc


class TokenSource(Protocol):
    """Hands out the access token to send, and a new one when the gateway rejected it."""

    async def token(self) -> str: ...

    async def refresh(self, rejected: str) -> str: ...


class FeishuClient:
    """Authenticated business calls below ``{base_url}/open-apis``."""

    def __init__(self, ctx: ProviderContext, tokens: TokenSource, base_url: str) -> None:
        self._ctx = ctx
        self._tokens = tokens
        self._base = base_url.rstrip("/")
        self.requests = 0

    async def get(self, path: str, params: Mapping[str, str], *, what: str) -> dict[str, Any]:
        return await self._call("GET", path, params, None, what, functools.partial(decode, what=what))

    async def get_data(
        self, path: str, params: Mapping[str, str], *, what: str, decoder: msgspec.json.Decoder[Envelope[T]]
    ) -> tuple[bytes, T | None]:
        """The body and its typed ``data`` (None: off-shape, see :func:`decode_data`) of a GET."""

        def parse(status: int, raw: bytes, reset: str | None) -> tuple[bytes, T | None]:
            return raw, decode_data(status, raw, reset, what, decoder)

        return await self._call("GET", path, params, None, what, parse)

    async def post(self, path: str, body: Mapping[str, Any] | None, *, what: str) -> dict[str, Any]:
        return await self._call("POST", path, None, body, what, functools.partial(decode, what=what))

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        what: str,
        parse: Callable[[int, bytes, str | None], R],
    ) -> R:
        url = self._base + path
        token = await self._tokens.token()

        async def once() -> R:
            self.requests += 1
            return await exchange(self._ctx, method, url, what=what, parse=parse, params=params, body=body, token=token)

        try:
            return await self._ctx.retry.call(once, what=f"feishu {what}")
        except TokenExpired:
            # Rejected mid-round (expired early, revoked, rotated elsewhere): refresh once, resend once.
            token = await self._tokens.refresh(token)
            return await self._ctx.retry.call(once, what=f"feishu {what}")
