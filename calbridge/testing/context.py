"""Build a :class:`~calbridge.provider.ProviderContext` without an engine (provider-level tests)."""

from __future__ import annotations

import datetime as dt

import aiohttp

from .._http import ssl_context_for
from ..config import AccountConfig, Settings
from ..provider import Clock, ProviderContext
from ..retry import Retrier, RetryPolicy


class MemorySecrets:
    """A :class:`~calbridge.provider.SecretStore` held in a dict."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    async def get_secret(self, account: str, name: str) -> str | None:
        return self.values.get((account, name))

    async def set_secret(self, account: str, name: str, value: str) -> None:
        self.values[(account, name)] = value


def make_context(
    account: AccountConfig,
    session: aiohttp.ClientSession,
    *,
    settings: Settings | None = None,
    secrets: MemorySecrets | None = None,
    clock: Clock | None = None,
    retry: Retrier | None = None,
) -> ProviderContext:
    return ProviderContext(
        account=account,
        settings=settings or Settings(),
        session=session,
        ssl=ssl_context_for(account),
        secrets=secrets or MemorySecrets(),
        retry=retry or Retrier(RetryPolicy(attempts=4, base_backoff=0.01, max_backoff=0.05)),
        clock=clock or (lambda: dt.datetime.now(dt.UTC)),
    )
