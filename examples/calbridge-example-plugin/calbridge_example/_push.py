"""The Example Calendar emulator's push: subscriptions with an expiry, and deliveries POSTed to their
address from the emulator's own event loop when a subscribed calendar changes (see ``emulator.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import threading
import time
from typing import Any

import aiohttp
import attrs
from aiohttp import web

UTC = dt.UTC


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@attrs.define
class _Sub:
    id: str
    calendar: str
    address: str
    secret: str = attrs.field(repr=False)
    expires: dt.datetime


class PushHub:
    """Subscriptions and their deliveries; ``deliveries`` records (subscription id, HTTP status or 0 for
    no answer, seconds until the answer)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.lifetime = dt.timedelta(hours=1)
        self.subs: dict[str, _Sub] = {}
        self.deliveries: list[tuple[str, int, float]] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_patch("/subscriptions/{id}", self._renew)
        app.router.add_delete("/subscriptions/{id}", self._delete)
        app.cleanup_ctx.append(self._life)

    async def _life(self, app: web.Application) -> Any:
        self._loop = asyncio.get_running_loop()
        # As many connections as deliveries at once: a burst is timed by the receiver, not by a pool.
        connector = aiohttp.TCPConnector(limit=0)
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))
        yield
        self._loop = None
        for task in list(self._sending):
            task.cancel()
        await self._session.close()

    def alive(self) -> list[str]:
        now = dt.datetime.now(UTC)
        with self.lock:
            return sorted(s.id for s in self.subs.values() if s.expires > now)

    def changed(self, calendar: str, event_id: str) -> None:
        """Deliver a change of ``calendar`` to each of its live subscriptions (called under the lock)."""
        now = dt.datetime.now(UTC)
        for sub in self.subs.values():
            if sub.calendar == calendar and sub.expires > now:
                body = {"subscription": sub.id, "calendar": calendar, "event": event_id, "change": "changed"}
                self._send(sub, body)

    def remove(self, subscription_id: str) -> None:
        with self.lock:
            sub = self.subs.pop(subscription_id)
            self._send(sub, {"subscription": sub.id, "calendar": sub.calendar, "lifecycle": "removed"})

    def _send(self, sub: _Sub, body: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None:
            headers = {"X-Example-Subscription": sub.id, "X-Example-Secret": sub.secret}
            with contextlib.suppress(RuntimeError):  # the server is stopping: nobody to deliver from
                loop.call_soon_threadsafe(self._start, sub.id, sub.address, headers, body)

    def _start(self, sub_id: str, address: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._post(sub_id, address, headers, body))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _post(self, sub_id: str, address: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        assert self._session is not None
        started = time.monotonic()
        try:
            async with self._session.post(address, json=body, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            status = 0
        with self.lock:
            self.deliveries.append((sub_id, status, time.monotonic() - started))

    async def subscribe(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        address, secret, asked = data.get("address"), data.get("secret"), _instant(data.get("expires"))
        if not (isinstance(address, str) and address.startswith(("http://", "https://"))):
            return web.json_response({"error": "address: an http(s) URL"}, status=400)
        if not isinstance(secret, str) or not secret or asked is None:
            return web.json_response({"error": "secret and expires are required"}, status=400)
        with self.lock:
            sub = _Sub(id=f"sub-{next(self._ids)}", calendar=request.match_info["cal"], address=address,
                       secret=secret, expires=self._grant(asked))  # fmt: skip
            self.subs[sub.id] = sub
            return web.json_response({"id": sub.id, "expires": _stamp(sub.expires)}, status=201)

    def _grant(self, asked: dt.datetime) -> dt.datetime:
        return min(asked, dt.datetime.now(UTC) + self.lifetime)

    async def _renew(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            data = None
        asked = _instant(data.get("expires")) if isinstance(data, dict) else None
        if asked is None:
            return web.json_response({"error": "expires is required"}, status=400)
        with self.lock:
            sub = self._live(request.match_info["id"])
            if sub is None:
                return web.json_response({"error": "no such subscription"}, status=404)
            sub.expires = self._grant(asked)
            return web.json_response({"id": sub.id, "expires": _stamp(sub.expires)})

    async def _delete(self, request: web.Request) -> web.Response:
        with self.lock:
            sub = self._live(request.match_info["id"])
            if sub is None:
                return web.json_response({"error": "no such subscription"}, status=404)
            del self.subs[sub.id]
            return web.Response(status=204)

    def _live(self, subscription_id: str) -> _Sub | None:
        sub = self.subs.get(subscription_id)
        return sub if sub is not None and sub.expires > dt.datetime.now(UTC) else None
