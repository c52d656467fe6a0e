"""HTTP for the google provider: GET requests on the engine's session, and the one place where
HTTP statuses and Google error reasons become calbridge errors.

Each request runs under ``ctx.retry.call`` (rate limits and transient failures wait and retry
there); a 401 refreshes the token once and tries again, then is an :class:`AuthError`.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    TokenExpired,
    TransientError,
)  # fmt: skip
from calbridge.provider import ProviderContext

from ._auth import TokenSource

DEFAULT_BASE_URL = "https://www.googleapis.com"
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_DEFAULT_TIMEOUT = 60.0


def path_segment(value: str) -> str:
    return quote(value, safe="")


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for(status: int, body: bytes, retry_after: str | None, *, cursor: bool = True) -> ProviderError:
    """The calbridge error for a Google error response.

    410 means two things (G3): on a request carrying a cursor (events.list with a syncToken or the
    pageToken of a round in progress) the cursor is dead, whatever the reason (``fullSyncRequired``,
    ``updatedMinTooLongAgo``): :class:`CursorExpired`. Without one (``cursor=False``:
    events.instances) it is ``deleted``, the resource is gone: :class:`NotFound`, like 404.
    """
    reason = None
    message = f"HTTP {status}"
    try:
        err = json.loads(body).get("error", {})
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
        return RateLimited(text, retry_after=_retry_after(retry_after), **kw)
    if status == 401:
        return TokenExpired(text, **kw)
    if status == 403:
        return PermissionDenied(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    if status >= 500 or status == 408:
        return TransientError(text, **kw)
    return InvalidRequest(text, **kw)


class GoogleClient:
    """GETs against ``{base_url}/calendar/v3`` returning raw JSON bytes (decoded by ``_convert``)."""

    def __init__(self, ctx: ProviderContext, tokens: TokenSource) -> None:
        self._ctx = ctx
        base = (ctx.account.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._root = f"{base}/calendar/v3"
        seconds = float(ctx.account.options.get("timeout", _DEFAULT_TIMEOUT))
        self._timeout = aiohttp.ClientTimeout(total=seconds)
        self._tokens = tokens

    async def _once(self, url: str, params: Mapping[str, str], cursor: bool) -> bytes:
        headers = {"Authorization": await self._tokens.authorization(), "Accept": "application/json"}
        try:
            async with self._ctx.session.get(
                url, params=params, headers=headers, ssl=self._ctx.ssl if self._ctx.ssl is not None else True,
                timeout=self._timeout,
            ) as resp:  # fmt: skip
                body = await resp.read()
                if resp.status == 200:
                    return body
                raise error_for(resp.status, body, resp.headers.get("Retry-After"), cursor=cursor)
        except TimeoutError:
            raise ProviderTimeout("google: request timed out", provider="google") from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"google: {type(exc).__name__}", provider="google") from None

    async def get(
        self, path: str, params: Mapping[str, str], *, what: str = "google request", cursor: bool = True
    ) -> bytes:
        """GET ``path`` (below /calendar/v3) and return the 200 body; ``cursor``: see :func:`error_for`.

        Raises:
            CursorExpired, RateLimited, TransientError, AuthError, PermissionDenied, NotFound, InvalidRequest.
        """
        url = self._root + path

        # A coroutine function, not a lambda: tenacity only awaits what it sees as async.
        async def attempt() -> bytes:
            return await self._once(url, params, cursor)

        try:
            return await self._ctx.retry.call(attempt, what=what)
        except TokenExpired:
            if not self._tokens.refreshable:
                raise AuthError("google: the configured token was refused", provider="google", status=401) from None
        self._tokens.invalidate()
        try:
            return await self._ctx.retry.call(attempt, what=what)
        except TokenExpired as exc:
            raise AuthError("google: credentials refused after a refresh", provider="google", status=401,
                            code=exc.code) from None  # fmt: skip
