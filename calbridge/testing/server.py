"""Serve an aiohttp application on loopback from its own thread and event loop.

Emulators are servers: running them on their own loop lets blocking clients (msal, google-auth
under ``asyncio.to_thread``) and the code under test share nothing but the socket.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web


class ThreadedServer:
    """``with ThreadedServer(app) as srv: srv.url`` — an app served on 127.0.0.1 until exit."""

    def __init__(
        self,
        app: web.Application | Callable[[], web.Application],
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        host = "localhost" if self._ssl is not None else self._host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> ThreadedServer:
        self._thread = threading.Thread(target=self._run, name="calbridge-emulator", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise RuntimeError(f"emulator failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        assert self._runner is not None
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    async def _setup(self) -> None:
        app = self._app if isinstance(self._app, web.Application) else self._app()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None
        sockets: Any = server.sockets  # type: ignore[attr-defined]
        self.port = sockets[0].getsockname()[1]

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop thread and return its result (thread-safe mutations)."""
        assert self._loop is not None

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(30)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
