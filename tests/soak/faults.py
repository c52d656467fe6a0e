"""The soak's fault injector: an aiohttp middleware in front of a real emulator that answers a seeded
share of its API requests with a fault of each kind, and keeps, per fault, what calbridge did next."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from yarl import URL

from .wire import EMPTY, Wire

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KINDS = ("rate_limit", "server_error", "reset", "truncated", "html", "slow", "wrong_type", "dead_cursor",
         "duplicate_page", "empty_page")  # fmt: skip
TRANSIENT = frozenset({"rate_limit", "server_error", "reset", "slow"})
"""Kinds calbridge retries within the round."""
PAGE_KINDS = frozenset({"wrong_type", "dead_cursor", "duplicate_page", "empty_page"})
"""Kinds that only a listing (a sync page) can carry."""

RETRIED, ACCEPTED, CUT, PAGED_ON, QUARANTINED, RESYNCED, FAILED = (
    "retried, then succeeded",
    "answer taken as it was, the round succeeded",
    "in flight when another fault failed the round; resumed next round",
    "followed the next link",
    "item quarantined, the page went on",
    "resynced: full listing and sweep",
    "calendar failed the round, resumed next round",
)


@attrs.define
class Fault:
    """One injected fault: its kind, the round and request it hit, and what came of it."""

    kind: str
    round: int
    key: str  # method and URL of the faulted request: the same key again is its retry
    item: str = ""  # for a wrong-typed item: its id
    outcome: str = ""


class Injector:
    """Middleware state: while ``on``, each API request is faulted with probability ``rate``, the kind
    dealt from seeded, shuffled decks of every kind (the first the request can carry; a page kind
    waits for a listing), so each kind comes up about as often as the others."""

    def __init__(self, wire: Wire, emulator: Any, *, seed: int, rate: float = 0.10, slow: float = 1.0) -> None:
        self.wire, self.emulator, self.rate, self.slow = wire, emulator, rate, slow
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.on = False
        self.round = 0
        self.faults: list[Fault] = []
        self.requests = 0  # API requests seen while on
        self._last: dict[str, bytes] = {}  # the last listing body per path, for a duplicated page
        self._minted = 0
        self._deck: list[str] = []
        self.corruptible: Callable[[str], bool] = lambda event_id: True
        """Which items a wrong-typed field may hit: those the soak can change on the server afterwards."""

    def wrap(self, app: web.Application) -> web.Application:
        app.middlewares.insert(0, self.middleware)
        return app

    def open(self) -> list[Fault]:
        """Faults of the current round that no later request has resolved yet."""
        return [f for f in self.faults if f.round == self.round and not f.outcome]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.wire.api_path not in request.path:
            return await handler(request)
        request = self._unmint(request)
        key = f"{request.method} {request.path_qs}"
        listing = request.path.endswith(self.wire.list_suffix) and request.method == "GET"
        with self.lock:
            for f in self.open():
                if f.key == key and f.kind in TRANSIENT:
                    f.outcome = RETRIED
                elif f.kind == "empty_page" and listing:
                    f.outcome = PAGED_ON
            kind = self._draw(request, listing) if self.on else None
            if self.on:
                self.requests += 1
            if kind is not None:
                self.faults.append(Fault(kind=kind, round=self.round, key=key))
        if kind is None:
            response = await handler(request)
            if listing:
                self._remember(request, response)
            return response
        return await self._answer(kind, request, handler)

    def _draw(self, request: web.Request, listing: bool) -> str | None:
        if self.random.random() >= self.rate:
            return None
        kinds = [k for k in KINDS if listing or k not in PAGE_KINDS]
        if not any(c in request.query for c in self.wire.cursors):
            kinds = [k for k in kinds if k not in ("dead_cursor", "duplicate_page")]
        elif request.path not in self._last:
            kinds = [k for k in kinds if k != "duplicate_page"]
        if not any(k in kinds for k in self._deck):  # a new deck; kinds this request cannot carry wait
            self._deck += self.random.sample(KINDS, len(KINDS))
        kind = next(k for k in self._deck if k in kinds)
        self._deck.remove(kind)
        return kind

    def _remember(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.status == 200:
            self._last[request.path] = response.body

    def _unmint(self, request: web.Request) -> web.Request:
        """A request following a minted empty page goes on to the page it stands for."""
        query = request.url.query
        if EMPTY in query:
            return request.clone(rel_url=request.rel_url.with_query({k: v for k, v in query.items() if k != EMPTY}))
        value = query.get(self.wire.page_param, "")
        if not value.startswith(EMPTY):
            return request
        original = value.split("~", 1)[1]
        rest = {k: v for k, v in query.items() if k != self.wire.page_param}
        if original:
            rest[self.wire.page_param] = original
        return request.clone(rel_url=URL(request.path).with_query(rest))

    async def _answer(self, kind: str, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults[-1]
        if kind == "rate_limit":
            return web.json_response(self.wire.limit_body, status=429, headers={"Retry-After": "1"})
        if kind == "server_error":
            status = self.random.choice((500, 502, 503))
            return web.Response(status=status, text=f"upstream error {status}")
        if kind == "html":
            return web.Response(status=200, text="<html><body><h1>Welcome to nginx!</h1></body></html>",
                                content_type="text/html")  # fmt: skip
        if kind == "slow":
            await asyncio.sleep(self.slow)
            return await handler(request)
        if kind == "dead_cursor":
            return web.Response(status=self.wire.dead_status, body=self.wire.dead(), content_type="application/json")
        if kind == "duplicate_page":
            return web.Response(status=200, body=self._last[request.path], content_type="application/json")
        if kind == "empty_page":
            return await self._empty(request, handler)
        response = await handler(request)
        body = response.body if isinstance(response, web.Response) else None
        if not isinstance(body, bytes) or response.status != 200:
            fault.outcome = "not applicable (not a 200 JSON answer)"
            return response
        if kind == "wrong_type":
            return self._wrong_type(fault, request, response, body)
        if kind == "truncated":
            return web.Response(status=200, body=body[: len(body) // 2], content_type="application/json")
        return await self._reset(request, body)

    async def _empty(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.wire.name == "feishu":  # the emulator's own empty page, with its own next token
            with self.emulator.lock:
                self.emulator.empty_pages += 1
            return await handler(request)
        self._minted += 1
        token = f"{EMPTY}{self._minted}~{request.query.get(self.wire.page_param, '')}"
        link = request.url.update_query({EMPTY: str(self._minted)})
        return web.json_response(self.wire.empty_page(token, str(link)))

    def _wrong_type(self, fault: Fault, request: web.Request, response: web.Response, body: bytes) -> web.Response:
        page = json.loads(body)
        items = [i for i in self.wire.items(page) or () if isinstance(i, dict) and self.wire.corrupt_key in i
                 and self.corruptible(str(i.get(self.wire.id_key, "")))]  # fmt: skip
        if not items:
            fault.outcome = "not applicable (no single or series master on the page)"
            return response
        item = self.random.choice(items)
        item[self.wire.corrupt_key] = 12345
        fault.item = str(item.get(self.wire.id_key, ""))
        self._remember(request, response)
        return web.json_response(page)

    async def _reset(self, request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.abort()
        return response
