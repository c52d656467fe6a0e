"""Outgoing HTTP of the emulator's subscriptions, on the emulator's own loop: the validation handshake,
and change and lifecycle notifications, batched per URL and retried on 5xx or no answer.

A :class:`Deliverer` is started with the app (``on_startup``) and stopped with it; ``enqueue`` may be
called from any thread. Handlers never wait for a delivery: each batch is its own task.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs

_TEXT = "text/plain; charset=utf-8"


@attrs.define(kw_only=True)
class Delivery:
    """One request the emulator sent: ``kind`` is ``validation``, ``change`` or ``lifecycle``.

    ``status`` is None when no answer came (``error`` says why); ``body`` holds clientStates and is
    kept out of the repr.
    """

    kind: str
    url: str
    attempt: int
    status: int | None
    time: float
    body: Any = attrs.field(default=None, repr=False)
    error: str | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The notification items sent (empty for a validation)."""
        value = self.body.get("value") if isinstance(self.body, dict) else None
        return list(value) if isinstance(value, list) else []


@attrs.frozen(kw_only=True)
class Outgoing:
    """A notification item waiting to be sent to ``url``."""

    kind: str  # change | lifecycle
    url: str
    item: dict[str, Any] = attrs.field(repr=False)


@attrs.define(kw_only=True)
class PushSettings:
    """The emulator's push knobs (seconds), read at each use so tests may change them."""

    batch_window: float = 0.05  # how long the first item of a batch waits for others
    max_batch: int = 100
    retries: int = 3  # after a 5xx or no answer
    retry_delay: float = 0.25  # doubled at each retry
    timeout: float = 3.0  # Graph wants an answer within 3 s (apis.md 2.F)
    validation_timeout: float = 10.0  # and the handshake's within 10 s


def retryable(status: int | None) -> bool:
    """Whether a delivery answered ``status`` (None: no answer) is sent again.

    Graph retries any non-2xx for up to 4 h (apis.md 2.F); the emulator a few times, on a 5xx or no
    answer only, so a refused (4xx) delivery is not sent again.
    """
    return status is None or status >= 500


class Deliverer:
    """Sends what :meth:`enqueue` is given from the loop it was started on; logs into ``log``."""

    def __init__(self, settings: PushSettings, log: list[Delivery], lock: threading.RLock) -> None:
        self.settings = settings
        self._log = log
        self._lock = lock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[Outgoing] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()
        self._queue = asyncio.Queue()
        self._spawn(self._run())

    async def stop(self) -> None:
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self._loop = self._session = self._queue = None

    def enqueue(self, outgoing: Outgoing) -> bool:
        """Queue an item from any thread; False when the emulator is not being served."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, outgoing)
        except RuntimeError:  # the loop closed meanwhile: the emulator stopped serving
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _record(self, entry: Delivery) -> None:
        with self._lock:
            self._log.append(entry)

    async def validate(self, url: str) -> bool:
        """The handshake: POST ``url?validationToken=…`` and expect 200 ``text/plain`` with the decoded
        token within ``validation_timeout`` (apis.md 2.F)."""
        assert self._session is not None, "the emulator is not being served"
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
        entry = Delivery(kind="validation", url=url, attempt=1, status=None, time=time.monotonic())
        try:
            async with (
                asyncio.timeout(self.settings.validation_timeout),
                self._session.post(target, data=b"", headers={"Content-Type": _TEXT}) as resp,
            ):
                entry.status = resp.status
                text = await resp.text()
                kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        except (TimeoutError, aiohttp.ClientError, UnicodeDecodeError) as exc:
            entry.error = type(exc).__name__
            self._record(entry)
            return False
        self._record(entry)
        return entry.status == 200 and kind == "text/plain" and text == token

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(self.settings.batch_window)
            while not queue.empty():
                batch.append(queue.get_nowait())
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for out in batch:
                groups.setdefault((out.kind, out.url), []).append(out.item)
            size = max(1, self.settings.max_batch)
            for (kind, url), items in groups.items():
                for i in range(0, len(items), size):
                    self._spawn(self._post(kind, url, items[i : i + size]))

    async def _post(self, kind: str, url: str, items: list[dict[str, Any]]) -> None:
        assert self._session is not None
        body = {"value": items}
        data = json.dumps(body).encode()
        delay = self.settings.retry_delay
        for attempt in range(1, self.settings.retries + 2):
            entry = Delivery(kind=kind, url=url, attempt=attempt, status=None, time=time.monotonic(), body=body)
            try:
                async with (
                    asyncio.timeout(self.settings.timeout),
                    self._session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp,
                ):
                    entry.status = resp.status
                    await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                entry.error = type(exc).__name__
            self._record(entry)
            if not retryable(entry.status):
                return
            if attempt <= self.settings.retries:
                await asyncio.sleep(delay)
                delay *= 2
