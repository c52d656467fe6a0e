"""The plugin toolkit: what every provider, built-in or third-party, builds on.

- :class:`HttpClient` (``http``): the one HTTP call path — origin check, deadline, retry policy,
  refresh-once on a rejected token, the account's TLS, and the provider's :data:`ErrorTable`.
- :func:`retry_after_seconds`, :func:`reset_seconds` (``headers``): rate-limit headers as seconds.
- :func:`error_by_status` (``statuses``): how every error table ends, the error an HTTP status means.
- :class:`TokenSource`, :class:`StaticTokenSource`, :class:`CachedToken`, :class:`Token`,
  :class:`TokenSlot`, :func:`binding` (``tokens``): one token protocol and the cached-token helper,
  its token kept in the store's secret slot across processes.
- :func:`ca_requests_session` (``tls``): the ``requests`` session that trusts the account's CA, for
  the blocking auth libraries.
- :class:`PageDecoder`, :class:`DecodedPage` (``pages``): a page in one typed pass, item by item
  with quarantine when an item does not fit.
- :class:`Coercions` (``coerce``): counts the non-essential values a page's conversion replaced with
  the schema's neutral value (junk enums, over-long text), for ``Page.coerced``.
- :func:`unescape` (``text``): HTML entities in event bodies, the common case fast.
- :func:`request_timeout` (``options``): the ``options.request_timeout`` every provider reads.
- :class:`RateLimit` (``limits``): a request quota (starts per window, requests in flight) kept on
  the client side, for a provider's fan-out of requests.
"""

from __future__ import annotations

from .coerce import TEXT_LIMIT, Coercions
from .headers import reset_seconds, retry_after_seconds
from .http import ErrorTable, HttpClient, Response, has_userinfo, origin, resuming, same_origin
from .limits import RateLimit
from .options import DEFAULT_REQUEST_TIMEOUT, request_timeout
from .pages import PAYLOAD_LIMIT, DecodedPage, PageDecoder
from .statuses import error_by_status
from .text import unescape
from .tls import CaSession, ca_requests_session
from .tokens import CachedToken, StaticTokenSource, Token, TokenSlot, TokenSource, binding

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "PAYLOAD_LIMIT",
    "TEXT_LIMIT",
    "CaSession",
    "CachedToken",
    "Coercions",
    "DecodedPage",
    "ErrorTable",
    "HttpClient",
    "PageDecoder",
    "RateLimit",
    "Response",
    "StaticTokenSource",
    "Token",
    "TokenSlot",
    "TokenSource",
    "binding",
    "ca_requests_session",
    "error_by_status",
    "has_userinfo",
    "origin",
    "request_timeout",
    "reset_seconds",
    "resuming",
    "retry_after_seconds",
    "same_origin",
    "unescape",
]
