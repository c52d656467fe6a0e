"""Graph change-notification subscriptions of one mailbox (the :class:`~calbridge.push.PushProvider`
half of push): one subscription per calendar, created, renewed (PATCH) and deleted.

A subscription's resource names its calendar (``{mailbox}/calendars/{id}/events``; the default
calendar ``{mailbox}/events``), so a notification names the calendar it triggers. Its
``clientState`` is the secret the verifier (``_verify``) compares; it never reaches a message.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from calbridge.errors import InvalidResponse, NotFound
from calbridge.push import Subscription

if TYPE_CHECKING:
    from calbridge.provider import ProviderContext

    from ._client import GraphClient

UTC = dt.UTC
# Outlook event subscriptions live at most 4,230 minutes by the older reference and 10,080 by the
# current table (apis.md 2.F): ask for no more than both allow, and read back what was granted.
MAX_LIFETIME = dt.timedelta(minutes=4_230)
CHANGE_TYPES = "created,updated,deleted"
ENDPOINT = "graph"
LIFECYCLE_ENDPOINT = "graph/lifecycle"


class _Answer(msgspec.Struct):
    """The part of a subscription resource calbridge reads."""

    id: str
    expires: str = msgspec.field(name="expirationDateTime")


_ANSWER = msgspec.json.Decoder(_Answer)


def parse_instant(text: str) -> dt.datetime:
    """Graph's instant (``2024-05-04T11:00:00.0000000Z``: seven fractional digits) as aware UTC.

    Raises:
        ValueError: not an ISO 8601 instant.
    """
    value = text.strip().replace("Z", "+00:00")
    head, dot, tail = value.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    instant = dt.datetime.fromisoformat(value)
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def stamp(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resource_of(root: str, calendar_id: str) -> str:
    """The subscription resource of a calendar below the mailbox path ``root`` (``/me``, ``/users/x``)."""
    if calendar_id == "primary":
        return f"{root}/events"  # the default calendar's events
    return f"{root}/calendars/{quote(calendar_id, safe='=')}/events"


def requested_expiry(expires: dt.datetime, now: dt.datetime) -> dt.datetime:
    """What to ask Graph for: ``expires``, but never beyond :data:`MAX_LIFETIME` from ``now``."""
    return min(expires, now + MAX_LIFETIME)


class GraphPush:
    """The push methods of :class:`~._provider.GraphProvider` (a mixin over its client and context)."""

    client: GraphClient
    _ctx: ProviderContext
    _account: str

    def push_unavailable(self) -> str | None:
        """Every Graph account can push (app-only and delegated alike)."""
        return None

    async def subscribe(self, calendar_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> Subscription:
        """``POST /subscriptions`` for ``calendar_id``; Graph answers only after its validation handshake
        reached ``{public_url}/push/graph`` (and ``…/lifecycle``).

        Raises:
            InvalidRequest: Graph refused it (the handshake failed, a bad expiry). ProviderError: as any call.
        """
        base = public_url.rstrip("/")
        resource = resource_of(self.client.root, calendar_id)
        now = self._ctx.clock()
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": f"{base}/push/{ENDPOINT}",
            "lifecycleNotificationUrl": f"{base}/push/{LIFECYCLE_ENDPOINT}",
            "resource": resource,
            "expirationDateTime": stamp(requested_expiry(expires, now)),
            "clientState": secret,
        }
        # Not retried: a create that timed out may still exist, and a second would double the pushes.
        response = await self.client.http.request(
            "POST", "/subscriptions", json=body, what=f"subscribe {calendar_id}", retry=False
        )
        answer = self._answer(response.body, f"subscribe {calendar_id}")
        return Subscription(
            provider="graph", account=self._account, calendar_id=calendar_id, id=answer[0], expires=answer[1],
            secret=secret, resource=resource, created=now,
        )  # fmt: skip

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        """``PATCH /subscriptions/{id}`` with a new expiry (the clientState and URLs stay as created).

        Raises:
            NotFound: the subscription is gone (expired or removed): create a new one.
        """
        what = f"renew the subscription of {subscription.calendar_id}"
        body = {"expirationDateTime": stamp(requested_expiry(expires, self._ctx.clock()))}
        response = await self.client.http.request("PATCH", self._path(subscription), json=body, what=what)
        _, granted = self._answer(response.body, what)
        return Subscription(
            provider="graph", account=subscription.account, calendar_id=subscription.calendar_id,
            id=subscription.id, expires=granted, secret=subscription.secret or secret,
            resource=subscription.resource, created=subscription.created,
        )  # fmt: skip

    async def reauthorize(self, subscription: Subscription) -> None:
        """``POST /subscriptions/{id}/reauthorize``, the answer to ``reauthorizationRequired``.

        Raises:
            NotFound: the subscription is gone.
        """
        what = f"reauthorize the subscription of {subscription.calendar_id}"
        await self.client.http.request("POST", f"{self._path(subscription)}/reauthorize", what=what)

    async def unsubscribe(self, subscription: Subscription) -> None:
        """``DELETE /subscriptions/{id}``; one already gone (404) is fine."""
        what = f"unsubscribe {subscription.calendar_id}"
        try:
            await self.client.http.request("DELETE", self._path(subscription), what=what)
        except NotFound:
            return

    def _path(self, subscription: Subscription) -> str:
        return f"/subscriptions/{quote(subscription.id, safe='')}"

    def _answer(self, body: bytes, what: str) -> tuple[str, dt.datetime]:
        """(id, expiry) of a subscription resource; never echoes the body (it holds the clientState)."""
        try:
            answer = _ANSWER.decode(body)
            return answer.id, parse_instant(answer.expires)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            raise InvalidResponse(f"graph {what}: not a subscription resource", provider="graph") from None
