"""What the service needs from the parts around it, as Protocols: the subscription manager (built by
:mod:`calbridge.service._subscriptions` when installed) and the store's optional service records."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Collection
from typing import Any, Protocol, runtime_checkable

from ..config import AccountConfig
from ..engine import SyncEngine
from ..store.base import Store

SUBSCRIPTIONS_MODULE = "calbridge.service._subscriptions"


class Subscriptions(Protocol):
    """Each calendar's push subscription through its lifecycle: created or reused, renewed, recreated."""

    async def ensure(self, account: AccountConfig, calendar_id: str) -> None:
        """A live subscription of the calendar (reused, or created), its push state set for ``status``."""
        ...

    def next_renewal(self) -> dt.datetime | None:
        """When the next subscription should be renewed, ``None`` when none expires."""
        ...

    async def renew_due(self) -> None:
        """Renew every subscription whose renewal is due."""
        ...

    async def recreate(self, account_name: str, calendar_id: str) -> None:
        """A new subscription for one the provider removed."""
        ...

    async def reauthorize(self, subscription_id: str) -> None:
        """Answer Graph's ``reauthorizationRequired``: reauthorize, or renew."""
        ...

    async def unsubscribe_all(
        self, accounts: Collection[str] | None = None, *, calendars: Collection[tuple[str, str]] | None = None
    ) -> None:
        """Remove the subscriptions of ``accounts`` (None: every configured one), of ``calendars`` only
        when given (a fleet's worker: the ones it holds) (``run --unsubscribe``)."""
        ...

    def release(self, account_name: str, calendar_id: str) -> None:
        """Stop managing the calendar's subscription (another worker holds it now); it stays in the store."""
        ...


@runtime_checkable
class BackoffRecorder(Protocol):
    """A store that keeps the service's backoff of a calendar, for ``status``."""

    async def record_backoff(
        self, account: str, calendar_id: str, *, failures: int, next_attempt: dt.datetime | None
    ) -> None: ...


@runtime_checkable
class PushStateRecorder(Protocol):
    """A store that keeps what ``status`` shows as a calendar's push."""

    async def set_push_state(self, account: str, calendar_id: str, state: str | None) -> None: ...


def default_subscriptions(
    store: Store, engine: SyncEngine, public_url: str, clock: Callable[[], dt.datetime]
) -> Subscriptions | None:
    """The installed subscription manager, ``None`` when its module is not installed (then polled)."""
    try:
        module: Any = importlib.import_module(SUBSCRIPTIONS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != SUBSCRIPTIONS_MODULE:
            raise
        return None
    manager: Subscriptions = module.SubscriptionManager(store, engine, public_url, clock)
    return manager
