"""The optional push seam: a provider that can push subscribes its calendars, and its plugin verifies
what arrives at ``POST {public_url}/push/<endpoint>``.

Push is a trigger, never data (``service.md``): a verified :class:`Notice` names a calendar (through
its subscription, or for Feishu the account and calendar id) and the service schedules an incremental
round of it. Three parts, each optional on its own object:

- :class:`PushPlugin` on the ``ProviderPlugin``: structures the account's ``push`` settings and makes
  the :class:`PushVerifier` for the plugin's endpoints;
- :class:`PushProvider` on the ``Provider``: subscribe, renew and unsubscribe one calendar;
- :class:`PushVerifier`: turns a raw :class:`PushRequest` into a :class:`PushAnswer` (the HTTP answer
  plus the notices it verified), looking up the store's subscriptions, never trusting the body first.

The service (:mod:`calbridge.service`) owns the receiver, the schedule and the subscriptions' lifecycle;
the store keeps :class:`Subscription` rows with their secrets in the secret slot.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .provider import Provider, ProviderPlugin


@attrs.frozen(kw_only=True)
class Subscription:
    """One calendar's live push subscription, as the store keeps it.

    ``id`` is what a notification names: Google's channel id, Graph's subscription id; Feishu's
    subscription has no id of its own (it is per user and calendar), so its provider makes one that is
    unique per provider, e.g. ``<account>/<calendar_id>`` (the store keys rows by (provider, id), and
    two accounts may subscribe one shared calendar). ``secret`` is Google's
    channel token or Graph's ``clientState`` (``None`` for Feishu, verified per app); it is never
    printed (``repr=False``) and the store keeps it in the secret slot. ``expires`` is ``None`` for a
    subscription alive until unsubscribed (Feishu). ``resource`` is what the provider needs to stop it
    (Google's ``resourceId``; Graph's resource path).
    """

    provider: str
    account: str
    calendar_id: str
    id: str
    expires: dt.datetime | None
    secret: str | None = attrs.field(default=None, repr=False)
    resource: str | None = None
    created: dt.datetime | None = None


class NoticeKind(enum.Enum):
    """What a verified notification asks of the service."""

    CHANGE = "change"  # something changed: an incremental round
    MISSED = "missed"  # Graph lifecycle `missed`: notifications were lost, run a round
    REMOVED = "removed"  # Graph `subscriptionRemoved`: create a new subscription, then a round
    REAUTHORIZE = "reauthorize"  # Graph `reauthorizationRequired`: reauthorize or renew
    SYNC = "sync"  # Google's first message of a channel: nothing to do


@attrs.frozen(kw_only=True)
class Notice:
    """One verified notification.

    Google and Graph name a ``subscription_id`` (the service maps it to account and calendar through
    the store); Feishu names the verified ``accounts`` and the ``calendar_id`` directly, with its
    ``dedup_key`` (``header.event_id``): a key seen within a day triggers nothing more. Such a
    provider keys its subscriptions ``{account}/{calendar_id}``, so the receiver finds the calendar as
    the account configured it (``primary``) in one read.
    """

    kind: NoticeKind
    subscription_id: str | None = None
    accounts: tuple[str, ...] = ()
    calendar_id: str | None = None
    dedup_key: str | None = None


@attrs.frozen(kw_only=True)
class PushRequest:
    """A request as the receiver read it: at most 1 MiB of ``body`` (bigger ones never get here).
    ``headers`` keys are lower-case."""

    endpoint: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class PushAnswer:
    """The HTTP answer to send at once, and the notices it verified (acted on after the answer)."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    notices: tuple[Notice, ...] = ()


@attrs.frozen(kw_only=True)
class PushAccount:
    """An account configured for push at an endpoint, with its plugin-structured ``push`` settings."""

    name: str
    settings: object = attrs.field(repr=False)


class SubscriptionLookup(Protocol):
    """The store's subscriptions, as a verifier reads them."""

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None: ...


class PushVerifier(Protocol):
    """Verifies deliveries at the plugin's endpoints (``graph`` and ``graph/lifecycle``, ``google``, ...).

    Answers 4xx with no notices for anything that fails verification or names an unknown
    subscription; never raises for bad input. Compares secrets in constant time.
    """

    endpoints: tuple[str, ...]

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer: ...


@runtime_checkable
class PushPlugin(Protocol):
    """A ``ProviderPlugin`` whose accounts can push."""

    def parse_push(self, raw: Mapping[str, Any] | None, *, account: Mapping[str, Any], where: str) -> object:
        """Structure an account's ``push`` mapping (``None``: the key is absent) into frozen settings,
        or raise :class:`~calbridge.errors.ConfigError` naming the key. ``push: false`` never gets here."""
        ...

    def push_verifier(self) -> PushVerifier: ...


@runtime_checkable
class PushProvider(Protocol):
    """A ``Provider`` that can subscribe its calendars."""

    def push_unavailable(self) -> str | None:
        """``None`` when this account can push; otherwise why it is polled (``status`` shows it)."""
        ...

    async def subscribe(self, calendar_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> Subscription:
        """A new subscription of ``calendar_id`` delivering to ``{public_url}/push/<endpoint>``;
        ``expires`` is the lifetime asked for (the provider may grant less: read the answer)."""
        ...

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        """The subscription extended (Graph PATCH: the same id, its old secret kept) or replaced
        (Google: a new channel carrying ``secret``, a fresh one). A replacement has another id: the
        caller stores it, then stops the old one with :meth:`unsubscribe` (so both rows are kept
        until the stop succeeded); a renew that stops the old itself is fine too (a second stop of a
        gone subscription is no error). A subscription that is gone raises
        :class:`~calbridge.errors.NotFound` (the caller subscribes anew)."""
        ...

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop it; an already gone subscription is not an error."""
        ...


def push_plugin(plugin: ProviderPlugin) -> PushPlugin | None:
    """``plugin`` as a :class:`PushPlugin`, or ``None`` when it cannot push."""
    return plugin if isinstance(plugin, PushPlugin) else None


def push_provider(provider: Provider) -> PushProvider | None:
    """``provider`` as a :class:`PushProvider`, or ``None`` when it cannot push."""
    return provider if isinstance(provider, PushProvider) else None


__all__ = [
    "Notice",
    "NoticeKind",
    "PushAccount",
    "PushAnswer",
    "PushPlugin",
    "PushProvider",
    "PushRequest",
    "PushVerifier",
    "Subscription",
    "SubscriptionLookup",
    "push_plugin",
    "push_provider",
]
