"""The one HTTP call path of a provider: :class:`HttpClient`.

A provider builds one from its :class:`~calbridge.provider.ProviderContext`, its ``base_url``, its
:data:`ErrorTable` and its :class:`~calbridge.toolkit.TokenSource`, and calls
:meth:`HttpClient.request`. Each call:

1. resolves a path against ``base_url``, and refuses an absolute link (a nextLink taken from a
   response) on another origin, with credentials in it (``https://user:pw@host``) or longer than the
   token cap (``settings.token_bytes``) with :class:`~calbridge.errors.InvalidResponse`: the bearer
   token is only ever sent to ``base_url``'s origin; redirects are not followed unless asked;
2. runs under ``ctx.retry.call`` (rate limits wait their ``retry_after``, transient failures back off),
   each attempt under the optional semaphore and a deadline of ``timeout`` seconds
   (:class:`~calbridge.errors.ProviderTimeout`), on the engine's session with the account's TLS
   (``ctx.ssl``); a dropped connection is a :class:`~calbridge.errors.TransientError`;
3. reads the body up to ``settings.body_bytes`` after decompression (a gzip bomb included) and stops
   there: a larger answer is an :class:`~calbridge.errors.InvalidResponse`; hands *every* response,
   success or not, to the error table, which returns the typed error or None (so a table may fail an
   HTTP 200 whose body says it failed, as Feishu's ``code`` does); JSON nested too deeply for the
   parser (``RecursionError``) in the table or the decoder is an InvalidResponse too;
4. on :class:`~calbridge.errors.TokenExpired` invalidates the rejected token and sends once more
   with a fresh one; a second rejection, or a token source that cannot refresh, is an
   :class:`~calbridge.errors.AuthError`.

Messages name the call (``what``), status and error codes, never a token or a query string.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import attrs
import msgspec

from ..errors import (
    AuthError,
    CursorExpired,
    InvalidRequest,
    InvalidResponse,
    ProviderError,
    ProviderTimeout,
    TokenExpired,
    TransientError,
)
from .options import DEFAULT_REQUEST_TIMEOUT
from .scrub import scrub_error
from .tokens import TokenSource

if TYPE_CHECKING:
    from ..provider import ProviderContext

__all__ = ["ErrorTable", "HttpClient", "Response", "has_userinfo", "origin", "resuming", "same_origin"]

T = TypeVar("T")
_NO_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=None)


@attrs.frozen(kw_only=True)
class Response:
    """One HTTP answer, read whole: ``status``, ``headers`` (case-insensitive), ``body`` (bytes)."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


ErrorTable = Callable[[Response, str], ProviderError | None]
"""``table(response, what)``: the typed error a response means, or None to accept it.

Called for every response, 2xx included. ``what`` is the call's label (``"google events.list
primary"``) for messages. Return :class:`~calbridge.errors.TokenExpired` for a rejected access token
(the client refreshes once), :class:`~calbridge.errors.RateLimited` with ``retry_after`` (see
:func:`~calbridge.toolkit.retry_after_seconds`), :class:`~calbridge.errors.TransientError` for what
may pass; anything else is not retried.
"""


def resuming(table: ErrorTable) -> ErrorTable:
    """``table`` for a request that resumes from a cursor (a page token, a link): a 400 is the server
    refusing the cursor (a token too long for a URL, one it no longer parses), a
    :class:`~calbridge.errors.CursorExpired`, so the round lists in full instead of failing forever."""

    def judge(response: Response, what: str) -> ProviderError | None:
        failure = table(response, what)
        # Only a plain "bad request": a rejected token (TokenExpired) or a rate limit keep their meaning.
        if response.status == 400 and (failure is None or type(failure) is InvalidRequest):
            code = None if failure is None else failure.code
            provider = None if failure is None else failure.provider
            return CursorExpired(f"{what}: the server refused the resume cursor (HTTP 400)", provider=provider,
                                 status=400, code=code)  # fmt: skip
        return failure

    return judge


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; hosts compare case-insensitively."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    """Same scheme, host and port, and neither carries credentials (``user:pw@``), which ``origin``
    ignores and aiohttp refuses next to an Authorization header."""
    return origin(a) == origin(b) and not has_userinfo(a) and not has_userinfo(b)


def has_userinfo(url: str) -> bool:
    """Whether ``url`` names a user or password before its host."""
    parts = urlsplit(url)
    return parts.username is not None or parts.password is not None


def _absolute(url: str) -> bool:
    return "://" in url.split("?", 1)[0] or url.startswith("//")


class HttpClient:
    """HTTP for one account of one provider (see the module docstring).

    ``headers`` go on every request (``Accept``, Graph's ``Prefer``); ``auth_scheme`` prefixes the
    token in ``Authorization``. ``sent`` counts the requests sent (each attempt is one).
    """

    def __init__(
        self,
        ctx: ProviderContext,
        *,
        provider: str,
        base_url: str,
        errors: ErrorTable,
        tokens: TokenSource | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        semaphore: asyncio.Semaphore | None = None,
        headers: Mapping[str, str] | None = None,
        auth_scheme: str = "Bearer",
    ) -> None:
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._ctx = ctx
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self._errors = errors
        self._tokens = tokens
        self.timeout = timeout
        self._semaphore = semaphore
        self._headers = dict(headers or {})
        self._scheme = auth_scheme
        self._ssl: Any = ctx.ssl if ctx.ssl is not None else True
        self.max_body = ctx.settings.body_bytes
        self.max_link = ctx.settings.token_bytes
        self.sent = 0

    def __repr__(self) -> str:
        return f"HttpClient({self.provider}, {self.base_url!r})"

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` is on ``base_url``'s origin (where the token may go), without credentials."""
        return origin(url) == self.origin and not has_userinfo(url)

    def url(self, url_or_path: str, *, what: str = "request") -> str:
        """``base_url`` + a path, or an absolute URL once it passed the origin check.

        Raises:
            InvalidResponse: an absolute URL on another origin, with credentials, or over the token cap.
        """
        if not _absolute(url_or_path):
            return self.base_url + (url_or_path if url_or_path.startswith("/") else "/" + url_or_path)
        if len(url_or_path) > self.max_link:
            raise InvalidResponse(f"{self.provider} {what}: refusing a link over {self.max_link} bytes",
                                  provider=self.provider)  # fmt: skip
        if has_userinfo(url_or_path):
            raise InvalidResponse(f"{self.provider} {what}: refusing a link with credentials in it",
                                  provider=self.provider)  # fmt: skip
        if not self.same_origin(url_or_path):
            # Never let a link taken from a response carry the bearer token to another host.
            raise InvalidResponse(
                f"{self.provider} {what}: refusing to follow a link to another origin than base_url "
                f"({origin(url_or_path)[1]})",
                provider=self.provider,
            )
        return url_or_path

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        errors: ErrorTable | None = None,
        authorize: bool = True,
        retry: bool = True,
        allow_redirects: bool = False,
    ) -> Response:
        """Send ``method url`` and return the response the error table accepted.

        ``url`` is a path below ``base_url`` or an absolute URL on its origin. ``what`` names the call
        in logs and messages (the provider's name is prepended). ``errors`` replaces the client's table
        for this call; ``authorize=False`` sends no token (a token endpoint); ``retry=False`` makes one
        attempt (for a call made inside another call's attempt, such as a token fetch).

        Raises:
            InvalidResponse: ``url`` on another origin (or with credentials, or over the token cap), an
            answer over the body cap or nested too deeply. AuthError: the token refused twice (or once,
            when the source cannot refresh). ProviderTimeout, TransientError, RateLimited: after the
            retry policy gave up. Whatever else the error table answers.
        """
        return await self.request_parsed(
            method, url, _identity, what=what, params=params, json=json, headers=headers, errors=errors,
            authorize=authorize, retry=retry, allow_redirects=allow_redirects,
        )  # fmt: skip

    async def request_parsed(
        self,
        method: str,
        url: str,
        parse: Callable[[Response], T],
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        errors: ErrorTable | None = None,
        authorize: bool = True,
        retry: bool = True,
        allow_redirects: bool = False,
    ) -> T:
        """:meth:`request`, then ``parse(response)`` inside the same attempt: a
        :class:`~calbridge.errors.ProviderError` that ``parse`` raises is handled like one from the
        error table (retried, or a refresh on ``TokenExpired``). Decode the page here when its
        envelope can still say the call failed (Feishu's ``code``).
        """
        label = f"{self.provider} {what}"
        target = self.url(url, what=what)
        table = errors or self._errors
        tokens = self._tokens if authorize else None
        sent: list[str] = []  # the token each attempt carried

        async def attempt() -> T:
            extra = dict(self._headers)
            if headers:
                extra.update(headers)
            if tokens is not None:
                token = await tokens.token()
                sent.append(token)
                extra["Authorization"] = f"{self._scheme} {token}" if self._scheme else token
            response = await self._send(method, target, label, params, json, extra, allow_redirects)
            try:
                failure = table(response, label)
                if failure is not None:
                    raise failure
                return parse(response)
            except RecursionError:
                raise InvalidResponse(f"{label}: answer nested too deeply to decode", provider=self.provider,
                                      status=response.status) from None  # fmt: skip

        async def run() -> T:
            try:
                return await (self._ctx.retry.call(attempt, what=label) if retry else attempt())
            except ProviderError as exc:  # server text in the message: no secret leaves (toolkit.scrub)
                scrub_error(exc)
                raise

        try:
            return await run()
        except TokenExpired as exc:
            if tokens is None or not tokens.refreshable or not sent:
                raise AuthError(f"{label}: the configured token was refused", provider=self.provider,
                                status=exc.status, code=exc.code) from None  # fmt: skip
            await tokens.invalidate(sent[-1])
        try:
            return await run()
        except TokenExpired as exc:
            raise AuthError(f"{label}: credentials refused after a refresh", provider=self.provider,
                            status=exc.status, code=exc.code) from None  # fmt: skip

    async def request_decoded(
        self,
        method: str,
        url: str,
        decode: Callable[[bytes], T],
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        errors: ErrorTable | None = None,
        authorize: bool = True,
        retry: bool = True,
    ) -> T:
        """:meth:`request_parsed` with ``decode(body)`` (a msgspec decoder's ``decode``, a
        :class:`~calbridge.toolkit.PageDecoder`'s): a body that does not decode is an
        :class:`~calbridge.errors.InvalidResponse` (not retried)."""
        label = f"{self.provider} {what}"

        def parse(response: Response) -> T:
            try:
                return decode(response.body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                # msgspec names the position and the expected type, never the offending value.
                raise InvalidResponse(f"{label}: undecodable answer: {exc}", provider=self.provider,
                                      status=response.status) from None  # fmt: skip

        return await self.request_parsed(
            method, url, parse, what=what, params=params, json=json, headers=headers, errors=errors,
            authorize=authorize, retry=retry,
        )  # fmt: skip

    async def _send(
        self,
        method: str,
        url: str,
        label: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str],
        allow_redirects: bool,
    ) -> Response:
        """One exchange under the semaphore, then the deadline (waiting for the semaphore does not count);
        transport failures become typed errors."""
        if self._semaphore is None:
            return await self._deadline(method, url, label, params, json, headers, allow_redirects)
        async with self._semaphore:
            return await self._deadline(method, url, label, params, json, headers, allow_redirects)

    async def _deadline(
        self,
        method: str,
        url: str,
        label: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str],
        allow_redirects: bool,
    ) -> Response:
        self.sent += 1
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(method, url, label, params, json, headers, allow_redirects)
        except TimeoutError:
            raise ProviderTimeout(f"{label}: no answer within {self.timeout:g}s", provider=self.provider) from None
        except aiohttp.ClientError as exc:
            raise TransientError(f"{label}: connection failed ({type(exc).__name__})", provider=self.provider) from None

    async def _exchange(
        self,
        method: str,
        url: str,
        label: str,
        params: Mapping[str, str] | None,
        json: Any,
        headers: Mapping[str, str],
        allow_redirects: bool,
    ) -> Response:
        async with self._ctx.session.request(
            method, url, params=params, json=json, headers=headers, ssl=self._ssl, allow_redirects=allow_redirects,
            timeout=_NO_SESSION_TIMEOUT,  # the deadline above governs, whatever the session's default
        ) as resp:  # fmt: skip
            body = await self._read(resp, label)
            return Response(status=resp.status, headers=resp.headers, body=body)

    async def _read(self, resp: aiohttp.ClientResponse, label: str) -> bytes:
        """The body, decompressed, read chunk by chunk and abandoned past ``max_body`` (aiohttp inflates
        at most a buffer's worth per chunk, so a gzip bomb is never inflated whole)."""
        limit = self.max_body
        if resp.content_length is not None and resp.content_length > limit and not resp.headers.get("Content-Encoding"):
            raise self._too_large(label, resp.status)
        body = bytearray()
        async for chunk in resp.content.iter_any():
            if len(body) + len(chunk) > limit:
                raise self._too_large(label, resp.status)
            body += chunk
        return bytes(body)

    def _too_large(self, label: str, status: int) -> InvalidResponse:
        return InvalidResponse(f"{label}: answer over {self.max_body} bytes; not read", provider=self.provider,
                               status=status)  # fmt: skip


def _identity(response: Response) -> Response:
    return response
