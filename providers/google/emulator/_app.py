"""The emulator's aiohttp application: Calendar v3 routes (push ones from ``_push``), the OAuth token
endpoint, a request log, injected faults and bearer-token checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import google.auth.exceptions
import google.auth.jwt
from aiohttp import web

from ._answers import error
from ._answers import json_response as _json
from ._listing import list_calendars, list_events, list_instances
from ._push import add_push
from ._state import GoogleState, RequestRecord

API = "/calendar/v3"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def make_app(state: GoogleState) -> web.Application:
    """The ``aiohttp.web.Application`` serving ``state``."""

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = _bearer(request)
        rec = RequestRecord(
            method=request.method, path=request.path, query=dict(request.query), time=time.monotonic(),
            authorized=token is not None and state.token_valid(token),
        )  # fmt: skip
        state.record(rec)
        if not request.path.startswith(API):
            response = await handler(request)
            rec.status = response.status
            return response
        fault = state.take_fault(request.path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if not rec.authorized:
            status, body = error(401, "authError", "Invalid Credentials")
            body["error"]["errors"][0].update(locationType="header", location="Authorization")
            rec.status = 401
            return _json(status, body, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        if fault is not None and fault.status:
            rec.status = fault.status
            return _fault_response(fault.status, fault.reason, fault.retry_after)
        response = await handler(request)
        rec.status = response.status
        return response

    async def events(request: web.Request) -> web.Response:
        status, body = list_events(state, request.match_info["cal"], request.query)
        if status == 200:
            q = request.query
            state.round_log.page(request.match_info["cal"], sent=q.get("pageToken"),
                                 full="syncToken" not in q and "pageToken" not in q,
                                 more=body.get("nextPageToken"))  # fmt: skip
        return _json(status, body)

    async def instances(request: web.Request) -> web.Response:
        return _json(*list_instances(state, request.match_info["cal"], request.match_info["eid"], request.query))

    async def get_event(request: web.Request) -> web.Response:
        cal = state.calendar(request.match_info["cal"])
        event = None if cal is None else state.get_event(cal.id, request.match_info["eid"])
        if event is None:
            return _json(*error(404, "notFound", "Not Found"))
        return _json(200, event)

    async def calendar_list(request: web.Request) -> web.Response:
        return _json(*list_calendars(state, request.query))

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        if grant == "refresh_token":
            client_id = str(form.get("client_id", ""))
            known = state.clients.get(client_id)
            if known is None or known[0] != form.get("client_secret"):
                return _json(401, {"error": "invalid_client", "error_description": "The OAuth client was not found."})
            if form.get("refresh_token") not in known[1]:
                return _json(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
            state.token_grants.append({"grant_type": grant, "client_id": client_id})
        elif grant == JWT_GRANT:
            claims = _verify_assertion(state, str(form.get("assertion", "")))
            if claims is None:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            state.token_grants.append({"grant_type": grant, "iss": claims["iss"], "sub": str(claims.get("sub", ""))})
        else:
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        return _json(200, {"access_token": state.issue_token(), "expires_in": state.expires_in,
                           "scope": str(form.get("scope", "")), "token_type": "Bearer"})  # fmt: skip

    app = web.Application(middlewares=[gate])
    app.router.add_post("/token", token)
    add_push(app, state)  # before events/{eid}: events.watch and channels.stop
    app.router.add_get(f"{API}/users/me/calendarList", calendar_list)
    app.router.add_get(f"{API}/calendars/{{cal}}/events", events)
    app.router.add_get(f"{API}/calendars/{{cal}}/events/{{eid}}/instances", instances)
    app.router.add_get(f"{API}/calendars/{{cal}}/events/{{eid}}", get_event)
    return app


def _verify_assertion(state: GoogleState, assertion: str) -> dict[str, Any] | None:
    """The JWT's claims when it is signed by the key we issued to its ``iss`` (``aud`` is not checked:
    google-auth always sends Google's own token URL there)."""
    try:
        unverified = google.auth.jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]
        pem = state.service_accounts.get(str(unverified.get("iss")))
        if pem is None:
            return None
        claims: dict[str, Any] = google.auth.jwt.decode(assertion, certs=pem, verify=True)  # type: ignore[no-untyped-call]
    except (ValueError, google.auth.exceptions.GoogleAuthError):
        return None
    return claims


def _fault_response(status: int, reason: str | None, retry_after: float | None) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    if status == 429 or (status == 403 and reason in (None, "rateLimitExceeded", "userRateLimitExceeded")):
        reason = reason or "rateLimitExceeded"
        return _json(*error(status, reason, "Rate Limit Exceeded", domain="usageLimits"), headers)
    if status == 410 and reason == "deleted":
        return _json(*error(410, "deleted", "Resource has been deleted"), headers)
    if status == 410:
        return _json(*error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.",
                            domain="calendar", location="syncToken"), headers)  # fmt: skip
    if status >= 500:
        return _json(*error(status, reason or "backendError", "Backend Error"), headers)
    return _json(*error(status, reason or "forbidden", "Injected failure"), headers)
