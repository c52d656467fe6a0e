"""The SQLite store's one worker thread: every call on the connection runs there, in the order made.

A queue the thread drains replaces ``asyncio.to_thread`` behind a lock: one hop costs a queue put
and the loop's wake-up, not an executor work item, a copied context and two chained futures, and
calls that several calendars make at once run back to back without the thread sleeping between
them (``bench/bench_round.py`` measures the hop).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if not fut.done():  # a caller's loop may have cancelled it meanwhile
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class Worker:
    """A daemon thread running submitted calls one at a time; :meth:`stop` ends it after the queue."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fut, fn, args = job
            try:
                ok, value = True, fn(*args)
            except BaseException as exc:  # handed to the caller, whatever it is
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody awaits it
                loop.call_soon_threadsafe(_settle, fut, ok, value)
            del job, fut, value  # no reference to a result past its delivery

    def submit(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_T] = loop.create_future()
        self._jobs.put((loop, fut, fn, args))
        return fut

    def stop(self) -> None:
        self._jobs.put(None)
