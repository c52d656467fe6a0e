"""HTTP to Microsoft Graph on the engine's aiohttp session: the one place status codes become errors.

- 410, or ``error.code`` syncStateNotFound / resyncRequired / syncStateInvalid → CursorExpired;
- 429, and 503/504 with ``Retry-After`` (seconds, possibly fractional) → RateLimited;
- other 5xx, connection errors, timeouts → TransientError / ProviderTimeout;
- 401 → TokenExpired (the client refreshes once and retries) → AuthError;
- 403 → PermissionDenied; 404 → NotFound; other 4xx → InvalidRequest.

Every request runs under ``ctx.retry`` and the mailbox's semaphore (Outlook allows 4 concurrent
requests per mailbox), and carries the Prefer headers. The bearer token is only ever sent to the
origin of ``base_url``: nextLink/deltaLink are absolute URLs from responses, so they are checked.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

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
from calbridge.provider import ProviderContext

from ._auth import TokenSource

_EXPIRED_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
DEFAULT_TIMEOUT = 60.0


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; hosts compare case-insensitively."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a (fractional) number or an HTTP date; None when absent or bad."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


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


def error_for(status: int, body: bytes, headers: Mapping[str, str], what: str) -> ProviderError:
    """The typed error for a non-2xx Graph response."""
    code, message = _graph_error(body)
    text = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    kw: dict[str, Any] = {"provider": "graph", "status": status, "code": code}
    wait = retry_after(headers.get("Retry-After"))
    if status == 410 or (code or "").lower() in _EXPIRED_CODES:
        return CursorExpired(text, **kw)
    if status == 429 or (status in (503, 504) and wait is not None):
        return RateLimited(text, retry_after=wait, **kw)
    if status >= 500:
        return TransientError(text, **kw)
    if status == 401:
        return TokenExpired(text, **kw)
    if status == 403:
        return PermissionDenied(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    return InvalidRequest(text, **kw)


class GraphClient:
    """GETs JSON from Graph for one mailbox."""

    def __init__(
        self,
        ctx: ProviderContext,
        tokens: TokenSource,
        *,
        base_url: str,
        semaphore: asyncio.Semaphore,
        prefer: str,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._ctx = ctx
        self._tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self._semaphore = semaphore
        self._prefer = prefer
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def same_origin(self, url: str) -> bool:
        return origin(url) == self.origin

    async def get(self, url: str, *, what: str) -> bytes:
        """GET ``url`` (absolute, on base_url's origin) and return the 2xx body, undecoded (the caller
        decodes it into the Structs it needs, see ``_wire``).

        Raises:
            InvalidResponse: ``url`` is on another origin.
            AuthError: the token was refused twice; PermissionDenied, NotFound, CursorExpired,
            InvalidRequest: as answered; RateLimited, TransientError: after the retry policy gave up.
        """
        if not self.same_origin(url):
            # Never let a link taken from a response carry the bearer token to another host.
            raise InvalidResponse(
                f"{what}: refusing to follow a link to another origin than base_url ({origin(url)[1]})",
                provider="graph",
            )
        # A coroutine function (not a lambda): tenacity only awaits what it recognises as async.
        try:
            return await self._ctx.retry.call(functools.partial(self._once, url, what), what=what)
        except TokenExpired:
            await self._tokens.invalidate()
        try:
            return await self._ctx.retry.call(functools.partial(self._once, url, what), what=what)
        except TokenExpired as exc:
            raise AuthError(str(exc), provider="graph", status=exc.status, code=exc.code) from None

    async def _once(self, url: str, what: str) -> bytes:
        token = await self._tokens.token()
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Prefer": self._prefer,
        }
        try:
            async with (
                self._semaphore,
                self._ctx.session.get(
                    url,
                    headers=headers,
                    ssl=self._ctx.ssl if self._ctx.ssl is not None else True,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp,
            ):
                body = await resp.read()
                status = resp.status
                resp_headers = resp.headers
        except TimeoutError:
            raise ProviderTimeout(f"{what}: timed out", provider="graph") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"{what}: {type(exc).__name__}", provider="graph") from None
        if status >= 300:
            raise error_for(status, body, resp_headers, what)
        return body
