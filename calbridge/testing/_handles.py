"""The handle the plugin kit drives (:class:`EmulatorHandle`), and :class:`BaseHandle`, which
implements it over any emulator with calbridge's shared emulator API
(:mod:`calbridge.testing.emulator_api`): a plugin whose emulator has that API needs no code of its
own beyond the class attributes (page size, options)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from ._serve import Served
from .emulator_api import EmulatorAPI, SeriesEmulatorAPI

FAULTS = ("rate_limit", "server_error", "drop")
"""Fault names a handle may support: 429 (with a zero wait), a 5xx, a connection dropped without an
answer. ``drop`` works for every emulator: :class:`Served` injects it at the transport."""

SERIES_METHODS = ("create_series", "rename_series", "delete_series", "cancel_occurrence", "move_occurrence")
_calendars = itertools.count(1)


@runtime_checkable
class EmulatorHandle(Protocol):
    """What the suite needs from a plugin's emulator: a thin adapter over its Python API.

    Instants are aware datetimes; ids are the provider's event ids as the mirror will hold them.
    """

    plugin_name: str
    served: Served
    page_size: int
    """Events per sync page with the options :meth:`account` sets (small, so paging is exercised)."""
    faults: frozenset[str]
    """The subset of :data:`FAULTS` :meth:`inject` supports."""

    def account(self, name: str) -> dict[str, Any]:
        """A config ``accounts`` entry for the calendar under test (auth, base_url, calendars, options)."""
        ...

    def reset(self) -> None:
        """Start over with an empty calendar and no pending faults (a fresh calendar is fine)."""
        ...

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str: ...

    def update(
        self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> None: ...  # fmt: skip

    def delete(self, event_id: str) -> None: ...

    def expire_cursor(self) -> None:
        """Make every cursor issued so far dead: the next round must get ``CursorExpired``."""
        ...

    def inject(self, fault: str) -> None:
        """Fail the next API request with ``fault`` (one of :attr:`faults`)."""
        ...

    def clear_faults(self) -> None: ...


@runtime_checkable
class SeriesHandle(EmulatorHandle, Protocol):
    """Recurring events: series are timed, in UTC, ``FREQ=DAILY|WEEKLY;COUNT=n``.

    Optional, and each method on its own: a series test runs when the handle has the methods it
    uses (:data:`SERIES_METHODS`) and skips naming the missing one otherwise.
    """

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str: ...

    def rename_series(self, series_id: str, title: str) -> None: ...

    def delete_series(self, series_id: str) -> None: ...

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None: ...

    def move_occurrence(
        self, series_id: str, original_start: dt.datetime, start: dt.datetime, end: dt.datetime
    ) -> None: ...


class BaseHandle:
    """An :class:`EmulatorHandle` over the emulator's shared API (:class:`EmulatorAPI`): each
    :meth:`reset` moves to a :meth:`~EmulatorAPI.new_calendar`; faults are ``fail_next(429|503)``
    plus connection drops at the transport (which work for any emulator).

    For an emulator without that API, subclass and implement the mutations yourself.
    """

    plugin_name: str = ""
    page_size: int = 2
    options: ClassVar[Mapping[str, Any]] = {}
    api_path: str = ""  # drops only hit requests whose path contains this (keep token endpoints out)

    def __init__(self, served: Served) -> None:
        self.served = served
        self.plugin_name = self.plugin_name or served.name
        self.calendar_id: str | None = None
        api = isinstance(served.emulator, EmulatorAPI)
        self.faults: frozenset[str] = frozenset({"drop", *(("rate_limit", "server_error") if api else ())})

    @property
    def emulator(self) -> Any:
        return self.served.emulator

    @property
    def api(self) -> EmulatorAPI:
        """The emulator's shared API (TypeError when it has none: implement the handle's methods)."""
        emulator = self.served.emulator
        if not isinstance(emulator, EmulatorAPI):
            raise TypeError(f"the {self.served.name} emulator has no calbridge.testing.emulator_api API: "
                            f"implement {type(self).__name__}'s methods")  # fmt: skip
        return emulator

    def account(self, name: str) -> dict[str, Any]:
        entry = self.served.account_config(name)
        if self.calendar_id is not None:
            entry["calendars"] = [self.calendar_id]
        if self.options:
            entry["options"] = {**entry.get("options", {}), **self.options}
        return entry

    def reset(self) -> None:
        self.clear_faults()
        if isinstance(self.served.emulator, EmulatorAPI):
            self.calendar_id = self.api.new_calendar(f"kit-{next(_calendars)}")

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str:
        return self.api.add_event(title, start, end, calendar=self.calendar_id)

    def update(self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> None:  # fmt: skip
        self.api.update_event(event_id, calendar=self.calendar_id, title=title, start=start, end=end)

    def delete(self, event_id: str) -> None:
        self.api.delete_event(event_id, calendar=self.calendar_id)

    def expire_cursor(self) -> None:
        self.api.expire_cursors()

    def inject(self, fault: str) -> None:
        if fault == "drop":
            self.served.drop_next(1, path_contains=self.api_path)
        elif fault == "rate_limit" and fault in self.faults:
            self.api.fail_next(429, retry_after=0)
        elif fault == "server_error" and fault in self.faults:
            self.api.fail_next(503)
        else:
            raise NotImplementedError(f"{type(self).__name__} cannot inject {fault!r}")

    def clear_faults(self) -> None:
        self.served.clear_drops()
        if isinstance(self.served.emulator, EmulatorAPI):
            self.api.clear_faults()


class SeriesBaseHandle(BaseHandle):
    """:class:`BaseHandle` plus every :class:`SeriesHandle` method, over :class:`SeriesEmulatorAPI`."""

    @property
    def series_api(self) -> SeriesEmulatorAPI:
        api = self.api
        if not isinstance(api, SeriesEmulatorAPI):
            raise TypeError(f"the {self.served.name} emulator has no occurrence verbs")
        return api

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str:
        return self.api.add_event(title, start, end, calendar=self.calendar_id, rrule=f"FREQ={freq};COUNT={count}")

    def rename_series(self, series_id: str, title: str) -> None:
        self.api.update_event(series_id, calendar=self.calendar_id, title=title)

    def delete_series(self, series_id: str) -> None:
        self.api.delete_event(series_id, calendar=self.calendar_id)

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None:
        self.series_api.cancel_occurrence(series_id, original_start, calendar=self.calendar_id)

    def move_occurrence(self, series_id: str, original_start: dt.datetime, start: dt.datetime,
                        end: dt.datetime) -> None:  # fmt: skip
        self.series_api.move_occurrence(series_id, original_start, start, end, calendar=self.calendar_id)
