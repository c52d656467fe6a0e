"""The emulator's push routes: ``POST /calendar/v3/calendars/{id}/events/watch`` and
``POST /calendar/v3/channels/stop`` (behind the app's bearer check), and the deliverer that runs on
the app's loop while it serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._answers import error, json_response
from ._delivery import Deliverer
from ._state import GoogleState

API = "/calendar/v3"


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def add_push(app: web.Application, state: GoogleState) -> None:
    """Serve events.watch and channels.stop on ``app`` and deliver its channels' messages."""
    deliverer = Deliverer(state.push)

    async def watch(request: web.Request) -> web.Response:
        asked = request.match_info["cal"]
        cal = state.calendar(asked)
        if cal is None:
            return json_response(*error(404, "notFound", "Not Found"))
        base_url = f"{request.scheme}://{request.host}"
        answer, channel = state.push.open(cal.id, asked, await _body(request), base_url=base_url)
        if channel is not None:
            deliverer.start(channel)  # its `sync` message goes out from the worker, after this answer
        return json_response(*answer)

    async def stop(request: web.Request) -> web.Response:
        body = await _body(request)
        failed = state.push.stop(body)
        if failed is not None:
            return json_response(*failed)
        deliverer.wake(str(body["id"]))
        return web.Response(status=204)  # channels.stop has an empty answer

    app.cleanup_ctx.append(deliverer.lifespan)
    app.router.add_post(f"{API}/calendars/{{cal}}/events/watch", watch)
    app.router.add_post(f"{API}/channels/stop", stop)
