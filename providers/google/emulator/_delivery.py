"""Sends the channels' messages from the emulator app's own loop over real HTTP (an aiohttp client),
never inside an API handler: a ``sync`` right after events.watch, then an ``exists`` after each
data change of the channel's calendar, retried on 5xx with exponential backoff."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator

import aiohttp
import attrs
from aiohttp import web

from ._channels import Channel, Channels, now_ms

# apis.md 3.F: 500/502/503/504 are retried with exponential backoff (UNCONFIRMED list, the generic
# Google push contract); no answer at all is retried too.
RETRIED = frozenset({0, 500, 502, 503, 504})
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


@attrs.define(kw_only=True)
class _Worker:
    calendar_id: str
    wake: asyncio.Event
    task: asyncio.Task[None] | None = None


class Deliverer:
    """One app's delivery: a worker task per channel, so a channel's messages go out in order and a
    slow receiver delays only its own channel."""

    def __init__(self, channels: Channels) -> None:
        self._channels = channels
        self._workers: dict[str, _Worker] = {}
        self._session: aiohttp.ClientSession | None = None

    async def lifespan(self, _app: web.Application) -> AsyncIterator[None]:
        """The app's ``cleanup_ctx``: the client session and the change hook while the app serves."""
        async with aiohttp.ClientSession() as session:
            self._session = session
            self._channels.attach(asyncio.get_running_loop(), self._changed)
            try:
                yield
            finally:
                self._channels.detach()
                tasks = [w.task for w in self._workers.values() if w.task is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._session = None

    def start(self, channel: Channel) -> None:
        """Begin delivering to a channel just opened (called on the app's loop)."""
        worker = _Worker(calendar_id=channel.calendar_id, wake=asyncio.Event())
        worker.task = asyncio.create_task(self._run(channel.id, worker.wake), name=f"google-push-{channel.id}")
        self._workers[channel.id] = worker
        worker.task.add_done_callback(lambda _t: self._workers.pop(channel.id, None))

    def wake(self, channel_id: str) -> None:
        """Let a channel's worker see that it was stopped."""
        worker = self._workers.get(channel_id)
        if worker is not None:
            worker.wake.set()

    def _changed(self, calendars: set[str]) -> None:
        for worker in self._workers.values():
            if worker.calendar_id in calendars:
                worker.wake.set()

    async def _run(self, channel_id: str, wake: asyncio.Event) -> None:
        await self._send(channel_id, "sync")
        while True:
            channel = self._channels.channel(channel_id)
            if channel is None or not channel.live(now_ms()):
                return
            try:
                async with asyncio.timeout((channel.expiration - now_ms()) / 1000):
                    await wake.wait()
            except TimeoutError:
                return  # expired: the channel delivers nothing more
            wake.clear()
            await self._send(channel_id, "exists")

    async def _send(self, channel_id: str, state: str) -> None:
        entry = self._channels.next_message(channel_id, state)
        if entry is None:
            return
        channel = self._channels.channel(channel_id)
        assert channel is not None
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": email.utils.formatdate(channel.expiration / 1000, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(entry.number),
            "User-Agent": USER_AGENT,
        }
        token = self._channels.token_of(channel_id)
        if token is not None:
            headers["X-Goog-Channel-Token"] = token
        delay = self._channels.backoff
        retries = self._channels.retries
        for attempt in range(retries + 1):
            status = await self._post(channel.address, headers)
            current = self._channels.channel(channel_id)
            last = status not in RETRIED or attempt == retries or current is None or not current.live(now_ms())
            self._channels.answered(entry, status, last=last)
            if last:
                return
            await asyncio.sleep(delay)
            delay *= 2

    async def _post(self, address: str, headers: dict[str, str]) -> int:
        """One attempt: the answer's status, or 0 for no answer (refused, reset, timed out)."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self._channels.timeout)
        try:
            async with self._session.post(address, data=b"", headers=headers, timeout=timeout,
                                          ssl=self._channels.ssl, allow_redirects=False) as resp:  # fmt: skip
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0
