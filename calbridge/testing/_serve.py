"""Serve any installed provider's emulator on loopback for tests (HTTPS with a throwaway CA when it
asks for it), with connection drops injected at the transport, which works for every emulator."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ..emulation import EmulatorApp
from ..registry import Registry, default_registry
from .server import ThreadedServer

# -- serving emulators --------------------------------------------------------------------------


class _Dropper:
    """aiohttp middleware state: abort the connection of the next ``n`` matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self.dropped = 0

    def add(self, count: int, path_contains: str) -> None:
        with self._lock:
            self._pending.extend([path_contains] * count)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self, path: str) -> bool:
        with self._lock:
            for i, part in enumerate(self._pending):
                if part in path:
                    del self._pending[i]
                    self.dropped += 1
                    return True
            return False

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.take(request.path):
            transport = request.transport
            if transport is not None:
                transport.abort()  # no status line, no body: the client sees a dropped connection
            raise web.HTTPServiceUnavailable()  # never reaches the client
        return await handler(request)


class Served:
    """One emulator served on loopback (HTTPS when it asks for TLS), with transport-level faults."""

    def __init__(self, name: str, emulator: EmulatorApp, *, ca_file: Path | None = None,
                 server_context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.name = name
        self.emulator = emulator
        self.ca_file = ca_file
        self._dropper = _Dropper()

        def build() -> web.Application:
            app = emulator.make_app()
            if not isinstance(app, web.Application):
                raise TypeError(f"{name}: make_app() must return an aiohttp.web.Application")
            app.middlewares.insert(0, self._dropper.middleware)  # outermost: before the emulator sees it
            return app

        self.server = ThreadedServer(build, ssl_context=server_context)

    def start(self) -> Served:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def account_config(self, name: str) -> dict[str, Any]:
        """The emulator's own ``accounts`` entry pointing calbridge at this server."""
        return self.emulator.account_config(
            name=name, base_url=self.url, ca_file=None if self.ca_file is None else str(self.ca_file)
        )

    def drop_next(self, count: int = 1, *, path_contains: str = "") -> None:
        """Abort the connection of the next ``count`` requests whose path contains ``path_contains``."""
        self._dropper.add(count, path_contains)

    def clear_drops(self) -> None:
        self._dropper.clear()

    @property
    def dropped(self) -> int:
        """Connections dropped so far."""
        return self._dropper.dropped


def serve_emulator(name: str, *, registry: Registry | None = None, ca: Any = None) -> Served:
    """Start the emulator of provider ``name``, found through the registry (its ``calbridge.emulators``
    entry point, else the plugin's ``create_emulator()``).

    ``ca`` is a :class:`calbridge.testing.tls.TestCA`, needed only for emulators with ``tls = True``.

    Raises:
        PluginError: ``name`` has no emulator.
    """
    return _serve(name, (registry or default_registry).emulator(name), ca)


def _serve(name: str, emulator: EmulatorApp, ca: Any) -> Served:
    if getattr(emulator, "tls", False):
        if ca is None:
            raise ValueError(f"the {name} emulator serves HTTPS: pass a TestCA")
        return Served(name, emulator, ca_file=ca.ca_file, server_context=ca.server_context).start()
    return Served(name, emulator).start()


class EmulatorPool:
    """Emulators started on first use and kept for the session (the ``calbridge_emulators`` fixture)."""

    def __init__(self, ca_dir: Path, *, registry: Registry | None = None) -> None:
        self._ca_dir = ca_dir
        self._registry = registry or default_registry
        self._ca: Any = None
        self._served: dict[str, Served] = {}

    def names(self) -> list[str]:
        """Installed providers that ship an emulator."""
        return self._registry.emulator_names()

    @property
    def ca(self) -> Any:
        if self._ca is None:
            from .tls import make_test_ca

            self._ca = make_test_ca(self._ca_dir)
        return self._ca

    def serve(self, name: str) -> Served:
        """The running emulator of provider ``name`` (started now if needed)."""
        if name not in self._served:
            emulator = self._registry.emulator(name)
            self._served[name] = _serve(name, emulator, self.ca if getattr(emulator, "tls", False) else None)
        return self._served[name]

    def close(self) -> None:
        for served in self._served.values():
            served.stop()
        self._served.clear()
