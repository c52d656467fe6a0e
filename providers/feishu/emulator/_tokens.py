"""The Feishu emulator's token endpoints and bearer-token check (flat bodies, rotating refresh tokens)."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from aiohttp import web

from ._state import FeishuState


def fail(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    """The business error envelope."""
    body = {"code": code, "msg": msg, "error": {"log_id": "emulated"}}
    return web.json_response(body, status=status, headers=headers)


async def body_of(request: web.Request) -> dict[str, Any]:
    """JSON whatever the Content-Type (the official SDK sends none)."""
    try:
        out = json.loads(await request.read() or b"{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


class TokenRoutes:
    """tenant_access_token, the v2 OAuth refresh grant, and the Authorization check."""

    def __init__(self, state: FeishuState) -> None:
        self.s = state

    def _check_token(self, header: str) -> web.Response | None:
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token:
            return fail(400, 99991661, "Missing access token for authorization.")
        now = time.time()
        with self.s.lock:
            if token in self.s.user_tokens and token not in self.s.revoked and self.s.user_tokens[token] > now:
                return None
            tenant = self.s.tenant_tokens.get(token)
            if tenant is not None and tenant[1] > now:
                return None
            if token in self.s.user_tokens:
                return fail(400, 99991668, "Invalid access token for authorization (user token expired).")
        return fail(400, 99991663, "Invalid access token for authorization. Please make a request with token attached.")

    # -- auth ---------------------------------------------------------------------------------

    async def tenant_token(self, request: web.Request) -> web.Response:
        body = await body_of(request)
        status = 200 if self.s.tenant_errors_http200 else 400
        app_id, secret = body.get("app_id"), body.get("app_secret")
        if not app_id or not secret:
            return web.json_response({"code": 10003, "msg": "invalid param", "data": {}}, status=status)
        if self.s.apps.get(app_id) != secret:
            return web.json_response({"code": 10014, "msg": "app secret invalid"}, status=status)
        now = time.time()
        with self.s.lock:
            for token, (owner, expires) in self.s.tenant_tokens.items():
                if owner == app_id and expires - now >= 1800:  # ≥ 30 min left: the same token
                    return web.json_response(
                        {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": int(expires - now)}
                    )
            token = "t-" + base64.b16encode(os.urandom(16)).decode().lower()
            self.s.tenant_tokens[token] = (app_id, now + 7200)
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})

    async def user_token(self, request: web.Request) -> web.Response:
        body = await body_of(request)
        if body.get("grant_type") != "refresh_token":
            return web.json_response(
                {
                    "code": 20036,
                    "error": "unsupported_grant_type",
                    "error_description": "The grant type is not supported.",
                },
                status=400,
            )
        if self.s.apps.get(body.get("client_id", "")) != body.get("client_secret"):
            return web.json_response(
                {"code": 20002, "error": "invalid_client", "error_description": "The client secret is invalid."},
                status=400,
            )
        with self.s.lock:
            presented = body.get("refresh_token", "")
            entry = self.s.refresh_tokens.get(presented)
            if entry is not None:
                self.s.refresh_spends.append(presented)
            if entry is None:
                return web.json_response(
                    {
                        "code": 20026,
                        "error": "invalid_grant",
                        "error_description": "The refresh token passed is invalid.",
                    },
                    status=400,
                )
            if not entry[1]:
                self.s.refresh_reuses += 1  # single-use, as Feishu's: a second spend is refused
                return web.json_response(
                    {"code": 20073, "error": "invalid_grant", "error_description": "The refresh token has been used."},
                    status=400,
                )
            self.s.refresh_tokens[body["refresh_token"]] = (entry[0], False)
            new_refresh = "ur-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
            self.s.refresh_tokens[new_refresh] = (entry[0], True)
            access = "eyJ" + base64.urlsafe_b64encode(os.urandom(24)).decode()
            self.s.user_tokens[access] = time.time() + 7200
            self.s.user_apps[access] = entry[0]
        return web.json_response(
            {
                "code": 0,
                "access_token": access,
                "expires_in": 7200,
                "refresh_token": new_refresh,
                "refresh_token_expires_in": 604800,
                "token_type": "Bearer",
                "scope": "calendar:calendar:readonly offline_access",
            }
        )
