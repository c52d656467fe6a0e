"""The emulator's Python API for push, and what turns a mailbox change into notifications.

Knobs: ``max_subscription_lifetime`` (a timedelta, 10,080 minutes by default: a longer expiry is
refused with 400), ``push`` (:class:`PushSettings`: batch window, retries, timeouts). Read:
``subscriptions()`` (live ones; expired ones are removed), ``deliveries()`` (every request sent:
handshakes, change and lifecycle notifications). Act: ``lifecycle_event(id, event)``.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import attrs

from ._delivery import Deliverer, Delivery, Outgoing, PushSettings
from ._model import EventDef, change_key
from ._subscriptions import (
    DEFAULT_MAX_LIFETIME,
    LIFECYCLE_EVENTS,
    SubscriptionDef,
    change_item,
    lifecycle_item,
)

UTC = dt.UTC


class PushMixin:
    """Graph subscriptions for :class:`GraphEmulator` (state under its lock)."""

    _lock: threading.RLock
    _users: dict[str, dict[str, Any]]
    tenant: str

    def _init_push(self) -> None:
        self.max_subscription_lifetime: dt.timedelta = DEFAULT_MAX_LIFETIME
        self.push = PushSettings()
        self._subscriptions: dict[str, SubscriptionDef] = {}
        self._deliveries: list[Delivery] = []
        self.deliverer = Deliverer(self.push, self._deliveries, self._lock)

    def subscriptions(self) -> list[SubscriptionDef]:
        """The live subscriptions (copies; expired ones are removed first)."""
        with self._lock:
            return [attrs.evolve(s) for s in self._live().values()]

    def deliveries(self, kind: str | None = None) -> list[Delivery]:
        """The requests sent so far, oldest first (``kind``: validation, change or lifecycle)."""
        with self._lock:
            return [d for d in self._deliveries if kind is None or d.kind == kind]

    def lifecycle_event(self, subscription_id: str, event: str) -> None:
        """Send a lifecycle notification (reauthorizationRequired, subscriptionRemoved or missed) to the
        subscription's lifecycleNotificationUrl; subscriptionRemoved also removes it, and without a
        lifecycle URL nothing is sent (as Graph).

        Raises:
            KeyError: no live subscription ``subscription_id``. ValueError: an unknown event.
        """
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"unknown lifecycle event {event!r}")
        with self._lock:
            sub = self._live()[subscription_id]
            if event == "subscriptionRemoved":
                del self._subscriptions[subscription_id]
            elif event == "reauthorizationRequired":
                sub.reauthorization_required = True
            if sub.lifecycle_url is not None:
                item = lifecycle_item(sub, event=event, tenant=self.tenant)
                self.deliverer.enqueue(Outgoing(kind="lifecycle", url=sub.lifecycle_url, item=item))

    def _live(self) -> dict[str, SubscriptionDef]:
        """The subscriptions not expired; an expired one stops delivering and is removed. Lock held."""
        now = dt.datetime.now(UTC)
        for sid in [k for k, s in self._subscriptions.items() if s.expired(now)]:
            del self._subscriptions[sid]
        return self._subscriptions

    def _notify(self, eid: str, old: EventDef | None, new: EventDef | None) -> None:
        """Queue a change notification for each live subscription of the changed calendar. Lock held."""
        current = new or old
        if current is None or not self._subscriptions:
            return
        change = "created" if old is None else "deleted" if new is None else "updated"
        etag = None if new is None else f'W/"{change_key(new)}"'
        for sub in self._live().values():
            if sub.calendar_id != current.calendar_id or change not in sub.change_types:
                continue
            item = change_item(
                sub, change=change, user_id=str(self._users[sub.user]["id"]), event_id=eid, etag=etag,
                tenant=self.tenant,
            )  # fmt: skip
            self.deliverer.enqueue(Outgoing(kind="change", url=sub.notification_url, item=item))
