"""An envelope whose ``code`` is no integer (``"zero"``, ``true``, ``0.5``) on an HTTP 200 is an
invalid response that says what was wrong, not a failed "success"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from calbridge.errors import InvalidResponse
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator

from .conftest import Factory, Mirror


@pytest.mark.parametrize(("code", "said"), [("zero", "the string 'zero'"), (True, "a boolean"), (0.5, "a number")])
async def test_a_non_integer_code_is_an_invalid_response(
    emu: FeishuEmulator, make_provider: Factory, code: Any, said: str
) -> None:
    @web.middleware
    async def recode(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.endswith("/events") or not isinstance(response, web.Response) or response.body is None:
            return response
        body = json.loads(response.text or "{}")
        return web.json_response({**body, "code": code}, status=response.status)

    app = emu.make_app()
    app.middlewares.insert(0, recode)
    with ThreadedServer(app) as hostile, pytest.raises(InvalidResponse) as info:
        await Mirror().round(make_provider(base_url=hostile.url))
    message = str(info.value)
    assert "invalid response: code is" in message and said in message and "not an integer" in message
    assert "success" not in message and "code None" not in message
