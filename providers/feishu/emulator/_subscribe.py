"""The emulated calendar event subscription endpoints: ``POST …/calendars/:calendar_id/events/
subscription`` and ``…/events/unsubscription`` (F7, apis.md 1.F), with a user_access_token only.

A tenant token is refused with 99991663, the generic code whose documented cause includes "the API
does not support tenant_access_token" (F17; the HTTP status is UNCONFIRMED: 400, as the emulator's
other token errors). The app subscribed is the one the user token was issued to.
"""

from __future__ import annotations

from aiohttp import web

from ._state import FeishuState
from ._tokens import fail

TENANT_REFUSED = "Invalid access token for authorization. Please make a request with token attached."


def _ok() -> web.Response:
    return web.json_response({"code": 0, "msg": "success", "data": {}})


class SubscriptionRoutes:
    """The two handlers (the middleware has already checked that the token is alive)."""

    def __init__(self, state: FeishuState) -> None:
        self.s = state

    def _caller(self, request: web.Request) -> tuple[str, str] | web.Response:
        """(app_id, calendar_id) of a user-token request, or its refusal."""
        token = request.headers.get("Authorization", "")[7:]
        with self.s.lock:
            app_id = self.s.user_apps.get(token) if token in self.s.user_tokens else None
            known = request.match_info["cal"] in self.s.calendars
        if app_id is None:
            return fail(400, 99991663, TENANT_REFUSED)
        if not known:
            return fail(404, 191000, "calendar not found")
        return app_id, request.match_info["cal"]

    async def subscribe(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        self.s.push.subscribe(*caller, self.s.user_open_id)
        return _ok()

    async def unsubscribe(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        self.s.push.unsubscribe(*caller)
        return _ok()
