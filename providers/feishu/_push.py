"""The Feishu provider's push side (:class:`~calbridge.push.PushProvider`): a calendar's event
subscription, made with the user's token.

``POST /open-apis/calendar/v4/calendars/:calendar_id/events/subscription`` (no body) subscribes the
app to that calendar's ``calendar.calendar.event.changed_v4`` events, delivered to the app's one
request URL from its developer console; ``…/events/unsubscription`` stops them (F7, apis.md 1.F).
Both take a user_access_token only, so a ``tenant`` account is polled. The subscription has no id
and no expiry: it is alive until unsubscribed, so renewing returns it unchanged. Its
:class:`~calbridge.push.Subscription` ``id`` is the real calendar id (what ``primary`` resolved
to), which is what a delivery's ``event.calendar_id`` names.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from calbridge.errors import NotFound
from calbridge.provider import ProviderContext
from calbridge.push import Subscription

from ._client import CALENDARS, decode
from ._config import TenantAuth
from ._pushconfig import FeishuPushSettings, PushNotConfigured

if TYPE_CHECKING:
    from ._client import FeishuClient

logger = logging.getLogger(__name__)

PROVIDER = "feishu"
TENANT_REASON = (
    "a tenant_access_token cannot subscribe to calendar event changes: the event subscription needs a "
    "user_access_token (auth kind user)"
)


class FeishuPushing:
    """The push methods of ``FeishuProvider`` (a mixin over its context, client and ``_resolve``)."""

    if TYPE_CHECKING:
        _ctx: ProviderContext
        client: FeishuClient

        async def _resolve(self, calendar_id: str) -> str: ...

    def push_unavailable(self) -> str | None:
        """Why this account is polled, or None when it can push."""
        account = self._ctx.account
        if isinstance(account.auth, TenantAuth):
            return TENANT_REASON
        if account.push is False:
            return "push is off (push: false)"
        if isinstance(account.push, PushNotConfigured):
            return account.push.reason
        if not isinstance(account.push, FeishuPushSettings):
            return PushNotConfigured().reason
        return None

    async def _call(self, calendar_id: str, verb: str) -> None:
        what = f"event {verb}"
        path = f"{CALENDARS}/{calendar_id}/events/{verb}"
        await self.client.http.request_parsed("POST", path, lambda r: decode(r, f"feishu {what}"), what=what)

    async def subscribe(self, calendar_id: str, *, public_url: str, secret: str, expires: dt.datetime) -> Subscription:
        """Subscribe the app to ``calendar_id``'s event changes (``public_url``, ``secret`` and
        ``expires`` are the app's console settings' business: one request URL, no per-subscription
        secret, no expiry).

        Raises:
            AuthError: the token is refused (a tenant token: code 99991663). NotFound,
            PermissionDenied: the calendar is gone or not readable by the user.
        """
        real_id = await self._resolve(calendar_id)
        await self._call(real_id, "subscription")
        # Ids are unique per provider in the store: two accounts may subscribe one shared calendar.
        account = self._ctx.account.name
        return Subscription(provider=PROVIDER, account=account, calendar_id=calendar_id, id=f"{account}/{real_id}",
                            resource=real_id, expires=None, created=self._ctx.clock())  # fmt: skip

    async def renew(
        self, subscription: Subscription, *, public_url: str, secret: str, expires: dt.datetime
    ) -> Subscription:
        """The subscription itself: it does not expire."""
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop the calendar's event subscription; a calendar already gone is not an error."""
        try:
            await self._call(subscription.resource or subscription.id, "unsubscription")
        except NotFound as exc:
            logger.info("feishu unsubscription of a calendar that is gone (%s)", exc.code)
