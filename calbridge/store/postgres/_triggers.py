"""LISTEN for the store's triggers on a connection of its own (not a pool slot: a pooled connection is
reset with ``UNLISTEN *`` when released), kept alive: a lost connection is reconnected in the
background. Triggers published while it was down are lost; the workers' polling is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from ...lease import TriggerCallback
from ._schema import Conn

log = logging.getLogger("calbridge.store.postgres")

PING = 30.0
"""Seconds between liveness checks of a quiet connection (a dead peer sends no FIN)."""
PING_TIMEOUT = 10.0
BACKOFF = (0.1, 5.0)
"""The first and the longest wait between reconnection attempts."""


class TriggerListener:
    """While entered, ``callback(payload)`` runs on the loop for every NOTIFY on ``channel``."""

    def __init__(
        self, connect: Callable[[], Awaitable[Conn]], channel: str, callback: TriggerCallback, where: str
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._callback = callback
        self._where = where
        self._conn: Conn = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        await self._listen()
        self._task = asyncio.create_task(self._keep(), name=f"calbridge listen {self._channel}")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            if not conn.is_closed():
                conn.terminate()

    async def _listen(self) -> None:
        conn = await self._connect()
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self._channel, self._deliver)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self._lost = conn, lost

    def _deliver(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._callback(payload)
        except Exception:  # one bad callback must not end the listening
            log.exception("trigger callback failed")

    async def _keep(self) -> None:
        while True:
            await self._until_lost()
            conn, self._conn = self._conn, None
            if conn is not None and not conn.is_closed():
                conn.terminate()
            log.warning("store %s: trigger listener lost its connection; reconnecting", self._where)
            delay = BACKOFF[0]
            while True:
                try:
                    await self._listen()
                    break
                except Exception:  # refused, timed out, auth: the same loss, retried quietly
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF[1])
            log.info("store %s: trigger listener reconnected", self._where)

    async def _until_lost(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), PING)
                return
            except TimeoutError:
                pass
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT)
            except Exception:  # timed out or failed: the connection is as good as lost
                return
