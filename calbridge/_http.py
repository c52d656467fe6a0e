"""Small HTTP helpers shared by the engine and providers, and the request log.

:func:`request_log` is an aiohttp ``TraceConfig`` on the engine's session, the one place every
provider's HTTP passes: at DEBUG on ``calbridge.http`` (``sync -v``) it logs each request's method,
path, the names of its query keys from :data:`LOGGED_QUERY_KEYS` (never a value), status and time.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp

from .config import AccountConfig

logger = logging.getLogger("calbridge.http")

# Query keys that never carry a secret, a cursor or a link; a key not listed is counted, not named
# (Google pageToken/syncToken, Graph $skiptoken/$deltatoken, Feishu page_token/sync_token, ...).
LOGGED_QUERY_KEYS = frozenset(
    {
        "maxResults", "showDeleted", "singleEvents", "timeMin", "timeMax", "timeZone",  # Google
        "startDateTime", "endDateTime", "$select", "$top", "$filter", "$orderby", "$expand",  # Graph
        "page_size", "anchor_time", "start_time", "end_time", "user_id_type", "need_attendee",  # Feishu
    }
)  # fmt: skip


def _query_keys(keys: list[str]) -> str:
    shown = [k for k in keys if k in LOGGED_QUERY_KEYS]
    hidden = len(keys) - len(shown)
    text = "&".join(shown)
    if hidden:
        text += f"{'&' if text else ''}({hidden} more)"
    return f" ?{text}" if text else ""


def request_log() -> aiohttp.TraceConfig:
    """A ``TraceConfig`` logging each request (see the module docstring); secrets never reach the log."""
    trace = aiohttp.TraceConfig()

    async def on_start(_: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceRequestStartParams) -> None:
        ctx.started = time.monotonic()

    def line(ctx: SimpleNamespace, method: str, url: object, outcome: str) -> None:
        parts = urlsplit(str(url))
        keys = [pair.split("=", 1)[0] for pair in parts.query.split("&") if pair]
        ms = (time.monotonic() - getattr(ctx, "started", time.monotonic())) * 1000
        logger.debug("%s %s%s %s %.0fms", method, parts.path, _query_keys(keys), outcome, ms)

    async def on_end(_: aiohttp.ClientSession, ctx: SimpleNamespace, p: aiohttp.TraceRequestEndParams) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            line(ctx, p.method, p.url, str(p.response.status))

    async def on_error(_: aiohttp.ClientSession, ctx: SimpleNamespace, p: aiohttp.TraceRequestExceptionParams) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            line(ctx, p.method, p.url, f"failed: {type(p.exception).__name__}")

    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    return trace


def ssl_context_for(account: AccountConfig) -> ssl.SSLContext | None:
    """The default trust store plus the account's ``ca_file``, or None when it has none.

    One context per CA file and version of it: loading the system trust store costs ~50 ms, which
    every engine and test context paid again (a context is safe to share between sessions).
    """
    if account.ca_file is None:
        return None
    path = str(account.ca_file)
    stat = os.stat(path)
    return _ssl_context(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _ssl_context(path: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=path)
    return ctx
