"""A consumer of the change stream, as ``docs/design.md`` tells one to apply it, and its check
against the store: applying every published batch in order must reproduce the store's series view and
its whole instance view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._run import ChangeBatch
from ..export import event_to_dict
from ..model import Delete, Event, EventKey, Kind
from ..store.base import MirrorReader


class Replica:
    """What a consumer holds: one event per key, the last ``Upsert`` winning, a ``Delete`` removing it."""

    def __init__(self) -> None:
        self.rows: dict[EventKey, Event] = {}
        self.problems: list[str] = []

    def apply(self, batches: Iterable[ChangeBatch]) -> None:
        for batch in batches:
            seen: set[EventKey] = set()
            for change in batch.changes:
                key = change.key if isinstance(change, Delete) else change.event.key
                if key in seen:
                    self.problems.append(f"{key.id}: changed twice in one batch")
                seen.add(key)
                if isinstance(change, Delete):
                    if self.rows.pop(key, None) is None:
                        self.problems.append(f"{key.id}: deleted but never held")
                    elif change.previous is None:
                        self.problems.append(f"{key.id}: a published delete without what it deleted")
                else:
                    if change.created is not (key not in self.rows):
                        self.problems.append(f"{key.id}: created={change.created} but held={key in self.rows}")
                    self.rows[key] = change.event

    def series_view(self) -> dict[str, dict[str, Any]]:
        """Singles, series and exceptions, keyed ``account/calendar/id``."""
        return {_label(e): event_to_dict(e) for e in self.rows.values() if e.kind is not Kind.OCCURRENCE}

    def instance_view(self) -> dict[str, dict[str, Any]]:
        """Singles, exceptions and occurrences, keyed ``account/calendar/id``."""
        return {_label(e): event_to_dict(e) for e in self.rows.values() if e.kind is not Kind.SERIES}

    async def diff(self, store: MirrorReader) -> list[str]:
        """How this replica differs from ``store`` (empty when it reproduces both views exactly)."""
        out = list(self.problems)
        series = {_label(e): event_to_dict(e) for e in await store.query(include_cancelled=True)}
        instances: dict[str, dict[str, Any]] = {}
        for e in await store.query(expand=True, include_cancelled=True):
            if _label(e) in instances:
                out.append(f"instance view: two rows with id {e.id}")
            instances[_label(e)] = event_to_dict(e)
        for label, mine, theirs in (("series", self.series_view(), series),
                                    ("instance", self.instance_view(), instances)):  # fmt: skip
            for key in sorted(mine.keys() | theirs.keys()):
                a, b = mine.get(key), theirs.get(key)
                if a == b:
                    continue
                if a is None or b is None:
                    out.append(f"{label} view {key}: only in the {'store' if a is None else 'replica'}")
                else:
                    fields = sorted(f for f in a.keys() | b.keys() if a.get(f) != b.get(f))
                    what = "; ".join(f"{f}: {a.get(f)!r} != {b.get(f)!r}" for f in fields)
                    out.append(f"{label} view {key}: {what}")
        return out


def run_problems(batches: Sequence[ChangeBatch]) -> list[str]:
    """What is wrong with the batches one finished run published: each calendar that changed
    ends with an empty batch marked ``last``, and nothing follows it. (A marker may come alone: a
    round that finished what a killed run began says so even when its own part changed nothing.)"""
    out: list[str] = []
    tail: dict[tuple[str, str], ChangeBatch] = {}
    changed: set[tuple[str, str]] = set()
    for batch in batches:
        cal = (batch.account, batch.calendar_id)
        if cal in tail and tail[cal].last:
            out.append(f"{cal}: a batch after the round's last")
        if batch.last and batch.changes:
            out.append(f"{cal}: the last batch carries changes")
        if batch.changes:
            changed.add(cal)
        tail[cal] = batch
    for cal in sorted(changed):
        if not tail[cal].last:
            out.append(f"{cal}: the round changed something but published no last batch")
    return out


def _label(e: Event) -> str:
    return f"{e.account}/{e.calendar_id}/{e.id}"
