"""Fixtures: an aiohttp app served on loopback in the test's own loop, and an HttpClient aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calbridge.config import AccountConfig
from calbridge.errors import ProviderError, RateLimited, TokenExpired, TransientError
from calbridge.provider import ProviderContext
from calbridge.retry import Retrier, RetryPolicy
from calbridge.testing.context import make_context
from calbridge.toolkit import ErrorTable, HttpClient, Response, TokenSource, retry_after_seconds


class Sleeps:
    """An injected ``sleep`` for the retrier: records each wait, waits nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def table(response: Response, what: str) -> ProviderError | None:
    """A small status table, as a provider would write one."""
    if response.ok:
        return None
    kw: dict[str, Any] = {"provider": "t", "status": response.status}
    if response.status == 401:
        return TokenExpired(f"{what}: HTTP 401", **kw)
    if response.status == 429:
        return RateLimited(f"{what}: HTTP 429", retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                           **kw)  # fmt: skip
    if response.status >= 500:
        return TransientError(f"{what}: HTTP {response.status}", **kw)
    return ProviderError(f"{what}: HTTP {response.status}", **kw)


Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app)``: the app on 127.0.0.1 until the test ends."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


MakeClient = Callable[..., HttpClient]


@pytest.fixture
def make_client(session: aiohttp.ClientSession, sleeps: Sleeps) -> MakeClient:
    def make(
        base_url: str,
        *,
        tokens: TokenSource | None = None,
        errors: ErrorTable = table,
        attempts: int = 4,
        ca_file: Path | None = None,
        **kwargs: Any,
    ) -> HttpClient:
        account = AccountConfig(name="acct", provider="t", base_url=base_url, ca_file=ca_file)
        retry = Retrier(RetryPolicy(attempts=attempts, base_backoff=0.01, max_backoff=0.02), sleep=sleeps)
        ctx: ProviderContext = make_context(account, session, retry=retry)
        return HttpClient(ctx, provider="t", base_url=base_url, errors=errors, tokens=tokens, **kwargs)

    return make
