"""Google push on the provider: a calendar's subscription is an events.watch channel delivering to
``{public_url}/push/google`` with the secret as its token. Google has no renewal call, so renewing
opens a new channel, and the old one is stopped once the new one is stored (apis.md 3.F); stopping
is ``channels/stop``."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import msgspec

from calbridge.errors import InvalidResponse, NotFound, ProviderError
from calbridge.provider import ProviderContext
from calbridge.push import Subscription
from calbridge.toolkit import Response

from ._client import GoogleClient, error_for, path_segment

logger = logging.getLogger(__name__)

ENDPOINT = "google"
# apis.md 3.F: the answer's `expiration` is what counts, and Calendar's maximum lifetime is
# UNCONFIRMED. An answer without one is taken to live this long at most, so the channel is renewed
# early rather than trusted past a lifetime Google never stated.
UNSTATED_LIFETIME = dt.timedelta(hours=1)


class WatchAnswer(msgspec.Struct, rename="camel"):
    """The Channel events.watch answers (``expiration``: Unix ms as an int64 string)."""

    id: str
    resource_id: str
    expiration: str | None = None


_WATCH = msgspec.json.Decoder(WatchAnswer)


def _watched(response: Response, what: str) -> ProviderError | None:
    return error_for(response, what, cursor=False)


def _stopped(response: Response, what: str) -> ProviderError | None:
    """channels/stop answers an empty 2xx (204 or 200)."""
    return None if response.ok else error_for(response, what, cursor=False)


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def channel_request(channel_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> dict[str, Any]:
    """The Channel body of events.watch (apis.md 3.F; ``expiration`` in Unix ms)."""
    return {
        "id": channel_id, "type": "web_hook", "address": f"{public_url.rstrip('/')}/push/{ENDPOINT}",
        "token": secret, "expiration": _ms(expires),
    }  # fmt: skip


def granted_until(answer: WatchAnswer, *, asked: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When the channel ends: the answer's ``expiration``; without a readable one, the sooner of what
    was asked and ``UNSTATED_LIFETIME`` from now."""
    try:
        return dt.datetime.fromtimestamp(int(answer.expiration or "") / 1000, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return min(asked, now + UNSTATED_LIFETIME)


class GooglePush:
    """The :class:`~calbridge.push.PushProvider` half of :class:`~._provider.GoogleProvider`."""

    _ctx: ProviderContext
    _client: GoogleClient

    def push_unavailable(self) -> str | None:
        """Every google account can push: ``None``."""
        return None

    async def subscribe(self, calendar_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> Subscription:
        """events.watch on ``calendar_id`` with a fresh channel id (a UUID).

        The channel id makes a retried watch safe: an attempt that got through and is repeated is
        refused as a duplicate id, never a second channel.

        Raises:
            ProviderError: the watch was refused (InvalidRequest for a non-HTTPS address), or its
            answer names another channel (InvalidResponse).
        """
        channel_id = str(uuid.uuid4())
        what = f"events.watch {calendar_id}"
        answer = await self._client.http.request_decoded(
            "POST", f"/calendars/{path_segment(calendar_id)}/events/watch", _WATCH.decode, what=what,
            json=channel_request(channel_id, public_url=public_url, secret=secret, expires=expires), errors=_watched,
        )  # fmt: skip
        if answer.id != channel_id:
            raise InvalidResponse(f"google {what}: the answer names another channel", provider="google")
        now = self._ctx.clock()
        return Subscription(
            provider="google", account=self._ctx.account.name, calendar_id=calendar_id, id=channel_id,
            expires=granted_until(answer, asked=expires, now=now), secret=secret, resource=answer.resource_id,
            created=now,
        )  # fmt: skip

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        """A new channel on the same calendar; the caller stores it, then stops the old one with
        :meth:`unsubscribe` (``calbridge.push``). Stopping it here, before the new channel is stored,
        left a moment when a change was announced only to a channel the receiver refuses (404, and
        Google does not retry that)."""
        return await self.subscribe(subscription.calendar_id, public_url=public_url, secret=secret, expires=expires)

    async def unsubscribe(self, subscription: Subscription) -> None:
        """``channels/stop``; a channel already gone (404, 410) is fine.

        Raises:
            ProviderError: any other failure, after the retry policy.
        """
        if subscription.resource is None:
            # channels/stop needs the resourceId; without it the channel can only run out.
            logger.info("google: channel %s has no resource id to stop it by", subscription.id)
            return
        body = {"id": subscription.id, "resourceId": subscription.resource}
        try:
            await self._client.http.request("POST", "/channels/stop", json=body, what="channels.stop",
                                            errors=_stopped)  # fmt: skip
        except NotFound:
            return
