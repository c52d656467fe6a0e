"""What arrives at ``POST /push/graph`` and ``/push/graph/lifecycle``, verified (the
:class:`~calbridge.push.PushVerifier` half of push), and the account's ``push`` settings (none).

- ``?validationToken=…`` (the subscription handshake, both endpoints): 200 ``text/plain`` with the
  decoded token (apis.md 2.F);
- otherwise a ``{"value": [...]}`` batch: each item's ``clientState`` is compared in constant time with
  the secret of the subscription it names. All verified: 202. Any item unknown or wrong: 403, any
  item malformed: 400, and only the verified items become notices. A body that is not a batch: 400.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from calbridge.errors import ConfigError
from calbridge.push import Notice, NoticeKind, PushAccount, PushAnswer, PushRequest, SubscriptionLookup

from ._push import ENDPOINT, LIFECYCLE_ENDPOINT

logger = logging.getLogger(__name__)

MAX_TOKEN = 1024  # Graph's tokens are ~110 characters; a longer one is no handshake
_LIFECYCLE = {
    "missed": NoticeKind.MISSED,
    "subscriptionRemoved": NoticeKind.REMOVED,
    "reauthorizationRequired": NoticeKind.REAUTHORIZE,
}


@attrs.frozen
class GraphPushSettings:
    """A graph account's ``push`` settings: none (each subscription carries its own secret)."""


def parse_push(raw: Mapping[str, Any] | None, *, where: str) -> GraphPushSettings:
    """``push`` absent or an empty mapping; any key is unknown.

    Raises:
        ConfigError: naming the key, e.g. ``accounts[0].push.client_state: unknown key``.
    """
    if raw is None:
        return GraphPushSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError("expected a mapping", where=where)
    unknown = next(iter(raw), None)
    if unknown is not None:
        raise ConfigError("unknown key (graph push takes no settings)", where=f"{where}.{unknown}")
    return GraphPushSettings()


@attrs.frozen(kw_only=True)
class Item:
    """One notification item: what it names and claims, and the notice it means once verified."""

    subscription_id: str
    client_state: str = attrs.field(repr=False)
    kind: NoticeKind


def parse_item(value: object, *, lifecycle: bool) -> Item | None:
    """An item of the batch, or None when it is not one (an unknown ``lifecycleEvent`` included)."""
    if not isinstance(value, Mapping):
        return None
    sid, state, event = value.get("subscriptionId"), value.get("clientState"), value.get("lifecycleEvent")
    if not isinstance(sid, str) or not sid or not isinstance(state, str):
        return None
    if event is None and not lifecycle:
        return Item(subscription_id=sid, client_state=state, kind=NoticeKind.CHANGE)
    kind = _LIFECYCLE.get(event) if isinstance(event, str) else None
    return None if kind is None else Item(subscription_id=sid, client_state=state, kind=kind)


def parse_batch(body: bytes) -> list[object] | None:
    """The ``value`` list of a notification body, or None for anything else (or an empty one)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("value") if isinstance(data, dict) else None
    return value if isinstance(value, list) and value else None


def same_secret(given: str, secret: str | None) -> bool:
    """Constant-time equality of a claimed clientState and the subscription's secret."""
    if secret is None:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def answer_status(*, malformed: int, refused: int) -> int:
    """202 when every item verified; 400 when any was malformed, else 403."""
    if malformed:
        return 400
    return 403 if refused else 202


class GraphVerifier:
    """The :class:`~calbridge.push.PushVerifier` of the ``graph`` and ``graph/lifecycle`` endpoints."""

    endpoints = (ENDPOINT, LIFECYCLE_ENDPOINT)

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer:
        """Answer the handshake, or verify a batch (see the module docstring); never raises for bad input."""
        token = request.query.get("validationToken")
        if token is not None:
            if not token or len(token) > MAX_TOKEN:
                return PushAnswer(status=400)
            return PushAnswer(status=200, body=token.encode(), content_type="text/plain")
        values = parse_batch(request.body)
        if values is None:
            logger.info("graph push at %s: not a notification batch", request.endpoint)
            return PushAnswer(status=400)
        lifecycle = request.endpoint == LIFECYCLE_ENDPOINT
        secrets: dict[str, str | None] = {}
        notices: list[Notice] = []
        malformed = refused = 0
        for value in values:
            item = parse_item(value, lifecycle=lifecycle)
            if item is None:
                malformed += 1
                continue
            if item.subscription_id not in secrets:
                found = await subscriptions.subscription("graph", item.subscription_id)
                secrets[item.subscription_id] = None if found is None else found.secret
            if not same_secret(item.client_state, secrets[item.subscription_id]):
                refused += 1
                continue
            notices.append(Notice(kind=item.kind, subscription_id=item.subscription_id))
        status = answer_status(malformed=malformed, refused=refused)
        if status != 202:
            logger.info(
                "graph push at %s: %d of %d items refused, %d malformed",
                request.endpoint, refused, len(values), malformed,
            )  # fmt: skip
        return PushAnswer(status=status, notices=tuple(notices))
