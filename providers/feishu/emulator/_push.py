"""The emulated Feishu's event side (``emu.push``): each app's developer-console event settings,
calendar event subscriptions, and deliveries of ``calendar.calendar.event.changed_v4`` over real
HTTP from the emulator's own loop (apis.md 1.F; F6, F19, F20, F21).

- :meth:`PushHub.configure` is the console: an app's verification token, optional encrypt key and
  request URL. Saving a URL POSTs the ``url_verification`` challenge to it, which must be answered
  ``{"challenge": …}`` within :attr:`~PushHub.challenge_timeout` (1 s); only then is the URL kept.
- Every change in a subscribed calendar is delivered to the subscribed app's URL (no aggregation:
  one delivery per change, at once), encrypted and signed when the app has an encrypt key.
- At least once: an attempt not answered 200 within :attr:`~PushHub.answer_timeout` is retried
  after each of :attr:`~PushHub.retry_delays` (F21: 15 s, 5 min, 1 h, 6 h), with the same
  ``event_id``; :attr:`~PushHub.duplicates` sends each delivery that many more times, each copy
  :attr:`~PushHub.duplicate_delay` seconds after the one before (as a late redelivery comes).
- :meth:`deliveries` is the log, one record per attempt.

Thread-safe: the Python API runs on any thread (the state's lock); the HTTP goes out from the
loop serving the app (``start``/``stop`` are its startup and cleanup hooks), never from a handler.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
from aiohttp import web

from ._pushwire import body_of, challenge_doc, event_doc, headers_for

if TYPE_CHECKING:
    from ._state import FeishuState

logger = logging.getLogger(__name__)

TENANT_KEY = "2ca1d211f64f6438"  # the one emulated tenant (the sample value of F6)


@attrs.define
class AppConsole:
    """An app's event settings in the developer console."""

    app_id: str
    verification_token: str = attrs.field(repr=False)
    encrypt_key: str | None = attrs.field(default=None, repr=False)
    request_url: str | None = None


@attrs.frozen(kw_only=True)
class Challenge:
    """The outcome of one ``url_verification``: ``ok`` when answered 200 with the challenge in time."""

    app_id: str
    url: str
    ok: bool
    status: int | None
    body: bytes = attrs.field(repr=False)
    error: str | None
    encrypted: bool


@attrs.frozen(kw_only=True)
class Delivery:
    """One delivery attempt: ``attempt`` 1 is the first try, ``copy`` 0 the original (1+: duplicates);
    ``status`` None when no answer came (``error`` says why)."""

    event_id: str
    app_id: str
    calendar_id: str
    calendar_event_id: str
    change_type: str
    url: str
    attempt: int
    copy: int
    status: int | None
    error: str | None
    encrypted: bool
    seconds: float


@attrs.frozen(kw_only=True)
class _Outgoing:
    event_id: str
    app_id: str
    calendar_id: str
    calendar_event_id: str
    change_type: str
    body: bytes = attrs.field(repr=False)
    encrypt_key: str | None = attrs.field(repr=False)
    copies: int
    delays: tuple[float, ...]
    spacing: float


class PushHub:
    """Consoles, subscriptions and deliveries of the emulated apps, behind the state's lock."""

    def __init__(self, state: FeishuState) -> None:
        self._s = state
        self.consoles: dict[str, AppConsole] = {}
        self.subscribed: dict[tuple[str, str], str] = {}  # (app_id, calendar_id) → the subscriber's open_id
        self.log: list[Delivery] = []
        self.challenges: list[Challenge] = []
        self.answer_timeout = 3.0  # F21: answer within 3 s
        self.challenge_timeout = 1.0  # F19: the challenge within 1 s
        self.retry_delays: tuple[float, ...] = (15.0, 300.0, 3600.0, 21600.0)  # F21
        self.duplicates = 0
        self.duplicate_delay = 0.0  # seconds between a delivery and each of its duplicates
        self.grey_release = True  # send calendar_event_id and change_type (grey-release fields, F6)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued = 0

    # -- the console and subscriptions (any thread) ------------------------------------------

    def configure(
        self,
        app_id: str,
        *,
        verification_token: str,
        encrypt_key: str | None = None,
        request_url: str | None = None,
        challenge: bool = True,
    ) -> concurrent.futures.Future[Challenge | None]:
        """Set an app's event settings; with a ``request_url``, save it as the console does: the
        challenge is POSTed and the URL kept only when answered (``challenge=False`` keeps it
        unchecked, a test shortcut the console does not have). Await the result with
        ``asyncio.wrap_future``.

        Raises:
            RuntimeError: a URL to check while the emulator is not served (no loop to send from).
        """
        with self._s.lock:
            old = self.consoles.get(app_id)
            url = request_url
            if challenge and request_url is not None:
                url = old.request_url if old is not None else None  # kept until the new one answers
            self.consoles[app_id] = AppConsole(app_id, verification_token, encrypt_key or None, url)
            loop = self._loop
        if request_url is None or not challenge:
            done: concurrent.futures.Future[Challenge | None] = concurrent.futures.Future()
            done.set_result(None)
            return done
        if loop is None:
            raise RuntimeError("serve the emulator first: the challenge goes out from its loop")
        return asyncio.run_coroutine_threadsafe(self._verify_url(app_id, request_url), loop)

    def subscribe(self, app_id: str, calendar_id: str, user_open_id: str) -> None:
        with self._s.lock:
            self.subscribed[(app_id, calendar_id)] = user_open_id

    def unsubscribe(self, app_id: str, calendar_id: str) -> None:
        with self._s.lock:
            self.subscribed.pop((app_id, calendar_id), None)

    def subscriptions(self) -> list[tuple[str, str]]:
        """The live event subscriptions as (app_id, calendar_id)."""
        with self._s.lock:
            return sorted(self.subscribed)

    def deliveries(self, *, app_id: str | None = None, calendar_id: str | None = None) -> list[Delivery]:
        """The delivery log (one record per attempt), optionally of one app or calendar."""
        with self._s.lock:
            return [d for d in self.log if app_id in (None, d.app_id) and calendar_id in (None, d.calendar_id)]

    def pending(self) -> int:
        """Deliveries not finished yet (retries to come included)."""
        with self._s.lock:
            return self._queued

    # -- changes → deliveries ----------------------------------------------------------------

    def changed(self, calendar_id: str, event_id: str, change_type: str) -> None:
        """A change was logged in ``calendar_id`` (called under the state's lock, on any thread)."""
        with self._s.lock:
            for (app_id, cal), user in self.subscribed.items():
                console = self.consoles.get(app_id)
                if cal != calendar_id or console is None or console.request_url is None:
                    continue
                grey = self.grey_release
                doc = event_doc(event_id=uuid.uuid4().hex, app_id=app_id, token=console.verification_token,
                                tenant_key=TENANT_KEY, calendar_id=calendar_id, user_open_id=user,
                                calendar_event_id=event_id if grey else None,
                                change_type=change_type if grey else None)  # fmt: skip
                out = _Outgoing(event_id=doc["header"]["event_id"], app_id=app_id, calendar_id=calendar_id,
                                calendar_event_id=event_id, change_type=change_type,
                                body=body_of(doc, console.encrypt_key), encrypt_key=console.encrypt_key,
                                copies=1 + max(self.duplicates, 0), delays=tuple(self.retry_delays),
                                spacing=max(self.duplicate_delay, 0.0))  # fmt: skip
                self._schedule(out)

    def _schedule(self, out: _Outgoing) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            self._record(out, "", 1, 0, None, "the emulator is not served", 0.0)
            return
        self._queued += 1
        try:
            loop.call_soon_threadsafe(self._spawn, out)
        except RuntimeError:  # the loop closed meanwhile
            self._queued -= 1
            self._record(out, "", 1, 0, None, "the emulator is not served", 0.0)

    def _spawn(self, out: _Outgoing) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(out))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        with self._s.lock:
            self._queued -= 1

    def _record(
        self, out: _Outgoing, url: str, attempt: int, copy: int, status: int | None, error: str | None, seconds: float
    ) -> None:
        entry = Delivery(event_id=out.event_id, app_id=out.app_id, calendar_id=out.calendar_id,
                         calendar_event_id=out.calendar_event_id, change_type=out.change_type, url=url,
                         attempt=attempt, copy=copy, status=status, error=error,
                         encrypted=out.encrypt_key is not None, seconds=seconds)  # fmt: skip
        with self._s.lock:
            self.log.append(entry)

    # -- HTTP, on the emulator's loop ----------------------------------------------------------

    async def _deliver(self, out: _Outgoing) -> None:
        for copy in range(out.copies):
            if copy and out.spacing:
                await asyncio.sleep(out.spacing)
            for attempt in range(1, len(out.delays) + 2):
                if attempt > 1:
                    await asyncio.sleep(out.delays[attempt - 2])
                with self._s.lock:
                    console = self.consoles.get(out.app_id)
                    url = console.request_url if console is not None else None
                if url is None:
                    return  # the app's request URL was removed
                headers = headers_for(out.body, out.encrypt_key, signed=True)
                status, _, error, seconds = await self._post(url, out.body, headers, self.answer_timeout)
                self._record(out, url, attempt, copy, status, error, seconds)
                if status == 200:
                    break

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int | None, bytes, str | None, float]:
        """One POST: (status, body, error, seconds); an answer later than ``timeout`` is none."""
        assert self._session is not None
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                async with self._session.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                    return resp.status, answer, None, time.monotonic() - started
        except TimeoutError:
            return None, b"", f"no answer within {timeout:g}s", time.monotonic() - started
        except aiohttp.ClientError as exc:
            return None, b"", f"connection failed ({type(exc).__name__})", time.monotonic() - started

    async def _verify_url(self, app_id: str, url: str) -> Challenge:
        with self._s.lock:
            console = self.consoles[app_id]
            token, key = console.verification_token, console.encrypt_key
        challenge = secrets.token_urlsafe(12)
        body = body_of(challenge_doc(challenge, token), key)
        # Unsigned, as the official SDK expects (it checks no signature on url_verification).
        status, answer, error, _ = await self._post(url, body, headers_for(body, key, signed=False),
                                                    self.challenge_timeout)  # fmt: skip
        ok = status == 200 and _challenge_in(answer) == challenge
        if status is not None and not ok:
            error = "the answer is not the challenge"
        outcome = Challenge(app_id=app_id, url=url, ok=ok, status=status, body=answer, error=error,
                            encrypted=key is not None)  # fmt: skip
        with self._s.lock:
            self.challenges.append(outcome)
            if ok and app_id in self.consoles:
                self.consoles[app_id].request_url = url
        return outcome

    async def start(self, app: web.Application) -> None:
        """``on_startup``: send from the loop serving the app."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession()

    async def stop(self, app: web.Application) -> None:
        """``on_cleanup``: drop what is in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self._loop, self._session = None, None


def _challenge_in(answer: bytes) -> Any:
    try:
        doc = json.loads(answer)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc.get("challenge") if isinstance(doc, dict) else None
