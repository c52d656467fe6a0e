"""Verifies what arrives at ``POST /push/google``: a channel message (headers only, no meaningful
body, apis.md 3.F) whose ``X-Goog-Channel-ID`` is a channel this store created and whose
``X-Goog-Channel-Token`` is that channel's secret."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence

from calbridge.push import Notice, NoticeKind, PushAccount, PushAnswer, PushRequest, Subscription, SubscriptionLookup

from ._push import ENDPOINT

_REFUSED = {400: b"not a google channel message", 403: b"channel not verified", 404: b"unknown channel"}


def _refuse(status: int) -> PushAnswer:
    return PushAnswer(status=status, body=_REFUSED[status])


def garbage(body: bytes) -> bool:
    """A body no channel message has: Google sends none that means anything (apis.md 3.F), so an
    empty one or JSON is taken, anything else is refused as garbage (the contract's 400)."""
    if not body.strip():
        return False
    try:
        json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return True
    return False


def judge(headers: Mapping[str, str], subscription: Subscription | None) -> PushAnswer:
    """The answer to a channel message whose channel id looked up ``subscription`` (``headers``
    lower-case). ``sync`` (a channel's first message) is acknowledged and triggers nothing."""
    if subscription is None:
        return _refuse(404)
    token = headers.get("x-goog-channel-token")
    secret = subscription.secret
    if token is None or secret is None or not hmac.compare_digest(token.encode(), secret.encode()):
        return _refuse(403)
    if subscription.resource is not None and headers.get("x-goog-resource-id") != subscription.resource:
        return _refuse(403)  # the watched resource is stable per channel (apis.md 3.F)
    state = headers.get("x-goog-resource-state")
    if state == "sync":
        return PushAnswer(status=200, notices=(Notice(kind=NoticeKind.SYNC, subscription_id=subscription.id),))
    # `exists` and `not_exists`; a verified message of a state Google may add later is also a
    # trigger, since a round it causes costs one list request.
    return PushAnswer(status=200, notices=(Notice(kind=NoticeKind.CHANGE, subscription_id=subscription.id),))


class GoogleVerifier:
    """The google :class:`~calbridge.push.PushVerifier` (endpoint ``google``)."""

    endpoints: tuple[str, ...] = (ENDPOINT,)

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer:
        """Answer a delivery: 200 with its notice, or 400 (no channel id or state, a garbage body), 404 (a channel this
        store did not create), 403 (a wrong token or resource) with none. Never raises for bad input."""
        headers = request.headers
        channel_id = headers.get("x-goog-channel-id")
        if not channel_id or not headers.get("x-goog-resource-state") or garbage(request.body):
            return _refuse(400)
        return judge(headers, await subscriptions.subscription("google", channel_id))
