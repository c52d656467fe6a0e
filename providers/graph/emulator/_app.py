"""The Graph emulator's aiohttp routes: identity (what msal needs) and the v1.0 calendar API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from aiohttp import web

from ._model import instances, render

if TYPE_CHECKING:
    from . import GraphEmulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DELTA = frozenset({"delta", "delta()", "microsoft.graph.delta"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_token(state: dict[str, Any]) -> str:
    return _b64(json.dumps(state, separators=(",", ":")).encode())


def decode_token(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"request-id": str(uuid.uuid4()), "date": time.strftime("%Y-%m-%dT%H:%M:%S")},
        }
    }
    return web.json_response(body, status=status, headers=headers)


def parse_prefer(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in request.headers.getall("Prefer", []):
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key:
                out[key.strip().lower()] = value.strip().strip('"')
    return out


class GraphApp:
    """Request handlers bound to one :class:`GraphEmulator`."""

    def __init__(self, emu: GraphEmulator) -> None:
        self.emu = emu

    def build(self) -> web.Application:
        from ._push_routes import SubscriptionRoutes  # it imports graph_error from here

        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.oidc)
        r.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        SubscriptionRoutes(self.emu).add_to(app)
        r.add_get("/v1.0/{tail:.*}", self.graph)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        emu = self.emu
        entry = emu._log_request(request)
        api = request.path.startswith("/v1.0/")
        if api:
            delay, failure = emu._take_injection()
            if delay:
                await asyncio.sleep(delay)
            if failure is not None:
                status, code, retry_after = failure
                headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
                resp: web.StreamResponse = graph_error(status, code, "Injected failure.", headers)
                entry.status, entry.end = status, time.monotonic()
                return resp
        resp = await handler(request)
        if not api:
            resp.force_close()  # msal's requests pool would leave TLS sockets open at shutdown
        entry.status, entry.end = resp.status, time.monotonic()
        return resp

    def _origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def oidc(self, request: web.Request) -> web.Response:
        base = f"{self._origin(request)}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        tenant = request.match_info["tenant"]
        status, body = self.emu._grant(fields, tenant=tenant, issuer=f"{self._origin(request)}/{tenant}/v2.0")
        return web.json_response(body, status=status)

    async def graph(self, request: web.Request) -> web.Response:
        emu = self.emu
        auth = request.headers.get("Authorization", "")
        principal = emu._principal(auth[7:] if auth.startswith("Bearer ") else "")
        if principal is None:
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        segs = [s for s in request.path.split("/")[2:] if s != ""]
        if not segs:
            return graph_error(400, "BadRequest", "Resource not found for the segment.")
        if segs[0] == "me":
            if principal[0] != "user":
                return graph_error(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            user, rest = principal[1], segs[1:]
        elif segs[0] == "users" and len(segs) > 1:
            found = emu._find_user(segs[1])
            if found is None:
                return graph_error(404, "ErrorInvalidUser", "The requested user is invalid.")
            user = found
            if principal[0] == "user" and principal[1] != user:
                return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            rest = segs[2:]
        else:
            return graph_error(400, "BadRequest", "Resource not found for the segment.")
        if rest == ["calendars"]:
            return web.json_response({"value": emu._calendars_json(user)})
        calendar: str | None = None
        if rest[:1] == ["calendar"]:
            calendar, rest = emu._default_calendar(user), rest[1:]
        elif rest[:1] == ["calendars"] and len(rest) > 1:
            calendar, rest = rest[1], rest[2:]
            if not emu._owns(user, calendar):
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if not rest:
            if calendar is None:
                return graph_error(400, "BadRequest", "Resource not found for the segment.")
            return web.json_response(emu._calendar_json(user, calendar))
        if len(rest) == 2 and rest[0].lower() == "calendarview" and rest[1].lower() in _DELTA:
            return self.delta(request, user, calendar or emu._default_calendar(user))
        if rest[0] == "events" and len(rest) in (2, 3):
            if len(rest) == 3 and rest[2] != "instances":
                return graph_error(400, "BadRequest", "Resource not found for the segment.")
            return self.event(request, user, calendar, rest[1], instances=len(rest) == 3)
        return graph_error(400, "BadRequest", "Resource not found for the segment.")

    def _render_opts(self, request: web.Request) -> dict[str, Any]:
        prefer = parse_prefer(request)
        tz = None if self.emu.ignore_timezone_preference else prefer.get("outlook.timezone")
        return {
            "prefer_tz": tz,
            "text_body": prefer.get("outlook.body-content-type", "").lower() == "text",
            "origin": self._origin(request),
        }

    def _page_size(self, request: web.Request) -> int:
        try:
            return max(1, min(int(parse_prefer(request).get("odata.maxpagesize", "10")), 1000))
        except ValueError:
            return 10

    def _link(self, request: web.Request, key: str, token: str) -> str:
        base = self.emu.link_origin or self._origin(request)
        return f"{base}{quote(request.path, safe='/@:()')}?{key}={token}"

    def delta(self, request: web.Request, user: str, calendar: str) -> web.Response:
        emu = self.emu
        query = {k.lower(): v for k, v in request.query.items()}
        raw = query.get("$skiptoken") or query.get("$deltatoken")
        if raw is not None:
            state = decode_token(raw)
            if state is None or state.get("c") != calendar or state.get("u") != user:
                return graph_error(400, "BadRequest", "The delta token is malformed.")
            if state.get("g") != emu.generation:
                initial = urlencode({"startDateTime": state["ws"], "endDateTime": state["we"], "$deltatoken": ""})
                location = f"{self._origin(request)}{quote(request.path, safe='/@:()')}?{initial}"
                return graph_error(
                    emu.expiry_status,
                    "syncStateNotFound",
                    "The sync state generation is not found. The delta token is expired and data must be "
                    "synchronized again.",
                    {"Location": location},
                )
        else:
            if "startdatetime" not in query or "enddatetime" not in query:
                return graph_error(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.")
            state = {
                "c": calendar,
                "u": user,
                "ws": query["startdatetime"],
                "we": query["enddatetime"],
                "since": None,
                "g": emu.generation,
            }
        state = dict(state)
        if state.get("upto") is None:
            state["upto"] = emu.seq  # the change-log position this round reports up to
        sent = query.get("$skiptoken") or query.get("$deltatoken") or None
        full = not query.get("$deltatoken") and not query.get("$skiptoken")
        if emu.empty_first_page and not state.get("e"):
            state["e"] = 1
            again = encode_token(state)
            emu.round_log.page(calendar, sent=sent, full=full, more=again)
            return web.json_response(
                {
                    "@odata.context": "$metadata#Collection(event)",
                    "value": [],
                    "@odata.nextLink": self._link(request, "$skiptoken", again),
                }
            )
        size = self._page_size(request)
        try:
            page, more = emu._delta_page(state, size, skeletal=emu.skeletal_occurrences, **self._render_opts(request))
        except ValueError as exc:
            return graph_error(400, "ErrorInvalidParameter", str(exc))
        body: dict[str, Any] = {"@odata.context": "$metadata#Collection(event)", "value": [p for _, p in page]}
        skip: str | None = None
        if more:
            state["after"] = page[-1][0]
            skip = encode_token(state)
            body["@odata.nextLink"] = self._link(request, "$skiptoken", skip)
        else:
            nxt = {k: state[k] for k in ("c", "u", "ws", "we", "g")}
            nxt["since"] = state["upto"]
            body["@odata.deltaLink"] = self._link(request, "$deltatoken", encode_token(nxt))
        emu.round_log.page(calendar, sent=sent, full=full, more=skip)
        return web.json_response(body)

    def event(
        self, request: web.Request, user: str, calendar: str | None, eid: str, *, instances: bool
    ) -> web.Response:
        emu = self.emu
        with emu._lock:
            found = emu._lookup(user, calendar, eid)
            if found is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            defn, inst = found
            opts = self._render_opts(request)
            if not instances:
                return web.json_response(render(defn, inst, skeletal=False, **opts))
            query = {k.lower(): v for k, v in request.query.items()}
            if defn.recurrence is None or inst is not None:
                return graph_error(400, "ErrorInvalidRequest", "The event is not a series master.")
            try:
                ws, we = emu._parse_window(query.get("startdatetime"), query.get("enddatetime"))
            except ValueError as exc:
                return graph_error(400, "ErrorInvalidParameter", str(exc))
            found_instances = sorted(_instances_of(defn, ws, we), key=lambda i: (i.start, i.id))
            skip = int(query.get("$skip", "0") or 0)
            size = self._page_size(request)
            page = found_instances[skip : skip + size]
            body: dict[str, Any] = {"value": [render(defn, i, skeletal=False, **opts) for i in page]}
        if skip + size < len(found_instances):
            base = self.emu.link_origin or self._origin(request)
            q = urlencode(
                {"startDateTime": query["startdatetime"], "endDateTime": query["enddatetime"], "$skip": skip + size}
            )
            body["@odata.nextLink"] = f"{base}{quote(request.path, safe='/@:()')}?{q}"
        return web.json_response(body)


_instances_of = instances
