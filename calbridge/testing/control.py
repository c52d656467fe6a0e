"""The control endpoint ``calbridge emulate`` serves: the emulators' shared Python API
(:mod:`calbridge.testing.emulator_api`) over loopback HTTP, so another process can change the data.

``POST /{emulator}/{verb}`` with a JSON object of arguments answers ``{"result": ...}``; ``GET /``
lists the emulators and the verbs each takes. Instants are RFC 3339 strings (``YYYY-MM-DD`` for an
all-day date). Verbs and their arguments (``calendar`` is optional everywhere)::

    add     title, start, end, rrule?, time_zone?   -> the new event's id
    update  id, title?, start?, end?
    delete  id
    cancel  series_id, original_start               -> the cancelled occurrence's id
    move    series_id, original_start, start, end   -> the exception's id
    expire  (none)                                  every cursor issued so far is dead
    fail    status, count?, retry_after?            the next API requests fail
    clear   (none)                                  drop pending failures
    seed    n_events, n_series?                     -> the ids created

and, where the emulator records its sync rounds (:mod:`calbridge.testing.rounds`)::

    rounds  (none)   -> per calendar: rounds begun, full listings, rounds open, overlapping rounds

and, where the emulator pushes (:mod:`calbridge.testing._push_control`)::

    subscriptions  (none)              -> the live channels / subscriptions, never their secrets
    lifetime       seconds             the longest a new channel (Google) or subscription (Graph) may live
    lifecycle      id, event           Graph: send reauthorizationRequired, subscriptionRemoved or missed

Only loopback peers are served (anything else gets 403), only with a loopback ``Host`` (no DNS
rebinding) and a JSON body (a web page cannot post one without a CORS preflight, never answered).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ._push_control import PUSH_VERBS, call_push, push_account, push_verbs_of
from .emulator_api import EmulatorAPI, SeriesEmulatorAPI
from .rounds import round_log_of

__all__ = ["VERBS", "call", "control_app", "push_account", "verbs_of"]

# verb -> (method name, the arguments that are instants)
VERBS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "add": ("add_event", ("start", "end")),
    "update": ("update_event", ("start", "end")),
    "delete": ("delete_event", ()),
    "cancel": ("cancel_occurrence", ("original_start",)),
    "move": ("move_occurrence", ("original_start", "start", "end")),
    "expire": ("expire_cursors", ()),
    "fail": ("fail_next", ()),
    "clear": ("clear_faults", ()),
    "seed": ("seed", ()),
}
SERIES_VERBS = frozenset({"cancel", "move"})


def _instant(value: Any, name: str) -> dt.datetime | dt.date:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected an RFC 3339 string")
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    instant = dt.datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError(f"{name}: needs an offset or Z")
    return instant


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1:].split("]")[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def verbs_of(emulator: EmulatorAPI) -> list[str]:
    """The verbs an emulator serves (no occurrence verbs without recurring events, push verbs only
    where it pushes)."""
    series = isinstance(emulator, SeriesEmulatorAPI)
    rounds = ["rounds"] if round_log_of(emulator) is not None else []
    return [v for v in VERBS if series or v not in SERIES_VERBS] + rounds + push_verbs_of(emulator)


def call(emulator: EmulatorAPI, verb: str, args: Mapping[str, Any]) -> Any:
    """Run one verb with JSON ``args`` on ``emulator`` (what the endpoint does per request).

    Raises:
        LookupError: a verb this emulator does not serve.
        ValueError, TypeError, KeyError: bad arguments.
    """
    if verb not in verbs_of(emulator):
        raise LookupError(f"no verb {verb!r} here; this emulator serves {', '.join(verbs_of(emulator))}")
    if verb in PUSH_VERBS:
        return call_push(emulator, verb, args)
    if verb == "rounds":
        if args:
            raise TypeError("rounds takes no arguments")
        log = round_log_of(emulator)
        assert log is not None
        return log.summary()
    method, instants = VERBS[verb]
    kwargs = {k: (_instant(v, k) if k in instants and v is not None else v) for k, v in args.items()}
    first = (kwargs.pop("id"),) if "id" in kwargs else ()  # the event id is positional in the API
    result = getattr(emulator, method)(*first, **kwargs)
    return list(result) if isinstance(result, (list, tuple)) else result


def control_app(emulators: Mapping[str, EmulatorAPI]) -> web.Application:
    """The aiohttp app: ``POST /{emulator}/{verb}``, ``GET /``."""

    @web.middleware
    async def loopback_only(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not _is_loopback(request.remote) or not _is_loopback(_host_name(request.host)):
            return web.json_response({"error": "the control endpoint serves loopback peers only"}, status=403)
        return await handler(request)

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"emulators": {n: {"verbs": verbs_of(e)} for n, e in emulators.items()}})

    async def verb(request: web.Request) -> web.Response:
        name, what = request.match_info["emulator"], request.match_info["verb"]
        emulator = emulators.get(name)
        if emulator is None:
            return web.json_response({"error": f"no emulator {name!r}; serving {', '.join(emulators)}"}, status=404)
        if request.content_type != "application/json":
            return web.json_response({"error": "send a JSON object (Content-Type: application/json)"}, status=415)
        try:
            args = await request.json() if request.can_read_body else {}
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(args, dict):
            return web.json_response({"error": "send a JSON object of arguments"}, status=400)
        try:
            return web.json_response({"result": call(emulator, what, args)})
        except LookupError as exc:
            status = 404 if what not in VERBS and what not in PUSH_VERBS and what != "rounds" else 400
            return web.json_response({"error": str(exc).strip("'\"")}, status=status)
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": f"{what}: {exc}"}, status=400)

    app = web.Application(middlewares=[loopback_only])
    app.router.add_get("/", index)
    app.router.add_post("/{emulator}/{verb}", verb)
    return app
