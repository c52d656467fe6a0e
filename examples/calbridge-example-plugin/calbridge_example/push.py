"""The example plugin's push (calbridge's optional push seam, :mod:`calbridge.push`): its ``push``
settings, the provider's subscribe/renew/unsubscribe calls, and the verifier of ``POST /push/example``.

A delivery names its subscription (``X-Example-Subscription``) and carries that subscription's secret
(``X-Example-Secret``), compared in constant time with the one the store keeps; nothing in the body
is trusted before that.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import msgspec

from calbridge.errors import ConfigError, NotFound
from calbridge.export import parse_instant
from calbridge.push import Notice, NoticeKind, PushAccount, PushAnswer, PushRequest, Subscription, SubscriptionLookup
from calbridge.toolkit import HttpClient

ENDPOINT = "example"


@attrs.frozen(kw_only=True)
class ExamplePush:
    """An account's ``push`` settings: the Example API needs none (every account can push)."""


def parse_push(raw: Mapping[str, Any] | None, *, where: str) -> ExamplePush:
    """Structure ``push`` (absent or ``{}``); any key is unknown."""
    if raw is not None:
        for key in raw:
            raise ConfigError("unknown key (the example provider takes no push settings)", where=f"{where}.{key}")
    return ExamplePush()


class _Granted(msgspec.Struct):
    id: str
    expires: str


class _Delivery(msgspec.Struct):
    subscription: str
    calendar: str
    change: str | None = None
    lifecycle: str | None = None


_GRANTED = msgspec.json.Decoder(_Granted).decode
_DELIVERY = msgspec.json.Decoder(_Delivery).decode


class ExampleSubscriptions:
    """The provider's :class:`~calbridge.push.PushProvider` half, on its :class:`HttpClient`."""

    def __init__(self, http: HttpClient, *, account: str) -> None:
        self._http = http
        self._account = account

    def push_unavailable(self) -> str | None:
        return None

    async def subscribe(self, calendar_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> Subscription:
        body = {"address": f"{public_url}/push/{ENDPOINT}", "secret": secret, "expires": _wire(expires)}
        got = await self._http.request_decoded("POST", f"/calendars/{calendar_id}/subscriptions", _GRANTED, json=body,
                                               what=f"subscribe {calendar_id}", retry=False)  # fmt: skip
        return Subscription(provider=ENDPOINT, account=self._account, calendar_id=calendar_id, id=got.id,
                            expires=parse_instant(got.expires), secret=secret)  # fmt: skip

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        """Extend it in place (the same id and secret); NotFound when it is gone."""
        got = await self._http.request_decoded("PATCH", f"/subscriptions/{subscription.id}", _GRANTED,
                                               json={"expires": _wire(expires)}, what="renew")  # fmt: skip
        return attrs.evolve(subscription, expires=parse_instant(got.expires))

    async def unsubscribe(self, subscription: Subscription) -> None:
        try:
            await self._http.request("DELETE", f"/subscriptions/{subscription.id}", what="unsubscribe")
        except NotFound:
            pass  # already gone: what was asked


def _wire(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ExampleVerifier:
    """Verifies ``POST /push/example``: 400 garbage, 404 an unknown subscription, 403 a wrong secret."""

    endpoints: tuple[str, ...] = (ENDPOINT,)

    async def handle(
        self, request: PushRequest, *, subscriptions: SubscriptionLookup, accounts: Sequence[PushAccount]
    ) -> PushAnswer:
        sub_id = request.headers.get("x-example-subscription", "")
        given = request.headers.get("x-example-secret", "")
        if not sub_id or not given:
            return PushAnswer(status=400, body=b"missing subscription headers")
        sub = await subscriptions.subscription(ENDPOINT, sub_id)
        if sub is None:
            return PushAnswer(status=404, body=b"unknown subscription")
        if sub.secret is None or not hmac.compare_digest(given.encode(), sub.secret.encode()):
            return PushAnswer(status=403, body=b"bad secret")
        try:
            delivery = _DELIVERY(request.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return PushAnswer(status=400, body=b"not a delivery")
        if delivery.subscription != sub_id or delivery.calendar != sub.calendar_id:
            return PushAnswer(status=400, body=b"the delivery names another subscription")
        kind = NoticeKind.REMOVED if delivery.lifecycle == "removed" else NoticeKind.CHANGE
        return PushAnswer(status=202, notices=(Notice(kind=kind, subscription_id=sub_id),))
