"""The emulator's ``/v1.0/subscriptions`` routes: create (after the validation handshake), list, get,
renew (PATCH), delete and reauthorize, authorized like every other v1.0 call."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from ._app import graph_error
from ._subscriptions import (
    RequestError,
    SubscriptionDef,
    check_expiry,
    parse_create,
    parse_instant,
    subscription_json,
)

if TYPE_CHECKING:
    from . import GraphEmulator

UTC = dt.UTC


class SubscriptionRoutes:
    """Handlers bound to one emulator; :meth:`add_to` registers them before the catch-all GET."""

    def __init__(self, emu: GraphEmulator) -> None:
        self.emu = emu

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1.0/subscriptions", self.create)
        r.add_get("/v1.0/subscriptions", self.list)
        r.add_get("/v1.0/subscriptions/{id}", self.get)
        r.add_patch("/v1.0/subscriptions/{id}", self.renew)
        r.add_delete("/v1.0/subscriptions/{id}", self.delete)
        r.add_post("/v1.0/subscriptions/{id}/reauthorize", self.reauthorize)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _start(self, _: web.Application) -> None:
        await self.emu.deliverer.start()

    async def _stop(self, _: web.Application) -> None:
        await self.emu.deliverer.stop()

    def _principal(self, request: web.Request) -> tuple[str, str] | None:
        auth = request.headers.get("Authorization", "")
        return self.emu._principal(auth[7:] if auth.startswith("Bearer ") else "")

    async def create(self, request: web.Request) -> web.Response:
        emu = self.emu
        principal = self._principal(request)
        if principal is None:
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            return graph_error(400, "BadRequest", "Unable to read JSON request payload.")
        try:
            with emu._lock:
                req = parse_create(body, now=dt.datetime.now(UTC), max_lifetime=emu.max_subscription_lifetime)
                user, calendar = self._mailbox(principal, req.target.user, req.target.calendar)
        except RequestError as exc:
            return graph_error(exc.status, exc.code, exc.message)
        urls = [req.notification_url] + ([req.lifecycle_url] if req.lifecycle_url else [])
        answered = await asyncio.gather(*(emu.deliverer.validate(u) for u in urls))
        if not all(answered):
            return graph_error(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to "
                "validation request.",
            )
        sub = SubscriptionDef(
            id=str(uuid.uuid4()), resource=req.resource, user=user, calendar_id=calendar,
            change_types=req.change_types, notification_url=req.notification_url, lifecycle_url=req.lifecycle_url,
            expires=req.expires, client_state=req.client_state, owner=principal,
            application_id=principal[1] if principal[0] == "app" else next(iter(emu.clients)),
        )  # fmt: skip
        with emu._lock:
            emu._subscriptions[sub.id] = sub
        return web.json_response(subscription_json(sub, with_state=True), status=201)

    def _mailbox(self, principal: tuple[str, str], user: str | None, calendar: str | None) -> tuple[str, str]:
        """(upn, calendar id) a resource names for this caller. Lock held."""
        emu = self.emu
        if user is None:
            if principal[0] != "user":
                raise RequestError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            upn = principal[1]
        else:
            found = emu._find_user(user)
            if found is None:
                raise RequestError(404, "ErrorInvalidUser", "The requested user is invalid.")
            if principal[0] == "user" and principal[1] != found:
                raise RequestError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            upn = found
        if calendar is None:
            return upn, emu._default_calendar(upn)
        if not emu._owns(upn, calendar):
            raise RequestError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return upn, calendar

    def _own(self, request: web.Request) -> tuple[SubscriptionDef | None, web.Response | None]:
        """The caller's live subscription named in the path, or the error answer. Lock held."""
        principal = self._principal(request)
        if principal is None:
            return None, _unauthorized()
        sub = self.emu._live().get(request.match_info["id"])
        if sub is None or sub.owner != principal:
            return None, graph_error(404, "ResourceNotFound", "The object was not found.")
        return sub, None

    async def list(self, request: web.Request) -> web.Response:
        principal = self._principal(request)
        if principal is None:
            return _unauthorized()
        with self.emu._lock:
            subs = [s for s in self.emu._live().values() if s.owner == principal]
            value = [subscription_json(s, with_state=False) for s in subs]
        return web.json_response({"@odata.context": "$metadata#subscriptions", "value": value})

    async def get(self, request: web.Request) -> web.Response:
        with self.emu._lock:
            sub, error = self._own(request)
            if sub is None:
                assert error is not None
                return error
            return web.json_response(subscription_json(sub, with_state=False))

    async def renew(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        with self.emu._lock:
            sub, error = self._own(request)
            if sub is None:
                assert error is not None
                return error
            try:
                if not isinstance(body, dict):
                    raise RequestError(400, "BadRequest", "The request body must be a JSON object.")
                expires = parse_instant(body.get("expirationDateTime"), what="expirationDateTime")
                check_expiry(expires, now=dt.datetime.now(UTC), max_lifetime=self.emu.max_subscription_lifetime)
            except RequestError as exc:
                return graph_error(exc.status, exc.code, exc.message)
            sub.expires = expires
            sub.reauthorization_required = False
            return web.json_response(subscription_json(sub, with_state=False))

    async def delete(self, request: web.Request) -> web.Response:
        with self.emu._lock:
            sub, error = self._own(request)
            if sub is None:
                assert error is not None
                return error
            del self.emu._subscriptions[sub.id]
        return web.Response(status=204)

    async def reauthorize(self, request: web.Request) -> web.Response:
        with self.emu._lock:
            sub, error = self._own(request)
            if sub is None:
                assert error is not None
                return error
            sub.reauthorization_required = False
        return web.Response(status=204)


def _unauthorized() -> web.Response:
    return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
