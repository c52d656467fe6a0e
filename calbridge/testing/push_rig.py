"""A push receiver on loopback for tests: the real :func:`~calbridge.service._receiver.make_receiver_app`
over a store, served on 127.0.0.1, recording the triggers it hands on::

    async with PushRig(config, store) as rig:        # every pushing plugin of the config's accounts
        manager = SubscriptionManager(store, engine, rig.url, clock)
        ...
        trigger = await rig.wait_for(lambda t: t.calendar_id == "work")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from ..config import Config
from ..push import PushAccount, PushVerifier
from ..registry import Registry
from ..service._receiver import make_receiver_app, push_endpoints
from ..service._triggers import Trigger
from ..store.base import SubscriptionStore

WAIT = 5.0  # five times the contract's one second


class PushRig:
    """The receiver served on loopback; ``triggers`` is what it handed on, ``draining`` its health."""

    def __init__(
        self,
        config: Config | None,
        store: SubscriptionStore,
        *,
        registry: Registry | None = None,
        verifiers: Mapping[str, PushVerifier] | None = None,
        accounts: Mapping[str, Sequence[PushAccount]] | None = None,
    ) -> None:
        if verifiers is None:
            assert config is not None, "give a config or the verifiers"
            verifiers, found = push_endpoints(config, registry)
            accounts = found if accounts is None else accounts
        self.verifiers = dict(verifiers)
        self.accounts = dict(accounts or {})
        self.store = store
        self.triggers: list[Trigger] = []
        self.draining = False
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()
        self.url = ""

    def _trigger(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)
        self._arrived.set()

    async def __aenter__(self) -> Self:
        app = make_receiver_app(verifiers=self.verifiers, accounts=self.accounts, store=self.store,
                                trigger=self._trigger, draining=lambda: self.draining)  # fmt: skip
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets: Any = site._server.sockets  # type: ignore[union-attr]  # aiohttp exposes the port only here
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, match: Callable[[Trigger], bool], *, timeout: float = WAIT) -> Trigger:
        """The first trigger (so far or to come) that ``match`` accepts.

        Raises:
            TimeoutError: none within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = next((t for t in self.triggers if match(t)), None)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching trigger within {timeout}s (got {len(self.triggers)} others)")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def quiet(self, seconds: float = 0.5) -> None:
        """Let a receiver's queued notices settle (a refused request must still trigger nothing after it)."""
        await asyncio.sleep(seconds)
