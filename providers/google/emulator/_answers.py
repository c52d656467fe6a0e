"""The emulator's answers: Google's error envelope ``(status, body)`` and the JSON response."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

Result = tuple[int, dict[str, Any]]


def error(status: int, reason: str, message: str, *, domain: str = "global", location: str | None = None) -> Result:
    err: dict[str, Any] = {"domain": domain, "reason": reason, "message": message}
    if location:
        err.update(locationType="parameter", location=location)
    return status, {"error": {"errors": [err], "code": status, "message": message}}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json",
                        headers=headers)  # fmt: skip
