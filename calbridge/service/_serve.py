"""The service's HTTP side: the receiver app (push endpoints and ``/healthz``) and serving it on
``service.listen`` with aiohttp's AppRunner, so a user with their own server can mount the app instead.

The push endpoints come from :mod:`calbridge.service._receiver` (``make_receiver_app``) when it is
installed; without it the app serves ``/healthz`` alone and every calendar is polled.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ..config import Config, Listen, structure_auth
from ..push import PushAccount, PushVerifier, push_plugin
from ..registry import Registry
from ..store.base import Store
from ._triggers import Trigger

RECEIVER_MODULE = "calbridge.service._receiver"


def push_accounts(config: Config, registry: Registry) -> tuple[dict[str, PushVerifier], dict[str, list[PushAccount]]]:
    """Per endpoint, the verifier of its plugin and the accounts configured for push there
    (``push: false`` and plugins that cannot push are left out: those accounts are polled)."""
    verifiers: dict[str, PushVerifier] = {}
    accounts: dict[str, list[PushAccount]] = {}
    by_plugin: dict[str, PushVerifier] = {}
    for account in config.accounts:
        if account.push is False:
            continue
        plugin = registry.get(account.provider)
        pusher = push_plugin(plugin)
        if pusher is None:
            continue
        if isinstance(account.auth, Mapping) or account.push is None or isinstance(account.push, Mapping):
            # Built in code: its plugin structures auth and push now (an absent `push` too: a plugin
            # that needs no settings pushes without the key, and the manager subscribes it).
            account = structure_auth(plugin, account, base_dir=config.base_dir, where=f"{account.name}.auth")
        if account.push is None or account.push is False:
            continue
        verifier = by_plugin.get(account.provider)
        if verifier is None:
            verifier = by_plugin[account.provider] = pusher.push_verifier()
        for endpoint in verifier.endpoints:
            verifiers[endpoint] = verifier
            accounts.setdefault(endpoint, []).append(PushAccount(name=account.name, settings=account.push))
    return verifiers, accounts


def healthz_app(draining: Callable[[], bool]) -> web.Application:
    """An app with ``GET /healthz`` only: 200 while serving, 503 once draining."""

    async def healthz(request: web.Request) -> web.Response:
        if draining():
            return web.Response(status=503, text="draining\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app


def receiver_app(
    *,
    verifiers: Mapping[str, PushVerifier],
    accounts: Mapping[str, Sequence[PushAccount]],
    store: Store,
    trigger: Callable[[Trigger], None],
    draining: Callable[[], bool],
) -> web.Application:
    """The receiver (push endpoints and ``/healthz``), or ``/healthz`` alone when the receiver module
    is not installed."""
    try:
        module: Any = importlib.import_module(RECEIVER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != RECEIVER_MODULE:
            raise
        return healthz_app(draining)
    app: web.Application = module.make_receiver_app(
        verifiers=verifiers, accounts=accounts, store=store, trigger=trigger, draining=draining
    )
    return app


class ListenError(OSError):
    """The listen address cannot be bound (in use, not ours, not an address of this machine)."""


class Site:
    """``app`` served on ``listen`` until :meth:`close`; ``port`` is the bound one (``listen`` may ask 0)."""

    def __init__(self, app: web.Application, listen: Listen) -> None:
        self._app, self._listen = app, listen
        self._runner: web.AppRunner | None = None
        self.port = listen.port

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            ListenError: the address cannot be bound; one line, naming the address.
        """
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._listen.host, self._listen.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenError(f"cannot listen on {self._listen}: {exc.strerror or exc}") from None
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
