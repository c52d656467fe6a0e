"""The sync rounds an emulator served, per calendar, for tests of many workers: whether a calendar was
ever in two rounds at once, and how many full listings it got.

A round begins with a listing request that carries no continuation (no cursor at all: a full
listing; or a sync token / delta link: an incremental one) and ends with the page that carries the
next sync token. A request is a continuation when it carries a page token this log saw the emulator
hand out, so the rule holds for Feishu too, whose incremental pages continue by ``sync_token``.
Each emulator calls :meth:`RoundLog.page` once per listing page it answered 200.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import attrs


@attrs.define(kw_only=True)
class Round:
    """One round of ``calendar``: ``pages`` answered between ``begun`` and ``ended`` (monotonic
    seconds; ``ended`` None: its last page was never asked for), ``last`` the time of its latest page."""

    calendar: str
    full: bool
    begun: float
    last: float
    pages: int = 1
    ended: float | None = None


@attrs.frozen(kw_only=True)
class Overlap:
    """``later`` began while ``earlier`` (of the same calendar) was open; ``interleaved``: ``earlier``
    was served another page after that (both really ran at once, not one abandoned)."""

    calendar: str
    earlier: int
    later: int
    interleaved: bool


class RoundLog:
    """Thread-safe: emulators serve on their own thread while a test reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rounds: list[Round] = []
        self._continues: dict[tuple[str, str], int] = {}  # (calendar, page token) -> its round
        self._open: dict[str, set[int]] = {}
        self._overlaps: list[tuple[str, int, int]] = []

    def page(self, calendar: str, *, sent: str | None, full: bool, more: str | None) -> None:
        """One listing page of ``calendar`` answered: ``sent`` the token the request carried (None or
        empty: none), ``full`` whether it carried no sync token either, ``more`` the page token
        handed out for the next page (None: this was the last page)."""
        now = time.monotonic()
        with self._lock:
            index = self._continues.get((calendar, sent)) if sent else None
            if index is None:
                index = len(self._rounds)
                self._overlaps += [(calendar, o, index) for o in sorted(self._open.get(calendar, ()))]
                self._rounds.append(Round(calendar=calendar, full=full, begun=now, last=now))
                self._open.setdefault(calendar, set()).add(index)
            else:
                this = self._rounds[index]
                this.pages += 1
                this.last = now
            if more:
                self._continues[(calendar, more)] = index
            else:
                self._rounds[index].ended = now
                self._open.get(calendar, set()).discard(index)

    def rounds(self, calendar: str | None = None) -> list[Round]:
        """Every round so far (copies), in the order they began."""
        with self._lock:
            return [attrs.evolve(r) for r in self._rounds if calendar is None or r.calendar == calendar]

    def overlaps(self) -> list[Overlap]:
        with self._lock:
            return [Overlap(calendar=c, earlier=e, later=la, interleaved=self._rounds[e].last > self._rounds[la].begun)
                    for c, e, la in self._overlaps]  # fmt: skip

    def full_listings(self) -> dict[str, int]:
        """Per calendar, how many full rounds began."""
        out: dict[str, int] = {}
        for r in self.rounds():
            if r.full:
                out[r.calendar] = out.get(r.calendar, 0) + 1
        return out

    def summary(self) -> dict[str, Mapping[str, int]]:
        """Per calendar: ``rounds`` begun, ``full`` listings, ``open`` rounds, ``overlaps`` (JSON)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rounds():
            row = out.setdefault(r.calendar, {"rounds": 0, "full": 0, "open": 0, "overlaps": 0})
            row["rounds"] += 1
            row["full"] += r.full
            row["open"] += r.ended is None
        for o in self.overlaps():
            out[o.calendar]["overlaps"] += 1
        return dict(out)

    def clear(self) -> None:
        with self._lock:
            self._rounds.clear()
            self._continues.clear()
            self._open.clear()
            self._overlaps.clear()


def round_log_of(emulator: object) -> RoundLog | None:
    """The emulator's :class:`RoundLog` (``emulator.round_log``, or its ``state``'s for Google), or None."""
    for owner in (emulator, getattr(emulator, "state", None)):
        found = getattr(owner, "round_log", None)
        if isinstance(found, RoundLog):
            return found
    return None
