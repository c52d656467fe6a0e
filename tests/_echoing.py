"""An echoing hostile middleware in front of an emulator: its token endpoint refuses with the posted
form echoed back, or its API answers 401 then 500 with the request's Authorization header echoed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_PATHS = {"google": "/token", "graph": "/oauth2/v2.0/token", "feishu": "/open-apis/auth/v3/"}
API_PATHS = {"google": "/calendar/v3/", "graph": "/v1.0/", "feishu": "/open-apis/calendar/"}


def _token_refusal(provider: str, echo: str) -> web.Response:
    body: dict[str, Any]
    if provider == "feishu":
        body = {"code": 10014, "msg": f"app secret invalid, you sent {echo}"}
    else:
        body = {"error": "invalid_grant", "error_description": f"AADSTS70000: bad grant; you sent {echo}"}
    return web.json_response(body, status=400)


def _api_failure(provider: str, status: int, echo: str) -> web.Response:
    text = f"backend failed handling Authorization: {echo}"
    body: dict[str, Any]
    if provider == "google":
        body = {"error": {"code": status, "message": text, "errors": [{"reason": "backendError"}]}}
    elif provider == "graph":
        body = {"error": {"code": "generalException", "message": text}}
    else:  # no gateway token code: a 401 here is the app's credentials, the 500 a service error
        body = {"code": 190003 if status == 500 else 1, "msg": text}
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def hostile(provider: str, mode: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """``mode`` "token": the token endpoint answers 400 echoing the form (and Authorization); "api":
    the first API request answers 401, every later one 500, both echoing the Authorization header."""
    seen = {"api": 0}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if mode == "token" and TOKEN_PATHS[provider] in request.path:
            return _token_refusal(provider, f"{await request.text()} with Authorization: {auth}")
        if mode == "api" and request.path.startswith(API_PATHS[provider]):
            seen["api"] += 1
            return _api_failure(provider, 401 if seen["api"] == 1 else 500, auth)
        return await handler(request)

    return middleware
