"""The push receiver: ``POST /push/<endpoint>`` verified by the endpoint's :class:`~calbridge.push.PushVerifier`,
and ``GET /healthz``; an aiohttp app of its own (:func:`make_receiver_app`) or routes added to yours
(:func:`add_receiver_routes`)::

    app = make_receiver_app(verifiers=..., accounts=..., store=store, trigger=scheduler.trigger,
                            draining=lambda: stopping)

Every answer is decided from the request alone (at most 1 MiB of it) and the verifier's lookups,
within :data:`ANSWER_WITHIN`; the verified notices are resolved to :class:`Trigger` values after
the answer, by a worker task the app starts and stops with itself. A refused request is logged in
one line: endpoint, status, peer; never its body, headers or any secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from http import HTTPStatus

import attrs
from aiohttp import web

from ..config import Config
from ..provider import Clock
from ..push import (
    Notice,
    NoticeKind,
    PushAccount,
    PushAnswer,
    PushRequest,
    PushVerifier,
    Subscription,
    push_plugin,
)
from ..registry import Registry, default_registry
from ..store.base import SubscriptionStore
from ._triggers import Trigger

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
ANSWER_WITHIN = 0.8  # seconds the verifier may take, so the answer leaves within the contract's 1 s
DEDUP_KEEP = dt.timedelta(days=1)  # Feishu retries a delivery for hours
BACKLOG = 100_000  # notices waiting to become triggers; past it they are dropped (polling catches up)
_CHUNK = 64 * 1024
_CACHE_FOR = 5.0  # seconds a subscription looked up stays cached for the verifiers (a burst's length)


@attrs.frozen(kw_only=True)
class _Config:
    verifiers: Mapping[str, PushVerifier]
    accounts: Mapping[str, Sequence[PushAccount]]
    store: SubscriptionStore
    trigger: Callable[[Trigger], None]
    draining: Callable[[], bool]
    clock: Clock


class _Lookups:
    """The store's subscriptions as the verifiers read them: each found one kept for a few seconds, so
    a burst of notifications costs the store one read per subscription (unknown ids are not kept)."""

    def __init__(self, store: SubscriptionStore) -> None:
        self._store = store
        self._found: dict[tuple[str, str], tuple[float, Subscription]] = {}

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        key = (provider, subscription_id)
        hit = self._found.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < _CACHE_FOR:
            return hit[1]
        found = await self._store.subscription(provider, subscription_id)
        if found is None:
            self._found.pop(key, None)
        else:
            if len(self._found) > 50_000:
                self._found.clear()
            self._found[key] = (now, found)
        return found


class _Receiver:
    """The handlers and the worker behind them; one per app the routes are added to."""

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.lookups = _Lookups(config.store)
        self.queue: asyncio.Queue[tuple[str, Notice]] = asyncio.Queue(BACKLOG)
        self.worker: asyncio.Task[None] | None = None

    async def healthz(self, request: web.Request) -> web.Response:
        if self.config.draining():
            return web.Response(status=503, text="draining\n")
        return web.Response(text="ok\n")

    async def push(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        verifier = self.config.verifiers.get(endpoint)
        if verifier is None:
            return _refused(request, "unknown endpoint", 404)
        body = await _read_capped(request)
        if body is None:
            return _refused(request, endpoint, 413)
        push = PushRequest(endpoint=endpoint, query=dict(request.query), body=body,
                           headers={k.lower(): v for k, v in request.headers.items()})  # fmt: skip
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                answer = await verifier.handle(
                    push, subscriptions=self.lookups, accounts=self.config.accounts.get(endpoint, ())
                )
        except TimeoutError:
            return _refused(request, endpoint, 503, why="not verified in time")
        except Exception as exc:  # a verifier's bug on odd input: refuse it, keep serving
            return _refused(request, endpoint, 400, why=f"the verifier failed ({type(exc).__name__})")
        # A refused answer may still carry what verified (a Graph batch with one bad item: its good ones).
        for notice in answer.notices:
            try:
                self.queue.put_nowait((endpoint, notice))
            except asyncio.QueueFull:
                logger.warning("push %s: backlog full, a notice dropped (polling catches up)", endpoint)
        if answer.status >= 400:
            return _refused(request, endpoint, answer.status, answer=answer)
        return _answer(answer)

    async def run(self) -> None:
        """Turn queued notices into triggers, one at a time, after their answers went out."""
        while True:
            endpoint, notice = await self.queue.get()
            try:
                for trigger in await self.resolve(endpoint, notice):
                    self.config.trigger(trigger)
            except Exception:
                logger.exception("push %s: a notice could not be handled", endpoint)

    async def resolve(self, endpoint: str, notice: Notice) -> list[Trigger]:
        """The calendars a verified notice names (none for a duplicate delivery or a gone subscription)."""
        if notice.kind is NoticeKind.SYNC:
            return []
        if notice.dedup_key is not None:
            key = f"{endpoint}:{notice.dedup_key}"
            if not await self.config.store.first_delivery(key, now=self.config.clock(), keep=DEDUP_KEEP):
                return []
        if notice.calendar_id is not None and notice.accounts:
            return [await self._direct(endpoint, a, notice) for a in notice.accounts]
        if notice.subscription_id is None:
            return []
        sub = await self.lookups.subscription(provider_of(endpoint), notice.subscription_id)
        if sub is None:
            return []
        return [Trigger(account=sub.account, calendar_id=sub.calendar_id, kind=notice.kind, subscription_id=sub.id)]

    async def _direct(self, endpoint: str, account: str, notice: Notice) -> Trigger:
        """A notice naming its calendar (Feishu: the real calendar id): the account's calendar as
        configured (``primary``) through its subscription, keyed ``{account}/{calendar id}`` (one
        indexed read, whatever the account's size), else the id as named."""
        assert notice.calendar_id is not None
        calendar_id = notice.calendar_id
        sub = await self.lookups.subscription(provider_of(endpoint), f"{account}/{calendar_id}")
        if sub is not None and sub.account == account:
            return Trigger(account=account, calendar_id=sub.calendar_id, kind=notice.kind, subscription_id=sub.id)
        return Trigger(account=account, calendar_id=calendar_id, kind=notice.kind, subscription_id=None)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self.worker = asyncio.create_task(self.run(), name="calbridge-push-triggers")
        yield
        self.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker


def provider_of(endpoint: str) -> str:
    """The provider whose subscriptions an endpoint's notices name: ``graph/lifecycle`` → ``graph``."""
    return endpoint.partition("/")[0]


async def _read_capped(request: web.Request) -> bytes | None:
    """The body, or None when it is over :data:`MAX_BODY` (by its Content-Length, or as it is read)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _answer(answer: PushAnswer) -> web.Response:
    content_type, _, params = answer.content_type.partition(";")
    charset = params.strip().removeprefix("charset=") or None
    return web.Response(status=answer.status, body=answer.body, content_type=content_type.strip(), charset=charset)


def _refused(
    request: web.Request, endpoint: str, status: int, *, why: str | None = None, answer: PushAnswer | None = None
) -> web.Response:
    logger.warning("push %s: refused with %d from %s%s", endpoint, status, request.remote, f": {why}" if why else "")
    if answer is not None:
        return _answer(answer)
    return web.Response(status=status, text=f"{HTTPStatus(status).phrase}\n")


def add_receiver_routes(
    app: web.Application,
    *,
    verifiers: Mapping[str, PushVerifier],
    accounts: Mapping[str, Sequence[PushAccount]],
    store: SubscriptionStore,
    trigger: Callable[[Trigger], None],
    draining: Callable[[], bool],
    clock: Clock | None = None,
    prefix: str = "",
) -> None:
    """Serve the receiver from ``app`` (yours, under ``prefix``), with its trigger worker tied to the
    app's life (``cleanup_ctx``). Arguments as :func:`make_receiver_app`."""
    receiver = _Receiver(
        _Config(
            verifiers=dict(verifiers),
            accounts=dict(accounts),
            store=store,
            trigger=trigger,
            draining=draining,
            clock=clock or (lambda: dt.datetime.now(dt.UTC)),
        )
    )
    app.router.add_get(f"{prefix}/healthz", receiver.healthz)
    app.router.add_post(prefix + "/push/{endpoint:.+}", receiver.push)
    app.cleanup_ctx.append(receiver.lifecycle)


def make_receiver_app(
    *,
    verifiers: Mapping[str, PushVerifier],
    accounts: Mapping[str, Sequence[PushAccount]],
    store: SubscriptionStore,
    trigger: Callable[[Trigger], None],
    draining: Callable[[], bool],
    clock: Clock | None = None,
) -> web.Application:
    """The receiver as an app (serve it, or mount it with ``app.add_subapp(prefix, ...)``).

    Args:
        verifiers: endpoint (``google``, ``graph``, ``graph/lifecycle``, ``feishu``, a plugin's) → the
            verifier serving it (each verifier's ``endpoints``; :func:`push_endpoints` builds both maps).
        accounts: endpoint → the accounts configured to push there (the verifier gets them).
        store: the subscriptions verifiers look up and notices resolve through; delivery keys.
        trigger: called with each resolved :class:`Trigger`, after the answer went out; must not block.
        draining: True once the service drains (``/healthz`` answers 503).
        clock: "now" for delivery keys (default: the system's UTC clock).
    """
    app = web.Application(client_max_size=MAX_BODY)
    add_receiver_routes(app, verifiers=verifiers, accounts=accounts, store=store, trigger=trigger,
                        draining=draining, clock=clock)  # fmt: skip
    return app


def push_endpoints(
    config: Config, registry: Registry | None = None
) -> tuple[dict[str, PushVerifier], dict[str, list[PushAccount]]]:
    """What :func:`make_receiver_app` takes for ``config``: the verifier of each endpoint (one per
    pushing plugin, under each of its ``endpoints``) and the accounts configured to push there
    (``push: false`` accounts are left out).

    Raises:
        ValueError: two plugins claim one endpoint.
    """
    registry = registry or default_registry
    verifiers: dict[str, PushVerifier] = {}
    accounts: dict[str, list[PushAccount]] = {}
    made: dict[str, PushVerifier] = {}  # by provider
    for account in config.accounts:
        plugin = push_plugin(registry.get(account.provider))
        if plugin is None or account.push is False:
            continue
        verifier = made.get(account.provider)
        if verifier is None:
            verifier = made[account.provider] = plugin.push_verifier()
        for endpoint in verifier.endpoints:
            if verifiers.setdefault(endpoint, verifier) is not verifier:
                raise ValueError(f"two push plugins claim the endpoint {endpoint!r}")
            accounts.setdefault(endpoint, []).append(PushAccount(name=account.name, settings=account.push))
    return verifiers, accounts


__all__ = ["ANSWER_WITHIN", "MAX_BODY", "add_receiver_routes", "make_receiver_app", "provider_of",
           "push_endpoints"]  # fmt: skip
