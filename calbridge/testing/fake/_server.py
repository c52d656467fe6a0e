"""The fake provider's "server": a JSON file any process can read and script.

Tests change it between (or during) sync processes through :class:`FakeServer`; the provider
reads it on every request, so a killed ``calbridge sync`` subprocess and the test agree on one
server state. Faults are consumed one per request, in order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def blank_state() -> dict[str, Any]:
    return {
        "seq": 0,
        "calendars": {},
        "expired_before": 0,
        "faults": [],
        "kill_after_pages": None,
        "page_size": 100,
        "requests": [],
    }


class FakeServer:
    """Script the fake provider: events per calendar, a change log, cursor expiry, faults."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self._write(blank_state())

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write the state under an exclusive lock."""
        with open(self.path.with_suffix(".lk"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.path.read_text(encoding="utf-8"))
            yield state
            self._write(state)

    def read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    # -- data --------------------------------------------------------------------------------

    def put(self, calendar_id: str, event: dict[str, Any]) -> None:
        """Create or replace an event (a dict in the exported form; provider/account/calendar_id
        are filled in by the provider)."""
        with self.edit() as s:
            s["seq"] += 1
            cal = s["calendars"].setdefault(calendar_id, {"events": {}, "log": {}})
            cal["events"][event["id"]] = event
            cal["log"][event["id"]] = s["seq"]

    def delete(self, calendar_id: str, event_id: str) -> None:
        with self.edit() as s:
            s["seq"] += 1
            cal = s["calendars"].setdefault(calendar_id, {"events": {}, "log": {}})
            cal["events"].pop(event_id, None)
            cal["log"][event_id] = s["seq"]

    def expire_cursors(self) -> None:
        """Every cursor issued so far dies (the next round gets CursorExpired)."""
        with self.edit() as s:
            s["seq"] += 1
            s["expired_before"] = s["seq"]

    def set(self, **values: Any) -> None:
        """Set top-level knobs: page_size, kill_after_pages."""
        with self.edit() as s:
            s.update(values)

    def add_fault(self, kind: str, **info: Any) -> None:
        """Queue a fault for the next request: ``rate_limit`` (retry_after), ``transient``,
        ``auth``, ``not_found``."""
        with self.edit() as s:
            s["faults"].append({"kind": kind, **info})

    def events(self, calendar_id: str) -> dict[str, dict[str, Any]]:
        return self.read()["calendars"].get(calendar_id, {}).get("events", {})  # type: ignore[no-any-return]

    def requests(self) -> list[dict[str, Any]]:
        return self.read()["requests"]  # type: ignore[no-any-return]

    def take_request(self, what: str) -> dict[str, Any] | None:
        """Log a request and pop the next fault (None when there is none)."""
        with self.edit() as s:
            s["requests"].append({"what": what, "at": time.time()})
            return s["faults"].pop(0) if s["faults"] else None
